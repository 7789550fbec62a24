"""Hostile traffic against real daemons: forged, replayed, truncated, oversize and flooded packets.

Three daemons (n1..n3) run on one bridge; a fourth namespace, the attacker, sends to the
broadcast address and the cluster's port with the packet tool in ``daemons.py``, and records
real packets by binding the port itself (broadcasts reach every port on the bridge).  Every
test checks the drop counters in the daemons' status and that membership is unharmed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from daemons import DaemonCluster, dropped, read_datagrams, require_lab, write_datagrams
from netns import Lab

from hacluster.core.codec import SEALED_MAGIC, KeyRing, Message, decode, encode

pytestmark = [pytest.mark.root, pytest.mark.integration]

TOOL = str(Path(__file__).with_name("daemons.py"))
ATTACKER = 4
SLACK_MS = 150
FLOOD_PACKETS = 20_000
FLOOD_RATE = int(os.environ.get("HAC_FLOOD_RATE", "0"))
"""Flood packets per second (``HAC_FLOOD_RATE`` overrides; 0, the default, is as fast as the
attacker can send: about 33 000 a second here).  The links drain their sockets in batches, so
the socket buffer does not overflow and heartbeats are not lost among the garbage."""
RSS_GROWTH_MAX = 6 * 1024 * 1024


def send(lab: Lab, cluster: DaemonCluster, datagrams: list[bytes], repeat: int = 1, gap_ms: int = 0) -> None:
    """Send ``datagrams`` from the attacker namespace to the broadcast address, and wait."""
    path = cluster.root / f"send-{time.monotonic_ns()}.bin"
    write_datagrams(path, datagrams)
    done = lab.exec(
        ATTACKER,
        [sys.executable, TOOL, "send", lab.broadcast, str(cluster.port), str(path), str(repeat), str(gap_ms)],
    )
    assert done.returncode == 0, done.stderr


def send_in_background(
    lab: Lab, cluster: DaemonCluster, datagrams: list[bytes], repeat: int, gap_ms: int
) -> subprocess.Popen[Any]:
    path = cluster.root / f"send-{time.monotonic_ns()}.bin"
    write_datagrams(path, datagrams)
    argv = [
        sys.executable,
        TOOL,
        "send",
        lab.broadcast,
        str(cluster.port),
        str(path),
        str(repeat),
        str(gap_ms),
    ]
    return lab.run(ATTACKER, argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def capture(lab: Lab, cluster: DaemonCluster, seconds: float) -> list[bytes]:
    """Record every datagram on the cluster port for ``seconds`` from the attacker namespace."""
    path = cluster.root / f"capture-{time.monotonic_ns()}.bin"
    argv = [sys.executable, TOOL, "capture", str(cluster.port), "100000", str(seconds), str(path)]
    proc = lab.run(ATTACKER, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.wait(timeout=seconds + 20)
    assert proc.returncode == 0, f"capture failed rc={proc.returncode}: {proc.stderr.read()}"
    return read_datagrams(path)


def packets_from(datagrams: list[bytes], keyring: KeyRing, node: str, mtype: str = "status") -> list[bytes]:
    chosen = []
    for datagram in datagrams:
        message = decode(datagram, keyring)
        if message.get("src") == node and message.get("t") == mtype:
            chosen.append(datagram)
    return chosen


def counters(cluster: DaemonCluster, reason: str, names: list[str] | None = None) -> dict[str, int]:
    out = {}
    for name in names or cluster.daemon_names:
        doc = cluster.status(name)
        assert doc is not None, cluster.diagnostics([name])
        out[name] = dropped(doc, reason)
    return out


def rose(before: dict[str, int], after: dict[str, int], by: int = 1) -> bool:
    return all(after[name] - before[name] >= by for name in before)


def wait_counters(
    cluster: DaemonCluster, reasons: tuple[str, ...], before: dict[str, int], by: int
) -> dict[str, int]:
    """Wait until the sum of ``reasons`` rose by ``by`` on every daemon; returns the sums."""

    def total() -> dict[str, int]:
        sums = dict.fromkeys(before, 0)
        for reason in reasons:
            for name, value in counters(cluster, reason, list(before)).items():
                sums[name] += value
        return sums

    cluster.wait_for(
        f"{'+'.join(reasons)} to rise by {by} from {before}", lambda: rose(before, total(), by), 5
    )
    return total()


def status_message(src: str, generation: int, seq: int) -> Message:
    return Message.of(
        ("t", "status"),
        ("st", "active"),
        ("dt", "1f4"),
        ("protocol", "1"),
        ("src", src),
        ("seq", f"{seq:x}"),
        ("hg", f"{generation:x}"),
        ("ts", f"{int(time.time()):x}"),
        ("ttl", "4"),
    )


def all_states(cluster: DaemonCluster) -> dict[str, dict[str, str]]:
    return {name: cluster.states(name) for name in cluster.daemon_names}


def flood_one(
    lab: Lab, cluster: DaemonCluster, reason: str, *, size: int, seed: int, prefix: bytes = b""
) -> None:
    """Flood n1 with ``FLOOD_PACKETS`` random datagrams (each starting with ``prefix``) at
    ``FLOOD_RATE``: nobody is declared dead, n1 counts them as ``reason`` and its memory stays flat."""
    victim = "n1"
    pid = cluster.pid(victim)
    rss_before = psutil.Process(pid).memory_info().rss
    before = counters(cluster, reason)
    argv = [sys.executable, TOOL, "flood", lab.address(1), str(cluster.port), str(FLOOD_PACKETS), str(size)]
    argv += [str(seed), str(FLOOD_RATE), prefix.hex()]
    flood = lab.run(ATTACKER, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    while flood.poll() is None or time.monotonic() - started < 2 * cluster.deadtime_ms / 1000:
        for name, states in all_states(cluster).items():
            assert "dead" not in states.values(), f"false death during the flood: {name} sees {states}"
        time.sleep(0.05)
    assert flood.returncode == 0, flood.stderr.read()
    sent = flood.stdout.read().strip()
    counted = counters(cluster, reason)[victim] - before[victim]
    assert psutil.Process(pid).is_running(), f"{victim} died in the flood"
    growth = psutil.Process(pid).memory_info().rss - rss_before
    doc = cluster.status(victim)
    assert doc is not None
    print(
        f"flood at {victim}: {sent}; counted {counted} {reason}, "
        f"{doc['packets']['queue_overflows']} queue overflows, RSS {growth / 1e6:+.1f} MB"
    )
    assert counted >= FLOOD_PACKETS // 10, f"{victim} saw only {counted} of {FLOOD_PACKETS} flood packets"
    assert growth < RSS_GROWTH_MAX, f"{victim} RSS grew by {growth} bytes during the flood"
    cluster.wait_all_active(timeout_s=2)


def test_hostile_forged_truncated_oversize_unknown_and_flood() -> None:
    require_lab()
    with Lab("hach", nodes=4) as lab, DaemonCluster(lab, nodes=3) as cluster:
        keyring = KeyRing.single("sha1", cluster.key.encode())
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        generation = cluster.generation_seen("n1", "n2")
        assert generation is not None
        real = packets_from(capture(lab, cluster, 0.5), keyring, "n2")
        assert real, "no status packet of n2 captured"

        # Wrong key: a status claiming to be n2, signed with another secret.
        before = counters(cluster, "bad_auth")
        forged = encode(status_message("n2", generation + 1, 0xFFFF), KeyRing.single("sha1", b"not the key"))
        send(lab, cluster, [forged] * 3)
        wait_counters(cluster, ("bad_auth",), before, 3)
        assert cluster.generation_seen("n1", "n2") == generation, "a forged generation was believed"

        # A properly signed packet from a node not in the configuration.
        before = counters(cluster, "unknown_node")
        intruder = encode(status_message("intruder", 1, 1), keyring)
        send(lab, cluster, [intruder] * 2)
        wait_counters(cluster, ("unknown_node",), before, 2)
        assert "intruder" not in cluster.states("n1")

        # Truncated copies of a real packet.
        before = counters(cluster, "truncated")
        send(lab, cluster, [real[0][: len(real[0]) // 2], real[0][:-1], b"###"])
        wait_counters(cluster, ("truncated",), before, 3)

        # A 60 KB datagram of garbage (IPv4 UDP cannot carry more than 65 507 bytes).
        before = counters(cluster, "malformed")
        send(lab, cluster, [bytes(range(256)) * 240])
        wait_counters(cluster, ("malformed",), before, 1)
        assert all_states(cluster) == {
            name: {other: "active" for other in cluster.daemon_names} for name in cluster.daemon_names
        }

        # A flood of garbage at one daemon: it stays up, its memory stays flat, and nobody is
        # declared dead, neither by it nor by its peers (its heartbeats still go out on time).
        flood_one(lab, cluster, "malformed", size=200, seed=7)


def test_hostile_replay() -> None:
    require_lab()
    with Lab("hacr", nodes=4) as lab, DaemonCluster(lab, nodes=3) as cluster:
        keyring = KeyRing.single("sha1", cluster.key.encode())
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        old = packets_from(capture(lab, cluster, 0.6), keyring, "n3")
        assert len(old) >= 3, f"captured only {len(old)} status packets of n3"
        observers = ["n1", "n2"]

        # Replayed while n3 is alive: recognised as already seen.  (n3 itself ignores its own.)
        before = {
            name: counters(cluster, "duplicate", observers)[name]
            + counters(cluster, "replay", observers)[name]
            for name in observers
        }
        send(lab, cluster, old)
        after = wait_counters(cluster, ("duplicate", "replay"), before, len(old))
        print(f"replayed {len(old)} packets while n3 lives: duplicate+replay now {after}")

        # Replayed over and over after n3 crashed: n3 is still declared dead on time.
        replayer = send_in_background(lab, cluster, old, repeat=40, gap_ms=50)
        killed_at = cluster.kill("n3")
        seen = cluster.wait_states(observers, "n3", "dead", timeout_s=3)
        delays_ms = {name: round((at - killed_at) * 1000) for name, at in seen.items()}
        print(f"kill -9 n3 under replay: declared dead after {delays_ms} ms")
        for name, delay_ms in delays_ms.items():
            assert delay_ms <= cluster.deadtime_ms + SLACK_MS, (name, delay_ms)
        while replayer.poll() is None:
            for name in observers:
                assert cluster.states(name)["n3"] == "dead", f"replayed packets revived n3 on {name}"
            time.sleep(0.02)
        assert replayer.returncode == 0, replayer.stderr.read()

        # After a restart, packets of the old generation are replays.
        cluster.start("n3")
        cluster.wait_all_active(timeout_s=10)
        before = counters(cluster, "replay", observers)
        send(lab, cluster, old)
        after = wait_counters(cluster, ("replay",), before, len(old))
        print(f"old-generation packets after restart: replay {before} -> {after}")
        cluster.wait_all_active(timeout_s=1)


def test_hostile_sealed_replay_and_bad_tag_flood() -> None:
    """aes256gcm: captured packets replayed later are dropped and counted; a line-rate flood
    of packets with valid framing (magic, version, slot 1) but wrong tags kills nobody."""
    require_lab()
    with Lab("hacz", nodes=4) as lab, DaemonCluster(lab, nodes=3, method="aes256gcm") as cluster:
        keyring = KeyRing.single("aes256gcm", cluster.key.encode())
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        old = packets_from(capture(lab, cluster, 0.6), keyring, "n3")
        assert len(old) >= 3, f"captured only {len(old)} sealed status packets of n3"
        assert all(packet[:2] == SEALED_MAGIC for packet in old)
        observers = ["n1", "n2"]

        # Replayed while n3 lives: already seen, whatever the nonce.
        before = {
            name: counters(cluster, "duplicate", observers)[name]
            + counters(cluster, "replay", observers)[name]
            for name in observers
        }
        send(lab, cluster, old)
        wait_counters(cluster, ("duplicate", "replay"), before, len(old))

        # After n3 restarts (a new generation and a new session key), the old ones are replays.
        cluster.kill("n3")
        cluster.start("n3")
        cluster.wait_all_active(timeout_s=10)
        before = counters(cluster, "replay", observers)
        send(lab, cluster, old)
        after = wait_counters(cluster, ("replay",), before, len(old))
        print(f"sealed packets of the old generation: replay {before} -> {after}")

        # Valid framing, random session ids and ciphertext: every one a bad tag.
        flood_one(lab, cluster, "bad_auth", size=300, seed=11, prefix=SEALED_MAGIC + bytes([1, 1]))
