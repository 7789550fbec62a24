"""A node whose stop failed must not say goodbye when it leaves.

A goodbye (``shutdone``) tells peers the node runs nothing, so they take its resources over
without fencing it.  When a stop failed there, the resource may still run: the node must
fall silent instead, so that peers declare it dead uncleanly (and, with fencing on, fence it
before anything moves).
"""

from __future__ import annotations

import pytest
from rmsim import RmSim

pytestmark = pytest.mark.sim

CONFIG = """
primitive web ocf:hacluster:Dummy op monitor interval=1s timeout=5s
property stonith-enabled=false
"""


def _holder(sim: RmSim) -> str:
    sim.run_until_true(lambda: len(sim.where("web")) == 1, 10_000, "web started")
    return sim.where("web")[0]


def test_leaving_with_a_failed_stop_is_not_a_clean_goodbye() -> None:
    sim = RmSim(nodes=2, seed=7, config_text=CONFIG)
    holder = _holder(sim)
    other = next(n for n in ("n1", "n2") if n != holder)
    sim.fail_stop(holder, "web")
    sim.stop_node(holder)
    # Well within the dead time: a goodbye would have made the peer mark it dead already.
    sim.run_for(300)
    assert sim.notices_with("LEAVE_INCOMPLETE", holder)
    assert sim.core(other).membership.peer_state(holder) == "active"
    deaths = [
        c
        for _, observer, c in sim.state_changes
        if observer == other and c.node == holder and c.new == "dead"
    ]
    assert deaths == [], "a node with a failed stop said goodbye"


def test_leaving_after_clean_stops_is_a_goodbye() -> None:
    sim = RmSim(nodes=2, seed=8, config_text=CONFIG)
    holder = _holder(sim)
    other = next(n for n in ("n1", "n2") if n != holder)
    sim.stop_node(holder)
    sim.run_for(3_000)
    deaths = [
        c
        for _, observer, c in sim.state_changes
        if observer == other and c.node == holder and c.new == "dead"
    ]
    assert deaths
    assert deaths[-1].graceful
    assert sim.where("web") == [other]
