"""Interop with a real Linux-HA Heartbeat 3.0.6 node over bcast, sha1 keys.

The real node (``heartbeat_lab.HeartbeatNode``) runs in namespace 1 as ``hb1``; our daemon
runs in namespace 2 as ``n2``; both use keepalive 200 ms and deadtime 1000 ms.  Checks:

- the real node's ``cl_status nodestatus n2`` says ``active`` and ours sees ``hb1`` active;
- after ``kill -9`` of our daemon, the real node says ``dead`` within its deadtime;
- our daemon, restarted, is ``active`` again on the real node (a new generation);
- after ``kill -9`` of the real node, ours declares it dead within the dead interval the
  real node advertised (``dt``; Heartbeat adds 2000 ms during its first 5 s).
"""

from __future__ import annotations

import time

import pytest
from daemons import DaemonCluster, node_entry, require, require_lab
from heartbeat_lab import HeartbeatNode, heartbeat_available, make_authkeys, make_ha_cf
from netns import Lab

pytestmark = [pytest.mark.root, pytest.mark.integration]

KEEPALIVE_MS = 200
DEADTIME_MS = 1000
HEARTBEAT_SLACK_MS = 400
"""Heartbeat checks for timeouts on its own loop; its verdict can trail by a few hundred ms,
and cl_status (a process started per poll) adds its own latency."""
OUR_SLACK_MS = 150


def test_heartbeat_interop_bcast_sha1() -> None:
    require_lab()
    require(heartbeat_available())
    names = ["hb1", "n2"]
    with (
        Lab("haci", nodes=2) as lab,
        DaemonCluster(
            lab, names=names, daemons=[2], keepalive_ms=KEEPALIVE_MS, deadtime_ms=DEADTIME_MS
        ) as cluster,
    ):
        hb = HeartbeatNode(
            lab.namespace(1),
            "hb1",
            cluster.root / "hb1",
            make_ha_cf(
                nodes=names,
                interfaces=[lab.iface(1)],
                keepalive_ms=KEEPALIVE_MS,
                deadtime_ms=DEADTIME_MS,
                udpport=cluster.port,
            ),
            make_authkeys(cluster.key, "sha1"),
        )
        try:
            hb.start()
            cluster.start("n2")
            try:
                hb.wait_nodestatus("n2", "active", timeout_s=20)
                cluster.wait_state("n2", "hb1", "active", timeout_s=10)
            except (AssertionError, TimeoutError):
                print(hb.diagnostics())
                raise

            # Ours crashes: the real node declares it dead within its deadtime.
            killed_at = cluster.kill("n2")
            hb.wait_nodestatus("n2", "dead", timeout_s=5)
            delay_ms = round((time.monotonic() - killed_at) * 1000)
            print(f"kill -9 of our node: Heartbeat says dead after {delay_ms} ms (deadtime {DEADTIME_MS} ms)")
            assert delay_ms <= DEADTIME_MS + HEARTBEAT_SLACK_MS, f"{delay_ms} ms\n{hb.diagnostics()}"

            # Ours restarts with a higher generation: the real node takes it back.
            cluster.start("n2")
            hb.wait_nodestatus("n2", "active", timeout_s=15)
            cluster.wait_state("n2", "hb1", "active", timeout_s=10)
            assert "Heartbeat restart on node n2" in hb.log, hb.diagnostics()

            # The real node crashes: ours declares it dead within the dt it advertised.
            entry = node_entry(cluster.status("n2"), "hb1")
            assert entry is not None
            advertised_ms = entry["dead_interval_ms"]
            assert DEADTIME_MS <= advertised_ms <= DEADTIME_MS + 2000, entry
            hb.kill()
            killed_at = time.monotonic()
            seen_at = cluster.wait_state("n2", "hb1", "dead", timeout_s=advertised_ms / 1000 + 3)
            delay_ms = round((seen_at - killed_at) * 1000)
            print(
                f"kill -9 of Heartbeat: our node says dead after {delay_ms} ms (advertised dt {advertised_ms} ms)"
            )
            assert delay_ms <= advertised_ms + OUR_SLACK_MS, delay_ms
            assert cluster.states("n2")["n2"] == "active"
        finally:
            hb.kill()
