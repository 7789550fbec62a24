"""Per-node clocks for the simulators: one global virtual time, a local reading per node.

A node's monotonic clock reads ``offset + global + global × drift_ppm / 10⁶``, where the
offset holds the large random start offset (code that assumes absolute time shows up) plus
every forward step injected since (a VM resumed, an NTP slew gone wrong).  Cores are fed
their local reading; the deadlines they return are local and are turned back into the
earliest global time at which the local clock reaches them.
"""

from __future__ import annotations

DRIFT_PPM_MAX = 200
"""Clock drift per node, parts per million either way (real quartz: tens of ppm)."""


def to_local(global_ms: int, offset_ms: int, drift_ppm: int) -> int:
    return offset_ms + global_ms + (global_ms * drift_ppm) // 1_000_000


def to_global(local_ms: int, offset_ms: int, drift_ppm: int) -> int:
    """The earliest global time at which the local clock reads ``local_ms`` or later."""
    base = local_ms - offset_ms
    if drift_ppm == 0:
        return max(0, base)
    guess = max(0, (base * 1_000_000) // (1_000_000 + drift_ppm))
    while to_local(guess, offset_ms, drift_ppm) < local_ms:
        guess += 1
    while guess > 0 and to_local(guess - 1, offset_ms, drift_ppm) >= local_ms:
        guess -= 1
    return guess
