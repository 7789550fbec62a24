"""``hacrm configure …``: show."""

from __future__ import annotations

import argparse

from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry


def register(registry: Registry) -> None:
    cfg_sub = registry.group("configure")
    show = cfg_sub.add_parser("show", help="print the cluster configuration in crm syntax")
    show.set_defaults(run=_configure_show)


def _configure_show(_args: argparse.Namespace, socket_path: str) -> str:
    return str(request(socket_path, "configure_show")["text"])
