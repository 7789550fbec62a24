"""The fault campaign's audits that read the daemons: convergence and the daemon logs.  Pure.

    problems = convergence_problems(views, expected)   # [] once the cluster has converged
    findings = scan_log(text, node="n1")               # tracebacks, decisions without a reason

The journal audit (what the resources themselves wrote) is tests/integration/journal_audit.py.

Convergence
-----------
The cluster has converged when every node that should be up answers and is ``active``; each
sees exactly the expected nodes active and the others dead; all agree on one DC, the
lowest-named member; each has quorum, no operation in flight and nobody waiting to be
fenced; every resource is ``started`` on one node, the same node in every view; resources
that belong together (a group, a colocation) run on one node, and none on a node in standby;
and the two resource-side
witnesses agree: the journal shows exactly one active copy of each journaled resource, on
that node, and the VIP is configured on that node alone.

Logs
----
A daemon log line of a decision ends ``[CODE field=value …]`` (the core's ``Notice``,
rendered by the shell).  ``REASONS`` maps each decision code to the pattern its sentence must
match to carry a reason: ``n2 is dead: no heartbeat for 1012 ms > deadtime 1000 ms`` has one,
``n2 is dead:`` has not.  ``PLAN`` lines are checked entry by entry (``vip -> n2 (why)``); a
failed or blocked resource result must say what failed and what follows.  A notice with an
empty sentence, or a reason that reads ``None``, is flagged whatever its code.  Any Python
traceback is a finding of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# --- convergence -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    names: tuple[str, ...]
    up: frozenset[str]
    resources: tuple[str, ...]
    together: tuple[tuple[str, ...], ...] = ()
    journaled: frozenset[str] = frozenset()
    vip: tuple[str, str] | None = None
    """(resource id, address)."""
    avoid: frozenset[str] = frozenset()
    """Nodes where nothing may run (in standby)."""


def convergence_problems(
    views: Mapping[str, Mapping[str, Any] | None],
    expected: Expected,
    *,
    journal_copies: Mapping[str, Sequence[str]] | None = None,
    vip_holders: Iterable[str] | None = None,
) -> list[str]:
    """Why the cluster has not converged yet; empty when it has.  ``views``: node → status."""
    problems: list[str] = []
    docs: dict[str, Mapping[str, Any]] = {}
    for node in sorted(expected.up):
        doc = views.get(node)
        if doc is None:
            problems.append(f"{node} does not answer")
        elif doc["cluster"]["state"] != "active":
            problems.append(f"{node} is {doc['cluster']['state']}, not active")
        else:
            docs[node] = doc
    if problems:
        return problems
    want_dc = min(expected.up)
    dcs = {node: doc["cluster"]["dc"] for node, doc in docs.items()}
    if set(dcs.values()) != {want_dc}:
        problems.append(f"DC views {_show(dcs)}, expected {want_dc} (the lowest-named member)")
    for observer, doc in sorted(docs.items()):
        states = {entry["name"]: entry["state"] for entry in doc["nodes"] if entry.get("type") != "ping"}
        wrong = {
            node: states.get(node)
            for node in expected.names
            if (states.get(node) == "active") != (node in expected.up)
        }
        if wrong:
            problems.append(
                f"{observer} sees {_show(wrong)}; expected active: {','.join(sorted(expected.up))}"
            )
        if not doc["cluster"]["quorum"]:
            problems.append(f"{observer} has no quorum")
        if doc["pending"]:
            problems.append(f"{observer} has operations in flight on {','.join(doc['pending'])}")
        if doc["fencing_pending"]:
            problems.append(f"{observer} waits to fence {_show(doc['fencing_pending'])}")
    problems += _resource_problems(docs, expected)
    where = _placement(docs, expected)
    if journal_copies is not None:
        for rsc in sorted(expected.journaled):
            copies = sorted(journal_copies.get(rsc, []))
            if rsc in where and copies != [where[rsc]]:
                problems.append(f"journal: {rsc} active on {copies or 'no node'}, status says {where[rsc]}")
    if expected.vip is not None and vip_holders is not None:
        rsc, address = expected.vip
        holders = sorted(vip_holders)
        if rsc in where and holders != [where[rsc]]:
            problems.append(f"VIP {address} configured on {holders or 'no node'}, status says {where[rsc]}")
    return problems


def _resource_problems(docs: Mapping[str, Mapping[str, Any]], expected: Expected) -> list[str]:
    # CLONES: a clone is started on up to clone-max nodes ("node" is a list) and a promotable
    # clone reports its roles; check those counts here, once the status document has them.
    problems = []
    for rsc in expected.resources:
        seen: dict[str, str] = {}
        for observer, doc in sorted(docs.items()):
            entry = next((r for r in doc["resources"] if r["id"] == rsc), None)
            if entry is None:
                problems.append(f"{observer} does not know {rsc}")
            elif entry["state"] != "started" or not isinstance(entry["node"], str):
                problems.append(
                    f"{observer} sees {rsc} {entry['state']} on {entry['node']} ({entry['reason']})"
                )
            elif entry["node"] not in expected.up:
                problems.append(f"{observer} sees {rsc} started on {entry['node']}, which should be down")
            elif entry["node"] in expected.avoid:
                problems.append(f"{observer} sees {rsc} started on {entry['node']}, which is in standby")
            else:
                seen[observer] = entry["node"]
        if len(set(seen.values())) > 1:
            problems.append(f"views disagree where {rsc} runs: {_show(seen)}")
    where = _placement(docs, expected)
    for group in expected.together:
        nodes = {rsc: where.get(rsc) for rsc in group}
        if len(set(nodes.values())) > 1:
            problems.append(f"{'+'.join(group)} belong together but run on {_show(nodes)}")
    return problems


def _placement(docs: Mapping[str, Mapping[str, Any]], expected: Expected) -> dict[str, str]:
    """rsc → node where every view agrees it is started."""
    where: dict[str, str] = {}
    for rsc in expected.resources:
        nodes = set()
        for doc in docs.values():
            entry = next((r for r in doc["resources"] if r["id"] == rsc), None)
            nodes.add(entry["node"] if entry is not None and entry["state"] == "started" else None)
        if len(nodes) == 1 and isinstance(node := next(iter(nodes)), str):
            where[rsc] = node
    return where


def _show(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(mapping.items()))


# --- logs ----------------------------------------------------------------------------------------

LINE: Final = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<node>\S+) (?P<logger>\S+)\[(?P<pid>\d+)\] "
    r"(?P<level>[A-Z]+): (?P<text>.*?) ?\[(?P<code>[A-Z][A-Z0-9_]+)(?P<fields>(?: [^\]]*)?)\]$"
)
_HAS_COLON_REASON = r": \S"
_HAS_PAREN_REASON = r"\(\s*\S[^)]*\)"
REASONS: Final[dict[str, str]] = {
    "DC_CHANGED": r"\(\s*\S[^)]*\)|until \S",
    "NODE_DEAD": _HAS_COLON_REASON,
    "NODE_STATE": _HAS_COLON_REASON,
    "OWN_STATE": _HAS_COLON_REASON,
    "FENCING_REQUESTED": _HAS_PAREN_REASON,
    "FENCING_IMPOSSIBLE": _HAS_PAREN_REASON,
    "FENCING_FAILED": _HAS_PAREN_REASON,
    "FENCING_CANCELLED": _HAS_COLON_REASON,
    "FENCE_DEVICE_FAILED": _HAS_COLON_REASON,
    "NODE_FENCED": _HAS_PAREN_REASON,
    "NODE_SUSPECT": _HAS_COLON_REASON,
    "NODE_WAS_FROZEN": _HAS_COLON_REASON,
    "NODE_LEAVING": _HAS_COLON_REASON,
    "NODE_KNOWN_DOWN": _HAS_COLON_REASON,
    "LEAVE_INCOMPLETE": r"\(stop failed\)|after \d+ ms",
    "MOVE_DONE": _HAS_COLON_REASON,
    "CONFIG_REJECTED": _HAS_COLON_REASON,
    "CONFIG_CONFLICT": _HAS_COLON_REASON,
}
FAILED_RESULT: Final = re.compile(r"(failed|blocked)\b.*, \S.*; \S")
PLAN_ENTRY: Final = re.compile(r"^(?P<rsc>\S+) -> (?P<target>\S+) \((?P<reason>.*)\)$")
EMPTY_REASON: Final = re.compile(r"(: |\()(None|null)?\s*(\)|$)")
TRACEBACK: Final = "Traceback (most recent call last)"
TRACEBACK_LINES_MAX = 30


@dataclass(frozen=True, slots=True)
class LogFinding:
    node: str
    kind: str
    """``traceback`` or ``no-reason``."""
    line: str
    detail: str = ""

    def render(self) -> str:
        return f"{self.kind} in {self.node}'s log: {self.detail or self.line}" + (
            f"\n    {self.line}" if self.detail else ""
        )


def scan_log(text: str, node: str) -> list[LogFinding]:
    """Tracebacks and decisions without a reason in a stretch of one daemon's log."""
    findings = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if TRACEBACK in line:
            block = lines[i : i + TRACEBACK_LINES_MAX]
            end = next(
                (j for j, x in enumerate(block[1:], 1) if not x.startswith((" ", "\t"))), len(block) - 1
            )
            findings.append(LogFinding(node, "traceback", line, "\n    ".join(block[: end + 1])))
            continue
        match = LINE.match(line)
        if match is None:
            continue
        problem = _reason_problem(match["code"], match["text"], match["fields"])
        if problem:
            findings.append(LogFinding(node, "no-reason", line, problem))
    return findings


def _reason_problem(code: str, text: str, fields: str) -> str:
    if not text.strip():
        return f"{code} with no sentence at all"
    if code == "PLAN":
        _, _, entries = text.partition(": ")
        for entry in entries.split("; "):
            if entry == "no resources":
                continue
            match = PLAN_ENTRY.match(entry)
            if match is None or not match["reason"].strip() or match["reason"].strip() in ("None", "null"):
                return f"plan entry without a reason: {entry!r}"
        return ""
    if code.startswith("RESOURCE_") and re.search(r"\bstate=(failed|blocked)\b", fields):
        return "" if FAILED_RESULT.search(text) else "a failed operation without what failed and what follows"
    pattern = REASONS.get(code)
    if pattern is not None and not re.search(pattern, text):
        return f"{code} without its reason"
    if pattern is not None and EMPTY_REASON.search(text):
        return f"{code} with an empty reason"
    return ""
