"""The local resource state machine: every OCF rc of every action, against the module's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import INFINITY
from hacluster.core.effects import AgentFinished, RunAgent
from hacluster.core.lrm import (
    TRANSITIONS,
    Action,
    Count,
    LocalResource,
    LocalState,
    RcClass,
    apply_result,
    expire_failures,
    op_timeout_ms,
    rc_class,
    recurring_monitor,
    transition_table_markdown,
)
from hacluster.core.rm_messages import report_entry

CONFIG = parse_resources_crm(
    "primitive r ocf:hacluster:Dummy op monitor interval=10s timeout=7s op start timeout=30s\n"
    "op_defaults timeout=45s\nproperty stonith-enabled=false\n",
    "t.crm",
)
PRIMITIVE = CONFIG.primitive("r")
S = LocalState


def finish(
    state: LocalState,
    action: str,
    rc: int,
    *,
    interval_ms: int = 0,
    failcount: int = 0,
    timed_out: bool = False,
    threshold: int = INFINITY,
    now_ms: int = 5_000,
) -> tuple[LocalResource, bool, str]:
    resource = LocalResource("r", state=state, failcount=failcount)
    resource.pending = RunAgent(7, "r", PRIMITIVE, action, interval_ms, 20_000)
    outcome = apply_result(
        resource,
        AgentFinished(7, "r", action, interval_ms, rc, exit_reason="said so", timed_out=timed_out),
        threshold,
        now_ms,
    )
    assert resource.pending is None
    assert outcome.state is resource.state
    assert resource.last_rc == rc
    return resource, outcome.failed, outcome.text


HARD = (2, 3, 4, 5)
SOFT = (1, 7, 9, 42)


@pytest.mark.parametrize(
    ("rc", "state", "failcount", "banned_everywhere"),
    [
        (0, S.STARTED, 0, False),
        (8, S.STARTED, 0, False),  # promoted: running
        (190, S.STARTED, 0, False),  # degraded: running
        (191, S.STARTED, 0, False),
        *[(rc, S.FAILED, INFINITY, False) for rc in (*SOFT, *HARD)],  # a failed start bans this node
        (6, S.FAILED, INFINITY, True),
    ],
)
def test_start(rc: int, state: LocalState, failcount: int, banned_everywhere: bool) -> None:
    resource, failed, text = finish(S.STARTING, "start", rc)
    assert (resource.state, resource.failcount, resource.banned_everywhere) == (
        state,
        failcount,
        banned_everywhere,
    )
    assert failed is (state is S.FAILED)
    if failed:
        assert resource.last_failed_op == "start"
        assert resource.last_failure_ms == 5_000
        assert resource.last_exit_reason == "said so"
        assert f"rc {rc}" in text
        assert "start failed" in text


def test_start_timeout_is_a_failure_whatever_the_rc() -> None:
    resource, failed, text = finish(S.STARTING, "start", 0, timed_out=True)
    assert (resource.state, resource.failcount, failed) == (S.FAILED, INFINITY, True)
    assert "after timeout" in text


@pytest.mark.parametrize(
    ("rc", "state", "failcount", "banned_everywhere"),
    [
        (0, S.STOPPED, 0, False),
        *[(rc, S.BLOCKED, 0, False) for rc in SOFT],  # stop failed: blocked, count unchanged
        *[(rc, S.BLOCKED, INFINITY, False) for rc in HARD],
        (6, S.BLOCKED, INFINITY, True),
    ],
)
def test_stop(rc: int, state: LocalState, failcount: int, banned_everywhere: bool) -> None:
    resource, failed, text = finish(S.STOPPING, "stop", rc)
    assert (resource.state, resource.failcount, resource.banned_everywhere) == (
        state,
        failcount,
        banned_everywhere,
    )
    assert failed is (state is S.BLOCKED)
    if failed:
        assert "blocked here" in text


def test_stop_timeout_blocks() -> None:
    resource, failed, _ = finish(S.STOPPING, "stop", 0, timed_out=True)
    assert (resource.state, failed) == (S.BLOCKED, True)


def test_stop_success_clears_the_monitor() -> None:
    resource = LocalResource("r", state=S.STOPPING, next_monitor_ms=99)
    resource.pending = RunAgent(1, "r", PRIMITIVE, "stop", 0, 1000)
    apply_result(resource, AgentFinished(1, "r", "stop", 0, 0), INFINITY, 10)
    assert resource.next_monitor_ms is None


@pytest.mark.parametrize(
    ("rc", "state", "failcount", "banned_everywhere", "failed"),
    [
        (0, S.STARTED, 0, False, False),
        (8, S.STARTED, 0, False, False),
        (190, S.STARTED, 0, False, False),
        (7, S.STOPPED, 0, False, False),
        (5, S.STOPPED, INFINITY, False, True),  # not installed here: nothing runs, banned here
        (1, S.FAILED, 0, False, True),  # unknown: it may run, stop it
        (2, S.FAILED, INFINITY, False, True),
        (3, S.FAILED, INFINITY, False, True),
        (4, S.FAILED, INFINITY, False, True),
        (6, S.FAILED, INFINITY, True, True),
    ],
)
def test_probe(rc: int, state: LocalState, failcount: int, banned_everywhere: bool, failed: bool) -> None:
    resource, was_failure, _ = finish(S.UNKNOWN, "monitor", rc)
    assert (resource.state, resource.failcount, resource.banned_everywhere, was_failure) == (
        state,
        failcount,
        banned_everywhere,
        failed,
    )
    if failed:
        assert resource.last_failed_op == "probe"


def test_probe_timeout_is_a_failure() -> None:
    resource, failed, _ = finish(S.UNKNOWN, "monitor", 0, timed_out=True)
    assert (resource.state, failed) == (S.FAILED, True)


@pytest.mark.parametrize(
    ("rc", "state", "failcount", "banned_everywhere"),
    [
        (0, S.STARTED, 2, False),
        (8, S.STARTED, 2, False),
        (190, S.STARTED, 2, False),
        (7, S.FAILED, 3, False),  # "resource died": soft, counts one
        (1, S.FAILED, 3, False),
        *[(rc, S.FAILED, INFINITY, False) for rc in HARD],
        (6, S.FAILED, INFINITY, True),
    ],
)
def test_recurring_monitor(rc: int, state: LocalState, failcount: int, banned_everywhere: bool) -> None:
    resource, failed, text = finish(S.STARTED, "monitor", rc, interval_ms=10_000, failcount=2)
    assert (resource.state, resource.failcount, resource.banned_everywhere) == (
        state,
        failcount,
        banned_everywhere,
    )
    assert failed is (state is S.FAILED)
    if failed:
        assert resource.last_failed_op == "monitor (every 10000 ms)"
        assert "it will be restarted here" in text


def test_recurring_monitor_timeout_is_a_failure() -> None:
    resource, failed, _ = finish(S.STARTED, "monitor", 0, interval_ms=10_000, timed_out=True)
    assert (resource.state, resource.failcount, failed) == (S.FAILED, 1, True)


@pytest.mark.parametrize(
    ("failcount", "threshold", "verb"),
    [(0, 1, "move"), (1, 3, "restarted here"), (2, 3, "move"), (5, 0, "restarted here")],
)
def test_monitor_failure_says_what_happens_next(failcount: int, threshold: int, verb: str) -> None:
    _, _, text = finish(S.STARTED, "monitor", 7, interval_ms=10_000, failcount=failcount, threshold=threshold)
    assert verb in text


def test_failcount_saturates_at_infinity() -> None:
    resource, _, _ = finish(S.STARTED, "monitor", 1, interval_ms=10_000, failcount=INFINITY)
    assert resource.failcount == INFINITY


def test_other_actions_change_nothing() -> None:
    resource, failed, _ = finish(S.STARTED, "validate-all", 6)
    assert (resource.state, resource.failcount, resource.banned_everywhere, failed) == (
        S.STARTED,
        0,
        False,
        True,
    )


def test_a_result_for_another_call_is_refused() -> None:
    resource = LocalResource("r", state=S.STARTING)
    resource.pending = RunAgent(1, "r", PRIMITIVE, "start", 0, 1000)
    with pytest.raises(AssertionError):
        apply_result(resource, AgentFinished(2, "r", "start", 0, 0), INFINITY, 0)
    assert resource.state is S.STARTING


@pytest.mark.parametrize(
    ("timeout_ms", "now_ms", "state", "expired"),
    [
        (0, 10**9, S.STARTED, False),  # failure-timeout 0: never expires
        (60_000, 1_000 + 59_999, S.STARTED, False),
        (60_000, 1_000 + 60_000, S.STARTED, True),
        (60_000, 1_000 + 60_000, S.STOPPED, True),
        (60_000, 10**9, S.FAILED, False),  # still failed: wait for the stop
        (60_000, 10**9, S.BLOCKED, False),
    ],
)
def test_failure_timeout_expiry(timeout_ms: int, now_ms: int, state: LocalState, expired: bool) -> None:
    resource = LocalResource(
        "r", state=state, failcount=3, last_failure_ms=1_000, last_failed_op="monitor", last_exit_reason="x"
    )
    assert expire_failures(resource, timeout_ms, now_ms) is expired
    assert resource.failcount == (0 if expired else 3)
    assert (resource.last_failed_op is None) is expired


def test_expiry_needs_a_failure() -> None:
    assert not expire_failures(LocalResource("r", failcount=0, last_failure_ms=0), 1, 10**9)


def test_report_is_compact() -> None:
    resource, _, _ = finish(S.STARTING, "start", 6)
    assert report_entry(resource.report()) == {
        "s": "failed",
        "fc": INFINITY,
        "ba": 1,
        "op": "start",
        "rc": 6,
        "why": "said so",
    }
    assert report_entry(LocalResource("r", state=S.STOPPED).report()) == {"s": "stopped"}


@pytest.mark.parametrize(
    ("action", "interval_ms", "timeout_ms"),
    [("monitor", 10_000, 7_000), ("start", 0, 30_000), ("stop", 0, 45_000), ("monitor", 0, 7_000)],
)
def test_op_timeouts(action: str, interval_ms: int, timeout_ms: int) -> None:
    assert op_timeout_ms(CONFIG, PRIMITIVE, action, interval_ms) == timeout_ms


def test_recurring_monitor_op() -> None:
    op = recurring_monitor(PRIMITIVE)
    assert op is not None
    assert op.interval_ms == 10_000


# --- the table itself -------------------------------------------------------------------------

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_architecture_page_shows_the_table_the_code_runs() -> None:
    text = ARCHITECTURE.read_text()
    begin = "<!-- lrm-transitions: generated by lrm.transition_table_markdown() -->\n"
    end = "<!-- /lrm-transitions -->"
    assert begin in text
    assert end in text
    shown = text[text.index(begin) + len(begin) : text.index(end)]
    assert shown == transition_table_markdown(), "regenerate the table in docs/architecture.md"


def test_the_table_is_complete() -> None:
    """Every operation the reconciler runs has a step for every class of exit code."""
    assert {action for _, action in TRANSITIONS} == set(Action)
    for steps in TRANSITIONS.values():
        assert set(steps) == set(RcClass)


@pytest.mark.parametrize(
    ("action", "rc", "timed_out", "expected"),
    [
        (Action.STOP, 0, False, RcClass.OK),
        (Action.STOP, 8, False, RcClass.SOFT),  # only 0 is a successful stop
        (Action.START, 8, False, RcClass.OK),
        (Action.START, 0, True, RcClass.SOFT),
        (Action.PROBE, 7, True, RcClass.SOFT),
        (Action.PROBE, 7, False, RcClass.NOT_RUNNING),
        (Action.MONITOR, 5, False, RcClass.NOT_INSTALLED),
        (Action.MONITOR, 4, True, RcClass.HARD),
        (Action.MONITOR, 6, False, RcClass.CONFIGURED),
        (Action.MONITOR, 9, False, RcClass.SOFT),
    ],
)
def test_exit_code_classes(action: Action, rc: int, timed_out: bool, expected: RcClass) -> None:
    assert rc_class(action, rc, timed_out) is expected


def test_a_probe_that_finds_the_software_missing_bans_until_a_cleanup() -> None:
    resource, failed, _ = finish(S.UNKNOWN, "monitor", 5)
    step = TRANSITIONS[(S.UNKNOWN, Action.PROBE)][RcClass.NOT_INSTALLED]
    assert (resource.state, resource.failcount, failed) == (S.STOPPED, INFINITY, True)
    assert step.count is Count.BAN_UNTIL_CLEANUP
    assert resource.last_failure_ms is None, "so failure-timeout does not retry it"
    assert not expire_failures(resource, 1, 10**9)
