"""End to end: a Filesystem + PostgreSQL group fails over with its committed data.

A loop device (an ext4 image under a per-test directory) stands in for a shared disk: loop
devices are global, so every node namespace reaches it.  Each node daemon lives in its own
mount namespace, so a mount belongs to exactly one node; when the node is crashed (every
process SIGKILLed, link down) its mount namespace dies with its last process and the kernel
drops the mount, and the other node mounts the device and starts PostgreSQL on it.

The data directory is made once, before the cluster starts: the image is mounted in a
throw-away private mount namespace, ``initdb`` runs there as ``postgres``, and it is unmounted.
Rows are inserted (and committed) through psql on the server's Unix socket, which lives in a
per-test directory; after the crash the same rows must be readable on the other node.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemons import require, require_lab, require_tools
from rm_lab import RmCluster, RmLab

pytestmark = [pytest.mark.root, pytest.mark.integration]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
IMAGE_MIB = 64
ROWS = 250


def _prerequisites() -> None:
    require_lab()
    require_tools("unshare", "mount", "umount", "losetup", "mkfs.ext4", "runuser")
    for tool in ("initdb", "pg_ctl", "psql", "postgres"):
        if not (PG_BIN / tool).is_file():
            require(f"needs PostgreSQL 15 server binaries in {PG_BIN} (apt-get install postgresql-15)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        require("needs the postgres system user (created by the postgresql package)")


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(argv)} rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


@contextlib.contextmanager
def shared_disk(workdir: Path) -> Iterator[str]:
    """An ext4 loop device over an image in ``workdir``; detached at the end."""
    image = workdir / "disk.img"
    with image.open("wb") as f:
        f.truncate(IMAGE_MIB << 20)
    _run(["mkfs.ext4", "-q", "-F", str(image)])
    device = _run(["losetup", "--find", "--show", str(image)]).stdout.strip()
    assert device.startswith("/dev/loop"), device
    try:
        yield device
    finally:
        # A mount still held by a node's mount namespace keeps the device busy; -d then
        # marks it to detach itself once the namespace is gone.
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30, check=False)


def initdb(device: str, mountpoint: Path) -> None:
    """Make the data directory on the device, in a throw-away private mount namespace."""
    script = (
        'set -e; mount -t ext4 "$1" "$2"; chown postgres:postgres "$2"; '
        'runuser -u postgres -- "$3/initdb" --no-sync --wal-segsize=1 -A trust -E UTF8 --locale=C -D "$2/pgdata"; umount "$2"'
    )
    _run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            device,
            str(mountpoint),
            str(PG_BIN),
        ]
    )


def psql(socketdir: Path, port: int, sql: str) -> str:
    argv = ["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-X", "-q", "-A", "-t"]
    argv += ["-v", "ON_ERROR_STOP=1", "-h", str(socketdir), "-p", str(port), "-d", "postgres", "-c", sql]
    return _run(argv, cwd="/").stdout.strip()


def _mounted_in(pid: int, mountpoint: Path) -> bool:
    with open(f"/proc/{pid}/mountinfo") as f:
        return any(line.split()[4] == str(mountpoint) for line in f)


def test_database_fails_over_with_committed_rows() -> None:
    _prerequisites()
    workdir = Path(tempfile.mkdtemp(prefix="rmst-"))
    workdir.chmod(0o755)  # postgres must reach the socket dir and the mount point
    mountpoint = workdir / "mnt"
    socketdir = workdir / "sock"
    mountpoint.mkdir()
    socketdir.mkdir()
    postgres = pwd.getpwnam("postgres")
    os.chown(socketdir, postgres.pw_uid, postgres.pw_gid)
    port = 20000 + secrets.randbelow(20000)
    try:
        with shared_disk(workdir) as device:
            initdb(device, mountpoint)
            crm = "\n".join(
                [
                    f"primitive fs ocf:hacluster:Filesystem params device={device} directory={mountpoint} "
                    "fstype=ext4 op monitor interval=2s timeout=20s op start timeout=60s op stop timeout=60s",
                    f"primitive db ocf:hacluster:pgsql params pgdata={mountpoint}/pgdata pgport={port} "
                    f"socketdir={socketdir} logfile={workdir}/postgres.log stop_escalate=5 "
                    "op monitor interval=2s timeout=20s op start timeout=60s op stop timeout=30s",
                    "group database fs db",
                    "property stonith-enabled=false",
                    "",
                ]
            )
            with RmLab("rmst", nodes=2) as lab, RmCluster(lab, keepalive_ms=100, deadtime_ms=500) as cluster:
                cluster.write_resources_crm(crm)
                for name in cluster.daemon_names:
                    cluster.start(name)
                holder = cluster.wait_group_started("database", timeout_s=60)
                other = next(n for n in cluster.daemon_names if n != holder)
                assert _mounted_in(cluster.pid(holder), mountpoint), f"{mountpoint} not mounted on {holder}"
                assert not _mounted_in(cluster.pid(other), mountpoint), (
                    f"{mountpoint} also mounted on {other}"
                )
                assert not _mounted_in(os.getpid(), mountpoint), "the mount leaked into the test's namespace"

                psql(socketdir, port, "create table t (id int primary key, node text)")
                psql(socketdir, port, f"insert into t select g, '{holder}' from generate_series(1, {ROWS}) g")
                assert psql(socketdir, port, "select count(*) from t") == str(ROWS)

                crashed = time.monotonic()
                cluster.crash(holder)
                crash_s = time.monotonic() - crashed
                assert (
                    cluster.wait_group_started("database", timeout_s=60, observers=[other], not_on=holder)
                    == other
                )
                moved_s = time.monotonic() - crashed
                assert _mounted_in(cluster.pid(other), mountpoint), f"{mountpoint} not mounted on {other}"
                assert psql(socketdir, port, "select count(*), min(node), max(node) from t") == (
                    f"{ROWS}|{holder}|{holder}"
                )
                psql(socketdir, port, f"insert into t values ({ROWS + 1}, '{other}')")
                print(
                    f"database {holder} -> {other} in {moved_s:.2f} s (crash itself took {crash_s:.2f} s); "
                    f"{ROWS} committed rows kept"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
