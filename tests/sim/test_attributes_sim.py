"""Transient node attributes over simulated nodes: replicated to every member, lost with their
node, and ipfail moving a haresources cluster's resources to the node that sees more."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rmsim import RmSim

from hacluster.core.effects import AttributeRequested, ProposeConfig
from hacluster.core.ids import NodeName

pytestmark = pytest.mark.sim


def set_attribute(sim: RmSim, on: str, node: str, name: str, value: str | None) -> None:
    sim._handle(on, AttributeRequested(NodeName(node), name, value))


def seen_everywhere(sim: RmSim, node: str) -> list[dict[str, str]]:
    return [sim.core(n).rm.transient_attributes().get(NodeName(node), {}) for n in sim.live()]


def test_set_on_one_node_is_seen_by_all_and_lost_when_its_node_leaves(sim_seed: int) -> None:
    sim = RmSim(3, sim_seed)
    sim.settle()
    set_attribute(sim, "n1", "n3", "master-db", "10")  # asked of n3 by n1
    set_attribute(sim, "n2", "n2", "rack", "b")  # n2's own
    sim.run_for(300)
    assert seen_everywhere(sim, "n3") == [{"master-db": "10"}] * 3
    assert seen_everywhere(sim, "n2") == [{"rack": "b"}] * 3
    set_attribute(sim, "n1", "n3", "master-db", None)
    sim.run_for(300)
    assert seen_everywhere(sim, "n3") == [{}] * 3
    sim.crash("n2")
    sim.settle()
    assert seen_everywhere(sim, "n2") == [{}, {}]
    sim.restart("n2")
    sim.settle()
    assert seen_everywhere(sim, "n2") == [{}] * 3  # lifetime reboot: gone for good


def test_ipfail_gives_the_resources_to_the_node_that_sees_more(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed)
    sim.settle()
    config = sim.core("n1").rm.config  # the same configuration, as loaded from haresources
    haresources = replace(config, epoch=config.epoch + 1, source="/etc/ha.d/haresources")
    sim._handle("n1", ProposeConfig(haresources))
    sim.settle()
    assert all(sim.core(n).rm.config.source == "/etc/ha.d/haresources" for n in sim.live())
    holder = sim.where("vip")[0]
    other = next(n for n in sim.live() if n != holder)
    set_attribute(sim, holder, holder, "pingd", "1")
    set_attribute(sim, other, other, "pingd", "2")
    sim.settle()
    assert sim.where("vip") == sim.where("app") == sim.where("db") == [other]
    set_attribute(sim, holder, holder, "pingd", "2")  # equal again: nothing moves back
    moved_at = sim.now_ms
    sim.settle()
    assert sim.where("vip") == [other]
    assert [e for e in sim.entries(action="start") if e.time_ms > moved_at] == []


RULE = """
primitive vip ocf:hacluster:Dummy op monitor interval=1s timeout=5s
location vip-needs-ok vip rule -inf: not_defined ok or ok lte 0
property stonith-enabled=false
"""


def test_a_rule_on_a_transient_attribute_places_the_resource(sim_seed: int) -> None:
    sim = RmSim(2, sim_seed, config_text=RULE)
    sim.settle()
    assert sim.where("vip") == []  # no node has ok yet
    set_attribute(sim, "n1", "n2", "ok", "1")  # asked of n2 by n1
    sim.settle()
    assert sim.where("vip") == ["n2"]
    set_attribute(sim, "n2", "n1", "ok", "1")
    set_attribute(sim, "n1", "n2", "ok", "0")
    sim.settle()
    assert sim.where("vip") == ["n1"]
