"""The local resource manager: what each resource is doing on *this* node.  Pure.

Theory of operation
-------------------
Every resource has one local state, changed only by agent results (and by ``cleanup``):

    UNKNOWN ──probe──▶ STOPPED | STARTED | FAILED
    STOPPED ──start──▶ STARTING ──rc 0──▶ STARTED          (else FAILED, fail count = INFINITY)
    STARTED ──monitor rc≠0──▶ FAILED                         (fail count + 1)
    STARTED | FAILED ──stop──▶ STOPPING ──rc 0──▶ STOPPED   (else BLOCKED: only fencing or
                                                                 cleanup gets it out)

A FAILED resource may be partly running, so it is always stopped before anything else
happens to it; it counts as active everywhere in the cluster until that stop succeeds.  At
most one operation per resource is in flight (``pending``).  The module decides nothing
about *where* resources should run: ``crm.py`` asks it to start or stop, and it answers
with the ``RunAgent`` effect or with the reason it cannot.

OCF exit codes are read as the OCF spec means them (reference §3): 7 is "cleanly stopped";
2, 3, 4 and 5 are hard errors that ban the resource from this node; 6 bans it from every
node; anything else non-zero is a soft error that counts toward ``migration-threshold``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig, Op, Primitive, parse_time_ms

OCF_SUCCESS: Final = 0
OCF_ERR_GENERIC: Final = 1
OCF_ERR_ARGS: Final = 2
OCF_ERR_UNIMPLEMENTED: Final = 3
OCF_ERR_PERM: Final = 4
OCF_ERR_INSTALLED: Final = 5
OCF_ERR_CONFIGURED: Final = 6
OCF_NOT_RUNNING: Final = 7
OCF_RUNNING_PROMOTED: Final = 8
OCF_DEGRADED: Final = 190
OCF_DEGRADED_PROMOTED: Final = 191

RUNNING_RCS: Final = frozenset({OCF_SUCCESS, OCF_RUNNING_PROMOTED, OCF_DEGRADED, OCF_DEGRADED_PROMOTED})
HARD_RCS: Final = frozenset({OCF_ERR_ARGS, OCF_ERR_UNIMPLEMENTED, OCF_ERR_PERM, OCF_ERR_INSTALLED})

DEFAULT_TIMEOUT_MS: Final = 20_000
RC_NAMES: Final = {
    0: "ok",
    1: "error",
    2: "invalid parameter",
    3: "unimplemented feature",
    4: "insufficient privileges",
    5: "not installed",
    6: "not configured",
    7: "not running",
    8: "promoted",
    9: "promoted (failed)",
    190: "degraded",
    191: "degraded (promoted)",
}


class LocalState(enum.Enum):
    UNKNOWN = "unknown"
    STOPPED = "stopped"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    FAILED = "failed"
    BLOCKED = "blocked"


MAYBE_ACTIVE: Final = frozenset(
    {
        LocalState.UNKNOWN,
        LocalState.STARTING,
        LocalState.STARTED,
        LocalState.STOPPING,
        LocalState.FAILED,
        LocalState.BLOCKED,
    }
)
"""States in which the resource may be running here: nobody else may start it meanwhile."""


@dataclass(frozen=True, slots=True)
class RunAgent:
    """Run one agent operation; the shell answers with ``AgentFinished`` (same ``call_id``)."""

    call_id: int
    resource: str
    primitive: Primitive
    action: str
    interval_ms: int
    timeout_ms: int
    depth: int = 0


@dataclass(frozen=True, slots=True)
class AgentFinished:
    call_id: int
    resource: str
    action: str
    interval_ms: int
    rc: int
    exit_reason: str | None = None
    timed_out: bool = False
    duration_ms: int = 0


@dataclass(slots=True)
class LocalResource:
    id: str
    state: LocalState = LocalState.UNKNOWN
    pending: RunAgent | None = None
    failcount: int = 0
    last_failure_ms: int | None = None
    banned_everywhere: bool = False
    last_rc: int | None = None
    last_failed_rc: int | None = None
    last_failed_op: str | None = None
    last_exit_reason: str | None = None
    next_monitor_ms: int | None = None
    recover_after_stop: bool = False

    def report(self) -> dict[str, object]:
        """The compact form other nodes receive in ``hac_state``."""
        out: dict[str, object] = {"s": self.state.value}
        if self.failcount:
            out["fc"] = self.failcount
        if self.banned_everywhere:
            out["ba"] = 1
        if self.last_failed_op:
            out["op"] = self.last_failed_op
            out["rc"] = self.last_failed_rc
            if self.last_exit_reason:
                out["why"] = self.last_exit_reason[:200]
        return out


def find_op(primitive: Primitive, name: str, interval_ms: int | None = None) -> Op | None:
    for op in primitive.ops:
        if op.name == name and (interval_ms is None or op.interval_ms == interval_ms):
            return op
    return None


def op_timeout_ms(config: ClusterConfig, primitive: Primitive, action: str, interval_ms: int = 0) -> int:
    """The op's own timeout, else ``op_defaults``, else 20 s (works for orphans too)."""
    for op in primitive.ops:
        if op.name == action and op.interval_ms == interval_ms and op.timeout_ms > 0:
            return op.timeout_ms
    for op in primitive.ops:
        if op.name == action and op.timeout_ms > 0:
            return op.timeout_ms
    default = dict(config.op_defaults).get("timeout")
    if default is not None:
        try:
            return parse_time_ms(default)
        except ValueError:
            pass
    return DEFAULT_TIMEOUT_MS


def recurring_monitor(primitive: Primitive) -> Op | None:
    """The first monitor op with an interval (roles other than the default are ignored)."""
    for op in primitive.ops:
        if op.name == "monitor" and op.interval_ms > 0 and op.role in (None, "Started"):
            return op
    return None


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What an agent result did: new state, and a sentence for the log."""

    state: LocalState
    text: str
    failed: bool


def apply_result(
    resource: LocalResource, result: AgentFinished, migration_threshold: int, now_ms: int
) -> ResultOutcome:
    """Change ``resource`` for ``result`` (the table in the module docstring)."""
    assert resource.pending is not None
    assert resource.pending.call_id == result.call_id
    resource.pending = None
    resource.last_rc = result.rc
    rc = result.rc
    name = f"{result.action}" + (f" (every {result.interval_ms} ms)" if result.interval_ms else "")
    described = f"rc {rc} '{RC_NAMES.get(rc, 'unknown')}'" + (" after timeout" if result.timed_out else "")
    if result.exit_reason:
        described += f": {result.exit_reason}"
    is_probe = result.action == "monitor" and result.interval_ms == 0

    def fail(state: LocalState, count: int | None, text: str) -> ResultOutcome:
        resource.state = state
        resource.last_failed_op = name if not is_probe else "probe"
        resource.last_failed_rc = rc
        resource.last_exit_reason = result.exit_reason
        resource.last_failure_ms = now_ms
        if count is not None:
            resource.failcount = min(INFINITY, max(resource.failcount, 0) + count)
        if rc == OCF_ERR_CONFIGURED:
            resource.banned_everywhere = True
        if rc in HARD_RCS or rc == OCF_ERR_CONFIGURED:
            resource.failcount = INFINITY
        return ResultOutcome(state, text, True)

    if result.action == "stop":
        if rc == OCF_SUCCESS and not result.timed_out:
            resource.state = LocalState.STOPPED
            resource.next_monitor_ms = None
            return ResultOutcome(LocalState.STOPPED, f"{resource.id} stopped", False)
        return fail(LocalState.BLOCKED, None, f"{resource.id} stop failed, {described}; it is blocked here")
    if result.action == "start":
        if rc in RUNNING_RCS and not result.timed_out:
            resource.state = LocalState.STARTED
            return ResultOutcome(LocalState.STARTED, f"{resource.id} started", False)
        return fail(
            LocalState.FAILED, INFINITY, f"{resource.id} start failed, {described}; banned from this node"
        )
    if result.action == "monitor":
        if result.timed_out and rc in RUNNING_RCS | {OCF_NOT_RUNNING}:
            rc = OCF_ERR_GENERIC  # a monitor that timed out tells nothing: a failure, as for start
        if is_probe:
            if rc in RUNNING_RCS:
                resource.state = LocalState.STARTED
                return ResultOutcome(LocalState.STARTED, f"{resource.id} probe: running here", False)
            if rc == OCF_NOT_RUNNING:
                resource.state = LocalState.STOPPED
                return ResultOutcome(LocalState.STOPPED, f"{resource.id} probe: not running here", False)
            if rc == OCF_ERR_INSTALLED:
                resource.state = LocalState.STOPPED
                resource.failcount = INFINITY
                resource.last_failed_op = "probe"
                resource.last_failed_rc = rc
                resource.last_exit_reason = result.exit_reason
                return ResultOutcome(
                    LocalState.STOPPED,
                    f"{resource.id} probe: not installed here, {described}; banned from this node",
                    True,
                )
            return fail(
                LocalState.FAILED, None, f"{resource.id} probe failed, {described}; it will be stopped here"
            )
        if rc in RUNNING_RCS:
            return ResultOutcome(resource.state, f"{resource.id} monitor ok", False)
        over = resource.failcount + 1 >= migration_threshold > 0
        verb = "it will move" if over else "it will be restarted here"
        return fail(LocalState.FAILED, 1, f"{resource.id} monitor failed, {described}; {verb}")
    # Any other action (validate-all, meta-data...) changes nothing.
    return ResultOutcome(resource.state, f"{resource.id} {name} {described}", rc != OCF_SUCCESS)


def expire_failures(resource: LocalResource, failure_timeout_ms: int, now_ms: int) -> bool:
    """Forget the fail count once ``failure-timeout`` has passed since the last failure."""
    if failure_timeout_ms <= 0 or resource.failcount == 0 or resource.last_failure_ms is None:
        return False
    if now_ms - resource.last_failure_ms < failure_timeout_ms:
        return False
    if resource.state in (LocalState.FAILED, LocalState.BLOCKED):
        return False
    resource.failcount = 0
    resource.last_failed_op = None
    resource.last_exit_reason = None
    return True
