"""``hacluster.shell.subprocesses`` against real process trees: the one policy every child of the
daemon (agent, fence agent, alert hook) follows.

"Gone" means no such process or a zombie (a zombie runs no code): processes killed here are
re-parented to PID 1, which in a container may reap them late.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from exhaust import USE_UP_DESCRIPTORS

from hacluster.shell import subprocesses
from hacluster.shell.subprocesses import HELD_TAIL_BYTES, Completed, StartFailure

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def run(argv: list[str], **options: object) -> tuple[Completed, float]:
    """Run once in a fresh loop; (result, seconds taken)."""
    options.setdefault("env", ENV)
    options.setdefault("timeout_ms", 5000)
    options.setdefault("grace_ms", 1000)
    started = time.monotonic()
    done = asyncio.run(subprocesses.run(argv, **options))  # type: ignore[arg-type]
    return done, time.monotonic() - started


def pids_in(path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        words = path.read_text().split() if path.exists() else []
        if len(words) >= count:
            return [int(w) for w in words]
        time.sleep(0.01)
    raise AssertionError(f"{path} never held {count} pids")


# --- ordinary runs -------------------------------------------------------------------------------


def test_exit_status_streams_and_marked_line(tmp_path: Path) -> None:
    prog = script(
        tmp_path / "p",
        """\
        echo out1
        echo "reason: first" >&2
        echo out2
        printf 'reason: the last one' >&2
        exit 3
        """,
    )
    done, _ = run([prog], mark=b"reason:")
    assert (done.returncode, done.exit_status, done.timed_out, done.problem) == (3, 3, False, "")
    assert done.stdout == b"out1\nout2\n"
    assert done.marked == "the last one", "the last marked line wins, even without a newline"
    assert sorted(done.output.split()) == sorted(done.stdout.split() + done.stderr.split())


def test_stdin_larger_than_a_pipe_buffer_arrives_whole(tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    data = os.urandom(1024 * 1024)  # sixteen pipe buffers: the loop must not block writing it
    done, _ = run(["/bin/sh", "-c", f"cat > {sink}"], stdin=data)
    assert done.exit_status == 0
    assert sink.read_bytes() == data


def test_a_program_that_never_reads_its_stdin_is_fine(tmp_path: Path) -> None:
    done, _ = run(["/bin/true"], stdin=b"x" * (1024 * 1024))
    assert done.exit_status == 0


def test_output_is_drained_and_only_a_tail_is_held(tmp_path: Path) -> None:
    prog = script(tmp_path / "chatty", "head -c 3000000 /dev/zero | tr '\\0' a\necho END\n")
    done, _ = run([prog])
    assert done.exit_status == 0
    assert len(done.stdout) == HELD_TAIL_BYTES
    assert done.stdout.endswith(b"aEND\n")


def test_a_grandchild_holding_the_pipe_open_does_not_hold_the_run(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # The background sleep inherits stdout and stderr: end of file comes only when it ends.
    prog = script(tmp_path / "leaky", f"echo started\nsleep 30 &\necho $! > {pidfile}\nexit 0\n")
    done, took = run([prog])
    (left,) = pids_in(pidfile, 1)
    try:
        assert (done.exit_status, done.timed_out) == (0, False)
        assert done.stdout == b"started\n"
        assert took < 2.0, f"the run waited {took:.1f} s for a leftover to close the pipe"
        assert not is_gone(left), "after a normal exit nothing of the group is killed"
    finally:
        os.kill(left, signal.SIGKILL)


# --- timeouts ------------------------------------------------------------------------------------


def test_timeout_terminates_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    prog = script(tmp_path / "tree", f"sleep 30 &\necho $$ $! > {pidfile}\nwait\n")
    done, took = run([prog], timeout_ms=500, grace_ms=2000)
    assert done.timed_out
    assert done.exit_status is None
    assert all(is_gone(pid) for pid in pids_in(pidfile, 2))
    assert took < 2.0, "both honour SIGTERM, so the grace period is not used up"


def test_a_tree_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    prog = script(
        tmp_path / "stubborn",
        f"""\
        trap '' TERM
        sh -c 'trap "" TERM; while :; do sleep 0.05; done' &
        echo $$ $! > {pidfile}
        while :; do sleep 0.05; done
        """,
    )
    done, took = run([prog], timeout_ms=500, grace_ms=700)
    assert done.timed_out
    pids = pids_in(pidfile, 2)
    assert all(is_gone(pid) for pid in pids), f"survivors among {pids}"
    assert 1.2 <= took < 3.5, f"expected timeout 0.5 s + grace 0.7 s, then SIGKILL; took {took:.2f} s"


def test_grace_zero_kills_at_once(tmp_path: Path) -> None:
    prog = script(tmp_path / "stubborn", "trap '' TERM\nwhile :; do sleep 0.05; done\n")
    done, took = run([prog], timeout_ms=300, grace_ms=0)
    assert done.timed_out
    assert done.returncode == -signal.SIGKILL
    assert took < 1.5


def test_cancelling_a_run_kills_and_reaps_its_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    prog = script(tmp_path / "tree", f"trap '' TERM\nsleep 30 &\necho $$ $! > {pidfile}\nwait\n")

    async def scenario() -> list[int]:
        task = asyncio.create_task(subprocesses.run([prog], env=ENV, timeout_ms=30_000, grace_ms=1000))
        for _ in range(500):
            if pidfile.exists() and len(pidfile.read_text().split()) == 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        leader, child = pids_in(pidfile, 2)
        with pytest.raises(ProcessLookupError):
            os.kill(leader, 0)  # reaped, not merely a zombie, by the time cancel returns
        return [child]

    (child,) = asyncio.run(scenario())
    deadline = time.monotonic() + 2
    while not is_gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_gone(child)


# --- failing to start ----------------------------------------------------------------------------


def test_a_missing_program_is_a_result(tmp_path: Path) -> None:
    done, _ = run([str(tmp_path / "nope")])
    assert done.start_failure is StartFailure.NOT_RUNNABLE
    assert "cannot run" in done.problem
    assert "No such file" in done.problem
    assert (done.returncode, done.exit_status) == (None, None)


def test_an_environment_that_cannot_be_passed_is_a_result() -> None:
    done, _ = run(["/bin/true"], env={"A=B": "1"})
    assert done.start_failure is StartFailure.BAD_ARGUMENTS


EXHAUST_FDS = f"""
import asyncio, os
from hacluster.shell import subprocesses
{USE_UP_DESCRIPTORS}
async def main():
    before = len(os.listdir("/proc/self/fd"))
    held = use_up_descriptors()
    done = await subprocesses.run(["/bin/true"], env={{}}, timeout_ms=2000, grace_ms=0)
    for fd in held:
        os.close(fd)
    leaked = len(os.listdir("/proc/self/fd")) - before
    again = await subprocesses.run(["/bin/true"], env={{}}, timeout_ms=2000, grace_ms=0)
    print(done.start_failure.name, again.exit_status, leaked)
    print(done.problem)
asyncio.run(main())
"""


def test_no_file_descriptor_left_is_a_result_and_leaks_nothing() -> None:
    # A real EMFILE: a child interpreter lowers RLIMIT_NOFILE and uses every descriptor up.
    out = subprocess.run(
        [sys.executable, "-c", EXHAUST_FDS], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    kind, second_rc, extra_fds = out[0].split()
    assert kind == StartFailure.NO_RESOURCES.name
    assert "Too many open files" in out[1]
    assert second_rc == "0", "with descriptors back, the next run works"
    assert int(extra_fds) == 0, "the failed run closed every pipe it had made"


# --- real-time ------------------------------------------------------------------------------------


@pytest.mark.root
def test_children_never_run_real_time(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch a process to SCHED_FIFO")
    # A separate interpreter goes SCHED_FIFO *without* reset-on-fork, as one started under
    # chrt or systemd's CPUSchedulingPolicy would be; this test process never does.
    check = "import os, time; time.sleep(0.3); print(os.sched_getscheduler(0))"
    parent = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from hacluster.shell import subprocesses
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError as exc:
            print("no-fifo", exc)
            sys.exit(0)
        done = asyncio.run(subprocesses.run([sys.executable, "-c", {check!r}], env={{}}, timeout_ms=10_000, grace_ms=0))
        print(done.stdout.decode().strip())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=30, check=True
    )
    if out.stdout.startswith("no-fifo"):
        pytest.skip(f"SCHED_FIFO not permitted here: {out.stdout.strip()}")
    assert out.stdout.strip() == str(os.SCHED_OTHER)


# --- every caller follows it -----------------------------------------------------------------------


def test_an_alert_hook_that_leaves_a_process_holding_stderr_is_delivered_at_once(tmp_path: Path) -> None:
    from hacluster.shell.alerts import AlertSpec, run_hook

    pidfile = tmp_path / "pid"
    hook = script(tmp_path / "hook", f"cat > /dev/null\nsleep 30 &\necho $! > {pidfile}\nexit 0\n")
    started = time.monotonic()
    result = asyncio.run(run_hook(AlertSpec(hook, timeout_ms=3000, retries=0), {"code": "X"}, 1))
    took = time.monotonic() - started
    (left,) = pids_in(pidfile, 1)
    os.kill(left, signal.SIGKILL)
    assert (result.rc, result.timed_out) == (0, False), result
    assert took < 2.0, f"the hook's delivery waited {took:.1f} s for its leftover to close stderr"


def test_only_subprocesses_starts_or_signals_processes_in_the_shell() -> None:
    import ast

    shell = Path(subprocesses.__file__).parent
    # demo.py starts whole daemons for `hacluster demo`; they are not children of a daemon.
    allowed = {"subprocesses.py", "demo.py"}
    spawners = {
        "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
        "subprocess": {"Popen", "run", "call", "check_call", "check_output"},
        "os": {"killpg", "system", "fork", "posix_spawn", "posix_spawnp", "spawnv", "execv", "execve"},
    }
    found = []
    for path in sorted(shell.rglob("*.py")):
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.attr in spawners.get(node.value.id, ())
            ):
                found.append(f"{path.relative_to(shell)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not found, "start children through hacluster.shell.subprocesses.run:\n" + "\n".join(found)
