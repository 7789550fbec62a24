"""IPv6-only clusters: real daemons over ucast6 and mcast6, ping6, and an IPv6 floating address.

The labs have no IPv4 address at all (``Lab(ipv6=True)``), so whatever works here works over
IPv6 alone:

- three nodes over ``ucast6``, the resources a group of an IPv6 ``IPaddr2`` (announced with
  unsolicited neighbour advertisements, usable at once) and a Dummy; a client namespace on
  the same bridge probes the address every 2 ms; the holder crashes (every process killed,
  its link down); both survivors declare it dead within deadtime, and the address answers
  from a survivor, never from two nodes at once;
- three nodes over ``mcast6`` with a ``ping6`` node (the client namespace): every node
  active, the ping node answering; a crash is detected within deadtime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from daemons import DaemonCluster, require_lab
from rm_lab import RmCluster, RmLab, VipProbe

pytestmark = [pytest.mark.root, pytest.mark.integration]

SLACK_MS = 150


def ipv4_addresses(lab: RmLab, i: int) -> list[str]:
    done = lab.exec(i, ["ip", "-j", "-4", "addr", "show"])
    return [a["local"] for link in json.loads(done.stdout) for a in link.get("addr_info", [])]


def test_ipv6_only_cluster_fails_an_ipv6_address_over(tmp_path: Path) -> None:
    require_lab()
    with RmLab("hac6", nodes=3, ipv6=True) as lab, RmCluster(lab, media="ucast6") as cluster:
        for i in range(1, 5):
            assert ipv4_addresses(lab, i) == ["127.0.0.1"], "the lab must be IPv6-only"
        cluster.write_resources_crm(
            f"primitive vip ocf:hacluster:IPaddr2 params ip={lab.vip6} cidr_netmask=64 "
            "op monitor interval=1s timeout=20s\n"
            "primitive dummy ocf:hacluster:Dummy op monitor interval=1s timeout=20s\n"
            "group grp vip dummy\n"
            "property stonith-enabled=false\n"
            "rsc_defaults resource-stickiness=100\n"
        )
        cluster.start_all()
        cluster.wait_all_active(timeout_s=15)
        holder = cluster.wait_group_started("grp", timeout_s=20)
        with VipProbe(lab, tmp_path, address=lab.vip6, interval_ms=2) as probe:
            probe.wait_answer_from(holder, timeout_s=5)
            survivors = [name for name in cluster.daemon_names if name != holder]
            crashed_ns = cluster.crash(holder)
            seen = cluster.wait_states(survivors, holder, "dead", timeout_s=3)
            new_holder = cluster.wait_group_started("grp", timeout_s=10, not_on=holder)
            first = probe.wait_answer_from(new_holder, timeout_s=5, after_ns=crashed_ns)
            recovery_ms = (first.recv_ns - crashed_ns) / 1e6
            delays_ms = {name: round((at * 1e9 - crashed_ns) / 1e6) for name, at in seen.items()}
            print(
                f"IPv6: crash of {holder}: dead after {delays_ms} ms; {lab.vip6} answers from {new_holder} "
                f"{recovery_ms:.0f} ms after the crash"
            )
            for name, delay_ms in delays_ms.items():
                assert delay_ms <= cluster.deadtime_ms + SLACK_MS, (name, delay_ms)
            assert recovery_ms < 2000, recovery_ms
            assert probe.double_answers() == []
            assert probe.holders_in_order() == [holder, new_holder]
        log = cluster.log(new_holder)
        assert f"vip added ip={lab.vip6}" in log, cluster.diagnostics([new_holder])


def test_mcast6_cluster_with_a_ping6_node() -> None:
    require_lab()
    with RmLab("hacm6", nodes=3, ipv6=True) as lab:
        router = lab.address6(lab.client)
        with DaemonCluster(lab, nodes=3, media="mcast6", extra=[f"ping6 {router}", "deadping 1s"]) as cluster:
            cluster.start_all()
            cluster.wait_all_active(timeout_s=15)
            for name in cluster.daemon_names:
                cluster.wait_state(name, router, "ping", timeout_s=5)
                doc = cluster.status(name)
                assert doc is not None
                assert [link["name"] for link in doc["links"]] == [
                    f"mcast6 {cluster.iface(cluster.index(name))}"
                ]
            killed_at = cluster.kill("n2")
            seen = cluster.wait_states(["n1", "n3"], "n2", "dead", timeout_s=3)
            delays_ms = {name: round((at - killed_at) * 1000) for name, at in seen.items()}
            print(f"mcast6: kill -9 n2 declared dead after {delays_ms} ms")
            for name, delay_ms in delays_ms.items():
                assert delay_ms <= cluster.deadtime_ms + SLACK_MS, (name, delay_ms)
            # The ping node stops answering when the client's link goes: deadping declares it dead.
            lab.set_link(lab.client, up=False)
            cluster.wait_state("n1", router, "dead", timeout_s=3)
            time.sleep(0.1)
            assert cluster.states("n1")["n3"] == "active"
