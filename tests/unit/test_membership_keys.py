"""Membership with encryption and changing keys, driven by hand: two cores talk to each other."""

from __future__ import annotations

import random
from dataclasses import replace

from hacluster.core import codec
from hacluster.core.codec import AuthKey, KeyRing
from hacluster.core.effects import Effect, KeyMessage, MessageDelivered, Notice, PacketReceived, Send, Tick
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.membership import KEY_MESSAGE, Membership
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings

ETH0 = LinkName("bcast eth0")
AES = AuthKey(1, "aes256gcm", b"first secret, long enough")
CHACHA = AuthKey(2, "chacha20poly1305", b"second secret, long enough")


def node(name: str, keyring: KeyRing, session: int, cluster: str = "linux-ha") -> Membership:
    settings = MembershipSettings(
        node=NodeName(name),
        nodes=(NodeName("a"), NodeName("b")),
        links=(LinkSpec(name=ETH0, kind=LinkKind.BCAST, device="eth0"),),
        keyring=keyring,
        generation=5,
        keepalive_ms=100,
        deadtime_ms=500,
        warntime_ms=300,
        initdead_ms=2000,
        cluster=cluster,
        session_id=bytes([session]) * 16,
    )
    return Membership(settings, random.Random(session), 0)


def packets(effects: list[Effect]) -> list[bytes]:
    return [e.data for e in effects if isinstance(e, Send)]


def deliver(to: Membership, data: list[bytes], now: int) -> list[Effect]:
    out: list[Effect] = []
    for packet in data:
        out += to.handle(PacketReceived(ETH0, packet), now)
    return out


def exchange(a: Membership, b: Membership, steps: int, start: int = 0) -> tuple[list[Effect], list[Effect]]:
    """Run both for ``steps`` keepalives, each hearing what the other sent."""
    heard_a: list[Effect] = []
    heard_b: list[Effect] = []
    for i in range(steps):
        now = start + i * 100
        from_a, from_b = a.handle(Tick(), now), b.handle(Tick(), now)
        heard_b += deliver(b, packets(from_a), now + 1)
        heard_a += deliver(a, packets(from_b), now + 1)
    return heard_a, heard_b


def pair(keyring_a: KeyRing, keyring_b: KeyRing) -> tuple[Membership, Membership]:
    a, b = node("a", keyring_a, 1), node("b", keyring_b, 2)
    from_a, from_b = a.start(0), b.start(0)
    deliver(b, packets(from_a), 1)
    deliver(a, packets(from_b), 1)
    return a, b


def dropped(m: Membership, reason: str) -> int:
    return dict(m.statistics(0).dropped)[reason]


def test_sealed_heartbeats_make_both_active() -> None:
    ring = KeyRing(1, {1: AES})
    a, b = pair(ring, ring)
    exchange(a, b, 5)
    assert a.peer_state(NodeName("b")) == "active"
    assert b.peer_state(NodeName("a")) == "active"
    sent = packets(a.handle(Tick(), 10_000))
    assert sent
    assert all(p[:2] == codec.SEALED_MAGIC for p in sent)


def test_a_replayed_sealed_packet_is_a_duplicate() -> None:
    ring = KeyRing(1, {1: AES})
    a, b = pair(ring, ring)
    exchange(a, b, 3)
    recorded = packets(a.handle(Tick(), 1000))
    deliver(b, recorded, 1001)
    before = dropped(b, "duplicate")
    deliver(b, recorded, 1002)
    assert dropped(b, "duplicate") == before + len(recorded)


def test_another_cluster_with_the_same_secret_hears_nothing() -> None:
    ring = KeyRing(1, {1: AES})
    a, b = node("a", ring, 1), node("b", ring, 2, cluster="other")
    b.start(0)
    deliver(b, packets(a.start(0)), 1)
    assert b.peer_state(NodeName("a")) == "init"
    assert dropped(b, "bad_auth") == 2


def test_keys_change_without_a_lost_packet_when_done_in_order() -> None:
    """add key 2 on both, switch both to key 2, retire key 1 on both: nothing refused."""
    one = KeyRing(1, {1: AES})
    both_sending_1, both_sending_2, only_2 = (
        KeyRing(1, {1: AES, 2: CHACHA}),
        KeyRing(2, {1: AES, 2: CHACHA}),
        KeyRing(2, {2: CHACHA}),
    )
    a, b = pair(one, one)
    exchange(a, b, 3)
    now = 1000
    for ring in (both_sending_1, both_sending_2, only_2):
        for member in (a, b):
            notices = [e for e in member.set_keyring(ring, "test", now) if isinstance(e, Notice)]
            assert [n.code for n in notices] == ["KEYS_APPLIED"]
            assert "first secret" not in notices[0].text
            exchange(a, b, 2, now)
            now += 300
    assert a.keyring.sign_index == 2
    for member in (a, b):
        assert dropped(member, "bad_auth") == 0
        assert dropped(member, "unknown_key") == 0
    assert a.peer_state(NodeName("b")) == "active"
    # The counter went on across the key change: still one increasing sequence.
    assert a._sealer.counter > 10


def test_a_node_holding_only_the_retired_key_is_not_heard() -> None:
    a, b = pair(KeyRing(2, {2: CHACHA}), KeyRing(1, {1: AES}))
    exchange(a, b, 5)
    assert a.peer_state(NodeName("b")) != "active"
    assert dropped(a, "unknown_key") > 0


def test_reconfigure_applies_new_keys_and_says_so() -> None:
    ring = KeyRing(1, {1: AES})
    a, _ = pair(ring, ring)
    new = replace(a._s, keyring=KeyRing(2, {1: AES, 2: CHACHA}))
    codes = [e.code for e in a.reconfigure(new, 500) if isinstance(e, Notice)]
    assert codes == ["KEYS_APPLIED", "CONFIG_APPLIED"]
    assert [e.code for e in a.reconfigure(new, 600) if isinstance(e, Notice)] == ["CONFIG_APPLIED"]


def test_key_messages_go_to_the_shell_not_the_resource_manager() -> None:
    ring = KeyRing(1, {1: AES})
    a, b = pair(ring, ring)
    exchange(a, b, 3)
    sent = a.send_message(KEY_MESSAGE, (("op", "prepare"), ("rotation", "r1")), 1000)
    sent += a.send_message("hac_state", (("x", "1"),), 1000)
    heard = deliver(b, packets(sent), 1001)
    [key_message] = [e for e in heard if isinstance(e, KeyMessage)]
    assert key_message.src == "a"
    assert key_message.get("op") == "prepare"
    assert [e.mtype for e in heard if isinstance(e, MessageDelivered)] == ["hac_state"]
    assert b.peer_is_ours(NodeName("a"))
