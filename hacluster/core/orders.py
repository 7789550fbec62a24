"""Start order: which resources must be started before which.  Pure.

A group orders its members left to right; ``order … Mandatory: first then`` puts *first*
before *then* (a group as *first* means its last member, a group as *then* its first
member).  Optional and Serialize orders do not hold anything back.  Everything that must
wait for something else reads this one table: placement (a resource whose prerequisite
cannot run cannot run either), the plan (the same, while a prerequisite is moving), the
local reconciler (start after, stop before) and the simulator's order checker.
"""

from __future__ import annotations

from hacluster.core.cib import ClusterConfig


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
