"""pgreplica's OCF contract on one real PostgreSQL server (initdb in a tmp dir, Debian's postgresql).

One instance with no peers is what ocf-tester sees: it starts as a standby following no one
(Unpromoted, ready to be promoted), promotes and demotes in place.  The replication set with
peers, failover and rewind is in tests/integration/test_pgreplica.py.  Promotion scores go
through the recording ``crm_master`` in tests/agents_fixtures/sbin (``HA_SBIN_DIR``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ocfkit import REPO, assert_passed, free_port, ocf_env, require_root, run_ocf_tester, validate_metadata

from hacluster.agents import AGENTS, RC, PgReplicaAgent
from hacluster.agents.pgsql import find_pg_binary

SBIN = REPO / "tests" / "agents_fixtures" / "sbin"


@dataclass
class Server:
    root: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def calls(self) -> Path:
        return self.root / "crm_master.calls"

    def params(self) -> dict[str, str]:
        return {
            "pgdata": str(self.pgdata),
            "pgport": str(self.port),
            "socketdir": str(self.root / "sock"),
            "logfile": str(self.root / "postgres.log"),
            "listen_addresses": "127.0.0.1",
            "pgdb": "postgres",
        }

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "HA_RSCTMP": str(self.root / "rsc"),
            "HA_SBIN_DIR": str(SBIN),
            "CRM_MASTER_LOG": str(self.calls),
            "HA_NODE": "n1",
            "OCF_RESKEY_CRM_meta_timeout": "60000",
        }
        return ocf_env("pg:0", self.params(), **(base | extra))

    def score_calls(self) -> list[str]:
        """The arguments of every crm_master call so far, oldest first."""
        if not self.calls.exists():
            return []
        return [line.split(" ", 2)[2] for line in self.calls.read_text().splitlines()]

    def in_recovery(self) -> str:
        argv = ["runuser", "-u", "postgres", "--", find_pg_binary("psql"), "-X", "-A", "-t", "-h", str(self.root / "sock"),
                "-p", str(self.port), "-d", "postgres", "-c", "select pg_is_in_recovery()"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/", check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@contextlib.contextmanager
def _initdb_server() -> Iterator[Server]:
    require_root()
    if not find_pg_binary("initdb"):
        pytest.skip("needs PostgreSQL: apt-get install -y postgresql")
    user = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="hac-pgr1-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        for sub in ("sock", "rsc"):
            (root / sub).mkdir()
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(root / "sock", user.pw_uid, user.pw_gid)
        subprocess.run(
            ["runuser", "-u", "postgres", "--", find_pg_binary("initdb"), "-D", str(root / "data"), "-A", "trust",
             "-U", "postgres", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd="/", check=True,
        )  # fmt: skip
        yield Server(root, free_port())
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                ["runuser", "-u", "postgres", "--", find_pg_binary("pg_ctl"), "-D", str(root / "data"), "-m",
                 "immediate", "-W", "stop"],
                capture_output=True, timeout=60, cwd="/", check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh initdb'd data directory and a free port; nothing running."""
    with _initdb_server() as made:
        yield made


@pytest.fixture
def other_server() -> Iterator[Server]:
    """A second one, made by its own initdb: another cluster, not a copy."""
    with _initdb_server() as made:
        yield made


# ---------------------------------------------------------------------------------- without a server


def test_registered_for_the_daemon_and_metadata_is_valid() -> None:
    assert AGENTS["pgreplica"] is PgReplicaAgent
    xml = PgReplicaAgent().metadata_xml()
    done = validate_metadata(xml)
    assert done.returncode == 0, done.stderr
    for action in ("promote", "demote", "notify", "start", "stop", "validate-all", "meta-data"):
        assert f'<action name="{action}"' in xml, action
    assert '<action name="monitor" timeout="30s" interval="10s" depth="0" role="Promoted"/>' in xml
    assert '<action name="monitor" timeout="30s" interval="11s" depth="0" role="Unpromoted"/>' in xml
    for parameter in ("node_list", "primary_host", "repuser", "synchronous_standby_names", "pgdata"):
        assert f'<parameter name="{parameter}"' in xml, parameter


def test_launcher_prints_metadata() -> None:
    done = subprocess.run(
        [str(REPO / "resource_agents" / "pgreplica"), "meta-data"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '<resource-agent name="pgreplica"' in done.stdout


# ---------------------------------------------------------------------------------- the OCF contract


@pytest.mark.root
def test_passes_ocf_tester_and_sets_scores(server: Server) -> None:
    env = {
        "HA_RSCTMP": str(server.root / "rsc"),
        "HA_SBIN_DIR": str(SBIN),
        "CRM_MASTER_LOG": str(server.calls),
    }
    done = run_ocf_tester("pgreplica", "pg1", server.params(), extra_env=env)
    assert_passed(done, "pgreplica")
    calls = server.score_calls()
    assert "-Q -l reboot -v 500" in calls, calls  # a standby that follows no one
    assert "-Q -l reboot -v 1000" in calls, calls  # promoted
    assert calls[-1] == "-Q -l reboot -D", calls  # stopped: the score goes
    assert PgReplicaAgent().run("monitor", server.env()).rc == RC.NOT_RUNNING


@pytest.mark.root
def test_lifecycle_in_place(server: Server) -> None:
    agent = PgReplicaAgent()
    env = server.env()
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"}).rc == RC.NOT_RUNNING
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("promote", env).rc == RC.ERR_GENERIC, "promote needs a started instance"
    assert agent.run("demote", env).rc == RC.SUCCESS, "a stopped instance is not promoted"
    started = agent.run("start", env)
    assert started.rc == RC.SUCCESS, started.exit_reason
    assert server.in_recovery() == "t", "start leaves the instance unpromoted"
    assert (server.pgdata / "standby.signal").exists()
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.SUCCESS
    for _ in range(2):
        promoted = agent.run("promote", env)
        assert promoted.rc == RC.SUCCESS, promoted.exit_reason
    assert server.in_recovery() == "f"
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_role": "Promoted"}).rc == RC.RUNNING_PROMOTED
    running_primary = agent.run("start", env)
    assert running_primary.rc == RC.ERR_GENERIC
    assert "running as a primary" in (running_primary.exit_reason or "")
    for _ in range(2):
        assert agent.run("demote", env).rc == RC.SUCCESS
    assert server.in_recovery() == "t"
    assert agent.run("monitor", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    auto_conf = (server.pgdata / "postgresql.auto.conf").read_text()
    assert "wal_log_hints = 'on'" in auto_conf
    assert "listen_addresses = '127.0.0.1'" in auto_conf


@pytest.mark.root
def test_crashed_primary_is_failed_promoted_until_stopped(server: Server) -> None:
    agent = PgReplicaAgent()
    env = server.env()
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("promote", env).rc == RC.SUCCESS
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    # While the killed postmaster is still dying, monitor already answers 9 (it does not answer);
    # once it is gone (or a zombie waiting for init), 9 with the reason that says so.
    deadline = time.monotonic() + 20
    while (result := agent.run("monitor", env)).rc != RC.FAILED_PROMOTED or "not running" not in (
        result.exit_reason or ""
    ):
        assert result.rc in (RC.RUNNING_PROMOTED, RC.FAILED_PROMOTED), result
        assert time.monotonic() < deadline, result
        time.sleep(0.1)
    assert "is not running (crashed or killed)" in (result.exit_reason or "")
    assert agent.run("demote", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    # The crashed primary's data starts again as a standby (crash recovery in standby mode).
    restarted = agent.run("start", env)
    assert restarted.rc == RC.SUCCESS, restarted.exit_reason
    assert server.in_recovery() == "t"
    assert agent.run("stop", env).rc == RC.SUCCESS


@pytest.mark.root
def test_empty_data_directory_needs_a_primary_to_clone(server: Server) -> None:
    agent = PgReplicaAgent()
    empty = server.root / "empty"
    env = server.env(OCF_RESKEY_pgdata=str(empty), OCF_RESKEY_node_list=f"n2=127.0.0.1:{free_port()}")
    assert agent.run("validate-all", env).rc == RC.SUCCESS, "an absent data directory is cloned at start"
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"}).rc == RC.NOT_RUNNING
    result = agent.run("start", env)
    assert result.rc == RC.ERR_GENERIC
    assert "holds no cluster and no primary answers (asked: n2 (127.0.0.1:" in (result.exit_reason or ""), (
        result
    )
    empty.mkdir()
    (empty / "stray").write_text("not a cluster")
    refused = agent.run("validate-all", env)
    assert refused.rc == RC.ERR_INSTALLED
    assert "neither a PostgreSQL data directory nor empty" in (refused.exit_reason or "")


@pytest.mark.root
@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (
            {"clone_max": "3", "promoted_max": "2", "notify": "true"},
            "promoted-max=2: a replication set has one primary",
        ),
        ({"clone_max": "3", "master_max": "2", "notify": "true"}, "promoted-max=2"),
        ({"clone_max": "3", "clone_node_max": "2", "notify": "true"}, "clone-node-max=2"),
        ({"clone_max": "3", "promoted_max": "1"}, "set meta notify=true on the clone"),
        ({"clone_max": "three"}, "OCF_RESKEY_CRM_meta_clone_max='three' is not a whole number"),
    ],
)
def test_clone_configuration_errors(server: Server, meta: dict[str, str], message: str) -> None:
    env = server.env(**{f"OCF_RESKEY_CRM_meta_{k}": v for k, v in meta.items()})
    result = PgReplicaAgent().run("validate-all", env)
    assert result.rc == RC.ERR_CONFIGURED, result
    assert message in (result.exit_reason or ""), result
    assert PgReplicaAgent().run("start", env).rc == RC.ERR_CONFIGURED


@pytest.mark.root
def test_clone_with_primary_host_needs_no_notifications(server: Server) -> None:
    env = server.env(OCF_RESKEY_CRM_meta_clone_max="3", OCF_RESKEY_primary_host="10.0.0.100")
    assert PgReplicaAgent().run("validate-all", env).rc == RC.SUCCESS


@pytest.mark.root
@pytest.mark.parametrize(
    ("params", "rc", "message"),
    [
        ({"node_list": "n2=10.0.0.2:0"}, RC.ERR_CONFIGURED, "port '0' is not 1..65535"),
        ({"stream_grace": "soon"}, RC.ERR_CONFIGURED, "stream_grace='soon' is not an integer"),
        ({"connect_timeout": "0"}, RC.ERR_CONFIGURED, "connect_timeout=0 is outside 1..60"),
        ({"pgctl": "/nonexistent/pg_ctl"}, RC.ERR_INSTALLED, "/nonexistent/pg_ctl"),
    ],
)
def test_parameter_errors(server: Server, params: dict[str, str], rc: int, message: str) -> None:
    result = PgReplicaAgent().run(
        "validate-all", server.env(**{f"OCF_RESKEY_{k}": v for k, v in params.items()})
    )
    assert result.rc == rc, result
    assert message in (result.exit_reason or ""), result


@pytest.mark.root
def test_a_failing_crm_master_does_not_fail_the_action(server: Server) -> None:
    agent = PgReplicaAgent()
    env = server.env(CRM_MASTER_RC="1")
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.SUCCESS
    # Unknown after a failure, so every monitor tries again.
    assert server.score_calls().count("-Q -l reboot -v 500") >= 2, server.score_calls()
    missing = server.env(HA_SBIN_DIR=str(server.root / "no-sbin"))
    assert agent.run("monitor", missing).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS


@pytest.mark.root
def test_scores_are_set_once_and_again_on_probes(server: Server) -> None:
    agent = PgReplicaAgent()
    env = server.env()
    assert agent.run("start", env).rc == RC.SUCCESS
    for _ in range(3):
        assert agent.run("monitor", env).rc == RC.SUCCESS
    assert server.score_calls() == ["-Q -l reboot -v 500"], "an unchanged score is not set again"
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"}).rc == RC.SUCCESS
    assert server.score_calls() == ["-Q -l reboot -v 500"] * 2, (
        "a probe sets it again (it may have been lost)"
    )
    assert agent.run("stop", env).rc == RC.SUCCESS


@pytest.mark.root
def test_notify_never_fails(server: Server) -> None:
    agent = PgReplicaAgent()
    for extra in (
        {},
        {"OCF_RESKEY_CRM_meta_notify_type": "post", "OCF_RESKEY_CRM_meta_notify_operation": "promote"},
        {"OCF_RESKEY_CRM_meta_clone_max": "x", "OCF_RESKEY_CRM_meta_notify_type": "pre"},
        {"OCF_RESKEY_pgport": "not-a-port"},
    ):
        result = agent.run("notify", server.env(**extra))
        assert result.rc == RC.SUCCESS, (extra, result)


@pytest.mark.root
def test_data_of_another_cluster_is_refused_not_rewound_into_a_standby(
    server: Server, other_server: Server
) -> None:
    agent = PgReplicaAgent()
    primary_env = server.env()
    assert agent.run("start", primary_env).rc == RC.SUCCESS
    assert agent.run("promote", primary_env).rc == RC.SUCCESS
    try:
        # other_server's initdb left a "shut down" primary's data: the agent must rewind it before
        # it may follow; pg_rewind refuses a cluster of another system, and so must start.
        env = other_server.env(HA_NODE="n2", OCF_RESKEY_node_list=f"n1=127.0.0.1:{server.port}")
        result = agent.run("start", env)
        assert result.rc == RC.ERR_GENERIC, result
        reason = result.exit_reason or ""
        assert f"pg_rewind from n1 (127.0.0.1:{server.port}) failed" in reason, reason
        assert "different systems" in reason, reason
        assert f"move {other_server.pgdata} aside" in reason, reason
        assert (other_server.pgdata / "standby.signal").exists(), "a refused data directory stays a standby's"
        assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    finally:
        assert agent.run("stop", primary_env).rc == RC.SUCCESS
