"""Operator edits of the cluster configuration: pure functions, old version in, new out.

Each returns a new ``ClusterConfig`` with ``epoch + 1`` or raises ``EditError`` with a stable
code and a sentence that names the fix.  The daemon proposes the result to the cluster; the
CLI's ``--dry-run`` and ``simulate`` can call the same functions without proposing anything.
"""

from __future__ import annotations

from dataclasses import replace

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
