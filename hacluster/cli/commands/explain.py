"""``hacrm resource why ID`` and ``hacrm simulate``: explain placement, preview failures.

``simulate`` prints what the cluster would do, in order, crm_simulate style
(``* Move vip ( n1 -> n2 )``); it changes nothing.  The formatting functions take the API's
answers, so the golden tests in ``tests/cli`` render fixed answers without a daemon.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def register(registry: Registry) -> None:
    rsc_sub = registry.group("resource")
    why = rsc_sub.add_parser(
        "why", help="one sentence: where ID runs, or the one thing that keeps it from running"
    )
    why.add_argument("resource", metavar="ID", help="a primitive or group")
    why.set_defaults(run=_why)
    sim = registry.top.add_parser(
        "simulate",
        help="what the cluster would do if nodes crashed, resources failed, nodes went to standby",
        description="Print, in order, the actions the cluster would take (fencing, stops, starts, moves) "
        "if the given events happened now.  Nothing is changed.  Every option may be repeated.",
    )
    sim.add_argument(
        "--crash",
        action="append",
        default=[],
        metavar="NODE",
        type=_node_arg,
        help="NODE dies without a clean stop",
    )
    sim.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="RSC[:NODE]",
        type=_fail_arg,
        help="RSC's monitor fails (on NODE, else wherever it runs); where it does not run: its start fails",
    )
    sim.add_argument(
        "--standby",
        action="append",
        default=[],
        metavar="NODE",
        type=_node_arg,
        help="NODE is put in standby",
    )
    sim.add_argument(
        "--partition",
        action="append",
        default=[],
        metavar="A,B",
        type=_partition_arg,
        help="these nodes form one side of a split (repeat per side; unnamed members form one more side)",
    )
    sim.add_argument("--json", action="store_true", help="print the API's JSON answer")
    sim.set_defaults(run=_simulate)


def _node_arg(text: str) -> str:
    if not _NAME_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a node name; give one configured node, e.g. n1")
    return text.lower()


def _fail_arg(text: str) -> str:
    rsc, sep, node = text.partition(":")
    if not _NAME_RE.match(rsc) or (sep and not _NAME_RE.match(node)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not RSC or RSC:NODE; write e.g. --fail vip (fails where it runs) or --fail vip:n2"
        )
    return f"{rsc}:{node.lower()}" if sep else rsc


def _partition_arg(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not names or not all(_NAME_RE.match(n) for n in names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated node list; write e.g. --partition n1,n2 --partition n3"
        )
    return [n.lower() for n in names]


def _why(args: argparse.Namespace, socket_path: str) -> str:
    return format_why(request(socket_path, "resource_why", resource=args.resource))


def _simulate(args: argparse.Namespace, socket_path: str) -> str:
    what: dict[str, Any] = {"crash": args.crash, "fail": args.fail, "standby": args.standby}
    if args.partition:
        what["partition"] = args.partition
    answer = request(socket_path, "simulate", **what)
    if args.json:
        return json.dumps(answer, indent=2) + "\n"
    return format_simulation(answer)


# --- formatting (pure: API answer in, text out) -------------------------------------------------


def format_why(answer: dict[str, Any]) -> str:
    return f"{answer['why']}\n"


def action_lines(actions: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    if not actions:
        return [f"{indent}* nothing to do"]
    return [f"{indent}* {a['text']}" for a in actions]


def _what_if(what: dict[str, Any]) -> str:
    parts = [f"crash {n}" for n in what.get("crash") or []]
    parts += [f"fail {f}" for f in what.get("fail") or []]
    parts += [f"standby {n}" for n in what.get("standby") or []]
    if what.get("partition"):
        parts.append("partition " + " | ".join(",".join(side) for side in what["partition"]))
    return ", ".join(parts) or "nothing (the cluster as it is now)"


def format_simulation(answer: dict[str, Any]) -> str:
    lines = [f"Simulated: {_what_if(answer.get('what_if') or {})}", "", "Transition Summary:"]
    if "sides" in answer:
        for side in answer["sides"]:
            quorum = "with quorum" if side["quorum"] else "WITHOUT quorum"
            lines.append(f"  Partition [ {' '.join(side['members'])} ] ({quorum}):")
            lines += action_lines(side["actions"], "    ")
    else:
        lines += action_lines(answer["actions"])
        if not answer.get("quorum", True):
            lines.append(
                "  (the remaining members would have no quorum: no-quorum-policy applies, nothing is fenced)"
            )
    return "\n".join(lines) + "\n"
