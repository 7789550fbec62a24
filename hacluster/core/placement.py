"""Placement: where each resource should run.  A pure function of its inputs.

Theory of operation
-------------------
The unit of placement is a *group* (its members always run together, on one node) or an
ungrouped primitive.  For every unit and every node the function adds up a score:

- ``-INFINITY`` when the node cannot take it: not online, standby, in maintenance, leaving,
  or any member is banned there (start failure, hard error, fail count at
  ``migration-threshold``), or banned everywhere (``rc 6``);
- plus every ``location`` score for the unit (or a member) on that node;
- plus ``resource-stickiness`` for each member already active on that node;
- plus colocation scores relative to units placed earlier (``inf`` = must be with,
  ``-inf`` = must not be with).

A unit others must run with (``colocation … inf: dependent unit``) also avoids the nodes where
one of those dependents cannot run (banned, at its ``migration-threshold``, ``-inf`` location),
followed along chains of such colocations, as long as that leaves it a node: Pacemaker's
colocation *influence* (default on; ``critical=false`` on the dependent turns it off).  So a
resource that failed to start next to its anchor takes the anchor elsewhere instead of staying
stopped, and a dependent that can run nowhere never stops its anchor.

Units are placed in colocation-dependency order (the ``with`` side first), then by
``priority``, then as configured.  Each goes to its best node with a score ≥ 0; ties go to
the node where it already runs, then the node carrying fewer units, then configuration order.
A unit that cannot be placed is unassigned, with the reason recorded as data (``Reason``).

A resource whose mandatory prerequisite (``orders.dependencies``) cannot be placed cannot
run either, and neither can what must run with it: placement is repeated with such
resources held off until nothing new is held off (each round holds off at least one more
resource, so it ends; a configuration without such a chain is placed once).  So
``colocation a-with-b inf: a b`` with ``order c-then-b Mandatory: c b`` and ``c`` stopped
keeps ``a`` off too, as Pacemaker blocks the dependents of a primary that cannot start.

This function does not decide *how* to get there (what to stop first, what must be fenced):
``transition.py`` turns a placement and the observed state into a safe plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hacluster.core.cib import INFINITY, ClusterConfig, format_score, parse_boolean, parse_score
from hacluster.core.ids import NodeName
from hacluster.core.orders import dependencies
from hacluster.core.plan import Reason, ReasonCode


def add_scores(a: int, b: int) -> int:
    """Pacemaker's score arithmetic: -INFINITY wins over everything, then +INFINITY."""
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    return max(-INFINITY, min(INFINITY, a + b))


def is_banned_by_failures(failcount: int, migration_threshold: int) -> bool:
    """The fail count reached ``migration-threshold`` on that node (0 disables the threshold)."""
    return migration_threshold > 0 and failcount >= migration_threshold


@dataclass(frozen=True, slots=True)
class PlacementInput:
    config: ClusterConfig
    nodes: tuple[NodeName, ...]
    """Every configured node, in configuration order."""
    online: frozenset[NodeName]
    """Members that may run resources now (active, probed, not leaving)."""
    active: Mapping[str, frozenset[NodeName]] = field(default_factory=dict)
    """Primitive id → nodes where it is (or may be) running."""
    failcounts: Mapping[tuple[str, NodeName], int] = field(default_factory=dict)
    banned: Mapping[str, frozenset[NodeName]] = field(default_factory=dict)
    """Primitive id → nodes it may not run on (start failure, rc 2/5)."""
    banned_everywhere: frozenset[str] = frozenset()
    """Primitives whose agent said the configuration is wrong everywhere (rc 6)."""
    has_quorum: bool = True


@dataclass(frozen=True, slots=True)
class Placement:
    assignment: Mapping[str, NodeName | None]
    """Primitive id → node, or None when it should not run anywhere."""
    reasons: Mapping[str, Reason]
    """Primitive id → why it goes where it goes, or why it cannot run."""
    scores: Mapping[str, Mapping[NodeName, int]]
    """Unit id → node → score, for ``hacrm resource why`` and ``simulate``."""


@dataclass(slots=True)
class _Unit:
    id: str
    members: tuple[str, ...]
    index: int


def _units(config: ClusterConfig) -> list[_Unit]:
    grouped: set[str] = set()
    units: list[_Unit] = []
    for group in config.groups:
        units.append(_Unit(group.id, tuple(group.members), len(units)))
        grouped.update(group.members)
    for primitive in config.primitives:
        if primitive.agent_class == "stonith" or primitive.id in grouped:
            continue
        units.append(_Unit(primitive.id, (primitive.id,), len(units)))
    return units


def _meta_int(config: ClusterConfig, rsc: str, name: str, default: int) -> int:
    text = config.meta_of(rsc, name, None)
    if text is None:
        return default
    try:
        return parse_score(text)
    except ValueError:
        return default


def _is_critical(config: ClusterConfig, rsc: str) -> bool:
    """``critical`` (default true): may ``rsc`` move what it must run with?  Only an explicit
    false word turns it off; a malformed value (``check()`` reports it) keeps the default."""
    text = config.meta_of(rsc, "critical", None)
    try:
        return text is None or parse_boolean(text)
    except ValueError:
        return True


def node_unavailable_reason(config: ClusterConfig, node: NodeName, online: frozenset[NodeName]) -> str | None:
    if node not in online:
        return "offline"
    if config.is_node_standby(node):
        return "in standby"
    if config.is_node_in_maintenance(node):
        return "in maintenance"
    return None


def place(inp: PlacementInput) -> Placement:
    units = _units(inp.config)
    unit_of: dict[str, _Unit] = {}
    for unit in units:
        unit_of[unit.id] = unit
        for member in unit.members:
            unit_of[member] = unit
    order = _placement_order(inp.config, units, unit_of)
    deps = dependencies(inp.config)
    held_off: dict[str, Reason] = {}
    while True:
        placement = _place_all(inp, order, unit_of, held_off)
        newly = _needing_what_cannot_run(deps, placement, held_off)
        if not newly:
            return placement
        held_off.update(newly)


def _needing_what_cannot_run(
    deps: Mapping[str, list[str]], placement: Placement, held_off: Mapping[str, Reason]
) -> dict[str, Reason]:
    """Placed resources with a mandatory prerequisite that is placed nowhere."""
    out: dict[str, Reason] = {}
    for rsc, firsts in deps.items():
        if placement.assignment.get(rsc) is None or rsc in held_off:
            continue
        for first in firsts:
            if first in placement.assignment and placement.assignment[first] is None:
                cause = placement.reasons[first]
                out[rsc] = Reason(
                    ReasonCode.NEEDS_FIRST,
                    f"it needs {first} first, which cannot run ({cause.text})",
                    first=first,
                    cause=cause,
                )
                break
    return out


def _place_all(
    inp: PlacementInput,
    order: list[_Unit],
    unit_of: Mapping[str, _Unit],
    held_off: Mapping[str, Reason],
) -> Placement:
    config = inp.config
    assignment: dict[str, NodeName | None] = {}
    reasons: dict[str, Reason] = {}
    scores: dict[str, dict[NodeName, int]] = {}
    unit_node: dict[str, NodeName | None] = {}
    load: dict[NodeName, int] = dict.fromkeys(inp.nodes, 0)
    policy = config.no_quorum_policy()

    for unit in order:
        node: NodeName | None
        unit_scores: dict[NodeName, int]
        if unit.members[0] in held_off:
            node, reason, unit_scores = None, held_off[unit.members[0]], {}
        else:
            node, reason, unit_scores = _place_unit(inp, unit, unit_of, unit_node, load, policy)
        unit_node[unit.id] = node
        scores[unit.id] = unit_scores
        if node is not None:
            load[node] = load.get(node, 0) + 1
        stopped_from, own, followers = _first_stopped_member(config, unit, held_off)
        for position, member in enumerate(unit.members):
            if stopped_from is not None and position >= stopped_from:
                assignment[member] = None
                reasons[member] = own if position == stopped_from else followers
                continue
            assignment[member] = node
            reasons[member] = reason
    return Placement(assignment, reasons, scores)


_TARGET_ROLE_STOPPED = Reason(ReasonCode.TARGET_ROLE_STOPPED, "target-role is Stopped")


def _first_stopped_member(
    config: ClusterConfig, unit: _Unit, held_off: Mapping[str, Reason]
) -> tuple[int | None, Reason, Reason]:
    """The first member that may not run (target-role Stopped, or held off), its reason,
    and the reason of the members after it."""
    for position, member in enumerate(unit.members):
        if config.target_role_of(member) == "Stopped":
            text = f"it follows {member} in group {unit.id}, whose target-role is Stopped"
            return position, _TARGET_ROLE_STOPPED, Reason(ReasonCode.FOLLOWS_STOPPED, text, first=member)
        if member in held_off:
            cause = held_off[member]
            text = f"it needs {member} first, which cannot run ({cause.text})"
            return position, cause, Reason(ReasonCode.NEEDS_FIRST, text, first=member, cause=cause)
    return None, _TARGET_ROLE_STOPPED, _TARGET_ROLE_STOPPED


def _placement_order(config: ClusterConfig, units: list[_Unit], unit_of: Mapping[str, _Unit]) -> list[_Unit]:
    """Units that others are colocated with come first (depth-first, cycles broken by order)."""
    depends: dict[str, set[str]] = {u.id: set() for u in units}
    for colocation in config.colocations:
        dependent, anchor = unit_of.get(colocation.rsc), unit_of.get(colocation.with_rsc)
        if dependent is not None and anchor is not None and dependent.id != anchor.id:
            depends[dependent.id].add(anchor.id)
    priority = {u.id: max(_meta_int(config, m, "priority", 0) for m in u.members) for u in units}
    ordered = sorted(units, key=lambda u: (-priority[u.id], u.index))
    done: list[_Unit] = []
    seen: set[str] = set()

    def visit(unit: _Unit, path: frozenset[str]) -> None:
        if unit.id in seen or unit.id in path:
            return
        for anchor_id in sorted(depends[unit.id], key=lambda i: (-priority[i], unit_of[i].index)):
            visit(unit_of[anchor_id], path | {unit.id})
        if unit.id not in seen:
            seen.add(unit.id)
            done.append(unit)

    for unit in ordered:
        visit(unit, frozenset())
    return done


def _place_unit(
    inp: PlacementInput,
    unit: _Unit,
    unit_of: Mapping[str, _Unit],
    unit_node: Mapping[str, NodeName | None],
    load: Mapping[NodeName, int],
    policy: str,
) -> tuple[NodeName | None, Reason, dict[NodeName, int]]:
    config = inp.config
    if config.target_role_of(unit.id) == "Stopped" or config.target_role_of(unit.members[0]) == "Stopped":
        return None, _TARGET_ROLE_STOPPED, {}
    for member in unit.members:
        if member in inp.banned_everywhere:
            text = f"{member} is banned from every node: its agent reported a configuration error (rc 6)"
            return None, Reason(ReasonCode.BANNED_EVERYWHERE, text, first=member), {}
    active_nodes = frozenset().union(*(inp.active.get(m, frozenset()) for m in unit.members))
    if not inp.has_quorum:
        if policy in ("stop", "demote"):
            # demote: promotable resources are demoted, every other resource stops.
            text = f"the partition has no quorum (no-quorum-policy={policy})"
            return None, Reason(ReasonCode.NO_QUORUM, text), {}
        if policy == "freeze":
            live = sorted(n for n in active_nodes if n in inp.online)
            if live:
                text = "no quorum: frozen where it runs (no-quorum-policy=freeze)"
                return NodeName(live[0]), Reason(ReasonCode.FROZEN, text, nodes=(NodeName(live[0]),)), {}
            return None, Reason(ReasonCode.NO_QUORUM, "no quorum: not started (no-quorum-policy=freeze)"), {}
    scores: dict[NodeName, int] = {}
    why_not: dict[NodeName, str] = {}
    for node in inp.nodes:
        score, reason = _score(inp, unit, node, unit_of, unit_node)
        scores[node] = score
        if reason:
            why_not[node] = reason
    candidates = [n for n in inp.nodes if scores[n] >= 0 and n not in why_not]
    pulled = {n: r for n in candidates if (r := _dependent_blocked(inp, unit, n, unit_of)) is not None}
    if pulled and len(pulled) < len(candidates):  # influence only while it leaves somewhere to go
        for node, reason in pulled.items():
            scores[node], why_not[node] = -INFINITY, reason
        candidates = [n for n in candidates if n not in pulled]
    if not candidates:
        per_node = tuple((n, why_not.get(n, f"score {scores[n]}")) for n in inp.nodes)
        detail = "; ".join(f"{n}: {text}" for n, text in per_node)
        return None, Reason(ReasonCode.NO_NODE, f"no node can run it ({detail})", per_node=per_node), scores
    order = {n: i for i, n in enumerate(inp.nodes)}
    best = max(candidates, key=lambda n: (scores[n], n in active_nodes, -load.get(n, 0), -order[n]))
    verb = "stays on" if best in active_nodes else "goes to"
    text = f"{verb} {best} (score {format_score(scores[best])})"
    return best, Reason(ReasonCode.PLACED, text, nodes=(best,)), scores


def _score(
    inp: PlacementInput,
    unit: _Unit,
    node: NodeName,
    unit_of: Mapping[str, _Unit],
    unit_node: Mapping[str, NodeName | None],
) -> tuple[int, str | None]:
    config = inp.config
    unavailable = node_unavailable_reason(config, node, inp.online)
    if unavailable:
        return -INFINITY, unavailable
    score = 0
    for member in unit.members:
        blocked = _member_blocked(inp, member, node)
        if blocked is not None:
            return -INFINITY, blocked
        if node in inp.active.get(member, frozenset()):
            score = add_scores(score, config.stickiness_of(member))
    ids = {unit.id, *unit.members}
    for location in config.locations:
        if location.rsc in ids and location.node == node:
            score = add_scores(score, location.score)
    for colocation in config.colocations:
        if colocation.rsc not in ids:
            continue
        anchor = unit_of.get(colocation.with_rsc)
        if anchor is None or anchor.id == unit.id or anchor.id not in unit_node:
            continue
        anchor_node = unit_node[anchor.id]
        if colocation.score >= INFINITY and anchor_node != node:
            where = "is not running" if anchor_node is None else f"runs on {anchor_node}"
            return -INFINITY, f"it must run with {colocation.with_rsc}, which {where}"
        if colocation.score <= -INFINITY and anchor_node == node:
            return -INFINITY, f"it must not run with {colocation.with_rsc}"
        if anchor_node == node:
            score = add_scores(score, colocation.score)
    if score <= -INFINITY:
        return score, "a location constraint forbids it (-inf)"
    return score, None


def _member_blocked(inp: PlacementInput, member: str, node: NodeName) -> str | None:
    """Why ``member``'s own failures keep it off ``node``, or None."""
    if node in inp.banned.get(member, frozenset()):
        return f"{member} failed to start there (cleanup to retry)"
    threshold = inp.config.migration_threshold_of(member)
    failures = inp.failcounts.get((member, node), 0)
    if is_banned_by_failures(failures, threshold):
        return f"{member} fail count {failures} reached migration-threshold {threshold}"
    return None


def _dependent_blocked(
    inp: PlacementInput, unit: _Unit, node: NodeName, unit_of: Mapping[str, _Unit]
) -> str | None:
    """Why a unit that must run with ``unit`` (directly or along a chain of mandatory
    colocations) could not run on ``node``, or None: Pacemaker's colocation influence."""
    config = inp.config
    seen, frontier = {unit.id}, [unit]
    while frontier:
        anchor = frontier.pop()
        ids = {anchor.id, *anchor.members}
        for colocation in config.colocations:
            dependent = unit_of.get(colocation.rsc)
            if (
                colocation.with_rsc not in ids
                or colocation.score < INFINITY
                or dependent is None
                or dependent.id in seen
                or not _is_critical(config, colocation.rsc)
            ):
                continue
            seen.add(dependent.id)
            frontier.append(dependent)
            for member in dependent.members:
                if not _is_critical(config, member):
                    continue
                blocked = _member_blocked(inp, member, node)
                forbidden = any(
                    loc.rsc in (member, dependent.id) and loc.node == node and loc.score <= -INFINITY
                    for loc in config.locations
                )
                if blocked is not None or forbidden:
                    why = blocked or "a location constraint forbids it (-inf)"
                    return f"{member} cannot run there ({why}) and must run with {colocation.with_rsc}"
    return None
