"""The test agent ocf:test:Journal: the OCF contract, its journal lines, promote/demote and the
failures the fault campaign injects through ``fault_dir``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ocfkit import validate_metadata

AGENT = Path(__file__).resolve().parents[1] / "agents_fixtures" / "ocf" / "resource.d" / "test" / "Journal"


class Journal:
    """Runs the agent as the executor would, for one node and one instance."""

    def __init__(self, tmp: Path, node: str = "n1", instance: str = "j") -> None:
        self.journal = tmp / "journal"
        self.faults = tmp / "faults"
        self.faults.mkdir(exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HA_NODE": node,
            "HA_RSCTMP": str(tmp / f"rsctmp-{node}"),
            "OCF_RESOURCE_INSTANCE": instance,
            "OCF_RESKEY_journal": str(self.journal),
            "OCF_RESKEY_fault_dir": str(self.faults),
            "OCF_RESKEY_tick_ms": "5",
        }
        self.node, self.instance = node, instance

    def run(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-S", str(AGENT), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def rc(self, action: str) -> int:
        return self.run(action).returncode

    def lines(self) -> list[str]:
        try:
            return [line.split(maxsplit=1)[1] for line in self.journal.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def writer(self) -> int | None:
        state = Path(self.env["HA_RSCTMP"]) / f"Journal-{self.instance}.pid"
        text = state.read_text().strip() if state.exists() else ""
        return int(text) if text.isdigit() else None


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path)
    yield journal
    journal.run("stop")  # the writer lives in its own session: never leave it behind


def test_meta_data_is_valid_and_lists_promote_and_demote(agent: Journal) -> None:
    done = agent.run("meta-data")
    assert done.returncode == 0
    assert '<action name="promote"' in done.stdout
    assert '<action name="demote"' in done.stdout
    assert 'parameter name="fault_dir"' in done.stdout
    check = validate_metadata(done.stdout)
    assert check.returncode == 0, check.stderr


def test_start_stop_contract_and_journal_lines(agent: Journal) -> None:
    assert agent.rc("monitor") == 7
    assert agent.rc("stop") == 0  # stopped already: success, and no line
    assert agent.rc("start") == 0
    assert agent.rc("start") == 0  # idempotent: no second start line
    assert agent.rc("monitor") == 0
    pid = agent.writer()
    assert pid is not None
    time.sleep(0.05)
    ticks = Path(str(agent.journal) + ".ticks").read_text().splitlines()
    assert ticks
    assert all(line.endswith("n1 j tick") for line in ticks)
    assert agent.rc("stop") == 0
    assert agent.rc("monitor") == 7
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert agent.lines() == ["n1 j start", "n1 j stop"]


def test_promote_and_demote_are_journaled_around_the_role(agent: Journal) -> None:
    assert agent.rc("promote") == 7  # not started: not running
    assert agent.rc("start") == 0
    assert agent.rc("demote") == 0  # not promoted: nothing to do
    assert agent.rc("promote") == 0
    assert agent.rc("monitor") == 8
    assert agent.rc("promote") == 0  # idempotent
    assert agent.rc("demote") == 0
    assert agent.rc("monitor") == 0
    assert agent.rc("promote") == 0
    assert agent.rc("stop") == 0  # a promoted copy stops: its promotion ends with it
    assert agent.lines() == ["n1 j start", "n1 j promote", "n1 j demote", "n1 j promote", "n1 j stop"]


def test_injected_failures_for_one_node_or_one_instance(agent: Journal, tmp_path: Path) -> None:
    (agent.faults / "start.n1.j").touch()
    start = agent.run("start")
    assert start.returncode == 1
    assert "ocf-exit-reason:start failed: injected" in start.stderr
    assert agent.rc("monitor") == 1, "half-started: neither running nor cleanly stopped"
    (agent.faults / "start.n1.j").unlink()
    assert agent.rc("stop") == 0
    assert agent.lines() == ["n1 j start", "n1 j stop"], "the failed start counts as active until stopped"
    other = Journal(tmp_path, node="n2")
    (agent.faults / "stop.n1").touch()
    try:
        assert agent.rc("start") == 0
        assert other.rc("start") == 0
        assert agent.rc("stop") == 1, "every instance on n1 refuses to stop"
        assert agent.rc("monitor") == 0, "a failed stop leaves it running"
        assert other.rc("stop") == 0, "n2 is not affected"
    finally:
        (agent.faults / "stop.n1").unlink()
        other.run("stop")
    for action in ("monitor", "promote", "demote"):
        (agent.faults / f"{action}.n1.j").touch()
    assert agent.rc("monitor") == 1
    assert agent.rc("promote") == 1
    (agent.faults / "promote.n1.j").unlink()
    assert agent.rc("promote") == 0
    assert agent.rc("demote") == 1
