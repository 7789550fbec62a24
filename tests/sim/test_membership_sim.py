"""Scripted and randomised simulations of the membership core (see simcluster.py).

Each scenario runs with a few seeds; ``pytest tests/sim --sim-seed=N`` replays one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
from simcluster import LinkConditions, SimCluster

from hacluster.core.ids import NodeName
from hacluster.errors import DropReason

pytestmark = pytest.mark.sim

KEEPALIVE = 100
DEADTIME = 500


def _declared_dead_at(c: SimCluster, observer: str, peer: str, after: int) -> int:
    deaths = [t for t, _ in c.deaths(observer, peer) if t >= after]
    assert deaths, f"{observer} never declared {peer} dead after {after} ms (seed {c.seed})"
    return deaths[0]


def test_two_nodes_one_crashes(sim_seed: int) -> None:
    c = SimCluster(2, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    c.run_until(3000)
    c.crash("n01")
    c.run_until(4500)

    died = _declared_dead_at(c, "n00", "n01", 3000)
    # n01's last packet left at most one keepalive before the crash
    assert 3000 + DEADTIME - KEEPALIVE <= died <= 3000 + DEADTIME + c.max_delay_ms + 2
    [(_, change)] = c.deaths("n00", "n01")
    assert re.fullmatch(r"silent on bcast eth0 for 50\d ms > deadtime 500 ms", change.reason), change.reason
    assert not change.graceful
    [(_, notice)] = c.notices("n00", "NODE_DEAD")
    assert notice.text.startswith("n01 declared dead: silent on bcast eth0 for ")
    node = c.membership("n00")
    assert node.state == "active"
    c.check_counters()


@pytest.mark.parametrize("size", [3, 5])
def test_partition_and_heal(sim_seed: int, size: int) -> None:
    c = SimCluster(size, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    left, right = ["n00", "n01"], [f"n{i:02d}" for i in range(2, size)]
    c.at(5000, c.partition, left, right)
    c.at(20_000, c.heal)
    c.run_until(20_000)

    bound = DEADTIME + KEEPALIVE + c.max_delay_ms + 2
    for a, b in [(x, y) for x in left for y in right] + [(y, x) for x in left for y in right]:
        died = _declared_dead_at(c, a, b, 5000)
        assert 5000 + DEADTIME - KEEPALIVE <= died <= 5000 + bound, (a, b, died)
        assert c.view(a, b) == "dead"
    for side in (left, right):
        for a in side:
            assert all(c.view(a, b) == "active" for b in side if b != a)
            assert not [d for d in c.deaths(a) if d[1].node in side]

    took = c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    assert took <= KEEPALIVE + c.max_delay_ms + 5
    heard = c.notices("n00", "NODE_STATE", "heard again after being declared dead")
    assert {n.fields[0][1] for _, n in heard} == set(right)
    c.run_until(c.now + 3000)
    assert c.all_active()
    c.check_counters()


def test_asymmetric_partition(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    c.at(3000, c.cut, "n00", "n01")  # n01 stops hearing n00; everything else flows
    c.at(8000, c.heal)
    c.run_until(8000)

    assert c.view("n01", "n00") == "dead"
    died = _declared_dead_at(c, "n01", "n00", 3000)
    assert died <= 3000 + DEADTIME + KEEPALIVE + c.max_delay_ms + 2
    assert c.view("n00", "n01") == "active", "n00 still hears n01"
    assert c.view("n02", "n00") == "active"
    assert c.view("n02", "n01") == "active"
    assert not c.deaths("n00")
    assert not c.deaths("n02")
    c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    c.check_counters()


def test_one_of_two_links_down(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed, links=("bcast eth0", "serial /dev/ttyS0"))
    c.wait_all_active(c.initdead_ms)
    c.at(2000, c.link_down, "bcast eth0")
    c.at(6000, c.heal)
    c.run_until(6000)

    for a in c.names:
        assert not c.deaths(a), f"{a} declared a node dead although the serial link works"
        assert c.membership(a).state == "active"
        downs = [t for t, n in c.notices(a, "LINK_DOWN", "link bcast eth0 ") if t > 2000]
        assert len(downs) == len(c.names) - 1
        assert all(2000 + DEADTIME - KEEPALIVE <= t <= 2000 + DEADTIME + KEEPALIVE + 10 for t in downs)
        assert not c.notices(a, "LINK_DOWN", "link serial")
        stats = c.stats(a)
        for peer in stats.nodes:
            if peer.name != a:
                assert {ls.name: ls.state for ls in peer.links} == {
                    "bcast eth0": "dead",
                    "serial /dev/ttyS0": "up",
                }
    c.run_until(6000 + KEEPALIVE + 20)
    for a in c.names:
        ups = [t for t, _ in c.notices(a, "LINK_UP", "link bcast eth0 ") if t >= 6000]
        assert len(ups) == len(c.names) - 1
    c.check_counters()


def test_lossy_duplicating_reordering_network_no_false_death(sim_seed: int) -> None:
    lossy = LinkConditions(delay_min_ms=1, delay_max_ms=20, loss=0.2, duplicate=0.1, reorder=0.2)
    c = SimCluster(
        4,
        seed=sim_seed,
        links=("bcast eth0", "bcast eth1"),
        conditions={"bcast eth0": lossy, "bcast eth1": lossy},
    )
    c.wait_all_active(c.initdead_ms)
    c.run_until(10_000)

    for a in c.names:
        assert not c.deaths(a), f"false death at {a}: {c.deaths(a)}"
    assert c.all_active()
    requests = retransmissions = duplicates = 0
    for a in c.names:
        stats = c.stats(a)
        requests += stats.retransmit_requests_sent
        retransmissions += stats.retransmissions_sent
        duplicates += dict(stats.dropped)["duplicate"]
    assert requests > 0, "20% loss must cause retransmission requests"
    assert retransmissions > 0
    assert duplicates > 0
    c.check_counters()


def test_clock_step_forward_on_one_node(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    c.at(3000, c.step_clock, "n01", 5000)
    c.run_until(3001)

    # The stepped node saw 5 s of silence at once: it may call its peers dead, no one else may
    assert not c.deaths("n00")
    assert not c.deaths("n02")
    took = c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    assert took <= KEEPALIVE + c.max_delay_ms + 5
    c.run_until(6000)
    assert not c.deaths("n00")
    assert not c.deaths("n02")
    assert c.all_active()
    c.check_counters()


def test_pause_past_deadtime_then_resume(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    c.at(3000, c.pause, "n01", 1500)
    c.run_until(4499)
    for a in ("n00", "n02"):
        died = _declared_dead_at(c, a, "n01", 3000)
        assert died <= 3000 + DEADTIME + c.max_delay_ms + 2
        assert c.view(a, "n01") == "dead"

    took = c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    assert took <= KEEPALIVE + c.max_delay_ms + 5
    for a in ("n00", "n02"):
        heard = c.notices(a, "NODE_STATE", "heard again after being declared dead")
        assert [n.fields[0][1] for _, n in heard] == ["n01"]
        assert not c.notices(a, "NODE_RESTARTED"), "a pause is not a restart"
    c.check_counters()


def test_restart_and_replayed_old_generation(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    old_generation = c.node("n01").generation
    c.run_until(3000)
    old_status = next(p for _, p in reversed(c.node("n01").sent) if p.mtype == "status")
    c.restart("n01")
    c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    c.run_until(c.now + 500)

    for a in ("n00", "n02"):
        [(_, notice)] = c.notices(a, "NODE_RESTARTED")
        assert notice.text == f"n01 restarted: generation {old_generation} -> {old_generation + 1}"
        [n01] = [n for n in c.stats(a).nodes if n.name == "n01"]
        assert n01.generation == old_generation + 1
        assert not c.deaths(a), "a restart within deadtime is not a death"

    before = c.dropped("n00")["replay"]
    changes_before = len(c.node("n00").changes)
    c.inject("n00", old_status)
    c.run_until(c.now + 1)
    assert c.dropped("n00")["replay"] == before + 1
    assert len(c.node("n00").changes) == changes_before
    assert c.view("n00", "n01") == "active"
    c.run_until(c.now + 2000)
    assert c.all_active()
    c.check_counters(allowed=[DropReason.REPLAY])


def test_graceful_stop_is_seen_at_once(sim_seed: int) -> None:
    c = SimCluster(3, seed=sim_seed)
    c.wait_all_active(c.initdead_ms)
    c.run_until(3000)
    c.stop("n01")
    c.run_until(3000 + c.max_delay_ms + 1)
    for a in ("n00", "n02"):
        [(t, change)] = c.deaths(a, "n01")
        assert t - 3000 <= c.max_delay_ms < DEADTIME // 10
        assert "shutdone" in change.reason
        assert change.graceful
    c.run_until(8000)
    assert c.view("n00", "n02") == "active"
    assert c.view("n00", "n01") == "dead"
    c.restart("n01")
    c.wait_all_active(3 * KEEPALIVE + DEADTIME)
    c.check_counters()


def test_sixteen_nodes_come_up_within_initdead(sim_seed: int) -> None:
    c = SimCluster(16, seed=sim_seed, start_spread_ms=1000)
    took = c.wait_all_active(c.initdead_ms)
    assert took < c.initdead_ms
    c.run_until(c.now + 300)
    assert c.all_active()
    for a in c.names:
        assert not c.deaths(a)
    c.check_counters()


# --- random sweep -------------------------------------------------------------------------

LINK_SETS = (("bcast eth0",), ("bcast eth0", "serial /dev/ttyS0"), ("bcast eth0", "bcast eth1"))
FAULT_KINDS = ("crash", "partition", "asymmetric", "link", "pause", "clock", "clog", "stop", "replay")
HEAL_AT = 4000
SWEEP_SEEDS = {"test_random_faults_keep_safety_and_liveness": 2000}
"""Seeds in a suite run (conftest.py; ``--sim-seeds`` overrides)."""


def _random_cluster(seed: int) -> tuple[SimCluster, set[str]]:
    """A cluster with random size, links, network conditions and 1-3 faults, all healed at HEAL_AT."""
    rng = random.Random(seed)  # the scenario; the cluster draws its own from the same seed
    size = rng.randint(2, 5)
    links = rng.choice(LINK_SETS)
    conditions = {
        link: LinkConditions(
            delay_min_ms=1,
            delay_max_ms=rng.choice([2, 10, 30]),
            loss=rng.choice([0.0, 0.05, 0.2]),
            duplicate=rng.choice([0.0, 0.05]),
            reorder=rng.choice([0.0, 0.1]),
        )
        for link in links
    }
    c = SimCluster(size, seed=seed, links=links, conditions=conditions)
    kinds: set[str] = set()
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(FAULT_KINDS)
        kinds.add(kind)
        when = rng.randint(1000, 3000)
        duration = rng.randint(100, 1500)
        node = rng.choice(c.names)
        other = rng.choice([n for n in c.names if n != node])
        if kind == "crash":
            c.at(when, _if_alive(c, node, c.crash), node)
            c.at(when + duration, _if_down(c, node, c.start), node)
        elif kind == "stop":
            c.at(when, _if_alive(c, node, c.stop), node)
            c.at(when + duration, _if_down(c, node, c.start), node)
        elif kind == "partition":
            group = rng.sample(c.names, rng.randint(1, size - 1))
            c.at(when, c.partition, group)
            c.at(when + duration, c.heal)
        elif kind == "asymmetric":
            c.at(when, c.cut, node, other)
        elif kind == "link":
            c.at(when, c.link_down, rng.choice(links))
            c.at(when + duration, c.heal)
        elif kind == "pause":
            c.at(when, c.pause, node, duration)
        elif kind == "clock":
            c.at(when, c.step_clock, node, duration)
        elif kind == "clog":
            c.at(when, c.clog, node, other, duration)
        elif kind == "replay":  # the node dies; an attacker replays its last packets to keep it "alive"
            c.at(when, _if_alive(c, node, c.crash), node)
            for k in range(duration // 50):
                c.at(when + 50 * k, _replay_recent, c, node)
            c.at(when + duration, _if_down(c, node, c.start), node)
    c.at(HEAL_AT, c.heal)
    for name in c.names:
        c.at(HEAL_AT, _if_down(c, name, c.start), name)
    return c, kinds


def _replay_recent(c: SimCluster, name: str) -> None:
    c.faults.append((c.now, f"replay the last packets of {name} to every node"))
    for _, recorded in c.node(name).sent[-6:]:
        for dst in c.live():
            if dst != name:
                c.inject(dst, recorded, log=False)


def _if_alive(c: SimCluster, name: str, action: Callable[[str], None]) -> Callable[[str], None]:
    def run(_: str) -> None:
        if c.nodes[NodeName(name)].alive and c.nodes[NodeName(name)].paused_until is None:
            action(name)

    return run


def _if_down(c: SimCluster, name: str, action: Callable[[str], None]) -> Callable[[str], None]:
    def run(_: str) -> None:
        if not c.nodes[NodeName(name)].alive:
            action(name)

    return run


def test_random_faults_keep_safety_and_liveness(sweep_seed: int) -> None:
    c, kinds = _random_cluster(sweep_seed)
    c.run_until(HEAL_AT)  # safety and liveness are checked as it runs
    c.wait_all_active(3 * KEEPALIVE + DEADTIME + c.max_delay_ms)
    c.run_until(c.now + 500)
    assert c.all_active(), c.fail("not all active after healing")
    restarts = kinds & {"crash", "stop", "replay"}
    c.check_counters(allowed=[DropReason.REPLAY] if restarts else [])
