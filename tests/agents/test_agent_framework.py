"""The OCF framework: meta-data against ra-api-1.dtd, dispatch, parameters, and the launcher."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ocfkit import agent_path, require_root, script_env, validate_metadata

from hacluster.agents import AGENTS, RC, Action, Agent, AgentError, Context, DummyAgent, Parameter

AGENT_NAMES = sorted(AGENTS)


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_metadata_is_valid_against_ra_api_dtd(name: str) -> None:
    result = AGENTS[name]().run("meta-data", {})
    assert result.rc == RC.SUCCESS
    assert result.output.splitlines()[1] == '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">'
    done = validate_metadata(result.output)
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(result.output)
    assert root.get("name") == name
    assert [child.tag for child in root][:3] == ["version", "longdesc", "shortdesc"]
    actions = {a.get("name") for a in root.iter("action")}
    assert {"start", "stop", "monitor", "meta-data", "validate-all"} <= actions


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_launcher_is_executable_and_prints_metadata(name: str) -> None:
    path = agent_path(name)
    assert path.stat().st_mode & 0o777 == 0o755
    done = subprocess.run(
        [str(path), "meta-data"], env=script_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert ET.fromstring(done.stdout).get("name") == name


def test_metadata_escapes_text() -> None:
    class Quoting(DummyAgent):
        name = "Quoting"
        longdesc = 'a <b> & "c"'
        parameters = (Parameter("p", "x < y", "default with quote", default='say "hi" & <go>'),)

    root = ET.fromstring(Quoting().metadata_xml())
    assert root.findtext("longdesc") == 'a <b> & "c"'
    content = root.find("parameters/parameter/content")
    assert content is not None
    assert content.get("default") == 'say "hi" & <go>'


def test_declarations_outside_the_dtd_are_refused() -> None:
    with pytest.raises(AssertionError, match=r"ra-api-1\.dtd"):
        Parameter("mode", "m", "m", type="select")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"ra-api-1\.dtd"):
        Action("reload-agent", 10_000)


class _Probe(Agent):
    """Records the context it was given; each action shows one framework behaviour."""

    name = "Probe"
    shortdesc = "test"
    longdesc = "test agent"
    parameters = (
        Parameter("count", "c", "c", "integer", "3"),
        Parameter("flag", "f", "f", "boolean", "false"),
    )
    actions = (Action("start", 7_000), Action("stop", 5_000), Action("monitor", 5_000, 10_000))

    def __init__(self) -> None:
        self.seen: list[Context] = []

    def start(self, ctx: Context) -> int:
        self.seen.append(ctx)
        ctx.print("started")
        return RC.SUCCESS

    def stop(self, ctx: Context) -> int:
        raise KeyError("boom")

    def monitor(self, ctx: Context) -> int:
        self.seen.append(ctx)
        return RC.SUCCESS if ctx.boolean("flag") else RC.NOT_RUNNING

    def validate_all(self, ctx: Context) -> int:
        ctx.integer("count", minimum=1)
        raise AgentError(RC.ERR_ARGS, "nothing here")


def test_parameters_defaults_and_op_metadata_come_from_the_given_env() -> None:
    agent = _Probe()
    result = agent.run(
        "start", {"OCF_RESOURCE_INSTANCE": "p1", "OCF_RESKEY_flag": "yes", "OCF_CHECK_LEVEL": "10"}
    )
    assert (result.rc, result.exit_reason, result.output) == (RC.SUCCESS, None, "started\n")
    ctx = agent.seen[-1]
    assert ctx.instance == "p1"
    assert ctx.param("count") == "3"
    assert ctx.boolean("flag") is True
    assert ctx.check_level == 10
    assert ctx.timeout_ms == 7_000  # the advertised timeout when the manager gives none
    assert ctx.state_dir == "/run/resource-agents"


def test_probe_is_monitor_with_interval_zero() -> None:
    agent = _Probe()
    agent.run("monitor", {"OCF_RESKEY_CRM_meta_interval": "0", "OCF_RESKEY_CRM_meta_timeout": "1234"})
    agent.run("monitor", {"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_OCF_CHECK_LEVEL": "20"})
    probe, recurring = agent.seen
    assert probe.is_probe
    assert probe.timeout_ms == 1234
    assert not recurring.is_probe
    assert recurring.check_level == 20


def test_run_never_raises_and_maps_outcomes() -> None:
    agent = _Probe()
    crashed = agent.run("stop", {})
    assert crashed.rc == RC.ERR_GENERIC
    assert crashed.exit_reason is not None
    assert "KeyError" in crashed.exit_reason
    invalid = agent.run("validate-all", {})
    assert (invalid.rc, invalid.exit_reason) == (RC.ERR_ARGS, "nothing here")
    bad_int = agent.run("validate-all", {"OCF_RESKEY_count": "many"})
    assert bad_int.rc == RC.ERR_CONFIGURED
    assert "count='many'" in (bad_int.exit_reason or "")
    unknown = agent.run("promote", {})
    assert unknown.rc == RC.ERR_UNIMPLEMENTED
    assert unknown.output.startswith("usage: Probe")


def test_main_prints_exit_reason_on_stderr_and_exits_with_rc(tmp_path: Path) -> None:
    env = script_env({"OCF_RESOURCE_INSTANCE": "m1", "OCF_RESKEY_state": str(tmp_path / "m1.state")})
    env["OCF_RESKEY_CRM_meta_interval"] = "10000"
    done = subprocess.run(
        [str(agent_path("Dummy")), "monitor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == RC.NOT_RUNNING
    assert done.stderr.strip().endswith("ocf-exit-reason:No process state file found")
    done = subprocess.run(
        [sys.executable, str(agent_path("Dummy")), "start", "ignored-extra-arg"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ocf-exit-reason" not in done.stderr
    assert (tmp_path / "m1.state").exists()


@pytest.mark.root
def test_metadata_works_as_nobody_with_the_system_python() -> None:
    require_root()
    for name in AGENT_NAMES:
        done = subprocess.run(
            ["su", "nobody", "-s", "/bin/sh", "-c", f"{agent_path(name)} meta-data"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert "<resource-agent" in done.stdout
