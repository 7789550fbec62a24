"""Fencing's trust rules in isolation: the members' word about nodes never heard here, and
the hold after a freeze (the sim tests in tests/sim/test_fencing_sim.py run them whole)."""

from __future__ import annotations

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.effects import NodeStateChanged, Notice
from hacluster.core.fencing import Fencing, request_delay_ms
from hacluster.core.ids import NodeName

N1, N2, N3, N4 = (NodeName(f"n{i}") for i in range(1, 5))


def _dead_at_initdead(fencing: Fencing, node: NodeName) -> None:
    """Never heard since we started: membership gives up on it at initdead."""
    fencing.on_peer_change(NodeStateChanged(node, "init", "dead", "initdead"), None, must_fence=True)


def _codes(effects: list[object]) -> list[str]:
    return [e.code for e in effects if isinstance(e, Notice)]


def test_a_node_a_member_saw_stop_cleanly_is_down_not_unclean() -> None:
    fencing = Fencing(N1)
    _dead_at_initdead(fencing, N3)
    assert fencing.unclean.keys() == {N3}
    out = fencing.adopt_known_down({N2: frozenset({N3})}, {N2: frozenset()})
    assert _codes(list(out)) == ["NODE_KNOWN_DOWN"]
    assert N3 not in fencing.unclean
    assert N3 in fencing.clean_exits
    assert N3 in fencing.known_down()
    assert fencing.adopt_known_down({N2: frozenset({N3})}, {}) == [], "adopted once"


@pytest.mark.parametrize(
    ("down", "lost"),
    [
        ({}, {}),  # nobody knows: startup fencing stays
        ({N2: frozenset({N3})}, {N4: frozenset({N3})}),  # another member saw it vanish since
        ({N3: frozenset({N3})}, {}),  # its own word does not count
    ],
)
def test_a_node_never_heard_stays_unclean_without_an_unchallenged_witness(
    down: dict[NodeName, frozenset[NodeName]], lost: dict[NodeName, frozenset[NodeName]]
) -> None:
    fencing = Fencing(N1)
    _dead_at_initdead(fencing, N3)
    assert fencing.adopt_known_down(down, lost) == []
    assert N3 in fencing.unclean
    assert N3 not in fencing.seen_lost(), "we never saw it, so we do not report it lost"


def test_a_node_we_saw_vanish_is_not_taken_on_anyone_s_word() -> None:
    fencing = Fencing(N1)
    fencing.on_peer_change(NodeStateChanged(N3, "active", "dead", "silent"), 4, must_fence=True)
    assert fencing.adopt_known_down({N2: frozenset({N3})}, {}) == []
    assert fencing.seen_lost() == {N3}


def test_fencing_waits_out_the_hold_after_a_freeze() -> None:
    config = parse_resources_crm("primitive vip ocf:hacluster:Dummy\n", "t.crm")
    plain = request_delay_ms(config, 200, 2, runs_something=True, has_quorum=True)
    held = request_delay_ms(config, 200, 2, runs_something=True, has_quorum=True, hold_ms=4_000)
    assert (plain, held) == (0, 4_000)
    idle = request_delay_ms(config, 200, 2, runs_something=False, has_quorum=True, hold_ms=50)
    assert idle == 200, "a hold shorter than the delay changes nothing"
