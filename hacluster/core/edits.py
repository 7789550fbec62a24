"""Operator edits of the cluster configuration: pure functions, old version in, new out.

Each returns a new ``ClusterConfig`` with ``epoch + 1`` or raises ``EditError`` with a stable
code and a sentence that names the fix.  The daemon proposes the result to the cluster; the
CLI's ``--dry-run`` and ``simulate`` can call the same functions without proposing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TypeVar

from hacluster.core.cib import INFINITY, ClusterConfig, Location, Pairs
from hacluster.errors import HAClusterError

MOVE_PREFIX = "cli-move-"
"""One-shot move constraints: removed by the DC once the resource runs where it was sent."""
PIN_PREFIX = "cli-prefer-"


class EditError(HAClusterError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _set_pair(pairs: Pairs, key: str, value: str | None) -> Pairs:
    kept = tuple((k, v) for k, v in pairs if k != key)
    return kept if value is None else (*kept, (key, value))


def _known_node(config: ClusterConfig, nodes: tuple[str, ...], node: str) -> None:
    if node not in nodes:
        raise EditError("UNKNOWN_NODE", f"no node named {node!r}; configured nodes: {', '.join(nodes)}")


def _known_resource(config: ClusterConfig, rsc: str) -> None:
    ids = (*config.resource_ids(), *(g.id for g in config.groups))
    if rsc not in ids:
        known = ", ".join(ids) or "none"
        raise EditError("UNKNOWN_RESOURCE", f"no resource or group named {rsc!r}; known: {known}")


def set_node_attribute(
    config: ClusterConfig, nodes: tuple[str, ...], node: str, name: str, value: str | None
) -> ClusterConfig:
    """Set (or remove, with None) one node attribute such as ``standby``."""
    _known_node(config, nodes, node)
    attributes = dict(config.node_attributes)
    updated = _set_pair(attributes.get(node, ()), name, value)
    others = tuple((n, a) for n, a in config.node_attributes if n != node)
    node_attributes = (*others, (node, updated)) if updated else others
    return replace(config, epoch=config.epoch + 1, node_attributes=tuple(sorted(node_attributes)))


def set_property(config: ClusterConfig, name: str, value: str | None) -> ClusterConfig:
    """Set (or remove, with None) one cluster property (``crm_attribute -t crm_config``)."""
    properties = _set_pair(config.properties, name, value)
    if properties == config.properties:
        return config
    return replace(config, epoch=config.epoch + 1, properties=properties)


def set_meta(config: ClusterConfig, rsc: str, name: str, value: str | None) -> ClusterConfig:
    """Set (or remove) a meta attribute on a primitive or group, e.g. ``target-role``."""
    _known_resource(config, rsc)
    primitives = tuple(
        replace(p, meta=_set_pair(p.meta, name, value)) if p.id == rsc else p for p in config.primitives
    )
    groups = tuple(
        replace(g, meta=_set_pair(g.meta, name, value)) if g.id == rsc else g for g in config.groups
    )
    return replace(config, epoch=config.epoch + 1, primitives=primitives, groups=groups)


def move(
    config: ClusterConfig, nodes: tuple[str, ...], rsc: str, node: str, *, pin: bool = False
) -> ClusterConfig:
    """Send ``rsc`` to ``node``: one-shot by default (the constraint disappears once it is there)."""
    _known_resource(config, rsc)
    _known_node(config, nodes, node)
    if config.group_of(rsc) is not None:
        group = config.group_of(rsc)
        assert group is not None
        raise EditError(
            "MOVE_GROUP_MEMBER",
            f"{rsc} is in group {group.id}; move the group: resource move {group.id} {node}",
        )
    kept = tuple(loc for loc in config.locations if loc.id not in (MOVE_PREFIX + rsc, PIN_PREFIX + rsc))
    prefix = PIN_PREFIX if pin else MOVE_PREFIX
    location = Location(id=prefix + rsc, rsc=rsc, node=node, score=INFINITY)
    return replace(config, epoch=config.epoch + 1, locations=(*kept, location))


def unmove(config: ClusterConfig, rsc: str) -> ClusterConfig:
    _known_resource(config, rsc)
    kept = tuple(loc for loc in config.locations if loc.id not in (MOVE_PREFIX + rsc, PIN_PREFIX + rsc))
    if len(kept) == len(config.locations):
        raise EditError("NOTHING_TO_CLEAR", f"{rsc} has no move or pin constraint")
    return replace(config, epoch=config.epoch + 1, locations=kept)


def completed_moves(config: ClusterConfig, running_on: dict[str, set[str]]) -> list[str]:
    """One-shot move constraints whose resource now runs (all its members) on the target."""
    done = []
    for location in config.locations:
        if not location.id.startswith(MOVE_PREFIX):
            continue
        group = next((g for g in config.groups if g.id == location.rsc), None)
        members = group.members if group is not None else (location.rsc,)
        if all(running_on.get(m) == {location.node} for m in members):
            done.append(location.id)
    return done


def drop_locations(config: ClusterConfig, ids: list[str]) -> ClusterConfig:
    return replace(
        config, epoch=config.epoch + 1, locations=tuple(loc for loc in config.locations if loc.id not in ids)
    )


# ---------------------------------------------------------------------------------------------
# Pins with an expiry, and Heartbeat's hb_standby / hb_takeover sets

PIN_UNTIL_SUFFIX = "-until"
"""``cli-prefer-<rsc>-until=<unix seconds>``, a node attribute of the pin's target node.

Cluster properties are checked against a fixed list and node attributes are free-form, so the
expiry of a pin lives beside the node it pins to; the DC drops the pin (and the attribute)
once the wall clock passes it.
"""

HEARTBEAT_SETS = ("all", "local", "foreign", "failback")


def pin_until_attribute(rsc: str) -> str:
    return f"{PIN_PREFIX}{rsc}{PIN_UNTIL_SUFFIX}"


def _drop_node_attribute_everywhere(config: ClusterConfig, name: str) -> ClusterConfig:
    node_attributes = tuple(
        (node, kept)
        for node, attributes in config.node_attributes
        if (kept := tuple((k, v) for k, v in attributes if k != name))
    )
    return replace(config, node_attributes=node_attributes)


def pin(
    config: ClusterConfig, nodes: tuple[str, ...], rsc: str, node: str, *, until_s: int | None = None
) -> ClusterConfig:
    """Pin ``rsc`` to ``node`` (``cli-prefer-<rsc>``), optionally only until ``until_s`` (unix time)."""
    pinned = _drop_node_attribute_everywhere(
        move(config, nodes, rsc, node, pin=True), pin_until_attribute(rsc)
    )
    if until_s is None:
        return pinned
    return replace(
        set_node_attribute(pinned, nodes, node, pin_until_attribute(rsc), str(until_s)), epoch=pinned.epoch
    )


def pins(config: ClusterConfig) -> list[tuple[str, str, str, int | None]]:
    """Every pin as ``(constraint id, resource, node, until unix seconds or None)``."""
    out = []
    for location in config.locations:
        if location.id.startswith(PIN_PREFIX):
            raw = config.node_attribute(location.node, pin_until_attribute(location.rsc))
            until = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
            out.append((location.id, location.rsc, location.node, until))
    return out


def expire_pins(config: ClusterConfig, now_s: int) -> ClusterConfig | None:
    """Drop pins whose expiry has passed and expiry attributes whose pin is gone; None if none."""
    pinned = {location.rsc for location in config.locations if location.id.startswith(PIN_PREFIX)}
    expired = {rsc for _, rsc, _, until in pins(config) if until is not None and until <= now_s}
    stale = {
        k[len(PIN_PREFIX) : -len(PIN_UNTIL_SUFFIX)]
        for _, attributes in config.node_attributes
        for k, _ in attributes
        if k.startswith(PIN_PREFIX) and k.endswith(PIN_UNTIL_SUFFIX)
    } - pinned
    if not expired and not stale:
        return None
    new = replace(
        config,
        epoch=config.epoch + 1,
        locations=tuple(loc for loc in config.locations if loc.id not in {PIN_PREFIX + r for r in expired}),
    )
    for rsc in sorted(expired | stale):
        new = _drop_node_attribute_everywhere(new, pin_until_attribute(rsc))
    return new


def top_level_units(config: ClusterConfig) -> list[tuple[str, tuple[str, ...]]]:
    """What Heartbeat calls resource groups: each group, then each ungrouped primitive (no stonith)."""
    units = [(group.id, group.members) for group in config.groups]
    grouped = {m for group in config.groups for m in group.members}
    units += [
        (p.id, (p.id,)) for p in config.primitives if p.agent_class != "stonith" and p.id not in grouped
    ]
    return units


def preferred_node(config: ClusterConfig, unit: str) -> str | None:
    """The node the configuration prefers for ``unit`` (highest positive score, cli- constraints aside)."""
    best = sorted(
        (-location.score, location.node)
        for location in config.locations
        if location.rsc == unit and location.score > 0 and not location.id.startswith("cli-")
    )
    return best[0][1] if best else None


def heartbeat_units(config: ClusterConfig, node: str, which: str) -> list[str]:
    """Units in Heartbeat's set ``which`` as seen from ``node``: local = preferred here, foreign = not."""
    if which not in HEARTBEAT_SETS:
        raise EditError(
            "BAD_SET", f"{which!r} is not a Heartbeat resource set; use one of {', '.join(HEARTBEAT_SETS)}"
        )
    ids = [unit for unit, _ in top_level_units(config)]
    if which == "all":
        return ids
    local = [unit for unit in ids if preferred_node(config, unit) == node]
    return local if which == "local" else [unit for unit in ids if unit not in local]


def unit_node(config: ClusterConfig, unit: str, running_on: dict[str, set[str]]) -> str | None:
    """The one node where every member of ``unit`` runs, if there is one."""
    members = dict(top_level_units(config)).get(unit, (unit,))
    where = [running_on.get(m, set()) for m in members]
    first = where[0] if where else set()
    return next(iter(first)) if len(first) == 1 and all(w == first for w in where) else None


def hand_over(
    config: ClusterConfig,
    nodes: tuple[str, ...],
    node: str,
    which: str,
    *,
    takeover: bool,
    running_on: dict[str, set[str]],
    available: tuple[str, ...],
) -> tuple[ClusterConfig, list[tuple[str, str]]]:
    """``hb_standby`` (``takeover=False``) or ``hb_takeover`` on ``node`` as one configuration change.

    Standby ``all`` puts ``node`` in standby; standby ``local``/``foreign`` pins each unit of the
    set that runs on ``node`` to another available node.  Takeover pins the set to ``node`` and
    ends its standby.  ``available`` lists the nodes that may take resources (online, not in
    standby or maintenance).  Returns the new configuration (the same object when nothing
    changes) and the ``(unit, node)`` pins it made.
    """
    _known_node(config, nodes, node)
    units = heartbeat_units(config, node, which)
    which = "foreign" if which == "failback" else which
    moves: list[tuple[str, str]] = []
    new = config
    if takeover:
        if config.node_attribute(node, "standby") is not None:
            new = replace(set_node_attribute(new, nodes, node, "standby", None), epoch=config.epoch)
        moves = [(unit, node) for unit in units if unit_node(config, unit, running_on) != node]
    elif which == "all":
        new = replace(set_node_attribute(new, nodes, node, "standby", "on"), epoch=config.epoch)
    else:
        others = [n for n in available if n != node]
        for unit in units:
            if unit_node(config, unit, running_on) != node:
                continue
            if not others:
                raise EditError(
                    "NO_OTHER_NODE",
                    f"no other node can take {unit}: every other node is offline, in standby or in maintenance",
                )
            preferred = preferred_node(config, unit)
            moves.append((unit, preferred if preferred in others else others[0]))
    for unit, target in moves:
        new = replace(pin(new, nodes, unit, target), epoch=config.epoch)
    if new == config:
        return config, []
    return replace(new, epoch=config.epoch + 1), moves


def rsc_hold(config: ClusterConfig, node: str, running_on: dict[str, set[str]], in_transition: bool) -> str:
    """Heartbeat's ``cl_status rscstatus`` for ``node``: none, local, foreign, all or transition."""
    if in_transition:
        return "transition"
    held = [unit for unit, _ in top_level_units(config) if unit_node(config, unit, running_on) == node]
    local = [unit for unit in held if preferred_node(config, unit) == node]
    foreign = [unit for unit in held if unit not in local]
    if local and foreign:
        return "all"
    return "local" if local else ("foreign" if foreign else "none")


# ---------------------------------------------------------------------------------------------
# configure load update


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


_T = TypeVar("_T")


def _merged(old: tuple[_T, ...], new: tuple[_T, ...], key: Callable[[_T], Hashable]) -> tuple[_T, ...]:
    fresh = {key(x): x for x in new}
    kept = [fresh.pop(key(x), x) for x in old]
    return (*kept, *fresh.values())
