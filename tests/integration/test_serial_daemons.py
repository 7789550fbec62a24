"""Real daemons over a serial link: a ``socat`` pty pair stands in for the null-modem cable.

- Serial alone, no network and no namespace: two daemons see each other ``active``; a crash
  of one is noticed within deadtime over the serial line alone; with sha1 (Heartbeat's
  classic frames) and with aes256gcm (sealed packets, base64 in a frame).
- Serial plus bcast in namespaces: with the bridge port of one node down, both stay
  ``active`` over serial while the bcast link shows ``dead``; with the port up again, the
  bcast link comes back ``up``.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemons import DaemonCluster, bcast_media, combine, require_lab, require_tools, serial_media
from netns import Lab

pytestmark = [pytest.mark.root, pytest.mark.integration]

SLACK_MS = 150


@pytest.fixture
def pty_pair() -> Iterator[tuple[Path, Path]]:
    """Two linked ptys from socat, as symlinks A and B in a private temporary directory."""
    require_tools("socat")
    with tempfile.TemporaryDirectory(prefix="hacser-") as tmp:
        a, b = Path(tmp) / "ttyA", Path(tmp) / "ttyB"
        proc = subprocess.Popen(
            ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 5
            while not (a.exists() and b.exists()):
                assert proc.poll() is None, f"socat exited rc={proc.returncode}: {proc.stderr.read()!r}"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "socat did not create the pty pair within 5 s"
                time.sleep(0.01)
            yield a, b
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()


@pytest.mark.parametrize("method", ["sha1", "aes256gcm"])
def test_serial_daemons_pty_pair_only(pty_pair: tuple[Path, Path], method: str) -> None:
    """Signed classic frames as Heartbeat writes them, and sealed packets in base64 frames."""
    a, b = pty_pair
    with DaemonCluster(None, nodes=2, media=serial_media(a, b), method=method) as cluster:
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        for observer, peer, device in (("n1", "n2", a), ("n2", "n1", b)):
            assert cluster.link_states(observer, peer) == {f"serial {device}": "up"}
            doc = cluster.status(observer)
            assert doc is not None
            assert [link["name"] for link in doc["links"]] == [f"serial {device}"], "no network link at all"
        killed_at = cluster.kill("n2")
        seen_at = cluster.wait_state("n1", "n2", "dead", timeout_s=3)
        delay_ms = round((seen_at - killed_at) * 1000)
        print(f"serial: kill -9 n2 declared dead after {delay_ms} ms")
        assert delay_ms <= cluster.deadtime_ms + SLACK_MS, delay_ms


def test_serial_daemons_survive_network_loss(pty_pair: tuple[Path, Path]) -> None:
    require_lab()
    a, b = pty_pair
    with (
        Lab("hacs", nodes=2) as lab,
        DaemonCluster(lab, media=combine(bcast_media, serial_media(a, b))) as cluster,
    ):
        cluster.start_all()
        cluster.wait_all_active(timeout_s=10)
        serial1, bcast1 = f"serial {a}", "bcast e1"
        cluster.wait_for(
            "both links up on n1",
            lambda: cluster.link_states("n1", "n2") == {serial1: "up", bcast1: "up"},
            timeout_s=3,
        )
        lab.set_link(2, up=False)
        down_at = time.monotonic()
        cluster.wait_for(
            "n1's bcast link to n2 dead",
            lambda: cluster.link_states("n1", "n2").get(bcast1) == "dead",
            timeout_s=3,
        )
        # Hold the cable out for several deadtimes: serial alone must keep n2 active.
        while time.monotonic() - down_at < 3 * cluster.deadtime_ms / 1000:
            for observer, peer in (("n1", "n2"), ("n2", "n1")):
                assert cluster.states(observer).get(peer) == "active", (observer, cluster.states(observer))
            time.sleep(0.05)
        assert cluster.link_states("n1", "n2") == {serial1: "up", bcast1: "dead"}
        assert cluster.link_states("n2", "n1") == {f"serial {b}": "up", "bcast e2": "dead"}
        lab.set_link(2, up=True)
        cluster.wait_for(
            "n1's bcast link to n2 up again",
            lambda: cluster.link_states("n1", "n2") == {serial1: "up", bcast1: "up"},
            timeout_s=5,
        )
        assert cluster.states("n1")["n2"] == "active"
