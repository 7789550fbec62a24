"""The executor against real processes: the fixture agents in tests/agents_fixtures and, when
installed, ClusterLabs' ``ocf:heartbeat:Dummy``.

Each test runs its own event loop with ``asyncio.run``.  Processes killed by a timeout are
re-parented to PID 1, which in a container may never reap them, so "gone" below means "no
such process, or a zombie": a zombie runs no code and holds nothing but its pid.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest
from exhaust import USE_UP_DESCRIPTORS

from hacluster.shell.executor import TOOLS_DIR, AgentSpec, Executor, OpRequest, OpResult

FIXTURES = Path(__file__).resolve().parents[1] / "agents_fixtures"
PROBE = AgentSpec("ocf", "test", "Probe")
DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")


def make_executor(tmp_path: Path, **overrides: object) -> Executor:
    options: dict[str, object] = {
        "node_name": "n1",
        "ocf_roots": [FIXTURES / "ocf"],
        "resource_d": [FIXTURES / "resource.d"],
        "init_d": [FIXTURES / "init.d"],
        "rsc_tmp": tmp_path / "rsc",
    }
    options.update(overrides)
    return Executor(**options)  # type: ignore[arg-type]


def probe(resource: str = "vip", action: str = "start", timeout_ms: int = 10_000, **params: str) -> OpRequest:
    spec = AgentSpec("ocf", "test", "Probe", params=tuple(params.items()))
    return OpRequest(resource=resource, spec=spec, action=action, timeout_ms=timeout_ms)


def run(executor: Executor, req: OpRequest) -> OpResult:
    return asyncio.run(executor.run(req))


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env


# --- OCF ------------------------------------------------------------------------------------


def test_ocf_success_reports_output_and_duration(tmp_path: Path) -> None:
    result = run(make_executor(tmp_path), probe(sleep="0.1"))
    assert (result.resource, result.action, result.interval_ms) == ("vip", "start", 0)
    assert (result.rc, result.raw_rc, result.timed_out, result.exit_reason) == (0, 0, False, None)
    assert "Probe start on vip" in result.output
    assert 100 <= result.duration_ms < 5000


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191])
def test_ocf_exit_codes_pass_through(tmp_path: Path, code: int) -> None:
    result = run(make_executor(tmp_path), probe(action="monitor", rc=str(code)))
    assert (result.rc, result.raw_rc) == (code, code)


@pytest.mark.parametrize("code", [10, 42, 189, 192, 193, 255])
def test_ocf_exit_codes_without_meaning_become_generic(tmp_path: Path, code: int) -> None:
    result = run(make_executor(tmp_path), probe(action="monitor", rc=str(code)))
    assert (result.rc, result.raw_rc) == (1, code)


def test_exit_reason_comes_from_stderr(tmp_path: Path) -> None:
    result = run(make_executor(tmp_path), probe(rc="6", exit_reason="ip 300.1.1.1 is not an address"))
    assert result.rc == 6
    assert result.exit_reason == "ip 300.1.1.1 is not an address"


def test_meta_data_prints_xml(tmp_path: Path) -> None:
    result = run(make_executor(tmp_path), probe(action="meta-data"))
    assert result.rc == 0
    assert '<resource-agent name="Probe"' in result.output


def test_environment_is_clean_and_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HACLUSTER_LEAK_CHECK", "must not reach agents")
    envfile = tmp_path / "env"
    spec = AgentSpec("ocf", "test", "Probe", params=(("envfile", str(envfile)), ("ip", "10.0.0.5")))
    req = OpRequest(
        "vip",
        spec,
        "monitor",
        timeout_ms=20_000,
        interval_ms=10_000,
        depth=10,
        meta=(("role", "Promoted"), ("CRM_meta_clone", "2"), ("CRM_meta_notify_type", "pre")),
    )
    executor = make_executor(
        tmp_path, system_ocf_root=tmp_path / "no-system-root", api_socket="/run/test/api.sock"
    )
    assert run(executor, req).rc == 0
    env = read_env(envfile)
    assert "HACLUSTER_LEAK_CHECK" not in env
    # our crm_attribute, crm_master, attrd_updater and crm_node come first
    assert env["PATH"].split(":")[:2] == [str(TOOLS_DIR), os.path.dirname(sys.executable)]
    assert env["PATH"].endswith(":/usr/sbin:/usr/bin:/sbin:/bin")
    expected = {
        "LANG": "C",
        "OCF_ROOT": str(FIXTURES / "ocf"),  # no system root here, so the root the agent is in
        "OCF_FUNCTIONS_DIR": str(FIXTURES / "ocf" / "lib" / "heartbeat"),
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": "vip",
        "OCF_RESOURCE_TYPE": "Probe",
        "OCF_RESOURCE_PROVIDER": "test",
        "OCF_RESKEY_ip": "10.0.0.5",
        "OCF_RESKEY_envfile": str(envfile),
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "OCF_RESKEY_CRM_meta_name": "monitor",
        "OCF_RESKEY_CRM_meta_on_node": "n1",
        "OCF_RESKEY_CRM_meta_role": "Promoted",
        "OCF_RESKEY_CRM_meta_clone": "2",  # a CRM_meta_* key of the RunAgent, as clones set them
        "OCF_RESKEY_CRM_meta_notify_type": "pre",
        "OCF_CHECK_LEVEL": "10",
        "HA_SBIN_DIR": str(TOOLS_DIR),
        "HACLUSTER_SOCKET": "/run/test/api.sock",
        "HACLUSTER_PYTHON": sys.executable,
        "HA_RSCTMP": str(tmp_path / "rsc"),
        "HA_NODE": "n1",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert (tmp_path / "rsc").is_dir(), "the executor creates HA_RSCTMP"


@pytest.mark.parametrize("action", ["promote", "demote", "notify"])
def test_promotable_actions_pass_through(tmp_path: Path, action: str) -> None:
    envfile = tmp_path / "env"
    spec = AgentSpec("ocf", "test", "Probe", params=(("envfile", str(envfile)), ("rc", "8")))
    result = run(make_executor(tmp_path), OpRequest("db", spec, action, timeout_ms=5000))
    assert read_env(envfile)["OCF_RESKEY_CRM_meta_name"] == action
    assert result.action == action
    assert result.rc == 8  # running promoted: an OCF code, passed through


def test_system_ocf_root_wins_when_present(tmp_path: Path) -> None:
    system_root = tmp_path / "system-ocf"
    system_root.mkdir()
    envfile = tmp_path / "env"
    executor = make_executor(tmp_path, system_ocf_root=system_root)
    assert run(executor, probe(envfile=str(envfile))).rc == 0
    env = read_env(envfile)
    assert env["OCF_ROOT"] == str(system_root)
    assert env["OCF_FUNCTIONS_DIR"] == str(system_root / "lib" / "heartbeat")


def test_large_output_is_drained_and_only_the_tail_kept(tmp_path: Path) -> None:
    # About 150 KiB: more than a pipe holds, so an executor that stopped reading would hang.
    result = run(make_executor(tmp_path), probe(noise="2000", exit_reason="late reason"))
    assert (result.rc, result.timed_out) == (0, False)
    assert len(result.output) <= 4096
    assert result.output.rstrip().endswith("ocf-exit-reason:late reason")
    assert "Probe start on vip" in result.output
    assert "filler line 0 " not in result.output
    assert result.exit_reason == "late reason"


def test_hacluster_provider_uses_its_own_directory(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "Probe").symlink_to(FIXTURES / "ocf" / "resource.d" / "test" / "Probe")
    executor = make_executor(tmp_path, hacluster_agents_dir=agents)
    spec = AgentSpec("ocf", "hacluster", "Probe")
    assert executor.resolve(spec) == agents / "Probe"
    assert run(executor, OpRequest("r", spec, "start", timeout_ms=5000)).rc == 0


# --- agents that cannot run -------------------------------------------------------------------


def test_missing_agent_is_not_installed_and_names_every_path(tmp_path: Path) -> None:
    second_root = tmp_path / "ocf2"
    executor = make_executor(tmp_path, ocf_roots=[FIXTURES / "ocf", second_root])
    spec = AgentSpec("ocf", "test", "NoSuchAgent")
    assert executor.resolve(spec) is None
    result = run(executor, OpRequest("r", spec, "start", timeout_ms=5000))
    assert (result.rc, result.raw_rc, result.timed_out) == (5, None, False)
    assert result.exit_reason is not None
    assert str(FIXTURES / "ocf" / "resource.d" / "test" / "NoSuchAgent") in result.exit_reason
    assert str(second_root / "resource.d" / "test" / "NoSuchAgent") in result.exit_reason


def test_heartbeat_missing_script_names_resource_d_and_init_d(tmp_path: Path) -> None:
    result = run(
        make_executor(tmp_path),
        OpRequest("r", AgentSpec("heartbeat", None, "nope"), "start", timeout_ms=5000),
    )
    assert result.rc == 5
    assert result.exit_reason is not None
    assert str(FIXTURES / "resource.d" / "nope") in result.exit_reason
    assert str(FIXTURES / "init.d" / "nope") in result.exit_reason


def test_agent_name_cannot_escape_the_search_dirs(tmp_path: Path) -> None:
    spec = AgentSpec("ocf", "test", "../test/Probe")
    executor = make_executor(tmp_path)
    assert executor.resolve(spec) is None
    assert run(executor, OpRequest("r", spec, "start", timeout_ms=5000)).rc == 5


def test_not_executable_is_not_installed_with_chmod_hint(tmp_path: Path) -> None:
    root = tmp_path / "ocf"
    agent = root / "resource.d" / "test" / "Plain"
    agent.parent.mkdir(parents=True)
    agent.write_text("#!/bin/sh\nexit 0\n")
    agent.chmod(0o644)  # no execute bit for anyone: even root's access(X_OK) fails
    spec = AgentSpec("ocf", "test", "Plain")
    result = run(make_executor(tmp_path, ocf_roots=[root]), OpRequest("r", spec, "start", timeout_ms=5000))
    assert result.rc == 5
    assert result.exit_reason is not None
    assert "chmod 755" in result.exit_reason
    assert str(agent) in result.exit_reason


def test_broken_interpreter_line_is_not_installed(tmp_path: Path) -> None:
    root = tmp_path / "ocf"
    agent = root / "resource.d" / "test" / "Broken"
    agent.parent.mkdir(parents=True)
    agent.write_text("#!/nonexistent/interpreter\n")
    agent.chmod(0o755)
    spec = AgentSpec("ocf", "test", "Broken")
    result = run(make_executor(tmp_path, ocf_roots=[root]), OpRequest("r", spec, "start", timeout_ms=5000))
    assert result.rc == 5
    assert result.exit_reason is not None
    assert str(agent) in result.exit_reason


def test_no_file_descriptor_left_is_a_generic_failure_of_that_op(tmp_path: Path) -> None:
    # A real EMFILE: a child interpreter lowers RLIMIT_NOFILE and uses every descriptor up.
    # Before, os.pipe() raised out of the op (no result at all); it is a retryable failure,
    # not "not installed", which would ban the node.
    script = f"""
import asyncio
from pathlib import Path
from hacluster.shell.executor import AgentSpec, Executor, OpRequest
{USE_UP_DESCRIPTORS}
async def main():
    ex = Executor(node_name="n1", ocf_roots=[Path({str(FIXTURES / "ocf")!r})], rsc_tmp=Path({str(tmp_path)!r}))
    ex._prepare_rsc_tmp()
    use_up_descriptors()
    result = await ex.run(OpRequest("r", AgentSpec("ocf", "test", "Probe"), "start", timeout_ms=5000))
    print(result.rc, result.exit_reason)
asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    rc, _, reason = done.stdout.strip().partition(" ")
    assert rc == "1", done.stdout
    assert "Too many open files" in reason


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (AgentSpec("systemd", None, "nginx"), "unknown agent class 'systemd'"),
        (AgentSpec("ocf", None, "Probe"), "has no provider"),
    ],
)
def test_unusable_spec_is_a_configuration_error(tmp_path: Path, spec: AgentSpec, words: str) -> None:
    result = run(make_executor(tmp_path), OpRequest("r", spec, "start", timeout_ms=5000))
    assert result.rc == 6
    assert result.exit_reason is not None
    assert words in result.exit_reason


def test_parameter_name_that_cannot_be_exported_is_a_configuration_error(tmp_path: Path) -> None:
    spec = AgentSpec("ocf", "test", "Probe", params=(("a=b", "x"),))
    result = run(make_executor(tmp_path), OpRequest("r", spec, "start", timeout_ms=5000))
    assert result.rc == 6


# --- timeouts and process groups --------------------------------------------------------------


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result = run(make_executor(tmp_path), probe(grandchild=str(pidfile), timeout_ms=1500))
    assert (result.rc, result.raw_rc, result.timed_out) == (1, None, True)
    assert result.exit_reason == "timed out after 1500 ms"
    agent_pid, sleep_pid = (int(word) for word in pidfile.read_text().split())
    assert is_gone(agent_pid), "the agent survived its timeout"
    assert is_gone(sleep_pid), "the agent's grandchild survived the timeout"
    assert 1500 <= result.duration_ms < 2300, "SIGTERM was enough, no 1 s grace period expected"


def test_timeout_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result = run(make_executor(tmp_path), probe(grandchild=str(pidfile), ignore_term="1", timeout_ms=1500))
    assert result.timed_out
    agent_pid, sleep_pid = (int(word) for word in pidfile.read_text().split())
    assert is_gone(agent_pid)
    assert is_gone(sleep_pid)
    assert 2400 <= result.duration_ms < 4000, "expected timeout 1.5 s + 1 s grace before SIGKILL"


def test_tiny_timeout_has_a_tiny_grace_period(tmp_path: Path) -> None:
    result = run(make_executor(tmp_path), probe(ignore_term="1", sleep="30", timeout_ms=200))
    assert result.timed_out
    assert result.duration_ms < 1000


def test_cancelled_op_leaves_nothing_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"

    async def scenario() -> None:
        task = asyncio.create_task(make_executor(tmp_path).run(probe(grandchild=str(pidfile))))
        for _ in range(200):
            if pidfile.exists() and len(pidfile.read_text().split()) == 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    for pid in (int(word) for word in pidfile.read_text().split()):
        assert is_gone(pid), f"pid {pid} survived the cancelled op"


def test_agent_left_running_after_success_is_not_killed(tmp_path: Path) -> None:
    # A start that leaves a daemon behind (here: a background sleep) must not lose it.
    root = tmp_path / "ocf"
    agent = root / "resource.d" / "test" / "Daemonizes"
    agent.parent.mkdir(parents=True)
    pidfile = tmp_path / "daemon.pid"
    agent.write_text(f"#!/bin/sh\nsleep 30 >/dev/null 2>&1 &\necho $! > {pidfile}\nexit 0\n")
    agent.chmod(0o755)
    spec = AgentSpec("ocf", "test", "Daemonizes")
    result = run(make_executor(tmp_path, ocf_roots=[root]), OpRequest("r", spec, "start", timeout_ms=5000))
    daemon_pid = int(pidfile.read_text())
    try:
        assert result.rc == 0
        assert not is_gone(daemon_pid)
    finally:
        os.kill(daemon_pid, 9)


def test_leftover_process_holding_the_pipe_does_not_stall_the_op(tmp_path: Path) -> None:
    root = tmp_path / "ocf"
    agent = root / "resource.d" / "test" / "Leaky"
    agent.parent.mkdir(parents=True)
    pidfile = tmp_path / "leaky.pid"
    agent.write_text(f"#!/bin/sh\necho started\nsleep 30 &\necho $! > {pidfile}\nexit 0\n")
    agent.chmod(0o755)
    spec = AgentSpec("ocf", "test", "Leaky")
    result = run(make_executor(tmp_path, ocf_roots=[root]), OpRequest("r", spec, "start", timeout_ms=5000))
    try:
        assert (result.rc, result.timed_out) == (0, False)
        assert "started" in result.output
        assert result.duration_ms < 2000
    finally:
        os.kill(int(pidfile.read_text()), 9)


# --- one op per resource ----------------------------------------------------------------------


def intervals(logfile: Path) -> dict[tuple[str, str], tuple[int, int]]:
    begins: dict[tuple[str, str], int] = {}
    spans = {}
    for line in logfile.read_text().splitlines():
        resource, action, kind, stamp = line.split()
        if kind == "begin":
            begins[(resource, action)] = int(stamp)
        else:
            spans[(resource, action)] = (begins[(resource, action)], int(stamp))
    return spans


def test_ops_on_one_resource_are_serialised_and_different_resources_overlap(tmp_path: Path) -> None:
    logfile = tmp_path / "log"

    async def scenario() -> list[OpResult]:
        executor = make_executor(tmp_path)
        return list(
            await asyncio.gather(
                executor.run(probe("a", "start", sleep="0.4", logfile=str(logfile))),
                executor.run(probe("a", "monitor", sleep="0.4", logfile=str(logfile))),
                executor.run(probe("b", "start", sleep="0.4", logfile=str(logfile))),
            )
        )

    results = asyncio.run(scenario())
    assert [r.rc for r in results] == [0, 0, 0]
    spans = intervals(logfile)
    a_start, a_monitor, b_start = spans[("a", "start")], spans[("a", "monitor")], spans[("b", "start")]
    assert a_start[1] <= a_monitor[0], "the second op on a resource began before the first ended"
    assert b_start[0] < a_start[1], "ops on different resources did not run in parallel"
    assert a_start[0] < b_start[1]


# --- LSB --------------------------------------------------------------------------------------


def lsb(action: str) -> OpRequest:
    return OpRequest("svc", AgentSpec("lsb", None, "lsbtest"), action, timeout_ms=5000)


def test_lsb_lifecycle_maps_status_to_ocf(tmp_path: Path) -> None:
    executor = make_executor(tmp_path)

    async def scenario() -> list[tuple[int, int | None]]:
        outcome = []
        for action in ("monitor", "start", "monitor", "stop", "monitor"):
            result = await executor.run(lsb(action))
            outcome.append((result.rc, result.raw_rc))
        return outcome

    assert asyncio.run(scenario()) == [(7, 3), (0, 0), (0, 0), (0, 0), (7, 3)]


@pytest.mark.parametrize(("status_rc", "rc"), [(0, 0), (3, 7), (1, 1), (2, 1), (4, 1), (150, 1)])
def test_lsb_status_codes(tmp_path: Path, status_rc: int, rc: int) -> None:
    executor = make_executor(tmp_path)
    (tmp_path / "rsc").mkdir()
    (tmp_path / "rsc" / "lsbtest.status_rc").write_text(str(status_rc))
    result = run(executor, lsb("monitor"))
    assert (result.rc, result.raw_rc) == (rc, status_rc)


@pytest.mark.parametrize(("stop_rc", "rc"), [(0, 0), (7, 1), (1, 1), (5, 5), (100, 1)])
def test_lsb_stop_succeeds_only_with_zero(tmp_path: Path, stop_rc: int, rc: int) -> None:
    (tmp_path / "rsc").mkdir()
    (tmp_path / "rsc" / "lsbtest.stop_rc").write_text(str(stop_rc))
    assert run(make_executor(tmp_path), lsb("stop")).rc == rc


def test_service_class_is_an_init_script(tmp_path: Path) -> None:
    req = OpRequest("svc", AgentSpec("service", None, "lsbtest"), "monitor", timeout_ms=5000)
    assert run(make_executor(tmp_path), req).rc == 7


# --- Heartbeat resource.d ---------------------------------------------------------------------


def heartbeat(action: str, *args: str, script: str = "hbtest") -> OpRequest:
    return OpRequest("grp", AgentSpec("heartbeat", None, script, args=args), action, timeout_ms=5000)


@pytest.mark.parametrize(
    ("text", "rc"),
    [
        ("hbtest is running", 0),
        ("IPaddr2 Running OK", 0),
        ("OK", 0),
        ("hbtest is not running", 7),
        ("NOT currently running", 7),
        ("stopped", 7),
        ("", 7),
        ("ok", 7),
    ],
)
def test_heartbeat_status_is_judged_by_text(tmp_path: Path, text: str, rc: int) -> None:
    (tmp_path / "rsc").mkdir()
    (tmp_path / "rsc" / "hbtest.status_text").write_text(text + "\n")
    result = run(make_executor(tmp_path), heartbeat("monitor", "10.0.0.5/24"))
    assert result.raw_rc == 0
    assert result.rc == rc


def test_heartbeat_args_come_before_the_action(tmp_path: Path) -> None:
    result = run(make_executor(tmp_path), heartbeat("start", "/dev/drbd0", "/data", "ext3"))
    assert result.rc == 0
    args = (tmp_path / "rsc" / "hbtest.args").read_text().splitlines()
    assert args == ["/dev/drbd0", "/data", "ext3", "start"]
    run(make_executor(tmp_path), heartbeat("monitor", "/dev/drbd0"))
    assert (tmp_path / "rsc" / "hbtest.args").read_text().splitlines() == ["/dev/drbd0", "status"]


@pytest.mark.parametrize(("script_rc", "rc"), [(0, 0), (1, 1), (7, 1), (5, 1)])
def test_heartbeat_start_stop_by_exit_status(tmp_path: Path, script_rc: int, rc: int) -> None:
    (tmp_path / "rsc").mkdir()
    (tmp_path / "rsc" / "hbtest.rc").write_text(str(script_rc))
    assert run(make_executor(tmp_path), heartbeat("stop")).rc == rc


def test_heartbeat_falls_back_to_init_d(tmp_path: Path) -> None:
    executor = make_executor(tmp_path)
    assert executor.resolve(AgentSpec("heartbeat", None, "lsbtest")) == FIXTURES / "init.d" / "lsbtest"
    assert run(executor, heartbeat("start", script="lsbtest")).rc == 0
    assert run(executor, heartbeat("monitor", script="lsbtest")).rc == 0  # "lsbtest is running"
    assert run(executor, heartbeat("stop", script="lsbtest")).rc == 0
    assert run(executor, heartbeat("monitor", script="lsbtest")).rc == 7  # "lsbtest is not running"


# --- in-process agents ------------------------------------------------------------------------


def test_in_process_agent_gets_the_same_environment(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, str], str]] = []

    def agent(action: str, env: Mapping[str, str]) -> tuple[int, str | None, str]:
        seen.append((action, dict(env), threading.current_thread().name))
        return 7, "not running here", "checked"

    executor = make_executor(tmp_path, in_process={("hacluster", "Native"): agent})
    spec = AgentSpec("ocf", "hacluster", "Native", params=(("ip", "10.0.0.9"),))
    result = run(executor, OpRequest("vip", spec, "monitor", timeout_ms=5000, interval_ms=3000))
    assert (result.rc, result.raw_rc, result.exit_reason, result.output) == (
        7,
        7,
        "not running here",
        "checked",
    )
    [(action, env, thread_name)] = seen
    assert action == "monitor"
    assert env["OCF_RESKEY_ip"] == "10.0.0.9"
    assert env["OCF_RESKEY_CRM_meta_interval"] == "3000"
    assert env["OCF_RESOURCE_INSTANCE"] == "vip"
    assert thread_name != threading.main_thread().name


def test_in_process_agent_timeout_abandons_the_thread(tmp_path: Path) -> None:
    release = threading.Event()

    def stuck(action: str, env: Mapping[str, str]) -> tuple[int, str | None, str]:
        release.wait(10)
        return 0, None, ""

    executor = make_executor(tmp_path, in_process={("hacluster", "Stuck"): stuck})
    spec = AgentSpec("ocf", "hacluster", "Stuck")
    try:
        result = run(executor, OpRequest("r", spec, "start", timeout_ms=300))
    finally:
        release.set()
    assert (result.rc, result.raw_rc, result.timed_out) == (1, None, True)
    assert 300 <= result.duration_ms < 2000
    assert executor.statistics().abandoned_threads == 1
    assert executor.statistics().timeouts == 1


@pytest.mark.parametrize(
    ("outcome", "rc", "reason_words"),
    [
        (RuntimeError("disk on fire"), 1, "RuntimeError: disk on fire"),
        ((42, None, ""), 1, None),
        ((190, "degraded", ""), 190, "degraded"),
    ],
)
def test_in_process_agent_failures_are_results(
    tmp_path: Path, outcome: object, rc: int, reason_words: str | None
) -> None:
    def agent(action: str, env: Mapping[str, str]) -> tuple[int, str | None, str]:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]

    executor = make_executor(tmp_path, in_process={("hacluster", "X"): agent})
    result = run(executor, OpRequest("r", AgentSpec("ocf", "hacluster", "X"), "monitor", timeout_ms=5000))
    assert result.rc == rc
    if reason_words is not None:
        assert result.exit_reason is not None
        assert reason_words in result.exit_reason


# --- statistics and logging -------------------------------------------------------------------


def test_statistics_count_ops_timeouts_and_codes(tmp_path: Path) -> None:
    executor = make_executor(tmp_path)

    async def scenario() -> None:
        await executor.run(probe(rc="0"))
        await executor.run(probe(action="monitor", rc="7"))
        await executor.run(probe(action="monitor", rc="7"))
        await executor.run(probe(sleep="5", timeout_ms=200))

    before = executor.statistics()
    asyncio.run(scenario())
    stats = executor.statistics()
    assert (before.ops_run, stats.ops_run, stats.timeouts, stats.running) == (0, 4, 1, 0)
    assert dict(stats.by_rc) == {0: 1, 7: 2, 1: 1}
    assert dict(stats.by_action) == {"start": 2, "monitor": 2}


def test_repeated_monitor_result_logs_at_debug(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hacluster.shell.executor")
    executor = make_executor(tmp_path)

    async def scenario() -> None:
        for code in ("0", "0", "7"):
            req = probe(action="monitor", rc=code)
            await executor.run(
                OpRequest(req.resource, req.spec, "monitor", timeout_ms=5000, interval_ms=10_000)
            )

    asyncio.run(scenario())
    finished = [r for r in caplog.records if r.getMessage().startswith("op finished")]
    assert [r.levelno for r in finished] == [logging.INFO, logging.DEBUG, logging.INFO]
    assert "resource=vip action=monitor interval_ms=10000 rc=7 " in finished[2].getMessage()


# --- real-time scheduling (root) --------------------------------------------------------------


@pytest.mark.root
def test_agents_do_not_inherit_sched_fifo(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch a process to SCHED_FIFO")
    policyfile = tmp_path / "policy"
    # A separate interpreter goes real-time, so this test process never does.
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from hacluster.shell.executor import AgentSpec, Executor, OpRequest
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError as exc:
            print("no-fifo", exc)
            sys.exit(0)
        ex = Executor(node_name="n1", ocf_roots=[Path({str(FIXTURES / "ocf")!r})], rsc_tmp=Path({str(tmp_path)!r}))
        spec = AgentSpec("ocf", "test", "Probe", params=(("policyfile", {str(policyfile)!r}),))
        print("rc", asyncio.run(ex.run(OpRequest("r", spec, "start", timeout_ms=5000))).rc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    if done.stdout.startswith("no-fifo"):
        pytest.skip(f"SCHED_FIFO not permitted here: {done.stdout.strip()}")
    assert done.stdout.strip() == "rc 0"
    assert policyfile.read_text().strip() == str(os.SCHED_OTHER)


# --- ClusterLabs' Dummy -----------------------------------------------------------------------


def test_clusterlabs_dummy_through_the_executor(tmp_path: Path) -> None:
    if not DUMMY.exists():
        message = f"{DUMMY} missing: install the Debian package resource-agents (apt-get install -y resource-agents)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    executor = Executor(node_name="n1", ocf_roots=[Path("/usr/lib/ocf")], rsc_tmp=tmp_path / "rsc")
    state = tmp_path / "dummy.state"
    spec = AgentSpec("ocf", "heartbeat", "Dummy", params=(("state", str(state)),))

    async def scenario() -> list[tuple[str, int, int]]:
        steps = [
            ("monitor", 0),
            ("start", 0),
            ("monitor", 0),
            ("monitor", 5000),
            ("stop", 0),
            ("monitor", 5000),
        ]
        outcome = []
        for action, interval_ms in steps:
            result = await executor.run(
                OpRequest("d1", spec, action, timeout_ms=20_000, interval_ms=interval_ms)
            )
            outcome.append((action, interval_ms, result.rc))
            if action == "start":
                assert state.exists()
            if (action, interval_ms, result.rc) == ("monitor", 5000, 7):
                assert result.exit_reason == "No process state file found"
        return outcome

    assert asyncio.run(scenario()) == [
        ("monitor", 0, 7),
        ("start", 0, 0),
        ("monitor", 0, 0),
        ("monitor", 5000, 0),
        ("stop", 0, 0),
        ("monitor", 5000, 7),
    ]
    assert not state.exists()
    meta = run(executor, OpRequest("d1", spec, "meta-data", timeout_ms=5000))
    assert meta.rc == 0
    assert meta.output.rstrip().endswith("</resource-agent>")
