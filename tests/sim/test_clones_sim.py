"""Promotable clones over real ``NodeCore``s (``rmsim.py``): crashes, partitions and failed
demotes, with the promoted-max checker after every event (``RmSim.check_promoted``)."""

from __future__ import annotations

import random

import pytest
from rmsim import RmSim

pytestmark = pytest.mark.sim

PROMOTABLE = """
node n1 attributes master-db=10
node n2 attributes master-db=20
node n3 attributes master-db=5
primitive fence-lab stonith:fence_lab params pcmk_host_list="n1 n2 n3"
primitive db ocf:hacluster:Dummy \\
    op monitor interval=1s timeout=5s role=Promoted op monitor interval=1100ms timeout=5s role=Unpromoted
primitive vip ocf:hacluster:Dummy op monitor interval=1s timeout=5s
clone db-clone db meta promotable=true
colocation vip-with-primary inf: vip db-clone:Promoted
order promote-then-vip Mandatory: db-clone:promote vip
primitive d ocf:hacluster:Dummy op monitor interval=1s timeout=5s
clone d-clone d
"""


def promoted(sim: RmSim) -> list[str]:
    return sim.promoted_where("db-clone")


def test_the_best_score_is_promoted_and_the_vip_follows_a_crash(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed, PROMOTABLE)
    sim.settle()
    assert promoted(sim) == ["n2"]
    assert sim.where("vip") == ["n2"]
    assert sorted(n for i in range(3) for n in sim.where(f"d:{i}")) == ["n1", "n2", "n3"]
    sim.crash("n2")
    sim.run_until_true(lambda: bool(sim.fences), 5000, "n2 fenced")
    sim.settle()
    assert [target for _, _, target in sim.fences] == ["n2"]
    assert promoted(sim) == ["n1"]
    assert sim.where("vip") == ["n1"]
    sim.restart("n2")
    sim.settle()
    assert len(promoted(sim)) == 1
    assert sim.where("vip") == promoted(sim)


def test_a_partition_never_makes_two_promoted(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed, PROMOTABLE)
    sim.settle()
    sim.partition(["n2"], ["n1", "n3"])
    sim.run_for(3000)  # the checker runs after every event
    sim.heal()
    for name in sim.names:
        if sim.nodes[name].core is None:
            sim.restart(name)
    sim.settle(20_000)
    assert len(promoted(sim)) == 1


def test_a_failed_demote_is_stopped_before_another_is_promoted(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed, PROMOTABLE)
    sim.settle()
    old = promoted(sim)[0]
    sim.nodes[old].world.fail_demote["db:" + _instance_on(sim, old)] = 1
    sim.propose_config(old, PROMOTABLE.replace("master-db=20", "master-db=1"))
    sim.settle(10_000)
    assert promoted(sim) == ["n1"]


def _instance_on(sim: RmSim, node: str) -> str:
    return next(str(i) for i in range(3) if sim.where(f"db:{i}") == [node])


@pytest.mark.parametrize("sweep", range(12))
def test_random_faults_keep_promoted_max(sweep: int) -> None:
    seed = 9000 + sweep
    rng = random.Random(seed)
    sim = RmSim(3, seed, PROMOTABLE)
    sim.settle()
    for _ in range(4):
        fault = rng.choice(["crash", "partition", "fail_demote", "monitor"])
        live = sim.live()
        node = rng.choice(live)
        if fault == "crash" and len(live) > 1:
            sim.crash(node)
        elif fault == "partition":
            sim.partition([node], [n for n in sim.names if n != node])
            sim.run_for(rng.randint(2500, 4000))  # long enough for the majority to fence it
            sim.heal()
        elif fault == "fail_demote":
            for i in range(3):
                sim.nodes[node].world.fail_demote[f"db:{i}"] = 1
        else:
            for i in range(3):
                sim.fail_monitor(node, f"db:{i}", 1)
        sim.run_for(rng.randint(100, 3000))
        for name in sim.names:
            sim.nodes[name].world.fail_demote.clear()
            sim.nodes[name].world.monitor_rc.clear()
        for name in sim.names:
            if sim.nodes[name].core is None:
                sim.restart(name)
    sim.settle(20_000)
    assert len(promoted(sim)) == 1
