"""Why: where a resource runs, or the one concrete thing that keeps it from running.  Pure.

Theory of operation
-------------------
``why`` runs the DC's own ``dc.placement_and_plan`` on a ``ClusterSnapshot`` and names the
one blocker that keeps a resource from running (or says where it runs).  It reads the
reasons placement and the plan give as data (``Reason.code``, ``per_node``), and adds
what they cannot know: when a fail count expires, which node a fence is pending for, what
command clears it.  It decides nothing itself.  What the cluster would *do* next is
``simulate.predict``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hacluster.core.cib import INFINITY, ClusterConfig, format_time_ms
from hacluster.core.dc import placement_and_plan
from hacluster.core.fence_devices import levels_for
from hacluster.core.fencing import may_fence
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, RC_NAMES, LocalState
from hacluster.core.orders import dependencies
from hacluster.core.placement import Placement, is_banned_by_failures, node_unavailable_reason
from hacluster.core.plan import Plan, ReasonCode
from hacluster.core.reconcile import recovering_set
from hacluster.core.simulate import fenceable_targets
from hacluster.core.snapshot import ClusterSnapshot, Failure

_HELD = MAYBE_ACTIVE - {LocalState.UNKNOWN}


@dataclass(slots=True)
class _Why:
    snapshot: ClusterSnapshot
    placement: Placement
    plan: Plan
    deps: dict[str, list[str]]


def why(snapshot: ClusterSnapshot, rsc: str) -> str:
    """One sentence: where ``rsc`` runs, or the concrete thing that keeps it from running.

    ``rsc`` may be a primitive or a group.  Raises ``ValueError`` for an unknown id.
    """
    config = snapshot.config
    ids = snapshot.managed_ids()
    groups = {g.id: g for g in config.groups}
    if rsc not in ids and rsc not in groups:
        known = ", ".join([*ids, *groups]) or "none"
        raise ValueError(f"no resource or group named {rsc!r}; known: {known}")
    placement, plan = placement_and_plan(snapshot)
    ctx = _Why(snapshot, placement, plan, dependencies(config, len(snapshot.nodes)))
    if rsc in groups:
        members = groups[rsc].members
        where = {n for m in members for n in _running(ctx, m)}
        if len(where) == 1 and all(_running(ctx, m) == list(where) for m in members):
            node = next(iter(where))
            if all(plan.assignment.get(m) == node for m in members):
                return f"group {rsc} runs on {node}: nothing blocks it ({placement.reasons[members[0]].text})"
        first = next(
            (m for m in members if _running(ctx, m) == [] or plan.assignment.get(m) is None), members[0]
        )
        return f"group {rsc}: " + _sentence(ctx, first)
    return _sentence(ctx, rsc)


def _running(ctx: _Why, rsc: str) -> list[NodeName]:
    states = ctx.snapshot.observed.get(rsc, {})
    return sorted(n for n, s in states.items() if s is LocalState.STARTED and n in ctx.snapshot.members)


def _sentence(ctx: _Why, rsc: str) -> str:
    config = ctx.snapshot.config
    running = _running(ctx, rsc)
    target = ctx.plan.assignment.get(rsc)
    if config.is_maintenance_mode():
        where = f"runs on {', '.join(running)}" if running else "is not running"
        return f"{rsc} {where} and stays so: maintenance-mode is on, so the cluster neither starts, stops nor monitors it"
    if config.is_resource_in_maintenance(rsc):
        where = f"runs on {', '.join(running)}" if running else "is not running"
        return f"{rsc} {where} and stays so: it is in maintenance (meta maintenance=true), so the cluster neither starts, stops nor monitors it"
    if not config.is_managed(rsc):
        where = f"runs on {', '.join(running)}" if running else "is not running"
        return f"{rsc} {where} and stays so: it is unmanaged (is-managed=false)"
    if ctx.plan.held and rsc in ctx.plan.held:
        return f"{rsc} {ctx.plan.reasons[rsc].text}"
    if running == [target] and target is not None and not _failed_on(ctx, rsc):
        fencing = fenceable_targets(ctx.snapshot)
        if target in fencing:
            return (
                f"{rsc} runs on {target}, but {target} is about to be fenced ({fencing[target]}); "
                "it then starts where placement allows"
            )
        down = _down_prerequisite(ctx, rsc, frozenset())
        if down is not None:
            first, clause = down
            return f"{rsc} runs on {target} but is stopped and started again after {first} recovers: {clause}"
        return f"{rsc} runs on {target}: nothing blocks it ({ctx.placement.reasons[rsc].text})"
    clause = _blocker(ctx, rsc, frozenset())
    if running:
        return f"{rsc} runs on {', '.join(running)} but {clause}"
    states = ctx.snapshot.observed.get(rsc, {})
    starting = sorted(n for n, s in states.items() if s is LocalState.STARTING and n in ctx.snapshot.members)
    if starting:
        return f"{rsc} is starting on {', '.join(starting)}"
    return f"{rsc} is not running: {clause}"


def _down_prerequisite(ctx: _Why, rsc: str, seen: frozenset[str]) -> tuple[str, str] | None:
    """The prerequisite (transitively) that failed, which makes the reconciler restart ``rsc``."""
    if rsc not in recovering_set(ctx.snapshot, ctx.deps):
        return None
    for first in ctx.deps.get(rsc, []):
        if first in seen:
            continue
        failed = _failed_on(ctx, first)
        if failed:
            detail = _failure_text(ctx.snapshot.failures.get((first, failed[0])))
            return first, f"{first} failed on {failed[0]}{detail}"
        if not _running(ctx, first):
            return first, f"{first} is not running ({_blocker(ctx, first, seen | {rsc})})"
        deeper = _down_prerequisite(ctx, first, seen | {rsc})
        if deeper is not None:
            return deeper
    return None


def _failed_on(ctx: _Why, rsc: str) -> list[NodeName]:
    states = ctx.snapshot.observed.get(rsc, {})
    return sorted(n for n, s in states.items() if s is LocalState.FAILED and n in ctx.snapshot.members)


def _blocker(ctx: _Why, rsc: str, seen: frozenset[str]) -> str:
    """A clause naming what keeps ``rsc`` from running where the plan wants it."""
    snap = ctx.snapshot
    config = snap.config
    states = snap.observed.get(rsc, {})
    reason = ctx.plan.reasons[rsc]
    target = ctx.plan.assignment.get(rsc)
    blocked = sorted(n for n, s in states.items() if s is LocalState.BLOCKED)
    if blocked:
        node = blocked[0]
        return (
            f"it is blocked by a failed stop on {node}: it stays off every other node until {node} is fenced"
            f"{_fence_state(ctx, node)} or you run `hacrm resource cleanup {rsc} --node {node}`"
        )
    trusted = snap.fenced | snap.clean_exits
    lost = sorted(
        n
        for n, s in states.items()
        if n not in snap.members and n not in trusted and s in _HELD and snap.must_fence()
    )
    if lost:
        node = lost[0]
        return f"it is waiting for {node} to be fenced, since it may still run there{_fence_state(ctx, node)}"
    failed = _failed_on(ctx, rsc)
    if failed:
        node = failed[0]
        detail = _failure_text(snap.failures.get((rsc, node)))
        goal = ctx.placement.assignment.get(rsc)
        after = "kept stopped" if goal is None else f"started {'again ' if goal == node else ''}on {goal}"
        return f"it failed on {node}{detail} and is being recovered: stopped there first, then {after}"
    if config.is_stonith_enabled() and not snap.devices():
        return (
            "stonith-enabled=true but no fence device is configured; configure a stonith device "
            "or set property stonith-enabled=false"
        )
    if config.target_role_of(rsc) == "Stopped":
        return f"its target-role is Stopped; run `hacrm resource start {rsc}`"
    group = config.group_of(rsc)
    if group is not None and config.target_role_of(group.id) == "Stopped":
        return f"the target-role of its group {group.id} is Stopped; run `hacrm resource start {group.id}`"
    if reason.code is ReasonCode.FOLLOWS_STOPPED:
        return reason.text
    if rsc in snap.banned_everywhere or any(m in snap.banned_everywhere for m in _unit_members(config, rsc)):
        return f"{reason.text}; fix the configuration, then run `hacrm resource cleanup {rsc}`"
    if not snap.has_quorum and ctx.placement.reasons[rsc].code is ReasonCode.NO_QUORUM:
        policy = config.no_quorum_policy()
        return (
            f"this partition has no quorum ({len(snap.members)} of {len(snap.nodes)} nodes are members) "
            f"and no-quorum-policy={policy}"
        )
    for first in ctx.deps.get(rsc, []):
        if first in seen or ctx.plan.assignment.get(first) is not None:
            continue
        how = f"group {group.id}" if group is not None and first in group.members else "a mandatory order"
        inner = _blocker(ctx, first, seen | {rsc})
        return f"it needs {first} first ({how}), and {first} cannot run: {inner}"
    if target is None and ctx.placement.assignment.get(rsc) is None:
        return _no_node(ctx, rsc)
    if target is None:
        return reason.text or "the plan gives it no node"
    if snap.dc is None and snap.node is not None:
        return (
            f"it would go to {target}, but there is no designated coordinator yet ({snap.node} is not an "
            "active member), so there is no plan to start it"
        )
    waiting = [first for first in ctx.deps.get(rsc, []) if not _running(ctx, first)]
    if waiting:
        return f"it is about to start on {target} once {', '.join(waiting)} has started"
    return f"it is about to start on {target} ({ctx.placement.reasons[rsc].text})"


def _unit_members(config: ClusterConfig, rsc: str) -> tuple[str, ...]:
    group = config.group_of(rsc)
    return group.members if group is not None else (rsc,)


def _unit_id(config: ClusterConfig, rsc: str) -> str:
    group = config.group_of(rsc)
    return group.id if group is not None else rsc


def _fence_state(ctx: _Why, node: NodeName) -> str:
    snap = ctx.snapshot
    if node in snap.fence_pending:
        return f" ({snap.fence_pending[node]})"
    if not snap.must_fence():
        return ""
    if not may_fence(snap):
        return " (fencing waits for quorum, which this partition lacks)"
    if not levels_for(snap.config, snap.devices(), node):
        return f" (no fence device can fence {node}; configure one, or run `hacrm node fence-confirm {node}` once it is off)"
    return ""


def _failure_text(failure: Failure | None) -> str:
    if failure is None:
        return ""
    rc = "" if failure.rc is None else f" rc {failure.rc} '{RC_NAMES.get(failure.rc, 'unknown')}'"
    why = f": {failure.reason}" if failure.reason else ""
    return f" ({failure.op}{rc}{why})"


def _no_node(ctx: _Why, rsc: str) -> str:
    """Each node's blocker, from placement's own per-node reasons plus fail-count details."""
    snap = ctx.snapshot
    config = snap.config
    online = snap.online
    placed = ctx.placement.reasons[rsc]
    listed = dict(placed.per_node) if placed.code is ReasonCode.NO_NODE else {}
    scores = ctx.placement.scores.get(_unit_id(config, rsc), {})
    parts = []
    for node in snap.nodes:
        unavailable = node_unavailable_reason(config, node, online)
        failure = next(
            (_fail_clause(ctx, m, node) for m in _unit_members(config, rsc) if _fail_clause(ctx, m, node)),
            None,
        )
        if unavailable:
            parts.append(f"{node} is {unavailable}")
        elif failure:
            parts.append(f"{node}: {failure}")
        elif node in listed:
            parts.append(f"{node}: {listed[node]}")
        else:
            parts.append(f"{node}: score {scores.get(node, 0)}")
    return "no node can run it (" + "; ".join(parts) + ")"


def _fail_clause(ctx: _Why, rsc: str, node: NodeName) -> str | None:
    snap = ctx.snapshot
    config = snap.config
    count = snap.failcounts.get((rsc, node), 0)
    threshold = config.migration_threshold_of(rsc)
    if not is_banned_by_failures(count, threshold):
        return None
    failure = snap.failures.get((rsc, node))
    timeout_ms = config.failure_timeout_ms_of(rsc)
    if timeout_ms <= 0:
        expiry = "it never expires (no failure-timeout)"
    elif failure is not None and failure.last_failure_ms is not None and snap.now_ms is not None:
        left_ms = max(0, failure.last_failure_ms + timeout_ms - snap.now_ms)
        expiry = f"it expires in {format_time_ms(left_ms - left_ms % 1000)}"
    else:
        expiry = f"it expires {format_time_ms(timeout_ms)} after the last failure"
    fix = f"`hacrm resource cleanup {rsc} --node {node}`"
    if failure is not None and failure.op in ("start", "probe") and count >= INFINITY:
        verb = "failed to start" if failure.op == "start" else "failed its probe"
        return f"{rsc} {verb}{_failure_text(failure)} and is banned there; {expiry}, or run {fix}"
    if count >= INFINITY:
        return f"{rsc} is banned there after a hard failure{_failure_text(failure)}; {expiry}, or run {fix}"
    return f"{rsc} fail count {count} reached migration-threshold {threshold}{_failure_text(failure)}; {expiry}, or run {fix}"
