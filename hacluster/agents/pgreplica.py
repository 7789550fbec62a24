"""pgreplica: a PostgreSQL primary and its streaming standbys, run as a promotable clone.

Theory of operation.  Every instance starts as a *standby* (``standby.signal``): the
Unpromoted role.  ``start`` looks for the current primary among its peers (``node_list``, the
nodes the cluster named in notifications, and ``primary_host``) and streams from it; with an
empty data directory it first clones the primary (``pg_basebackup``), and with data that
diverged from the primary's timeline (an old primary) it first rewinds it (``pg_rewind``).
When no primary answers it starts anyway, following no one, ready to be promoted.
``promote`` is ``pg_promote()``, refused while another instance answers as primary or a
reachable standby holds more WAL; it returns once the server accepts writes.  ``demote``
stops the primary and rejoins it as a standby of whoever is primary now.

Monitor answers 8 on a healthy primary, 9 on a primary that crashed or stopped answering, 0
on a standby, 7 when stopped, and 1 (with the reason) when a standby has not streamed for
``stream_grace`` seconds although its primary answers.  Each instance publishes its promotion
score with ``crm_master`` (from ``$HA_SBIN_DIR``, default /usr/sbin) whenever it changes and
on every probe; the score rules live in ``pgscore``.

Settings the agent owns go into ``postgresql.auto.conf`` (``primary_conninfo``,
``synchronous_standby_names``, ``wal_log_hints``, ``hot_standby``, ``listen_addresses``), not
on the command line, so that pg_rewind's own recovery run sees them too.  A small state file
in ``HA_RSCTMP`` (tmpfs: gone after a reboot) remembers what this boot has seen: whether this
instance was promoted, which node it follows, its last sync state, when streaming stopped,
and the last score published.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Final

from hacluster.agents.ocf import RC, Action, Agent, AgentError, Context, Parameter
from hacluster.agents.pgreplication import (
    LocalStatus,
    Settings,
    ask,
    clone_from,
    configure_standby,
    local_status,
    needs_rewind,
    rewind,
    survey,
    upstream_conninfo,
    write_auto_conf,
)
from hacluster.agents.pgscore import (
    SCORE_PRIMARY,
    SCORE_REFUSED,
    CloneEnv,
    Peer,
    ServerStatus,
    conninfo_host_port,
    find_primary,
    format_lsn,
    is_node_name,
    merge_peers,
    parse_node_list,
    promotion_blocker,
    promotion_score,
)
from hacluster.agents.pgsql import (
    SERVER_PARAMETERS,
    PgConfig,
    binary_defaults,
    has_cluster,
    last_log_error,
    postmaster_pid,
    read_config,
    run_sql,
    start_server,
    stop_server,
    wait_for_reaped,
)

logger = logging.getLogger(__name__)

DEFAULT_SBIN_DIR: Final = "/usr/sbin"
CRM_MASTER_TIMEOUT_S: Final = 10
PROMOTE_MARGIN_S: Final = 5
WAIT_POLL_S: Final = 0.2

PARAMETERS: Final = (
    # pg_rewind and the peers' questions connect to pgdb, where the replication role's grants are.
    *(
        dataclasses.replace(
            p, default="postgres", longdesc="Database the monitor, the peers' questions and pg_rewind use."
        )
        if p.name == "pgdb"
        else p
        for p in SERVER_PARAMETERS
    ),
    Parameter(
        "repuser",
        "Replication user",
        "Role the standbys stream, clone (pg_basebackup) and rewind (pg_rewind) with, and that "
        "instances use to ask each other where they are. Needs REPLICATION and LOGIN, "
        "membership of pg_read_all_stats, and the pg_rewind function grants (see docs).",
        default="postgres",
    ),
    Parameter(
        "node_list",
        "Peers",
        "Every instance's node, space-separated, as NAME or NAME=HOST[:PORT] (HOST defaults to "
        "NAME, PORT to pgport). Used to find the primary and to compare standbys before a promotion.",
    ),
    Parameter(
        "primary_host",
        "Primary address",
        "An address that always reaches the current primary, normally a VIP colocated with the "
        "Promoted role; standbys then stream from it. Empty: they stream from the primary's node_list address.",
    ),
    Parameter(
        "listen_addresses",
        "Listen addresses",
        "listen_addresses for the server, overriding postgresql.conf's: the peers must reach it.",
        default="*",
    ),
    Parameter(
        "synchronous_standby_names",
        "Synchronous standbys",
        "synchronous_standby_names the primary gets on promotion, e.g. 'FIRST 1 (n2, n3)' or "
        "'ANY 1 (*)'; standby names are node names. Empty: postgresql.conf decides (async by default).",
    ),
    Parameter(
        "stream_grace",
        "Streaming grace (s)",
        "Seconds a standby may go without streaming while its primary answers before monitor fails.",
        "integer",
        "30",
    ),
    Parameter(
        "lag_tolerance",
        "Lag tolerance (bytes)",
        "How far a streaming standby may trail the primary and still count as up to date for its score.",
        "integer",
        "16777216",
    ),
    Parameter(
        "connect_timeout",
        "Peer connect timeout (s)",
        "Seconds to wait for a peer's server when asking it where it is.",
        "integer",
        "3",
    ),
)


@dataclass
class _State:
    """What this boot remembers about the instance (see the module docstring)."""

    promoted: bool = False
    primary: str | None = None
    sync_state: str = ""
    unstreamed_since: float | None = None
    published: int | str | None = None  # last score sent, "deleted", or None when unknown
    peers: list[str] = field(default_factory=list)


class PgReplicaAgent(Agent):
    name = "pgreplica"
    version = "1.0"
    shortdesc = "Manages a replicated PostgreSQL (primary and streaming standbys) as a promotable clone"
    longdesc = (
        "Runs one PostgreSQL instance of a streaming-replication set. Instances start as standbys "
        "of the current primary (cloned with pg_basebackup when the data directory is empty, "
        "rewound with pg_rewind when an old primary diverged); promote runs pg_promote and is "
        "refused while a more advanced standby or another primary answers; demote rejoins the "
        "old primary as a standby. Promotion scores (crm_master) favour the synchronous standby "
        "that holds the most WAL. Configure as a promotable clone with notify=true and promoted-max=1."
    )
    parameters = PARAMETERS
    actions = (
        Action("start", 120_000),
        Action("stop", 120_000),
        Action("promote", 120_000),
        Action("demote", 120_000),
        Action("notify", 90_000),
        Action("monitor", 30_000, interval_ms=10_000, depth=0, role="Promoted"),
        Action("monitor", 30_000, interval_ms=11_000, depth=0, role="Unpromoted"),
        Action("meta-data", 5_000),
        Action("validate-all", 5_000),
    )

    def defaults(self, env: Mapping[str, str], instance: str) -> dict[str, str]:
        return binary_defaults()

    # ------------------------------------------------------------------ configuration

    def _checked(self, ctx: Context, *, strict: bool = True) -> tuple[PgConfig, Settings]:
        """Server config and replication settings; AgentError 2/4/5/6 as for validate-all."""
        cfg = read_config(ctx, require_data=False)
        me = ctx.env.get("HA_NODE") or ctx.env.get("OCF_RESKEY_CRM_meta_on_node") or os.uname().nodename
        if not is_node_name(me):
            raise AgentError(
                RC.ERR_CONFIGURED, f"node name {me!r} cannot be an application_name; use letters, digits, _.-"
            )
        try:
            peers = parse_node_list(ctx.param("node_list"), cfg.port)
        except ValueError as exc:
            raise AgentError(RC.ERR_CONFIGURED, str(exc)) from None
        primary_host = None
        if ctx.param("primary_host").strip():
            host = ctx.param("primary_host").strip()
            primary_host = Peer("primary_host", host, cfg.port)
        settings = Settings(
            me=me,
            repuser=ctx.param("repuser").strip() or cfg.pgdba,
            peers=tuple(p for p in peers if p.name != me),
            primary_host=primary_host,
            listen_addresses=ctx.param("listen_addresses").strip() or "*",
            synchronous_standby_names=ctx.param("synchronous_standby_names").strip(),
            stream_grace_s=ctx.integer("stream_grace", minimum=0),
            lag_tolerance=ctx.integer("lag_tolerance", minimum=0),
            connect_timeout_s=ctx.integer("connect_timeout", minimum=1, maximum=60),
        )
        if strict:
            self._check_clone(ctx, settings)
            self._check_data_dir(cfg)
            for tool in ("pg_rewind", "pg_basebackup", "pg_controldata"):
                if not os.access(cfg.tool(tool), os.X_OK):
                    raise AgentError(RC.ERR_INSTALLED, f"{cfg.tool(tool)} is not an executable on this node")
        return cfg, settings

    @staticmethod
    def _check_clone(ctx: Context, settings: Settings) -> None:
        clone = _clone_env(ctx)
        if not clone.is_clone:
            return  # run by hand or by ocf-tester: one instance, nothing to check
        if clone.promoted_max is not None and clone.promoted_max > 1:
            raise AgentError(
                RC.ERR_CONFIGURED,
                f"promoted-max={clone.promoted_max}: a replication set has one primary; set promoted-max=1",
            )
        if clone.clone_node_max is not None and clone.clone_node_max > 1:
            raise AgentError(
                RC.ERR_CONFIGURED,
                f"clone-node-max={clone.clone_node_max}: two instances on one node would share pgdata; set 1",
            )
        if not clone.notify and settings.primary_host is None:
            raise AgentError(
                RC.ERR_CONFIGURED,
                "standbys learn the new primary from notifications: set meta notify=true on the clone "
                "(or primary_host to an address that follows the primary)",
            )

    @staticmethod
    def _check_data_dir(cfg: PgConfig) -> None:
        if has_cluster(cfg.pgdata) or not os.path.exists(cfg.pgdata):
            return
        if not os.path.isdir(cfg.pgdata) or os.listdir(cfg.pgdata):
            raise AgentError(
                RC.ERR_INSTALLED,
                f"{cfg.pgdata} is neither a PostgreSQL data directory nor empty; the agent only clones "
                "into an empty one: move its contents away or fix pgdata",
            )

    # ------------------------------------------------------------------ state file

    @staticmethod
    def _state_path(ctx: Context, cfg: PgConfig) -> str:
        key = re.sub(r"[^A-Za-z0-9]+", "-", cfg.pgdata).strip("-") or "root"
        return os.path.join(ctx.state_dir, f"pgreplica-{key}.json")

    def _load(self, ctx: Context, cfg: PgConfig) -> _State:
        try:
            with open(self._state_path(ctx, cfg)) as f:
                raw = json.load(f)
            return _State(**{k: v for k, v in raw.items() if k in _State.__dataclass_fields__})
        except FileNotFoundError:
            return _State()
        except (OSError, ValueError, TypeError) as exc:
            logger.warning(
                "pgreplica state unreadable, starting afresh path=%s error=%s",
                self._state_path(ctx, cfg),
                exc,
            )
            return _State()

    def _save(self, ctx: Context, cfg: PgConfig, state: _State) -> None:
        path = self._state_path(ctx, cfg)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(asdict(state), f)
        os.replace(path + ".tmp", path)

    # ------------------------------------------------------------------ asking servers

    def _peers(self, ctx: Context, cfg: PgConfig, settings: Settings, state: _State) -> tuple[Peer, ...]:
        """node_list, then every node the cluster has named in notifications (addressed by name)."""
        clone = _clone_env(ctx)
        named = (
            *state.peers,
            *clone.nodes("all", "active", "available", "promoted", "unpromoted", "start", "promote"),
        )
        return merge_peers(settings.peers, named, cfg.port, settings.me)

    def _locate_primary(
        self, ctx: Context, cfg: PgConfig, settings: Settings, state: _State
    ) -> tuple[Peer | None, ServerStatus | None, dict[Peer, ServerStatus]]:
        """The primary (peer, status) among the peers or at ``primary_host``, and every peer's status."""
        statuses = survey(ctx, cfg, settings, self._peers(ctx, cfg, settings, state))
        try:
            primary = find_primary(statuses)
        except ValueError as exc:
            raise AgentError(RC.ERR_GENERIC, str(exc)) from None
        if primary is None and settings.primary_host is not None:
            status = ask(ctx, cfg, settings, settings.primary_host)
            if status is not None and status.is_primary:
                statuses[settings.primary_host] = status
                primary = settings.primary_host
        return primary, statuses.get(primary) if primary else None, statuses

    # ------------------------------------------------------------------ scores

    def _publish(self, ctx: Context, state: _State, score: int | None) -> None:
        """``crm_master -Q -l reboot -v SCORE`` (``-D`` for None) when it changed, or on a probe."""
        wanted: int | str = "deleted" if score is None else score
        if state.published == wanted and not ctx.is_probe:
            return
        tool = os.path.join(ctx.env.get("HA_SBIN_DIR") or DEFAULT_SBIN_DIR, "crm_master")
        argv = [tool, "-Q", "-l", "reboot", *(["-D"] if score is None else ["-v", str(score)])]
        try:
            done = subprocess.run(
                argv,
                env=dict(ctx.env),
                capture_output=True,
                text=True,
                timeout=CRM_MASTER_TIMEOUT_S,
                cwd="/",
                check=False,
            )
            problem = None if done.returncode == 0 else f"rc={done.returncode}: {done.stderr.strip()}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
        if problem is None:
            logger.info("promotion score set instance=%s score=%s", ctx.instance, wanted)
            state.published = wanted
        else:
            logger.warning(
                "promotion score not set instance=%s score=%s tool=%s error=%s",
                ctx.instance,
                wanted,
                tool,
                problem,
            )
            state.published = None  # unknown: try again next time

    # ------------------------------------------------------------------ joining a primary

    def _join(self, ctx: Context, cfg: PgConfig, settings: Settings, state: _State) -> LocalStatus:
        """Start as a standby of the current primary (clone or rewind first as needed), or of no one."""
        wait_for_reaped(cfg)  # pg_rewind's own recovery run needs the old postmaster gone too
        primary, status, _ = self._locate_primary(ctx, cfg, settings, state)
        if not has_cluster(cfg.pgdata):
            if primary is None:
                raise AgentError(
                    RC.ERR_GENERIC,
                    f"{cfg.pgdata} holds no cluster and no primary answers "
                    f"(asked: {', '.join(map(str, self._peers(ctx, cfg, settings, state))) or 'nobody: set node_list'}); "
                    "start the primary first, or initdb here",
                )
            clone_from(ctx, cfg, settings, primary)
        elif primary is not None and status is not None:
            why = needs_rewind(ctx, cfg, status)
            if why is not None:
                rewind(ctx, cfg, settings, primary, why)
        upstream = settings.primary_host or primary
        configure_standby(ctx, cfg, settings, upstream)
        start_server(ctx, cfg)
        state.promoted = False
        state.primary = primary.name if primary is not None else None
        state.unstreamed_since = None
        logger.info(
            "standby started pgdata=%s upstream=%s", cfg.pgdata, upstream or "none (ready to be promoted)"
        )
        return local_status(ctx, cfg)

    # ------------------------------------------------------------------ actions

    def validate_all(self, ctx: Context) -> int:
        self._checked(ctx)
        return RC.SUCCESS

    def start(self, ctx: Context) -> int:
        cfg, settings = self._checked(ctx)
        state = self._load(ctx, cfg)
        try:
            if postmaster_pid(cfg) is not None:
                local = local_status(ctx, cfg)
                if not local.in_recovery:
                    raise AgentError(
                        RC.ERR_GENERIC,
                        f"PostgreSQL in {cfg.pgdata} is running as a primary; start leaves an instance "
                        "unpromoted, so demote it instead",
                    )
            else:
                local = self._join(ctx, cfg, settings, state)
            self._publish(ctx, state, self._standby_score(ctx, cfg, settings, state, local))
        finally:
            self._save(ctx, cfg, state)
        return RC.SUCCESS

    def _here(self, ctx: Context) -> tuple[PgConfig, Settings] | None:
        """The configuration, or None when it cannot exist on this node (then stop is done, monitor 7)."""
        try:
            return self._checked(ctx, strict=False)
        except AgentError as exc:
            logger.info(
                "pgreplica cannot run here action=%s instance=%s reason=%s",
                ctx.action,
                ctx.instance,
                exc.reason,
            )
            return None

    def stop(self, ctx: Context) -> int:
        here = self._here(ctx)
        if here is None:
            return RC.SUCCESS
        cfg, _ = here
        state = self._load(ctx, cfg)
        stop_server(ctx, cfg)
        state.promoted = False
        state.unstreamed_since = None
        self._publish(ctx, state, None)
        self._save(ctx, cfg, state)
        return RC.SUCCESS

    def monitor(self, ctx: Context) -> int:
        here = self._here(ctx)
        if here is None:
            return RC.NOT_RUNNING
        cfg, settings = here
        state = self._load(ctx, cfg)
        try:
            return self._monitor(ctx, cfg, settings, state)
        finally:
            self._save(ctx, cfg, state)

    def _monitor(self, ctx: Context, cfg: PgConfig, settings: Settings, state: _State) -> int:
        was_promoted = state.promoted or _clone_env(ctx).role == "Promoted"
        if postmaster_pid(cfg) is None:
            if was_promoted:
                raise AgentError(
                    RC.FAILED_PROMOTED, f"the primary in {cfg.pgdata} is not running (crashed or killed)"
                )
            return RC.NOT_RUNNING
        try:
            local = local_status(ctx, cfg)
        except AgentError as exc:
            raise AgentError(RC.FAILED_PROMOTED if was_promoted else RC.ERR_GENERIC, exc.reason) from None
        if not local.in_recovery:
            state.promoted = True
            if settings.synchronous_standby_names and local.sync_standbys == 0:
                logger.warning(
                    "primary has no synchronous standby connected: commits wait pgdata=%s synchronous_standby_names=%s",
                    cfg.pgdata,
                    settings.synchronous_standby_names,
                )
            self._publish(ctx, state, SCORE_PRIMARY)
            return RC.RUNNING_PROMOTED
        state.promoted = False
        self._publish(ctx, state, self._standby_score(ctx, cfg, settings, state, local, check=True))
        return RC.SUCCESS

    def _standby_score(
        self,
        ctx: Context,
        cfg: PgConfig,
        settings: Settings,
        state: _State,
        local: LocalStatus,
        *,
        check: bool = False,
    ) -> int:
        """This standby's promotion score; with ``check``, AgentError 1 when it should stream and does not."""
        streaming = local.receiver == "streaming"
        upstream = self._current_upstream(settings, state, local)
        if streaming and upstream is not None:
            status = ask(ctx, cfg, settings, upstream)
            primary = status if status is not None and status.is_primary else None
            if primary is not None:
                state.sync_state = primary.sync_state_of_asker
            state.unstreamed_since = None
            return promotion_score(
                me=local.server(), streaming=True, primary=primary, standbys=(), sync_state=state.sync_state,
                lag_tolerance=settings.lag_tolerance,
            )  # fmt: skip
        found, status, statuses = self._locate_primary(ctx, cfg, settings, state)
        standbys = [s for p, s in statuses.items() if not s.is_primary and p != settings.primary_host]
        if found is None or status is None:
            state.unstreamed_since = None  # nothing to stream from: not this standby's failure
        else:
            state.sync_state = status.sync_state_of_asker
            self._follow(ctx, cfg, settings, state, local, found)
            if check:
                self._check_streaming(cfg, settings, state, local, found)
        return promotion_score(
            me=local.server(), streaming=streaming, primary=status, standbys=standbys, sync_state=state.sync_state,
            lag_tolerance=settings.lag_tolerance,
        )  # fmt: skip

    def _current_upstream(self, settings: Settings, state: _State, local: LocalStatus) -> Peer | None:
        if settings.primary_host is not None:
            return settings.primary_host
        by_name = {p.name: p for p in settings.peers}
        if state.primary in by_name:
            return by_name[state.primary]
        address = conninfo_host_port(local.primary_conninfo)
        if address is None:
            return None
        host, port = address
        return next(
            (p for p in settings.peers if p.host == host and port in (None, p.port)),
            Peer(host, host, port or 5432),
        )

    def _follow(
        self,
        ctx: Context,
        cfg: PgConfig,
        settings: Settings,
        state: _State,
        local: LocalStatus,
        primary: Peer,
    ) -> None:
        """Point primary_conninfo at ``primary`` when it points elsewhere (a missed notification)."""
        upstream = settings.primary_host or primary
        wanted = upstream_conninfo(settings, upstream)
        if local.primary_conninfo != wanted:
            logger.info("standby now follows primary=%s pgdata=%s", upstream, cfg.pgdata)
            write_auto_conf(ctx, cfg, {"primary_conninfo": wanted}, reload=True)
        if primary != settings.primary_host:
            state.primary = primary.name

    def _check_streaming(
        self, cfg: PgConfig, settings: Settings, state: _State, local: LocalStatus, primary: Peer
    ) -> None:
        now = time.monotonic()
        if state.unstreamed_since is None:
            state.unstreamed_since = now
            logger.warning(
                "standby is not streaming from a live primary primary=%s receiver=%s",
                primary,
                local.receiver or "none",
            )
        silent_s = now - state.unstreamed_since
        if silent_s >= settings.stream_grace_s:
            raise AgentError(
                RC.ERR_GENERIC,
                f"standby {settings.me} is not replicating: primary {primary} answers, but this standby has not "
                f"streamed from it for {silent_s:.0f} s (WAL receiver: {local.receiver or 'not running'}; "
                f"WAL {format_lsn(local.position)} here){last_log_error(cfg)}",
            )

    def promote(self, ctx: Context) -> int:
        cfg, settings = self._checked(ctx)
        state = self._load(ctx, cfg)
        try:
            if postmaster_pid(cfg) is None:
                raise AgentError(
                    RC.ERR_GENERIC, f"cannot promote {settings.me}: PostgreSQL is not running; start it first"
                )
            local = local_status(ctx, cfg)
            if local.in_recovery:
                self._promote(ctx, cfg, settings, state, local)
            state.promoted = True
            state.primary = None
            state.unstreamed_since = None
            self._publish(ctx, state, SCORE_PRIMARY)
        finally:
            self._save(ctx, cfg, state)
        return RC.SUCCESS

    def _promote(
        self, ctx: Context, cfg: PgConfig, settings: Settings, state: _State, local: LocalStatus
    ) -> None:
        # primary_host too: a VIP still answering from an old primary must block the promotion.
        targets = [
            *self._peers(ctx, cfg, settings, state),
            *([settings.primary_host] if settings.primary_host else []),
        ]
        statuses = survey(ctx, cfg, settings, targets)
        blocker = promotion_blocker(settings.me, local.position, statuses)
        silent = [str(peer) for peer in targets if peer not in statuses]
        if blocker is None and silent:
            logger.warning(
                "promoting without hearing from every peer pgdata=%s wal=%s silent=%s",
                cfg.pgdata,
                format_lsn(local.position),
                ", ".join(silent),
            )
        if blocker is not None:
            self._publish(ctx, state, SCORE_REFUSED)
            raise AgentError(RC.ERR_GENERIC, blocker)
        # Before pg_promote, so that no commit is acknowledged without the synchronous standby.
        write_auto_conf(
            ctx, cfg, {"synchronous_standby_names": settings.synchronous_standby_names or None}, reload=True
        )
        wait_s = max(int(ctx.remaining_ms() / 1000) - PROMOTE_MARGIN_S, 1)
        done = run_sql(ctx, cfg, f"select pg_promote(true, {wait_s})", timeout_s=wait_s + 5)
        if done.returncode != 0 or done.stdout.strip() != "t":
            raise AgentError(
                RC.ERR_GENERIC,
                f"pg_promote did not finish within {wait_s} s: {(done.stderr or done.stdout).strip()}",
            )
        while True:
            now = local_status(ctx, cfg)
            if not now.in_recovery and not now.read_only:
                break
            if ctx.remaining_ms() < 2000:
                raise AgentError(
                    RC.ERR_GENERIC, "promoted, but the server did not accept writes before the timeout"
                )
            time.sleep(WAIT_POLL_S)
        # The new timeline reaches pg_control only at a checkpoint; pg_rewind of the old primary reads it there.
        done = run_sql(ctx, cfg, "checkpoint", timeout_s=max(ctx.remaining_ms() / 1000 - 1, 1))
        if done.returncode != 0:
            logger.warning(
                "checkpoint after promotion failed pgdata=%s error=%s", cfg.pgdata, done.stderr.strip()
            )
        logger.info("promoted to primary pgdata=%s wal=%s", cfg.pgdata, format_lsn(local.position))

    def demote(self, ctx: Context) -> int:
        cfg, settings = self._checked(ctx)
        state = self._load(ctx, cfg)
        try:
            if postmaster_pid(cfg) is None:
                logger.info("demote: not running, so not a primary either pgdata=%s", cfg.pgdata)
                state.promoted = False
                return RC.SUCCESS
            try:
                local: LocalStatus | None = local_status(ctx, cfg)
            except AgentError as exc:
                logger.warning(
                    "demote: the server does not answer; stopping it pgdata=%s reason=%s",
                    cfg.pgdata,
                    exc.reason,
                )
                local = None
            if local is None or not local.in_recovery:
                stop_server(ctx, cfg)
                state.promoted = False
                self._publish(ctx, state, None)
                local = self._join(ctx, cfg, settings, state)
            self._publish(ctx, state, self._standby_score(ctx, cfg, settings, state, local))
        finally:
            self._save(ctx, cfg, state)
        return RC.SUCCESS

    def notify(self, ctx: Context) -> int:
        """Learn who is primary now; never fails (a manager treats a failed notify as a bug)."""
        try:
            self._notify(ctx)
        except AgentError as exc:
            logger.warning("notify could not act instance=%s reason=%s", ctx.instance, exc.reason)
        return RC.SUCCESS

    def _notify(self, ctx: Context) -> None:
        cfg, settings = self._checked(ctx, strict=False)
        clone = _clone_env(ctx)
        state = self._load(ctx, cfg)
        state.peers = sorted(
            {*state.peers, *clone.nodes("all", "active", "available", "start", "promote")} - {settings.me}
        )
        event = (clone.notify_type, clone.notify_operation)
        logger.info(
            "notified instance=%s type=%s operation=%s nodes=%s",
            ctx.instance,
            *event,
            dict(clone.notify_lists),
        )
        if event == ("post", "promote") and clone.nodes("promote") and postmaster_pid(cfg) is not None:
            new_primary = clone.nodes("promote")[0]
            if new_primary != settings.me:
                local = local_status(ctx, cfg)
                if local.in_recovery:
                    peer = next(
                        (p for p in self._peers(ctx, cfg, settings, state) if p.name == new_primary), None
                    )
                    if peer is not None:
                        self._follow(ctx, cfg, settings, state, local, peer)
                        state.primary = new_primary
        elif event in (("post", "demote"), ("post", "stop")) and state.primary in clone.nodes(
            "demote", "stop"
        ):
            state.primary = None
        elif event == ("pre", "promote") and postmaster_pid(cfg) is not None:
            local = local_status(ctx, cfg)
            if local.in_recovery:
                self._publish(ctx, state, self._standby_score(ctx, cfg, settings, state, local))
        self._save(ctx, cfg, state)


def _clone_env(ctx: Context) -> CloneEnv:
    try:
        return CloneEnv.from_env(ctx.env)
    except ValueError as exc:
        raise AgentError(RC.ERR_CONFIGURED, str(exc)) from None
