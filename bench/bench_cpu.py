#!/usr/bin/env python3
"""Steady-state CPU and RSS per node, hacluster beside Heartbeat 3.0.6 and keepalived, in one run.

    sudo python3 bench/bench_cpu.py                              # every system, 1 round of 60 s
    sudo python3 bench/bench_cpu.py --rounds 3 --seconds 60 --systems hacluster-a,hacluster-a-aes

The systems are ``bench_failover.py``'s, started the same way (two nodes in network
namespaces on one bridge, a client namespace, every node running the probe responder):

* ``hacluster-a``: keepalive 100 ms, deadtime 500 ms, a group with ``ocf:hacluster:IPaddr2``
  monitored every second, stickiness 100 (issue 10 item 3's 2-node case; target ≤ 0.5 %).
* ``hacluster-a-aes``: the same with authkeys method ``aes256gcm`` (the encrypted path).
* ``hacluster-b``: keepalive 20 ms, deadtime 100 ms, ``realtime on``.
* ``heartbeat``: Heartbeat 3.0.6, keepalive 20 ms, deadtime 100 ms, ``IPaddr`` in haresources.
* ``keepalived``: keepalived VRRPv3, ``advert_int 0.02``.

Nothing is crashed.  Once a system is settled (group started / resources acquired) and
``--warmup`` seconds have passed, the CPU time (user + system) of every process in each node's
namespace, except the benchmark's own responder, is read at the start and the end of
``--seconds``; CPU % is that delta over the wall time, in percent of one core, per node.
Processes that start and end inside the window (none for these configurations in steady
state) would not be counted.  RSS is the sum over the same processes at the end.  Systems
take turns in each round, so drifts of the machine's load touch all alike.

Needs root.  Prints a summary and writes bench/results/cpu-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import psutil  # noqa: E402
from bench_failover import Hacluster, Heartbeat, Keepalived, System  # noqa: E402
from lab import machine, summary_stats, write_result  # noqa: E402
from rm_lab import RmLab, set_child_subreaper  # noqa: E402

SYSTEMS: dict[str, Callable[[RmLab, Path], System]] = {
    "hacluster-a": lambda lab, wd: Hacluster(lab, wd, keepalive_ms=100, deadtime_ms=500, realtime=False),
    "hacluster-a-aes": lambda lab, wd: Hacluster(
        lab, wd, keepalive_ms=100, deadtime_ms=500, realtime=False, method="aes256gcm"
    ),
    "hacluster-b": lambda lab, wd: Hacluster(lab, wd, keepalive_ms=20, deadtime_ms=100, realtime=True),
    "heartbeat": lambda lab, wd: Heartbeat(lab, wd),
    "keepalived": lambda lab, wd: Keepalived(lab, wd),
}
TARGET_PERCENT = {"hacluster-a": 0.5, "hacluster-a-aes": 0.5}


def _processes(lab: RmLab, i: int) -> list[psutil.Process]:
    """Every process of node ``i`` but the benchmark's responder."""
    out = []
    for pid in lab.pids(i):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if any("rm_lab.py" in part for part in proc.cmdline()):
                continue
            out.append(proc)
    return out


def _cpu_s(procs: list[psutil.Process]) -> dict[int, float]:
    times: dict[int, float] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cpu = proc.cpu_times()
            times[proc.pid] = cpu.user + cpu.system
    return times


def measure(key: str, seconds: float, warmup_s: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bcpu-"))
    workdir.chmod(0o755)
    try:
        with RmLab(f"bc{key[:1]}{key[-1]}", nodes=2, iface_name="eth0") as lab:
            system = SYSTEMS[key](lab, workdir)
            try:
                system.start()
                time.sleep(warmup_s)
                procs = {i: _processes(lab, i) for i in (1, 2)}
                if not all(procs.values()):
                    raise RuntimeError(
                        f"{key}: a node runs nothing: {procs} {getattr(system, 'log', str)('n1')}"
                    )
                before = {i: _cpu_s(p) for i, p in procs.items()}
                started = time.monotonic()
                time.sleep(seconds)
                elapsed = time.monotonic() - started
                after = {i: _cpu_s(p) for i, p in procs.items()}
                rss = {
                    i: sum(p.memory_info().rss for p in ps if p.is_running()) / 2**20
                    for i, ps in procs.items()
                }
            finally:
                system.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = {
        f"n{i}": round(
            100 * sum(after[i][pid] - before[i][pid] for pid in after[i] if pid in before[i]) / elapsed, 3
        )
        for i in (1, 2)
    }
    return {
        "cpu_percent": cpu,
        "rss_mb": {f"n{i}": round(v, 1) for i, v in rss.items()},
        "processes": {f"n{i}": len(p) for i, p in procs.items()},
        "seconds": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per system and round")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after the system settled")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root (network namespaces)")
    keys = [k for k in args.systems.split(",") if k]
    unknown = [k for k in keys if k not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    set_child_subreaper(True)
    load = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    for round_ in range(args.rounds):
        for key in keys:
            run = measure(key, args.seconds, args.warmup)
            runs[key].append(run)
            print(
                f"round {round_ + 1} {key:<16} cpu % {run['cpu_percent']} rss MB {run['rss_mb']}", flush=True
            )
    result: dict[str, Any] = {
        "bench": "cpu",
        "machine": machine(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "settings": vars(args),
        "systems": {},
    }
    print(f"\n{'system':<16} {'cpu % median':>12} {'min':>6} {'max':>6} {'rss MB':>8}  target")
    for key in keys:
        cpu = [v for run in runs[key] for v in run["cpu_percent"].values()]
        rss = [v for run in runs[key] for v in run["rss_mb"].values()]
        target = TARGET_PERCENT.get(key)
        verdict = "" if target is None else f"<= {target} %: {'MET' if max(cpu) <= target else 'MISSED'}"
        result["systems"][key] = {
            "cpu_percent_of_core": summary_stats(cpu),
            "rss_mb": summary_stats(rss),
            "runs": runs[key],
        }
        print(
            f"{key:<16} {statistics.median(cpu):>12.3f} {min(cpu):>6.2f} {max(cpu):>6.2f} "
            f"{statistics.median(rss):>8.1f}  {verdict}"
        )
    path = write_result("cpu", result)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
