"""core/rules.py: location rules against node attributes, as Pacemaker Explained defines them."""

from __future__ import annotations

import pytest

from hacluster.core.cib import Expression, Location, Rule
from hacluster.core.rules import (
    expression_holds,
    location_scores,
    rule_score,
    why_rule_fails,
    why_rule_holds,
)


@pytest.mark.parametrize(
    ("expression", "attributes", "holds"),
    [
        (Expression("pingd", "defined"), {"pingd": "0"}, True),
        (Expression("pingd", "defined"), {}, False),
        (Expression("pingd", "not_defined"), {}, True),
        (Expression("pingd", "not_defined"), {"pingd": ""}, False),
        # lt/gt/lte/gte: integer by default; a '.' on either side makes it a number
        (Expression("pingd", "lte", "0"), {"pingd": "0"}, True),
        (Expression("pingd", "gt", "9"), {"pingd": "10"}, True),  # not "10" < "9" as strings
        (Expression("load", "lt", "1.5"), {"load": "1.25"}, True),
        (Expression("load", "gte", "2"), {"load": "10.0"}, True),
        # an undefined attribute: comparisons fail, ne holds
        (Expression("pingd", "lte", "0"), {}, False),
        (Expression("pingd", "eq", "0"), {}, False),
        (Expression("site", "ne", "a"), {}, True),
        # eq/ne: strings, case-insensitive
        (Expression("site", "eq", "DC1"), {"site": "dc1"}, True),
        (Expression("site", "ne", "dc1"), {"site": "dc2"}, True),
        (Expression("n", "eq", "01"), {"n": "1"}, False),
        (Expression("n", "eq", "01", "integer"), {"n": "1"}, True),
        (Expression("n", "eq", "1.0", "number"), {"n": "1"}, True),
        # version: numeric parts
        (Expression("kernel", "gt", "5.9", "version"), {"kernel": "5.10"}, True),
        (Expression("kernel", "gt", "5.9"), {"kernel": "5.10"}, False),  # number: 5.10 < 5.9
        (Expression("kernel", "eq", "5.10.0", "version"), {"kernel": "5.10"}, True),
        # a value that does not parse as the type: compared as strings
        (Expression("x", "lt", "b", "integer"), {"x": "a"}, True),
        # built-ins
        (Expression("#uname", "eq", "n1"), {}, True),
        (Expression("#id", "ne", "n1"), {}, False),
    ],
)
def test_expression(expression: Expression, attributes: dict[str, str], holds: bool) -> None:
    assert expression_holds(expression, "n1", attributes) is holds


NO_PING = Rule(-1_000_000, (Expression("pingd", "not_defined"), Expression("pingd", "lte", "0")), "or")


@pytest.mark.parametrize(
    ("rule", "attributes", "score"),
    [
        (NO_PING, {}, -1_000_000),
        (NO_PING, {"pingd": "0"}, -1_000_000),
        (NO_PING, {"pingd": "200"}, None),
        (Rule(100, (Expression("a", "defined"), Expression("b", "defined"))), {"a": "1"}, None),
        (Rule(100, (Expression("a", "defined"), Expression("b", "defined"))), {"a": "1", "b": "2"}, 100),
        (Rule(0, (Expression("w", "defined"),), score_attribute="w"), {"w": "42"}, 42),
        (Rule(0, (Expression("#uname", "defined"),), score_attribute="w"), {}, None),
        (Rule(0, (Expression("w", "defined"),), score_attribute="w"), {"w": "lots"}, None),
        (Rule(0, (Expression("w", "defined"),), score_attribute="w"), {"w": "-INFINITY"}, -1_000_000),
    ],
)
def test_rule_score(rule: Rule, attributes: dict[str, str], score: int | None) -> None:
    assert rule_score(rule, "n1", attributes) == score


def test_location_scores_add_every_rule_that_holds_and_respect_roles() -> None:
    location = Location(
        "l",
        "db",
        "",
        0,
        rules=(
            Rule(-1_000_000, (Expression("db", "not_defined"),)),
            Rule(50, (Expression("#uname", "eq", "n1"),)),
            Rule(10, (Expression("#uname", "eq", "n1"),), role="Promoted"),
        ),
    )
    assert [s for s, _ in location_scores(location, "n1", {"db": "1"})] == [50]
    assert [s for s, _ in location_scores(location, "n2", {})] == [-1_000_000]
    assert [s for s, _ in location_scores(location, "n1", {"db": "1"}, role="Promoted")] == [10]
    plain = Location("p", "db", "n2", 30)
    assert location_scores(plain, "n2", {}) == [(30, "location p")]
    assert location_scores(plain, "n1", {}) == []
    assert location_scores(Location("r", "db", "n2", 30, role="Promoted"), "n2", {}) == []


def test_why_rule_fails_names_the_attribute() -> None:
    rule = Rule(100, (Expression("db", "defined"),))
    assert why_rule_fails(rule, "n2", {}) == "db is not defined on n2"
    assert why_rule_fails(Rule(1, (Expression("pingd", "gt", "0"),)), "n2", {"pingd": "0"}) == (
        "pingd is '0' on n2"
    )


def test_why_rule_holds_names_what_bans_the_node() -> None:
    rule = Rule(-1_000_000, (Expression("pingd", "not_defined"), Expression("pingd", "lte", "0")), "or")
    assert why_rule_holds(rule, "n2", {}) == "pingd is not defined on n2"
    assert why_rule_holds(rule, "n2", {"pingd": "0"}) == "pingd is '0' on n2 (pingd lte 0)"


def test_a_rule_ban_is_the_reason_placement_gives() -> None:
    from hacluster.config.resources_crm import parse_resources_crm
    from hacluster.core.ids import NodeName
    from hacluster.core.placement import PlacementInput, place

    config = parse_resources_crm(
        "primitive app Dummy\nlocation app-needs-db app rule -inf: not_defined db\n", "t.crm"
    )
    n1, n2 = NodeName("n1"), NodeName("n2")
    placement = place(
        PlacementInput(config, (n1, n2), frozenset({n1, n2}), node_attributes={n1: {"db": "1"}})
    )
    assert placement.assignment["app"] == n1
    placement = place(PlacementInput(config, (n1, n2), frozenset({n1, n2}), node_attributes={}))
    assert "n2: rule app-needs-db: db is not defined on n2" in placement.reasons["app"].text
