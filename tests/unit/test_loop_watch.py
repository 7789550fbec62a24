"""The event-loop watch (tests/loopwatch.py) fails a test that blocks its loop, and only that."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import asyncio, time
import pytest

def test_blocks_with_sleep():
    async def main():
        time.sleep(0.4)  # a blocking call inside a coroutine
    asyncio.run(main())

def test_blocks_in_a_callback():
    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.4)
        await asyncio.sleep(0.5)
    asyncio.run(main())

def test_awaits_instead():
    async def main():
        for _ in range(5):
            await asyncio.sleep(0.1)  # 0.5 s in all, never blocking
    asyncio.run(main())

def test_no_loop_at_all():
    time.sleep(0.4)

@pytest.mark.loop_blocking("blocks on purpose")
def test_opted_out():
    async def main():
        time.sleep(0.4)
    asyncio.run(main())
"""


@pytest.mark.loop_blocking("runs inner tests that block their loops, to prove they fail")
def test_a_blocked_loop_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from loopwatch import pytest_addoption, pytest_runtest_call\n")
    pytester.makeini("[pytest]\nmarkers =\n    loop_blocking(reason): blocks on purpose\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "--loop-block-ms=250")
    result.assert_outcomes(passed=3, failed=2)
    outcomes = {
        r.nodeid.split("::")[-1]: r.outcome
        for r in result.reprec.getreports("pytest_runtest_logreport")
        if r.when == "call"
    }  # type: ignore[attr-defined]
    assert outcomes["test_blocks_with_sleep"] == "failed"
    assert outcomes["test_blocks_in_a_callback"] == "failed"
    result.stdout.fnmatch_lines(
        ["*the event loop was blocked for longer than 250 ms*", "*took 0.4* seconds*"]
    )
