"""``crm_attribute``: query, set or delete a node attribute, promotion score or cluster property.

Which thing is meant follows Pacemaker's rules:

- ``-p``/``--promotion[=RESOURCE]``: the promotion score ``master-<resource>`` of a node
  (RESOURCE defaults to ``$OCF_RESOURCE_INSTANCE`` without its ``:N``), lifetime ``reboot``
  unless ``-l`` says otherwise;
- ``-N NODE``, ``-l LIFETIME``, ``-t nodes`` or ``-t status``: a node attribute (the local
  node without ``-N``); ``-t status`` or ``-l reboot`` is transient, otherwise permanent;
- otherwise (or ``-t crm_config``): a cluster property.

The command is ``-v VALUE`` (set), ``-D`` (delete) or ``-G`` (query, the default).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hacluster.core.attributes import LIFETIMES, promotion_attribute
from hacluster.tools.common import EXIT_NOSUCH, EXIT_USAGE, Parser, ToolError, call, resource_instance, run

PROG = "crm_attribute"
TYPES = ("nodes", "status", "crm_config", "rsc_defaults", "op_defaults", "tickets")


def parser() -> Parser:
    p = Parser(prog=PROG, description="query and update hacluster node attributes and cluster options")
    p.add_argument("-n", "--name", "--attr-name", help="the attribute or option's name")
    p.add_argument(
        "-p",
        "--promotion",
        nargs="?",
        const="",
        metavar="RESOURCE",
        help="the promotion score of RESOURCE (default: $OCF_RESOURCE_INSTANCE); lifetime reboot",
    )
    command = p.add_mutually_exclusive_group()
    command.add_argument("-v", "--update", "--attr-value", metavar="VALUE", help="set the value")
    command.add_argument("-G", "--query", "--get-value", action="store_true", help="print the value")
    command.add_argument("-D", "--delete", "--delete-attr", action="store_true", help="delete it")
    p.add_argument("-N", "--node", "-U", "--uname", help="a node attribute of NODE (default: this node)")
    p.add_argument("-l", "--lifetime", choices=LIFETIMES, help="reboot (transient) or forever (permanent)")
    p.add_argument("-t", "--type", choices=TYPES, help="nodes, status or crm_config")
    p.add_argument("-d", "--default", metavar="VALUE", help="print VALUE when the attribute is not set")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the value")
    p.add_argument("-V", "--verbose", action="count", default=0, help="accepted, no effect")
    return p


@dataclass(frozen=True, slots=True)
class Target:
    """What the options name: a node attribute (``node`` may be empty: the local one) or a property."""

    kind: str  # "node" | "property"
    name: str
    node: str = ""
    lifetime: str = "forever"

    @property
    def scope(self) -> str:
        if self.kind == "property":
            return "crm_config"
        return "status" if self.lifetime == "reboot" else "nodes"


def target_of(args: object) -> Target:
    """The thing the options name (module docstring), or a usage ``ToolError``."""
    promotion: str | None = getattr(args, "promotion", None)
    name: str | None = getattr(args, "name", None)
    node: str | None = getattr(args, "node", None)
    lifetime: str | None = getattr(args, "lifetime", None)
    kind: str | None = getattr(args, "type", None)
    if kind in ("rsc_defaults", "op_defaults", "tickets"):
        raise ToolError(
            f"-t {kind} is not supported by hacluster's crm_attribute; "
            f"edit {kind.replace('_', ' ')} with hacrm configure",
            EXIT_USAGE,
        )
    if (kind, lifetime) in (("status", "forever"), ("nodes", "reboot")):
        raise ToolError(f"-t {kind} contradicts -l {lifetime}: give one of them", EXIT_USAGE)
    if promotion is not None:
        if name:
            raise ToolError("--promotion names the attribute itself: drop -n", EXIT_USAGE)
        if kind == "crm_config":
            raise ToolError("--promotion is a node attribute: drop -t crm_config", EXIT_USAGE)
        attribute = promotion_attribute(resource_instance(promotion))
        return Target("node", attribute, node or "", lifetime or ("forever" if kind == "nodes" else "reboot"))
    if not name:
        raise ToolError("name the attribute with -n NAME (or use --promotion)", EXIT_USAGE)
    if kind == "crm_config":
        if node or lifetime:
            raise ToolError("-t crm_config is a cluster option: drop -N and -l", EXIT_USAGE)
        return Target("property", name)
    if node or lifetime or kind in ("nodes", "status"):
        return Target("node", name, node or "", lifetime or ("reboot" if kind == "status" else "forever"))
    return Target("property", name)


def main(argv: Sequence[str]) -> str:
    args = parser().parse_args(argv)
    target = target_of(args)
    if args.update is not None or args.delete:
        value = None if args.delete else args.update
        if target.kind == "property":
            call("property_update", name=target.name, value=value)
        else:
            call(
                "attribute_update", node=target.node, name=target.name, value=value, lifetime=target.lifetime
            )
        return ""
    either = args.lifetime is None and args.type is None and args.promotion is None
    return _query(target, args.default, quiet=args.quiet, either=either)


def _query(target: Target, default: str | None, *, quiet: bool, either: bool = False) -> str:
    """The value; ``either``: no lifetime was named, so the value the scheduler reads (a
    transient one over a permanent one) answers."""
    if target.kind == "property":
        value = call("property_query")["properties"].get(target.name)
        node = ""
    else:
        answer = call("attribute_query")
        node = target.node or answer["node"]
        if node not in answer["nodes"]:
            known = ", ".join(answer["nodes"])
            raise ToolError(f"no node named {node!r}; configured nodes: {known}", EXIT_NOSUCH)
        entry = answer["nodes"][node].get(target.name)
        matches = entry is not None and (either or entry["lifetime"] == target.lifetime)
        value = entry["value"] if entry is not None and matches else None
        if entry is not None and matches:
            target = Target("node", target.name, node, entry["lifetime"])
    if value is None:
        value = default
    if value is None:
        where = f" of node {node}" if node else ""
        raise ToolError(
            f"Error performing operation: No such device or address ({target.scope} attribute "
            f"{target.name}{where} is not set)",
            EXIT_NOSUCH,
        )
    if quiet:
        return f"{value}\n"
    return f"scope={target.scope}  name={target.name} value={value}\n"


def entry() -> None:
    sys.exit(run(PROG, main))


if __name__ == "__main__":
    entry()
