"""A replicated PostgreSQL lab: three node namespaces running pgreplica, and a client namespace.

    with ReplicaLab() as rl:
        rl.build()                       # n1 primary, n2 synchronous standby, n3 potential
        rl.act(2, "monitor")             # the agent, in-process inside n2's namespace
        rl.sql(1, "select 1")            # psql on n1's Unix socket, as postgres

Nodes n1..n3 live in network namespaces on one bridge (``netns.Lab``); each has its own data
directory, socket directory, server log and ``HA_RSCTMP`` under one temp dir, and all listen
on port 5432 of their own address.  Only n1's data directory is made by ``initdb``: the
others are cloned by the agent's own ``start``.  Each node runs ``pgreplica_runner.py``, so
agent actions run in-process in the node's namespace with the OCF environment a promotable
clone instance gets (``OCF_RESKEY_CRM_meta_clone``, ``_promoted_max``, ``_notify``…).  The
test plays the scheduler: it picks whom to promote from the scores the agents set through
``HA_SBIN_DIR/crm_master`` (the recording stand-in in ``tests/agents_fixtures/sbin``).
Node 4 is the client: the writer runs there and reaches the servers over the bridge.

Teardown stops every server immediately, kills everything in the namespaces, deletes them
and the temp dir, also when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from netns import Lab, require_lab

from hacluster.agents.pgsql import find_pg_binary

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "pgreplica_runner.py"
SBIN = REPO / "tests" / "agents_fixtures" / "sbin"
PORT = 5432
DB_NODES = (1, 2, 3)
CLIENT = 4
SYNC_NAMES = "FIRST 1 (n2, n3)"
REPUSER_SQL = """
set synchronous_commit = local;
create role replicator with replication login;
grant pg_read_all_stats to replicator;
grant execute on function pg_catalog.pg_ls_dir(text, boolean, boolean) to replicator;
grant execute on function pg_catalog.pg_stat_file(text, boolean) to replicator;
grant execute on function pg_catalog.pg_read_binary_file(text) to replicator;
grant execute on function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) to replicator;
create table acked (id integer primary key, at timestamptz not null default now());
"""
"""What an operator runs once on the first primary (docs/replicated-postgresql.md lists the same)."""


def require_postgres() -> None:
    require_lab()
    missing = [
        tool
        for tool in ("initdb", "pg_ctl", "psql", "pg_rewind", "pg_basebackup")
        if not find_pg_binary(tool)
    ]
    if missing:
        message = f"needs PostgreSQL server binaries ({', '.join(missing)}): apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root with postgresql installed, so this must not be skipped: {message}")
        pytest.skip(message)


@dataclass
class Answer:
    rc: int
    reason: str | None
    log: list[str]

    def __str__(self) -> str:
        return f"rc={self.rc} reason={self.reason}\n" + "\n".join(self.log)


@dataclass
class Node:
    index: int
    root: Path
    runner: subprocess.Popen[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def socketdir(self) -> Path:
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    @property
    def rsctmp(self) -> Path:
        return self.root / "rsc"


class ReplicaLab:
    """Three pgreplica nodes and a client; see the module docstring."""

    def __init__(self, *, stream_grace_s: int = 30) -> None:
        require_postgres()
        self.stream_grace_s = stream_grace_s
        self.lab = Lab("pgr", nodes=4)
        self.root = Path(tempfile.mkdtemp(prefix="hac-pgr-", dir="/tmp"))
        self.calls = self.root / "crm_master.calls"
        self.nodes = {i: Node(i, self.root / f"n{i}") for i in DB_NODES}
        self.postgres = pwd.getpwnam("postgres")

    # --- building and tearing down -------------------------------------------------------

    def __enter__(self) -> ReplicaLab:
        try:
            self.lab.__enter__()
            os.chmod(self.root, 0o755)
            for node in self.nodes.values():
                node.root.mkdir()
                for path in (node.root, node.socketdir):
                    path.mkdir(exist_ok=True)
                    os.chown(path, self.postgres.pw_uid, self.postgres.pw_gid)
                node.rsctmp.mkdir()
                self.start_runner(node.index)
            self._initdb(self.nodes[1])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.print_logs()
        self.close()

    def print_logs(self, lines: int = 40) -> None:
        """The end of every server log, for the report of a failed test (pytest shows stdout)."""
        for node in self.nodes.values():
            if node.logfile.exists():
                tail = node.logfile.read_text(errors="replace").splitlines()[-lines:]
                print(f"--- {node.name} {node.logfile} (last {len(tail)} lines)", *tail, sep="\n")

    def _initdb(self, node: Node) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", find_pg_binary("initdb"), "-D", str(node.pgdata), "-A", "trust",
             "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
            capture_output=True, text=True, timeout=120, cwd="/", check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        subnet = self.lab.address(1).rsplit(".", 1)[0] + ".0/24"
        with open(node.pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {subnet} trust\nhost replication all {subnet} trust\n")
        with open(node.pgdata / "postgresql.conf", "a") as conf:
            # Small servers; and WAL kept long enough that a standby cloned or cut off for a few
            # seconds can still catch up by streaming (the operator guide says the same).
            conf.write("shared_buffers = 16MB\nwal_keep_size = 256MB\n")

    def close(self) -> None:
        pg_ctl = find_pg_binary("pg_ctl")
        for node in self.nodes.values():
            if (node.pgdata / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    subprocess.run(
                        ["runuser", "-u", "postgres", "--", pg_ctl, "-D", str(node.pgdata), "-m", "immediate", "-W", "stop"],
                        capture_output=True, timeout=30, cwd="/", check=False,
                    )  # fmt: skip
        try:
            self.lab.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- the agent -----------------------------------------------------------------------

    def start_runner(self, i: int) -> None:
        node = self.nodes[i]
        node.runner = self.lab.run(
            i, [sys.executable, str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def env(self, i: int, **extra: str) -> dict[str, str]:
        """The OCF environment of clone instance ``pg:<i-1>`` on node ``n<i>``."""
        node = self.nodes[i]
        node_list = " ".join(f"n{j}={self.lab.address(j)}" for j in DB_NODES)
        params = {
            "pgdata": str(node.pgdata),
            "pgport": str(PORT),
            "socketdir": str(node.socketdir),
            "logfile": str(node.logfile),
            "pgdb": "postgres",
            "repuser": "replicator",
            "node_list": node_list,
            "synchronous_standby_names": SYNC_NAMES,
            "stream_grace": str(self.stream_grace_s),
            "connect_timeout": "2",
        }
        meta = {"clone": str(i - 1), "clone_max": "3", "clone_node_max": "1", "promoted_max": "1",
                "promoted_node_max": "1", "notify": "true", "globally_unique": "false",
                "timeout": "60000", "interval": "0", "on_node": node.name}  # fmt: skip
        env = {
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin",
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": f"pg:{i - 1}",
            "OCF_RESOURCE_TYPE": "pgreplica",
            "OCF_RESOURCE_PROVIDER": "hacluster",
            "HA_NODE": node.name,
            "HA_RSCTMP": str(node.rsctmp),
            "HA_SBIN_DIR": str(SBIN),
            "CRM_MASTER_LOG": str(self.calls),
        }
        env |= {f"OCF_RESKEY_{k}": v for k, v in params.items()}
        env |= {f"OCF_RESKEY_CRM_meta_{k}": v for k, v in meta.items()}
        env |= node.extra_env
        env |= extra
        return env

    def act(self, i: int, action: str, *, timeout_s: float = 90, **extra: str) -> Answer:
        """Run ``action`` in node i's runner; monitors are recurring (10 s) unless ``interval`` says 0."""
        node = self.nodes[i]
        assert node.runner is not None, f"{node.name} has no runner (crashed and not rebooted)"
        assert node.runner.stdin is not None
        assert node.runner.stdout is not None
        if action == "monitor":
            extra.setdefault("OCF_RESKEY_CRM_meta_interval", "10000")
        node.runner.stdin.write(json.dumps({"action": action, "env": self.env(i, **extra)}) + "\n")
        node.runner.stdin.flush()
        ready, _, _ = select.select([node.runner.stdout], [], [], timeout_s)
        assert ready, f"{action} on {node.name} did not answer within {timeout_s} s"
        line = node.runner.stdout.readline()
        assert line, f"the runner of {node.name} died during {action}"
        raw = json.loads(line)
        return Answer(raw["rc"], raw["reason"], raw["log"])

    def notify(self, nodes: Iterable[int], kind: str, operation: str, **lists: Iterable[int]) -> None:
        """Pacemaker's notification to every instance in ``nodes``; ``lists`` name the nodes per
        variable (``promote=[2]``, ``active=[2, 3]``…).  Notify must always answer 0."""
        env = {"OCF_RESKEY_CRM_meta_notify_type": kind, "OCF_RESKEY_CRM_meta_notify_operation": operation}
        for key in ("start", "stop", "promote", "demote", "active", "inactive", "available", "all",
                    "promoted", "unpromoted", "master", "slave"):  # fmt: skip
            members = list(lists.get({"master": "promoted", "slave": "unpromoted"}.get(key, key), []))
            env[f"OCF_RESKEY_CRM_meta_notify_{key}_uname"] = " ".join(f"n{j}" for j in members) or " "
            env[f"OCF_RESKEY_CRM_meta_notify_{key}_resource"] = (
                " ".join(f"pg:{j - 1}" for j in members) or " "
            )
        for i in nodes:
            answer = self.act(i, "notify", **env)
            assert answer.rc == 0, f"notify {kind}-{operation} on n{i}: {answer}"

    def scores(self) -> dict[str, int | None]:
        """Each node's promotion score as its last crm_master call left it (None: deleted)."""
        last: dict[str, int | None] = {}
        if self.calls.exists():
            for line in self.calls.read_text().splitlines():
                node, _instance, *args = line.split()
                last[node] = int(args[args.index("-v") + 1]) if "-v" in args else None
        return last

    # --- SQL and processes ---------------------------------------------------------------

    def psql(self, i: int, sql: str, *, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        """psql as postgres on node i's Unix socket (reachable from the root namespace)."""
        node = self.nodes[i]
        argv = ["runuser", "-u", "postgres", "--", find_pg_binary("psql"), "-X", "-q", "-A", "-t", "-v",
                "ON_ERROR_STOP=1", "-h", str(node.socketdir), "-p", str(PORT), "-d", "postgres", "-c", sql]  # fmt: skip
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, cwd="/", check=False
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", "timed out")

    def sql(self, i: int, sql: str) -> str:
        done = self.psql(i, sql)
        assert done.returncode == 0, f"n{i}: {sql}: {done.stderr}"
        return done.stdout.strip()

    def in_recovery(self, i: int) -> bool | None:
        """pg_is_in_recovery() on node i, None when it does not answer."""
        done = self.psql(i, "select pg_is_in_recovery()", timeout_s=5)
        return {"t": True, "f": False}.get(done.stdout.strip()) if done.returncode == 0 else None

    def position(self, i: int) -> int:
        from hacluster.agents.pgscore import parse_lsn

        text = self.sql(
            i,
            "select greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0'))",
        )
        return parse_lsn(text)

    def crash(self, i: int) -> None:
        """SIGKILL everything in node i (its server and its runner) and wait until the postmaster is reaped."""
        node = self.nodes[i]
        pid_text = (
            (node.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            if (node.pgdata / "postmaster.pid").exists()
            else ""
        )
        self.lab.kill_all(i)
        node.runner = None
        if pid_text.isdigit():
            wait_for(
                lambda: not Path(f"/proc/{pid_text}").exists(),
                15,
                f"n{i}'s postmaster {pid_text} to be reaped",
            )

    def reboot(self, i: int) -> None:
        """Node i comes back: HA_RSCTMP (tmpfs in production) is empty and a new daemon runs."""
        node = self.nodes[i]
        shutil.rmtree(node.rsctmp)
        node.rsctmp.mkdir()
        self.start_runner(i)

    # --- a replication set built through the agent's own actions -------------------------

    def build(self) -> None:
        """n1 primary, n2 and n3 standbys cloned by start; n2 synchronous (FIRST 1 (n2, n3))."""
        ok(self.act(1, "monitor", OCF_RESKEY_CRM_meta_interval="0"), 7)
        ok(self.act(1, "start"), 0)
        ok(self.act(1, "monitor"), 0)
        self.notify([1], "pre", "promote", promote=[1], active=[1], all=DB_NODES)
        ok(self.act(1, "promote"), 0)
        self.notify([1], "post", "promote", promote=[1], active=[1], all=DB_NODES)
        ok(self.act(1, "monitor", OCF_RESKEY_CRM_meta_role="Promoted"), 8)
        self.sql(1, REPUSER_SQL)
        for i in (2, 3):
            ok(self.act(i, "monitor", OCF_RESKEY_CRM_meta_interval="0"), 7)
            ok(self.act(i, "start"), 0)
            self.notify(
                range(1, i + 1),
                "post",
                "start",
                start=[i],
                active=range(1, i + 1),
                promoted=[1],
                all=DB_NODES,
            )
        wait_for(
            lambda: self.sql(1, "select string_agg(application_name || ':' || sync_state, ' ' order by application_name) from pg_stat_replication where state = 'streaming'")
            == "n2:sync n3:potential",
            30,
            "n2 to stream synchronously and n3 as potential",
        )  # fmt: skip
        ok(self.act(1, "monitor", OCF_RESKEY_CRM_meta_role="Promoted"), 8)
        for i in (2, 3):
            ok(self.act(i, "monitor", OCF_RESKEY_CRM_meta_role="Unpromoted"), 0)


def ok(answer: Answer, rc: int) -> Answer:
    assert answer.rc == rc, f"expected rc {rc}, got {answer}"
    return answer


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)
