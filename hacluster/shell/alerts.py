"""Alert hooks: scripts run for every history event, each with the event as JSON on stdin.

Theory of operation
-------------------
ha.cf lists hooks with ``alert PATH [timeout=5s] [retries=3]``.  Each hook has its own FIFO
queue and one worker task, so a hook sees events one at a time and in order, and a slow hook
delays only itself.  ``submit`` is called by the driver for every event: it only appends to
the queues and never waits.

Delivery is *at least once*: a run that exits non-zero or outlives its timeout (its whole
process group is then killed, as for every child: ``hacluster.shell.subprocesses``) is retried after a growing pause, up to ``retries`` more
times; then the event is given up and counted.  A script may therefore see an event twice
(it did its work but then timed out), and should tolerate that.

A queue holds at most ``QUEUE_MAX`` events.  A hook that cannot keep up loses the oldest
ones, counted in ``dropped``; the daemon's memory stays flat whatever the script does.  The
last failure of each hook (event code, exit status, stderr tail, attempts) and the counters
are in ``hacrm status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hacluster.shell import subprocesses
from hacluster.shell.history import Event, iso_time

if TYPE_CHECKING:
    from hacluster.config import LoadedConfig

logger = logging.getLogger(__name__)

QUEUE_MAX = 1000
"""Events waiting per hook; beyond this the oldest is dropped and counted."""
BACKOFF_FIRST_MS = 200
BACKOFF_MAX_MS = 10_000
STDERR_TAIL_BYTES = 2000
KILL_GRACE_MS = 1000


@dataclass(frozen=True, slots=True)
class AlertSpec:
    path: str
    timeout_ms: int = 5_000
    retries: int = 3
    """Attempts after the first one."""


def backoff_ms(attempt: int) -> int:
    """Pause after failed attempt number ``attempt`` (1-based): 200 ms, doubling, at most 10 s."""
    return int(min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class RunResult:
    rc: int | None
    """None: killed at the timeout, or the script could not be started."""
    stderr: str
    timed_out: bool


async def run_hook(spec: AlertSpec, event: Event, attempt: int) -> RunResult:
    """Run the script once with ``event`` on stdin (``hacluster.shell.subprocesses``: its process
    group is killed at the timeout, SIGTERM then SIGKILL after ``KILL_GRACE_MS``)."""
    data = json.dumps(event, default=str).encode() + b"\n"
    env = {
        **os.environ,
        "HACLUSTER_EVENT_CODE": str(event.get("code", "")),
        "HACLUSTER_EVENT_LEVEL": str(event.get("level", "")),
        "HACLUSTER_EVENT_NODE": str(event.get("node", "")),
        "HACLUSTER_ALERT_ATTEMPT": str(attempt),
    }
    done = await subprocesses.run(
        [spec.path],
        env=env,
        timeout_ms=spec.timeout_ms,
        grace_ms=KILL_GRACE_MS,
        stdin=data,
        label=f"alert hook={spec.path}",
    )
    if done.problem:
        return RunResult(None, done.problem, False)
    if done.timed_out:
        return RunResult(None, f"killed after the timeout of {spec.timeout_ms} ms", True)
    return RunResult(done.returncode, done.stderr.decode(errors="replace")[-STDERR_TAIL_BYTES:], False)


class _Hook:
    """One script: its queue, its worker and what it did."""

    def __init__(self, spec: AlertSpec, queue_max: int) -> None:
        self.spec = spec
        self.queue: deque[Event] = deque()
        """Events waiting; the one being delivered is ``current``, no longer in the queue."""
        self.current: Event | None = None
        self.queue_max = queue_max
        self.wakeup = asyncio.Event()
        self.idle = asyncio.Event()
        """Set while nothing is queued or running: what a graceful stop waits for."""
        self.idle.set()
        self.task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.given_up = 0
        self.dropped = 0
        self.attempts = 0
        self.last_failure: dict[str, Any] | None = None
        self.last_success_ms: int | None = None

    def submit(self, event: Event) -> None:
        if len(self.queue) >= self.queue_max:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                logger.warning(
                    "alert queue full, oldest event dropped hook=%s dropped=%d", self.spec.path, self.dropped
                )
        self.queue.append(event)
        self.idle.clear()
        self.wakeup.set()

    async def work(self) -> None:
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            self.current = self.queue.popleft()
            try:
                await self._deliver(self.current)
            finally:
                self.current = None
            if not self.queue:
                self.idle.set()

    async def _deliver(self, event: Event) -> None:
        spec = self.spec
        for attempt in range(1, spec.retries + 2):
            self.attempts += 1
            result = await run_hook(spec, event, attempt)
            if result.rc == 0:
                self.delivered += 1
                self.last_success_ms = time.time_ns() // 1_000_000
                if attempt > 1:
                    logger.info(
                        "alert delivered after retries hook=%s code=%s attempts=%d",
                        spec.path,
                        event.get("code"),
                        attempt,
                    )
                return
            self._failed(event, result, attempt)
            if attempt <= spec.retries:
                await asyncio.sleep(backoff_ms(attempt) / 1000)
        self.given_up += 1
        logger.error(
            "alert given up hook=%s code=%s attempts=%d rc=%s",
            spec.path,
            event.get("code"),
            spec.retries + 1,
            self.last_failure["rc"] if self.last_failure else None,
        )

    def _failed(self, event: Event, result: RunResult, attempt: int) -> None:
        now = time.time_ns() // 1_000_000
        self.last_failure = {
            "code": event.get("code"),
            "event_time": event.get("time"),
            "rc": result.rc,
            "timed_out": result.timed_out,
            "stderr": result.stderr.strip()[-500:],
            "attempts": attempt,
            "time": iso_time(now),
            "epoch_ms": now,
        }
        logger.warning(
            "alert hook failed hook=%s code=%s attempt=%d rc=%s timed_out=%s",
            self.spec.path,
            event.get("code"),
            attempt,
            result.rc,
            result.timed_out,
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "path": self.spec.path,
            "timeout_ms": self.spec.timeout_ms,
            "retries": self.spec.retries,
            "queued": len(self.queue) + (self.current is not None),
            "delivered": self.delivered,
            "given_up": self.given_up,
            "dropped": self.dropped,
            "attempts": self.attempts,
            "last_failure": self.last_failure,
            "last_success_epoch_ms": self.last_success_ms,
        }


class AlertRunner:
    """Every configured hook; ``submit`` is the history listener."""

    def __init__(self, specs: tuple[AlertSpec, ...] = (), queue_max: int = QUEUE_MAX) -> None:
        self._queue_max = queue_max
        self._hooks: list[_Hook] = []
        self._specs = specs
        self._started = False

    def start(self) -> None:
        """Start one worker per hook; needs the running loop."""
        self._started = True
        self.reconfigure(self._specs)

    def reconfigure(self, specs: tuple[AlertSpec, ...]) -> None:
        """Apply a new list of hooks (SIGHUP); a hook whose path stays keeps its queue and counters."""
        self._specs = specs
        if not self._started:
            return
        old = {hook.spec.path: hook for hook in self._hooks}
        hooks = []
        for spec in specs:
            hook = old.pop(spec.path, None)
            if hook is None:
                hook = _Hook(spec, self._queue_max)
                hook.task = asyncio.get_running_loop().create_task(hook.work(), name=f"alert {spec.path}")
                hook.task.add_done_callback(_worker_ended)
            hook.spec = spec
            hooks.append(hook)
        for hook in old.values():
            if hook.task is not None:
                hook.task.cancel()
        self._hooks = hooks

    def submit(self, event: Event) -> None:
        for hook in self._hooks:
            hook.submit(event)

    def pending(self) -> int:
        """Events not yet delivered or given up, over every hook."""
        return sum(len(hook.queue) + (hook.current is not None) for hook in self._hooks)

    async def close(self, drain_s: float = 2.0) -> None:
        """Give queued events up to ``drain_s`` to go out, then stop the workers."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                for hook in self._hooks:
                    await hook.idle.wait()
        tasks = [hook.task for hook in self._hooks if hook.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._started = False

    def statistics(self) -> list[dict[str, Any]]:
        return [hook.statistics() for hook in self._hooks]


def _worker_ended(task: asyncio.Task[None]) -> None:
    """A worker only ends when cancelled; anything else is a bug, logged loudly."""
    if not task.cancelled() and task.exception() is not None:
        logger.critical("alert worker crashed name=%s", task.get_name(), exc_info=task.exception())


def specs_of(config: LoadedConfig) -> tuple[AlertSpec, ...]:
    """The ``alert`` lines of ha.cf."""
    return tuple(AlertSpec(a.path, a.timeout_ms, a.retries) for a in config.alerts)
