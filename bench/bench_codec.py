#!/usr/bin/env python3
"""Time the wire codec: decode + verify of one status packet, encode, and a sha256 packet.

Run from the repository root: ``python3 bench/bench_codec.py``.  It prints microseconds per
call (best of several repeats, so background load shows up as little as possible) and exits 0.
It is a measurement, not a test: nothing here fails on a slow machine.  See bench/README.md.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hacluster.core.codec import KeyRing, Message, decode, encode  # noqa: E402

VECTORS = ROOT / "tests" / "vectors" / "heartbeat"
TARGET_DECODE_US = 30.0
"""The goal for decode + verify of one status packet (vector 02, HMAC-SHA1)."""


REPEAT = 40
"""Many short runs, keeping the best: on a shared 2-core box the minimum is the figure
that other processes disturb least."""


def best_us(stmt: Callable[[], object], number: int = 1000) -> float:
    """Best of ``REPEAT`` runs of ``number`` calls, in CPU microseconds per call.

    The timer is this thread's CPU time, so time spent descheduled while other jobs run
    does not count; what is left is what one call costs the daemon.
    """
    runs = timeit.repeat(stmt, number=number, repeat=REPEAT, timer=time.thread_time)
    return min(runs) / number * 1e6


def main() -> int:
    sha1 = KeyRing.single("sha1", b"somesecret")
    sha256 = KeyRing.single("sha256", b"somesecret")
    packet = (VECTORS / "02-status-active-sha1.bin").read_bytes()
    message = decode(packet, sha1)
    unsigned = message.without("auth")
    packet256 = encode(unsigned, sha256)
    assert decode(packet256, sha256).without("auth") == unsigned

    crc = KeyRing.single("crc", b"", 3)
    packet_crc = (VECTORS / "06-short-token-crc.bin").read_bytes()
    status = Message.of(("t", "status"), ("st", "active"), ("dt", "bb8"), ("src", "hbr-n2"))
    rows = [
        ("decode+verify vector 02 (sha1)", best_us(lambda: decode(packet, sha1))),
        ("decode+verify same fields (sha256)", best_us(lambda: decode(packet256, sha256))),
        ("decode+verify vector 06 (crc)", best_us(lambda: decode(packet_crc, crc))),
        ("as_dict of vector 02", best_us(message.as_dict)),
        ("encode vector 02 fields (sha1)", best_us(lambda: encode(unsigned, sha1))),
        ("encode 4-field status (sha1)", best_us(lambda: encode(status, sha1))),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"python {sys.version.split()[0]}, CPU time per call, best of {REPEAT} runs")
    for name, us in rows:
        print(f"{name:<{width}}  {us:7.2f} µs")
    verdict = "meets" if rows[0][1] <= TARGET_DECODE_US else "misses"
    print(f"decode target {TARGET_DECODE_US:.0f} µs: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
