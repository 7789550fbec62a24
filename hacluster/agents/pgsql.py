"""pgsql: a single PostgreSQL instance (no replication), started and stopped with pg_ctl.

Theory of operation: "running" means a postmaster.pid whose pid is a live postgres process;
"healthy" means ``monitor_sql`` answers through psql.  Start returns only once the server
answers (or the op timeout nearly runs out), as the manager expects.  Stop asks for a fast
shutdown, escalates to an immediate one after ``stop_escalate`` seconds (clamped to the op
timeout minus 10 s), and waits until the postmaster is gone.

Every command runs as ``pgdba`` (via ``runuser`` when we are root).  A configuration that
cannot work on this node (no PostgreSQL installed, no data directory) makes stop answer 0 and
monitor 7, so probes on nodes without PostgreSQL stay quiet; start and validate-all report it.

The server-handling pieces (``read_config``, ``run_as_dba``, ``run_sql``, ``postmaster_pid``,
``start_server``, ``stop_server``) are module functions because the replicated agent
(``pgreplica``) drives the same servers the same way; it imports them rather than repeating them.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import subprocess
import time
from collections.abc import Mapping
from typing import Final, NamedTuple

from hacluster.agents.ocf import RC, Action, Agent, AgentError, Context, Parameter

logger = logging.getLogger(__name__)

BASE_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_MARGIN_S: Final = 10
"""Stop escalation leaves this much of the op timeout for the immediate shutdown."""
POLL_S: Final = 0.5


def find_pg_binary(name: str) -> str:
    """The newest ``/usr/lib/postgresql/<version>/bin/<name>`` (Debian layout), else ""."""

    def version(path: str) -> tuple[int, ...]:
        parts = path.split("/")[-3]
        return tuple(int(x) for x in re.findall(r"\d+", parts)) or (0,)

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if found:
        return found[-1]
    return f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else ""


class PgConfig(NamedTuple):
    """The checked server parameters both PostgreSQL agents share."""

    pgctl: str
    psql: str
    pgdata: str
    pgdba: str
    port: int
    host: str
    socketdir: str
    pgdb: str
    logfile: str
    start_opt: str
    stop_escalate_s: int
    monitor_sql: str

    def tool(self, name: str) -> str:
        """Another PostgreSQL program (pg_rewind, pg_controldata…) from pg_ctl's directory."""
        return os.path.join(os.path.dirname(self.pgctl), name)


SERVER_PARAMETERS: Final = (
    Parameter("pgctl", "pg_ctl path", "Path to pg_ctl. Empty: the newest /usr/lib/postgresql/*/bin/pg_ctl."),
    Parameter("psql", "psql path", "Path to psql. Empty: the newest /usr/lib/postgresql/*/bin/psql."),
    Parameter(
        "pgdata", "Data directory", "The cluster's data directory (PGDATA).", required=True, unique=True
    ),
    Parameter(
        "pgdba",
        "Database owner",
        "The system user that owns the data directory and runs the server.",
        default="postgres",
    ),
    Parameter(
        "pgport",
        "Port",
        "The TCP port (and Unix socket suffix) the server listens on.",
        "integer",
        "5432",
    ),
    Parameter("pghost", "Host for psql", "Host or socket directory psql connects to; empty: socketdir."),
    Parameter(
        "socketdir", "Socket directory", "Directory for the server's Unix socket (-k).", default="/tmp"
    ),
    Parameter("pgdb", "Monitor database", "Database monitor_sql runs in.", default="template1"),
    Parameter(
        "logfile",
        "Log file",
        "Server log file (pg_ctl -l); created and owned by pgdba.",
        default="/dev/null",
    ),
    Parameter("start_opt", "Extra server options", "Extra options for postgres, passed with pg_ctl -o."),
    Parameter(
        "stop_escalate",
        "Stop escalation (s)",
        "Seconds to wait for a fast shutdown before an immediate one; at most the stop timeout minus 10 s.",
        "integer",
        "90",
    ),
    Parameter(
        "monitor_sql",
        "Monitor SQL",
        "SQL that must succeed for the server to count as healthy.",
        default="select now();",
    ),
)
"""Parameters of every agent that runs a PostgreSQL server through ``start_server``/``stop_server``."""


def binary_defaults() -> dict[str, str]:
    """The defaults that depend on what is installed: pg_ctl and psql of the newest version."""
    return {"pgctl": find_pg_binary("pg_ctl"), "psql": find_pg_binary("psql")}


def read_config(ctx: Context, *, require_data: bool = True) -> PgConfig:
    """Checked parameters; AgentError 6 (bad anywhere), 5 (missing here) or 4 (privileges).

    ``require_data=False`` accepts a data directory that does not hold a cluster yet (the
    replicated agent fills it from the primary); the caller decides what that means.
    """
    pgdata = ctx.param("pgdata").strip()
    if not pgdata or not os.path.isabs(pgdata):
        raise AgentError(RC.ERR_CONFIGURED, f"pgdata={pgdata!r} must be set to an absolute path")
    port = ctx.integer("pgport", minimum=1, maximum=65535)
    escalate = ctx.integer("stop_escalate", minimum=0)
    for name in ("pgctl", "psql"):
        path = ctx.param(name)
        if not path or not os.access(path, os.X_OK):
            raise AgentError(
                RC.ERR_INSTALLED, f"{name} {path or '(not found)'} is not an executable on this node"
            )
    pgdba = ctx.param("pgdba").strip()
    try:
        uid = pwd.getpwnam(pgdba).pw_uid
    except KeyError:
        raise AgentError(RC.ERR_INSTALLED, f"pgdba user {pgdba!r} does not exist on this node") from None
    if os.geteuid() not in (0, uid):
        raise AgentError(RC.ERR_PERM, f"must run as root or as {pgdba}")
    if require_data and not has_cluster(pgdata):
        raise AgentError(
            RC.ERR_INSTALLED, f"{pgdata} is not a PostgreSQL data directory on this node (no PG_VERSION)"
        )
    socketdir = ctx.param("socketdir").strip()
    if not os.path.isabs(socketdir):
        raise AgentError(RC.ERR_CONFIGURED, f"socketdir={socketdir!r} must be an absolute path")
    return PgConfig(
        pgctl=ctx.param("pgctl"),
        psql=ctx.param("psql"),
        pgdata=pgdata,
        pgdba=pgdba,
        port=port,
        host=ctx.param("pghost").strip() or socketdir,
        socketdir=socketdir,
        pgdb=ctx.param("pgdb"),
        logfile=ctx.param("logfile").strip() or "/dev/null",
        start_opt=ctx.param("start_opt").strip(),
        stop_escalate_s=escalate,
        monitor_sql=ctx.param("monitor_sql"),
    )


def has_cluster(pgdata: str) -> bool:
    """True when ``pgdata`` holds a PostgreSQL cluster (initdb or a base backup made it)."""
    return os.path.isfile(os.path.join(pgdata, "PG_VERSION"))


def run_as_dba(
    ctx: Context, cfg: PgConfig, argv: list[str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``pgdba`` (runuser when root); a timeout comes back as rc 124, not raised."""
    prefix = ["runuser", "-u", cfg.pgdba, "--"] if os.geteuid() == 0 else []
    env = {"PATH": ctx.env.get("PATH") or BASE_PATH, "LC_ALL": "C", "PGCONNECT_TIMEOUT": "5"}
    try:
        return subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=max(timeout_s, 1),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {exc.timeout:.0f}s")


def run_sql(
    ctx: Context,
    cfg: PgConfig,
    sql: str,
    *,
    conninfo: str | None = None,
    timeout_s: float = 30,
    separator: str = "|",
) -> subprocess.CompletedProcess[str]:
    """``sql`` through psql: on the local server as ``pgdba``, or on ``conninfo`` (a libpq string).

    Output is unaligned tuples only (``-A -t``), fields joined by ``separator``.
    """
    argv = [cfg.psql, "-X", "-q", "-A", "-t", "-F", separator, "-v", "ON_ERROR_STOP=1"]
    if conninfo is None:
        argv += ["-h", cfg.host, "-p", str(cfg.port), "-U", cfg.pgdba, "-d", cfg.pgdb]
    else:
        argv += ["-d", conninfo]
    argv += ["-c", sql]
    return run_as_dba(ctx, cfg, argv, min(timeout_s, max(ctx.remaining_ms() / 1000, 1)))


def postmaster_pid(cfg: PgConfig) -> int | None:
    """The pid in postmaster.pid if that process is a live postgres of *this* node, else None.

    On shared storage the pid file may have been written by another node, so the pid alone
    proves nothing: the process must be postgres, not a zombie (a crashed node's server
    waiting to be reaped), and in our mount namespace (nodes sharing one kernel, as in
    tests, see each other's processes).
    """
    try:
        with open(os.path.join(cfg.pgdata, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (OSError, ValueError):
        return None
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
    if not comm.startswith(("postgres", "postmaster")) or state in ("Z", "X"):
        return None
    try:
        if os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
            return None
    except OSError:
        pass  # cannot tell (no permission): trust the other checks
    return pid


ZOMBIE_WAIT_S: Final = 10


def wait_for_reaped(cfg: PgConfig) -> None:
    """Wait (at most ``ZOMBIE_WAIT_S``) while postmaster.pid names a zombie.

    A killed postmaster stays a zombie until init reaps it, and while its pid exists the new
    server refuses the socket lock file it left ("lock file … already exists").
    """
    try:
        with open(os.path.join(cfg.pgdata, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + ZOMBIE_WAIT_S
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return
        if stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] != "Z":
            return
        time.sleep(POLL_S / 5)
    logger.warning("the old postmaster is still a zombie pid=%d pgdata=%s", pid, cfg.pgdata)


def remove_stale_pidfile(cfg: PgConfig) -> None:
    """Remove postmaster.pid when no live postgres owns it (after waiting out a zombie owner)."""
    wait_for_reaped(cfg)
    path = os.path.join(cfg.pgdata, "postmaster.pid")
    if os.path.exists(path) and postmaster_pid(cfg) is None:
        logger.warning("removing stale postmaster.pid pgdata=%s", cfg.pgdata)
        os.unlink(path)


def check_sql(ctx: Context, cfg: PgConfig) -> subprocess.CompletedProcess[str]:
    """``monitor_sql`` on the local server."""
    return run_sql(ctx, cfg, cfg.monitor_sql)


def start_server(ctx: Context, cfg: PgConfig, options: str = "") -> None:
    """Start the server unless it runs, then wait until ``monitor_sql`` answers; AgentError 1 if not.

    ``options`` go to postgres after the port and socket directory (``pg_ctl -o``), before
    ``start_opt``, so the operator's own options win.
    """
    if postmaster_pid(cfg) is None:
        remove_stale_pidfile(cfg)
        _prepare_files(cfg)
        argv_options = " ".join(x for x in (f"-p {cfg.port} -k {cfg.socketdir}", options, cfg.start_opt) if x)
        argv = [cfg.pgctl, "-D", cfg.pgdata, "-l", cfg.logfile, "-o", argv_options, "-W", "start"]
        done = run_as_dba(ctx, cfg, argv, ctx.remaining_ms() / 1000)
        if done.returncode != 0:
            raise AgentError(
                RC.ERR_GENERIC, f"pg_ctl start failed rc={done.returncode}: {done.stderr.strip()}"
            )
    started = time.monotonic()
    last = ""
    while ctx.remaining_ms() > 1000:
        if postmaster_pid(cfg) is not None:
            done = check_sql(ctx, cfg)
            if done.returncode == 0:
                logger.info("postgres started pgdata=%s port=%d", cfg.pgdata, cfg.port)
                return
            last = done.stderr.strip()
        elif time.monotonic() - started > 10:
            raise AgentError(
                RC.ERR_GENERIC, f"postgres exited during start; see {cfg.logfile}{last_log_error(cfg)}"
            )
        time.sleep(POLL_S)
    raise AgentError(RC.ERR_GENERIC, f"PostgreSQL did not answer before the start timeout: {last}")


def last_log_error(cfg: PgConfig) -> str:
    """ "; server log: <its last FATAL/ERROR line>", or "" (no log file, or nothing went wrong)."""
    if cfg.logfile == "/dev/null":
        return ""
    try:
        with open(cfg.logfile, "rb") as f:
            f.seek(max(os.fstat(f.fileno()).st_size - 16384, 0))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "FATAL:" in line or "ERROR:" in line]
    return f"; server log: {errors[-1].strip()[:300]}" if errors else ""


def _prepare_files(cfg: PgConfig) -> None:
    user = pwd.getpwnam(cfg.pgdba)
    if cfg.logfile != "/dev/null" and not os.path.exists(cfg.logfile):
        with open(cfg.logfile, "a"):
            pass
        if os.geteuid() == 0:
            os.chown(cfg.logfile, user.pw_uid, user.pw_gid)
    if not os.path.isdir(cfg.socketdir):
        os.makedirs(cfg.socketdir, mode=0o2775)
        if os.geteuid() == 0:
            os.chown(cfg.socketdir, user.pw_uid, user.pw_gid)


def stop_server(ctx: Context, cfg: PgConfig) -> None:
    """Fast shutdown, then immediate after ``stop_escalate`` s; AgentError 1 if it still runs."""
    if postmaster_pid(cfg) is None:
        remove_stale_pidfile(cfg)
        return
    escalate_s = max(0, min(cfg.stop_escalate_s, ctx.timeout_ms // 1000 - STOP_MARGIN_S))
    for mode, wait_s in (("fast", escalate_s), ("immediate", None)):
        done = run_as_dba(ctx, cfg, [cfg.pgctl, "-D", cfg.pgdata, "-m", mode, "-W", "stop"], 30)
        if done.returncode != 0 and postmaster_pid(cfg) is not None:
            logger.warning(
                "pg_ctl stop failed mode=%s rc=%d error=%s", mode, done.returncode, done.stderr.strip()
            )
        deadline = time.monotonic() + (
            wait_s if wait_s is not None else max(ctx.remaining_ms() / 1000 - 0.5, 1)
        )
        while postmaster_pid(cfg) is not None and time.monotonic() < deadline:
            time.sleep(POLL_S / 5)
        if postmaster_pid(cfg) is None:
            remove_stale_pidfile(cfg)
            logger.info("postgres stopped pgdata=%s mode=%s", cfg.pgdata, mode)
            return
        logger.warning("postgres still running, escalating pgdata=%s after_mode=%s", cfg.pgdata, mode)
    raise AgentError(
        RC.ERR_GENERIC, f"PostgreSQL in {cfg.pgdata} is still running after an immediate shutdown"
    )


class PgsqlAgent(Agent):
    name = "pgsql"
    version = "1.0"
    shortdesc = "Manages a PostgreSQL instance"
    longdesc = (
        "Starts, stops and monitors one PostgreSQL server with pg_ctl, running every command "
        "as the database owner. Monitor checks the postmaster and runs monitor_sql with psql."
    )
    parameters = SERVER_PARAMETERS
    actions = (
        Action("start", 120_000),
        Action("stop", 120_000),
        Action("status", 60_000),
        Action("monitor", 30_000, interval_ms=30_000, depth=0),
        Action("meta-data", 5_000),
        Action("validate-all", 5_000),
    )

    def defaults(self, env: Mapping[str, str], instance: str) -> dict[str, str]:
        return binary_defaults()

    def validate_all(self, ctx: Context) -> int:
        read_config(ctx)
        return RC.SUCCESS

    def monitor(self, ctx: Context) -> int:
        try:
            cfg = read_config(ctx)
        except AgentError as exc:
            logger.debug("pgsql monitor: not runnable here instance=%s reason=%s", ctx.instance, exc.reason)
            return RC.NOT_RUNNING
        if postmaster_pid(cfg) is None:
            return RC.NOT_RUNNING
        done = check_sql(ctx, cfg)
        if done.returncode != 0:
            raise AgentError(
                RC.ERR_GENERIC, f"monitor_sql failed rc={done.returncode}: {done.stderr.strip()}"
            )
        return RC.SUCCESS

    def start(self, ctx: Context) -> int:
        start_server(ctx, read_config(ctx))
        return RC.SUCCESS

    def stop(self, ctx: Context) -> int:
        try:
            cfg = read_config(ctx)
        except AgentError as exc:
            logger.warning("pgsql stop treated as stopped instance=%s reason=%s", ctx.instance, exc.reason)
            return RC.SUCCESS
        stop_server(ctx, cfg)
        return RC.SUCCESS
