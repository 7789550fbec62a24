"""Fencing decisions: who must be shot, with which devices, in what order.  Pure.

Theory of operation
-------------------
A node that may still run a resource but can no longer be trusted to stop it — it left the
membership without saying goodbye, or a stop failed there — is *fenced* before any of its
resources starts elsewhere.  The resource manager (on the DC) asks for it; this module runs
the attempt and answers "fenced" or "still not fenced, and why".

- **Devices** come from the configuration: ``stonith:`` primitives (``pcmk_host_list``,
  ``pcmk_host_map``, ``pcmk_delay_base``) and ha.cf ``stonith_host`` lines.
- **Levels**: ``fencing_topology`` gives, per target, levels tried in order; every device of a
  level must succeed (AND), the first level that succeeds wins (OR).  Without a topology each
  device that can reach the target is a level of its own, in configuration order.
- **Delays** settle split brain deterministically: the node that runs resources fences at
  once; the node that does not waits ``priority-fencing-delay``, long enough to be shot first.
  A device's ``pcmk_delay_base`` adds to it.
- **Never the victim itself**: the executor is a member other than the target.
- **Failure** of every level leaves the target unfenced: its resources stay where they are
  (blocked), the attempt is retried with a growing pause, and status says why.  Only a
  confirmed fence or the operator's ``fence-confirm`` releases them.

Every attempt ends in the history (target, executor, device, result, duration).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Final

from hacluster.core.cib import ClusterConfig, parse_time_ms
from hacluster.core.effects import Level, Notice
from hacluster.core.ids import NodeName

HISTORY_MAX: Final = 100
RETRY_FIRST_MS: Final = 2_000
RETRY_MAX_MS: Final = 60_000
REPLY_GRACE_MS: Final = 10_000


@dataclass(frozen=True, slots=True)
class FenceDeviceSpec:
    id: str
    agent: str
    params: tuple[tuple[str, str], ...]
    host_list: tuple[str, ...] = ()
    host_map: tuple[tuple[str, str], ...] = ()
    delay_base_ms: int = 0
    delay_max_ms: int = 0
    """Static and random delays before this device fires; the shell's fencer applies them."""
    timeout_ms: int = 60_000
    retries: int = 2

    def may_fence(self, target: str) -> bool:
        """True when the device is configured for ``target`` (no list or map: any node)."""
        if self.host_list or self.host_map:
            return target in self.host_list or any(node == target for node, _ in self.host_map)
        return True


@dataclass(frozen=True, slots=True)
class Fence:
    """Run ``action`` of ``device`` against ``target``; the shell answers ``FenceFinished``."""

    request_id: int
    target: NodeName
    device: FenceDeviceSpec
    action: str = "reboot"


@dataclass(frozen=True, slots=True)
class FenceFinished:
    request_id: int
    target: NodeName
    device: str
    ok: bool
    duration_ms: int
    detail: str = ""


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


def _split_hosts(text: str) -> tuple[str, ...]:
    return tuple(h.lower() for h in text.replace(",", " ").split() if h)


def _host_map(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.replace(";", " ").split():
        node, sep, port = item.replace("=", ":").partition(":")
        if sep and node and port:
            pairs.append((node.lower(), port))
    return tuple(pairs)


def devices_from_config(
    config: ClusterConfig, extra: tuple[FenceDeviceSpec, ...] = ()
) -> tuple[FenceDeviceSpec, ...]:
    """Every fence device: ``stonith:`` primitives, then ``extra`` (from ha.cf)."""
    devices = []
    for primitive in config.primitives:
        if primitive.agent_class != "stonith":
            continue
        params = dict(primitive.params)
        delay = _time_param(params, "pcmk_delay_base")
        delay_max = _time_param(params, "pcmk_delay_max")
        retries = 2
        for key in ("pcmk_reboot_retries", "pcmk_off_retries"):
            if params.get(key, "").isdigit():
                retries = int(params[key])
        timeout = 60_000
        for op in primitive.ops:
            if op.name in ("off", "reboot") and op.timeout_ms > 0:
                timeout = op.timeout_ms
        devices.append(
            FenceDeviceSpec(
                id=primitive.id,
                agent=primitive.type,
                params=tuple((k, v) for k, v in primitive.params if not k.startswith("pcmk_")),
                host_list=_split_hosts(params.get("pcmk_host_list", "")),
                host_map=_host_map(params.get("pcmk_host_map", "")),
                delay_base_ms=delay,
                delay_max_ms=delay_max,
                timeout_ms=timeout,
                retries=retries,
            )
        )
    return (*devices, *extra)


def _time_param(params: dict[str, str], name: str) -> int:
    try:
        return parse_time_ms(params.get(name, "0"))
    except ValueError:
        return 0


def levels_for(
    config: ClusterConfig, devices: tuple[FenceDeviceSpec, ...], target: str
) -> list[tuple[str, ...]]:
    by_id = {d.id for d in devices}
    explicit = config.fencing_levels_for(target)
    if explicit:
        return [tuple(d for d in level.devices if d in by_id) for level in explicit if level.devices]
    return [(d.id,) for d in devices if d.may_fence(target)]


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
            if not attempt.levels:
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
    ) -> list[object]:
        """Start fencing ``target`` unless it is already fenced or being fenced."""
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
        out: list[object] = [Notice("FENCING_REQUESTED", Level.WARNING, text, (("target", target),))]
        out += self.tick(devices, now_ms)
        return out

    def cancel(self, target: NodeName, why: str) -> list[object]:
        attempt = self._attempts.pop(target, None)
        if attempt is None:
            return []
        return [Notice("FENCING_CANCELLED", Level.INFO, f"fencing {target} cancelled: {why}")]

    def cancel_waiting(self, why: str) -> list[object]:
        """Drop every attempt still in its delay (no device has fired yet)."""
        out: list[object] = []
        for target in [t for t, a in self._attempts.items() if not a.started and a.levels]:
            out += self.cancel(target, why)
        return out

    def forget(self, target: NodeName) -> None:
        """``target`` rejoined after a reboot: the fence has served its purpose."""
        self._fenced.discard(target)
        self._attempts.pop(target, None)

    def tick(self, devices: tuple[FenceDeviceSpec, ...], now_ms: int) -> list[object]:
        out: list[object] = []
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
    ) -> list[object]:
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
        out: list[object] = []
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
    ) -> list[object]:
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

    def _succeeded(self, attempt: _Attempt, device: str, now_ms: int) -> list[object]:
        del self._attempts[attempt.target]
        self._fenced.add(attempt.target)
        ms = now_ms - attempt.start_ms
        return [
            Notice(
                "NODE_FENCED",
                Level.WARNING,
                f"{attempt.target} fenced with {', '.join(attempt.levels[attempt.level])} in {ms} ms "
                f"({attempt.reason}); its resources may start elsewhere",
                (("target", attempt.target), ("device", device), ("ms", ms)),
            )
        ]
