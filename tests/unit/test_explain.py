"""``predict`` and ``why`` over hand-built snapshots: what the cluster would do, and why not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import INFINITY
from hacluster.core.edits import merge_by_id
from hacluster.core.explain import why
from hacluster.core.fence_devices import FenceDeviceSpec
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.simulate import (
    Fence,
    Move,
    Recover,
    Restart,
    Start,
    Stop,
    action_text,
    predict,
    predict_sides,
)
from hacluster.core.snapshot import ClusterSnapshot, Failure

N1, N2, N3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
FENCING = "primitive fence-all stonith:fence_lab\n"
GROUP = """
primitive vip ocf:heartbeat:IPaddr2 params ip=192.0.2.10
primitive app ocf:hacluster:Dummy
primitive db ocf:hacluster:Dummy
group web vip app
order db-then-web Mandatory: db web
colocation web-with-db inf: web db
"""


def snapshot(
    text: str,
    *,
    running: Mapping[str, str] | None = None,
    states: Mapping[tuple[str, str], LocalState] | None = None,
    nodes: tuple[str, ...] = ("n1", "n2", "n3"),
    members: tuple[str, ...] | None = None,
    failcounts: Mapping[tuple[str, str], int] | None = None,
    failures: Mapping[tuple[str, str], Failure] | None = None,
    unclean: tuple[str, ...] = (),
    fence_pending: Mapping[str, str] | None = None,
    has_quorum: bool | None = None,
    now_ms: int | None = None,
) -> ClusterSnapshot:
    """Every configured primitive is stopped on every member unless ``running``/``states`` say."""
    config = parse_resources_crm(text, "t.crm", epoch=7)
    member_names = frozenset(NodeName(n) for n in (members if members is not None else nodes))
    observed: dict[str, dict[NodeName, LocalState]] = {}
    for p in config.primitives:
        if p.agent_class != "stonith":
            observed[p.id] = dict.fromkeys(sorted(member_names), LocalState.STOPPED)
    for rsc, node in (running or {}).items():
        observed[rsc][NodeName(node)] = LocalState.STARTED
    for (rsc, node), state in (states or {}).items():
        observed.setdefault(rsc, {})[NodeName(node)] = state
    quorum = has_quorum if has_quorum is not None else (len(nodes) <= 2 or 2 * len(member_names) > len(nodes))
    return ClusterSnapshot(
        config=config,
        nodes=tuple(NodeName(n) for n in nodes),
        members=member_names,
        observed=observed,
        failcounts={(r, NodeName(n)): c for (r, n), c in (failcounts or {}).items()},
        failures={(r, NodeName(n)): f for (r, n), f in (failures or {}).items()},
        unclean=frozenset(NodeName(n) for n in unclean),
        fence_pending={NodeName(n): t for n, t in (fence_pending or {}).items()},
        has_quorum=quorum,
        now_ms=now_ms,
    )


ALL_ON_N1 = {"vip": "n1", "app": "n1", "db": "n1"}


def texts(actions: list[object]) -> list[str]:
    return [action_text(a) for a in actions]  # type: ignore[arg-type]


# --- predict -----------------------------------------------------------------------------------


def test_a_settled_cluster_does_nothing() -> None:
    assert predict(snapshot(FENCING + GROUP, running=ALL_ON_N1)) == []


def test_a_stopped_cluster_starts_prerequisites_first() -> None:
    actions = predict(snapshot(FENCING + GROUP))
    assert actions == [Start("db", N1), Start("vip", N1), Start("app", N1)]


def test_crash_fences_before_the_moves_it_gates() -> None:
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1), crash=["n1"])
    assert actions == [
        Fence(N1, "it left the membership without a clean stop"),
        Move("db", N1, N2),
        Move("vip", N1, N2),
        Move("app", N1, N2),
    ]


def test_crash_without_fencing_moves_at_once() -> None:
    text = GROUP + "property stonith-enabled=false\n"
    actions = predict(snapshot(text, running=ALL_ON_N1), crash=["n1"])
    assert actions == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


def test_crash_without_quorum_fences_nothing_and_stops_everything() -> None:
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1), crash=["n2", "n3"])
    assert actions == [Stop("app", N1), Stop("vip", N1), Stop("db", N1)]


def test_standby_stops_dependents_first_and_starts_prerequisites_first() -> None:
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1), standby=["n1"])
    assert actions == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


def test_failed_group_member_is_recovered_in_place_after_its_dependents_stop() -> None:
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1), fail=["vip"])
    assert actions == [Recover("vip", N1), Restart("app", N1)]


def test_failed_last_member_is_recovered_alone() -> None:
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1), fail=["app:n1"])
    assert actions == [Recover("app", N1)]


def test_failure_at_migration_threshold_moves_the_whole_group() -> None:
    text = (
        FENCING + GROUP.split("primitive db")[0] + "group web vip app\nrsc_defaults migration-threshold=1\n"
    )
    actions = predict(snapshot(text, running={"vip": "n1", "app": "n1"}), fail=["app"])
    assert actions == [Move("vip", N1, N2), Move("app", N1, N2)]


def test_failure_at_migration_threshold_takes_the_anchor_along() -> None:
    """Pacemaker's colocation influence (its scheduler case colocation-influence): the group
    that must run with db cannot stay on n1, so db moves with it rather than the group stopping."""
    text = FENCING + GROUP + "rsc_defaults migration-threshold=1\n"
    actions = predict(snapshot(text, running=ALL_ON_N1), fail=["app"])
    assert actions == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


def test_failure_at_migration_threshold_stops_a_group_whose_member_is_not_critical() -> None:
    text = FENCING + GROUP.replace(
        "primitive app ocf:hacluster:Dummy", "primitive app ocf:hacluster:Dummy meta critical=false"
    )
    actions = predict(
        snapshot(text + "rsc_defaults migration-threshold=1\n", running=ALL_ON_N1), fail=["app"]
    )
    assert actions == [Stop("app", N1), Stop("vip", N1)]


def test_failing_a_start_where_it_does_not_run_bans_that_node() -> None:
    actions = predict(snapshot(FENCING + GROUP), fail=["db:n1"])
    assert actions == [Start("db", N2), Start("vip", N2), Start("app", N2)]


def test_failed_stop_fences_the_node_then_moves() -> None:
    states = {("app", "n1"): LocalState.BLOCKED}
    actions = predict(snapshot(FENCING + GROUP, running=ALL_ON_N1, states=states))
    assert actions[0] == Fence(N1, "stop of app failed there")
    assert actions[1:] == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


def test_pending_fence_of_a_lost_node_is_carried_out_first() -> None:
    snap = snapshot(
        FENCING + GROUP,
        running=ALL_ON_N1,
        members=("n2", "n3"),
        unclean=("n1",),
        fence_pending={"n1": "fencing n1 in progress"},
    )
    actions = predict(snap)
    assert actions[0] == Fence(N1, "it left the membership without a clean stop")
    assert actions[1:] == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


def test_no_fence_device_for_the_node_means_nothing_moves() -> None:
    text = "primitive f stonith:fence_lab params pcmk_host_list=n2\n" + GROUP
    assert predict(snapshot(text, running=ALL_ON_N1), crash=["n1"]) == []


def test_new_configuration_restarts_a_changed_primitive_and_stops_a_removed_one() -> None:
    snap = snapshot(FENCING + GROUP, running=ALL_ON_N1)
    new = parse_resources_crm(
        FENCING
        + """
primitive vip ocf:heartbeat:IPaddr2 params ip=192.0.2.99
primitive app ocf:hacluster:Dummy
group web vip app
""",
        "new.crm",
        epoch=8,
    )
    assert predict(snap, config=new) == [Stop("db", N1), Restart("vip", N1), Restart("app", N1)]


def test_partition_majority_fences_the_minority_and_minority_stops() -> None:
    snap = snapshot(FENCING + GROUP, running=ALL_ON_N1)
    sides = predict_sides(snap, partition=[["n1"], ["n2", "n3"]])
    assert [(s.members, s.has_quorum) for s in sides] == [((N1,), False), ((N2, N3), True)]
    assert list(sides[0].actions) == [Stop("app", N1), Stop("vip", N1), Stop("db", N1)]
    assert sides[1].actions[0] == Fence(N1, "it left the membership without a clean stop")
    assert list(sides[1].actions[1:]) == [Move("db", N1, N2), Move("vip", N1, N2), Move("app", N1, N2)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crash": ["n9"]}, "--crash n9: no such node; configured nodes: n1, n2, n3"),
        ({"fail": ["nope"]}, "--fail nope: no resource named 'nope'"),
        ({"fail": ["db"]}, "db runs nowhere; name the node whose start should fail: db:NODE"),
        ({"partition": [["n1"], ["n1", "n2"]]}, "n1 is in two partitions"),
    ],
)
def test_bad_what_ifs_name_the_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        predict(snapshot(FENCING + GROUP), **kwargs)  # type: ignore[arg-type]


# --- why ---------------------------------------------------------------------------------------


def test_why_running() -> None:
    assert why(snapshot(FENCING + GROUP, running=ALL_ON_N1), "vip") == (
        "vip runs on n1: nothing blocks it (stays on n1 (score inf))"
    )


def test_why_target_role_stopped() -> None:
    text = FENCING + GROUP.replace("ip=192.0.2.10", "ip=192.0.2.10 meta target-role=Stopped")
    assert why(snapshot(text), "vip") == (
        "vip is not running: its target-role is Stopped; run `hacrm resource start vip`"
    )


def test_why_dependency_names_the_prerequisite_and_its_blocker() -> None:
    text = FENCING + GROUP.replace(
        "primitive db ocf:hacluster:Dummy", "primitive db ocf:hacluster:Dummy meta target-role=Stopped"
    )
    assert why(snapshot(text), "app") == (
        "app is not running: it needs vip first (group web), and vip cannot run: it needs db first "
        "(a mandatory order), and db cannot run: its target-role is Stopped; run `hacrm resource start db`"
    )


def test_why_fail_count_at_threshold_with_expiry() -> None:
    text = FENCING + "primitive db ocf:hacluster:Dummy meta migration-threshold=2 failure-timeout=60s\n"
    snap = snapshot(
        text,
        nodes=("n1", "n2"),
        members=("n1",),
        failcounts={("db", "n1"): 2},
        failures={("db", "n1"): Failure("monitor (every 10000 ms)", 7, "gone", last_failure_ms=100_000)},
        now_ms=115_500,
    )
    assert why(snap, "db") == (
        "db is not running: no node can run it (n1: db fail count 2 reached migration-threshold 2 "
        "(monitor (every 10000 ms) rc 7 'not running': gone); it expires in 44s, or run "
        "`hacrm resource cleanup db --node n1`; n2 is offline)"
    )


def test_why_start_failure_never_expires() -> None:
    text = FENCING + "primitive db ocf:hacluster:Dummy\nlocation no-n2 db -inf: n2\n"
    snap = snapshot(
        text,
        nodes=("n1", "n2"),
        failcounts={("db", "n1"): INFINITY},
        failures={("db", "n1"): Failure("start", 5, "binary missing")},
    )
    assert why(snap, "db") == (
        "db is not running: no node can run it (n1: db failed to start (start rc 5 'not installed': "
        "binary missing) and is banned there; it never expires (no failure-timeout), or run "
        "`hacrm resource cleanup db --node n1`; n2: a location constraint forbids it (-inf))"
    )


def test_why_standby_and_offline_per_node() -> None:
    text = FENCING + "primitive db ocf:hacluster:Dummy\nnode n1 attributes standby=on\n"
    snap = snapshot(text, nodes=("n1", "n2"), members=("n1",))
    assert why(snap, "db") == "db is not running: no node can run it (n1 is in standby; n2 is offline)"


def test_why_waiting_for_fencing_names_the_node_and_the_attempt() -> None:
    snap = snapshot(
        FENCING + GROUP,
        running=ALL_ON_N1,
        members=("n2", "n3"),
        unclean=("n1",),
        fence_pending={"n1": "fencing n1 failed 2 time(s): timeout; retrying"},
    )
    assert why(snap, "db") == (
        "db is not running: it is waiting for n1 to be fenced, since it may still run there "
        "(fencing n1 failed 2 time(s): timeout; retrying)"
    )


def test_why_blocked_by_a_failed_stop() -> None:
    snap = snapshot(FENCING + GROUP, running=ALL_ON_N1, states={("db", "n1"): LocalState.BLOCKED})
    assert why(snap, "db") == (
        "db is not running: it is blocked by a failed stop on n1: it stays off every other node until n1 "
        "is fenced or you run `hacrm resource cleanup db --node n1`"
    )


def test_why_no_quorum() -> None:
    snap = snapshot(FENCING + GROUP, members=("n1",))
    assert why(snap, "db") == (
        "db is not running: this partition has no quorum (1 of 3 nodes are members) and no-quorum-policy=stop"
    )


def test_why_no_fence_device() -> None:
    assert why(snapshot(GROUP), "db") == (
        "db is not running: stonith-enabled=true but no fence device is configured; configure a stonith "
        "device or set property stonith-enabled=false"
    )


def test_why_failed_resource_is_being_recovered() -> None:
    snap = snapshot(
        FENCING + GROUP,
        running=ALL_ON_N1,
        states={("db", "n1"): LocalState.FAILED},
        failcounts={("db", "n1"): 1},
        failures={("db", "n1"): Failure("monitor (every 10000 ms)", 7)},
    )
    assert why(snap, "db") == (
        "db is not running: it failed on n1 (monitor (every 10000 ms) rc 7 'not running') and is being "
        "recovered: stopped there first, then started again on n1"
    )


def test_why_group_and_unknown_id() -> None:
    snap = snapshot(FENCING + GROUP, running=ALL_ON_N1)
    assert why(snap, "web") == "group web runs on n1: nothing blocks it (stays on n1 (score inf))"
    with pytest.raises(ValueError, match="no resource or group named 'nope'; known: vip, app, db, web"):
        why(snap, "nope")


def test_why_extra_fence_devices_count() -> None:
    snap = snapshot(GROUP, running=ALL_ON_N1)
    device = FenceDeviceSpec("ha-cf", "fence_lab", ())
    from dataclasses import replace

    assert why(replace(snap, extra_fence_devices=(device,)), "db").startswith("db runs on n1")


# --- merge -------------------------------------------------------------------------------------


def test_merge_by_id_replaces_same_ids_and_keeps_the_rest() -> None:
    current = parse_resources_crm(FENCING + GROUP + "property no-quorum-policy=freeze\n", "a", epoch=4)
    update = parse_resources_crm(
        "primitive db ocf:hacluster:Dummy params state=/tmp/x\nprimitive extra ocf:hacluster:Dummy\n"
        "property stonith-enabled=false\n",
        "b",
    )
    merged = merge_by_id(current, update)
    assert merged.epoch == 5
    assert [p.id for p in merged.primitives] == ["fence-all", "vip", "app", "db", "extra"]
    assert merged.primitive("db").params == (("state", "/tmp/x"),)
    assert dict(merged.properties) == {"no-quorum-policy": "freeze", "stonith-enabled": "false"}
    assert merged.groups == current.groups
    assert merged.check() == []


def test_resource_manager_snapshot_feeds_why() -> None:
    from hacluster.core.crm import ResourceManager, RmSettings

    config = parse_resources_crm(FENCING + "primitive db ocf:hacluster:Dummy\n", "t.crm", epoch=3)
    rm = ResourceManager(RmSettings(node=N1, nodes=(N1, N2)), config, now_ms=0)
    snap = rm.snapshot(now_ms=10)
    assert snap.members == frozenset({N1})
    assert snap.observed == {"db": {N1: LocalState.UNKNOWN}}
    assert (snap.config, snap.now_ms, snap.node, snap.has_quorum) == (config, 10, N1, True)
    assert why(snap, "db") == (
        "db is not running: it would go to n1, but there is no designated coordinator yet (n1 is not an "
        "active member), so there is no plan to start it"
    )


# --- one decision path: simulate holds what the cluster holds --------------------------------------

ONLY_N2 = "primitive fence-n2 stonith:fence_lab params pcmk_host_list=n2\n"


def test_simulate_starts_nothing_while_a_lost_node_cannot_be_fenced() -> None:
    """Regression: simulate's own copy of the DC's plan left out the hold on starts, so it
    predicted ``db`` starting while ``n1`` (which no device can fence) might still run it;
    the cluster starts nothing before the fence."""
    text = ONLY_N2 + "primitive vip ocf:hacluster:Dummy\nprimitive db ocf:hacluster:Dummy\n"
    snap = snapshot(text, running={"vip": "n1"})
    assert predict(snap, crash=["n1"]) == []
    crashed = replace(snap, members=frozenset({N2, N3}), unclean=frozenset({N1}))
    assert why(crashed, "db").startswith(
        "db is not running: waiting for n1 to be fenced: nothing starts before"
    )


def test_why_reports_a_resource_held_by_multiple_active_block() -> None:
    text = "primitive vip ocf:hacluster:Dummy meta multiple-active=block\nproperty stonith-enabled=false\n"
    snap = snapshot(text, states={("vip", "n1"): LocalState.STARTED, ("vip", "n2"): LocalState.STARTED})
    assert why(snap, "vip").startswith("vip active on n1, n2 at once and left alone (multiple-active=block)")
    assert predict(snap) == [], "left alone"


def test_why_names_resource_maintenance() -> None:
    text = "primitive vip ocf:hacluster:Dummy meta maintenance=true\nproperty stonith-enabled=false\n"
    assert "it is in maintenance (meta maintenance=true)" in why(snapshot(text), "vip")
    assert predict(snapshot(text)) == []


def test_simulate_keeps_a_stop_only_resource_stopped() -> None:
    text = (
        "primitive vip ocf:hacluster:Dummy meta multiple-active=stop_only\nproperty stonith-enabled=false\n"
    )
    snap = snapshot(text, states={("vip", "n1"): LocalState.STARTED, ("vip", "n2"): LocalState.STARTED})
    assert predict(snap) == [Stop("vip", N1), Stop("vip", N2)]


def test_simulate_of_an_order_blocked_anchor_starts_neither() -> None:
    text = (
        FENCING
        + "primitive a ocf:hacluster:Dummy\nprimitive b ocf:hacluster:Dummy\n"
        + "primitive c ocf:hacluster:Dummy meta target-role=Stopped\n"
        + "colocation a-with-b inf: a b\norder c-then-b Mandatory: c b\n"
    )
    assert predict(snapshot(text)) == []
    assert why(snapshot(text), "a").startswith("a is not running: no node can run it (n1: it must run with b")


def test_simulate_restarts_a_dependent_of_a_lost_prerequisite_after_it() -> None:
    """The dependent on a surviving node stops while the fence of the lost node waits, and
    starts again after its prerequisite has started elsewhere (as the cluster does)."""
    text = (
        FENCING
        + "primitive db ocf:hacluster:Dummy\nprimitive app ocf:hacluster:Dummy\n"
        + "order db-then-app Mandatory: db app\nlocation app-on-n2 app 100: n2\nlocation db-on-n1 db 100: n1\n"
    )
    actions = predict(snapshot(text, running={"db": "n1", "app": "n2"}), crash=["n1"])
    assert actions == [
        Fence(N1, "it left the membership without a clean stop"),
        Move("db", N1, N2),
        Restart("app", N2),
    ]
