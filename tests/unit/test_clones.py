"""Clones and promotable clones through the one decision path: placement, the plan (with the
promoted-max safety rule), the DC's fencing hold, and what each node does (``decide``)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.dc import plan_for
from hacluster.core.effects import AgentFinished, RunAgent
from hacluster.core.ids import NodeName
from hacluster.core.local import clone_meta
from hacluster.core.lrm import MAYBE_ACTIVE, TRANSITIONS, Action, LocalResource, LocalState, apply_result
from hacluster.core.orders import dependencies, promoted_prerequisite
from hacluster.core.plan import Role
from hacluster.core.reconcile import LocalFacts, NodeFacts, Op, decide
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.transition import possibly_promoted

S = LocalState
N1, N2, N3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
NODES = (N1, N2, N3)

ANONYMOUS = """
property stonith-enabled=false
primitive d ocf:heartbeat:Dummy
clone d-clone d
"""
PROMOTABLE = """
property stonith-enabled=false
primitive db ocf:pacemaker:Stateful \\
    op monitor interval=10s role=Promoted op monitor interval=11s role=Unpromoted
primitive vip ocf:heartbeat:Dummy
clone db-clone db meta promotable=true
colocation vip-with-primary inf: vip db-clone:Promoted
order promote-then-vip Mandatory: db-clone:promote vip
"""
SCORES = {N1: {"master-db": "5"}, N2: {"master-db": "10"}, N3: {"master-db": "1"}}


def snap(
    text: str,
    observed: Mapping[str, Mapping[NodeName, LocalState]] | None = None,
    *,
    roles: Mapping[str, Mapping[NodeName, Role]] | None = None,
    members: frozenset[NodeName] = frozenset(NODES),
    attributes: Mapping[NodeName, Mapping[str, str]] | None = None,
    unclean: frozenset[NodeName] = frozenset(),
) -> ClusterSnapshot:
    return ClusterSnapshot(
        config=parse_resources_crm(text, "t.crm"),
        nodes=NODES,
        members=members,
        observed=observed or {},
        roles=roles or {},
        node_attributes=attributes,
        unclean=unclean,
    )


def running(instances: Mapping[str, NodeName]) -> dict[str, dict[NodeName, LocalState]]:
    return {
        rsc: {n: (S.STARTED if n == node else S.STOPPED) for n in NODES} for rsc, node in instances.items()
    }


# --- anonymous clones ---------------------------------------------------------------------------


def test_an_anonymous_clone_runs_one_instance_per_node() -> None:
    plan = plan_for(snap(ANONYMOUS))
    assert sorted(plan.assignment.items()) == [("d:0", N1), ("d:1", N2), ("d:2", N3)]
    assert plan.roles == {}


def test_clone_max_and_clone_node_max() -> None:
    text = ANONYMOUS.replace("clone d-clone d", "clone d-clone d meta clone-max=5 clone-node-max=2")
    plan = plan_for(snap(text))
    per_node = [list(plan.assignment.values()).count(n) for n in NODES]
    assert sorted(per_node) == [1, 2, 2]  # spread: no node takes a second before each has one
    capped = plan_for(snap(ANONYMOUS.replace("clone d-clone d", "clone d-clone d meta clone-max=5")))
    assert sorted(n for n in capped.assignment.values() if n) == [N1, N2, N3]
    assert sum(n is None for n in capped.assignment.values()) == 2


def test_instances_are_sticky_and_survive_a_lost_node() -> None:
    observed = running({"d:0": N3, "d:1": N1, "d:2": N2})
    plan = plan_for(snap(ANONYMOUS, observed))
    assert dict(plan.assignment) == {"d:0": N3, "d:1": N1, "d:2": N2}
    lost = plan_for(snap(ANONYMOUS, observed, members=frozenset({N1, N2})))
    assert lost.assignment["d:1"] == N1
    assert lost.assignment["d:2"] == N2
    assert lost.assignment["d:0"] is None  # clone-node-max=1: nowhere else to go


def test_a_rule_keeps_instances_off_a_node_until_the_attribute_is_set() -> None:
    text = ANONYMOUS + "location d-needs-db d-clone rule -inf: not_defined db\n"
    attributes = {N1: {"db": "1"}, N2: {"db": "1"}, N3: {}}
    plan = plan_for(snap(text, attributes=attributes))
    assert N3 not in plan.assignment.values()
    attributes[N3] = {"db": "yes"}
    assert N3 in plan_for(snap(text, attributes=attributes)).assignment.values()


def test_a_primitive_colocated_with_a_clone_runs_where_an_instance_runs() -> None:
    text = ANONYMOUS + "primitive w ocf:heartbeat:Dummy\ncolocation w-with-d inf: w d-clone\n"
    text += "location d-not-n1 d-clone -inf: n1\nlocation w-likes-n1 w 50: n1\n"
    plan = plan_for(snap(text))
    assert plan.assignment["w"] in (N2, N3)


def test_an_order_on_a_clone_waits_for_an_instance() -> None:
    text = ANONYMOUS + "primitive w ocf:heartbeat:Dummy\norder d-then-w Mandatory: d-clone w\n"
    view = snap(text)
    assert dependencies(view.config, 3)["w"] == ["d-clone"]
    plan = plan_for(view)
    facts = NodeFacts(resources={"w": LocalFacts()})
    node = plan.assignment["w"]
    assert node is not None
    stopped = replace(view, observed={"w": dict.fromkeys(NODES, S.STOPPED)})
    assert decide(stopped, plan, node, facts) == []
    started = replace(view, observed={"w": dict.fromkeys(NODES, S.STOPPED), **running({"d:1": N2})})
    assert decide(started, plan, node, facts) == [Op("w", Action.START)]


def test_clone_instances_get_pacemakers_meta_for_the_agent() -> None:
    config = parse_resources_crm(PROMOTABLE, "t.crm")
    meta = dict(clone_meta(config, "db:1", 3, "start"))
    assert meta["CRM_meta_clone"] == "1"
    assert meta["CRM_meta_clone_max"] == "3"
    assert meta["CRM_meta_promoted_max"] == "1"
    assert meta["CRM_meta_master_max"] == "1"
    assert clone_meta(config, "vip", 3, "start") == ()


# --- promotion ------------------------------------------------------------------------------------


def test_the_best_promotion_score_is_promoted_and_the_vip_follows_it() -> None:
    observed = running({"db:0": N1, "db:1": N2, "db:2": N3})
    unpromoted = {f"db:{i}": {n: Role.UNPROMOTED} for i, n in enumerate(NODES)}
    plan = plan_for(snap(PROMOTABLE, observed, roles=unpromoted, attributes=SCORES))
    assert plan.roles == {"db:0": Role.UNPROMOTED, "db:1": Role.PROMOTED, "db:2": Role.UNPROMOTED}
    assert plan.assignment["vip"] == N2


def test_without_a_promotion_score_nothing_is_promoted_and_what_needs_it_waits() -> None:
    plan = plan_for(snap(PROMOTABLE, running({"db:0": N1})))
    assert Role.PROMOTED not in plan.roles.values()
    assert plan.assignment["vip"] is None
    assert "db-clone (Promoted)" in plan.reasons["vip"].text


@pytest.mark.parametrize(
    ("meta", "promoted"),
    [("promoted-max=2", 2), ("promoted-max=2 promoted-node-max=1", 2), ("promoted-max=0", 0)],
)
def test_promoted_max(meta: str, promoted: int) -> None:
    text = PROMOTABLE.replace("promotable=true", f"promotable=true {meta}")
    plan = plan_for(snap(text, attributes=SCORES))
    assert list(plan.roles.values()).count(Role.PROMOTED) == promoted


def test_a_unique_clones_instances_have_their_own_promotion_scores() -> None:
    text = PROMOTABLE.replace("promotable=true", "promotable=true globally-unique=true clone-max=2")
    scores = {N1: {"master-db:0": "5", "master-db:1": "20"}, N2: {"master-db:0": "10"}}
    plan = plan_for(snap(text, running({"db:0": N1, "db:1": N2}), attributes=scores))
    assert plan.roles == {"db:0": Role.PROMOTED, "db:1": Role.UNPROMOTED}


def test_target_role_unpromoted_keeps_every_instance_unpromoted() -> None:
    text = PROMOTABLE.replace("promotable=true", "promotable=true target-role=Unpromoted")
    plan = plan_for(snap(text, attributes=SCORES))
    assert set(plan.roles.values()) == {Role.UNPROMOTED}


def test_a_promoted_location_rule_adds_to_the_promotion_score() -> None:
    text = PROMOTABLE + "location primary-on-n3 db-clone rule $role=Promoted 100: #uname eq n3\n"
    plan = plan_for(snap(text, attributes=SCORES))
    promoted = [r for r, role in plan.roles.items() if role is Role.PROMOTED]
    assert [plan.assignment[r] for r in promoted] == [N3]


# --- the safety rule: never more than promoted-max promoted, fence first --------------------------


def test_a_promotion_waits_for_the_old_promoted_instance_to_demote() -> None:
    observed = running({"db:0": N1, "db:1": N2, "db:2": N3})
    roles = {"db:0": {N1: Role.PROMOTED}, "db:1": {N2: Role.UNPROMOTED}, "db:2": {N3: Role.UNPROMOTED}}
    view = snap(PROMOTABLE, observed, roles=roles, attributes=SCORES)
    plan = plan_for(view)  # n2 scores best, but n1 is still promoted
    assert list(plan.roles.values()).count(Role.PROMOTED) == 0
    facts = NodeFacts(resources={"db:0": LocalFacts()})
    assert decide(view, plan, N1, facts) == [Op("db:0", Action.DEMOTE)]
    assert decide(view, plan, N2, NodeFacts(resources={"db:1": LocalFacts()})) == []
    demoted = replace(view, roles={**roles, "db:0": {N1: Role.UNPROMOTED}})
    plan = plan_for(demoted)
    assert plan.roles["db:1"] is Role.PROMOTED
    assert decide(demoted, plan, N2, NodeFacts(resources={"db:1": LocalFacts()})) == [
        Op("db:1", Action.PROMOTE)
    ]


def test_the_vip_stops_before_the_promoted_instance_is_demoted() -> None:
    observed = {**running({"db:0": N1, "db:1": N2}), **running({"vip": N1})}
    roles = {"db:0": {N1: Role.PROMOTED}, "db:1": {N2: Role.UNPROMOTED}}
    view = snap(PROMOTABLE, observed, roles=roles, attributes=SCORES)
    plan = plan_for(view)
    assert dependencies(view.config, 3)["vip"] == [promoted_prerequisite("db-clone")]
    facts = NodeFacts(resources={"db:0": LocalFacts(), "vip": LocalFacts()})
    assert decide(view, plan, N1, facts) == [Op("vip", Action.STOP)]


def test_no_promotion_while_a_node_that_may_be_promoted_awaits_fencing() -> None:
    text = PROMOTABLE.replace("property stonith-enabled=false", "primitive f stonith:fence_dummy")
    observed = running({"db:0": N1, "db:1": N2, "db:2": N3})
    roles = {"db:0": {N1: Role.PROMOTED}, "db:1": {N2: Role.UNPROMOTED}, "db:2": {N3: Role.UNPROMOTED}}
    lost = snap(
        text, observed, roles=roles, members=frozenset({N2, N3}), attributes=SCORES, unclean=frozenset({N1})
    )
    plan = plan_for(lost)
    assert N1 in plan.needs_fencing
    assert Role.PROMOTED not in plan.roles.values()
    assert decide(lost, plan, N2, NodeFacts(resources={"db:1": LocalFacts()})) == []
    fenced = replace(lost, fenced=frozenset({N1}))
    plan = plan_for(fenced)
    assert [r for r, role in plan.roles.items() if role is Role.PROMOTED] == ["db:1"]


def test_a_failed_demote_keeps_counting_as_promoted_until_stopped() -> None:
    resource = LocalResource("db:0", S.STARTED, role=Role.PROMOTED)
    resource.pending = RunAgent(1, "db:0", parse_resources_crm(PROMOTABLE).primitive("db"), "demote", 0, 1000)
    apply_result(resource, AgentFinished(1, "db:0", "demote", 0, 1, False), 3, 0, promotable=True)
    assert (resource.state, resource.role) == (S.FAILED, Role.PROMOTED)
    observed = {"db:0": {N1: S.FAILED}, **running({"db:1": N2})}
    roles = {"db:0": {N1: Role.PROMOTED}, "db:1": {N2: Role.UNPROMOTED}}
    view = snap(PROMOTABLE, observed, roles=roles, attributes=SCORES)
    assert possibly_promoted(view.observed, view.roles, "db:0", view.members, frozenset()) == {N1}
    assert Role.PROMOTED not in plan_for(view).roles.values()


@pytest.mark.parametrize(
    ("action", "rc", "role"),
    [
        ("promote", 0, Role.PROMOTED),
        ("promote", 1, Role.PROMOTED),
        ("demote", 0, Role.UNPROMOTED),
        ("start", 0, Role.UNPROMOTED),
        ("monitor", 8, Role.PROMOTED),
        ("monitor", 9, Role.PROMOTED),
        ("monitor", 0, Role.UNPROMOTED),
    ],
)
def test_the_role_after_each_result(action: str, rc: int, role: Role) -> None:
    state = S.STARTING if action == "start" else S.STARTED
    resource = LocalResource("db:0", state, role=Role.UNPROMOTED if action != "demote" else Role.PROMOTED)
    interval = 10_000 if action == "monitor" else 0
    primitive = parse_resources_crm(PROMOTABLE).primitive("db")
    resource.pending = RunAgent(1, "db:0", primitive, action, interval, 1000)
    apply_result(resource, AgentFinished(1, "db:0", action, interval, rc, False), 3, 0, promotable=True)
    assert resource.role is role
    assert (resource.state is S.STARTED) == (rc in (0, 8))


def test_promote_and_demote_are_in_the_table() -> None:
    assert (S.STARTED, Action.PROMOTE) in TRANSITIONS
    assert (S.STARTED, Action.DEMOTE) in TRANSITIONS


@pytest.mark.parametrize("seed", range(200))
def test_never_more_promoted_than_promoted_max(seed: int) -> None:
    """Random reports (even ones already past promoted-max, after a split), memberships,
    fencing and scores: a promotion the plan adds, or a node starts, never takes what may be
    promoted now past promoted-max."""
    rng = random.Random(seed)
    limit = rng.choice([1, 1, 2])
    text = PROMOTABLE.replace("promotable=true", f"promotable=true promoted-max={limit}")
    if rng.random() < 0.5:
        text = text.replace("property stonith-enabled=false", "primitive f stonith:fence_dummy")
    members = frozenset(n for n in NODES if rng.random() < 0.8) or frozenset({N1})
    lost = frozenset(NODES) - members
    observed: dict[str, dict[NodeName, LocalState]] = {}
    roles: dict[str, dict[NodeName, Role]] = {}
    for i in range(3):
        rsc = f"db:{i}"
        for node in NODES:
            state = rng.choice([S.STOPPED, S.STOPPED, S.STARTED, S.STARTED, S.FAILED, S.STOPPING, S.BLOCKED])
            observed.setdefault(rsc, {})[node] = state
            if state in MAYBE_ACTIVE:
                roles.setdefault(rsc, {})[node] = rng.choice(
                    [Role.PROMOTED, Role.UNPROMOTED, Role.UNPROMOTED]
                )
    attributes = {n: {"master-db": str(rng.randint(-5, 20))} for n in NODES if rng.random() < 0.9}
    fenced = frozenset(n for n in lost if rng.random() < 0.5)
    view = snap(text, observed, roles=roles, members=members, attributes=attributes, unclean=lost - fenced)
    view = replace(view, fenced=fenced)
    plan = plan_for(view)
    down = view.trusted_down()
    maybe = {r for r in ("db:0", "db:1", "db:2") if possibly_promoted(observed, roles, r, members, down)}
    newly = {r for r, role in plan.roles.items() if role is Role.PROMOTED}
    if newly - maybe:
        assert len(maybe | newly) <= limit, (seed, maybe, newly)
    for node in members:
        local = NodeFacts(resources={r: LocalFacts() for r in ("db:0", "db:1", "db:2")})
        for op in decide(view, plan, node, local):
            if op.action is Action.PROMOTE:
                assert op.resource in newly
                assert len(maybe | {op.resource}) <= limit


def test_simulate_predicts_promotion_and_a_failover() -> None:
    from hacluster.core.simulate import Demote, Fence, Move, Promote, Start, action_text, predict

    text = PROMOTABLE.replace("property stonith-enabled=false", "primitive f stonith:fence_lab")
    empty = snap(text, attributes=SCORES)
    actions = predict(empty)
    assert Promote("db:1", N2) in actions
    assert Start("vip", N2) in actions
    assert actions.index(Promote("db:1", N2)) < actions.index(Start("vip", N2))
    observed = {**running({"db:0": N1, "db:1": N2, "db:2": N3}), **running({"vip": N2})}
    roles = {"db:0": {N1: Role.UNPROMOTED}, "db:1": {N2: Role.PROMOTED}, "db:2": {N3: Role.UNPROMOTED}}
    settled = snap(text, observed, roles=roles, attributes=SCORES)
    assert predict(settled) == []
    crashed = predict(settled, crash=["n2"])
    assert isinstance(crashed[0], Fence)
    assert Promote("db:0", N1) in crashed
    assert Move("vip", N2, N1) in crashed or Start("vip", N1) in crashed
    assert action_text(Promote("db:0", N1)) == "Promote db:0 ( n1 )"
    lower = replace(settled, node_attributes={**SCORES, N2: {"master-db": "1"}})
    moved = predict(lower)
    assert moved.index(Demote("db:1", N2)) < moved.index(Promote("db:0", N1))
