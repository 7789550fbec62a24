"""The key rotation protocol between real membership cores, without daemons or a network.

Each node is a real ``Membership`` plus a real ``KeyRotation`` working on a real authkeys
file in a temporary directory.  What a ``Daemon`` gives the rotation is stood in for by
``Node``: ``operate`` applies at once, ``execute`` hands every packet to the other nodes on
the next loop turn (so nothing recurses), and a node can be cut off to play a member that
does not answer.  The rounds, refusals, rollbacks and files are the real ones.
"""

from __future__ import annotations

import asyncio
import random
import stat
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hacluster.config.authkeys import parse_authkeys_text
from hacluster.core.codec import KeyRing
from hacluster.core.effects import KeyMessage, KeyMessageToSend, KeyringInstalled, PacketReceived, Send
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.membership import KEY_MESSAGE, Membership
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings
from hacluster.shell.ipc import ApiError
from hacluster.shell.keyrotation import KeyRotation

ETH0 = LinkName("bcast eth0")
NAMES = ("n1", "n2", "n3")
SECRET = "the-first-secret-0123456789abcdef"
AUTHKEYS = f"auth 1\n1 aes256gcm {SECRET}\n"


@dataclass
class Config:
    directory: Path
    nodes: tuple[str, ...]
    keyring: KeyRing

    def model_copy(self, update: dict[str, Any]) -> Config:
        return replace(self, **update)


@dataclass
class Core:
    membership: Membership


@dataclass
class View:
    """The part of ``shell/view.py``'s ``CoreView`` that key rotation reads."""

    membership: Membership

    def keyring(self) -> KeyRing:
        return self.membership.keyring

    def membership_state(self) -> str:
        return self.membership.state

    def members(self) -> tuple[NodeName, ...]:
        return self.membership.members()

    def peer_is_ours(self, node: NodeName) -> bool:
        return self.membership.peer_is_ours(node)


class Node:
    """What ``KeyRotation`` needs of a ``Daemon``, for one node of the bus."""

    def __init__(self, bus: Bus, name: str, directory: Path, text: str) -> None:
        self.bus = bus
        self.node = NodeName(name)
        directory.mkdir()
        path = directory / "authkeys"
        path.write_text(text)
        path.chmod(0o600)
        keyring = parse_authkeys_text(text)
        self.config = Config(directory, NAMES, keyring)
        settings = MembershipSettings(
            node=self.node,
            nodes=tuple(NodeName(n) for n in NAMES),
            links=(LinkSpec(name=ETH0, kind=LinkKind.BCAST, device="eth0"),),
            keyring=keyring,
            generation=1,
            keepalive_ms=100,
            deadtime_ms=10_000,
            warntime_ms=5_000,
            initdead_ms=20_000,
            session_id=name.encode().ljust(16, b"-"),
        )
        self.core = Core(Membership(settings, random.Random(name), 0))
        self.key_rotation = KeyRotation(self)  # type: ignore[arg-type]
        self.cut_off = False
        self.before_step: Callable[[str], None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def authkeys(self) -> Path:
        return self.config.directory / "authkeys"

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def operate(self, apply: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        return apply(self.bus.now_ms)

    def view(self) -> View:
        return View(self.core.membership)

    def submit(self, inp: KeyringInstalled | KeyMessageToSend, now_ms: int) -> None:
        """The core's handling of the two inputs key rotation feeds it (``core/node.py``)."""
        membership = self.core.membership
        if isinstance(inp, KeyringInstalled):
            self.execute(list(membership.set_keyring(inp.keyring, inp.reason, now_ms)))
        else:
            self.execute(list(membership.send_message(KEY_MESSAGE, inp.pairs, now_ms)))

    def execute(self, effects: list[object]) -> None:
        for effect in effects:
            if isinstance(effect, Send) and not self.cut_off:
                for other in self.bus.nodes.values():
                    if other is not self:
                        asyncio.get_running_loop().call_soon(other.receive, effect.data)

    def receive(self, data: bytes) -> None:
        if self.cut_off:
            return
        for effect in self.core.membership.handle(PacketReceived(ETH0, data), self.bus.now_ms):
            if isinstance(effect, KeyMessage):
                if self.before_step is not None:
                    self.before_step(effect.get("op") or "")
                self.key_rotation.on_message(effect)
            elif isinstance(effect, Send):
                self.execute([effect])


class Bus:
    def __init__(self, tmp_path: Path, texts: dict[str, str] | None = None) -> None:
        self.now_ms = 0
        self.nodes = {
            name: Node(self, name, tmp_path / name, (texts or {}).get(name, AUTHKEYS)) for name in NAMES
        }

    async def start(self) -> None:
        for node in self.nodes.values():
            node.execute(list(node.core.membership.start(0)))
        await self.settle()
        for node in self.nodes.values():
            assert node.core.membership.members() == NAMES, node.core.membership.members()

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)
        for node in self.nodes.values():
            if node.tasks:
                await asyncio.gather(*node.tasks)
        for _ in range(20):
            await asyncio.sleep(0)

    def files(self) -> dict[str, str]:
        return {name: node.authkeys.read_text() for name, node in self.nodes.items()}

    def running(self, name: str) -> tuple[int, list[int]]:
        keyring = self.nodes[name].core.membership.keyring
        return keyring.sign_index, sorted(keyring.keys)


async def rotate(bus: Bus, name: str = "n1", **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"method": "", "timeout_ms": 300, "force": False, "dry_run": False, **kwargs}
    try:
        return await bus.nodes[name].key_rotation.rotate(**args)
    finally:
        await bus.settle()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_rotation_gives_every_node_the_same_new_key_and_retires_the_old(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        answer = await rotate(bus)
        assert (answer["slot"], answer["retires"], answer["members"]) == (2, 1, list(NAMES))
        secrets = set()
        for name, node in bus.nodes.items():
            ring = parse_authkeys_text(node.authkeys.read_text())
            assert (ring.sign_index, sorted(ring.keys)) == (2, [2]), name
            assert stat.S_IMODE(node.authkeys.stat().st_mode) == 0o600
            assert SECRET not in node.authkeys.read_text()
            assert bus.running(name) == (2, [2])
            assert node.config.keyring.keys == ring.keys, "the daemon's config follows (hacrm report)"
            secrets.add(ring.keys[2].secret)
        assert len(secrets) == 1
        # The cluster still talks: another rotation goes through the new key.
        assert (await rotate(bus, "n3"))["slot"] == 1

    run(scenario())


def test_dry_run_and_preconditions_change_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        files = bus.files()
        dry = await rotate(bus, dry_run=True)
        assert dry == {
            "dry_run": True,
            "slot": 2,
            "method": "aes256gcm",
            "retires": 1,
            "members": list(NAMES),
            "locked_out": [],
        }
        with pytest.raises(ApiError, match="method 'sha1'"):
            await rotate(bus, method="sha1")
        assert bus.files() == files

    run(scenario())


def test_a_signing_only_key_is_not_a_channel_for_secrets(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path, dict.fromkeys(NAMES, "auth 1\n1 sha1 hmac-secret\n"))
        await bus.start()
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "CHANNEL_NOT_ENCRYPTED"

    run(scenario())


def test_silent_member_in_prepare_refuses_with_nothing_changed(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        files = bus.files()
        bus.nodes["n3"].cut_off = True
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "ROTATION_REFUSED"
        assert "n3 did not acknowledge prepare within 300 ms" in str(refusal.value)
        assert bus.files() == files
        assert all(bus.running(name) == (1, [1]) for name in NAMES)
        # n2 was told to forget it: a new rotation (from n2) goes through once n3 is back.
        bus.nodes["n3"].cut_off = False
        assert (await rotate(bus, "n2"))["slot"] == 2

    run(scenario())


def test_member_refusing_prepare_says_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        bus.nodes["n2"].authkeys.write_text(AUTHKEYS + "2 sha1 someone-edited-this\n")
        files = bus.files()
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "ROTATION_REFUSED"
        assert "n2:" in str(refusal.value)
        assert "differs from the keys in use" in str(refusal.value)
        assert bus.files() == files

    run(scenario())


def test_failed_add_is_rolled_back_everywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        files = bus.files()
        broken = "auth 1\n"  # n3's file is ruined between prepare and add

        def ruin(op: str) -> None:
            if op == "add":
                bus.nodes["n3"].authkeys.write_text(broken)

        bus.nodes["n3"].before_step = ruin
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "ROTATION_FAILED"
        assert "the new key was removed again everywhere" in str(refusal.value)
        assert bus.files() == {**files, "n3": broken}
        assert bus.running("n1") == (1, [1])
        assert bus.running("n2") == (1, [1])

    run(scenario())


def test_member_silent_at_switch_leaves_both_keys_accepted_everywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()

        def vanish(op: str) -> None:
            if op == "switch":
                bus.nodes["n3"].cut_off = True

        bus.nodes["n3"].before_step = vanish
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "ROTATION_INCOMPLETE"
        assert "nobody is cut off" in str(refusal.value)
        for name in NAMES:
            assert bus.running(name)[1] == [1, 2], f"{name} must accept both keys"

    run(scenario())


def test_absent_node_needs_force_and_is_then_locked_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        gone = bus.nodes.pop("n3")
        for node in bus.nodes.values():
            node.core.membership._peers[NodeName("n3")].state = "dead"  # as deadtime would
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert refusal.value.code == "NODES_NOT_MEMBERS"
        answer = await rotate(bus, force=True)
        assert answer["locked_out"] == ["n3"]
        assert gone.authkeys.read_text() == AUTHKEYS

    run(scenario())


def test_one_rotation_at_a_time_per_member(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = Bus(tmp_path)
        await bus.start()
        rotation = bus.nodes["n2"].key_rotation
        ok, _ = await rotation.apply_step(
            "prepare", "other", "n2", {"slot": "2", "old": "1", "method": "aes256gcm"}
        )
        assert ok
        with pytest.raises(ApiError) as refusal:
            await rotate(bus)
        assert "n2 takes part in rotation other from n2 already" in str(refusal.value)

    run(scenario())
