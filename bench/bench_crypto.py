#!/usr/bin/env python3
"""Encryption against signing, in one run: CPU per node and failover, sha1 beside the AEADs.

    sudo python3 bench/bench_crypto.py                        # 3 CPU rounds of 60 s, 20 failovers each
    sudo python3 bench/bench_crypto.py --rounds 2 --cpu-seconds 30 --trials 10

*CPU*: for each round and each method (sha1, aes256gcm, chacha20poly1305, in that order every
round, so slow drifts of the machine's load touch all three alike), three daemons over bcast
in network namespaces (keepalive 100 ms, deadtime 500 ms, realtime off, one Dummy resource
so the resource manager's messages flow too).  Once all are active and 10 s have passed,
the daemons' own CPU time (user + system, psutil) is taken over ``--cpu-seconds``: per node,
in percent of one core.  The figure per method is the median over every node and round; the
target is the AEADs within 10 % of sha1.

*Failover*: ``bench_failover.py``'s hacluster-a trial (two nodes, a VIP group, the holder
crashed: every process killed and its link down; recovery = first answer of the VIP from
the survivor − the crash) for each method, ``--trials`` each.  Target: median ≤ 500 ms, as
sha1 has today.

Needs root.  Prints a summary and writes bench/results/crypto-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE.parent))

import psutil  # noqa: E402
from bench_failover import Hacluster, run_system  # noqa: E402
from daemons import DaemonCluster  # noqa: E402
from lab import machine, summary_stats, write_result  # noqa: E402
from netns import Lab  # noqa: E402
from rm_lab import set_child_subreaper  # noqa: E402

METHODS = ("sha1", "aes256gcm", "chacha20poly1305")
WARMUP_S = 10
CPU_RATIO_MAX = 1.10
FAILOVER_MEDIAN_MAX_MS = 500
RESOURCES = (
    "primitive dummy ocf:hacluster:Dummy op monitor interval=2s timeout=20s\nproperty stonith-enabled=false\n"
)


def cpu_round(method: str, seconds: float) -> list[float]:
    """Percent of a core used by each of three daemons over ``seconds``."""
    with Lab("bcpu", nodes=3) as lab, DaemonCluster(lab, method=method) as cluster:
        for name in cluster.daemon_names:
            (cluster.node_dir(name) / "resources.crm").write_text(RESOURCES)
        cluster.start_all()
        cluster.wait_all_active(timeout_s=15)
        time.sleep(WARMUP_S)
        procs = [psutil.Process(cluster.pid(name)) for name in cluster.daemon_names]
        before = [sum(p.cpu_times()[:2]) for p in procs]
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        after = [sum(p.cpu_times()[:2]) for p in procs]
        cluster.wait_all_active(timeout_s=1)
        dropped = {
            name: {
                k: v
                for k, v in (cluster.status(name) or {}).get("packets", {}).get("dropped", {}).items()
                if v
            }
            for name in cluster.daemon_names
        }
        if any(dropped.values()):
            print(f"    drops during the round: {dropped}")
    return [round(100 * (b - a) / elapsed, 3) for a, b in zip(before, after, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds per method (default 3)")
    parser.add_argument(
        "--cpu-seconds", type=float, default=60.0, help="length of one CPU round (default 60)"
    )
    parser.add_argument("--trials", type=int, default=20, help="failovers per method (default 20)")
    parser.add_argument("--probe-ms", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=15.0)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root (network and mount namespaces)")
    result: dict[str, Any] = {"machine": machine(), "settings": vars(args), "cpu": {}, "failover": {}}
    samples: dict[str, list[float]] = {method: [] for method in METHODS}
    for round_ in range(args.rounds):
        for method in METHODS:
            values = cpu_round(method, args.cpu_seconds)
            samples[method] += values
            print(f"cpu round {round_ + 1} {method:<17} {values} % of a core", flush=True)
    base = statistics.median(samples["sha1"])
    for method in METHODS:
        median = statistics.median(samples[method])
        result["cpu"][method] = {
            "percent_of_core": summary_stats(samples[method]),
            "ratio_to_sha1": round(median / base, 3),
        }
    set_child_subreaper(True)
    for method in METHODS:
        print(f"failover {method}: {args.trials} trials", flush=True)

        def make(lab: Any, workdir: Path, method: str = method) -> Hacluster:
            return Hacluster(lab, workdir, keepalive_ms=100, deadtime_ms=500, realtime=False, method=method)

        result["failover"][method] = run_system(
            make, args.trials, args.probe_ms, args.timeout_s, f"bx{method[:4]}", "eth0"
        )
    print()
    print(f"{'method':<17} {'cpu % median':>13} {'vs sha1':>8}   {'failover median':>15} {'p95':>7} {'n':>3}")
    verdicts = []
    for method in METHODS:
        cpu = result["cpu"][method]
        recovery = result["failover"][method].get("recovery_ms", {"n": 0})
        print(
            f"{method:<17} {cpu['percent_of_core']['median']:>13.3f} {cpu['ratio_to_sha1']:>8.3f}   "
            f"{recovery.get('median', float('nan')):>15.1f} {recovery.get('p95', float('nan')):>7.1f} {recovery['n']:>3}"
        )
        if method != "sha1":
            verdicts.append(f"{method} cpu {'meets' if cpu['ratio_to_sha1'] <= CPU_RATIO_MAX else 'misses'}")
        median = recovery.get("median")
        verdicts.append(
            f"{method} failover {'meets' if median is not None and median <= FAILOVER_MEDIAN_MAX_MS else 'misses'}"
        )
    print("targets: " + "; ".join(verdicts))
    path = write_result("crypto", result)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
