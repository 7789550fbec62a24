"""``hacrm history`` (the decisions this node made, with their reasons) and ``hacrm report``."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hacluster.cli.client import CliError, request
from hacluster.cli.commands.common import Registry

_AGO_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_AGO_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
TIME_HELP = "a duration back from now (30s, 10m, 2h, 1d) or an ISO time (2024-05-01T12:00, local time unless it has an offset)"


def parse_when(text: str, now_ms: int | None = None) -> int:
    """``10m`` (ago) or an ISO 8601 time, as epoch milliseconds; ``CliError`` otherwise."""
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    match = _AGO_RE.match(text.strip())
    if match:
        return now_ms - int(float(match.group(1)) * _AGO_UNIT_MS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError("BAD_TIME", f"{text!r} is not a time; expected {TIME_HELP}", 2) from None
    if when.tzinfo is None:
        when = when.astimezone()  # naive: the operator's local time
    return int(when.timestamp() * 1000)


def register(registry: Registry) -> None:
    history = registry.top.add_parser("history", help="recent decisions of this node, each with its reason")
    history.add_argument("--resource", "-r", default="", help="only events about this resource")
    history.add_argument("--node", "-n", default="", help="only events about this node")
    history.add_argument("--code", default="", help="only this code, or codes starting with it (RESOURCE)")
    history.add_argument("--since", help=f"from this time on: {TIME_HELP}")
    history.add_argument("--until", help="up to this time (same forms as --since)")
    history.add_argument("--limit", type=int, default=200, help="at most this many, the newest (0: all)")
    history.add_argument("--json", action="store_true", help="print the events as JSON")
    history.set_defaults(run=_history)
    report = registry.top.add_parser(
        "report",
        help="write a tarball for a bug report: configuration, status, history, logs; secrets hidden",
    )
    report.add_argument("--since", help=f"history from this time on: {TIME_HELP}")
    report.add_argument(
        "file",
        nargs="?",
        metavar="FILE.tar.gz",
        help="where to write it (default: hacluster-report-<time>.tar.gz)",
    )
    report.set_defaults(run=_report)


def _history(args: argparse.Namespace, socket_path: str) -> str:
    if args.limit < 0:
        raise CliError("BAD_LIMIT", f"--limit {args.limit}: expected 0 (all) or more", 2)
    query: dict[str, Any] = {
        "resource": args.resource,
        "node": args.node,
        "code": args.code,
        "limit": args.limit,
    }
    if args.since:
        query["since_ms"] = parse_when(args.since)
    if args.until:
        query["until_ms"] = parse_when(args.until)
    answer = request(socket_path, "history", **query)
    if args.json:
        return json.dumps(answer, indent=2) + "\n"
    return history_text(answer)


def history_text(answer: dict[str, Any]) -> str:
    events = answer["events"]
    if not events:
        return "no matching decisions in the history\n"
    lines = []
    for event in events:
        fields = " ".join(f"{k}={v}" for k, v in (event.get("fields") or {}).items())
        lines.append(
            f"{event['time']}  {event['level']:<8} {event['code']:<22} {event['text']}"
            + (f"  [{fields}]" if fields else "")
        )
    if answer.get("matched", len(events)) > len(events):
        lines.append(f"(showing the newest {len(events)} of {answer['matched']}; use --limit 0 for all)")
    return "\n".join(lines) + "\n"


def _report(args: argparse.Namespace, socket_path: str) -> str:
    name = args.file or f"hacluster-report-{datetime.now().strftime('%Y%m%d-%H%M%S')}.tar.gz"
    path = Path(os.path.abspath(name))
    query: dict[str, Any] = {"file": str(path)}
    if args.since:
        query["since_ms"] = parse_when(args.since)
    answer = request(socket_path, "report", timeout_s=120.0, **query)
    return (
        f"report written to {answer['path']}: {len(answer['files'])} files, {answer['bytes']} bytes, "
        f"{answer['events']} history events; secrets replaced by <redacted>\n"
    )
