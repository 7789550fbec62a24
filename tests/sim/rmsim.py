"""Deterministic simulation of a cluster of real ``NodeCore``s and their resource agents.

Theory of operation
-------------------
One virtual clock (integer ms; with ``clocks=True`` each node reads its own offset, drifting
clock) and one event queue, a heap of ``(time, seq, kind, node, payload)``.  Every node
runs a real :class:`hacluster.core.node.NodeCore` (membership + resource manager); after
each input its next ``Tick`` is scheduled at ``next_deadline_ms()``.

The network delivers every ``Send`` to every other node after a random delay (so packets
reorder), with optional loss and duplication; tests cut it (both ways or one way).

Each node has an *agent world*, the truth the agents see: ``running`` is the set of
resources that may be active on that machine.  A ``start`` puts the resource there when it
is *issued* (a half-done start may already hold the address), a successful ``stop`` takes it
out when it completes, a probe or monitor answers from it.  Tests inject failures: the next
start of X fails with rc R, monitors of X return R, stops of X fail, X dies (leaves
``running``; the next monitor says rc 7).

Faults on nodes:

- ``crash(node, power_off=True)``: the daemon stops processing; with ``power_off`` the
  machine is gone and so is everything in its ``running``.  Without it the resources keep
  running, unsupervised, like a partition.
- ``restart(node)``: a new ``NodeCore`` with a higher generation; its world keeps what was
  running unless the machine was powered off.  Operations in flight at a crash complete in
  the world at the crash (start: running; stop: gone) but are never reported.
- ``stop_node(node)``: the operator's graceful stop (hand over, then ``shutdone``).
- ``pause(node, ms)``: SIGSTOP; inputs wait and reach the daemon in order at resume (after
  its due tick, as the shell's driver loop takes due deadlines first); agents and fence
  requests already running go on.  ``disk_ms``: every configuration adopted is written to
  the state dir in the driver loop, stalling the daemon likewise; a crash before the write
  completes leaves the old configuration for the next boot.
- ``step_clock(node, ms)``: with ``clocks=True`` every node has its own clock (a large
  random offset and a drift, ``simclock.py``); a step jumps it forward.
- ``partition(a, b, symmetric=False)`` cuts one direction; ``deafen(node)``: the node sends
  but receives nothing.
- ``hang_agent(node, rsc, action)``: those operations hang until the shell kills them at
  their timeout (rc 1, timed out); the machine keeps what the operation left (a hung start
  may be active, a hung stop did not stop).
- ``fence_reply_late_ms``: the device powers the target off on time but reports success
  late (perhaps after the core gave up waiting and retried).

Fencing (for configurations with a ``stonith:`` device): a ``Fence`` effect is a power switch
that works: after ``fence_ms`` the target machine is off (its resources with it, journalled as
``lost``) and the executor gets ``FenceFinished(ok)``.  ``fences`` records (time, executor,
target).

Checkers run after every event:

- *safety*: no resource is in the ``running`` set of two powered-on machines (``strict``:
  always; otherwise as follows).  Partitions,
  and unsupervised resources on a crashed daemon's machine, legitimately make two copies
  when ``stonith-enabled=false``; while such a *split* lasts, and for ``split_grace_ms``
  after it heals, two copies are tolerated; after that the check is strict again.
- *promoted-max* (promotable clones): the instances in the ``promoted`` set of powered-on
  machines never number more than the clone's ``promoted-max``; strict whenever fencing is
  on (partitions included: a side promotes only after fencing the other), tolerated like a
  double copy during a split with ``stonith-enabled=false``.
- *orders* (``check_orders``, from the journal): for ``order Mandatory: A B`` a start of B
  completes only while A is started somewhere, and a stop of A (of a running A) completes
  only when B runs nowhere.
- *handover* (``check_handover``, from the journal): no start on a node while the last
  holder had neither stopped the resource cleanly nor been powered off.
- *liveness* (``settle``): once faults stop, within a bound every live node sees the same
  DC, the DC has a plan, every planned resource runs on exactly its planned node and every
  unplanned one runs nowhere, and group members share a node.

Every failure raises :class:`SimFailure` naming the seed and ``--sim-seed=N`` to replay.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simclock import DRIFT_PPM_MAX, to_global, to_local

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import codec
from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import RmSettings
from hacluster.core.effects import (
    AgentFinished,
    CleanupRequested,
    ConfigAdopted,
    Effect,
    Fence,
    FenceFinished,
    Level,
    NodeStateChanged,
    Notice,
    PacketReceived,
    ProposeConfig,
    RunAgent,
    Send,
    Stopped,
    StopRequested,
    Tick,
)
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.node import NodeCore
from hacluster.core.orders import clone_prerequisite, dependencies, prerequisite_instances
from hacluster.core.plan import Role
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings

KEYRING = codec.KeyRing.single("sha1", b"rm-sim")
LINK = LinkName("bcast eth0")
LINKS = (LinkSpec(LINK, LinkKind.BCAST, "eth0"),)

DEFAULT_CONFIG = """
primitive vip ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive app ocf:hacluster:Dummy op monitor interval=1s timeout=5s
group g vip app
primitive db ocf:hacluster:Dummy op monitor interval=1s timeout=5s
order app-before-db Mandatory: g db
property stonith-enabled=false
"""


_IN_FLIGHT = frozenset({"pkt", "agent", "input", "fence-reply", "persist"})
"""Queued events that may still change the picture: the cluster is not at rest while any wait."""


class SimFailure(AssertionError):
    """A checker found a violation; the message says how to replay it."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One completed start or stop; also ``lost`` (machine powered off, or the resource died)
    and ``outside`` (started behind the cluster's back by the test)."""

    time_ms: int
    node: str
    resource: str
    action: str
    rc: int
    was_running: bool
    """Stop only: the resource was in ``running`` when the stop was issued (not a recovery)."""


@dataclass(slots=True)
class AgentWorld:
    """What the agents of one machine see."""

    running: set[str] = field(default_factory=set)
    fail_start: dict[str, int] = field(default_factory=dict)
    """Resource → rc of its next start (one shot)."""
    monitor_rc: dict[str, int] = field(default_factory=dict)
    """Resource → rc every recurring monitor returns until cleared (the resource keeps running)."""
    fail_stop: dict[str, int] = field(default_factory=dict)
    """Resource → rc every stop returns until cleared (the resource keeps running)."""
    in_flight: dict[int, RunAgent] = field(default_factory=dict)
    stop_was_running: dict[int, bool] = field(default_factory=dict)
    promoted: set[str] = field(default_factory=set)
    """Instances promoted on this machine (a promote counts from when it is issued)."""
    fail_demote: dict[str, int] = field(default_factory=dict)
    """Instance → rc every demote returns until cleared (it stays promoted)."""


@dataclass(slots=True)
class SimNode:
    name: NodeName
    generation: int
    core: NodeCore | None
    world: AgentWorld = field(default_factory=AgentWorld)
    powered: bool = True
    left: bool = False
    """Stopped gracefully (``Stopped`` effect seen)."""
    config: ClusterConfig | None = None
    """The last configuration adopted and written to the state dir (what a restart reads)."""
    offset_ms: int = 0
    """Clock offset plus every step injected since (simclock.py)."""
    drift_ppm: int = 0
    paused_until: int | None = None
    """The daemon takes no input before this time (SIGSTOP, or a state-dir write on a slow disk)."""
    hang: set[tuple[str, str]] = field(default_factory=set)
    """(resource, action) whose operations hang until the shell kills them at the op timeout."""

    def local_ms(self, global_ms: int) -> int:
        return to_local(global_ms, self.offset_ms, self.drift_ppm)

    def global_ms(self, local_ms: int) -> int:
        return to_global(local_ms, self.offset_ms, self.drift_ppm)


class RmSim:
    def __init__(
        self,
        nodes: int = 2,
        seed: int = 0,
        config_text: str = DEFAULT_CONFIG,
        keepalive_ms: int = 100,
        deadtime_ms: int = 500,
        *,
        delay_ms: tuple[int, int] = (1, 5),
        loss: float = 0.0,
        duplicate: float = 0.0,
        agent_delay_ms: tuple[int, int] = (2, 30),
        split_grace_ms: int | None = None,
        start_spread_ms: int = 0,
        refresh_ms: int = 1000,
        fence_ms: int = 50,
        clocks: bool = False,
        strict: bool = False,
        disk_ms: tuple[int, int] = (0, 0),
        fence_reply_late_ms: tuple[int, int] = (0, 0),
        critical_fails: bool = True,
    ) -> None:
        """``clocks``: every node gets a random clock offset and drift.  ``strict``: never
        tolerate two copies (fencing on: partitions and crashed daemons are no excuse).
        ``disk_ms``: each state-dir write stalls the daemon that long.  ``fence_reply_late_ms``:
        the device powers the target off after ``fence_ms`` but reports success this much
        later.  ``critical_fails``: a CRITICAL notice fails the run (without faults that
        keep a node out until fenced, none is expected)."""
        assert 1 <= nodes <= 9
        self.seed = seed
        self.rng = random.Random(seed)
        self.names = tuple(NodeName(f"n{i + 1}") for i in range(nodes))
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.initdead_ms = 4 * deadtime_ms
        self.delay_ms = delay_ms
        self.loss = loss
        self.duplicate = duplicate
        self.agent_delay_ms = agent_delay_ms
        self.refresh_ms = refresh_ms
        self.fence_ms = fence_ms
        self.strict = strict
        self.critical_fails = critical_fails
        self.disk_ms = disk_ms
        self.fence_reply_late_ms = fence_reply_late_ms
        self.faults: list[tuple[int, str]] = []
        """(time, description) of every fault the clock, disk, agent and fence knobs injected."""
        self.fences: list[tuple[int, str, str]] = []
        """(time, executor, target) of every fence carried out."""
        self.split_grace_ms = split_grace_ms if split_grace_ms is not None else deadtime_ms + 3000
        self.config = parse_resources_crm(config_text, "sim.crm")
        self.now_ms = 0
        self.journal: list[JournalEntry] = []
        self.notices: list[tuple[int, str, Notice]] = []
        self.state_changes: list[tuple[int, str, NodeStateChanged]] = []
        self.cut: set[tuple[str, str]] = set()
        self._queue: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        self._ticks: dict[str, set[int]] = {n: set() for n in self.names}
        self._split_since: dict[str, int] = {}
        self._grace_until_ms = -1
        self._events = 0
        self.nodes: dict[str, SimNode] = {}
        for name in self.names:
            self.nodes[name] = SimNode(name, 1, None)
            if clocks:
                self.nodes[name].offset_ms = self.rng.randrange(10**6, 10**12)
                self.nodes[name].drift_ppm = self.rng.randrange(-DRIFT_PPM_MAX, DRIFT_PPM_MAX + 1)
        for name in self.names:
            at = self.rng.randrange(0, start_spread_ms + 1) if start_spread_ms else 0
            self._push(at, "boot", name, None)

    # --- running ------------------------------------------------------------------------

    def run_until(self, time_ms: int) -> None:
        while self._queue and self._queue[0][0] <= time_ms:
            when, _, kind, node, payload = heapq.heappop(self._queue)
            self.now_ms = when
            self._dispatch(kind, node, payload)
            self._events += 1
            self.check_safety()
        self.now_ms = max(self.now_ms, time_ms)
        self.check_safety()

    def run_for(self, ms: int) -> None:
        self.run_until(self.now_ms + ms)

    def run_until_true(self, predicate: Callable[[], bool], within_ms: int, what: str) -> int:
        """Run until ``predicate()`` holds (checked after every event); its time, else fail."""
        deadline = self.now_ms + within_ms
        while True:
            if predicate():
                return self.now_ms
            if not self._queue or self._queue[0][0] > deadline:
                self.run_until(deadline)
                if predicate():
                    return self.now_ms
                raise self.failure(f"{what}: not true within {within_ms} ms")
            when, _, kind, node, payload = heapq.heappop(self._queue)
            self.now_ms = when
            self._dispatch(kind, node, payload)
            self.check_safety()

    # --- faults and operator actions -------------------------------------------------------

    def crash(self, node: str, *, power_off: bool = True, expect_split: bool = True) -> None:
        """``expect_split=False``: the daemon comes back before anyone could take over, so the
        at-most-one check stays strict meanwhile."""
        sim = self.nodes[node]
        assert sim.core is not None, f"{node} is not running"
        self.faults.append((self.now_ms, f"crash {node}{' (power off)' if power_off else ' (daemon only)'}"))
        sim.core = None
        for call_id, request in sorted(sim.world.in_flight.items()):
            if request.action == "start":
                sim.world.running.add(request.resource)
            elif request.action == "stop" and request.resource not in sim.world.fail_stop:
                sim.world.running.discard(request.resource)
            else:
                continue
            was_running = sim.world.stop_was_running.pop(call_id, True)
            self.journal.append(
                JournalEntry(self.now_ms, node, request.resource, request.action, 0, was_running)
            )
        sim.world.in_flight.clear()
        if power_off:
            sim.powered = False
            for rsc in sorted(sim.world.running):
                self.journal.append(JournalEntry(self.now_ms, node, rsc, "lost", 0, True))
            sim.world.running.clear()
            sim.world.promoted.clear()
        elif sim.world.running and expect_split:
            self._split_since.setdefault(f"unsupervised {node}", self.now_ms)
        self.check_safety()

    def restart(self, node: str) -> None:
        """Start ``node``'s daemon again (powering the machine on if it was off)."""
        sim = self.nodes[node]
        assert sim.core is None, f"{node} is running"
        self.faults.append((self.now_ms, f"restart {node}"))
        sim.powered = True
        sim.left = False
        sim.generation += 1
        self._heal_split(f"unsupervised {node}")
        self._boot(node)

    def stop_node(self, node: str) -> None:
        """The operator's graceful stop."""
        self._handle(node, StopRequested())

    def partition(self, side_a: Iterable[str], side_b: Iterable[str], *, symmetric: bool = True) -> None:
        """Cut every path from ``side_a`` to ``side_b`` (and back unless asymmetric)."""
        a, b = list(side_a), list(side_b)
        self.faults.append((self.now_ms, f"cut {a} {'<->' if symmetric else '->'} {b}"))
        for x in a:
            for y in b:
                self.cut.add((x, y))
                if symmetric:
                    self.cut.add((y, x))
        self._split_since.setdefault("partition", self.now_ms)

    def heal(self) -> None:
        self.faults.append((self.now_ms, "heal"))
        self.cut.clear()
        self._heal_split("partition")

    def propose_config(self, node: str, config: ClusterConfig | str) -> ClusterConfig:
        core = self.core(node)
        if isinstance(config, str):
            config = parse_resources_crm(config, "sim.crm", epoch=core.rm.config.epoch + 1)
        self._handle(node, ProposeConfig(config))
        return config

    def cleanup(self, node: str, rsc: str = "", on_node: str = "") -> None:
        self.core(node)
        self._handle(node, CleanupRequested(rsc, on_node))

    def fail_next_start(self, node: str, rsc: str, rc: int = 1) -> None:
        self.nodes[node].world.fail_start[rsc] = rc

    def fail_monitor(self, node: str, rsc: str, rc: int | None = 1) -> None:
        """Recurring monitors of ``rsc`` on ``node`` return ``rc`` (None: truthfully again)."""
        if rc is None:
            self.nodes[node].world.monitor_rc.pop(rsc, None)
        else:
            self.nodes[node].world.monitor_rc[rsc] = rc

    def fail_stop(self, node: str, rsc: str, rc: int | None = 1) -> None:
        """Stops of ``rsc`` on ``node`` return ``rc`` (None: succeed again)."""
        if rc is None:
            self.nodes[node].world.fail_stop.pop(rsc, None)
        else:
            self.nodes[node].world.fail_stop[rsc] = rc

    def kill(self, node: str, rsc: str) -> None:
        """``rsc`` dies on ``node`` (its next monitor answers rc 7)."""
        self.faults.append((self.now_ms, f"{rsc} dies on {node}"))
        if rsc in self.nodes[node].world.running:
            self.journal.append(JournalEntry(self.now_ms, node, rsc, "lost", 0, True))
        self.nodes[node].world.running.discard(rsc)

    def place_running(self, node: str, rsc: str) -> None:
        """Someone started ``rsc`` on ``node`` behind the cluster's back (a split the cluster must fix)."""
        self.nodes[node].world.running.add(rsc)
        self.journal.append(JournalEntry(self.now_ms, node, rsc, "outside", 0, True))
        self._split_since.setdefault(f"outside {node} {rsc}", self.now_ms)

    def heal_outside(self, node: str, rsc: str) -> None:
        self._heal_split(f"outside {node} {rsc}")

    def deafen(self, node: str) -> None:
        """``node`` still sends but hears nothing (a receive path broken one way)."""
        self.partition([n for n in self.names if n != node], [node], symmetric=False)

    def pause(self, node: str, duration_ms: int) -> None:
        """SIGSTOP for ``duration_ms``: inputs wait and reach the daemon, in order, at resume;
        its agents and fence requests run on meanwhile."""
        self.faults.append((self.now_ms, f"stall {node} {duration_ms} ms (paused)"))
        self._stall(node, duration_ms)

    def step_clock(self, node: str, forward_ms: int) -> None:
        """``node``'s monotonic clock jumps forward (a VM resumed from a host suspend)."""
        assert forward_ms > 0
        self.faults.append((self.now_ms, f"clock step {node} +{forward_ms} ms"))
        sim = self.nodes[node]
        sim.offset_ms += forward_ms
        if sim.core is not None:
            self._handle(node, Tick())

    def hang_agent(self, node: str, rsc: str, action: str, *, hang: bool = True) -> None:
        """Operations ``action`` of ``rsc`` on ``node`` hang until killed at their timeout."""
        self.faults.append(
            (self.now_ms, f"{rsc} {action} hangs on {node}" if hang else f"{rsc} {action} fixed on {node}")
        )
        if hang:
            self.nodes[node].hang.add((rsc, action))
        else:
            self.nodes[node].hang.discard((rsc, action))

    # --- queries -------------------------------------------------------------------------

    def core(self, node: str) -> NodeCore:
        core = self.nodes[node].core
        assert core is not None, f"{node} is not running"
        return core

    def live(self) -> list[str]:
        """Nodes whose daemon runs (and has not left)."""
        return [n for n in self.names if self.nodes[n].core is not None and not self.nodes[n].left]

    def where(self, rsc: str) -> list[str]:
        """Powered-on machines where ``rsc`` may be active."""
        return [n for n in self.names if self.nodes[n].powered and rsc in self.nodes[n].world.running]

    def resources(self) -> tuple[str, ...]:
        return self.core(self.live()[0]).rm.config.resource_ids() if self.live() else ()

    def entries(self, rsc: str | None = None, action: str | None = None) -> list[JournalEntry]:
        return [
            e
            for e in self.journal
            if (rsc is None or e.resource == rsc) and (action is None or e.action == action)
        ]

    def notices_with(self, code: str, node: str | None = None) -> list[tuple[int, str, Notice]]:
        return [x for x in self.notices if x[2].code == code and (node is None or x[1] == node)]

    def plan_of(self, rsc: str) -> tuple[str | None, str]:
        """The DC's plan for ``rsc`` as the first live node sees it: (node, reason)."""
        plan = self.core(self.live()[0]).rm.plan
        if plan is None:
            raise self.failure("no plan yet")
        reason = plan.reasons.get(rsc)
        return plan.assignment.get(rsc), reason.text if reason is not None else ""

    def failure(self, what: str) -> SimFailure:
        running = {n: sorted(self.nodes[n].world.running) for n in self.names}
        return SimFailure(
            f"seed {self.seed} at {self.now_ms} ms: {what}\n  running: {running}\n"
            f"  live: {self.live()}\n  faults: {'; '.join(f'{t} ms {what}' for t, what in self.faults[-12:])}\n"
            f"  replay: pytest tests/sim --sim-seed={self.seed} (the test that failed)"
        )

    # --- checkers ----------------------------------------------------------------------------

    def check_safety(self) -> None:
        self.check_promoted()
        if not self.strict and (self._split_since or self.now_ms <= self._grace_until_ms):
            return
        for node in self.names:
            for rsc in self.nodes[node].world.running:
                holders = self.where(rsc)
                if len(holders) > 1:
                    raise self.failure(f"{rsc} is active on {holders} at once")

    def check_promoted(self) -> None:
        config = self.config if not self.live() else self.core(self.live()[0]).rm.config
        if (self._split_since or self.now_ms <= self._grace_until_ms) and not config.is_stonith_enabled():
            return
        for clone in config.clones:
            if not config.is_promotable(clone.id):
                continue
            limit = config.clone_settings(clone.id, len(self.names)).promoted_max
            promoted = [
                (node, rsc)
                for node in self.names
                if self.nodes[node].powered
                for rsc in sorted(self.nodes[node].world.promoted & self.nodes[node].world.running)
                if config.clone_of(rsc) == clone
            ]
            if len(promoted) > limit:
                raise self.failure(f"{clone.id}: {len(promoted)} promoted instances {promoted} > {limit}")

    def promoted_where(self, clone_id: str) -> list[str]:
        config = self.config
        return sorted(
            node
            for node in self.names
            if self.nodes[node].powered
            and any(
                config.clone_of(rsc) is not None and config.clone_of(rsc).id == clone_id  # type: ignore[union-attr]
                for rsc in self.nodes[node].world.promoted & self.nodes[node].world.running
            )
        )

    def check_orders(self) -> None:
        """Mandatory orders (and groups) against the journal, replayed in time order."""
        config = self.config if not self.live() else self.core(self.live()[0]).rm.config
        deps = dependencies(config, len(self.names))
        started: dict[str, set[str]] = {}
        for entry in self.journal:
            holders = started.setdefault(entry.resource, set())
            if entry.action == "start" and entry.rc == 0:
                for first in deps.get(entry.resource, []):
                    prerequisite = clone_prerequisite(config, first)
                    if prerequisite is not None:
                        if not any(
                            started.get(i) for i in prerequisite_instances(config, prerequisite[0], started)
                        ):
                            raise self.failure(f"{entry}: started before any instance of {first} was started")
                        continue
                    if not started.get(first):
                        raise self.failure(f"{entry}: started before its prerequisite {first} was started")
                holders.add(entry.node)
            elif entry.action == "stop" and entry.rc == 0:
                holders.discard(entry.node)
                if not entry.was_running:
                    continue
                for then, firsts in deps.items():
                    # Another copy still running (a split without fencing) keeps the order.
                    if entry.resource in firsts and started.get(then) and not holders:
                        raise self.failure(f"{entry}: stopped while its dependent {then} still runs")
            elif entry.action == "lost":
                holders.discard(entry.node)
            elif entry.action == "outside":
                holders.add(entry.node)

    def check_handover(self) -> None:
        """From the journal alone: no start on a node while another node may still hold the
        resource, i.e. before its last holder stopped it cleanly (rc 0) or was powered off.

        A start that failed or timed out may have left a copy, so it makes a holder too."""
        holders: dict[str, set[str]] = {}
        for entry in self.journal:
            nodes = holders.setdefault(entry.resource, set())
            if entry.action == "start":
                others = nodes - {entry.node}
                if others:
                    raise self.failure(
                        f"{entry}: started while {sorted(others)} had not stopped it cleanly nor been fenced"
                    )
                nodes.add(entry.node)
            elif (entry.action == "stop" and entry.rc == 0) or entry.action == "lost":
                nodes.discard(entry.node)
            elif entry.action == "outside":
                nodes.add(entry.node)

    def settle(self, within_ms: int | None = None, *, orders: bool = True) -> int:
        """Run until the cluster is at rest and correct (see module docstring); its time.

        ``orders=False`` after a partition: a node cut off from the holder of a dependent
        (without quorum, or deaf) stops its prerequisite without waiting for a stop it
        cannot see, so the journal's order check does not apply across the cut."""
        bound = within_ms if within_ms is not None else self.deadtime_ms + 3000
        self.run_until_true(self.is_settled, bound, "liveness")
        if orders:
            self.check_orders()
        return self.now_ms

    def is_settled(self) -> bool:
        live = self.live()
        if not live or any(kind in _IN_FLIGHT for _, _, kind, _, _ in self._queue):
            return False  # something is still in flight: it may change the picture
        dcs = {self.core(n).rm.dc for n in live}
        members = {self.core(n).membership.members() for n in live}
        if len(dcs) != 1 or len(members) != 1 or set(next(iter(members))) != set(live):
            return False
        dc = next(iter(dcs))
        assert dc is not None
        plan = self.core(dc).rm.plan
        if plan is None:
            return False
        config = self.core(dc).rm.config
        for node in live:
            if self.core(node).rm.config.digest() != config.digest():
                return False
        for rsc in config.runnable_ids(len(self.names)):
            target = plan.assignment.get(rsc)
            reason = plan.reasons.get(rsc)
            if target is None and reason is not None and reason.is_transient:
                return False  # it lasts only until a stop is reported: not at rest yet
            holders = self.where(rsc)
            if holders != ([target] if target is not None else []):
                return False
            for node in live:
                state = self.core(node).rm.local_state(rsc)
                want = LocalState.STARTED if node == target else LocalState.STOPPED
                if state is not want and not (state is LocalState.BLOCKED and target is None):
                    return False
            if target is not None and plan.role_of(rsc) is not Role.STARTED:
                promoted_there = rsc in self.nodes[target].world.promoted
                if promoted_there != (plan.role_of(rsc) is Role.PROMOTED):
                    return False
        for group in config.groups:
            spots = {plan.assignment.get(m) for m in group.members} - {None}
            if len(spots) > 1:
                raise self.failure(f"group {group.id} split over {sorted(spots)}")  # type: ignore[type-var]
        return True

    # --- internals -----------------------------------------------------------------------------

    def _heal_split(self, key: str) -> None:
        if self._split_since.pop(key, None) is not None:
            self._grace_until_ms = max(self._grace_until_ms, self.now_ms + self.split_grace_ms)

    def _push(self, when: int, kind: str, node: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, kind, node, payload))

    def _boot(self, node: str) -> None:
        sim = self.nodes[node]
        membership = MembershipSettings(
            node=sim.name,
            nodes=self.names,
            links=LINKS,
            keyring=KEYRING,
            generation=sim.generation,
            keepalive_ms=self.keepalive_ms,
            deadtime_ms=self.deadtime_ms,
            warntime_ms=max(self.keepalive_ms * 2, self.deadtime_ms // 2),
            initdead_ms=self.initdead_ms,
        )
        rm = RmSettings(node=sim.name, nodes=self.names, refresh_ms=self.refresh_ms)
        config = sim.config if sim.config is not None else self.config
        local = sim.local_ms(self.now_ms)
        sim.core = NodeCore(membership, rm, config, random.Random(self.rng.random()), local)
        sim.world.in_flight.clear()
        sim.paused_until = None
        self._apply(node, sim.core.start(local))

    def _dispatch(self, kind: str, node: str, payload: Any) -> None:
        sim = self.nodes[node]
        if kind == "boot":
            self._boot(node)
            return
        if kind == "agent":
            request, generation, hung = payload
            if sim.generation != generation or request.call_id not in sim.world.in_flight:
                return
            self._finish_agent(node, request, hung=hung)
            return
        if kind == "fence":
            fence, generation = payload
            self._finish_fence(node, fence, generation)
            return
        if kind == "fence-reply":
            fence, generation = payload
            if sim.generation == generation:
                self._fence_reply(node, fence)
            return
        if kind == "persist":
            config, generation = payload
            if sim.generation == generation and sim.core is not None:
                sim.config = config  # the write completed; a crash before it kept the old file
            return
        if sim.core is None:
            return
        if kind == "pkt":
            self._handle(node, PacketReceived(LINK, payload))
        elif kind == "tick":
            self._ticks[node].discard(self.now_ms)
            if sim.paused_until is None:
                self._handle(node, Tick())
        elif kind == "input":
            self._handle(node, payload)
        elif kind == "resume" and payload == sim.generation and self._is_resumed(sim):
            self._handle(node, Tick())

    def _handle(self, node: str, inp: Any) -> None:
        """Feed one input at the node's local time; a stalled daemon gets it when it resumes."""
        sim = self.nodes[node]
        if sim.core is None:
            return
        if sim.paused_until is not None:
            self._push(sim.paused_until, "input", node, inp)
            return
        self._apply(node, sim.core.handle(inp, sim.local_ms(self.now_ms)))

    def _is_resumed(self, sim: SimNode) -> bool:
        """At a resume event: the stall is over (a later stall may have extended it)."""
        if sim.paused_until is None or sim.paused_until > self.now_ms:
            return False
        sim.paused_until = None
        return True

    def _stall(self, node: str, duration_ms: int) -> None:
        sim = self.nodes[node]
        sim.paused_until = max(sim.paused_until or 0, self.now_ms + duration_ms)
        self._push(sim.paused_until, "resume", node, sim.generation)

    def _apply(self, node: str, effects: list[Effect]) -> None:
        sim = self.nodes[node]
        for effect in effects:
            if isinstance(effect, Send):
                self._send(node, effect.data)
            elif isinstance(effect, RunAgent):
                self._run_agent(node, effect)
            elif isinstance(effect, Fence):
                self._push(self.now_ms + self.fence_ms, "fence", node, (effect, sim.generation))
            elif isinstance(effect, Notice):
                self.notices.append((self.now_ms, node, effect))
                if effect.level >= Level.CRITICAL and self.critical_fails:
                    raise self.failure(f"{node}: {effect.text}")
            elif isinstance(effect, ConfigAdopted):
                write_ms = self.rng.randint(*self.disk_ms) if self.disk_ms[1] else 0
                if write_ms:  # the shell writes the state dir in its driver loop: it stalls
                    self.faults.append((self.now_ms, f"stall {node} {write_ms} ms writing the state dir"))
                    self._stall(node, write_ms)
                    self._push(self.now_ms + write_ms, "persist", node, (effect.config, sim.generation))
                else:
                    sim.config = effect.config
            elif isinstance(effect, NodeStateChanged):
                self.state_changes.append((self.now_ms, node, effect))
            elif isinstance(effect, Stopped):
                sim.left = True
                sim.core = None
        if sim.core is not None:
            deadline = max(sim.global_ms(sim.core.next_deadline_ms()), self.now_ms + 1)
            if deadline not in self._ticks[node]:
                self._ticks[node].add(deadline)
                self._push(deadline, "tick", node, None)

    def _send(self, src: str, data: bytes) -> None:
        for dst in self.names:
            if dst == src or (src, dst) in self.cut:
                continue
            if self.loss and self.rng.random() < self.loss:
                continue
            copies = 2 if self.duplicate and self.rng.random() < self.duplicate else 1
            for _ in range(copies):
                self._push(self.now_ms + self.rng.randint(*self.delay_ms), "pkt", dst, data)

    def _run_agent(self, node: str, request: RunAgent) -> None:
        world = self.nodes[node].world
        world.in_flight[request.call_id] = request
        if request.action == "start":
            world.running.add(request.resource)  # a half-done start may already be active
        elif request.action == "promote":
            world.promoted.add(request.resource)  # a half-done promote may already be promoted
        elif request.action == "stop":
            world.stop_was_running[request.call_id] = request.resource in world.running
        hung = (request.resource, request.action) in self.nodes[node].hang
        delay = request.timeout_ms if hung else self.rng.randint(*self.agent_delay_ms)
        self._push(self.now_ms + delay, "agent", node, (request, self.nodes[node].generation, hung))

    def _finish_fence(self, executor: str, fence: Fence, generation: int) -> None:
        sim = self.nodes[executor]
        if sim.generation != generation or sim.core is None:
            return  # the executor went down with its fence agent
        target = self.nodes[fence.target]
        self.fences.append((self.now_ms, executor, fence.target))
        target.core = None
        target.world.in_flight.clear()
        if target.powered:
            target.powered = False
            for rsc in sorted(target.world.running):
                self.journal.append(JournalEntry(self.now_ms, fence.target, rsc, "lost", 0, True))
            target.world.running.clear()
            target.world.promoted.clear()
        self._heal_split(f"unsupervised {fence.target}")
        late_ms = self.rng.randint(*self.fence_reply_late_ms) if self.fence_reply_late_ms[1] else 0
        if late_ms:  # the target is off now; the device says so only later
            self.faults.append((self.now_ms, f"fence of {fence.target} reports success {late_ms} ms late"))
            self._push(self.now_ms + late_ms, "fence-reply", executor, (fence, generation))
        else:
            self._fence_reply(executor, fence)

    def _fence_reply(self, executor: str, fence: Fence) -> None:
        result = FenceFinished(fence.request_id, fence.target, fence.device.id, True, self.fence_ms)
        self._handle(executor, result)

    def _finish_agent(self, node: str, request: RunAgent, *, hung: bool = False) -> None:
        sim = self.nodes[node]
        world = sim.world
        del world.in_flight[request.call_id]
        rsc = request.resource
        rc = 0
        if hung:
            # The shell killed it at its timeout: what it did to the machine is unknown, so
            # the world keeps what the issue left (a start may be active, a stop did not stop).
            was_running = world.stop_was_running.pop(request.call_id, True)
            if request.action in ("start", "stop"):
                self.journal.append(JournalEntry(self.now_ms, node, rsc, request.action, 1, was_running))
            reason = f"timed out after {request.timeout_ms} ms"
            self._handle(
                node,
                AgentFinished(request.call_id, rsc, request.action, request.interval_ms, 1, reason, True),
            )
            return
        if request.action == "start":
            rc = world.fail_start.pop(rsc, 0)
        elif request.action == "stop":
            rc = world.fail_stop.get(rsc, 0)
            if rc == 0:
                world.running.discard(rsc)
                world.promoted.discard(rsc)
        elif request.action == "demote":
            rc = world.fail_demote.get(rsc, 0)
            if rc == 0:
                world.promoted.discard(rsc)
        elif request.action == "monitor":
            rc = 0 if rsc in world.running else 7
            if rc == 0 and request.interval_ms:
                rc = world.monitor_rc.get(rsc, 0)
            if rc == 0 and rsc in world.promoted:
                rc = 8  # running promoted
        if request.action in ("start", "stop"):
            was_running = world.stop_was_running.pop(request.call_id, True)
            self.journal.append(JournalEntry(self.now_ms, node, rsc, request.action, rc, was_running))
        result = AgentFinished(request.call_id, rsc, request.action, request.interval_ms, rc)
        self._handle(node, result)
