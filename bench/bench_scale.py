#!/usr/bin/env python3
"""Footprint at 16 nodes: RSS and CPU of each daemon in a 16-node cluster.

    python3 bench/bench_scale.py                         # 16 daemons, keepalive 200ms, 60 s
    python3 bench/bench_scale.py --nodes 16 --warmup 30 --duration 60 --profile

Sixteen daemons run on loopback (ucast to every node's 127.0.0.x address, each bound to
its own with ``bind_address``; no root or namespaces needed), keepalive 200 ms, deadtime
2 s, realtime off (mlockall would make RSS count every mapped page).  After ``--warmup``
seconds with every node seeing all 16 ``active``, each daemon's CPU time (user + system,
psutil) is read at the start and the end of ``--duration`` seconds; CPU % is that delta
over the wall time, in percent of one core.  RSS is sampled every 5 s; the peak and the
final USS (memory only this process holds) are reported.

``--profile`` additionally records one daemon with py-spy (if installed) for 20 s after the
measurement and prints the top functions; nothing is added to the daemon for this.

Target (issue 2): <= 40 MB RSS and <= 1 % of a core per daemon.  Writes
bench/results/scale-<nodes>n-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from lab import Daemons, NetLab, machine, sigterm_as_interrupt, summary_stats, write_result

RSS_TARGET_MB = 40.0
CPU_TARGET_PERCENT = 1.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--keepalive-ms", type=int, default=200)
    parser.add_argument("--deadtime-ms", type=int, default=2000)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds after all active (default 30)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--profile", action="store_true", help="py-spy one daemon for 20 s afterwards")
    parser.add_argument(
        "--media",
        choices=("ucast", "bcast"),
        default="ucast",
        help="ucast over loopback (no root; one send per node per message) or bcast in network "
        "namespaces (root; one send per message, as Heartbeat's default medium)",
    )
    args = parser.parse_args()
    sigterm_as_interrupt()
    names = [f"n{i}" for i in range(1, args.nodes + 1)]
    addresses = [f"127.0.0.{i + 1}" for i in range(1, args.nodes + 1)]

    def media(i: int) -> list[str]:
        return [f"bind_address lo {addresses[i - 1]}", *(f"ucast lo {a}" for a in addresses)]

    with contextlib.ExitStack() as stack:
        run = None
        if args.media == "bcast":
            lab = stack.enter_context(NetLab("bscale", args.nodes))
            media = lab.bcast_media
            run = lab.run
        return _measure(args, names, media, run)


def _measure(args: argparse.Namespace, names: list[str], media: Any, run: Any) -> int:

    label = f"scale-{args.nodes}n-{args.media}"
    print(
        f"{label}: {args.nodes} daemons, {args.media}, keepalive {args.keepalive_ms} ms, "
        f"warm-up {args.warmup:g} s, measured {args.duration:g} s",
        flush=True,
    )
    profile_text = ""
    with Daemons(
        names,
        media=media,
        keepalive_ms=args.keepalive_ms,
        deadtime_ms=args.deadtime_ms,
        initdead_ms=max(10_000, 2 * args.deadtime_ms),
        port=free_port(),
        run=run,
    ) as ds:
        ds.start_all()
        ds.wait_all_active(timeout_s=60)
        print(f"all {args.nodes} active; warming up", flush=True)
        time.sleep(args.warmup)
        procs = {name: psutil.Process(ds.pids[name]) for name in names}
        cpu0 = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        t0 = time.monotonic()
        rss_peak = {name: 0 for name in names}
        end = t0 + args.duration
        while (now := time.monotonic()) < end:
            for name, p in procs.items():
                rss_peak[name] = max(rss_peak[name], p.memory_info().rss)
            time.sleep(min(5.0, max(0.0, end - now)))
        cpu1 = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        elapsed = time.monotonic() - t0
        full = {name: p.memory_full_info() for name, p in procs.items()}
        states_ok = all(
            all(state == "active" for state in ds.states(o).values()) for o in (names[0], names[-1])
        )
        packets = ds.status(names[0])
        if args.profile:
            profile_text = profile(ds.pids[names[0]])
    per_node: dict[str, Any] = {}
    for name in names:
        per_node[name] = {
            "cpu_percent": round((cpu1[name] - cpu0[name]) / elapsed * 100, 3),
            "rss_mb_peak": round(rss_peak[name] / 2**20, 2),
            "rss_mb_end": round(full[name].rss / 2**20, 2),
            "uss_mb_end": round(full[name].uss / 2**20, 2),
        }
    cpu = [v["cpu_percent"] for v in per_node.values()]
    rss = [v["rss_mb_peak"] for v in per_node.values()]
    uss = [v["uss_mb_end"] for v in per_node.values()]
    met_rss = max(rss) <= RSS_TARGET_MB
    met_cpu = max(cpu) <= CPU_TARGET_PERCENT
    summary = {
        "bench": "scale",
        "nodes": args.nodes,
        "media": "ucast over loopback (bind_address per node)"
        if args.media == "ucast"
        else "bcast in namespaces",
        "keepalive_ms": args.keepalive_ms,
        "deadtime_ms": args.deadtime_ms,
        "warmup_s": args.warmup,
        "duration_s": round(elapsed, 1),
        "all_active_at_end": states_ok,
        "cpu_percent_of_one_core": summary_stats(cpu),
        "rss_mb_peak": summary_stats(rss),
        "uss_mb_end": summary_stats(uss),
        "packets_seen_by_n1": None if packets is None else packets["packets"],
        "per_node": per_node,
        "target_rss_mb": RSS_TARGET_MB,
        "target_cpu_percent": CPU_TARGET_PERCENT,
        "target_met": {"rss": met_rss, "cpu": met_cpu},
        "profile_top": profile_text.splitlines()[:40],
        "machine": machine(),
    }
    path = write_result(label, summary)
    print(f"\n{label}: {elapsed:.0f} s measured after {args.warmup:g} s warm-up; all active: {states_ok}")
    print(f"  CPU % of one core per daemon: {summary_stats(cpu)}")
    print(f"  RSS MB per daemon (peak):     {summary_stats(rss)}")
    print(f"  USS MB per daemon (end):      {summary_stats(uss)}")
    print(f"  target RSS <= {RSS_TARGET_MB:g} MB: {'MET' if met_rss else 'MISSED'}")
    print(f"  target CPU <= {CPU_TARGET_PERCENT:g} %: {'MET' if met_cpu else 'MISSED'}")
    if profile_text:
        print(
            "  py-spy top functions (n1, 20 s):\n"
            + "\n".join("    " + line for line in profile_text.splitlines()[:25])
        )
    print(f"  written {path}")
    return 0


def profile(pid: int) -> str:
    """Sample ``pid`` with py-spy for 20 s; return its flat profile (or why not)."""
    spy = shutil.which("py-spy")
    if spy is None:
        return "py-spy not installed (pip install py-spy)"
    out = Path(f"/tmp/hacbench-pyspy-{pid}.txt")
    done = subprocess.run(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            "20",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        return f"py-spy failed: {done.stderr.strip()[-500:]}"
    # raw format: "frame;frame;...;leaf count" - aggregate self time per leaf and total per frame.
    leaf: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    out.unlink(missing_ok=True)
    lines = [f"{total} samples while running (idle time is not sampled)", "self%  function"]
    for frame, count in sorted(leaf.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"{100 * count / max(1, total):5.1f}  {frame}")
    lines.append("incl%  function")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:20]:
        lines.append(f"{100 * count / max(1, total):5.1f}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every daemon killed and its files removed", file=sys.stderr)
        sys.exit(130)
