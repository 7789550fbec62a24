"""``hacrm resource …``: list, show, start, stop, restart, move, unmove, cleanup, failcount."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hacluster.cli import render
from hacluster.cli.client import CliError, request
from hacluster.cli.commands.common import Registry, add_dry_run, change
from hacluster.core.cib import TIME_HINT, parse_time_ms

RESTART_POLL_S = 0.2
UNTIL_HINT = f"a date such as 2030-01-31T18:00 or '2030-01-31 18:00', or a duration from now: {TIME_HINT}"


def wait_seconds(text: str) -> float:
    try:
        value = parse_time_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time; expected {TIME_HINT}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0; e.g. --wait 60s")
    return value / 1000


def until_epoch_s(text: str, now_s: float | None = None) -> int:
    """``--until``: an absolute local date/time, or a duration from now; unix seconds."""
    now = time.time() if now_s is None else now_s
    if re.match(r"^\d{4}-\d\d-\d\d", text):
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected {UNTIL_HINT}") from None
        until = int(moment.timestamp())
    else:
        try:
            until = int(now + parse_time_ms(text) / 1000)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date or duration; expected {UNTIL_HINT}"
            ) from None
    if until <= now:
        raise argparse.ArgumentTypeError(f"{text!r} is not in the future; give a later time, e.g. --until 2h")
    return until


def register(registry: Registry) -> None:
    rsc_sub = registry.group("resource")
    rsc_list = rsc_sub.add_parser("list", help="every resource with its state and node")
    rsc_list.add_argument("--json", action="store_true", help="print JSON")
    rsc_list.set_defaults(run=_resource_list)
    show = rsc_sub.add_parser(
        "show", help="one resource or group: agent, params (secrets hidden), meta, ops, state, failures"
    )
    show.add_argument("resource", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_resource_show)
    for name, command, text in (
        ("start", "resource_start", "let the cluster run ID (clears target-role=Stopped)"),
        ("stop", "resource_stop", "stop ID everywhere and keep it stopped (target-role=Stopped)"),
        ("unmove", "resource_unmove", "remove the move or pin constraint of ID"),
    ):
        p = rsc_sub.add_parser(name, help=text)
        p.add_argument("resource", metavar="ID")
        add_dry_run(p)
        p.set_defaults(run=change(command, lambda a: {"resource": a.resource}))
    restart = rsc_sub.add_parser(
        "restart",
        help="stop ID everywhere, wait until it is stopped, then let it start again "
        "(target-role is put back as it was, also on error or Ctrl-C)",
    )
    restart.add_argument("resource", metavar="ID")
    restart.add_argument(
        "--wait",
        type=wait_seconds,
        default=60.0,
        metavar="TIME",
        help="give up after this long (default 60s)",
    )
    add_dry_run(restart)
    restart.set_defaults(run=_restart)
    mv = rsc_sub.add_parser("move", help="move ID to NODE once (use --pin to keep it there)")
    mv.add_argument("resource", metavar="ID")
    mv.add_argument("node", metavar="NODE")
    mv.add_argument("--pin", action="store_true", help="keep a named constraint (cli-prefer-ID) until unmove")
    mv.add_argument(
        "--until",
        type=until_epoch_s,
        metavar="TIME",
        help="with --pin: the pin ends at this date or after this duration (e.g. 2h); the DC removes it",
    )
    add_dry_run(mv)
    mv.set_defaults(run=_move)
    cl = rsc_sub.add_parser("cleanup", help="forget failures of ID (all resources if omitted) and re-probe")
    cl.add_argument("resource", metavar="ID", nargs="?", default="")
    cl.add_argument("--node", default="", help="only on this node")
    add_dry_run(cl)
    cl.set_defaults(run=change("resource_cleanup", lambda a: {"resource": a.resource, "node": a.node}))
    fc = rsc_sub.add_parser("failcount", help="show fail counts of ID, or delete them (a cleanup)")
    fc.add_argument("resource", metavar="ID")
    fc.add_argument("action", nargs="?", choices=["show", "delete"], default="show", help="default show")
    fc.add_argument("--node", default="", help="only on this node")
    add_dry_run(fc)
    fc.set_defaults(run=_failcount)


def _resource_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status_ext")
    if args.json:
        return json.dumps({"resources": doc["resources"], "groups": doc["groups"]}, indent=2) + "\n"
    return "\n".join(render.resource_lines(doc) + render.constraint_lines(doc)) + "\n"


def _resource_show(args: argparse.Namespace, socket_path: str) -> str:
    show = request(socket_path, "resource_show", resource=args.resource)
    if args.json:
        return json.dumps(show, indent=2) + "\n"
    return "\n".join(render.resource_detail(show)) + "\n"


def _move(args: argparse.Namespace, socket_path: str) -> str:
    if args.until is not None and not args.pin:
        raise CliError("BAD_USAGE", "--until needs --pin: hacrm resource move ID NODE --pin --until 2h", 2)
    if args.until is None:
        return change("resource_move", lambda a: {"resource": a.resource, "node": a.node, "pin": a.pin})(
            args, socket_path
        )
    text = change("resource_pin", lambda a: {"resource": a.resource, "node": a.node, "until_s": a.until})(
        args, socket_path
    )
    return (
        text
        + f"pin cli-prefer-{args.resource} ends at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(args.until))}\n"
    )


def _cleanup_args(member: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    return lambda a: {"resource": member, "node": a.node}


def _failcount(args: argparse.Namespace, socket_path: str) -> str:
    show = request(socket_path, "resource_show", resource=args.resource)
    if args.action == "delete":
        outputs = [
            change("resource_cleanup", _cleanup_args(p["id"]))(args, socket_path) for p in show["primitives"]
        ]
        return outputs[-1] if outputs else "done\n"
    if args.dry_run:
        raise CliError("BAD_USAGE", "--dry-run applies to `failcount ID delete` only", 2)
    lines = []
    for p in show["primitives"]:
        counts = {n: c for n, c in p["failcounts"].items() if not args.node or n == args.node}
        if not counts:
            lines.append(f"{p['id']}: no failures" + (f" on {args.node}" if args.node else ""))
        for node, count in counts.items():
            lines.append(f"{p['id']} on {node}: fail-count={count}, {render.failcount_expiry(p)}")
    return "\n".join(lines) + "\n"


def _states(socket_path: str, members: list[str]) -> dict[str, str]:
    doc = request(socket_path, "status", timeout_s=2.0)
    return {r["id"]: r["state"] for r in doc["resources"] if r["id"] in members}


def _restart(args: argparse.Namespace, socket_path: str) -> str:
    show = request(socket_path, "resource_show", resource=args.resource)
    original: str | None = show["meta"].get("target-role")
    members = [p["id"] for p in show["primitives"]]
    if any(p["target_role"] == "Stopped" for p in show["primitives"]):
        raise CliError(
            "RESOURCE_STOPPED",
            f"{args.resource} has target-role=Stopped, so there is nothing to restart; use: hacrm resource start {args.resource}",
        )
    if args.dry_run:
        return (
            f"dry run: would set target-role=Stopped on {args.resource}, wait until {', '.join(members)} "
            f"stopped, then put target-role back ({original or 'unset'}); nothing changed\n"
        )
    meta_args: dict[str, Any] = {"resource": args.resource, "name": "target-role"}
    request(socket_path, "resource_meta", value="Stopped", **meta_args)
    deadline = time.monotonic() + args.wait
    restored = False
    try:
        while any(s != "stopped" for s in _states(socket_path, members).values()):
            if time.monotonic() > deadline:
                raise CliError(
                    "RESTART_TIMEOUT",
                    f"{args.resource} did not stop within {args.wait:g} s; target-role was put back "
                    f"({original or 'unset'}); see hacrm resource show {args.resource}",
                )
            time.sleep(RESTART_POLL_S)
        request(socket_path, "resource_meta", value=original, **meta_args)
        restored = True
        while any(s != "started" for s in _states(socket_path, members).values()):
            if time.monotonic() > deadline:
                raise CliError(
                    "RESTART_TIMEOUT",
                    f"{args.resource} stopped but did not start again within {args.wait:g} s; "
                    f"see hacrm resource show {args.resource}",
                )
            time.sleep(RESTART_POLL_S)
    finally:
        if not restored:
            request(socket_path, "resource_meta", value=original, **meta_args)
    where = sorted(
        {n for r in request(socket_path, "status")["resources"] if r["id"] in members for n in r["nodes"]}
    )
    return f"{args.resource} restarted (running on {', '.join(where) or 'no node'})\n"
