"""Run the programs the daemon starts: resource agents, fence agents, alert hooks, ``uname``.

Theory of operation.  Every child is treated the same way, so a lesson learnt with one kind
(a hung agent, a leftover daemon holding a pipe) holds for all of them.  ``run`` is the one
entry point; its rules:

- **Its own session** (``start_new_session``).  The child's pid is the id of a new process
  group, so a timeout reaches everything the program spawned.  A process that starts a session
  of its own (``setsid``) has left on purpose and is out of reach.
- **Never real-time.**  The daemon may run SCHED_FIFO; each child is put back to SCHED_OTHER
  right after it is spawned.  The daemon's own ``realtime`` uses ``SCHED_RESET_ON_FORK``; this
  covers a policy it inherited from systemd or ``chrt``.  (Not in a ``preexec_fn``: that is
  unsafe in a process with threads, and our in-process agents are threads.)
- **Bounded output, drained as it arrives.**  A chatty program never blocks on a full pipe; only
  a 64 KiB tail of each stream is held.  ``stdin`` bytes are written without blocking the loop.
- **The end is the exit, not end of file.**  A program may leave a process behind that holds
  its stdout open (a daemon it started).  Once the program itself has exited, what is in the
  pipes is read without waiting and the leftover is left alone: after a normal exit nothing of
  the group is ever killed.
- **A timeout kills the group** (``kill_group``): SIGTERM, a grace period, then SIGKILL.  ``run``
  returns only once no live process is left in the group (or, for one stuck in the kernel,
  after a bounded wait and a warning), so a caller that acts on the timeout, e.g. by starting
  the resource elsewhere, never races the old program.  A grace of 0 sends SIGKILL at once.
- **Cancellation** (the daemon stops, or gave up on the work) SIGKILLs the group and waits
  (bounded) until the program is reaped, then propagates.
- **Failing to start is a result**, never an exception: a missing or unusable file, no file
  descriptor or process left, an environment that cannot be built.  ``Completed.problem`` says
  what happened and ``start_failure`` how to judge it.

Two facts about process groups shape the helpers: ``killpg`` to a group whose processes are
gone raises ``ProcessLookupError``; and ``killpg(pgid, 0)`` still succeeds for zombies, which
PID 1 may reap late in a container, so "is anything alive" reads each process's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger(__name__)

SYSTEM_PATH: Final = "/usr/sbin:/usr/bin:/sbin:/bin"
CHILD_PATH: Final = f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}"
"""``PATH`` of agents and fence agents: our interpreter's ``bin`` first, so the launchers of our
agents (``#!/usr/bin/env python3``) find hacluster in its virtual environment."""
HELD_TAIL_BYTES: Final = 64 * 1024
READ_CHUNK: Final = 65536
KILL_WAIT_MS: Final = 1000
"""After SIGKILL, how long to wait for the group before warning that something is stuck."""
POLL_S: Final = 0.02
FINAL_READS_MAX: Final = 16
"""Reads of each pipe after the exit: enough for a full pipe buffer, never a wait."""


class StartFailure(enum.Enum):
    """Why a program could not be started; each caller decides what that means for it."""

    NOT_RUNNABLE = "not runnable"
    """The file: missing, not executable, a broken ``#!`` line."""
    BAD_ARGUMENTS = "bad arguments"
    """argv or the environment cannot be passed (a NUL byte, ``=`` in a variable name)."""
    NO_RESOURCES = "no resources"
    """Out of file descriptors, processes or memory: may work next time."""


_NOT_RUNNABLE_ERRNOS: Final = frozenset(
    {errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR, errno.ELOOP, errno.EISDIR, errno.ETXTBSY}
)


@dataclass(frozen=True, slots=True)
class Completed:
    """What one run produced.  The byte fields are tails of at most ``HELD_TAIL_BYTES``."""

    returncode: int | None
    """As ``Popen.returncode``: negative for a signal; None if it never started."""
    stdout: bytes
    stderr: bytes
    output: bytes
    """stdout and stderr together, in the order they were read."""
    timed_out: bool
    marked: str | None = None
    """The text after ``mark`` on the last stderr line that starts with it (``ocf-exit-reason:``)."""
    problem: str = ""
    """Why the program could not be started; empty when it ran."""
    start_failure: StartFailure | None = None

    @property
    def exit_status(self) -> int | None:
        """The program's own exit status; None when it timed out, was killed or never ran."""
        rc = self.returncode
        return rc if rc is not None and rc >= 0 and not self.timed_out else None


class _Capture:
    """Drains one pipe into bounded tails and picks out the last line that starts with ``mark``."""

    def __init__(self, fd: int, *, combined: bytearray, mark: bytes | None) -> None:
        self.fd = fd
        self.tail = bytearray()
        self.combined = combined
        self.mark = mark
        self.partial_line = b""
        self.marked: str | None = None

    def read_available(self) -> bool:
        """Read what is there now; True at end of file."""
        try:
            data = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            return True
        _append_tail(self.tail, data)
        _append_tail(self.combined, data)
        if self.mark is not None:
            lines = (self.partial_line + data).split(b"\n")
            self.partial_line = lines.pop()[:4096]  # the head holds the mark; keep it
            for line in lines:
                self._take(line)
        return False

    def _take(self, line: bytes) -> None:
        assert self.mark is not None
        if line.startswith(self.mark):
            text = line[len(self.mark) :].decode("utf-8", "replace").strip()
            self.marked = text or self.marked

    def finish(self) -> None:
        """Take what is in the pipe now (the writer has exited) and close it."""
        for _ in range(FINAL_READS_MAX):
            if self.read_available():
                break
        if self.mark is not None and self.partial_line:
            self._take(self.partial_line)
            self.partial_line = b""
        os.close(self.fd)


class _Feeder:
    """Writes ``data`` to a child's stdin without blocking the loop, then closes it (EOF)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
        self.loop = loop
        self.fd = fd
        self.data = memoryview(data)
        self.watching = False
        self.closed = False
        os.set_blocking(fd, False)

    def start(self) -> None:
        if self._write():
            self.close()
        else:
            self.loop.add_writer(self.fd, self._on_writable)
            self.watching = True

    def _write(self) -> bool:
        """Write what the pipe takes; True once all is written or the reader is gone."""
        while self.data:
            try:
                written = os.write(self.fd, self.data)
            except BlockingIOError:
                return False
            except OSError:  # EPIPE: the program does not read its stdin; that is its business
                return True
            self.data = self.data[written:]
        return True

    def _on_writable(self) -> None:
        if self._write():
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        if self.watching:
            self.loop.remove_writer(self.fd)
        self.closed = True
        os.close(self.fd)


def _append_tail(buffer: bytearray, data: bytes) -> None:
    buffer += data
    if len(buffer) > HELD_TAIL_BYTES:
        del buffer[: len(buffer) - HELD_TAIL_BYTES]


def _on_readable(capture: _Capture) -> None:
    if capture.read_available():
        asyncio.get_running_loop().remove_reader(capture.fd)


def _not_started(argv0: str, exc: OSError | ValueError) -> Completed:
    if isinstance(exc, ValueError):
        failure = StartFailure.BAD_ARGUMENTS
    elif exc.errno in _NOT_RUNNABLE_ERRNOS:
        failure = StartFailure.NOT_RUNNABLE
    else:
        failure = StartFailure.NO_RESOURCES
    return Completed(None, b"", b"", b"", False, problem=f"cannot run {argv0}: {exc}", start_failure=failure)


async def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_ms: int,
    grace_ms: int,
    stdin: bytes | None = None,
    mark: bytes | None = None,
    label: str = "",
) -> Completed:
    """Run ``argv`` under the rules of this module; ``label`` names it in log lines."""
    assert argv, "run needs a program"
    assert timeout_ms > 0, f"timeout_ms must be positive, got {timeout_ms}"
    assert grace_ms >= 0, f"grace_ms must not be negative, got {grace_ms}"
    loop = asyncio.get_running_loop()
    parent_fds: list[int] = []
    child_fds: list[int] = []
    try:
        # Every descriptor is made inside the try: with none left (EMFILE) the run is a result.
        out_r, out_w = os.pipe()
        parent_fds.append(out_r)
        child_fds.append(out_w)
        err_r, err_w = os.pipe()
        parent_fds.append(err_r)
        child_fds.append(err_w)
        in_fd: int = subprocess.DEVNULL
        in_w: int | None = None
        if stdin is not None:
            in_fd, in_w = os.pipe()
            child_fds.append(in_fd)
            parent_fds.append(in_w)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=in_fd,
            stdout=out_w,
            stderr=err_w,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:
        for fd in parent_fds:
            os.close(fd)
        return _not_started(argv[0], exc)
    finally:
        for fd in child_fds:
            os.close(fd)
    drop_realtime(proc.pid)
    combined = bytearray()
    captures = (_Capture(out_r, combined=combined, mark=None), _Capture(err_r, combined=combined, mark=mark))
    for capture in captures:
        os.set_blocking(capture.fd, False)
        loop.add_reader(capture.fd, _on_readable, capture)
    feeder = _Feeder(loop, in_w, stdin) if in_w is not None and stdin is not None else None
    timed_out = False
    try:
        if feeder is not None:
            feeder.start()
        try:
            await asyncio.wait_for(proc.wait(), timeout_ms / 1000)
        except TimeoutError:
            timed_out = True
            logger.warning(
                "timed out, killing its process group %s pgid=%d timeout_ms=%d", label, proc.pid, timeout_ms
            )
            await kill_group(proc, grace_ms, label=label)
    except asyncio.CancelledError:
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
            # Reaped before the cancellation goes on, so whoever cancelled finds it gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), KILL_WAIT_MS / 1000)
        raise
    finally:
        if feeder is not None:
            feeder.close()
        for capture in captures:
            loop.remove_reader(capture.fd)
            capture.finish()
    out, err = captures
    return Completed(
        proc.returncode, bytes(out.tail), bytes(err.tail), bytes(combined), timed_out, err.marked
    )


async def kill_group(proc: asyncio.subprocess.Process, grace_ms: int, *, label: str = "") -> bool:
    """SIGTERM the group of ``proc``, wait up to ``grace_ms``, then SIGKILL what is left.

    Returns True once no live process is left in the group; False (with a warning) when
    something survived SIGKILL for ``KILL_WAIT_MS`` (a process stuck in the kernel).
    """
    pgid = proc.pid
    try:
        if grace_ms > 0:
            deadline = time.monotonic() + grace_ms / 1000
            signal_group(pgid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), grace_ms / 1000)
            # The program itself is gone (or out of grace); its children may still be winding down.
            await wait_for_group_exit(pgid, deadline)
    finally:
        signal_group(pgid, signal.SIGKILL)  # also when cancelled meanwhile
    await proc.wait()
    if await wait_for_group_exit(pgid, time.monotonic() + KILL_WAIT_MS / 1000):
        return True
    logger.warning("processes survived SIGKILL (stuck in the kernel?) %s pgid=%d", label, pgid)
    return False


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False if no process is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_has_live_members(pgid: int) -> bool:
    """Whether a process that is not a zombie is in the group (read from /proc)."""
    if not signal_group(pgid, 0):
        return False
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    wanted = str(pgid).encode()
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue  # it ended while we looked
        # After the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == wanted and fields[0] not in (b"Z", b"X"):
            return True
    return False


async def wait_for_group_exit(pgid: int, deadline: float) -> bool:
    """Poll until no live process is left in the group; False if the deadline came first."""
    while group_has_live_members(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def drop_realtime(pid: int) -> None:
    """Put a freshly spawned child back to normal scheduling if the daemon runs real-time."""
    try:
        if os.sched_getscheduler(0) not in (os.SCHED_FIFO, os.SCHED_RR):
            return
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            logger.warning("cannot reset a child's scheduling to SCHED_OTHER pid=%d error=%s", pid, exc)
