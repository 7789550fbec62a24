"""Start order: which resources must be started before which.  Pure.

A group orders its members left to right; ``order … Mandatory: first then`` puts *first*
before *then* (a group as *first* means its last member, a group as *then* its first
member).  Optional and Serialize orders do not hold anything back.  Everything that must
wait for something else reads this one table: placement (a resource whose prerequisite
cannot run cannot run either), the plan (the same, while a prerequisite is moving), the
local reconciler (start after, stop before) and the simulator's order checker.

Clones (``node_count`` says how many instances a clone without ``clone-max`` has): a cloned
group orders each instance's members (``b:1`` after ``a:1``); a clone as *then* puts every
instance after *first*.  A clone as *first* is a *clone prerequisite*, named by the clone's
id (``d-clone``: at least one instance started, and every instance the plan places started
there) or, for ``d-clone:promote``, by ``promoted_prerequisite`` (an instance promoted where
the plan promotes one).  ``clone_prerequisite`` reads such a name back; the readers of this
table ask ``prerequisite_instances`` which instances stand behind it.  Deliberately
simpler than Pacemaker: ``interleave`` does not narrow an order to the instance on the same
node (it narrows colocation only), so an interleaved dependent waits for the whole clone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from hacluster.core.cib import ClusterConfig, base_id, instance_id

PROMOTED_SUFFIX: Final = "#promoted"
"""``db-clone#promoted``: the prerequisite "an instance of db-clone is promoted"."""


def promoted_prerequisite(clone_id: str) -> str:
    return f"{clone_id}{PROMOTED_SUFFIX}"


def clone_prerequisite(config: ClusterConfig, first: str) -> tuple[str, bool] | None:
    """``(clone id, promoted?)`` for a clone prerequisite name, else None (a resource id)."""
    promoted = first.endswith(PROMOTED_SUFFIX)
    clone_id = first.removesuffix(PROMOTED_SUFFIX)
    if any(c.id == clone_id for c in config.clones):
        return clone_id, promoted
    return None


def prerequisite_instances(config: ClusterConfig, clone_id: str, ids: Iterable[str]) -> list[str]:
    """The instances among ``ids`` that a clone prerequisite stands for: the instances of the
    clone's last member (its only one for a cloned primitive)."""
    last = config.clone_members(clone_id)[-1]
    return [rsc for rsc in ids if rsc != base_id(rsc) and base_id(rsc) == last]


def dependencies(config: ClusterConfig, node_count: int = 0) -> dict[str, list[str]]:
    """Resource → resources (or clone prerequisites) that must be started before it."""
    deps: dict[str, list[str]] = {}
    cloned_groups = {c.child: c for c in config.clones}
    for group in config.groups:
        pairs = list(zip(group.members, group.members[1:], strict=False))
        clone = cloned_groups.get(group.id)
        if clone is None:
            for before, after in pairs:
                deps.setdefault(after, []).append(before)
            continue
        for index in range(config.clone_settings(clone.id, node_count).clone_max):
            for before, after in pairs:
                deps.setdefault(instance_id(after, index), []).append(instance_id(before, index))
    members_of = {g.id: list(g.members) for g in config.groups}
    clone_ids = {c.id for c in config.clones}
    for order in config.orders:
        if order.kind != "Mandatory":
            continue
        firsts = _firsts(config, order.first, order.first_action, members_of, clone_ids)
        for then in _thens(config, order.then, members_of, clone_ids, node_count):
            deps.setdefault(then, []).extend(firsts)
    return deps


def _firsts(
    config: ClusterConfig, first: str, action: str, members_of: dict[str, list[str]], clone_ids: set[str]
) -> list[str]:
    if first in clone_ids:
        return [promoted_prerequisite(first) if action == "promote" else first]
    members = members_of.get(first, [first])
    return members[-1:] if first in members_of else members


def _thens(
    config: ClusterConfig, then: str, members_of: dict[str, list[str]], clone_ids: set[str], node_count: int
) -> list[str]:
    if then in clone_ids:
        head = config.clone_members(then)[0]
        count = config.clone_settings(then, node_count).clone_max
        return [instance_id(head, i) for i in range(count)]
    members = members_of.get(then, [then])
    return members[:1] if then in members_of else members
