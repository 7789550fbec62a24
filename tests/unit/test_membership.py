"""Table tests of the membership core, driven by hand: node ``a`` hears packets "from" ``b``."""

from __future__ import annotations

import random

import pytest

from hacluster.core import codec
from hacluster.core.codec import KeyRing, Message
from hacluster.core.effects import (
    MembershipEffect as Effect,
)
from hacluster.core.effects import (
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

KEYRING = KeyRing.single("sha1", b"secret")
ETH0 = LinkName("bcast eth0")
ETH1 = LinkName("bcast eth1")
B_GEN = 7


def settings(
    nodes: tuple[str, ...] = ("a", "b"), links: tuple[LinkName, ...] = (ETH0,), autojoin: str = "none"
) -> MembershipSettings:
    return MembershipSettings(
        node=NodeName("a"),
        nodes=tuple(NodeName(n) for n in nodes),
        links=tuple(LinkSpec(name=n, kind=LinkKind.BCAST, device=n.split()[-1]) for n in links),
        keyring=KEYRING,
        generation=3,
        keepalive_ms=100,
        deadtime_ms=500,
        warntime_ms=300,
        initdead_ms=2000,
        autojoin=autojoin,
    )


def node_a(
    nodes: tuple[str, ...] = ("a", "b"), links: tuple[LinkName, ...] = (ETH0,), autojoin: str = "none"
) -> tuple[Membership, list[Effect]]:
    m = Membership(settings(nodes, links, autojoin), random.Random(0), 0)
    return m, m.start(0)


def packet(
    t: str = "status",
    seq: int | None = 1,
    src: str = "b",
    gen: int = B_GEN,
    keyring: KeyRing = KEYRING,
    **extra: str,
) -> bytes:
    pairs: list[tuple[str, str | bytes]] = [("t", t)]
    if t == "status":
        pairs += [("st", extra.pop("st", "active")), ("protocol", "1")]
    pairs += list(extra.items())
    pairs.append(("src", src))
    if seq is not None:
        pairs.append(("seq", f"{seq:x}"))
    pairs += [("hg", f"{gen:x}"), ("ts", "5f5e100"), ("ttl", "3")]
    return codec.encode(Message.of(*pairs), keyring)


def feed(m: Membership, data: bytes, now: int, link: LinkName = ETH0) -> list[Effect]:
    return m.handle(PacketReceived(link, data), now)


def sent(effects: list[Effect]) -> list[dict[str, str]]:
    return [codec.decode(e.data, KEYRING).as_dict() for e in effects if isinstance(e, Send)]


def notices(effects: list[Effect], code: str) -> list[str]:
    return [e.text for e in effects if isinstance(e, Notice) and e.code == code]


def dropped(m: Membership, now: int = 0) -> dict[str, int]:
    return dict(m.statistics(now).dropped)


def active_pair() -> Membership:
    """``a`` with ``b`` heard once (seq 1, status active), so comm is up."""
    m, _ = node_a()
    feed(m, packet(seq=1), 0)
    assert m.comm_up
    assert m.peer_state(NodeName("b")) == "active"
    return m


# --- sequence rules ------------------------------------------------------------------------


def test_in_order_packets_are_accepted_without_drops() -> None:
    m = active_pair()
    for seq in (2, 3, 4):
        out = feed(m, packet(seq=seq), seq * 100)
        assert not notices(out, "PACKET_DROPPED")
    assert sum(dropped(m).values()) == 0
    assert m.statistics(400).received == 4


def test_gap_asks_for_retransmission_after_a_delay_in_decimal() -> None:
    m = active_pair()
    out = feed(m, packet(seq=14), 100)  # 2..13 missing: 12 packets
    assert notices(out, "PACKETS_LOST") == ["b: 12 lost packet(s) [2:13]"]
    assert not [f for f in sent(out) if f["t"] == "NS_rexmit"], "not at once"
    assert not [f for f in sent(m.handle(Tick(), 149)) if f["t"] == "NS_rexmit"]
    due = m.next_deadline_ms()
    assert 150 <= due <= 350
    requests = [f for f in sent(m.handle(Tick(), 350)) if f["t"] == "NS_rexmit"]
    assert requests == [{**requests[0], "dest": "b", "firstseq": "2", "lastseq": "13"}], "decimal range, to b"
    assert m.statistics(350).retransmit_requests_sent == 1
    again = [f for f in sent(m.handle(Tick(), 351)) if f["t"] == "NS_rexmit"]
    assert again == [], "asked again only after max_rexmit_delay"


def test_missing_packet_arriving_late_is_accepted_then_duplicates_dropped() -> None:
    m = active_pair()
    feed(m, packet(seq=4), 100)
    out = feed(m, packet(seq=2, t="reqnodes", dest="a"), 120)
    assert [f["t"] for f in sent(out)] == ["repnodes"], "the late packet was processed"
    assert dropped(m)["duplicate"] == 0
    out = feed(m, packet(seq=2, t="reqnodes", dest="a"), 130)
    assert sent(out) == [], "the second copy is not processed"
    assert dropped(m)["duplicate"] == 1
    feed(m, packet(seq=1), 140)
    assert dropped(m)["duplicate"] == 2, "an old packet is a duplicate too"


def test_gap_wider_than_flow_control_limit_resets_tracking() -> None:
    m = active_pair()
    out = feed(m, packet(seq=300), 100)
    assert notices(out, "PACKETS_LOST") == []
    for now in (200, 300, 400, 500):
        assert not [f for f in sent(m.handle(Tick(), now)) if f["t"] == "NS_rexmit"]
    assert m.statistics(500).retransmit_requests_sent == 0
    feed(m, packet(seq=301), 550)
    assert sum(dropped(m).values()) == 0


def test_late_retransmitted_status_does_not_roll_the_state_back() -> None:
    m = active_pair()
    feed(m, packet(seq=3, st="active"), 100)
    out = feed(m, packet(seq=2, st="up"), 110)  # the missing one, retransmitted
    assert not [e for e in out if isinstance(e, NodeStateChanged)]
    assert m.peer_state(NodeName("b")) == "active"


def test_deadline_is_never_in_the_past_while_a_gap_waits_on_a_peer_in_init() -> None:
    m, _ = node_a()
    feed(m, packet(t="reqnodes", seq=5, dest="a"), 0)  # sequenced, but no status yet
    feed(m, packet(t="reqnodes", seq=7, dest="a"), 10)  # 6 missing
    assert m.peer_state(NodeName("b")) == "init"
    for now in (100, 300, 500, 700):
        m.handle(Tick(), now)
        assert m.next_deadline_ms() > now, "a past deadline makes the shell spin"


# --- retransmission side -------------------------------------------------------------------


def test_rexmit_request_is_answered_with_the_stored_bytes() -> None:
    m, started = node_a()
    originals = [e.data for e in started if isinstance(e, Send)]
    assert [f["seq"] for f in sent(started)] == ["1", "2"]
    feed(m, packet(seq=1), 10)
    out = feed(m, packet(t="NS_rexmit", seq=None, dest="a", firstseq="1", lastseq="2"), 1000)
    assert [e.data for e in out if isinstance(e, Send)] == originals
    assert m.statistics(1000).retransmissions_sent == 2


def test_rexmit_request_for_a_seq_older_than_history_gets_a_nak() -> None:
    m, _ = node_a()
    feed(m, packet(seq=1), 0)
    for i in range(1, 520):
        m.handle(Tick(), i * 100)
    out = feed(m, packet(t="NS_rexmit", seq=None, dest="a", firstseq="1", lastseq="1"), 60_000)
    [nak] = sent(out)
    assert (nak["t"], nak["dest"], nak["firstseq"], nak["info"]) == (
        "NS_nak_rexmit",
        "b",
        "1",
        "seqno too low",
    )
    assert "seq" not in nak, "NS_* messages are not sequenced"


def test_rexmit_request_for_another_node_is_ignored() -> None:
    m, _ = node_a(nodes=("a", "b", "c"))
    out = feed(m, packet(t="NS_rexmit", seq=None, dest="c", firstseq="1", lastseq="2"), 1000)
    assert sent(out) == []


# --- acks, reqnodes ------------------------------------------------------------------------


def test_ack_is_sent_every_tenth_seq() -> None:
    m, _ = node_a()
    acks = []
    for seq in range(1, 21):
        acks += [f for f in sent(feed(m, packet(seq=seq), seq * 100)) if f["t"] == "NS_ackmsg"]
    assert len(acks) == 2
    acked = [int(f["ackseq"], 16) for f in acks]
    assert acked[1] - acked[0] == 10
    assert all(f["dest"] == "b" for f in acks)


def test_reqnodes_gets_repnodes_with_heartbeat_lists() -> None:
    m = active_pair()
    [reply] = sent(feed(m, packet(t="reqnodes", seq=2, dest="a"), 100))
    assert reply["t"] == "repnodes"
    assert reply["dest"] == "b"
    assert reply["nodelist"] == "a b "
    assert reply["delnodelist"] == " "
    assert "seq" in reply


# --- timing --------------------------------------------------------------------------------


def test_late_heartbeat_notice_once_per_gap() -> None:
    m = active_pair()
    assert notices(m.handle(Tick(), 300), "LATE_HEARTBEAT") == []
    assert notices(m.handle(Tick(), 301), "LATE_HEARTBEAT") == [
        "late heartbeat from b: 301 ms since the previous one > warntime 300 ms"
    ]
    assert notices(m.handle(Tick(), 350), "LATE_HEARTBEAT") == []
    feed(m, packet(seq=2), 400)
    assert notices(m.handle(Tick(), 650), "LATE_HEARTBEAT") == []


def test_dead_reason_text() -> None:
    m = active_pair()
    assert m.next_deadline_ms() <= 501
    assert not [e for e in m.handle(Tick(), 500) if isinstance(e, NodeStateChanged)]
    out = m.handle(Tick(), 510)
    assert notices(out, "NODE_DEAD") == ["b declared dead: silent on bcast eth0 for 510 ms > deadtime 500 ms"]
    [change] = [e for e in out if isinstance(e, NodeStateChanged)]
    assert change == NodeStateChanged(
        NodeName("b"), "active", "dead", "silent on bcast eth0 for 510 ms > deadtime 500 ms"
    )
    assert notices(out, "LINK_DOWN") == ["link bcast eth0 to b is down: silent for 510 ms > 500 ms"]


def test_advertised_dead_interval_is_honoured() -> None:
    m, _ = node_a()
    feed(m, packet(seq=1, dt=f"{1000:x}"), 0)
    assert not [e for e in m.handle(Tick(), 900) if isinstance(e, NodeStateChanged)]
    assert m.peer_state(NodeName("b")) == "active"
    [b] = [n for n in m.statistics(900).nodes if n.name == "b"]
    assert b.dead_interval_ms == 1000
    out = m.handle(Tick(), 1001)
    assert notices(out, "NODE_DEAD") == [
        "b declared dead: silent on bcast eth0 for 1001 ms > deadtime 1000 ms"
    ]


def test_replayed_latest_packet_does_not_refresh_liveness() -> None:
    m, _ = node_a()
    latest = packet(seq=5)
    feed(m, latest, 0)
    feed(m, latest, 400)  # an attacker replays it on the same link
    assert dropped(m)["duplicate"] == 1
    out = m.handle(Tick(), 501)
    assert m.peer_state(NodeName("b")) == "dead", out


def test_same_packet_on_a_second_link_refreshes_that_link() -> None:
    m, _ = node_a(links=(ETH0, ETH1))
    data = packet(seq=1)
    feed(m, data, 0, ETH0)
    out = feed(m, data, 3, ETH1)
    assert notices(out, "LINK_UP") == ["link bcast eth1 to b is up"]
    assert dropped(m)["duplicate"] == 0


# --- who may talk to us ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("autojoin", "state", "drops"),
    [("none", None, 1), ("any", "active", 0)],
)
def test_unknown_node(autojoin: str, state: str | None, drops: int) -> None:
    m, _ = node_a(autojoin=autojoin)
    out = feed(m, packet(src="c", seq=1), 10)
    assert m.peer_state(NodeName("c")) == state
    assert dropped(m)["unknown_node"] == drops
    assert bool(notices(out, "NODE_AUTOJOINED")) == (autojoin == "any")


def test_other_cluster_is_dropped() -> None:
    m, _ = node_a()
    feed(m, packet(seq=1, cl="elsewhere"), 10)
    assert dropped(m)["other_cluster"] == 1
    assert m.peer_state(NodeName("b")) == "init"


def test_own_looped_back_packet_is_ignored() -> None:
    m, started = node_a()
    for e in started:
        if isinstance(e, Send):
            assert feed(m, e.data, 5) == []
    assert sum(dropped(m).values()) == 0
    assert m.statistics(5).received == 2


def test_bad_hmac_is_counted() -> None:
    m, _ = node_a()
    out = feed(m, packet(seq=1, keyring=KeyRing.single("sha1", b"wrong")), 10)
    assert dropped(m)["bad_auth"] == 1
    assert notices(out, "PACKET_DROPPED")
    assert m.peer_state(NodeName("b")) == "init"


# --- statistics, reconfigure, stop ---------------------------------------------------------


def test_statistics_gap_percentiles_and_recommendation() -> None:
    m, _ = node_a()
    now = 0
    for seq in range(1, 22):  # 20 gaps: 19 of 100 ms and one of 180 ms
        now += 180 if seq == 10 else 100
        feed(m, packet(seq=seq), now)
        if seq == 20:
            [early] = [n for n in m.statistics(now).nodes if n.name == "b"]
            assert early.recommended_deadtime_ms is None, "19 samples are not enough"
    stats = m.statistics(now + 7)
    assert [n.name for n in stats.nodes] == ["a", "b"]
    assert {name for name, _ in stats.dropped} == {
        "malformed", "truncated", "oversize", "bad_auth", "unknown_key", "replay",
        "duplicate", "unknown_node", "other_cluster", "missing_field",
    }  # fmt: skip
    [b] = [n for n in stats.nodes if n.name == "b"]
    [link] = b.links
    assert (link.name, link.state, link.last_heard_ms_ago) == ("bcast eth0", "up", 7)
    assert (link.gap_samples, link.gap_p50_ms, link.gap_p99_ms, link.gap_max_ms) == (20, 100, 180, 180)
    assert b.recommended_deadtime_ms == 360
    assert b.generation == B_GEN
    assert (stats.node, stats.state, stats.comm_up, stats.keepalive_ms) == ("a", "active", True, 100)


def test_reconfigure_adds_and_removes_nodes() -> None:
    m = active_pair()
    out = m.reconfigure(settings(nodes=("a", "c")), 100)
    [text] = notices(out, "CONFIG_APPLIED")
    assert "added c; removed b" in text
    assert m.peer_state(NodeName("b")) is None
    assert m.peer_state(NodeName("c")) == "init"
    assert m.statistics(100).generation == 3
    feed(m, packet(src="c", seq=1), 150)
    assert m.peer_state(NodeName("c")) == "active"
    feed(m, packet(src="b", seq=2), 160)
    assert dropped(m)["unknown_node"] == 1


def test_graceful_stop_sends_two_goodbyes() -> None:
    m = active_pair()
    out = m.handle(StopRequested(), 100)
    assert [f["t"] for f in sent(out)] == ["shutdone", "shutdone"]
    assert out[-1] == Stopped()
    assert m.stopped
    assert m.handle(Tick(), 200) == []


def test_shutdone_marks_the_peer_dead_at_once() -> None:
    m = active_pair()
    out = feed(m, packet(t="shutdone", seq=2, st="dead"), 50)
    [change] = [e for e in out if isinstance(e, NodeStateChanged)]
    assert (change.new, change.reason, change.graceful) == (
        "dead",
        "stopped gracefully (shutdone received)",
        True,
    )
    feed(m, packet(seq=3), 60)
    assert m.peer_state(NodeName("b")) == "dead", "stragglers of a stopped generation do not revive it"
    feed(m, packet(seq=1, gen=B_GEN + 1, st="up"), 70)
    assert m.peer_state(NodeName("b")) == "up"


def test_old_generation_is_a_replay() -> None:
    m = active_pair()
    out = feed(m, packet(seq=1, gen=B_GEN + 1), 50)
    assert notices(out, "NODE_RESTARTED") == [f"b restarted: generation {B_GEN} -> {B_GEN + 1}"]
    out = feed(m, packet(seq=9, gen=B_GEN, st="up"), 60)
    assert dropped(m)["replay"] == 1
    assert not [e for e in out if isinstance(e, NodeStateChanged)]
    assert m.peer_state(NodeName("b")) == "active"


def test_a_retransmission_range_in_other_digits_is_malformed_not_a_crash() -> None:
    """Found by bench/bench_fuzz.py's class of bug: "²".isdigit() is true, int("²") raises."""
    m = active_pair()
    out = feed(m, packet(t="NS_rexmit", seq=None, dest="a", firstseq="²", lastseq="3"), 1000)
    assert sent(out) == []
    assert dropped(m)["malformed"] == 1
