"""Node attributes between real daemons in network namespaces, with our Pacemaker tools.

- ``crm_attribute`` run against one node's daemon sets attributes (transient and permanent,
  of this node and of the other) that ``hacrm node attribute`` on the other node reads.
- Pacemaker's own ``ocf:pacemaker:ping`` agent (Debian's ``pacemaker`` package), run as a
  primitive, sets its attribute through our ``attrd_updater`` (the executor puts our tools
  first on the agent's PATH), and the other node sees it.
- ha.cf ping nodes set ``pingd`` (× ``pingd_multiplier``); a node whose ping target becomes
  unreachable (a blackhole route in its namespace) drops to 0, after deadping and dampening.
- A ``haresources`` cluster gives its resources to the node that still sees the ping node
  (Heartbeat's ipfail).

The ping target is the lab's client namespace: an address inside the test's own namespaces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemons import REPO, require, require_lab
from rm_lab import RmCluster, RmLab

from hacluster.shell.executor import TOOLS_DIR

pytestmark = [pytest.mark.root, pytest.mark.integration]

PING_AGENT = Path("/usr/lib/ocf/resource.d/pacemaker/ping")


def ping_extra(lab: RmLab) -> list[str]:
    return [
        f"ping {lab.address(lab.client)}",
        "deadping 1s",
        "pingd_multiplier 100",
        "pingd_dampen 500ms",
    ]


def blackhole(lab: RmLab, i: int, address: str) -> None:
    """Node ``i`` can no longer reach ``address`` (its own namespace's routing table)."""
    done = lab.exec(i, ["ip", "route", "add", "blackhole", f"{address}/32"])
    assert done.returncode == 0, done.stderr


def tool(cluster: RmCluster, node: str, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run our executable ``name`` against ``node``'s daemon, as an agent there would."""
    env = dict(
        os.environ,
        HACLUSTER_SOCKET=str(cluster.socket_path(node)),
        HACLUSTER_PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
    )
    return subprocess.run(
        [str(TOOLS_DIR / name), *args], capture_output=True, text=True, timeout=20, check=False, env=env
    )


def attribute(cluster: RmCluster, observer: str, node: str, name: str, *extra: str) -> str | None:
    done = cluster.cli(observer, "node", "attribute", node, name, *extra, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def test_tools_and_the_ping_agent_set_attributes_every_node_sees() -> None:
    require_lab()
    require(None if PING_AGENT.exists() else f"{PING_AGENT} missing: apt-get install pacemaker")
    with RmLab("att", nodes=2) as lab, RmCluster(lab, extra=ping_extra(lab)) as cluster:
        target = lab.address(lab.client)
        cluster.write_resources_crm(
            f"primitive conn ocf:pacemaker:ping params host_list={target} name=pingtest multiplier=10 "
            "dampen=1s use_fping=0 attempts=1 timeout=1 op monitor interval=2s timeout=20s\n"
            "property stonith-enabled=false\n"
        )
        cluster.start_all()

        # crm_attribute on n1: a transient attribute of n2 and a permanent one of n1
        done = tool(cluster, "n1", "crm_attribute", "-N", "n2", "-n", "rack", "-v", "b", "-l", "reboot")
        assert done.returncode == 0, done.stderr
        done = tool(cluster, "n1", "crm_attribute", "-N", "n1", "-n", "site", "-v", "east")
        assert done.returncode == 0, done.stderr
        cluster.wait_for("n2 sees rack=b", lambda: attribute(cluster, "n2", "n2", "rack") == "b", 5)
        cluster.wait_for("n2 sees site=east", lambda: attribute(cluster, "n2", "n1", "site") == "east", 5)
        assert attribute(cluster, "n2", "n2", "rack", "--lifetime", "forever") is None
        queried = tool(cluster, "n2", "crm_attribute", "-N", "n2", "-n", "rack", "-l", "reboot", "-G")
        assert queried.stdout == "scope=status  name=rack value=b\n", queried
        # a bad argument is refused with its status and changes nothing
        epoch = cluster.config_epoch("n1")
        bad = tool(cluster, "n1", "crm_attribute", "-N", "n1", "-n", "site", "-v", "x", "-l", "sometimes")
        assert bad.returncode == 64
        assert "invalid choice" in bad.stderr
        bad = tool(cluster, "n1", "crm_attribute", "-N", "nobody", "-n", "site", "-v", "x")
        assert bad.returncode == 1
        assert "no node named 'nobody'" in bad.stderr
        missing = tool(cluster, "n1", "crm_attribute", "-N", "n1", "-n", "never-set", "-G", "-q")
        assert missing.returncode == 105
        assert cluster.config_epoch("n1") == epoch
        assert attribute(cluster, "n2", "n1", "site") == "east"
        nodes = tool(cluster, "n1", "crm_node", "-l")
        assert nodes.stdout == "1 n1 member\n2 n2 member\n", nodes

        # Pacemaker's ping agent on whichever node runs it, through our attrd_updater
        def conn_holder() -> str | None:
            doc = cluster.status("n1")
            entry = next((r for r in (doc or {}).get("resources", []) if r["id"] == "conn"), None)
            return entry["node"] if entry and entry["state"] == "started" else None

        cluster.wait_for("conn started", lambda: conn_holder() is not None, 20)
        holder = conn_holder()
        assert holder is not None
        other = "n2" if holder == "n1" else "n1"
        cluster.wait_for(
            f"{other} sees pingtest=10 on {holder}",
            lambda: attribute(cluster, other, holder, "pingtest", "--lifetime", "reboot") == "10",
            10,
        )
        query = tool(cluster, other, "attrd_updater", "-n", "pingtest", "-Q", "-N", holder)
        assert query.stdout == f'name="pingtest" host="{holder}" value="10"\n', query

        # ha.cf ping nodes: pingd = 1 reachable x 100, until n1 loses its route to the target
        for node in ("n1", "n2"):
            cluster.wait_for(
                f"pingd of {node}", lambda n=node: attribute(cluster, "n2", n, "pingd") == "100", 10
            )
        blackhole(lab, 1, target)
        cluster.wait_for("pingd of n1 drops", lambda: attribute(cluster, "n2", "n1", "pingd") == "0", 10)
        assert attribute(cluster, "n1", "n2", "pingd") == "100"


def test_haresources_cluster_follows_connectivity_like_ipfail() -> None:
    require_lab()
    with (
        RmLab("atf", nodes=2) as lab,
        RmCluster(lab, extra=[*ping_extra(lab), "auto_failback off"]) as cluster,
    ):
        cluster.write_haresources(f"n1 {lab.vip}/24\n")
        cluster.start_all()
        doc = cluster.status("n1")
        assert doc is not None
        group = doc["groups"][0]["id"]
        assert cluster.wait_group_started(group, timeout_s=20) == "n1"
        for node in ("n1", "n2"):
            cluster.wait_for(
                f"pingd of {node}", lambda n=node: attribute(cluster, "n1", n, "pingd") == "100", 10
            )
        blackhole(lab, 1, lab.address(lab.client))
        assert cluster.wait_group_started(group, timeout_s=15, on="n2") == "n2"
