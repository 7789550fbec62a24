"""haresources: Heartbeat R1 groups translated into the resource model, with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster.config.haresources import PREFERENCE_SCORE, STAY_STICKINESS, parse_haresources
from hacluster.config.resources_crm import parse_resources_crm, render_resources_crm
from hacluster.core.cib import ClusterConfig, Group, Location, Op, Primitive
from hacluster.errors import ConfigError

MONITOR = Op("monitor", 10_000, 20_000)
REFERENCE = "hbr-n1 10.0.0.10 IPaddr::10.0.0.11/24/eth0 Filesystem::/dev/sdb1::/data::ext4 apache\n"


def _parse(text: str, **kwargs: object) -> ClusterConfig:
    return parse_haresources(text, "haresources", check_scripts=False, auto_failback="on", **kwargs)  # type: ignore[arg-type]


def _problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _parse(text, **kwargs)
    return info.value.problems


def _ip(rsc_id: str, *params: tuple[str, str]) -> Primitive:
    return Primitive(rsc_id, "ocf", "hacluster", "IPaddr2", params, (MONITOR,), ())


def test_reference_example() -> None:
    cfg = _parse(REFERENCE)
    assert cfg.primitives == (
        _ip("IPaddr_1", ("ip", "10.0.0.10")),
        _ip("IPaddr_2", ("ip", "10.0.0.11"), ("cidr_netmask", "24"), ("nic", "eth0")),
        Primitive(
            "Filesystem_1", "heartbeat", None, "Filesystem", (), (), (), ("/dev/sdb1", "/data", "ext4")
        ),
        Primitive("apache_1", "heartbeat", None, "apache", (), (), (), ()),
    )
    group = Group(
        "group_1_10.0.0.10",
        ("IPaddr_1", "IPaddr_2", "Filesystem_1", "apache_1"),
        (("heartbeat-key", "10.0.0.10"),),
    )
    assert cfg.groups == (group,)
    assert cfg.locations == (Location("prefer_group_1_10.0.0.10", group.id, "hbr-n1", PREFERENCE_SCORE),)
    assert cfg.properties == (("stonith-enabled", "false"), ("no-quorum-policy", "ignore"))
    assert not cfg.is_stonith_enabled()
    assert cfg.colocations == cfg.orders == cfg.fencing_levels == ()
    assert cfg.source == "haresources"
    assert cfg.check() == []


def test_continuation_comments_whitespace_and_lower_case() -> None:
    text = (
        "# the cluster's groups\n"
        "\n"
        "   HBR-N1   10.0.0.10 \\\n"
        "\t\tapache   # web server\n"
        "hbr-n2 mysql::a  # the database\n"
        "hbr-n2 10.0.0.20 \\\n"
    )
    cfg = _parse(text)
    assert [g.members for g in cfg.groups] == [("IPaddr_1", "apache_1"), ("mysql_1",), ("IPaddr_2",)]
    assert [lc.node for lc in cfg.locations] == ["hbr-n1", "hbr-n2", "hbr-n2"]
    assert [g.id for g in cfg.groups] == ["group_1_10.0.0.10", "group_2_mysql__a", "group_3_10.0.0.20"]
    assert cfg.groups[1].meta == (("heartbeat-key", "mysql::a"),)


@pytest.mark.parametrize(
    ("key", "params"),
    [
        ("10.0.0.10", (("ip", "10.0.0.10"),)),
        ("10.0.0.10/24", (("ip", "10.0.0.10"), ("cidr_netmask", "24"))),
        ("10.0.0.10/24/eth0", (("ip", "10.0.0.10"), ("cidr_netmask", "24"), ("nic", "eth0"))),
        (
            "10.0.0.10/24/eth0:web",
            (("ip", "10.0.0.10"), ("cidr_netmask", "24"), ("nic", "eth0"), ("iflabel", "web")),
        ),
        # Heartbeat's rule: a third field starting with a digit is the broadcast, not a NIC.
        (
            "10.0.0.10/24/10.0.0.255",
            (("ip", "10.0.0.10"), ("cidr_netmask", "24"), ("broadcast", "10.0.0.255")),
        ),
        (
            "10.0.0.10/24/eth0/10.0.0.255",
            (("ip", "10.0.0.10"), ("cidr_netmask", "24"), ("nic", "eth0"), ("broadcast", "10.0.0.255")),
        ),
        ("10.0.0.10/255.255.255.0", (("ip", "10.0.0.10"), ("cidr_netmask", "24"))),
        (
            "10.0.0.15//8/eth0:10",
            (("ip", "10.0.0.15"), ("cidr_netmask", "8"), ("nic", "eth0"), ("iflabel", "10")),
        ),
        (
            "IPaddr::192.168.60.200/24/eth0/",
            (("ip", "192.168.60.200"), ("cidr_netmask", "24"), ("nic", "eth0")),
        ),
        ("IPaddr::10.0.0.10/16", (("ip", "10.0.0.10"), ("cidr_netmask", "16"))),
        ("IPaddr2::10.0.0.10/24/eth0", (("ip", "10.0.0.10"), ("cidr_netmask", "24"), ("nic", "eth0"))),
    ],
)
def test_ip_forms(key: str, params: tuple[tuple[str, str], ...]) -> None:
    primitive = _parse(f"n1 {key}\n").primitives[0]
    assert (primitive.agent, primitive.params, primitive.ops) == ("ocf:hacluster:IPaddr2", params, (MONITOR,))


def test_ids_are_unique_per_name() -> None:
    cfg = _parse("n1 10.0.0.1 IPaddr::10.0.0.2 IPaddr2::10.0.0.3 x::1\nn2 x::2 10.0.0.4 my+script\n")
    assert cfg.resource_ids() == (
        "IPaddr_1",
        "IPaddr_2",
        "IPaddr2_1",
        "x_1",
        "x_2",
        "IPaddr_3",
        "my_script_1",
    )


def test_ocf_instance_is_accepted_with_a_warning() -> None:
    warnings: list[str] = []
    cfg = _parse("n1 OCF::Dummy::one\n", warnings=warnings)
    assert cfg.primitives == (
        Primitive(
            "Dummy_1", "ocf", "heartbeat", "Dummy", (), (MONITOR,), (("heartbeat-ocf-instance", "one"),)
        ),
    )
    assert warnings == [
        "haresources:1: OCF::Dummy::one: the parameters in /etc/ha.d/conf/OCF/Dummy/one are not read; "
        "add them with a resources.crm primitive instead"
    ]


@pytest.mark.parametrize(
    ("auto_failback", "stickiness", "warned"),
    [("on", 0, False), ("off", STAY_STICKINESS, False), ("legacy", 0, True)],
)
def test_auto_failback(auto_failback: str, stickiness: int, warned: bool) -> None:
    warnings: list[str] = []
    cfg = parse_haresources(
        REFERENCE, "haresources", check_scripts=False, auto_failback=auto_failback, warnings=warnings
    )
    assert cfg.stickiness_of("apache_1") == stickiness
    assert (stickiness > PREFERENCE_SCORE) == (auto_failback == "off")
    assert any("auto_failback legacy is treated as auto_failback on" in w for w in warnings) == warned


def test_auto_failback_value_is_checked() -> None:
    with pytest.raises(ValueError, match="auto_failback 'yes'"):
        parse_haresources(REFERENCE, "haresources", check_scripts=False, auto_failback="yes")


def test_script_lookup(tmp_path: Path) -> None:
    resource_d, init_d = tmp_path / "resource.d", tmp_path / "init.d"
    resource_d.mkdir()
    init_d.mkdir()
    for script in (resource_d / "Filesystem", init_d / "apache"):
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    (init_d / "lazy").write_text("#!/bin/sh\n")
    (init_d / "lazy").chmod(0o644)
    cfg = parse_haresources(REFERENCE, "haresources", [resource_d], [init_d], "on")
    assert cfg.resource_ids()[-2:] == ("Filesystem_1", "apache_1")
    with pytest.raises(ConfigError) as info:
        parse_haresources("n1 nosuch::a\nn2 lazy\n", "haresources", [resource_d], [init_d], "on")
    assert info.value.problems == [
        f"haresources:1: nosuch::a: no script found; searched {resource_d}/nosuch and {init_d}/nosuch; "
        "install the script or correct the name",
        f"haresources:2: lazy: script {init_d}/lazy is not executable; run chmod +x {init_d}/lazy",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n1\n", "haresources:1: node n1 has no resources; write n1 RESOURCE [RESOURCE …]"),
        ("n!1 apache\n", "haresources:1: 'n!1' is not a node name; start the line with the preferred node"),
        ("n1 999.1.1.1\n", "haresources:1: 999.1.1.1: '999.1.1.1' is not an IP address; expected IP[/BITS"),
        ("n1 IPaddr::nothere\n", "haresources:1: IPaddr::nothere: 'nothere' is not an IP address"),
        ("n1 IPaddr::10.0.0.1::x\n", "IPaddr takes one argument; write IPaddr::10.0.0.10/24/eth0"),
        ("n1 IPaddr2\n", "IPaddr2 takes one argument"),
        ("n1 10.0.0.1/33\n", "netmask '33'; expected 0 to 32 or a dotted netmask"),
        ("n1 10.0.0.1/255.0.255.0\n", "netmask '255.0.255.0'"),
        ("n1 10.0.0.1/24/eth0/bad\n", "broadcast 'bad' is not an IP address"),
        ("n1 10.0.0.1/24/10.0.0.255/x\n", "'10.0.0.255' was read as the broadcast, so nothing may follow"),
        ("n1 10.0.0.1/24/averyverylongname0\n", "'averyverylongname0' is not an interface name"),
        ("n1 10.0.0.1/24/eth0/10.0.0.255/x\n", "too many '/' fields"),
        ("n1 ../evil\n", "../evil: the script name must be a plain file name"),
        ("n1 ::a\n", "::a: the script name must be a plain file name"),
        ("n1 x::::y\n", "x::::y: has an empty argument"),
        ("n1 OCF::Dummy\n", "OCF::Dummy: write OCF::AGENT::INSTANCE"),
        ("n1 OCF::../x::y\n", "OCF agent '../x' must be a plain file name"),
        (
            "n1 apache\nn2 apache\n",
            "haresources:2: apache: already listed at haresources:1; a resource belongs to one group",
        ),
    ],
)
def test_errors(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(expected in problem for problem in problems), problems


def test_all_errors_at_once() -> None:
    problems = _problems("n1 10.0.0.300\n# fine\nn2 apache\nn3\nn4 IPaddr::x \\\n  apache\n")
    assert [p.split(":")[1] for p in problems] == ["1", "4", "5", "5"]


def test_renders_as_resources_crm_and_parses_back() -> None:
    cfg = _parse(REFERENCE + "hbr-n2 10.0.0.20/24/eth0:x/10.0.0.255 OCF::Dummy::one weird::a=b::--x::op\n")
    assert parse_resources_crm(render_resources_crm(cfg), "haresources") == cfg
    assert cfg.primitive("weird_1").args == ("a=b", "--x", "op")


@pytest.mark.parametrize("line", ["n1 10.0.0.1/²", "n1 IPaddr::10.0.0.1/²/eth0"])
def test_digits_that_are_not_ascii_are_refused_not_crashed_on(line: str) -> None:
    """Found by bench/bench_fuzz.py: "²".isdigit() is true, int("²") raises."""
    assert _problems(line + "\n")
