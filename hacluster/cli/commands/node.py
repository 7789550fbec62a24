"""``hacrm node …``: list, show, standby, online, maintenance, attribute, fence, fence-confirm."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hacluster.cli import render
from hacluster.cli.client import CliError, request
from hacluster.cli.commands.common import Registry, add_dry_run, change


def _one_or_all(args: argparse.Namespace, parser_name: str) -> dict[str, Any]:
    if args.all and args.node:
        raise CliError("BAD_USAGE", f"give NODE or --all, not both: hacrm node {parser_name} --all", 2)
    if not args.all and not args.node:
        raise CliError("BAD_USAGE", f"name a node or use --all: hacrm node {parser_name} NODE", 2)
    return {}


def register(registry: Registry) -> None:
    node_sub = registry.group("node")
    node_list = node_sub.add_parser("list", help="every node with its state")
    node_list.add_argument("--json", action="store_true", help="print JSON")
    node_list.set_defaults(run=_node_list)
    show = node_sub.add_parser(
        "show", help="one node: state, links with gap statistics, attributes, resources, fencing history"
    )
    show.add_argument("node", metavar="NODE")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_node_show)
    for name, value, text in (
        ("standby", "on", "move every resource off NODE and keep them off"),
        ("online", None, "let NODE run resources again (ends standby)"),
    ):
        p = node_sub.add_parser(name, help=text)
        p.add_argument("node", metavar="NODE", nargs="?", default="")
        p.add_argument("--all", action="store_true", help="every configured node")
        add_dry_run(p)
        p.set_defaults(run=_standby_runner(name, value))
    maintenance = node_sub.add_parser(
        "maintenance",
        help="NODE in maintenance: its resources keep running but are unmanaged (not stopped, "
        "started or monitored); off ends it",
    )
    maintenance.add_argument("node", metavar="NODE")
    maintenance.add_argument("state", nargs="?", choices=["on", "off"], default="on", help="default on")
    add_dry_run(maintenance)
    maintenance.set_defaults(
        run=change(
            "node_attribute",
            lambda a: {"node": a.node, "name": "maintenance", "value": "on" if a.state == "on" else None},
        )
    )
    attribute = node_sub.add_parser(
        "attribute",
        help="node attributes: NODE lists them, NODE NAME prints one, NODE NAME VALUE sets one, "
        "--delete NAME removes one; --lifetime reboot: transient (lost when NODE leaves)",
    )
    attribute.add_argument("node", metavar="NODE")
    attribute.add_argument("name", metavar="NAME", nargs="?")
    attribute.add_argument("value", metavar="VALUE", nargs="?")
    attribute.add_argument("--delete", metavar="NAME", help="remove attribute NAME")
    attribute.add_argument(
        "--lifetime",
        choices=["reboot", "forever"],
        help="forever (default when setting): kept in the configuration; reboot: transient, held by "
        "NODE until it leaves (crm_attribute -l); when reading: only that kind",
    )
    add_dry_run(attribute)
    attribute.set_defaults(run=_attribute)
    fence = node_sub.add_parser("fence", help="fence (power off/reboot) NODE now with its fence devices")
    fence.add_argument("node", metavar="NODE")
    add_dry_run(fence)
    fence.set_defaults(run=change("node_fence", lambda a: {"node": a.node}))
    confirm = node_sub.add_parser(
        "fence-confirm",
        help="tell the cluster NODE is really down (manual fencing); its resources may then move",
    )
    confirm.add_argument("node", metavar="NODE")
    confirm.add_argument("--force", action="store_true", help="confirm even though NODE looks active")
    add_dry_run(confirm)
    confirm.set_defaults(run=change("node_fence_confirm", lambda a: {"node": a.node, "force": a.force}))


def _standby_runner(name: str, value: str | None) -> Any:
    def run(args: argparse.Namespace, socket_path: str) -> str:
        _one_or_all(args, name)
        if args.all:
            nodes = [n["name"] for n in request(socket_path, "status")["nodes"] if n["type"] == "normal"]
            make = change("node_attribute", lambda _a: {"nodes": nodes, "name": "standby", "value": value})
        else:
            make = change(f"node_{name}", lambda a: {"node": a.node})
        return make(args, socket_path)

    return run


def _node_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"nodes": doc["nodes"]}, indent=2) + "\n"
    return "\n".join(render.node_table(doc["nodes"], with_links=False)) + "\n"


def _find_node(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for node in doc["nodes"]:
        if node["name"] == name:
            return dict(node)
    known = ", ".join(n["name"] for n in doc["nodes"])
    raise CliError("UNKNOWN_NODE", f"no node named {name!r}; configured nodes: {known}", 2)


def _node_show(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status_ext")
    node = _find_node(doc, args.node)
    if args.json:
        node["resources"] = [r["id"] for r in doc["resources"] if args.node in r["nodes"]]
        node["fencing"] = [e for e in doc.get("fencing") or [] if e["target"] == args.node]
        return json.dumps(node, indent=2) + "\n"
    return "\n".join(render.node_detail(doc, args.node)) + "\n"


def _attribute(args: argparse.Namespace, socket_path: str) -> str:
    if args.delete and (args.name or args.value):
        raise CliError(
            "BAD_USAGE",
            "--delete NAME takes no other NAME or VALUE: hacrm node attribute NODE --delete NAME",
            2,
        )
    if args.delete or args.value is not None:
        name = args.delete or args.name
        value = None if args.delete else args.value
        lifetime = args.lifetime or "forever"
        return change(
            "attribute_update",
            lambda a: {"node": a.node, "name": name, "value": value, "lifetime": lifetime},
        )(args, socket_path)
    if args.dry_run:
        raise CliError("BAD_USAGE", "--dry-run only applies when setting (NAME VALUE) or --delete NAME", 2)
    answer = request(socket_path, "attribute_query")
    if args.node not in answer["nodes"]:
        known = ", ".join(answer["nodes"])
        raise CliError("UNKNOWN_NODE", f"no node named {args.node!r}; configured nodes: {known}", 2)
    attributes = {
        k: e for k, e in answer["nodes"][args.node].items() if args.lifetime in (None, e["lifetime"])
    }
    kind = f"{args.lifetime} " if args.lifetime else ""
    if args.name:
        if args.name not in attributes:
            raise CliError("NO_SUCH_ATTRIBUTE", f"node {args.node} has no {kind}attribute {args.name!r}")
        return f"{attributes[args.name]['value']}\n"
    return "".join(
        f"{k}={e['value']}{'' if args.lifetime or e['lifetime'] == 'forever' else '  (reboot)'}\n"
        for k, e in sorted(attributes.items())
    )
