"""Deterministic simulation of real ``NodeCore``s with fencing: the power switch, the agents'
world, partitions, crashes, pauses, lost fence replies and lost messages.

Theory of operation
-------------------
One virtual clock (integer ms) and one heap of events ``(time, seq, kind, node, payload)``.
Each node is a *machine* (``powered``, the set of resources ``running`` on it, a ``boot``
counter) with a *daemon* on it (a real :class:`hacluster.core.node.NodeCore`, or None when the
daemon is dead, and an ``incarnation`` counter so results meant for a dead daemon are dropped).

- **Network**: every ``Send`` reaches every other node whose direction is not cut, after
  ``delay_ms`` (random in a range, so packets reorder); ``loss`` drops a share.
- **Agents**: a ``start`` makes the resource active on the machine when it is *issued* (a
  half-done start may already act), a ``stop`` ends it when it *completes* (unless the test
  made that node's stops fail), a monitor answers from the machine.  Operations run beside
  the daemon: a paused daemon's agents still finish.
- **Fencing**: a ``Fence`` effect is the lab power switch: after ``fence_ms`` the target
  machine is powered off (everything on it stops at once) provided the executor's machine is
  still powered then (an executor that was itself shot never fences); then ``FenceFinished``
  reaches the executor's daemon, unless the test loses the reply.  Devices may be made to
  fail for a target.
- **Pauses**: a paused daemon takes no input until it resumes; what arrived meanwhile is
  handed to it in order at the resume time, with the resume time as ``now_ms`` (as a daemon
  after SIGCONT reads its queued packets), so the core sees the gap.

Checkers after every event:

- **at most one**: no resource is active on two powered machines at once (strict: with
  fencing on there is no tolerated window);
- **fencing record**: every kill (executor, target, time) is kept; ``mutual_kills`` counts
  2-node splits where each side shot the other (both down: double fencing).

A failure raises :class:`SimFailure` naming the seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import codec, edits
from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import RmSettings
from hacluster.core.effects import (
    AgentFinished,
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
from hacluster.core.node import NodeCore
from hacluster.core.rm_messages import FENCED_MSG
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings

KEYRING = codec.KeyRing.single("sha1", b"fence-sim")
LINK = LinkName("bcast eth0")
LINKS = (LinkSpec(LINK, LinkKind.BCAST, "eth0"),)

GROUP_CONFIG = """
primitive vip ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive app ocf:hacluster:Dummy op monitor interval=1s timeout=5s
group grp vip app
primitive fence-lab stonith:fence_lab params plugs="a,b,c"
rsc_defaults resource-stickiness=100
"""


class SimFailure(AssertionError):
    pass


@dataclass(slots=True)
class Machine:
    name: NodeName
    generation: int
    core: NodeCore | None = None
    powered: bool = True
    boot: int = 0
    incarnation: int = 0
    running: set[str] = field(default_factory=set)
    fail_stop: set[str] = field(default_factory=set)
    paused_until: int | None = None


@dataclass(frozen=True, slots=True)
class Kill:
    at_ms: int
    executor: str
    target: str


class FenceSim:
    def __init__(
        self,
        seed: int,
        names: tuple[str, ...] = ("a", "b"),
        *,
        crm: str = GROUP_CONFIG,
        keepalive_ms: int = 100,
        deadtime_ms: int = 500,
        fence_ms: tuple[int, int] = (30, 200),
        delay_ms: tuple[int, int] = (1, 5),
        agent_ms: tuple[int, int] = (5, 60),
        loss: float = 0.0,
        fencing_delay_ms: int = 200,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.names = tuple(NodeName(n) for n in names)
        self.config: ClusterConfig = parse_resources_crm(crm, "sim.crm")
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.fence_ms = fence_ms
        self.delay_ms = delay_ms
        self.agent_ms = agent_ms
        self.loss = loss
        self.fencing_delay_ms = fencing_delay_ms
        self.now_ms = 0
        self._events: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        self.cut: set[tuple[str, str]] = set()
        self.fence_fails: set[str] = set()
        self.lose_fence_replies = False
        self.drop_mtypes: set[str] = set()
        """Upper-layer message types dropped on the wire (e.g. ``hac_fenced``)."""
        self.kills: list[Kill] = []
        self.notices: list[tuple[int, str, Notice]] = []
        self.fence_requests: list[tuple[int, str, str]] = []
        self.checks = 0
        self.machines = {
            n: Machine(n, generation=1000 + i * 10 + self.rng.randrange(5)) for i, n in enumerate(self.names)
        }
        for name in self.names:
            self._boot(name)

    # --- faults ---------------------------------------------------------------------------

    def partition(self, *groups: tuple[str, ...]) -> None:
        """Cut every direction between nodes of different groups."""
        self.cut = {(x, y) for g in groups for h in groups if g is not h for x in g for y in h}

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, node: str, *, power_off: bool = True) -> None:
        machine = self.machines[node]
        machine.core = None
        machine.incarnation += 1
        machine.paused_until = None
        if power_off:
            self._power_off(machine)

    def pause(self, node: str, duration_ms: int) -> None:
        self.machines[node].paused_until = self.now_ms + duration_ms
        self._push(self.now_ms + duration_ms, "resume", node, self.machines[node].incarnation)

    def restart(self, node: str) -> None:
        machine = self.machines[node]
        assert machine.core is None, f"{node} is running"
        machine.powered = True
        machine.generation += 1
        machine.incarnation += 1
        self._boot(node)

    def stop(self, node: str) -> None:
        """The operator's graceful stop: the daemon hands over, says goodbye and exits; the
        machine stays powered."""
        machine = self.machines[node]
        assert machine.core is not None, f"{node} is not running"
        self._apply(node, machine.core.handle(StopRequested(), self.now_ms))

    def move(self, via: str, rsc: str, to: str) -> None:
        """The operator's ``resource move rsc to``, entered on node ``via``."""
        core = self.machines[via].core
        assert core is not None, f"{via} is not running"
        config = edits.move(core.rm.config, self.names, rsc, to)
        self._apply(via, core.handle(ProposeConfig(config), self.now_ms))

    # --- running --------------------------------------------------------------------------

    def run_until(self, t_ms: int, stop: Callable[[], bool] | None = None) -> None:
        while self._events and self._events[0][0] <= t_ms:
            t, _, kind, node, payload = heapq.heappop(self._events)
            self.now_ms = t
            self._dispatch(kind, node, payload)
            self.check()
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, t_ms)

    def run_for(self, duration_ms: int) -> None:
        self.run_until(self.now_ms + duration_ms)

    # --- checks and views -------------------------------------------------------------------

    def check(self) -> None:
        self.checks += 1
        holders: dict[str, list[str]] = {}
        for machine in self.machines.values():
            if machine.powered:
                for rsc in machine.running:
                    holders.setdefault(rsc, []).append(machine.name)
        for rsc, nodes in holders.items():
            if len(nodes) > 1:
                self.fail(f"{rsc} active on {sorted(nodes)} at {self.now_ms} ms")

    def fail(self, text: str) -> None:
        recent = "\n".join(f"  {t} {n} {notice.code}: {notice.text}" for t, n, notice in self.notices[-25:])
        raise SimFailure(f"seed {self.seed}: {text}\nreplay: --sim-seed={self.seed}\n{recent}")

    def holders(self, rsc: str) -> list[str]:
        return sorted(m.name for m in self.machines.values() if m.powered and rsc in m.running)

    def alive(self) -> list[str]:
        return sorted(m.name for m in self.machines.values() if m.core is not None)

    def mutual_kills(self) -> int:
        """Pairs of nodes that each shot the other (a 2-node split where both went down)."""
        pairs = {(k.executor, k.target) for k in self.kills}
        return sum(1 for x, y in pairs if (y, x) in pairs and x < y)

    def codes(self, node: str | None = None) -> list[str]:
        return [n.code for _, src, n in self.notices if node is None or src == node]

    # --- internals --------------------------------------------------------------------------

    def _push(self, t: int, kind: str, node: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, node, payload))

    def _boot(self, node: str) -> None:
        machine = self.machines[node]
        membership = MembershipSettings(
            node=machine.name,
            nodes=self.names,
            links=LINKS,
            keyring=KEYRING,
            generation=machine.generation,
            keepalive_ms=self.keepalive_ms,
            deadtime_ms=self.deadtime_ms,
            warntime_ms=max(self.keepalive_ms + 1, self.deadtime_ms * 3 // 5),
            initdead_ms=max(2000, 2 * self.deadtime_ms),
        )
        rm = RmSettings(
            node=machine.name,
            nodes=self.names,
            refresh_ms=max(200, min(2000, 10 * self.keepalive_ms)),
            fencing_delay_ms=self.fencing_delay_ms,
        )
        machine.core = NodeCore(membership, rm, self.config, random.Random(self.rng.random()), self.now_ms)
        self._apply(node, machine.core.start(self.now_ms))

    def _power_off(self, machine: Machine) -> None:
        machine.powered = False
        machine.running.clear()
        machine.boot += 1
        machine.core = None
        machine.incarnation += 1
        machine.paused_until = None

    def _dispatch(self, kind: str, node: str, payload: Any) -> None:
        machine = self.machines[node]
        if kind == "agent":
            self._agent_done(machine, *payload)
            return
        if kind == "fence":
            self._fence_done(machine, *payload)
            return
        if kind == "resume":
            if payload == machine.incarnation and machine.paused_until is not None:
                machine.paused_until = None
                self._deliver(machine, Tick())
            return
        # Inputs for the daemon: a packet (any incarnation), a tick or a result (its own).
        if kind == "pkt":
            self._deliver(machine, PacketReceived(LINK, payload))
        elif kind == "tick":
            # Every input schedules a tick at the then-next deadline, so one not yet due is
            # stale (a later input moved the deadline) and is dropped.
            core = machine.core
            is_current = payload == machine.incarnation and machine.paused_until is None
            if is_current and core is not None and self.now_ms >= core.next_deadline_ms():
                self._deliver(machine, Tick())
        elif kind == "result":
            incarnation, result = payload
            if incarnation == machine.incarnation:
                self._deliver(machine, result)

    def _deliver(self, machine: Machine, inp: Any) -> None:
        if machine.core is None:
            return
        if machine.paused_until is not None:
            kind = "pkt" if isinstance(inp, PacketReceived) else "result"
            payload = inp.data if isinstance(inp, PacketReceived) else (machine.incarnation, inp)
            if not isinstance(inp, Tick):
                self._push(machine.paused_until, kind, machine.name, payload)
            return
        self._apply(machine.name, machine.core.handle(inp, self.now_ms))

    def _apply(self, node: str, effects: list[Effect]) -> None:
        machine = self.machines[node]
        for effect in effects:
            if isinstance(effect, Send):
                self._send(node, effect.data)
            elif isinstance(effect, RunAgent):
                if effect.action == "start":
                    machine.running.add(effect.resource)
                done = self.now_ms + self.rng.randint(*self.agent_ms)
                self._push(done, "agent", node, (machine.boot, machine.incarnation, effect))
            elif isinstance(effect, Fence):
                self.fence_requests.append((self.now_ms, node, effect.target))
                done = self.now_ms + effect.device.delay_base_ms + self.rng.randint(*self.fence_ms)
                self._push(done, "fence", node, (machine.boot, machine.incarnation, effect))
            elif isinstance(effect, Notice):
                if effect.level >= Level.INFO:
                    self.notices.append((self.now_ms, node, effect))
            elif isinstance(effect, Stopped):
                machine.core = None  # the daemon exits after its goodbye
                machine.incarnation += 1
            elif isinstance(effect, ConfigAdopted | NodeStateChanged):
                pass
        if machine.core is not None:
            self._push(
                max(self.now_ms + 1, machine.core.next_deadline_ms()), "tick", node, machine.incarnation
            )

    def _send(self, src: str, data: bytes) -> None:
        if self.drop_mtypes and any(f"t={m}".encode() in data for m in self.drop_mtypes):
            return
        for dst in self.names:
            if dst == src or (src, dst) in self.cut or self.rng.random() < self.loss:
                continue
            self._push(self.now_ms + self.rng.randint(*self.delay_ms), "pkt", dst, data)

    def _agent_done(self, machine: Machine, boot: int, incarnation: int, request: RunAgent) -> None:
        if boot != machine.boot or not machine.powered:
            return  # the machine went down with the operation
        rsc, rc = request.resource, 0
        if request.action == "stop":
            if rsc in machine.fail_stop:
                rc = 1
            else:
                machine.running.discard(rsc)
        elif request.action == "monitor":
            rc = 0 if rsc in machine.running else 7
        result = AgentFinished(request.call_id, rsc, request.action, request.interval_ms, rc)
        self._dispatch("result", machine.name, (incarnation, result))

    def _fence_done(self, executor: Machine, boot: int, incarnation: int, request: Fence) -> None:
        if boot != executor.boot or not executor.powered:
            return  # the executor was shot first: its fence agent died with it
        target = self.machines[request.target]
        ok = request.target not in self.fence_fails
        if ok:
            self.kills.append(Kill(self.now_ms, executor.name, target.name))
            self._power_off(target)
        if not self.lose_fence_replies:
            result = FenceFinished(request.request_id, request.target, request.device.id, ok, 50)
            self._dispatch("result", executor.name, (incarnation, result))


def settle_started(sim: FenceSim, rsc: str, timeout_ms: int, *, not_on: str | None = None) -> str:
    """Run until ``rsc`` is active on exactly one machine (not ``not_on``), then return it."""

    def settled() -> bool:
        holders = sim.holders(rsc)
        return len(holders) == 1 and holders[0] != not_on and _reported(sim, rsc)

    sim.run_until(sim.now_ms + timeout_ms, stop=settled)
    holders = sim.holders(rsc)
    if not settled():
        sim.fail(f"{rsc} not running on one node within {timeout_ms} ms: {holders}")
    return holders[0]


def _reported(sim: FenceSim, rsc: str) -> bool:
    """Every live daemon's resource manager knows ``rsc`` is started on its holder."""
    holder = sim.holders(rsc)[0]
    for name in sim.alive():
        core = sim.machines[name].core
        assert core is not None
        state = core.rm.observed().get(rsc, {}).get(NodeName(holder))
        if state is None or state.value != "started":
            return False
    return True


__all__ = ["FENCED_MSG", "GROUP_CONFIG", "FenceSim", "Kill", "SimFailure", "settle_started"]
