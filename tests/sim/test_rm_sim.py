"""Scripted scenarios and a seed sweep for the resource manager over simulated nodes and agents.

Every scenario runs real ``NodeCore``s (see ``rmsim.py``); the harness checks at-most-one
after every event, and ``settle`` checks liveness and the journal's order.  A failure names
its seed; ``pytest tests/sim/test_rm_sim.py --sim-seed=N`` replays it.
"""

from __future__ import annotations

import random

import pytest
from rmsim import DEFAULT_CONFIG, RmSim, SimFailure

from hacluster.core.cib import INFINITY
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState

pytestmark = pytest.mark.sim

GROUP = """
primitive vip ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive app ocf:hacluster:Dummy op monitor interval=1s timeout=5s
group g vip app
property stonith-enabled=false
"""


def holder(sim: RmSim, rsc: str) -> str:
    where = sim.where(rsc)
    assert len(where) == 1, (rsc, where)
    return where[0]


def other(sim: RmSim, node: str) -> str:
    return next(n for n in sim.live() if n != node)


def starts_after(sim: RmSim, time_ms: int, rsc: str | None = None) -> list[tuple[str, str]]:
    return [(e.node, e.resource) for e in sim.entries(rsc, "start") if e.time_ms > time_ms]


def test_two_nodes_crash_the_active_one(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed)
    sim.settle()
    old = holder(sim, "vip")
    assert holder(sim, "app") == old
    sim.crash(old)
    crashed_at = sim.now_ms
    sim.settle()
    new = holder(sim, "vip")
    assert new != old
    assert holder(sim, "app") == holder(sim, "db") == new
    took_ms = min(e.time_ms for e in sim.entries("vip", "start") if e.node == new) - crashed_at
    assert sim.deadtime_ms - sim.keepalive_ms - 10 <= took_ms <= sim.deadtime_ms + 2 * sim.keepalive_ms + 100


def test_three_nodes_crash_and_restart(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed)
    sim.settle()
    old = holder(sim, "vip")
    sim.crash(old)
    sim.run_for(100)
    sim.settle()
    after_crash = {r: holder(sim, r) for r in ("vip", "app", "db")}
    assert old not in after_crash.values()
    sim.restart(old)
    restarted_at = sim.now_ms
    sim.settle()
    assert old in sim.live()
    # nothing prefers the restarted node: every resource stays where it runs
    assert {r: holder(sim, r) for r in ("vip", "app", "db")} == after_crash
    assert starts_after(sim, restarted_at) == []


def test_monitor_failure_restarts_in_place_and_counts(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed)
    sim.settle()
    node = holder(sim, "vip")
    sim.kill(node, "vip")
    killed_at = sim.now_ms
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app") == node
    # recovered as Pacemaker does: dependents (app in the group, db by order) stop first,
    # vip restarts in place, then they start again after it
    db_node = holder(sim, "db")
    after = [(e.node, e.resource, e.action) for e in sim.journal if e.time_ms > killed_at]
    assert after == [
        (db_node, "db", "stop"),
        (node, "app", "stop"),
        (node, "vip", "stop"),
        (node, "vip", "start"),
        (node, "app", "start"),
        (db_node, "db", "start"),
    ]
    for n in sim.live():
        assert sim.core(n).rm.failcounts().get(("vip", NodeName(node))) == 1
    assert any("vip monitor failed, rc 7 'not running'" in x.text for _, _, x in sim.notices)


def test_migration_threshold_moves_after_two_failures(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP.replace("group g vip app", "group g vip app meta migration-threshold=2"))
    sim.settle()
    first = holder(sim, "vip")
    sim.kill(first, "app")
    sim.settle()
    assert holder(sim, "app") == holder(sim, "vip") == first
    sim.kill(first, "app")
    second_failure = sim.now_ms
    sim.settle()
    moved = holder(sim, "app")
    assert moved != first
    assert holder(sim, "vip") == moved
    # handed over in order: app stopped, vip stopped on the old node, then vip, app started
    moves = [(e.node, e.resource, e.action) for e in sim.journal if e.time_ms > second_failure]
    assert moves == [
        (first, "app", "stop"),
        (first, "vip", "stop"),
        (moved, "vip", "start"),
        (moved, "app", "start"),
    ]
    assert sim.core(moved).rm.failcounts()[("app", NodeName(first))] == 2
    assert sim.plan_of("app")[0] == moved


def test_start_failure_bans_the_node_and_runs_elsewhere(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP)
    sim.fail_next_start("n1", "vip", rc=1)
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app") == "n2"
    assert sim.core("n2").rm.failcounts()[("vip", NodeName("n1"))] == INFINITY
    failed = [e for e in sim.entries("vip", "start") if e.rc != 0]
    assert [(e.node, e.rc) for e in failed] == [("n1", 1)]
    # the half-started copy on n1 was stopped before n2 started it
    stop_n1 = next(e for e in sim.entries("vip", "stop") if e.node == "n1")
    start_n2 = next(e for e in sim.entries("vip", "start") if e.node == "n2")
    assert stop_n1.time_ms < start_n2.time_ms
    # and after a cleanup it may come back (stickiness 0: it stays where it runs)
    sim.cleanup("n2", "vip")
    sim.settle()
    assert sim.core("n1").rm.failcounts() == {}
    assert holder(sim, "vip") == "n2"


def test_rc6_stops_it_everywhere_with_a_reason(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed, DEFAULT_CONFIG)
    sim.fail_next_start("n2", "db", rc=6)
    sim.settle()
    assert sim.where("db") == []
    node, why = sim.plan_of("db")
    assert node is None
    assert "rc 6" in why
    assert "db is banned from every node" in why
    assert len(sim.entries("db", "start")) == 1
    assert holder(sim, "vip") == holder(sim, "app")  # the rest still runs


def test_stop_failure_blocks_and_never_starts_elsewhere(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP)
    sim.settle()
    old = holder(sim, "app")
    sim.fail_stop(old, "app", rc=1)
    sim.propose_config(old, GROUP + f"node {old} attributes standby=on\n")
    sim.run_for(3000)
    assert sim.where("app") == [old]
    assert sim.core(old).rm.local_state("app") is LocalState.BLOCKED
    node, why = sim.plan_of("app")
    assert node is None
    assert why == f"blocked: its stop failed on {old}; fence that node or run cleanup"
    assert [e.node for e in sim.entries("app", "start")] == [old]
    assert [e.node for e in sim.entries("vip", "start")] == [old]  # vip waits for app to stop
    assert sim.notices_with("RESOURCE_STOP", old)[-1][2].text.startswith("app stop failed, rc 1")
    # the operator fixes the agent and cleans up: now it moves
    sim.fail_stop(old, "app", None)
    sim.cleanup(old, "app")
    sim.settle()
    assert holder(sim, "app") == holder(sim, "vip") == other(sim, old)


def test_failure_timeout_expires(sim_seed: int) -> None:
    text = GROUP.replace("group g vip app", "group g vip app meta migration-threshold=1 failure-timeout=3s")
    sim = RmSim(2, sim_seed, text)
    sim.settle()
    first = holder(sim, "vip")
    sim.kill(first, "vip")
    sim.settle()
    second = holder(sim, "vip")
    assert second != first
    failed_at = max(t for t, n, x in sim.notices if x.code == "RESOURCE_MONITOR" and n == first)
    expired = sim.run_until_true(
        lambda: sim.notices_with("FAILCOUNT_EXPIRED", first) != [], 4000, "failure-timeout expiry"
    )
    assert failed_at + 3000 <= expired <= failed_at + 3000 + 50
    sim.settle()
    assert all(sim.core(n).rm.failcounts() == {} for n in sim.live())
    # it failed once on each node: without the expiry it could now run nowhere
    sim.kill(second, "vip")
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app") == first


@pytest.mark.parametrize(("stickiness", "comes_back"), [(0, True), (200, False)])
def test_standby_moves_and_online_per_stickiness(sim_seed: int, stickiness: int, comes_back: bool) -> None:
    text = GROUP + f"location prefer-n1 vip 100: n1\nrsc_defaults resource-stickiness={stickiness}\n"
    sim = RmSim(2, sim_seed, text)
    sim.settle()
    assert holder(sim, "vip") == "n1"
    sim.propose_config("n2", text + "node n1 attributes standby=on\n")
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app") == "n2"
    sim.propose_config("n1", text + "node n1 attributes standby=off\n")
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app") == ("n1" if comes_back else "n2")
    assert {sim.core(n).rm.config.epoch for n in sim.live()} == {2}


def test_config_change_on_a_non_dc_node_reaches_everyone(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed)
    sim.settle()
    assert sim.core("n3").rm.dc == "n1"
    sim.propose_config("n3", DEFAULT_CONFIG + "primitive extra ocf:hacluster:Dummy\n")
    sim.settle()
    assert {sim.core(n).rm.config.epoch for n in sim.live()} == {1}
    assert len({sim.core(n).rm.config.digest() for n in sim.live()}) == 1
    assert len(sim.where("extra")) == 1


def test_conflicting_proposals_with_the_same_epoch_converge(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed)
    sim.settle()
    one = sim.propose_config("n2", DEFAULT_CONFIG + "primitive one ocf:hacluster:Dummy\n")
    two = sim.propose_config("n3", DEFAULT_CONFIG + "primitive two ocf:hacluster:Dummy\n")
    assert one.epoch == two.epoch == 1
    sim.settle()
    digests = {sim.core(n).rm.config.digest() for n in sim.live()}
    winner = max((one, two), key=lambda c: c.digest())
    assert digests == {winner.digest()}
    loser_id = "two" if winner is one else "one"
    assert sim.where(loser_id) == []
    assert sim.notices_with("CONFIG_CONFLICT") != []


def test_graceful_stop_hands_the_group_over_first(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP)
    sim.settle()
    old = holder(sim, "vip")
    new = other(sim, old)
    asked_at = sim.now_ms
    sim.stop_node(old)
    sim.settle()
    assert old not in sim.live()
    assert holder(sim, "vip") == holder(sim, "app") == new
    moves = [(e.node, e.resource, e.action) for e in sim.journal if e.time_ms >= asked_at]
    assert moves == [(old, "app", "stop"), (old, "vip", "stop"), (new, "vip", "start"), (new, "app", "start")]
    goodbye = [c for t, n, c in sim.state_changes if n == new and c.node == old and c.new == "dead"]
    assert len(goodbye) == 1
    assert goodbye[0].graceful
    stopped_at = max(e.time_ms for e in sim.entries(action="stop") if e.node == old)
    left_at = next(t for t, n, c in sim.state_changes if n == new and c.node == old and c.new == "dead")
    assert stopped_at <= left_at
    # and it never waited a deadtime
    assert sim.now_ms - asked_at < sim.deadtime_ms


def test_restart_without_power_off_finds_the_resource_running(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP)
    sim.settle()
    old = holder(sim, "vip")
    settled_at = sim.now_ms
    sim.crash(old, power_off=False)
    sim.run_for(sim.deadtime_ms // 3)
    sim.restart(old)
    # strict: no second copy at any instant, not even during the restart
    for _ in range(3000 // 10):
        sim.run_for(10)
        assert sim.where("vip") == sim.where("app") == [old]
    sim.settle()
    assert starts_after(sim, settled_at) == []
    probes = [x for t, n, x in sim.notices if n == old and t > settled_at and x.code == "RESOURCE_MONITOR"]
    assert {x.text.split(" (")[0] for x in probes} == {"vip probe: running here", "app probe: running here"}


def test_resource_running_outside_the_cluster_is_found_and_kept_once(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed, GROUP, start_spread_ms=300)
    sim.place_running("n3", "vip")
    sim.place_running("n3", "app")
    sim.place_running("n2", "app")
    sim.heal_outside("n3", "vip")
    sim.heal_outside("n3", "app")
    sim.heal_outside("n2", "app")
    sim.settle()
    assert holder(sim, "vip") == holder(sim, "app")
    assert sim.entries("vip", "stop") or sim.entries("app", "stop")


@pytest.mark.parametrize("symmetric", [True, False])
def test_partition_without_stonith_heals_to_one_copy(sim_seed: int, symmetric: bool) -> None:
    sim = RmSim(3, sim_seed, GROUP)
    sim.settle()
    old = holder(sim, "vip")
    rest = [n for n in sim.names if n != old]
    sim.partition([old], rest, symmetric=symmetric)
    sim.run_for(3000)
    if symmetric:
        # the majority side has quorum and starts its own copy; the lone node has none and stops
        assert sim.where("vip") == [min(rest)]
    healed_at = sim.now_ms
    sim.heal()
    sim.settle()
    assert len(sim.where("vip")) == 1
    assert sim.now_ms - healed_at <= sim.split_grace_ms


def test_two_node_partition_double_active_then_resolved(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, GROUP)
    sim.settle()
    sim.partition(["n1"], ["n2"])
    sim.run_for(2000)
    assert sim.where("vip") == ["n1", "n2"]  # the documented risk of stonith-enabled=false
    healed_at = sim.now_ms
    sim.heal()
    sim.settle()
    vip = holder(sim, "vip")
    after = [(e.node, e.action) for e in sim.entries("vip") if e.time_ms > healed_at]
    # both stopped, then one started
    assert sorted(after[:2]) == [("n1", "stop"), ("n2", "stop")]
    assert after[2:] == [(vip, "start")]


def test_harness_catches_two_copies() -> None:
    sim = RmSim(2, 1, GROUP)
    sim.settle()
    sim.nodes[other(sim, holder(sim, "vip"))].world.running.add("vip")
    with pytest.raises(SimFailure, match="vip is active on"):
        sim.check_safety()


# --- seed sweep ------------------------------------------------------------------------------

SWEEP_CONFIG = """
primitive vip ocf:hacluster:Dummy op monitor interval=500ms timeout=5s
primitive app ocf:hacluster:Dummy op monitor interval=500ms timeout=5s
group g vip app
primitive db ocf:hacluster:Dummy op monitor interval=500ms timeout=5s
primitive solo ocf:hacluster:Dummy op monitor interval=500ms timeout=5s
order app-before-db Mandatory: g db
colocation db-with-g inf: db g
property stonith-enabled=false
"""


SWEEP_SEEDS = {"test_random_faults_keep_safety_and_liveness": 300}
"""Seeds per default sweep (conftest.py); ``--sim-seeds`` and ``--sim-seed`` override."""


def test_random_faults_keep_safety_and_liveness(sweep_seed: int) -> None:
    rng = random.Random(sweep_seed * 7919 + 1)
    size = rng.choice((2, 3, 3, 4, 5))
    sim = RmSim(
        size,
        sweep_seed,
        SWEEP_CONFIG,
        loss=rng.choice((0.0, 0.0, 0.05, 0.15)),
        duplicate=rng.choice((0.0, 0.05)),
        delay_ms=(1, rng.choice((5, 30))),
        start_spread_ms=rng.choice((0, 400)),
    )
    sim.settle(6000)
    actions = ("crash", "restart", "quick-restart", "stop", "kill", "kill", "monitor-error", "wait")
    stopping: set[str] = set()  # asked to stop gracefully: not to be counted on
    for _ in range(rng.randint(2, 6)):
        down = [n for n in sim.names if n not in sim.live()]
        stopping -= set(down)
        live = [n for n in sim.live() if n not in stopping]
        action = rng.choice(actions)
        node = rng.choice(live) if live else ""
        running = sorted(sim.nodes[node].world.running) if node else []
        if action == "crash" and len(live) > 1:
            sim.crash(node)
        elif action == "restart" and down:
            sim.restart(rng.choice(down))
        elif action == "quick-restart" and node:
            # the daemon dies and is back well within deadtime: its resources kept running
            sim.crash(node, power_off=False, expect_split=False)
            sim.run_for(rng.randint(1, sim.deadtime_ms // 3))
            sim.restart(node)
        elif action == "stop" and len(live) > 1:
            sim.stop_node(node)
            stopping.add(node)
        elif action == "kill" and running:
            sim.kill(node, rng.choice(running))
        elif action == "monitor-error" and running:
            rsc = rng.choice(running)
            sim.fail_monitor(node, rsc, rng.choice((1, 7)))
            sim.run_for(rng.randint(0, 1500))
            sim.fail_monitor(node, rsc, None)
        sim.run_for(rng.randint(0, 1500))
    sim.settle(sim.deadtime_ms + 3000 + (3000 if sim.loss else 0))
    quorum = size <= 2 or 2 * len(sim.live()) > size
    for rsc in ("vip", "app", "db", "solo"):
        if len(sim.where(rsc)) != (1 if quorum else 0):
            raise sim.failure(f"{rsc} runs on {sim.where(rsc)} with{'' if quorum else 'out'} quorum")
    if quorum:
        assert holder(sim, "vip") == holder(sim, "app") == holder(sim, "db")
