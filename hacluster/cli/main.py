"""``hacrm`` entry point: parse, ask the daemon, render.  Exit 0 ok, 1 failure, 2 bad usage."""

from __future__ import annotations

import argparse
import importlib
import sys

from hacluster.cli.client import CliError, resolve_socket
from hacluster.cli.commands.common import Registry, Runner

COMMAND_MODULES = ("status", "node", "resource", "stonith", "configure")
"""Modules of ``hacluster.cli.commands``, in the order ``hacrm --help`` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hacrm", description="Query and operate a hacluster cluster")
    parser.add_argument(
        "--socket", "-s", help="the daemon's API socket (else $HACLUSTER_SOCKET, else api_socket of --config)"
    )
    parser.add_argument("--config", "-c", help="ha.cf whose api_socket to use")
    registry = Registry(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for name in COMMAND_MODULES:
        importlib.import_module(f"hacluster.cli.commands.{name}").register(registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        socket_path = resolve_socket(args.socket, args.config)
        sys.stdout.write(run(args, socket_path))
    except CliError as exc:
        print(f"hacrm: error [{exc.code}]: {exc}", file=sys.stderr)
        return exc.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
