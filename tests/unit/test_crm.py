"""The resource manager's coordinator, driven by hand with plain values (no network, no mocks).

``Cluster`` wires a few ``ResourceManager``s the way ``NodeCore`` and membership would: each
broadcast reaches every other node as a ``MessageDelivered``, each ``RunAgent`` is answered
by an agent that succeeds (a start makes the resource run on that node), each ``Fence``
powers its target off.  Tests feed membership changes and operator requests and look at
what every node then does and says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import ResourceManager, RmSettings
from hacluster.core.effects import (
    AgentFinished,
    Broadcast,
    ConfigAdopted,
    Fence,
    FenceFinished,
    MessageDelivered,
    NodeStateChanged,
    Notice,
    RmEffect,
    RunAgent,
)
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.rm_messages import CONFIG_MSG, ConfigMessage, encode
from hacluster.errors import ConfigError

N1, N2, N3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
FENCING = "primitive fence-lab stonith:fence_lab\n"
TWO = "primitive vip ocf:hacluster:Dummy op monitor interval=1s\nprimitive db ocf:hacluster:Dummy\n"


class Cluster:
    def __init__(self, text: str, names: Iterable[NodeName] = (N1, N2), *, refresh_ms: int = 1000) -> None:
        self.names = tuple(names)
        self.config = parse_resources_crm(text, "t.crm", epoch=1)
        self.now = 0
        self.rms = {
            n: ResourceManager(
                RmSettings(node=n, nodes=self.names, refresh_ms=refresh_ms, generation=1), self.config, 0
            )
            for n in self.names
        }
        self.running: dict[NodeName, set[str]] = {n: set() for n in self.names}
        self.up: set[NodeName] = set()
        self.said: list[tuple[NodeName, RmEffect]] = []
        self.fail_stops: set[tuple[str, NodeName]] = set()
        self._agents: list[tuple[NodeName, RunAgent]] = []
        self._fences: list[tuple[NodeName, Fence]] = []

    # --- driving ---------------------------------------------------------------------------

    def join(self, *nodes: NodeName) -> None:
        """``nodes`` become active members, each seeing the others."""
        self.up |= set(nodes)
        members = tuple(sorted(self.up))
        for node in sorted(self.up):
            for other in nodes if node not in nodes else members:
                self.feed(
                    node, self.rms[node].on_membership(self._change(other, "active"), members, self.now)
                )

    def lose(self, node: NodeName, *, graceful: bool = False) -> None:
        """``node`` is declared dead by every other member (without a goodbye unless graceful)."""
        self.up.discard(node)
        members = tuple(sorted(self.up))
        for other in sorted(self.up):
            change = NodeStateChanged(node, "active", "dead", "silent", graceful=graceful)
            self.feed(other, self.rms[other].on_membership(change, members, self.now, 1))

    def settle(self, rounds: int = 200) -> None:
        """Deliver messages, finish agents and fences, tick refreshes, until nothing is left."""
        for _ in range(rounds):
            if not self._agents and not self._fences:
                self.now += 1
                for node in sorted(self.up):
                    self.feed(node, self.rms[node].step(self.now))
                if not self._agents and not self._fences:
                    return
            agents, self._agents = self._agents, []
            for node, request in agents:
                self.now += 1
                self._finish(node, request)
            fences, self._fences = self._fences, []
            for node, fence in fences:
                self.now += 1
                self.running[fence.target] = set()
                result = FenceFinished(fence.request_id, fence.target, fence.device.id, True, 5)
                self.feed(node, self.rms[node].on_fence_finished(result, self.now))
        raise AssertionError("the cluster did not settle")

    def wait(self, ms: int) -> None:
        """Let ``ms`` pass with a step on every member at the end."""
        self.now += ms
        for node in sorted(self.up):
            self.feed(node, self.rms[node].step(self.now))
        self.settle()

    def feed(self, node: NodeName, effects: list[RmEffect]) -> None:
        queue = [(node, e) for e in effects]
        while queue:
            src, effect = queue.pop(0)
            self.said.append((src, effect))
            if isinstance(effect, Broadcast):
                message = MessageDelivered(src, effect.mtype, effect.pairs)
                for other in sorted(self.up - {src}):
                    queue += [(other, e) for e in self.rms[other].on_message(message, self.now)]
            elif isinstance(effect, RunAgent):
                if effect.action == "start":
                    self.running[src].add(effect.resource)
                self._agents.append((src, effect))
            elif isinstance(effect, Fence):
                self._fences.append((src, effect))

    def _finish(self, node: NodeName, request: RunAgent) -> None:
        if node not in self.up:
            return
        rc = 0
        if request.action == "stop":
            if (request.resource, node) in self.fail_stops:
                rc = 1
            else:
                self.running[node].discard(request.resource)
        elif request.action == "monitor":
            rc = 0 if request.resource in self.running[node] else 7
        result = AgentFinished(request.call_id, request.resource, request.action, request.interval_ms, rc)
        self.feed(node, self.rms[node].on_agent_finished(result, self.now))

    def _change(self, node: NodeName, new: str) -> NodeStateChanged:
        return NodeStateChanged(node, "up", new, "heard")

    # --- looking ---------------------------------------------------------------------------

    def where(self, rsc: str) -> list[NodeName]:
        return sorted(n for n, running in self.running.items() if rsc in running)

    def notices(self, code: str, node: NodeName | None = None) -> list[str]:
        return [
            e.text for n, e in self.said if isinstance(e, Notice) and e.code == code and node in (None, n)
        ]

    def effects(self, kind: type, node: NodeName | None = None) -> list[object]:
        return [e for n, e in self.said if isinstance(e, kind) and node in (None, n)]


def started(text: str = TWO, names: Iterable[NodeName] = (N1, N2)) -> Cluster:
    cluster = Cluster(text, names)
    cluster.join(*cluster.names)
    cluster.settle()
    return cluster


# --- election and planning ---------------------------------------------------------------------------


def test_no_coordinator_until_this_node_is_an_active_member() -> None:
    cluster = Cluster(TWO + "property stonith-enabled=false\n")
    rm = cluster.rms[N2]
    cluster.feed(N2, rm.on_membership(cluster._change(N1, "active"), (N1,), 0))
    assert rm.dc is None
    assert cluster.notices("DC_CHANGED") == []
    actions = {e.action for e in cluster.effects(RunAgent, N2)}  # type: ignore[attr-defined]
    assert actions == {"monitor"}, "it probes what it has, and starts nothing from a partial view"


def test_the_lowest_named_member_plans_once_everyone_has_probed() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    assert {cluster.rms[n].dc for n in cluster.names} == {N1}
    assert cluster.notices("DC_CHANGED", N2) == ["designated coordinator is now n1 (lowest-named member)"]
    probes = [e for e in cluster.effects(RunAgent) if e.action == "monitor" and e.interval_ms == 0]  # type: ignore[attr-defined]
    assert len(probes) == 4, "every node probes every resource before anything starts"
    first_start = next(
        i for i, (_, e) in enumerate(cluster.said) if isinstance(e, RunAgent) and e.action == "start"
    )
    last_probe = max(
        i
        for i, (_, e) in enumerate(cluster.said)
        if isinstance(e, RunAgent) and e.action == "monitor" and not e.interval_ms
    )
    assert last_probe < first_start
    assert (cluster.where("vip"), cluster.where("db")) == ([N1], [N2]), "spread by load"
    plan = cluster.rms[N2].plan
    assert plan is not None
    assert plan.assignment == {"vip": N1, "db": N2}, "the follower took the DC's plan"


def test_a_follower_ignores_a_plan_from_a_node_that_is_not_its_dc() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    rm = cluster.rms[N1]
    before = rm.plan
    assert before is not None
    plan_broadcasts = [e for e in cluster.effects(Broadcast, N1) if e.mtype == "hac_plan"]  # type: ignore[attr-defined]
    forged = MessageDelivered(N2, "hac_plan", plan_broadcasts[-1].pairs)  # type: ignore[attr-defined]
    rm.on_message(forged, cluster.now)
    assert rm.plan is before


def test_a_report_older_than_the_last_one_applied_is_ignored() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    reports = [e for e in cluster.effects(Broadcast, N2) if e.mtype == "hac_state"]  # type: ignore[attr-defined]
    rm = cluster.rms[N1]
    before = rm.observed()
    rm.on_message(MessageDelivered(N2, "hac_state", reports[0].pairs), cluster.now)  # type: ignore[attr-defined]
    assert rm.observed() == before, "the first report (db unknown there) is older than the last one"


# --- configuration -----------------------------------------------------------------------------------


def _config(text: str, epoch: int) -> ClusterConfig:
    return parse_resources_crm(text, "t.crm", epoch=epoch)


def test_a_proposed_configuration_reaches_every_member_once() -> None:
    text = TWO + "property stonith-enabled=false\n"
    cluster = started(text)
    new = _config(text + "primitive app ocf:hacluster:Dummy\n", 2)
    cluster.feed(N2, cluster.rms[N2].propose_config(new, cluster.now))
    cluster.settle()
    assert {rm.config.epoch for rm in cluster.rms.values()} == {2}
    adopted = [e for e in cluster.effects(ConfigAdopted, N1)]
    assert len(adopted) == 1
    assert cluster.where("app") != []


def test_the_same_configuration_received_twice_is_adopted_once_without_a_conflict() -> None:
    """Regression: the received digest was compared in full with our 16-character prefix, so
    a copy of the configuration already in force counted as a conflicting one and was adopted
    again with a CONFIG_CONFLICT warning."""
    text = TWO + "property stonith-enabled=false\n"
    cluster = started(text)
    new = _config(text + "primitive app ocf:hacluster:Dummy\n", 2)
    copy = encode(ConfigMessage(new))
    rm = cluster.rms[N2]
    first = rm.on_message(MessageDelivered(N1, CONFIG_MSG, copy.pairs), cluster.now)
    again = rm.on_message(MessageDelivered(N3, CONFIG_MSG, copy.pairs), cluster.now)
    assert [e for e in first if isinstance(e, ConfigAdopted)] != []
    assert [e for e in again if isinstance(e, ConfigAdopted)] == []
    assert [e for e in again if isinstance(e, Notice) and e.code == "CONFIG_CONFLICT"] == []


def test_two_edits_with_one_epoch_resolve_the_same_way_everywhere() -> None:
    text = TWO + "property stonith-enabled=false\n"
    cluster = started(text)
    one = _config(text + "primitive one ocf:hacluster:Dummy\n", 2)
    two = _config(text + "primitive two ocf:hacluster:Dummy\n", 2)
    said_one = cluster.rms[N1].propose_config(one, cluster.now)  # at the same time: each on its own
    said_two = cluster.rms[N2].propose_config(two, cluster.now)
    cluster.feed(N1, said_one)
    cluster.feed(N2, said_two)
    cluster.settle()
    winner = max((one, two), key=lambda c: c.digest())
    assert {rm.config.digest() for rm in cluster.rms.values()} == {winner.digest()}
    assert len(cluster.notices("CONFIG_CONFLICT")) == 1


def test_a_member_on_an_older_version_is_sent_ours() -> None:
    text = TWO + "property stonith-enabled=false\n"
    cluster = started(text)
    rm = cluster.rms[N1]
    rm.propose_config(_config(text + "primitive app ocf:hacluster:Dummy\n", 2), cluster.now)
    stale_report = [e for e in cluster.effects(Broadcast, N2) if e.mtype == "hac_state"][-1]  # type: ignore[attr-defined]
    pairs = tuple((k, "1:999") if k == "sq" else (k, v) for k, v in stale_report.pairs)  # type: ignore[attr-defined]
    out = rm.on_message(MessageDelivered(N2, "hac_state", pairs), cluster.now + 1)
    again = rm.on_message(MessageDelivered(N2, "hac_state", pairs), cluster.now + 2)
    assert [e.mtype for e in out if isinstance(e, Broadcast)].count(CONFIG_MSG) == 1
    assert [e.mtype for e in again if isinstance(e, Broadcast)].count(CONFIG_MSG) == 0, (
        "at most once a second"
    )


# --- local reconciliation -----------------------------------------------------------------------------


def test_unmanaged_with_any_false_word_is_left_alone() -> None:
    """Regression: ``is-managed=n`` passed the check as false, yet the resource was managed."""
    cluster = started(TWO + "property stonith-enabled=false\nrsc_defaults is-managed=n\n")
    assert cluster.where("vip") == []
    assert cluster.where("db") == []
    assert [e for e in cluster.effects(RunAgent) if e.action == "start"] == []  # type: ignore[attr-defined]


def test_migration_threshold_zero_disables_the_threshold_instead_of_banning_everywhere() -> None:
    """Regression: a fail count of 0 ``>= 0`` kept the resource from starting on every node."""
    cluster = started(
        "primitive vip ocf:hacluster:Dummy meta migration-threshold=0\nproperty stonith-enabled=false\n"
    )
    assert cluster.where("vip") == [N1]


def test_a_resource_in_maintenance_is_neither_started_nor_monitored() -> None:
    text = "primitive vip ocf:hacluster:Dummy op monitor interval=1s\nproperty stonith-enabled=false\n"
    cluster = started(text)
    assert cluster.where("vip") == [N1]
    monitors = len([e for e in cluster.effects(RunAgent) if e.interval_ms])  # type: ignore[attr-defined]
    new = _config(
        "primitive vip ocf:hacluster:Dummy op monitor interval=1s meta maintenance=true\n"
        "property stonith-enabled=false\nnode n1 attributes standby=on\n",
        2,
    )
    cluster.feed(N1, cluster.rms[N1].propose_config(new, cluster.now))
    cluster.wait(5000)
    assert cluster.where("vip") == [N1], "standby moves nothing that is in maintenance"
    assert len([e for e in cluster.effects(RunAgent) if e.interval_ms]) == monitors, "and it is not monitored"  # type: ignore[attr-defined]
    assert cluster.rms[N1].next_deadline_ms() > cluster.now + 500, "no monitor deadline keeps waking it"


def test_a_frozen_node_stops_everything_and_starts_nothing_for_a_while() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    rm = cluster.rms[N1]
    cluster.feed(N1, rm.on_resumed(5000, cluster.now))
    cluster.settle()
    assert cluster.where("vip") == []
    assert cluster.notices("NODE_WAS_FROZEN") != []
    cluster.wait(2500)
    assert cluster.where("vip") != [], "after twice the refresh interval it follows plans again"


def test_a_leaving_node_hands_everything_over_before_it_is_done() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    rm = cluster.rms[N2]
    cluster.feed(N2, rm.begin_shutdown(cluster.now))
    cluster.settle()
    assert rm.shutdown_complete
    assert rm.left_clean
    assert cluster.where("db") == [N1]
    assert cluster.where("vip") == [N1]


# --- fencing -----------------------------------------------------------------------------------------


def test_the_dc_fences_a_node_lost_without_a_goodbye_before_its_resources_move() -> None:
    cluster = started(FENCING + TWO)
    assert cluster.where("db") == [N2]
    cluster.lose(N2)
    assert cluster.where("db") == [N2], "not before the fence"
    cluster.wait(1000)
    fences = cluster.effects(Fence, N1)
    assert [f.target for f in fences] == [N2]  # type: ignore[attr-defined]
    assert cluster.where("db") == [N1]


def test_a_goodbye_is_trusted_and_nothing_is_fenced() -> None:
    cluster = started(FENCING + TWO)
    cluster.feed(N2, cluster.rms[N2].begin_shutdown(cluster.now))
    cluster.settle()
    cluster.lose(N2, graceful=True)
    cluster.wait(1000)
    assert cluster.effects(Fence) == []


def test_a_dc_whose_own_stop_failed_asks_another_member_to_fence_it() -> None:
    text = FENCING + "primitive vip ocf:hacluster:Dummy\n"
    cluster = started(text)
    assert cluster.where("vip") == [N1]
    cluster.fail_stops.add(("vip", N1))
    moved = _config(text + "location on-n2 vip 100: n2\n", 2)
    cluster.feed(N1, cluster.rms[N1].propose_config(moved, cluster.now))
    cluster.settle()
    assert cluster.rms[N1].local_state("vip") is LocalState.BLOCKED
    requests = [e for e in cluster.effects(Broadcast, N1) if e.mtype == "hac_fence_req"]  # type: ignore[attr-defined]
    assert requests, "the DC cannot fence itself"
    assert dict(requests[0].pairs)["executor"] == "n2"  # type: ignore[attr-defined]
    cluster.wait(1000)
    assert [f.target for f in cluster.effects(Fence, N2)] == [N1]  # type: ignore[attr-defined]


def _three(policy: str) -> Cluster:
    text = (
        FENCING
        + f"primitive vip ocf:hacluster:Dummy\nlocation on-n3 vip 100: n3\nproperty no-quorum-policy={policy}\n"
    )
    return started(text, (N1, N2, N3))


def test_without_quorum_nothing_is_fenced() -> None:
    cluster = _three("stop")
    assert cluster.where("vip") == [N3]
    cluster.lose(N3)
    cluster.lose(N2)
    cluster.wait(5000)
    assert cluster.effects(Fence) == []
    assert cluster.where("vip") == [N3], "stays unrecovered: it may still run there"


def test_ignoring_quorum_fences_the_lost_nodes_before_taking_over() -> None:
    """Regression: with no-quorum-policy=ignore on three nodes, losing two left the survivor
    without quorum, so it never fenced them and never recovered their resources."""
    cluster = _three("ignore")
    cluster.lose(N3)
    cluster.lose(N2)
    assert cluster.where("vip") == [N3]
    cluster.wait(5000)
    assert sorted(f.target for f in cluster.effects(Fence, N1)) == [N2, N3]  # type: ignore[attr-defined]
    assert cluster.where("vip") == [N1]
    assert LocalState.STARTED is cluster.rms[N1].local_state("vip")


def test_a_partition_that_ignores_quorum_fences_later_than_a_quorate_one() -> None:
    quorate = started(FENCING + TWO, (N1, N2, N3))
    quorate.lose(N3)
    alone = _three("ignore")
    alone.lose(N3)
    alone.lose(N2)
    waits = {
        name: {t: a.not_before_ms - a.start_ms for t, a in c.rms[N1].fencing.attempts._attempts.items()}
        for name, c in (("quorate", quorate), ("alone", alone))
    }
    assert waits["quorate"] == {N3: 200}
    assert waits["alone"] == {N3: 200, N2: 400}, "n2 was lost after quorum: twice the delay"


# --- multiple-active ----------------------------------------------------------------------------------


def _double(policy: str) -> Cluster:
    text = f"primitive vip ocf:hacluster:Dummy meta multiple-active={policy}\nlocation on-n1 vip 10: n1\n"
    cluster = Cluster(text + "property stonith-enabled=false\n")
    cluster.running[N2].add("vip")  # started behind the cluster's back
    cluster.running[N1].add("vip")
    cluster.join(N1, N2)
    cluster.settle()
    return cluster


def test_multiple_active_stop_start_stops_both_then_starts_one() -> None:
    cluster = _double("stop_start")
    assert cluster.where("vip") == [N1]
    assert [e.action for e in cluster.effects(RunAgent) if e.action != "monitor"] == ["stop", "stop", "start"]  # type: ignore[attr-defined]


def test_multiple_active_stop_only_stops_both_and_keeps_it_stopped() -> None:
    cluster = _double("stop_only")
    assert cluster.where("vip") == []
    assert {rm.config.target_role_of("vip") for rm in cluster.rms.values()} == {"Stopped"}
    assert "multiple-active=stop_only" in cluster.notices("MULTIPLE_ACTIVE_STOPPED")[0]


def test_multiple_active_stop_unexpected_keeps_the_copy_where_it_belongs() -> None:
    cluster = _double("stop_unexpected")
    assert cluster.where("vip") == [N1]
    assert [e.action for e in cluster.effects(RunAgent, N1) if e.action != "monitor"] == []  # type: ignore[attr-defined]


def test_multiple_active_block_leaves_both_alone_until_one_is_gone() -> None:
    cluster = _double("block")
    assert cluster.where("vip") == [N1, N2]
    assert [e for e in cluster.effects(RunAgent) if e.action != "monitor"] == []  # type: ignore[attr-defined]
    cluster.running[N2].discard("vip")  # the operator stops one copy by hand
    cluster.feed(N2, cluster.rms[N2].cleanup("vip", "n2", cluster.now))
    cluster.settle()
    assert cluster.where("vip") == [N1]
    plan = cluster.rms[N1].plan
    assert plan is not None
    assert plan.held == frozenset()
    assert plan.assignment["vip"] == N1


# --- no-quorum-policy=suicide ---------------------------------------------------------------------


def test_no_quorum_policy_suicide_is_refused_with_file_and_line() -> None:
    """Regression: it was accepted and acted like ignore. hacluster cannot fence itself yet."""
    with pytest.raises(ConfigError) as caught:
        parse_resources_crm(
            "primitive vip ocf:hacluster:Dummy\nproperty no-quorum-policy=Suicide\n",
            "/etc/ha.d/resources.crm",
        )
    (problem,) = caught.value.problems
    assert problem.startswith(
        "/etc/ha.d/resources.crm:2: property no-quorum-policy: value 'Suicide' is not supported"
    )
    assert "use stop" in problem


def test_a_peer_configuration_with_suicide_is_rejected_and_nothing_changes() -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    rm = cluster.rms[N2]
    bad = ClusterConfig.from_json(
        cluster.config.to_json().replace('"properties":[', '"properties":[["no-quorum-policy","suicide"],')
    )
    bad = dataclasses.replace(bad, epoch=9)
    out = rm.on_message(MessageDelivered(N1, CONFIG_MSG, encode(ConfigMessage(bad)).pairs), cluster.now)
    assert rm.config.epoch == 1
    assert [e.code for e in out if isinstance(e, Notice)] == ["CONFIG_REJECTED"]


def _due_monitor(cluster: Cluster, node: NodeName) -> RunAgent:
    cluster.now += 1000
    effects = cluster.rms[node].step(cluster.now)
    monitors = [e for e in effects if isinstance(e, RunAgent) and e.action == "monitor"]
    assert len(monitors) == 1, effects
    return monitors[0]


@pytest.mark.parametrize(("rc", "replans"), [(0, False), (7, True)])
def test_only_a_monitor_that_changes_what_we_knew_makes_the_dc_plan_again(rc: int, replans: bool) -> None:
    cluster = started(TWO + "property stonith-enabled=false\n")
    dc = cluster.rms[N1]  # the lowest name; a plan is made only there
    monitor = _due_monitor(cluster, N1) if "vip" in cluster.running[N1] else None
    holder = N1 if monitor is not None else N2
    monitor = monitor or _due_monitor(cluster, N2)
    plans: list[int] = []
    compute = dc._compute_plan

    def counted(*args: object) -> None:
        plans.append(1)
        compute(*args)  # type: ignore[arg-type]

    dc._compute_plan = counted  # type: ignore[method-assign,assignment]
    result = AgentFinished(monitor.call_id, "vip", "monitor", monitor.interval_ms, rc)
    cluster.feed(holder, cluster.rms[holder].on_agent_finished(result, cluster.now + 1))
    cluster.settle()
    assert bool(plans) is replans
