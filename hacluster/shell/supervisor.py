"""The tasks beside the driver, supervised: a task that fails is never silent.

Theory of operation.  Slow work (an agent operation, a fence, reopening links) runs as a task
beside the driver, and its outcome comes back as an input (STYLE.md §1).  A task that raises
instead of answering would otherwise just vanish: asyncio mentions an exception nobody looked
at only when the task is garbage-collected, if ever, and the core would wait for ever for the
``AgentFinished`` that never comes (the resource stays pending, its monitor never runs again).
As ``asyncio.TaskGroup`` and Trio's nurseries do, the supervisor looks at every task when it
ends:

- **A task that raised** is logged at ERROR with its traceback.  When it was spawned with a
  ``failed`` function, that function turns the exception into the result the core is waiting
  for, which is queued like any other result: ``agent_failed`` makes an ``AgentFinished`` with
  OCF_ERR_GENERIC and the exception as exit reason, ``fence_failed`` a ``FenceFinished`` with
  ``ok=False``.  The core then does what it does for any failed op or fence (recover, or for a
  failed stop, fence; keep resources blocked while a fence has not succeeded).
- **A cancelled task** (the daemon is closing) has not failed.
- **Unlike a TaskGroup**, one failure does not cancel the other tasks: an agent that could not
  be run must not stop a fence in flight.
- ``aclose`` cancels what is left and waits for it, bounded, so nothing of ours runs on after
  the daemon (agents' process groups are killed by their cancellation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from hacluster.core.effects import AgentFinished, Fence, FenceFinished, RunAgent

logger = logging.getLogger(__name__)

OCF_ERR_GENERIC: Final = 1
CLOSE_WAIT_S: Final = 5.0
"""How long ``aclose`` waits for cancelled tasks (an agent's group gets SIGKILL at once)."""

Result = TypeVar("Result")
Failed = Callable[[BaseException, int], Result]
"""Makes the failed result from the exception and the milliseconds the task ran."""


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    running: int
    failed: int
    """Tasks that raised since the start."""


class Supervisor(Generic[Result]):
    """Spawns tasks, looks at each one when it ends, and hands failed results to ``deliver``."""

    def __init__(self, deliver: Callable[[Result], None]) -> None:
        self._deliver = deliver
        self._tasks: dict[asyncio.Task[None], tuple[int, Failed[Result] | None]] = {}
        self._failed = 0

    def spawn(
        self,
        work: Coroutine[Any, Any, None],
        *,
        failed: Failed[Result] | None = None,
        name: str | None = None,
    ) -> asyncio.Task[None]:
        """Run ``work`` as a task; if it raises, log it and deliver ``failed(exc, ran_ms)``."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks[task] = (time.monotonic_ns(), failed)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        started_ns, failed = self._tasks.pop(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self._failed += 1
        ran_ms = (time.monotonic_ns() - started_ns) // 1_000_000
        logger.error(
            "task failed name=%s ran_ms=%d error=%s: %s%s",
            task.get_name(),
            ran_ms,
            type(exc).__name__,
            exc,
            "; reported to the core as a failed result" if failed is not None else "",
            exc_info=exc,
        )
        if failed is None:
            return
        try:
            result = failed(exc, ran_ms)
        except Exception:  # a bug in the conversion must not hide the first one
            logger.critical("cannot turn a failed task into a result name=%s", task.get_name(), exc_info=True)
            return
        self._deliver(result)

    async def aclose(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Cancel every task and wait (at most ``wait_s``) until they have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=wait_s)
        for task in pending:
            logger.warning("task still running after cancellation name=%s", task.get_name())

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(running=len(self._tasks), failed=self._failed)


def _reason(exc: BaseException) -> str:
    return f"internal error in the daemon: {type(exc).__name__}: {exc}; see the daemon log for the traceback"


def agent_failed(request: RunAgent, exc: BaseException, ran_ms: int) -> AgentFinished:
    """The result of an agent op whose task raised: a generic failure of that op."""
    return AgentFinished(
        call_id=request.call_id,
        resource=request.resource,
        action=request.action,
        interval_ms=request.interval_ms,
        rc=OCF_ERR_GENERIC,
        exit_reason=_reason(exc),
        timed_out=False,
        duration_ms=ran_ms,
    )


def fence_failed(request: Fence, exc: BaseException, ran_ms: int) -> FenceFinished:
    """The result of a fence whose task raised: the fence did not happen."""
    return FenceFinished(
        request.request_id,
        request.target,
        request.device.id,
        ok=False,
        duration_ms=ran_ms,
        detail=_reason(exc),
    )
