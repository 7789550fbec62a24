"""The watchdog a real daemon drives, on a stand-in device (``watchdog_standin.py``: a FIFO that
records writes and fires when it is not fed in time).

- The device layer alone: a device without WDIOC_SETTIMEOUT keeps its own timeout; a clean
  close writes the magic ``V``, an armed close does not, and the stand-in then fires; a device
  that cannot be opened is refused with the fix in the message; a stopped verdict is final.
- A one-node daemon on loopback: it pets every ``min(keepalive, timeout / 3)``; SIGSTOPped it
  pets nothing and the stand-in fires (and kills it, as a reset would); SIGTERM disarms it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from daemons import DaemonCluster  # noqa: E402
from watchdog_standin import StandInWatchdog  # noqa: E402

from hacluster.core.watchdog import HEALTHY, PetCode, PetVerdict  # noqa: E402
from hacluster.shell.watchdog import Watchdog, WatchdogError  # noqa: E402

pytestmark = [pytest.mark.integration]


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandInWatchdog]:
    dog = StandInWatchdog(tmp_path / "watchdog", timeout_s=1.0)
    with dog:
        yield dog


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


# --- the device layer ---------------------------------------------------------------------------


def test_a_device_without_settimeout_keeps_its_own_and_a_clean_close_disarms(
    standin: StandInWatchdog, caplog: pytest.LogCaptureFixture
) -> None:
    dog = Watchdog(str(standin.path), timeout_ms=3000, keepalive_ms=500)
    dog.open(_now_ms())
    assert dog.timeout_source == "unknown"  # a FIFO answers ENOTTY to both ioctls
    assert "takes no timeout" in caplog.text
    assert dog.pet_interval_ms == 500  # min(keepalive, 3000 / 3)
    assert not dog.kernel_watchdog
    standin.wait_pets(1, timeout_s=2)
    dog.close(disarm=True)
    time.sleep(0.2)
    assert standin.data().endswith(b"V"), standin.data()
    assert standin.disarmed
    time.sleep(standin.timeout_s + 0.3)
    assert standin.fired_at is None


def test_an_armed_close_leaves_the_device_to_fire(standin: StandInWatchdog) -> None:
    dog = Watchdog(str(standin.path), timeout_ms=1000, keepalive_ms=100)
    dog.open(_now_ms())
    dog.close(disarm=False)
    assert b"V" not in standin.data()
    fired = standin.wait_fired(timeout_s=3)
    last = standin.last_write_at()
    assert last is not None
    assert fired - last >= standin.timeout_s


def test_a_stopped_verdict_is_final_and_never_disarms(standin: StandInWatchdog) -> None:
    dog = Watchdog(str(standin.path), timeout_ms=1000, keepalive_ms=100)
    dog.open(0)
    stop = PetVerdict(False, PetCode.NO_QUORUM, "lost quorum")
    asked: list[int] = []

    def verdict(answer: PetVerdict) -> PetVerdict:
        asked.append(1)
        return answer

    dog.pet_if_due(50, lambda: verdict(HEALTHY))  # not due yet: not even asked
    assert asked == []
    dog.pet_if_due(400, lambda: verdict(HEALTHY))
    dog.pet_if_due(800, lambda: verdict(stop))
    dog.pet_if_due(1200, lambda: verdict(HEALTHY))  # latched: never asked again
    assert len(asked) == 2
    assert dog.next_pet_ms() is None
    assert dog.statistics().pets == 2
    assert not dog.statistics().petting
    dog.close(disarm=True)  # a node fencing itself stays armed even on a "clean" stop
    time.sleep(0.1)
    assert b"V" not in standin.data()


def test_a_missing_device_is_refused_with_the_fix(tmp_path: Path) -> None:
    dog = Watchdog(str(tmp_path / "nosuch"), timeout_ms=1000, keepalive_ms=100)
    with pytest.raises(WatchdogError, match=r"cannot open it .*modprobe softdog"):
        dog.open(0)


# --- a real daemon --------------------------------------------------------------------------------


def _loopback(i: int, cluster: DaemonCluster) -> list[str]:
    return [f"ucast lo 127.0.0.{i + 1}"]


@contextlib.contextmanager
def _daemon(tmp_path: Path, timeout_s: int) -> Iterator[tuple[DaemonCluster, StandInWatchdog]]:
    dog = StandInWatchdog(tmp_path / "watchdog", timeout_s=float(timeout_s))
    extra = [f"watchdog {dog.path}", f"watchdog_timeout {timeout_s}"]
    with dog, DaemonCluster(None, nodes=1, media=_loopback, extra=extra, initdead_ms=1000) as cluster:
        dog.fire = lambda: _kill(cluster)
        cluster.start("n1")
        yield cluster, dog


def _kill(cluster: DaemonCluster) -> None:
    with contextlib.suppress(ProcessLookupError, AssertionError, KeyError):
        os.kill(cluster.procs["n1"].pid, signal.SIGKILL)


def test_daemon_pets_at_its_cadence_and_disarms_on_a_clean_stop(tmp_path: Path) -> None:
    with _daemon(tmp_path, timeout_s=1) as (cluster, dog):
        pets = dog.wait_pets(15, timeout_s=10)
        gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(pets[1:])]
        # keepalive 100 ms < 1 s / 3: a pet every keepalive, never a gap near the timeout.
        assert 80 <= statistics.median(gaps_ms) <= 150, gaps_ms
        assert max(gaps_ms) < 500, gaps_ms
        status = cluster.status("n1")
        assert status is not None
        assert status["watchdog"]["petting"], status["watchdog"]
        cluster.terminate("n1")
        assert cluster.wait_exit("n1") == 0
        time.sleep(0.2)
        assert dog.data().endswith(b"V")
        assert dog.disarmed
        time.sleep(dog.timeout_s + 0.3)
        assert dog.fired_at is None


def test_a_frozen_daemon_stops_petting_and_the_watchdog_fires(tmp_path: Path) -> None:
    with _daemon(tmp_path, timeout_s=1) as (cluster, dog):
        dog.wait_pets(5, timeout_s=10)
        paused_at = time.monotonic()
        cluster.pause("n1")
        fired = dog.wait_fired(timeout_s=5)
        last = dog.last_write_at()
        assert last is not None
        assert last <= paused_at + 0.05  # nothing written while stopped
        assert fired - paused_at < dog.timeout_s + 0.5
        assert cluster.wait_exit("n1", timeout_s=5) == -signal.SIGKILL  # "reset" by the stand-in
        assert b"V" not in dog.data()
