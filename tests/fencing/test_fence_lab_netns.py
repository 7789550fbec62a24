"""fence_lab really powering off a namespace node: processes gone, cable dead, status 2."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from fencekit import lab_node, link_is_up, netns_pids

from hacluster.shell.fencer import FenceDevice, Fencer, FenceResult

pytestmark = pytest.mark.root


def start_node_processes(node: str) -> list[subprocess.Popen[bytes]]:
    """A long sleeper and a shell that keeps forking, like a busy daemon."""
    procs = [
        subprocess.Popen(["ip", "netns", "exec", node, "sleep", "300"]),
        subprocess.Popen(["ip", "netns", "exec", node, "sh", "-c", "while :; do sleep 0.01; done"]),
    ]
    deadline = time.monotonic() + 10
    while len(netns_pids(node)) < 2:
        assert time.monotonic() < deadline, "the node's processes did not start"
        time.sleep(0.02)
    return procs


def test_fence_lab_off_kills_the_node_and_cuts_its_link() -> None:
    with lab_node() as (node, _switch):
        procs = start_node_processes(node)
        fencer = Fencer()
        device = FenceDevice(
            id="lab", agent="fence_lab", params=(("plugs", f"{node},spare"),), host_map=(("node1", node),)
        )
        try:
            result = asyncio.run(fencer.fence(device, "node1", "off"))
            assert result.ok, result.output
            assert [name for name, _ in result.steps] == ["off", "status"]
            for proc in procs:
                proc.wait(timeout=5)  # reaped: each died of SIGKILL (via ip netns exec's exec)
            assert [proc.returncode for proc in procs] == [-9, -9]
            assert netns_pids(node) == []
            assert not link_is_up(node, "e0")
            status = asyncio.run(fencer.status(device, "node1"))
            assert status.ok, status.output
            assert status.rc == 2

            on = asyncio.run(fencer.fence(device, "node1", "on"))
            assert on.ok, on.output
            assert link_is_up(node, "e0")
            assert netns_pids(node) == [], "power on does not start processes: the test restarts the daemon"
            assert asyncio.run(fencer.status(device, "node1")).rc == 0
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=5)


def test_fence_lab_switch_port_and_dynamic_list() -> None:
    with lab_node() as (node, switch):
        procs = start_node_processes(node)
        fencer = Fencer()
        params = (("plugs", node), ("switch_netns", switch), ("switch_ports", f"{node}:p0"))
        device = FenceDevice(id="lab-sw", agent="fence_lab", params=params)
        try:

            async def scenario() -> tuple[bool, bool, FenceResult]:
                return (
                    await fencer.can_fence(device, node),
                    await fencer.can_fence(device, "elsewhere"),
                    await fencer.fence(device, node, "off"),
                )

            reaches, reaches_other, off = asyncio.run(scenario())
            assert reaches
            assert not reaches_other
            assert off.ok, off.output
            assert not link_is_up(switch, "p0"), "the switch port is down: the node cannot undo it"
            assert link_is_up(node, "e0"), "the node side was left alone"
            assert netns_pids(node) == []
            reboot = asyncio.run(fencer.fence(device, node, "reboot"))
            assert reboot.ok
            assert link_is_up(switch, "p0")
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=5)


def test_fence_lab_fails_cleanly_for_a_missing_namespace() -> None:
    with lab_node() as (node, _switch):
        fencer = Fencer()
        device = FenceDevice(id="lab", agent="fence_lab", params=(), retries=0)
        result = asyncio.run(fencer.fence(device, f"{node}-gone", "off"))
        assert not result.ok
        assert result.rc == 1
        assert f"no network namespace '{node}-gone'" in result.output


def test_fence_lab_power_log_records_each_completed_off_and_on(tmp_path: Path) -> None:
    """The switch's own log: one line after the kill (every process already gone), one after on."""
    log = tmp_path / "power.log"
    with lab_node() as (node, _switch):
        procs = start_node_processes(node)
        fencer = Fencer()
        device = FenceDevice(id="lab", agent="fence_lab", params=(("plugs", node), ("power_log", str(log))))
        try:
            before_ns = time.monotonic_ns()
            result = asyncio.run(fencer.fence(device, node, "reboot"))
            assert result.ok, result.output
            for proc in procs:
                proc.wait(timeout=5)
            lines = [line.split() for line in log.read_text().splitlines()]
            assert [(plug, state) for _, plug, state in lines] == [(node, "off"), (node, "on")]
            off_ns, on_ns = int(lines[0][0]), int(lines[1][0])
            assert before_ns < off_ns <= on_ns <= time.monotonic_ns()
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=5)
