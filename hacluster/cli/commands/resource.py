"""``hacrm resource …``: list, start, stop, move, unmove, cleanup."""

from __future__ import annotations

import argparse
import json

from hacluster.cli import render
from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry, add_dry_run, change


def register(registry: Registry) -> None:
    rsc_sub = registry.group("resource")
    rsc_list = rsc_sub.add_parser("list", help="every resource with its state and node")
    rsc_list.add_argument("--json", action="store_true", help="print JSON")
    rsc_list.set_defaults(run=_resource_list)
    for name, command, text in (
        ("start", "resource_start", "let the cluster run ID (clears target-role=Stopped)"),
        ("stop", "resource_stop", "stop ID everywhere and keep it stopped (target-role=Stopped)"),
        ("unmove", "resource_unmove", "remove the move or pin constraint of ID"),
    ):
        p = rsc_sub.add_parser(name, help=text)
        p.add_argument("resource", metavar="ID")
        add_dry_run(p)
        p.set_defaults(run=change(command, lambda a: {"resource": a.resource}))
    mv = rsc_sub.add_parser("move", help="move ID to NODE once (use --pin to keep it there)")
    mv.add_argument("resource", metavar="ID")
    mv.add_argument("node", metavar="NODE")
    mv.add_argument("--pin", action="store_true", help="keep a named constraint (cli-prefer-ID) until unmove")
    add_dry_run(mv)
    mv.set_defaults(
        run=change("resource_move", lambda a: {"resource": a.resource, "node": a.node, "pin": a.pin})
    )
    cl = rsc_sub.add_parser("cleanup", help="forget failures of ID (all resources if omitted) and re-probe")
    cl.add_argument("resource", metavar="ID", nargs="?", default="")
    cl.add_argument("--node", default="", help="only on this node")
    add_dry_run(cl)
    cl.set_defaults(run=change("resource_cleanup", lambda a: {"resource": a.resource, "node": a.node}))


def _resource_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"resources": doc["resources"], "groups": doc["groups"]}, indent=2) + "\n"
    return "\n".join(render.resource_lines(doc)) + "\n"
