"""The fault campaign (bench/campaign.py) as part of the suite: a 3-minute slice that fails on
any audit failure, and its cleanup when interrupted.

Each run draws a new seed and prints it; ``CAMPAIGN_SEED=N`` replays seed N's schedule, and so
does ``sudo .venv/bin/python bench/campaign.py --seed N`` (with ``--keep DIR`` for the logs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemons import require_lab, require_tools
from fence_lab_cluster import require_ocf_mountpoint
from netns import namespaces

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from campaign import Options, render_summary, run_campaign  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.integration]

SLICE_MINUTES = 3.0
STEPS_MIN = 20
"""A slice that ran fewer steps than this did not exercise much (about 60 in 3 minutes)."""


def _prerequisites() -> None:
    require_lab()
    require_tools("unshare", "mount", "ip")
    require_ocf_mountpoint()


def _seed() -> int:
    text = os.environ.get("CAMPAIGN_SEED")
    return int(text) if text else int.from_bytes(os.urandom(4), "big")


@pytest.mark.timeout(int(SLICE_MINUTES * 60) + 300)
def test_a_three_minute_campaign_passes_every_audit(tmp_path: Path) -> None:
    _prerequisites()
    options = Options(seed=_seed(), minutes=SLICE_MINUTES, results=False, keep=tmp_path / "kept")
    summary = run_campaign(options)
    report = render_summary(summary, options)
    print(report)
    assert not summary.interrupted
    assert summary.failures == [], f"replay with CAMPAIGN_SEED={options.seed}\n" + "\n\n".join(
        summary.failures
    )
    assert len(summary.steps) >= STEPS_MIN, report
    assert len({record.step.kind for record in summary.steps}) >= 8, report
    assert all(record.converge_s is not None for record in summary.steps), report
    assert not [ns for ns in namespaces() if ns.startswith("cmp-") and f"-{os.getpid()}-" in ns]


def test_an_interrupted_campaign_removes_everything_it_made() -> None:
    """Ctrl-C in the middle of a step: namespaces, daemons, mounts and files are gone."""
    _prerequisites()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "campaign.py"), "--minutes", "5", "--no-results"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("step 3 "):
                break
        assert any(x.startswith("step 3 ") for x in lines), "".join(lines[-40:])
        time.sleep(0.5)  # inside step 3's fault
        mine = [ns for ns in namespaces() if f"-{proc.pid}-" in ns]
        assert mine, "the campaign's namespaces should exist while it runs"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        lines.append(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    assert proc.returncode == 130, text[-3000:]
    assert "campaign summary" in text, text[-3000:]
    assert "(interrupted)" in text, text[-3000:]
    assert [ns for ns in namespaces() if f"-{proc.pid}-" in ns] == [], "namespaces left behind"
    match = re.search(r"files (/tmp/campaign-\S+); daemons in (/tmp/hacd-\S+)", text)
    assert match is not None, text[:2000]
    for folder in match.groups():
        assert not Path(folder).exists(), f"{folder} left behind"
    leftovers = subprocess.run(["pgrep", "-f", match.group(2)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", (
        f"processes of the campaign's daemons still run: {leftovers.stdout}"
    )
