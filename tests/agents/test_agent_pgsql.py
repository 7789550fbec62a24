"""pgsql against a throw-away PostgreSQL cluster made by initdb in a tmp dir (Debian's postgresql).

The cluster lives in /tmp/hac-pg-<rand> (pytest's tmp dirs are 0700, which the postgres user
cannot enter), listens on a free port and a socket directory of its own, and is stopped and
deleted at the end.  The distribution's own cluster service is never started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from ocfkit import assert_passed, free_port, ocf_env, require_root, run_ocf_tester

from hacluster.agents import RC, PgsqlAgent
from hacluster.agents.pgsql import find_pg_binary

pytestmark = pytest.mark.root


@dataclass
class Cluster:
    root: str
    pgdata: str
    socketdir: str
    port: int

    def params(self) -> dict[str, str]:
        return {
            "pgdata": self.pgdata,
            "pgport": str(self.port),
            "socketdir": self.socketdir,
            "logfile": os.path.join(self.root, "postgres.log"),
        }

    def env(self, **extra: str) -> dict[str, str]:
        return ocf_env("pg1", self.params(), OCF_RESKEY_CRM_meta_timeout="60000", **extra)

    def psql(self, sql: str) -> str:
        argv = ["runuser", "-u", "postgres", "--", find_pg_binary("psql"), "-X", "-A", "-t", "-q"]
        argv += [
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.socketdir,
            "-p",
            str(self.port),
            "-d",
            "postgres",
            "-c",
            sql,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/", check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_root()
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.skip("needs PostgreSQL: apt-get install -y postgresql")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("needs the postgres user (apt-get install -y postgresql)")
    root = tempfile.mkdtemp(prefix="hac-pg-", dir="/tmp")
    os.chmod(root, 0o755)
    os.chown(root, user.pw_uid, user.pw_gid)
    pgdata, socketdir = os.path.join(root, "data"), os.path.join(root, "sock")
    try:
        for path in (socketdir,):
            os.mkdir(path)
            os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                initdb[-1],
                "-D",
                pgdata,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            check=True,
        )
        yield Cluster(root, pgdata, socketdir, free_port())
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    find_pg_binary("pg_ctl"),
                    "-D",
                    pgdata,
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
                cwd="/",
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def test_pgsql_passes_ocf_tester(cluster: Cluster) -> None:
    done = run_ocf_tester("pgsql", "pg1", cluster.params())
    assert_passed(done, "pgsql")
    # ocf-tester ends with migrate_to, which pgsql does not implement: it leaves it stopped.
    assert PgsqlAgent().run("monitor", cluster.env()).rc == RC.NOT_RUNNING


def test_data_survives_stop_and_start(cluster: Cluster) -> None:
    agent = PgsqlAgent()
    env = cluster.env()
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    result = agent.run("start", env)
    assert result.rc == RC.SUCCESS, result.exit_reason
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.SUCCESS
    cluster.psql("create table if not exists hac (v text); insert into hac values ('kept across restart')")
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    assert not os.path.exists(os.path.join(cluster.pgdata, "postmaster.pid"))
    assert agent.run("start", env).rc == RC.SUCCESS
    assert cluster.psql("select v from hac") == "kept across restart"
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS


def test_stale_pidfile_is_removed_on_start(cluster: Cluster) -> None:
    agent = PgsqlAgent()
    env = cluster.env()
    pidfile = os.path.join(cluster.pgdata, "postmaster.pid")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(pidfile, "w") as f:
        f.write(f"{dead.pid}\n{cluster.pgdata}\n")
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    result = agent.run("start", env)
    assert result.rc == RC.SUCCESS, result.exit_reason
    assert agent.run("stop", env).rc == RC.SUCCESS


def test_broken_monitor_sql_is_a_failure(cluster: Cluster) -> None:
    agent = PgsqlAgent()
    env = cluster.env()
    assert agent.run("start", env).rc == RC.SUCCESS
    try:
        broken = agent.run("monitor", {**env, "OCF_RESKEY_monitor_sql": "select * from no_such_table;"})
        assert broken.rc == RC.ERR_GENERIC
        assert "no_such_table" in (broken.exit_reason or "")
    finally:
        assert agent.run("stop", env).rc == RC.SUCCESS


def test_node_without_the_data_directory(cluster: Cluster) -> None:
    agent = PgsqlAgent()
    env = {**cluster.env(), "OCF_RESKEY_pgdata": os.path.join(cluster.root, "absent")}
    assert agent.run("monitor", {**env, "OCF_RESKEY_CRM_meta_interval": "0"}).rc == RC.NOT_RUNNING
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("validate-all", env).rc == RC.ERR_INSTALLED
    assert agent.run("start", env).rc == RC.ERR_INSTALLED
    no_pgdata = {k: v for k, v in env.items() if k != "OCF_RESKEY_pgdata"}
    assert agent.run("validate-all", no_pgdata).rc == RC.ERR_CONFIGURED
    assert (
        agent.run("validate-all", {**env, "OCF_RESKEY_pgctl": "/nonexistent/pg_ctl"}).rc == RC.ERR_INSTALLED
    )
