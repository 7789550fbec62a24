"""``hacrm cluster …``: the cluster's keys, and rotating them without an outage."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hacluster.cli.client import request
from hacluster.cli.commands.common import Registry, add_dry_run
from hacluster.cli.commands.status import interval_ms
from hacluster.core.codec import AEAD_METHODS

ROTATE_ROUNDS = 4
"""The rotation waits up to ``--timeout`` for each of its four rounds (and a rollback)."""


def register(registry: Registry) -> None:
    sub = registry.group("cluster")
    keys = sub.add_parser("keys", help="the keys this node runs with and has in authkeys (no secrets)")
    keys.add_argument("--json", action="store_true", help="print JSON")
    keys.set_defaults(run=_keys)
    rotate = sub.add_parser(
        "rotate-key",
        help="make a new encryption key, give it to every member over the encrypted channel, switch to it "
        "and retire the old one; refused, with nothing changed, unless every member acknowledges",
    )
    rotate.add_argument(
        "--method", choices=AEAD_METHODS, help="cipher of the new key (default: the one in use)"
    )
    rotate.add_argument(
        "--timeout",
        type=interval_ms,
        default=5000,
        metavar="TIME",
        help="how long to wait for every member in each round (default 5s)",
    )
    rotate.add_argument(
        "--force",
        action="store_true",
        help="rotate even though a configured node is not a member (it is locked out until its authkeys "
        "is replaced by hand)",
    )
    add_dry_run(rotate)
    rotate.set_defaults(run=_rotate)


def _keys(args: argparse.Namespace, socket_path: str) -> str:
    answer = request(socket_path, "cluster_keys")
    if args.json:
        return json.dumps(answer, indent=2, sort_keys=True) + "\n"
    lines = [f"{answer['node']}: sending with key {answer['sending_slot']}"]
    lines += [_key_line(key) for key in answer["keys"]]
    if "file_problems" in answer:
        lines.append(f"{answer['file']} does not load: " + "; ".join(answer["file_problems"]))
    elif answer["file_keys"] != answer["keys"]:
        lines.append(f"{answer['file']} differs (a reload applies it):")
        lines += [_key_line(key) for key in answer["file_keys"]]
    return "\n".join(lines) + "\n"


def _key_line(key: dict[str, Any]) -> str:
    flags = ", sending" if key["sending"] else ""
    kind = "encrypts" if key["encrypts"] else "signs"
    return f"  slot {key['slot']:>2}  {key['method']:<17} {kind}{flags}  fingerprint {key['fingerprint']}"


def _rotate(args: argparse.Namespace, socket_path: str) -> str:
    timeout_s = args.timeout * (ROTATE_ROUNDS + 1) / 1000 + 10
    answer = request(
        socket_path,
        "cluster_rotate_key",
        timeout_s=timeout_s,
        method=args.method or "",
        timeout_ms=args.timeout,
        force=args.force,
        dry_run=args.dry_run,
    )
    members = ", ".join(answer["members"])
    locked = answer.get("locked_out") or []
    warning = (
        f"warning: {', '.join(locked)} {'is' if len(locked) == 1 else 'are'} locked out until their authkeys "
        "is replaced by hand\n"
        if locked
        else ""
    )
    if answer.get("dry_run"):
        return (
            f"dry run: would add key {answer['slot']} ({answer['method']}) on {members}, switch to it and "
            f"retire key {answer['retires']}; nothing changed\n{warning}"
        )
    return (
        f"done: key {answer['slot']} ({answer['method']}) is in use on {members}; key {answer['retires']} "
        f"is retired (rotation {answer['rotation']})\n{warning}"
    )
