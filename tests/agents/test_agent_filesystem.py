"""Filesystem on a loop device made from a 32 MiB ext4 image in the test's tmp dir.

ocf-tester runs inside ``unshare -m --propagation private``, so its mounts never reach the root
mount namespace.  The in-process tests cannot do that (unsharing a mount namespace needs a
single-threaded process), so they mount only under their own tmp dir and unmount in teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ocfkit import assert_passed, ocf_env, require_root, require_tool, run_ocf_tester

from hacluster.agents import RC, FilesystemAgent

pytestmark = pytest.mark.root


@dataclass
class Disk:
    device: str
    mountpoint: Path

    def env(self, instance: str = "fs1", timeout_ms: int = 20_000, **params: str) -> dict[str, str]:
        base = {"device": self.device, "directory": str(self.mountpoint), "fstype": "ext4"}
        base.update(params)
        return ocf_env(instance, base, HA_NODE="node1", OCF_RESKEY_CRM_meta_timeout=str(timeout_ms))


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    require_root()
    require_tool("mkfs.ext4", "e2fsprogs")
    require_tool("losetup", "util-linux")
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", str(image))
    done = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"no loop device available here: {done.stderr.strip()}")
    device = done.stdout.strip()
    mountpoint = tmp_path / "mnt"
    try:
        yield Disk(device, mountpoint)
    finally:
        for path in (mountpoint / "sub", mountpoint):
            if os.path.ismount(path):
                subprocess.run(["umount", "-l", str(path)], timeout=30, check=False)
        subprocess.run(["losetup", "-d", device], timeout=30, check=False)


def _holder(code: str) -> subprocess.Popen[str]:
    """A Python process that runs ``code``, then prints ready and sleeps."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('ready', flush=True)\nimport time\ntime.sleep(120)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _reap(proc: subprocess.Popen[str]) -> int | None:
    if proc.poll() is None:
        proc.kill()
    rc = proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    return rc


def test_filesystem_passes_ocf_tester(disk: Disk) -> None:
    require_tool("unshare", "util-linux")
    params = {"device": disk.device, "directory": str(disk.mountpoint), "fstype": "ext4"}
    done = run_ocf_tester("Filesystem", "fs1", params, prefix=["unshare", "-m", "--propagation", "private"])
    assert_passed(done, "Filesystem")
    assert not os.path.ismount(disk.mountpoint)  # the mount stayed in the private namespace


def test_contract_and_monitor_depths(disk: Disk) -> None:
    agent = FilesystemAgent()
    env = disk.env()
    assert agent.run("validate-all", env).rc == RC.SUCCESS
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"}).rc == RC.NOT_RUNNING
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("start", env).rc == RC.SUCCESS
    assert os.path.ismount(disk.mountpoint)
    assert agent.run("start", env).rc == RC.SUCCESS
    for depth in ("0", "10", "20"):
        result = agent.run("monitor", {**env, "OCF_CHECK_LEVEL": depth})
        assert result.rc == RC.SUCCESS, (depth, result.exit_reason)
    status = disk.mountpoint / ".Filesystem_status" / "fs1_node1"
    assert status.read_text().startswith("node1 ")
    assert agent.run("monitor", {**env, "OCF_CHECK_LEVEL": "30"}).rc == RC.ERR_CONFIGURED
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert not os.path.ismount(disk.mountpoint)
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    assert agent.run("start", env).rc == RC.SUCCESS
    assert not status.exists(), "stop must remove the depth-20 status file"
    assert agent.run("stop", env).rc == RC.SUCCESS


def test_stop_kills_users_term_first_then_kill(disk: Disk) -> None:
    agent = FilesystemAgent()
    env = disk.env(timeout_ms=6000)
    assert agent.run("start", env).rc == RC.SUCCESS
    polite = _holder(f"f = open({str(disk.mountpoint / 'held')!r}, 'w')")
    stubborn = _holder(
        f"import os, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nos.chdir({str(disk.mountpoint)!r})"
    )
    try:
        result = agent.run("stop", env)
        assert result.rc == RC.SUCCESS, result.exit_reason
        assert not os.path.ismount(disk.mountpoint)
        assert polite.wait(timeout=10) == -signal.SIGTERM
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
    finally:
        _reap(polite)
        _reap(stubborn)


def test_stop_without_force_unmount_fails_and_spares_users(disk: Disk) -> None:
    agent = FilesystemAgent()
    env = disk.env(force_unmount="false", timeout_ms=3000)
    assert agent.run("start", env).rc == RC.SUCCESS
    holder = _holder(f"f = open({str(disk.mountpoint / 'held')!r}, 'w')")
    try:
        result = agent.run("stop", env)
        assert result.rc == RC.ERR_GENERIC
        assert "cannot unmount" in (result.exit_reason or "")
        assert holder.poll() is None
        assert os.path.ismount(disk.mountpoint)
    finally:
        _reap(holder)
    assert agent.run("stop", env).rc == RC.SUCCESS


def test_start_refuses_when_something_is_mounted_below(disk: Disk) -> None:
    sub = disk.mountpoint / "sub"
    sub.mkdir(parents=True)
    _run("mount", "-t", "tmpfs", "-o", "size=1m", "hac-test", str(sub))
    result = FilesystemAgent().run("start", disk.env())
    assert result.rc == RC.ERR_CONFIGURED
    assert "mounted below" in (result.exit_reason or "")
    _run("umount", str(sub))


def test_configuration_errors(disk: Disk, tmp_path: Path) -> None:
    agent = FilesystemAgent()
    assert agent.run("validate-all", disk.env(run_fsck="sometimes")).rc == RC.ERR_CONFIGURED
    assert agent.run("validate-all", disk.env(directory="relative/dir")).rc == RC.ERR_CONFIGURED
    missing = agent.run("start", disk.env(device=str(tmp_path / "no-such-device")))
    assert missing.rc == RC.ERR_INSTALLED
    assert agent.run("validate-all", disk.env(fstype="nosuchfs")).rc == RC.ERR_INSTALLED
