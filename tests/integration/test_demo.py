"""``hacluster demo`` end to end: three daemons on loopback, a failover, nothing left behind.

The demo must not need root.  The test runs it with every capability dropped
(``setpriv --bounding-set=-all``), which takes away what root would add here (raw sockets,
interface binding, real-time scheduling, reading other users' files), then checks the
failover it reports and that no daemon or demo directory survives it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest


def _demo_argv() -> list[str]:
    argv = [sys.executable, "-m", "hacluster.shell.main", "demo", "--nodes", "3"]
    if shutil.which("setpriv"):
        argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", *argv]
    return argv


@pytest.mark.integration
def test_demo_fails_over_and_cleans_up() -> None:
    before = set(Path(tempfile.gettempdir()).glob("hacluster-demo-*"))
    done = subprocess.run(_demo_argv(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Resource Group: service" in out
    moved = re.search(r"the service runs on (n\d) after (\d+) ms", out)
    assert moved is not None, out
    killed = re.search(r"Killing (n\d), which runs the service", out)
    assert killed is not None, out
    assert moved.group(1) != killed.group(1)
    assert int(moved.group(2)) < 2000, f"failover took {moved.group(2)} ms"
    answered = re.search(r"answered again after (\d+) ms: served by (n\d)", out)
    assert answered is not None, out
    assert answered.group(2) == moved.group(1)
    dead = re.search(r"declared (n\d) dead after (\d+) ms", out)
    assert dead is not None
    assert dead.group(1) == killed.group(1)
    after = set(Path(tempfile.gettempdir()).glob("hacluster-demo-*"))
    assert after <= before, f"demo left {after - before}"
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if p.info["cmdline"] and "hacluster-demo-" in " ".join(p.info["cmdline"])
    ]
    assert not leftovers, f"demo daemons still running: {leftovers}"
