"""``hacrm`` entry point: parse, ask the daemon, render.  Exit 0 ok, 1 failure, 2 bad usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from hacluster.cli import render
from hacluster.cli.client import CliError, request, resolve_socket

Runner = Callable[[argparse.Namespace, str], str]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hacrm", description="Query and operate a hacluster cluster")
    parser.add_argument(
        "--socket", "-s", help="the daemon's API socket (else $HACLUSTER_SOCKET, else api_socket of --config)"
    )
    parser.add_argument("--config", "-c", help="ha.cf whose api_socket to use")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = sub.add_parser("status", help="nodes, links and resources at a glance")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.set_defaults(run=_status)

    node = sub.add_parser("node", help="node commands: list, standby, online")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")
    node_list = node_sub.add_parser("list", help="every node with its state")
    node_list.add_argument("--json", action="store_true", help="print JSON")
    node_list.set_defaults(run=_node_list)
    for name, command, text in (
        ("standby", "node_standby", "move every resource off NODE and keep them off"),
        ("online", "node_online", "let NODE run resources again"),
    ):
        p = node_sub.add_parser(name, help=text)
        p.add_argument("node", metavar="NODE")
        p.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        p.set_defaults(run=_change(command, lambda a: {"node": a.node}))

    fence = node_sub.add_parser("fence", help="fence (power off/reboot) NODE now with its fence devices")
    fence.add_argument("node", metavar="NODE")
    fence.add_argument("--dry-run", action="store_true", help="check the request; fence nothing")
    fence.set_defaults(run=_change("node_fence", lambda a: {"node": a.node}))
    confirm = node_sub.add_parser(
        "fence-confirm",
        help="tell the cluster NODE is really down (manual fencing); its resources may then move",
    )
    confirm.add_argument("node", metavar="NODE")
    confirm.add_argument("--force", action="store_true", help="confirm even though NODE looks active")
    confirm.add_argument("--dry-run", action="store_true", help="check the request; change nothing")
    confirm.set_defaults(run=_change("node_fence_confirm", lambda a: {"node": a.node, "force": a.force}))

    stonith = sub.add_parser("stonith", help="fence devices: list, show, test")
    st_sub = stonith.add_subparsers(dest="stonith_command", required=True, metavar="STONITH_COMMAND")
    st_list = st_sub.add_parser("list", help="every configured fence device")
    st_list.add_argument("--json", action="store_true", help="print JSON")
    st_list.set_defaults(run=_stonith_list)
    st_show = st_sub.add_parser("show", help="one device's settings (secrets hidden)")
    st_show.add_argument("device", metavar="DEVICE")
    st_show.set_defaults(run=_stonith_show)
    st_test = st_sub.add_parser("test", help="run DEVICE's monitor (and status for --node): never fences")
    st_test.add_argument("device", metavar="DEVICE")
    st_test.add_argument("--node", default="", help="also ask the power state of this node's plug")
    st_test.set_defaults(run=_stonith_test)

    resource = sub.add_parser("resource", help="resource commands: list, start, stop, move, unmove, cleanup")
    rsc_sub = resource.add_subparsers(dest="resource_command", required=True, metavar="RESOURCE_COMMAND")
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
        p.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        p.set_defaults(run=_change(command, lambda a: {"resource": a.resource}))
    mv = rsc_sub.add_parser("move", help="move ID to NODE once (use --pin to keep it there)")
    mv.add_argument("resource", metavar="ID")
    mv.add_argument("node", metavar="NODE")
    mv.add_argument("--pin", action="store_true", help="keep a named constraint (cli-prefer-ID) until unmove")
    mv.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    mv.set_defaults(
        run=_change("resource_move", lambda a: {"resource": a.resource, "node": a.node, "pin": a.pin})
    )
    cl = rsc_sub.add_parser("cleanup", help="forget failures of ID (all resources if omitted) and re-probe")
    cl.add_argument("resource", metavar="ID", nargs="?", default="")
    cl.add_argument("--node", default="", help="only on this node")
    cl.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    cl.set_defaults(run=_change("resource_cleanup", lambda a: {"resource": a.resource, "node": a.node}))

    configure = sub.add_parser("configure", help="configuration commands: show")
    cfg_sub = configure.add_subparsers(dest="configure_command", required=True, metavar="CONFIGURE_COMMAND")
    show = cfg_sub.add_parser("show", help="print the cluster configuration in crm syntax")
    show.set_defaults(run=_configure_show)
    return parser


def _status(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    return json.dumps(doc, indent=2) + "\n" if args.json else render.status_text(doc)


def _node_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"nodes": doc["nodes"]}, indent=2) + "\n"
    return "\n".join(render.node_table(doc["nodes"], with_links=False)) + "\n"


def _resource_list(args: argparse.Namespace, socket_path: str) -> str:
    doc = request(socket_path, "status")
    if args.json:
        return json.dumps({"resources": doc["resources"], "groups": doc["groups"]}, indent=2) + "\n"
    return "\n".join(render.resource_lines(doc)) + "\n"


def _stonith_list(args: argparse.Namespace, socket_path: str) -> str:
    devices = request(socket_path, "stonith_list")["devices"]
    if args.json:
        return json.dumps({"devices": devices}, indent=2) + "\n"
    if not devices:
        return "no fence devices configured\n"
    return "".join(
        f"{d['id']}\t{d['agent']}\thosts: {', '.join(d['hosts']) or 'any (asks the agent)'}\n"
        for d in devices
    )


def _stonith_show(args: argparse.Namespace, socket_path: str) -> str:
    return json.dumps(request(socket_path, "stonith_show", device=args.device), indent=2) + "\n"


def _stonith_test(args: argparse.Namespace, socket_path: str) -> str:
    result = request(socket_path, "stonith_test", timeout_s=120.0, device=args.device, node=args.node)
    lines = [f"{step['step']}: {step['ms']} ms" for step in result["steps"]]
    verdict = "ok" if result["ok"] else f"FAILED (rc {result['rc']})"
    text = f"device {result['device']}: {verdict} in {result['duration_ms']} ms\n" + "".join(
        f"  {line}\n" for line in lines
    )
    if not result["ok"] and result.get("output"):
        text += result["output"].rstrip() + "\n"
    return text


def _configure_show(_args: argparse.Namespace, socket_path: str) -> str:
    return str(request(socket_path, "configure_show")["text"])


def _change(command: str, make_args: Callable[[argparse.Namespace], dict[str, Any]]) -> Runner:
    def run(args: argparse.Namespace, socket_path: str) -> str:
        answer = request(socket_path, command, dry_run=args.dry_run, **make_args(args))
        if answer.get("dry_run"):
            return f"dry run: nothing changed (configuration would go from epoch {answer.get('epoch')} to {answer.get('would_be_epoch', answer.get('epoch'))})\n"
        if "epoch" in answer:
            return f"done: configuration epoch {answer['epoch']}\n"
        return "done\n"

    return run


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
