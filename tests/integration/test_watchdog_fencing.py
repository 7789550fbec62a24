"""Self-fencing end to end: two real daemons in namespaces, no fence device, a stand-in watchdog
each (``watchdog_standin.py``) that "resets" its node — SIGKILL of every process in the node's
namespace, cable out — when it is not fed for ``watchdog_timeout``.

``stonith-watchdog-timeout=2s`` with ``watchdog_timeout 1``.  The quorum of a self-fencing
two-node cluster goes to n1's side of a cut (the lowest-named node breaks the tie):

- the journal runs on n2 and the cable is cut: n2 loses quorum with the journal running, stops
  petting, and its watchdog fires; n1 waits out stonith-watchdog-timeout, counts n2 as fenced
  by its watchdog, and starts the journal;
- the journal runs on n1 and the cable is cut: n2 runs nothing, so it keeps petting and starts
  nothing; n1 keeps the journal and counts n2 as fenced once the timeout has passed.

Either way the journal, written by the resource itself, never shows two copies at once and no
tick of a copy after its node was counted as fenced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemons import require_lab, require_tools
from fence_lab_cluster import FenceCluster, require_ocf_mountpoint
from rm_lab import RmLab
from watchdog_standin import StandInWatchdog

pytestmark = [pytest.mark.root, pytest.mark.integration]

WATCHDOG_TIMEOUT_S = 1
STONITH_WATCHDOG_TIMEOUT = "2s"


class WatchdogCluster(FenceCluster):
    """A FenceCluster whose nodes pet stand-in watchdogs instead of having a fence device."""

    def __init__(self, lab: RmLab, *, journal_dir: Path, **kwargs: Any) -> None:
        self.dog_dir = journal_dir.parent / "dogs"
        self.dog_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, journal_dir=journal_dir, **kwargs)
        self.dogs = {
            name: StandInWatchdog(self.dog_dir / name, timeout_s=WATCHDOG_TIMEOUT_S, fire=self._reset(name))
            for name in self.names
        }
        for dog in self.dogs.values():
            dog.start()

    def _reset(self, name: str) -> Any:
        return lambda: self.crash(name)

    def ha_cf(self, i: int) -> str:
        name = self.name(i)
        return super().ha_cf(i) + f"watchdog {self.dog_dir / name}\nwatchdog_timeout {WATCHDOG_TIMEOUT_S}\n"

    def watchdog_crm(self, prefer: str) -> str:
        return (
            f"primitive journal ocf:test:Journal params journal={self.journal} "
            f"fail_stop_file={self.fail_stop_file} tick_ms=5 "
            "op monitor interval=500ms timeout=20s op stop timeout=10s\n"
            f"location prefer journal 100: {prefer}\n"
            f"property stonith-enabled=true stonith-watchdog-timeout={STONITH_WATCHDOG_TIMEOUT}\n"
            "rsc_defaults resource-stickiness=100\n"
        )

    def close(self) -> None:
        for dog in getattr(self, "dogs", {}).values():
            dog.fire = None
            dog.close()
        super().close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[WatchdogCluster]:
    require_lab()
    require_tools("unshare", "mount", "ip")
    require_ocf_mountpoint()
    tmp_path.chmod(0o755)
    with (
        RmLab("wdf", nodes=2) as lab,
        WatchdogCluster(
            lab, journal_dir=tmp_path / "j", keepalive_ms=100, deadtime_ms=500, initdead_ms=10_000
        ) as cluster,
    ):
        yield cluster


def _start(cluster: WatchdogCluster, prefer: str) -> None:
    cluster.write_resources_crm(cluster.watchdog_crm(prefer))
    cluster.start_all()
    cluster.wait_all_active(timeout_s=15)
    assert cluster.wait_resource_started("journal", timeout_s=30) == prefer
    status = cluster.status("n1")
    assert status is not None
    assert status["watchdog"]["self_fencing_ms"] == 2000, status["watchdog"]
    assert status["watchdog"]["nodes"] == {"n1": 1000, "n2": 1000}, status["watchdog"]
    for dog in cluster.dogs.values():
        dog.wait_pets(3, timeout_s=5)


def _watchdog_fences(cluster: WatchdogCluster, target: str) -> list[dict[str, Any]]:
    cluster.collect_fences()
    status = cluster.status("n1")
    assert status is not None
    return [e for e in status["fencing"] if e["target"] == target and e["device"] == "watchdog"]


def _assert_journal_clean(cluster: WatchdogCluster) -> None:
    report = cluster.journal_report()
    assert report.overlaps == [], report.summary()
    assert report.zombie_ticks == [], report.summary()


def test_the_side_without_quorum_resets_itself_and_the_other_takes_over(cluster: WatchdogCluster) -> None:
    _start(cluster, prefer="n2")
    cut_ns = cluster.partition("n2")
    fired = cluster.dogs["n2"].wait_fired(timeout_s=10)
    assert (fired * 1e9 - cut_ns) / 1e9 < 0.5 + 1.0 + 1.0  # deadtime + watchdog_timeout + slack
    cluster.wait_for("n2 reset", lambda: cluster.is_powered_off("n2"), 10)
    assert cluster.wait_resource_started("journal", timeout_s=20, observers=["n1"]) == "n1"
    [fence] = _watchdog_fences(cluster, "n2")
    assert fence["result"] == "ok", fence
    assert cluster.dogs["n1"].fired_at is None
    _assert_journal_clean(cluster)
    started = [i for i in cluster.journal_report().intervals if i.node == "n1"]
    assert started, cluster.journal_report().summary()
    # n1 started only after stonith-watchdog-timeout had passed since the cut.
    assert (started[-1].start_ns - cut_ns) / 1e9 >= 2.0, cluster.journal_report().summary()


def test_the_side_without_quorum_that_runs_nothing_keeps_petting_and_starts_nothing(
    cluster: WatchdogCluster,
) -> None:
    _start(cluster, prefer="n1")
    cluster.partition("n2")
    cluster.wait_for("n2 counted as fenced", lambda: bool(_watchdog_fences(cluster, "n2")), 15)
    time.sleep(1.0)
    assert cluster.dogs["n2"].fired_at is None  # nothing ran there: no reason to reset
    assert cluster.is_running("n2")
    status = cluster.status("n2")
    assert status is not None
    assert status["cluster"]["quorum"] is False, status["cluster"]
    assert status["watchdog"]["petting"], status["watchdog"]
    assert cluster.resource_node("n1", "journal") == "n1"
    assert {i.node for i in cluster.journal_report().intervals} == {"n1"}, cluster.journal_report().summary()
    _assert_journal_clean(cluster)
