"""Transition: from the desired placement and what nodes report, a plan that is safe *now*.

Theory of operation
-------------------
Placement says where each resource should end up.  The plan says where it may run at this
moment, and it never lets a resource be started on one node while it may still be active on
another:

- a resource reported active (or failed, or blocked, or not yet probed) on a member other
  than its target is planned *nowhere* until that node reports it stopped; only then does the
  next plan give it its target;
- active on two members at once → what ``multiple-active`` says (Pacemaker's meaning):
  ``stop_start`` (the default) and ``stop_only`` plan it nowhere, so every copy stops (then
  ``stop_start`` starts it on one node; for ``stop_only`` the DC also sets its target-role to
  Stopped, ``dc.follow_up_edits``); ``stop_unexpected`` keeps the copy on its target and
  stops the others; ``block`` leaves every copy alone (``Plan.held``) until an operator
  has stopped all but one;
- a node that left the membership without a clean stop may still run what it ran: with
  ``stonith-enabled=false`` it is assumed stopped (and the risk is logged); otherwise its
  resources wait for fencing (``needs_fencing``) and are planned nowhere;
- a stop that failed (``blocked``) keeps the resource off every other node until the node is
  fenced or the operator cleans it up;
- a mandatory order ``first then``: while *first* is not planned to run, *then* is planned
  nowhere (it would be stopped anyway); the node that starts *then* waits until *first* is
  started (``reconcile.py`` checks that).

Promotable clones: the plan promotes an instance only where placement promotes it *and*
the promotion keeps the clone within ``promoted-max`` counting every instance that may be
promoted now: reported Promoted (or failed while promoted, or its promote or demote failed)
on a member, or on a lost node not yet fenced (``_cap_promotions``).  So a promotion waits
for the old promoted instance's demote (or stop, or fencing) to be reported; with the
DC's hold while a node awaits fencing (``dc._hold_starts``), never more than
``promoted-max`` instances are promoted anywhere, whatever partitions and crashes happen.

Each node starts what the plan gives it and stops what it runs that the plan does not give
it; which makes the plan the single place where the at-most-one rule is enforced.
"""

from __future__ import annotations

from collections.abc import Mapping

from hacluster.core.cib import ClusterConfig, instance_index
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, LocalState
from hacluster.core.orders import dependencies
from hacluster.core.placement import Placement, clone_prerequisite_unmet
from hacluster.core.plan import Plan, Reason, ReasonCode, Role

Observed = Mapping[str, Mapping[NodeName, LocalState]]
"""Resource id → node → the state that node last reported (members and lost nodes alike)."""


def make_plan(
    config: ClusterConfig,
    placement: Placement,
    observed: Observed,
    members: frozenset[NodeName],
    fenced_or_clean: frozenset[NodeName],
    roles: Mapping[str, Mapping[NodeName, Role]] | None = None,
    node_count: int = 0,
) -> Plan:
    """``fenced_or_clean``: lost nodes known not to run anything (fenced, or left cleanly)."""
    stonith = config.is_stonith_enabled()
    assignment: dict[str, NodeName | None] = {}
    reasons: dict[str, Reason] = {}
    needs_fencing: set[NodeName] = set()
    held: set[str] = set()
    for rsc, target in placement.assignment.items():
        states = observed.get(rsc, {})
        unsafe = _unsafe_anywhere(states, members, fenced_or_clean, stonith)
        if unsafe is not None:
            assignment[rsc], (reasons[rsc], must_fence) = None, unsafe
            needs_fencing |= must_fence
            continue
        holders = {n for n, s in states.items() if s in MAYBE_ACTIVE and n in members}
        if not (holders - {target} if target is not None else holders):
            assignment[rsc], reasons[rsc] = target, placement.reasons[rsc]
            continue
        assignment[rsc], reasons[rsc] = _active_elsewhere(config, rsc, target, states, holders)
        if reasons[rsc].code is ReasonCode.MULTIPLE_ACTIVE_BLOCKED:
            held.add(rsc)
    planned_roles = _cap_promotions(
        config, placement.roles, assignment, observed, roles or {}, members, fenced_or_clean
    )
    _stop_dependents(config, assignment, reasons, held, planned_roles, node_count)
    return Plan(assignment, reasons, frozenset(needs_fencing), frozenset(held), planned_roles)


def possibly_promoted(
    observed: Observed,
    roles: Mapping[str, Mapping[NodeName, Role]],
    rsc: str,
    members: frozenset[NodeName],
    fenced_or_clean: frozenset[NodeName],
) -> set[NodeName]:
    """Nodes where instance ``rsc`` may be promoted now: reported Promoted and possibly
    active, on a member or on a lost node that is neither fenced nor known clean."""
    out = set()
    for node, role in roles.get(rsc, {}).items():
        state = observed.get(rsc, {}).get(node)
        if role is not Role.PROMOTED or state not in MAYBE_ACTIVE:
            continue
        if node in members or node not in fenced_or_clean:
            out.add(node)
    return out


def _cap_promotions(
    config: ClusterConfig,
    wanted: Mapping[str, Role],
    assignment: Mapping[str, NodeName | None],
    observed: Observed,
    roles: Mapping[str, Mapping[NodeName, Role]],
    members: frozenset[NodeName],
    fenced_or_clean: frozenset[NodeName],
) -> dict[str, Role]:
    """The roles the plan gives: placement's, a promotion kept only while the clone stays
    within promoted-max counting what may be promoted now (module docstring)."""
    out: dict[str, Role] = {}
    by_clone: dict[str, list[str]] = {}
    for rsc in assignment:
        clone = config.clone_of(rsc)
        if clone is not None and config.is_promotable(rsc) and instance_index(rsc) is not None:
            by_clone.setdefault(clone.id, []).append(rsc)
    for clone_id, instances in by_clone.items():
        limit = config.clone_settings(clone_id, 0).promoted_max
        promoted_now = {
            rsc: possibly_promoted(observed, roles, rsc, members, fenced_or_clean) for rsc in instances
        }
        kept = [
            r
            for r in instances
            if wanted.get(r) is Role.PROMOTED
            and assignment[r] is not None
            and assignment[r] in promoted_now[r]
        ]
        others = {instance_index(r) for r in instances if promoted_now[r] and r not in kept}
        slots = limit - len({instance_index(r) for r in kept}) - len(others)
        granted: set[int | None] = {instance_index(r) for r in kept}
        for rsc in instances:
            target = assignment[rsc]
            if target is None:
                continue
            index = instance_index(rsc)
            if wanted.get(rsc) is not Role.PROMOTED:
                out[rsc] = Role.UNPROMOTED
            elif index in granted:
                out[rsc] = Role.PROMOTED
            elif slots > 0 and not promoted_now[rsc] - {target}:
                granted.add(index)
                slots -= 1
                out[rsc] = Role.PROMOTED
            else:
                out[rsc] = Role.UNPROMOTED  # demoted elsewhere first: then the next plan promotes
    return out


def _unsafe_anywhere(
    states: Mapping[NodeName, LocalState],
    members: frozenset[NodeName],
    fenced_or_clean: frozenset[NodeName],
    stonith: bool,
) -> tuple[Reason, set[NodeName]] | None:
    """A failed stop, or a lost node that may still run it: it runs nowhere now, and which
    nodes must be fenced first."""
    # A lost node that was fenced (or left cleanly) stopped everything with it.
    blocked = tuple(
        sorted(
            n
            for n, s in states.items()
            if s is LocalState.BLOCKED and (n in members or n not in fenced_or_clean)
        )
    )
    if blocked:
        text = f"blocked: its stop failed on {', '.join(blocked)}; fence that node or run cleanup"
        return Reason(ReasonCode.BLOCKED, text, nodes=blocked), set(blocked) if stonith else set()
    lost = tuple(
        sorted(
            n
            for n, s in states.items()
            if n not in members
            and n not in fenced_or_clean
            and s in MAYBE_ACTIVE
            and s is not LocalState.UNKNOWN
        )
    )
    if lost and stonith:
        text = f"waiting for {', '.join(lost)} to be fenced: it may still run there"
        return Reason(ReasonCode.AWAITING_FENCE, text, nodes=lost), set(lost)
    return None


def _active_elsewhere(
    config: ClusterConfig,
    rsc: str,
    target: NodeName | None,
    states: Mapping[NodeName, LocalState],
    holders: set[NodeName],
) -> tuple[NodeName | None, Reason]:
    """Active on a member other than its target: stopped there before it starts anywhere,
    or, active on several at once, what ``multiple-active`` says."""
    running = tuple(sorted(n for n in holders if states[n] is not LocalState.UNKNOWN))
    policy = config.multiple_active_of(rsc) if len(running) > 1 else "stop_start"
    if policy == "block":
        text = (
            f"active on {', '.join(running)} at once and left alone (multiple-active=block): stop all "
            f"copies but one by hand, then run `hacrm resource cleanup {rsc}`"
        )
        return None, Reason(ReasonCode.MULTIPLE_ACTIVE_BLOCKED, text, nodes=running)
    if policy == "stop_unexpected" and target in holders:
        extra = tuple(sorted(holders - {target}))
        text = (
            f"active on {', '.join(running)} at once: stopped on {', '.join(extra)}, kept on {target} "
            "(multiple-active=stop_unexpected)"
        )
        return target, Reason(ReasonCode.STOPPING_UNEXPECTED, text, nodes=extra)
    where = tuple(sorted(holders))
    if len(holders) > 1 or target is None:
        text = f"active on {', '.join(where)}: stopped there before it starts anywhere"
        return None, Reason(ReasonCode.ACTIVE_ELSEWHERE, text, nodes=where)
    text = f"moving: stopped on {', '.join(where)} first, then started on {target}"
    return None, Reason(ReasonCode.MOVING, text, nodes=where)


def _stop_dependents(
    config: ClusterConfig,
    assignment: dict[str, NodeName | None],
    reasons: dict[str, Reason],
    held: set[str],
    roles: Mapping[str, Role],
    node_count: int,
) -> None:
    """A resource whose prerequisite is planned nowhere (for a clone: no instance, or none
    promoted) is planned nowhere too (transitively).

    A held prerequisite (multiple-active=block) keeps running where it is: what needs it
    may keep running too.
    """
    deps = dependencies(config, node_count)
    changed = True
    while changed:
        changed = False
        for rsc, firsts in deps.items():
            if assignment.get(rsc) is None:
                continue
            for first in firsts:
                unmet = clone_prerequisite_unmet(config, first, assignment, roles, reasons)
                if unmet is not None:
                    assignment[rsc] = None
                    reasons[rsc] = Reason(
                        ReasonCode.NEEDS_FIRST,
                        f"it needs {first} first, which cannot run now ({unmet.text})",
                        first=first,
                        cause=unmet,
                    )
                    changed = True
                    break
                if first in assignment and assignment[first] is None and first not in held:
                    assignment[rsc] = None
                    cause = reasons[first]
                    reasons[rsc] = Reason(
                        ReasonCode.NEEDS_FIRST,
                        f"it needs {first} first, which cannot run now ({cause.text})",
                        first=first,
                        cause=cause,
                    )
                    changed = True
                    break
