"""A pytest plugin that fails a test when one of its event loops was blocked.

Blocking calls in the loop (a synchronous subprocess, ``time.sleep``, a big file scan) freeze
the links and timers of a real daemon: a peer is then declared dead that is alive.  Each test
runs with every new event loop in asyncio debug mode, whose slow-callback warning names any
callback (one step of a task) that held the loop for longer than ``LOOP_BLOCK_MS``; the test
fails with those names.  Tests run their loops with ``asyncio.run``, so the watch applies to
every test (one that makes no loop pays nothing).  ``@pytest.mark.loop_blocking(reason)`` opts
a test out; ``--loop-block-ms=N`` changes the bound for a run.

The bound: with two CPU hogs on the 2-core machine, the longest callback of the whole suite
took 31 ms (root tests, pyroute2 netlink setup) and 21 ms elsewhere, so 250 ms leaves eight
times that and stays under half of the shortest deadtime the tests use (500 ms).
tests/unit/test_loop_watch.py proves a test that blocks fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator

import pytest

LOOP_BLOCK_MS = 250


class _LoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every new loop in asyncio debug mode, warning about callbacks longer than the bound."""

    def __init__(self, slow_s: float) -> None:
        super().__init__()
        self.slow_s = slow_s

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = self.slow_s
        return loop


class _SlowCallbacks(logging.Handler):
    """Collects asyncio's "Executing <handle> took N seconds" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Executing "):
            self.found.append(record.getMessage())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--loop-block-ms",
        type=int,
        default=LOOP_BLOCK_MS,
        help=f"fail a test whose event loop runs one callback longer than this (default {LOOP_BLOCK_MS})",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Run the test with its event loops watched; fail it if one of them was blocked."""
    if item.get_closest_marker("loop_blocking") is not None:
        return (yield)
    bound_ms = int(item.config.getoption("--loop-block-ms"))
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_LoopPolicy(bound_ms / 1000))
    slow = _SlowCallbacks()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(slow)
    try:
        result = yield
    finally:
        asyncio_logger.removeHandler(slow)
        asyncio.set_event_loop_policy(previous)
    if slow.found:
        raise pytest.fail.Exception(
            f"the event loop was blocked for longer than {bound_ms} ms:\n  " + "\n  ".join(slow.found[:10]),
            pytrace=False,
        )
    return result
