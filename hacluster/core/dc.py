"""The designated coordinator's decisions: the plan, and the edits it makes on its own.  Pure.

Theory of operation
-------------------
``plan_for(view)`` is the one place a plan is made — by the DC of the live cluster at every
step that changed something, and by ``hacrm simulate``/``resource why`` on a snapshot:

1. ``placement.place``: where each resource should end up;
2. ``transition.make_plan``: where it may run *now* without two copies (stop first, wait
   for fencing, ``multiple-active``, mandatory orders);
3. while a lost node awaits fencing, nothing new starts anywhere (``_hold_starts``);
4. with ``stonith-enabled=true`` and no fence device, nothing runs at all.

``follow_up_edits(view)`` is the configuration change the DC proposes by itself after a
step: a one-shot move whose resource has arrived loses its constraint, and a resource found
active on several nodes with ``multiple-active=stop_only`` gets ``target-role=Stopped`` so
that it stays stopped until an operator starts it again.  The simulator applies the same
edits, so it predicts what the cluster does afterwards too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from hacluster.core.cib import ClusterConfig
from hacluster.core.edits import completed_moves, drop_locations, set_meta
from hacluster.core.effects import Level, Notice
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, LocalState
from hacluster.core.placement import Placement, PlacementInput, place
from hacluster.core.plan import Plan, Reason, ReasonCode, Role
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.transition import make_plan
from hacluster.core.watchdog import watchdog_fencing_ms


def plan_for(view: ClusterSnapshot) -> Plan:
    """Where each resource may run now, with its reason (module docstring, steps 1-4)."""
    return placement_and_plan(view)[1]


def placement_and_plan(view: ClusterSnapshot) -> tuple[Placement, Plan]:
    """``plan_for``, with the placement it started from (``why`` reads its scores)."""
    placement = place(
        PlacementInput(
            config=view.config,
            nodes=view.nodes,
            online=view.online,
            active=view.active(),
            failcounts=view.failcounts,
            banned_everywhere=view.banned_everywhere,
            has_quorum=view.has_quorum,
            node_attributes=view.node_attributes,
            roles=view.roles,
        )
    )
    plan = make_plan(
        view.config,
        placement,
        view.observed,
        view.members,
        view.trusted_down(),
        view.roles,
        len(view.nodes),
    )
    awaiting = view.awaiting_fence()
    if awaiting:
        plan = _hold_starts(plan, view.observed, awaiting, view.roles)
    if view.config.is_stonith_enabled() and not view.devices() and not watchdog_fencing_ms(view):
        reason = Reason(
            ReasonCode.NO_FENCE_DEVICE, "stonith-enabled=true but no fencing device is configured"
        )
        plan = replace(
            plan, assignment=dict.fromkeys(plan.assignment), reasons=dict.fromkeys(plan.assignment, reason)
        )
    return placement, plan


def _hold_starts(
    plan: Plan,
    observed: Mapping[str, Mapping[NodeName, LocalState]],
    awaiting: list[NodeName],
    roles_now: Mapping[str, Mapping[NodeName, Role]],
) -> Plan:
    """While a lost node awaits fencing, nothing new starts anywhere.

    Its last report is stale: in a split it is the coordinator of its own side and may have
    started anything since (or a start from a plan still in flight had not been reported
    yet), so even a resource it reported stopped may be active there.  What already runs (or
    is starting) on its target stays; every other assignment waits for the fence, as
    Pacemaker orders every start after the fencing of unclean nodes.
    """
    assignment = dict(plan.assignment)
    reasons = dict(plan.reasons)
    held = Reason(
        ReasonCode.HELD_FOR_FENCING,
        f"waiting for {', '.join(awaiting)} to be fenced: nothing starts before, it may have "
        "started resources since its last report",
        nodes=tuple(awaiting),
    )
    for rsc, target in plan.assignment.items():
        if target is None:
            continue
        if observed.get(rsc, {}).get(target) in (LocalState.STARTED, LocalState.STARTING):
            continue
        assignment[rsc] = None
        reasons[rsc] = held
    # Nor is anything promoted: the lost node may hold the promoted role (fence first).
    roles: dict[str, Role] = {}
    for rsc, role in plan.roles.items():
        target = assignment.get(rsc)
        if target is None:
            continue
        promoted_there = roles_now.get(rsc, {}).get(target) is Role.PROMOTED
        roles[rsc] = Role.UNPROMOTED if role is Role.PROMOTED and not promoted_there else role
    return replace(
        plan,
        assignment=assignment,
        reasons=reasons,
        needs_fencing=plan.needs_fencing | set(awaiting),
        roles=roles,
    )


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A configuration change the DC makes by itself, and its log lines."""

    config: ClusterConfig
    notices: tuple[Notice, ...]


def follow_up_edits(view: ClusterSnapshot) -> FollowUp | None:
    """The DC's own edit after this step (module docstring), or None."""
    config = view.config
    notices: list[Notice] = []
    running_on: dict[str, set[str]] = {
        rsc: {n for n, s in states.items() if s is LocalState.STARTED}
        for rsc, states in view.observed.items()
    }
    done = completed_moves(config, running_on)
    if done:
        notices.append(
            Notice("MOVE_DONE", Level.INFO, f"move finished, constraint removed: {', '.join(done)}")
        )
        config = drop_locations(config, done)
    for rsc in _stop_only_offenders(view):
        nodes = sorted(
            n
            for n, s in view.observed.get(rsc, {}).items()
            if n in view.members and s in MAYBE_ACTIVE - {LocalState.UNKNOWN}
        )
        notices.append(
            Notice(
                "MULTIPLE_ACTIVE_STOPPED",
                Level.ERROR,
                f"{rsc} was active on {', '.join(nodes)} at once (multiple-active=stop_only): every copy is "
                f"stopped and its target-role set to Stopped; check it, then run `hacrm resource start {rsc}`",
                (("resource", rsc),),
            )
        )
        config = set_meta(config, rsc, "target-role", "Stopped")
    if config is view.config:
        return None
    return FollowUp(replace(config, epoch=view.config.epoch + 1), tuple(notices))


def _stop_only_offenders(view: ClusterSnapshot) -> list[str]:
    """Resources active on several members whose ``multiple-active`` is ``stop_only``."""
    out = []
    for rsc, states in view.observed.items():
        active = [
            n for n, s in states.items() if n in view.members and s in MAYBE_ACTIVE - {LocalState.UNKNOWN}
        ]
        if len(active) < 2 or rsc not in view.config.resource_ids():
            continue  # the common case, decided without reading any meta attribute
        if (
            view.config.multiple_active_of(rsc) == "stop_only"
            and view.config.target_role_of(rsc) != "Stopped"
        ):
            out.append(rsc)
    return sorted(out)
