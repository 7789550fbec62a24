"""Parser for Heartbeat's ``ha.cf``, keeping the file and line of every directive.

Theory of operation
-------------------
The file is read in two passes.

1. **Lines.**  Each line is stripped of its ``#`` comment and leading whitespace and split
   into a directive and its values.  ``_HANDLERS`` maps every directive we know to one
   method; the method checks that line's own values and records them together with the
   line they came from.  Order matters where Heartbeat's does: each UDP medium type
   (``bcast``, ``ucast``) takes the ``udpport`` in effect when the *first* line of that type
   is read, and keeps it for all its lines (seen on the real Heartbeat 3.0.6: ``bcast eth0``,
   ``udpport 700``, ``bcast eth1``, ``ucast eth2 …`` listens on 694 on eth0 and eth1 and on
   700 on eth2).  A ``udpport`` that changes nothing is silent; one that some links do not
   follow is a warning naming each link's port.
2. **Relations.**  ``_finish`` fills in Heartbeat's defaults and checks what only makes
   sense for the whole file: the timing arithmetic (``deadtime > 2 × keepalive`` and so
   on), that this node is listed, that there is at least one medium.

Rules for this file: nothing raises on a bad configuration.  Every problem becomes one line
``path:line: <directive> <value>: what is wrong; what to do`` in ``problems`` and parsing
goes on, so the operator sees every mistake at once.  Directives that Heartbeat knows but
hacluster does not act on yet are accepted with a line in ``warnings``, and so are legacy
spellings Heartbeat still reads (``udp`` for ``bcast``).  A line is refused only where
Heartbeat 3.0.6 refuses it (checked with the real daemon, tests/oracles) or where running
with it would be unsafe, and the message then says which.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from hacluster.config.values import (
    BAUD_RATES,
    BOOL_HINT,
    DEFAULT_DEADTIME_MS,
    DEFAULT_KEEPALIVE_MS,
    DEFAULT_UDPPORT,
    INITDEAD_ADVICE_MS,
    SYSLOG_FACILITIES,
    TIME_HINT,
    is_host,
    is_interface,
    is_number,
    parse_bool,
    parse_time_ms,
)

_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "autojoin": ("none", "other", "any"),
    "hbgenmethod": ("file", "time"),
    "msgfmt": ("classic", "netstring"),
}

_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "debug": (0, 255),
    "hopfudge": (0, 255),
    "rtprio": (1, 99),
}

_GROUP_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
"""A POSIX portable group name, as groupadd takes it (at most 32 characters)."""

_ACCEPTED_NOT_ACTED: Final[dict[str, str]] = {
    "respawn": "hacluster does not start respawn clients",
    "failfast": "hacluster does not start failfast clients",
    "apiauth": "hacluster's API checks each caller's uid and groups (root, haclient, api_readonly_group), not apiauth",
    "uuidfrom": "hacluster identifies nodes by name",
    "compression": "hacluster never compresses packets",
    "compression_threshold": "hacluster never compresses packets",
    "traditional_compression": "hacluster never compresses packets",
    "use_logd": "hacluster logs through logfile, logfacility and debugfile",
    "conn_logd_time": "hacluster logs through logfile, logfacility and debugfile",
    "coredumps": "core dumps follow the system settings",
    "coreroot": "core dumps follow the system settings",
    "memreserve": "hacluster does not pre-allocate memory",
    "log_badpack": "bad packets are always counted and logged at a limited rate",
    "syslogmsgfmt": "the syslog format is fixed",
    "use_apphbd": "hacluster does not use apphbd",
    "env": "resource agents get their environment from the resource configuration",
    "quorum_server": "hacluster has no quorum server",
    "crm_daemon_dir": "hacluster does not run Pacemaker",
    "crmd_spawns_pengine": "hacluster does not run Pacemaker",
    "record_config_changes": "hacluster does not run Pacemaker",
    "record_pengine_inputs": "hacluster does not run Pacemaker",
    "enable_config_writes": "hacluster does not run Pacemaker",
}

_ONCE_KEY: Final[dict[str, str]] = {"pacemaker": "crm"}

CRM_MODES: Final = ("respawn", "minimal", "manual")
"""``crm``/``pacemaker`` values besides the booleans: all of them mean "the resources are in the
CIB", which hacluster reads (``cib_file``, or where Heartbeat v2 and Pacemaker keep it)."""
"""Directives that are spellings of another one, for the once-only check."""


@dataclass(frozen=True, slots=True)
class Line:
    """One directive line of ha.cf."""

    where: str
    """``path:lineno``, the prefix of every message about this line."""
    directive: str
    values: tuple[str, ...]
    rest: str
    """Everything after the directive, as written (comment and outer blanks removed)."""

    @property
    def text(self) -> str:
        return f"{self.directive} {self.rest}".rstrip()

    def problem(self, what: str) -> str:
        return f"{self.where}: {self.text}: {what}"


@dataclass(slots=True)
class _Link:
    name: str
    kind: str
    device: str
    line: Line
    targets: list[str] = field(default_factory=list)
    port: int | None = None
    """``None``: the port of its medium type (bcast, ucast), fixed by the first line of the type."""
    ttl: int = 1
    loop: bool = False


@dataclass(slots=True)
class HaCfResult:
    """What one ha.cf gave: field values for ``LoadedConfig`` plus every problem found."""

    values: dict[str, object]
    where: dict[str, str]
    """First ``path:line`` of each directive present, for messages made later."""
    raw: dict[str, str]
    """Each directive's value as written (repeated directives: one line each, joined by newlines)."""
    problems: list[str]
    warnings: list[str]


def parse_hacf(text: str, path: str, node_name: str) -> HaCfResult:
    """Parse and check the text of one ha.cf; ``node_name`` is this machine's node name."""
    parser = _HaCfParser(path, node_name.lower())
    for lineno, physical in enumerate(text.splitlines(), start=1):
        line = _split_line(physical, f"{path}:{lineno}")
        if line is not None:
            parser.feed(line)
    return parser.finish()


def _split_line(physical: str, where: str) -> Line | None:
    content = physical.split("#", 1)[0].strip()
    if not content:
        return None
    directive, *tail = content.split(None, 1)
    rest = tail[0] if tail else ""
    return Line(where, directive, tuple(rest.split()), rest)


class _HaCfParser:
    """Accumulates one file's directives; see the module docstring for the two passes."""

    def __init__(self, path: str, node_name: str) -> None:
        self.path = path
        self.node_name = node_name
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.seen: dict[str, Line] = {}
        self.raw: dict[str, str] = {}
        self.where: dict[str, str] = {}
        self.values: dict[str, object] = {}
        self.times: dict[str, tuple[int, Line]] = {}
        self.nodes: dict[str, Line] = {}
        self.links: dict[str, _Link] = {}
        self.udp_media: list[Line] = []
        self.serial_lines: list[Line] = []
        self.ping_nodes: dict[str, tuple[tuple[str, ...], Line]] = {}
        self.stonith: list[str] = []
        self.stonith_host: list[str] = []
        self.nice_failback: str | None = None
        self.bind_addresses: dict[str, tuple[str, Line]] = {}
        self.bad_times: set[str] = set()
        """Time directives whose line was wrong: checks against them would only repeat that."""
        self.media_lines = 0
        self.alerts: list[dict[str, object]] = []
        self.udpport = DEFAULT_UDPPORT
        self.udpport_lines: list[Line] = []
        self.type_ports: dict[str, tuple[int, Line]] = {}
        """Port of each UDP medium type, fixed by its first line (Heartbeat's plugins cache it)."""

    # -- pass 1 ---------------------------------------------------------------------------

    def feed(self, line: Line) -> None:
        handler = _HANDLERS.get(line.directive)
        if handler is None:
            self.problems.append(line.problem(_unknown_directive(line.directive)))
            return
        self.where.setdefault(line.directive, line.where)
        previous = self.raw.get(line.directive)
        self.raw[line.directive] = line.rest if previous is None else f"{previous}\n{line.rest}"
        handler(self, line)

    def _type_port(self, kind: str, line: Line) -> None:
        self.type_ports.setdefault(kind, (self.udpport, line))

    def _is_first(self, line: Line) -> bool:
        """Directives allowed once: a second line is an error naming both."""
        key = _ONCE_KEY.get(line.directive, line.directive)
        earlier = self.seen.get(key)
        if earlier is not None:
            self.problems.append(
                line.problem(
                    f"{key} is already set at {earlier.where} ({earlier.text}); keep only one of the two lines"
                )
            )
            return False
        self.seen[key] = line
        return True

    def _one_value(self, line: Line, hint: str) -> str | None:
        """The one value of a directive that may repeat (Heartbeat applies each in turn)."""
        if len(line.values) != 1:
            got = "nothing" if not line.values else f"{len(line.values)} values"
            self.problems.append(line.problem(f"takes exactly one value ({hint}), got {got}"))
            return None
        return line.values[0]

    def _single(self, line: Line, hint: str) -> str | None:
        """The one value of a once-only directive, or ``None`` after recording the problem."""
        if not self._is_first(line):
            return None
        if len(line.values) != 1:
            got = "nothing" if not line.values else f"{len(line.values)} values"
            self.problems.append(line.problem(f"takes exactly one value ({hint}), got {got}"))
            return None
        return line.values[0]

    def on_time(self, line: Line) -> None:
        is_first = line.directive not in self.seen
        value = self._single(line, TIME_HINT)
        if value is None:
            if is_first:
                self.bad_times.add(line.directive)
            return
        try:
            ms = parse_time_ms(value)
        except ValueError as exc:
            ms = 0
            self.problems.append(
                line.problem(f"{exc}; write e.g. {line.directive} 2 or {line.directive} 500ms")
            )
        else:
            if ms <= 0:
                self.problems.append(line.problem("must be more than 0ms; give a positive time"))
        if ms <= 0:
            self.bad_times.add(line.directive)
            return
        self.times[line.directive] = (ms, line)

    def on_node(self, line: Line) -> None:
        if not line.values:
            self.problems.append(line.problem("needs at least one node name, e.g. node n1 n2"))
        for value in line.values:
            name = value.lower()
            if name in self.nodes:
                self.warnings.append(
                    line.problem(f"node {name} is already listed at {self.nodes[name].where}; it counts once")
                )
                continue
            self.nodes[name] = line

    def on_udpport(self, line: Line) -> None:
        value = self._one_value(line, "a UDP port 1..65535")
        if value is None:
            return
        port = self._int_in(line, value, 1, 65535)
        if port is None:
            return
        self.udpport = port
        self.udpport_lines.append(line)
        self.values["udpport"] = port

    def on_baud(self, line: Line) -> None:
        rates = ", ".join(str(rate) for rate in BAUD_RATES)
        value = self._single(line, f"one of {rates}")
        if value is None:
            return
        if not is_number(value) or int(value) not in BAUD_RATES:
            self.problems.append(line.problem(f"unsupported serial speed; expected one of {rates}"))
            return
        if self.serial_lines:
            serial = self.serial_lines[0]
            self.warnings.append(
                line.problem(
                    f"comes after {serial.where} ({serial.text}); Heartbeat 3.0.6 accepts that too, and "
                    f"hacluster runs every serial link at {value} baud; move baud above {serial.where} so "
                    "the file reads as it works"
                )
            )
        self.values["baud"] = int(value)

    def _add_link(self, link: _Link) -> None:
        earlier = self.links.get(link.name)
        if earlier is not None:
            self.warnings.append(
                link.line.problem(
                    f"link {link.name} is already defined at {earlier.line.where} ({earlier.line.text}); "
                    "Heartbeat accepts this and runs the medium twice, hacluster counts it once; remove "
                    "one of the two"
                )
            )
            return
        self.links[link.name] = link

    def _check_interface(self, line: Line, interface: str) -> bool:
        if is_interface(interface):
            return True
        self.problems.append(
            line.problem(f"{interface!r} is not a network interface name (at most 15 characters, no '/')")
        )
        return False

    def on_bcast(self, line: Line) -> None:
        self.media_lines += 1
        self.udp_media.append(line)
        if line.directive == "udp":
            self.warnings.append(
                line.problem(
                    "'udp' is the old name of 'bcast' (Heartbeat: \"directive 'udp' replaced by 'bcast'\"); "
                    f"read as bcast {line.rest}; write that"
                )
            )
        self._type_port("bcast", line)
        if not line.values:
            self.problems.append(line.problem("needs at least one interface, e.g. bcast eth0"))
        for interface in line.values:
            if self._check_interface(line, interface):
                self._add_link(_Link(f"bcast {interface}", "bcast", interface, line))

    def on_mcast(self, line: Line) -> None:
        self.media_lines += 1
        usage = "expected: mcast <interface> <group> <port> <ttl 0..4> <loop 0|1>, e.g. mcast eth0 239.0.0.1 694 1 0"
        if len(line.values) != 5:
            self.problems.append(line.problem(f"takes 5 values, got {len(line.values)}; {usage}"))
            return
        interface, group, port_text, ttl_text, loop_text = line.values
        ok = self._check_interface(line, interface)
        try:
            is_multicast = ipaddress.IPv4Address(group).is_multicast
        except ValueError:
            is_multicast = False
        if not is_multicast:
            self.problems.append(
                line.problem(f"group {group} is not a multicast address (224.0.0.0/4); {usage}")
            )
            ok = False
        port = self._int_in(line, port_text, 1, 65535, what="port")
        ttl = self._int_in(line, ttl_text, 0, 4, what="ttl")
        loop = self._int_in(line, loop_text, 0, 1, what="loop")
        if ok and port is not None and ttl is not None and loop is not None:
            self._add_link(
                _Link(f"mcast {interface}", "mcast", interface, line, [group], port, ttl, bool(loop))
            )

    def on_ucast(self, line: Line) -> None:
        self.media_lines += 1
        self.udp_media.append(line)
        self._type_port("ucast", line)
        if len(line.values) != 2:
            example = " ".join(line.values[:2]) if len(line.values) > 2 else "eth0 10.0.0.2"
            self.problems.append(
                line.problem(
                    f"takes an interface and one peer, got {len(line.values)}; "
                    f"write one line per peer, e.g. ucast {example}"
                )
            )
            return
        interface, peer = line.values
        ok = self._check_interface(line, interface)
        if not is_host(peer):
            self.problems.append(line.problem(f"peer {peer!r} is neither an IP address nor a host name"))
            ok = False
        if not ok:
            return
        link = self.links.get(f"ucast {interface}")
        if link is None:
            self._add_link(_Link(f"ucast {interface}", "ucast", interface, line, [peer]))
        elif peer in link.targets:
            self.warnings.append(
                line.problem(f"peer {peer} is already listed for {link.name}; it counts once")
            )
        else:
            link.targets.append(peer)

    # IPv6 media, as Heartbeat 3.0.6's ucast6, mcast6 and ping6 plugins read them: numeric
    # addresses only (they resolve with AI_NUMERICHOST / inet_pton), ucast6 on the udpport.

    def on_ucast6(self, line: Line) -> None:
        self.media_lines += 1
        self.udp_media.append(line)
        usage = "expected: ucast6 <interface> <IPv6 address>, e.g. ucast6 eth0 fd00::2 (one line per peer)"
        if len(line.values) != 2:
            self.problems.append(
                line.problem(f"takes an interface and one peer, got {len(line.values)}; {usage}")
            )
            return
        interface, peer = line.values
        ok = self._check_interface(line, interface)
        address, _, scope = peer.partition("%")
        try:
            ip = ipaddress.IPv6Address(address)
        except ValueError:
            self.problems.append(line.problem(f"peer {peer!r} is not an IPv6 address; {usage}"))
            return
        if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
            kind = "multicast" if ip.is_multicast else "unspecified" if ip.is_unspecified else "loopback"
            self.problems.append(
                line.problem(f"peer {peer} is a {kind} address; give the peer's unicast address")
            )
            ok = False
        if scope and scope != interface:
            self.problems.append(
                line.problem(
                    f"scope %{scope} is not the interface {interface}; write {address}%{interface} or {address}"
                )
            )
            ok = False
        if not ok:
            return
        name = f"ucast6 {interface}"
        target = ip.compressed + (f"%{interface}" if ip.is_link_local else "")
        link = self.links.get(name)
        if link is None:
            self._add_link(_Link(name, "ucast6", interface, line, [target]))
        elif target in link.targets:
            self.warnings.append(
                line.problem(f"peer {peer} is already listed for {link.name}; it counts once")
            )
        else:
            link.targets.append(target)

    def on_mcast6(self, line: Line) -> None:
        self.media_lines += 1
        usage = "expected: mcast6 <interface> <group> <port> <hops 0..4> <loop 0|1>, e.g. mcast6 eth0 ff12::1:2:3:4 694 1 0"
        if len(line.values) != 5:
            self.problems.append(line.problem(f"takes 5 values, got {len(line.values)}; {usage}"))
            return
        interface, group, port_text, hops_text, loop_text = line.values
        ok = self._check_interface(line, interface)
        problem = _mcast6_group_problem(group)
        if problem is not None:
            self.problems.append(line.problem(f"group {group}: {problem}; {usage}"))
            ok = False
        port = self._int_in(line, port_text, 1, 65535, what="port")
        hops = self._int_in(line, hops_text, 0, 4, what="hops")
        loop = self._int_in(line, loop_text, 0, 1, what="loop")
        if ok and port is not None and hops is not None and loop is not None:
            group = ipaddress.IPv6Address(group).compressed
            self._add_link(
                _Link(f"mcast6 {interface}", "mcast6", interface, line, [group], port, hops, bool(loop))
            )

    def on_ping6(self, line: Line) -> None:
        if not line.values:
            self.problems.append(line.problem("needs at least one IPv6 address, e.g. ping6 fd00::fe"))
        for address in line.values:
            try:
                ip = ipaddress.IPv6Address(address)
            except ValueError:
                self.problems.append(
                    line.problem(f"{address!r} is not an IPv6 address (ping6 takes numeric addresses only)")
                )
                continue
            self._add_ping_node(line, ip.compressed, (ip.compressed,))

    def on_serial(self, line: Line) -> None:
        self.media_lines += 1
        self.serial_lines.append(line)
        if not line.values:
            self.problems.append(line.problem("needs at least one device, e.g. serial /dev/ttyS0"))
        for device in line.values:
            if not device.startswith("/"):
                self.problems.append(
                    line.problem(f"{device} is not a device path; write e.g. serial /dev/ttyS0")
                )
                continue
            self._add_link(_Link(f"serial {device}", "serial", device, line))

    def on_bind_address(self, line: Line) -> None:
        usage = "write bind_address <interface> <local IP address>, e.g. bind_address lo 127.0.0.2"
        if len(line.values) != 2:
            self.problems.append(line.problem(f"takes 2 values, got {len(line.values)}; {usage}"))
            return
        interface, address = line.values
        if not self._check_interface(line, interface):
            return
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            self.problems.append(line.problem(f"{address} is not an IPv4 address; {usage}"))
            return
        earlier = self.bind_addresses.get(interface)
        if earlier is not None:
            self.problems.append(
                line.problem(
                    f"interface {interface} already has a bind address at {earlier[1].where}; keep one line"
                )
            )
            return
        self.bind_addresses[interface] = (address, line)

    def _add_ping_node(self, line: Line, name: str, addresses: tuple[str, ...]) -> None:
        bad = [address for address in addresses if not is_host(address)]
        for address in bad:
            self.problems.append(line.problem(f"{address!r} is neither an IP address nor a host name"))
        if bad:
            return
        earlier = self.ping_nodes.get(name)
        if earlier is not None:
            self.problems.append(
                line.problem(
                    f"ping node {name} is already defined at {earlier[1].where}; remove one of the two"
                )
            )
            return
        self.ping_nodes[name] = (addresses, line)

    def on_ping(self, line: Line) -> None:
        if not line.values:
            self.problems.append(line.problem("needs at least one address, e.g. ping 10.0.0.254"))
        for address in line.values:
            self._add_ping_node(line, address, (address,))

    def on_ping_group(self, line: Line) -> None:
        if len(line.values) < 2:
            self.problems.append(
                line.problem(
                    "needs a name and at least one address, e.g. ping_group routers 10.0.0.253 10.0.0.254"
                )
            )
            return
        self._add_ping_node(line, line.values[0], line.values[1:])

    def on_choice(self, line: Line) -> None:
        choices = _CHOICES[line.directive]
        value = self._single(line, "/".join(choices))
        if value is None:
            return
        if value.lower() not in choices:
            self.problems.append(line.problem(f"expected one of {', '.join(choices)}"))
            return
        self.values[line.directive] = value.lower()

    def on_auto_failback(self, line: Line) -> None:
        value = self._single(line, "on/off/legacy")
        if value is None:
            return
        if value.lower() == "legacy":
            self.values["auto_failback"] = "legacy"
            return
        try:
            self.values["auto_failback"] = "on" if parse_bool(value) else "off"
        except ValueError:
            self.problems.append(line.problem("expected on, off or legacy"))

    def on_nice_failback(self, line: Line) -> None:
        value = self._single(line, BOOL_HINT)
        if value is None:
            return
        try:
            mapped = "off" if parse_bool(value) else "legacy"
        except ValueError as exc:
            self.problems.append(line.problem(str(exc)))
            return
        self.nice_failback = mapped
        self.warnings.append(
            line.problem(f"nice_failback is obsolete and means auto_failback {mapped}; write that instead")
        )

    def on_realtime(self, line: Line) -> None:
        value = self._single(line, BOOL_HINT)
        if value is None:
            return
        try:
            self.values["realtime"] = parse_bool(value)
        except ValueError as exc:
            self.problems.append(line.problem(str(exc)))

    def _int_in(self, line: Line, text: str, low: int, high: int, what: str | None = None) -> int | None:
        if is_number(text) and low <= int(text) <= high:
            return int(text)
        label = f"{what} {text}" if what else text
        self.problems.append(line.problem(f"{label} is out of range; expected a whole number {low}..{high}"))
        return None

    def on_int(self, line: Line) -> None:
        low, high = _INT_RANGES[line.directive]
        value = self._single(line, f"a whole number {low}..{high}")
        if value is None:
            return
        number = self._int_in(line, value, low, high)
        if number is not None:
            self.values[line.directive] = number

    def on_max_rexmit_delay(self, line: Line) -> None:
        value = self._single(line, "milliseconds, e.g. 250")
        if value is None:
            return
        try:
            # Heartbeat reads a plain number here as milliseconds, unlike the other times.
            ms = int(value) if is_number(value) else parse_time_ms(value)
        except ValueError:
            self.problems.append(line.problem("expected milliseconds, e.g. max_rexmit_delay 250"))
            return
        if ms <= 0:
            self.problems.append(line.problem("must be more than 0ms"))
            return
        self.values["max_rexmit_delay_ms"] = ms

    def on_path(self, line: Line) -> None:
        value = self._single(line, "a file path")
        if value is None:
            return
        if line.directive in ("api_socket", "state_dir") and not value.startswith("/"):
            self.problems.append(line.problem(f"must be an absolute path, e.g. {line.directive} /{value}"))
            return
        self.values[line.directive] = Path(value) if line.directive in ("api_socket", "state_dir") else value

    def on_logfacility(self, line: Line) -> None:
        value = self._single(line, "a syslog facility or none")
        if value is None:
            return
        if value.lower() not in SYSLOG_FACILITIES:
            self.problems.append(
                line.problem(
                    f"unknown syslog facility; expected one of {', '.join(sorted(SYSLOG_FACILITIES))}"
                )
            )
            return
        self.values["logfacility"] = value.lower()

    def on_cluster(self, line: Line) -> None:
        value = self._single(line, "a cluster name")
        if value is not None:
            self.values["cluster"] = value

    def on_crm(self, line: Line) -> None:
        """``crm``/``pacemaker``: Heartbeat v2 and Pacemaker-on-Heartbeat keep the resources in a CIB.

        hacluster does not run Pacemaker; it reads that CIB instead (``config.cluster``), so
        the value is recorded and a Heartbeat value hacluster cannot give a meaning to is refused.
        """
        if not self._is_first(line):
            return
        if len(line.values) != 1:
            self.problems.append(line.problem(f"takes one value (on, off, {', '.join(CRM_MODES)})"))
            return
        value = line.values[0].lower()
        try:
            runs_pacemaker = parse_bool(value)
        except ValueError:
            if value not in CRM_MODES:
                self.problems.append(
                    line.problem(
                        f"expected on, off or one of {', '.join(CRM_MODES)} (Heartbeat refuses other "
                        "values too); write crm off for haresources, crm on for a CIB"
                    )
                )
                return
            runs_pacemaker = True
        self.values["crm"] = value if runs_pacemaker else "off"

    def on_cib_file(self, line: Line) -> None:
        value = self._single(line, "the path of a CIB, e.g. /var/lib/pacemaker/cib/cib.xml")
        if value is None:
            return
        if not value.startswith("/"):
            self.problems.append(line.problem(f"must be an absolute path, e.g. cib_file /{value}"))
            return
        self.values["cib_file"] = Path(value)

    def on_stonith(self, line: Line) -> None:
        if len(line.values) < 2:
            usage = (
                "stonith <type> <config file>"
                if line.directive == "stonith"
                else "stonith_host <host or *> <type> <parameters…>"
            )
            self.problems.append(line.problem(f"too few values; expected {usage}"))
            return
        (self.stonith if line.directive == "stonith" else self.stonith_host).append(line.rest)

    def on_metrics_listen(self, line: Line) -> None:
        usage = "write metrics_listen ADDRESS:PORT, e.g. metrics_listen 127.0.0.1:9661"
        value = self._single(line, "ADDRESS:PORT")
        if value is None:
            return
        host, sep, port_text = value.rpartition(":")
        address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not address:
            self.problems.append(line.problem(f"expected ADDRESS:PORT; {usage}"))
            return
        try:
            ipaddress.ip_address(address)
        except ValueError:
            if ":" in address or not is_host(address):
                self.problems.append(
                    line.problem(f"{address!r} is not an IP address or host name (IPv6: [::1]:9661); {usage}")
                )
                return
        if self._int_in(line, port_text, 1, 65535, what="port") is not None:
            self.values["metrics_listen"] = value

    def on_api_readonly_group(self, line: Line) -> None:
        """``api_readonly_group NAME``: members may read status, history and explain on the API
        (hacluster.shell.access); whether the group exists is checked on each connection."""
        value = self._single(line, "a group name")
        if value is None:
            return
        if not _GROUP_NAME.fullmatch(value):
            self.problems.append(
                line.problem(
                    f"{value!r} is not a group name (letters, digits, '_', '-', '.', not starting with "
                    "a digit or '-'); e.g. api_readonly_group hareaders"
                )
            )
            return
        self.values["api_readonly_group"] = value

    def on_alert(self, line: Line) -> None:
        usage = "write alert /path/to/script [timeout=5s] [retries=3]"
        if not line.values or not line.values[0].startswith("/"):
            self.problems.append(line.problem(f"needs the absolute path of a script first; {usage}"))
            return
        path, *options = line.values
        alert: dict[str, object] = {"path": path, "where": line.where}
        for option in options:
            name, sep, text = option.partition("=")
            if not sep or name not in ("timeout", "retries"):
                self.problems.append(
                    line.problem(f"unknown option {option!r}; expected timeout=TIME or retries=N; {usage}")
                )
                continue
            if name == "timeout":
                try:
                    alert["timeout_ms"] = parse_time_ms(text)
                except ValueError as exc:
                    self.problems.append(line.problem(f"timeout={text}: {exc}"))
                    continue
                if alert["timeout_ms"] == 0:
                    self.problems.append(line.problem("timeout must be more than 0ms"))
            else:
                retries = self._int_in(line, text, 0, 100, what="retries")
                if retries is not None:
                    alert["retries"] = retries
        if not os.access(path, os.X_OK):
            self.warnings.append(
                line.problem(f"{path} is missing or not executable: every alert to it fails until it is")
            )
        self.alerts.append(alert)

    def on_watchdog(self, line: Line) -> None:
        """``watchdog /dev/watchdog``: the daemon opens the device and pets it (shell/watchdog.py)."""
        value = self._single(line, "a device path, e.g. /dev/watchdog")
        if value is None:
            return
        if not value.startswith("/"):
            self.problems.append(
                line.problem(f"{value} is not a device path; write e.g. watchdog /dev/watchdog")
            )
            return
        self.values["watchdog"] = value

    def on_accepted(self, line: Line) -> None:
        reason = _ACCEPTED_NOT_ACTED[line.directive]
        self.warnings.append(line.problem(f"accepted for Heartbeat compatibility but ignored: {reason}"))

    # -- pass 2 ---------------------------------------------------------------------------

    def finish(self) -> HaCfResult:
        self._check_timing()
        self._check_watchdog()
        self._check_nodes()
        if not self.media_lines:
            self.problems.append(
                f"{self.path}: no communication media: add at least one bcast, mcast, ucast, mcast6, ucast6 "
                "or serial line, e.g. bcast eth0"
            )
        if "auto_failback" not in self.values and self.nice_failback is not None:
            self.values["auto_failback"] = self.nice_failback
        udp_devices = {
            link.device for link in self.links.values() if link.kind in ("bcast", "mcast", "ucast")
        }
        for interface, (_, line) in self.bind_addresses.items():
            if interface not in udp_devices:
                self.problems.append(
                    line.problem(
                        f"no bcast, mcast or ucast line uses {interface}; remove this line or fix the name"
                    )
                )
        self._check_udpport()
        self.values["links"] = tuple(
            {
                "name": link.name,
                "kind": link.kind,
                "device": link.device,
                "targets": tuple(link.targets),
                "port": self._port_of(link),
                "ttl": link.ttl,
                "loop": link.loop,
                "bind_address": self._bind_address(link),
                "where": link.line.where,
            }
            for link in self.links.values()
        )
        self.values["ping_nodes"] = tuple(
            {"name": name, "addresses": addresses, "where": line.where}
            for name, (addresses, line) in self.ping_nodes.items()
        )
        self.values["stonith"] = tuple(self.stonith)
        self.values["alerts"] = tuple(self.alerts)
        self.values["stonith_host"] = tuple(self.stonith_host)
        return HaCfResult(self.values, self.where, self.raw, self.problems, self.warnings)

    def _port_of(self, link: _Link) -> int:
        if link.port is not None:
            return link.port
        return self.type_ports.get(link.kind, (self.udpport, link.line))[0]

    def _check_udpport(self) -> None:
        """Warn when a udpport line is not what some links use (see the module docstring)."""
        if not self.udpport_lines:
            return
        last = self.udpport_lines[-1]
        ports = {
            link.name: self._port_of(link) for link in self.links.values() if link.kind in ("bcast", "ucast")
        }
        if all(port == self.udpport for port in ports.values()) and len(self.udpport_lines) == 1:
            return
        uses = ", ".join(f"{name} port {port}" for name, port in ports.items()) or "no bcast or ucast link"
        rule = (
            "each medium type (bcast, ucast) takes the udpport in effect at its first line, as "
            "Heartbeat 3.0.6 does"
        )
        self.warnings.append(
            last.problem(f"{rule}, so the links use: {uses}; put one udpport above the media lines")
        )

    def _bind_address(self, link: _Link) -> str:
        if link.kind in ("serial", "ucast6", "mcast6") or link.device not in self.bind_addresses:
            return ""
        return self.bind_addresses[link.device][0]

    def _check_nodes(self) -> None:
        autojoin = self.values.get("autojoin", "none")
        nodes = list(self.nodes)
        if not nodes and autojoin != "any":
            self.problems.append(
                f"{self.path}: no node directive: list every cluster node, this one included, "
                f"e.g. node {self.node_name} <peer>"
            )
        elif self.node_name not in self.nodes and autojoin != "any":
            first = next(iter(self.nodes.values()))
            self.problems.append(
                first.problem(
                    f"Current node not in configuration: this machine is {self.node_name} but the node "
                    f"lines list {', '.join(nodes)}; add 'node {self.node_name}' (the name uname -n "
                    "prints, lower-cased) or correct the hostname"
                )
            )
        if self.node_name not in self.nodes:
            nodes.append(self.node_name)
        self.values["node"] = self.node_name
        self.values["nodes"] = tuple(nodes)
        for name, (_, line) in self.ping_nodes.items():
            if name in self.nodes:
                self.problems.append(
                    line.problem(
                        f"ping node {name} has the name of cluster node {name} ({self.nodes[name].where}); "
                        "rename the ping group"
                    )
                )

    def _checkable(self, *names: str) -> bool:
        """Whether a relation between these times is worth checking (none of them was wrong)."""
        return not self.bad_times.intersection(names)

    def _check_timing(self) -> None:
        """Heartbeat's defaults and rules; all in integer milliseconds.

        deadtime > 2 × keepalive (two heartbeats may be lost before a peer is declared dead);
        keepalive < warntime < deadtime (default ⌈deadtime / 2⌉; only warned about, as Heartbeat
        accepts any warntime); initdead ≥ deadtime, default
        deadtime when above 10 s, 12 s when below 6 s, 2 × deadtime in between; deadping
        > 2 × keepalive (default deadtime).
        """
        keepalive_ms, keepalive = self.times.get("keepalive", (DEFAULT_KEEPALIVE_MS, None))
        deadtime_ms, deadtime = self.times.get("deadtime", (DEFAULT_DEADTIME_MS, None))
        warntime_ms, warntime = self.times.get("warntime", ((deadtime_ms + 1) // 2, None))
        initdead_ms, initdead = self.times.get("initdead", (_default_initdead_ms(deadtime_ms), None))
        deadping_ms, deadping = self.times.get("deadping", (deadtime_ms, None))
        twice_ms = 2 * keepalive_ms
        keepalive_text = f"{keepalive_ms}ms" + (f" at {keepalive.where}" if keepalive else ", the default")
        if deadtime_ms <= twice_ms and self._checkable("keepalive", "deadtime"):
            if deadtime is not None:
                self.problems.append(
                    deadtime.problem(
                        f"must be more than 2 × keepalive ({keepalive_text}), i.e. more than {twice_ms}ms; "
                        "raise deadtime or lower keepalive"
                    )
                )
            elif keepalive is not None:
                self.problems.append(
                    keepalive.problem(
                        f"the default deadtime ({deadtime_ms}ms) must be more than 2 × keepalive "
                        f"({twice_ms}ms); add a deadtime above {twice_ms}ms or lower keepalive"
                    )
                )
        if warntime is not None and self._checkable("keepalive", "deadtime", "warntime"):
            self._check_warntime(warntime, warntime_ms, deadtime_ms, keepalive_ms, keepalive_text)
        if initdead is not None and self._checkable("deadtime", "initdead"):
            self._check_initdead(initdead, initdead_ms, deadtime_ms)
        if deadping is not None and deadping_ms <= twice_ms and self._checkable("keepalive", "deadping"):
            self.problems.append(
                deadping.problem(
                    f"must be more than 2 × keepalive ({keepalive_text}), i.e. more than {twice_ms}ms; "
                    "raise deadping or lower keepalive"
                )
            )
        self.values.update(
            keepalive_ms=keepalive_ms,
            deadtime_ms=deadtime_ms,
            warntime_ms=warntime_ms,
            initdead_ms=initdead_ms,
            deadping_ms=deadping_ms,
        )

    def _check_watchdog(self) -> None:
        """``watchdog_timeout`` (ours): how long the device waits for a pet before it resets the node.

        Heartbeat sets the device to deadtime + 10 ms rounded up to whole seconds, so that is
        the default.  The kernel takes whole seconds (WDIOC_SETTIMEOUT), so the value must be
        one; and at least 1 s, since the daemon pets every min(keepalive, timeout / 3) and a
        shorter timeout leaves no room for one late pet.
        """
        timeout = self.times.get("watchdog_timeout")
        if "watchdog" not in self.values:
            if timeout is not None:
                self.problems.append(
                    timeout[1].problem(
                        "has no effect without a watchdog line; add watchdog /dev/watchdog or remove it"
                    )
                )
            return
        if timeout is None:
            deadtime_ms = int(self.values["deadtime_ms"])  # type: ignore[call-overload]
            self.values["watchdog_timeout_ms"] = -(-(deadtime_ms + 10) // 1000) * 1000
            return
        ms, line = timeout
        if ms % 1000 or ms < 1000:
            seconds = max(1, -(-ms // 1000))
            self.problems.append(
                line.problem(
                    f"must be a whole number of seconds, at least 1 (the kernel sets watchdog timeouts in "
                    f"seconds); write watchdog_timeout {seconds}"
                )
            )
            return
        self.values["watchdog_timeout_ms"] = ms

    def _check_warntime(
        self, warntime: Line, warntime_ms: int, deadtime_ms: int, keepalive_ms: int, keepalive_text: str
    ) -> None:
        # Heartbeat 3.0.6 accepts both (checked with the real daemon): they only make the
        # late-heartbeat warning useless, so they are warnings here too.
        if warntime_ms >= deadtime_ms:
            self.warnings.append(
                warntime.problem(
                    f"is not less than deadtime ({deadtime_ms}ms), so a peer is declared dead before any "
                    "late-heartbeat warning; lower warntime or raise deadtime"
                )
            )
        elif warntime_ms <= keepalive_ms:
            self.warnings.append(
                warntime.problem(
                    f"is not more than keepalive ({keepalive_text}), so every heartbeat counts as late; "
                    "raise warntime or lower keepalive"
                )
            )

    def _check_initdead(self, initdead: Line, initdead_ms: int, deadtime_ms: int) -> None:
        if initdead_ms < deadtime_ms:
            self.problems.append(
                initdead.problem(
                    f"must be at least deadtime ({deadtime_ms}ms); raise initdead to {deadtime_ms}ms or more"
                )
            )
        elif initdead_ms < INITDEAD_ADVICE_MS:
            self.warnings.append(
                initdead.problem(
                    "below 10s: a peer that boots at the same time may be declared dead before its "
                    "network is up"
                )
            )


def _mcast6_group_problem(group: str) -> str | None:
    """Heartbeat's check of an mcast6 group: ff00::/8, flags 0 or transient, a useful scope.

    Scopes 2 (link), 4 (admin), 5 (site) and 8 (organisation) are allowed; interface-local,
    global and reserved scopes are not, nor a group of all zeros after the scope.
    """
    try:
        packed = ipaddress.IPv6Address(group).packed
    except ValueError:
        return "not an IPv6 address"
    if packed[0] != 0xFF:
        return "not a multicast address (ff00::/8)"
    if packed[1] & 0xE0:
        return "flags other than transient (ff1x) are not allowed"
    if packed[1] & 0x0F not in (0x2, 0x4, 0x5, 0x8):
        return "scope must be link (ff02, ff12), admin (ff04), site (ff05) or organisation (ff08)"
    if not any(packed[2:]):
        return "a group of all zeros is reserved"
    return None


def _default_initdead_ms(deadtime_ms: int) -> int:
    """Heartbeat's rule, kept for compatibility even though 12 s is slow for fast clusters."""
    if deadtime_ms > 10_000:
        return deadtime_ms
    if deadtime_ms < 6_000:
        return 12_000
    return 2 * deadtime_ms


def _unknown_directive(directive: str) -> str:
    guess = difflib.get_close_matches(directive.lower(), list(_HANDLERS), n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]}?" if guess else "see ha.cf.example for the directives hacluster knows"
    return f"Illegal directive {directive}; {hint}"


_Handler = Callable[[_HaCfParser, Line], None]

_HANDLERS: Final[dict[str, _Handler]] = {
    "node": _HaCfParser.on_node,
    "keepalive": _HaCfParser.on_time,
    "deadtime": _HaCfParser.on_time,
    "warntime": _HaCfParser.on_time,
    "initdead": _HaCfParser.on_time,
    "deadping": _HaCfParser.on_time,
    "udpport": _HaCfParser.on_udpport,
    "baud": _HaCfParser.on_baud,
    "bcast": _HaCfParser.on_bcast,
    "udp": _HaCfParser.on_bcast,
    "mcast": _HaCfParser.on_mcast,
    "ucast": _HaCfParser.on_ucast,
    "mcast6": _HaCfParser.on_mcast6,
    "ucast6": _HaCfParser.on_ucast6,
    "ping6": _HaCfParser.on_ping6,
    "serial": _HaCfParser.on_serial,
    "ping": _HaCfParser.on_ping,
    "ping_group": _HaCfParser.on_ping_group,
    "auto_failback": _HaCfParser.on_auto_failback,
    "nice_failback": _HaCfParser.on_nice_failback,
    "stonith": _HaCfParser.on_stonith,
    "stonith_host": _HaCfParser.on_stonith,
    "logfile": _HaCfParser.on_path,
    "debugfile": _HaCfParser.on_path,
    "api_socket": _HaCfParser.on_path,
    "state_dir": _HaCfParser.on_path,
    "logfacility": _HaCfParser.on_logfacility,
    "debug": _HaCfParser.on_int,
    "hopfudge": _HaCfParser.on_int,
    "rtprio": _HaCfParser.on_int,
    "autojoin": _HaCfParser.on_choice,
    "hbgenmethod": _HaCfParser.on_choice,
    "msgfmt": _HaCfParser.on_choice,
    "max_rexmit_delay": _HaCfParser.on_max_rexmit_delay,
    "realtime": _HaCfParser.on_realtime,
    "cluster": _HaCfParser.on_cluster,
    "crm": _HaCfParser.on_crm,
    "pacemaker": _HaCfParser.on_crm,
    "cib_file": _HaCfParser.on_cib_file,
    "bind_address": _HaCfParser.on_bind_address,
    "metrics_listen": _HaCfParser.on_metrics_listen,
    "alert": _HaCfParser.on_alert,
    "api_readonly_group": _HaCfParser.on_api_readonly_group,
    "watchdog": _HaCfParser.on_watchdog,
    "watchdog_timeout": _HaCfParser.on_time,
    **dict.fromkeys(_ACCEPTED_NOT_ACTED, _HaCfParser.on_accepted),
}

KNOWN_DIRECTIVES: Final = frozenset(_HANDLERS)
"""Every directive ha.cf may contain (Heartbeat's, plus hacluster's own)."""
