"""Membership: who is alive, decided from heartbeats.  Pure; fed packets and a clock.

Theory of operation
-------------------
Every ``keepalive_ms`` this node sends a ``status`` message (``st`` = our state, ``dt`` = our
dead interval) on every link.  For each peer we remember when a *fresh* packet last arrived on
each link.  A peer is declared dead when it has been silent on **every** link for longer than
its dead interval: the ``dt`` it last advertised, else ``deadtime_ms``; before this node's
communication is up, ``initdead_ms`` applies to every peer.  A link to a peer goes down on the
same rule applied to that link alone.

Our own state goes ``init`` → ``up`` (right after start) → ``active`` once every configured
node has either been heard from or been declared dead at ``initdead_ms`` ("comm up").  A peer's
state is whatever it last sent in ``st``; ``dead`` is only ever decided here.

Trust.  Nothing counts before the codec has verified the digest.  After that, packets still
have to be *new* to count:

- generation (``hg``) lower than the peer's current one → replay, dropped and counted;
- a higher generation on a ``status`` → the peer restarted: sequence tracking starts over;
- per generation, sequence numbers (``seq``) follow Heartbeat's rules (accept in order, note
  gaps and ask for retransmission, accept a missing one when it arrives, drop the rest);
- liveness is refreshed only by a sequenced packet whose ``seq`` is higher than any seen from
  that peer **on that link**.  Heartbeat lets duplicates and unsequenced ``NS_*`` packets
  refresh liveness too, which would let a recorded packet, replayed, keep a dead node "alive";
  we do not.

Keys.  Every key of the key ring is tried on receive (the packet names its slot); the
``auth`` slot signs, or seals, what we send.  An encrypting key needs this process's
``codec.Sealer`` (session id and nonce counter), which lives here for the whole run: a new
key ring (reload, ``set_keyring``) changes the keys, never the counter.  AEAD keys are
salted with the cluster name (``KeyRing.for_cluster``).  ``hac_key`` messages, the cluster
key rotation, go up to the shell as ``KeyMessage``: it owns the authkeys file.

Everything this module decides comes back as effects: ``Send`` for packets, ``Notice`` for
log lines (one per decision, with its reason), ``NodeStateChanged`` for listeners.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from hacluster.core import codec
from hacluster.core.codec import Message
from hacluster.core.effects import (
    Input,
    KeyMessage,
    Level,
    MessageDelivered,
    NodeStateChanged,
    Notice,
    PacketReceived,
    PingReplied,
    Rng,
    Send,
    SendPings,
    Stopped,
    StopRequested,
    Tick,
)
from hacluster.core.effects import (
    MembershipEffect as Effect,
)
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.settings import LinkKind, MembershipSettings
from hacluster.core.stats import GapSamples, LinkStats, MembershipStats, NodeStats
from hacluster.errors import DecodeError, DropReason

HISTORY_MAX: Final = 500
"""Sent sequenced messages kept for retransmission (Heartbeat keeps 500)."""
MISSING_MAX: Final = 500
"""Missing sequence numbers remembered per peer (Heartbeat: 500)."""
FLOWCONTROL_LIMIT: Final = 250
"""A gap wider than this resets tracking instead of asking for every packet."""
REXMIT_PER_REQUEST_MAX: Final = 50
DROP_NOTICE_INTERVAL_MS: Final = 10_000
"""At most one log line per drop reason per this interval; the counters see every drop."""
AUTOJOIN_MAX: Final = 64
"""Bound on nodes learned through ``autojoin`` so a peer cannot grow our memory."""
DT_MAX_MS: Final = 3_600_000
RECOMMEND_MIN_SAMPLES: Final = 20
OURS_FIELD: Final = "hc"
UPPER_LAYER_PREFIX: Final = "hac_"
"""Message types membership passes up (``MessageDelivered``) instead of handling."""
KEY_MESSAGE: Final = "hac_key"
"""The key rotation's message type; passed to the shell as ``KeyMessage``."""

NodeState = str  # "init" | "up" | "active" | "dead" | "ping"


@dataclass(slots=True)
class _PeerLink:
    """What we know of one peer over one local link."""

    up: bool = False
    last_heard_ms: int | None = None
    last_status_ms: int | None = None
    highest_seq: int = 0
    gaps_ms: collections.deque[int] = field(default_factory=collections.deque)
    gaps_observed: int = 0
    """Gaps measured since start, a running count: readers of ``gaps_ms`` tell new ones by it."""


@dataclass(slots=True)
class _Peer:
    name: NodeName
    links: dict[LinkName, _PeerLink]
    state: NodeState = "init"
    generation: int | None = None
    last_seq: int | None = None
    missing: dict[int, int] = field(default_factory=dict)
    """Missing seq → when to ask for it (next)."""
    ack_trigger: int = 0
    protocol: bool = False
    ours: bool = False
    """The peer is hacluster (status field ``hc=1``): it needs no flow-control ACKs, which
    only a real Heartbeat uses; sending them anyway would multiply traffic by the node count."""
    dead_interval_ms: int | None = None
    """Advertised ``dt``; None until a status carried one."""
    last_heard_ms: int | None = None
    last_status_ms: int | None = None
    late_warned: bool = False
    status_seq: int = 0
    """``seq`` of the status that set ``state``; an older one (retransmitted, late) must not."""
    stopped_generation: int | None = None
    """Generation that said goodbye (``shutdone``); its later packets are ignored."""


@dataclass(slots=True)
class _PingPeer:
    name: NodeName
    state: NodeState = "init"
    last_heard_ms: int | None = None


class Membership:
    """The heartbeat and membership state machine of one node."""

    def __init__(self, settings: MembershipSettings, rng: Rng, now_ms: int) -> None:
        self._s = settings
        self._rng = rng
        self._keyring = settings.keyring.for_cluster(settings.cluster)
        session_id = settings.session_id or rng.randrange(0, 1 << 128).to_bytes(16, "big")
        self._sealer = codec.Sealer(session_id)
        self._start_ms = now_ms
        self._state: NodeState = "init"
        self._comm_up = False
        self._stopped = False
        self._seq = 0
        self._history: collections.OrderedDict[int, tuple[Message, int]] = collections.OrderedDict()
        """seq → (message, when last sent) for retransmission."""
        self._next_status_ms = now_ms
        self._has_serial = any(link.kind is LinkKind.SERIAL for link in settings.links)
        self._peers: dict[NodeName, _Peer] = {}
        self._peer_deadlines: dict[NodeName, int] = {}
        self._stale: set[NodeName] | None = None
        """Peers whose cached deadline must be recomputed; None: all of them."""
        self._touched: NodeName | None = None
        self._last_tick_ms: int | None = None
        self._pings: dict[NodeName, _PingPeer] = {p.name: _PingPeer(p.name) for p in settings.ping_nodes}
        for name in settings.nodes:
            if name != settings.node:
                self._add_peer(name)
        self._dropped: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        self._drop_noticed_ms: dict[DropReason, int] = {}
        self._received = 0
        self._sent = 0
        self._rexmit_requests_sent = 0
        self._rexmits_sent = 0

    # --- public API -------------------------------------------------------------------

    @property
    def comm_up(self) -> bool:
        return self._comm_up

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def state(self) -> NodeState:
        return self._state

    def peer_state(self, node: NodeName) -> NodeState | None:
        peer = self._peers.get(node)
        if peer is not None:
            return peer.state
        ping = self._pings.get(node)
        return ping.state if ping is not None else None

    def start(self, now_ms: int) -> list[Effect]:
        """Announce ourselves: ``init`` then ``up``, as Heartbeat does at start."""
        assert self._seq == 0, "start() runs once"
        out: list[Effect] = [
            Notice(
                "NODE_STARTING",
                Level.INFO,
                f"{self._s.node} starting: generation {self._s.generation}, "
                f"keepalive {self._s.keepalive_ms} ms, deadtime {self._s.deadtime_ms} ms, "
                f"initdead {self._s.initdead_ms} ms, links {', '.join(self._link_names()) or 'none'}",
            )
        ]
        self._send_status(out, now_ms)
        self._set_own_state(out, "up", "started", now_ms)
        self._check_comm_up(out, now_ms)
        return out

    def handle(self, inp: Input, now_ms: int) -> list[Effect]:
        out: list[Effect] = []
        if self._stopped:
            return out
        if isinstance(inp, PacketReceived):
            self._touched = None
            self._on_packet(inp, now_ms, out)
            if self._stale is not None and self._touched is not None:
                self._stale.add(self._touched)
            return out
        self._stale = None  # anything but a packet may move every peer's deadline
        if isinstance(inp, Tick):
            self._last_tick_ms = now_ms
            self._on_tick(now_ms, out)
        elif isinstance(inp, PingReplied):
            self._on_ping_replied(inp, now_ms, out)
        elif isinstance(inp, StopRequested):
            self._on_stop_requested(now_ms, out)
        else:  # pragma: no cover - the Input union is closed
            raise AssertionError(f"unknown input {inp!r}")
        return out

    def send_message(self, mtype: str, pairs: tuple[tuple[str, str], ...], now_ms: int) -> list[Effect]:
        """Broadcast one sequenced upper-layer message (retransmitted on request like any other)."""
        assert mtype.startswith(UPPER_LAYER_PREFIX), mtype
        out: list[Effect] = []
        if not self._stopped:
            self._send(out, Message.of(("t", mtype), *pairs), now_ms)
        return out

    def peer_is_ours(self, node: NodeName) -> bool:
        """The peer said it runs hacluster (``hc=1`` in its status), not Heartbeat."""
        peer = self._peers.get(node)
        return peer is not None and peer.ours

    @property
    def keyring(self) -> codec.KeyRing:
        """The keys in use (salted for this cluster)."""
        return self._keyring

    def set_keyring(self, keyring: codec.KeyRing, reason: str, now_ms: int) -> list[Effect]:
        """Use ``keyring`` from now on (a key rotation step); everything else stays."""
        out: list[Effect] = []
        self._s = replace(self._s, keyring=keyring)
        self._apply_keyring(reason, out)
        return out

    def _apply_keyring(self, reason: str, out: list[Effect]) -> None:
        new = self._s.keyring.for_cluster(self._s.cluster)
        old = self._keyring
        self._keyring = new
        if new.describe() != old.describe() or new.keys != old.keys:
            out.append(
                Notice(
                    "KEYS_APPLIED",
                    Level.INFO,
                    f"keys in use: {new.describe()} (before: {old.describe()}); {reason}",
                    (("sending_slot", new.sign_index),),
                )
            )

    def peer_generation(self, node: NodeName) -> int | None:
        peer = self._peers.get(node)
        return None if peer is None else peer.generation

    def gap_samples(self) -> tuple[GapSamples, ...]:
        """Per peer and link, the running count of heartbeat gaps and the recent ones (read-only).

        A metrics reader keeps its own count and observes only the gaps added since, so the
        core keeps no per-reader state and the driver does nothing extra per heartbeat.
        """
        return tuple(
            GapSamples(peer.name, name, link.gaps_observed, tuple(link.gaps_ms))
            for peer in self._peers.values()
            for name, link in peer.links.items()
        )

    def members(self) -> tuple[NodeName, ...]:
        """This node and every peer currently ``active``, sorted by name."""
        names = [self._s.node] if self._state == "active" else []
        names += [p.name for p in self._peers.values() if p.state == "active"]
        return tuple(sorted(names))

    def next_deadline_ms(self) -> int:
        """The earliest time a ``Tick`` could change something.

        The driver asks after every input, so this must be cheap: each peer's own deadline is
        cached and recomputed only for the peer a packet came from (all of them after any
        other input, since ticks and state changes move every deadline).
        """
        if self._stale is None:
            self._peer_deadlines = {name: self._peer_deadline(peer) for name, peer in self._peers.items()}
        else:
            for name in self._stale:
                peer = self._peers.get(name)
                if peer is not None:
                    self._peer_deadlines[name] = self._peer_deadline(peer)
        self._stale = set()
        deadline = min(self._next_status_ms, min(self._peer_deadlines.values(), default=self._next_status_ms))
        for ping in self._pings.values():
            if ping.state == "ping" and ping.last_heard_ms is not None:
                deadline = min(deadline, ping.last_heard_ms + self._s.deadping_ms + 1)
        initdead_at = self._start_ms + self._s.initdead_ms + 1
        if not self._comm_up and (self._last_tick_ms is None or initdead_at > self._last_tick_ms):
            # Once past, initdead has done its work (never-heard peers are dead); a peer heard
            # only through non-status packets then has its own deadline.  Never return a time
            # a tick already passed with nothing to do: the shell would spin.
            deadline = min(deadline, initdead_at)
        return deadline

    def _peer_deadline(self, peer: _Peer) -> int:
        never = 1 << 62
        if peer.state == "dead":
            return never
        interval = self._interval_ms(peer)
        base = peer.last_heard_ms if peer.last_heard_ms is not None else self._start_ms
        deadline = base + interval + 1
        for link in peer.links.values():
            if link.up and link.last_heard_ms is not None:
                deadline = min(deadline, link.last_heard_ms + interval + 1)
        if peer.last_status_ms is not None and not peer.late_warned:
            deadline = min(deadline, peer.last_status_ms + self._s.warntime_ms + 1)
        if peer.state in ("up", "active"):  # as _request_retransmissions: else a past due spins
            for due in peer.missing.values():
                deadline = min(deadline, due)
        return deadline

    def reconfigure(self, settings: MembershipSettings, now_ms: int) -> list[Effect]:
        """Apply a re-read configuration; generation, sequence and peer history survive."""
        assert settings.node == self._s.node, "the node name cannot change at run time"
        out: list[Effect] = []
        self._stale = None
        settings = _with_generation(settings, self._s.generation)
        added = [n for n in settings.nodes if n != settings.node and n not in self._peers]
        removed = [n for n in self._peers if n not in settings.nodes]
        self._s = settings
        self._has_serial = any(link.kind is LinkKind.SERIAL for link in settings.links)
        for name in removed:
            del self._peers[name]
        for name in added:
            self._add_peer(name)
        link_names = set(self._link_names())
        for peer in self._peers.values():
            peer.links = {n: peer.links.get(n, _PeerLink()) for n in link_names}
        self._pings = {p.name: self._pings.get(p.name, _PingPeer(p.name)) for p in settings.ping_nodes}
        self._apply_keyring("configuration re-read", out)
        out.append(
            Notice(
                "CONFIG_APPLIED",
                Level.INFO,
                f"configuration re-read: nodes {', '.join(settings.nodes)}; "
                f"added {', '.join(added) or 'none'}; removed {', '.join(removed) or 'none'}; "
                f"keepalive {settings.keepalive_ms} ms, deadtime {settings.deadtime_ms} ms",
            )
        )
        self._next_status_ms = min(self._next_status_ms, now_ms + settings.keepalive_ms)
        return out

    def statistics(self, now_ms: int) -> MembershipStats:
        nodes = [
            NodeStats(
                name=self._s.node,
                state=self._state,
                type="normal",
                generation=self._s.generation,
                links=(),
                dead_interval_ms=self._s.deadtime_ms,
                last_heard_ms_ago=None,
                recommended_deadtime_ms=None,
            )
        ]
        nodes.extend(self._peer_stats(peer, now_ms) for peer in self._peers.values())
        nodes.extend(
            NodeStats(
                name=ping.name,
                state=ping.state,
                type="ping",
                generation=None,
                links=(),
                dead_interval_ms=self._s.deadping_ms,
                last_heard_ms_ago=_ago(ping.last_heard_ms, now_ms),
                recommended_deadtime_ms=None,
            )
            for ping in self._pings.values()
        )
        nodes.sort(key=lambda n: (n.type != "normal", n.name))
        return MembershipStats(
            node=self._s.node,
            state=self._state,
            generation=self._s.generation,
            comm_up=self._comm_up,
            keepalive_ms=self._s.keepalive_ms,
            deadtime_ms=self._s.deadtime_ms,
            nodes=tuple(nodes),
            dropped=tuple((reason.value, count) for reason, count in self._dropped.items()),
            received=self._received,
            sent=self._sent,
            retransmit_requests_sent=self._rexmit_requests_sent,
            retransmissions_sent=self._rexmits_sent,
        )

    # --- inputs -----------------------------------------------------------------------

    def _on_packet(self, inp: PacketReceived, now_ms: int, out: list[Effect]) -> None:
        self._received += 1
        try:
            message = codec.decode(inp.data, self._keyring)
        except DecodeError as exc:
            self._drop(exc.reason, f"from link {inp.link}: {exc.detail}", now_ms, out)
            return
        fields = message.as_dict()
        mtype, src = fields.get("t"), fields.get("src")
        if not mtype or not src or "ts" not in fields or "hg" not in fields:
            self._drop(
                DropReason.MISSING_FIELD, f"from link {inp.link}: needs t, src, ts and hg", now_ms, out
            )
            return
        cluster = fields.get("cl", "linux-ha")
        if cluster != self._s.cluster:
            self._drop(DropReason.OTHER_CLUSTER, f"{src} is in cluster {cluster!r}", now_ms, out)
            return
        generation = _parse_hex(fields["hg"])
        if generation is None:
            self._drop(DropReason.MALFORMED, f"{src}: hg {fields['hg']!r} is not hex", now_ms, out)
            return
        node = NodeName(src.lower())
        if node == self._s.node:
            if generation != self._s.generation:
                self._drop(
                    DropReason.UNKNOWN_NODE,
                    f"a packet claims to come from this node with generation {generation}",
                    now_ms,
                    out,
                )
            return  # our own broadcast, looped back
        peer = self._peers.get(node) or self._autojoin(node, now_ms, out)
        if peer is None:
            return
        self._on_message(peer, inp.link, message, fields, generation, now_ms, out)

    def _on_message(
        self,
        peer: _Peer,
        link_name: LinkName,
        message: Message,
        fields: dict[str, str],
        generation: int,
        now_ms: int,
        out: list[Effect],
    ) -> None:
        mtype = fields["t"]
        self._touched = peer.name
        if peer.generation is not None and generation < peer.generation:
            self._drop(
                DropReason.REPLAY,
                f"{peer.name}: generation {generation} < current {peer.generation} ({mtype})",
                now_ms,
                out,
            )
            return
        if generation == peer.stopped_generation:
            return  # stragglers after a graceful goodbye
        if mtype.startswith("NS_"):
            if peer.generation is not None and generation == peer.generation:
                self._on_unsequenced(peer, mtype, fields, now_ms, out)
            return
        seq = _parse_hex(fields.get("seq", ""))
        if seq is None or seq <= 0:
            self._drop(DropReason.MALFORMED, f"{peer.name}: {mtype} without a valid seq", now_ms, out)
            return
        if peer.generation is None or generation > peer.generation:
            self._on_new_generation(peer, generation, now_ms, out)
        link = peer.links.get(link_name)
        if link is None:
            link = peer.links[link_name] = _PeerLink()
        fresh_on_link = seq > link.highest_seq
        accepted = self._track_sequence(peer, seq, now_ms, out)
        if not fresh_on_link and not accepted:
            self._drop(DropReason.DUPLICATE, f"{peer.name}: seq {seq} again on {link_name}", now_ms, out)
            return
        if fresh_on_link:
            link.highest_seq = seq
            self._refresh_link(peer, link_name, link, mtype == "status", now_ms, out)
        if accepted:
            self._dispatch(peer, message, fields, now_ms, out)

    def _on_new_generation(self, peer: _Peer, generation: int, now_ms: int, out: list[Effect]) -> None:
        if peer.generation is not None:
            out.append(
                Notice(
                    "NODE_RESTARTED",
                    Level.INFO,
                    f"{peer.name} restarted: generation {peer.generation} -> {generation}",
                    (("node", peer.name), ("generation", generation)),
                )
            )
        peer.generation = generation
        peer.last_seq = None
        peer.status_seq = 0
        peer.missing.clear()
        peer.protocol = False
        for link in peer.links.values():
            link.highest_seq = 0
            link.last_status_ms = None  # a restart's downtime is not a heartbeat gap

    def _track_sequence(self, peer: _Peer, seq: int, now_ms: int, out: list[Effect]) -> bool:
        """Heartbeat's receive-side rules (reference §7.2); True when the packet is new."""
        last = peer.last_seq
        if last is None or seq == last + 1:
            peer.last_seq = seq
            return True
        if seq > last + 1:
            if seq - last > FLOWCONTROL_LIMIT:
                peer.missing.clear()
            else:
                first_due = now_ms + self._rexmit_delay_ms()
                for missing in range(last + 1, seq):
                    peer.missing[missing] = first_due
                while len(peer.missing) > MISSING_MAX:
                    del peer.missing[next(iter(peer.missing))]
                out.append(
                    Notice(
                        "PACKETS_LOST",
                        Level.DEBUG,
                        f"{peer.name}: {seq - last - 1} lost packet(s) [{last + 1}:{seq - 1}]",
                    )
                )
            peer.last_seq = seq
            return True
        return peer.missing.pop(seq, None) is not None

    def _refresh_link(
        self,
        peer: _Peer,
        link_name: LinkName,
        link: _PeerLink,
        is_status: bool,
        now_ms: int,
        out: list[Effect],
    ) -> None:
        if is_status:
            if link.last_status_ms is not None:
                link.gaps_ms.append(now_ms - link.last_status_ms)
                link.gaps_observed += 1
                if len(link.gaps_ms) > self._s.gap_window:
                    link.gaps_ms.popleft()
            link.last_status_ms = now_ms
        link.last_heard_ms = now_ms
        peer.last_heard_ms = now_ms
        if not link.up:
            link.up = True
            out.append(
                Notice(
                    "LINK_UP",
                    Level.INFO,
                    f"link {link_name} to {peer.name} is up",
                    (("node", peer.name), ("link", link_name)),
                )
            )

    def _dispatch(
        self, peer: _Peer, message: Message, fields: dict[str, str], now_ms: int, out: list[Effect]
    ) -> None:
        mtype = fields["t"]
        dest = fields.get("dest")
        if dest is not None and dest.lower() != self._s.node:
            return
        if (
            peer.protocol
            and not peer.ours
            and not peer.missing
            and peer.last_seq is not None
            and peer.last_seq % 10 == peer.ack_trigger
            and mtype != "shutdone"
        ):
            ack = Message.of(("t", "NS_ackmsg"), ("dest", peer.name), ("ackseq", f"{peer.last_seq:x}"))
            self._send(out, ack, now_ms, sequenced=False)
        if mtype == "status":
            self._on_status(peer, fields, now_ms, out)
        elif mtype == "shutdone":
            peer.stopped_generation = peer.generation
            self._set_peer_state(peer, "dead", "stopped gracefully (shutdone received)", now_ms, out)
        elif mtype == KEY_MESSAGE:
            out.append(KeyMessage(peer.name, tuple(fields.items())))
        elif mtype.startswith(UPPER_LAYER_PREFIX):
            out.append(MessageDelivered(peer.name, mtype, tuple(fields.items())))
        elif mtype == "reqnodes":
            listed = " ".join(self._s.nodes) + " "
            reply = Message.of(
                ("t", "repnodes"), ("dest", peer.name), ("nodelist", listed), ("delnodelist", " ")
            )
            self._send(out, reply, now_ms)

    def _on_status(self, peer: _Peer, fields: dict[str, str], now_ms: int, out: list[Effect]) -> None:
        seq = _parse_hex(fields.get("seq", "")) or 0
        if seq < peer.status_seq:
            return  # a missing status retransmitted or arriving late: a newer one already counted
        peer.status_seq = seq
        if "protocol" in fields:
            peer.protocol = True
        peer.ours = fields.get(OURS_FIELD) == "1"
        dt = _parse_hex(fields.get("dt", ""))
        if dt is not None:
            peer.dead_interval_ms = max(2 * self._s.keepalive_ms + 1, min(dt, DT_MAX_MS))
        if peer.last_status_ms is not None:
            gap = now_ms - peer.last_status_ms
            if gap > self._s.warntime_ms and not peer.late_warned and peer.state != "dead":
                out.append(self._late_notice(peer, gap))
        peer.last_status_ms = now_ms
        peer.late_warned = False
        status = fields.get("st", "")
        if status == "dead":
            peer.stopped_generation = peer.generation
            self._set_peer_state(peer, "dead", "it announced status dead", now_ms, out)
        elif status in ("init", "up", "active"):
            previous = peer.state
            reason = f"status {status} received (generation {peer.generation})"
            if previous == "dead":
                reason = (
                    f"heard again after being declared dead: status {status}, generation {peer.generation}"
                )
            self._set_peer_state(peer, status, reason, now_ms, out)
            self._check_comm_up(out, now_ms)
        else:
            self._drop(DropReason.MALFORMED, f"{peer.name}: status st={status!r}", now_ms, out)

    def _on_unsequenced(
        self, peer: _Peer, mtype: str, fields: dict[str, str], now_ms: int, out: list[Effect]
    ) -> None:
        dest = fields.get("dest")
        if dest is not None and dest.lower() != self._s.node:
            return
        if mtype == "NS_rexmit":
            first = _parse_dec(fields.get("firstseq", ""))
            last = _parse_dec(fields.get("lastseq", ""))
            if first is None or last is None or last < first:
                self._drop(DropReason.MALFORMED, f"{peer.name}: NS_rexmit range", now_ms, out)
                return
            self._retransmit(peer, first, min(last, first + REXMIT_PER_REQUEST_MAX - 1), now_ms, out)
        elif mtype == "NS_nak_rexmit":
            seq = _parse_hex(fields.get("firstseq", ""))
            if seq is not None:
                peer.missing.pop(seq, None)

    def _on_tick(self, now_ms: int, out: list[Effect]) -> None:
        if now_ms >= self._next_status_ms:
            self._send_status(out, now_ms)
        for peer in self._peers.values():
            self._check_peer(peer, now_ms, out)
        for ping in self._pings.values():
            if ping.state == "ping" and ping.last_heard_ms is not None:
                silent = now_ms - ping.last_heard_ms
                if silent > self._s.deadping_ms:
                    self._set_ping_state(
                        ping,
                        "dead",
                        f"no echo reply for {silent} ms > deadping {self._s.deadping_ms} ms",
                        out,
                    )
        self._check_comm_up(out, now_ms)
        self._request_retransmissions(now_ms, out)

    def _check_peer(self, peer: _Peer, now_ms: int, out: list[Effect]) -> None:
        if peer.state == "dead":
            return
        interval = self._interval_ms(peer)
        for name, link in peer.links.items():
            if link.up and link.last_heard_ms is not None and now_ms - link.last_heard_ms > interval:
                link.up = False
                out.append(
                    Notice(
                        "LINK_DOWN",
                        Level.WARNING,
                        f"link {name} to {peer.name} is down: silent for {now_ms - link.last_heard_ms} ms "
                        f"> {interval} ms",
                        (("node", peer.name), ("link", name)),
                    )
                )
        if peer.last_heard_ms is None:
            if now_ms - self._start_ms > interval:
                self._set_peer_state(
                    peer, "dead", f"never heard from within initdead {self._s.initdead_ms} ms", now_ms, out
                )
            return
        silent = now_ms - peer.last_heard_ms
        if silent > interval:
            links = " and ".join(peer.links) or "no link"
            rule = "deadtime" if self._comm_up else "initdead"
            self._set_peer_state(
                peer, "dead", f"silent on {links} for {silent} ms > {rule} {interval} ms", now_ms, out
            )
            return
        if peer.last_status_ms is not None and not peer.late_warned:
            gap = now_ms - peer.last_status_ms
            if gap > self._s.warntime_ms:
                out.append(self._late_notice(peer, gap))

    def _on_ping_replied(self, inp: PingReplied, now_ms: int, out: list[Effect]) -> None:
        ping = self._pings.get(inp.node)
        if ping is None:
            return
        ping.last_heard_ms = now_ms
        if ping.state != "ping":
            self._set_ping_state(ping, "ping", f"echo reply from {inp.address}", out)

    def stop_silently(self, now_ms: int) -> list[Effect]:
        """Stop without a goodbye: peers must treat this node as failed (and fence it)."""
        out: list[Effect] = []
        if self._stopped:
            return out
        self._set_own_state(
            out, "dead", "stopping without a goodbye: peers will declare this node dead", now_ms
        )
        self._stopped = True
        out.append(Stopped())
        return out

    def _on_stop_requested(self, now_ms: int, out: list[Effect]) -> None:
        goodbye = Message.of(("t", "shutdone"), ("st", "dead"))
        self._send(out, goodbye, now_ms)
        self._send(out, goodbye, now_ms)  # two copies: losing one must not cost a deadtime
        self._set_own_state(out, "dead", "graceful stop requested", now_ms)
        self._stopped = True
        out.append(Stopped())

    # --- sending ----------------------------------------------------------------------

    def _send_status(self, out: list[Effect], now_ms: int) -> None:
        status = Message.of(
            ("t", "status"),
            ("st", self._state),
            ("dt", f"{self._s.deadtime_ms:x}"),
            ("protocol", "1"),
            (OURS_FIELD, "1"),
        )
        self._send(out, status, now_ms)
        if self._pings:
            out.append(SendPings())
        behind = now_ms - self._next_status_ms
        if 0 <= behind < self._s.keepalive_ms:
            self._next_status_ms += self._s.keepalive_ms  # on schedule: keep the cadence
        else:  # an extra status (state change), or we were paused: restart the cadence
            self._next_status_ms = now_ms + self._s.keepalive_ms

    def _send(self, out: list[Effect], message: Message, now_ms: int, *, sequenced: bool = True) -> None:
        pairs: list[tuple[str, str | bytes]] = [("src", self._s.node)]
        if sequenced:
            self._seq += 1
            pairs.append(("seq", f"{self._seq:x}"))
        pairs += [
            ("hg", f"{self._s.generation:x}"),
            ("ts", f"{(self._s.wall_offset_ms + now_ms) // 1000:x}"),
            ("ttl", str(self._s.hopfudge + len(self._s.nodes))),
        ]
        if self._s.cluster != "linux-ha":
            pairs.append(("cl", self._s.cluster))
        full = message.with_fields(*pairs)
        if sequenced:
            self._history[self._seq] = (full, now_ms)
            if len(self._history) > HISTORY_MAX:
                self._history.popitem(last=False)
        out.append(self._encode(full))
        self._sent += 1

    def _encode(self, message: Message) -> Send:
        keyring = self._keyring
        data = codec.encode(message, keyring, inner_auth=self._s.inner_auth, sealer=self._sealer)
        if not self._has_serial:
            return Send(data=data)
        if keyring.signing_key.encrypts:
            return Send(data=data, classic=codec.serial_frame(data))  # the same sealed bytes
        return Send(data=data, classic=codec.encode_classic(message, keyring))

    def _retransmit(self, peer: _Peer, first: int, last: int, now_ms: int, out: list[Effect]) -> None:
        oldest = next(iter(self._history), self._seq + 1)
        for seq in range(first, last + 1):
            if seq > self._seq:
                break
            entry = self._history.get(seq)
            if entry is None:
                reason = "seqno too low" if seq < oldest else "seqno not found"
                nak = Message.of(
                    ("t", "NS_nak_rexmit"), ("dest", peer.name), ("firstseq", f"{seq:x}"), ("info", reason)
                )
                self._send(out, nak, now_ms, sequenced=False)
                continue
            message, sent_ms = entry
            if now_ms - sent_ms < self._s.max_rexmit_delay_ms - 10 and sent_ms != now_ms:
                continue
            self._history[seq] = (message, now_ms)
            out.append(self._encode(message))
            self._rexmits_sent += 1

    def _request_retransmissions(self, now_ms: int, out: list[Effect]) -> None:
        for peer in self._peers.values():
            if not peer.missing or peer.state not in ("up", "active"):
                continue
            due = sorted(seq for seq, when in peer.missing.items() if when <= now_ms)
            for first, last in _runs(due):
                request = Message.of(
                    ("t", "NS_rexmit"), ("dest", peer.name), ("firstseq", str(first)), ("lastseq", str(last))
                )
                self._send(out, request, now_ms, sequenced=False)
                self._rexmit_requests_sent += 1
            for seq in due:
                peer.missing[seq] = now_ms + self._s.max_rexmit_delay_ms

    # --- helpers ----------------------------------------------------------------------

    def _interval_ms(self, peer: _Peer) -> int:
        if not self._comm_up:
            return self._s.initdead_ms
        return peer.dead_interval_ms if peer.dead_interval_ms is not None else self._s.deadtime_ms

    def _rexmit_delay_ms(self) -> int:
        top = self._s.max_rexmit_delay_ms
        low = 50 if top >= 100 else 0
        return self._rng.randrange(low, top + 1)

    def _link_names(self) -> list[LinkName]:
        return [link.name for link in self._s.links]

    def _add_peer(self, name: NodeName) -> _Peer:
        peer = _Peer(name=name, links={n: _PeerLink() for n in self._link_names()})
        peer.ack_trigger = self._rng.randrange(0, 10)
        self._peers[name] = peer
        return peer

    def _autojoin(self, node: NodeName, now_ms: int, out: list[Effect]) -> _Peer | None:
        if self._s.autojoin == "none" or len(self._peers) >= AUTOJOIN_MAX:
            self._drop(DropReason.UNKNOWN_NODE, f"{node} is not a configured node", now_ms, out)
            return None
        out.append(
            Notice("NODE_AUTOJOINED", Level.WARNING, f"{node} joined through autojoin {self._s.autojoin}")
        )
        return self._add_peer(node)

    def _late_notice(self, peer: _Peer, gap_ms: int) -> Notice:
        peer.late_warned = True
        return Notice(
            "LATE_HEARTBEAT",
            Level.WARNING,
            f"late heartbeat from {peer.name}: {gap_ms} ms since the previous one > warntime {self._s.warntime_ms} ms",
            (("node", peer.name), ("gap_ms", gap_ms)),
        )

    def _set_peer_state(
        self, peer: _Peer, new: NodeState, reason: str, now_ms: int, out: list[Effect]
    ) -> None:
        old = peer.state
        if old == new:
            return
        peer.state = new
        if new == "dead":
            peer.missing.clear()
            peer.last_status_ms = None
            peer.late_warned = False
            for link in peer.links.values():
                link.up = False
                link.last_status_ms = None  # the silence is downtime, not a late heartbeat
        verb = "declared dead" if new == "dead" else f"is {new}"
        level = Level.WARNING if new == "dead" else Level.INFO
        out.append(
            Notice(
                "NODE_DEAD" if new == "dead" else "NODE_STATE",
                level,
                f"{peer.name} {verb}: {reason}",
                (("node", peer.name), ("old", old), ("new", new)),
            )
        )
        graceful = (
            new == "dead"
            and peer.stopped_generation is not None
            and peer.stopped_generation == peer.generation
        )
        out.append(NodeStateChanged(peer.name, old, new, reason, graceful))

    def _set_ping_state(self, ping: _PingPeer, new: NodeState, reason: str, out: list[Effect]) -> None:
        old, ping.state = ping.state, new
        level = Level.WARNING if new == "dead" else Level.INFO
        text = f"ping node {ping.name} {'declared dead' if new == 'dead' else 'answers'}: {reason}"
        out.append(Notice("PING_NODE_STATE", level, text, (("node", ping.name), ("new", new))))
        out.append(NodeStateChanged(ping.name, old, new, reason))

    def _set_own_state(self, out: list[Effect], new: NodeState, reason: str, now_ms: int) -> None:
        old, self._state = self._state, new
        out.append(Notice("OWN_STATE", Level.INFO, f"{self._s.node} is {new}: {reason}"))
        out.append(NodeStateChanged(self._s.node, old, new, reason))
        if new != "dead":
            self._send_status(out, now_ms)

    def _check_comm_up(self, out: list[Effect], now_ms: int) -> None:
        if self._comm_up or self._state == "dead":
            return
        # Every node has sent a status or been declared dead.  (Heartbeat counts any packet;
        # we wait for a status, so that no node plans resources with a peer it knows only from
        # a stray upper-layer message and whose state it does not know.)
        waiting = [p.name for p in self._peers.values() if p.state == "init"]
        if waiting:
            return
        self._comm_up = True
        self._stale = None  # every peer's dead interval changes from initdead to deadtime
        self._set_own_state(
            out, "active", "communication is up: every node heard from or declared dead", now_ms
        )

    def _drop(self, reason: DropReason, detail: str, now_ms: int, out: list[Effect]) -> None:
        self._dropped[reason] += 1
        last = self._drop_noticed_ms.get(reason)
        if last is not None and now_ms - last < DROP_NOTICE_INTERVAL_MS:
            return
        self._drop_noticed_ms[reason] = now_ms
        level = Level.DEBUG if reason is DropReason.DUPLICATE else Level.WARNING
        out.append(
            Notice(
                "PACKET_DROPPED",
                level,
                f"packet dropped ({reason.value}): {detail}; {self._dropped[reason]} so far",
                (("reason", reason.value),),
            )
        )

    def _peer_stats(self, peer: _Peer, now_ms: int) -> NodeStats:
        links = []
        worst: int | None = None
        samples = 0
        for name, link in peer.links.items():
            gaps = sorted(link.gaps_ms)
            samples = max(samples, len(gaps))
            if gaps:
                worst = max(worst or 0, gaps[-1])
            links.append(
                LinkStats(
                    name=name,
                    state="up" if link.up else "dead",
                    last_heard_ms_ago=_ago(link.last_heard_ms, now_ms),
                    gap_p50_ms=_percentile(gaps, 50),
                    gap_p99_ms=_percentile(gaps, 99),
                    gap_max_ms=gaps[-1] if gaps else None,
                    gap_samples=len(gaps),
                )
            )
        return NodeStats(
            name=peer.name,
            state=peer.state,
            type="normal",
            generation=peer.generation,
            links=tuple(links),
            dead_interval_ms=self._interval_ms(peer),
            last_heard_ms_ago=_ago(peer.last_heard_ms, now_ms),
            recommended_deadtime_ms=self._recommend(worst) if samples >= RECOMMEND_MIN_SAMPLES else None,
        )

    def _recommend(self, worst_gap_ms: int | None) -> int:
        """Twice the worst gap seen, never under 3 × keepalive, rounded up to 10 ms."""
        floor = 3 * self._s.keepalive_ms
        value = max(floor, 2 * (worst_gap_ms or 0))
        return -(-value // 10) * 10


def _with_generation(settings: MembershipSettings, generation: int) -> MembershipSettings:
    if settings.generation == generation:
        return settings
    return replace(settings, generation=generation)


def _parse_hex(text: str) -> int | None:
    if not text or len(text) > 16:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def _parse_dec(text: str) -> int | None:
    # isascii: "²".isdigit() is true but int("²") raises, and a peer's field may hold anything.
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


def _ago(when_ms: int | None, now_ms: int) -> int | None:
    return None if when_ms is None else now_ms - when_ms


def _percentile(sorted_values: list[int], pct: int) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, (len(sorted_values) * pct + 99) // 100 - 1)
    return sorted_values[max(0, index)]


def _runs(values: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted integers: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] + 1 == value:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs
