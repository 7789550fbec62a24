"""The local resource manager: what each resource is doing on *this* node.  Pure.

Theory of operation
-------------------
Every resource has one local state, changed only by agent results (and by ``cleanup``).
``TRANSITIONS`` is the whole state machine: for the state a resource is in while an
operation runs, the operation, and the class of its exit code, the next state and what
follows.  ``docs/architecture.md`` shows the table as ``transition_table_markdown()``
renders it (``tests/unit/test_lrm.py`` checks the two agree).  In short:

    UNKNOWN ──probe──▶ STOPPED | STARTED | FAILED
    STOPPED ──start──▶ STARTING ──rc 0──▶ STARTED          (else FAILED, fail count = INFINITY)
    STARTED ──monitor rc≠0──▶ FAILED                         (fail count + 1)
    STARTED | FAILED ──stop──▶ STOPPING ──rc 0──▶ STOPPED   (else BLOCKED: only fencing or
                                                                 cleanup gets it out)
    STARTED ──promote | demote rc 0──▶ STARTED              (else FAILED, fail count + 1)

A promotable clone's instance also has a role (``ROLE_AFTER``): Unpromoted once started or
demoted, Promoted once promoted; a monitor or probe answering 8 (running promoted), 9
(failed promoted) or 191 says Promoted, 0 or 190 Unpromoted.  A promote or demote that
failed leaves the role Promoted: it may be half done, so the instance counts as promoted
until it is stopped (the safety rule in ``transition.py`` counts it).

A FAILED resource may be partly running, so it is always stopped before anything else
happens to it; it counts as active everywhere in the cluster until that stop succeeds.  At
most one operation per resource is in flight (``pending``).  The module decides nothing
about *where* resources should run: ``reconcile.py`` decides what to run and ``crm.py``
asks for it.

OCF exit codes are read as the OCF spec means them (reference §3): 7 is "cleanly stopped";
2, 3, 4 and 5 are hard errors that ban the resource from this node; 6 bans it from every
node; anything else non-zero is a soft error that counts toward ``migration-threshold``.
An operation that timed out is a soft error whatever its exit code said.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig, Op, Primitive, parse_time_ms
from hacluster.core.effects import AgentFinished, RunAgent
from hacluster.core.plan import Role

OCF_SUCCESS: Final = 0
OCF_ERR_GENERIC: Final = 1
OCF_ERR_ARGS: Final = 2
OCF_ERR_UNIMPLEMENTED: Final = 3
OCF_ERR_PERM: Final = 4
OCF_ERR_INSTALLED: Final = 5
OCF_ERR_CONFIGURED: Final = 6
OCF_NOT_RUNNING: Final = 7
OCF_RUNNING_PROMOTED: Final = 8
OCF_FAILED_PROMOTED: Final = 9
OCF_DEGRADED: Final = 190
OCF_DEGRADED_PROMOTED: Final = 191

RUNNING_RCS: Final = frozenset({OCF_SUCCESS, OCF_RUNNING_PROMOTED, OCF_DEGRADED, OCF_DEGRADED_PROMOTED})
HARD_RCS: Final = frozenset({OCF_ERR_ARGS, OCF_ERR_UNIMPLEMENTED, OCF_ERR_PERM, OCF_ERR_INSTALLED})

DEFAULT_TIMEOUT_MS: Final = 20_000
EXIT_REASON_MAX: Final = 200
"""An agent's exit reason is cut to this many characters in a report."""
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
class ResourceReport:
    """One resource on one node, as that node reports it to the others (``hac_state``)."""

    state: LocalState
    failcount: int = 0
    banned_everywhere: bool = False
    """Its agent answered rc 6 there: the configuration is wrong on every node."""
    failed_op: str | None = None
    failed_rc: int | None = None
    exit_reason: str | None = None
    role: Role = Role.STARTED
    """For a running resource; only promotable clones have another one."""


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
    role: Role = Role.STARTED
    """Only promotable clones' instances have another one (``role_after``)."""

    def report(self) -> ResourceReport:
        """What other nodes learn about this resource."""
        failed = self.last_failed_op is not None
        return ResourceReport(
            state=self.state,
            failcount=self.failcount,
            banned_everywhere=self.banned_everywhere,
            failed_op=self.last_failed_op,
            failed_rc=self.last_failed_rc if failed else None,
            exit_reason=self.last_exit_reason[:EXIT_REASON_MAX] if failed and self.last_exit_reason else None,
            role=self.role,
        )


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


def recurring_monitor(primitive: Primitive, role: Role = Role.STARTED) -> Op | None:
    """The monitor op with an interval for ``role``: a promoted instance's ``role=Promoted``
    op, an unpromoted one's ``role=Unpromoted`` op, else (and outside clones) the first
    role-less one."""
    if role is not Role.STARTED:
        for op in primitive.ops:
            if op.name == "monitor" and op.interval_ms > 0 and op.role == role.value:
                return op
    for op in primitive.ops:
        if op.name == "monitor" and op.interval_ms > 0 and op.role in (None, "Started"):
            return op
    return None


# --- the state machine -------------------------------------------------------------------------


class Action(enum.Enum):
    """An operation as the state machine sees it: a monitor without interval is the probe."""

    PROBE = "probe"
    START = "start"
    MONITOR = "monitor"
    STOP = "stop"
    PROMOTE = "promote"
    DEMOTE = "demote"


class RcClass(enum.Enum):
    """What an exit code means (OCF reference §3); a timeout makes any success a SOFT error."""

    OK = "0, 8, 190, 191 (running); for a stop only 0"
    NOT_RUNNING = "7 (not running)"
    NOT_INSTALLED = "5 (not installed)"
    HARD = "2, 3, 4 (hard error)"
    CONFIGURED = "6 (not configured)"
    SOFT = "any other, or a timeout (soft error)"


class Count(enum.Enum):
    """What a result does to the fail count and the failure record."""

    NONE = "-"
    RECORD = "recorded"
    """The failure is recorded (op, rc, reason, time); the fail count stays."""
    PLUS_ONE = "+1"
    BAN_HERE = "INFINITY"
    """Fail count INFINITY: this node may not run it until a cleanup (or failure-timeout)."""
    BAN_EVERYWHERE = "INFINITY, every node"
    """rc 6, the configuration is wrong: no node may run it until a cleanup."""
    BAN_UNTIL_CLEANUP = "INFINITY until cleanup"
    """Not installed here: failure-timeout does not bring it back, a cleanup does."""


class FollowUp(enum.Enum):
    """What happens to the resource next, after this result."""

    NONE = "-"
    MONITOR = "monitors"
    """Running here: its recurring monitor runs every interval."""
    STOP = "stop"
    """Failed, maybe partly running: stopped here before anything else."""
    FENCE = "fence or cleanup"
    """Its stop failed: only fencing the node or a cleanup releases it."""


@dataclass(frozen=True, slots=True)
class Step:
    state: LocalState
    count: Count
    follow_up: FollowUp
    text: str
    """``{id}`` the resource, ``{result}`` the exit code in words, ``{then}`` what comes next."""


def _failing(state: LocalState, count: Count, follow_up: FollowUp, text: str) -> dict[RcClass, Step]:
    """One step for every failing class; hard errors ban the node, rc 6 every node."""
    bans = {RcClass.HARD: Count.BAN_HERE, RcClass.NOT_INSTALLED: Count.BAN_HERE}
    bans[RcClass.CONFIGURED] = Count.BAN_EVERYWHERE
    classes = (RcClass.NOT_RUNNING, RcClass.NOT_INSTALLED, RcClass.HARD, RcClass.CONFIGURED, RcClass.SOFT)
    return {rc: Step(state, bans.get(rc, count), follow_up, text) for rc in classes}


S: Final = LocalState
TRANSITIONS: Final[dict[tuple[LocalState, Action], dict[RcClass, Step]]] = {
    (S.UNKNOWN, Action.PROBE): {
        RcClass.OK: Step(S.STARTED, Count.NONE, FollowUp.MONITOR, "{id} probe: running here"),
        **_failing(
            S.FAILED, Count.RECORD, FollowUp.STOP, "{id} probe failed, {result}; it will be stopped here"
        ),
        RcClass.NOT_RUNNING: Step(S.STOPPED, Count.NONE, FollowUp.NONE, "{id} probe: not running here"),
        RcClass.NOT_INSTALLED: Step(
            S.STOPPED,
            Count.BAN_UNTIL_CLEANUP,
            FollowUp.NONE,
            "{id} probe: not installed here, {result}; banned from this node",
        ),
    },
    (S.STARTING, Action.START): {
        RcClass.OK: Step(S.STARTED, Count.NONE, FollowUp.MONITOR, "{id} started"),
        **_failing(
            S.FAILED, Count.BAN_HERE, FollowUp.STOP, "{id} start failed, {result}; banned from this node"
        ),
    },
    (S.STARTED, Action.MONITOR): {
        RcClass.OK: Step(S.STARTED, Count.NONE, FollowUp.MONITOR, "{id} monitor ok"),
        **_failing(S.FAILED, Count.PLUS_ONE, FollowUp.STOP, "{id} monitor failed, {result}; {then}"),
    },
    (S.STARTED, Action.PROMOTE): {
        RcClass.OK: Step(S.STARTED, Count.NONE, FollowUp.MONITOR, "{id} promoted"),
        **_failing(S.FAILED, Count.PLUS_ONE, FollowUp.STOP, "{id} promote failed, {result}; {then}"),
    },
    (S.STARTED, Action.DEMOTE): {
        RcClass.OK: Step(S.STARTED, Count.NONE, FollowUp.MONITOR, "{id} demoted"),
        **_failing(S.FAILED, Count.PLUS_ONE, FollowUp.STOP, "{id} demote failed, {result}; {then}"),
    },
    (S.STOPPING, Action.STOP): {
        RcClass.OK: Step(S.STOPPED, Count.NONE, FollowUp.NONE, "{id} stopped"),
        **_failing(S.BLOCKED, Count.RECORD, FollowUp.FENCE, "{id} stop failed, {result}; it is blocked here"),
    },
}
"""(state while the operation runs, operation) → exit code class → the step.  Complete: every
operation the reconciler issues runs from exactly one state, and every class is listed."""


def action_of(result: AgentFinished) -> Action | None:
    """The state machine's name for an agent action; None for one it ignores (validate-all…)."""
    if result.action == "monitor":
        return Action.MONITOR if result.interval_ms else Action.PROBE
    if result.action in ("start", "stop", "promote", "demote"):
        return Action(result.action)
    return None


PROMOTED_RCS: Final = frozenset({OCF_RUNNING_PROMOTED, OCF_FAILED_PROMOTED, OCF_DEGRADED_PROMOTED})


def role_after(action: Action, rc: int, ok: bool, promotable: bool, before: Role) -> Role:
    """An instance's role after ``action`` answered ``rc`` (module docstring); always
    ``Started`` outside promotable clones."""
    if not promotable:
        return Role.STARTED
    if action is Action.PROMOTE:
        return Role.PROMOTED  # done, or half done: promoted until stopped
    if action is Action.DEMOTE:
        return Role.UNPROMOTED if ok else Role.PROMOTED
    if action is Action.START:
        return Role.UNPROMOTED
    if action is Action.STOP:
        return Role.UNPROMOTED if ok else before
    if rc in PROMOTED_RCS:
        return Role.PROMOTED
    if rc in RUNNING_RCS:
        return Role.UNPROMOTED
    return before


def rc_class(action: Action, rc: int, timed_out: bool) -> RcClass:
    """Only rc 0 is a successful stop; a timed-out operation failed whatever it returned."""
    ok = rc == OCF_SUCCESS if action is Action.STOP else rc in RUNNING_RCS
    if ok:
        return RcClass.SOFT if timed_out else RcClass.OK
    if rc == OCF_NOT_RUNNING:
        return RcClass.SOFT if timed_out else RcClass.NOT_RUNNING
    if rc == OCF_ERR_INSTALLED:
        return RcClass.NOT_INSTALLED
    if rc in HARD_RCS:
        return RcClass.HARD
    if rc == OCF_ERR_CONFIGURED:
        return RcClass.CONFIGURED
    return RcClass.SOFT


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What an agent result did: new state, and a sentence for the log."""

    state: LocalState
    text: str
    failed: bool
    follow_up: FollowUp = FollowUp.NONE


def apply_result(
    resource: LocalResource,
    result: AgentFinished,
    migration_threshold: int,
    now_ms: int,
    *,
    promotable: bool = False,
) -> ResultOutcome:
    """Change ``resource`` for ``result``, as ``TRANSITIONS`` says."""
    assert resource.pending is not None
    assert resource.pending.call_id == result.call_id
    resource.pending = None
    resource.last_rc = result.rc
    name = f"{result.action}" + (f" (every {result.interval_ms} ms)" if result.interval_ms else "")
    described = f"rc {result.rc} '{RC_NAMES.get(result.rc, 'unknown')}'" + (
        " after timeout" if result.timed_out else ""
    )
    if result.exit_reason:
        described += f": {result.exit_reason}"
    action = action_of(result)
    if action is None:  # validate-all, meta-data…: nothing changes
        return ResultOutcome(resource.state, f"{resource.id} {name} {described}", result.rc != OCF_SUCCESS)
    rc = rc_class(action, result.rc, result.timed_out)
    steps = TRANSITIONS.get((resource.state, action))
    assert steps is not None, f"{resource.id}: {action.value} finished while {resource.state.value}"
    step = steps[rc]
    over = resource.failcount + 1 >= migration_threshold > 0
    text = step.text.format(
        id=resource.id,
        result=described,
        then="it will move" if over else "it will be restarted here",
    )
    resource.state = step.state
    resource.role = role_after(action, result.rc, rc is RcClass.OK, promotable, resource.role)
    if step.state is not LocalState.STARTED:
        resource.next_monitor_ms = None if step.state is LocalState.STOPPED else resource.next_monitor_ms
    if step.count is not Count.NONE:
        # A probe or monitor that timed out "succeeding" is recorded as a generic error.
        timed_out_check = action in (Action.PROBE, Action.MONITOR) and result.timed_out
        recorded_rc = (
            OCF_ERR_GENERIC if timed_out_check and result.rc in RUNNING_RCS | {OCF_NOT_RUNNING} else result.rc
        )
        _count(resource, step.count, "probe" if action is Action.PROBE else name, recorded_rc, result, now_ms)
    return ResultOutcome(step.state, text, step.count is not Count.NONE, step.follow_up)


def _count(
    resource: LocalResource, count: Count, op: str, rc: int, result: AgentFinished, now_ms: int
) -> None:
    resource.last_failed_op = op
    resource.last_failed_rc = rc
    resource.last_exit_reason = result.exit_reason
    if count is not Count.BAN_UNTIL_CLEANUP:
        resource.last_failure_ms = now_ms
    if count is Count.PLUS_ONE:
        resource.failcount = min(INFINITY, max(resource.failcount, 0) + 1)
    elif count in (Count.BAN_HERE, Count.BAN_EVERYWHERE, Count.BAN_UNTIL_CLEANUP):
        resource.failcount = INFINITY
    if count is Count.BAN_EVERYWHERE:
        resource.banned_everywhere = True


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


def transition_table_markdown() -> str:
    """``TRANSITIONS`` as the Markdown table in docs/architecture.md (a test compares them)."""
    lines = [
        "| state while it runs | operation | exit code | next state | fail count | then |",
        "|---|---|---|---|---|---|",
    ]
    for (state, action), steps in TRANSITIONS.items():
        for rc in RcClass:
            step = steps[rc]
            label = "0 (stopped)" if (action, rc) == (Action.STOP, RcClass.OK) else rc.value.partition(";")[0]
            lines.append(
                f"| {state.value} | {action.value} | {label} | {step.state.value} | "
                f"{step.count.value} | {step.follow_up.value} |"
            )
    return "\n".join(lines) + "\n"
