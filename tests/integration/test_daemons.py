"""Real daemons in network namespaces: join, crash, graceful stop and restart, per medium.

Each test runs 3–5 ``hacluster daemon`` processes, one per namespace on one bridge, with
keepalive 100 ms and deadtime 500 ms, and checks through each daemon's API socket that:

- every node sees every other ``active``;
- after ``kill -9`` of one node, every other declares it ``dead`` within deadtime plus
  ``SLACK_MS`` of the kill (the kill time stands in for the victim's last packet, which was
  sent at most one keepalive earlier, so the real margin is larger);
- after SIGTERM of another, its peers mark it ``dead`` at once (its ``shutdone``), well
  before deadtime;
- the crashed node, restarted, is ``active`` again everywhere with a higher generation.
"""

from __future__ import annotations

import pytest
from daemons import DaemonCluster, require_lab
from netns import Lab

pytestmark = [pytest.mark.root, pytest.mark.integration]

SLACK_MS = 150
"""Allowed lateness of a death verdict beyond deadtime: scheduling plus the 10 ms poll."""
GRACEFUL_MAX_MS = 200
"""A goodbye arrives in a few ms; this bound is far below the 500 ms deadtime."""


def crash_stop_restart(cluster: DaemonCluster, victim: str, leaver: str) -> None:
    names = cluster.daemon_names
    cluster.start_all()
    cluster.wait_all_active(timeout_s=10)
    generation_before = cluster.generation_seen(names[0], victim)
    assert generation_before is not None

    # Crash: kill -9, every survivor declares the victim dead within deadtime.
    survivors = [name for name in names if name != victim]
    killed_at = cluster.kill(victim)
    seen = cluster.wait_states(survivors, victim, "dead", timeout_s=3)
    delays_ms = {name: round((at - killed_at) * 1000) for name, at in seen.items()}
    print(f"kill -9 {victim}: declared dead after {delays_ms} ms (deadtime {cluster.deadtime_ms} ms)")
    for name, delay_ms in delays_ms.items():
        assert delay_ms <= cluster.deadtime_ms + SLACK_MS, (
            f"{name} took {delay_ms} ms to declare {victim} dead; deadtime is {cluster.deadtime_ms} ms"
        )
    # The others must not have lost anyone else on the way.
    for name in survivors:
        states = cluster.states(name)
        assert all(states[other] == "active" for other in survivors), (name, states)

    # Graceful stop: the goodbye makes peers mark it dead long before deadtime.
    remaining = [name for name in survivors if name != leaver]
    stopped_at = cluster.terminate(leaver)
    seen = cluster.wait_states(remaining, leaver, "dead", timeout_s=3)
    delays_ms = {name: round((at - stopped_at) * 1000) for name, at in seen.items()}
    print(f"SIGTERM {leaver}: marked dead after {delays_ms} ms")
    assert cluster.wait_exit(leaver) == 0, cluster.diagnostics([leaver])
    for name, delay_ms in delays_ms.items():
        assert delay_ms <= GRACEFUL_MAX_MS, f"{name} took {delay_ms} ms to notice {leaver}'s graceful stop"
    assert "shutdone" in cluster.log(remaining[0]), cluster.diagnostics(remaining[:1])

    # Restart of the crashed node: active again everywhere, with a higher generation.
    cluster.start(victim)
    cluster.wait_all_active([*remaining, victim], timeout_s=10)
    for name in remaining:
        generation_after = cluster.generation_seen(name, victim)
        assert generation_after is not None
        assert generation_after > generation_before, (name, generation_before, generation_after)
        assert cluster.states(name)[leaver] == "dead", "the stopped node must stay dead"


def test_daemons_bcast_three_nodes() -> None:
    require_lab()
    with Lab("hacb", nodes=3) as lab, DaemonCluster(lab, media="bcast") as cluster:
        crash_stop_restart(cluster, victim="n3", leaver="n2")


def test_daemons_mcast_five_nodes() -> None:
    require_lab()
    with Lab("hacm", nodes=5) as lab, DaemonCluster(lab, media="mcast") as cluster:
        crash_stop_restart(cluster, victim="n2", leaver="n5")


def test_daemons_ucast_four_nodes() -> None:
    require_lab()
    with Lab("hacu", nodes=4) as lab, DaemonCluster(lab, media="ucast") as cluster:
        crash_stop_restart(cluster, victim="n4", leaver="n1")
        # ucast sends one copy per peer: the status shows the one ucast link per peer up.
        states = cluster.link_states("n2", "n4")
        assert states == {"ucast e2": "up"}, states
