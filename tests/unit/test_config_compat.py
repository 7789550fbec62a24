"""Issue 13 and issue 12 items 5 and 8: files that Heartbeat, crmsh and Pacemaker accept load,
with their meaning; what a feature not built yet needs is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster.cli.client import CliError
from hacluster.cli.commands.configure import cib_text_of, import_text
from hacluster.config import cluster
from hacluster.config.cib_xml import parse_cib_xml, render_cib_xml
from hacluster.config.cluster import load_cluster
from hacluster.config.hacf import parse_hacf
from hacluster.config.haresources import parse_haresources
from hacluster.config.resources_crm import parse_resources_crm, render_resources_crm
from hacluster.config.values import parse_bool
from hacluster.config.values import parse_time_ms as hacf_time_ms
from hacluster.core.cib import FALSE_WORDS, TRUE_WORDS, parse_boolean, parse_time_ms
from hacluster.errors import ConfigError

# -- issue 12 item 5: one boolean parser, one time-unit table -------------------------------------


@pytest.mark.parametrize("word", sorted(TRUE_WORDS | FALSE_WORDS | {"YES", "Off"}))
def test_hacf_and_crm_read_booleans_alike(word: str) -> None:
    assert parse_bool(word) == parse_boolean(word) == (word.lower() in TRUE_WORDS)


@pytest.mark.parametrize("word", ["maybe", "", "2", "ja"])
def test_both_refuse_other_words(word: str) -> None:
    with pytest.raises(ValueError, match="expected on/off, yes/no"):
        parse_bool(word)
    with pytest.raises(ValueError, match="expected on/off, yes/no"):
        parse_boolean(word)


@pytest.mark.parametrize(
    ("text", "ms"), [("2", 2000), (".5", 500), ("500ms", 500), ("500msec", 500), ("1500us", 2), ("2s", 2000)]
)
def test_hacf_times(text: str, ms: int) -> None:
    assert hacf_time_ms(text) == ms == parse_time_ms(text)


@pytest.mark.parametrize("text", ["1min", "1h", "PT10S", "P40S", "1m"])
def test_hacf_has_no_minutes_hours_or_iso(text: str) -> None:
    parse_time_ms(text)  # crm reads it...
    with pytest.raises(ValueError, match="a number of seconds"):
        hacf_time_ms(text)  # ...ha.cf does not, as Heartbeat does not


# -- issue 12 item 8 ------------------------------------------------------------------------------


def test_cluster_glue_plugin_as_stonith_agent() -> None:
    cfg = parse_resources_crm('primitive st stonith:external/ssh params hostlist="n1 n2"\n', "r.crm")
    assert cfg.primitive("st").type == "external/ssh"
    assert cfg.primitive("st").param("hostlist") == "n1 n2"


@pytest.mark.parametrize("agent", ["stonith:external/../ssh", "stonith:/usr/sbin/x", "ocf:heartbeat:a/b"])
def test_agent_paths_stay_refused(agent: str) -> None:
    with pytest.raises(ConfigError, match="is not a plain file name"):
        parse_resources_crm(f"primitive st {agent}\n", "r.crm")


def test_priority_with_decimals_is_read_as_pacemaker_reads_it() -> None:
    warnings: list[str] = []
    cfg = parse_resources_crm("primitive p Dummy meta priority=1.0\n", "r.crm", warnings=warnings)
    assert cfg.meta_of("p", "priority") == "1"
    assert warnings == [
        "r.crm:1: meta priority=1.0: Pacemaker reads this as 1 and ignores '.0'; read as priority=1; write that"
    ]


@pytest.mark.parametrize(
    ("interval", "ms"), [("P40S", 40_000), ("PT40S", 40_000), ("P1DT1H", 90_000_000), ("P2H", 7_200_000)]
)
def test_iso_intervals(interval: str, ms: int) -> None:
    cfg = parse_resources_crm(f"primitive p Dummy op monitor interval={interval}\n", "r.crm")
    assert cfg.primitive("p").ops[0].interval_ms == ms


def test_iso_months_are_refused() -> None:
    with pytest.raises(ConfigError, match="interval='P1M'"):
        parse_resources_crm("primitive p Dummy op monitor interval=P1M\n", "r.crm")


# -- ha.cf ----------------------------------------------------------------------------------------


def _ports(text: str) -> dict[str, int]:
    result = parse_hacf(text, "ha.cf", "n1")
    assert not result.problems, result.problems
    links = result.values["links"]
    assert isinstance(links, tuple)
    return {link["name"]: link["port"] for link in links}


def test_udpport_694_after_bcast_changes_nothing_and_says_nothing() -> None:
    result = parse_hacf("node n1 n2\nbcast eth1\nudpport 694\n", "ha.cf", "n1")
    assert result.problems == []
    assert result.warnings == []


def test_udpport_after_media_follows_heartbeat() -> None:
    text = "node n1 n2\nbcast eth0\nudpport 700\nbcast eth1\nucast eth2 10.0.0.2\n"
    assert _ports(text) == {"bcast eth0": 694, "bcast eth1": 694, "ucast eth2": 700}
    assert parse_hacf(text, "ha.cf", "n1").warnings == [
        "ha.cf:3: udpport 700: each medium type (bcast, ucast) takes the udpport in effect at its first line, "
        "as Heartbeat 3.0.6 does, so the links use: bcast eth0 port 694, bcast eth1 port 694, ucast eth2 port "
        "700; put one udpport above the media lines"
    ]


def test_udp_is_bcast() -> None:
    result = parse_hacf("node n1 n2\nudp eth0\n", "ha.cf", "n1")
    assert _ports("node n1 n2\nudp eth0\n") == {"bcast eth0": 694}
    assert "'udp' is the old name of 'bcast'" in result.warnings[0]


@pytest.mark.parametrize("value", ["yes", "on", "respawn", "minimal", "manual", "true"])
def test_crm_values_heartbeat_knows(value: str) -> None:
    result = parse_hacf(f"node n1 n2\nbcast eth0\ncrm {value}\n", "ha.cf", "n1")
    assert result.problems == []
    assert result.values["crm"] == value


def test_crm_value_heartbeat_refuses() -> None:
    assert (
        "Heartbeat refuses other values too"
        in parse_hacf("node n1\nbcast e\ncrm bogus\n", "ha.cf", "n1").problems[0]
    )


# -- haresources ----------------------------------------------------------------------------------


def test_ipaddr_with_doubled_slash() -> None:
    cfg = parse_haresources("alton IPaddr::10.0.30.15//8/eth0:10\n", "haresources", check_scripts=False)
    assert cfg.primitives[0].params == (
        ("ip", "10.0.30.15"),
        ("cidr_netmask", "8"),
        ("nic", "eth0"),
        ("iflabel", "10"),
    )


def test_haresources_node_must_be_in_hacf() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_haresources("lisa 10.0.0.1\n", "haresources", check_scripts=False, nodes=("node1", "node2"))
    assert caught.value.problems == [
        'haresources:1: lisa: not a node of ha.cf (node1, node2); Heartbeat refuses it too ("Bad nodename in '
        'haresources"); start the line with the node that should run the group'
    ]


# -- all files at once, and crm on ---------------------------------------------------------------


def _write(directory: Path, ha_cf: str, **files: str) -> Path:
    (directory / "ha.cf").write_text(ha_cf)
    (directory / "authkeys").write_text("auth 1\n1 sha1 secret\n")
    (directory / "authkeys").chmod(0o600)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory / "ha.cf"


def test_problems_of_every_file_come_together(tmp_path: Path) -> None:
    path = _write(tmp_path, "node n1 n2\nbcast eth0\nkeepalive 1min\n", haresources="lisa 10.0.0.1\n")
    with pytest.raises(ConfigError) as caught:
        load_cluster(path, "n1")
    assert [p.replace(f"{tmp_path}/", "") for p in caught.value.problems] == [
        "ha.cf:3: keepalive 1min: expected a number of seconds such as 2 or 0.5, or a number with ms or us "
        "such as 500ms; write e.g. keepalive 2 or keepalive 500ms",
        'haresources:1: lisa: not a node of ha.cf (n1, n2); Heartbeat refuses it too ("Bad nodename in '
        'haresources"); start the line with the node that should run the group',
    ]


CIB = """<cib validate-with="pacemaker-1.0"><configuration><crm_config/><nodes/>
<resources><primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
<instance_attributes id="a"><nvpair id="b" name="ip" value="10.0.0.9"/></instance_attributes></primitive></resources>
<constraints/></configuration><status/></cib>
"""


def test_crm_on_reads_the_cib(tmp_path: Path) -> None:
    cib = tmp_path / "cib.xml"
    cib.write_text(CIB)
    path = _write(
        tmp_path, f"node n1 n2\nbcast eth0\ncrm respawn\ncib_file {cib}\n", haresources="n1 10.0.0.1\n"
    )
    config, resources = load_cluster(path, "n1")
    assert config.uses_cib
    assert resources.path == cib
    assert resources.config.primitive("vip").param("ip") == "10.0.0.9"
    assert "imports as 1 primitive(s)" in resources.summary
    assert any("not used because" in w and "haresources" in w for w in resources.warnings)


def test_crm_on_with_a_cib_that_needs_a_missing_feature(tmp_path: Path) -> None:
    cib = tmp_path / "cib.xml"
    cib.write_text(
        CIB.replace(
            "<resources>",
            '<resources><bundle id="c"><docker image="x"/></bundle>',
        )
    )
    path = _write(tmp_path, f"node n1 n2\nbcast eth0\ncrm yes\ncib_file {cib}\n")
    with pytest.raises(ConfigError) as caught:
        load_cluster(path, "n1")
    assert (
        "/cib/configuration/resources/bundle[@id=c]: bundle: bundles (containers) are not supported"
        in caught.value.problems[0]
    )
    assert f"hacrm configure import {cib} --print >" in caught.value.problems[-1]


def test_crm_on_without_a_cib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "CIB_LOCATIONS", (tmp_path / "none.xml",))
    _, resources = load_cluster(_write(tmp_path, "node n1 n2\nbcast eth0\npacemaker on\n"), "n1")
    assert resources.config.primitives == ()
    assert "crm is on but there is no CIB" in resources.warnings[0]


# -- crm files ------------------------------------------------------------------------------------


def test_order_between_members_of_a_group_is_a_warning() -> None:
    warnings: list[str] = []
    cfg = parse_resources_crm(
        "primitive a Dummy\nprimitive b Dummy\ngroup g a b\norder o Mandatory: a b\n",
        "r.crm",
        warnings=warnings,
    )
    assert cfg.orders == ()
    assert warnings[0].startswith("r.crm:4: order o: group g already starts a before b")


def test_order_against_a_group_is_refused() -> None:
    with pytest.raises(ConfigError, match="contradicts group g"):
        parse_resources_crm(
            "primitive a Dummy\nprimitive b Dummy\ngroup g a b\norder o Mandatory: b a\n", "r.crm"
        )


def test_crmsh_1x_forms() -> None:
    warnings: list[str] = []
    cfg = parse_resources_crm(
        'node $id="2d1f" n1 attributes standby="off"\n'
        "primitive p Dummy operations $id=p-ops op monitor interval=10s\n"
        'property $id="cib-bootstrap-options" expected-quorum-votes="2" default-resource-stickiness="100"\n'
        'rsc_defaults $id="rsc-options" migration-threshold=3\n',
        "r.crm",
        warnings=warnings,
    )
    assert cfg.node_attribute("n1", "standby") == "off"
    assert cfg.primitive("p").ops[0].interval_ms == 10_000
    assert dict(cfg.rsc_defaults) == {"migration-threshold": "3", "resource-stickiness": "100"}
    assert cfg.properties == ()
    assert len(warnings) == 2
    assert "read as rsc_defaults resource-stickiness=100" in warnings[1]


def test_params_may_be_left_out_and_quotes_continue_over_lines() -> None:
    cfg = parse_resources_crm('primitive p Dummy fake=1 x="a b \\\n    c"\n', "r.crm")
    assert cfg.primitive("p").params == (("fake", "1"), ("x", "a b c"))


def test_uname_in_a_rule_is_not_a_comment() -> None:
    cfg = parse_resources_crm("primitive p Dummy\nlocation l p \\\n  rule -inf: #uname eq n1\n", "r.crm")
    assert [(lc.node, lc.score) for lc in cfg.locations] == [("n1", -1_000_000)]


def test_unknown_property_is_a_warning_with_a_guess() -> None:
    warnings: list[str] = []
    parse_resources_crm("property stonith-enable=false\n", "r.crm", warnings=warnings)
    assert warnings == [
        "r.crm:1: property stonith-enable: is not a cluster option, so it has no effect on the cluster; did you "
        "mean stonith-enabled? (kept as written)"
    ]


def test_rendered_op_attributes_in_crmsh_order() -> None:
    cfg = parse_resources_crm("primitive p Dummy op monitor interval=10s OCF_CHECK_LEVEL=10 on-fail=block\n")
    assert "op monitor interval=10s on-fail=block OCF_CHECK_LEVEL=10" in render_resources_crm(cfg)


# -- CIB import and export ------------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY a "xx"><!ENTITY b "&a;&a;">]><cib>&b;</cib>'
    with pytest.raises(ConfigError, match="refused: the XML uses"):
        parse_cib_xml(bomb, "bomb.xml")


def test_external_entity_is_refused() -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY x SYSTEM "file:///etc/shadow">]><cib>&x;</cib>'
    with pytest.raises(ConfigError, match="refused: the XML uses"):
        parse_cib_xml(evil, "evil.xml")


def test_not_xml() -> None:
    with pytest.raises(ConfigError, match=r"^.*x.xml:1: not well-formed XML"):
        parse_cib_xml("primitive p Dummy\n", "x.xml")


def test_status_is_never_read() -> None:
    cfg = parse_cib_xml(CIB.replace("<status/>", "<status><node_state id='1' bogus='yes'/></status>"))
    assert cfg.resource_ids() == ("vip",)


def test_cli_import_and_show_xml_round_trip() -> None:
    text, warnings = import_text(CIB.encode(), "cib.xml")
    assert warnings == []
    assert text.startswith("primitive vip IPaddr2") or "primitive vip ocf:heartbeat:IPaddr2" in text
    xml = cib_text_of(text, 7)
    assert 'epoch="7"' in xml
    again = parse_cib_xml(xml)
    assert again.digest() == parse_cib_xml(CIB).digest()
    assert render_cib_xml(again) == render_cib_xml(parse_cib_xml(render_cib_xml(again)))


def test_cli_import_refusal_lists_every_problem() -> None:
    bad = CIB.replace("<resources>", '<resources><master id="m"/><bundle id="b"/>')
    with pytest.raises(CliError) as caught:
        import_text(bad.encode(), "cib.xml")
    assert caught.value.code == "CONFIG_INVALID"
    assert str(caught.value).startswith("cib.xml: 2 problems; nothing was changed:")


def test_an_at_sign_is_an_argument_unless_it_follows_a_section_keyword() -> None:
    cfg = parse_resources_crm("primitive p heartbeat:Dummy args @ x@y\n", "r.crm")
    assert cfg.primitive("p").args == ("@", "x@y")
    with pytest.raises(ConfigError) as caught:
        parse_resources_crm("primitive q Dummy params @shared-params\n", "r.crm")
    assert caught.value.problems == [
        "r.crm:1: primitive q: '@shared-params': references to another attribute set are not supported; "
        "copy the attributes here"
    ]


def test_a_quoted_dollar_id_is_a_value() -> None:
    cfg = parse_resources_crm(
        'primitive p heartbeat:Dummy args "$id=x"\nproperty $id="opts" a-b=1\n', "r.crm"
    )
    assert cfg.primitive("p").args == ("$id=x",)
    assert cfg.properties == (("a-b", "1"),)
