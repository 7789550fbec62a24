"""Heartbeat's ``haresources``, translated into the same ``ClusterConfig`` as ``resources.crm``.

Theory of operation
-------------------
Each logical line of ``haresources`` is one resource group:
``<preferred-node> <resource> [<resource> …]``.  ``#`` starts a comment anywhere, a trailing
``\\`` joins the next line, runs of blanks collapse and the node name is lower-cased, as
Heartbeat's own parser does.  One line becomes:

* a ``Group`` named ``group_<n>_<first resource key, sanitised>`` whose members keep the
  line's order (start left to right, stop right to left), with the exact Heartbeat key in
  its meta ``heartbeat-key`` so messages and status can use the name operators know;
* one ``Primitive`` per resource, id ``<name>_<k>`` (k counts per name over the file):
  ``name::a::b`` runs the heartbeat-class script ``name`` with arguments ``a b``; a bare
  dotted quad, ``IPaddr::…`` and ``IPaddr2::…`` use hacluster's own ``ocf:hacluster:IPaddr2``
  with ``ip``/``cidr_netmask``/``nic``/``broadcast`` params; ``OCF::agent::instance`` names
  ``ocf:heartbeat:agent`` (its parameters file is not read: a warning says so);
* a ``Location`` of score ``PREFERENCE_SCORE`` putting the group on its preferred node.

``auto_failback`` becomes ``rsc_defaults resource-stickiness``: ``on`` (and ``legacy``) 0, so
groups go home; ``off`` ``STAY_STICKINESS``, more than the preference, so they stay.  Heartbeat
R1 neither fenced nor needed quorum, so ``stonith-enabled=false`` and
``no-quorum-policy=ignore`` are set; the daemon warns about running without fencing.

Heartbeat never monitored R1 resources; hacluster adds a 10 s ``monitor`` to OCF primitives
only.  Heartbeat-class scripts judge ``status`` by its text and get no recurring monitor.
All problems are collected and raised as one ``ConfigError`` of ``path:line: …`` lines.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from hacluster.config.values import is_number
from hacluster.core.cib import ClusterConfig, Group, Location, Op, Primitive
from hacluster.errors import ConfigError

PREFERENCE_SCORE: Final = 100
"""How much a group prefers the node its line names: a preference, not a requirement."""

STAY_STICKINESS: Final = 1000
"""``auto_failback off``: larger than ``PREFERENCE_SCORE``, so a group stays where it runs."""

MONITOR_INTERVAL_MS: Final = 10_000
MONITOR_TIMEOUT_MS: Final = 20_000
IP_AGENT: Final = ("ocf", "hacluster", "IPaddr2")
AUTO_FAILBACK_VALUES: Final = ("on", "off", "legacy")

_DOTTED_QUAD_RE: Final = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/.*)?$")
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_UNSAFE_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9_.-]")
_IP_USAGE: Final = "expected IP[/BITS[/NIC[:LABEL]][/BROADCAST]], e.g. 10.0.0.10/24/eth0"


class _ResourceError(Exception):
    """One resource on a line is unusable; the message says why and what to write."""


def parse_haresources(
    text: str,
    path: str,
    resource_d: Sequence[Path] = (Path("/etc/ha.d/resource.d"),),
    init_d: Sequence[Path] = (Path("/etc/init.d"),),
    auto_failback: str = "legacy",
    *,
    check_scripts: bool = True,
    epoch: int = 0,
    warnings: list[str] | None = None,
    nodes: Sequence[str] | None = None,
) -> ClusterConfig:
    """Translate ``haresources`` into a ``ClusterConfig``; ``ConfigError`` lists every problem.

    ``check_scripts=False`` skips looking for heartbeat-class scripts (tests, ``simulate``).
    ``warnings`` (if given) receives lines about syntax accepted with reduced meaning.
    ``nodes`` (ha.cf's node list, if given): a line whose preferred node is not one of them is
    refused, as Heartbeat refuses it ("Bad nodename in haresources").
    """
    if auto_failback not in AUTO_FAILBACK_VALUES:
        raise ValueError(f"auto_failback {auto_failback!r} is not one of {AUTO_FAILBACK_VALUES}")
    problems: list[str] = []
    notes: list[str] = []
    primitives: list[Primitive] = []
    groups: list[Group] = []
    locations: list[Location] = []
    counters: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for lineno, words in _logical_lines(text):
        where = f"{path}:{lineno}"
        node = words[0].lower()
        if not _HOST_RE.match(node):
            problems.append(
                f"{where}: {words[0]!r} is not a node name; start the line with the preferred node"
            )
            continue
        if len(words) == 1:
            problems.append(f"{where}: node {node} has no resources; write {node} RESOURCE [RESOURCE …]")
            continue
        if nodes is not None and node not in nodes:
            problems.append(
                f"{where}: {words[0]}: not a node of ha.cf ({', '.join(nodes)}); Heartbeat refuses it too "
                f'("Bad nodename in haresources"); start the line with the node that should run the group'
            )
        members: list[str] = []
        for key in words[1:]:
            if key in first_seen:
                problems.append(
                    f"{where}: {key}: already listed at {path}:{first_seen[key]}; a resource belongs to one group"
                )
                continue
            first_seen[key] = lineno
            try:
                primitive = _primitive(key, counters, resource_d, init_d, check_scripts)
            except _ResourceError as exc:
                problems.append(f"{where}: {key}: {exc}")
                continue
            if primitive.agent_class == "ocf" and primitive.provider == "heartbeat":
                notes.append(
                    f"{where}: {key}: the parameters in /etc/ha.d/conf/OCF/{primitive.type}/{key.split('::')[2]} "
                    f"are not read; add them with a resources.crm primitive instead"
                )
            primitives.append(primitive)
            members.append(primitive.id)
        group_id = f"group_{len(groups) + 1}_{_sanitise(words[1])}"
        groups.append(Group(group_id, tuple(members), (("heartbeat-key", words[1]),)))
        locations.append(Location(f"prefer_{group_id}", group_id, node, PREFERENCE_SCORE))
    if auto_failback == "legacy":
        notes.append(
            f"{path}: auto_failback legacy is treated as auto_failback on (groups return to their "
            f"preferred node); set auto_failback on or off in ha.cf to choose explicitly"
        )
    stickiness = STAY_STICKINESS if auto_failback == "off" else 0
    cfg = ClusterConfig(
        epoch=epoch,
        primitives=tuple(primitives),
        groups=tuple(groups),
        locations=tuple(locations),
        colocations=(),
        orders=(),
        properties=(("stonith-enabled", "false"), ("no-quorum-policy", "ignore")),
        rsc_defaults=(("resource-stickiness", str(stickiness)),),
        op_defaults=(),
        source=path,
    )
    if not problems:  # otherwise check() would only repeat them (a group left empty, …)
        problems.extend(f"{path}: {problem}" for problem in cfg.check())
    if warnings is not None:
        warnings.extend(notes)
    if problems:
        raise ConfigError(problems)
    return cfg


def _logical_lines(text: str) -> list[tuple[int, list[str]]]:
    """``(first physical line, words)`` of each non-empty logical line."""
    lines: list[tuple[int, list[str]]] = []
    pending: list[str] = []
    start = 0
    for lineno, physical in enumerate(text.split("\n"), start=1):
        content = physical.partition("#")[0].rstrip()
        if not pending:
            start = lineno
        continued = content.endswith("\\")
        pending.extend(content.removesuffix("\\").split())
        if not continued and pending:
            lines.append((start, pending))
            pending = []
    if pending:
        lines.append((start, pending))
    return lines


def _sanitise(text: str) -> str:
    return _UNSAFE_ID_CHARS.sub("_", text)


def _next_id(name: str, counters: dict[str, int]) -> str:
    base = _sanitise(name)
    if not re.match(r"[A-Za-z_]", base):
        base = f"r_{base}"
    counters[base] = counters.get(base, 0) + 1
    return f"{base}_{counters[base]}"


def _primitive(
    key: str,
    counters: dict[str, int],
    resource_d: Sequence[Path],
    init_d: Sequence[Path],
    check_scripts: bool,
) -> Primitive:
    if _DOTTED_QUAD_RE.match(key):
        return _ip_primitive(_next_id("IPaddr", counters), key)
    name, *args = key.split("::")
    if name in ("IPaddr", "IPaddr2"):
        if len(args) != 1:
            raise _ResourceError(f"{name} takes one argument; write {name}::10.0.0.10/24/eth0")
        return _ip_primitive(_next_id(name, counters), args[0])
    if not name or "/" in name or name.startswith("."):
        raise _ResourceError("the script name must be a plain file name; write NAME::ARG::ARG")
    if any(not arg for arg in args):
        raise _ResourceError("has an empty argument (a doubled '::'?); remove it")
    if name == "OCF":
        if len(args) != 2:
            raise _ResourceError("write OCF::AGENT::INSTANCE, e.g. OCF::Dummy::one")
        agent, instance = args
        if "/" in agent or agent.startswith("."):
            raise _ResourceError(f"OCF agent {agent!r} must be a plain file name")
        monitor = Op("monitor", MONITOR_INTERVAL_MS, MONITOR_TIMEOUT_MS)
        return Primitive(
            _next_id(agent, counters),
            "ocf",
            "heartbeat",
            agent,
            (),
            (monitor,),
            (("heartbeat-ocf-instance", instance),),
        )
    if check_scripts:
        _find_script(name, resource_d, init_d)
    return Primitive(_next_id(name, counters), "heartbeat", None, name, (), (), (), tuple(args))


def _find_script(name: str, resource_d: Sequence[Path], init_d: Sequence[Path]) -> Path:
    candidates = [directory / name for directory in (*resource_d, *init_d)]
    for candidate in candidates:
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                raise _ResourceError(f"script {candidate} is not executable; run chmod +x {candidate}")
            return candidate
    searched = " and ".join(str(c) for c in candidates)
    raise _ResourceError(f"no script found; searched {searched}; install the script or correct the name")


def _ip_primitive(rsc_id: str, spec: str) -> Primitive:
    # Heartbeat's IPaddr wrapper strips each field with its following slashes (sed 's%^F/*%%'),
    # so runs of slashes count as one and a trailing slash is nothing: 10.0.30.15//8/eth0:10 is
    # address 10.0.30.15, netmask 8, nic eth0:10.
    fields = [field for field in re.split("/+", spec)]
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()
    if len(fields) > 4:
        raise _ResourceError(f"too many '/' fields in {spec!r}; {_IP_USAGE}")
    try:
        address = ipaddress.ip_address(fields[0])
    except ValueError:
        raise _ResourceError(f"{fields[0]!r} is not an IP address; {_IP_USAGE}") from None
    params: list[tuple[str, str]] = [("ip", str(address))]
    if len(fields) > 1 and fields[1]:
        try:
            params.append(("cidr_netmask", _prefix_length(fields[1], address.max_prefixlen)))
        except _ResourceError as exc:
            if "//" not in spec:
                raise
            raise _ResourceError(
                f"{exc} (Heartbeat's IPaddr reads '//' as one '/', so the field after it is the netmask); "
                f"{_IP_USAGE}"
            ) from None
    broadcast: str | None = None
    if len(fields) > 2 and fields[2]:
        # Heartbeat's rule: a third field starting with a digit is the broadcast, not the NIC.
        if is_number(fields[2][0]):
            if len(fields) > 3:
                raise _ResourceError(
                    f"{fields[2]!r} was read as the broadcast, so nothing may follow; {_IP_USAGE}"
                )
            broadcast = fields[2]
        else:
            nic, _, label = fields[2].partition(":")
            if not nic or len(nic.encode()) > 15:
                raise _ResourceError(f"{nic!r} is not an interface name (1 to 15 characters); {_IP_USAGE}")
            params.append(("nic", nic))
            if label:
                params.append(("iflabel", label))
    if len(fields) > 3 and fields[3]:
        broadcast = fields[3]
    if broadcast is not None:
        try:
            ipaddress.ip_address(broadcast)
        except ValueError:
            raise _ResourceError(f"broadcast {broadcast!r} is not an IP address; {_IP_USAGE}") from None
        params.append(("broadcast", broadcast))
    monitor = Op("monitor", MONITOR_INTERVAL_MS, MONITOR_TIMEOUT_MS)
    agent_class, provider, agent_type = IP_AGENT
    return Primitive(rsc_id, agent_class, provider, agent_type, tuple(params), (monitor,), ())


def _prefix_length(text: str, max_bits: int) -> str:
    """``24`` or a dotted netmask such as ``255.255.255.0``, as a prefix length."""
    if is_number(text) and int(text) <= max_bits:
        return str(int(text))
    try:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen)
    except ValueError:
        raise _ResourceError(f"netmask {text!r}; expected 0 to {max_bits} or a dotted netmask") from None
