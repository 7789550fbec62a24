"""Process groups of the programs the daemon runs (agents, fence agents).

Each program runs in a session of its own, so a timeout can reach everything it spawned.
Two facts shape these helpers: ``killpg`` to a group whose processes are gone raises
``ProcessLookupError``; and ``killpg(pgid, 0)`` still succeeds for zombies, which PID 1 may
reap late in a container, so "is anything alive" has to look at each process's state.
"""

from __future__ import annotations

import os


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
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue  # it ended while we looked
        # After the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False
