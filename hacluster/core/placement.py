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

Clones (Pacemaker Explained, "Clones"): each instance (``d:0`` …, ``clone-max`` of them) is
a unit of its own.  Instances of one clone are placed one after the other, those already
active first so that they stay; at most ``clone-node-max`` go to one node, and between
equal scores an instance goes where fewer instances of its clone run (spread).  A clone
stickiness of 1 is the default (``cib.meta_of``).  A location or colocation naming the
clone (or its child) applies to every instance; a colocation with a clone (``vip with
d-clone``) means "with one of its instances", and with its role (``d-clone:Promoted``)
"with the promoted instance".  Once every instance of a promotable clone is placed, the
promotion is chosen (``_promotions``): among the placed instances with a promotion score
(the node attribute ``master-<primitive>``, which agents set through ``crm_master``), plus
``role=Promoted`` locations and colocations of the promoted role, the best ``promoted-max``
(at most ``promoted-node-max`` per node) are Promoted, the others Unpromoted.  Between
equal scores the instance already promoted keeps the role.  An instance without a
promotion score is never promoted, as in Pacemaker.  Colocation influence (above) does not
reach through clones yet: a dependent of a clone, or of its Promoted role, does not move
the clone's instances or its promotion.

This function does not decide *how* to get there (what to stop first, what must be fenced):
``transition.py`` turns a placement and the observed state into a safe plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hacluster.core.cib import (
    INFINITY,
    ClusterConfig,
    base_id,
    format_score,
    instance_id,
    parse_boolean,
    parse_score,
)
from hacluster.core.ids import NodeName
from hacluster.core.orders import clone_prerequisite, dependencies, prerequisite_instances
from hacluster.core.plan import Reason, ReasonCode, Role
from hacluster.core.rules import location_scores


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
    node_attributes: Mapping[NodeName, Mapping[str, str]] | None = None
    """Node → attributes rules and promotion scores read (permanent merged with transient);
    None: the configuration's permanent ones (``node`` lines)."""
    roles: Mapping[str, Mapping[NodeName, Role]] = field(default_factory=dict)
    """Instance id → node → the role it was last reported in (promotion keeps its place)."""

    def attributes(self, node: NodeName) -> Mapping[str, str]:
        if self.node_attributes is not None:
            return self.node_attributes.get(node, {})
        for name, pairs in self.config.node_attributes:
            if name == node:
                return dict(pairs)
        return {}


@dataclass(frozen=True, slots=True)
class Placement:
    assignment: Mapping[str, NodeName | None]
    """Primitive id → node, or None when it should not run anywhere."""
    reasons: Mapping[str, Reason]
    """Primitive id → why it goes where it goes, or why it cannot run."""
    scores: Mapping[str, Mapping[NodeName, int]]
    """Unit id → node → score, for ``hacrm resource why`` and ``simulate``; a promotable
    clone's promotion scores under ``CLONE#promotion`` (instance nodes only)."""
    roles: Mapping[str, Role] = field(default_factory=dict)
    """Instance id → Promoted or Unpromoted, for the placed instances of promotable clones."""


@dataclass(slots=True)
class _Unit:
    id: str
    members: tuple[str, ...]
    index: int
    base: str = ""
    """The configured id (the group or primitive; for an instance, its child's id)."""
    clone: str | None = None
    base_members: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """What constraints name it by: its clone, or itself."""
        return self.clone if self.clone is not None else self.id

    @property
    def ids(self) -> set[str]:
        """Every configured id a constraint can name it by."""
        names = {self.base, *self.base_members}
        return names | {self.clone} if self.clone is not None else names


def _units(config: ClusterConfig, node_count: int, active: Mapping[str, frozenset[NodeName]]) -> list[_Unit]:
    grouped: set[str] = set()
    units: list[_Unit] = []
    clone_of = {c.child: c.id for c in config.clones}

    def add(unit_id: str, members: tuple[str, ...]) -> None:
        clone = clone_of.get(unit_id)
        if clone is None:
            units.append(_Unit(unit_id, members, len(units), unit_id, None, members))
            return
        count = config.clone_settings(clone, node_count).clone_max
        instances = [
            _Unit(
                instance_id(unit_id, i), tuple(instance_id(m, i) for m in members), 0, unit_id, clone, members
            )
            for i in range(count)
        ]
        # Active instances first, so they keep their nodes before the others choose.
        instances.sort(key=lambda u: not any(active.get(m) for m in u.members))
        for unit in instances:
            unit.index = len(units)
            units.append(unit)

    for group in config.groups:
        add(group.id, tuple(group.members))
        grouped.update(group.members)
    for primitive in config.primitives:
        if primitive.agent_class == "stonith" or primitive.id in grouped:
            continue
        add(primitive.id, (primitive.id,))
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
    units = _units(inp.config, len(inp.nodes), inp.active)
    unit_of: dict[str, _Unit] = {}
    for unit in units:
        unit_of[unit.id] = unit
        for member in unit.members:
            unit_of[member] = unit
    order = _placement_order(inp.config, units)
    deps = dependencies(inp.config, len(inp.nodes))
    held_off: dict[str, Reason] = {}
    while True:
        placement = _place_all(inp, order, held_off, unit_of)
        newly = _needing_what_cannot_run(inp.config, deps, placement, held_off)
        if not newly:
            return placement
        held_off.update(newly)


def clone_prerequisite_unmet(
    config: ClusterConfig,
    first: str,
    assignment: Mapping[str, NodeName | None],
    roles: Mapping[str, Role],
    reasons: Mapping[str, Reason],
) -> Reason | None:
    """For a clone prerequisite (``orders``): why it cannot be met by this assignment (no
    instance placed, or none promoted), else None; None for a resource id too."""
    prerequisite = clone_prerequisite(config, first)
    if prerequisite is None:
        return None
    clone_id, promoted = prerequisite
    instances = prerequisite_instances(config, clone_id, assignment)
    placed = [i for i in instances if assignment[i] is not None]
    if promoted and not any(roles.get(i) is Role.PROMOTED for i in placed):
        return Reason(ReasonCode.NO_NODE, f"no instance of {clone_id} is promoted", first=clone_id)
    if not placed:
        causes = [reasons[i] for i in instances if i in reasons]
        text = f"no instance of {clone_id} can run" + (f" ({causes[0].text})" if causes else "")
        return Reason(ReasonCode.NO_NODE, text, first=clone_id, cause=causes[0] if causes else None)
    return None


def _needing_what_cannot_run(
    config: ClusterConfig, deps: Mapping[str, list[str]], placement: Placement, held_off: Mapping[str, Reason]
) -> dict[str, Reason]:
    """Placed resources with a mandatory prerequisite that is placed nowhere."""
    out: dict[str, Reason] = {}
    for rsc, firsts in deps.items():
        if placement.assignment.get(rsc) is None or rsc in held_off:
            continue
        for first in firsts:
            unmet = clone_prerequisite_unmet(
                config, first, placement.assignment, placement.roles, placement.reasons
            )
            if unmet is not None:
                out[rsc] = Reason(
                    ReasonCode.NEEDS_FIRST,
                    f"it needs {first} first, which cannot run ({unmet.text})",
                    first=first,
                    cause=unmet,
                )
                break
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


@dataclass(slots=True)
class _State:
    """What placement has decided so far, in placement order."""

    unit_node: dict[str, NodeName | None] = field(default_factory=dict)
    load: dict[NodeName, int] = field(default_factory=dict)
    per_clone: dict[tuple[str, NodeName], int] = field(default_factory=dict)
    placed_keys: set[str] = field(default_factory=set)
    roles: dict[str, Role] = field(default_factory=dict)
    """Instance unit id → role, once its clone's promotion is chosen."""
    clone_units: dict[str, list[_Unit]] = field(default_factory=dict)
    unit_of: Mapping[str, _Unit] = field(default_factory=dict)
    """Unit id and member id → its unit (colocation influence follows dependents)."""


def _place_all(
    inp: PlacementInput, order: list[_Unit], held_off: Mapping[str, Reason], unit_of: Mapping[str, _Unit]
) -> Placement:
    config = inp.config
    assignment: dict[str, NodeName | None] = {}
    reasons: dict[str, Reason] = {}
    scores: dict[str, dict[NodeName, int]] = {}
    state = _State(load=dict.fromkeys(inp.nodes, 0), unit_of=unit_of)
    policy = config.no_quorum_policy()
    remaining: dict[str, int] = {}
    for unit in order:
        remaining[unit.key] = remaining.get(unit.key, 0) + 1
    member_roles: dict[str, Role] = {}

    for unit in order:
        node: NodeName | None
        unit_scores: dict[NodeName, int]
        if unit.members[0] in held_off:
            node, reason, unit_scores = None, held_off[unit.members[0]], {}
        else:
            node, reason, unit_scores = _place_unit(inp, unit, state, policy)
        state.unit_node[unit.id] = node
        scores[unit.id] = unit_scores
        if node is not None:
            state.load[node] = state.load.get(node, 0) + 1
            if unit.clone is not None:
                state.per_clone[(unit.clone, node)] = state.per_clone.get((unit.clone, node), 0) + 1
        if unit.clone is not None:
            state.clone_units.setdefault(unit.clone, []).append(unit)
        remaining[unit.key] -= 1
        if remaining[unit.key] == 0:
            state.placed_keys.add(unit.key)
            if unit.clone is not None:
                roles, promotion = _promotions(inp, unit.clone, state, policy)
                state.roles.update(roles)
                if promotion:
                    scores[f"{unit.clone}#promotion"] = promotion
        stopped_from, own, followers = _first_stopped_member(config, unit, held_off)
        for position, member in enumerate(unit.members):
            if stopped_from is not None and position >= stopped_from:
                assignment[member] = None
                reasons[member] = own if position == stopped_from else followers
                continue
            assignment[member] = node
            reasons[member] = reason
    for unit in order:
        role = state.roles.get(unit.id)
        if role is not None:
            member_roles.update((m, role) for m in unit.members if assignment.get(m) is not None)
    return Placement(assignment, reasons, scores, member_roles)


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


def _key_of(config: ClusterConfig, units: list[_Unit], rsc: str) -> str | None:
    """The placement key (clone id or unit id) a constraint's resource id names."""
    for unit in units:
        if rsc in unit.ids:
            return unit.key
    return None


def _placement_order(config: ClusterConfig, units: list[_Unit]) -> list[_Unit]:
    """Units that others are colocated with come first (depth-first, cycles broken by order);
    a clone's instances stay together."""
    by_key: dict[str, list[_Unit]] = {}
    for unit in units:
        by_key.setdefault(unit.key, []).append(unit)
    depends: dict[str, set[str]] = {key: set() for key in by_key}
    for colocation in config.colocations:
        dependent = _key_of(config, units, colocation.rsc)
        anchor = _key_of(config, units, colocation.with_rsc)
        if dependent is not None and anchor is not None and dependent != anchor:
            depends[dependent].add(anchor)
    priority = {
        key: max(_meta_int(config, m, "priority", 0) for u in group for m in u.members)
        for key, group in by_key.items()
    }
    first_index = {key: group[0].index for key, group in by_key.items()}
    ordered = sorted(by_key, key=lambda k: (-priority[k], first_index[k]))
    done: list[_Unit] = []
    seen: set[str] = set()

    def visit(key: str, path: frozenset[str]) -> None:
        if key in seen or key in path:
            return
        for anchor in sorted(depends[key], key=lambda k: (-priority[k], first_index[k])):
            visit(anchor, path | {key})
        if key not in seen:
            seen.add(key)
            done.extend(by_key[key])

    for key in ordered:
        visit(key, frozenset())
    return done


def _place_unit(
    inp: PlacementInput, unit: _Unit, state: _State, policy: str
) -> tuple[NodeName | None, Reason, dict[NodeName, int]]:
    config = inp.config
    if config.target_role_of(unit.base) == "Stopped" or config.target_role_of(unit.members[0]) == "Stopped":
        return None, _TARGET_ROLE_STOPPED, {}
    if unit.clone is not None and config.target_role_of(unit.clone) == "Stopped":
        return None, _TARGET_ROLE_STOPPED, {}
    for member in unit.members:
        if member in inp.banned_everywhere or base_id(member) in inp.banned_everywhere:
            text = f"{member} is banned from every node: its agent reported a configuration error (rc 6)"
            return None, Reason(ReasonCode.BANNED_EVERYWHERE, text, first=member), {}
    active_nodes = frozenset().union(*(inp.active.get(m, frozenset()) for m in unit.members))
    if not inp.has_quorum:
        if policy in ("stop", "demote") and not (policy == "demote" and config.is_promotable(unit.base)):
            # demote: promotable resources are demoted (``_promotions``), every other one stops.
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
        score, reason = _score(inp, unit, node, state)
        scores[node] = score
        if reason:
            why_not[node] = reason
    candidates = [n for n in inp.nodes if scores[n] >= 0 and n not in why_not]
    pulled = {n: r for n in candidates if (r := _dependent_blocked(inp, unit, n, state.unit_of)) is not None}
    if pulled and len(pulled) < len(candidates):  # influence only while it leaves somewhere to go
        for node, reason in pulled.items():
            scores[node], why_not[node] = -INFINITY, reason
        candidates = [n for n in candidates if n not in pulled]
    if not candidates:
        per_node = tuple((n, why_not.get(n, f"score {scores[n]}")) for n in inp.nodes)
        detail = "; ".join(f"{n}: {text}" for n, text in per_node)
        return None, Reason(ReasonCode.NO_NODE, f"no node can run it ({detail})", per_node=per_node), scores
    order = {n: i for i, n in enumerate(inp.nodes)}

    def preference(n: NodeName) -> tuple[int, bool, int, int, int]:
        spread = state.per_clone.get((unit.clone, n), 0) if unit.clone is not None else 0
        return scores[n], n in active_nodes, -spread, -state.load.get(n, 0), -order[n]

    best = max(candidates, key=preference)
    verb = "stays on" if best in active_nodes else "goes to"
    text = f"{verb} {best} (score {format_score(scores[best])})"
    return best, Reason(ReasonCode.PLACED, text, nodes=(best,)), scores


def _anchor_nodes(
    inp: PlacementInput, state: _State, units_key: str | None, rsc: str, role: str | None
) -> set[NodeName] | None:
    """Where what ``rsc`` names runs (in ``role``), once placed; None: not placed yet."""
    if units_key is None or units_key not in state.placed_keys:
        return None
    clone = inp.config.clone_of(rsc)
    if clone is not None and clone.id == units_key:
        out: set[NodeName] = set()
        for unit in state.clone_units.get(clone.id, []):
            node = state.unit_node.get(unit.id)
            if node is None:
                continue
            if role is None or role == "Started" or state.roles.get(unit.id) == Role(role):
                out.add(node)
        return out
    node = state.unit_node.get(units_key)
    return set() if node is None else {node}


def _score(inp: PlacementInput, unit: _Unit, node: NodeName, state: _State) -> tuple[int, str | None]:
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
    if unit.clone is not None:
        limit = config.clone_settings(unit.clone, len(inp.nodes)).clone_node_max
        if state.per_clone.get((unit.clone, node), 0) >= limit:
            return -INFINITY, f"{unit.clone} already runs clone-node-max={limit} instance(s) there"
    ids = unit.ids
    attributes = inp.attributes(node)
    for location in config.locations:
        if location.rsc in ids:
            for value, source in location_scores(location, node, attributes):
                if value <= -INFINITY and location.rules:
                    return -INFINITY, source  # rule app-needs-db: db is not defined on n2
                score = add_scores(score, value)
    for colocation in config.colocations:
        if colocation.rsc not in ids or colocation.rsc_role in ("Promoted", "Unpromoted"):
            continue  # a role's colocation is a promotion preference (``_promotions``)
        anchor_key = _plain_key(config, colocation.with_rsc)
        if anchor_key == unit.key:
            continue
        nodes = _anchor_nodes(inp, state, anchor_key, colocation.with_rsc, colocation.with_rsc_role)
        if nodes is None:
            continue
        what = colocation.with_rsc + (f" ({colocation.with_rsc_role})" if colocation.with_rsc_role else "")
        if colocation.score >= INFINITY and node not in nodes:
            where = "is not running" if not nodes else f"runs on {', '.join(sorted(nodes))}"
            return -INFINITY, f"it must run with {what}, which {where}"
        if colocation.score <= -INFINITY and node in nodes:
            return -INFINITY, f"it must not run with {what}"
        if node in nodes:
            score = add_scores(score, colocation.score)
    if score <= -INFINITY:
        return score, "a location constraint forbids it (-inf)"
    return score, None


def _plain_key(config: ClusterConfig, rsc: str) -> str:
    """The unit key of a resource outside clones: its group, or itself."""
    clone = config.clone_of(rsc)
    if clone is not None:
        return clone.id
    group = config.group_of(rsc)
    return group.id if group is not None else rsc


def promotion_score(inp: PlacementInput, unit_members: tuple[str, ...], node: NodeName) -> int | None:
    """The agents' promotion score of an instance on ``node``: the sum of the node attributes
    ``master-<primitive>`` of its members (Pacemaker's name, set by ``crm_master``), or else
    the instance's own ``master-<primitive>:<n>`` (a globally unique clone's instances each
    have theirs); None when no member has one (never promoted there)."""
    attributes = inp.attributes(node)
    total: int | None = None
    for member in unit_members:
        text = attributes.get(f"master-{base_id(member)}", attributes.get(f"master-{member}"))
        if text is None:
            continue
        try:
            value = parse_score(text)
        except ValueError:
            continue
        total = value if total is None else add_scores(total, value)
    return total


def _promotions(
    inp: PlacementInput, clone_id: str, state: _State, policy: str
) -> tuple[dict[str, Role], dict[NodeName, int]]:
    """Promoted/Unpromoted for every placed instance of ``clone_id`` (module docstring)."""
    config = inp.config
    settings = config.clone_settings(clone_id, len(inp.nodes))
    if not settings.promotable:
        return {}, {}
    placed = [(u, state.unit_node[u.id]) for u in state.clone_units.get(clone_id, [])]
    roles = {u.id: Role.UNPROMOTED for u, node in placed if node is not None}
    blocked = config.target_role_of(clone_id) == "Unpromoted" or (not inp.has_quorum and policy == "demote")
    scored: list[tuple[int, bool, int, _Unit, NodeName]] = []
    promotion: dict[NodeName, int] = {}
    order = {n: i for i, n in enumerate(inp.nodes)}
    for unit, node in placed:
        if node is None:
            continue
        score = _promotion_preference(inp, clone_id, unit, node, state)
        if score is None:
            continue
        promotion[node] = score
        was = any(inp.roles.get(m, {}).get(node) is Role.PROMOTED for m in unit.members)
        if score >= 0 and not blocked:
            scored.append((score, was, -order[node], unit, node))
    scored.sort(key=lambda item: (item[0], item[1], item[2]), reverse=True)
    per_node: dict[NodeName, int] = {}
    chosen = 0
    for _, _, _, unit, node in scored:
        if chosen >= settings.promoted_max:
            break
        if per_node.get(node, 0) >= settings.promoted_node_max:
            continue
        roles[unit.id] = Role.PROMOTED
        per_node[node] = per_node.get(node, 0) + 1
        chosen += 1
    return roles, promotion


def _promotion_preference(
    inp: PlacementInput, clone_id: str, unit: _Unit, node: NodeName, state: _State
) -> int | None:
    """The promotion score plus ``role=Promoted`` locations and colocations of the promoted
    role; None without a promotion score from the agent."""
    score = promotion_score(inp, unit.members, node)
    if score is None:
        return None
    config = inp.config
    attributes = inp.attributes(node)
    for location in config.locations:
        if location.rsc in unit.ids:
            for value, _ in location_scores(location, node, attributes, role="Promoted"):
                score = add_scores(score, value)
    for colocation in config.colocations:
        if colocation.rsc not in unit.ids or colocation.rsc_role != "Promoted":
            continue
        anchor_key = _plain_key(config, colocation.with_rsc)
        nodes = _anchor_nodes(inp, state, anchor_key, colocation.with_rsc, colocation.with_rsc_role)
        if nodes is None:
            continue
        if colocation.score >= INFINITY and node not in nodes:
            return -INFINITY
        if colocation.score <= -INFINITY and node in nodes:
            return -INFINITY
        if node in nodes:
            score = add_scores(score, colocation.score)
    return score


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
                    loc.rsc in (member, dependent.id)
                    and loc.node == node
                    and loc.role is None
                    and loc.score <= -INFINITY
                    for loc in config.locations
                )
                if blocked is not None or forbidden:
                    why = blocked or "a location constraint forbids it (-inf)"
                    return f"{member} cannot run there ({why}) and must run with {colocation.with_rsc}"
    return None
