"""config/cib_status.py: a CIB's status section read as our core's observed state."""

from __future__ import annotations

import pytest

from hacluster.config.cib_status import (
    EXEC_PENDING,
    EXEC_TIMEOUT,
    NodeStatus,
    OpRecord,
    instance_states,
    node_kind,
    placement_attributes,
    read_status,
    replay,
    snapshot_of,
)
from hacluster.config.cib_xml import parse_cib_xml
from hacluster.core.cib import INFINITY
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.errors import ConfigError

CIB = """<cib have-quorum="1"><configuration>
  <crm_config><cluster_property_set id="o">
    <nvpair id="o1" name="fencing-enabled" value="{fencing}"/>
  </cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
  <resources><primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"/></resources>
  <constraints/>
</configuration><status>{status}</status></cib>"""

UP = 'in_ccm="true" crmd="online" join="member" expected="member"'


def op(operation: str, call_id: int, rc: int, interval: int = 0, status: int = 0, key: str = "") -> str:
    return (
        f'<lrm_rsc_op id="ip_{operation}_{call_id}" operation="{operation}" call-id="{call_id}" '
        f'rc-code="{rc}" op-status="{status}" interval="{interval}" transition-key="{key}"/>'
    )


def node(name: str, attrs: str, ops: str = "", transient: str = "") -> str:
    return (
        f'<node_state id="{name[-1]}" uname="{name}" {attrs}>'
        f'<transient_attributes id="t"><instance_attributes id="i">{transient}</instance_attributes>'
        f'</transient_attributes><lrm id="l"><lrm_resources>'
        f'<lrm_resource id="ip" class="ocf" provider="heartbeat" type="IPaddr2">{ops}</lrm_resource>'
        "</lrm_resources></lrm></node_state>"
    )


def snapshot(status: str, fencing: str = "false") -> ClusterSnapshot:
    text = CIB.format(status=status, fencing=fencing)
    return snapshot_of(parse_cib_xml(text), read_status(text))


def test_a_started_resource_is_observed_started_and_the_others_stopped() -> None:
    view = snapshot(
        node("n1", UP, op("start", 3, 0) + op("monitor", 4, 0, 10000))
        + node("n2", UP, op("monitor", 2, 7))
        + node("n3", UP)
    )
    assert view.members == {"n1", "n2", "n3"}
    assert view.observed["ip"] == {"n1": LocalState.STARTED, "n2": LocalState.STOPPED}


def test_ops_replay_in_call_order_not_document_order() -> None:
    view = snapshot(node("n1", UP, op("stop", 9, 0) + op("start", 3, 0)) + node("n2", UP) + node("n3", UP))
    assert view.observed["ip"]["n1"] is LocalState.STOPPED


@pytest.mark.parametrize(
    ("ops", "state", "failcount"),
    [
        ([OpRecord("start", 0, 1, 1, 0)], LocalState.FAILED, INFINITY),
        ([OpRecord("start", 0, 1, 0, 0), OpRecord("monitor", 10000, 2, 1, 0)], LocalState.FAILED, 0),
        ([OpRecord("start", 0, 1, 0, 0), OpRecord("stop", 0, 2, 1, 0)], LocalState.BLOCKED, 0),
        ([OpRecord("start", 0, 1, 0, EXEC_PENDING)], LocalState.STARTING, 0),
        ([OpRecord("start", 0, 1, 0, EXEC_TIMEOUT)], LocalState.FAILED, INFINITY),
        ([OpRecord("monitor", 0, 1, 5, 0)], LocalState.STOPPED, INFINITY),
        ([OpRecord("monitor", 20000, 1, 7, 0, expected_rc=7)], LocalState.STOPPED, 0),
        ([OpRecord("monitor", 20000, 1, 0, 0, expected_rc=7)], LocalState.FAILED, 0),
    ],
    ids=[
        "start-fails",
        "monitor-fails",
        "stop-fails",
        "start-pending",
        "start-timeout",
        "not-installed",
        "stopped-role-monitor",
        "stopped-role-monitor-finds-it",
    ],
)
def test_replay_uses_the_lrm_table(ops: list[OpRecord], state: LocalState, failcount: int) -> None:
    result = replay(tuple(ops))
    assert result.state is state
    assert result.failcount == failcount


def test_rc_6_bans_everywhere_and_migrations_are_kept_as_data() -> None:
    assert replay((OpRecord("start", 0, 1, 6, 0),)).banned_everywhere
    migrated = replay((OpRecord("migrate_from", 0, 1, 0, 0),))
    assert migrated.state is LocalState.STARTED
    assert migrated.unreplayed == ("migrate_from",)


def test_fail_counts_are_summed_per_resource() -> None:
    transient = (
        '<nvpair id="a" name="fail-count-ip#monitor_10000" value="2"/>'
        '<nvpair id="b" name="fail-count-ip#start_0" value="1"/>'
    )
    view = snapshot(node("n1", UP, transient=transient) + node("n2", UP) + node("n3", UP))
    assert view.failcounts[("ip", NodeName("n1"))] == 3


def test_shutdown_and_standby_attributes() -> None:
    view = snapshot(
        node("n1", UP, transient='<nvpair id="s" name="shutdown" value="1718"/>')
        + node("n2", UP, transient='<nvpair id="s" name="standby" value="on"/>')
        + node("n3", UP)
    )
    assert view.leaving == {"n1"}
    assert view.config.is_node_standby("n2")


def test_node_state_named_by_id_only_and_timestamps() -> None:
    status = '<node_state id="2" in_ccm="1718744168" crmd="1718744168" join="member" expected="member"/>'
    view = snapshot(node("n1", UP) + status + node("n3", UP))
    assert "n2" in view.members


def test_unseen_and_lost_nodes_with_fencing_on() -> None:
    lost = 'in_ccm="false" crmd="offline" join="down" expected="member"'
    view = snapshot(node("n1", UP) + node("n2", lost), fencing="true")
    assert view.unclean == {"n2", "n3"}  # n3 was never seen: startup-fencing
    view = snapshot(node("n1", UP) + node("n2", lost), fencing="false")
    assert view.clean_exits == {"n2", "n3"}


@pytest.mark.parametrize(
    ("in_ccm", "crmd", "join", "expected", "fencing", "kind"),
    [
        (True, True, "member", "member", True, "member"),
        (True, True, "member", "down", True, "leaving"),
        (False, False, "down", "down", True, "down"),
        (False, False, "down", "member", True, "unclean"),
        (True, False, "member", "member", True, "unclean"),
        (True, True, "pending", "member", True, "leaving"),
        (True, True, "nack", "member", True, "unclean"),
        (False, False, "down", "member", False, "down"),
        (True, False, "member", "member", False, "unclean"),
        (True, True, "pending", "member", False, "leaving"),
    ],
)
def test_node_kind_follows_pacemaker(
    in_ccm: bool, crmd: bool, join: str, expected: str, fencing: bool, kind: str
) -> None:
    assert node_kind(NodeStatus(NodeName("n"), in_ccm, crmd, join, expected), fencing=fencing) == kind


def test_malformed_status_is_refused_with_where() -> None:
    bad = node("n1", UP, '<lrm_rsc_op id="x" operation="start" call-id="three" rc-code="0"/>')
    with pytest.raises(ConfigError, match=r"call-id='three' is not a number"):
        read_status(CIB.format(status=bad, fencing="false"))
    with pytest.raises(ConfigError, match="not <cib>"):
        read_status("<configuration/>")
    with pytest.raises(ConfigError, match="neither uname nor id"):
        read_status(CIB.format(status="<node_state/>", fencing="false"))


def test_pacemaker_3_fencing_enabled_is_read() -> None:
    on = parse_cib_xml(CIB.format(status="", fencing="true"))
    off = parse_cib_xml(CIB.format(status="", fencing="false"))
    assert on.is_stonith_enabled()
    assert not off.is_stonith_enabled()


def test_anonymous_clone_history_becomes_one_numbered_copy_per_node() -> None:
    n1, n2, n3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
    observed = {
        "d": {n1: LocalState.STARTED, n3: LocalState.STOPPED},
        "d:4": {n1: LocalState.FAILED, n2: LocalState.STARTED},
        "u:2": {n2: LocalState.STARTED},
        "u": {n3: LocalState.STARTED},
        "ip": {n1: LocalState.STARTED},
    }
    failcounts = {("d", n1): 2, ("d", n3): 1, ("u:2", n2): 1}
    states, counts = instance_states((n1, n2, n3), observed, failcounts, {"d": False, "u": True})
    assert states == {
        "d:0": {n1: LocalState.FAILED},  # the failed record wins over the running one
        "d:1": {n2: LocalState.STARTED},
        "u:2": {n2: LocalState.STARTED},
        "u:0": {n3: LocalState.STARTED},
        "ip": {n1: LocalState.STARTED},
    }
    assert counts == {("d:0", n1): 2, ("d", n3): 1, ("u:2", n2): 1}


def test_transient_attributes_reach_placement_and_an_instance_score_is_the_clones() -> None:
    n1, n2, n3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
    config = parse_cib_xml(CIB.format(fencing="false", status=""), "t.xml")
    transient = {
        n1: (("master-d:0", "10"), ("pingd", "100")),
        n2: (("master-d:1", "5"), ("master-d:3", "7"), ("master-u:1", "3")),
        n3: (("master-d", "2"), ("master-d:2", "9")),
    }
    history = {("d:3", n2): ()}
    out = placement_attributes(config, transient, history, {"d": False, "u": True})
    assert out[n1] == {"master-d:0": "10", "pingd": "100", "master-d": "10"}
    # two instance scores on n2: the one its history names; a unique clone's stay per instance
    assert out[n2]["master-d"] == "7"
    assert "master-u" not in out[n2]
    assert out[n3]["master-d"] == "2"  # the clone's own name wins
    ambiguous = placement_attributes(
        config, {n2: (("master-d:1", "5"), ("master-d:3", "7"))}, {}, {"d": False}
    )
    assert "master-d" not in ambiguous[n2]  # no score rather than a guess
