"""Explain and simulate: why a resource is where it is, and what the cluster would do next.

Theory of operation
-------------------
``ResourceManager.snapshot()`` freezes everything the DC plans from into a
``ClusterSnapshot``.  Nothing here decides anything new: both functions run the real
``placement.place`` and ``transition.make_plan`` on that snapshot.

``predict`` copies the snapshot into a small simulated world, applies the operator's
what-ifs (crash a node, fail a resource, put a node in standby, split the membership, load
another configuration), then *iterates* the way the cluster does: plan; fence what the DC
would fence (assumed to succeed); let every member reconcile against the plan with the same
rules as ``crm._reconcile`` (stop dependents before what they need, start prerequisites
first, one step at a time), assuming every agent operation succeeds; repeat until a round
changes nothing.  Each round's operations run in parallel in the cluster, so the order of
rounds is the order in which things happen.  The raw stops and starts are then folded into
what an operator reads: a stop and a later start of one resource become a ``Move`` (two
nodes), a ``Recover`` (a failed resource restarted in place) or a ``Restart``.

``why`` names the one blocker that keeps a resource from running (or says where it runs),
reading the reasons placement and the plan already give and adding what they cannot know:
when a fail count expires, which node a fence is pending for, what command clears it.

``merge_by_id`` is the pure half of ``hacrm configure load update``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar

from hacluster.core.cib import INFINITY, ClusterConfig, format_time_ms
from hacluster.core.edits import set_node_attribute
from hacluster.core.fencing import FenceDeviceSpec, devices_from_config, levels_for
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, RC_NAMES, LocalState
from hacluster.core.placement import Placement, PlacementInput, node_unavailable_reason, place
from hacluster.core.transition import Plan, dependencies, is_started, make_plan
from hacluster.core.transition import recovering as recovering_set

ROUNDS_MAX: Final = 200
"""A safety bound on simulation rounds; a real configuration settles in a few dozen."""

_SETTLED: Final = frozenset({LocalState.STARTED, LocalState.STOPPED, LocalState.FAILED, LocalState.BLOCKED})
_HELD: Final = MAYBE_ACTIVE - {LocalState.UNKNOWN}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Failure:
    """The last failed operation of a resource on a node, as that node reported it."""

    op: str
    rc: int | None
    reason: str | None = None
    last_failure_ms: int | None = None
    """Monotonic time of the failure; only known for the node that took the snapshot."""


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """What the DC plans from, frozen at one moment (``ResourceManager.snapshot()``)."""

    config: ClusterConfig
    nodes: tuple[NodeName, ...]
    """Every configured node, in configuration order."""
    members: frozenset[NodeName]
    observed: Mapping[str, Mapping[NodeName, LocalState]]
    failcounts: Mapping[tuple[str, NodeName], int] = field(default_factory=dict)
    failures: Mapping[tuple[str, NodeName], Failure] = field(default_factory=dict)
    banned_everywhere: frozenset[str] = frozenset()
    fenced: frozenset[NodeName] = frozenset()
    clean_exits: frozenset[NodeName] = frozenset()
    """Nodes that left with a clean stop: known to run nothing."""
    unclean: frozenset[NodeName] = frozenset()
    """Nodes lost without a clean stop and not fenced yet."""
    fence_pending: Mapping[NodeName, str] = field(default_factory=dict)
    leaving: frozenset[NodeName] = frozenset()
    has_quorum: bool = True
    dc: NodeName | None = None
    plan: Plan | None = None
    extra_fence_devices: tuple[FenceDeviceSpec, ...] = ()
    """Fence devices configured outside the resource configuration (ha.cf)."""
    now_ms: int | None = None
    node: NodeName | None = None
    """The node that took the snapshot."""


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fence:
    node: NodeName
    reason: str
    action: str = "reboot"


@dataclass(frozen=True, slots=True)
class Stop:
    rsc: str
    node: NodeName


@dataclass(frozen=True, slots=True)
class Start:
    rsc: str
    node: NodeName


@dataclass(frozen=True, slots=True)
class Move:
    rsc: str
    from_node: NodeName
    to_node: NodeName


@dataclass(frozen=True, slots=True)
class Recover:
    """A failed resource stopped and started again on the same node."""

    rsc: str
    node: NodeName


@dataclass(frozen=True, slots=True)
class Restart:
    """A healthy resource stopped and started again in place (its prerequisite recovered,
    or its definition changed)."""

    rsc: str
    node: NodeName


Action = Fence | Stop | Start | Move | Recover | Restart


def action_text(action: Action) -> str:
    """``crm_simulate``'s transition summary style: ``Move vip ( n1 -> n2 )``."""
    if isinstance(action, Fence):
        return f"Fence ({action.action}) {action.node} '{action.reason}'"
    if isinstance(action, Move):
        return f"Move {action.rsc} ( {action.from_node} -> {action.to_node} )"
    return f"{type(action).__name__} {action.rsc} ( {action.node} )"


def action_dict(action: Action) -> dict[str, str]:
    """The API's form of one action (with its text)."""
    kind = type(action).__name__.lower()
    if isinstance(action, Fence):
        fields = {"node": action.node, "reason": action.reason, "fence_action": action.action}
    elif isinstance(action, Move):
        fields = {"resource": action.rsc, "from": action.from_node, "to": action.to_node}
    else:
        fields = {"resource": action.rsc, "node": action.node}
    return {"action": kind, **fields, "text": action_text(action)}


# --- the simulated world ---------------------------------------------------------------------


@dataclass(slots=True)
class _World:
    config: ClusterConfig
    nodes: tuple[NodeName, ...]
    members: set[NodeName]
    leaving: set[NodeName]
    observed: dict[str, dict[NodeName, LocalState]]
    failcounts: dict[tuple[str, NodeName], int]
    banned_everywhere: set[str]
    fenced: set[NodeName]
    clean_exits: set[NodeName]
    unclean: set[NodeName]
    has_quorum: bool
    extra_devices: tuple[FenceDeviceSpec, ...]
    redefined: set[tuple[str, NodeName]] = field(default_factory=set)
    """(resource, node) running an older definition: restarted once to pick up the new one."""

    def state(self, rsc: str, node: NodeName) -> LocalState:
        return self.observed.get(rsc, {}).get(node, LocalState.STOPPED)

    def set_state(self, rsc: str, node: NodeName, state: LocalState) -> None:
        self.observed.setdefault(rsc, {})[node] = state

    def must_fence(self) -> bool:
        """As ``ResourceManager._must_fence``: fencing on, and something to protect."""
        return self.config.is_stonith_enabled() and bool(_managed_ids(self.config))

    def devices(self) -> tuple[FenceDeviceSpec, ...]:
        return devices_from_config(self.config, self.extra_devices)


def _managed_ids(config: ClusterConfig) -> list[str]:
    return [p.id for p in config.primitives if p.agent_class != "stonith"]


def has_quorum(nodes: int, members: int) -> bool:
    """The resource manager's rule: a strict majority, and two-node clusters always have it."""
    return True if nodes <= 2 else 2 * members > nodes


def _world(snapshot: ClusterSnapshot) -> _World:
    return _World(
        config=snapshot.config,
        nodes=snapshot.nodes,
        members=set(snapshot.members),
        leaving=set(snapshot.leaving),
        observed={rsc: dict(states) for rsc, states in snapshot.observed.items()},
        failcounts=dict(snapshot.failcounts),
        banned_everywhere=set(snapshot.banned_everywhere),
        fenced=set(snapshot.fenced),
        clean_exits=set(snapshot.clean_exits),
        unclean=set(snapshot.unclean),
        has_quorum=snapshot.has_quorum,
        extra_devices=snapshot.extra_fence_devices,
    )


def _plan_of(w: _World) -> tuple[Placement, Plan]:
    """``ResourceManager._compute_plan`` on the world: the real placement and transition."""
    members = frozenset(w.members)
    online = members - frozenset(w.leaving)
    active = {
        rsc: frozenset(
            n for n, s in states.items() if n in members and s in (LocalState.STARTED, LocalState.STARTING)
        )
        for rsc, states in w.observed.items()
    }
    placement = place(
        PlacementInput(
            config=w.config,
            nodes=w.nodes,
            online=online,
            active=active,
            failcounts={k: min(INFINITY, v) for k, v in w.failcounts.items() if v > 0},
            banned_everywhere=frozenset(w.banned_everywhere),
            has_quorum=w.has_quorum,
        )
    )
    trusted_down = frozenset(w.clean_exits | w.fenced)
    if not w.must_fence():
        trusted_down |= frozenset(w.unclean)
    observed = {rsc: dict(states) for rsc, states in w.observed.items()}
    plan = make_plan(w.config, placement, observed, members, trusted_down)
    if w.config.is_stonith_enabled() and not w.devices():
        reason = "stonith-enabled=true but no fencing device is configured"
        plan = Plan(
            {r: None for r in plan.assignment}, dict.fromkeys(plan.assignment, reason), plan.needs_fencing
        )
    return placement, plan


def _fence_targets(w: _World) -> dict[NodeName, str]:
    """As ``ResourceManager._request_fencing``: unclean nodes, and members whose stop failed."""
    if not w.must_fence() or not w.has_quorum:
        return {}
    wanted: dict[NodeName, str] = {}
    for node in sorted(w.unclean - w.fenced):
        wanted[node] = "it left the membership without a clean stop"
    for rsc, states in w.observed.items():
        for node, state in sorted(states.items()):
            if state is LocalState.BLOCKED and node in w.members:
                wanted.setdefault(node, f"stop of {rsc} failed there")
    devices = w.devices()
    return {n: r for n, r in sorted(wanted.items()) if levels_for(w.config, devices, n)}


# Raw events of a run, folded by ``_fold``: ("fence", node, reason), ("stop", rsc, node,
# failed), ("lost", rsc, node), ("start", rsc, node).
_Event = tuple[str, str, str, bool]


def _run(w: _World) -> list[_Event]:
    events: list[_Event] = []
    for _ in range(ROUNDS_MAX):
        _, plan = _plan_of(w)
        targets = _fence_targets(w)
        if targets:
            action = w.config.property("stonith-action", "reboot")
            for node, reason in targets.items():
                events.append(("fence", node, reason, action == "off"))
                _lose(w, node, events, fenced=True)
                w.members.discard(node)
                w.unclean.discard(node)
                w.fenced.add(node)
            w.has_quorum = has_quorum(len(w.nodes), len(w.members)) if targets else w.has_quorum
            continue
        stops, starts = _reconcile(w, plan)
        if not stops and not starts:
            break
        for rsc, node in stops:
            failed = w.state(rsc, node) is LocalState.FAILED
            events.append(("stop", rsc, node, failed))
            w.set_state(rsc, node, LocalState.STOPPED)
            w.redefined.discard((rsc, node))
        for rsc, node in starts:
            events.append(("start", rsc, node, False))
            w.set_state(rsc, node, LocalState.STARTED)
    return events


def _lose(w: _World, node: NodeName, events: list[_Event], *, fenced: bool) -> None:
    """``node`` is down (fenced, or trusted down): whatever it ran has stopped there.

    Listed dependents first, as a clean stop would go.  Without fencing nothing actually
    stops, the cluster only stops counting the node: ``_fold`` shows such a loss only as the
    origin of a later move.
    """
    order = _config_order(w.config)
    rank = _start_rank(w.config)
    for rsc in sorted(w.observed, key=lambda r: (-rank.get(r, 0), order(r))):
        if w.observed[rsc].get(node) in _HELD:
            events.append(("lost", rsc, node, not fenced))
        if node in w.observed[rsc]:
            w.observed[rsc][node] = LocalState.STOPPED


def _start_rank(config: ClusterConfig) -> dict[str, int]:
    """How many prerequisites deep each resource sits (0: needs nothing first)."""
    deps = dependencies(config)
    rank: dict[str, int] = {}

    def depth(rsc: str, path: frozenset[str]) -> int:
        if rsc not in rank:
            firsts = [f for f in deps.get(rsc, []) if f not in path]
            rank[rsc] = 1 + max((depth(f, path | {rsc}) for f in firsts), default=-1)
        return rank[rsc]

    for rsc in _managed_ids(config):
        depth(rsc, frozenset())
    return rank


def _config_order(config: ClusterConfig) -> Callable[[str], tuple[int, str]]:
    """Sort key: configuration order, then orphans (no longer configured) by name."""
    order = {p.id: i for i, p in enumerate(config.primitives)}
    return lambda rsc: (order.get(rsc, len(order)), rsc)


def _reconcile(w: _World, plan: Plan) -> tuple[list[tuple[str, NodeName]], list[tuple[str, NodeName]]]:
    """Every member's ``_reconcile`` on the same view: the stops and starts of one round."""
    config = w.config
    deps = dependencies(config)
    members = w.members
    recovering = recovering_set(deps, w.observed, frozenset(w.members))
    config_ids = set(_managed_ids(config))
    resources = sorted(set(config_ids) | set(w.observed), key=_config_order(config))
    maintenance = _is_true(config.property("maintenance-mode"))
    stops: list[tuple[str, NodeName]] = []
    starts: list[tuple[str, NodeName]] = []
    for node in w.nodes:
        if node not in members or maintenance or _is_true(config.node_attribute(node, "maintenance")):
            continue
        for rsc in resources:
            if rsc in config_ids and not _is_managed(config, rsc):
                continue
            state = w.state(rsc, node)
            wanted = rsc in config_ids and node not in w.leaving and plan.assignment.get(rsc) == node
            if state is LocalState.FAILED:
                if _dependents_stopped(w, rsc, deps):
                    stops.append((rsc, node))
            elif state is LocalState.STARTED:
                if (rsc, node) in w.redefined or (
                    (not wanted or rsc in recovering) and _dependents_stopped(w, rsc, deps)
                ):
                    stops.append((rsc, node))
            elif state is LocalState.STOPPED and wanted:
                threshold = config.migration_threshold_of(rsc)
                if w.failcounts.get((rsc, node), 0) >= threshold or rsc in w.banned_everywhere:
                    continue
                held = any(
                    n != node and n in members and s in _HELD for n, s in w.observed.get(rsc, {}).items()
                )
                if held or rsc in recovering:
                    continue
                if all(is_started(first, w.observed, frozenset(w.members)) for first in deps.get(rsc, [])):
                    starts.append((rsc, node))
    return stops, starts


def _dependents_stopped(w: _World, rsc: str, deps: Mapping[str, list[str]]) -> bool:
    for then, firsts in deps.items():
        if rsc in firsts and any(n in w.members and s in _HELD for n, s in w.observed.get(then, {}).items()):
            return False
    return True


def _is_true(text: str | None) -> bool:
    return text is not None and text.strip().lower() in ("true", "on", "yes", "1", "y")


def _is_managed(config: ClusterConfig, rsc: str) -> bool:
    return (config.meta_of(rsc, "is-managed") or "true").lower() not in ("false", "no", "off", "0")


def _fold(events: list[_Event]) -> list[Action]:
    """Raw stops and starts → what an operator reads; a folded action sits where its start was."""
    out: list[Action | None] = []
    open_stop: dict[str, tuple[int, NodeName, bool]] = {}
    for kind, a, b, flag in events:
        if kind == "fence":
            out.append(Fence(NodeName(a), b, "off" if flag else "reboot"))
        elif kind == "stop":
            open_stop[a] = (len(out), NodeName(b), flag)
            out.append(Stop(a, NodeName(b)))
        elif kind == "lost":
            open_stop[a] = (len(out), NodeName(b), False)
            out.append(None if flag else Stop(a, NodeName(b)))
        elif a in open_stop:
            index, source, failed = open_stop.pop(a)
            out[index] = None
            target = NodeName(b)
            if source != target:
                out.append(Move(a, source, target))
            else:
                out.append(Recover(a, target) if failed else Restart(a, target))
        else:
            out.append(Start(a, NodeName(b)))
    return [action for action in out if action is not None]


# --- predict -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SidePrediction:
    """One side of a simulated partition: its members, whether it has quorum, what it does."""

    members: tuple[NodeName, ...]
    has_quorum: bool
    actions: tuple[Action, ...]


def predict(
    snapshot: ClusterSnapshot,
    *,
    config: ClusterConfig | None = None,
    crash: Iterable[str] = (),
    fail: Iterable[str] = (),
    standby: Iterable[str] = (),
    partition: Iterable[Iterable[str]] | None = None,
) -> list[Action]:
    """The actions the cluster would take, in order, if the what-ifs happened now.

    ``fail`` entries are ``rsc`` (its monitor fails wherever it runs) or ``rsc:node`` (on that
    node; where it does not run, as if its start had failed there).  With ``partition`` the
    actions of every side follow each other, side by side (``predict_sides`` keeps them apart).
    Raises ``ValueError`` naming an unknown node or resource.
    """
    sides = predict_sides(
        snapshot, config=config, crash=crash, fail=fail, standby=standby, partition=partition
    )
    return [action for side in sides for action in side.actions]


def predict_sides(
    snapshot: ClusterSnapshot,
    *,
    config: ClusterConfig | None = None,
    crash: Iterable[str] = (),
    fail: Iterable[str] = (),
    standby: Iterable[str] = (),
    partition: Iterable[Iterable[str]] | None = None,
) -> list[SidePrediction]:
    """``predict``, one entry per side of the partition (one entry when there is none)."""
    base = _world(snapshot)
    nodes = snapshot.nodes
    crash_nodes = [_node(nodes, n, "--crash") for n in crash]
    standby_nodes = [_node(nodes, n, "--standby") for n in standby]
    sides = _sides(snapshot, partition)
    if config is not None:
        _redefine(base, snapshot.config, config)
        base.config = config
    for node in standby_nodes:
        base.config = set_node_attribute(base.config, nodes, node, "standby", "on")
    for entry in fail:
        _inject_failure(base, snapshot, entry)
    for rsc, states in base.observed.items():
        for node, state in states.items():
            if node in base.members and state not in _SETTLED:
                # In flight now: assume it succeeds.  Not probed yet: assume not running.
                states[node] = LocalState.STARTED if state is LocalState.STARTING else LocalState.STOPPED
        base.observed[rsc] = states
    results = []
    for side in sides:
        w = _copy(base)
        gone = (w.members - side) | (set(crash_nodes) & w.members)
        events: list[_Event] = []
        if gone:
            w.members -= gone
            for node in sorted(gone):
                if node not in w.fenced and node not in w.clean_exits:
                    w.unclean.add(node)
            w.has_quorum = has_quorum(len(nodes), len(w.members))
            if not w.must_fence():
                for node in sorted(gone):
                    _lose(w, node, events, fenced=False)  # no fencing: assumed stopped
        events += _run(w)
        members = tuple(n for n in nodes if n in side and n not in crash_nodes)
        results.append(SidePrediction(members, w.has_quorum, tuple(_fold(events))))
    return results


def _node(nodes: tuple[NodeName, ...], name: str, what: str) -> NodeName:
    if name not in nodes:
        raise ValueError(f"{what} {name}: no such node; configured nodes: {', '.join(nodes)}")
    return NodeName(name)


def _sides(snapshot: ClusterSnapshot, partition: Iterable[Iterable[str]] | None) -> list[set[NodeName]]:
    members = set(snapshot.members)
    if partition is None:
        return [members]
    sides: list[set[NodeName]] = []
    seen: set[NodeName] = set()
    for group in partition:
        side = {_node(snapshot.nodes, n, "--partition") for n in group}
        if side & seen:
            raise ValueError(
                f"--partition: {', '.join(sorted(side & seen))} is in two partitions; list each node once"
            )
        seen |= side
        sides.append(side & members)
    rest = members - seen
    if rest:
        sides.append(rest)  # nodes not named form one more side
    return [side for side in sides if side]


def _copy(w: _World) -> _World:
    return replace(
        w,
        members=set(w.members),
        leaving=set(w.leaving),
        observed={r: dict(s) for r, s in w.observed.items()},
        failcounts=dict(w.failcounts),
        banned_everywhere=set(w.banned_everywhere),
        fenced=set(w.fenced),
        clean_exits=set(w.clean_exits),
        unclean=set(w.unclean),
        redefined=set(w.redefined),
    )


def _redefine(w: _World, old: ClusterConfig, new: ClusterConfig) -> None:
    """A primitive whose agent or parameters change is restarted where it runs."""
    old_ids = {p.id: p for p in old.primitives}
    for primitive in new.primitives:
        before = old_ids.get(primitive.id)
        if before is None or primitive.agent_class == "stonith":
            continue
        if (before.agent, before.params, before.args) == (primitive.agent, primitive.params, primitive.args):
            continue
        for node, state in w.observed.get(primitive.id, {}).items():
            if state in (LocalState.STARTED, LocalState.STARTING):
                w.redefined.add((primitive.id, node))


def _inject_failure(w: _World, snapshot: ClusterSnapshot, entry: str) -> None:
    rsc, _, where = entry.partition(":")
    ids = _managed_ids(snapshot.config)
    if rsc not in ids:
        raise ValueError(f"--fail {entry}: no resource named {rsc!r}; known: {', '.join(ids) or 'none'}")
    states = w.observed.setdefault(rsc, {})
    if where:
        targets = [_node(snapshot.nodes, where, "--fail")]
    else:
        targets = [
            n for n, s in states.items() if n in w.members and s in (LocalState.STARTED, LocalState.STARTING)
        ]
        if not targets:
            raise ValueError(
                f"--fail {entry}: {rsc} runs nowhere; name the node whose start should fail: {rsc}:NODE"
            )
    for node in targets:
        if states.get(node) in (LocalState.STARTED, LocalState.STARTING):
            states[node] = LocalState.FAILED  # a failed monitor: one more failure
            w.failcounts[(rsc, node)] = min(INFINITY, w.failcounts.get((rsc, node), 0) + 1)
        else:
            w.failcounts[(rsc, node)] = INFINITY  # as a failed start there: banned from the node


# --- why ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Why:
    snapshot: ClusterSnapshot
    world: _World
    placement: Placement
    plan: Plan
    deps: dict[str, list[str]]


def why(snapshot: ClusterSnapshot, rsc: str) -> str:
    """One sentence: where ``rsc`` runs, or the concrete thing that keeps it from running.

    ``rsc`` may be a primitive or a group.  Raises ``ValueError`` for an unknown id.
    """
    config = snapshot.config
    ids = _managed_ids(config)
    groups = {g.id: g for g in config.groups}
    if rsc not in ids and rsc not in groups:
        known = ", ".join([*ids, *groups]) or "none"
        raise ValueError(f"no resource or group named {rsc!r}; known: {known}")
    w = _world(snapshot)
    placement, plan = _plan_of(w)
    ctx = _Why(snapshot, w, placement, plan, dependencies(config))
    if rsc in groups:
        members = groups[rsc].members
        where = {n for m in members for n in _running(ctx, m)}
        if len(where) == 1 and all(_running(ctx, m) == list(where) for m in members):
            node = next(iter(where))
            if all(plan.assignment.get(m) == node for m in members):
                return (
                    f"group {rsc} runs on {node}: nothing blocks it ({placement.reasons.get(members[0], '')})"
                )
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
    if _is_true(config.property("maintenance-mode")):
        where = f"runs on {', '.join(running)}" if running else "is not running"
        return f"{rsc} {where} and stays so: maintenance-mode is on, so the cluster neither starts, stops nor monitors it"
    if not _is_managed(config, rsc):
        where = f"runs on {', '.join(running)}" if running else "is not running"
        return f"{rsc} {where} and stays so: it is unmanaged (is-managed=false)"
    if running == [target] and target is not None and not _failed_on(ctx, rsc):
        fencing = _fence_targets(ctx.world)
        if target in fencing:
            return (
                f"{rsc} runs on {target}, but {target} is about to be fenced ({fencing[target]}); "
                "it then starts where placement allows"
            )
        down = _down_prerequisite(ctx, rsc, frozenset())
        if down is not None:
            first, clause = down
            return f"{rsc} runs on {target} but is stopped and started again after {first} recovers: {clause}"
        return f"{rsc} runs on {target}: nothing blocks it ({ctx.placement.reasons.get(rsc, '')})"
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
    if rsc not in recovering_set(ctx.deps, ctx.world.observed, frozenset(ctx.world.members)):
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
    reason = ctx.plan.reasons.get(rsc, "")
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
        if n not in snap.members and n not in trusted and s in _HELD and ctx.world.must_fence()
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
    if config.is_stonith_enabled() and not ctx.world.devices():
        return (
            "stonith-enabled=true but no fence device is configured; configure a stonith device "
            "or set property stonith-enabled=false"
        )
    if config.target_role_of(rsc) == "Stopped":
        return f"its target-role is Stopped; run `hacrm resource start {rsc}`"
    group = config.group_of(rsc)
    if group is not None and config.target_role_of(group.id) == "Stopped":
        return f"the target-role of its group {group.id} is Stopped; run `hacrm resource start {group.id}`"
    if "whose target-role is Stopped" in reason:
        return reason
    if rsc in snap.banned_everywhere or any(m in snap.banned_everywhere for m in _unit_members(config, rsc)):
        return f"{reason}; fix the configuration, then run `hacrm resource cleanup {rsc}`"
    if not ctx.world.has_quorum and "no quorum" in ctx.placement.reasons.get(rsc, ""):
        policy = config.property("no-quorum-policy", "stop")
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
        return reason or "the plan gives it no node"
    if snap.dc is None and snap.node is not None:
        return (
            f"it would go to {target}, but there is no designated coordinator yet ({snap.node} is not an "
            "active member), so there is no plan to start it"
        )
    waiting = [first for first in ctx.deps.get(rsc, []) if not _running(ctx, first)]
    if waiting:
        return f"it is about to start on {target} once {', '.join(waiting)} has started"
    return f"it is about to start on {target} ({ctx.placement.reasons.get(rsc, reason)})"


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
    if not ctx.world.must_fence():
        return ""
    if not snap.has_quorum:
        return " (fencing waits for quorum, which this partition lacks)"
    if not levels_for(snap.config, ctx.world.devices(), node):
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
    online = frozenset(ctx.world.members - ctx.world.leaving)
    listed = _per_node_reasons(ctx.placement.reasons.get(rsc, ""))
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


def _per_node_reasons(reason: str) -> dict[str, str]:
    """Placement writes ``no node can run it (n1: offline; n2: …)``: read it back per node."""
    prefix = "no node can run it ("
    if not reason.startswith(prefix) or not reason.endswith(")"):
        return {}
    out = {}
    for part in reason[len(prefix) : -1].split("; "):
        node, sep, text = part.partition(": ")
        if sep:
            out[node] = text
    return out


def _fail_clause(ctx: _Why, rsc: str, node: NodeName) -> str | None:
    snap = ctx.snapshot
    config = snap.config
    count = snap.failcounts.get((rsc, node), 0)
    threshold = config.migration_threshold_of(rsc)
    if threshold <= 0 or count < threshold:
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


# --- configure load update -----------------------------------------------------------------------


def merge_by_id(current: ClusterConfig, update: ClusterConfig) -> ClusterConfig:
    """``current`` with every object of ``update`` replacing the one with its id (others kept).

    Ids: primitives, groups and constraints by id; properties and defaults by name; node
    attributes by node; fencing levels by (target, index).  New objects go after the kept
    ones.  The result has ``epoch + 1``; ``check()`` it before use (an id may change kind).
    """

    return replace(
        current,
        epoch=current.epoch + 1,
        primitives=_merged(current.primitives, update.primitives, lambda p: p.id),
        groups=_merged(current.groups, update.groups, lambda g: g.id),
        locations=_merged(current.locations, update.locations, lambda c: c.id),
        colocations=_merged(current.colocations, update.colocations, lambda c: c.id),
        orders=_merged(current.orders, update.orders, lambda c: c.id),
        properties=_merged(current.properties, update.properties, lambda kv: kv[0]),
        rsc_defaults=_merged(current.rsc_defaults, update.rsc_defaults, lambda kv: kv[0]),
        op_defaults=_merged(current.op_defaults, update.op_defaults, lambda kv: kv[0]),
        node_attributes=_merged(current.node_attributes, update.node_attributes, lambda na: na[0]),
        fencing_levels=_merged(
            current.fencing_levels, update.fencing_levels, lambda lv: (lv.target, lv.index)
        ),
    )


def _merged(old: tuple[_T, ...], new: tuple[_T, ...], key: Callable[[_T], Hashable]) -> tuple[_T, ...]:
    fresh = {key(x): x for x in new}
    kept = [fresh.pop(key(x), x) for x in old]
    return (*kept, *fresh.values())
