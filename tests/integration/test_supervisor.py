"""Supervision of the daemon's background tasks: a task that raises becomes a failed result.

The in-process tests feed the supervisor real failures (an exception from real code, not a
double).  The daemon test makes a real daemon, running as an ordinary user, unable to start a
thread (RLIMIT_NPROC lowered on it with prlimit): its in-process agent op raises, and the
resource must fail visibly instead of staying pending for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from asuser import daemon, need_root, run_as, shared_dir, spare_id
from test_daemon_shell import write_single_node

from hacluster.cli.client import CliError, request
from hacluster.core.effects import AgentFinished, Fence, FenceFinished, RunAgent
from hacluster.core.fence_devices import FenceDeviceSpec
from hacluster.core.ids import NodeName
from hacluster.shell.supervisor import Supervisor, agent_failed, fence_failed

RUN_AGENT = RunAgent(
    call_id=41, resource="vip", primitive=None, action="start", interval_ms=0, timeout_ms=5000
)  # type: ignore[arg-type]


def supervise(work: Any, failed: Any) -> tuple[list[object], asyncio.Task[None] | None]:
    delivered: list[object] = []

    async def scenario() -> asyncio.Task[None]:
        supervisor: Supervisor[object] = Supervisor(delivered.append)
        task = supervisor.spawn(work, failed=failed, name="work")
        with_result = await asyncio.wait({task}, timeout=5)
        assert with_result[0], "the task did not end"
        await asyncio.sleep(0)  # done callbacks run on the next turn
        assert supervisor.statistics().running == 0
        return task

    return delivered, asyncio.run(scenario())


async def list_a_missing_directory(path: str) -> None:
    os.listdir(path)  # raises FileNotFoundError: a real failure from real code


def test_a_task_that_raises_becomes_a_failed_agent_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hacluster.shell.supervisor")
    gone = str(tmp_path / "vanished")

    def failed(exc: BaseException, ran_ms: int) -> AgentFinished:
        return agent_failed(RUN_AGENT, exc, ran_ms)

    delivered, _ = supervise(list_a_missing_directory(gone), failed)
    (result,) = delivered
    assert isinstance(result, AgentFinished)
    assert (result.call_id, result.resource, result.action, result.rc) == (41, "vip", "start", 1)
    assert result.exit_reason is not None
    assert "FileNotFoundError" in result.exit_reason
    assert gone in result.exit_reason
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "task failed name=work" in record.getMessage()
    assert record.exc_info is not None, "the traceback is logged"


def test_a_fence_task_that_raises_becomes_a_failed_fence() -> None:
    device = FenceDeviceSpec(id="ipmi-n2", agent="fence_ipmilan", params=())
    request = Fence(request_id=9, target=NodeName("n2"), device=device)
    delivered, _ = supervise(
        list_a_missing_directory("/nonexistent/dir"), lambda e, ms: fence_failed(request, e, ms)
    )
    (result,) = delivered
    assert isinstance(result, FenceFinished)
    assert (result.request_id, result.target, result.device, result.ok) == (9, "n2", "ipmi-n2", False)
    assert "FileNotFoundError" in result.detail


async def finish_normally() -> None:
    await asyncio.sleep(0)


def test_a_task_that_succeeds_or_is_cancelled_delivers_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hacluster.shell.supervisor")
    delivered, _ = supervise(finish_normally(), lambda e, ms: "failed")
    assert delivered == []

    async def cancelled() -> list[object]:
        out: list[object] = []
        supervisor: Supervisor[object] = Supervisor(out.append)
        task = supervisor.spawn(asyncio.sleep(30), failed=lambda e, ms: "failed")
        await asyncio.sleep(0)
        await supervisor.aclose(wait_s=5)
        assert task.cancelled()
        return out

    assert asyncio.run(cancelled()) == []
    assert not caplog.records


def test_a_broken_conversion_is_logged_and_does_not_hide_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="hacluster.shell.supervisor")

    def broken(exc: BaseException, ran_ms: int) -> object:
        return {}["missing"]  # KeyError

    delivered, _ = supervise(list_a_missing_directory("/nonexistent"), broken)
    assert delivered == []
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.CRITICAL]


# --- a real daemon that cannot start a thread ---------------------------------------------------


def _status(sock: Path) -> dict[str, Any]:
    return request(str(sock), "status", timeout_s=2.0)


def _wait(sock: Path, what: str, check: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            doc = _status(sock)
        except CliError:
            time.sleep(0.05)
            continue
        if check(doc):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout_s} s; last status: {json.dumps(doc)[:2000]}")


def _resource(doc: dict[str, Any]) -> dict[str, Any]:
    (rsc,) = [r for r in doc["resources"] if r["id"] == "d"]
    return rsc


@pytest.mark.root
def test_a_daemon_that_cannot_start_a_thread_fails_the_op_instead_of_hanging() -> None:
    need_root()
    uid = spare_id(1)
    with shared_dir(uid, uid) as root:
        hacf = write_single_node(root, extra="")
        (root / "resources.crm").write_text(
            "primitive d ocf:hacluster:Dummy op monitor interval=300ms timeout=5s\nproperty stonith-enabled=false\n"
        )
        sock = root / "api.sock"
        with daemon(hacf, uid) as proc:
            _wait(sock, "d started", lambda doc: doc["resources"] and _resource(doc)["state"] == "started")
            # No new thread for this user from now on: the next monitor cannot run its agent.
            limited = run_as(uid, uid, ["prlimit", "--pid", str(proc.pid), "--nproc=1:"])
            assert limited.returncode == 0, limited.stderr
            doc = _wait(sock, "the failed monitor reported", lambda doc: _resource(doc)["failures"])
            reasons = " ".join(f["reason"] or "" for f in _resource(doc)["failures"])
            assert "internal error in the daemon: RuntimeError: can't start new thread" in reasons
            log = (root / "ha-log").read_text()
            assert "task failed" in log
            assert "Traceback" in log
            # With threads back, a cleanup recovers it: nothing was left pending for ever.
            soft = _limit(proc.pid, "Max processes")
            restored = run_as(uid, uid, ["prlimit", "--pid", str(proc.pid), f"--nproc={soft}:"])
            assert restored.returncode == 0, restored.stderr
            request(str(sock), "resource_cleanup", resource="d")
            _wait(
                sock,
                "d started again",
                lambda doc: _resource(doc)["state"] == "started" and not _resource(doc)["failures"],
            )


def _limit(pid: int, name: str) -> str:
    """The hard limit ``name`` of ``pid`` (from /proc/PID/limits), as prlimit takes it."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            hard = line[len(name) :].split()[1]
            return "unlimited" if hard == "unlimited" else hard
    raise AssertionError(f"no {name!r} in /proc/{pid}/limits")
