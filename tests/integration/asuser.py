"""Run test processes as other users without creating any: ``setpriv`` with a bare uid and gid.

Needs root.  The interpreter may live where only root can look (a pyenv under ``/root``), so
the process keeps ``CAP_DAC_READ_SEARCH`` (read and traverse, never write or own): what it is
as a peer on a socket (uid, gid, groups), and every limit counted per user, stay those of the
uid it runs as.  Files it must write go in ``shared_dir``, a directory under /tmp that the
test's users can reach, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

BASE_ID = 46_000
"""Ids the tests use, offset by the test process's pid so that two runs never share a user."""


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("runs processes as other uids with setpriv: needs root")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv is missing: apt-get install -y util-linux")


def spare_id(n: int) -> int:
    """A uid/gid nobody on this machine uses (n < 100)."""
    assert 0 <= n < 100
    return BASE_ID + (os.getpid() % 200) * 100 + n


def setpriv(uid: int, gid: int, groups: Sequence[int] = ()) -> list[str]:
    """The argv prefix that runs a command as ``uid``:``gid`` with supplementary ``groups``."""
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    argv += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return [*argv, "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def run_as(
    uid: int, gid: int, argv: Sequence[str], groups: Sequence[int] = (), timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*setpriv(uid, gid, groups), *argv], capture_output=True, text=True, timeout=timeout_s, check=False
    )


@contextmanager
def shared_dir(owner_uid: int = 0, owner_gid: int = 0) -> Iterator[Path]:
    """A fresh directory (mode 0755, owned by ``owner_uid``) that every test user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="hacluster-asuser-", dir="/tmp"))
    try:
        path.chmod(0o755)
        os.chown(path, owner_uid, owner_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def daemon(hacf: Path, uid: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``hacluster daemon`` for node ``solo`` of ``hacf`` (as ``uid``, owning every file beside
    ``hacf``, when given), its stderr in ``stderr.log`` there; stopped with SIGTERM afterwards."""
    root = hacf.parent
    prefix: list[str] = []
    if uid is not None:
        for path in [root, *root.rglob("*")]:
            os.chown(path, uid, uid)
        prefix = setpriv(uid, uid)
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "hacluster.shell.main",
        "daemon",
        "--config",
        str(hacf),
        "--node",
        "solo",
    ]
    with (root / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
