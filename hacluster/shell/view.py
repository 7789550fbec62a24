"""What the shell may read of the core: a read-only view for the API, status, metrics, report.

Theory of operation
-------------------
The driver is the only writer of the core (``daemon.py``): every change is an input to
``NodeCore.handle``.  Everything else in the shell that wants to know something — the API's
answers, ``hacrm status``, the Prometheus collector, ``hacrm report`` — reads it here.  A
``CoreView`` hands out values, never the core's own objects: frozen dataclasses, fresh
dicts and tuples, typed reports (``ResourceReport``) instead of wire dictionaries.

Reads run in the event loop between two inputs, so one view call is consistent with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from hacluster.core.cib import ClusterConfig
from hacluster.core.codec import KeyRing
from hacluster.core.fence_devices import FenceDeviceSpec
from hacluster.core.fencing import FenceEvent
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState, ResourceReport
from hacluster.core.plan import Plan
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.stats import GapSamples, MembershipStats
from hacluster.core.watchdog import PetVerdict, pet_verdict, watchdog_fencing_ms, watchdog_refusal

if TYPE_CHECKING:
    from hacluster.core.node import NodeCore


class CoreView:
    """Read-only questions about one node's core."""

    def __init__(self, core: NodeCore, node: NodeName) -> None:
        self._core = core
        self.node = node

    # --- configuration and plan ---------------------------------------------------------------

    @property
    def config(self) -> ClusterConfig:
        """The configuration in force (frozen)."""
        return self._core.rm.config

    @property
    def dc(self) -> NodeName | None:
        return self._core.rm.dc

    @property
    def plan(self) -> Plan | None:
        """A copy of the plan this node follows, or None before the DC has sent one."""
        plan = self._core.rm.plan
        if plan is None:
            return None
        return replace(
            plan, assignment=dict(plan.assignment), reasons=dict(plan.reasons), roles=dict(plan.roles)
        )

    def has_quorum(self) -> bool:
        return self._core.rm.has_quorum()

    def warnings(self) -> list[str]:
        return self._core.rm.warnings()

    def snapshot(self, now_ms: int) -> ClusterSnapshot:
        """Everything the DC plans from, frozen: for ``why``, ``simulate`` and ``configure diff``."""
        return self._core.rm.snapshot(now_ms)

    # --- resources ------------------------------------------------------------------------------

    def reports(self) -> dict[str, dict[NodeName, ResourceReport]]:
        """Resource → node → that node's last report (this node's own state included)."""
        return self._core.rm.reports()

    def members_reports(self) -> dict[str, dict[NodeName, ResourceReport]]:
        """``reports`` of current members only (and this node)."""
        members = set(self.members()) | {self.node}
        return {
            rsc: {n: r for n, r in per_node.items() if n in members}
            for rsc, per_node in self.reports().items()
        }

    def running_on(self) -> dict[str, set[str]]:
        """Resource → nodes that report it started."""
        return {
            rsc: {n for n, r in per_node.items() if r.state is LocalState.STARTED}
            for rsc, per_node in self.reports().items()
        }

    def local_state(self, rsc: str) -> LocalState | None:
        return self._core.rm.local_state(rsc)

    def pending_here(self) -> list[str]:
        """Configured resources starting or stopping on this node."""
        return [
            r
            for r in self.config.resource_ids()
            if self.local_state(r) in (LocalState.STARTING, LocalState.STOPPING)
        ]

    # --- fencing --------------------------------------------------------------------------------

    def devices(self) -> tuple[FenceDeviceSpec, ...]:
        return self._core.rm.devices()

    def fencing_configured(self) -> bool:
        return self._core.rm.fencing_configured()

    def fencing_history(self) -> tuple[FenceEvent, ...]:
        return self._core.rm.fencing.attempts.history()

    def fencing_pending(self) -> Mapping[NodeName, str]:
        return dict(self._core.rm.fencing_pending())

    def pet_verdict(self, now_ms: int) -> PetVerdict:
        """Whether this node keeps petting its watchdog (``core/watchdog.py``)."""
        return pet_verdict(self._core.rm.snapshot(now_ms))

    def watchdog_fencing(self, now_ms: int) -> tuple[int, str | None]:
        """Self-fencing: (ms after which a silent node counts as fenced, 0: not used; why not)."""
        view = self._core.rm.snapshot(now_ms)
        return watchdog_fencing_ms(view), watchdog_refusal(view)

    def watchdogs(self) -> dict[NodeName, int]:
        """Node → the watchdog timeout it announced (ms; 0: none)."""
        return self._core.rm.watchdogs()

    def left_clean(self) -> bool:
        """The stop finished with nothing of ours possibly running."""
        return self._core.rm.left_clean

    # --- membership -----------------------------------------------------------------------------

    def members(self) -> tuple[NodeName, ...]:
        """This node (once active) and every active peer, sorted."""
        return self._core.membership.members()

    def statistics(self, now_ms: int) -> MembershipStats:
        return self._core.membership.statistics(now_ms)

    def gap_samples(self) -> tuple[GapSamples, ...]:
        return self._core.membership.gap_samples()

    def membership_state(self) -> str:
        """This node's own state: ``init``, ``active``, ``stopping``, … (``NodeState``)."""
        return str(self._core.membership.state)

    def peer_is_ours(self, node: NodeName) -> bool:
        """Whether ``node`` runs hacluster (not Heartbeat), as its packets say."""
        return self._core.membership.peer_is_ours(node)

    def keyring(self) -> KeyRing:
        """The keys in use (frozen; the shell never prints the secrets)."""
        return self._core.membership.keyring
