"""``hacrm status``."""

from __future__ import annotations

import argparse
import json

from hacluster.cli import render
from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry


def register(registry: Registry) -> None:
    status = registry.top.add_parser("status", help="nodes, links, resources and fencing at a glance")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.set_defaults(run=_status)


def _status(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    return json.dumps(doc, indent=2) + "\n" if args.json else render.status_text(doc)
