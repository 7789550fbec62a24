"""``hacrm`` entry point: parse, ask the daemon, render.  Exit 0 ok, 1 failure, 2 bad usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from hacluster.cli import render
from hacluster.cli.client import CliError, request, resolve_socket


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hacrm", description="Query and operate a hacluster cluster")
    parser.add_argument("--socket", "-s", help="the daemon's API socket (else $HACLUSTER_SOCKET, else api_socket of --config)")
    parser.add_argument("--config", "-c", help="ha.cf whose api_socket to use")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = sub.add_parser("status", help="nodes, their states and links")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.set_defaults(run=_status)
    node = sub.add_parser("node", help="node commands")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")
    node_list = node_sub.add_parser("list", help="every node with its state")
    node_list.add_argument("--json", action="store_true", help="print JSON")
    node_list.set_defaults(run=_node_list)
    return parser


def _status(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    return json.dumps(doc, indent=2) + "\n" if args.json else render.status_text(doc)


def _node_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"nodes": doc["nodes"]}, indent=2) + "\n"
    return "\n".join(render.node_table(doc["nodes"], with_links=False)) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, str], str] = args.run
    try:
        socket_path = resolve_socket(args.socket, args.config)
        sys.stdout.write(run(args, socket_path))
    except CliError as exc:
        print(f"hacrm: error [{exc.code}]: {exc}", file=sys.stderr)
        return exc.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
