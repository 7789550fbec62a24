"""``hacrm status [--full] [--json] [--watch [--interval 1s]]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from hacluster.cli import render
from hacluster.cli.client import CliError, request
from hacluster.cli.commands.common import Registry
from hacluster.core.cib import TIME_HINT, parse_time_ms

WATCH_POLL_S = 0.2
"""The live view asks the daemon this often and redraws as soon as anything but a timer changed."""
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def interval_ms(text: str) -> int:
    """``--interval``: a positive time; argparse turns ``ValueError`` into exit 2 with our message."""
    try:
        value = parse_time_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time; expected {TIME_HINT}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0; e.g. --interval 1s")
    return value


def register(registry: Registry) -> None:
    status = registry.top.add_parser("status", help="nodes, links, resources and fencing at a glance")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.add_argument(
        "--full", action="store_true", help="add node attributes, fail counts with expiry, pending actions"
    )
    status.add_argument(
        "--watch", "-w", action="store_true", help="live view: redraw on every change until Ctrl-C"
    )
    status.add_argument(
        "--interval",
        type=interval_ms,
        default=1000,
        metavar="TIME",
        help="with --watch: redraw at least this often (default 1s)",
    )
    status.set_defaults(run=_status)


def _status(args: argparse.Namespace, socket_path: str) -> str:
    if args.watch:
        return watch(args, socket_path)
    doc = request(socket_path, "status_ext")
    return json.dumps(doc, indent=2) + "\n" if args.json else render.status_text(doc, full=args.full)


def significant(doc: dict[str, Any]) -> Any:
    """The status document without what changes on its own (timers, counters, gap statistics)."""
    cluster = doc["cluster"]
    return (
        {k: v for k, v in cluster.items() if k not in ("uptime_ms", "pid")},
        [
            (
                n["name"],
                n["state"],
                n.get("generation"),
                n.get("attributes"),
                [lk["state"] for lk in n["links"]],
            )
            for n in doc["nodes"]
        ],
        [
            (
                r["id"],
                r["state"],
                r["nodes"],
                r["failcounts"],
                r["failures"],
                r.get("managed"),
                r.get("reason"),
            )
            for r in doc.get("resources", [])
        ],
        doc.get("pins"),
        doc.get("moves"),
        doc.get("pending"),
        doc.get("fencing_pending"),
        len(doc.get("fencing") or []),
        doc.get("warnings"),
    )


def watch(args: argparse.Namespace, socket_path: str) -> str:
    """Redraw on change (polled every 200 ms) and at least every ``--interval``; Ctrl-C ends it."""
    tty = sys.stdout.isatty()
    last: Any = None
    last_draw = 0.0
    try:
        while True:
            try:
                doc: dict[str, Any] | None = request(socket_path, "status_ext", timeout_s=2.0)
                sig = significant(doc) if doc is not None else None
                text = render.status_text(doc, full=args.full) if doc is not None else ""
            except CliError as exc:
                doc, sig, text = None, ("error", exc.code), f"no answer from the daemon: {exc}\n"
            now = time.monotonic()
            if sig != last or (now - last_draw) * 1000 >= args.interval:
                stamp = time.strftime("%H:%M:%S")
                if tty:
                    sys.stdout.write(
                        f"{CLEAR_SCREEN}hacrm status --watch  {stamp}  (Ctrl-C to quit)\n\n{text}"
                    )
                else:
                    sys.stdout.write(f"--- {stamp} ---\n{text}\n")
                sys.stdout.flush()
                last, last_draw = sig, now
            time.sleep(WATCH_POLL_S)
    except KeyboardInterrupt:
        return "\n" if tty else ""
