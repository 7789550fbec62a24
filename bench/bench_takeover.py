#!/usr/bin/env python3
"""The address part of a takeover, step by step: ``ocf:hacluster:IPaddr2 start`` as the daemon runs it.

    sudo python3 bench/bench_takeover.py --trials 50

One network namespace (``bto-<pid>``) holding a veth pair, the first end addressed
10.233.0.1/24 and up.  Each trial runs what the in-process agent's ``start`` does, timed step by
step with CLOCK_MONOTONIC in this process, then ``stop`` (untimed):

* ``netlink_open``: ``IPRoute()`` (a netlink socket, bound);
* ``resolve``: the target (interface lookup, route, link attributes; ``IPaddr2._target``);
* ``check``: is the address there already (``RTM_GETADDR`` dump);
* ``add``: ``RTM_NEWADDR`` until the kernel's ack;
* ``close``: the netlink socket closed;
* ``first_garp``: the first gratuitous ARP (a packet socket made and bound, the frame built
  and sent; the rest of the burst goes from a thread);

plus ``agent_start``, the agent's whole ``run("start", env)`` in this thread (the sum above
plus logging and parameter checks) and ``thread_roundtrip``: a thread started and its result
back in an asyncio loop via ``call_soon_threadsafe``, which is how the daemon runs and hears
from an in-process agent.  The daemon-side steps (``NODE_DEAD`` → the agent called, the
agent's result → ``RESOURCE_START``) come from the survivor's log in ``bench_failover.py``.

Needs root.  Prints medians and p95 in ms and writes bench/results/takeover-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from lab import machine, summary_stats, write_result  # noqa: E402

NS = f"bto-{os.getpid()}"
VIP = "10.233.0.50"


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def thread_roundtrip_ms() -> float:
    async def once() -> float:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        started = time.monotonic_ns()

        def work() -> None:
            loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=work, daemon=True).start()
        await done
        return (time.monotonic_ns() - started) / 1e6

    return asyncio.run(once())


def trial(env: dict[str, str]) -> dict[str, float]:
    from hacluster.agents import ipaddr2

    agent = ipaddr2.IPaddr2Agent()
    ctx = agent.context("start", env)
    marks: list[tuple[str, int]] = []

    def mark(name: str) -> None:
        marks.append((name, time.monotonic_ns()))

    mark("begin")
    ipr = ipaddr2._ipr(env)
    mark("netlink_open")
    target = agent._target(ctx, ipr)
    mark("resolve")
    assert not agent._has_address(ipr, target)
    mark("check")
    ipr.addr("add", index=target.ifindex, address=target.ip, prefixlen=target.prefixlen)
    mark("add")
    ipr.close()
    mark("close")
    ipaddr2.send_garp(target.nic, target.ip, 1, 0)
    mark("first_garp")
    out = {name: (t - marks[i][1]) / 1e6 for i, (name, t) in enumerate(marks[1:])}
    assert agent.run("stop", env).rc == 0
    started = time.monotonic_ns()
    result = agent.run("start", env)
    out["agent_start"] = (time.monotonic_ns() - started) / 1e6
    assert result.rc == 0, result
    assert agent.run("stop", env).rc == 0
    out["thread_roundtrip"] = thread_roundtrip_ms()
    return out


def inside(trials: int) -> dict[str, Any]:
    env = {
        "OCF_RESKEY_ip": VIP,
        "OCF_RESKEY_cidr_netmask": "24",
        "OCF_RESKEY_arp_count": "1",
        "OCF_RESOURCE_INSTANCE": "vip",
        "HA_RSCTMP": "/tmp",
    }
    trial(env)  # warm: imports, first netlink socket
    rows = [trial(env) for _ in range(trials)]
    return {key: summary_stats([row[key] for row in rows]) for key in rows[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        import json

        print(json.dumps(inside(args.trials)))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root (a network namespace)")
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "add", "ta", "type", "veth", "peer", "name", "tb")
        sh("ip", "-n", NS, "addr", "add", "10.233.0.1/24", "dev", "ta")
        for nic in ("ta", "tb", "lo"):
            sh("ip", "-n", NS, "link", "set", nic, "up")
        done = subprocess.run(
            ["ip", "netns", "exec", NS, sys.executable, __file__, "--inside", "--trials", str(args.trials)],
            check=True,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(HERE.parent)),
        )
    finally:
        sh("ip", "netns", "del", NS)
    import json

    steps: dict[str, Any] = json.loads(done.stdout)
    print(f"{'step':<18} {'median ms':>10} {'p95 ms':>8}")
    for key, stats in steps.items():
        print(f"{key:<18} {stats['median']:>10.3f} {stats['p95']:>8.3f}")
    path = write_result(
        "takeover", {"bench": "takeover", "trials": args.trials, "steps": steps, "machine": machine()}
    )
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
