"""Transition: from the desired placement and what nodes report, a plan that is safe *now*.

Theory of operation
-------------------
Placement says where each resource should end up.  The plan says where it may run at this
moment, and it never lets a resource be started on one node while it may still be active on
another:

- a resource reported active (or failed, or blocked, or not yet probed) on a member other
  than its target is planned *nowhere* until that node reports it stopped; only then does the
  next plan give it its target;
- active on two members at once → planned nowhere, so both stop; then it starts on one;
- a node that left the membership without a clean stop may still run what it ran: with
  ``stonith-enabled=false`` it is assumed stopped (and the risk is logged); otherwise its
  resources wait for fencing (``needs_fencing``) and are planned nowhere;
- a stop that failed (``blocked``) keeps the resource off every other node until the node is
  fenced or the operator cleans it up;
- a mandatory order ``first then``: while *first* is not planned to run, *then* is planned
  nowhere (it would be stopped anyway); the node that starts *then* waits until *first* is
  started (the local reconciler checks that).

Each node starts what the plan gives it and stops what it runs that the plan does not give
it; which makes the plan the single place where the at-most-one rule is enforced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hacluster.core.cib import ClusterConfig
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, LocalState
from hacluster.core.placement import Placement

Observed = Mapping[str, Mapping[NodeName, LocalState]]
"""Resource id → node → the state that node last reported (members and lost nodes alike)."""


@dataclass(frozen=True, slots=True)
class Plan:
    assignment: Mapping[str, NodeName | None]
    reasons: Mapping[str, str]
    needs_fencing: frozenset[NodeName]
    """Lost nodes that may still run a resource; nothing of theirs moves until they are fenced."""


def dependencies(config: ClusterConfig) -> dict[str, list[str]]:
    """Resource → resources that must be started before it (groups and mandatory orders)."""
    deps: dict[str, list[str]] = {}
    for group in config.groups:
        for before, after in zip(group.members, group.members[1:], strict=False):
            deps.setdefault(after, []).append(before)
    members_of = {g.id: list(g.members) for g in config.groups}
    for order in config.orders:
        if order.kind != "Mandatory":
            continue
        firsts = members_of.get(order.first, [order.first])
        thens = members_of.get(order.then, [order.then])
        for then in thens[:1] if order.then in members_of else thens:
            deps.setdefault(then, []).extend(firsts[-1:] if order.first in members_of else firsts)
    return deps


def make_plan(
    config: ClusterConfig,
    placement: Placement,
    observed: Observed,
    members: frozenset[NodeName],
    fenced_or_clean: frozenset[NodeName],
) -> Plan:
    """``fenced_or_clean``: lost nodes known not to run anything (fenced, or left cleanly)."""
    stonith = (config.property("stonith-enabled", "true") or "true").lower() in ("true", "yes", "on", "1")
    assignment: dict[str, NodeName | None] = {}
    reasons: dict[str, str] = {}
    needs_fencing: set[NodeName] = set()
    for rsc, target in placement.assignment.items():
        states = observed.get(rsc, {})
        holders = {n for n, s in states.items() if s in MAYBE_ACTIVE and n in members}
        lost = {
            n
            for n, s in states.items()
            if n not in members
            and n not in fenced_or_clean
            and s in MAYBE_ACTIVE
            and s is not LocalState.UNKNOWN
        }
        # A lost node that was fenced (or left cleanly) stopped everything with it.
        blocked = sorted(
            n
            for n, s in states.items()
            if s is LocalState.BLOCKED and (n in members or n not in fenced_or_clean)
        )
        if blocked:
            assignment[rsc] = None
            reasons[rsc] = f"blocked: its stop failed on {', '.join(blocked)}; fence that node or run cleanup"
            needs_fencing.update(n for n in blocked if stonith)
            continue
        if lost and stonith:
            assignment[rsc] = None
            needs_fencing.update(lost)
            reasons[rsc] = f"waiting for {', '.join(sorted(lost))} to be fenced: it may still run there"
            continue
        others = holders - {target} if target is not None else holders
        if others:
            assignment[rsc] = None
            where = ", ".join(sorted(holders))
            reasons[rsc] = (
                f"active on {where}: stopped there before it starts anywhere"
                if len(holders) > 1 or target is None
                else f"moving: stopped on {where} first, then started on {target}"
            )
            continue
        assignment[rsc] = target
        reasons[rsc] = placement.reasons.get(rsc, "")
    _stop_dependents(config, assignment, reasons)
    return Plan(assignment, reasons, frozenset(needs_fencing))


def _stop_dependents(
    config: ClusterConfig, assignment: dict[str, NodeName | None], reasons: dict[str, str]
) -> None:
    """A resource whose prerequisite is planned nowhere is planned nowhere too (transitively)."""
    deps = dependencies(config)
    changed = True
    while changed:
        changed = False
        for rsc, firsts in deps.items():
            if assignment.get(rsc) is None:
                continue
            for first in firsts:
                if first in assignment and assignment[first] is None:
                    assignment[rsc] = None
                    reasons[rsc] = f"it needs {first} first, which cannot run now ({reasons.get(first, '')})"
                    changed = True
                    break


def is_started(rsc: str, observed: Observed, members: frozenset[NodeName]) -> bool:
    """``rsc`` is reported started on one of ``members``."""
    return any(s is LocalState.STARTED and n in members for n, s in observed.get(rsc, {}).items())


def recovering(deps: Mapping[str, list[str]], observed: Observed, members: frozenset[NodeName]) -> set[str]:
    """Resources to stop because a prerequisite failed or runs nowhere (transitively).

    As Pacemaker does for a mandatory order: the dependents of a failed resource are
    stopped, it is recovered, then they start again after it.
    """

    def is_down(rsc: str) -> bool:
        states = [s for n, s in observed.get(rsc, {}).items() if n in members]
        up = (LocalState.STARTED, LocalState.STARTING, LocalState.UNKNOWN)
        return LocalState.FAILED in states or not any(s in up for s in states)

    down = {first for firsts in deps.values() for first in firsts if is_down(first)}
    stopping: set[str] = set()
    changed = True
    while changed:
        changed = False
        for then, firsts in deps.items():
            if then not in stopping and any(f in down or f in stopping for f in firsts):
                stopping.add(then)
                changed = True
    return stopping
