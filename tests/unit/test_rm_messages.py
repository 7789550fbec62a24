"""The resource managers' messages: round trips, field validation, and hostile fields.

The invariant (as for the codec, STYLE.md §7): ``decode`` returns a typed message, None for a
type it does not know, or raises ``MessageError`` — whatever the fields are.  And the
resource manager changes nothing for a message that does not decode.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import INFINITY
from hacluster.core.crm import ResourceManager, RmSettings
from hacluster.core.effects import Broadcast, MessageDelivered, Notice
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState, ResourceReport
from hacluster.core.plan import Plan, Reason, ReasonCode, Role
from hacluster.core.rm_messages import (
    CLEANUP_MSG,
    CONFIG_MSG,
    FENCE_REQUEST_MSG,
    FENCED_MSG,
    PLAN_MSG,
    STATE_MSG,
    CleanupMessage,
    ConfigMessage,
    Fenced,
    FenceRequest,
    MessageError,
    PlanMessage,
    RmMessage,
    StateReport,
    decode,
    encode,
)

N1, N2 = NodeName("n1"), NodeName("n2")
CONFIG = parse_resources_crm(
    "primitive vip ocf:hacluster:Dummy\nprimitive db ocf:hacluster:Dummy\nproperty stonith-enabled=false\n",
    "t.crm",
    epoch=3,
)
MTYPES = (STATE_MSG, PLAN_MSG, CONFIG_MSG, CLEANUP_MSG, FENCE_REQUEST_MSG, FENCED_MSG)


def delivered(broadcast: Broadcast, src: NodeName = N2) -> MessageDelivered:
    """As membership delivers it: our fields plus membership's own (which decode ignores)."""
    return MessageDelivered(src, broadcast.mtype, (("t", broadcast.mtype), ("seq", "5"), *broadcast.pairs))


EXAMPLES: list[RmMessage] = [
    StateReport((7, 1), 3, "abcdef0123456789", True, False, {}),
    StateReport(
        (7, 2),
        3,
        "abcdef0123456789",
        False,
        True,
        {
            "vip": ResourceReport(LocalState.STARTED),
            "db": ResourceReport(LocalState.FAILED, 2, True, "monitor (every 1000 ms)", 1, "it broke"),
            "app": ResourceReport(LocalState.STARTED, role=Role.PROMOTED),
        },
        down=frozenset({N1, NodeName("n3")}),
        lost=frozenset({NodeName("n4")}),
    ),
    PlanMessage(
        4,
        (7, 4),
        3,
        Plan(
            {"vip": N1, "db": None},
            {
                "vip": Reason(ReasonCode.PLACED, "goes to n1 (score 0)"),
                "db": Reason(ReasonCode.TARGET_ROLE_STOPPED, "target-role is Stopped"),
            },
            frozenset({N2}),
            held=frozenset({"x"}),
            roles={"vip": Role.PROMOTED},
        ),
    ),
    ConfigMessage(CONFIG),
    CleanupMessage("vip", ""),
    CleanupMessage("", ""),
    FenceRequest(N1, N2, "stop of vip failed there"),
    Fenced(N1, "fence-lab", 120, "it left the membership without a clean stop"),
    StateReport((7, 3), 3, "abcdef0123456789", True, False, {}, watchdog_ms=5000),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: RmMessage) -> None:
    assert decode(delivered(encode(message))) == message


def test_the_wire_form_of_a_report_is_the_compact_json_peers_already_send() -> None:
    report = StateReport(
        (7, 2), 3, "d", True, False, {"db": ResourceReport(LocalState.FAILED, 2, True, "start", 1)}
    )
    pairs = dict(encode(report).pairs)
    assert pairs["sq"] == "7:2"
    assert (pairs["ep"], pairs["dg"], pairs["pr"], pairs["lv"]) == ("3", "d", "1", "0")
    assert json.loads(pairs["r"]) == {"db": {"s": "failed", "fc": 2, "ba": 1, "op": "start", "rc": 1}}


def test_a_report_of_the_previous_version_has_no_down_or_lost_nodes() -> None:
    """``dn`` and ``ls`` came later: a node that does not send them still reports."""
    old = Broadcast(STATE_MSG, tuple((k, v) for k, v in encode(EXAMPLES[1]).pairs if k not in ("dn", "ls")))
    report = decode(delivered(old))
    assert isinstance(report, StateReport)
    assert (report.down, report.lost) == (frozenset(), frozenset())
    assert dict(encode(EXAMPLES[1]).pairs)["dn"] == "n1,n3"


def test_an_unknown_message_type_is_not_an_error() -> None:
    assert decode(MessageDelivered(N2, "hac_from_a_newer_version", (("x", "1"),))) is None


def _with(broadcast: Broadcast, name: str, value: str | None) -> Broadcast:
    pairs = tuple((k, v) for k, v in broadcast.pairs if k != name)
    return Broadcast(broadcast.mtype, pairs if value is None else (*pairs, (name, value)))


STATE = encode(EXAMPLES[1])
PLAN = encode(EXAMPLES[2])


@pytest.mark.parametrize(
    ("broadcast", "name", "value", "problem"),
    [
        (STATE, "sq", None, "field sq is missing"),
        (STATE, "sq", "7", "sq must be generation:counter"),
        (STATE, "sq", "7:-1", "sq"),
        (STATE, "ep", "three", "ep must be a whole number"),
        (STATE, "ep", "--3", "ep must be a whole number"),
        (STATE, "pr", "yes", "pr must be 0 or 1"),
        (STATE, "r", "{not json", "r is not JSON"),
        (STATE, "r", "[]", "r must be a JSON object"),
        (STATE, "r", '{"vip": {"s": "dancing"}}', "r.vip.s is not a resource state"),
        (STATE, "r", '{"vip": {"s": "started", "fc": -1}}', "r.vip.fc -1 is out of range"),
        (STATE, "r", f'{{"vip": {{"s": "started", "fc": {INFINITY + 1}}}}}', "r.vip.fc"),
        (STATE, "r", '{"vip": {"s": "started", "fc": true}}', "r.vip.fc must be a whole number"),
        (STATE, "r", '{"vip": {"s": "started", "extra": 1}}', "unknown keys"),
        (STATE, "r", '{"vip": {"s": "started", "ro": "Boss"}}', "r.vip.ro is not a role"),
        (STATE, "r", '{"": {"s": "started"}}', "r: resource id is empty"),
        (STATE, "r", "[" * 100_000 + "]" * 100_000, "r is not JSON"),
        (STATE, "dn", "n1,,n3", "dn[1] is empty"),
        (STATE, "dn", "n1,n1", "dn names a node twice"),
        (STATE, "ls", "n" * 256, "ls[0] is longer than 255 characters"),
        (STATE, "ls", ",".join(f"n{i}" for i in range(20_000)), "ls is longer than 256 node names"),
        (PLAN, "plan", '{"a": {}, "why": {"x": "t"}, "code": {}, "fence": []}', "name different resources"),
        (
            PLAN,
            "plan",
            '{"a": {}, "why": {"x": "t"}, "code": {"x": "vibes"}, "fence": []}',
            "not a reason code",
        ),
        (PLAN, "plan", '{"a": {"x": 5}, "why": {}, "code": {}, "fence": []}', "plan.a.x must be a string"),
        (PLAN, "plan", '{"a": {}, "why": {}, "code": {}, "fence": "n1"}', "plan.fence must be a list"),
        (encode(EXAMPLES[3]), "cfg", '{"format": 1}', "cfg:"),
        (encode(EXAMPLES[3]), "ep", "4", "ep 4 is not the configuration's epoch 3"),
        (encode(EXAMPLES[6]), "target", "", "target is empty"),
        (encode(EXAMPLES[7]), "ms", "1.5", "ms must be a whole number"),
    ],
)
def test_a_bad_field_is_a_message_error_naming_it(
    broadcast: Broadcast, name: str, value: str | None, problem: str
) -> None:
    with pytest.raises(MessageError) as caught:
        decode(delivered(_with(broadcast, name, value)))
    assert problem in caught.value.problem


# --- fuzz: any fields at all ----------------------------------------------------------------------


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )


def _decodes_or_refuses(message: MessageDelivered) -> RmMessage | None:
    """The invariant: a message, None, or MessageError; anything else fails the test."""
    try:
        return decode(message)
    except MessageError:
        return None


FIELD_NAMES = st.sampled_from(
    [
        "sq",
        "ep",
        "dg",
        "pr",
        "lv",
        "r",
        "id",
        "plan",
        "cfg",
        "rsc",
        "node",
        "target",
        "executor",
        "reason",
        "device",
        "ms",
        "t",
    ]
)
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
VALUES = (
    st.text(max_size=40)
    | JSONISH.map(json.dumps)
    | st.sampled_from(["0", "1", "-1", "7:3", "", "::", "9" * 30])
)


@fuzz(800)
@given(st.sampled_from(MTYPES), st.lists(st.tuples(FIELD_NAMES, VALUES), max_size=8))
def test_any_fields_give_a_message_or_a_message_error(mtype: str, fields: list[tuple[str, str]]) -> None:
    _decodes_or_refuses(MessageDelivered(N2, mtype, tuple(fields)))


@fuzz(500)
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutating_one_field_of_a_real_message_gives_a_message_or_a_message_error(
    message: RmMessage, data: st.DataObject
) -> None:
    broadcast = encode(message)
    name = data.draw(st.sampled_from([k for k, _ in broadcast.pairs]))
    value = data.draw(VALUES)
    _decodes_or_refuses(delivered(_with(broadcast, name, value)))


@fuzz(400)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.dictionaries(
            st.sampled_from(["s", "fc", "ba", "op", "rc", "why", "ro", "zz"]), JSONISH, max_size=5
        ),
        max_size=4,
    )
)
def test_any_resource_json_gives_a_report_or_a_message_error(resources: dict[str, dict[str, object]]) -> None:
    _decodes_or_refuses(delivered(_with(STATE, "r", json.dumps(resources))))


# --- a message that does not decode changes nothing ---------------------------------------------------


def test_a_report_with_one_bad_field_changes_nothing() -> None:
    rm = ResourceManager(RmSettings(node=N1, nodes=(N1, N2)), CONFIG, now_ms=0)
    good = StateReport((9, 1), 3, "0" * 16, True, False, {"vip": ResourceReport(LocalState.STARTED)})
    rm.on_message(delivered(encode(good)), now_ms=10)
    before = (rm.observed(), rm.failcounts(), rm.reports())
    bad_entry = '{"vip": {"s": "stopped"}, "db": {"s": "started", "fc": "lots"}}'
    out = rm.on_message(
        delivered(_with(encode(StateReport((9, 2), 3, "0" * 16, True, False)), "r", bad_entry)), now_ms=20
    )
    assert (rm.observed(), rm.failcounts(), rm.reports()) == before
    notices = [e for e in out if isinstance(e, Notice)]
    assert [n.code for n in notices] == ["RM_MESSAGE_REJECTED"]
    assert "hac_state from n2 rejected: r.db.fc must be a whole number" in notices[0].text
    assert not [e for e in out if isinstance(e, Broadcast)], "a refused message triggers nothing"


def test_a_report_without_wd_is_one_without_a_watchdog_and_a_bad_wd_is_refused() -> None:
    plain = encode(StateReport((7, 1), 3, "ab", True, False, {}))
    assert "wd" not in dict(plain.pairs)  # the previous version's wire form, unchanged
    report = decode(delivered(plain))
    assert isinstance(report, StateReport)
    assert report.watchdog_ms == 0
    bad = Broadcast(STATE_MSG, (*plain.pairs, ("wd", "-5")))
    with pytest.raises(MessageError, match="wd"):
        decode(delivered(bad))
