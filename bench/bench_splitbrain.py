#!/usr/bin/env python3
"""Split brain, measured: randomised two-node partitions with real daemons and real fencing.

    sudo python3 bench/bench_splitbrain.py --trials 50
    sudo python3 bench/bench_splitbrain.py --trials 50 --vip      # with an IPaddr2 in the group

Two daemons in network namespaces (each with its own mount namespace) run a group whose
resource is ``ocf:test:Journal`` (it journals every start and stop with CLOCK_MONOTONIC
times and runs a writer that ticks while active), fenced by ``stonith:fence_lab`` (SIGKILL
of every process of the target's namespace, links down).  Each trial waits a random time
(0-1 s), sometimes starts a move of the group and cuts 0-400 ms later, then pulls one node's
cable (its bridge port down), waits until one node is powered off, waits 1.5 s more to see
whether the other was shot too, records who won, then heals and reboots the loser.

Counted over all trials (targets: zero for the first three):

- **double-active instants**: overlaps of two nodes' active intervals of the journal (the
  definition is in tests/integration/fence_lab_cluster.py: from the start line until the
  stop line or an upper bound of the node's fence time);
- **zombie ticks**: writer ticks outside every active interval (a fence that did not kill);
- **double fencing**: trials where both nodes ended powered off;
- who won (the node that held the group, or the other), time from the cut to the first
  power-off and to the survivor's start.

Writes bench/results/splitbrain-<settings>-<time>.json.  Needs root.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from fence_lab_cluster import FenceCluster, SplitTrial, split_trial  # noqa: E402
from lab import machine, parse_ms, require_root, sigterm_as_interrupt, summary_stats, write_result  # noqa: E402
from rm_lab import RmLab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--keepalive", default="100ms")
    parser.add_argument("--deadtime", default="500ms")
    parser.add_argument("--move-probability", type=float, default=0.3)
    parser.add_argument("--vip", action="store_true", help="put an IPaddr2 VIP first in the group")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--priority-fencing-delay",
        default=None,
        help="set the property (default: the daemon's keepalive+100ms)",
    )
    args = parser.parse_args()
    require_root()
    sigterm_as_interrupt()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    keepalive_ms, deadtime_ms = parse_ms(args.keepalive), parse_ms(args.deadtime)
    trials: list[SplitTrial] = []
    failure = ""
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="splitbrain-") as tmp,
        RmLab("sbb", nodes=2) as lab,
        FenceCluster(
            lab,
            journal_dir=Path(tmp) / "j",
            keepalive_ms=keepalive_ms,
            deadtime_ms=deadtime_ms,
            initdead_ms=10_000,
        ) as cluster,
    ):
        Path(tmp).chmod(0o755)
        extra = (
            []
            if args.priority_fencing_delay is None
            else [f"property priority-fencing-delay={args.priority_fencing_delay}"]
        )
        cluster.write_resources_crm(cluster.crm(vip=args.vip, extra=extra))
        cluster.start_all()
        try:
            for i in range(args.trials):
                trial = split_trial(cluster, rng, move_probability=args.move_probability)
                trials.append(trial)
                print(
                    f"trial {i + 1:3d}: holder {trial.holder} cut {trial.cut}"
                    f"{' (moving)' if trial.moving else ''} -> off {','.join(trial.powered_off)} "
                    f"in {trial.first_off_ms:.0f} ms, survivor {trial.survivor} "
                    f"started {'-' if trial.started_ms is None else f'{trial.started_ms:.0f} ms'}",
                    flush=True,
                )
        except KeyboardInterrupt:
            print("interrupted: summarising the trials so far", flush=True)
        except AssertionError as exc:  # a trial that never settled: report it, keep the data
            failure = str(exc).splitlines()[0]
            print(f"trial {len(trials) + 1} failed: {failure}", flush=True)
            print(cluster.diagnostics(tail_lines=60), flush=True)
        report = cluster.journal_report()
    summary = _summary(args, seed, trials, report, time.monotonic() - started)
    summary["failure"] = failure
    suffix = ("-vip" if args.vip else "") + (
        "" if args.priority_fencing_delay is None else f"-pfd{parse_ms(args.priority_fencing_delay)}"
    )
    path = write_result(f"splitbrain-ka{keepalive_ms}-dt{deadtime_ms}{suffix}", summary)
    print(
        f"{len(trials)} trials: double-active instants {summary['double_active_instants']}, "
        f"zombie ticks {summary['zombie_ticks']}, double fencing {summary['double_fencing']}, "
        f"holder won {summary['holder_won']}/{len(trials)}"
    )
    print(f"cut -> first power-off (ms): {summary['first_off_ms']}")
    print(f"cut -> survivor's start (ms): {summary['survivor_start_ms']}")
    print(f"wrote {path}")
    return 0


def _summary(args: Any, seed: int, trials: list[SplitTrial], report: Any, wall_s: float) -> dict[str, Any]:
    double = [t for t in trials if len(t.powered_off) > 1]
    return {
        "benchmark": "splitbrain",
        "seed": seed,
        "trials": len(trials),
        "keepalive": args.keepalive,
        "deadtime": args.deadtime,
        "vip": args.vip,
        "move_probability": args.move_probability,
        "priority_fencing_delay": args.priority_fencing_delay,
        "double_active_instants": len(report.overlaps),
        "double_active_ms": round(sum(o.ms for o in report.overlaps), 3),
        "zombie_ticks": len(report.zombie_ticks),
        "double_fencing": len(double),
        "holder_won": sum(1 for t in trials if t.survivor == t.holder),
        "moving_trials": sum(1 for t in trials if t.moving),
        "journal_starts": report.starts,
        "journal_stops": report.stops,
        "first_off_ms": summary_stats([t.first_off_ms for t in trials]),
        "survivor_start_ms": summary_stats([t.started_ms for t in trials if t.started_ms is not None]),
        "per_trial": [
            {
                "holder": t.holder,
                "cut": t.cut,
                "moving": t.moving,
                "powered_off": list(t.powered_off),
                "survivor": t.survivor,
                "first_off_ms": round(t.first_off_ms, 1),
                "started_ms": None if t.started_ms is None else round(t.started_ms, 1),
                "fences": [
                    {k: f[k] for k in ("target", "by", "result", "ms", "reason", "observer")}
                    for f in t.fences
                ],
            }
            for t in trials
        ],
        "wall_s": round(wall_s, 1),
        "machine": machine(),
    }


if __name__ == "__main__":
    sys.exit(main())
