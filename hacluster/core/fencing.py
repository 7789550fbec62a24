"""Fencing: who must be shot, when, with which devices, and what a fence releases.  Pure.

Theory of operation
-------------------
A node that may still run a resource but can no longer be trusted to stop it — it left the
membership without saying goodbye, or a stop failed there — is *fenced* before any of its
resources starts elsewhere.

- **Who** (``nodes_to_fence``, one rule for the DC and the simulator): every node lost
  uncleanly and not fenced yet, and every member whose stop failed — while fencing is on and
  this partition may fence (``may_fence``): with quorum, or with ``no-quorum-policy=ignore``.
  Ignoring quorum does not mean ignoring safety: a partition that ignores quorum still
  fences a lost node before it takes over its resources, so it fences without quorum too
  (and waits ``priority-fencing-delay`` longer than a quorate side would, so that where
  both sides fence, the side with quorum shoots first).
- **Trust** (``Fencing``): a node that said goodbye (``shutdone``) is known to run nothing.
  A node lost without one is *unclean* until fenced.  One that comes back with the same
  generation after being declared dead while we had quorum is a *suspect*: it may have run
  resources meanwhile, so it stays out of our membership until fenced.
- **Word of the members** (``Fencing.adopt_known_down``): a node we never heard from since we
  started (dead at ``initdead``) is unclean only for want of knowledge.  Every report says
  which nodes its sender knows are down (a goodbye, or fenced) and which it saw vanish
  without a goodbye; a node a member vouches for, and that no member saw vanish, is down,
  not fenced again.  Startup fencing of a node nobody knows stays.
- **Devices and levels** come from ``fence_devices.py``.
- **Delays** settle split brain deterministically (``request_delay_ms``): the node that runs
  resources fences at once; the node that does not waits ``priority-fencing-delay``, long
  enough to be shot first.  A device's ``pcmk_delay_base`` adds to it.  A node just back
  from a freeze longer than the dead time waits out its hold first: the peer that declared
  it dead is already fencing it, and must not be shot by it.
- **Never the victim itself**: the executor is a member other than the target; the DC that
  must be fenced itself asks another member (``FenceRequest``).
- **Self-fencing** (``core/watchdog.py``): with no device able to fence the target but
  ``stonith-watchdog-timeout`` in force, the attempt waits that long from the request and
  for the target to be silent (not a member), then counts it as fenced by its own watchdog
  (device ``watchdog``).
- **Failure** of every level leaves the target unfenced: its resources stay where they are
  (blocked), the attempt is retried with a growing pause, and status says why.  Only a
  confirmed fence (``Fenced`` from the executor) or the operator's ``fence-confirm``
  releases them.

Every attempt ends in the history (target, executor, device, result, duration).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from hacluster.core.cib import ClusterConfig, parse_time_ms
from hacluster.core.effects import Broadcast, Fence, FenceFinished, Level, NodeStateChanged, Notice
from hacluster.core.fence_devices import FenceDeviceSpec, devices_from_config, levels_for
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.rm_messages import Fenced, FenceRequest, encode
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.watchdog import WATCHDOG_DEVICE, watchdog_fencing_ms

__all__ = [
    "FenceDeviceSpec",
    "Fencing",
    "FencingManager",
    "devices_from_config",
    "levels_for",
    "may_fence",
    "nodes_to_fence",
    "request_delay_ms",
]

FencingEffect = Notice | Fence | Broadcast
OPERATOR_FENCE_REASON: Final = "requested by an operator"
HISTORY_MAX: Final = 100
RETRY_FIRST_MS: Final = 2_000
RETRY_MAX_MS: Final = 60_000
REPLY_GRACE_MS: Final = 10_000


@dataclass(frozen=True, slots=True)
class FenceEvent:
    """One line of fencing history."""

    target: str
    by: str
    device: str
    action: str
    result: str
    """``ok``, ``failed``, or ``confirmed`` (by an operator)."""
    ms: int
    reason: str
    at_ms: int


@dataclass(slots=True)
class _Attempt:
    target: NodeName
    reason: str
    levels: list[tuple[str, ...]]
    start_ms: int
    not_before_ms: int
    level: int = 0
    pending: dict[int, str] = field(default_factory=dict)
    """request id → device id, for the level in flight."""
    level_ok: set[str] = field(default_factory=set)
    failures: int = 0
    last_error: str = ""
    started: bool = False
    watchdog_due_ms: int | None = None
    """Self-fencing: from then on, once silent, the target counts as reset by its watchdog."""


class FencingManager:
    def __init__(self, node: NodeName) -> None:
        self._node = node
        self._attempts: dict[NodeName, _Attempt] = {}
        self._fenced: set[NodeName] = set()
        self._history: collections.deque[FenceEvent] = collections.deque(maxlen=HISTORY_MAX)
        self._request_id = 0
        self._reply_due: dict[int, int] = {}
        """Request id → when its answer is overdue (device timeout plus a grace)."""

    # --- queries ----------------------------------------------------------------------

    @property
    def fenced(self) -> frozenset[NodeName]:
        return frozenset(self._fenced)

    def pending(self) -> dict[NodeName, str]:
        """Targets still waiting for a confirmed fence, with the state of the attempt."""
        out = {}
        for target, attempt in self._attempts.items():
            if attempt.watchdog_due_ms is not None:
                out[target] = (
                    f"waiting for {target}'s watchdog to reset it (stonith-watchdog-timeout, {attempt.reason})"
                )
            elif not attempt.levels:
                out[target] = f"no fence device can fence {target} ({attempt.reason})"
            elif attempt.last_error:
                out[target] = (
                    f"fencing {target} failed {attempt.failures} time(s): {attempt.last_error}; retrying"
                )
            elif not attempt.started:
                out[target] = f"fencing {target} after a delay ({attempt.reason})"
            else:
                out[target] = f"fencing {target} in progress ({attempt.reason})"
        return out

    def reason(self, target: NodeName) -> str | None:
        """Why ``target`` is being fenced, or None when it is not."""
        attempt = self._attempts.get(target)
        return None if attempt is None else attempt.reason

    def history(self) -> tuple[FenceEvent, ...]:
        return tuple(self._history)

    def next_deadline_ms(self) -> int | None:
        times = [a.not_before_ms for a in self._attempts.values() if not a.pending and a.levels]
        times += [a.watchdog_due_ms for a in self._attempts.values() if a.watchdog_due_ms is not None]
        times += [
            self._reply_due[rid]
            for a in self._attempts.values()
            for rid in a.pending
            if rid in self._reply_due
        ]
        return min(times) if times else None

    # --- inputs -----------------------------------------------------------------------

    def request(
        self,
        target: NodeName,
        reason: str,
        config: ClusterConfig,
        devices: tuple[FenceDeviceSpec, ...],
        delay_ms: int,
        now_ms: int,
        watchdog_ms: int = 0,
    ) -> list[FencingEffect]:
        """Start fencing ``target`` unless it is already fenced or being fenced; ``watchdog_ms``:
        self-fencing's ``stonith-watchdog-timeout``, used when no device can fence it."""
        assert target != self._node, "a node never fences itself through a device"
        if target in self._fenced or target in self._attempts:
            return []
        levels = levels_for(config, devices, target)
        attempt = _Attempt(
            target=target,
            reason=reason,
            levels=levels,
            start_ms=now_ms,
            not_before_ms=now_ms + delay_ms,
        )
        self._attempts[target] = attempt
        if not levels and watchdog_ms > 0:
            attempt.watchdog_due_ms = now_ms + watchdog_ms
            text = (
                f"{target} will count as fenced by its own watchdog ({reason}) once it is silent and "
                f"{watchdog_ms} ms (stonith-watchdog-timeout) have passed"
            )
            return [Notice("FENCING_REQUESTED", Level.WARNING, text, (("target", target),))]
        if not levels:
            return [
                Notice(
                    "FENCING_IMPOSSIBLE",
                    Level.CRITICAL,
                    f"{target} must be fenced ({reason}) but no fence device can fence it; its resources stay "
                    f"blocked until a device is configured or an operator runs `hacrm node fence-confirm {target}`",
                    (("target", target),),
                )
            ]
        wait = attempt.not_before_ms - now_ms
        text = f"{target} will be fenced ({reason})" + (f" after {wait} ms" if wait > 0 else " now")
        out: list[FencingEffect] = [Notice("FENCING_REQUESTED", Level.WARNING, text, (("target", target),))]
        out += self.tick(devices, now_ms)
        return out

    def cancel(self, target: NodeName, why: str) -> list[FencingEffect]:
        attempt = self._attempts.pop(target, None)
        if attempt is None:
            return []
        return [Notice("FENCING_CANCELLED", Level.INFO, f"fencing {target} cancelled: {why}")]

    def cancel_waiting(self, why: str) -> list[FencingEffect]:
        """Drop every attempt still in its delay (no device has fired yet)."""
        out: list[FencingEffect] = []
        for target in [t for t, a in self._attempts.items() if not a.started and a.levels]:
            out += self.cancel(target, why)
        return out

    def forget(self, target: NodeName) -> None:
        """``target`` rejoined after a reboot: the fence has served its purpose."""
        self._fenced.discard(target)
        self._attempts.pop(target, None)

    def tick(
        self, devices: tuple[FenceDeviceSpec, ...], now_ms: int, members: frozenset[NodeName] | None = None
    ) -> list[FencingEffect]:
        """``members``: who is heard from now; a self-fencing target among them is not done."""
        out: list[FencingEffect] = []
        for attempt in list(self._attempts.values()):
            due = attempt.watchdog_due_ms
            if due is not None and now_ms >= due and members is not None and attempt.target not in members:
                out += self._succeeded(attempt, WATCHDOG_DEVICE, now_ms)
        by_id = {d.id: d for d in devices}
        for attempt in list(self._attempts.values()):
            for rid, device_id in list(attempt.pending.items()):
                if self._reply_due.get(rid, now_ms + 1) <= now_ms:
                    # The shell always answers within the device timeout; if it did not, the
                    # attempt counts as failed and is retried, never as a success.
                    out += self.on_finished(
                        FenceFinished(rid, attempt.target, device_id, False, 0, "no answer from the fencer"),
                        now_ms,
                        devices,
                    )
        for attempt in self._attempts.values():
            if attempt.pending or not attempt.levels or now_ms < attempt.not_before_ms:
                continue
            attempt.started = True
            attempt.level_ok.clear()
            for device_id in attempt.levels[attempt.level]:
                device = by_id.get(device_id)
                if device is None:
                    continue
                self._request_id += 1
                attempt.pending[self._request_id] = device_id
                self._reply_due[self._request_id] = now_ms + device.timeout_ms + REPLY_GRACE_MS
                out.append(Fence(self._request_id, attempt.target, device))
        return out

    def on_finished(
        self, result: FenceFinished, now_ms: int, devices: tuple[FenceDeviceSpec, ...]
    ) -> list[FencingEffect]:
        self._reply_due.pop(result.request_id, None)
        attempt = self._attempts.get(result.target)
        if attempt is None or result.request_id not in attempt.pending:
            return []
        del attempt.pending[result.request_id]
        self._history.append(
            FenceEvent(
                result.target,
                self._node,
                result.device,
                "reboot",
                "ok" if result.ok else "failed",
                result.duration_ms,
                attempt.reason,
                now_ms,
            )
        )
        out: list[FencingEffect] = []
        if result.ok:
            attempt.level_ok.add(result.device)
        else:
            attempt.last_error = f"device {result.device}: {result.detail or 'failed'}"
            out.append(
                Notice(
                    "FENCE_DEVICE_FAILED",
                    Level.ERROR,
                    f"fencing {result.target} with {result.device} failed after {result.duration_ms} ms: "
                    f"{result.detail or 'no detail'}",
                    (("target", result.target), ("device", result.device)),
                )
            )
        if attempt.pending:
            return out
        level_devices = set(attempt.levels[attempt.level])
        if level_devices and level_devices <= attempt.level_ok:
            out += self._succeeded(attempt, result.device, now_ms)
            return out
        attempt.level += 1
        if attempt.level >= len(attempt.levels):
            attempt.level = 0
            attempt.failures += 1
            pause = min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt.failures - 1))
            attempt.not_before_ms = now_ms + pause
            out.append(
                Notice(
                    "FENCING_FAILED",
                    Level.CRITICAL,
                    f"fencing {result.target} failed on every level ({attempt.last_error}); its resources stay "
                    f"blocked; retrying in {pause} ms",
                    (("target", result.target),),
                )
            )
        else:
            attempt.not_before_ms = now_ms
            out += self.tick(devices, now_ms)
        return out

    def confirm(
        self, target: NodeName, by: str, how: str, now_ms: int, *, device: str = "manual"
    ) -> list[FencingEffect]:
        """The target is known to be down: a fence reported by a peer, or an operator's word."""
        attempt = self._attempts.pop(target, None)
        already = target in self._fenced
        self._fenced.add(target)
        if already and attempt is None:
            return []
        reason = attempt.reason if attempt is not None else how
        ms = now_ms - attempt.start_ms if attempt is not None else 0
        result = "confirmed" if device == "manual" else "ok"
        if by != self._node or device == "manual":
            self._history.append(FenceEvent(target, by, device, "reboot", result, ms, reason, now_ms))
        return [
            Notice(
                "NODE_FENCED",
                Level.WARNING,
                f"{target} is fenced ({how}, by {by}); its resources may start elsewhere",
                (("target", target), ("by", by)),
            )
        ]

    def record_remote(self, event: FenceEvent) -> None:
        self._history.append(event)

    def _succeeded(self, attempt: _Attempt, device: str, now_ms: int) -> list[FencingEffect]:
        del self._attempts[attempt.target]
        self._fenced.add(attempt.target)
        ms = now_ms - attempt.start_ms
        if attempt.watchdog_due_ms is not None:
            self._history.append(
                FenceEvent(attempt.target, self._node, device, "reboot", "ok", ms, attempt.reason, now_ms)
            )
        used = ", ".join(attempt.levels[attempt.level]) if attempt.levels else "its own watchdog"
        return [
            Notice(
                "NODE_FENCED",
                Level.WARNING,
                f"{attempt.target} fenced with {used} in {ms} ms "
                f"({attempt.reason}); its resources may start elsewhere",
                (("target", attempt.target), ("device", device), ("ms", ms)),
            )
        ]


# --- the rules ----------------------------------------------------------------------------------------


def may_fence(view: ClusterSnapshot) -> bool:
    """Fencing is on, there is something to protect, and this partition may act: it has
    quorum, or ``no-quorum-policy=ignore`` says to act without it."""
    return view.must_fence() and (view.has_quorum or view.config.no_quorum_policy() == "ignore")


def nodes_to_fence(view: ClusterSnapshot) -> dict[NodeName, str]:
    """Every node that must be fenced now, with the reason (the DC's rule, and the simulator's)."""
    if not may_fence(view):
        return {}
    wanted: dict[NodeName, str] = {}
    for node in sorted(view.unclean - view.fenced):
        wanted[node] = "it left the membership without a clean stop"
    for rsc, states in view.observed.items():
        for node, state in sorted(states.items()):
            if state is LocalState.BLOCKED and node in view.members:
                wanted.setdefault(node, f"stop of {rsc} failed there")
    return dict(sorted(wanted.items()))


def priority_fencing_delay_ms(config: ClusterConfig, default_ms: int) -> int:
    text = config.property("priority-fencing-delay")
    if text is None:
        return default_ms
    try:
        return parse_time_ms(text)
    except ValueError:
        return default_ms


def request_delay_ms(
    config: ClusterConfig,
    default_ms: int,
    nodes: int,
    *,
    runs_something: bool,
    has_quorum: bool,
    hold_ms: int = 0,
) -> int:
    """How long to wait before fencing a node we just lost.

    Two nodes: the one running resources fences at once, the other waits
    ``priority-fencing-delay``, so it is shot first.  More nodes: quorum decides the split,
    but peers are declared dead one at a time (their silences end up to a keepalive
    apart): a node on the losing side still has quorum until it notices its last peer
    gone, so every request waits at least the default delay, and is dropped if quorum goes
    meanwhile (``Fencing.on_quorum``).  A partition fencing without quorum
    (``no-quorum-policy=ignore``) waits ``priority-fencing-delay`` more, so that a quorate
    side fencing it shoots first.

    ``hold_ms``: this node is back from a freeze longer than the dead time and starts nothing
    for that long (``NODE_WAS_FROZEN``).  The peer that declared it dead is already counting
    down to fence it, and what it runs is being stopped, so it waits out the hold: the frozen
    node never shoots the healthy one (a peer that really died is fenced that much later).
    """
    priority = priority_fencing_delay_ms(config, default_ms)
    delay = 0 if runs_something else priority
    if nodes > 2:
        delay = max(delay, default_ms)
    if not has_quorum:
        delay += priority
    return max(delay, hold_ms)


# --- the orchestration -------------------------------------------------------------------------------


class Fencing:
    """Which lost nodes are trusted down, which must be fenced, and the attempts in flight."""

    def __init__(self, node: NodeName) -> None:
        self.node = node
        self.attempts = FencingManager(node)
        self.clean_exits: set[NodeName] = set()
        """Nodes that left with a goodbye: known to run nothing."""
        self.unclean: dict[NodeName, int | None] = {}
        """Nodes lost without a goodbye and not fenced yet → their generation when lost."""
        self.suspects: set[NodeName] = set()
        """Unclean nodes heard again with the same generation: not trusted until fenced."""
        self.unclean_quorate: set[NodeName] = set()
        """Unclean nodes that were away while we had quorum: our side may have acted on their
        absence, so if one comes back with the same generation it is a suspect.  One lost
        while we never had quorum just rejoins: nothing here acted meanwhile (else three nodes
        split three ways would all be suspects to each other, without quorum, forever)."""
        self.unseen: set[NodeName] = set()
        """Unclean nodes we never heard from since we started (dead at initdead): we cannot
        know how they left, but members that were there may (``adopt_known_down``)."""

    @property
    def fenced(self) -> frozenset[NodeName]:
        return self.attempts.fenced

    def known_down(self) -> frozenset[NodeName]:
        """Nodes we saw stop cleanly or be fenced (and not heard since): our reports' ``down``."""
        return frozenset(self.clean_exits | self.attempts.fenced)

    def seen_lost(self) -> frozenset[NodeName]:
        """Nodes we saw vanish without a goodbye, not fenced yet: our reports' ``lost``.  Not
        the ones we never heard (``unseen``): of those we know nothing."""
        return frozenset(self.unclean.keys() - self.unseen)

    def on_peer_change(
        self, change: NodeStateChanged, generation: int | None, *, must_fence: bool
    ) -> list[FencingEffect]:
        """A peer's membership state changed: a goodbye, a loss, or a return."""
        node = change.node
        out: list[FencingEffect] = []
        if change.new == "dead" and change.graceful:
            self.clean_exits.add(node)
            self.unclean.pop(node, None)
            self.unseen.discard(node)
            self.suspects.discard(node)
            out += self.attempts.cancel(node, "it stopped gracefully")
        elif change.new == "dead":
            self.clean_exits.discard(node)
            if node not in self.attempts.fenced:
                self.unclean[node] = generation
            if change.old == "init":
                self.unseen.add(node)
            else:
                self.unseen.discard(node)
        elif change.new in ("init", "up", "active"):
            self.clean_exits.discard(node)
            self.unseen.discard(node)
            same_incarnation = node in self.unclean and self.unclean[node] == generation
            if node in self.unclean_quorate and same_incarnation and must_fence:
                if node not in self.suspects:
                    out.append(
                        Notice(
                            "NODE_SUSPECT",
                            Level.CRITICAL,
                            f"{node} is back with the same generation after being declared dead: it may "
                            "have run resources meanwhile; it stays out of the cluster until fenced",
                        )
                    )
                self.suspects.add(node)
            else:
                self.unclean.pop(node, None)
                self.suspects.discard(node)
                self.attempts.forget(node)
        return out

    def adopt_known_down(
        self,
        down: Mapping[NodeName, frozenset[NodeName]],
        lost: Mapping[NodeName, frozenset[NodeName]],
    ) -> list[FencingEffect]:
        """Never heard from since we started, but a member saw it stop cleanly or be fenced
        (and no member saw it vanish since): it is down, not unclean.

        ``down`` and ``lost`` are each member's latest report (member → nodes).  Without this
        a node that started after another one left (its daemon restarted, or it was fenced
        and booted) and then became DC fenced every node it had never seen: power-cycling a
        node an operator had stopped cleanly.  A member's word can only be stale if the node
        came back while that member was away, and then the node ran in a partition with
        quorum that fenced the absent member (or the member restarted): either way it would
        not remember.
        """
        out: list[FencingEffect] = []
        for node in sorted(self.unseen & self.unclean.keys()):
            witnesses = sorted(m for m, nodes in down.items() if m != node and node in nodes)
            if not witnesses or any(node in nodes for m, nodes in lost.items() if m != node):
                continue
            del self.unclean[node]
            self.unseen.discard(node)
            self.unclean_quorate.discard(node)
            self.clean_exits.add(node)
            who = ", ".join(witnesses)
            out += self.attempts.cancel(node, f"{who} saw it stop cleanly or be fenced")
            out.append(
                Notice(
                    "NODE_KNOWN_DOWN",
                    Level.INFO,
                    f"{node} was never heard here, but {who} saw it stop cleanly or be fenced: "
                    "it is down, not fencing it",
                    (("node", node), ("witnesses", who)),
                )
            )
        return out

    def on_quorum(self, has_quorum: bool, *, ignores_quorum: bool) -> list[FencingEffect]:
        """At every step: remember who was lost while we could act; without quorum (and not
        ignoring it), drop the requests still waiting out their delay."""
        self.unclean_quorate &= self.unclean.keys()
        if has_quorum or ignores_quorum:
            self.unclean_quorate |= self.unclean.keys()
            return []
        return self.attempts.cancel_waiting("this partition lost quorum")

    def request_as_dc(self, view: ClusterSnapshot, delay_ms: int, now_ms: int) -> list[FencingEffect]:
        """The DC fences every node ``nodes_to_fence`` names, and drops what is moot."""
        if not may_fence(view):
            return []
        wanted = nodes_to_fence(view)
        out: list[FencingEffect] = []
        for target in sorted(self.attempts.pending()):
            if (
                target in view.members
                and target not in wanted
                and target not in self.suspects
                and self.attempts.reason(target) != OPERATOR_FENCE_REASON
            ):
                out += self.attempts.cancel(
                    target, "it is a member again and nothing of it is blocked any more"
                )
        devices = view.devices()
        for target, reason in wanted.items():
            if target in self.attempts.fenced or target in self.attempts.pending():
                continue
            if target == self.node:
                executors = sorted(view.members - {self.node})
                if executors:
                    out.append(encode(FenceRequest(target, executors[0], reason)))
                continue
            out += self.attempts.request(
                target, reason, view.config, devices, delay_ms, now_ms, watchdog_fencing_ms(view)
            )
        return out

    def tick(
        self, devices: tuple[FenceDeviceSpec, ...], members: frozenset[NodeName], now_ms: int
    ) -> list[FencingEffect]:
        """Attempts due now; a target its own watchdog fenced is released like any other."""
        before = self.attempts.fenced
        out = self.attempts.tick(devices, now_ms, members)
        for target in sorted(self.attempts.fenced - before):
            out += self._released(target, WATCHDOG_DEVICE)
        return out

    def fence_suspects(self, view: ClusterSnapshot, delay_ms: int, now_ms: int) -> list[FencingEffect]:
        """Not the DC, yet holding a suspect: fence it ourselves (when we may fence).

        Our DC may not share the suspicion (it never lost the node), and nobody else would
        fence it: we would keep it out of our membership and the DC in ours for ever.
        """
        if not may_fence(view):
            return []
        out: list[FencingEffect] = []
        devices = view.devices()
        for target in sorted(self.suspects):
            if target in self.attempts.fenced or target in self.attempts.pending():
                continue
            reason = "it came back with the same generation after being declared dead"
            out += self.attempts.request(
                target, reason, view.config, devices, delay_ms, now_ms, watchdog_fencing_ms(view)
            )
        return out

    def on_finished(
        self, result: FenceFinished, devices: tuple[FenceDeviceSpec, ...], now_ms: int
    ) -> list[FencingEffect]:
        out = self.attempts.on_finished(result, now_ms, devices)
        if result.ok and result.target in self.attempts.fenced:
            out += self._released(result.target, result.device)
        return out

    def on_operator_confirm(self, target: NodeName, now_ms: int) -> list[FencingEffect]:
        """The operator's word that ``target`` is down (``hacrm node fence-confirm``)."""
        out = self.attempts.confirm(target, self.node, "confirmed by an operator", now_ms)
        return out + self._released(target, "manual")

    def on_operator_request(
        self, target: NodeName, config: ClusterConfig, devices: tuple[FenceDeviceSpec, ...], now_ms: int
    ) -> list[FencingEffect]:
        """The operator asks for ``target`` to be fenced now (``hacrm node fence``)."""
        return self.attempts.request(target, OPERATOR_FENCE_REASON, config, devices, 0, now_ms)

    def on_request(
        self,
        message: FenceRequest,
        src: NodeName,
        config: ClusterConfig,
        devices: tuple[FenceDeviceSpec, ...],
        now_ms: int,
    ) -> list[FencingEffect]:
        """A DC that must be fenced itself asks us to do it."""
        if message.executor != self.node or message.target == self.node:
            return []
        reason = message.reason + f" (asked by {src})"
        return self.attempts.request(message.target, reason, config, devices, 0, now_ms)

    def on_fenced(self, message: Fenced, src: NodeName, now_ms: int) -> list[FencingEffect]:
        """A peer fenced ``message.target``."""
        if message.target == self.node:
            return []  # we were fenced yet we run: the device did not work; peers will see us again
        out = self.attempts.confirm(
            message.target, src, f"fenced with {message.device}", now_ms, device=message.device
        )
        self.unclean.pop(message.target, None)
        self.suspects.discard(message.target)
        return out

    def _released(self, target: NodeName, device: str) -> list[FencingEffect]:
        """``target`` is fenced: trusted down; tell every member (``Fenced``)."""
        self.unclean.pop(target, None)
        self.suspects.discard(target)
        event = next((e for e in reversed(self.attempts.history()) if e.target == target), None)
        ms = event.ms if event is not None else 0
        reason = event.reason if event is not None else ""
        return [encode(Fenced(target, device, ms, reason))]
