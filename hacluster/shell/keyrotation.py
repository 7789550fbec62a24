"""Cluster key rotation: ``hacrm cluster rotate-key`` and every member's part in it.

Theory of operation
-------------------
One node, the *coordinator* (where the command runs), generates a new secret and takes the
members through four rounds.  A round is one ``hac_key`` message to every member over the
cluster's own, already encrypted channel, and an acknowledgement from each; the next round
starts only when every member acknowledged the last one:

1. ``prepare``: each member checks it can take the new key (no other rotation under way,
   it sends with the same key as the coordinator, its authkeys parses, matches the keys it
   runs with, has the new slot free, and its directory is writable).  Nothing is written.
   One refusal, or one member silent for ``timeout_ms``, and the coordinator sends
   ``abort`` and refuses: nothing has changed on any node.
2. ``add`` (the secret travels here, and only here): each member appends the key line to
   its authkeys (mode 0600, written to a temporary file, fsync'ed, renamed, directory
   fsync'ed) and starts *accepting* the new key; it still sends with the old one.  If one
   member fails, the others are told to ``rollback`` (drop the new line again).
3. ``switch``: each member changes ``auth`` to the new slot and sends with the new key.
   Every member accepts it already (round 2), so no heartbeat is dropped.
4. ``retire``: each member drops the old key line.  Every member sends with the new key
   already (round 3), so nothing anybody still sends is refused.

A round that is not fully acknowledged stops the rotation where it is.  After round 2 that
is always safe to leave: each member accepts every key any member sends with, so no node
is declared dead; the answer says what was done where and how to finish by hand.

A node that is not a member while this runs keeps only the old key.  After round 4 nobody
accepts that key, so that node is never admitted again until its authkeys is replaced: the
way to lock out a lost or stolen node, and the reason the command refuses, unless
``force``, while a configured node is not a member.

Secrets never reach a log line; the answer and the history name slots and methods only.
File I/O runs in worker threads; the core is only changed through ``Daemon.operate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hacluster.config.authkeys import (
    ROTATION_NOTE,
    AuthkeysEditError,
    parse_authkeys_text,
    with_key_added,
    with_key_removed,
    with_signing_slot,
)
from hacluster.core.codec import AEAD_METHODS, KeyRing
from hacluster.core.effects import KeyMessage, KeyMessageToSend, KeyringInstalled
from hacluster.core.ids import NodeName
from hacluster.shell.ipc import ApiError

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

logger = logging.getLogger(__name__)

TIMEOUT_MS_DEFAULT: Final = 5_000
"""How long the coordinator waits for every member's acknowledgement of one round."""
PENDING_TTL_MS: Final = 120_000
"""A member forgets a rotation that made no progress for this long (its coordinator died)."""
SECRET_BYTES: Final = 32
ROUNDS: Final = ("prepare", "add", "switch", "retire")


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(slots=True)
class _Pending:
    """A rotation this node takes part in (as member or coordinator)."""

    rotation: str
    coordinator: str
    slot: int
    method: str
    old: int
    done: list[str] = field(default_factory=list)
    """Rounds applied here, in order."""
    touched_ms: int = field(default_factory=_now_ms)


@dataclass(slots=True)
class _Round:
    """Acknowledgements the coordinator collects for one round."""

    expected: frozenset[str]
    answers: dict[str, tuple[bool, str]] = field(default_factory=dict)
    complete: asyncio.Event = field(default_factory=asyncio.Event)


def key_fingerprint(keyring: KeyRing, slot: int) -> str:
    """12 hex digits that tell whether two nodes hold the same key, without showing it."""
    import hashlib

    key = keyring.keys[slot]
    return hashlib.sha256(b"hacluster/v1/fingerprint/" + key.method.encode() + b"/" + key.secret).hexdigest()[
        :12
    ]


def describe_keys(keyring: KeyRing) -> list[dict[str, Any]]:
    return [
        {
            "slot": key.index,
            "method": key.method,
            "sending": key.index == keyring.sign_index,
            "encrypts": key.encrypts,
            "fingerprint": key_fingerprint(keyring, key.index),
        }
        for key in sorted(keyring.keys.values(), key=lambda k: k.index)
    ]


def _same_keys(a: KeyRing, b: KeyRing) -> bool:
    def shape(keyring: KeyRing) -> tuple[int, list[tuple[int, str, bytes]]]:
        keys = sorted((k.index, k.method, k.secret) for k in keyring.keys.values())
        return keyring.sign_index, keys

    return shape(a) == shape(b)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a 0600 temporary file, fsync, rename, fsync the directory.

    A crash at any moment leaves either the old file or the new one, never a mix.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, text.encode("utf-8", "surrogateescape"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            status = path.stat()
            os.chown(tmp, status.st_uid, status.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class KeyRotation:
    """Both sides of the rotation protocol for one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._lock = asyncio.Lock()
        """One authkeys edit at a time on this node."""
        self._pending: _Pending | None = None
        self._rounds: dict[tuple[str, str], _Round] = {}
        self._coordinating = False

    @property
    def path(self) -> Path:
        return Path(self._daemon.config.directory) / "authkeys"

    # --- what arrives from the cluster --------------------------------------------------------

    def on_message(self, message: KeyMessage) -> None:
        """Called by the driver for every authentic, new ``hac_key`` message (never blocks)."""
        op = message.get("op") or ""
        rotation = message.get("rotation") or ""
        if op == "ack":
            self._on_ack(message, rotation)
            return
        if op not in (*ROUNDS, "rollback", "abort") or not rotation:
            logger.warning("key rotation message ignored src=%s op=%s reason=unknown", message.src, op)
            return
        self._daemon.spawn(self._member_step(message, op, rotation))

    def _on_ack(self, message: KeyMessage, rotation: str) -> None:
        step = message.get("step") or ""
        pending = self._rounds.get((rotation, step))
        if pending is None or message.src not in pending.expected:
            return
        pending.answers[message.src] = (message.get("ok") == "1", message.get("reason") or "")
        if set(pending.answers) >= pending.expected:
            pending.complete.set()

    async def _member_step(self, message: KeyMessage, op: str, rotation: str) -> None:
        try:
            ok, reason = await self.apply_step(op, rotation, message.src, dict(message.fields))
        except Exception as exc:  # a bug here must not take the daemon down; say so loudly
            logger.exception("key rotation step failed op=%s rotation=%s", op, rotation)
            ok, reason = False, f"internal error: {type(exc).__name__}"
        if op == "abort":
            return
        await self._send(
            (
                ("op", "ack"),
                ("rotation", rotation),
                ("step", op),
                ("ok", "1" if ok else "0"),
                ("reason", reason),
                ("dest", message.src),
            )
        )

    # --- one step, on this node ---------------------------------------------------------------

    async def apply_step(
        self, op: str, rotation: str, coordinator: str, fields: Mapping[str, str]
    ) -> tuple[bool, str]:
        """Apply one round here; (acknowledged, reason when not).  Used by both sides."""
        async with self._lock:
            pending = self._pending
            if pending is not None and _now_ms() - pending.touched_ms > PENDING_TTL_MS:
                logger.warning("key rotation forgotten rotation=%s reason=no progress", pending.rotation)
                self._pending = pending = None
            if op == "prepare":
                return await self._prepare(rotation, coordinator, fields)
            if pending is None or pending.rotation != rotation or pending.coordinator != coordinator:
                if op in ("abort", "rollback"):
                    return True, ""
                return False, f"{self._daemon.node} knows no rotation {rotation} (restarted meanwhile?)"
            pending.touched_ms = _now_ms()
            if op == "abort":
                self._pending = None
                logger.info("key rotation aborted rotation=%s coordinator=%s", rotation, coordinator)
                return True, ""
            if op == "add":
                secret = fields.get("secret") or ""
                if len(secret) < 2 * SECRET_BYTES or not secret.isalnum():
                    return False, "the add message carries no usable secret"
                note = f"{ROTATION_NOTE} (rotation {rotation} from {coordinator})"
                return await self._edit(
                    pending, "add", lambda t: with_key_added(t, pending.slot, pending.method, secret, note)
                )
            if op == "switch":
                return await self._edit(pending, "switch", lambda t: with_signing_slot(t, pending.slot))
            if op == "retire":
                ok, reason = await self._edit(pending, "retire", lambda t: with_key_removed(t, pending.old))
                if ok:
                    self._pending = None
                return ok, reason
            assert op == "rollback", op
            self._pending = None
            if "add" not in pending.done or "switch" in pending.done:
                return True, ""
            return await self._edit(pending, "rollback", lambda t: with_key_removed(t, pending.slot))

    async def _prepare(self, rotation: str, coordinator: str, fields: Mapping[str, str]) -> tuple[bool, str]:
        node = self._daemon.node
        pending = self._pending
        if pending is not None and pending.rotation != rotation:
            return (
                False,
                f"{node} takes part in rotation {pending.rotation} from {pending.coordinator} already",
            )
        try:
            slot, old = int(fields.get("slot", "")), int(fields.get("old", ""))
        except ValueError:
            return False, "prepare without slot numbers"
        method = fields.get("method") or ""
        if method not in AEAD_METHODS:
            return False, f"method {method!r} is not one of {', '.join(AEAD_METHODS)}"
        running = self._daemon.view().keyring()
        if running.sign_index != old:
            return False, f"{node} sends with key {running.sign_index}, not {old}: finish that rotation first"
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8", errors="surrogateescape")
            on_disk = parse_authkeys_text(text, str(self.path))
        except (OSError, AuthkeysEditError) as exc:
            return False, f"{node}: {self.path} is not usable: {exc}"
        if not _same_keys(on_disk, running):
            return False, f"{node}: {self.path} differs from the keys in use; reload it (SIGHUP) first"
        if slot in on_disk.keys or not 0 <= slot < 16:
            return False, f"{node}: slot {slot} is taken in {self.path}"
        if not os.access(self.path.parent, os.W_OK) or not os.access(self.path, os.W_OK):
            return False, f"{node}: {self.path} is not writable"
        self._pending = _Pending(rotation, coordinator, slot, method, old)
        logger.info(
            "key rotation prepared rotation=%s coordinator=%s slot=%d method=%s",
            rotation,
            coordinator,
            slot,
            method,
        )
        return True, ""

    async def _edit(self, pending: _Pending, step: str, edit: Any) -> tuple[bool, str]:
        """Edit authkeys (``edit(text) -> (text, keyring)``), write it, run with the result."""
        node = self._daemon.node
        if step in pending.done:
            return True, ""  # a retransmitted round: already applied
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8", errors="surrogateescape")
            new_text, keyring = edit(text)
            await asyncio.to_thread(write_atomically, self.path, new_text)
        except (OSError, AuthkeysEditError) as exc:
            logger.error("key rotation step failed step=%s rotation=%s error=%s", step, pending.rotation, exc)
            return False, f"{node}: {step} failed: {exc}"
        pending.done.append(step)
        await self._use(keyring, f"key rotation {pending.rotation}: {step}")
        logger.info(
            "key rotation step applied step=%s rotation=%s slot=%d sending=%d",
            step,
            pending.rotation,
            pending.slot,
            keyring.sign_index,
        )
        return True, ""

    async def _use(self, keyring: KeyRing, reason: str) -> None:
        daemon = self._daemon

        def apply(now_ms: int) -> dict[str, Any]:
            daemon.submit(KeyringInstalled(keyring, reason), now_ms)
            daemon.config = daemon.config.model_copy(update={"keyring": keyring})
            return {}

        await daemon.operate(apply)

    async def _send(self, pairs: tuple[tuple[str, str], ...]) -> None:
        daemon = self._daemon

        def apply(now_ms: int) -> dict[str, Any]:
            daemon.submit(KeyMessageToSend(pairs), now_ms)
            return {}

        await daemon.operate(apply)

    # --- the coordinator ------------------------------------------------------------------------

    async def rotate(self, *, method: str, timeout_ms: int, force: bool, dry_run: bool) -> dict[str, Any]:
        """Run the four rounds; the answer says what was done, or ``ApiError`` why not."""
        if self._coordinating:
            raise ApiError("ROTATION_IN_PROGRESS", "a key rotation started on this node is still running")
        self._coordinating = True
        try:
            return await self._rotate(method, timeout_ms, force, dry_run)
        finally:
            self._coordinating = False

    def _plan(self, method: str, force: bool) -> tuple[KeyRing, str, int, list[str], list[str]]:
        daemon = self._daemon
        view = daemon.view()
        keyring = view.keyring()
        current = keyring.signing_key
        if not current.encrypts:
            raise ApiError(
                "CHANNEL_NOT_ENCRYPTED",
                f"this node sends with key {current.index} ({current.method}), which signs but does not "
                "encrypt: a new key sent now would cross the network in clear; switch to an aes256gcm or "
                "chacha20poly1305 key by hand first (operator guide, Rotating keys)",
            )
        method = method or current.method
        if method not in AEAD_METHODS:
            raise ApiError("BAD_REQUEST", f"method {method!r}: expected one of {', '.join(AEAD_METHODS)}")
        if view.membership_state() != "active":
            raise ApiError(
                "NOT_A_MEMBER", f"{daemon.node} is {view.membership_state()}, not an active member"
            )
        members = [str(m) for m in view.members() if m != daemon.node]
        absent = [n for n in daemon.config.nodes if n != daemon.node and n not in members]
        if absent and not force:
            raise ApiError(
                "NODES_NOT_MEMBERS",
                f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not a member now and would keep "
                "only the retired key: such a node is never admitted again until its authkeys is "
                "replaced by hand; bring it up first, or repeat with --force to lock it out",
            )
        heartbeat = [m for m in members if not view.peer_is_ours(NodeName(m))]
        if heartbeat:
            raise ApiError(
                "HEARTBEAT_MEMBER", f"{', '.join(heartbeat)} run Heartbeat, which has no encryption"
            )
        free = [slot for slot in (*range(1, 16), 0) if slot not in keyring.keys]
        if not free:
            raise ApiError("NO_FREE_SLOT", "all 16 authkeys slots are in use; remove an unused key first")
        return keyring, method, free[0], members, absent

    async def _rotate(self, method: str, timeout_ms: int, force: bool, dry_run: bool) -> dict[str, Any]:
        daemon = self._daemon
        keyring, method, slot, members, absent = self._plan(method, force)
        old = keyring.sign_index
        everyone = sorted([str(daemon.node), *members])
        plan: dict[str, Any] = {
            "slot": slot,
            "method": method,
            "retires": old,
            "members": everyone,
            "locked_out": absent,
        }
        if dry_run:
            return {"dry_run": True, **plan}
        rotation = secrets.token_hex(8)
        me = str(daemon.node)
        logger.info(
            "key rotation started rotation=%s slot=%d method=%s retires=%d members=%s",
            rotation,
            slot,
            method,
            old,
            ",".join(everyone),
        )
        prepare = {"slot": str(slot), "old": str(old), "method": method}
        ok, reason = await self.apply_step("prepare", rotation, me, prepare)
        if not ok:
            raise ApiError("ROTATION_REFUSED", f"{reason}; nothing was changed on any node")
        failed = await self._round(rotation, "prepare", prepare, members, timeout_ms)
        if failed:
            await self.apply_step("abort", rotation, me, {})
            await self._send((("op", "abort"), ("rotation", rotation)))
            logger.warning("key rotation refused rotation=%s reason=%s", rotation, "; ".join(failed))
            raise ApiError(
                "ROTATION_REFUSED",
                f"{'; '.join(failed)}; the rotation was called off and nothing was changed on any node",
            )
        secret = secrets.token_hex(SECRET_BYTES)
        ok, reason = await self.apply_step("add", rotation, me, {"secret": secret})
        failed = (
            [reason]
            if not ok
            else await self._round(rotation, "add", {"secret": secret}, members, timeout_ms)
        )
        if failed:
            await self.apply_step("rollback", rotation, me, {})
            rolled = await self._round(rotation, "rollback", {}, members, timeout_ms)
            detail = (
                "the new key was removed again everywhere" if not rolled else f"rollback: {'; '.join(rolled)}"
            )
            raise ApiError(
                "ROTATION_FAILED", f"adding key {slot}: {'; '.join(failed)}; {detail}; key {old} still sends"
            )
        for step in ("switch", "retire"):
            ok, reason = await self.apply_step(step, rotation, me, {})
            failed = [reason] if not ok else await self._round(rotation, step, {}, members, timeout_ms)
            if failed:
                logger.error("key rotation incomplete rotation=%s step=%s reason=%s", rotation, step, failed)
                raise ApiError(
                    "ROTATION_INCOMPLETE",
                    f"{step}: {'; '.join(failed)}; every member accepts both key {old} and key {slot}, so "
                    "nobody is cut off; finish by hand (operator guide, Rotating keys)",
                )
        logger.info("key rotation done rotation=%s slot=%d retired=%d", rotation, slot, old)
        return {"dry_run": False, "rotation": rotation, **plan}

    async def _round(
        self, rotation: str, step: str, extra: Mapping[str, str], members: list[str], timeout_ms: int
    ) -> list[str]:
        """Send one round and wait for every member; the reasons of those that did not agree."""
        if not members:
            return []
        collected = self._rounds[(rotation, step)] = _Round(frozenset(members))
        try:
            await self._send((("op", step), ("rotation", rotation), *extra.items()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collected.complete.wait(), timeout_ms / 1000)
        finally:
            del self._rounds[(rotation, step)]
        failed = []
        for member in members:
            answer = collected.answers.get(member)
            if answer is None:
                failed.append(f"{member} did not acknowledge {step} within {timeout_ms} ms")
            elif not answer[0]:
                failed.append(answer[1] or f"{member} refused {step}")
        return failed
