"""Encrypted clusters end to end: real daemons in namespaces, a sniffer, key rotations.

- aes256gcm over bcast and ucast, chacha20poly1305 over bcast: every node active; tcpdump on
  the bridge records every cluster packet while the nodes join and exchange their resource
  configuration, and none of them holds a node name, a field name, a resource name or a
  configuration word; each one is a sealed packet that decrypts with the cluster's key;
- rotation by hand (add key 2 everywhere, switch ``auth 2`` everywhere, remove key 1
  everywhere, one node and one SIGHUP at a time) with every node's view polled every 10 ms:
  nobody is ever seen dead, no packet is refused;
- ``hacrm cluster rotate-key``: the new key lands in every node's authkeys (0600, one key,
  the same fingerprint everywhere) and in use, nobody seen dead; with one member frozen
  (SIGSTOP, long deadtime so it stays a member) the command is refused and nothing changed
  on any node, in the files or in memory, even after the member wakes up;
- a node that holds only the retired key (it was down during a forced rotation) is never
  admitted: its packets are dropped as ``unknown_key``.

Node names are long and made up so that finding one in ciphertext by chance is out of the
question (a 9-byte string turns up at random about once in 2**72 positions).
"""

from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from daemons import REPO, DaemonCluster, dropped, require_lab, require_tools
from netns import Lab

from hacluster.cli.client import CliError, request
from hacluster.core.codec import SEALED_MAGIC, KeyRing, decode

pytestmark = [pytest.mark.root, pytest.mark.integration]

NAMES = ["alphanode", "bravonode", "charlienode"]
RESOURCE = "vaultwidget"
RESOURCES_CRM = f"""\
primitive {RESOURCE} ocf:hacluster:Dummy op monitor interval=2s timeout=20s
property stonith-enabled=false
"""
PLAINTEXT = [
    *(name.encode() for name in NAMES),
    RESOURCE.encode(),
    b"linux-ha",
    b"status",
    b"active",
    b"protocol",
    b"src=",
    b"(0)t=",
    b"hac_",
    b"primitive",
    b"Dummy",
    b"stonith",
    b"monitor",
]
"""Byte strings that would give away a name, a field or the configuration, at least 4 long."""


def write_authkeys(cluster: DaemonCluster, name: str, text: str) -> Path:
    path = cluster.node_dir(name) / "authkeys"
    path.write_text(text)
    path.chmod(0o600)
    return path


def keys_of(cluster: DaemonCluster, name: str) -> dict[str, Any]:
    return request(str(cluster.socket_path(name)), "cluster_keys")


@contextmanager
def tcpdump(lab: Lab, port: int, out: Path) -> Iterator[None]:
    """Record every UDP datagram of ``port`` on the lab's bridge, in the switch namespace."""
    require_tools("tcpdump")
    argv = ["ip", "netns", "exec", lab.switch, "tcpdump", "-i", "br0", "-U", "-n", "-s", "0"]
    argv += ["-w", str(out), "udp", "port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert b"listening on" in line, line
        yield
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def udp_payloads(pcap: Path) -> list[bytes]:
    """The UDP payloads of an Ethernet pcap file (IPv4 and IPv6)."""
    data = pcap.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    assert struct.unpack_from(endian + "I", data, 20)[0] == 1, "not an Ethernet capture"
    payloads, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0800:
            ip = frame[14:]
            udp = ip[(ip[0] & 0x0F) * 4 :]
        elif ethertype == 0x86DD:
            udp = frame[14 + 40 :]
        else:
            continue
        payloads.append(udp[8:])
    return payloads


class DeathWatch:
    """Polls every daemon's view every 10 ms in a thread; remembers any node seen dead."""

    def __init__(self, cluster: DaemonCluster, names: list[str]) -> None:
        self.cluster = cluster
        self.names = names
        self.seen: list[tuple[str, str, str]] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DeathWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for observer in self.names:
                for node, state in self.cluster.states(observer).items():
                    if node in self.names and state != "active":
                        self.seen.append((observer, node, state))
            self.polls += 1
            time.sleep(0.01)


def refused(cluster: DaemonCluster, names: list[str]) -> dict[str, int]:
    out = {}
    for name in names:
        doc = cluster.status(name)
        assert doc is not None
        out[name] = dropped(doc, "bad_auth") + dropped(doc, "unknown_key")
    return out


@pytest.mark.parametrize(
    ("media", "method"),
    [("bcast", "aes256gcm"), ("ucast", "aes256gcm"), ("bcast", "chacha20poly1305")],
)
def test_encrypted_cluster_sends_nothing_readable(media: str, method: str, tmp_path: Path) -> None:
    require_lab()
    with (
        Lab("hace", nodes=3) as lab,
        DaemonCluster(lab, names=NAMES, media=media, method=method) as cluster,
    ):
        for name in NAMES:
            (cluster.node_dir(name) / "resources.crm").write_text(RESOURCES_CRM)
        pcap = tmp_path / "cluster.pcap"
        with tcpdump(lab, cluster.port, pcap):
            cluster.start_all()
            cluster.wait_all_active(timeout_s=10)
            # A configuration change travels in hac_cfg, with the resource's name inside.
            request(str(cluster.socket_path(NAMES[0])), "resource_stop", resource=RESOURCE)
            time.sleep(1.0)
        payloads = udp_payloads(pcap)
        assert len(payloads) > 30, f"only {len(payloads)} cluster packets captured"
        keyring = KeyRing.single(method, cluster.key.encode())
        types: set[str] = set()
        for payload in payloads:
            assert payload[:2] == SEALED_MAGIC, payload[:32]
            for word in PLAINTEXT:
                assert word not in payload, f"{word!r} readable in a {len(payload)}-byte packet"
            message = decode(payload, keyring)
            types.add(message.get("t") or "")
            if message.get("t") == "hac_cfg":
                assert RESOURCE.encode() in b"".join(f.value for f in message.fields)
        assert {"status", "hac_cfg", "hac_state"} <= types, types
        print(f"{media} {method}: {len(payloads)} packets, all sealed, types {sorted(types)}")
        for name in NAMES:
            keys = keys_of(cluster, name)
            assert keys["keys"] == keys["file_keys"]
            assert [(k["slot"], k["method"], k["sending"]) for k in keys["keys"]] == [(1, method, True)]


def test_key_rotation_by_sighup_never_declares_anyone_dead() -> None:
    require_lab()
    with Lab("hack", nodes=3) as lab, DaemonCluster(lab, method="aes256gcm") as cluster:
        names = cluster.daemon_names
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        before = refused(cluster, names)
        old = f"1 aes256gcm {cluster.key}\n"
        new = f"2 chacha20poly1305 {os.urandom(24).hex()}\n"
        steps = [
            ("add key 2", "auth 1\n" + old + new, 1, {1, 2}),
            ("switch to key 2", "auth 2\n" + old + new, 2, {1, 2}),
            ("remove key 1", "auth 2\n" + new, 2, {2}),
        ]
        with DeathWatch(cluster, names) as watch:
            for what, text, sending, slots in steps:
                for name in names:
                    write_authkeys(cluster, name, text)
                    cluster.signal(name, signal.SIGHUP)
                    cluster.wait_for(
                        f"{name} to apply '{what}'",
                        lambda name=name, sending=sending, slots=slots: (
                            (k := keys_of(cluster, name))["sending_slot"] == sending
                            and {key["slot"] for key in k["keys"]} == slots
                        ),
                        timeout_s=5,
                    )
                    time.sleep(3 * cluster.keepalive_ms / 1000)
                print(f"{what}: applied on {', '.join(names)}")
            time.sleep(2 * cluster.deadtime_ms / 1000)
        assert watch.polls > 100, watch.polls
        assert not watch.seen, f"seen not active during the rotation: {watch.seen[:5]}"
        assert refused(cluster, names) == before, "a packet was refused during the rotation"
        for name in names:
            assert "KEYS_APPLIED" in cluster.log(name)


def hacrm(cluster: DaemonCluster, name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hacluster.cli.main", "--socket", str(cluster.socket_path(name)), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def rotate(cluster: DaemonCluster, name: str, **args: Any) -> dict[str, Any]:
    return request(str(cluster.socket_path(name)), "cluster_rotate_key", timeout_s=60, **args)


def authkeys_files(cluster: DaemonCluster) -> dict[str, bytes]:
    return {name: (cluster.node_dir(name) / "authkeys").read_bytes() for name in cluster.daemon_names}


def test_rotate_key_command_switches_every_node() -> None:
    require_lab()
    with Lab("hacr", nodes=3) as lab, DaemonCluster(lab, method="aes256gcm") as cluster:
        names = cluster.daemon_names
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        dry = rotate(cluster, "n1", dry_run=True)
        assert dry["dry_run"] is True
        assert authkeys_files(cluster) == {
            name: f"auth 1\n1 aes256gcm {cluster.key}\n".encode() for name in names
        }
        with DeathWatch(cluster, names) as watch:
            answer = rotate(cluster, "n1")
            time.sleep(2 * cluster.deadtime_ms / 1000)
        print(f"rotate-key: {answer}")
        assert answer["slot"] == 2
        assert answer["retires"] == 1
        assert answer["members"] == names
        assert not watch.seen, f"seen not active during rotate-key: {watch.seen[:5]}"
        fingerprints = set()
        for name in names:
            path = cluster.node_dir(name) / "authkeys"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert cluster.key not in path.read_text(), f"{name} still holds the retired key"
            keys = keys_of(cluster, name)
            assert keys["keys"] == keys["file_keys"], f"{name} runs other keys than its file holds"
            assert [(k["slot"], k["method"], k["sending"]) for k in keys["keys"]] == [(2, "aes256gcm", True)]
            fingerprints.add(keys["keys"][0]["fingerprint"])
            assert answer["rotation"] in cluster.log(name)
        assert len(fingerprints) == 1, fingerprints
        # The CLI says what it would do, does it (a second rotation, from n2), and shows the keys.
        dry = hacrm(cluster, "n2", "cluster", "rotate-key", "--dry-run")
        assert (
            dry
            == "dry run: would add key 1 (aes256gcm) on n1, n2, n3, switch to it and retire key 2; nothing changed\n"
        )
        done = hacrm(cluster, "n2", "cluster", "rotate-key", "--method", "chacha20poly1305")
        assert "key 1 (chacha20poly1305) is in use on n1, n2, n3; key 2 is retired" in done, done
        shown = hacrm(cluster, "n3", "cluster", "keys")
        fingerprint = keys_of(cluster, "n3")["keys"][0]["fingerprint"]
        assert (
            shown
            == f"n3: sending with key 1\n  slot  1  chacha20poly1305  encrypts, sending  fingerprint {fingerprint}\n"
        )
        cluster.wait_all_active(timeout_s=2)


def test_rotate_key_refused_when_a_member_does_not_answer() -> None:
    require_lab()
    # A long deadtime keeps the frozen node a member while it cannot answer.
    with (
        Lab("hacq", nodes=3) as lab,
        DaemonCluster(lab, method="chacha20poly1305", keepalive_ms=500, deadtime_ms=10_000) as cluster,
    ):
        names = cluster.daemon_names
        cluster.start_all()
        cluster.wait_all_active(timeout_s=15)
        files = authkeys_files(cluster)
        running = {name: keys_of(cluster, name)["keys"] for name in names}
        frozen = cluster.pid("n3")
        os.kill(frozen, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(CliError) as refusal:
                rotate(cluster, "n1", timeout_ms=1500)
            took = time.monotonic() - started
        finally:
            os.kill(frozen, signal.SIGCONT)
        print(f"refused after {took:.1f} s: [{refusal.value.code}] {refusal.value}")
        assert refusal.value.code == "ROTATION_REFUSED"
        assert "n3 did not acknowledge prepare" in str(refusal.value)
        assert "nothing was changed on any node" in str(refusal.value)
        # n3 now reads the queued prepare and abort; nothing may change, now or later.
        time.sleep(2)
        assert authkeys_files(cluster) == files
        for name in names:
            assert keys_of(cluster, name)["keys"] == running[name], name
        cluster.wait_all_active(timeout_s=5)
        # Another rotation is possible afterwards: n3 is no longer holding a pending one.
        answer = rotate(cluster, "n2")
        assert answer["slot"] == 2
        cluster.wait_all_active(timeout_s=5)


def test_node_with_only_the_retired_key_is_never_admitted() -> None:
    require_lab()
    with Lab("hacx", nodes=3) as lab, DaemonCluster(lab, method="aes256gcm") as cluster:
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        cluster.kill("n3")
        cluster.wait_states(["n1", "n2"], "n3", "dead", timeout_s=3)
        with pytest.raises(CliError) as refusal:
            rotate(cluster, "n1")
        assert refusal.value.code == "NODES_NOT_MEMBERS", refusal.value
        answer = rotate(cluster, "n1", force=True)
        assert answer["locked_out"] == ["n3"]
        before = refused(cluster, ["n1", "n2"])
        cluster.start("n3")  # its authkeys still holds only key 1
        started = time.monotonic()
        while time.monotonic() - started < 4 * cluster.deadtime_ms / 1000 + 1:
            for observer in ("n1", "n2"):
                assert cluster.states(observer)["n3"] == "dead", f"{observer} admitted n3"
            assert cluster.states("n3").get("n1") != "active", "n3 reads n1's packets"
            time.sleep(0.02)
        after = refused(cluster, ["n1", "n2"])
        assert all(after[name] - before[name] >= 10 for name in before), (before, after)
        assert cluster.states("n1")["n2"] == "active"
