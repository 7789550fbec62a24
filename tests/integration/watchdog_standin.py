"""A stand-in watchdog device for daemon tests: a FIFO that records every write and can fire.

    dog = StandInWatchdog(tmp / "watchdog", timeout_s=1.0, fire=lambda: os.kill(pid, SIGKILL))
    dog.start()            # before the daemon opens it (a FIFO needs its reader first)
    ... watchdog <dog.path> in ha.cf ...
    dog.wait_pets(5, timeout_s=5)
    dog.fired_at           # monotonic time it fired, None while fed

Theory of operation: the daemon opens ``path`` as it would ``/dev/watchdog``.  A FIFO takes no
ioctl (``ENOTTY``), so the daemon keeps "the device's own" timeout, which here is
``timeout_s``.  A reader thread records ``(monotonic, bytes)`` for every write.  It behaves as
the kernel's watchdog core does: armed from the first byte; every byte feeds it; a ``V``
followed by the writer's close disarms it; a close without ``V`` leaves it armed.  When armed
and unfed for ``timeout_s`` it *fires*: it calls ``fire`` once (the test kills the node's
processes, as a reset would) and records the time.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path


class StandInWatchdog:
    def __init__(self, path: Path, *, timeout_s: float, fire: Callable[[], object] | None = None) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.fire = fire
        self.writes: list[tuple[float, bytes]] = []
        self.fired_at: float | None = None
        self.closed_at: float | None = None
        self.disarmed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"standin-{path.name}", daemon=True)
        self._fd: int | None = None

    def start(self) -> StandInWatchdog:
        os.mkfifo(self.path, 0o600)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> StandInWatchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the tests read ----------------------------------------------------------------

    def pet_times(self) -> list[float]:
        with self._lock:
            return [t for t, data in self.writes for byte in data if byte != ord("V")]

    def data(self) -> bytes:
        with self._lock:
            return b"".join(data for _, data in self.writes)

    def last_write_at(self) -> float | None:
        with self._lock:
            return self.writes[-1][0] if self.writes else None

    def wait_pets(self, count: int, *, timeout_s: float) -> list[float]:
        deadline = time.monotonic() + timeout_s
        while len(pets := self.pet_times()) < count:
            assert time.monotonic() < deadline, f"only {len(pets)} pets of {count} in {timeout_s}s"
            time.sleep(0.02)
        return pets

    def wait_fired(self, *, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while self.fired_at is None:
            assert time.monotonic() < deadline, f"the watchdog did not fire within {timeout_s}s"
            time.sleep(0.02)
        return self.fired_at

    # --- the device -------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._fd is not None
        writer_seen = False
        while not self._stop.is_set():
            readable, _, _ = select.select([self._fd], [], [], 0.02)
            now = time.monotonic()
            if readable:
                try:
                    data = os.read(self._fd, 4096)
                except BlockingIOError:
                    data = None
                if data:
                    writer_seen = True
                    with self._lock:
                        self.writes.append((now, data))
                        self.closed_at = None
                elif data == b"" and writer_seen and self.closed_at is None:
                    # Every writer closed: EOF.  Disarmed only by a V just before the close.
                    with self._lock:
                        self.closed_at = now
                        self.disarmed = bool(self.writes) and self.writes[-1][1].endswith(b"V")
                if data == b"":
                    time.sleep(0.02)  # no writer: a FIFO then reads as EOF at once, every time
            self._check_fire(time.monotonic())

    def _check_fire(self, now: float) -> None:
        last = self.last_write_at()
        if last is None or self.fired_at is not None or self.disarmed:
            return
        if now - last >= self.timeout_s:
            self.fired_at = now
            if self.fire is not None:
                self.fire()
