"""Heartbeat's ``realtime``: soft real-time scheduling and locked memory.

A heartbeat that waits behind a busy CPU looks exactly like a dead node, so the daemon asks
for SCHED_FIFO at ``rtprio`` and locks its pages (no page-fault stalls).  Both are best
effort: without the privilege the daemon runs on, with a warning that says what is lost.
Children (agents, fence agents, alert hooks) must not run real-time: ``SCHED_RESET_ON_FORK``
keeps them from inheriting this policy, and ``hacluster.shell.subprocesses.drop_realtime``
resets one that was inherited from elsewhere (systemd, ``chrt``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

DEFAULT_RTPRIO = 50
_MCL_CURRENT = 1
_MCL_FUTURE = 2


def enable(rtprio: int | None) -> list[str]:
    """Apply real-time settings; return the warnings for anything that could not be done."""
    warnings = []
    priority = DEFAULT_RTPRIO if rtprio is None else rtprio
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
        logger.info("real-time scheduling on policy=SCHED_FIFO rtprio=%d", priority)
    except (OSError, AttributeError) as exc:
        warnings.append(
            f"realtime: cannot set SCHED_FIFO priority {priority} ({exc}); heartbeats may be late under load"
        )
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            warnings.append(
                f"realtime: cannot lock memory ({os.strerror(err)}); page faults may delay heartbeats"
            )
        else:
            logger.info("memory locked mlockall=current,future")
    for text in warnings:
        logger.warning("%s", text)
    return warnings
