"""The cluster resource manager's coordinator: one node's state, and the order things happen in.

Theory of operation
-------------------
Every node runs this same state machine; it is level-triggered, so a lost or repeated
message can delay a decision but never make it wrong.  It keeps state and calls the rules;
each rule lives in its own module:

=========================  ====================================================================
``rm_messages.py``         what nodes tell each other, typed and validated
``dc.py``                  the DC's plan (``plan_for``) and its own edits (``follow_up_edits``)
``reconcile.py``           what this node does about the plan (``decide``)
``fencing.py``             who must be fenced, when, and what a fence releases
``local.py``               this node's resources: definitions, operations in flight
``lrm.py``                 one resource on this node: states, OCF exit codes, fail counts
``snapshot.py``            the frozen view all of them decide from
=========================  ====================================================================

- **Reports.**  Each node broadcasts a ``StateReport``: the local state of every resource,
  fail counts, whether its start-up probes are done, whether it is leaving, and the epoch and
  digest of its configuration.  It sends one whenever that changes and again every
  ``refresh_ms``.  Reports and plans carry an order (``generation:counter``): membership
  delivers a retransmitted message late (after newer ones), and an older one is ignored.
- **Configuration.**  One versioned document (``ClusterConfig``).  A node that sees a peer
  report an older version sends its own (``ConfigMessage``); a node adopts a received document
  when its ``(epoch, digest)`` is greater, so every member converges on one version and a
  conflict (two edits with the same epoch) is resolved the same way everywhere.
- **DC.**  The member with the lowest name is the designated coordinator; a node that is not
  an active member itself yet (its view is partial) has none.  Once every member has
  reported, probed everything and agrees on the configuration, and no peer is half-way
  through joining (``init``/``up``), the DC computes ``dc.plan_for`` and broadcasts it
  (``PlanMessage``), makes its own edits, and asks for fencing.  Nodes act only on the plan
  of the DC they themselves see.
- **Reconciliation.**  Each node runs ``reconcile.decide`` on its own view and the plan:
  one operation per resource at most, carried out as ``RunAgent``.

``step`` is the whole cycle, run after every input: expire fail counts, settle quorum, elect,
plan (DC), reconcile, report.

Inputs come from ``node.py``: membership changes, delivered ``hac_*`` messages, agent and
fence results and operator requests.  Outputs are ``RmEffect``s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig
from hacluster.core.dc import follow_up_edits, plan_for
from hacluster.core.effects import (
    AgentFinished,
    Broadcast,
    ConfigAdopted,
    FenceFinished,
    Level,
    MessageDelivered,
    NodeStateChanged,
    Notice,
    RmEffect,
)
from hacluster.core.fence_devices import FenceDeviceSpec, devices_from_config
from hacluster.core.fencing import Fencing, request_delay_ms
from hacluster.core.ids import NodeName
from hacluster.core.local import LocalResources
from hacluster.core.lrm import LocalState, ResourceReport
from hacluster.core.plan import Plan, Role
from hacluster.core.reconcile import NodeFacts, decide
from hacluster.core.rm_messages import (
    CleanupMessage,
    ConfigMessage,
    Fenced,
    FenceRequest,
    MessageError,
    PlanMessage,
    StateReport,
    decode,
    encode,
    encode_plan,
)
from hacluster.core.snapshot import ClusterSnapshot, Failure, has_quorum
from hacluster.core.watchdog import (
    WATCHDOG_PROPERTY,
    configured_timeout_ms,
    watchdog_fencing_ms,
    watchdog_quorum,
    watchdog_refusal,
)

CONFIG_RESEND_MS: Final = 1000
RETRY_MS: Final = 100
"""How soon a step looks again at something due that it could not act on."""


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
    watchdog_ms: int = 0
    """The timeout of the watchdog this node's daemon pets (0: none), announced in reports."""
    generation: int = 0
    """This incarnation's generation (``NodeCore`` copies membership's): with a counter it
    orders our reports and plans, so a late retransmission never overrides a newer one."""


class ResourceManager:
    def __init__(self, settings: RmSettings, config: ClusterConfig, now_ms: int) -> None:
        self._s = settings
        self.config = config
        self.local = LocalResources()
        self._reports: dict[NodeName, StateReport] = {}
        self._members: frozenset[NodeName] = frozenset()
        self._joining: set[NodeName] = set()
        """Peers heard from but not active yet (``init``/``up``): the DC waits for them."""
        self._dc: NodeName | None = None
        self._plan: Plan | None = None
        self._plan_from: NodeName | None = None
        self._plan_id = 0
        self._sent_plan = ""
        self._sent_plan_value: Plan | None = None
        """The last plan this node sent as DC (``_sent_plan`` is its encoding)."""
        self._plan_broadcast: tuple[tuple[int, int], Broadcast] | None = None
        self._plan_orders: dict[NodeName, tuple[int, int]] = {}
        """DC → (generation, plan id) of the last plan taken from it."""
        self._sent_report: tuple[object, ...] | None = None
        self._report_seq = 0
        self._next_refresh_ms = now_ms
        self._config_sent_ms: dict[tuple[NodeName, int], int] = {}
        self._leaving = False
        self._leave_deadline_ms: int | None = None
        self._done = False
        self._left_clean = False
        self._digest = ""
        self._maintenance = False
        self.fencing = Fencing(settings.node)
        self._dirty = True
        """Something the DC's plan depends on changed since it was last computed."""
        self._last_step_ms: int | None = None
        self._hold_until_ms: int | None = None
        """After this node was frozen past deadtime: start nothing before this time."""
        self._lost_quorum_running: tuple[str, ...] = ()
        """Self-fencing: what ran here when this partition lost quorum (kept: the node resets)."""
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
        return self.local.state(rsc)

    def reports(self) -> dict[str, dict[NodeName, ResourceReport]]:
        """Resource → node → its last report (ours included), for status, metrics and ``why``."""
        out: dict[str, dict[NodeName, ResourceReport]] = {}
        for rsc, own in self.local.reports().items():
            out.setdefault(rsc, {})[self._s.node] = own
        for node, report in self._reports.items():
            for rsc, entry in report.resources.items():
                out.setdefault(rsc, {})[node] = entry
        return out

    def observed(self) -> dict[str, dict[NodeName, LocalState]]:
        """Resource → node → state, from our own state and every peer's last report."""
        out: dict[str, dict[NodeName, LocalState]] = {}
        for resource in self.local:
            out.setdefault(resource.id, {})[self._s.node] = resource.state
        for node, report in self._reports.items():
            for rsc, entry in report.resources.items():
                out.setdefault(rsc, {})[node] = entry.state
        return out

    def observed_roles(self) -> dict[str, dict[NodeName, Role]]:
        """Instance → node → its role, where a node reports a role other than Started."""
        out: dict[str, dict[NodeName, Role]] = {}
        for resource in self.local:
            if resource.role is not Role.STARTED:
                out.setdefault(resource.id, {})[self._s.node] = resource.role
        for node, report in self._reports.items():
            for rsc, entry in report.resources.items():
                if entry.role is not Role.STARTED:
                    out.setdefault(rsc, {})[node] = entry.role
        return out

    def failcounts(self) -> dict[tuple[str, NodeName], int]:
        counts = {(r.id, self._s.node): r.failcount for r in self.local if r.failcount}
        for node, report in self._reports.items():
            for rsc, entry in report.resources.items():
                if entry.failcount > 0:
                    counts[(rsc, node)] = min(INFINITY, entry.failcount)
        return counts

    def has_quorum(self) -> bool:
        if configured_timeout_ms(self.config) > 0:
            # Self-fencing needs one side of every split to stand down, two nodes too.
            return watchdog_quorum(self._s.nodes, self._members | {self._s.node})
        return has_quorum(len(self._s.nodes), len(self._members))

    def watchdogs(self) -> dict[NodeName, int]:
        """Node → the watchdog timeout it announced (this node's own included)."""
        out = {node: report.watchdog_ms for node, report in self._reports.items()}
        out[self._s.node] = self._s.watchdog_ms
        return out

    def devices(self) -> tuple[FenceDeviceSpec, ...]:
        return devices_from_config(self.config, self._s.extra_devices)

    def fencing_configured(self) -> bool:
        return bool(self.devices())

    def fencing_pending(self) -> dict[NodeName, str]:
        return self.fencing.attempts.pending()

    def snapshot(self, now_ms: int | None = None) -> ClusterSnapshot:
        """Everything the DC plans from, frozen, with the failures ``why`` explains."""
        failures = {}
        for rsc, per_node in self.reports().items():
            for node, entry in per_node.items():
                if entry.failed_op:
                    local = self.local.get(rsc) if node == self._s.node else None
                    failures[(rsc, node)] = Failure(
                        op=entry.failed_op,
                        rc=entry.failed_rc,
                        reason=entry.exit_reason or None,
                        last_failure_ms=local.last_failure_ms if local is not None else None,
                    )
        return replace(self._view(), failures=failures, now_ms=now_ms)

    def _view(self) -> ClusterSnapshot:
        """The view this step decides from (``snapshot`` without failure details)."""
        leaving = {n for n, r in self._reports.items() if r.leaving}
        if self._leaving:
            leaving.add(self._s.node)
        banned = {r.id for r in self.local if r.banned_everywhere}
        for report in self._reports.values():
            banned.update(rsc for rsc, entry in report.resources.items() if entry.banned_everywhere)
        return ClusterSnapshot(
            config=self.config,
            nodes=self._s.nodes,
            members=self._members | {self._s.node},
            observed=self.observed(),
            roles=self.observed_roles(),
            failcounts=self.failcounts(),
            banned_everywhere=frozenset(banned),
            fenced=self.fencing.fenced,
            clean_exits=frozenset(self.fencing.clean_exits),
            unclean=frozenset(self.fencing.unclean),
            fence_pending=self.fencing.attempts.pending(),
            leaving=frozenset(leaving),
            has_quorum=self.has_quorum(),
            dc=self._dc,
            plan=self._plan,
            extra_fence_devices=self._s.extra_devices,
            node=self._s.node,
            watchdogs=self.watchdogs(),
            lost_quorum_running=self._lost_quorum_running,
        )

    def warnings(self) -> list[str]:
        out = []
        if not self.config.is_stonith_enabled():
            out.append(
                "fencing is disabled (stonith-enabled=false): if the cluster partitions, "
                "both sides may run the same resources at once"
            )
        elif self._config_ids() and not self.fencing_configured():
            view = self._view()
            refusal = watchdog_refusal(view)
            if configured_timeout_ms(self.config) > 0 and refusal is not None:
                out.append(f"{WATCHDOG_PROPERTY} is set but self-fencing is refused: {refusal}")
            if not watchdog_fencing_ms(view):
                out.append(
                    "stonith-enabled=true but no fencing device is configured: resources will not start; "
                    f"configure a stonith device, set {WATCHDOG_PROPERTY} with a watchdog on every node, "
                    "or set property stonith-enabled=false"
                )
        if configured_timeout_ms(self.config) > 0 and not self._s.watchdog_ms:
            out.append(
                f"{WATCHDOG_PROPERTY} is set but this node pets no watchdog: add watchdog /dev/watchdog "
                "to ha.cf and restart"
            )
        if self.config.is_maintenance_mode():
            out.append("maintenance-mode is on: resources are neither started, stopped nor monitored")
        return out

    def next_deadline_ms(self) -> int:
        """The earliest time ``step`` could do something on its own.

        Never at or before the last step: something due that the step could not act on
        (a monitor while in maintenance, a stop waiting for dependents) is looked at again
        ``RETRY_MS`` later or at the next input, instead of making the shell spin.
        """
        deadline = self._next_refresh_ms
        local = self.local.deadline_ms(self.config, self._config_ids(), maintenance=self._maintenance)
        if local is not None:
            deadline = min(deadline, local)
        if self._hold_until_ms is not None:
            deadline = min(deadline, self._hold_until_ms)
        if self._leave_deadline_ms is not None and not self._done:
            deadline = min(deadline, self._leave_deadline_ms)
        fencing = self.fencing.attempts.next_deadline_ms()
        if fencing is not None:
            deadline = min(deadline, fencing)
        if self._last_step_ms is not None and deadline <= self._last_step_ms:
            deadline = self._last_step_ms + RETRY_MS
        return deadline

    # --- inputs -----------------------------------------------------------------------

    def on_membership(
        self,
        change: NodeStateChanged,
        members: Iterable[NodeName],
        now_ms: int,
        generation: int | None = None,
    ) -> list[RmEffect]:
        self._dirty = True
        out: list[RmEffect] = []
        node = change.node
        if node != self._s.node and node in self._s.nodes:
            out += self.fencing.on_peer_change(change, generation, must_fence=self._must_fence())
        if node != self._s.node:
            if change.new in ("init", "up"):
                self._joining.add(node)
            else:
                self._joining.discard(node)
        self._members = frozenset(members) - self.fencing.suspects
        if node != self._s.node and change.new == "active":
            self._next_refresh_ms = now_ms  # tell the newcomer about us at once
        out += self.step(now_ms)
        return out

    def on_message(self, delivered: MessageDelivered, now_ms: int) -> list[RmEffect]:
        """A peer's message: decoded whole first, so a bad one changes nothing."""
        try:
            message = decode(delivered)
        except MessageError as exc:
            text = f"{delivered.mtype} from {delivered.src} rejected: {exc.problem}"
            return [Notice("RM_MESSAGE_REJECTED", Level.WARNING, text)]
        if message is None:
            return []  # a type of a newer version: nothing here depends on it
        out: list[RmEffect] = []
        src = delivered.src
        match message:
            case StateReport():
                self._on_state(src, message, now_ms, out)
            case PlanMessage():
                self._on_plan(src, message)
            case ConfigMessage():
                self._dirty = True
                self._on_config(src, message.config, now_ms, out)
            case CleanupMessage():
                self._dirty = True
                self._cleanup_local(message.resource, message.node, out)
            case FenceRequest():
                self._dirty = True
                out += self.fencing.on_request(message, src, self.config, self.devices(), now_ms)
            case Fenced():
                self._dirty = True
                out += self.fencing.on_fenced(message, src, now_ms)
        out += self.step(now_ms)
        return out

    def on_agent_finished(self, result: AgentFinished, now_ms: int) -> list[RmEffect]:
        dirty, self._dirty = self._dirty, True
        resource = self.local.get(result.resource)
        before = None if resource is None else resource.report()
        outcome = self.local.finish(result, self.config, now_ms)
        if outcome is None:
            return [Notice("AGENT_RESULT_IGNORED", Level.DEBUG, f"stale result for {result.resource}")]
        out: list[RmEffect] = []
        level = Level.INFO
        if outcome.failed:
            level = Level.ERROR if outcome.state is LocalState.BLOCKED else Level.WARNING
        is_routine = result.action == "monitor" and result.interval_ms > 0 and not outcome.failed
        if is_routine and resource is not None and resource.report() == before:
            # A recurring monitor that found what we knew changes nothing a plan is made from
            # (the view takes state, fail count and bans from these reports): no new plan.
            self._dirty = dirty
        if not is_routine:
            out.append(
                Notice(
                    "RESOURCE_" + result.action.upper().replace("-", "_"),
                    level,
                    outcome.text + f" ({result.duration_ms} ms)",
                    (("resource", result.resource), ("rc", result.rc), ("state", outcome.state.value)),
                )
            )
        return out + self.step(now_ms)

    def on_fence_finished(self, result: FenceFinished, now_ms: int) -> list[RmEffect]:
        self._dirty = True
        out: list[RmEffect] = list(self.fencing.on_finished(result, self.devices(), now_ms))
        return out + self.step(now_ms)

    def propose_config(self, config: ClusterConfig, now_ms: int) -> list[RmEffect]:
        """An operator's change made on this node: adopt it and send it to every member."""
        self._dirty = True
        assert config.epoch > self.config.epoch, "a new configuration needs a higher epoch"
        out = self._adopt(config, self._s.node, now_ms, announce=True)
        out.append(encode(ConfigMessage(config)))
        return out + self.step(now_ms)

    def cleanup(self, rsc: str, node: str, now_ms: int) -> list[RmEffect]:
        """Forget failures of ``rsc`` (all when empty) on ``node`` (all when empty), re-probe."""
        self._dirty = True
        out: list[RmEffect] = [encode(CleanupMessage(rsc, node))]
        self._cleanup_local(rsc, node, out)
        return out + self.step(now_ms)

    def confirm_fenced(self, target: NodeName, now_ms: int) -> list[RmEffect]:
        """The operator's word that ``target`` is down (``hacrm node fence-confirm``)."""
        self._dirty = True
        out: list[RmEffect] = list(self.fencing.on_operator_confirm(target, now_ms))
        return out + self.step(now_ms)

    def request_fence(self, target: NodeName, now_ms: int) -> list[RmEffect]:
        """The operator asks for ``target`` to be fenced now (``hacrm node fence``)."""
        self._dirty = True
        out: list[RmEffect] = list(
            self.fencing.on_operator_request(target, self.config, self.devices(), now_ms)
        )
        return out + self.step(now_ms)

    def reconfigure(
        self, nodes: tuple[NodeName, ...], extra_devices: tuple[FenceDeviceSpec, ...], now_ms: int
    ) -> list[RmEffect]:
        """ha.cf was re-read: the node list and ha.cf fence devices may have changed."""
        self._s = replace(self._s, nodes=nodes, extra_devices=extra_devices)
        self.local.adopt(self.config, len(nodes))  # a clone's default clone-max is the node count
        self._dirty = True
        return self.step(now_ms)

    def on_resumed(self, paused_ms: int, now_ms: int) -> list[RmEffect]:
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
        active = self.local.active()
        out: list[RmEffect] = [
            Notice(
                "NODE_WAS_FROZEN",
                Level.ERROR,
                f"{self._s.node} was frozen for {paused_ms} ms, longer than the dead time: peers may have taken "
                f"over; stopping {', '.join(active) or 'nothing'} here and starting nothing for "
                f"{2 * self._s.refresh_ms} ms",
            )
        ]
        return out + self.step(now_ms)

    def begin_shutdown(self, now_ms: int) -> list[RmEffect]:
        self._dirty = True
        if self._leaving:
            return []
        self._leaving = True
        self._leave_deadline_ms = now_ms + self._s.shutdown_timeout_ms
        active = self.local.active()
        out: list[RmEffect] = [
            Notice(
                "NODE_LEAVING",
                Level.INFO,
                f"{self._s.node} leaving the cluster: handing over {', '.join(active) or 'no resources'} first",
            )
        ]
        self._next_refresh_ms = now_ms
        return out + self.step(now_ms)

    # --- the step: expire, elect, plan, reconcile, report ------------------------------------

    def step(self, now_ms: int) -> list[RmEffect]:
        self._last_step_ms = now_ms
        out: list[RmEffect] = []
        self._expire_failures(now_ms, out)
        self._adopt_known_down(out)
        ignores_quorum = self.config.no_quorum_policy() == "ignore"
        out += self.fencing.on_quorum(self.has_quorum(), ignores_quorum=ignores_quorum)
        if not self._lost_quorum_running and not self.has_quorum() and configured_timeout_ms(self.config) > 0:
            # Noted before this step stops anything: a quick stop must not hide it from the
            # watchdog verdict, which peers count on (core/watchdog.py).
            self._lost_quorum_running = tuple(self.local.active())
        fenced = self.fencing.fenced
        out += self.fencing.tick(self.devices(), self._members | {self._s.node}, now_ms)
        if self.fencing.fenced != fenced:
            self._dirty = True  # a self-fencing wait ended: plan with it at once
        self._elect(out)
        view = self._view()
        if self._dc == self._s.node and (
            self._dirty or self._plan is None or self._plan_from != self._s.node
        ):
            self._dirty = False
            self._compute_plan(view, out)
            view = self._follow_up(view, now_ms, out)
            out += self.fencing.request_as_dc(view, self._fencing_delay_ms(view, now_ms), now_ms)
        elif self.fencing.suspects and self._dc != self._s.node:
            out += self.fencing.fence_suspects(view, self._fencing_delay_ms(view, now_ms), now_ms)
        out += self.fencing.tick(self.devices(), view.members, now_ms)
        self._reconcile(view, now_ms, out)
        self._report(now_ms, out)
        self._check_shutdown(now_ms, out)
        return out

    def _expire_failures(self, now_ms: int, out: list[RmEffect]) -> None:
        expired = self.local.expire(self.config, now_ms)
        if expired:
            self._dirty = True
            out += expired

    def _elect(self, out: list[RmEffect]) -> None:
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

    def _compute_plan(self, view: ClusterSnapshot, out: list[RmEffect]) -> None:
        if self._not_ready(view.members):
            self._dirty = True  # try again at the next step
            return
        plan = plan_for(view)
        encoded = encode_plan(plan)
        previous = (
            self._plan.assignment if self._plan is not None and self._plan_from == self._s.node else None
        )
        self._plan, self._plan_from = plan, self._s.node
        if encoded != self._sent_plan:
            self._plan_id += 1
            self._sent_plan, self._sent_plan_value = encoded, plan
            self._broadcast_plan(out)
        if previous != plan.assignment:
            out.append(Notice("PLAN", Level.INFO, f"plan {self._plan_id}: {_describe(plan, previous)}"))

    def _not_ready(self, members: frozenset[NodeName]) -> list[NodeName]:
        """Members the DC still waits for: not probed, or on another configuration version."""
        waiting = []
        for node in sorted(members):
            if node == self._s.node:
                if not self.local.probed():
                    waiting.append(node)
                continue
            report = self._reports.get(node)
            if report is None or not report.probed or (report.epoch, report.digest) != self._version():
                waiting.append(node)
        waiting += sorted(self._joining - members)  # heard from, about to join: plan with them
        return waiting

    def _follow_up(self, view: ClusterSnapshot, now_ms: int, out: list[RmEffect]) -> ClusterSnapshot:
        """The DC's own configuration edits (a finished move, ``multiple-active=stop_only``)."""
        edit = follow_up_edits(view)
        if edit is None:
            return view
        out += edit.notices
        out += self._adopt(edit.config, self._s.node, now_ms, announce=True)
        out.append(encode(ConfigMessage(edit.config)))
        return self._view()

    def _adopt_known_down(self, out: list[RmEffect]) -> None:
        """Nodes never heard here that the members' reports vouch for (``Fencing.adopt_known_down``)."""
        if not self.fencing.unseen:
            return
        members = {m: r for m, r in self._reports.items() if m in self._members}
        adopted = self.fencing.adopt_known_down(
            {m: r.down for m, r in members.items()}, {m: r.lost for m, r in members.items()}
        )
        if adopted:
            self._dirty = True
            out += adopted

    def _fencing_delay_ms(self, view: ClusterSnapshot, now_ms: int) -> int:
        hold = self._hold_until_ms
        return request_delay_ms(
            self.config,
            self._s.fencing_delay_ms,
            len(self._s.nodes),
            runs_something=self.local.runs_something(),
            has_quorum=view.has_quorum,
            hold_ms=0 if hold is None else max(0, hold - now_ms),
        )

    def _broadcast_plan(self, out: list[RmEffect]) -> None:
        """The plan last sent, again, labelled with the configuration epoch now in force."""
        plan = self._sent_plan_value
        assert plan is not None
        key = (self._plan_id, self.config.epoch)
        if self._plan_broadcast is None or self._plan_broadcast[0] != key:
            message = PlanMessage(self._plan_id, (self._s.generation, self._plan_id), self.config.epoch, plan)
            self._plan_broadcast = (key, encode(message))
        out.append(self._plan_broadcast[1])

    def _reconcile(self, view: ClusterSnapshot, now_ms: int, out: list[RmEffect]) -> None:
        if self._hold_until_ms is not None and now_ms >= self._hold_until_ms:
            self._hold_until_ms = None
            self._dirty = True
        facts = NodeFacts(
            resources=self.local.facts(self.config, now_ms),
            leaving=self._leaving,
            hold=self._hold_until_ms is not None,
            is_dc=self._dc == self._s.node,
        )
        for op in decide(view, self._plan, self._s.node, facts):
            out.append(self.local.run(op, self.config, now_ms))

    def _report(self, now_ms: int, out: list[RmEffect]) -> None:
        probed = self.local.probed()
        resources = self.local.reports()
        epoch, digest = self._version()
        down, lost = self.fencing.known_down(), self.fencing.seen_lost()
        content = (epoch, digest, probed, self._leaving, resources, down, lost)
        if content == self._sent_report and now_ms < self._next_refresh_ms:
            return
        self._sent_report = content
        self._next_refresh_ms = now_ms + self._s.refresh_ms
        self._report_seq += 1
        order = (self._s.generation, self._report_seq)
        report = StateReport(
            order,
            epoch,
            digest,
            probed,
            self._leaving,
            resources,
            down,
            lost,
            watchdog_ms=self._s.watchdog_ms,
        )
        out.append(encode(report))
        if self._dc == self._s.node and self._sent_plan:
            self._broadcast_plan(out)

    def _check_shutdown(self, now_ms: int, out: list[RmEffect]) -> None:
        if not self._leaving or self._done:
            return
        busy, blocked = self.local.busy()
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

    def _on_state(self, src: NodeName, report: StateReport, now_ms: int, out: list[RmEffect]) -> None:
        previous = self._reports.get(src)
        if previous is not None and report.order < previous.order:
            return  # a late retransmission: membership delivers a missing message when it comes
        self._reports[src] = report
        if previous is None or _content(previous) != _content(report):
            self._dirty = True
        if (report.epoch, report.digest) < self._version():
            last = self._config_sent_ms.get((src, self.config.epoch))
            if last is None or now_ms - last >= CONFIG_RESEND_MS:
                self._config_sent_ms[(src, self.config.epoch)] = now_ms
                out.append(encode(ConfigMessage(self.config)))

    def _on_plan(self, src: NodeName, message: PlanMessage) -> None:
        if src != self._dc:
            return
        if message.epoch != self.config.epoch:
            return  # made for another configuration: wait for the DC to catch up
        if message.order < self._plan_orders.get(src, (-1, -1)):
            return  # an older plan, retransmitted late
        self._plan_orders[src] = message.order
        self._plan, self._plan_from = message.plan, src

    def _on_config(self, src: NodeName, config: ClusterConfig, now_ms: int, out: list[RmEffect]) -> None:
        digest = config.digest()
        if (config.epoch, digest[: len(self._digest)]) <= self._version():
            return  # the one we have, or an older one
        if config.epoch == self.config.epoch:
            out.append(
                Notice(
                    "CONFIG_CONFLICT",
                    Level.WARNING,
                    f"two configurations with epoch {config.epoch}: keeping the one from {src} "
                    f"(digest {digest[:12]} > {self.config.digest()[:12]}); the other change is lost",
                )
            )
        out += self._adopt(config, src, now_ms, announce=True)

    def _cleanup_local(self, rsc: str, node: str, out: list[RmEffect]) -> None:
        if node and node != self._s.node:
            return
        held = self._plan.held if self._plan is not None else frozenset()
        out += self.local.cleanup(rsc, self._s.node, held)

    # --- helpers ------------------------------------------------------------------------------

    def _adopt(
        self, config: ClusterConfig, source: NodeName, now_ms: int, *, announce: bool
    ) -> list[RmEffect]:
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
        self._maintenance = config.is_maintenance_mode() or config.is_node_in_maintenance(self._s.node)
        self._dirty = True
        self._digest = config.digest()[:16]
        self.local.adopt(config, len(self._s.nodes))
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

    def _must_fence(self) -> bool:
        return self.config.is_stonith_enabled() and bool(self._config_ids())


def _content(report: StateReport) -> tuple[object, ...]:
    """What the DC plans from in a report (its order aside)."""
    return (report.epoch, report.digest, report.probed, report.leaving, report.resources, report.watchdog_ms)


def _describe(plan: Plan, previous: Mapping[str, NodeName | None] | None) -> str:
    """The changes, each with its reason: ``vip -> n2 (goes to n2 (score 0))``."""
    parts = []
    for rsc, node in sorted(plan.assignment.items()):
        if previous is not None and previous.get(rsc) == node:
            continue
        parts.append(
            f"{rsc} -> {node or 'nowhere'} ({plan.reasons[rsc].text if rsc in plan.reasons else ''})"
        )
    return "; ".join(parts) or "no resources"
