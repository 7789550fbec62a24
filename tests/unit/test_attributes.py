"""Node attributes: the merge the scheduler reads, the checks, the messages, ipfail, pingd.

Transient attributes travel in ``hac_state`` (``at``) and ``hac_attr``; both decode strictly
(a bad one is refused whole and changes nothing), and the resource manager applies only the
changes addressed to its own node.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.attributes import (
    ATTRIBUTES_MAX,
    apply_change,
    ipfail_bans,
    name_problem,
    node_attributes,
    ping_score,
    promotion_attribute,
    strip_instance,
    value_problem,
)
from hacluster.core.cib import INFINITY
from hacluster.core.crm import ResourceManager, RmSettings
from hacluster.core.effects import Broadcast, MessageDelivered, Notice
from hacluster.core.ids import NodeName
from hacluster.core.rm_messages import (
    ATTRIBUTE_MSG,
    AttributeRequest,
    MessageError,
    StateReport,
    decode,
    encode,
)

N1, N2, N3 = NodeName("n1"), NodeName("n2"), NodeName("n3")
CONFIG = parse_resources_crm(
    "primitive vip ocf:hacluster:Dummy\nprimitive db ocf:hacluster:Dummy\n"
    "group g db\nproperty stonith-enabled=false\n",
    "t.crm",
)
HARESOURCES = replace(CONFIG, source="/etc/ha.d/haresources")


def delivered(broadcast: Broadcast, src: NodeName = N2) -> MessageDelivered:
    return MessageDelivered(src, broadcast.mtype, (("t", broadcast.mtype), *broadcast.pairs))


# --- the merge and the checks ------------------------------------------------------------------


def test_transient_hides_permanent_of_the_same_name() -> None:
    config = replace(CONFIG, node_attributes=(("n1", (("rack", "a"), ("pingd", "0"))), ("n3", (("x", "1"),))))
    merged = node_attributes(config, {N1: {"pingd": "300"}, N2: {"master-db": "5"}})
    assert merged == {N1: {"rack": "a", "pingd": "300"}, N2: {"master-db": "5"}, N3: {"x": "1"}}
    assert node_attributes(CONFIG, {}) == {}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("#uname", "built in"),
        ("a b", "character other than"),
        ("a=b", "character other than"),
        ("-x", "starts with one of"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, problem: str) -> None:
    found = name_problem(name)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("name", ["pingd", "master-pgsql", "cli-prefer-vip-until", "a.b:c@d+e_f", "9lives"])
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


def test_values_with_control_characters_or_too_long_are_refused() -> None:
    assert value_problem("") is None
    assert value_problem("a value with spaces") is None
    assert "control character" in (value_problem("a\nb") or "")
    assert "longer than 1000" in (value_problem("x" * 1001) or "")


def test_apply_change_sets_removes_and_refuses_without_changing() -> None:
    current = {"a": "1"}
    assert apply_change(current, "b", "2") == {"a": "1", "b": "2"}
    assert apply_change(current, "a", None) == {}
    assert apply_change(current, "zz", None) == {"a": "1"}
    with pytest.raises(ValueError, match="built in"):
        apply_change(current, "#id", "1")
    full = {f"k{i}": "v" for i in range(ATTRIBUTES_MAX)}
    with pytest.raises(ValueError, match="at most 100"):
        apply_change(full, "one-more", "v")
    assert apply_change(full, "k0", "changed")["k0"] == "changed"
    assert current == {"a": "1"}


@pytest.mark.parametrize(
    ("resource", "attribute"),
    [("pgsql", "master-pgsql"), ("pgsql:2", "master-pgsql"), ("a:b", "master-a:b"), ("x:١", "master-x:١")],
)
def test_promotion_attribute_is_pacemakers_name(resource: str, attribute: str) -> None:
    assert promotion_attribute(resource) == attribute
    assert strip_instance("db:10") == "db"


def test_ping_score() -> None:
    assert ping_score(3, 100) == 300
    assert ping_score(0, 1) == 0


# --- ipfail ------------------------------------------------------------------------------------


def test_ipfail_bans_the_nodes_that_see_fewer_ping_nodes() -> None:
    bans = ipfail_bans(HARESOURCES, {N1: {"pingd": "1"}, N2: {"pingd": "2"}}, [N1, N2], "pingd")
    assert {(b.rsc, b.node, b.score) for b in bans} == {("g", N1, -INFINITY), ("vip", N1, -INFINITY)}
    assert all(b.id.startswith("ipfail-") for b in bans)


@pytest.mark.parametrize(
    ("attributes", "online"),
    [
        ({N1: {"pingd": "2"}, N2: {"pingd": "2"}}, [N1, N2]),  # equal: nobody moves
        ({N1: {"pingd": "1"}}, [N1, N2]),  # one count only: nothing to compare
        ({N1: {"pingd": "1"}, N2: {"pingd": "lots"}}, [N1, N2]),  # not a number: unknown
        ({N1: {"pingd": "1"}, N2: {"pingd": "2"}}, [N1]),  # the better node is gone
    ],
)
def test_ipfail_moves_nothing_without_a_known_better_node(
    attributes: dict[NodeName, dict[str, str]], online: list[NodeName]
) -> None:
    assert ipfail_bans(HARESOURCES, attributes, online, "pingd") == ()


def test_ipfail_is_for_haresources_clusters_only() -> None:
    assert ipfail_bans(CONFIG, {N1: {"pingd": "1"}, N2: {"pingd": "2"}}, [N1, N2], "pingd") == ()


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        AttributeRequest(N1, "pingd", "200"),
        AttributeRequest(N1, "pingd", ""),
        AttributeRequest(N3, "master-db", None),
        StateReport((1, 2), 0, "d", True, False, {}, attributes={"pingd": "3", "master-db": "10"}),
    ],
)
def test_attribute_messages_round_trip(message: object) -> None:
    assert decode(delivered(encode(message))) == message  # type: ignore[arg-type]


def test_a_report_without_attributes_is_what_older_versions_send() -> None:
    report = StateReport((1, 2), 0, "d", True, False, {})
    assert "at" not in dict(encode(report).pairs)
    assert decode(delivered(encode(report))) == report


def _fields(**pairs: str) -> MessageDelivered:
    return MessageDelivered(N2, ATTRIBUTE_MSG, tuple(pairs.items()))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "pingd", "v": "1"}, "field node is missing"),
        ({"node": "n1", "v": "1"}, "field name is missing"),
        ({"node": "n1", "name": "#uname", "v": "1"}, "built in"),
        ({"node": "n1", "name": "pingd"}, "exactly one of v and del"),
        ({"node": "n1", "name": "pingd", "v": "1", "del": "1"}, "exactly one of v and del"),
        ({"node": "n1", "name": "pingd", "del": "0"}, "del must be 1"),
        ({"node": "n1", "name": "pingd", "v": "a\nb"}, "control character"),
        ({"node": "", "name": "pingd", "v": "1"}, "node is empty"),
    ],
)
def test_a_bad_attribute_request_is_refused_naming_the_field(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(_fields(**fields))
    assert problem in caught.value.problem


def _report_with(at: str) -> MessageDelivered:
    pairs = dict(encode(StateReport((1, 2), 0, "d", True, False, {})).pairs)
    pairs["at"] = at
    return MessageDelivered(N2, "hac_state", tuple(pairs.items()))


@pytest.mark.parametrize(
    ("at", "problem"),
    [
        ("[1]", "at must be a JSON object"),
        ('{"pingd": 3}', "must be a string"),
        ('{"#uname": "x"}', "built in"),
        ('{"a": "x\\u0000"}', "control character"),
        (json.dumps({f"k{i}": "v" for i in range(101)}), "more than 100"),
        ("{", "at is not JSON"),
    ],
)
def test_a_report_with_bad_attributes_is_refused_whole(at: str, problem: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(_report_with(at))
    assert problem in caught.value.problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["node", "name", "v", "del", "x"]), st.text(max_size=12), max_size=5))
def test_any_attribute_fields_give_a_request_or_a_message_error(fields: dict[str, str]) -> None:
    try:
        message = decode(_fields(**fields))
    except MessageError:
        return
    assert isinstance(message, AttributeRequest)


# --- the resource manager -----------------------------------------------------------------------


def _rm(node: NodeName = N1, **extra: int | str) -> ResourceManager:
    settings = RmSettings(node=node, nodes=(N1, N2, N3), **extra)  # type: ignore[arg-type]
    return ResourceManager(settings, CONFIG, now_ms=0)


def _broadcasts(effects: list[object], mtype: str) -> list[Broadcast]:
    return [e for e in effects if isinstance(e, Broadcast) and e.mtype == mtype]


def test_own_attribute_is_set_and_sent_in_the_next_report() -> None:
    rm = _rm()
    out = rm.set_attribute(N1, "pingd", "2", now_ms=10)
    assert rm.transient_attributes() == {N1: {"pingd": "2"}}
    reports = [decode(delivered(b, N1)) for b in _broadcasts(out, "hac_state")]
    assert reports
    assert isinstance(reports[-1], StateReport)
    assert reports[-1].attributes == {"pingd": "2"}
    assert any(isinstance(n, Notice) and n.code == "ATTRIBUTE_CHANGED" for n in out)
    rm.set_attribute(N1, "pingd", None, now_ms=20)
    assert rm.transient_attributes() == {}


def test_another_nodes_attribute_is_asked_of_it_and_only_it_applies_it() -> None:
    rm1, rm2 = _rm(N1), _rm(N2)
    rm1._members = frozenset({N1, N2})  # as membership would have it
    out = rm1.set_attribute(N2, "master-db", "5", now_ms=10)
    (request,) = _broadcasts(out, ATTRIBUTE_MSG)
    assert rm1.transient_attributes() == {}  # n1 holds none of n2's
    rm2.on_message(delivered(request, N1), now_ms=11)
    assert rm2.transient_attributes() == {N2: {"master-db": "5"}}
    rm3 = _rm(N3)
    rm3.on_message(delivered(request, N1), now_ms=11)
    assert rm3.transient_attributes() == {}


def test_a_non_member_gets_no_transient_attribute() -> None:
    rm = _rm()
    out = rm.set_attribute(N3, "x", "1", now_ms=10)
    assert _broadcasts(out, ATTRIBUTE_MSG) == []
    assert any(isinstance(n, Notice) and n.code == "ATTRIBUTE_REFUSED" for n in out)


def test_a_peers_attributes_count_while_it_is_a_member_only() -> None:
    rm = _rm()
    report = StateReport(
        (1, 1), CONFIG.epoch, CONFIG.digest()[:16], True, False, {}, attributes={"pingd": "1"}
    )
    rm.on_message(delivered(encode(report), N2), now_ms=5)
    assert rm.transient_attributes() == {}  # not a member yet
    rm._members = frozenset({N1, N2})
    assert rm.transient_attributes() == {N2: {"pingd": "1"}}
    assert rm.snapshot(6).transient_attributes == {N2: {"pingd": "1"}}


def test_connectivity_is_damped() -> None:
    rm = _rm(ping_dampen_ms=1000, ping_multiplier=100)
    rm.on_connectivity(2, now_ms=0)
    assert rm.transient_attributes() == {}
    assert rm.next_deadline_ms() <= 1000
    rm.step(999)
    assert rm.transient_attributes() == {}
    rm.step(1000)
    assert rm.transient_attributes() == {N1: {"pingd": "200"}}
    # one lost ping node that comes back within the window moves nothing
    rm.on_connectivity(1, now_ms=2000)
    rm.on_connectivity(2, now_ms=2500)
    rm.step(3500)
    assert rm.transient_attributes() == {N1: {"pingd": "200"}}
    # a change that holds is set, under the configured name
    rm.on_connectivity(1, now_ms=4000)
    rm.step(5000)
    assert rm.transient_attributes() == {N1: {"pingd": "100"}}
