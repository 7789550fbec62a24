"""resources.crm: every construct, every error with its file:line, and render/parse round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.config.resources_crm import OP_NAMES, parse_resources_crm, quote_value, render_resources_crm
from hacluster.core.cib import (
    INFINITY,
    ON_FAIL_VALUES,
    ORDER_KINDS,
    ClusterConfig,
    Colocation,
    FencingLevel,
    Group,
    Location,
    Op,
    Order,
    Primitive,
)
from hacluster.errors import ConfigError

PRIMS = "primitive a Dummy\nprimitive b Dummy\nprimitive c Dummy\nprimitive f stonith:fence_dummy\n"
"""Resources that constraint tests refer to."""


def _parse(text: str) -> ClusterConfig:
    return parse_resources_crm(text, "r.crm")


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    return info.value.problems


# -- primitives -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "cls", "provider", "type_"),
    [
        ("IPaddr2", "ocf", "heartbeat", "IPaddr2"),
        ("ocf:pacemaker:Dummy", "ocf", "pacemaker", "Dummy"),
        ("ocf:hacluster:IPaddr2", "ocf", "hacluster", "IPaddr2"),
        ("lsb:nginx", "lsb", None, "nginx"),
        ("heartbeat:apache", "heartbeat", None, "apache"),
        ("stonith:fence_ipmilan", "stonith", None, "fence_ipmilan"),
    ],
)
def test_agent_forms(agent: str, cls: str, provider: str | None, type_: str) -> None:
    p = _parse(f"primitive x {agent}\n").primitive("x")
    assert (p.agent_class, p.provider, p.type) == (cls, provider, type_)


def test_primitive_sections_in_any_order_with_quotes_and_continuations() -> None:
    text = (
        "# a comment line\n"
        "primitive vip IPaddr2 \\\n"
        "\tmeta target-role=Stopped \\\n"
        '\tparams ip=192.0.2.10 label="a b" esc="say \\"hi\\" \\\\o/" single=\'x y\' empty="" pw=ab#c \\\n'
        "\top monitor interval=10s timeout=20s depth=10 on-fail=block role=started \\\n"
        "\top start interval=0 timeout=1m   # trailing comment\n"
    )
    p = _parse(text).primitive("vip")
    assert p.params == (
        ("ip", "192.0.2.10"),
        ("label", "a b"),
        ("esc", 'say "hi" \\o/'),
        ("single", "x y"),
        ("empty", ""),
        ("pw", "ab#c"),
    )
    assert p.meta == (("target-role", "Stopped"),)
    assert p.ops == (Op("monitor", 10_000, 20_000, 10, "block", "Started"), Op("start", 0, 60_000))


def test_op_without_timeout_leaves_it_to_op_defaults() -> None:
    cfg = _parse("primitive x Dummy op monitor interval=PT30S OCF_CHECK_LEVEL=20\nop_defaults timeout=45s\n")
    assert cfg.primitive("x").ops == (Op("monitor", 30_000, 0, 20),)
    assert cfg.op_timeout_ms("x", "monitor", 30_000) == 45_000


def test_stonith_primitive_with_host_list() -> None:
    cfg = _parse(
        'primitive f1 stonith:fence_ipmilan params ip=10.0.0.1 pcmk_host_list="n1 n2" op monitor interval=60s\n'
    )
    assert cfg.primitive("f1").param("pcmk_host_list") == "n1 n2"


def test_heartbeat_args_extension() -> None:
    cfg = _parse('primitive fs heartbeat:Filesystem args /dev/sdb1 /data "op" ""\n')
    assert cfg.primitive("fs").args == ("/dev/sdb1", "/data", "op", "")


def test_crlf_line_endings() -> None:
    assert _parse("primitive x Dummy \\\r\n  params a=1\r\n").primitive("x").params == (("a", "1"),)


# -- groups, constraints --------------------------------------------------------------------------


def test_group_keeps_order_and_meta() -> None:
    cfg = _parse(PRIMS + "group g c a b meta target-role=Stopped\n")
    assert cfg.groups == (Group("g", ("c", "a", "b"), (("target-role", "Stopped"),)),)
    assert cfg.target_role_of("a") == "Stopped"


@pytest.mark.parametrize(
    ("line", "location"),
    [
        ("location l a 100: n1", Location("l", "a", "n1", 100)),
        ("location l a inf: n1", Location("l", "a", "n1", INFINITY)),
        ("location l a -inf: N1", Location("l", "a", "n1", -INFINITY)),
        ("location l a -INFINITY: n1", Location("l", "a", "n1", -INFINITY)),
        ("location l a 50:n1", Location("l", "a", "n1", 50)),
        ("location l a 99999999: n1", Location("l", "a", "n1", INFINITY)),
    ],
)
def test_location(line: str, location: Location) -> None:
    assert _parse(PRIMS + line + "\n").locations == (location,)


@pytest.mark.parametrize(
    ("line", "colocations"),
    [
        ("colocation co inf: a b", (Colocation("co", INFINITY, "a", "b"),)),
        ("collocation co -100: a b:Started", (Colocation("co", -100, "a", "b"),)),
        (
            "colocation co inf: a b c",
            (Colocation("co-1", INFINITY, "a", "b"), Colocation("co-2", INFINITY, "b", "c")),
        ),
    ],
)
def test_colocation(line: str, colocations: tuple[Colocation, ...]) -> None:
    assert _parse(PRIMS + line + "\n").colocations == colocations


@pytest.mark.parametrize(
    ("line", "orders"),
    [
        ("order o Mandatory: a b", (Order("o", "Mandatory", "a", "b"),)),
        ("order o mandatory: a b", (Order("o", "Mandatory", "a", "b"),)),
        ("order o inf: a:start b:start", (Order("o", "Mandatory", "a", "b"),)),
        ("order o 10: a b", (Order("o", "Mandatory", "a", "b"),)),
        ("order o 0: a b", (Order("o", "Optional", "a", "b"),)),
        ("order o Optional: a b symmetrical=false", (Order("o", "Optional", "a", "b", False),)),
        ("order o Serialize: a b", (Order("o", "Serialize", "a", "b"),)),
        (
            "order o Mandatory: a b c",
            (Order("o-1", "Mandatory", "a", "b"), Order("o-2", "Mandatory", "b", "c")),
        ),
    ],
)
def test_order(line: str, orders: tuple[Order, ...]) -> None:
    assert _parse(PRIMS + line + "\n").orders == orders


# -- properties, defaults, nodes, fencing ---------------------------------------------------------


def test_properties_and_defaults() -> None:
    cfg = _parse(
        "property cib-bootstrap-options: stonith-enabled=false \\\n  no-quorum-policy=ignore\n"
        "property cluster-name=demo\n"
        "rsc_defaults rsc-options: resource-stickiness=100 migration-threshold=3\n"
        "op_defaults timeout=60s\n"
    )
    assert cfg.properties == (
        ("stonith-enabled", "false"),
        ("no-quorum-policy", "ignore"),
        ("cluster-name", "demo"),
    )
    assert cfg.rsc_defaults == (("resource-stickiness", "100"), ("migration-threshold", "3"))
    assert cfg.op_defaults == (("timeout", "60s"),)
    assert not cfg.is_stonith_enabled()


def test_safe_defaults_when_nothing_is_set() -> None:
    cfg = _parse("primitive x Dummy\n")
    assert cfg.is_stonith_enabled()
    assert cfg.property("no-quorum-policy") == "stop"
    assert cfg.stickiness_of("x") == 0
    assert cfg.migration_threshold_of("x") == INFINITY
    assert cfg.failure_timeout_ms_of("x") == 0


def test_nodes() -> None:
    cfg = _parse("node 1: node1\nnode Node2 attributes standby=on site=a\nnode n3:normal\n")
    assert cfg.node_attributes == (("node1", ()), ("node2", (("standby", "on"), ("site", "a"))), ("n3", ()))


def test_fencing_topology() -> None:
    cfg = _parse(
        PRIMS
        + "primitive g stonith:fence_dummy\nfencing_topology n1: f g,f \\\n  N2: g\nfencing_topology n1: g\n"
    )
    assert cfg.fencing_levels == (
        FencingLevel("n1", 1, ("f",)),
        FencingLevel("n1", 2, ("g", "f")),
        FencingLevel("n2", 1, ("g",)),
        FencingLevel("n1", 3, ("g",)),
    )


def test_epoch_and_source() -> None:
    cfg = parse_resources_crm("", "/etc/ha.d/resources.crm", epoch=7)
    assert (cfg.epoch, cfg.source, cfg.primitives) == (7, "/etc/ha.d/resources.crm", ())


def test_reference_configure_show_sample() -> None:
    """crm-cli.md §4's `crm configure show` output, minus the clone and systemd lines we refuse."""
    text = (
        "node 1: node1\n"
        "node 2: node2\n"
        "primitive fence-n1 stonith:fence_dummy \\\n\tparams pcmk_host_list=node1 \\\n\top monitor interval=60s\n"
        "primitive vip IPaddr2 \\\n\tparams ip=192.0.2.10 cidr_netmask=24 \\\n\top monitor interval=10s\n"
        "primitive web lsb:nginx \\\n\top monitor interval=30s\n"
        "group g-web vip web\n"
        "property cib-bootstrap-options: \\\n\tstonith-enabled=true \\\n\tcluster-name=demo\n"
    )
    cfg = _parse(text)
    assert cfg.group("g-web").members == ("vip", "web")
    assert cfg.primitive("vip").agent == "ocf:heartbeat:IPaddr2"
    assert _parse(render_resources_crm(cfg)) == cfg


def test_render_shape() -> None:
    cfg = _parse("primitive vip IPaddr2 params ip=192.0.2.10 op monitor interval=10s\n")
    assert render_resources_crm(cfg) == (
        "primitive vip ocf:heartbeat:IPaddr2 \\\n\tparams ip=192.0.2.10 \\\n\top monitor interval=10s\n"
    )


@pytest.mark.parametrize(
    ("value", "text"), [("a", "a"), ("a b", '"a b"'), ("", '""'), ('q"\\', '"q\\"\\\\"'), ("#x", '"#x"')]
)
def test_quote_value(value: str, text: str) -> None:
    assert quote_value(value) == text


def test_render_refuses_line_breaks() -> None:
    cfg = ClusterConfig(
        0, (Primitive("x", "lsb", None, "y", (("a", "1\n2"),), (), ()),), (), (), (), (), (), (), ()
    )
    with pytest.raises(ValueError, match="control character"):
        render_resources_crm(cfg)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("primtive x Dummy", "r.crm:1: primtive: unknown statement; expected one of primitive, "),
        ("primtive x Dummy", "did you mean primitive?"),
        ("clone c x", "r.crm:1: clone c: child x is neither a primitive nor a group"),
        ("clone c", "r.crm:1: clone c: needs an id and the resource it clones"),
        ("primitive a Dummy\nclone c a params x=1", "params x: a clone has no params"),
        ("primitive a Dummy\nclone c a meta clone-max=many", "meta clone-max='many' is malformed"),
        (
            "primitive a Dummy\nclone c a meta promoted-max=2",
            "promoted-max applies only to promotable clones",
        ),
        ("primitive a Dummy\nclone c a\nclone d a", "a is already cloned by c"),
        ("primitive a Dummy\nms c a meta promotable=false", "ms with promotable=false; write clone instead"),
        ('"primitive" x Dummy', "unknown statement"),
        ("primitive x", "r.crm:1: primitive x: needs an id and an agent; write primitive ID"),
        ("primitive x ocf:IPaddr2", "ocf agent 'ocf:IPaddr2' needs a provider; write ocf:heartbeat:IPaddr2"),
        ("primitive x systemd:nginx", "agent class systemd is not supported; use lsb:NAME"),
        ("primitive x foo:bar", "agent 'foo:bar' is malformed; expected CLASS:PROVIDER:TYPE"),
        ("primitive x ocf::Dummy", "agent 'ocf::Dummy' is malformed"),
        ("primitive x lsb:heartbeat:foo", "a lsb agent has no provider; write lsb:foo"),
        ("primitive x Dummy params a", "'a' is not NAME=VALUE"),
        ("primitive x Dummy params =1", "'=1' is not NAME=VALUE"),
        ("primitive x Dummy params a=1 a=2", "params a is given twice; keep one"),
        ("primitive x Dummy meta a=1 meta a=2", "meta a is given twice"),
        ("primitive x Dummy op", "op needs a name"),
        ("primitive x Dummy op interval=10s", "op needs a name"),
        ("primitive x Dummy op monitr interval=10s", "op 'monitr' is unknown; expected one of start, "),
        ("primitive x Dummy op monitr interval=10s", "did you mean monitor?"),
        ("primitive x Dummy op monitor interval=soon", "op monitor: interval='soon'; expected a time"),
        ("primitive x Dummy op monitor timeout=0", "op monitor: timeout must be more than 0"),
        ("primitive x Dummy op monitor start-delay=1s", "start-delay is not supported; accepted: interval, "),
        ("primitive x Dummy op monitor OCF_CHECK_LEVEL=x", "OCF_CHECK_LEVEL='x'; expected 0, 10, 20"),
        ("primitive x Dummy op monitor interval=1s interval=2s", "interval is given twice"),
        ("primitive x Dummy op monitor depth=1 OCF_CHECK_LEVEL=2", "OCF_CHECK_LEVEL is given twice"),
        (
            "property placement-strategy=balanced\nprimitive x Dummy utilization cpu=1",
            "utilization-based placement",
        ),
        ("primitive x Dummy bogus", "unexpected 'bogus'; expected params, op, meta or args"),
        ("primitive x Dummy args a", "args is only for heartbeat-class scripts"),
        ('primitive x Dummy params a="b', 'r.crm:1: unterminated "quote'),
        ("group g", "r.crm:1: group g: needs an id and members"),
        ("primitive a Dummy\ngroup g a params x=1", "r.crm:2: group g: a group has no params"),
        ("primitive a Dummy\ngroup g a x=1", "'x=1' looks like an attribute; write meta x=1"),
        (PRIMS + "location l a rule -inf: defined", "defined needs an attribute name"),
        (PRIMS + "location l a rule defined pingd", "a rule needs a score and a colon"),
        (PRIMS + "location l a rule -inf: pingd lte 0 and", "and ends the rule"),
        (PRIMS + "location l a rule -inf: pingd lte 0 and x eq 1 or y eq 2", "a rule mixes and with or"),
        (PRIMS + "location l a rule -inf: pingd lte 0 nope", "expected and or or, got 'nope'"),
        (PRIMS + "location l a rule -inf: pingd", "'pingd' does not start an expression"),
        (PRIMS + "location l a rule -inf: date gt 2020-01-01", "date expressions in rules"),
        (PRIMS + "location l a rule $role=Boss -inf: defined x", "role 'Boss' is unknown"),
        (PRIMS + "location l a role=Promoted 100: n1", "only a promotable clone has that role"),
        (PRIMS + "location l a 100 n1", "write location ID RSC SCORE: NODE"),
        (PRIMS + "location l a", "write location ID RSC SCORE: NODE"),
        (PRIMS + "location l a 100: n1 n2", "write location ID RSC SCORE: NODE"),
        (PRIMS + "location l a abc: n1", "score 'abc'; expected an integer, inf or -inf"),
        (PRIMS + "location l a 100: bad!node", "'bad!node' is not a node name"),
        (PRIMS + "location l a:Boss 100: n1", "r.crm:5: location l: role 'Boss' is unknown"),
        (PRIMS + "location l { a b } 100: n1", "resource sets are not supported"),
        (PRIMS + "colocation c inf: a", "write colocation ID SCORE: RSC WITH_RSC"),
        (PRIMS + "colocation c inf a b", "write colocation ID SCORE: RSC WITH_RSC"),
        (
            PRIMS + "colocation c inf: a:Promoted b",
            "role Promoted of a: only a promotable clone has that role",
        ),
        (PRIMS + "colocation c inf: ( a b )", "resource sets are not supported"),
        (PRIMS + "colocation c inf: a b node-attribute=site", "colocation takes RSC or RSC:ROLE only"),
        (PRIMS + "order o Mandatory: a:halt b", "'a:halt': action 'halt' is unknown"),
        (PRIMS + "order o Mandatory: a:promote b", "a:promote: a is not a promotable clone"),
        (PRIMS + "order o Mandatory: a:stop b", "orders on the stop or demote action are not supported yet"),
        (PRIMS + "order o Sometimes: a b", "order kind 'Sometimes'; expected Mandatory, Optional, Serialize"),
        (PRIMS + "order o -inf: a b", "order score -inf is negative"),
        (
            PRIMS + "order o Mandatory: a b symmetrical=maybe",
            "'symmetrical=maybe': expected on/off, yes/no, true/false",
        ),
        (PRIMS + "order o Mandatory: a b kind=x", "only symmetrical=true|false is"),
        (PRIMS + "order o Mandatory: a", "write order ID KIND: FIRST THEN"),
        ("property", "r.crm:1: property: sets nothing; write property NAME=VALUE"),
        ("property cib-bootstrap-options:", "sets nothing"),
        (
            "property stonith-enabled=true\nproperty stonith-enabled=false",
            "r.crm:2: property stonith-enabled=false: ",
        ),
        ("property stonith-enabled=true\nproperty stonith-enabled=false", "already set; keep one"),
        ("property foo", "'foo' is not NAME=VALUE"),
        ("node", "write node NAME"),
        ("node 1:", "write node NAME"),
        ("node n1 bogus", "unexpected 'bogus'"),
        ("node n1:remote", "Pacemaker Remote nodes and guest nodes are not supported"),
        ("node n1\nnode N1", "r.crm:2: node N1: node n1 is already defined"),
        ("property placement-strategy=utilization\nnode n1 utilization cpu=1", "utilization-based placement"),
        ("node n1 attributes a=1 attributes a=2", "attribute a is given twice"),
        (PRIMS + "fencing_topology f", "level 'f' has no target node"),
        ("fencing_topology", "write fencing_topology NODE: DEV"),
        (PRIMS + "fencing_topology n1: f,,f", "has an empty device name"),
        (PRIMS + "fencing_topology n1: attr=x", "only node targets are supported"),
        (
            PRIMS + "fencing_topology n1: a",
            "r.crm:5: fencing_topology n1: device a is not a stonith primitive",
        ),
    ],
)
def test_errors(text: str, expected: str) -> None:
    problems = _problems(text + "\n")
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "primitive a Dummy\n\ngroup g a ghost\n",
            "r.crm:3: group g: member ghost is not a configured primitive; define it or remove it from the group",
        ),
        (
            "primitive a Dummy\n# x\nprimitive b Dummy \\\n  meta target-role=Master\n",
            "r.crm:3: primitive b: target-role=Master: only a promotable clone has that role",
        ),
        ("primitive a Dummy\nprimitive a Dummy\n", "r.crm:2: primitive a: id is already used by a primitive"),
        ("primitive a Dummy\ngroup a a\n", "r.crm:2: group a: id is already used by a primitive"),
        (
            "primitive f stonith:fence_dummy\nprimitive a Dummy\ngroup g a f\n",
            "r.crm:3: group g: member f is a stonith device",
        ),
        (
            "primitive a Dummy\nprimitive b Dummy\ngroup g a\ngroup h a b\n",
            "r.crm:4: group h: primitive a is already in group g",
        ),
        ("primitive a Dummy\nlocation l ghost 1: n1\n", "r.crm:2: location l: refers to ghost"),
        (
            "primitive a Dummy\nprimitive b Dummy\norder o Mandatory: a b ghost\n",
            "r.crm:3: order o-2: refers to ghost",
        ),
        (
            "property stonith-enabled=perhaps\n",
            "r.crm:1: property stonith-enabled: value 'perhaps' is malformed",
        ),
        (
            "rsc_defaults resource-stickiness=x\n",
            "r.crm:1: rsc_defaults: meta resource-stickiness='x' is malformed",
        ),
        ("op_defaults timeout=x\n", "r.crm:1: op_defaults: timeout='x' is malformed"),
        ("primitive 9x Dummy\n", "r.crm:1: primitive 9x: is not a valid id"),
    ],
)
def test_semantic_errors_name_the_defining_line(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_bad_statement_is_reported_once() -> None:
    """The group names a primitive that failed to parse: no second complaint about it."""
    problems = _problems("primitive a nosuch:x\ngroup g a\nlocation l a 1: n1\n")
    assert len(problems) == 1
    assert problems[0].startswith("r.crm:1: primitive a: agent 'nosuch:x' is malformed")


def test_all_errors_are_reported_at_once() -> None:
    problems = _problems(
        "primitive x Dummy op monitr\n"  # 1
        "bogus line\n"  # 2
        "group g\n"  # 3
        "primitive y Dummy meta priority=high\n"  # 4
        'primitive z Dummy params a="b\n'  # 5
    )
    assert [p.split(":")[1] for p in problems] == ["1", "2", "3", "4", "5"]


# -- round trips ----------------------------------------------------------------------------------

_WORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\n\r"), max_size=12
)
_NAMES = st.sampled_from(["ip", "nic", "state", "fake", "pcmk_host_list", "x.y", "a-b", "_z"])
_NODES = st.sampled_from(["n1", "n2", "node-3", "a.b.c", "x_y"])
_SCORES = st.sampled_from([INFINITY, -INFINITY, 0, 1, -1, 100, 999_999])
_TIMES = st.sampled_from([0, 500, 1000, 10_000, 60_000, 900_000, 3_600_000, 1234])


def _unique_pairs(
    names: st.SearchStrategy[str], values: st.SearchStrategy[str]
) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    return st.lists(st.tuples(names, values), max_size=3, unique_by=lambda kv: kv[0]).map(tuple)


_META = _unique_pairs(st.sampled_from(["description", "x-note", "heartbeat-key"]), _WORDS)


@st.composite
def _primitive(draw: st.DrawFn, rsc_id: str) -> Primitive:
    agent_class = draw(st.sampled_from(["ocf", "lsb", "heartbeat", "stonith"]))
    ops = draw(
        st.lists(
            st.builds(
                Op,
                name=st.sampled_from(OP_NAMES),
                interval_ms=_TIMES,
                timeout_ms=_TIMES,
                depth=st.integers(0, 30),
                on_fail=st.none() | st.sampled_from([v for v in ON_FAIL_VALUES if v != "fence"]),
                role=st.none() | st.sampled_from(("Started", "Stopped")),
            ),
            max_size=3,
            unique_by=lambda op: (op.name, op.interval_ms),
        )
    )
    return Primitive(
        id=rsc_id,
        agent_class=agent_class,
        provider=draw(st.sampled_from(["heartbeat", "hacluster"])) if agent_class == "ocf" else None,
        type=draw(st.sampled_from(["Dummy", "IPaddr2", "fence_x", "apache"])),
        params=draw(_unique_pairs(_NAMES, _WORDS)),
        ops=tuple(ops),
        meta=draw(_META),
        args=tuple(draw(st.lists(_WORDS, max_size=3))) if agent_class == "heartbeat" else (),
    )


@st.composite
def _configs(draw: st.DrawFn) -> ClusterConfig:
    """Check-clean configurations in the order the parser produces them."""
    count = draw(st.integers(1, 5))
    primitives = [draw(_primitive(f"p{i}{draw(st.sampled_from(['', '.a', '-b_c']))}")) for i in range(count)]
    groupable = [p.id for p in primitives if p.agent_class != "stonith"]
    groups: list[Group] = []
    while groupable and draw(st.booleans()):
        size = draw(st.integers(1, len(groupable)))
        groups.append(Group(f"g{len(groups)}", tuple(groupable[:size]), draw(_META)))
        groupable = groupable[size:]
    group_of = {m: g.id for g in groups for m in g.members}
    resources = [p.id for p in primitives] + [g.id for g in groups]
    pairs = [
        (a, b)
        for a in resources
        for b in resources
        if a != b and (a not in group_of or group_of.get(a) != group_of.get(b))
    ]
    locations = [
        Location(f"l{i}", draw(st.sampled_from(resources)), draw(_NODES), draw(_SCORES))
        for i in range(draw(st.integers(0, 2)))
    ]
    colocations, orders = [], []
    if pairs:
        for i in range(draw(st.integers(0, 2))):
            rsc, with_rsc = draw(st.sampled_from(pairs))
            colocations.append(Colocation(f"c{i}", draw(_SCORES), rsc, with_rsc))
        for i in range(draw(st.integers(0, 2))):
            first, then = draw(st.sampled_from(pairs))
            orders.append(
                Order(f"o{i}", draw(st.sampled_from(ORDER_KINDS)), first, then, draw(st.booleans()))
            )
    stonith = [p.id for p in primitives if p.agent_class == "stonith"]
    levels: list[FencingLevel] = []
    if stonith:
        for target in draw(st.lists(_NODES, max_size=2, unique=True)):
            for index in range(1, draw(st.integers(1, 3)) + 1):
                devices = draw(st.lists(st.sampled_from(stonith), min_size=1, max_size=2))
                levels.append(FencingLevel(target, index, tuple(devices)))
    properties = draw(
        st.lists(
            st.sampled_from(
                [("stonith-enabled", "false"), ("no-quorum-policy", "ignore"), ("cluster-name", "demo two")]
            ),
            unique_by=lambda kv: kv[0],
        )
    )
    nodes = draw(
        st.lists(st.tuples(_NODES, _unique_pairs(_NAMES, _WORDS)), max_size=3, unique_by=lambda n: n[0])
    )
    return ClusterConfig(
        epoch=draw(st.integers(0, 1000)),
        primitives=tuple(primitives),
        groups=tuple(groups),
        locations=tuple(locations),
        colocations=tuple(colocations),
        orders=tuple(orders),
        properties=tuple(properties),
        rsc_defaults=draw(
            st.sampled_from([(), (("resource-stickiness", "-inf"),), (("migration-threshold", "3"),)])
        ),
        op_defaults=draw(st.sampled_from([(), (("timeout", "60s"),)])),
        node_attributes=tuple(nodes),
        fencing_levels=tuple(levels),
        source="gen.crm",
    )


@settings(max_examples=60, deadline=None)
@given(_configs())
def test_parse_render_round_trip(cfg: ClusterConfig) -> None:
    assert cfg.check() == []
    text = render_resources_crm(cfg)
    assert parse_resources_crm(text, "gen.crm", epoch=cfg.epoch) == cfg


def test_a_check_level_that_is_not_ascii_digits_is_refused_not_crashed_on() -> None:
    """Found by bench/bench_fuzz.py: "²".isdigit() is true, int("²") raises."""
    [problem] = _problems("primitive d ocf:hacluster:Dummy op monitor interval=1s OCF_CHECK_LEVEL=²\n")
    assert "OCF_CHECK_LEVEL='²'" in problem


CLONES = """\
primitive d Dummy
primitive st ocf:pacemaker:Stateful op monitor interval=10s role=Master op monitor interval=11s role=Slave
primitive vip IPaddr2 params ip=10.0.0.1
primitive g1 Dummy
primitive g2 Dummy
group g g1 g2
clone d-clone d meta clone-max=3 interleave=true
ms st-ms st meta master-max=1 notify=true
clone g-clone g
location vip-conn vip rule -inf: not_defined pingd or pingd lte 0
location st-pref st-ms rule $role=Master 100: #uname eq n1 rule score-attribute=prio: defined prio
location one vip rule 50: #uname eq n2
location promoted-n2 st-ms role=Promoted 20: n2
colocation vip-with-primary inf: vip st-ms:Master
order promote-then-vip Mandatory: st-ms:promote vip:start
"""


def test_clones_roles_and_rules_parse_render_and_round_trip() -> None:
    from hacluster.config.cib_xml import parse_cib_xml, render_cib_xml
    from hacluster.core.cib import ClusterConfig, Colocation, Location, Order

    warnings: list[str] = []
    cfg = parse_resources_crm(CLONES, "r.crm", warnings=warnings)
    assert [c.id for c in cfg.clones] == ["d-clone", "st-ms", "g-clone"]
    assert dict(cfg.clone("st-ms").meta) == {"promoted-max": "1", "notify": "true", "promotable": "true"}
    assert any("ms st-ms: the Pacemaker 1 form" in w and "write clone st-ms st meta" in w for w in warnings)
    assert any("role=Master: read as Promoted" in w for w in warnings)
    assert [op.role for op in cfg.primitive("st").ops] == ["Promoted", "Unpromoted"]
    assert cfg.colocations == (Colocation("vip-with-primary", 1_000_000, "vip", "st-ms", None, "Promoted"),)
    assert cfg.orders == (Order("promote-then-vip", "Mandatory", "st-ms", "vip", True, "promote", "start"),)
    by_id = {lc.id: lc for lc in cfg.locations}
    assert by_id["one"] == Location("one", "vip", "n2", 50)  # a lone #uname rule is a node score
    assert by_id["st-pref"].rules[0].role == "Promoted"
    assert by_id["st-pref"].rules[1].score_attribute == "prio"
    assert by_id["promoted-n2"].role == "Promoted"
    assert cfg.runnable_ids(2) == ("d:0", "d:1", "d:2", "st:0", "st:1", "vip", "g1:0", "g1:1", "g2:0", "g2:1")
    assert cfg.clone_settings("st-ms", 2).promoted_max == 1
    assert cfg.clone_settings("d-clone", 2).interleave
    assert cfg.stickiness_of("d:1") == 1  # clones stick by default, as in Pacemaker
    again = parse_resources_crm(render_resources_crm(cfg), "again.crm")
    assert again.digest() == cfg.digest()
    assert ClusterConfig.from_json(cfg.to_json()) == cfg
    imported = parse_cib_xml(render_cib_xml(cfg), "x.xml")
    assert imported.clones == cfg.clones
    assert imported.locations == cfg.locations
    assert imported.colocations == cfg.colocations
    assert imported.orders == cfg.orders


def test_a_configuration_without_clones_keeps_its_json() -> None:
    cfg = parse_resources_crm("primitive a Dummy\nlocation l a 10: n1\n", "r.crm")
    assert '"clones"' not in cfg.to_json()
    assert '"rules"' not in cfg.to_json()
