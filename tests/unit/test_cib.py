"""The resource configuration model: value syntax, lookups, check(), canonical JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core.cib import (
    AGENT_CLASSES,
    DEFAULT_OP_TIMEOUT_MS,
    INFINITY,
    ORDER_KINDS,
    ClusterConfig,
    Colocation,
    FencingLevel,
    Group,
    Location,
    Op,
    Order,
    Primitive,
    format_score,
    format_time_ms,
    parse_boolean,
    parse_score,
    parse_time_ms,
)

MONITOR = Op("monitor", 10_000, 20_000)


def _config(**changes: object) -> ClusterConfig:
    """A small, check-clean configuration; keyword arguments replace fields."""
    base = ClusterConfig(
        epoch=3,
        primitives=(
            Primitive("vip", "ocf", "heartbeat", "IPaddr2", (("ip", "192.0.2.10"),), (MONITOR,), ()),
            Primitive(
                "web", "lsb", None, "nginx", (), (Op("start", 0, 40_000),), (("target-role", "Stopped"),)
            ),
            Primitive("db", "ocf", "heartbeat", "pgsql", (), (), (("resource-stickiness", "50"),)),
            Primitive("fence1", "stonith", None, "fence_dummy", (("pcmk_host_list", "n1"),), (), ()),
            Primitive("legacy", "heartbeat", None, "Filesystem", (), (), (), ("/dev/sdb1", "/data")),
        ),
        groups=(Group("g", ("vip", "web"), (("resource-stickiness", "200"), ("failure-timeout", "60s"))),),
        locations=(Location("prefer-n1", "g", "n1", 100),),
        colocations=(Colocation("db-with-g", INFINITY, "db", "g"),),
        orders=(Order("g-then-db", "Mandatory", "g", "db"),),
        properties=(("cluster-name", "demo"),),
        rsc_defaults=(("migration-threshold", "3"),),
        op_defaults=(("timeout", "30s"),),
        node_attributes=(("n1", (("standby", "off"),)), ("n2", ())),
        fencing_levels=(FencingLevel("n1", 2, ("fence1",)), FencingLevel("n1", 1, ("fence1",))),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- value syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("inf", INFINITY),
        ("+inf", INFINITY),
        ("INFINITY", INFINITY),
        ("+INFINITY", INFINITY),
        ("-inf", -INFINITY),
        ("-INFINITY", -INFINITY),
        ("0", 0),
        ("100", 100),
        ("+7", 7),
        ("-5", -5),
        ("2000000", INFINITY),
        ("-99999999", -INFINITY),
    ],
)
def test_parse_score(text: str, score: int) -> None:
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["", "abc", "1.5", "inf:", "--1", "1e3"])
def test_parse_score_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected an integer score"):
        parse_score(text)


@pytest.mark.parametrize(("score", "text"), [(INFINITY, "inf"), (-INFINITY, "-inf"), (0, "0"), (-20, "-20")])
def test_format_score(score: int, text: str) -> None:
    assert format_score(score) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("10s", 10_000),
        ("500ms", 500),
        ("1m", 60_000),
        ("1min", 60_000),
        ("1h", 3_600_000),
        ("2hr", 7_200_000),
        ("10", 10_000),
        ("0", 0),
        ("1.5s", 1500),
        ("1500us", 2),
        ("10 s", 10_000),
        ("PT10S", 10_000),
        ("pt1m30s", 90_000),
        ("PT1H", 3_600_000),
        ("P1D", 86_400_000),
        ("P1DT1S", 86_401_000),
        ("PT0.5S", 500),
    ],
)
def test_parse_time_ms(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize("text", ["", "s", "10x", "-1s", "P", "PT", "P1DT", "P1Y", "1d", "ten"])
def test_parse_time_ms_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a time"):
        parse_time_ms(text)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (1500, "1500ms"), (10_000, "10s"), (60_000, "60s"), (900_000, "15m"), (3_600_000, "1h")],
)
def test_format_time_ms(ms: int, text: str) -> None:
    assert format_time_ms(ms) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_time_ms_parses_back(ms: int) -> None:
    assert parse_time_ms(format_time_ms(ms)) == ms


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("YES", True), ("on", True), ("0", False), ("n", False)]
)
def test_parse_boolean(text: str, value: bool) -> None:
    assert parse_boolean(text) is value


def test_parse_boolean_rejects() -> None:
    with pytest.raises(ValueError, match="expected on/off, yes/no, true/false"):
        parse_boolean("maybe")


# -- lookups and defaults -------------------------------------------------------------------------


def test_lookups() -> None:
    cfg = _config()
    assert cfg.primitive("vip").agent == "ocf:heartbeat:IPaddr2"
    assert cfg.primitive("web").agent == "lsb:nginx"
    assert cfg.primitive("vip").param("ip") == "192.0.2.10"
    assert cfg.group_of("web") == cfg.groups[0]
    assert cfg.group_of("db") is None
    assert cfg.group("g").members == ("vip", "web")
    assert cfg.resource_ids() == ("vip", "web", "db", "fence1", "legacy")
    assert cfg.node_attribute("n1", "standby") == "off"
    assert cfg.node_attribute("n2", "standby") is None
    with pytest.raises(KeyError):
        cfg.primitive("nope")
    with pytest.raises(KeyError):
        cfg.group("nope")


def test_property_defaults_are_the_safe_ones() -> None:
    cfg = _config()
    assert cfg.property("cluster-name") == "demo"
    assert cfg.property("stonith-enabled") == "true"
    assert cfg.property("no-quorum-policy") == "stop"
    assert cfg.property("no-such-thing") is None
    assert cfg.property("no-such-thing", "x") == "x"
    assert cfg.is_stonith_enabled()
    off = _config(properties=(("stonith-enabled", "false"),))
    assert not off.is_stonith_enabled()


def test_meta_of_resource_then_group_then_rsc_defaults_then_default() -> None:
    cfg = _config()
    assert cfg.meta_of("db", "resource-stickiness") == "50"  # its own
    assert cfg.meta_of("vip", "resource-stickiness") == "200"  # its group's
    assert cfg.meta_of("g", "resource-stickiness") == "200"  # the group itself
    assert cfg.meta_of("vip", "migration-threshold") == "3"  # rsc_defaults
    assert cfg.meta_of("vip", "priority") == "0"  # built-in default
    assert cfg.meta_of("vip", "made-up") is None
    assert cfg.meta_of("vip", "made-up", "d") == "d"


def test_typed_views() -> None:
    cfg = _config()
    assert cfg.stickiness_of("db") == 50
    assert cfg.stickiness_of("fence1") == 0
    assert cfg.target_role_of("web") == "Stopped"
    assert cfg.target_role_of("vip") == "Started"
    assert cfg.migration_threshold_of("vip") == 3
    assert _config(rsc_defaults=()).migration_threshold_of("vip") == INFINITY
    assert cfg.failure_timeout_ms_of("vip") == 60_000
    assert cfg.failure_timeout_ms_of("db") == 0
    assert cfg.op_timeout_ms("vip", "monitor", 10_000) == 20_000
    assert cfg.op_timeout_ms("web", "start") == 40_000
    assert cfg.op_timeout_ms("web", "stop") == 30_000  # op_defaults
    assert _config(op_defaults=()).op_timeout_ms("web", "stop") == DEFAULT_OP_TIMEOUT_MS
    assert [lv.index for lv in cfg.fencing_levels_for("n1")] == [1, 2]
    assert cfg.fencing_levels_for("n2") == ()


# -- check() --------------------------------------------------------------------------------------


def test_check_clean() -> None:
    assert _config().check() == []


def _with_primitive(**changes: object) -> ClusterConfig:
    cfg = _config()
    db = dataclasses.replace(cfg.primitive("db"), **changes)  # type: ignore[arg-type]
    return _config(primitives=tuple(db if p.id == "db" else p for p in cfg.primitives))


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            _config(groups=(Group("g", ("vip", "ghost"), ()),)),
            "group g: member ghost is not a configured primitive",
        ),
        (_config(groups=(Group("g", (), ()),)), "group g: has no members"),
        (
            _config(groups=(Group("g", ("vip",), ()), Group("h", ("vip",), ()))),
            "group h: primitive vip is already in group g",
        ),
        (_config(groups=(Group("g", ("vip", "vip"), ()),)), "primitive vip is already in this group"),
        (_config(groups=(Group("g", ("vip", "fence1"), ()),)), "member fence1 is a stonith device"),
        (
            _config(groups=(Group("g", ("vip",), ()), Group("h", ("g",), ()))),
            "member g is a group; groups cannot be nested",
        ),
        (
            _config(locations=(Location("prefer-n1", "ghost", "n1", 1),)),
            "location prefer-n1: refers to ghost, which is neither",
        ),
        (_config(colocations=(Colocation("c", 1, "db", "db"),)), "colocates db with itself"),
        (_config(colocations=(Colocation("c", -1, "vip", "web"),)), "contradicts group g"),
        (_config(orders=(Order("o", "Mandatory", "db", "ghost"),)), "order o: refers to ghost"),
        (_config(orders=(Order("o", "Mandatory", "db", "db"),)), "orders db after itself"),
        (_config(orders=(Order("o", "Sometimes", "db", "g"),)), "kind 'Sometimes' is unknown"),
        (
            _config(orders=(Order("vip", "Mandatory", "db", "g"),)),
            "order vip: id is already used by a primitive",
        ),
        (_config(locations=(Location("1bad", "g", "n1", 1),)), "location 1bad: is not a valid id"),
        (_with_primitive(agent_class="systemd"), "agent class 'systemd' is not supported"),
        (_with_primitive(provider=None), "an ocf agent needs a provider"),
        (_with_primitive(agent_class="lsb"), "a lsb agent has no provider"),
        (_with_primitive(type="../x"), "is not a plain file name"),
        (_with_primitive(args=("a",)), "positional arguments are only for heartbeat-class"),
        (_with_primitive(params=(("a b", "1"),)), "attribute name 'a b' is not valid"),
        (_with_primitive(params=(("x", "1"), ("x", "2"))), "primitive db params: x is set twice"),
        (
            _with_primitive(meta=(("target-role", "Master"),)),
            "target-role=Master: only a promotable clone has that role",
        ),
        (_with_primitive(meta=(("resource-stickiness", "lots"),)), "meta resource-stickiness='lots'"),
        (_with_primitive(meta=(("migration-threshold", "-1"),)), "meta migration-threshold='-1'"),
        (_with_primitive(meta=(("failure-timeout", "soon"),)), "meta failure-timeout='soon'"),
        (_with_primitive(meta=(("priority", "high"),)), "meta priority='high'"),
        (_with_primitive(meta=(("is-managed", "perhaps"),)), "meta is-managed='perhaps'"),
        (_with_primitive(ops=(Op("monitor", -1, 0),)), "cannot be negative"),
        (_with_primitive(ops=(Op("monitor", 1, 0, on_fail="explode"),)), "on-fail=explode is unknown"),
        (
            _with_primitive(ops=(Op("monitor", 1, 0, role="Promoted"),)),
            "role=Promoted: db is not in a promotable clone",
        ),
        (_with_primitive(ops=(Op("monitor", 1, 0, role="Leader"),)), "role=Leader is not supported"),
        (_with_primitive(ops=(MONITOR, MONITOR)), "op monitor interval=10s is defined twice"),
        (_with_primitive(ops=(Op("", 0, 0),)), "op name '' is not valid"),
        (
            _config(properties=(("stonith-enabled", "sure"),)),
            "property stonith-enabled: value 'sure' is malformed",
        ),
        (_config(properties=(("no-quorum-policy", "panic"),)), "value 'panic' is malformed"),
        (_config(properties=(("stonith-timeout", "long"),)), "value 'long' is malformed"),
        (_config(properties=(("stonith-max-attempts", "-2"),)), "value '-2' is malformed"),
        (_config(rsc_defaults=(("resource-stickiness", "x"),)), "rsc_defaults: meta resource-stickiness='x'"),
        (_config(op_defaults=(("timeout", "x"),)), "op_defaults: timeout='x' is malformed"),
        (_config(op_defaults=(("on-fail", "x"),)), "op_defaults: on-fail='x' is malformed"),
        (_config(node_attributes=(("n1", ()), ("n1", ()))), "node n1: is defined twice"),
        (_config(fencing_levels=(FencingLevel("n1", 1, ("vip",)),)), "device vip is not a stonith primitive"),
        (_config(fencing_levels=(FencingLevel("n1", 0, ("fence1",)),)), "level index 0 must be at least 1"),
        (_config(fencing_levels=(FencingLevel("n1", 1, ()),)), "level 1 names no device"),
        (
            _config(fencing_levels=(FencingLevel("n1", 1, ("fence1",)), FencingLevel("n1", 1, ("fence1",)))),
            "level 1 is defined twice",
        ),
    ],
)
def test_check_finds(cfg: ClusterConfig, expected: str) -> None:
    problems = cfg.check()
    assert any(expected in problem for problem in problems), problems


def test_check_fence_on_fail_on_a_fencing_device() -> None:
    cfg = _config()
    fence = dataclasses.replace(cfg.primitive("fence1"), ops=(Op("monitor", 60_000, 0, on_fail="fence"),))
    problems = _config(primitives=(*cfg.primitives[:3], fence, cfg.primitives[4])).check()
    assert problems == [
        "primitive fence1: op monitor: on-fail=fence on a fencing device would fence to fix fencing; use restart"
    ]


def test_check_accepts_case_insensitive_target_role_and_inf() -> None:
    cfg = _with_primitive(meta=(("target-role", "stopped"), ("migration-threshold", "INFINITY")))
    assert cfg.check() == []
    assert cfg.target_role_of("db") == "Stopped"


# -- canonical JSON -------------------------------------------------------------------------------


def test_json_round_trip_and_canonical_text() -> None:
    cfg = _config()
    text = cfg.to_json()
    assert ClusterConfig.from_json(text) == cfg
    assert ClusterConfig.from_json(text.encode()) == cfg
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert " " not in text.replace("192.0.2.10", "")


def test_digest_ignores_epoch_and_source_but_not_content() -> None:
    cfg = _config()
    assert cfg.digest() == _config(epoch=99, source="/etc/ha.d/other.crm").digest()
    assert cfg.digest() != _config(properties=(("cluster-name", "other"),)).digest()
    assert len(cfg.digest()) == 64


def _mutated(path: tuple[object, ...], value: object) -> str:
    data = json.loads(_config().to_json())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Expecting value"),
        ("[]", "configuration: expected an object"),
        ('{"format": 1}', "missing keys"),
        (_mutated(("format",), 2), "format 2 is not 1"),
        (_mutated(("format",), True), "format True is not 1"),
        (_mutated(("extra",), 1), "unexpected keys \\['extra'\\]"),
        (_mutated(("epoch",), -1), "epoch: -1 is outside"),
        (_mutated(("epoch",), 1.0), "epoch: expected an integer, got float"),
        (_mutated(("epoch",), True), "epoch: expected an integer, got bool"),
        (_mutated(("primitives", 0, "agent_class"), "systemd"), "primitives\\[0\\].agent_class: 'systemd'"),
        (_mutated(("primitives", 0, "provider"), 5), "primitives\\[0\\].provider: expected a string"),
        (_mutated(("primitives", 0, "params"), [["ip"]]), "expected \\[name, value\\]"),
        (_mutated(("primitives", 0, "ops", 0, "interval_ms"), -5), "interval_ms: -5 is outside"),
        (_mutated(("primitives", 0, "ops", 0, "role"), 1), "role: expected a string"),
        (_mutated(("primitives", 0, "ops", 0, "depth"), KeyError), "missing keys \\['depth'\\]"),
        (_mutated(("groups", 0, "members"), "vip"), "members: expected a list"),
        (_mutated(("locations", 0, "score"), INFINITY + 1), "score: 1000001 is outside"),
        (_mutated(("orders", 0, "kind"), "mandatory"), "kind: 'mandatory' is not one of"),
        (_mutated(("orders", 0, "symmetrical"), 1), "symmetrical: expected true or false"),
        (_mutated(("fencing_levels", 0, "index"), 0), "index: 0 is outside"),
        (_mutated(("node_attributes", 0), ["n1"]), "expected \\[name, attributes\\]"),
        ("[" * 100_000, "nested too deeply"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_from_json_rejects(text: str | bytes, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        ClusterConfig.from_json(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150)
@given(_json)
def test_from_json_any_json_is_config_or_value_error(data: object) -> None:
    try:
        cfg = ClusterConfig.from_json(json.dumps(data))
    except ValueError:
        return
    assert isinstance(cfg, ClusterConfig)  # pragma: no cover - random JSON never has the shape


def _almost_valid() -> st.SearchStrategy[str]:
    """Valid configurations with one value swapped for random JSON: exercises every field."""

    def swap(data: dict[str, object], draw: st.DrawFn) -> str:
        paths: list[tuple[object, ...]] = []

        def walk(node: object, path: tuple[object, ...]) -> None:
            paths.append(path)
            if isinstance(node, dict):
                for key, child in node.items():
                    walk(child, (*path, key))
            elif isinstance(node, list):
                for index, child in enumerate(node):
                    walk(child, (*path, index))

        walk(data, ())
        path = draw(st.sampled_from(paths[1:]))
        target: object = data
        for key in path[:-1]:
            target = target[key]  # type: ignore[index]
        target[path[-1]] = draw(_json)  # type: ignore[index]
        return json.dumps(data)

    return st.composite(lambda draw: swap(json.loads(_config().to_json()), draw))()


@settings(max_examples=150)
@given(_almost_valid())
def test_from_json_swapped_value_is_config_or_value_error(text: str) -> None:
    try:
        cfg = ClusterConfig.from_json(text)
    except ValueError:
        return
    assert ClusterConfig.from_json(cfg.to_json()) == cfg


_ids = st.sampled_from(["a", "vip", "g-1", "_x.y"])
_strs = st.text(max_size=6)
_pairs = st.lists(st.tuples(_strs, _strs), max_size=3).map(tuple)
_ops = st.builds(
    Op,
    name=_strs,
    interval_ms=st.integers(0, 10**9),
    timeout_ms=st.integers(0, 10**9),
    depth=st.integers(0, 100),
    on_fail=st.none() | _strs,
    role=st.none() | _strs,
)
_shape_valid = st.builds(
    ClusterConfig,
    epoch=st.integers(0, 2**63),
    primitives=st.lists(
        st.builds(
            Primitive,
            id=_ids,
            agent_class=st.sampled_from(AGENT_CLASSES),
            provider=st.none() | _strs,
            type=_strs,
            params=_pairs,
            ops=st.lists(_ops, max_size=3).map(tuple),
            meta=_pairs,
            args=st.lists(_strs, max_size=3).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
    groups=st.lists(st.builds(Group, _ids, st.lists(_ids, max_size=3).map(tuple), _pairs), max_size=2).map(
        tuple
    ),
    locations=st.lists(
        st.builds(Location, _ids, _ids, _strs, st.integers(-INFINITY, INFINITY)), max_size=2
    ).map(tuple),
    colocations=st.lists(
        st.builds(Colocation, _ids, st.integers(-INFINITY, INFINITY), _ids, _ids), max_size=2
    ).map(tuple),
    orders=st.lists(
        st.builds(Order, _ids, st.sampled_from(ORDER_KINDS), _ids, _ids, st.booleans()), max_size=2
    ).map(tuple),
    properties=_pairs,
    rsc_defaults=_pairs,
    op_defaults=_pairs,
    node_attributes=st.lists(st.tuples(_strs, _pairs), max_size=2).map(tuple),
    fencing_levels=st.lists(
        st.builds(FencingLevel, _strs, st.integers(1, 9), st.lists(_strs, max_size=2).map(tuple)), max_size=2
    ).map(tuple),
    source=_strs,
)


@settings(max_examples=60, deadline=None)
@given(_shape_valid)
def test_json_round_trip_any_shape_valid_config(cfg: ClusterConfig) -> None:
    text = cfg.to_json()
    back = ClusterConfig.from_json(text)
    assert back == cfg
    assert back.to_json() == text
    assert back.digest() == cfg.digest()
    assert isinstance(cfg.check(), list)  # check() never raises, whatever the content
