"""Transition as a table: placement + what nodes report → a plan that is safe right now."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.orders import dependencies
from hacluster.core.placement import Placement
from hacluster.core.plan import Plan, Reason, ReasonCode
from hacluster.core.transition import make_plan

S = LocalState
BASE = """
primitive a ocf:hacluster:Dummy
primitive b ocf:hacluster:Dummy
primitive c ocf:hacluster:Dummy
"""


def plan_for(
    target: Mapping[str, str | None],
    observed: Mapping[str, Mapping[str, LocalState]],
    *,
    members: tuple[str, ...] = ("n1", "n2"),
    clean: tuple[str, ...] = (),
    stonith: bool | str = False,
    extra: str = "",
) -> Plan:
    """``stonith``: the property as a bool, or the very word written in the file."""
    word = stonith if isinstance(stonith, str) else ("true" if stonith else "false")
    config = parse_resources_crm(BASE + extra + f"\nproperty stonith-enabled={word}\n", "t.crm")
    placement = Placement(
        assignment={r: (NodeName(n) if n else None) for r, n in target.items()},
        reasons={r: Reason(ReasonCode.PLACED, f"placed {n}") for r, n in target.items()},
        scores={},
    )
    return make_plan(
        config,
        placement,
        {r: {NodeName(n): s for n, s in states.items()} for r, states in observed.items()},
        frozenset(NodeName(n) for n in members),
        frozenset(NodeName(n) for n in clean),
    )


@pytest.mark.parametrize(
    ("observed", "expected", "reason_part"),
    [
        # nothing runs anywhere: it goes to its target
        ({"n1": S.STOPPED, "n2": S.STOPPED}, "n2", "placed n2"),
        # already on its target
        ({"n1": S.STOPPED, "n2": S.STARTED}, "n2", "placed n2"),
        # moving: nowhere until the old holder reports it stopped
        ({"n1": S.STARTED, "n2": S.STOPPED}, None, "moving: stopped on n1 first, then started on n2"),
        ({"n1": S.STOPPING, "n2": S.STOPPED}, None, "moving"),
        ({"n1": S.STARTING, "n2": S.STOPPED}, None, "moving"),
        ({"n1": S.FAILED, "n2": S.STOPPED}, None, "moving"),
        # not probed yet on n1: it might run there
        ({"n1": S.UNKNOWN, "n2": S.STOPPED}, None, "moving"),
        # double active: nowhere, both stop
        (
            {"n1": S.STARTED, "n2": S.STARTED},
            None,
            "active on n1, n2: stopped there before it starts anywhere",
        ),
        # the blocker is a non-member that left cleanly: ignored
        ({"n3": S.STARTED, "n2": S.STOPPED}, "n2", "placed n2"),
    ],
)
def test_moving_and_double_active(
    observed: dict[str, LocalState], expected: str | None, reason_part: str
) -> None:
    plan = plan_for({"a": "n2"}, {"a": observed}, clean=("n3",))
    assert plan.assignment["a"] == expected
    assert reason_part in plan.reasons["a"].text
    assert plan.needs_fencing == frozenset()


def test_planned_nowhere_while_running_means_stop_it() -> None:
    plan = plan_for({"a": None}, {"a": {"n1": S.STARTED}})
    assert plan.assignment["a"] is None
    assert "active on n1" in plan.reasons["a"].text


def test_move_completes_once_old_holder_reports_stopped() -> None:
    before = plan_for({"a": "n2"}, {"a": {"n1": S.STARTED, "n2": S.STOPPED}})
    after = plan_for({"a": "n2"}, {"a": {"n1": S.STOPPED, "n2": S.STOPPED}})
    assert (before.assignment["a"], after.assignment["a"]) == (None, "n2")


@pytest.mark.parametrize("state", [S.STARTED, S.STARTING, S.STOPPING, S.FAILED])
def test_lost_node_with_stonith_needs_fencing(state: LocalState) -> None:
    plan = plan_for(
        {"a": "n2", "b": "n2"}, {"a": {"n1": state}, "b": {"n1": S.STOPPED}}, members=("n2",), stonith=True
    )
    assert plan.assignment["a"] is None
    assert plan.needs_fencing == frozenset({"n1"})
    assert plan.reasons["a"].text == "waiting for n1 to be fenced: it may still run there"
    assert plan.assignment["b"] == "n2"  # n1 reported b stopped: it may move at once


def test_lost_node_fenced_or_clean_is_not_waited_for() -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.STARTED}}, members=("n2",), clean=("n1",), stonith=True)
    assert plan.assignment["a"] == "n2"
    assert plan.needs_fencing == frozenset()


def test_lost_node_without_stonith_is_assumed_stopped() -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.STARTED}}, members=("n2",), stonith=False)
    assert plan.assignment["a"] == "n2"
    assert plan.needs_fencing == frozenset()


def test_lost_node_never_probed_is_not_a_holder() -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.UNKNOWN}}, members=("n2",), stonith=True)
    assert plan.assignment["a"] == "n2"


@pytest.mark.parametrize(("stonith", "fence"), [(False, frozenset()), (True, frozenset({"n1"}))])
def test_blocked_runs_nowhere_with_reason(stonith: bool, fence: frozenset[str]) -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.BLOCKED, "n2": S.STOPPED}}, stonith=stonith)
    assert plan.assignment["a"] is None
    assert plan.reasons["a"].text == "blocked: its stop failed on n1; fence that node or run cleanup"
    assert plan.needs_fencing == fence


def test_blocked_on_a_lost_node_still_blocks() -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.BLOCKED}}, members=("n2",))
    assert plan.assignment["a"] is None
    assert plan.reasons["a"].text.startswith("blocked")


@pytest.mark.parametrize(
    ("extra", "blocked_first", "expected"),
    [
        # order a then b then c: a cannot run, so b and c are planned nowhere (transitively)
        ("order o1 Mandatory: a b\norder o2 Mandatory: b c", "a", {"a": None, "b": None, "c": None}),
        # only b cannot run: a keeps its place, c is stopped
        ("order o1 Mandatory: a b\norder o2 Mandatory: b c", "b", {"a": "n1", "b": None, "c": None}),
        # optional orders do not stop anything
        ("order o1 Optional: a b", "a", {"a": None, "b": "n1", "c": "n1"}),
        # a group orders its members
        ("group g a b c", "b", {"a": "n1", "b": None, "c": None}),
        # order between groups: the then-group's first member waits for the first-group's last
        ("group g1 a b\ngroup g2 c", "b", {"a": "n1", "b": None, "c": None}),
    ],
)
def test_mandatory_order_dependents_planned_nowhere(
    extra: str, blocked_first: str, expected: dict[str, str | None]
) -> None:
    extra += "\norder o3 Mandatory: g1 g2" if "g1" in extra else ""
    target = {"a": "n1", "b": "n1", "c": "n1"}
    observed = {r: {"n1": S.STOPPED, "n2": S.STOPPED} for r in target}
    observed[blocked_first] = {"n1": S.STOPPED, "n2": S.BLOCKED}
    plan = plan_for(target, observed, extra=extra)
    assert dict(plan.assignment) == expected
    for rsc, node in expected.items():
        if node is None and rsc != blocked_first:
            assert plan.reasons[rsc].text.startswith("it needs ")
            assert "cannot run now (" in plan.reasons[rsc].text


def test_dependent_reason_names_the_first_and_its_blocker() -> None:
    plan = plan_for(
        {"a": "n1", "b": "n1", "c": None},
        {"a": {"n1": S.STOPPED, "n2": S.BLOCKED}},
        extra="order o Mandatory: a b",
    )
    assert plan.reasons["b"].text == (
        "it needs a first, which cannot run now (blocked: its stop failed on n2; fence that node or run cleanup)"
    )


def test_dependencies_from_groups_and_orders() -> None:
    config = parse_resources_crm(
        BASE
        + "primitive d ocf:hacluster:Dummy\ngroup g a b\norder o1 Mandatory: g c\norder o2 Mandatory: c d\n"
        + "order o3 Optional: a d\nproperty stonith-enabled=false",
        "t.crm",
    )
    assert dependencies(config) == {"b": ["a"], "c": ["b"], "d": ["c"]}


@pytest.mark.parametrize("word", ["y", "Y", "yes", "on", "1", "true", "TRUE"])
def test_stonith_enabled_is_on_for_every_true_word(word: str) -> None:
    """Regression: ``stonith-enabled=y`` was read as off here (and as on everywhere else), so a
    resource a lost node last reported running was planned elsewhere without a fence."""
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.STARTED}}, members=("n2",), stonith=word)
    assert plan.assignment["a"] is None
    assert plan.needs_fencing == frozenset({"n1"})


@pytest.mark.parametrize("word", ["n", "no", "off", "0", "false"])
def test_stonith_enabled_is_off_for_every_false_word(word: str) -> None:
    plan = plan_for({"a": "n2"}, {"a": {"n1": S.STARTED}}, members=("n2",), stonith=word)
    assert plan.assignment["a"] == "n2"


BOTH = {"a": {"n1": S.STARTED, "n2": S.STARTED}}


@pytest.mark.parametrize(
    ("policy", "assignment", "held", "code"),
    [
        ("stop_start", None, frozenset(), ReasonCode.ACTIVE_ELSEWHERE),
        ("stop_only", None, frozenset(), ReasonCode.ACTIVE_ELSEWHERE),
        ("stop_unexpected", "n2", frozenset(), ReasonCode.STOPPING_UNEXPECTED),
        ("block", None, frozenset({"a"}), ReasonCode.MULTIPLE_ACTIVE_BLOCKED),
    ],
)
def test_multiple_active(policy: str, assignment: str | None, held: frozenset[str], code: ReasonCode) -> None:
    plan = plan_for({"a": "n2"}, BOTH, extra=_meta(policy))
    assert plan.assignment["a"] == assignment
    assert plan.held == held
    assert plan.reasons["a"].code is code
    assert plan.reasons["a"].nodes == (("n1",) if code is ReasonCode.STOPPING_UNEXPECTED else ("n1", "n2"))


def _meta(policy: str) -> str:
    return f"rsc_defaults multiple-active={policy}\n"


def test_stop_unexpected_stops_every_copy_when_none_is_on_the_target() -> None:
    plan = plan_for({"a": "n3"}, BOTH, members=("n1", "n2", "n3"), extra=_meta("stop_unexpected"))
    assert plan.assignment["a"] is None
    assert plan.reasons["a"].code is ReasonCode.ACTIVE_ELSEWHERE


def test_a_held_prerequisite_does_not_stop_what_needs_it() -> None:
    plan = plan_for(
        {"a": None, "b": "n1"},
        {**BOTH, "b": {"n1": S.STARTED}},
        extra=_meta("block") + "order a-then-b Mandatory: a b\n",
    )
    assert plan.held == frozenset({"a"})
    assert plan.assignment["b"] == "n1"
