"""Reconciliation: what one node does now to follow the plan.  Pure; one rule per function.

Theory of operation
-------------------
Every node, at every step, compares the plan with what it runs and answers with at most one
operation per resource (``decide``):

- **probe** a resource whose state here is not known yet;
- **stop** a failed resource once what needs it has stopped (it may be partly running);
- **stop** a running resource the plan does not give to this node, or whose prerequisite is
  being recovered, once its dependents have stopped (``dependents_stopped``), or whose
  definition changed (to start it again with the new one);
- **monitor** a running resource whose recurring monitor is due;
- **start** a resource the plan gives to this node once every prerequisite is started where
  the plan puts it (``orders.dependencies``, ``prerequisite_started``), unless a member still reports it active
  (``is_held_elsewhere``: a plan older than a peer's report must never make two copies),
  unless it is being recovered, or its fail count bans it here, or something that needs
  it and is being restarted still runs (``restarting_dependents_run``).

A promotable clone's instance that is started here follows the plan's role: **promote**
when the plan promotes it here (prerequisites started, and no other instance reported
possibly promoted beyond ``promoted-max``: ``promotion_allowed``, the local half of the
safety rule), **demote** when the plan does not, or before it stops (what needs the
promoted role stops first).

Nothing happens to a resource with an operation in flight, to an unmanaged resource
(``is-managed=false`` or ``meta maintenance=true``), or anywhere in maintenance
(``maintenance-mode``, or the node attribute ``maintenance``); a resource the plan holds
(``multiple-active=block``) is only probed.

``local`` carries what only the node itself knows: which resources it has, and per resource
whether an operation is pending, whether its definition changed under it, whether its monitor
is due; for the node, whether it is leaving and whether it holds its starts after a freeze.
The resource manager passes its own facts; the simulator passes idle facts for every member
and gets the same answers the members would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hacluster.core.cib import ClusterConfig, instance_index
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, Action, LocalState
from hacluster.core.orders import (
    clone_prerequisite,
    dependencies,
    prerequisite_instances,
    promoted_prerequisite,
)
from hacluster.core.placement import is_banned_by_failures
from hacluster.core.plan import Plan, Role
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.transition import possibly_promoted

Observed = Mapping[str, Mapping[NodeName, LocalState]]

_HELD = MAYBE_ACTIVE - {LocalState.UNKNOWN}
"""Possibly active as a peer reports it: a peer's ``unknown`` is a probe it has not done yet."""


@dataclass(frozen=True, slots=True)
class Op:
    resource: str
    action: Action


@dataclass(frozen=True, slots=True)
class LocalFacts:
    """What only this node knows about one of its resources."""

    pending: bool = False
    """An operation is in flight: nothing else happens to it meanwhile."""
    definition_changed: bool = False
    """It runs with an older agent or parameters than the configuration now gives."""
    monitor_due: bool = False


@dataclass(frozen=True, slots=True)
class NodeFacts:
    resources: Mapping[str, LocalFacts] = field(default_factory=dict)
    """Every resource this node has a local entry for (configured ones and orphans it may
    still run), in the order it acts on them."""
    leaving: bool = False
    hold: bool = False
    """After a freeze longer than the dead time: start nothing, stop everything for a while."""
    is_dc: bool = False
    """A leaving node that plans for itself (or has no plan) stops everything at once;
    otherwise it follows the DC's plan, which moves its resources away in order."""


def decide(view: ClusterSnapshot, plan: Plan | None, node: NodeName, local: NodeFacts) -> list[Op]:
    """The operations ``node`` starts now, one per resource at most (module docstring)."""
    config = view.config
    if config.is_maintenance_mode() or config.is_node_in_maintenance(node):
        return []
    deps = dependencies(config, len(view.nodes))
    recovering = recovering_set(view, deps)
    configured = set(view.managed_ids())
    out: list[Op] = []
    for rsc, facts in local.resources.items():
        if facts.pending or (rsc in configured and not config.is_managed(rsc)):
            continue
        state = view.state(rsc, node)
        if state is LocalState.UNKNOWN:
            out.append(Op(rsc, Action.PROBE))
            continue
        if plan is not None and rsc in plan.held:
            continue  # probed (after a cleanup) to see how many copies are left, nothing more
        wanted = _is_wanted_here(plan, rsc, node, local, configured)
        if state is LocalState.FAILED:
            if dependents_stopped(view, deps, rsc, node):  # they are in `recovering`: they stop first
                out.append(Op(rsc, Action.STOP))
        elif state is LocalState.STARTED:
            leave = wanted is False or rsc in recovering
            role = view.role(rsc, node)
            if role is Role.PROMOTED and (
                leave or facts.definition_changed or not _is_promoted_here(plan, rsc)
            ):
                # Demote first (Pacemaker demotes before it stops), once what needs the role stopped.
                if dependents_stopped(view, deps, _promoted_name(config, rsc), node):
                    out.append(Op(rsc, Action.DEMOTE))
            elif facts.definition_changed or (leave and dependents_stopped(view, deps, rsc, node)):
                out.append(Op(rsc, Action.STOP))
            elif (
                role is Role.UNPROMOTED
                and _is_promoted_here(plan, rsc)
                and not local.leaving
                and promotion_allowed(view, rsc, node)
                and all(prerequisite_started(view, plan, first) for first in deps.get(rsc, []))
            ):
                out.append(Op(rsc, Action.PROMOTE))
            elif facts.monitor_due:
                out.append(Op(rsc, Action.MONITOR))
        elif state is LocalState.STOPPED and wanted and not local.leaving:
            threshold = config.migration_threshold_of(rsc)
            if is_banned_by_failures(view.failcounts.get((rsc, node), 0), threshold):
                continue
            if rsc in view.banned_everywhere or rsc in recovering or is_held_elsewhere(view, rsc, node):
                continue  # a plan older than a peer's report: never two copies
            if restarting_dependents_run(
                view, deps, recovering, rsc, plan.held if plan is not None else frozenset()
            ):
                continue
            if all(prerequisite_started(view, plan, first) for first in deps.get(rsc, [])):
                out.append(Op(rsc, Action.START))
    return out


def _is_promoted_here(plan: Plan | None, rsc: str) -> bool:
    return plan is not None and plan.role_of(rsc) is Role.PROMOTED


def _promoted_name(config: ClusterConfig, rsc: str) -> str:
    """The prerequisite name of ``rsc``'s clone's promoted role (``orders``)."""
    clone = config.clone_of(rsc)
    return promoted_prerequisite(clone.id) if clone is not None else rsc


def promotion_allowed(view: ClusterSnapshot, rsc: str, node: NodeName) -> bool:
    """Promoting ``rsc`` here keeps its clone within promoted-max, counting every other
    instance any node reports as possibly promoted (lost nodes not fenced included): a plan
    older than a peer's report never makes one Promoted too many."""
    config = view.config
    clone = config.clone_of(rsc)
    if clone is None:
        return False
    limit = config.clone_settings(clone.id, len(view.nodes)).promoted_max
    down = view.trusted_down()
    others = {
        instance_index(other)
        for other in prerequisite_instances(config, clone.id, view.roles)
        if other != rsc and possibly_promoted(view.observed, view.roles, other, view.members, down)
    }
    return len(others) < limit


def _is_wanted_here(
    plan: Plan | None, rsc: str, node: NodeName, local: NodeFacts, configured: set[str]
) -> bool | None:
    """True/False per the plan; None when there is no plan to follow (keep as is)."""
    if rsc not in configured:
        return False  # removed from the configuration: stop it
    if local.leaving and (plan is None or local.is_dc):
        return False
    if local.hold:
        return False
    if plan is None:
        return None
    return plan.assignment.get(rsc) == node


def is_held_elsewhere(view: ClusterSnapshot, rsc: str, node: NodeName) -> bool:
    """A member other than ``node`` last reported ``rsc`` as possibly active."""
    return any(n != node and n in view.members and s in _HELD for n, s in view.observed.get(rsc, {}).items())


def dependents_stopped(
    view: ClusterSnapshot, deps: Mapping[str, list[str]], rsc: str, node: NodeName
) -> bool:
    """Nothing that needs ``rsc`` first may still be active on a member (``node`` included).

    ``node``'s own ``unknown`` counts as active: on the node itself it is a probe in flight
    (after a cleanup, say), and the resource may be running.
    """
    for then, firsts in deps.items():
        if rsc not in firsts:
            continue
        for holder, state in view.observed.get(then, {}).items():
            possible = MAYBE_ACTIVE if holder == node else _HELD
            if (holder in view.members or holder == node) and state in possible:
                return False
    return True


def restarting_dependents_run(
    view: ClusterSnapshot, deps: Mapping[str, list[str]], recovering: set[str], rsc: str, held: frozenset[str]
) -> bool:
    """A resource that needs ``rsc`` and is being restarted (``recovering``) still runs.

    Then ``rsc`` does not start yet: a mandatory order stops the dependent before its
    prerequisite starts again (Pacemaker orders the dependent's stop before the
    prerequisite's stop, and that before its start), so every node agrees on one order
    whatever the agents' timing.  A dependent that will not stop by itself (unmanaged, held,
    its stop failed) is not waited for.
    """
    config = view.config
    for then, firsts in deps.items():
        if rsc not in firsts or then not in recovering or then in held:
            continue
        if then in config.resource_ids() and not config.is_managed(then):
            continue
        states = view.observed.get(then, {})
        if any(n in view.members and s in _STOPS_ITSELF for n, s in states.items()):
            return True
    return False


_STOPS_ITSELF = frozenset({LocalState.STARTING, LocalState.STARTED, LocalState.STOPPING, LocalState.FAILED})


def prerequisite_started(view: ClusterSnapshot, plan: Plan | None, first: str) -> bool:
    """``first`` is started where the plan puts it (anywhere, when the plan leaves it alone).

    Not merely "started somewhere": a node that gets the plan before the report that
    ``first`` stopped on its old node must not start what needs it on the strength of that
    stale report (a DC sends its plan before its own report in a step, and peers' messages
    arrive in any order).
    """
    prerequisite = clone_prerequisite(view.config, first)
    if prerequisite is not None:
        return _clone_prerequisite_met(view, plan, *prerequisite)
    target = plan.assignment.get(first) if plan is not None else None
    if target is None:
        return is_started(first, view.observed, view.members)
    return view.observed.get(first, {}).get(target) is LocalState.STARTED


def _clone_prerequisite_met(view: ClusterSnapshot, plan: Plan | None, clone_id: str, promoted: bool) -> bool:
    """A clone prerequisite: an instance started (promoted) where the plan puts (promotes) it."""
    instances = prerequisite_instances(view.config, clone_id, view.observed)
    for rsc in instances:
        target = plan.assignment.get(rsc) if plan is not None else None
        for node, state in view.observed.get(rsc, {}).items():
            if state is not LocalState.STARTED or node not in view.members:
                continue
            if target is not None and node != target:
                continue
            if promoted and view.role(rsc, node) is not Role.PROMOTED:
                continue
            return True
    return False


def is_started(rsc: str, observed: Observed, members: frozenset[NodeName]) -> bool:
    """``rsc`` is reported started on one of ``members``."""
    return any(s is LocalState.STARTED and n in members for n, s in observed.get(rsc, {}).items())


def recovering_set(view: ClusterSnapshot, deps: Mapping[str, list[str]]) -> set[str]:
    """Resources to stop because a prerequisite is down (transitively).

    Down: failed, or running nowhere, or active on several members while its
    ``multiple-active=stop_unexpected`` stops the extra copies.  As Pacemaker does for a
    mandatory order: the dependents of such a resource stop, it is recovered, then they
    start again after it.
    """
    members = view.members
    config = view.config

    def is_down(rsc: str) -> bool:
        prerequisite = clone_prerequisite(config, rsc)
        if prerequisite is not None:
            return not _clone_prerequisite_met(view, None, *prerequisite)
        states = [s for n, s in view.observed.get(rsc, {}).items() if n in members]
        up = (LocalState.STARTED, LocalState.STARTING, LocalState.UNKNOWN)
        if LocalState.FAILED in states or not any(s in up for s in states):
            return True
        active = sum(1 for s in states if s in _HELD)
        return active > 1 and config.multiple_active_of(rsc) == "stop_unexpected"

    down = {first for firsts in deps.values() for first in firsts if is_down(first)}
    stopping: set[str] = set()
    changed = True
    while changed:
        changed = False
        for then, firsts in deps.items():
            if then not in stopping and any(f in down or f in stopping for f in firsts):
                stopping.add(then)
                changed = True
    return stopping
