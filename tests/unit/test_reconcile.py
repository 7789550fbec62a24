"""What one node does about the plan (``reconcile.decide``), on hand-built views."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.ids import NodeName
from hacluster.core.lrm import Action, LocalState
from hacluster.core.plan import Plan, Reason, ReasonCode
from hacluster.core.reconcile import LocalFacts, NodeFacts, Op, decide
from hacluster.core.snapshot import ClusterSnapshot

S = LocalState
N1, N2, N3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
ORDERED = """
primitive first ocf:hacluster:Dummy
primitive then ocf:hacluster:Dummy
order first-then-then Mandatory: first then
property stonith-enabled=false
"""


def view(
    text: str, observed: Mapping[str, Mapping[str, LocalState]], members: tuple[str, ...] = ("n1", "n2", "n3")
) -> ClusterSnapshot:
    config = parse_resources_crm(text, "t.crm")
    return ClusterSnapshot(
        config=config,
        nodes=(N1, N2, N3),
        members=frozenset(NodeName(n) for n in members),
        observed={r: {NodeName(n): s for n, s in states.items()} for r, states in observed.items()},
    )


def plan(assignment: Mapping[str, str | None]) -> Plan:
    return Plan(
        {r: (NodeName(n) if n else None) for r, n in assignment.items()},
        {r: Reason(ReasonCode.PLACED, "placed") for r in assignment},
        frozenset(),
    )


def ops(snap: ClusterSnapshot, p: Plan | None, node: NodeName, **facts: LocalFacts) -> list[Op]:
    resources = {r: facts.get(r, LocalFacts()) for r in ("first", "then") if r in snap.config.resource_ids()}
    return decide(snap, p, node, NodeFacts(resources=resources))


def test_a_prerequisite_counts_as_started_only_where_the_plan_puts_it() -> None:
    """Regression (found by the agreement sweep, seed 644): the DC's plan moved ``first`` to n2
    and arrived before the report that it had stopped on n1; n3 saw it still started on n1
    and started ``then`` before ``first`` ran anywhere."""
    snap = view(ORDERED, {"first": {"n1": S.STARTED, "n2": S.STOPPED}, "then": {"n3": S.STOPPED}})
    assert ops(snap, plan({"first": "n2", "then": "n3"}), N3) == []
    started = view(ORDERED, {"first": {"n1": S.STOPPED, "n2": S.STARTED}, "then": {"n3": S.STOPPED}})
    assert ops(started, plan({"first": "n2", "then": "n3"}), N3) == [Op("then", Action.START)]


def test_a_prerequisite_waits_for_what_it_must_restart_to_stop() -> None:
    """``first`` runs nowhere (its node was lost), ``then`` still runs: ``then`` stops
    (it is being recovered) before ``first`` starts again, whatever the agents' timing."""
    snap = view(ORDERED, {"first": {"n2": S.STOPPED}, "then": {"n3": S.STARTED}}, members=("n2", "n3"))
    p = plan({"first": "n2", "then": "n3"})
    assert ops(snap, p, N2) == []
    assert ops(snap, p, N3) == [Op("then", Action.STOP)]
    stopped = view(ORDERED, {"first": {"n2": S.STOPPED}, "then": {"n3": S.STOPPED}}, members=("n2", "n3"))
    assert ops(stopped, p, N2) == [Op("first", Action.START)]


def test_an_unmanaged_dependent_is_not_waited_for() -> None:
    text = ORDERED.replace(
        "primitive then ocf:hacluster:Dummy", "primitive then ocf:hacluster:Dummy meta is-managed=false"
    )
    snap = view(text, {"first": {"n2": S.STOPPED}, "then": {"n3": S.STARTED}}, members=("n2", "n3"))
    assert ops(snap, plan({"first": "n2", "then": "n3"}), N2) == [Op("first", Action.START)]


@pytest.mark.parametrize(
    ("state", "facts", "expected"),
    [
        (S.UNKNOWN, LocalFacts(), [Op("first", Action.PROBE)]),
        (S.UNKNOWN, LocalFacts(pending=True), []),
        (S.STARTED, LocalFacts(monitor_due=True), [Op("first", Action.MONITOR)]),
        (S.STARTED, LocalFacts(definition_changed=True), [Op("first", Action.STOP)]),
        (S.FAILED, LocalFacts(), [Op("first", Action.STOP)]),
        (S.STOPPED, LocalFacts(), [Op("first", Action.START)]),
        (S.BLOCKED, LocalFacts(), []),
    ],
)
def test_one_operation_per_resource(state: LocalState, facts: LocalFacts, expected: list[Op]) -> None:
    text = "primitive first ocf:hacluster:Dummy\nproperty stonith-enabled=false\n"
    snap = view(text, {"first": {"n1": state}})
    assert ops(snap, plan({"first": "n1"}), N1, first=facts) == expected


def test_no_plan_keeps_what_runs_and_starts_nothing() -> None:
    text = "primitive first ocf:hacluster:Dummy\nproperty stonith-enabled=false\n"
    assert ops(view(text, {"first": {"n1": S.STARTED}}), None, N1) == []
    assert ops(view(text, {"first": {"n1": S.STOPPED}}), None, N1) == []


def test_maintenance_of_the_node_does_nothing_at_all() -> None:
    text = "primitive first ocf:hacluster:Dummy\nnode n1 attributes maintenance=yes\nproperty stonith-enabled=false\n"
    assert ops(view(text, {"first": {"n1": S.UNKNOWN}}), plan({"first": "n1"}), N1) == []
