"""The frozen view every decision is made from: the cluster as one node sees it, at one moment.

Theory of operation
-------------------
``ResourceManager.snapshot()`` freezes what the resource manager knows into a
``ClusterSnapshot``: the configuration, the members, every node's last reported state of
every resource, fail counts, who is fenced, who left cleanly, who was lost uncleanly, who
is leaving, quorum.  The rules read nothing else:

- ``dc.plan_for(view)``: where each resource may run now (the DC's plan);
- ``reconcile.decide(view, plan, node, local)``: what one node does about it;
- ``fencing.nodes_to_fence(view)``: which nodes must be fenced now.

The live cluster builds a view at every step and calls those three; ``simulate.predict``
(``hacrm simulate``) and ``explain.why`` start from the same snapshot, change it as the
operator's what-ifs say, and call the same three.  That is what makes a simulation run the
cluster's own code.

A view is a plain value: tests build one by hand (every field but the first four has a
default) and ``dataclasses.replace`` changes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hacluster.core.cib import ClusterConfig
from hacluster.core.fence_devices import FenceDeviceSpec, devices_from_config
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.plan import Plan, Role


def has_quorum(nodes: int, members: int) -> bool:
    """The quorum rule: a strict majority of the configured nodes; a cluster of one or two
    nodes always has it (a two-node split is settled by fencing delays instead)."""
    return True if nodes <= 2 else 2 * members > nodes


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
    """Active members, the node that took the snapshot included."""
    observed: Mapping[str, Mapping[NodeName, LocalState]]
    """Resource → node → the state that node last reported (its own state for the node that
    took the snapshot); lost nodes keep their last report."""
    roles: Mapping[str, Mapping[NodeName, Role]] = field(default_factory=dict)
    """Instance → node → the role reported there, for promotable clones' instances (a
    resource not listed has no role other than Started)."""
    failcounts: Mapping[tuple[str, NodeName], int] = field(default_factory=dict)
    failures: Mapping[tuple[str, NodeName], Failure] = field(default_factory=dict)
    banned_everywhere: frozenset[str] = frozenset()
    """Resources an agent somewhere answered rc 6 for (configuration error)."""
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
    node_attributes: Mapping[NodeName, Mapping[str, str]] | None = None
    """Node → attributes for rules and promotion scores (permanent merged with transient,
    ``core.attributes``); None: the configuration's permanent ones."""
    watchdogs: Mapping[NodeName, int] = field(default_factory=dict)
    """Node → the watchdog timeout it announced in its reports (ms; 0 or absent: no watchdog)."""
    lost_quorum_running: tuple[str, ...] = ()
    """Self-fencing: what ran on this node when its partition lost quorum (empty: nothing, or never)."""

    # --- derived facts, each the one definition of its rule ----------------------------------

    @property
    def online(self) -> frozenset[NodeName]:
        """Members that may take resources: not leaving."""
        return self.members - self.leaving

    def managed_ids(self) -> list[str]:
        """Every resource the cluster runs (fence devices aside; clone instances, ``d:0`` …,
        for a cloned primitive), in configuration order."""
        return list(self.config.runnable_ids(len(self.nodes)))

    def role(self, rsc: str, node: NodeName) -> Role:
        """The role ``node`` last reported for ``rsc`` (Started: none other)."""
        return self.roles.get(rsc, {}).get(node, Role.STARTED)

    def must_fence(self) -> bool:
        """Fencing is on and there is something to protect."""
        return self.config.is_stonith_enabled() and bool(self.managed_ids())

    def devices(self) -> tuple[FenceDeviceSpec, ...]:
        return devices_from_config(self.config, self.extra_fence_devices)

    def trusted_down(self) -> frozenset[NodeName]:
        """Lost nodes known to run nothing: fenced, left cleanly, or (fencing off) any lost node."""
        down = self.clean_exits | self.fenced
        return down if self.must_fence() else down | self.unclean

    def awaiting_fence(self) -> list[NodeName]:
        """Lost nodes that must be fenced before anything new starts (fencing on)."""
        if not self.must_fence():
            return []
        return sorted(self.unclean - self.fenced)

    def state(self, rsc: str, node: NodeName) -> LocalState:
        """What ``node`` last reported for ``rsc``; never reported: stopped."""
        return self.observed.get(rsc, {}).get(node, LocalState.STOPPED)

    def active(self) -> dict[str, frozenset[NodeName]]:
        """Resource → members where it is started or starting (stickiness counts there)."""
        return {
            rsc: frozenset(
                n
                for n, s in states.items()
                if n in self.members and s in (LocalState.STARTED, LocalState.STARTING)
            )
            for rsc, states in self.observed.items()
        }
