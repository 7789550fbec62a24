"""The self-fencing rules of core/watchdog.py, driven with plain snapshots (no devices)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.core.watchdog import (
    PetCode,
    pet_verdict,
    watchdog_fencing_ms,
    watchdog_quorum,
    watchdog_refusal,
)

N1, N2, N3, N4 = (NodeName(f"n{i}") for i in range(1, 5))


def view(
    properties: str = "stonith-watchdog-timeout=10s",
    *,
    extra: str = "",
    enabled: bool = True,
    **fields: object,
) -> ClusterSnapshot:
    text = f"primitive db ocf:hacluster:Dummy\nproperty stonith-enabled={str(enabled).lower()} {properties}\n{extra}"
    config = parse_resources_crm(text, "t.crm")
    base = ClusterSnapshot(
        config=config,
        nodes=(N1, N2),
        members=frozenset({N1, N2}),
        observed={"db": {N2: LocalState.STARTED}},
        node=N2,
        watchdogs={N1: 5000, N2: 5000},
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("nodes", "members", "quorate"),
    [
        ((N1, N2), {N1, N2}, True),
        ((N1, N2), {N1}, True),  # the tie-breaker: the lowest-named node's half
        ((N1, N2), {N2}, False),
        ((N1, N2, N3), {N2, N3}, True),
        ((N1, N2, N3), {N1}, False),
        ((N1, N2, N3, N4), {N1, N4}, True),
        ((N1, N2, N3, N4), {N2, N3}, False),
    ],
)
def test_watchdog_quorum_is_a_majority_with_the_lowest_node_breaking_ties(
    nodes: tuple[NodeName, ...], members: set[NodeName], quorate: bool
) -> None:
    assert watchdog_quorum(nodes, frozenset(members)) is quorate


def test_a_healthy_node_pets() -> None:
    assert pet_verdict(view()).pet


def test_losing_quorum_while_running_something_stops_petting() -> None:
    verdict = pet_verdict(view(has_quorum=False))
    assert not verdict.pet
    assert verdict.code is PetCode.NO_QUORUM
    assert "db" in verdict.reason


def test_losing_quorum_with_nothing_running_keeps_petting() -> None:
    # Nothing to protect, and without quorum nothing starts here: no reason to reset (and no
    # reboot loop for a node that boots alone).
    assert pet_verdict(view(has_quorum=False, observed={"db": {N2: LocalState.STOPPED}})).pet


def test_a_failed_stop_no_device_can_reach_stops_petting() -> None:
    verdict = pet_verdict(view(observed={"db": {N2: LocalState.BLOCKED}}))
    assert not verdict.pet
    assert verdict.code is PetCode.STOP_FAILED


def test_a_failed_stop_a_device_can_fence_is_left_to_the_device() -> None:
    device = "primitive fd stonith:fence_lab params plugs=a pcmk_host_list=n2\n"
    assert pet_verdict(view(extra=device, observed={"db": {N2: LocalState.BLOCKED}})).pet


def test_without_the_property_the_watchdog_only_guards_against_hangs() -> None:
    assert pet_verdict(view("", has_quorum=False)).pet
    assert watchdog_fencing_ms(view("")) == 0


def test_self_fencing_is_used_when_every_node_has_a_watchdog() -> None:
    assert watchdog_refusal(view()) is None
    assert watchdog_fencing_ms(view()) == 10_000


@pytest.mark.parametrize(
    ("properties", "watchdogs", "why"),
    [
        ("stonith-watchdog-timeout=10s", {N1: 5000}, "n2 announced no working watchdog"),
        ("stonith-watchdog-timeout=10s", {N1: 5000, N2: 0}, "n2 announced no working watchdog"),
        ("stonith-watchdog-timeout=8s", {N1: 5000, N2: 5000}, "at least 10000 ms"),
        (
            "stonith-watchdog-timeout=10s no-quorum-policy=ignore",
            {N1: 5000, N2: 5000},
            "no-quorum-policy=ignore",
        ),
    ],
)
def test_self_fencing_is_refused_with_the_reason(
    properties: str, watchdogs: dict[NodeName, int], why: str
) -> None:
    snapshot = view(properties, watchdogs=watchdogs)
    refusal = watchdog_refusal(snapshot)
    assert refusal is not None
    assert why in refusal
    assert watchdog_fencing_ms(snapshot) == 0


def test_stonith_disabled_means_no_self_fencing() -> None:
    assert watchdog_fencing_ms(view(enabled=False)) == 0


# --- the peer side: an attempt that waits for the target's own watchdog -----------------------------


def test_a_watchdog_fence_waits_the_timeout_and_for_silence_then_releases() -> None:
    from hacluster.core.effects import Broadcast, Notice
    from hacluster.core.fencing import Fencing

    snapshot = view()
    fencing = Fencing(N1)
    out = fencing.attempts.request(
        N2, "it left", snapshot.config, (), 0, 1_000, watchdog_fencing_ms(snapshot)
    )
    assert [e.code for e in out if isinstance(e, Notice)] == ["FENCING_REQUESTED"]
    assert "watchdog" in fencing.attempts.pending()[N2]
    assert fencing.attempts.next_deadline_ms() == 11_000
    assert fencing.tick((), frozenset({N1}), 10_999) == []  # not yet
    assert fencing.tick((), frozenset({N1, N2}), 11_000) == []  # still heard from: not reset
    assert N2 not in fencing.fenced
    out = fencing.tick((), frozenset({N1}), 12_000)
    assert N2 in fencing.fenced
    assert any(isinstance(e, Broadcast) and dict(e.pairs).get("device") == "watchdog" for e in out), out
    [event] = fencing.attempts.history()
    assert (event.target, event.device, event.result) == (N2, "watchdog", "ok")


def test_without_self_fencing_no_device_means_fencing_impossible() -> None:
    from hacluster.core.effects import Notice
    from hacluster.core.fencing import Fencing

    fencing = Fencing(N1)
    out = fencing.attempts.request(N2, "it left", view("").config, (), 0, 1_000)
    assert [e.code for e in out if isinstance(e, Notice)] == ["FENCING_IMPOSSIBLE"]


def test_a_node_booting_alone_before_its_probes_keeps_petting() -> None:
    assert pet_verdict(view(has_quorum=False, observed={"db": {N2: LocalState.UNKNOWN}})).pet
