"""Clones and promotable clones between three real daemons in network namespaces.

- An anonymous clone of Debian's ``ocf:heartbeat:Dummy`` runs on every node and keeps running
  on the others when one node crashes (and comes back on it after its reboot).
- Pacemaker's own ``ocf:pacemaker:Stateful`` (it sets its promotion score with
  ``crm_attribute --promotion``, i.e. our tool) as a promotable clone, with a VIP
  (``ocf:hacluster:IPaddr2`` on the lab bridge) colocated with the Promoted role and ordered
  after promote; fencing on with the lab device.  Exactly one Promoted and the VIP on it; a
  crash of the promoted node makes a survivor Promoted and the VIP follows; a sampler reading
  every live node's ground truth (Stateful's state file, the VIP on the interface) never sees
  two Promoted nor two VIP holders, and the client's prober never gets two answers to a probe.
- A location rule on a node attribute keeps a resource off a node until ``crm_attribute``
  sets the attribute there.
- ``ocf:pacemaker:ping`` as a clone, and a rule on its attribute moving a VIP away from a
  node whose ping target (the lab's client namespace) becomes unreachable.

Stateful keeps its state in ``$HA_VARRUN``, ``/var/run`` on a real node — one directory per
machine, shared here by every namespace.  So each daemon bind-mounts its own directory over a
shared mount point inside its private mount namespace, and the clone's ``state`` parameter
points there: every node has its own state file, which the test reads from outside.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from daemons import require, require_lab
from fence_lab_cluster import fence_device_crm
from rm_lab import RmCluster, RmLab, VipProbe
from test_attributes_e2e import blackhole, tool

pytestmark = [pytest.mark.root, pytest.mark.integration]

DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")
STATEFUL = Path("/usr/lib/ocf/resource.d/pacemaker/Stateful")
PING = Path("/usr/lib/ocf/resource.d/pacemaker/ping")


def require_agents(*agents: Path) -> None:
    for agent in agents:
        require(None if agent.exists() else f"{agent} missing: apt-get install resource-agents pacemaker")


class CloneCluster(RmCluster):
    """RmCluster whose daemons each see their own ``varrun`` directory at ``self.varrun``."""

    def __init__(self, lab: RmLab, **kwargs: Any) -> None:
        super().__init__(lab, **kwargs)
        self.varrun = self.root / "varrun"
        self.varrun.mkdir()
        self.crashed: set[str] = set()
        for name in self.names:
            (self.node_dir(name) / "varrun").mkdir()

    def __enter__(self) -> CloneCluster:
        return self

    def launcher(self, name: str) -> list[str]:
        argv = super().launcher(name)
        assert argv[:4] == ["unshare", "-m", "--propagation", "private"], argv
        script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        own = self.node_dir(name) / "varrun"
        return [*argv[:4], "/bin/sh", "-c", script, "sh", str(own), str(self.varrun), *argv[4:]]

    # --- ground truth -----------------------------------------------------------------------

    def stateful_role(self, name: str) -> str | None:
        """What Stateful's state file on ``name`` says (Promoted, Unpromoted), None if absent."""
        try:
            return (self.node_dir(name) / "varrun" / "Stateful-st.state").read_text().strip()
        except OSError:
            return None

    def holds_address(self, name: str, address: str) -> bool:
        out = self.rmlab.exec(self.index(name), ["ip", "-o", "addr", "show"]).stdout
        return f" {address}/" in out

    def crash(self, name: str) -> int:
        self.crashed.add(name)  # from now on its files say nothing about a live node
        return super().crash(name)

    def reboot_crashed(self, name: str, vip: str) -> None:
        """After a crash (and the fence): links up, VIP and scratch state gone, daemon up."""
        i = self.index(name)
        self.rmlab.exec(i, ["ip", "link", "set", self.iface(i), "up"])
        for entry in (self.node_dir(name) / "varrun").iterdir():
            entry.unlink()
        self.reboot(name, vip=vip)
        self.crashed.discard(name)

    # --- what the daemons report ------------------------------------------------------------

    def instances(self, observer: str, clone: str) -> list[dict[str, Any]]:
        doc = self.status(observer)
        return [r for r in (doc or {}).get("resources", []) if r.get("clone") == clone]

    def started_on(self, observer: str, clone: str) -> list[str]:
        return sorted(
            r["node"]
            for r in self.instances(observer, clone)
            if r["state"] == "started" and isinstance(r["node"], str)
        )

    def promoted_on(self, observer: str, clone: str) -> list[str]:
        return sorted(
            r["node"]
            for r in self.instances(observer, clone)
            if r["state"] == "started" and r.get("role") == "Promoted" and isinstance(r["node"], str)
        )

    def resource_node(self, observer: str, rsc: str) -> str | None:
        entry = self.resources(observer).get(rsc)
        if entry is None or entry["state"] != "started" or not isinstance(entry["node"], str):
            return None
        return str(entry["node"])

    def live(self) -> list[str]:
        return [n for n in self.daemon_names if n not in self.crashed and self.is_running(n)]

    def wait_everywhere(self, what: str, predicate: Any, timeout_s: float) -> None:
        """``predicate(observer)`` holds for every live daemon."""
        self.wait_for(what, lambda: all(predicate(o) for o in self.live()), timeout_s)


class Sampler:
    """Reads every live node's ground truth over and over: who is Promoted, who holds the VIP."""

    def __init__(self, cluster: CloneCluster, vip: str) -> None:
        self.cluster = cluster
        self.vip = vip
        self.samples: list[tuple[int, list[str], list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic_ns()
            live = [n for n in self.cluster.daemon_names if n not in self.cluster.crashed]
            promoted = [n for n in live if self.cluster.stateful_role(n) == "Promoted"]
            holders = [n for n in live if self.cluster.holds_address(n, self.vip)]
            # a node crashed while we looked: its answers were about a dead node
            promoted = [n for n in promoted if n not in self.cluster.crashed]
            holders = [n for n in holders if n not in self.cluster.crashed]
            self.samples.append((at, promoted, holders))
            self._stop.wait(0.02)

    def violations(self) -> list[tuple[int, list[str], list[str]]]:
        return [s for s in self.samples if len(s[1]) > 1 or len(s[2]) > 1]


def stateful_crm(lab: RmLab, cluster: CloneCluster) -> str:
    return (
        "primitive d ocf:heartbeat:Dummy op monitor interval=1s timeout=20s\n"
        "clone d-clone d\n"
        f"primitive st ocf:pacemaker:Stateful params state={cluster.varrun}/Stateful-st.state "
        "op monitor interval=1s role=Promoted timeout=20s "
        "op monitor interval=1500ms role=Unpromoted timeout=20s\n"
        "clone st-clone st meta promotable=true promoted-max=1 promoted-node-max=1\n"
        f"primitive vip ocf:hacluster:IPaddr2 params ip={lab.vip} cidr_netmask=24 "
        "op monitor interval=1s timeout=20s\n"
        "colocation vip-with-promoted inf: vip st-clone:Promoted\n"
        "order promote-then-vip Mandatory: st-clone:promote vip:start\n"
        f"{fence_device_crm(lab, cluster.names)}\n"
        "property stonith-enabled=true\n"
        "rsc_defaults resource-stickiness=100\n"
    )


def test_dummy_clone_and_stateful_promotable_with_vip_survive_crashes() -> None:
    require_lab()
    require_agents(DUMMY, STATEFUL)
    with RmLab("cle", nodes=3) as lab, CloneCluster(lab) as cluster:
        cluster.write_resources_crm(stateful_crm(lab, cluster))
        cluster.start_all()
        everyone = ["n1", "n2", "n3"]
        cluster.wait_everywhere(
            "d-clone on every node", lambda o: cluster.started_on(o, "d-clone") == everyone, 40
        )
        cluster.wait_everywhere(
            "st-clone on every node", lambda o: cluster.started_on(o, "st-clone") == everyone, 40
        )
        cluster.wait_everywhere("one Promoted", lambda o: len(cluster.promoted_on(o, "st-clone")) == 1, 30)
        promoted = cluster.promoted_on("n1", "st-clone")[0]
        cluster.wait_everywhere(
            "vip on the promoted node", lambda o: cluster.resource_node(o, "vip") == promoted, 20
        )
        assert [n for n in everyone if cluster.stateful_role(n) == "Promoted"] == [promoted]
        assert sorted(n for n in everyone if cluster.stateful_role(n) == "Unpromoted") == sorted(
            set(everyone) - {promoted}
        )
        # crm_master (our tool) gave the promoted instance Stateful's promoted score
        score = tool(
            cluster, promoted, "crm_attribute", "-N", promoted, "-n", "master-st", "-l", "reboot", "-G", "-q"
        )
        assert score.stdout.strip() == "10", score

        with VipProbe(lab, cluster.root) as probe, Sampler(cluster, lab.vip) as sampler:
            probe.wait_answer_from(promoted, timeout_s=10)

            # an unpromoted node crashes: the clones keep running on the others, nothing moves
            other = next(n for n in everyone if n != promoted)
            survivors = sorted(set(everyone) - {other})
            cluster.crash(other)
            cluster.wait_everywhere(
                f"{other} down, d-clone still on {survivors}",
                lambda o: (
                    cluster.states(o).get(other) == "dead" and cluster.started_on(o, "d-clone") == survivors
                ),
                20,
            )
            time.sleep(2)  # long enough for a wrong restart or a move to show
            for observer in survivors:
                assert cluster.started_on(observer, "d-clone") == survivors
                assert cluster.promoted_on(observer, "st-clone") == [promoted]
                assert cluster.resource_node(observer, "vip") == promoted
            assert probe.holders_in_order() == [promoted]
            cluster.reboot_crashed(other, lab.vip)
            cluster.wait_everywhere(
                "d-clone back on every node", lambda o: cluster.started_on(o, "d-clone") == everyone, 40
            )
            cluster.wait_everywhere(
                "st-clone back on every node", lambda o: cluster.started_on(o, "st-clone") == everyone, 40
            )
            assert cluster.promoted_on("n1", "st-clone") == [promoted]

            # the promoted node crashes: a survivor is promoted, the VIP follows it
            crashed_ns = cluster.crash(promoted)
            survivors = sorted(set(everyone) - {promoted})
            cluster.wait_everywhere(
                "a survivor Promoted",
                lambda o: (
                    len(cluster.promoted_on(o, "st-clone")) == 1
                    and cluster.promoted_on(o, "st-clone")[0] != promoted
                ),
                30,
            )
            new = cluster.promoted_on(survivors[0], "st-clone")[0]
            first = probe.wait_answer_from(new, timeout_s=20, after_ns=crashed_ns)
            takeover_ms = (first.recv_ns - crashed_ns) / 1e6
            cluster.wait_everywhere(
                "vip on the new promoted node", lambda o: cluster.resource_node(o, "vip") == new, 20
            )
            assert cluster.stateful_role(new) == "Promoted"
            assert [n for n in survivors if cluster.stateful_role(n) == "Promoted"] == [new]
            assert cluster.started_on(new, "d-clone") == survivors
            time.sleep(1)
            print(f"promoted-node crash -> VIP answering from the new promoted node: {takeover_ms:.0f} ms")
            assert probe.double_answers() == []
            assert probe.holders_in_order() == [promoted, new]

        assert len(sampler.samples) > 20, "the sampler hardly ran"
        assert sampler.violations() == []
        # the node that never crashed saw both crashed nodes fenced before anything moved
        (witness,) = set(everyone) - {other, promoted}
        fenced = [e for e in cluster.status(witness)["fencing"] if e["result"] == "ok"]  # type: ignore[index]
        assert {e["target"] for e in fenced} == {other, promoted}, fenced


def test_rule_on_a_node_attribute_keeps_a_resource_off_until_crm_attribute_sets_it() -> None:
    require_lab()
    require_agents(DUMMY)
    with RmLab("clr", nodes=3) as lab, CloneCluster(lab) as cluster:
        cluster.write_resources_crm(
            "primitive gated ocf:heartbeat:Dummy op monitor interval=1s timeout=20s\n"
            "location gated-likes-n3 gated 200: n3\n"
            "location gated-needs-gate gated rule -inf: not_defined gate or gate ne open\n"
            "property stonith-enabled=false\n"
            "rsc_defaults resource-stickiness=100\n"
        )
        cluster.start_all()
        cluster.wait_all_active(timeout_s=20)
        time.sleep(2)
        for observer in ("n1", "n2", "n3"):
            assert cluster.resources(observer)["gated"]["state"] == "stopped", cluster.resources(observer)
        done = tool(cluster, "n3", "crm_attribute", "-N", "n1", "-n", "gate", "-v", "open")
        assert done.returncode == 0, done.stderr
        cluster.wait_everywhere("gated on n1", lambda o: cluster.resource_node(o, "gated") == "n1", 20)
        done = tool(cluster, "n1", "crm_attribute", "-N", "n3", "-n", "gate", "-v", "shut", "-l", "reboot")
        assert done.returncode == 0, done.stderr
        time.sleep(2)
        assert cluster.resource_node("n2", "gated") == "n1"
        done = tool(cluster, "n1", "crm_attribute", "-N", "n3", "-n", "gate", "-v", "open", "-l", "reboot")
        assert done.returncode == 0, done.stderr
        cluster.wait_everywhere("gated on n3", lambda o: cluster.resource_node(o, "gated") == "n3", 20)
        # and the rule throws it off again when the attribute goes
        done = tool(cluster, "n2", "crm_attribute", "-N", "n3", "-n", "gate", "-D", "-l", "reboot")
        assert done.returncode == 0, done.stderr
        cluster.wait_everywhere("gated back on n1", lambda o: cluster.resource_node(o, "gated") == "n1", 20)


def test_ping_clone_rule_moves_a_vip_away_from_a_node_that_loses_its_ping_target() -> None:
    require_lab()
    require_agents(PING)
    with RmLab("clp", nodes=3) as lab, CloneCluster(lab) as cluster:
        target = lab.address(lab.client)
        cluster.write_resources_crm(
            f"primitive ping ocf:pacemaker:ping params host_list={target} name=connected multiplier=100 "
            "dampen=1s use_fping=0 attempts=1 timeout=1 op monitor interval=1s timeout=20s\n"
            "clone ping-clone ping\n"
            f"primitive vip ocf:hacluster:IPaddr2 params ip={lab.vip} cidr_netmask=24 "
            "op monitor interval=1s timeout=20s\n"
            "location vip-connected vip rule -inf: not_defined connected or connected lte 0\n"
            "location vip-likes-n1 vip 50: n1\n"
            "property stonith-enabled=false\n"
            "rsc_defaults resource-stickiness=100\n"
        )
        cluster.start_all()
        everyone = ["n1", "n2", "n3"]
        cluster.wait_everywhere(
            "ping-clone everywhere", lambda o: cluster.started_on(o, "ping-clone") == everyone, 40
        )
        for node in everyone:
            cluster.wait_everywhere(
                f"connected=100 on {node}",
                lambda o, n=node: (
                    cluster.cli(
                        o, "node", "attribute", n, "connected", "--lifetime", "reboot", check=False
                    ).stdout.strip()
                    == "100"
                ),
                20,
            )
        # the VIP may start before every node's attribute is in (stickiness then keeps it)
        cluster.wait_everywhere("vip started", lambda o: cluster.resource_node(o, "vip") is not None, 20)
        lost = cluster.resource_node("n1", "vip")
        assert lost is not None
        with VipProbe(lab, cluster.root) as probe:
            probe.wait_answer_from(lost, timeout_s=10)
            cut_ns = time.monotonic_ns()
            blackhole(lab, cluster.index(lost), target)
            cluster.wait_everywhere(
                f"vip off {lost}", lambda o: cluster.resource_node(o, "vip") not in (None, lost), 30
            )
            holder = cluster.resource_node("n1", "vip")
            assert holder is not None
            assert holder != lost
            first = probe.wait_answer_from(holder, timeout_s=10, after_ns=cut_ns)
            print(
                f"ping target lost on {lost} -> VIP answering from {holder}: "
                f"{(first.recv_ns - cut_ns) / 1e6:.0f} ms"
            )
            assert probe.double_answers() == []
            assert probe.holders_in_order() == [lost, holder]
        # the ping clone itself still runs everywhere: losing connectivity is not a failure
        assert cluster.started_on("n2", "ping-clone") == everyone
        assert (
            cluster.cli("n1", "node", "attribute", lost, "connected", "--lifetime", "reboot").stdout.strip()
            == "0"
        )
