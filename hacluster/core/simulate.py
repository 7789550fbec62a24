"""Simulate: what the cluster would do next, if the operator's what-ifs happened now.  Pure.

Theory of operation
-------------------
``predict`` copies a ``ClusterSnapshot`` into a small simulated world, applies the
what-ifs (crash a node, fail a resource, put a node in standby, split the membership, load
another configuration), then runs the cluster's own rules round after round, assuming every
agent operation and every possible fence succeeds:

1. the DC's own edits (``dc.follow_up_edits``: a finished move loses its constraint, a
   ``multiple-active=stop_only`` resource gets target-role Stopped);
2. the DC's plan (``dc.plan_for``);
3. every member's reconciliation (``reconcile.decide``, with idle local facts: nothing
   pending, nothing probing);
4. when no member has anything left to do, fencing (``fencing.nodes_to_fence``, of the
   nodes a device can fence): the cluster fences after a delay, and meanwhile does what it
   may (stops, and starts that no fence gates: while a lost node awaits fencing the plan
   holds every start);

until a round changes nothing.  Nothing here decides anything of its own: the rules are the
ones the live cluster runs (``tests/sim/test_agreement.py`` holds the two to the same
answers).  Each round's operations run in parallel in the cluster, so the order of rounds is
the order in which things happen.  The raw stops and starts are then folded into what an
operator reads: a stop and a later start of one resource become a ``Move`` (two nodes), a
``Recover`` (a failed resource restarted in place) or a ``Restart``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig, base_id
from hacluster.core.dc import follow_up_edits, plan_for
from hacluster.core.edits import set_node_attribute
from hacluster.core.fence_devices import FenceDeviceSpec, levels_for
from hacluster.core.fencing import nodes_to_fence
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, LocalState
from hacluster.core.lrm import Action as OpAction
from hacluster.core.orders import dependencies
from hacluster.core.plan import Plan, Role
from hacluster.core.reconcile import LocalFacts, NodeFacts, decide
from hacluster.core.snapshot import ClusterSnapshot, has_quorum

ROUNDS_MAX: Final = 200
"""A safety bound on simulation rounds; a real configuration settles in a few dozen."""

_SETTLED: Final = frozenset({LocalState.STARTED, LocalState.STOPPED, LocalState.FAILED, LocalState.BLOCKED})
_HELD: Final = MAYBE_ACTIVE - {LocalState.UNKNOWN}


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


@dataclass(frozen=True, slots=True)
class Promote:
    """An instance of a promotable clone promoted where it runs."""

    rsc: str
    node: NodeName


@dataclass(frozen=True, slots=True)
class Demote:
    rsc: str
    node: NodeName


Action = Fence | Stop | Start | Move | Recover | Restart | Promote | Demote


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
class World:
    """The mutable state a simulation runs on; ``view()`` is what the rules read."""

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
    roles: dict[str, dict[NodeName, Role]] = field(default_factory=dict)
    """Instance → node → its role (promotable clones only)."""
    node_attributes: Mapping[NodeName, Mapping[str, str]] | None = None

    @classmethod
    def of(cls, snapshot: ClusterSnapshot) -> World:
        return cls(
            config=snapshot.config,
            nodes=snapshot.nodes,
            members=set(snapshot.members),
            leaving=set(snapshot.leaving),
            observed={rsc: dict(states) for rsc, states in snapshot.observed.items()},
            failcounts={k: min(INFINITY, v) for k, v in snapshot.failcounts.items() if v > 0},
            banned_everywhere=set(snapshot.banned_everywhere),
            fenced=set(snapshot.fenced),
            clean_exits=set(snapshot.clean_exits),
            unclean=set(snapshot.unclean),
            has_quorum=snapshot.has_quorum,
            extra_devices=snapshot.extra_fence_devices,
            roles={rsc: dict(per_node) for rsc, per_node in snapshot.roles.items()},
            node_attributes=snapshot.node_attributes,
        )

    def view(self) -> ClusterSnapshot:
        return ClusterSnapshot(
            config=self.config,
            nodes=self.nodes,
            members=frozenset(self.members),
            observed={rsc: dict(states) for rsc, states in self.observed.items()},
            failcounts=dict(self.failcounts),
            banned_everywhere=frozenset(self.banned_everywhere),
            fenced=frozenset(self.fenced),
            clean_exits=frozenset(self.clean_exits),
            unclean=frozenset(self.unclean),
            leaving=frozenset(self.leaving),
            has_quorum=self.has_quorum,
            extra_fence_devices=self.extra_devices,
            roles={rsc: dict(per_node) for rsc, per_node in self.roles.items()},
            node_attributes=self.node_attributes,
        )

    def state(self, rsc: str, node: NodeName) -> LocalState:
        return self.observed.get(rsc, {}).get(node, LocalState.STOPPED)

    def set_state(self, rsc: str, node: NodeName, state: LocalState) -> None:
        self.observed.setdefault(rsc, {})[node] = state

    def copy(self) -> World:
        return replace(
            self,
            members=set(self.members),
            leaving=set(self.leaving),
            observed={r: dict(s) for r, s in self.observed.items()},
            failcounts=dict(self.failcounts),
            banned_everywhere=set(self.banned_everywhere),
            fenced=set(self.fenced),
            clean_exits=set(self.clean_exits),
            unclean=set(self.unclean),
            redefined=set(self.redefined),
            roles={r: dict(s) for r, s in self.roles.items()},
        )


def fenceable_targets(view: ClusterSnapshot) -> dict[NodeName, str]:
    """``nodes_to_fence``, of the nodes some device can fence (a simulated fence succeeds)."""
    devices = view.devices()
    return {n: r for n, r in nodes_to_fence(view).items() if levels_for(view.config, devices, n)}


# Raw events of a run, folded by ``_fold``: ("fence", node, reason, off), ("stop", rsc, node,
# failed), ("lost", rsc, node, unfenced), ("start", rsc, node, _), ("promote"|"demote", rsc,
# node, _).
_Event = tuple[str, str, str, bool]


def run(w: World) -> list[_Event]:
    """The rounds of the module docstring, until one changes nothing."""
    events: list[_Event] = []
    for _ in range(ROUNDS_MAX):
        edit = follow_up_edits(w.view())
        if edit is not None:
            w.config = edit.config
        view = w.view()
        plan = plan_for(view)
        stops, starts, roles = _reconcile(w, view, plan)
        if not stops and not starts and not roles:
            targets = fenceable_targets(view)
            if not targets:
                break
            _fence(w, targets, events)
            continue
        for rsc, node in stops:
            failed = w.state(rsc, node) is LocalState.FAILED
            events.append(("stop", rsc, node, failed))
            w.set_state(rsc, node, LocalState.STOPPED)
            w.roles.get(rsc, {}).pop(node, None)
            w.redefined.discard((rsc, node))
        for rsc, node in starts:
            events.append(("start", rsc, node, False))
            w.set_state(rsc, node, LocalState.STARTED)
            if w.config.is_promotable(rsc):
                w.roles.setdefault(rsc, {})[node] = Role.UNPROMOTED
        for rsc, node, role in roles:
            events.append(("promote" if role is Role.PROMOTED else "demote", rsc, node, False))
            w.roles.setdefault(rsc, {})[node] = role
    return events


def _fence(w: World, targets: dict[NodeName, str], events: list[_Event]) -> None:
    """Every target is fenced (a simulated fence succeeds): down, with all it ran."""
    action = w.config.property("stonith-action", "reboot")
    for node, reason in targets.items():
        events.append(("fence", node, reason, action == "off"))
        _lose(w, node, events, fenced=True)
        w.members.discard(node)
        w.unclean.discard(node)
        w.fenced.add(node)
    w.has_quorum = has_quorum(len(w.nodes), len(w.members))


def _reconcile(
    w: World, view: ClusterSnapshot, plan: Plan
) -> tuple[list[tuple[str, NodeName]], list[tuple[str, NodeName]], list[tuple[str, NodeName, Role]]]:
    """Every member's ``reconcile.decide`` on the same view: the stops, starts and role
    changes (promote, demote) of one round."""
    resources = sorted(set(view.managed_ids()) | set(w.observed), key=_config_order(w.config))
    stops: list[tuple[str, NodeName]] = []
    starts: list[tuple[str, NodeName]] = []
    roles: list[tuple[str, NodeName, Role]] = []
    for node in w.nodes:
        if node not in w.members:
            continue
        facts = NodeFacts(
            resources={rsc: LocalFacts(definition_changed=(rsc, node) in w.redefined) for rsc in resources},
            leaving=node in w.leaving,
            is_dc=True,
        )
        for op in decide(view, plan, node, facts):
            if op.action is OpAction.STOP:
                stops.append((op.resource, node))
            elif op.action is OpAction.START:
                starts.append((op.resource, node))
            elif op.action is OpAction.PROMOTE:
                roles.append((op.resource, node, Role.PROMOTED))
            elif op.action is OpAction.DEMOTE:
                roles.append((op.resource, node, Role.UNPROMOTED))
    return stops, starts, roles


def _lose(w: World, node: NodeName, events: list[_Event], *, fenced: bool) -> None:
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
        w.roles.get(rsc, {}).pop(node, None)


def _start_rank(config: ClusterConfig) -> dict[str, int]:
    """How many prerequisites deep each resource sits (0: needs nothing first)."""
    deps = dependencies(config)
    rank: dict[str, int] = {}

    def depth(rsc: str, path: frozenset[str]) -> int:
        if rsc not in rank:
            firsts = [f for f in deps.get(rsc, []) if f not in path]
            rank[rsc] = 1 + max((depth(f, path | {rsc}) for f in firsts), default=-1)
        return rank[rsc]

    for primitive in config.primitives:
        if primitive.agent_class != "stonith":
            depth(primitive.id, frozenset())
    return rank


def _config_order(config: ClusterConfig) -> Callable[[str], tuple[int, str]]:
    """Sort key: configuration order, then orphans (no longer configured) by name."""
    order = {p.id: i for i, p in enumerate(config.primitives)}
    return lambda rsc: (order.get(base_id(rsc), len(order)), rsc)


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
        elif kind in ("promote", "demote"):
            out.append(Promote(a, NodeName(b)) if kind == "promote" else Demote(a, NodeName(b)))
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
    base = World.of(snapshot)
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
        w = base.copy()
        gone = (w.members - side) | (set(crash_nodes) & w.members)
        events: list[_Event] = []
        if gone:
            w.members -= gone
            for node in sorted(gone):
                if node not in w.fenced and node not in w.clean_exits:
                    w.unclean.add(node)
            w.has_quorum = has_quorum(len(nodes), len(w.members))
            if not w.view().must_fence():
                for node in sorted(gone):
                    _lose(w, node, events, fenced=False)  # no fencing: assumed stopped
        events += run(w)
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


def _redefine(w: World, old: ClusterConfig, new: ClusterConfig) -> None:
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


def _inject_failure(w: World, snapshot: ClusterSnapshot, entry: str) -> None:
    rsc, _, where = entry.partition(":")
    ids = snapshot.managed_ids()
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
