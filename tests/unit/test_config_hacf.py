"""ha.cf parsing: value syntax, every directive, every error with its file:line text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from hacluster.config import (
    LoadedConfig,
    default_node_name,
    load_config,
    parse_bool,
    parse_hacf,
    parse_time_ms,
)
from hacluster.config.hacf import KNOWN_DIRECTIVES
from hacluster.config.load import _validation_problems
from hacluster.core.codec import AuthKey, KeyRing
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.settings import LinkKind, LinkSpec, PingNode
from hacluster.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASE = "node n1 n2\nbcast eth0\n"
"""The smallest valid file; tests append their lines after these two."""


def write_config(directory: Path, text: str) -> Path:
    (directory / "ha.cf").write_text(text)
    authkeys = directory / "authkeys"
    authkeys.write_text("auth 1\n1 sha1 test-secret\n")
    authkeys.chmod(0o600)
    return directory / "ha.cf"


def load(tmp_path: Path, text: str, node: str = "n1") -> LoadedConfig:
    return load_config(write_config(tmp_path, text), node)


def problems(text: str, node: str = "n1") -> list[str]:
    return parse_hacf(text, "ha.cf", node).problems


def warnings(text: str, node: str = "n1") -> list[str]:
    return parse_hacf(text, "ha.cf", node).warnings


# -- value syntax ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2", 2000),
        ("0.5", 500),
        (".25", 250),
        ("1.", 1000),
        ("1.0005", 1001),
        ("500ms", 500),
        ("500MS", 500),
        ("200msec", 200),
        ("1500us", 2),
        ("2400usec", 2),
        ("1s", 1000),
        ("0", 0),
    ],
)
def test_time_values_are_integer_ms(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize("text", ["2min", "1h", "-1", "abc", "", "1.2.3", "ms", "1e3", "0x10"])
def test_bad_time_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number of seconds"):
        parse_time_ms(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[(word, True) for word in ("true", "on", "yes", "y", "1", "TRUE", "On", "Y")],
        *[(word, False) for word in ("false", "off", "no", "n", "0", "FALSE", "Off", "N")],
    ],
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["2", "enabled", "", "yess", "nope"])
def test_bad_booleans(text: str) -> None:
    with pytest.raises(ValueError, match="expected on/off"):
        parse_bool(text)


# -- directives ------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert (config.keepalive_ms, config.deadtime_ms, config.warntime_ms) == (1000, 30_000, 15_000)
    assert (config.initdead_ms, config.deadping_ms) == (30_000, 30_000)
    assert config.udpport == 694
    assert config.baud == 19200
    assert config.auto_failback == "legacy"
    assert config.autojoin == "none"
    assert config.hbgenmethod == "file"
    assert config.msgfmt == "classic"
    assert config.realtime is True
    assert config.rtprio is None
    assert config.cluster == "linux-ha"
    assert config.api_socket == Path("/run/hacluster/hacluster.sock")
    assert config.state_dir == Path("/var/lib/hacluster")
    assert (config.logfile, config.logfacility, config.debugfile, config.debug) == (None, None, None, 0)
    assert config.hopfudge == 1
    assert config.max_rexmit_delay_ms == 250
    assert config.path == tmp_path / "ha.cf"
    assert config.directory == tmp_path
    assert config.warnings == []
    assert config.raw == {"node": "n1 n2", "bcast": "eth0"}


@pytest.mark.parametrize(
    ("lines", "attribute", "value"),
    [
        ("keepalive 200ms", "keepalive_ms", 200),
        ("deadtime 3", "deadtime_ms", 3000),
        ("deadtime 3", "warntime_ms", 1500),
        ("deadtime 5", "initdead_ms", 12_000),
        ("deadtime 8", "initdead_ms", 16_000),
        ("deadtime 11", "initdead_ms", 11_000),
        ("deadtime 3", "deadping_ms", 3000),
        ("warntime 10", "warntime_ms", 10_000),
        ("initdead 45", "initdead_ms", 45_000),
        ("deadping 2.5", "deadping_ms", 2500),
        ("keepalive 1\ndeadtime 2001ms", "warntime_ms", 1001),
        ("auto_failback on", "auto_failback", "on"),
        ("auto_failback OFF", "auto_failback", "off"),
        ("auto_failback yes", "auto_failback", "on"),
        ("auto_failback legacy", "auto_failback", "legacy"),
        ("autojoin other", "autojoin", "other"),
        ("hbgenmethod time", "hbgenmethod", "time"),
        ("msgfmt netstring", "msgfmt", "netstring"),
        ("realtime off", "realtime", False),
        ("rtprio 40", "rtprio", 40),
        ("debug 3", "debug", 3),
        ("hopfudge 0", "hopfudge", 0),
        ("max_rexmit_delay 400", "max_rexmit_delay_ms", 400),
        ("max_rexmit_delay 0.5", "max_rexmit_delay_ms", 500),
        ("cluster prod", "cluster", "prod"),
        ("logfile /var/log/ha.log", "logfile", "/var/log/ha.log"),
        ("debugfile /var/log/ha-debug.log", "debugfile", "/var/log/ha-debug.log"),
        ("logfacility LOCAL0", "logfacility", "local0"),
        ("logfacility none", "logfacility", "none"),
        ("api_socket /tmp/x/ha.sock", "api_socket", Path("/tmp/x/ha.sock")),
        ("state_dir /srv/ha", "state_dir", Path("/srv/ha")),
        ("crm off", "raw", {"node": "n1 n2", "bcast": "eth0", "crm": "off"}),
        ("pacemaker no", "raw", {"node": "n1 n2", "bcast": "eth0", "pacemaker": "no"}),
        ("stonith baytech /etc/ha.d/baytech.cfg", "stonith", ("baytech /etc/ha.d/baytech.cfg",)),
        (
            "stonith_host *  external/ssh n1 n2\nstonith_host n1 meatware n2",
            "stonith_host",
            ("*  external/ssh n1 n2", "n1 meatware n2"),
        ),
        ("node N3", "nodes", ("n1", "n2", "n3")),
        ("nice_failback on", "auto_failback", "off"),
        ("nice_failback off", "auto_failback", "legacy"),
        ("nice_failback on\nauto_failback on", "auto_failback", "on"),
        ("   keepalive 2   # indented, with a comment", "keepalive_ms", 2000),
        ("keepalive\t2", "raw", {"node": "n1 n2", "bcast": "eth0", "keepalive": "2"}),
    ],
)
def test_directive_values(tmp_path: Path, lines: str, attribute: str, value: object) -> None:
    config = load(tmp_path, BASE + lines + "\n")
    assert getattr(config, attribute) == value


def test_raw_keeps_values_as_written_for_hbparameter(tmp_path: Path) -> None:
    config = load(
        tmp_path, "keepalive 200ms\ndeadtime 1\n" + BASE + "ucast eth1 10.0.0.2\nucast eth1 10.0.0.3\n"
    )
    assert config.hbparameter("keepalive") == "200ms"
    assert config.hbparameter("deadtime") == "1"
    assert config.hbparameter("ucast") == "eth1 10.0.0.2\neth1 10.0.0.3"
    assert config.hbparameter("warntime") is None
    assert config.where["keepalive"] == f"{tmp_path / 'ha.cf'}:1"


def test_node_names_are_lower_cased_and_the_local_name_too(tmp_path: Path) -> None:
    config = load(tmp_path, "node Alpha BETA\nbcast eth0\n", node="ALPHA")
    assert config.node == "alpha"
    assert config.nodes == ("alpha", "beta")


def test_autojoin_any_needs_no_node_lines(tmp_path: Path) -> None:
    config = load(tmp_path, "autojoin any\nbcast eth0\n", node="n7")
    assert config.nodes == ("n7",)
    assert config.membership_settings(1).nodes == ("n7",)


def test_links(tmp_path: Path) -> None:
    text = (
        "node n1 n2\n"
        "udpport 700\n"
        "bcast eth0 eth1\n"
        "mcast eth2 239.1.2.3 5000 3 1\n"
        "ucast eth3 10.0.0.2\n"
        "ucast eth3 peer-b.example\n"
        "baud 115200\n"
        "serial /dev/ttyS0 /dev/ttyUSB0\n"
        "ping 10.0.0.254 gw.example\n"
        "ping_group uplinks 10.0.1.1 10.0.1.2\n"
    )
    settings = load(tmp_path, text).membership_settings(generation=42, wall_offset_ms=7)
    assert settings.links == (
        LinkSpec(LinkName("bcast eth0"), LinkKind.BCAST, "eth0", (), 700),
        LinkSpec(LinkName("bcast eth1"), LinkKind.BCAST, "eth1", (), 700),
        LinkSpec(LinkName("mcast eth2"), LinkKind.MCAST, "eth2", ("239.1.2.3",), 5000, ttl=3, loop=True),
        LinkSpec(LinkName("ucast eth3"), LinkKind.UCAST, "eth3", ("10.0.0.2", "peer-b.example"), 700),
        LinkSpec(LinkName("serial /dev/ttyS0"), LinkKind.SERIAL, "/dev/ttyS0", (), 700, baud=115200),
        LinkSpec(LinkName("serial /dev/ttyUSB0"), LinkKind.SERIAL, "/dev/ttyUSB0", (), 700, baud=115200),
    )
    assert settings.ping_nodes == (
        PingNode(NodeName("10.0.0.254"), ("10.0.0.254",)),
        PingNode(NodeName("gw.example"), ("gw.example",)),
        PingNode(NodeName("uplinks"), ("10.0.1.1", "10.0.1.2")),
    )
    assert settings.generation == 42
    assert settings.wall_offset_ms == 7
    assert settings.node == "n1"
    assert settings.nodes == ("n1", "n2")


def test_membership_settings_carry_timing_and_protocol_options(tmp_path: Path) -> None:
    text = BASE + (
        "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 10\ndeadping 1\n"
        "hopfudge 2\nmax_rexmit_delay 100\nmsgfmt netstring\ncluster prod\nautojoin other\n"
    )
    config = load(tmp_path, text)
    settings = config.membership_settings(3)
    assert (settings.keepalive_ms, settings.deadtime_ms, settings.warntime_ms) == (100, 500, 300)
    assert (settings.initdead_ms, settings.deadping_ms) == (10_000, 1000)
    assert (settings.hopfudge, settings.max_rexmit_delay_ms) == (2, 100)
    assert settings.inner_auth is False
    assert settings.cluster == "prod"
    assert settings.autojoin == "other"
    assert settings.keyring == KeyRing(1, {1: AuthKey(1, "sha1", b"test-secret")})


def test_bind_address_applies_to_udp_links_of_its_interface(tmp_path: Path) -> None:
    text = "node n1 n2\nbind_address lo 127.0.0.1\nucast lo 127.0.0.2\nbcast eth0\n"
    links = load(tmp_path, text).membership_settings(1).links
    assert [(link.name, link.bind_address) for link in links] == [
        ("ucast lo", "127.0.0.1"),
        ("bcast eth0", ""),
    ]


# -- warnings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "respawn hacluster /usr/lib/heartbeat/ipfail",
            "ha.cf:3: respawn hacluster /usr/lib/heartbeat/ipfail: accepted for Heartbeat "
            "compatibility but ignored: hacluster does not start respawn clients",
        ),
        (
            "use_logd yes",
            "ha.cf:3: use_logd yes: accepted for Heartbeat compatibility but ignored: hacluster logs "
            "through logfile, logfacility and debugfile",
        ),
        (
            "ucast6 eth1 fd00::2\nucast6 eth1 fd00:0::2",
            "ha.cf:4: ucast6 eth1 fd00:0::2: peer fd00:0::2 is already listed for ucast6 eth1; it counts once",
        ),
        (
            "nice_failback on",
            "ha.cf:3: nice_failback on: nice_failback is obsolete and means auto_failback off; write that instead",
        ),
        (
            "initdead 31",
            None,
        ),
        (
            "keepalive 100ms\ndeadtime 1\ninitdead 2",
            "ha.cf:5: initdead 2: below 10s: a peer that boots at the same time may be declared dead before "
            "its network is up",
        ),
        ("node n2", "ha.cf:3: node n2: node n2 is already listed at ha.cf:1; it counts once"),
        (
            "ucast eth1 10.0.0.2\nucast eth1 10.0.0.2",
            "ha.cf:4: ucast eth1 10.0.0.2: peer 10.0.0.2 is already listed for ucast eth1; it counts once",
        ),
    ],
)
def test_warnings(line: str, expected: str | None) -> None:
    text = BASE + line + "\n"
    assert problems(text) == []
    assert warnings(text) == ([] if expected is None else [expected])


@pytest.mark.parametrize(
    "directive",
    [
        "respawn",
        "failfast",
        "apiauth",
        "uuidfrom",
        "compression",
        "compression_threshold",
        "traditional_compression",
        "use_logd",
        "conn_logd_time",
        "coredumps",
        "coreroot",
        "memreserve",
        "log_badpack",
        "syslogmsgfmt",
        "use_apphbd",
        "env",
        "quorum_server",
        "crm_daemon_dir",
        "crmd_spawns_pengine",
        "record_config_changes",
        "record_pengine_inputs",
        "enable_config_writes",
    ],
)
def test_heartbeat_directives_we_ignore_are_accepted_with_a_warning(directive: str) -> None:
    text = BASE + f"{directive} something\n"
    assert problems(text) == []
    [warning] = warnings(text)
    assert warning.startswith(
        f"ha.cf:3: {directive} something: accepted for Heartbeat compatibility but ignored"
    )


# -- errors ----------------------------------------------------------------------------------

ERRORS = [
    pytest.param(
        BASE + "keepalve 2\n",
        "ha.cf:3: keepalve 2: Illegal directive keepalve; did you mean keepalive?",
        id="unknown-directive-with-suggestion",
    ),
    pytest.param(
        BASE + "frobnicate yes\n",
        "ha.cf:3: frobnicate yes: Illegal directive frobnicate; see ha.cf.example for the directives "
        "hacluster knows",
        id="unknown-directive",
    ),
    pytest.param(
        BASE + "keepalive 2min\n",
        "ha.cf:3: keepalive 2min: expected a number of seconds such as 2 or 0.5, or a number with ms or us "
        "such as 500ms; write e.g. keepalive 2 or keepalive 500ms",
        id="bad-time-unit",
    ),
    pytest.param(
        BASE + "keepalive 0\n",
        "ha.cf:3: keepalive 0: must be more than 0ms; give a positive time",
        id="zero-keepalive",
    ),
    pytest.param(
        BASE + "keepalive 1 2\n",
        "ha.cf:3: keepalive 1 2: takes exactly one value (a number of seconds such as 2 or 0.5, or a number "
        "with ms or us such as 500ms), got 2 values",
        id="two-values",
    ),
    pytest.param(
        BASE + "deadtime\n",
        "ha.cf:3: deadtime: takes exactly one value (a number of seconds such as 2 or 0.5, or a number "
        "with ms or us such as 500ms), got nothing",
        id="no-value",
    ),
    pytest.param(
        BASE + "keepalive 600ms\ndeadtime 1s\n",
        "ha.cf:4: deadtime 1s: must be more than 2 × keepalive (600ms at ha.cf:3), i.e. more than 1200ms; "
        "raise deadtime or lower keepalive",
        id="deadtime-not-above-twice-keepalive",
    ),
    pytest.param(
        BASE + "keepalive 500ms\ndeadtime 1\n",
        "ha.cf:4: deadtime 1: must be more than 2 × keepalive (500ms at ha.cf:3), i.e. more than 1000ms; "
        "raise deadtime or lower keepalive",
        id="deadtime-equal-twice-keepalive",
    ),
    pytest.param(
        BASE + "deadtime 1500ms\n",
        "ha.cf:3: deadtime 1500ms: must be more than 2 × keepalive (1000ms, the default), i.e. more than "
        "2000ms; raise deadtime or lower keepalive",
        id="deadtime-vs-default-keepalive",
    ),
    pytest.param(
        BASE + "keepalive 20\n",
        "ha.cf:3: keepalive 20: the default deadtime (30000ms) must be more than 2 × keepalive (40000ms); "
        "add a deadtime above 40000ms or lower keepalive",
        id="keepalive-vs-default-deadtime",
    ),
    pytest.param(
        BASE + "deadtime 20\ninitdead 15\n",
        "ha.cf:4: initdead 15: must be at least deadtime (20000ms); raise initdead to 20000ms or more",
        id="initdead-below-deadtime",
    ),
    pytest.param(
        BASE + "keepalive 2\ndeadping 4\n",
        "ha.cf:4: deadping 4: must be more than 2 × keepalive (2000ms at ha.cf:3), i.e. more than 4000ms; "
        "raise deadping or lower keepalive",
        id="deadping-not-above-twice-keepalive",
    ),
    pytest.param(
        BASE + "keepalive 1\nkeepalive 2\n",
        "ha.cf:4: keepalive 2: keepalive is already set at ha.cf:3 (keepalive 1); keep only one of the two lines",
        id="duplicate-keepalive",
    ),
    pytest.param(
        BASE + "udpport 70000\n",
        "ha.cf:3: udpport 70000: 70000 is out of range; expected a whole number 1..65535",
        id="udpport-range",
    ),
    pytest.param(
        BASE + "baud 19200\nbaud 38400\n",
        "ha.cf:4: baud 38400: baud is already set at ha.cf:3 (baud 19200); keep only one of the two lines",
        id="baud-twice",
    ),
    pytest.param(
        BASE + "baud 14400\n",
        "ha.cf:3: baud 14400: unsupported serial speed; expected one of 9600, 19200, 38400, 57600, 115200, "
        "230400, 460800",
        id="baud-unsupported",
    ),
    pytest.param(
        BASE + "mcast eth1 239.0.0.1 694 5 0\n",
        "ha.cf:3: mcast eth1 239.0.0.1 694 5 0: ttl 5 is out of range; expected a whole number 0..4",
        id="mcast-bad-ttl",
    ),
    pytest.param(
        BASE + "mcast eth1 239.0.0.1 694 1 2\n",
        "ha.cf:3: mcast eth1 239.0.0.1 694 1 2: loop 2 is out of range; expected a whole number 0..1",
        id="mcast-bad-loop",
    ),
    pytest.param(
        BASE + "mcast eth1 10.0.0.1 694 1 0\n",
        "ha.cf:3: mcast eth1 10.0.0.1 694 1 0: group 10.0.0.1 is not a multicast address (224.0.0.0/4); "
        "expected: mcast <interface> <group> <port> <ttl 0..4> <loop 0|1>, e.g. mcast eth0 239.0.0.1 694 1 0",
        id="mcast-not-multicast",
    ),
    pytest.param(
        BASE + "mcast eth1 239.0.0.1 694\n",
        "ha.cf:3: mcast eth1 239.0.0.1 694: takes 5 values, got 3; expected: mcast <interface> <group> "
        "<port> <ttl 0..4> <loop 0|1>, e.g. mcast eth0 239.0.0.1 694 1 0",
        id="mcast-too-few",
    ),
    pytest.param(
        BASE + "ucast eth1 10.0.0.2 10.0.0.3\n",
        "ha.cf:3: ucast eth1 10.0.0.2 10.0.0.3: takes an interface and one peer, got 3; write one "
        "line per peer, e.g. ucast eth1 10.0.0.2",
        id="ucast-two-peers",
    ),
    pytest.param(
        BASE + "ucast eth1 bad!peer\n",
        "ha.cf:3: ucast eth1 bad!peer: peer 'bad!peer' is neither an IP address nor a host name",
        id="ucast-bad-peer",
    ),
    pytest.param(
        BASE + "ucast eth1 10.0.0.300\n",
        "ha.cf:3: ucast eth1 10.0.0.300: peer '10.0.0.300' is neither an IP address nor a host name",
        id="ucast-bad-ip",
    ),
    pytest.param(
        BASE + "ucast eth1\n",
        "ha.cf:3: ucast eth1: takes an interface and one peer, got 1; write one line per peer, "
        "e.g. ucast eth0 10.0.0.2",
        id="ucast-no-peer",
    ),
    pytest.param(
        BASE + "mcast eth1 ff02::1 694 1 0\n",
        "ha.cf:3: mcast eth1 ff02::1 694 1 0: group ff02::1 is not a multicast address (224.0.0.0/4); "
        "expected: mcast <interface> <group> <port> <ttl 0..4> <loop 0|1>, e.g. mcast eth0 239.0.0.1 694 1 0",
        id="mcast-ipv6-group",
    ),
    pytest.param(
        BASE + "bcast averyveryverylongname\n",
        "ha.cf:3: bcast averyveryverylongname: 'averyveryverylongname' is not a network interface name "
        "(at most 15 characters, no '/')",
        id="bad-interface",
    ),
    pytest.param(
        BASE + "serial ttyS0\n",
        "ha.cf:3: serial ttyS0: ttyS0 is not a device path; write e.g. serial /dev/ttyS0",
        id="serial-not-a-path",
    ),
    pytest.param(
        "bcast eth0\n",
        "ha.cf: no node directive: list every cluster node, this one included, e.g. node n1 <peer>",
        id="node-missing",
    ),
    pytest.param(
        "node n2 n3\nbcast eth0\n",
        "ha.cf:1: node n2 n3: Current node not in configuration: this machine is n1 but the node lines list "
        "n2, n3; add 'node n1' (the name uname -n prints, lower-cased) or correct the hostname",
        id="current-node-not-listed",
    ),
    pytest.param(
        "node n1 n2\n",
        "ha.cf: no communication media: add at least one bcast, mcast, ucast, mcast6, ucast6 or serial line, "
        "e.g. bcast eth0",
        id="no-media",
    ),
    pytest.param(
        BASE + "crm off\npacemaker off\n",
        "ha.cf:4: pacemaker off: crm is already set at ha.cf:3 (crm off); keep only one of the two lines",
        id="crm-and-pacemaker",
    ),
    pytest.param(
        BASE + "auto_failback maybe\n",
        "ha.cf:3: auto_failback maybe: expected on, off or legacy",
        id="auto-failback",
    ),
    pytest.param(
        BASE + "realtime sometimes\n",
        "ha.cf:3: realtime sometimes: expected on/off, yes/no, true/false, y/n or 1/0",
        id="bad-boolean",
    ),
    pytest.param(
        BASE + "autojoin all\n",
        "ha.cf:3: autojoin all: expected one of none, other, any",
        id="autojoin",
    ),
    pytest.param(
        BASE + "rtprio 0\n",
        "ha.cf:3: rtprio 0: 0 is out of range; expected a whole number 1..99",
        id="rtprio",
    ),
    pytest.param(
        BASE + "logfacility kernel\n",
        "ha.cf:3: logfacility kernel: unknown syslog facility; expected one of auth, authpriv, cron, daemon, "
        "ftp, kern, local0, local1, local2, local3, local4, local5, local6, local7, lpr, mail, news, none, "
        "syslog, user, uucp",
        id="logfacility",
    ),
    pytest.param(
        BASE + "state_dir var/lib/ha\n",
        "ha.cf:3: state_dir var/lib/ha: must be an absolute path, e.g. state_dir /var/lib/ha",
        id="relative-state-dir",
    ),
    pytest.param(
        BASE + "ping_group uplinks\n",
        "ha.cf:3: ping_group uplinks: needs a name and at least one address, e.g. ping_group routers "
        "10.0.0.253 10.0.0.254",
        id="ping-group-empty",
    ),
    pytest.param(
        BASE + "ping_group n2 10.0.0.1\n",
        "ha.cf:3: ping_group n2 10.0.0.1: ping node n2 has the name of cluster node n2 (ha.cf:1); rename the "
        "ping group",
        id="ping-group-named-like-a-node",
    ),
    pytest.param(
        BASE + "stonith baytech\n",
        "ha.cf:3: stonith baytech: too few values; expected stonith <type> <config file>",
        id="stonith-too-short",
    ),
    pytest.param(
        BASE + "bind_address eth9 127.0.0.1\n",
        "ha.cf:3: bind_address eth9 127.0.0.1: no bcast, mcast or ucast line uses eth9; remove this line or "
        "fix the name",
        id="bind-address-unused",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_each_error_names_file_line_value_and_fix(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "node n1 n2\nkeepalive 2min\nbcast eth0\nudpport 700\nmcast eth1 239.0.0.1 694 9 0\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, "n1")
    assert caught.value.problems == [
        f"{path}:2: keepalive 2min: expected a number of seconds such as 2 or 0.5, or a number with ms or us "
        "such as 500ms; write e.g. keepalive 2 or keepalive 500ms",
        f"{path}:5: mcast eth1 239.0.0.1 694 9 0: ttl 9 is out of range; expected a whole number 0..4",
    ]
    assert str(caught.value).count("\n") == 1


def test_ha_cf_and_authkeys_problems_come_together(tmp_path: Path) -> None:
    path = tmp_path / "ha.cf"
    path.write_text("node n1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, "n1")
    assert caught.value.problems == [
        f"{path}: no communication media: add at least one bcast, mcast, ucast, mcast6, ucast6 or serial "
        "line, e.g. bcast eth0",
        f"{tmp_path / 'authkeys'}: authkeys file not found (hacluster reads it from the directory of ha.cf); "
        f"create it with the lines 'auth 1' and '1 sha1 <long random secret>', then chmod 600 "
        f"{tmp_path / 'authkeys'}",
    ]


def test_missing_ha_cf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope" / "ha.cf", "n1")
    assert caught.value.problems[0] == (
        f"{tmp_path / 'nope' / 'ha.cf'}: cannot read ha.cf (No such file or directory); check the path "
        "given to hacluster"
    )


def test_example_file_parses_cleanly(tmp_path: Path) -> None:
    shutil.copy(REPO / "ha.cf.example", tmp_path / "ha.cf")
    authkeys = tmp_path / "authkeys"
    authkeys.write_text("auth 1\n1 sha1 example-secret\n")
    authkeys.chmod(0o600)
    config = load_config(tmp_path / "ha.cf", "n1")
    assert config.warnings == []
    assert (config.keepalive_ms, config.deadtime_ms, config.warntime_ms, config.initdead_ms) == (
        100,
        500,
        300,
        10_000,
    )
    assert config.nodes == ("n1", "n2")
    assert config.auto_failback == "on"
    assert config.realtime is True
    assert [link.name for link in config.links] == ["bcast eth0"]
    assert config.api_socket == Path("/run/hacluster/hacluster.sock")
    assert config.state_dir == Path("/var/lib/hacluster")
    settings = config.membership_settings(generation=1)
    assert settings.links == (LinkSpec(LinkName("bcast eth0"), LinkKind.BCAST, "eth0", (), 694),)


def test_example_file_commented_lines_are_valid_too(tmp_path: Path) -> None:
    """Every commented-out directive in the example works when an operator enables it."""
    lines = []
    for line in (REPO / "ha.cf.example").read_text().splitlines():
        word = line[1:].split(" ", 1)[0]
        enable = line.startswith("#") and word in KNOWN_DIRECTIVES and word != "bind_address"
        lines.append(line[1:] if enable else line)
    text = "\n".join(lines)
    assert problems(text) == []
    enabled = parse_hacf(text, "ha.cf", "n1").raw
    assert {"mcast", "ucast", "serial", "baud", "ping", "ping_group", "deadping", "stonith_host"} <= set(
        enabled
    )


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (BASE + "keepalive 2min\ndeadtime 1500ms\n", 1),
        (BASE + "deadtime soon\nwarntime 20\ninitdead 5\n", 1),
        (BASE + "keepalive 0\ndeadping 1\n", 1),
        ("node n1 n2\nbcast averyveryverylongname\n", 1),
        ("node n1 n2\nmcast eth0 239.0.0.1 694 9 0\n", 1),
    ],
)
def test_a_wrong_line_does_not_cause_follow_up_errors(text: str, count: int) -> None:
    assert len(problems(text)) == count, problems(text)


def test_pydantic_findings_reach_the_operator_in_our_format(tmp_path: Path) -> None:
    """The models are the last guard; their findings are rewritten with the directive's line."""
    config = load(tmp_path, BASE + "keepalive 2\ndeadtime 9\n")
    values = dict(config)
    values["keepalive_ms"] = -1
    with pytest.raises(ValidationError) as caught:
        LoadedConfig.model_validate(values)
    assert _validation_problems(caught.value, config.path, config.where) == [
        f"{config.path}:3: keepalive: value not accepted (greater_than); this check should have named the "
        "line itself, so please report it together with the line"
    ]


def test_loaded_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    with pytest.raises(ValidationError):
        config.keepalive_ms = 5
    assert config.keepalive_ms == 1000


def test_default_node_name_is_uname_lower_cased() -> None:
    assert default_node_name() == os.uname().nodename.lower()


# -- IPv6 media (Heartbeat's ucast6, mcast6, ping6 plugins) ---------------------------------------


def test_ipv6_media_and_ping6(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "udpport 700\nnode n1 n2 n3\n"
        "ucast6 eth0 fd00:0:0::2\nucast6 eth0 fe80::3\nucast6 eth0 fd00::1\n"
        "mcast6 eth1 ff12::1:2:3:4 5000 2 1\n"
        "ping6 fd00::fe FD00::FD\n"
        "bcast eth0\n"
        "bind_address eth0 127.0.0.2\n",
    )
    settings = config.membership_settings(generation=1)
    assert settings.links == (
        LinkSpec(
            LinkName("ucast6 eth0"), LinkKind.UCAST6, "eth0", ("fd00::2", "fe80::3%eth0", "fd00::1"), 700
        ),
        LinkSpec(
            LinkName("mcast6 eth1"), LinkKind.MCAST6, "eth1", ("ff12::1:2:3:4",), 5000, ttl=2, loop=True
        ),
        LinkSpec(LinkName("bcast eth0"), LinkKind.BCAST, "eth0", (), 700, bind_address="127.0.0.2"),
    ), "bind_address is for the IPv4 links of its interface only"
    assert settings.links[0].kind.is_ipv6
    assert not LinkKind.UCAST.is_ipv6
    assert settings.ping_nodes == (
        PingNode(NodeName("fd00::fe"), ("fd00::fe",)),
        PingNode(NodeName("fd00::fd"), ("fd00::fd",)),
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ucast6 eth0", "takes an interface and one peer, got 1"),
        ("ucast6 eth0 10.0.0.2", "peer '10.0.0.2' is not an IPv6 address"),
        ("ucast6 eth0 peer.example", "peer 'peer.example' is not an IPv6 address"),
        ("ucast6 eth0 ff02::1", "peer ff02::1 is a multicast address"),
        ("ucast6 eth0 ::", "peer :: is a unspecified address"),
        ("ucast6 eth0 ::1", "peer ::1 is a loopback address"),
        ("ucast6 eth0 fe80::2%eth1", "scope %eth1 is not the interface eth0"),
        ("mcast6 eth0 ff12::1 694 1", "takes 5 values, got 4"),
        ("mcast6 eth0 fd00::1 694 1 0", "group fd00::1: not a multicast address (ff00::/8)"),
        ("mcast6 eth0 ff0e::1 694 1 0", "scope must be link"),
        ("mcast6 eth0 ff01::1 694 1 0", "scope must be link"),
        ("mcast6 eth0 ff32::1 694 1 0", "flags other than transient"),
        ("mcast6 eth0 ff02:: 694 1 0", "a group of all zeros is reserved"),
        ("mcast6 eth0 ff12::1 694 5 0", "hops 5 is out of range; expected a whole number 0..4"),
        ("mcast6 eth0 ff12::1 694 1 2", "loop 2 is out of range"),
        ("mcast6 eth0 ff12::1 0 1 0", "port 0 is out of range"),
        ("ping6", "needs at least one IPv6 address"),
        ("ping6 10.0.0.254", "'10.0.0.254' is not an IPv6 address (ping6 takes numeric addresses only)"),
        ("ping6 router.example", "'router.example' is not an IPv6 address"),
    ],
)
def test_ipv6_media_errors(line: str, expected: str) -> None:
    [problem] = problems(BASE + line + "\n")
    assert problem.startswith(f"ha.cf:3: {line}: "), problem
    assert expected in problem, problem


def test_bind_address_of_an_interface_with_only_ipv6_links_is_refused() -> None:
    [problem] = problems(BASE + "ucast6 eth1 fd00::2\nbind_address eth1 127.0.0.2\n")
    assert "no bcast, mcast or ucast line uses eth1" in problem


def test_ucast6_uses_the_udpport_in_force_at_the_end_of_the_file() -> None:
    """A ucast6 link takes the udpport in force once the file is read (hacf.py, IPv6 media)."""
    result = parse_hacf("node n1 n2\nucast6 eth0 fd00::2\nudpport 700\n", "ha.cf", "n1")
    assert (result.problems, result.warnings) == ([], [])
    [link] = result.values["links"]
    assert (link["kind"], link["port"]) == ("ucast6", 700)


@pytest.mark.parametrize(
    "line",
    ["udpport ²", "baud ²", "mcast eth1 239.0.0.1 ² 1 0", "mcast6 eth1 ff12::1 ① 1 0", "max_rexmit_delay ²"],
)
def test_digits_that_are_not_ascii_are_refused_not_crashed_on(line: str) -> None:
    """Found by bench/bench_fuzz.py: "²".isdigit() is true, int("²") raises."""
    [problem] = problems(BASE + line + "\n")
    assert problem.startswith(f"ha.cf:3: {line}: ")


def test_api_readonly_group(tmp_path: Path) -> None:
    assert load(tmp_path, BASE).api_readonly_group is None
    assert load(tmp_path, BASE + "api_readonly_group hareaders\n").api_readonly_group == "hareaders"
    assert problems(BASE + "api_readonly_group 9readers\n") == [
        "ha.cf:3: api_readonly_group 9readers: '9readers' is not a group name (letters, digits, '_', '-', "
        "'.', not starting with a digit or '-'); e.g. api_readonly_group hareaders"
    ]
    assert "takes exactly one value" in problems(BASE + "api_readonly_group a b\n")[0]


# -- watchdog ------------------------------------------------------------------------------------


def test_watchdog_takes_heartbeats_default_timeout(tmp_path: Path) -> None:
    # Heartbeat sets the device to deadtime + 10 ms, rounded up to whole seconds.
    config = load(tmp_path, BASE + "deadtime 10\nwatchdog /dev/watchdog\n")
    assert config.watchdog == "/dev/watchdog"
    assert config.watchdog_timeout_ms == 11_000
    assert load(tmp_path, BASE + "watchdog /dev/watchdog\nwatchdog_timeout 5\n").watchdog_timeout_ms == 5000
    assert load(tmp_path, BASE).watchdog is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("watchdog dev/watchdog\n", "ha.cf:3: watchdog dev/watchdog: dev/watchdog is not a device path"),
        ("watchdog /dev/a\nwatchdog /dev/b\n", "watchdog is already set at ha.cf:3"),
        ("watchdog\n", "takes exactly one value"),
        ("watchdog_timeout 5\n", "ha.cf:3: watchdog_timeout 5: has no effect without a watchdog line"),
        ("watchdog /dev/watchdog\nwatchdog_timeout 1500ms\n", "whole number of seconds, at least 1"),
        ("watchdog /dev/watchdog\nwatchdog_timeout 500ms\n", "write watchdog_timeout 1"),
        ("watchdog /dev/watchdog\nwatchdog_timeout soon\n", "watchdog_timeout soon"),
    ],
)
def test_a_bad_watchdog_line_says_where_and_what_to_write(lines: str, message: str) -> None:
    found = problems(BASE + lines)
    assert any(message in problem for problem in found), found
