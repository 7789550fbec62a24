"""The watchdog device: open it, set its timeout, pet it from the driver loop, disarm it on a
clean stop.  Only I/O; whether to pet is the core's rule (``core/watchdog.py``).

Theory of operation
-------------------
``watchdog /dev/watchdog`` in ha.cf (Heartbeat's directive) makes the daemon open the device
at start, before any link: opening arms it.  The timeout is set with ``WDIOC_SETTIMEOUT``
(``watchdog_timeout``, default deadtime + 10 ms rounded up to seconds, as Heartbeat does);
a device that does not take it (``ENOTTY``: not a watchdog at all, ``EINVAL``/``EOPNOTSUPP``:
a fixed timeout) keeps its own, read with ``WDIOC_GETTIMEOUT`` where it can be.

The driver calls ``pet_if_due`` between inputs, so a pet proves the driver loop turned: a
SIGSTOPped daemon, or one whose event loop is blocked, pets nothing and the device resets the
machine.  A pet is one byte written (Heartbeat's and sbd's way; any byte but ``V``), every
``min(keepalive, timeout / 3)``.  Before each pet the core's verdict is asked: once it says
stop (self-fencing), nothing is written again.

``close(disarm=True)`` writes the magic character ``V`` first, which tells the driver that the
close is deliberate (unless it was built with ``nowayout``); any other close — a crash, a
stop with resources left running, a node that is fencing itself — leaves the device armed.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from hacluster.core.watchdog import HEALTHY, PetVerdict
from hacluster.errors import HAClusterError

logger = logging.getLogger(__name__)

# <linux/watchdog.h>: _IOR('W', 7, int), _IOWR('W', 6, int).
WDIOC_SETTIMEOUT: Final = 0xC0045706
WDIOC_GETTIMEOUT: Final = 0x80045707
PET: Final = b"\0"
MAGIC_CLOSE: Final = b"V"
PET_INTERVAL_MIN_MS: Final = 100
_UNSUPPORTED: Final = frozenset({errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP})


class WatchdogError(HAClusterError):
    """The configured watchdog cannot be opened or armed: the daemon refuses to start."""


@dataclass(frozen=True, slots=True)
class WatchdogStatistics:
    device: str
    timeout_ms: int
    timeout_source: str
    """``set`` (WDIOC_SETTIMEOUT took it), ``device`` (its own, read back) or ``unknown``."""
    pet_interval_ms: int
    pets: int
    failures: int
    petting: bool
    reason: str
    is_kernel_watchdog: bool


def is_kernel_watchdog(fd: int) -> bool:
    """Whether ``fd`` is a character device of the kernel's watchdog class (sysfs says so)."""
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode):
        return False
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if (major, minor) == (10, 130):
        return True  # the legacy misc /dev/watchdog
    subsystem = os.path.realpath(f"/sys/dev/char/{major}:{minor}/subsystem")
    return os.path.basename(subsystem) == "watchdog"


class Watchdog:
    """One open watchdog device."""

    def __init__(self, device: str, timeout_ms: int, keepalive_ms: int) -> None:
        self.device = device
        self.timeout_ms = timeout_ms
        self._keepalive_ms = keepalive_ms
        self._fd: int | None = None
        self.timeout_source = "unknown"
        self.pet_interval_ms = 0
        self._next_pet_ms = 0
        self._pets = 0
        self._failures = 0
        self.verdict: PetVerdict = HEALTHY
        self.kernel_watchdog = False

    def open(self, now_ms: int) -> None:
        """Open and arm the device, set its timeout, pet once; ``WatchdogError`` if impossible."""
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise WatchdogError(
                f"watchdog {self.device}: cannot open it ({exc.strerror}); load a watchdog driver "
                "(e.g. modprobe softdog), fix the watchdog line in ha.cf, or remove it"
            ) from None
        self._fd = fd
        self.kernel_watchdog = is_kernel_watchdog(fd)
        if not self.kernel_watchdog:
            logger.warning(
                "watchdog device=%s is not a kernel watchdog device: petting it cannot reset this machine",
                self.device,
            )
        self._set_timeout()
        self.pet_interval_ms = max(PET_INTERVAL_MIN_MS, min(self._keepalive_ms, self.timeout_ms // 3))
        logger.info(
            "watchdog open device=%s timeout_ms=%d source=%s pet_interval_ms=%d",
            self.device,
            self.timeout_ms,
            self.timeout_source,
            self.pet_interval_ms,
        )
        if not self._write(PET):
            self.close(disarm=True)
            raise WatchdogError(f"watchdog {self.device}: the first pet failed; check the device")
        self._pets += 1
        self._next_pet_ms = now_ms + self.pet_interval_ms

    def _set_timeout(self) -> None:
        assert self._fd is not None
        wanted = max(1, self.timeout_ms // 1000)
        try:
            answer = fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", wanted))
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise WatchdogError(
                    f"watchdog {self.device}: setting its timeout to {wanted} s failed ({exc.strerror})"
                ) from None
            self._device_timeout(wanted, exc)
            return
        actual = struct.unpack("i", answer)[0]
        self.timeout_source = "set"
        if actual > 0 and actual != wanted:
            logger.warning(
                "watchdog device=%s took timeout_s=%d instead of %d (the driver rounds or clamps it)",
                self.device,
                actual,
                wanted,
            )
            self.timeout_ms = actual * 1000

    def _device_timeout(self, wanted: int, cause: OSError) -> None:
        """WDIOC_SETTIMEOUT is not supported: keep the device's own timeout, read if possible."""
        assert self._fd is not None
        try:
            answer = fcntl.ioctl(self._fd, WDIOC_GETTIMEOUT, struct.pack("i", 0))
        except OSError:
            logger.warning(
                "watchdog device=%s takes no timeout (%s) and does not tell its own; petting every "
                "min(keepalive, %d s / 3) as configured",
                self.device,
                cause.strerror,
                wanted,
            )
            return
        actual = struct.unpack("i", answer)[0]
        self.timeout_source = "device"
        logger.warning(
            "watchdog device=%s takes no timeout (%s); using its own timeout_s=%d",
            self.device,
            cause.strerror,
            actual,
        )
        if actual > 0:
            self.timeout_ms = actual * 1000

    def next_pet_ms(self) -> int | None:
        """When the driver must come round next to pet; None once petting has stopped."""
        if self._fd is None or not self.verdict.pet:
            return None
        return self._next_pet_ms

    def pet_if_due(self, now_ms: int, verdict: Callable[[], PetVerdict]) -> None:
        """Pet if the interval has passed and the core's verdict (asked only then) allows it."""
        if self._fd is None or not self.verdict.pet or now_ms < self._next_pet_ms:
            return
        self.verdict = verdict()
        if not self.verdict.pet:
            logger.critical(
                "watchdog petting stopped: %s; the watchdog resets this node within %d ms [WATCHDOG_SELF_FENCE]",
                self.verdict.reason,
                self.timeout_ms,
            )
            return
        self._next_pet_ms = now_ms + self.pet_interval_ms
        if self._write(PET):
            self._pets += 1

    def _write(self, data: bytes) -> bool:
        assert self._fd is not None
        try:
            os.write(self._fd, data)
        except OSError as exc:
            self._failures += 1
            if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
                logger.critical(
                    "watchdog write failed device=%s error=%s failures=%d",
                    self.device,
                    exc.strerror,
                    self._failures,
                )
            return False
        return True

    def close(self, *, disarm: bool) -> None:
        """Close the device; ``disarm`` writes the magic close first (a clean stop only)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if disarm and self.verdict.pet:
            self._fd = fd
            disarmed = self._write(MAGIC_CLOSE)
            self._fd = None
            logger.info("watchdog disarmed device=%s magic_close=%s", self.device, disarmed)
        else:
            logger.warning("watchdog closed armed device=%s: it resets this node unless petted", self.device)
        os.close(fd)

    def statistics(self) -> WatchdogStatistics:
        return WatchdogStatistics(
            device=self.device,
            timeout_ms=self.timeout_ms,
            timeout_source=self.timeout_source,
            pet_interval_ms=self.pet_interval_ms,
            pets=self._pets,
            failures=self._failures,
            petting=self._fd is not None and self.verdict.pet,
            reason=self.verdict.reason,
            is_kernel_watchdog=self.kernel_watchdog,
        )
