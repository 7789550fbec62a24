"""End to end: real daemons fence each other with the lab power switch, and the journal of a
real resource shows it was never active on two nodes at the same instant.

Each node is a network namespace with its own mount namespace; ``fence_lab`` kills every
process of a namespace and downs its interfaces.  The resource is ``ocf:test:Journal`` (see
``tests/agents_fixtures/ocf/resource.d/test/Journal``): start and stop lines with
CLOCK_MONOTONIC times, and a writer process ticking while it is active.  How the journal is
judged (active intervals, power-offs, overlaps, zombie ticks) is in ``fence_lab_cluster.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from daemons import require_lab, require_tools
from fence_lab_cluster import FenceCluster, analyse_journal, require_ocf_mountpoint, split_trial
from rm_lab import RmLab

pytestmark = [pytest.mark.root, pytest.mark.integration]

KEEPALIVE_MS = 100
DEADTIME_MS = 500
INITDEAD_MS = 10_000
"""A node not heard from within initdead of the first daemon's start is fenced (startup
fencing): under load a second daemon can take more than the default 2 s to come up."""


def _prerequisites() -> None:
    require_lab()
    require_tools("unshare", "mount", "ip")
    require_ocf_mountpoint()


def _cluster(lab: RmLab, tmp_path: Path, **kwargs: object) -> FenceCluster:
    tmp_path.chmod(0o755)
    return FenceCluster(
        lab,
        journal_dir=tmp_path / "j",
        keepalive_ms=KEEPALIVE_MS,
        deadtime_ms=DEADTIME_MS,
        initdead_ms=INITDEAD_MS,
        **kwargs,
    )


def _other(cluster: FenceCluster, name: str) -> str:
    return next(n for n in cluster.names if n != name)


def _assert_clean(cluster: FenceCluster) -> None:
    report = cluster.journal_report()
    assert report.overlaps == [], report.summary()
    assert report.zombie_ticks == [], report.summary()


def test_partition_leaves_one_survivor_and_never_two_copies(tmp_path: Path) -> None:
    """Cut a cable at random moments (sometimes mid-move): each time exactly one node is
    powered off, by the other, which then runs the journal; the journal never overlaps."""
    _prerequisites()
    rng = random.Random(int(time.time()))
    with RmLab("fxp", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        cluster.write_resources_crm(cluster.crm())
        cluster.start_all()
        for trial in range(3):
            result = split_trial(cluster, rng, move_probability=0.5)
            assert len(result.powered_off) == 1, (trial, result)
            assert result.survivor is not None
            ok = [f for f in result.fences if f["result"] == "ok"]
            assert [(f["by"], f["target"]) for f in ok] == [(result.survivor, result.powered_off[0])], result
            _assert_clean(cluster)
        report = cluster.journal_report()
        assert report.starts >= 2, report.summary()  # the journal really moved at least once


def test_stop_failure_fences_the_node_then_starts_elsewhere(tmp_path: Path) -> None:
    _prerequisites()
    with RmLab("fxs", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        cluster.write_resources_crm(cluster.crm())
        cluster.start_all()
        holder = cluster.wait_resource_started("journal", timeout_s=20)
        other = _other(cluster, holder)
        cluster.fail_stop_file.touch()
        cluster.cli(other, "resource", "move", "grp", other)
        cluster.wait_for("the holder fenced", lambda: cluster.is_powered_off(holder), 15)
        cluster.fail_stop_file.unlink()
        assert cluster.wait_resource_started("journal", timeout_s=15, observers=[other]) == other
        fences = cluster.collect_fences()
        assert [(f["by"], f["target"], f["result"]) for f in fences] == [(other, holder, "ok")]
        assert "stop of journal failed" in fences[0]["reason"]
        assert "stop refused" in cluster.log(holder) or "RESOURCE_STOP" in cluster.log(holder)
        _assert_clean(cluster)
        intervals = [i for i in cluster.journal_report().intervals if i.node == holder]
        assert intervals[-1].ended_by == "power-off", cluster.journal_report().summary()


def test_failing_fence_device_keeps_resources_blocked(tmp_path: Path) -> None:
    """The device cannot reach the lost node: its resources never start elsewhere, status
    says why; the operator's fence-confirm releases them."""
    _prerequisites()
    with RmLab("fxf", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        crm = cluster.crm(broken=["n2"], extra=["location prefer-n2 grp 200: n2"])
        cluster.write_resources_crm(crm)
        cluster.start_all()
        assert cluster.wait_resource_started("journal", timeout_s=20) == "n2"
        cluster.crash("n2")
        time.sleep(4.0)  # deadtime, the delay, a failed fence, its retry after 2 s
        assert cluster.journal_holders() == {}, "the journal started on n1 although n2 was never fenced"
        status = json.loads(cluster.cli("n1", "status", "--json").stdout)
        assert "n2" in status["fencing_pending"], status["fencing_pending"]
        assert "failed" in status["fencing_pending"]["n2"], status["fencing_pending"]
        journal = next(r for r in status["resources"] if r["id"] == "journal")
        assert "fenced" in journal["reason"], journal
        failed = [f for f in status["fencing"] if f["result"] == "failed"]
        assert failed, status["fencing"]
        assert "FENCING_FAILED" in cluster.log("n1")
        cluster.cli("n1", "node", "fence-confirm", "n2")
        assert cluster.wait_resource_started("journal", timeout_s=10, observers=["n1"]) == "n1"
        _assert_clean(cluster)


def test_frozen_holder_is_fenced_before_the_takeover(tmp_path: Path) -> None:
    """SIGSTOP of the holder's daemon past deadtime (its writer keeps running), then SIGCONT:
    the peer fenced it first, so the journal shows no overlap."""
    _prerequisites()
    with RmLab("fxz", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        cluster.write_resources_crm(cluster.crm())
        cluster.start_all()
        holder = cluster.wait_resource_started("journal", timeout_s=20)
        other = _other(cluster, holder)
        pid = cluster.pid(holder)
        os.kill(pid, signal.SIGSTOP)
        cluster.wait_resource_started("journal", timeout_s=10, observers=[other], not_on=holder)
        with contextlib.suppress(ProcessLookupError):  # fenced: the frozen daemon is gone too
            os.kill(pid, signal.SIGCONT)
        assert cluster.is_powered_off(holder)
        _assert_clean(cluster)


def test_frozen_holder_without_fencing_stops_on_resume(tmp_path: Path) -> None:
    """The second line of defence, with stonith-enabled=false: the frozen node is not fenced,
    the peer takes over after deadtime, and on SIGCONT the node sees it was frozen and stops
    its copy.  Two copies *do* run meanwhile: the overlap is measured and printed."""
    _prerequisites()
    with RmLab("fxn", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        cluster.write_resources_crm(cluster.crm(stonith=False))
        cluster.start_all()
        holder = cluster.wait_resource_started("journal", timeout_s=20)
        other = _other(cluster, holder)
        frozen_ms = 1500
        pid = cluster.pid(holder)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(frozen_ms / 1000)
        resumed_ns = time.monotonic_ns()
        os.kill(pid, signal.SIGCONT)
        cluster.wait_for("NODE_WAS_FROZEN logged", lambda: "NODE_WAS_FROZEN" in cluster.log(holder), 5)
        cluster.wait_resource_started("journal", timeout_s=15)
        time.sleep(0.5)
        report = analyse_journal(cluster.journal, {})
        assert report.zombie_ticks == [], report.summary()
        stops = [i for i in report.intervals if i.node == holder and i.ended_by == "stop"]
        assert stops, report.summary()
        assert stops[-1].end_ns > resumed_ns, "the frozen node's copy ended before it was resumed?"
        overlap_ms = sum(o.ms for o in report.overlaps)
        print(f"fencing off, {holder} frozen {frozen_ms} ms: two copies for {overlap_ms:.0f} ms")
        assert report.overlaps, "no overlap although nothing fenced the frozen node"
        assert all(
            o.rsc == "journal" and {o.first.node, o.second.node} == {holder, other} for o in report.overlaps
        )
        # The overlap ends when the resumed node stops its copy, soon after SIGCONT.
        assert (stops[-1].end_ns - resumed_ns) / 1e6 < 2000, report.summary()


def test_meatware_confirm_releases_and_stonith_test_fences_nothing(tmp_path: Path) -> None:
    _prerequisites()
    with RmLab("fxm", nodes=2) as lab, _cluster(lab, tmp_path) as cluster:
        state_dir = cluster.node_dir("n1") / "state"
        crm = cluster.crm(extra=["location prefer-n2 grp 200: n2"])
        crm = crm.replace(
            "primitive fence-lab stonith:fence_lab",
            f'primitive fence-man stonith:fence_manual params state_dir={state_dir} pcmk_host_list="n1 n2"\n'
            "primitive fence-lab stonith:fence_lab",
        )
        crm += "fencing_topology n1: fence-lab n2: fence-man\n"
        cluster.write_resources_crm(crm)
        cluster.start_all()
        assert cluster.wait_resource_started("journal", timeout_s=20) == "n2"
        # stonith test: monitor and status only, timed; nothing is powered off.
        out = cluster.cli("n1", "stonith", "test", "fence-lab", "--node", "n2").stdout
        assert ": ok in" in out, out
        assert "monitor:" in out, out
        assert "status:" in out, out
        time.sleep(0.3)
        assert not cluster.is_powered_off("n2")
        assert cluster.resource_node("n1", "journal") == "n2"
        # meatware: n2 dies; n1's fence_manual waits for an operator.
        cluster.crash("n2")
        cluster.wait_for(
            "a manual fence request",
            lambda: (state_dir / "fence-request-n2").exists(),
            10,
        )
        time.sleep(0.5)
        assert cluster.journal_holders() == {}
        cluster.cli("n1", "node", "fence-confirm", "n2")
        assert cluster.wait_resource_started("journal", timeout_s=10, observers=["n1"]) == "n1"
        history = json.loads(cluster.cli("n1", "status", "--json").stdout)["fencing"]
        assert any(e["target"] == "n2" and e["result"] in ("confirmed", "ok") for e in history), history
        _assert_clean(cluster)
