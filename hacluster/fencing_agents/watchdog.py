"""fence_watchdog: the survivor's half of watchdog self-fencing.

A node that loses the cluster stops feeding its hardware watchdog, which resets it within
``watchdog_timeout`` seconds even when user space is hung.  The survivors cannot see that
happen; they wait ``2 × watchdog_timeout`` (the sbd rule of thumb for ``msgwait``) and then
count the target as fenced.  That is only sound where every node really has a watchdog, so
this agent refuses (exit 1, saying why) when this node has none: ``validate-all``,
``monitor``, ``off`` and ``reboot`` all check ``watchdog_device`` first.

The check never *opens* the device: opening /dev/watchdog arms it, and closing it without the
magic character (or with ``nowayout``) reboots the machine.  It checks that the path is a
character device registered with the kernel's watchdog class (``/sys/dev/char/M:m``),
readable and writable by us.
"""

from __future__ import annotations

import os
import stat
import time
from typing import ClassVar, Final

from hacluster.fencing_agents.api import FenceAgent, FenceError, Param

SYS_DEV_CHAR: Final = "/sys/dev/char"
MISC_WATCHDOG_MINOR: Final = 130
MISC_MAJOR: Final = 10


def watchdog_problem(path: str) -> str | None:
    """Why ``path`` is not a usable watchdog device, or None."""
    refuse = "refusing to count on watchdog self-fencing"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (
            f"no watchdog device at {path}; {refuse}: load a watchdog driver (e.g. modprobe softdog "
            "for testing, or the board's driver) or configure another fence device"
        )
    except OSError as exc:
        return f"cannot inspect watchdog device {path} ({exc}); {refuse}"
    if not stat.S_ISCHR(st.st_mode):
        return f"{path} is not a character device; {refuse}: point watchdog_device at /dev/watchdog"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if not _is_watchdog(major, minor):
        return f"{path} (char {major}:{minor}) is not a watchdog device; {refuse}"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by uid {os.geteuid()}; {refuse}"
    return None


def _is_watchdog(major: int, minor: int) -> bool:
    if (major, minor) == (MISC_MAJOR, MISC_WATCHDOG_MINOR):
        return True  # the legacy /dev/watchdog misc node
    try:
        subsystem = os.readlink(f"{SYS_DEV_CHAR}/{major}:{minor}/subsystem")
    except OSError:
        return False
    return os.path.basename(subsystem) == "watchdog"


class WatchdogAgent(FenceAgent):
    name = "fence_watchdog"
    shortdesc = "Watchdog self-fencing: wait for the target's watchdog to reset it"
    longdesc = (
        "fence_watchdog counts a target as fenced once twice watchdog_timeout has passed, "
        "relying on the target's own hardware watchdog to have reset it. It refuses to work "
        "when this node has no watchdog device, since then the cluster evidently does not run "
        "with watchdogs. It never opens the device (opening arms it)."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("plug", "Name of the node that is expected to self-fence", short="-n"),
        Param("watchdog_device", "Watchdog device that must exist on every node", default="/dev/watchdog"),
        Param("watchdog_timeout", "The nodes' watchdog timeout in seconds", "second", "5"),
    )
    multi_port = False
    actions = frozenset(["off", "reboot", "list", "monitor", "metadata", "validate-all"])
    verify_power = False

    def validate(self, action: str) -> list[str]:
        problems = []
        problem = watchdog_problem(self.options.text("watchdog_device"))
        if problem:
            problems.append(problem)
        try:
            if self.options.seconds("watchdog_timeout") <= 0:
                problems.append("watchdog_timeout must be above 0 seconds")
        except FenceError as exc:
            problems.append(str(exc))
        return problems

    def monitor(self) -> int:
        return 0  # validate already checked the device

    def power_off(self) -> str | None:
        wait_s = 2 * self.options.seconds("watchdog_timeout")
        self.warn(f"waiting {wait_s:g} s for {self.options.text('plug') or 'the target'} to self-fence")
        time.sleep(wait_s)
        return None
