"""``hacrm`` entry point: parse, ask the daemon, render.

Exit 0 ok, 1 failure, 2 bad usage, 4 not allowed (the caller may not run this command).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hacluster.cli import completion
from hacluster.cli.client import CliError, resolve_socket
from hacluster.cli.commands.common import Registry, Runner

COMMAND_MODULES = (
    "status",
    "node",
    "resource",
    "stonith",
    "configure",
    "cluster",
    "heartbeat",
    "history",
    "explain",
)
"""Modules of ``hacluster.cli.commands``, in the order ``hacrm --help`` lists their commands."""

USAGE_CODES = frozenset(
    ["BAD_USAGE", "BAD_REQUEST", "BAD_SET", "UNKNOWN_NODE", "UNKNOWN_RESOURCE", "UNKNOWN_DEVICE"]
)
"""Daemon refusals that mean the command line named something wrong: exit 2, like argparse."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hacrm", description="Query and operate a hacluster cluster")
    parser.add_argument(
        "--socket", "-s", help="the daemon's API socket (else $HACLUSTER_SOCKET, else api_socket of --config)"
    )
    parser.add_argument("--config", "-c", help="ha.cf whose api_socket to use")
    registry = Registry(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for name in COMMAND_MODULES:
        importlib.import_module(f"hacluster.cli.commands.{name}").register(registry)
    completion.register(registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    """A runner returns the text to print, or ``(text, exit status)`` (``cl_status`` needs both)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--complete" in argv:
        return completion.complete_main(argv)
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        socket_path = resolve_socket(args.socket, args.config)
        out: str | tuple[str, int] = run(args, socket_path)
        text, status = out if isinstance(out, tuple) else (out, 0)
        sys.stdout.write(text)
        if status:
            return status
    except CliError as exc:
        print(f"hacrm: error [{exc.code}]: {exc}", file=sys.stderr)
        return 2 if exc.code in USAGE_CODES else exc.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
