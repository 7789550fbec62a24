"""``hacrm stonith …``: list, show, test (never fences)."""

from __future__ import annotations

import argparse
import json

from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry


def register(registry: Registry) -> None:
    st_sub = registry.group("stonith")
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


def _stonith_test(args: argparse.Namespace, socket_path: str) -> tuple[str, int]:
    result = request(socket_path, "stonith_test", timeout_s=120.0, device=args.device, node=args.node)
    lines = [f"{step['step']}: {step['ms']} ms" for step in result["steps"]]
    verdict = "ok" if result["ok"] else f"FAILED (rc {result['rc']})"
    text = f"device {result['device']}: {verdict} in {result['duration_ms']} ms\n" + "".join(
        f"  {line}\n" for line in lines
    )
    if not result["ok"] and result.get("output"):
        text += result["output"].rstrip() + "\n"
    return text, 0 if result["ok"] else 1
