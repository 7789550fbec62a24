"""``crm_master``: a resource's promotion score, Pacemaker's deprecated wrapper of crm_attribute.

As Pacemaker's script: lifetime ``forever`` unless ``-l`` says otherwise, the resource from
``-r`` or ``$OCF_RESOURCE_INSTANCE`` (without ``:N``), the rest passed to ``crm_attribute``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hacluster.core.attributes import LIFETIMES
from hacluster.tools import crm_attribute
from hacluster.tools.common import Parser, resource_instance, run

PROG = "crm_master"


def parser() -> Parser:
    p = Parser(prog=PROG, description="query, update or delete a resource's promotion score")
    command = p.add_mutually_exclusive_group()
    command.add_argument("-v", "--update", "--attr-value", metavar="VALUE", help="set the score")
    command.add_argument("-G", "--query", "--get-value", "-Q", action="store_true", help="print it")
    command.add_argument("-D", "--delete", "--delete-attr", action="store_true", help="delete it")
    p.add_argument("-N", "--node", "-U", "--uname", help="the node (default: this node)")
    p.add_argument("-l", "--lifetime", choices=LIFETIMES, default="forever", help="default forever")
    p.add_argument("-r", "--resource", help="the resource (default: $OCF_RESOURCE_INSTANCE)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the value")
    p.add_argument("-V", "--verbose", action="count", default=0, help="accepted, no effect")
    p.add_argument("-i", "--id", "--attr-id", help="accepted, no effect (XML ids do not exist here)")
    return p


def translate(argv: Sequence[str]) -> list[str]:
    """The ``crm_attribute`` arguments this ``crm_master`` call means."""
    args = parser().parse_args(argv)
    out = ["--promotion=" + resource_instance(args.resource), "-l", args.lifetime]
    if args.node:
        out += ["-N", args.node]
    if args.update is not None:
        out += ["-v", args.update]
    elif args.delete:
        out.append("-D")
    else:
        out.append("-G")
    if args.quiet:
        out.append("-q")
    return out


def main(argv: Sequence[str]) -> str:
    return crm_attribute.main(translate(argv))


def entry() -> None:
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
