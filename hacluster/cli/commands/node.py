"""``hacrm node …``: list, standby, online, fence, fence-confirm."""

from __future__ import annotations

import argparse
import json

from hacluster.cli import render
from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry, add_dry_run, change


def register(registry: Registry) -> None:
    node_sub = registry.group("node")
    node_list = node_sub.add_parser("list", help="every node with its state")
    node_list.add_argument("--json", action="store_true", help="print JSON")
    node_list.set_defaults(run=_node_list)
    for name, command, text in (
        ("standby", "node_standby", "move every resource off NODE and keep them off"),
        ("online", "node_online", "let NODE run resources again"),
    ):
        p = node_sub.add_parser(name, help=text)
        p.add_argument("node", metavar="NODE")
        add_dry_run(p)
        p.set_defaults(run=change(command, lambda a: {"node": a.node}))
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


def _node_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"nodes": doc["nodes"]}, indent=2) + "\n"
    return "\n".join(render.node_table(doc["nodes"], with_links=False)) + "\n"
