"""DemoService (the demo's small HTTP service): the OCF contract in-process and under ocf-tester."""

from __future__ import annotations

import socket
from pathlib import Path

from ocfkit import assert_passed, ocf_env, run_ocf_tester, validate_metadata

from hacluster.agents import RC, DemoServiceAgent
from hacluster.agents.demoservice import fetch


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_demoservice_contract_in_process(tmp_path: Path) -> None:
    agent = DemoServiceAgent()
    port = _port()
    env = ocf_env("web", {"port": str(port)}, HA_RSCTMP=str(tmp_path), HA_NODE="n7")
    try:
        assert agent.run("monitor", env).rc == RC.NOT_RUNNING
        assert agent.run("stop", env).rc == RC.SUCCESS
        assert agent.run("start", env).rc == RC.SUCCESS
        assert fetch(port) == "served by n7\n"
        assert agent.run("start", env).rc == RC.SUCCESS  # idempotent: still one server
        assert agent.run("monitor", env).rc == RC.SUCCESS
        assert agent.run("stop", env).rc == RC.SUCCESS
        assert fetch(port) is None
        assert agent.run("stop", env).rc == RC.SUCCESS
        assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    finally:
        agent.run("stop", env)


def test_demoservice_refuses_a_bad_port(tmp_path: Path) -> None:
    env = ocf_env("web", {"port": "80"}, HA_RSCTMP=str(tmp_path))
    result = DemoServiceAgent().run("validate-all", env)
    assert result.rc == RC.ERR_CONFIGURED
    assert "between 1024 and 65535" in (result.exit_reason or "")


def test_demoservice_metadata_is_valid() -> None:
    done = validate_metadata(DemoServiceAgent().metadata_xml())
    assert done.returncode == 0, done.stderr


def test_demoservice_passes_ocf_tester(tmp_path: Path) -> None:
    done = run_ocf_tester("DemoService", "web", {"port": str(_port())})
    assert_passed(done, "DemoService")
