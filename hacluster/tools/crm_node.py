"""``crm_node``: this node's name (``-n``), every node (``-l``), this partition (``-p``),
quorum (``-q``) and this node's id (``-i``), from the daemon's status.

Node ids are positions in ha.cf's node list, from 1: hacluster names nodes, it has no ids.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hacluster.tools.common import EXIT_NOSUCH, Parser, ToolError, call, run

PROG = "crm_node"
_MEMBER_STATES = frozenset({"active"})


def parser() -> Parser:
    p = Parser(prog=PROG, description="display hacluster node information")
    command = p.add_mutually_exclusive_group(required=True)
    command.add_argument("-n", "--name", action="store_true", help="this node's name")
    command.add_argument("-l", "--list", action="store_true", help="every node: id, name, state")
    command.add_argument("-p", "--partition", action="store_true", help="the members of this partition")
    command.add_argument("-q", "--quorum", action="store_true", help="1 if this partition has quorum")
    command.add_argument("-i", "--cluster-id", action="store_true", help="this node's id")
    command.add_argument("-N", "--name-for-id", metavar="ID", help="the name of node ID")
    p.add_argument("-Q", "--quiet", action="store_true", help="accepted, no effect")
    p.add_argument("-V", "--verbose", action="count", default=0, help="accepted, no effect")
    return p


def main(argv: Sequence[str]) -> str:
    args = parser().parse_args(argv)
    status = call("status")
    local = status["cluster"]["node"]
    nodes = [n for n in status["nodes"] if n["type"] == "normal"]
    if args.name:
        return f"{local}\n"
    if args.quorum:
        return f"{int(bool(status['cluster']['quorum']))}\n"
    ids = {n["name"]: i for i, n in enumerate(nodes, start=1)}
    if args.cluster_id:
        return f"{ids.get(local, 0)}\n"
    if args.name_for_id is not None:
        for name, number in ids.items():
            if str(number) == args.name_for_id:
                return f"{name}\n"
        raise ToolError(f"no node with id {args.name_for_id!r}; ids are 1..{len(ids)}", EXIT_NOSUCH)
    if args.list:
        return "".join(
            f"{ids[n['name']]} {n['name']} {'member' if n['state'] in _MEMBER_STATES else 'lost'}\n"
            for n in nodes
        )
    members = [n["name"] for n in nodes if n["state"] in _MEMBER_STATES]
    return " ".join(members) + "\n"


def entry() -> None:
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
