"""Placement as a table: configuration + cluster facts in, node (and reason) per resource out."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import INFINITY
from hacluster.core.ids import NodeName
from hacluster.core.placement import Placement, PlacementInput, add_scores, place
from hacluster.core.plan import ReasonCode

NODES = (NodeName("n1"), NodeName("n2"), NodeName("n3"))
PRIMS = """
primitive a ocf:hacluster:Dummy
primitive b ocf:hacluster:Dummy
"""


def run(
    text: str,
    *,
    online: tuple[str, ...] = ("n1", "n2", "n3"),
    active: Mapping[str, tuple[str, ...]] | None = None,
    failcounts: Mapping[tuple[str, str], int] | None = None,
    banned: Mapping[str, tuple[str, ...]] | None = None,
    banned_everywhere: tuple[str, ...] = (),
    has_quorum: bool = True,
    nodes: tuple[NodeName, ...] = NODES,
) -> Placement:
    config = parse_resources_crm(text + "\nproperty stonith-enabled=false\n", "t.crm")
    return place(
        PlacementInput(
            config=config,
            nodes=nodes,
            online=frozenset(NodeName(n) for n in online),
            active={r: frozenset(NodeName(n) for n in ns) for r, ns in (active or {}).items()},
            failcounts={(r, NodeName(n)): c for (r, n), c in (failcounts or {}).items()},
            banned={r: frozenset(NodeName(n) for n in ns) for r, ns in (banned or {}).items()},
            banned_everywhere=frozenset(banned_everywhere),
            has_quorum=has_quorum,
        )
    )


@pytest.mark.parametrize(
    ("extra", "active", "expected"),
    [
        # nothing preferred, not running: the first node in configuration order
        ("", {}, "n1"),
        # running on n2, stickiness 0: ties go to where it runs
        ("", {"a": ("n2",)}, "n2"),
        # a location preference beats zero stickiness: it moves
        ("location l a 50: n1", {"a": ("n2",)}, "n1"),
        # stickiness larger than the preference keeps it where it runs
        ("location l a 50: n1\nrsc_defaults resource-stickiness=100", {"a": ("n2",)}, "n2"),
        # stickiness equal to the preference: tie, it stays
        ("location l a 50: n1\nrsc_defaults resource-stickiness=50", {"a": ("n2",)}, "n2"),
        # stickiness from the primitive's own meta
        ("location l a 50: n1", {"a": ("n3",)}, "n1"),
    ],
)
def test_stickiness(extra: str, active: dict[str, tuple[str, ...]], expected: str) -> None:
    text = "primitive a ocf:hacluster:Dummy\n" + extra
    placement = run(text, active=active)
    assert placement.assignment["a"] == expected


def test_primitive_meta_stickiness_keeps_it() -> None:
    text = "primitive a ocf:hacluster:Dummy meta resource-stickiness=INFINITY\nlocation l a 500: n1"
    placement = run(text, active={"a": ("n3",)})
    assert placement.assignment["a"] == "n3"
    assert placement.reasons["a"].text.startswith("stays on n3")


@pytest.mark.parametrize(
    ("locations", "online", "expected"),
    [
        ("location l1 a 100: n2", ("n1", "n2", "n3"), "n2"),
        ("location l1 a 100: n2\nlocation l2 a 200: n3", ("n1", "n2", "n3"), "n3"),
        ("location l1 a inf: n3", ("n1", "n2", "n3"), "n3"),
        ("location l1 a -inf: n1", ("n1", "n2", "n3"), "n2"),
        ("location l1 a -inf: n1\nlocation l2 a -inf: n2", ("n1", "n2", "n3"), "n3"),
        # a +inf preference for an offline node: it runs elsewhere
        ("location l1 a inf: n3", ("n1", "n2"), "n1"),
        # a negative finite score makes a node ineligible (Pacemaker: score must be >= 0)
        ("location l1 a -10: n1", ("n1", "n2", "n3"), "n2"),
        ("location l1 a -10: n1\nlocation l2 a -10: n2\nlocation l3 a -10: n3", ("n1", "n2", "n3"), None),
    ],
)
def test_location_scores(locations: str, online: tuple[str, ...], expected: str | None) -> None:
    placement = run("primitive a ocf:hacluster:Dummy\n" + locations, online=online)
    assert placement.assignment["a"] == expected


def test_location_minus_inf_everywhere_names_the_constraint() -> None:
    text = "primitive a ocf:hacluster:Dummy\n" + "\n".join(f"location l{i} a -inf: n{i}" for i in (1, 2, 3))
    placement = run(text)
    assert placement.assignment["a"] is None
    assert "n1: a location constraint forbids it (-inf)" in placement.reasons["a"].text
    assert placement.scores["a"] == {"n1": -INFINITY, "n2": -INFINITY, "n3": -INFINITY}


@pytest.mark.parametrize(
    ("attribute", "word"),
    [("standby=on", "in standby"), ("standby=true", "in standby"), ("maintenance=yes", "in maintenance")],
)
def test_node_attributes_exclude_a_node(attribute: str, word: str) -> None:
    text = f"primitive a ocf:hacluster:Dummy\nlocation l a inf: n1\nnode n1 attributes {attribute}"
    placement = run(text, active={"a": ("n1",)})
    assert placement.assignment["a"] == "n2"
    one_node = run(text, online=("n1",), active={"a": ("n1",)})
    assert one_node.assignment["a"] is None
    assert f"n1: {word}" in one_node.reasons["a"].text
    assert "n2: offline" in one_node.reasons["a"].text


def test_standby_off_is_not_standby() -> None:
    text = "primitive a ocf:hacluster:Dummy\nnode n1 attributes standby=off"
    assert run(text).assignment["a"] == "n1"


@pytest.mark.parametrize(
    ("threshold", "failures", "expected"),
    [
        ("", 5, "n1"),  # migration-threshold INFINITY by default: never leaves
        ("meta migration-threshold=3", 2, "n1"),
        ("meta migration-threshold=3", 3, "n2"),
        ("meta migration-threshold=3", 4, "n2"),
        ("meta migration-threshold=1", 1, "n2"),
        ("meta migration-threshold=0", 100, "n1"),  # 0: disabled
    ],
)
def test_failcount_threshold_moves_it(threshold: str, failures: int, expected: str) -> None:
    text = f"primitive a ocf:hacluster:Dummy {threshold}".strip()
    placement = run(text, active={"a": ("n1",)}, failcounts={("a", "n1"): failures})
    assert placement.assignment["a"] == expected


def test_failcount_reason_names_threshold() -> None:
    text = "primitive a ocf:hacluster:Dummy meta migration-threshold=2"
    fc = {("a", "n1"): 2, ("a", "n2"): 3, ("a", "n3"): INFINITY}
    placement = run(text, failcounts=fc)
    assert placement.assignment["a"] is None
    why = placement.reasons["a"].text
    assert "n1: a fail count 2 reached migration-threshold 2" in why
    assert "n2: a fail count 3 reached migration-threshold 2" in why


def test_banned_on_a_node_after_a_start_failure() -> None:
    placement = run("primitive a ocf:hacluster:Dummy", banned={"a": ("n1", "n2")})
    assert placement.assignment["a"] == "n3"
    all_banned = run("primitive a ocf:hacluster:Dummy", banned={"a": ("n1", "n2", "n3")})
    assert all_banned.assignment["a"] is None
    assert "n2: a failed to start there (cleanup to retry)" in all_banned.reasons["a"].text


def test_banned_everywhere_runs_nowhere_and_says_rc_6() -> None:
    placement = run(PRIMS + "group g a b", active={"a": ("n1",)}, banned_everywhere=("b",))
    assert placement.assignment == {"a": None, "b": None}
    assert "rc 6" in placement.reasons["a"].text
    assert "b is banned from every node" in placement.reasons["a"].text


@pytest.mark.parametrize(
    ("extra", "kwargs", "expected"),
    [
        ("", {}, "n1"),
        ("location l b 100: n2", {}, "n2"),  # a member's preference moves the whole group
        ("", {"active": {"b": ("n3",)}}, "n3"),
        ("", {"failcounts": {("b", "n1"): INFINITY}}, "n2"),  # a member's failure moves all
        ("location l a -inf: n1\nlocation m b -inf: n2", {}, "n3"),
    ],
)
def test_group_members_always_together(extra: str, kwargs: dict[str, object], expected: str) -> None:
    placement = run(PRIMS + "group g a b\n" + extra, **kwargs)  # type: ignore[arg-type]
    assert placement.assignment["a"] == placement.assignment["b"] == expected


@pytest.mark.parametrize(
    ("stopped", "expected"),
    [
        ("a", {"a": None, "b": None, "c": None}),
        ("b", {"a": "n1", "b": None, "c": None}),
        ("c", {"a": "n1", "b": "n1", "c": None}),
    ],
)
def test_group_member_target_role_stopped_stops_it_and_the_rest(
    stopped: str, expected: dict[str, str | None]
) -> None:
    lines = [
        f"primitive {r} ocf:hacluster:Dummy" + (" meta target-role=Stopped" if r == stopped else "")
        for r in "abc"
    ]
    placement = run("\n".join(lines) + "\ngroup g a b c")
    assert dict(placement.assignment) == expected
    assert placement.reasons[stopped].text == "target-role is Stopped"
    for later in "abc"[("abc".index(stopped) + 1) :]:
        assert f"follows {stopped} in group g" in placement.reasons[later].text


def test_group_target_role_stopped() -> None:
    placement = run(PRIMS + "group g a b meta target-role=Stopped")
    assert dict(placement.assignment) == {"a": None, "b": None}


@pytest.mark.parametrize(
    ("colocation", "extra", "kwargs", "expected_a", "expected_b"),
    [
        # b must run with a
        ("colocation c inf: b a", "location l a 10: n3", {}, "n3", "n3"),
        # b must run with a, a cannot run: b cannot either
        (
            "colocation c inf: b a",
            "location l a -inf: n1\nlocation m a -inf: n2\nlocation o a -inf: n3",
            {},
            None,
            None,
        ),
        # b must not run with a
        ("colocation c -inf: b a", "location l b 100: n1", {}, "n1", "n2"),
        # b must not run with a, only a's node online for b: b nowhere
        ("colocation c -inf: b a", "", {"online": ("n1",)}, "n1", None),
        # finite: b prefers a's node over its own weaker preference
        ("colocation c 100: b a", "location l a 10: n2\nlocation m b 50: n3", {}, "n2", "n2"),
        # finite: a stronger preference wins over the colocation
        ("colocation c 100: b a", "location l a 10: n2\nlocation m b 200: n3", {}, "n2", "n3"),
        # finite negative: b avoids a's node even though it would tie-break there
        ("colocation c -100: b a", "location l a 10: n1", {}, "n1", "n2"),
    ],
)
def test_colocation(
    colocation: str, extra: str, kwargs: dict[str, object], expected_a: str | None, expected_b: str | None
) -> None:
    placement = run(PRIMS + colocation + "\n" + extra, **kwargs)  # type: ignore[arg-type]
    assert placement.assignment["a"] == expected_a
    assert placement.assignment["b"] == expected_b


def test_colocation_reasons_name_the_anchor() -> None:
    text = PRIMS + "colocation c inf: b a\nprimitive z ocf:hacluster:Dummy meta target-role=Stopped\n"
    text = text.replace(
        "primitive a ocf:hacluster:Dummy", "primitive a ocf:hacluster:Dummy meta target-role=Stopped"
    )
    placement = run(text)
    assert placement.assignment["b"] is None
    assert "it must run with a, which is not running" in placement.reasons["b"].text
    anti = run(PRIMS + "colocation c -inf: b a", online=("n1",))
    assert "n1: it must not run with a" in anti.reasons["b"].text


def test_colocation_dependent_configured_first_is_placed_after_its_anchor() -> None:
    text = "primitive b ocf:hacluster:Dummy\nprimitive a ocf:hacluster:Dummy\ncolocation c inf: b a\nlocation l a 5: n2"
    placement = run(text)
    assert placement.assignment == {"b": "n2", "a": "n2"}


@pytest.mark.parametrize(
    ("policy", "active", "expected", "reason_part"),
    [
        ("stop", ("n1",), None, "no-quorum-policy=stop"),
        ("", ("n1",), None, "no-quorum-policy=stop"),  # stop is the default
        ("freeze", ("n2",), "n2", "frozen where it runs"),
        ("freeze", (), None, "not started (no-quorum-policy=freeze)"),
        ("freeze", ("n3",), None, "not started"),  # runs on a node outside our partition
        ("ignore", (), "n1", "goes to n1"),
        ("ignore", ("n2",), "n2", "stays on n2"),
    ],
)
def test_no_quorum_policy(
    policy: str, active: tuple[str, ...], expected: str | None, reason_part: str
) -> None:
    text = "primitive a ocf:hacluster:Dummy\n" + (f"property no-quorum-policy={policy}" if policy else "")
    placement = run(text, online=("n1", "n2"), active={"a": active}, has_quorum=False)
    assert placement.assignment["a"] == expected
    assert reason_part in placement.reasons["a"].text


def test_with_quorum_policy_does_not_matter() -> None:
    text = "primitive a ocf:hacluster:Dummy\nproperty no-quorum-policy=stop"
    assert run(text, has_quorum=True).assignment["a"] == "n1"


def test_tie_break_fewer_units_then_configuration_order() -> None:
    text = "\n".join(f"primitive r{i} ocf:hacluster:Dummy" for i in range(7))
    placement = run(text)
    assert [placement.assignment[f"r{i}"] for i in range(7)] == ["n1", "n2", "n3", "n1", "n2", "n3", "n1"]
    # the node order given, not the names, breaks the remaining tie
    reordered = run(text, nodes=(NodeName("n3"), NodeName("n1"), NodeName("n2")))
    assert reordered.assignment["r0"] == "n3"
    assert reordered.assignment["r1"] == "n1"
    # a group counts as one unit
    grouped = run(PRIMS + "group g a b\nprimitive c ocf:hacluster:Dummy")
    assert dict(grouped.assignment) == {"a": "n1", "b": "n1", "c": "n2"}


def test_tie_break_is_deterministic() -> None:
    text = "\n".join(f"primitive r{i} ocf:hacluster:Dummy" for i in range(5))
    first = run(text, active={"r3": ("n2",)})
    for _ in range(3):
        assert run(text, active={"r3": ("n2",)}).assignment == first.assignment


def test_priority_places_first() -> None:
    text = (
        "primitive low ocf:hacluster:Dummy\nprimitive high ocf:hacluster:Dummy meta priority=10\n"
        "colocation c -inf: low high"
    )
    placement = run(text, online=("n1",))
    assert placement.assignment == {"high": "n1", "low": None}


def test_unplaceable_reason_names_every_node() -> None:
    text = "primitive a ocf:hacluster:Dummy meta migration-threshold=1\nnode n2 attributes standby=on"
    placement = run(text, online=("n1", "n2"), failcounts={("a", "n1"): 1})
    assert placement.assignment["a"] is None
    assert placement.reasons["a"].text == (
        "no node can run it (n1: a fail count 1 reached migration-threshold 1; n2: in standby; n3: offline)"
    )


def test_stonith_primitives_are_not_placed() -> None:
    text = "primitive a ocf:hacluster:Dummy\nprimitive f stonith:fence_dummy"
    assert "f" not in run(text).assignment


@pytest.mark.parametrize(
    ("a", "b", "total"),
    [
        (1, 2, 3),
        (INFINITY, -INFINITY, -INFINITY),
        (-INFINITY, INFINITY, -INFINITY),
        (INFINITY, 5, INFINITY),
        (INFINITY - 1, 5, INFINITY),
        (-INFINITY + 1, -5, -INFINITY),
    ],
)
def test_add_scores(a: int, b: int, total: int) -> None:
    assert add_scores(a, b) == total


# Found by the fault campaign (bench/campaign.py --seed 77, step 8 start_fail): j2, colocated
# INFINITY with j1, failed to start on j1's node; j2 stayed stopped while j1 stayed put, although
# another node could run both.  Pacemaker moves the anchor: a mandatory colocation's dependent
# influences where its anchor goes (``influence``, default: the dependent's ``critical``, true),
# as its scheduler case colocation-influence shows (rsc1a fails on rhel7-2: rsc1a and rsc1b
# both move to rhel7-3).
@pytest.mark.parametrize(
    ("extra", "failed_on"),
    [
        ("", "n2"),  # a stays on n2 by stickiness, b failed there
        ("location cli-move a inf: n2", "n2"),  # the campaign's case: a moved to n2, b failed there
    ],
)
def test_a_dependent_that_cannot_run_on_its_anchors_node_takes_the_anchor_along(
    extra: str, failed_on: str
) -> None:
    text = PRIMS + "colocation c inf: b a\nrsc_defaults resource-stickiness=100\n" + extra
    placement = run(text, active={"a": ("n2",)}, failcounts={("b", failed_on): INFINITY})
    assert placement.assignment["a"] == placement.assignment["b"]
    assert placement.assignment["a"] not in (None, failed_on)
    assert placement.scores["a"][NodeName(failed_on)] == -INFINITY
    banned = run(text, active={"a": ("n2",)}, banned={"b": (failed_on,)})
    assert banned.assignment["a"] == banned.assignment["b"] != failed_on


def test_the_anchor_still_runs_when_its_dependent_can_run_nowhere() -> None:
    text = PRIMS + "colocation c inf: b a\nlocation l a 10: n2"
    everywhere = {("b", n): INFINITY for n in ("n1", "n2", "n3")}
    placement = run(text, failcounts=everywhere)
    assert placement.assignment == {"a": "n2", "b": None}


def test_a_dependent_that_is_not_critical_does_not_move_its_anchor() -> None:
    text = (
        PRIMS.replace(
            "primitive b ocf:hacluster:Dummy", "primitive b ocf:hacluster:Dummy meta critical=false"
        )
        + "colocation c inf: b a\nrsc_defaults resource-stickiness=100"
    )
    placement = run(text, active={"a": ("n2",)}, failcounts={("b", "n2"): INFINITY})
    assert placement.assignment == {"a": "n2", "b": None}


def test_the_influence_follows_a_chain_of_mandatory_colocations() -> None:
    text = (
        PRIMS
        + "primitive c ocf:hacluster:Dummy\ncolocation c1 inf: b a\ncolocation c2 inf: c b\n"
        + "rsc_defaults resource-stickiness=100"
    )
    placement = run(text, active={"a": ("n1",), "b": ("n1",), "c": ("n1",)}, banned={"c": ("n1",)})
    assert placement.assignment["a"] == placement.assignment["b"] == placement.assignment["c"] != "n1"


# --- what needs something that cannot run -------------------------------------------------------

ABC = "primitive a ocf:hacluster:Dummy\nprimitive b ocf:hacluster:Dummy\nprimitive c ocf:hacluster:Dummy meta target-role=Stopped\n"


def test_a_mandatory_colocation_is_kept_when_its_anchor_cannot_start_because_of_an_order() -> None:
    """Regression: ``colocation a-with-b inf: a b`` + ``order c-then-b Mandatory: c b`` with c
    stopped: b could not start, yet a was placed (and started) on b's node."""
    placement = run(ABC + "colocation a-with-b inf: a b\norder c-then-b Mandatory: c b\n")
    assert placement.assignment == {"a": None, "b": None, "c": None}
    b = placement.reasons["b"]
    assert b.code is ReasonCode.NEEDS_FIRST
    assert (b.first, b.text) == ("c", "it needs c first, which cannot run (target-role is Stopped)")
    assert b.cause is not None
    assert b.cause.code is ReasonCode.TARGET_ROLE_STOPPED
    a = placement.reasons["a"]
    assert a.code is ReasonCode.NO_NODE
    assert dict(a.per_node)["n1"] == "it must run with b, which is not running"


def test_an_order_chain_that_cannot_run_keeps_every_dependent_off() -> None:
    placement = run(ABC + "order c-then-b Mandatory: c b\norder b-then-a Mandatory: b a\n")
    assert placement.assignment == {"a": None, "b": None, "c": None}
    assert placement.reasons["a"].first == "b"
    assert placement.reasons["a"].cause == placement.reasons["b"]


def test_an_optional_order_holds_nothing_back() -> None:
    placement = run(ABC + "colocation a-with-b inf: a b\norder c-then-b Optional: c b\n")
    assert placement.assignment["a"] == placement.assignment["b"] == "n1"


def test_a_group_member_whose_prerequisite_cannot_run_stops_the_rest_of_the_group() -> None:
    placement = run(ABC + "group g a b\norder c-then-b Mandatory: c b\n")
    assert placement.assignment["a"] == "n1", "the members before it still run"
    assert placement.assignment["b"] is None
    assert placement.reasons["b"].code is ReasonCode.NEEDS_FIRST


def test_what_needs_a_group_that_cannot_run_cannot_run() -> None:
    placement = run(ABC + "group g c a\nprimitive d ocf:hacluster:Dummy\norder g-then-d Mandatory: g d\n")
    assert placement.assignment["d"] is None
    assert placement.reasons["d"].first == "a"


def test_the_colocation_with_an_order_is_not_a_group() -> None:
    """What docs/operator-guide.md says: with ``a`` banned from n1, a group and a colocation
    with an order both run the two on n2 (the dependent's ban moves its anchor); with n1 the
    only node left, the group runs neither while the colocation still runs its anchor ``b``,
    and so does a dependent with ``critical=false`` on both nodes."""
    ban = "location no-a a -inf: n1\nlocation b-likes-n1 b 10: n1\n"
    pair = "colocation a-with-b inf: a b\norder b-then-a Mandatory: b a\n"
    for online, group_on, pair_on in ((("n1", "n2"), "n2", ("n2", "n2")), (("n1",), None, ("n1", None))):
        group = run(PRIMS + "group g b a\n" + ban, online=online)
        colocated = run(PRIMS + pair + ban, online=online)
        assert (group.assignment["b"], group.assignment["a"]) == (group_on, group_on)
        assert (colocated.assignment["b"], colocated.assignment["a"]) == pair_on
    not_critical = PRIMS.replace(
        "primitive a ocf:hacluster:Dummy", "primitive a ocf:hacluster:Dummy meta critical=false"
    )
    opted_out = run(not_critical + pair + ban, online=("n1", "n2"))
    assert (opted_out.assignment["b"], opted_out.assignment["a"]) == ("n1", None)


@pytest.mark.parametrize(
    ("policy", "placed", "code"),
    [
        ("stop", None, ReasonCode.NO_QUORUM),
        ("demote", None, ReasonCode.NO_QUORUM),  # promotable clones demote; everything else stops
        ("Stop", None, ReasonCode.NO_QUORUM),
        ("freeze", "n2", ReasonCode.FROZEN),
        ("ignore", "n2", ReasonCode.PLACED),
    ],
)
def test_no_quorum_policies(policy: str, placed: str | None, code: ReasonCode) -> None:
    placement = run(PRIMS + f"property no-quorum-policy={policy}\n", active={"a": ("n2",)}, has_quorum=False)
    assert placement.assignment["a"] == placed
    assert placement.reasons["a"].code is code
