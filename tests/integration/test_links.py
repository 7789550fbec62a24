"""The transport links against real sockets, ptys and network namespaces.

UDP links in a namespace lab run in a small agent process per node (this file run as a
script, see ``agent_main``), because a socket belongs to the namespace of the process that
made it; the test talks to each agent over JSON lines.  Loopback and serial tests run the
links in-process with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.core.codec import KeyRing, Message, decode, encode, encode_classic
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.settings import LinkKind, LinkSpec, PingNode
from hacluster.shell.links import Link, LinkOpenError, PingLink, make_link
from hacluster.shell.links.serial import MAX_FRAME_BYTES

REPO = Path(__file__).resolve().parents[2]
KEYRING = KeyRing.single("sha1", b"links test secret")
QUIET_S = 0.5
"""How long we listen to conclude that nothing (more) arrives."""

lab_test = [pytest.mark.root, pytest.mark.integration]


def status_message(seq: int, filler: str = "") -> Message:
    fields: list[tuple[str, str]] = [("t", "status"), ("st", "active"), ("src", "n1"), ("seq", str(seq))]
    if filler:
        fields.append(("filler", filler))
    return Message.of(*fields)


# --- the agent: runs links inside a namespace ------------------------------------------------


def _spec_from_json(raw: dict[str, Any]) -> LinkSpec:
    return LinkSpec(
        name=LinkName(raw["name"]),
        kind=LinkKind(raw["kind"]),
        device=raw["device"],
        targets=tuple(raw.get("targets", ())),
        port=raw.get("port", 694),
        ttl=raw.get("ttl", 1),
        loop=raw.get("loop", False),
        bind_address=raw.get("bind_address", ""),
    )


async def _agent(config: dict[str, Any]) -> None:
    def emit(**event: Any) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    links: list[Link] = [make_link(_spec_from_json(raw)) for raw in config.get("links", [])]
    for link in links:
        await link.open(lambda name, data: emit(event="recv", link=name, data=data.hex()))
    ping: PingLink | None = None
    if "ping" in config:
        nodes = tuple(PingNode(NodeName(n), tuple(a)) for n, a in config["ping"]["nodes"].items())
        ping = PingLink(
            nodes,
            lambda node, address: emit(event="reply", node=node, address=address),
            raw=config["ping"].get("raw"),
        )
        await ping.open()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit(event="ready")
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "send":
            data = bytes.fromhex(command["data"])
            for link in links:
                link.send(data, b"")
        elif command["cmd"] == "ping":
            assert ping is not None
            ping.send_pings()
        elif command["cmd"] == "stats":
            emit(
                event="stats",
                links={link.name: dataclasses.asdict(link.statistics()) for link in links},
                ping=dataclasses.asdict(ping.statistics()) if ping else None,
            )
        elif command["cmd"] == "close":
            break
    for link in links:
        await link.close()
    if ping is not None:
        await ping.close()
    emit(event="closed")


def agent_main(argv: list[str]) -> None:
    asyncio.run(_agent(json.loads(argv[0])))


class Agent:
    """The test's handle on one agent process: send commands, wait for events."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.unexpected: list[dict[str, Any]] = []
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.expect("ready", timeout_s=20)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in self.proc.stdout:
                self.events.put(json.loads(line))
        self.events.put({"event": "eof"})

    def command(self, cmd: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()

    def send(self, data: bytes) -> None:
        self.command("send", data=data.hex())

    def expect(self, event: str, timeout_s: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                got = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {event!r} event within {timeout_s}s") from None
            if got["event"] == event:
                return got
            assert got["event"] not in ("eof", "closed"), f"agent ended while waiting for {event}"
            self.unexpected.append(got)

    def drain(self, duration_s: float = QUIET_S) -> list[dict[str, Any]]:
        """Every event that arrives within ``duration_s`` (plus any left unread before)."""
        got, self.unexpected = self.unexpected, []
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                got.append(self.events.get(timeout=left))
        return got

    def received(self, count: int = 0, timeout_s: float = 5) -> list[bytes]:
        """Payloads received: waits up to ``timeout_s`` for ``count`` of them, then stays
        ``QUIET_S`` longer so that an extra one would show up too."""
        events, self.unexpected = self.unexpected, []
        deadline = time.monotonic() + timeout_s
        while sum(e["event"] == "recv" for e in events) < count:
            try:
                events.append(self.events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        events += self.drain(QUIET_S)
        return [bytes.fromhex(e["data"]) for e in events if e["event"] == "recv"]

    def stats(self) -> dict[str, Any]:
        self.command("stats")
        return self.expect("stats")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.command("close")
            self.expect("closed", timeout_s=10)
        self.proc.wait(timeout=10)
        self._thread.join(timeout=10)


@contextlib.contextmanager
def lab_agents(configs: dict[int, dict[str, Any]]) -> Iterator[tuple[Any, dict[int, Agent]]]:
    """A two-node lab with one agent per node, configured by ``configs[node](lab)``."""
    from netns import Lab, namespaces

    with Lab("hal", nodes=2) as lab:
        names = {lab.switch, *lab.node_namespaces.values()}
        agents: dict[int, Agent] = {}
        try:
            for i, make in configs.items():
                config = make(lab) if callable(make) else make
                proc = lab.run(
                    i,
                    [sys.executable, str(Path(__file__)), json.dumps(config)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )
                agents[i] = Agent(proc)
            yield lab, agents
        finally:
            for agent in agents.values():
                with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                    agent.close()
    assert not names & namespaces(), "lab namespaces left behind"


def _udp(kind: str, lab_i: int, **extra: Any) -> Callable[[Any], dict[str, Any]]:
    def make(lab: Any) -> dict[str, Any]:
        fields = dict(extra)
        targets = fields.pop("targets_fn", lambda lab: [])(lab)
        return {
            "links": [
                {
                    "name": f"{kind} e{lab_i}",
                    "kind": kind,
                    "device": lab.iface(lab_i),
                    "targets": targets,
                    **fields,
                }
            ]
        }

    return make


# --- UDP in namespaces -------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.integration
def test_bcast_between_namespaces_and_cable_pull() -> None:
    packet = encode(status_message(1), KEYRING)
    with lab_agents({1: _udp("bcast", 1), 2: _udp("bcast", 2)}) as (lab, agents):
        agents[1].send(packet)
        assert agents[2].received(1) == [packet]
        # Like Heartbeat (reference §1), the sender hears its own broadcast; the core drops it.
        assert agents[1].received(1) == [packet]
        assert decode(packet, KEYRING).get("seq") == "1"

        lab.set_link(2, up=False)
        agents[1].send(b"lost while unplugged")
        assert agents[2].received() == []
        lab.set_link(2, up=True)
        lab.wait_for_carrier(2, up=True)
        agents[1].send(b"after replug")
        assert agents[2].received(1) == [b"after replug"]

        stats = agents[1].stats()["links"]["bcast e1"]
        assert stats["sent"] == 3
        assert stats["send_errors"] == 0
        assert agents[2].stats()["links"]["bcast e2"]["received"] == 2


@pytest.mark.root
@pytest.mark.integration
def test_mcast_between_namespaces_without_loop() -> None:
    group = f"239.255.{secrets.randbelow(250) + 1}.7"
    link = {"targets_fn": lambda lab: [group], "ttl": 1, "loop": False}
    packet = encode(status_message(2), KEYRING)
    with lab_agents({1: _udp("mcast", 1, **link), 2: _udp("mcast", 2, **link)}) as (_, agents):
        agents[1].send(packet)
        assert agents[2].received(1) == [packet]
        assert agents[1].received() == [], "loop=0: the sender must not hear itself"
        agents[2].send(b"back")
        assert agents[1].received(1) == [b"back"]


@pytest.mark.root
@pytest.mark.integration
def test_ucast_between_namespaces_skips_own_address() -> None:
    def both(lab: Any) -> list[str]:
        return [lab.address(1), lab.address(2)]  # one shared ha.cf lists every node

    packet = encode(status_message(3), KEYRING)
    with lab_agents({1: _udp("ucast", 1, targets_fn=both), 2: _udp("ucast", 2, targets_fn=both)}) as (
        _,
        agents,
    ):
        agents[1].send(packet)
        assert agents[2].received(1) == [packet]
        assert agents[1].received() == []
        stats = agents[1].stats()["links"]["ucast e1"]
        assert stats["sent"] == 1, "the packet went to the peer only, not to ourselves"


@pytest.mark.root
@pytest.mark.integration
def test_ping_node_answers_and_unused_address_does_not() -> None:
    def pinger(raw: bool | None) -> Callable[[Any], dict[str, Any]]:
        def make(lab: Any) -> dict[str, Any]:
            if raw is False:
                # Ping sockets need the group in range; the sysctl is per namespace.
                done = lab.exec(1, ["sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"])
                assert done.returncode == 0, done.stderr
            nodes = {"router": [lab.address(2)], "ghost": [lab.address(99)]}
            return {"ping": {"nodes": nodes, "raw": raw}}

        return make

    for raw in (None, False):
        with lab_agents({1: pinger(raw)}) as (lab, agents):
            agents[1].command("ping")
            reply = agents[1].expect("reply", timeout_s=3)
            assert reply == {"event": "reply", "node": "router", "address": lab.address(2)}
            later = agents[1].drain(1.5)
            assert [e for e in later if e["event"] == "reply"] == [], "the unused address answered"
            stats = agents[1].stats()["ping"]
            assert stats["raw_socket"] is (raw is None), "root gets a raw socket unless told not to"
            assert stats["sent"] == 2
            assert stats["replies"] == 1
            assert stats["outstanding"] == 1


# --- UDP over loopback, no root ---------------------------------------------------------------


def _free_port(*addresses: str) -> int:
    for _ in range(50):
        port = 20_000 + secrets.randbelow(40_000)
        try:
            for address in addresses:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return port
    raise AssertionError("no free UDP port on loopback")


async def _wait_until(predicate: Callable[[], bool], timeout_s: float = 3) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_ucast_over_loopback_with_bind_addresses() -> None:
    port = _free_port("127.0.0.2", "127.0.0.3")
    targets = ("127.0.0.2", "127.0.0.3")

    def spec(address: str) -> LinkSpec:
        return LinkSpec(LinkName("ucast lo"), LinkKind.UCAST, "lo", targets, port=port, bind_address=address)

    async def scenario() -> None:
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        a, b = make_link(spec("127.0.0.2")), make_link(spec("127.0.0.3"))
        await a.open(lambda name, data: got["a"].append(data))
        await b.open(lambda name, data: got["b"].append(data))
        try:
            packet = encode(status_message(4), KEYRING)
            a.send(packet, b"")
            b.send(b"reply", b"")
            await _wait_until(lambda: got["b"] and got["a"])
            await asyncio.sleep(0.2)
            assert got == {"a": [b"reply"], "b": [packet]}
            assert a.statistics().sent == 1
            assert b.statistics().received == 1
            a.send(b"x" * 70_000, b"")
            assert a.statistics().oversize == 1
            assert a.statistics().last_error is not None
        finally:
            await a.close()
            await b.close()
            await a.close()  # twice is harmless
        a.send(b"after close", b"")
        assert a.statistics().send_errors == 2

    asyncio.run(scenario())


def test_open_on_missing_interface_says_what_to_fix() -> None:
    spec = LinkSpec(LinkName("bcast nosuch0"), LinkKind.BCAST, "nosuch0", port=_free_port("0.0.0.0"))

    async def scenario() -> None:
        link = make_link(spec)
        with pytest.raises(LinkOpenError, match="nosuch0"):
            await link.open(lambda name, data: None)

    asyncio.run(scenario())


# --- serial over a socat pty pair -------------------------------------------------------------


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    if shutil.which("socat") is None:
        pytest.skip("needs socat for a pty pair (apt-get install socat)")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = f"{tmp}/a", f"{tmp}/b"
        proc = subprocess.Popen(
            ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not (os.path.exists(a) and os.path.exists(b)):
                assert proc.poll() is None, "socat exited"
                assert time.monotonic() < deadline, "socat made no ptys"
                time.sleep(0.02)
            yield a, b
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _serial(device: str) -> Link:
    return make_link(LinkSpec(LinkName(f"serial {device}"), LinkKind.SERIAL, device))


@pytest.mark.integration
def test_serial_link_to_link_delivers_whole_authentic_frames(pty_pair: tuple[str, str]) -> None:
    async def scenario() -> None:
        got: list[bytes] = []
        a, b = _serial(pty_pair[0]), _serial(pty_pair[1])
        await a.open(lambda name, data: None)
        await b.open(lambda name, data: got.append(data))
        try:
            small = encode_classic(status_message(5), KEYRING)
            big = encode_classic(status_message(6, filler="y" * 5000), KEYRING)  # ten 512-byte chunks
            a.send(b"netstring is ignored on serial", small)
            a.send(b"", big)
            await _wait_until(lambda: len(got) == 2)
            assert got == [small[:-1], big[:-1]], "delivered as framed, minus the NUL terminator"
            assert decode(got[1], KEYRING).get("seq") == "6"
            assert a.statistics().sent == 2
            assert b.statistics().received == 2
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_serial_reader_resynchronises_on_noise_splits_and_oversize(pty_pair: tuple[str, str]) -> None:
    frame = encode_classic(status_message(7), KEYRING)[:-1]

    async def scenario() -> None:
        got: list[bytes] = []
        link = _serial(pty_pair[0])
        await link.open(lambda name, data: got.append(data))
        peer = os.open(pty_pair[1], os.O_RDWR | os.O_NOCTTY)
        try:
            # Line noise, then a frame in three writes split mid-line.
            for piece in (b"\x00garbage\nmore>>> noise\n" + frame[:10], frame[10:30], frame[30:] + b"\0"):
                os.write(peer, piece)
                await asyncio.sleep(0.05)
            await _wait_until(lambda: len(got) == 1)
            assert got == [frame]

            # CR line ends and set 8th bits are undone, as ISTRIP and IGNCR would.
            noisy = bytes(c | 0x80 if c in b"st" else c for c in frame).replace(b"\n", b"\r\n")
            os.write(peer, noisy)
            await _wait_until(lambda: len(got) == 2)
            assert got[1] == frame
            assert decode(got[1], KEYRING).get("seq") == "7"

            # An oversize frame is dropped and counted; the next frame still arrives.
            line = b"x" * 1000 + b"\n"
            oversize = b">>>\n" + line * (MAX_FRAME_BYTES // len(line) + 2) + b"<<<\n"
            view = memoryview(oversize + frame)
            os.set_blocking(peer, False)  # a full pty must not block the loop the reader runs in
            while view:
                try:
                    view = view[os.write(peer, view[:4096]) :]
                except BlockingIOError:
                    await asyncio.sleep(0.005)
                    continue
                await asyncio.sleep(0)
            os.set_blocking(peer, True)
            await _wait_until(lambda: len(got) == 3)
            await asyncio.sleep(0.1)
            assert got[2] == frame
            stats = link.statistics()
            assert stats.oversize == 1
            assert stats.received == 3
        finally:
            os.close(peer)
            await link.close()

    asyncio.run(scenario())


if __name__ == "__main__":
    agent_main(sys.argv[1:])
