"""What the replicated PostgreSQL agent does to servers: ask them, configure them, clone and rewind.

Theory of operation: ``pgreplica`` (the agent) decides with the rules in ``pgscore`` and acts
through the functions here, which are the only ones that talk to a server of the set.
``local_status`` asks the local server as ``pgdba``; ``ask``/``survey`` ask peers as
``repuser`` over TCP, in parallel, and treat a peer that does not answer as absent, never as
an error.  ``configure_standby`` writes ``standby.signal`` and the agent's settings into
``postgresql.auto.conf`` before a start; ``needs_rewind``/``rewind`` and ``clone_from`` prepare
a data directory to follow a primary.  Every failure that matters to the manager is an
``AgentError`` carrying the reason; every program runs as ``pgdba`` (``run_as_dba``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import pwd
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from hacluster.agents.ocf import RC, AgentError, Context
from hacluster.agents.pgscore import Peer, ServerStatus, conninfo, edit_auto_conf, parse_lsn, sql_literal
from hacluster.agents.pgsql import PgConfig, run_as_dba, run_sql

logger = logging.getLogger(__name__)

FIELD_SEPARATOR: Final = "\x1f"
_POSITION_SQL: Final = (
    "case when pg_is_in_recovery() then greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'::pg_lsn), "
    "coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn)) else pg_current_wal_lsn() end"
)
"""An instance's position: see ``pgscore``'s docstring."""


class Settings(NamedTuple):
    """The replication parameters of one instance, checked."""

    me: str
    repuser: str
    peers: tuple[Peer, ...]
    primary_host: Peer | None
    listen_addresses: str
    synchronous_standby_names: str
    stream_grace_s: int
    lag_tolerance: int
    connect_timeout_s: int

    def conninfo(self, peer: Peer, **fields: str) -> str:
        """How this instance reaches ``peer``'s server as ``repuser``, plus ``fields``."""
        return conninfo(
            host=peer.host,
            port=peer.port,
            user=self.repuser,
            connect_timeout=self.connect_timeout_s,
            **fields,
        )


class LocalStatus(NamedTuple):
    """What the local server says about itself."""

    in_recovery: bool
    position: int
    receiver: str  # pg_stat_wal_receiver.status, "" when there is no WAL receiver
    read_only: bool
    sync_standbys: int
    primary_conninfo: str

    def server(self) -> ServerStatus:
        return ServerStatus(in_recovery=self.in_recovery, position=self.position)


def local_status(ctx: Context, cfg: PgConfig) -> LocalStatus:
    """The local server's view of itself; AgentError 1 when it does not answer."""
    sql = (
        f"select pg_is_in_recovery(), {_POSITION_SQL}, coalesce((select status from pg_stat_wal_receiver), ''), "
        "current_setting('transaction_read_only'), "
        "(select count(*) from pg_stat_replication where sync_state in ('sync', 'quorum')), "
        "current_setting('primary_conninfo')"
    )
    done = run_sql(ctx, cfg, sql, timeout_s=15, separator=FIELD_SEPARATOR)
    fields = done.stdout.strip("\n").split(FIELD_SEPARATOR)
    if done.returncode != 0 or len(fields) != 6:
        raise AgentError(
            RC.ERR_GENERIC, f"the local server does not answer: {(done.stderr or done.stdout).strip()}"
        )
    return LocalStatus(
        in_recovery=fields[0] == "t",
        position=parse_lsn(fields[1]),
        receiver=fields[2],
        read_only=fields[3] == "on",
        sync_standbys=int(fields[4]),
        primary_conninfo=fields[5],
    )


def ask(ctx: Context, cfg: PgConfig, settings: Settings, peer: Peer) -> ServerStatus | None:
    """A peer's role, position, timeline and our sync state as it sees us; None if it does not answer."""
    sql = (
        f"select pg_is_in_recovery(), {_POSITION_SQL}, case when pg_is_in_recovery() then '' else "
        "(('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int)::text end, "
        "coalesce((select sync_state from pg_stat_replication where application_name = "
        f"{sql_literal(settings.me)} order by sync_state limit 1), '')"
    )
    target = settings.conninfo(peer, dbname=cfg.pgdb, application_name=f"pgreplica-{settings.me}")
    done = run_sql(
        ctx,
        cfg,
        sql,
        conninfo=target,
        timeout_s=settings.connect_timeout_s + 5,
        separator=FIELD_SEPARATOR,
    )
    fields = done.stdout.strip("\n").split(FIELD_SEPARATOR)
    if done.returncode != 0 or len(fields) != 4:
        logger.debug("peer does not answer peer=%s error=%s", peer, done.stderr.strip())
        return None
    return ServerStatus(
        in_recovery=fields[0] == "t",
        position=parse_lsn(fields[1]),
        timeline=int(fields[2]) if fields[2].isdigit() else None,
        sync_state_of_asker=fields[3],
    )


def survey(
    ctx: Context, cfg: PgConfig, settings: Settings, peers: Iterable[Peer]
) -> dict[Peer, ServerStatus]:
    """Every answering peer's status, asked in parallel (a dead peer costs one connect timeout)."""
    targets = list(dict.fromkeys(peers))
    if not targets:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
        answers = list(pool.map(lambda peer: ask(ctx, cfg, settings, peer), targets))
    return {peer: status for peer, status in zip(targets, answers, strict=True) if status is not None}


def write_auto_conf(ctx: Context, cfg: PgConfig, settings: Mapping[str, str | None], *, reload: bool) -> None:
    path = os.path.join(cfg.pgdata, "postgresql.auto.conf")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n"
    write_owned(cfg, path, edit_auto_conf(text, settings))
    if reload:
        done = run_sql(ctx, cfg, "select pg_reload_conf()")
        if done.returncode != 0:
            raise AgentError(RC.ERR_GENERIC, f"pg_reload_conf failed: {done.stderr.strip()}")


def write_owned(cfg: PgConfig, path: str, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600, owned by pgdba."""
    user = pwd.getpwnam(cfg.pgdba)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o600)
    if os.geteuid() == 0:
        os.chown(path + ".tmp", user.pw_uid, user.pw_gid)
    os.replace(path + ".tmp", path)


def upstream_conninfo(settings: Settings, upstream: Peer | None) -> str:
    if upstream is None:
        return ""
    return settings.conninfo(upstream, application_name=settings.me)


def configure_standby(ctx: Context, cfg: PgConfig, settings: Settings, upstream: Peer | None) -> None:
    """standby.signal and our settings, before the server starts."""
    write_owned(cfg, os.path.join(cfg.pgdata, "standby.signal"), "")
    write_auto_conf(
        ctx,
        cfg,
        {
            "primary_conninfo": upstream_conninfo(settings, upstream),
            "synchronous_standby_names": None,
            "wal_log_hints": "on",
            "hot_standby": "on",
            "recovery_target_timeline": "latest",
            "listen_addresses": settings.listen_addresses,
        },
        reload=False,
    )


def controldata(ctx: Context, cfg: PgConfig) -> dict[str, str]:
    done = run_as_dba(ctx, cfg, [cfg.tool("pg_controldata"), "-D", cfg.pgdata], 30)
    if done.returncode != 0:
        raise AgentError(RC.ERR_GENERIC, f"pg_controldata failed rc={done.returncode}: {done.stderr.strip()}")
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in done.stdout.splitlines()) if v
    }


def needs_rewind(ctx: Context, cfg: PgConfig, primary: ServerStatus) -> str | None:
    """Why this data directory must go through pg_rewind before following ``primary``, or None."""
    control = controldata(ctx, cfg)
    state = control.get("Database cluster state", "")
    if state in ("shut down", "in production"):
        return f"it was a primary (cluster state {state!r})"
    keys = ("Latest checkpoint's TimeLineID", "Min recovery ending loc's timeline")
    local = max((int(control[k]) for k in keys if control.get(k, "").isdigit()), default=0)
    if primary.timeline is not None and local != primary.timeline:
        return f"its timeline {local} is not the primary's {primary.timeline}"
    return None


def rewind(ctx: Context, cfg: PgConfig, settings: Settings, source: Peer, why: str) -> None:
    # pg_rewind finishes crash recovery in single-user mode, which refuses standby mode.
    signal_file = os.path.join(cfg.pgdata, "standby.signal")
    if os.path.exists(signal_file):
        os.unlink(signal_file)
    server = settings.conninfo(source, dbname=cfg.pgdb)
    argv = [cfg.tool("pg_rewind"), "-D", cfg.pgdata, f"--source-server={server}"]
    done = run_as_dba(ctx, cfg, argv, max(ctx.remaining_ms() / 1000 - 15, 5))
    output = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("pg_rewind:")]
    if done.returncode != 0:
        # Whatever is left there was a primary's: it must never start as one by accident.
        write_owned(cfg, signal_file, "")
        raise AgentError(
            RC.ERR_GENERIC,
            f"pg_rewind from {source} failed rc={done.returncode}: {' / '.join(output[-2:]) or done.stderr.strip()}; "
            f"this data directory cannot rejoin as it is: move {cfg.pgdata} aside and start again to clone a fresh copy",
        )
    logger.info(
        "rewound before rejoining pgdata=%s source=%s why=%s result=%s",
        cfg.pgdata,
        source,
        why,
        " / ".join(output),
    )


def clone_from(ctx: Context, cfg: PgConfig, settings: Settings, source: Peer) -> None:
    user = pwd.getpwnam(cfg.pgdba)
    if not os.path.isdir(cfg.pgdata):
        os.makedirs(cfg.pgdata, mode=0o700)
    if os.geteuid() == 0:
        os.chown(cfg.pgdata, user.pw_uid, user.pw_gid)
    os.chmod(cfg.pgdata, 0o700)
    server = settings.conninfo(source, application_name=settings.me)
    argv = [cfg.tool("pg_basebackup"), "-D", cfg.pgdata, "-d", server, "-X", "stream", "-c", "fast", "-w"]
    done = run_as_dba(ctx, cfg, argv, max(ctx.remaining_ms() / 1000 - 15, 5))
    if done.returncode != 0:
        raise AgentError(
            RC.ERR_GENERIC,
            f"pg_basebackup from {source} failed rc={done.returncode}: {done.stderr.strip()}",
        )
    logger.info("cloned from the primary pgdata=%s source=%s", cfg.pgdata, source)
