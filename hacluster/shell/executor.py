"""Run resource agents on this node: one operation in, one ``OpResult`` out.

Theory of operation.  The daemon's driver asks for an operation (``OpRequest``); ``Executor.run``
finds the agent, builds its environment, runs it under the op's timeout and answers with an
``OpResult`` whose ``rc`` always has its OCF meaning, whatever the agent's class.  Problems with
the agent (missing, not executable, hung, crashed, garbage exit status) are *results*, never
exceptions: the core decides what a failure means.

Rules this file keeps:

- **One operation per resource at a time.**  A per-resource ``asyncio.Lock`` makes a second op
  on the same resource wait for the first; ops on different resources run in parallel (the OCF
  API requires agents to tolerate that).
- **Processes follow ``hacluster.shell.subprocesses``** (one policy for every child the daemon
  runs): each op gets its own process group, so a timeout kills everything the agent spawned
  (SIGTERM, a grace period of at most 1 s, then SIGKILL); processes an agent leaves behind after
  an op that ended by itself (a daemon it started) are never touched; agents never run
  real-time; output is drained as it arrives and only a 64 KiB tail is held (4 KiB reported).
- **An agent that cannot be started is a result**: an unusable file is OCF_ERR_INSTALLED, an
  environment that cannot be passed OCF_ERR_CONFIGURED, and no descriptor or process left
  (EMFILE, EAGAIN) OCF_ERR_GENERIC, a failure of this attempt that recovery may cure.
- **Class semantics are translated here**, so the rest of the daemon speaks only OCF:
  LSB ``status`` codes (0 running, 3 stopped, else failed) and Heartbeat ``resource.d``
  status *text* ("not running" / "running" / "OK") become OCF 0/7/1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.shell import subprocesses
from hacluster.shell.subprocesses import HELD_TAIL_BYTES, StartFailure

logger = logging.getLogger(__name__)

# OCF exit codes the executor itself produces.
OCF_SUCCESS = 0
OCF_ERR_GENERIC = 1
OCF_ERR_INSTALLED = 5
OCF_ERR_CONFIGURED = 6
OCF_NOT_RUNNING = 7
# Every exit status with an OCF meaning; anything else is reported as OCF_ERR_GENERIC.
OCF_CODES = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191})
# LSB non-status actions share OCF's 0..7.
LSB_CODES = frozenset(range(8))

SYSTEM_OCF_ROOT = Path("/usr/lib/ocf")
TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools" / "bin"
"""Our Pacemaker-compatible tools (``hacluster/tools/``), as small executables."""
META_PREFIX = "CRM_meta_"
HACLUSTER_PROVIDER = "hacluster"
DEFAULT_HACLUSTER_AGENTS_DIR = Path(__file__).resolve().parents[2] / "resource_agents"

REPORTED_TAIL_BYTES = 4 * 1024
KILL_GRACE_MS_MAX = 1000
EXIT_REASON_PREFIX = b"ocf-exit-reason:"
_START_FAILURE_RC = {
    # An unusable file or interpreter line is "not installed"; arguments or an environment that
    # cannot be passed (a parameter name with "=" or NUL) are a configuration error everywhere;
    # no descriptors or processes left is a failure of this attempt, which a retry may cure.
    StartFailure.NOT_RUNNABLE: OCF_ERR_INSTALLED,
    StartFailure.BAD_ARGUMENTS: OCF_ERR_CONFIGURED,
    StartFailure.NO_RESOURCES: OCF_ERR_GENERIC,
}

# Heartbeat's ResourceManager judges `status` by its text (reference §9): "not … running"
# (any case for "not" and the R of running) means stopped, then "running"/"Running"/"OK" means
# running, anything else stopped.  Shell `case` patterns match across newlines, hence DOTALL.
_HB_NOT_RUNNING = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning", re.DOTALL)
_HB_RUNNING = re.compile(r"[Rr]unning|OK")

InProcessAgent = Callable[[str, Mapping[str, str]], tuple[int, str | None, str]]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Which agent and how to call it: ``class:provider:type`` plus parameters."""

    agent_class: str  # "ocf" | "lsb" | "heartbeat" | "service" (service = LSB init script)
    provider: str | None  # ocf only
    type: str
    params: tuple[tuple[str, str], ...] = ()  # ocf: exported as OCF_RESKEY_<name>
    args: tuple[str, ...] = ()  # heartbeat resource.d: positional args before the action


@dataclass(frozen=True, slots=True)
class OpRequest:
    resource: str  # resource id, exported as OCF_RESOURCE_INSTANCE
    spec: AgentSpec
    action: str
    timeout_ms: int
    interval_ms: int = 0  # 0 = probe or one-shot op
    depth: int = 0  # OCF_CHECK_LEVEL
    meta: tuple[tuple[str, str], ...] = ()  # OCF_RESKEY_CRM_meta_<name> (name or CRM_meta_<name>)


@dataclass(frozen=True, slots=True)
class OpResult:
    resource: str
    action: str
    interval_ms: int
    rc: int  # OCF meaning, whatever the agent class
    raw_rc: int | None  # the process's own exit status; None if killed by a signal
    exit_reason: str | None
    output: str  # tail of stdout+stderr
    duration_ms: int
    timed_out: bool


@dataclass(frozen=True, slots=True)
class ExecutorStatistics:
    """A snapshot; the mappings are copies the caller may keep."""

    ops_run: int
    timeouts: int
    running: int
    abandoned_threads: int
    by_rc: Mapping[int, int] = field(default_factory=dict)
    by_action: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Raw:
    """What running the agent produced, before class-specific translation."""

    raw_rc: int | None
    stdout: bytes
    output: bytes
    exit_reason: str | None
    timed_out: bool
    forced_rc: int | None = None  # the executor's own verdict (the agent could not be run)


def _reported(data: bytes | bytearray) -> str:
    return bytes(data[-REPORTED_TAIL_BYTES:]).decode("utf-8", "replace")


def _ocf_rc(raw_rc: int | None) -> int:
    return raw_rc if raw_rc in OCF_CODES else OCF_ERR_GENERIC


class Executor:
    """Runs agent operations for the daemon; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        node_name: str,
        ocf_roots: Sequence[Path],
        resource_d: Sequence[Path] = (Path("/etc/ha.d/resource.d"),),
        init_d: Sequence[Path] = (Path("/etc/init.d"),),
        rsc_tmp: Path = Path("/run/resource-agents"),
        in_process: Mapping[tuple[str, str], InProcessAgent] | None = None,
        hacluster_agents_dir: Path = DEFAULT_HACLUSTER_AGENTS_DIR,
        system_ocf_root: Path = SYSTEM_OCF_ROOT,
        tools_dir: Path = TOOLS_DIR,
        api_socket: str = "",
    ) -> None:
        self.node_name = node_name
        self.tools_dir = tools_dir
        """``crm_attribute``, ``crm_master``, ``attrd_updater``, ``crm_node``: ours, first on the
        agent's ``PATH`` and its ``HA_SBIN_DIR``, so ClusterLabs' agents reach this daemon."""
        self.api_socket = api_socket
        self.ocf_roots = tuple(ocf_roots)
        self.resource_d = tuple(resource_d)
        self.init_d = tuple(init_d)
        self.rsc_tmp = rsc_tmp
        self.in_process = dict(in_process or {})
        self.hacluster_agents_dir = hacluster_agents_dir
        self.system_ocf_root = system_ocf_root
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._last_monitor_rc: dict[tuple[str, int], int] = {}
        self._ops_run = 0
        self._timeouts = 0
        self._running = 0
        self._abandoned_threads = 0
        self._by_rc: dict[int, int] = {}
        self._by_action: dict[str, int] = {}
        self._rsc_tmp_ready = False

    # --- finding agents -----------------------------------------------------------------------

    def candidates(self, spec: AgentSpec) -> list[Path]:
        """Every path ``resolve`` looks at, in order (also named when nothing is found)."""
        kind = spec.agent_class
        if kind == "ocf":
            if not spec.provider:
                return []
            found: list[Path] = []
            if spec.provider == HACLUSTER_PROVIDER:
                found.append(self.hacluster_agents_dir / spec.type)
            found += [root / "resource.d" / spec.provider / spec.type for root in self.ocf_roots]
            return found
        if kind in ("lsb", "service"):
            return [d / spec.type for d in self.init_d]
        if kind == "heartbeat":
            return [d / spec.type for d in (*self.resource_d, *self.init_d)]
        return []

    def resolve(self, spec: AgentSpec) -> Path | None:
        """Where the agent is, or None.  A name with a slash never escapes the search dirs."""
        if not spec.type or "/" in spec.type or spec.type in (".", ".."):
            return None
        for path in self.candidates(spec):
            if path.is_file():
                return path
        return None

    def _ocf_root_for(self, path: Path | None) -> Path:
        # ClusterLabs' shell agents find ocf-shellfuncs through OCF_ROOT, so the system root wins
        # whenever it exists, even for an agent found elsewhere.
        if self.system_ocf_root.is_dir():
            return self.system_ocf_root
        if path is not None:
            for root in self.ocf_roots:
                if path.is_relative_to(root):
                    return root
        return self.system_ocf_root

    # --- environment --------------------------------------------------------------------------

    def environment(self, req: OpRequest, path: Path | None) -> dict[str, str]:
        """The whole environment an agent sees: nothing is inherited from the daemon."""
        spec = req.spec
        ocf_root = self._ocf_root_for(path)
        env = {
            "PATH": f"{self.tools_dir}:{subprocesses.CHILD_PATH}",
            "LANG": "C",
            "LC_ALL": "C",
            "HA_RSCTMP": str(self.rsc_tmp),
            "HA_NODE": self.node_name,
            "HA_SBIN_DIR": str(self.tools_dir),
            "HACLUSTER_PYTHON": sys.executable,
            "OCF_ROOT": str(ocf_root),
            "OCF_FUNCTIONS_DIR": str(ocf_root / "lib" / "heartbeat"),
        }
        if self.api_socket:
            env["HACLUSTER_SOCKET"] = self.api_socket
        if spec.agent_class != "ocf":
            return env
        for name, value in req.meta:
            env[f"OCF_RESKEY_CRM_meta_{name.removeprefix(META_PREFIX)}"] = value
        for name, value in spec.params:
            env[f"OCF_RESKEY_{name}"] = value
        env |= {
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": req.resource,
            "OCF_RESOURCE_TYPE": spec.type,
            "OCF_RESOURCE_PROVIDER": spec.provider or "",
            "OCF_RESKEY_CRM_meta_timeout": str(req.timeout_ms),
            "OCF_RESKEY_CRM_meta_interval": str(req.interval_ms),
            "OCF_RESKEY_CRM_meta_name": req.action,
            "OCF_RESKEY_CRM_meta_on_node": self.node_name,
            "OCF_CHECK_LEVEL": str(req.depth),
        }
        return env

    # --- running ------------------------------------------------------------------------------

    async def run(self, req: OpRequest) -> OpResult:
        """Run one op, after any earlier op on the same resource has finished."""
        assert req.timeout_ms > 0, f"op timeout must be positive, got {req.timeout_ms}"
        assert req.interval_ms >= 0, f"op interval must not be negative, got {req.interval_ms}"
        lock = self._locks.setdefault(req.resource, asyncio.Lock())
        self._lock_users[req.resource] = self._lock_users.get(req.resource, 0) + 1
        try:
            async with lock:
                self._running += 1
                try:
                    result = await self._run_unlocked(req)
                finally:
                    self._running -= 1
        finally:
            self._lock_users[req.resource] -= 1
            if self._lock_users[req.resource] == 0:
                del self._lock_users[req.resource]
                del self._locks[req.resource]
        self._record(result)
        return result

    async def _run_unlocked(self, req: OpRequest) -> OpResult:
        started_ns = time.monotonic_ns()
        spec = req.spec
        self._prepare_rsc_tmp()
        function = (
            self.in_process.get((spec.provider or "", spec.type)) if spec.agent_class == "ocf" else None
        )
        if function is not None:
            raw = await self._run_in_process(req, function)
            return self._result(req, started_ns, _ocf_rc(raw.raw_rc), raw)
        found = self._precheck(req)
        if not isinstance(found, Path):
            rc, reason = found
            return self._result(
                req, started_ns, rc, _Raw(None, b"", b"", reason, timed_out=False, forced_rc=rc)
            )
        # The path found once is the one run: if it vanishes meanwhile, exec says so (a result).
        path = found
        argv, rc_of = self._command(req, path)
        raw = await self._run_process(req, argv, self.environment(req, path))
        return self._result(req, started_ns, rc_of(raw), raw)

    def _precheck(self, req: OpRequest) -> Path | tuple[int, str]:
        """The agent to run, or an (rc, reason) when the op cannot be run at all."""
        spec = req.spec
        known = ("ocf", "lsb", "service", "heartbeat")
        if spec.agent_class not in known:
            return OCF_ERR_CONFIGURED, (
                f"unknown agent class {spec.agent_class!r} for resource {req.resource}; "
                f"expected one of {', '.join(known)}"
            )
        if spec.agent_class == "ocf" and not spec.provider:
            return OCF_ERR_CONFIGURED, (
                f"ocf agent {spec.type!r} for resource {req.resource} has no provider; "
                "write it as ocf:<provider>:<type>, e.g. ocf:heartbeat:IPaddr2"
            )
        path = self.resolve(spec)
        if path is None:
            searched = ", ".join(str(p) for p in self.candidates(spec)) or "nowhere (invalid name)"
            return OCF_ERR_INSTALLED, (
                f"agent {_address(spec)} not found on node {self.node_name}; searched {searched}"
            )
        if not os.access(path, os.X_OK):
            return OCF_ERR_INSTALLED, f"agent {path} is not executable; run chmod 755 {path}"
        return path

    def _command(self, req: OpRequest, path: Path) -> tuple[list[str], Callable[[_Raw], int]]:
        """The argv to run and how to turn its outcome into an OCF rc."""
        kind = req.spec.agent_class
        action = req.action
        if kind == "ocf":
            return [str(path), action], lambda raw: _ocf_rc(raw.raw_rc)
        is_status = action in ("monitor", "status")
        if kind in ("lsb", "service"):
            argv = [str(path), "status" if is_status else action]
            if is_status:
                return argv, _lsb_status_rc
            if action == "stop":
                return argv, _lsb_stop_rc
            return argv, _lsb_rc
        argv = [str(path), *req.spec.args, "status" if is_status else action]
        if is_status:
            return argv, _heartbeat_status_rc
        return argv, _heartbeat_rc

    def _prepare_rsc_tmp(self) -> None:
        if self._rsc_tmp_ready:
            return
        try:
            self.rsc_tmp.mkdir(mode=0o755, parents=True, exist_ok=True)
            self._rsc_tmp_ready = True
        except OSError as exc:
            logger.warning("cannot create agent scratch dir path=%s error=%s", self.rsc_tmp, exc)

    async def _run_process(self, req: OpRequest, argv: list[str], env: dict[str, str]) -> _Raw:
        done = await subprocesses.run(
            argv,
            env=env,
            timeout_ms=req.timeout_ms,
            grace_ms=min(KILL_GRACE_MS_MAX, req.timeout_ms),
            mark=EXIT_REASON_PREFIX,
            label=f"op resource={req.resource} action={req.action}",
        )
        if done.start_failure is not None:
            return _Raw(
                None, b"", b"", done.problem, timed_out=False, forced_rc=_START_FAILURE_RC[done.start_failure]
            )
        reason = f"timed out after {req.timeout_ms} ms" if done.timed_out else done.marked
        return _Raw(done.exit_status, done.stdout, done.output, reason, done.timed_out)

    async def _run_in_process(self, req: OpRequest, function: InProcessAgent) -> _Raw:
        """Run a Python agent in a daemon thread under the op's timeout.

        A plain daemon thread rather than ``asyncio.to_thread``: a thread cannot be killed, and
        an abandoned one in the default executor would hold up the loop's (and the
        interpreter's) shutdown until it finished.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[int, str | None, str]] = loop.create_future()
        env = self.environment(req, None)

        def deliver(outcome: tuple[int, str | None, str] | BaseException) -> None:
            if done.done():
                return
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

        def work() -> None:
            try:
                outcome: tuple[int, str | None, str] | BaseException = function(req.action, env)
            except BaseException as exc:  # the agent's failure is a result, not our crash
                outcome = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(deliver, outcome)

        thread = threading.Thread(target=work, name=f"agent-{req.resource}-{req.action}", daemon=True)
        thread.start()
        try:
            rc, reason, output = await asyncio.wait_for(asyncio.shield(done), req.timeout_ms / 1000)
        except TimeoutError:
            self._abandoned_threads += 1
            # Whatever the thread delivers later is dropped, exceptions included, without the
            # loop complaining that nobody retrieved them.
            done.add_done_callback(lambda f: f.cancelled() or f.exception())
            logger.warning(
                "in-process agent timed out; its thread is abandoned and may still be running "
                "resource=%s action=%s thread=%s timeout_ms=%d",
                req.resource,
                req.action,
                thread.name,
                req.timeout_ms,
            )
            return _Raw(None, b"", b"", f"timed out after {req.timeout_ms} ms", timed_out=True)
        except Exception as exc:
            logger.exception("in-process agent raised resource=%s action=%s", req.resource, req.action)
            return _Raw(None, b"", b"", f"agent raised {type(exc).__name__}: {exc}", timed_out=False)
        if not isinstance(rc, int) or isinstance(rc, bool):
            return _Raw(None, b"", output.encode(), f"agent returned rc {rc!r}, not an int", timed_out=False)
        data = output.encode("utf-8", "replace")[-HELD_TAIL_BYTES:]
        return _Raw(rc, data, data, reason, timed_out=False)

    # --- results ------------------------------------------------------------------------------

    def _result(self, req: OpRequest, started_ns: int, rc: int, raw: _Raw) -> OpResult:
        return OpResult(
            resource=req.resource,
            action=req.action,
            interval_ms=req.interval_ms,
            rc=OCF_ERR_GENERIC if raw.timed_out else raw.forced_rc if raw.forced_rc is not None else rc,
            raw_rc=raw.raw_rc,
            exit_reason=raw.exit_reason,
            output=_reported(raw.output),
            duration_ms=(time.monotonic_ns() - started_ns) // 1_000_000,
            timed_out=raw.timed_out,
        )

    def _record(self, result: OpResult) -> None:
        self._ops_run += 1
        self._timeouts += result.timed_out
        self._by_rc[result.rc] = self._by_rc.get(result.rc, 0) + 1
        self._by_action[result.action] = self._by_action.get(result.action, 0) + 1
        level = logging.WARNING if result.timed_out else logging.INFO
        if result.action == "monitor" and not result.timed_out:
            key = (result.resource, result.interval_ms)
            if self._last_monitor_rc.get(key) == result.rc:
                level = logging.DEBUG
            self._last_monitor_rc[key] = result.rc
        extra = ""
        if result.raw_rc != result.rc:
            extra += f" raw_rc={result.raw_rc}"
        if result.timed_out:
            extra += " timed_out=true"
        if result.exit_reason:
            extra += f" exit_reason={result.exit_reason!r}"
        logger.log(
            level,
            "op finished resource=%s action=%s interval_ms=%d rc=%d duration_ms=%d%s",
            result.resource,
            result.action,
            result.interval_ms,
            result.rc,
            result.duration_ms,
            extra,
        )

    def forget(self, resource: str) -> None:
        """Drop remembered monitor results for a resource (deleted from the configuration)."""
        for key in [k for k in self._last_monitor_rc if k[0] == resource]:
            del self._last_monitor_rc[key]

    def statistics(self) -> ExecutorStatistics:
        return ExecutorStatistics(
            ops_run=self._ops_run,
            timeouts=self._timeouts,
            running=self._running,
            abandoned_threads=self._abandoned_threads,
            by_rc=dict(self._by_rc),
            by_action=dict(self._by_action),
        )


# --- helpers for one idea each: processes, class translation -----------------------------------


def _address(spec: AgentSpec) -> str:
    if spec.agent_class == "ocf":
        return f"ocf:{spec.provider}:{spec.type}"
    return f"{spec.agent_class}:{spec.type}"


def _lsb_status_rc(raw: _Raw) -> int:
    # LSB status: 0 running, 3 not running; 1/2 (dead with pid/lock file) and 4 (unknown) failed.
    if raw.raw_rc == 0:
        return OCF_SUCCESS
    if raw.raw_rc == 3:
        return OCF_NOT_RUNNING
    return OCF_ERR_GENERIC


def _lsb_rc(raw: _Raw) -> int:
    return raw.raw_rc if raw.raw_rc in LSB_CODES else OCF_ERR_GENERIC


def _lsb_stop_rc(raw: _Raw) -> int:
    # 7 is never a successful stop's answer (reference §3): a script that says "not running"
    # with 7 has not told us the stop worked, so it counts as a failure.
    rc = _lsb_rc(raw)
    return OCF_ERR_GENERIC if rc == OCF_NOT_RUNNING else rc


def _heartbeat_status_rc(raw: _Raw) -> int:
    text = raw.stdout.decode("utf-8", "replace")
    if _HB_NOT_RUNNING.search(text):
        return OCF_NOT_RUNNING
    if _HB_RUNNING.search(text):
        return OCF_SUCCESS
    return OCF_NOT_RUNNING


def _heartbeat_rc(raw: _Raw) -> int:
    return OCF_SUCCESS if raw.raw_rc == 0 else OCF_ERR_GENERIC
