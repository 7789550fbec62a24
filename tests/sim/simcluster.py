"""Deterministic simulation of a cluster of real ``Membership`` state machines.

Theory of operation
-------------------
One global virtual clock (integer ms) and one event queue, a heap of ``(time, seq, event)``.
Every node runs a real :class:`hacluster.core.membership.Membership`; it sees its own local
clock (global time + a large random start offset + drift + any clock steps the test injects).
After each ``handle()`` the node's next ``Tick`` is scheduled at ``next_deadline_ms()``,
converted back from local to global time.

The network follows TigerBeetle's packet simulator: each link has a delay range (so packets
reorder), loss, duplication; on top of that tests cut links (symmetric or one way, one link
kind or all), clog them (packets held until a time) and crash, restart, pause, stop or
clock-step nodes.  Every random choice comes from one ``random.Random(seed)``, so a seed
replays a whole run exactly.

Checkers run as the simulation goes:

- *safety*: a node is never declared dead (for silence) by a peer that handled a fresh packet
  from it less than ``deadtime`` ago, unless the observer was paused or clock-stepped since;
- *liveness*: a live observer declares a silent peer dead within
  ``dead interval + keepalive + max link delay`` of the last fresh packet it handled from it;
- *counters*: drop counters other than ``duplicate`` only move when an injected fault
  explains them.

Every failure raises :class:`SimFailure`, whose message names the seed and the
``--sim-seed=N`` option that replays it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simclock import DRIFT_PPM_MAX, to_global, to_local

from hacluster.core import codec
from hacluster.core.codec import KeyRing
from hacluster.core.effects import (
    Input,
    NodeStateChanged,
    Notice,
    PacketReceived,
    Send,
    Stopped,
    StopRequested,
    Tick,
)
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.membership import Membership
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings
from hacluster.core.stats import MembershipStats
from hacluster.errors import DropReason

KEYRING = KeyRing.single("sha1", b"secret")
CLOCK_TOLERANCE_MS = 2
"""Rounding plus drift over one dead interval."""


class SimFailure(AssertionError):
    """A checker found a violation; the message says how to replay it."""


@dataclass(slots=True)
class LinkConditions:
    """How one link behaves for every packet on it."""

    delay_min_ms: int = 1
    delay_max_ms: int = 5
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    """Probability of an extra delay of up to ``reorder_extra_ms`` (overtaken by later packets)."""
    reorder_extra_ms: int = 30


@dataclass(slots=True)
class Packet:
    """One packet on the wire with what the sender knows of it (read by checkers only)."""

    src: NodeName
    link: LinkName
    data: bytes
    generation: int
    seq: int | None
    mtype: str
    injected: bool = False


@dataclass(slots=True)
class SimNode:
    name: NodeName
    offset_ms: int
    drift_ppm: int
    generation: int
    membership: Membership | None = None
    alive: bool = False
    paused_until: int | None = None
    step_ms: int = 0
    tick_token: int = 0
    started_at: int = 0
    time_anomaly_at: int = -1
    """Last global time this node was resumed from a pause or clock-stepped."""
    notices: list[tuple[int, Notice]] = field(default_factory=list)
    changes: list[tuple[int, NodeStateChanged]] = field(default_factory=list)
    sent: list[tuple[int, Packet]] = field(default_factory=list)
    fresh: dict[tuple[NodeName, LinkName], tuple[int, int]] = field(default_factory=dict)
    """(peer, link) → (generation, highest seq) handled by this incarnation."""
    last_fresh_at: dict[NodeName, int] = field(default_factory=dict)
    """peer → global time this incarnation last handled a fresh sequenced packet from it."""
    stops: int = 0
    incarnations: int = 0

    def local_ms(self, global_ms: int) -> int:
        return to_local(global_ms, self.offset_ms + self.step_ms, self.drift_ppm)

    def global_ms(self, local_ms: int) -> int:
        """The earliest global time at which the local clock reads ``local_ms`` or later."""
        return to_global(local_ms, self.offset_ms + self.step_ms, self.drift_ppm)


def link_spec(name: str) -> LinkSpec:
    """``"bcast eth0"`` → a LinkSpec of that kind and device."""
    kind, _, device = name.partition(" ")
    return LinkSpec(name=LinkName(name), kind=LinkKind(kind), device=device or "eth0")


class SimCluster:
    """A deterministic cluster; see the module docstring."""

    def __init__(
        self,
        nodes: int | Iterable[str] = 3,
        seed: int = 0,
        *,
        keepalive_ms: int = 100,
        deadtime_ms: int = 500,
        warntime_ms: int = 300,
        initdead_ms: int = 2000,
        links: Iterable[str] = ("bcast eth0",),
        conditions: dict[str, LinkConditions] | None = None,
        start_spread_ms: int = 50,
        autostart: bool = True,
        check_every_ms: int | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        names = [f"n{i:02d}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
        assert 1 <= len(names) <= 64
        self.names = tuple(NodeName(n) for n in names)
        self.links = tuple(LinkName(n) for n in links)
        self.conditions: dict[LinkName, LinkConditions] = {}
        for link in self.links:
            given = (conditions or {}).get(link)
            if given is None:
                given = LinkConditions(10, 40) if link.startswith("serial") else LinkConditions()
            self.conditions[link] = given
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.warntime_ms = warntime_ms
        self.initdead_ms = initdead_ms
        self.now = 0
        self._queue: list[tuple[int, int, tuple[Any, ...]]] = []
        self._seq = 0
        self.cuts: set[tuple[NodeName | None, NodeName | None, LinkName | None]] = set()
        self.clogs: dict[tuple[NodeName | None, NodeName | None, LinkName | None], int] = {}
        self.faults: list[tuple[int, str]] = []
        """(time, description) of every injected fault, for explanations and failure reports."""
        self.delivered = 0
        self.nodes: dict[NodeName, SimNode] = {}
        for name in self.names:
            self.nodes[name] = SimNode(
                name=name,
                offset_ms=self.rng.randrange(10**6, 10**12),
                drift_ppm=self.rng.randrange(-DRIFT_PPM_MAX, DRIFT_PPM_MAX + 1),
                generation=self.rng.randrange(1, 1000),
            )
        self.check_every_ms = check_every_ms if check_every_ms is not None else keepalive_ms
        if autostart:
            for name in self.names:
                self.at(self.rng.randrange(0, start_spread_ms + 1), self.start, name)
        self._schedule(self.check_every_ms, ("check",))

    # --- derived values --------------------------------------------------------------

    @property
    def max_delay_ms(self) -> int:
        return max(
            c.delay_max_ms + (c.reorder_extra_ms if c.reorder else 0) for c in self.conditions.values()
        )

    def settings(self, name: NodeName, generation: int) -> MembershipSettings:
        node = self.nodes[name]
        return MembershipSettings(
            node=name,
            nodes=self.names,
            links=tuple(link_spec(link) for link in self.links),
            keyring=KEYRING,
            generation=generation,
            keepalive_ms=self.keepalive_ms,
            deadtime_ms=self.deadtime_ms,
            warntime_ms=self.warntime_ms,
            initdead_ms=self.initdead_ms,
            wall_offset_ms=node.offset_ms * 7,
        )

    def fail(self, message: str) -> SimFailure:
        faults = "; ".join(f"{t} ms {what}" for t, what in self.faults[-12:]) or "none"
        return SimFailure(
            f"seed {self.seed} at {self.now} ms: {message}\n  recent faults: {faults}\n"
            f"  replay with: pytest tests/sim --sim-seed={self.seed}"
        )

    # --- event queue -----------------------------------------------------------------

    def _schedule(self, when: int, event: tuple[Any, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(when, self.now), self._seq, event))

    def at(self, when_ms: int, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` at global time ``when_ms`` (a scripted scenario step)."""
        self._schedule(when_ms, ("call", fn, args))

    def run_until(self, t_ms: int) -> None:
        while self._queue and self._queue[0][0] <= t_ms:
            when, _, event = heapq.heappop(self._queue)
            self.now = when
            self._dispatch(event)
        self.now = max(self.now, t_ms)

    def run_until_true(self, predicate: Callable[[], bool], limit_ms: int, step_ms: int = 10) -> int | None:
        """Advance until ``predicate()`` holds; its global time, or None at ``limit_ms``."""
        while self.now <= limit_ms:
            if predicate():
                return self.now
            self.run_until(self.now + step_ms)
        return None

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "tick":
            _, name, token = event
            node = self.nodes[name]
            if node.alive and token == node.tick_token:
                if node.paused_until is not None:
                    self._schedule(node.paused_until, event)
                else:
                    self._feed(node, Tick())
        elif kind == "deliver":
            _, name, incarnation, packet = event
            self._deliver(self.nodes[name], incarnation, packet)
        elif kind == "call":
            _, fn, args = event
            fn(*args)
        elif kind == "check":
            self.check_liveness()
            self._schedule(self.now + self.check_every_ms, ("check",))
        else:  # pragma: no cover
            raise AssertionError(kind)

    # --- nodes -----------------------------------------------------------------------

    def start(self, name: str, generation: int | None = None) -> None:
        node = self.nodes[NodeName(name)]
        assert not node.alive, f"{name} is already running"
        if generation is not None:
            node.generation = generation
        elif node.incarnations:
            node.generation += 1
        node.incarnations += 1
        node.alive = True
        node.paused_until = None
        node.started_at = self.now
        node.fresh.clear()
        node.last_fresh_at.clear()
        local = node.local_ms(self.now)
        node.membership = Membership(
            self.settings(node.name, node.generation), random.Random(self.rng.getrandbits(64)), local
        )
        self._apply(node, node.membership.start(local))
        self._schedule_tick(node)

    def crash(self, name: str) -> None:
        node = self.nodes[NodeName(name)]
        self.faults.append((self.now, f"crash {name}"))
        node.alive = False
        node.membership = None

    def restart(self, name: str) -> None:
        node = self.nodes[NodeName(name)]
        if node.alive:
            self.crash(name)
        self.faults.append((self.now, f"restart {name}"))
        self.start(name)

    def stop(self, name: str) -> None:
        """Graceful stop (the operator's ``stop``): StopRequested, then the node is gone."""
        node = self.nodes[NodeName(name)]
        self.faults.append((self.now, f"graceful stop {name}"))
        node.stops += 1
        self._feed(node, StopRequested())
        assert node.membership is not None
        assert node.membership.stopped
        node.alive = False

    def pause(self, name: str, duration_ms: int) -> None:
        """SIGSTOP for ``duration_ms``: no ticks, packets wait in the socket buffer."""
        node = self.nodes[NodeName(name)]
        self.faults.append((self.now, f"pause {name} {duration_ms} ms"))
        node.paused_until = self.now + duration_ms
        self.at(node.paused_until, self._resume, node.name)

    def _resume(self, name: NodeName) -> None:
        node = self.nodes[name]
        if node.paused_until is not None and node.paused_until <= self.now:
            node.paused_until = None
            node.time_anomaly_at = self.now
            if node.alive:
                self._feed(node, Tick())

    def step_clock(self, name: str, forward_ms: int) -> None:
        """The node's monotonic clock jumps forward (e.g. a VM resumed)."""
        assert forward_ms > 0
        node = self.nodes[NodeName(name)]
        self.faults.append((self.now, f"clock step {name} +{forward_ms} ms"))
        node.step_ms += forward_ms
        node.time_anomaly_at = self.now
        if node.alive and node.paused_until is None:
            self._feed(node, Tick())

    def _feed(self, node: SimNode, inp: Input) -> None:
        assert node.membership is not None
        local = node.local_ms(self.now)
        effects = node.membership.handle(inp, local)
        self._apply(node, effects)
        if isinstance(inp, Tick) and not node.membership.stopped:
            deadline = node.membership.next_deadline_ms()
            if deadline <= local:
                raise self.fail(
                    f"{node.name}: next_deadline_ms() {deadline} is not after the tick it just handled "
                    f"at {local}: a shell would spin"
                )
        self._schedule_tick(node)

    def _schedule_tick(self, node: SimNode) -> None:
        if node.membership is None or node.membership.stopped or not node.alive:
            return
        node.tick_token += 1
        local_deadline = node.membership.next_deadline_ms()
        when = max(self.now, node.global_ms(local_deadline))
        if node.paused_until is not None:
            when = max(when, node.paused_until)
        self._schedule(when, ("tick", node.name, node.tick_token))

    def _apply(self, node: SimNode, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._send(node, effect)
            elif isinstance(effect, Notice):
                node.notices.append((self.now, effect))
            elif isinstance(effect, NodeStateChanged):
                node.changes.append((self.now, effect))
                if effect.node != node.name and effect.new == "dead":
                    self._check_death(node, effect)
            elif isinstance(effect, Stopped):
                node.alive = False

    # --- network ---------------------------------------------------------------------

    def _send(self, node: SimNode, send: Send) -> None:
        fields = codec.decode(send.data, KEYRING).as_dict()
        seq = int(fields["seq"], 16) if "seq" in fields else None
        for link in self.links if send.link is None else (send.link,):
            data = send.classic if link.startswith("serial") and send.classic else send.data
            packet = Packet(node.name, link, data, int(fields["hg"], 16), seq, fields["t"])
            node.sent.append((self.now, packet))
            self._transmit(packet)

    def _transmit(self, packet: Packet) -> None:
        cond = self.conditions[packet.link]
        for dst in self.names:
            if dst == packet.src:
                continue
            if self._is_cut(packet.src, dst, packet.link):
                continue
            copies = 1
            if self.rng.random() < cond.loss:
                copies = 0
            elif self.rng.random() < cond.duplicate:
                copies = 2
            for _ in range(copies):
                when = self.now + self.rng.randint(cond.delay_min_ms, cond.delay_max_ms)
                if cond.reorder and self.rng.random() < cond.reorder:
                    when += self.rng.randint(1, cond.reorder_extra_ms)
                when = max(when, self._clogged_until(packet.src, dst, packet.link))
                target = self.nodes[dst]
                self._schedule(when, ("deliver", dst, target.incarnations, packet))

    def inject(self, dst: str, packet: Packet, delay_ms: int = 0, *, log: bool = True) -> None:
        """Put ``packet`` (e.g. a recorded one) on the wire to ``dst`` only, as an attacker would."""
        if log:
            self.faults.append((self.now, f"inject {packet.mtype} from {packet.src} to {dst}"))
        injected = Packet(
            packet.src, packet.link, packet.data, packet.generation, packet.seq, packet.mtype, True
        )
        target = self.nodes[NodeName(dst)]
        self._schedule(self.now + delay_ms, ("deliver", NodeName(dst), target.incarnations, injected))

    def _deliver(self, node: SimNode, incarnation: int, packet: Packet) -> None:
        if not node.alive or node.membership is None:
            return
        if node.paused_until is not None:  # wait in the socket buffer
            self._schedule(node.paused_until, ("deliver", node.name, incarnation, packet))
            return
        self.delivered += 1
        if packet.seq is not None:  # injected copies too: only a copy never seen on the link is fresh
            key = (packet.src, packet.link)
            generation, highest = node.fresh.get(key, (-1, 0))
            if packet.generation > generation or (packet.generation == generation and packet.seq > highest):
                node.fresh[key] = (packet.generation, packet.seq)
                if packet.mtype != "shutdone":
                    node.last_fresh_at[packet.src] = self.now
        self._feed(node, PacketReceived(packet.link, packet.data))

    def _is_cut(self, src: NodeName, dst: NodeName, link: LinkName) -> bool:
        cuts = self.cuts
        if not cuts:
            return False
        return any((s, d, lk) in cuts for s in (src, None) for d in (dst, None) for lk in (link, None))

    def _clogged_until(self, src: NodeName, dst: NodeName, link: LinkName) -> int:
        if not self.clogs:
            return 0
        return max(
            (self.clogs.get((s, d, lk), 0) for s in (src, None) for d in (dst, None) for lk in (link, None)),
            default=0,
        )

    def cut(self, src: str | None, dst: str | None, link: str | None = None) -> None:
        """Drop packets from ``src`` to ``dst`` (None: any) on ``link`` (None: every link)."""
        self.faults.append((self.now, f"cut {src or '*'}->{dst or '*'} on {link or 'every link'}"))
        self.cuts.add((_node(src), _node(dst), _link(link)))

    def partition(self, *groups: Iterable[str], link: str | None = None) -> None:
        """Cut every pair across ``groups``, both ways (nodes in no group form one more group)."""
        sets: list[set[str]] = [set(g) for g in groups]
        rest = {str(n) for n in self.names} - set().union(*sets)
        if rest:
            sets.append(rest)
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                for x in a:
                    for y in b:
                        self.cut(x, y, link)
                        self.cut(y, x, link)

    def isolate(self, name: str) -> None:
        self.cut(name, None)
        self.cut(None, name)

    def link_down(self, link: str) -> None:
        self.cut(None, None, link)

    def heal(self) -> None:
        self.faults.append((self.now, "heal"))
        self.cuts.clear()
        self.clogs.clear()

    def clog(self, src: str | None, dst: str | None, duration_ms: int, link: str | None = None) -> None:
        """Hold packets from ``src`` to ``dst`` until ``duration_ms`` from now (then all arrive)."""
        self.faults.append((self.now, f"clog {src or '*'}->{dst or '*'} {duration_ms} ms"))
        self.clogs[(_node(src), _node(dst), _link(link))] = self.now + duration_ms

    # --- checkers --------------------------------------------------------------------

    def _check_death(self, observer: SimNode, change: NodeStateChanged) -> None:
        peer = self.nodes[change.node]
        if "shutdone" in change.reason or "announced status dead" in change.reason:
            if peer.stops == 0:
                raise self.fail(
                    f"{observer.name} says {peer.name} stopped ({change.reason}) but it never did"
                )
            return
        last = observer.last_fresh_at.get(peer.name)
        if last is None:
            return
        if observer.time_anomaly_at >= last:
            return  # paused or clock-stepped since: a false death is explained
        silent = self.now - last
        if silent < self.deadtime_ms - CLOCK_TOLERANCE_MS:
            raise self.fail(
                f"safety: {observer.name} declared {peer.name} dead ({change.reason}) although it "
                f"handled a fresh packet from it {silent} ms ago < deadtime {self.deadtime_ms} ms"
            )

    def check_liveness(self) -> None:
        slack = self.keepalive_ms + self.max_delay_ms + CLOCK_TOLERANCE_MS
        for observer in self.nodes.values():
            m = observer.membership
            if not observer.alive or m is None or observer.paused_until is not None:
                continue
            interval = self.deadtime_ms if m.comm_up else self.initdead_ms
            for peer in self.names:
                if peer == observer.name:
                    continue
                state = m.peer_state(peer)
                if state == "dead":
                    continue
                since = max(
                    observer.last_fresh_at.get(peer, observer.started_at),
                    observer.started_at,
                    observer.time_anomaly_at,
                )
                if self.now - since > interval + slack:
                    raise self.fail(
                        f"liveness: {observer.name} still sees {peer} {state} although nothing fresh "
                        f"came from it for {self.now - since} ms > {interval} + {slack} ms"
                    )

    def check_counters(self, allowed: Iterable[DropReason] = ()) -> None:
        """Drop counters other than ``duplicate`` and ``allowed`` must be zero on every node."""
        ok = {DropReason.DUPLICATE, *allowed}
        for node in self.nodes.values():
            if node.membership is None:
                continue
            for reason, count in node.membership.statistics(node.local_ms(self.now)).dropped:
                if count and DropReason(reason) not in ok:
                    raise self.fail(
                        f"{node.name} dropped {count} packet(s) as {reason}, no fault explains it"
                    )

    # --- views for tests -------------------------------------------------------------

    def node(self, name: str) -> SimNode:
        return self.nodes[NodeName(name)]

    def membership(self, name: str) -> Membership:
        """The running state machine of ``name`` (it must have been started)."""
        m = self.nodes[NodeName(name)].membership
        assert m is not None, f"{name} was never started"
        return m

    def stats(self, name: str) -> MembershipStats:
        """``statistics()`` of ``name`` at its own local time now."""
        return self.membership(name).statistics(self.node(name).local_ms(self.now))

    def live(self) -> list[NodeName]:
        return [n.name for n in self.nodes.values() if n.alive and n.membership is not None]

    def view(self, observer: str, peer: str) -> str | None:
        m = self.nodes[NodeName(observer)].membership
        return None if m is None else m.peer_state(NodeName(peer))

    def all_active(self) -> bool:
        """Every live node is ``active`` itself and sees every other live node ``active``."""
        if any(n.incarnations == 0 for n in self.nodes.values()):
            return False  # not every node has started yet
        live = self.live()
        for a in live:
            m = self.nodes[a].membership
            assert m is not None
            if m.state != "active":
                return False
            if any(m.peer_state(b) != "active" for b in live if b != a):
                return False
        return True

    def wait_all_active(self, within_ms: int) -> int:
        """Run until ``all_active()``; the time it took, or fail after ``within_ms``."""
        start = self.now
        done = self.run_until_true(self.all_active, start + within_ms, step_ms=5)
        if done is None:
            views = {a: {b: self.view(a, b) for b in self.live() if b != a} for a in self.live()}
            raise self.fail(f"not all active within {within_ms} ms: {views}")
        return done - start

    def notices(self, name: str, code: str | None = None, contains: str = "") -> list[tuple[int, Notice]]:
        return [
            (t, n)
            for t, n in self.nodes[NodeName(name)].notices
            if (code is None or n.code == code) and contains in n.text
        ]

    def deaths(self, observer: str, peer: str | None = None) -> list[tuple[int, NodeStateChanged]]:
        return [
            (t, c)
            for t, c in self.nodes[NodeName(observer)].changes
            if c.new == "dead" and c.node != observer and (peer is None or c.node == peer)
        ]

    def dropped(self, name: str) -> dict[str, int]:
        node = self.nodes[NodeName(name)]
        assert node.membership is not None
        return dict(node.membership.statistics(node.local_ms(self.now)).dropped)


def _node(name: str | None) -> NodeName | None:
    return None if name is None else NodeName(name)


def _link(name: str | None) -> LinkName | None:
    return None if name is None else LinkName(name)
