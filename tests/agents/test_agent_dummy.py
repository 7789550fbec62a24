"""Dummy: the OCF contract in-process and under ocf-tester."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from ocfkit import assert_passed, ocf_env, run_ocf_tester

from hacluster.agents import RC, DummyAgent


def _env(tmp_path: Path) -> Mapping[str, str]:
    return ocf_env("d1", {}, HA_RSCTMP=str(tmp_path / "rsctmp"))


def test_dummy_contract_in_process(tmp_path: Path) -> None:
    agent = DummyAgent()
    env = _env(tmp_path)
    state = tmp_path / "rsctmp" / "Dummy-d1.state"
    assert agent.run("validate-all", env).rc == RC.SUCCESS  # creates the default HA_RSCTMP
    probe = agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"})
    assert (probe.rc, probe.exit_reason) == (RC.NOT_RUNNING, None)
    recurring = agent.run("monitor", env)
    assert recurring.rc == RC.NOT_RUNNING
    assert recurring.exit_reason == "No process state file found"
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("start", env).rc == RC.SUCCESS
    assert state.exists()
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.SUCCESS
    assert agent.run("migrate_to", env).rc == RC.SUCCESS
    assert not state.exists()
    assert agent.run("migrate_from", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING


def test_dummy_validate_rejects_unwritable_state_dir(tmp_path: Path) -> None:
    env = ocf_env("d2", {"state": str(tmp_path / "missing" / "x.state")})
    result = DummyAgent().run("validate-all", env)
    assert result.rc == RC.ERR_ARGS
    assert "not writable" in (result.exit_reason or "")


@pytest.mark.root
def test_dummy_passes_ocf_tester(tmp_path: Path) -> None:
    done = run_ocf_tester("Dummy", "dummy1", {"state": str(tmp_path / "dummy1.state")})
    assert_passed(done, "Dummy")
