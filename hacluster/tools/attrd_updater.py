"""``attrd_updater``: query, set or delete a transient node attribute (Pacemaker's attrd client).

``-n NAME`` with one of ``-U``/``-v VALUE`` (set), ``-B VALUE -d DELAY`` (set; the delay is
accepted), ``-Y -d DELAY`` (dampening only: nothing to change here), ``-Q`` (query; ``-A``
for every node), ``-D`` (delete) or ``-R`` (refresh: nothing to do).  ``-N NODE`` names
another node than this one.  Values change at once: hacluster's dampening of connectivity is
its own (ha.cf ``pingd_dampen``), not attrd's per-update delay.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

from hacluster.tools.common import EXIT_NOSUCH, EXIT_USAGE, Parser, ToolError, call, run

PROG = "attrd_updater"
_DELAY_RE = re.compile(r"[0-9]+(ms|s|m|h|min)?")


def parser() -> Parser:
    p = Parser(prog=PROG, description="query and update hacluster's transient node attributes")
    p.add_argument("-n", "--name", required=True, help="the attribute's name")
    command = p.add_mutually_exclusive_group()
    command.add_argument("-U", "--update", "-v", metavar="VALUE", help="set the value")
    command.add_argument("-B", "--update-both", metavar="VALUE", help="set the value (needs -d)")
    command.add_argument("-Y", "--update-delay", action="store_true", help="set the dampening (needs -d)")
    command.add_argument("-Q", "--query", action="store_true", help="print the value")
    command.add_argument("-D", "--delete", action="store_true", help="delete the attribute")
    command.add_argument("-R", "--refresh", action="store_true", help="accepted, nothing to do")
    p.add_argument("-d", "--delay", help="dampening in seconds (accepted; see the module's help)")
    p.add_argument("-N", "--node", help="the node (default: this node)")
    p.add_argument("-A", "--all", action="store_true", help="every node (with -Q)")
    p.add_argument("-l", "--lifetime", help="accepted and ignored, as Pacemaker does")
    p.add_argument("-p", "--private", action="store_true", help="accepted, no effect")
    p.add_argument("-s", "--set", help="accepted, no effect")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted, no effect")
    p.add_argument("-V", "--verbose", action="count", default=0, help="accepted, no effect")
    return p


def main(argv: Sequence[str]) -> str:
    args = parser().parse_args(argv)
    if (args.update_both is not None or args.update_delay) and args.delay is None:
        raise ToolError("-B and -Y need -d DELAY", EXIT_USAGE)
    if args.delay is not None and _DELAY_RE.fullmatch(args.delay) is None:
        raise ToolError(f"-d {args.delay!r} is not a delay: give seconds, e.g. -d 5s", EXIT_USAGE)
    if args.all and not args.query:
        raise ToolError("-A only goes with -Q", EXIT_USAGE)
    if args.update_delay or args.refresh:
        return ""
    value = args.update if args.update is not None else args.update_both
    if value is not None or args.delete:
        call("attribute_update", node=args.node or "", name=args.name, value=value, lifetime="reboot")
        return ""
    if not args.query:
        raise ToolError("give a command: -U VALUE, -Q or -D (see attrd_updater --help)", EXIT_USAGE)
    return _query(call("attribute_query"), args.name, args.node, every=args.all)


def _query(answer: dict[str, Any], name: str, node: str | None, *, every: bool) -> str:
    nodes = sorted(answer["nodes"]) if every else [node or answer["node"]]
    lines = []
    for host in nodes:
        if host not in answer["nodes"]:
            raise ToolError(
                f"no node named {host!r}; configured nodes: {', '.join(answer['nodes'])}", EXIT_NOSUCH
            )
        entry = answer["nodes"][host].get(name)
        if entry is not None and entry["lifetime"] == "reboot":
            lines.append(f'name="{name}" host="{host}" value="{entry["value"]}"\n')
    if not lines:
        raise ToolError(f"could not query value of {name}: attribute does not exist", EXIT_NOSUCH)
    return "".join(lines)


def entry() -> None:
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
