"""The cluster resource manager: DC, replicated configuration, plans, local reconciliation.

Theory of operation
-------------------
Every node runs this same state machine; it is level-triggered, so a lost or repeated
message can delay a decision but never make it wrong.

- **Reports.**  Each node broadcasts ``hac_state``: the local state of every resource, fail
  counts, whether its start-up probes are done, whether it is leaving, and the epoch and
  digest of its configuration.  It sends one whenever that changes and again every
  ``refresh_ms``.  Reports and plans carry ``sq`` = ``generation:counter``: membership
  delivers a retransmitted message late (after newer ones), and an older one is ignored.
- **Configuration.**  One versioned document (``ClusterConfig``).  A node that sees a peer
  report an older version sends its own in ``hac_cfg``; a node adopts a received document
  when its ``(epoch, digest)`` is greater, so every member converges on one version and a
  conflict (two edits with the same epoch) is resolved the same way everywhere.
- **DC.**  The member with the lowest name is the designated coordinator; a node that is not
  an active member itself yet (its view is partial) has none.  Once every member has
  reported, probed everything and agrees on the configuration, and no peer is half-way
  through joining (``init``/``up``), the DC computes
  ``placement.place`` then ``transition.make_plan`` and broadcasts the result (``hac_plan``).
  Nodes act only on the plan of the DC they themselves see.
- **Reconciliation.**  Each node starts what the plan gives it (after its prerequisites are
  started), stops what it runs that the plan does not give it (after its dependents are
  stopped), recovers failures, and runs recurring monitors.  One operation per resource.
  A failed resource's dependents (later group members, mandatory-order ``then``s) stop
  before it is recovered and start again after it, as Pacemaker does.

Inputs come from ``node.py``: membership changes, delivered ``hac_*`` messages, agent
results and operator requests.  Outputs are ``RunAgent``, ``Broadcast``, ``ConfigAdopted``
and ``Notice`` effects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from hacluster.core.cib import INFINITY, ClusterConfig, Primitive, parse_time_ms
from hacluster.core.edits import completed_moves, drop_locations
from hacluster.core.effects import Level, MessageDelivered, NodeStateChanged, Notice
from hacluster.core.explain import ClusterSnapshot, Failure
from hacluster.core.fencing import FenceDeviceSpec, FenceFinished, FencingManager, devices_from_config
from hacluster.core.ids import NodeName
from hacluster.core.lrm import (
    MAYBE_ACTIVE,
    AgentFinished,
    LocalResource,
    LocalState,
    RunAgent,
    apply_result,
    expire_failures,
    op_timeout_ms,
    recurring_monitor,
)
from hacluster.core.placement import PlacementInput, place
from hacluster.core.transition import Plan, dependencies, is_started, make_plan
from hacluster.core.transition import recovering as transition_recovering

STATE_MSG: Final = "hac_state"
PLAN_MSG: Final = "hac_plan"
CONFIG_MSG: Final = "hac_cfg"
CLEANUP_MSG: Final = "hac_cleanup"
FENCE_REQUEST_MSG: Final = "hac_fence_req"
FENCED_MSG: Final = "hac_fenced"
CONFIG_RESEND_MS: Final = 1000
OPERATOR_FENCE_REASON: Final = "requested by an operator"
RETRY_MS: Final = 100
"""How soon a step looks again at something due that it could not act on."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send an upper-layer message to every node (membership sequences and signs it)."""

    mtype: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ConfigAdopted:
    """A new configuration version is in force; the shell persists it in the state dir."""

    config: ClusterConfig
    source: NodeName


@dataclass(frozen=True, slots=True)
class RmSettings:
    node: NodeName
    nodes: tuple[NodeName, ...]
    refresh_ms: int = 1000
    extra_devices: tuple[FenceDeviceSpec, ...] = ()
    """Fence devices configured outside the resource configuration (ha.cf ``stonith_host``)."""
    fencing_delay_ms: int = 200
    """``priority-fencing-delay`` when the property is not set: how long a node that runs no
    resource waits before fencing, so that in a split the node running them shoots first."""
    shutdown_timeout_ms: int = 120_000
    generation: int = 0
    """This incarnation's generation (``NodeCore`` copies membership's): with a counter it
    orders our reports and plans, so a late retransmission never overrides a newer one."""


@dataclass(slots=True)
class _PeerReport:
    order: tuple[int, int] = (-1, -1)
    """(generation, counter) of the report applied last; an older one is stale."""
    epoch: int = -1
    digest: str = ""
    probed: bool = False
    leaving: bool = False
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: frozenset[NodeName] = frozenset()
    """Nodes the reporter saw stop cleanly or be fenced, and has not heard from since."""
    lost: frozenset[NodeName] = frozenset()
    """Nodes the reporter saw vanish without a goodbye, not fenced yet."""


def _state_of(entry: dict[str, Any] | None) -> LocalState:
    if not entry:
        return LocalState.UNKNOWN
    try:
        return LocalState(entry.get("s", "unknown"))
    except ValueError:
        return LocalState.UNKNOWN


class ResourceManager:
    def __init__(self, settings: RmSettings, config: ClusterConfig, now_ms: int) -> None:
        self._s = settings
        self.config = config
        self._local: dict[str, LocalResource] = {}
        self._primitives: dict[str, Primitive] = {}
        self._reports: dict[NodeName, _PeerReport] = {}
        self._members: frozenset[NodeName] = frozenset()
        self._clean_exits: set[NodeName] = set()
        self._plan: Plan | None = None
        self._plan_from: NodeName | None = None
        self._plan_id = 0
        self._sent_plan: str = ""
        self._sent_report: str = ""
        self._next_refresh_ms = now_ms
        self._config_sent_ms: dict[tuple[NodeName, int], int] = {}
        self._call_id = 0
        self._leaving = False
        self._leave_deadline_ms: int | None = None
        self._done = False
        self._left_clean = False
        self._dc: NodeName | None = None
        self._digest = ""
        self._maintenance = False
        self.fencing = FencingManager(settings.node)
        self._unclean: dict[NodeName, int | None] = {}
        """Nodes lost without a goodbye and not fenced yet → their generation when lost."""
        self._unseen: set[NodeName] = set()
        """Unclean nodes we never heard from since we started (dead at initdead): we cannot
        know how they left, but members that were there may (``_adopt_known_down``)."""
        self._suspects: set[NodeName] = set()
        self._unclean_quorate: set[NodeName] = set()
        """Unclean nodes that were away while we had quorum: our side may have acted on their
        absence, so if one comes back with the same generation it is a suspect.  One lost
        while we never had quorum just rejoins: nothing here acted meanwhile (else three nodes
        split three ways would all be suspects to each other, without quorum, forever)."""
        self._dirty = True
        """Something the DC's plan depends on changed since it was last computed."""
        self._last_step_ms: int | None = None
        self._hold_until_ms: int | None = None
        """After this node was frozen past deadtime: start nothing before this time."""
        """Unclean nodes heard again with the same generation: not trusted until fenced."""
        self._report_seq = 0
        self._plan_orders: dict[NodeName, tuple[int, int]] = {}
        """DC → (generation, plan id) of the last plan taken from it."""
        self._joining: set[NodeName] = set()
        """Peers heard from but not active yet (``init``/``up``): the DC waits for them."""
        self._adopt(config, settings.node, now_ms, announce=False)

    # --- queries ----------------------------------------------------------------------

    @property
    def dc(self) -> NodeName | None:
        return self._dc

    @property
    def plan(self) -> Plan | None:
        return self._plan

    @property
    def left_clean(self) -> bool:
        """The leave finished with nothing of ours possibly running (peers may skip fencing)."""
        return self._done and self._left_clean

    @property
    def shutdown_complete(self) -> bool:
        """Leaving, and nothing of ours may still be running."""
        return self._done

    def local_state(self, rsc: str) -> LocalState | None:
        resource = self._local.get(rsc)
        return None if resource is None else resource.state

    def observed(self) -> dict[str, dict[NodeName, LocalState]]:
        """Resource → node → state, from our own state and every peer's last report."""
        out: dict[str, dict[NodeName, LocalState]] = {}
        for rsc, resource in self._local.items():
            out.setdefault(rsc, {})[self._s.node] = resource.state
        for node, report in self._reports.items():
            for rsc, entry in report.states.items():
                out.setdefault(rsc, {})[node] = _state_of(entry)
        return out

    def failcounts(self) -> dict[tuple[str, NodeName], int]:
        counts = {(rsc, self._s.node): r.failcount for rsc, r in self._local.items() if r.failcount}
        for node, report in self._reports.items():
            for rsc, entry in report.states.items():
                count = entry.get("fc")
                if isinstance(count, int) and count > 0:
                    counts[(rsc, node)] = min(INFINITY, count)
        return counts

    def resource_details(self) -> dict[str, dict[NodeName, dict[str, Any]]]:
        """Every node's last report per resource (ours included), for status and ``why``."""
        out: dict[str, dict[NodeName, dict[str, Any]]] = {}
        for rsc, resource in self._local.items():
            out.setdefault(rsc, {})[self._s.node] = resource.report()
        for node, report in self._reports.items():
            for rsc, entry in report.states.items():
                out.setdefault(rsc, {})[node] = entry
        return out

    def has_quorum(self) -> bool:
        total = len(self._s.nodes)
        if total <= 2:
            return True
        return 2 * len(self._members) > total

    def devices(self) -> tuple[FenceDeviceSpec, ...]:
        return devices_from_config(self.config, self._s.extra_devices)

    def fencing_configured(self) -> bool:
        return bool(self.devices())

    def fencing_pending(self) -> dict[NodeName, str]:
        return self.fencing.pending()

    def snapshot(self, now_ms: int | None = None) -> ClusterSnapshot:
        """Everything the DC plans from, frozen: for ``hacrm resource why`` and ``simulate``."""
        failures = {}
        for rsc, per_node in self.resource_details().items():
            for node, entry in per_node.items():
                if entry.get("op"):
                    rc = entry.get("rc")
                    local = self._local.get(rsc) if node == self._s.node else None
                    failures[(rsc, node)] = Failure(
                        op=str(entry["op"]),
                        rc=rc if isinstance(rc, int) else None,
                        reason=str(entry["why"]) if entry.get("why") else None,
                        last_failure_ms=local.last_failure_ms if local is not None else None,
                    )
        leaving = {n for n, r in self._reports.items() if r.leaving} | (
            {self._s.node} if self._leaving else set()
        )
        return ClusterSnapshot(
            config=self.config,
            nodes=self._s.nodes,
            members=self._members | {self._s.node},
            observed=self.observed(),
            failcounts=self.failcounts(),
            failures=failures,
            banned_everywhere=frozenset(
                r for r, nodes in self.resource_details().items() if any(e.get("ba") for e in nodes.values())
            ),
            fenced=self.fencing.fenced,
            clean_exits=frozenset(self._clean_exits),
            unclean=frozenset(self._unclean),
            fence_pending=self.fencing.pending(),
            leaving=frozenset(leaving),
            has_quorum=self.has_quorum(),
            dc=self._dc,
            plan=self._plan,
            extra_fence_devices=self._s.extra_devices,
            now_ms=now_ms,
            node=self._s.node,
        )

    def warnings(self) -> list[str]:
        out = []
        if not self.config.is_stonith_enabled():
            out.append(
                "fencing is disabled (stonith-enabled=false): if the cluster partitions, "
                "both sides may run the same resources at once"
            )
        elif self._managed_ids() and not self.fencing_configured():
            out.append(
                "stonith-enabled=true but no fencing device is configured: resources will not start; "
                "configure a stonith device or set property stonith-enabled=false"
            )
        if self._is_true(self.config.property("maintenance-mode")):
            out.append("maintenance-mode is on: resources are neither started, stopped nor monitored")
        return out

    # --- inputs -----------------------------------------------------------------------

    def on_membership(
        self,
        change: NodeStateChanged,
        members: Iterable[NodeName],
        now_ms: int,
        generation: int | None = None,
    ) -> list[object]:
        self._dirty = True
        out: list[object] = []
        node = change.node
        if node != self._s.node and node in self._s.nodes:
            if change.new == "dead" and change.graceful:
                self._clean_exits.add(node)
                self._unclean.pop(node, None)
                self._unseen.discard(node)
                self._suspects.discard(node)
                out += self.fencing.cancel(node, "it stopped gracefully")
            elif change.new == "dead":
                self._clean_exits.discard(node)
                if node not in self.fencing.fenced:
                    self._unclean[node] = generation
                if change.old == "init":
                    self._unseen.add(node)
                else:
                    self._unseen.discard(node)
            elif change.new in ("init", "up", "active"):
                self._clean_exits.discard(node)
                self._unseen.discard(node)
                if node in self._unclean_quorate and self._unclean[node] == generation and self._must_fence():
                    if node not in self._suspects:
                        out.append(
                            Notice(
                                "NODE_SUSPECT",
                                Level.CRITICAL,
                                f"{node} is back with the same generation after being declared dead: it may "
                                "have run resources meanwhile; it stays out of the cluster until fenced",
                            )
                        )
                    self._suspects.add(node)
                else:
                    self._unclean.pop(node, None)
                    self._suspects.discard(node)
                    self.fencing.forget(node)
        if node != self._s.node:
            if change.new in ("init", "up"):
                self._joining.add(node)
            else:
                self._joining.discard(node)
        self._members = frozenset(members) - self._suspects
        if node != self._s.node and change.new == "active":
            self._next_refresh_ms = now_ms  # tell the newcomer about us at once
        out += self.step(now_ms)
        return out

    def on_message(self, message: MessageDelivered, now_ms: int) -> list[object]:
        out: list[object] = []
        if message.mtype not in (STATE_MSG, PLAN_MSG):
            self._dirty = True
        try:
            if message.mtype == STATE_MSG:
                self._on_state(message, now_ms, out)
            elif message.mtype == PLAN_MSG:
                self._on_plan(message, out)
            elif message.mtype == CONFIG_MSG:
                self._on_config(message, now_ms, out)
            elif message.mtype == CLEANUP_MSG:
                self._cleanup_local(message.get("rsc") or "", message.get("node") or "", out)
            elif message.mtype == FENCE_REQUEST_MSG:
                self._on_fence_request(message, now_ms, out)
            elif message.mtype == FENCED_MSG:
                self._on_fenced(message, now_ms, out)
        except (ValueError, TypeError, KeyError) as exc:
            out.append(
                Notice(
                    "RM_MESSAGE_REJECTED",
                    Level.WARNING,
                    f"{message.mtype} from {message.src} rejected: {exc}",
                )
            )
            return out
        out += self.step(now_ms)
        return out

    def on_agent_finished(self, result: AgentFinished, now_ms: int) -> list[object]:
        self._dirty = True
        out: list[object] = []
        resource = self._local.get(result.resource)
        if resource is None or resource.pending is None or resource.pending.call_id != result.call_id:
            out.append(Notice("AGENT_RESULT_IGNORED", Level.DEBUG, f"stale result for {result.resource}"))
            return out
        primitive = self._primitives[result.resource]
        threshold = self._threshold(result.resource)
        outcome = apply_result(resource, result, threshold, now_ms)
        level = Level.INFO
        if outcome.failed:
            level = Level.ERROR if outcome.state is LocalState.BLOCKED else Level.WARNING
        is_routine = result.action == "monitor" and result.interval_ms > 0 and not outcome.failed
        if not is_routine:
            out.append(
                Notice(
                    "RESOURCE_" + result.action.upper().replace("-", "_"),
                    level,
                    outcome.text + f" ({result.duration_ms} ms)",
                    (("resource", result.resource), ("rc", result.rc), ("state", outcome.state.value)),
                )
            )
        monitor = recurring_monitor(primitive)
        if outcome.state is LocalState.STARTED and monitor is not None:
            resource.next_monitor_ms = now_ms + monitor.interval_ms
        if outcome.state is LocalState.STOPPED and result.resource not in self._config_ids():
            del self._local[result.resource]  # an orphan, now gone
            self._primitives.pop(result.resource, None)
        elif outcome.state is LocalState.STOPPED:
            self._primitives[result.resource] = self.config.primitive(result.resource)
        out += self.step(now_ms)
        return out

    def propose_config(self, config: ClusterConfig, now_ms: int) -> list[object]:
        """An operator's change made on this node: adopt it and send it to every member."""
        self._dirty = True
        out: list[object] = []
        assert config.epoch > self.config.epoch, "a new configuration needs a higher epoch"
        out += self._adopt(config, self._s.node, now_ms, announce=True)
        out.append(Broadcast(CONFIG_MSG, (("ep", str(config.epoch)), ("cfg", config.to_json()))))
        out += self.step(now_ms)
        return out

    def cleanup(self, rsc: str, node: str, now_ms: int) -> list[object]:
        """Forget failures of ``rsc`` (all when empty) on ``node`` (all when empty), re-probe."""
        self._dirty = True
        out: list[object] = [Broadcast(CLEANUP_MSG, (("rsc", rsc), ("node", node)))]
        self._cleanup_local(rsc, node, out)
        out += self.step(now_ms)
        return out

    def on_resumed(self, paused_ms: int, now_ms: int) -> list[object]:
        """This node was frozen (SIGSTOP, a stalled VM) for longer than the dead time.

        Peers may have declared it dead and started its resources elsewhere, so it stops
        every local resource at once and starts nothing until fresh reports and a new plan
        have had time to arrive.  (With fencing on, the frozen node is fenced before any
        takeover and never gets here; this is the second line of defence.)
        """
        self._dirty = True
        self._hold_until_ms = now_ms + 2 * self._s.refresh_ms
        self._plan = None
        self._plan_from = None
        active = sorted(r for r, lr in self._local.items() if lr.state in MAYBE_ACTIVE - {LocalState.UNKNOWN})
        out: list[object] = [
            Notice(
                "NODE_WAS_FROZEN",
                Level.ERROR,
                f"{self._s.node} was frozen for {paused_ms} ms, longer than the dead time: peers may have taken "
                f"over; stopping {', '.join(active) or 'nothing'} here and starting nothing for "
                f"{2 * self._s.refresh_ms} ms",
            )
        ]
        out += self.step(now_ms)
        return out

    def reconfigure(
        self, nodes: tuple[NodeName, ...], extra_devices: tuple[FenceDeviceSpec, ...], now_ms: int
    ) -> list[object]:
        """ha.cf was re-read: the node list and ha.cf fence devices may have changed."""
        self._s = replace(self._s, nodes=nodes, extra_devices=extra_devices)
        self._dirty = True
        return self.step(now_ms)

    def begin_shutdown(self, now_ms: int) -> list[object]:
        self._dirty = True
        if self._leaving:
            return []
        self._leaving = True
        self._leave_deadline_ms = now_ms + self._s.shutdown_timeout_ms
        active = sorted(r for r, lr in self._local.items() if lr.state in MAYBE_ACTIVE - {LocalState.UNKNOWN})
        out: list[object] = [
            Notice(
                "NODE_LEAVING",
                Level.INFO,
                f"{self._s.node} leaving the cluster: handing over {', '.join(active) or 'no resources'} first",
            )
        ]
        self._next_refresh_ms = now_ms
        out += self.step(now_ms)
        return out

    def next_deadline_ms(self) -> int:
        """The earliest time ``step`` could do something on its own.

        Never at or before the last step: something due that the step could not act on
        (a monitor while in maintenance, a stop waiting for dependents) is looked at again
        ``RETRY_MS`` later or at the next input, instead of making the shell spin.
        """
        deadline = self._next_refresh_ms
        frozen = self._frozen()
        for resource in self._local.values():
            if (
                resource.next_monitor_ms is not None
                and resource.pending is None
                and not frozen
                and self._is_managed(resource.id)
            ):
                deadline = min(deadline, resource.next_monitor_ms)
            if (
                resource.failcount
                and resource.last_failure_ms is not None
                and resource.state not in (LocalState.FAILED, LocalState.BLOCKED)
                and resource.id in self._config_ids()
            ):
                timeout = self.config.failure_timeout_ms_of(resource.id)
                if timeout > 0:
                    deadline = min(deadline, resource.last_failure_ms + timeout)
        if self._hold_until_ms is not None:
            deadline = min(deadline, self._hold_until_ms)
        if self._leave_deadline_ms is not None and not self._done:
            deadline = min(deadline, self._leave_deadline_ms)
        fencing = self.fencing.next_deadline_ms()
        if fencing is not None:
            deadline = min(deadline, fencing)
        if self._last_step_ms is not None and deadline <= self._last_step_ms:
            deadline = self._last_step_ms + RETRY_MS
        return deadline

    def _frozen(self) -> bool:
        """Maintenance (cluster-wide or this node): start, stop and monitor nothing."""
        return self._maintenance

    # --- the step: expire, plan, reconcile, report ------------------------------------------

    def step(self, now_ms: int) -> list[object]:
        self._last_step_ms = now_ms
        out: list[object] = []
        for rsc, resource in self._local.items():
            if rsc in self._config_ids() and expire_failures(
                resource, self.config.failure_timeout_ms_of(rsc), now_ms
            ):
                self._dirty = True
                out.append(
                    Notice("FAILCOUNT_EXPIRED", Level.INFO, f"{rsc}: failures expired (failure-timeout)")
                )
        self._adopt_known_down(out)
        self._unclean_quorate &= self._unclean.keys()
        if self.has_quorum():
            self._unclean_quorate |= self._unclean.keys()
        else:
            out += self.fencing.cancel_waiting("this partition lost quorum")
        self._elect(out)
        if self._dc == self._s.node and (
            self._dirty or self._plan is None or self._plan_from != self._s.node
        ):
            self._dirty = False
            self._compute_plan(now_ms, out)
            self._complete_moves(now_ms, out)
            self._request_fencing(now_ms, out)
        elif self._suspects and self._dc != self._s.node:
            self._fence_suspects(now_ms, out)
        out += self.fencing.tick(self.devices(), now_ms)
        self._reconcile(now_ms, out)
        self._report(now_ms, out)
        self._check_shutdown(now_ms, out)
        return out

    def _elect(self, out: list[object]) -> None:
        # Until membership says we are active (communication up) our view is partial: a plan
        # made from it could start what a peer we have not heard from yet still runs.
        dc = min(self._members) if self._s.node in self._members else None
        if dc != self._dc:
            text = (
                f"designated coordinator is now {dc} (lowest-named member)"
                if dc is not None
                else f"no designated coordinator until {self._s.node} is an active member"
            )
            out.append(Notice("DC_CHANGED", Level.INFO, text))
            self._dc = dc
            if self._plan_from != dc:
                self._plan = None
                self._plan_from = None

    def _compute_plan(self, now_ms: int, out: list[object]) -> None:
        members = self._members | {self._s.node}
        waiting = self._not_ready(members)
        if waiting:
            self._dirty = True  # try again at the next step
            return
        online = frozenset(
            n for n in members if not (self._leaving if n == self._s.node else self._reports[n].leaving)
        )
        observed = self.observed()
        active = {
            rsc: frozenset(
                n
                for n, s in states.items()
                if n in members and s in (LocalState.STARTED, LocalState.STARTING)
            )
            for rsc, states in observed.items()
        }
        banned_everywhere = frozenset(
            rsc for rsc, nodes in self.resource_details().items() if any(e.get("ba") for e in nodes.values())
        )
        placement = place(
            PlacementInput(
                config=self.config,
                nodes=self._s.nodes,
                online=online,
                active=active,
                failcounts=self.failcounts(),
                banned_everywhere=banned_everywhere,
                has_quorum=self.has_quorum(),
            )
        )
        trusted_down = frozenset(self._clean_exits) | self.fencing.fenced
        if not self._must_fence():
            trusted_down |= frozenset(self._unclean)  # no fencing: a lost node is assumed down
        plan = make_plan(self.config, placement, observed, members, trusted_down)
        awaiting = sorted(n for n in self._unclean if n not in self.fencing.fenced)
        if self._must_fence() and awaiting:
            plan = _hold_starts(plan, observed, awaiting)
        if self.config.is_stonith_enabled() and not self.fencing_configured():
            reason = "stonith-enabled=true but no fencing device is configured"
            plan = Plan(
                {r: None for r in plan.assignment}, dict.fromkeys(plan.assignment, reason), plan.needs_fencing
            )
        encoded = _encode_plan(plan)
        previous = (
            self._plan.assignment if self._plan is not None and self._plan_from == self._s.node else None
        )
        self._plan, self._plan_from = plan, self._s.node
        if encoded != self._sent_plan:
            self._plan_id += 1
            self._sent_plan = encoded
            self._broadcast_plan(out)
        if previous != plan.assignment:
            out.append(Notice("PLAN", Level.INFO, f"plan {self._plan_id}: {_describe(plan, previous)}"))

    def _adopt_known_down(self, out: list[object]) -> None:
        """Never heard from since we started, but a member saw it stop cleanly or be fenced
        (and no member saw it vanish since): it is down, not unclean.

        Without this a node that started after another one left (its daemon restarted, or it
        was fenced and booted) and then became DC fenced every node it had never seen:
        power-cycling a node an operator had stopped cleanly.  A member's word can only be
        stale if the node came back while that member was away, and then the node ran in a
        partition with quorum that fenced the absent member (or the member restarted): either
        way it would not remember.
        """
        for node in sorted(self._unseen & self._unclean.keys()):
            reports = [r for m, r in self._reports.items() if m in self._members and m != node]
            witnesses = sorted(m for m, r in self._reports.items() if m in self._members and node in r.down)
            if not witnesses or any(node in r.lost for r in reports):
                continue
            del self._unclean[node]
            self._unseen.discard(node)
            self._unclean_quorate.discard(node)
            self._clean_exits.add(node)
            self._dirty = True
            out += self.fencing.cancel(node, f"{', '.join(witnesses)} saw it stop cleanly or be fenced")
            out.append(
                Notice(
                    "NODE_KNOWN_DOWN",
                    Level.INFO,
                    f"{node} was never heard here, but {', '.join(witnesses)} saw it stop cleanly or be "
                    "fenced: it is down, not fencing it",
                    (("node", node),),
                )
            )

    def _must_fence(self) -> bool:
        return self.config.is_stonith_enabled() and bool(self._config_ids())

    def _request_fencing(self, now_ms: int, out: list[object]) -> None:
        """DC: fence every unclean node, and members whose stop failed, if we have quorum."""
        if not self._must_fence() or not self.has_quorum():
            return
        wanted: dict[NodeName, str] = {}
        for node in self._unclean:
            wanted[node] = "it left the membership without a clean stop"
        for rsc, states in self.observed().items():
            for node, state in states.items():
                if state is LocalState.BLOCKED and node in self._members | {self._s.node}:
                    wanted.setdefault(node, f"stop of {rsc} failed there")
        for target in sorted(self.fencing.pending()):
            if (
                target in self._members
                and target not in wanted
                and target not in self._suspects
                and self.fencing.reason(target) != OPERATOR_FENCE_REASON
            ):
                out += self.fencing.cancel(
                    target, "it is a member again and nothing of it is blocked any more"
                )
        delay = self._request_delay_ms(now_ms)
        for target, reason in sorted(wanted.items()):
            if target in self.fencing.fenced or target in self.fencing.pending():
                continue
            if target == self._s.node:
                executors = sorted(self._members - {self._s.node})
                if executors:
                    out.append(
                        Broadcast(
                            FENCE_REQUEST_MSG,
                            (("target", target), ("executor", executors[0]), ("reason", reason)),
                        )
                    )
                continue
            out += self.fencing.request(target, reason, self.config, self.devices(), delay, now_ms)

    def _fence_suspects(self, now_ms: int, out: list[object]) -> None:
        """Not the DC, yet holding a suspect: fence it ourselves (with quorum).

        Our DC may not share the suspicion (it never lost the node), and nobody else would
        fence it: we would keep it out of our membership and the DC in ours for ever.
        """
        if not self._must_fence() or not self.has_quorum():
            return
        delay = self._request_delay_ms(now_ms)
        for target in sorted(self._suspects):
            if target in self.fencing.fenced or target in self.fencing.pending():
                continue
            reason = "it came back with the same generation after being declared dead"
            out += self.fencing.request(target, reason, self.config, self.devices(), delay, now_ms)

    def _request_delay_ms(self, now_ms: int) -> int:
        """How long to wait before fencing a node we just lost.

        Two nodes: the one running resources fences at once, the other waits
        ``priority-fencing-delay``, so it is shot first.  More nodes: quorum decides the split,
        but peers are declared dead one at a time (their silences end up to a keepalive
        apart): a node on the losing side still has quorum until it notices its last peer
        gone, so every request waits at least the default delay, and is dropped if quorum goes
        meanwhile (``step``).
        """
        runs_something = any(r.state is LocalState.STARTED for r in self._local.values())
        delay = 0 if runs_something else self._fencing_delay_ms()
        if len(self._s.nodes) > 2:
            delay = max(delay, self._s.fencing_delay_ms)
        if self._hold_until_ms is not None:
            # Just back from a freeze longer than the dead time (``on_resumed``): the peer that
            # declared us dead is already counting down to fence us, and what we run is being
            # stopped.  Wait out the hold, so the frozen node never shoots the healthy one; a
            # peer that really died is fenced that much later.
            delay = max(delay, self._hold_until_ms - now_ms)
        return delay

    def _fencing_delay_ms(self) -> int:
        text = self.config.property("priority-fencing-delay")
        if text is None:
            return self._s.fencing_delay_ms
        try:
            return parse_time_ms(text)
        except ValueError:
            return self._s.fencing_delay_ms

    def on_fence_finished(self, result: FenceFinished, now_ms: int) -> list[object]:
        self._dirty = True
        out = self.fencing.on_finished(result, now_ms, self.devices())
        if result.ok and result.target in self.fencing.fenced:
            self._after_fence(result.target, result.device, now_ms, out)
        out += self.step(now_ms)
        return out

    def confirm_fenced(self, target: NodeName, now_ms: int) -> list[object]:
        """The operator's word that ``target`` is down (``hacrm node fence-confirm``)."""
        self._dirty = True
        out = self.fencing.confirm(target, self._s.node, "confirmed by an operator", now_ms)
        self._after_fence(target, "manual", now_ms, out)
        out += self.step(now_ms)
        return out

    def request_fence(self, target: NodeName, now_ms: int) -> list[object]:
        """The operator asks for ``target`` to be fenced now (``hacrm node fence``)."""
        self._dirty = True
        out = self.fencing.request(target, OPERATOR_FENCE_REASON, self.config, self.devices(), 0, now_ms)
        out += self.step(now_ms)
        return out

    def _after_fence(self, target: NodeName, device: str, now_ms: int, out: list[object]) -> None:
        self._unclean.pop(target, None)
        self._suspects.discard(target)
        event = next((e for e in reversed(self.fencing.history()) if e.target == target), None)
        ms = event.ms if event is not None else 0
        reason = event.reason if event is not None else ""
        out.append(
            Broadcast(
                FENCED_MSG,
                (("target", target), ("device", device), ("ms", str(ms)), ("reason", reason)),
            )
        )

    def _on_fence_request(self, message: MessageDelivered, now_ms: int, out: list[object]) -> None:
        target = NodeName(message.get("target") or "")
        if message.get("executor") != self._s.node or target == self._s.node or not target:
            return
        reason = (message.get("reason") or "") + f" (asked by {message.src})"
        out += self.fencing.request(target, reason, self.config, self.devices(), 0, now_ms)

    def _on_fenced(self, message: MessageDelivered, now_ms: int, out: list[object]) -> None:
        target = NodeName(message.get("target") or "")
        if not target:
            raise ValueError("hac_fenced without a target")
        if target == self._s.node:
            return  # we were fenced yet we run: the device did not work; peers will see us again
        device = message.get("device") or "?"
        out += self.fencing.confirm(target, message.src, f"fenced with {device}", now_ms, device=device)
        self._unclean.pop(target, None)
        self._suspects.discard(target)

    def _complete_moves(self, now_ms: int, out: list[object]) -> None:
        """One-shot moves: once the resource runs where it was sent, its constraint goes."""
        running_on: dict[str, set[str]] = {}
        for rsc, states in self.observed().items():
            running_on[rsc] = {n for n, s in states.items() if s is LocalState.STARTED}
        done = completed_moves(self.config, running_on)
        if done:
            out.append(
                Notice("MOVE_DONE", Level.INFO, f"move finished, constraint removed: {', '.join(done)}")
            )
            config = drop_locations(self.config, done)
            out += self._adopt(config, self._s.node, now_ms, announce=True)
            out.append(Broadcast(CONFIG_MSG, (("ep", str(config.epoch)), ("cfg", config.to_json()))))

    def _not_ready(self, members: frozenset[NodeName]) -> list[NodeName]:
        waiting = []
        for node in sorted(members):
            if node == self._s.node:
                if any(r.state is LocalState.UNKNOWN for r in self._local.values()):
                    waiting.append(node)
                continue
            report = self._reports.get(node)
            if report is None or not report.probed or (report.epoch, report.digest) != self._version():
                waiting.append(node)
        waiting += sorted(self._joining - members)  # heard from, about to join: plan with them
        return waiting

    def _broadcast_plan(self, out: list[object]) -> None:
        out.append(
            Broadcast(
                PLAN_MSG,
                (
                    ("id", str(self._plan_id)),
                    ("sq", f"{self._s.generation}:{self._plan_id}"),
                    ("ep", str(self.config.epoch)),
                    ("plan", self._sent_plan),
                ),
            )
        )

    def _reconcile(self, now_ms: int, out: list[object]) -> None:
        if self._hold_until_ms is not None and now_ms >= self._hold_until_ms:
            self._hold_until_ms = None
            self._dirty = True
        frozen = self._frozen()
        plan = self._plan
        deps = dependencies(self.config)
        observed = self.observed()
        recovering = transition_recovering(deps, observed, self._members | {self._s.node})
        for rsc, resource in self._local.items():
            if resource.pending is not None or frozen or not self._is_managed(rsc):
                continue
            primitive = self._primitives[rsc]
            wanted = self._wanted_here(rsc, plan)
            if resource.state is LocalState.UNKNOWN:
                self._run(resource, primitive, "monitor", 0, now_ms, out)
            elif resource.state is LocalState.FAILED:
                if self._dependents_stopped(rsc, deps, observed):  # they are in `recovering`
                    self._run(resource, primitive, "stop", 0, now_ms, out)
            elif resource.state is LocalState.STARTED:
                if self._definition_changed(rsc) or (
                    (wanted is False or rsc in recovering) and self._dependents_stopped(rsc, deps, observed)
                ):
                    self._run(resource, primitive, "stop", 0, now_ms, out)
                elif resource.next_monitor_ms is not None and resource.next_monitor_ms <= now_ms:
                    monitor = recurring_monitor(primitive)
                    if monitor is not None:
                        self._run(
                            resource, primitive, "monitor", monitor.interval_ms, now_ms, out, monitor.depth
                        )
            elif resource.state is LocalState.STOPPED and wanted and not self._leaving:
                if resource.failcount >= self._threshold(rsc) or resource.banned_everywhere:
                    continue
                if self._is_held_elsewhere(rsc, observed) or rsc in recovering:
                    continue  # a plan older than a peer's report: never two copies
                if all(
                    is_started(first, observed, self._members | {self._s.node}) for first in deps.get(rsc, [])
                ):
                    self._run(resource, primitive, "start", 0, now_ms, out)

    def _wanted_here(self, rsc: str, plan: Plan | None) -> bool | None:
        """True/False per the plan; None when there is no plan to follow (keep as is)."""
        if rsc not in self._config_ids():
            return False  # removed from the configuration: stop it
        if self._leaving and (plan is None or self._dc == self._s.node):
            return False
        if self._hold_until_ms is not None:
            return False
        if plan is None:
            return None
        return plan.assignment.get(rsc) == self._s.node

    def _is_held_elsewhere(self, rsc: str, observed: dict[str, dict[NodeName, LocalState]]) -> bool:
        """A member other than us last reported ``rsc`` as possibly active."""
        return any(
            n != self._s.node and n in self._members and s in MAYBE_ACTIVE - {LocalState.UNKNOWN}
            for n, s in observed.get(rsc, {}).items()
        )

    def _dependents_stopped(
        self, rsc: str, deps: dict[str, list[str]], observed: dict[str, dict[NodeName, LocalState]]
    ) -> bool:
        for then, firsts in deps.items():
            if rsc not in firsts:
                continue
            for node, state in observed.get(then, {}).items():
                # Our own "unknown" is a probe in flight (after a cleanup, say): it may be running.
                possible = MAYBE_ACTIVE if node == self._s.node else MAYBE_ACTIVE - {LocalState.UNKNOWN}
                if (node in self._members or node == self._s.node) and state in possible:
                    return False
        return True

    def _definition_changed(self, rsc: str) -> bool:
        if rsc not in self._config_ids():
            return False
        running = self._primitives[rsc]
        wanted = self.config.primitive(rsc)
        return (running.agent, running.params, running.args) != (wanted.agent, wanted.params, wanted.args)

    def _run(
        self,
        resource: LocalResource,
        primitive: Primitive,
        action: str,
        interval_ms: int,
        now_ms: int,
        out: list[object],
        depth: int = 0,
    ) -> None:
        self._call_id += 1
        request = RunAgent(
            call_id=self._call_id,
            resource=resource.id,
            primitive=primitive,
            action=action,
            interval_ms=interval_ms,
            timeout_ms=op_timeout_ms(self.config, primitive, action, interval_ms),
            depth=depth,
        )
        resource.pending = request
        if action == "start":
            resource.state = LocalState.STARTING
        elif action == "stop":
            resource.state = LocalState.STOPPING
            resource.next_monitor_ms = None
        elif interval_ms:
            resource.next_monitor_ms = now_ms + interval_ms
        out.append(request)

    def _report(self, now_ms: int, out: list[object]) -> None:
        probed = all(r.state is not LocalState.UNKNOWN for r in self._local.values())
        states = {rsc: r.report() for rsc, r in sorted(self._local.items())}
        encoded = json.dumps(states, sort_keys=True, separators=(",", ":"))
        epoch, digest = self._version()
        down = ",".join(sorted(self._clean_exits | self.fencing.fenced))
        lost = ",".join(sorted(set(self._unclean) - self._unseen))
        snapshot = f"{epoch}|{digest}|{int(probed)}|{int(self._leaving)}|{down}|{lost}|{encoded}"
        if snapshot == self._sent_report and now_ms < self._next_refresh_ms:
            return
        self._sent_report = snapshot
        self._next_refresh_ms = now_ms + self._s.refresh_ms
        self._report_seq += 1
        out.append(
            Broadcast(
                STATE_MSG,
                (
                    ("sq", f"{self._s.generation}:{self._report_seq}"),
                    ("ep", str(epoch)),
                    ("dg", digest),
                    ("pr", str(int(probed))),
                    ("lv", str(int(self._leaving))),
                    ("dn", down),
                    ("ls", lost),
                    ("r", encoded),
                ),
            )
        )
        if self._dc == self._s.node and self._sent_plan:
            self._broadcast_plan(out)

    def _check_shutdown(self, now_ms: int, out: list[object]) -> None:
        if not self._leaving or self._done:
            return
        busy = sorted(
            r
            for r, lr in self._local.items()
            if lr.pending is not None or lr.state in MAYBE_ACTIVE - {LocalState.UNKNOWN}
        )
        blocked = [r for r in busy if self._local[r].state is LocalState.BLOCKED]
        timed_out = self._leave_deadline_ms is not None and now_ms >= self._leave_deadline_ms
        if busy and len(blocked) < len(busy) and not timed_out:
            return
        self._done = True
        self._left_clean = not busy
        if busy:
            out.append(
                Notice(
                    "LEAVE_INCOMPLETE",
                    Level.ERROR,
                    f"leaving with {', '.join(busy)} not stopped"
                    + (" (stop failed)" if blocked else f" after {self._s.shutdown_timeout_ms} ms")
                    + "; leaving without a goodbye, so that peers fence this node before taking over",
                )
            )
        else:
            out.append(
                Notice("LEAVE_READY", Level.INFO, f"{self._s.node}: every resource stopped or handed over")
            )

    # --- messages -----------------------------------------------------------------------

    def _on_state(self, message: MessageDelivered, now_ms: int, out: list[object]) -> None:
        states = json.loads(message.get("r") or "{}")
        if not isinstance(states, dict) or not all(isinstance(v, dict) for v in states.values()):
            raise ValueError("r must map resource ids to objects")
        report = self._reports.setdefault(message.src, _PeerReport())
        order = _order_of(message)
        if order < report.order:
            return  # a late retransmission: membership delivers a missing message when it comes
        report.order = order
        before = (report.epoch, report.digest, report.probed, report.leaving, report.states)
        report.epoch = int(message.get("ep") or "-1")
        report.digest = message.get("dg") or ""
        report.probed = message.get("pr") == "1"
        report.leaving = message.get("lv") == "1"
        report.states = states
        report.down = self._node_list(message.get("dn"))
        report.lost = self._node_list(message.get("ls"))
        if before != (report.epoch, report.digest, report.probed, report.leaving, report.states):
            self._dirty = True
        if (report.epoch, report.digest) < self._version():
            last = self._config_sent_ms.get((message.src, self.config.epoch))
            if last is None or now_ms - last >= CONFIG_RESEND_MS:
                self._config_sent_ms[(message.src, self.config.epoch)] = now_ms
                out.append(
                    Broadcast(CONFIG_MSG, (("ep", str(self.config.epoch)), ("cfg", self.config.to_json())))
                )

    def _node_list(self, text: str | None) -> frozenset[NodeName]:
        """A report's comma-separated node list; names we do not know are ignored."""
        names = {NodeName(n) for n in (text or "").split(",") if n}
        return frozenset(names & set(self._s.nodes))

    def _on_plan(self, message: MessageDelivered, out: list[object]) -> None:
        if message.src != self._dc:
            return
        encoded = message.get("plan") or ""
        plan = _decode_plan(encoded)
        if int(message.get("ep") or "-1") != self.config.epoch:
            return  # made for another configuration: wait for the DC to catch up
        order = _order_of(message)
        if order < self._plan_orders.get(message.src, (-1, -1)):
            return  # an older plan, retransmitted late
        self._plan_orders[message.src] = order
        self._plan, self._plan_from = plan, message.src

    def _on_config(self, message: MessageDelivered, now_ms: int, out: list[object]) -> None:
        config = ClusterConfig.from_json(message.get("cfg") or "")
        if (config.epoch, config.digest()) <= self._version():
            return
        if config.epoch == self.config.epoch:
            out.append(
                Notice(
                    "CONFIG_CONFLICT",
                    Level.WARNING,
                    f"two configurations with epoch {config.epoch}: keeping the one from {message.src} "
                    f"(digest {config.digest()[:12]} > {self.config.digest()[:12]}); the other change is lost",
                )
            )
        out += self._adopt(config, message.src, now_ms, announce=True)

    def _cleanup_local(self, rsc: str, node: str, out: list[object]) -> None:
        if node and node != self._s.node:
            return
        for rid, resource in self._local.items():
            if rsc and rid != rsc:
                continue
            resource.failcount = 0
            resource.banned_everywhere = False
            resource.last_failed_op = None
            resource.last_exit_reason = None
            if (
                resource.state in (LocalState.FAILED, LocalState.BLOCKED, LocalState.STOPPED)
                and resource.pending is None
            ):
                resource.state = LocalState.UNKNOWN  # re-probe
            out.append(
                Notice("CLEANUP", Level.INFO, f"{rid}: failures forgotten on {self._s.node}; probing again")
            )

    # --- helpers ------------------------------------------------------------------------------

    def _adopt(self, config: ClusterConfig, source: NodeName, now_ms: int, *, announce: bool) -> list[object]:
        problems = config.check()
        if problems and announce:
            return [
                Notice(
                    "CONFIG_REJECTED",
                    Level.ERROR,
                    f"configuration epoch {config.epoch} from {source} rejected: {'; '.join(problems[:5])}",
                )
            ]
        self.config = config
        self._maintenance = self._is_true(config.property("maintenance-mode")) or self._is_true(
            config.node_attribute(self._s.node, "maintenance")
        )
        self._dirty = True
        self._digest = config.digest()[:16]
        wanted = {p.id: p for p in config.primitives if p.agent_class != "stonith"}
        for rsc, primitive in wanted.items():
            if rsc not in self._local:
                self._local[rsc] = LocalResource(rsc)
                self._primitives[rsc] = primitive
            elif (
                self._local[rsc].state in (LocalState.STOPPED, LocalState.UNKNOWN)
                and self._local[rsc].pending is None
            ):
                self._primitives[rsc] = primitive
        for rsc in list(self._local):
            if (
                rsc not in wanted
                and self._local[rsc].state is LocalState.STOPPED
                and self._local[rsc].pending is None
            ):
                del self._local[rsc]
                del self._primitives[rsc]
        self._next_refresh_ms = now_ms
        if not announce:
            return []
        return [
            ConfigAdopted(config, source),
            Notice(
                "CONFIG_ADOPTED", Level.INFO, f"configuration epoch {config.epoch} adopted (from {source})"
            ),
        ]

    def _version(self) -> tuple[int, str]:
        return (self.config.epoch, self._digest)

    def _config_ids(self) -> set[str]:
        return {p.id for p in self.config.primitives if p.agent_class != "stonith"}

    def _managed_ids(self) -> list[str]:
        return sorted(self._config_ids())

    def _threshold(self, rsc: str) -> int:
        if rsc not in self._config_ids():
            return INFINITY
        return self.config.migration_threshold_of(rsc)

    def _is_managed(self, rsc: str) -> bool:
        if rsc not in self._config_ids():
            return True
        return (self.config.meta_of(rsc, "is-managed") or "true").lower() not in ("false", "no", "off", "0")

    @staticmethod
    def _is_true(text: str | None) -> bool:
        return text is not None and text.strip().lower() in ("true", "on", "yes", "1", "y")


def _order_of(message: MessageDelivered) -> tuple[int, int]:
    """``sq`` = ``generation:counter``; a message without one (an older peer) orders first."""
    generation, _, counter = (message.get("sq") or "").partition(":")
    if not generation:
        return (-1, -1)
    return (int(generation), int(counter))


def _hold_starts(
    plan: Plan, observed: Mapping[str, Mapping[NodeName, LocalState]], awaiting: list[NodeName]
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
    for rsc, target in plan.assignment.items():
        if target is None:
            continue
        if observed.get(rsc, {}).get(target) in (LocalState.STARTED, LocalState.STARTING):
            continue
        assignment[rsc] = None
        reasons[rsc] = (
            f"waiting for {', '.join(awaiting)} to be fenced: nothing starts before, it may have "
            "started resources since its last report"
        )
    return Plan(assignment, reasons, plan.needs_fencing | frozenset(awaiting))


def _describe(plan: Plan, previous: Mapping[str, NodeName | None] | None) -> str:
    """The changes, each with its reason: ``vip -> n2 (goes to n2 (score 0))``."""
    parts = []
    for rsc, node in sorted(plan.assignment.items()):
        if previous is not None and previous.get(rsc) == node:
            continue
        parts.append(f"{rsc} -> {node or 'nowhere'} ({plan.reasons.get(rsc, '')})")
    return "; ".join(parts) or "no resources"


def _encode_plan(plan: Plan) -> str:
    return json.dumps(
        {
            "a": {r: n or "" for r, n in sorted(plan.assignment.items())},
            "why": dict(sorted(plan.reasons.items())),
            "fence": sorted(plan.needs_fencing),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _decode_plan(encoded: str) -> Plan:
    data = json.loads(encoded)
    if not isinstance(data, dict) or not isinstance(data.get("a"), dict):
        raise ValueError("plan must hold an assignment object")
    assignment = {str(r): (NodeName(str(n)) if n else None) for r, n in data["a"].items()}
    reasons = {str(r): str(w) for r, w in (data.get("why") or {}).items()}
    fence = frozenset(NodeName(str(n)) for n in data.get("fence") or [])
    return Plan(assignment, reasons, fence)
