"""The cluster resource configuration: what should run, how, and where it may run.

Theory of operation
-------------------
This is the core's plain, frozen view of the configuration that Pacemaker keeps in its CIB:
primitives, groups, node-scored location, colocation and order constraints, fencing levels,
cluster properties and defaults.  Two file formats produce it (``resources.crm`` in crm
configure syntax, and Heartbeat's ``haresources``; both parsers live in ``hacluster.config``),
and nodes replicate it to each other as canonical JSON (``to_json``/``from_json``).

Rules for this file:

* Everything is a frozen dataclass of ints, strings and tuples, so two configurations compare
  with ``==`` and the canonical JSON of equal configurations is byte-for-byte equal.
* Order is kept wherever the operator wrote one (group members, params, ops); attribute
  values stay the strings the operator wrote, and the typed helpers (``stickiness_of``,
  ``failure_timeout_ms_of`` …) interpret them with Pacemaker's defaults.
* ``from_json`` checks *shape* (types, enumerations, ranges) and raises ``ValueError``;
  ``check`` finds *semantic* problems (unknown references, duplicate ids, malformed meta
  values) and returns them, because a parser wants to add file and line to each one.
* ``epoch`` counts configuration changes; ``digest`` leaves it (and the file name) out, so
  two nodes holding the same content at different epochs see the same digest and can break
  a tie deterministically.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final, TypeVar, overload

INFINITY: Final = 1_000_000
"""Pacemaker's score infinity; every score is clamped to ±INFINITY."""

DEFAULT_OP_TIMEOUT_MS: Final = 20_000
"""An operation's timeout when neither the op nor ``op_defaults`` gives one (Pacemaker's)."""

AGENT_CLASSES: Final = ("ocf", "lsb", "heartbeat", "stonith")
ORDER_KINDS: Final = ("Mandatory", "Optional", "Serialize")
ON_FAIL_VALUES: Final = ("ignore", "block", "stop", "restart", "standby", "fence")
OP_ROLES: Final = ("Started", "Stopped")
TARGET_ROLES: Final = ("Started", "Stopped")
MULTIPLE_ACTIVE_VALUES: Final = ("block", "stop_only", "stop_start", "stop_unexpected")

PROPERTY_DEFAULTS: Final[dict[str, str]] = {
    "stonith-enabled": "true",
    "no-quorum-policy": "stop",
    "symmetric-cluster": "true",
    "maintenance-mode": "false",
    "stop-all-resources": "false",
    "start-failure-is-fatal": "true",
    "stonith-action": "reboot",
    "stonith-timeout": "60s",
    "cluster-recheck-interval": "15min",
}
"""Defaults for ``property()`` when the configuration does not set a property."""

RSC_DEFAULTS: Final[dict[str, str]] = {
    "target-role": "Started",
    "is-managed": "true",
    "resource-stickiness": "0",
    "migration-threshold": "INFINITY",
    "failure-timeout": "0",
    "priority": "0",
}
"""Defaults for ``meta_of()``: Pacemaker's, so a failure never expires unless asked to."""

KNOWN_PROPERTIES: Final = frozenset(
    [
        *PROPERTY_DEFAULTS,
        "batch-limit",
        "cluster-delay",
        "cluster-infrastructure",
        "cluster-ipc-limit",
        "cluster-name",
        "concurrent-fencing",
        "dc-deadtime",
        "dc-version",
        "election-timeout",
        "enable-acl",
        "enable-startup-probes",
        "fence-reaction",
        "have-watchdog",
        "join-finalization-timeout",
        "join-integration-timeout",
        "last-lrm-refresh",
        "load-threshold",
        "migration-limit",
        "node-action-limit",
        "node-health-strategy",
        "pe-error-series-max",
        "pe-input-series-max",
        "pe-warn-series-max",
        "placement-strategy",
        "priority-fencing-delay",
        "shutdown-escalation",
        "shutdown-lock",
        "shutdown-lock-limit",
        "startup-fencing",
        "stonith-max-attempts",
        "stonith-watchdog-timeout",
        "stop-orphan-actions",
        "stop-orphan-resources",
        "transition-delay",
    ]
)

_ID_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

Pairs = tuple[tuple[str, str], ...]
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Value syntax: scores, times, booleans


def parse_score(text: str) -> int:
    """A Pacemaker score: an integer clamped to ±INFINITY, or ``inf``/``-inf``/``INFINITY``."""
    word = text.strip().lower()
    if word in ("inf", "+inf", "infinity", "+infinity"):
        return INFINITY
    if word in ("-inf", "-infinity"):
        return -INFINITY
    if not re.fullmatch(r"[+-]?\d{1,30}", word):
        raise ValueError("expected an integer score, inf or -inf")
    return max(-INFINITY, min(INFINITY, int(word)))


def format_score(score: int) -> str:
    """The crm spelling of a score: ``inf``, ``-inf`` or the integer."""
    if score >= INFINITY:
        return "inf"
    if score <= -INFINITY:
        return "-inf"
    return str(score)


# One table of time units and one set of boolean words, for crm files, CIBs and ha.cf alike
# (``hacluster.config.values`` builds ha.cf's parsers from these).  The differences that must
# stay are written next to each table.

TIME_UNITS_MS: Final[dict[str, Decimal]] = {
    "": Decimal(1000),
    "s": Decimal(1000),
    "sec": Decimal(1000),
    "ms": Decimal(1),
    "msec": Decimal(1),
    "us": Decimal("0.001"),
    "usec": Decimal("0.001"),
    "m": Decimal(60_000),
    "min": Decimal(60_000),
    "h": Decimal(3_600_000),
    "hr": Decimal(3_600_000),
}
"""Pacemaker's units (``crm_get_msec``): a plain number is seconds.

ha.cf uses ``HACF_TIME_UNITS``, a subset: Heartbeat's ``cl_get_msec`` knows a plain number
(seconds), ``ms``/``msec`` and ``us``/``usec`` only.  Checked against Heartbeat 3.0.6 itself
(tests/oracles): ``keepalive 500msec`` and ``keepalive .5`` are accepted, while ``2s``,
``2sec``, ``1min`` and ``500 ms`` (a blank before the unit) are refused.  hacluster also
accepts ``s``/``sec`` in ha.cf because they cannot be misread; ``m``, ``min``, ``h``, ``hr``
and ISO-8601 durations stay crm-only, so an ha.cf written for hacluster never means
something else to a reader who knows Heartbeat.
"""

HACF_TIME_UNITS: Final = frozenset(["", "s", "sec", "ms", "msec", "us", "usec"])

_TIME_RE: Final = re.compile(r"^(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-z]*)$")
_ISO_RE: Final = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:(?P<h0>\d+)H)?(?:(?P<s0>\d+)S)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
"""ISO-8601 durations as Pacemaker's ``crm_time_parse_duration`` reads them: ``H`` and ``S``
count before the ``T`` too (``P40S`` is 40 s, as Pacemaker and crmsh accept it).  ``Y`` and
a date-part ``M`` (months) have no fixed length in milliseconds and are refused."""
TIME_HINT: Final = (
    "a time such as 10s, 500ms, 1m or 1h (a plain number is seconds), or ISO-8601 such as PT10S"
)

TRUE_WORDS: Final = frozenset(["true", "on", "yes", "y", "1"])
FALSE_WORDS: Final = frozenset(["false", "off", "no", "n", "0"])
"""Boolean words, case-insensitive.  Heartbeat's ``cl_str_to_boolean`` (ha.cf) and Pacemaker's
``crm_str_to_boolean`` (crm, CIB) accept exactly these, so there is no difference to keep."""
BOOL_HINT: Final = "on/off, yes/no, true/false, y/n or 1/0"


def parse_time_ms(text: str, *, units: frozenset[str] | None = None, iso: bool = True) -> int:
    """A time value in integer milliseconds; raises ``ValueError`` saying what is expected.

    ``units`` restricts the suffixes (``HACF_TIME_UNITS`` for ha.cf); ``iso`` allows ISO-8601
    durations.  Rounds to the nearest millisecond, as Heartbeat's ``cl_get_msec`` does.
    """
    word = text.strip()
    if iso:
        iso_match = _ISO_RE.match(word.upper())
        if iso_match is not None and word.upper() not in ("P", "PT") and not word.upper().endswith("T"):
            total = Decimal(0)
            for unit, scale in (
                ("w", 604_800_000),
                ("d", 86_400_000),
                ("h0", 3_600_000),
                ("h", 3_600_000),
                ("m", 60_000),
            ):
                total += Decimal(iso_match.group(unit) or 0) * scale
            total += (Decimal(iso_match.group("s0") or 0) + Decimal(iso_match.group("s") or 0)) * 1000
            return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    match = _TIME_RE.match(word.lower())
    allowed = TIME_UNITS_MS.keys() if units is None else units
    if match is None or match.group("unit") not in allowed:
        raise ValueError(f"expected {TIME_HINT}")
    try:
        scaled = Decimal(match.group("number")) * TIME_UNITS_MS[match.group("unit")]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"expected {TIME_HINT}") from exc
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_time_ms(ms: int) -> str:
    """An exact crm spelling of ``ms`` as people write it: ``500ms``, ``60s``, ``15m``, ``1h``."""
    assert ms >= 0, ms
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 300 or seconds % 60:
        return f"{seconds}s"
    if seconds % 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def parse_boolean(text: str) -> bool:
    """The boolean words of ``TRUE_WORDS``/``FALSE_WORDS``, case-insensitive."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected {BOOL_HINT}")


_PACEMAKER_INT_RE: Final = re.compile(r"^\s*([+-]?\d+)(.*)$", re.DOTALL)


def pacemaker_integer(text: str) -> tuple[int, str]:
    """An integer the way Pacemaker's ``pcmk__scan_ll`` reads it: the leading digits, and the rest.

    Pacemaker reads ``priority=1.0`` as 1 and only warns ("Characters left over after parsing
    '1.0': '.0'", seen with ``crm_verify``); the rest is returned so the caller can warn too.
    Raises ``ValueError`` when there are no leading digits at all.
    """
    match = _PACEMAKER_INT_RE.match(text)
    if match is None:
        raise ValueError("expected an integer")
    return int(match.group(1)), match.group(2)


_GLUE_EXTERNAL_RE: Final = re.compile(r"^external/[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def is_agent_type(agent_class: str, agent_type: str) -> bool:
    """A file name under the class's directory; ``stonith`` also takes cluster-glue's
    ``external/NAME`` plugins (``stonith -t external/ssh``, as Heartbeat and crmsh name them)."""
    if agent_class == "stonith" and _GLUE_EXTERNAL_RE.match(agent_type):
        return True
    return bool(agent_type) and "/" not in agent_type and not agent_type.startswith(".")


def is_true(text: str | None) -> bool:
    """A boolean attribute as the cluster acts on it: true only for one of ``parse_boolean``'s
    true words.  Unset or malformed (``check()`` reports the latter) reads as false."""
    if text is None:
        return False
    try:
        return parse_boolean(text)
    except ValueError:
        return False


def is_valid_id(text: str) -> bool:
    """An XML-ID-like name: a letter or ``_`` first, then letters, digits, ``_``, ``.``, ``-``."""
    return _ID_RE.match(text) is not None


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True, slots=True)
class Op:
    """One configured operation; ``timeout_ms == 0`` means "not given": use ``op_defaults``."""

    name: str
    interval_ms: int
    timeout_ms: int
    depth: int = 0
    on_fail: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Primitive:
    """One resource and the agent that drives it; ``args`` only for heartbeat-class scripts."""

    id: str
    agent_class: str
    provider: str | None
    type: str
    params: Pairs
    ops: tuple[Op, ...]
    meta: Pairs
    args: tuple[str, ...] = ()

    @property
    def agent(self) -> str:
        """``class:provider:type`` or ``class:type``, as crm writes it."""
        if self.provider is None:
            return f"{self.agent_class}:{self.type}"
        return f"{self.agent_class}:{self.provider}:{self.type}"

    def param(self, name: str, default: str | None = None) -> str | None:
        return dict(self.params).get(name, default)


@dataclass(frozen=True, slots=True)
class Group:
    """Primitives started in order and stopped in reverse, always on the same node."""

    id: str
    members: tuple[str, ...]
    meta: Pairs


@dataclass(frozen=True, slots=True)
class Location:
    """``rsc`` prefers (score > 0) or avoids (score < 0) ``node``."""

    id: str
    rsc: str
    node: str
    score: int


@dataclass(frozen=True, slots=True)
class Colocation:
    """``rsc`` is placed relative to ``with_rsc``: with it (score > 0) or away (score < 0)."""

    id: str
    score: int
    rsc: str
    with_rsc: str


@dataclass(frozen=True, slots=True)
class Order:
    """``first`` starts before ``then``; symmetrical orders also stop ``then`` first."""

    id: str
    kind: str
    first: str
    then: str
    symmetrical: bool = True


@dataclass(frozen=True, slots=True)
class FencingLevel:
    """Level ``index`` (1 is tried first) for fencing ``target``: all ``devices`` must succeed."""

    target: str
    index: int
    devices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The whole resource configuration at one ``epoch``."""

    epoch: int
    primitives: tuple[Primitive, ...]
    groups: tuple[Group, ...]
    locations: tuple[Location, ...]
    colocations: tuple[Colocation, ...]
    orders: tuple[Order, ...]
    properties: Pairs
    rsc_defaults: Pairs
    op_defaults: Pairs
    node_attributes: tuple[tuple[str, Pairs], ...] = ()
    fencing_levels: tuple[FencingLevel, ...] = ()
    source: str = "resources.crm"

    # -- lookups ----------------------------------------------------------------------------

    def primitive(self, rsc_id: str) -> Primitive:
        """The primitive ``rsc_id``; ``KeyError`` if there is none."""
        for primitive in self.primitives:
            if primitive.id == rsc_id:
                return primitive
        raise KeyError(rsc_id)

    def group(self, group_id: str) -> Group:
        """The group ``group_id``; ``KeyError`` if there is none."""
        for group in self.groups:
            if group.id == group_id:
                return group
        raise KeyError(group_id)

    def group_of(self, rsc_id: str) -> Group | None:
        """The group holding primitive ``rsc_id``, if any."""
        for group in self.groups:
            if rsc_id in group.members:
                return group
        return None

    def resource_ids(self) -> tuple[str, ...]:
        """Every primitive id, in configuration order."""
        return tuple(primitive.id for primitive in self.primitives)

    @overload
    def property(self, name: str) -> str | None: ...
    @overload
    def property(self, name: str, default: str) -> str: ...
    @overload
    def property(self, name: str, default: None) -> str | None: ...

    def property(self, name: str, default: str | None = None) -> str | None:
        """A cluster property; else ``default``; else hacluster's default from ``PROPERTY_DEFAULTS``."""
        value = dict(self.properties).get(name)
        if value is not None:
            return value
        return default if default is not None else PROPERTY_DEFAULTS.get(name)

    @overload
    def meta_of(self, rsc_id: str, name: str) -> str | None: ...
    @overload
    def meta_of(self, rsc_id: str, name: str, default: str) -> str: ...
    @overload
    def meta_of(self, rsc_id: str, name: str, default: None) -> str | None: ...

    def meta_of(self, rsc_id: str, name: str, default: str | None = None) -> str | None:
        """A meta attribute: the resource's, then its group's, then ``rsc_defaults``, then defaults."""
        chain: list[Pairs] = []
        for primitive in self.primitives:
            if primitive.id == rsc_id:
                chain.append(primitive.meta)
        for group in self.groups:
            if group.id == rsc_id or rsc_id in group.members:
                chain.append(group.meta)
        chain.append(self.rsc_defaults)
        for pairs in chain:
            value = dict(pairs).get(name)
            if value is not None:
                return value
        return default if default is not None else RSC_DEFAULTS.get(name)

    def node_attribute(self, node: str, name: str) -> str | None:
        for node_name, attributes in self.node_attributes:
            if node_name == node:
                return dict(attributes).get(name)
        return None

    # -- typed views (values were validated by check(); a bad one falls back to the default) --

    def is_stonith_enabled(self) -> bool:
        return _or_default(parse_boolean, self.property("stonith-enabled"), True)

    def is_maintenance_mode(self) -> bool:
        """``maintenance-mode``: the cluster starts, stops and monitors nothing."""
        return is_true(self.property("maintenance-mode"))

    def is_node_standby(self, node: str) -> bool:
        return is_true(self.node_attribute(node, "standby"))

    def is_node_in_maintenance(self, node: str) -> bool:
        """The node attribute ``maintenance``: nothing is started, stopped or monitored there."""
        return is_true(self.node_attribute(node, "maintenance"))

    def is_resource_in_maintenance(self, rsc_id: str) -> bool:
        """``meta maintenance=true`` (on it, its group or in ``rsc_defaults``)."""
        return is_true(self.meta_of(rsc_id, "maintenance"))

    def is_managed(self, rsc_id: str) -> bool:
        """The cluster may start and stop ``rsc_id``: ``is-managed`` (default true) and not in
        maintenance.  ``maintenance-mode`` and node maintenance are checked apart: they
        apply to a node or the whole cluster, not to one resource."""
        managed = _or_default(parse_boolean, self.meta_of(rsc_id, "is-managed"), True)
        return managed and not self.is_resource_in_maintenance(rsc_id)

    def no_quorum_policy(self) -> str:
        """``stop``, ``freeze``, ``ignore`` or ``demote`` (lower case; malformed reads as stop)."""
        policy = (self.property("no-quorum-policy") or "stop").strip().lower()
        return policy if policy in ("stop", "freeze", "ignore", "demote") else "stop"

    def multiple_active_of(self, rsc_id: str) -> str:
        """What to do when ``rsc_id`` is found active on several nodes (Pacemaker's
        ``multiple-active``): ``stop_start`` (the default), ``stop_only``, ``block`` or
        ``stop_unexpected``."""
        value = (self.meta_of(rsc_id, "multiple-active") or "stop_start").strip().lower()
        return value if value in MULTIPLE_ACTIVE_VALUES else "stop_start"

    def target_role_of(self, rsc_id: str) -> str:
        """``Started`` or ``Stopped``."""
        role = (self.meta_of(rsc_id, "target-role") or "Started").capitalize()
        return role if role in TARGET_ROLES else "Started"

    def stickiness_of(self, rsc_id: str) -> int:
        return _or_default(parse_score, self.meta_of(rsc_id, "resource-stickiness"), 0)

    def migration_threshold_of(self, rsc_id: str) -> int:
        """Failures allowed on a node before the resource leaves it; INFINITY: never leaves."""
        return _or_default(parse_score, self.meta_of(rsc_id, "migration-threshold"), INFINITY)

    def failure_timeout_ms_of(self, rsc_id: str) -> int:
        """How long a failure counts; 0: forever."""
        return _or_default(parse_time_ms, self.meta_of(rsc_id, "failure-timeout"), 0)

    def op_timeout_ms(self, rsc_id: str, name: str, interval_ms: int = 0) -> int:
        """The timeout for one action: the op's own, else ``op_defaults``, else 20 s."""
        for op in self.primitive(rsc_id).ops:
            if op.name == name and op.interval_ms == interval_ms and op.timeout_ms > 0:
                return op.timeout_ms
        default = dict(self.op_defaults).get("timeout")
        return _or_default(parse_time_ms, default, DEFAULT_OP_TIMEOUT_MS)

    def fencing_levels_for(self, target: str) -> tuple[FencingLevel, ...]:
        return tuple(
            sorted((lv for lv in self.fencing_levels if lv.target == target), key=lambda lv: lv.index)
        )

    # -- canonical form -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {
            "format": 1,
            "epoch": self.epoch,
            "source": self.source,
            "primitives": [
                {
                    "id": p.id,
                    "agent_class": p.agent_class,
                    "provider": p.provider,
                    "type": p.type,
                    "params": [list(kv) for kv in p.params],
                    "ops": [
                        {
                            "name": op.name,
                            "interval_ms": op.interval_ms,
                            "timeout_ms": op.timeout_ms,
                            "depth": op.depth,
                            "on_fail": op.on_fail,
                            "role": op.role,
                        }
                        for op in p.ops
                    ],
                    "meta": [list(kv) for kv in p.meta],
                    "args": list(p.args),
                }
                for p in self.primitives
            ],
            "groups": [
                {"id": g.id, "members": list(g.members), "meta": [list(kv) for kv in g.meta]}
                for g in self.groups
            ],
            "locations": [
                {"id": c.id, "rsc": c.rsc, "node": c.node, "score": c.score} for c in self.locations
            ],
            "colocations": [
                {"id": c.id, "score": c.score, "rsc": c.rsc, "with_rsc": c.with_rsc} for c in self.colocations
            ],
            "orders": [
                {"id": c.id, "kind": c.kind, "first": c.first, "then": c.then, "symmetrical": c.symmetrical}
                for c in self.orders
            ],
            "fencing_levels": [
                {"target": lv.target, "index": lv.index, "devices": list(lv.devices)}
                for lv in self.fencing_levels
            ],
            "properties": [list(kv) for kv in self.properties],
            "rsc_defaults": [list(kv) for kv in self.rsc_defaults],
            "op_defaults": [list(kv) for kv in self.op_defaults],
            "node_attributes": [[name, [list(kv) for kv in attrs]] for name, attrs in self.node_attributes],
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no blanks, ASCII; equal configs give equal text."""
        return _canonical(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> ClusterConfig:
        """Parse ``to_json`` output; ``ValueError`` for anything malformed (never another error)."""
        try:
            data: object = json.loads(text)
        except RecursionError as exc:
            raise ValueError("configuration JSON is nested too deeply") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"configuration JSON is not UTF-8: {exc}") from exc
        return _from_dict(data)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON without ``epoch`` and ``source``: content only."""
        data = self.to_dict()
        del data["epoch"], data["source"]
        return hashlib.sha256(_canonical(data).encode()).hexdigest()

    # -- semantic checks ----------------------------------------------------------------------

    def check(self) -> list[str]:
        """Every semantic problem, one sentence each, starting with the element it is about."""
        return [f"{subject}: {what}" for subject, what in self.problems()]

    def problems(self) -> list[tuple[str, str]]:
        """``check()`` as ``(subject, what)`` pairs; the subject is an id such as ``primitive vip``.

        Parsers map the subject back to a file line.
        """
        return list(_problems(self))


def _or_default(parse: Callable[[str], T], value: str | None, default: T) -> T:
    if value is None:
        return default
    try:
        return parse(value)
    except ValueError:
        return default


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# check()


def _problems(cfg: ClusterConfig) -> Iterator[tuple[str, str]]:
    primitive_ids = {p.id for p in cfg.primitives}
    group_ids = {g.id for g in cfg.groups}
    yield from _id_problems(cfg)
    for primitive in cfg.primitives:
        yield from _primitive_problems(primitive)
    seen_in: dict[str, str] = {}
    for group in cfg.groups:
        subject = f"group {group.id}"
        if not group.members:
            yield subject, "has no members; list at least one primitive"
        for member in group.members:
            if member in group_ids:
                yield (
                    subject,
                    f"member {member} is a group; groups cannot be nested, list its primitives instead",
                )
            elif member not in primitive_ids:
                yield (
                    subject,
                    f"member {member} is not a configured primitive; define it or remove it from the group",
                )
            elif member in seen_in:
                where = "this group" if seen_in[member] == group.id else f"group {seen_in[member]}"
                yield (
                    subject,
                    f"primitive {member} is already in {where}; a primitive belongs to one group only",
                )
            else:
                seen_in[member] = group.id
                if cfg.primitive(member).agent_class == "stonith":
                    yield (
                        subject,
                        f"member {member} is a stonith device; fencing devices cannot be in a group",
                    )
        yield from _meta_problems(subject, group.meta)
    resources = primitive_ids | group_ids
    for location in cfg.locations:
        yield from _reference_problems(f"location {location.id}", (location.rsc,), resources)
        if not location.node:
            yield f"location {location.id}", "names no node; write location ID RSC SCORE: NODE"
    for colocation in cfg.colocations:
        subject = f"colocation {colocation.id}"
        yield from _reference_problems(subject, (colocation.rsc, colocation.with_rsc), resources)
        if colocation.rsc == colocation.with_rsc:
            yield subject, f"colocates {colocation.rsc} with itself; name two different resources"
        yield from _nested_problems(cfg, subject, (colocation.rsc, colocation.with_rsc))
    for order in cfg.orders:
        subject = f"order {order.id}"
        yield from _reference_problems(subject, (order.first, order.then), resources)
        if order.first == order.then:
            yield subject, f"orders {order.first} after itself; name two different resources"
        if order.kind not in ORDER_KINDS:
            yield subject, f"kind {order.kind!r} is unknown; expected {', '.join(ORDER_KINDS)}"
        yield from _nested_problems(cfg, subject, (order.first, order.then))
    yield from _fencing_problems(cfg)
    yield from _property_problems(cfg.properties)
    yield from _meta_problems("rsc_defaults", cfg.rsc_defaults)
    yield from _op_defaults_problems(cfg.op_defaults)
    yield from _duplicate_key_problems("property", cfg.properties)
    seen_nodes: set[str] = set()
    for node, attributes in cfg.node_attributes:
        if node in seen_nodes:
            yield f"node {node}", "is defined twice; merge its attributes into one node line"
        seen_nodes.add(node)
        yield from _duplicate_key_problems(f"node {node}", attributes)


def _id_problems(cfg: ClusterConfig) -> Iterator[tuple[str, str]]:
    kinds: dict[str, str] = {}
    elements = [
        *(("primitive", p.id) for p in cfg.primitives),
        *(("group", g.id) for g in cfg.groups),
        *(("location", c.id) for c in cfg.locations),
        *(("colocation", c.id) for c in cfg.colocations),
        *(("order", c.id) for c in cfg.orders),
    ]
    for kind, element_id in elements:
        if not is_valid_id(element_id):
            yield (
                f"{kind} {element_id}",
                "is not a valid id; start with a letter or _ and use only letters, digits, _, . and -",
            )
        if element_id in kinds:
            yield f"{kind} {element_id}", f"id is already used by a {kinds[element_id]}; ids must be unique"
        else:
            kinds[element_id] = kind


def _primitive_problems(p: Primitive) -> Iterator[tuple[str, str]]:
    subject = f"primitive {p.id}"
    if p.agent_class not in AGENT_CLASSES:
        yield (
            subject,
            f"agent class {p.agent_class!r} is not supported; expected one of {', '.join(AGENT_CLASSES)}",
        )
    if p.agent_class == "ocf" and not p.provider:
        yield subject, "an ocf agent needs a provider; write ocf:PROVIDER:TYPE, e.g. ocf:heartbeat:IPaddr2"
    if p.agent_class != "ocf" and p.provider is not None:
        yield subject, f"a {p.agent_class} agent has no provider; write {p.agent_class}:{p.type}"
    if not is_agent_type(p.agent_class, p.type):
        yield (
            subject,
            (
                f"agent type {p.type!r} is not a plain file name; name the agent without a path"
                + ("; cluster-glue plugins are written external/NAME" if p.agent_class == "stonith" else "")
            ),
        )
    if p.args and p.agent_class != "heartbeat":
        yield subject, "positional arguments are only for heartbeat-class scripts; use params instead"
    for name, _ in (*p.params, *p.meta):
        if not _NAME_RE.match(name):
            yield subject, f"attribute name {name!r} is not valid; use letters, digits, _, . and -"
    yield from _duplicate_key_problems(f"{subject} params", p.params)
    yield from _meta_problems(subject, p.meta)
    seen: set[tuple[str, int]] = set()
    for op in p.ops:
        what = f"op {op.name}"
        if not op.name or not _NAME_RE.match(op.name):
            yield subject, f"op name {op.name!r} is not valid"
        if min(op.interval_ms, op.timeout_ms, op.depth) < 0:
            yield subject, f"{what}: interval, timeout and depth cannot be negative"
        if op.on_fail is not None and op.on_fail not in ON_FAIL_VALUES:
            yield (
                subject,
                f"{what}: on-fail={op.on_fail} is unknown; expected one of {', '.join(ON_FAIL_VALUES)}",
            )
        if op.on_fail == "fence" and p.agent_class == "stonith":
            yield (
                subject,
                f"{what}: on-fail=fence on a fencing device would fence to fix fencing; use restart",
            )
        if op.role is not None and op.role not in OP_ROLES:
            yield subject, f"{what}: role={op.role} is not supported; expected one of {', '.join(OP_ROLES)}"
        if (op.name, op.interval_ms) in seen:
            yield subject, f"{what} interval={format_time_ms(op.interval_ms)} is defined twice; keep one"
        seen.add((op.name, op.interval_ms))


def _reference_problems(
    subject: str, names: tuple[str, ...], resources: set[str]
) -> Iterator[tuple[str, str]]:
    for name in names:
        if name not in resources:
            yield (
                subject,
                f"refers to {name}, which is neither a primitive nor a group; define it or fix the name",
            )


def _nested_problems(cfg: ClusterConfig, subject: str, names: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """A constraint between two members of one group: redundant ones are dropped by the parsers
    (``hacluster.config.crm_model.drop_redundant``), so what is left here contradicts the group."""
    groups = [cfg.group_of(name) for name in names]
    group = groups[0]
    if group is not None and group == groups[1]:
        yield (
            subject,
            f"contradicts group {group.id}, which starts {', '.join(group.members)} in that order on "
            f"one node, so the resources could never all start; remove the constraint "
            f"(the group already orders and colocates its members)",
        )


_META_CHECKS: Final[dict[str, tuple[Callable[[str], object], str]]] = {
    "target-role": (lambda v: _choice(v, TARGET_ROLES), "Started or Stopped"),
    "resource-stickiness": (parse_score, "an integer, inf or -inf"),
    "migration-threshold": (lambda v: _nonnegative(parse_score(v)), "an integer ≥ 0 or inf"),
    "failure-timeout": (parse_time_ms, TIME_HINT),
    "priority": (lambda v: int(v.strip()), "an integer"),
    "is-managed": (parse_boolean, "true or false"),
    "maintenance": (parse_boolean, "true or false"),
    "allow-migrate": (parse_boolean, "true or false"),
    "critical": (parse_boolean, "true or false"),
    "multiple-active": (
        lambda v: _choice(v, ("block", "stop_only", "stop_start", "stop_unexpected")),
        "block, stop_only, stop_start or stop_unexpected",
    ),
}

_PROPERTY_CHECKS: Final[dict[str, tuple[Callable[[str], object], str]]] = {
    **{
        name: (parse_boolean, "true or false")
        for name in (
            "stonith-enabled",
            "symmetric-cluster",
            "maintenance-mode",
            "stop-all-resources",
            "start-failure-is-fatal",
            "startup-fencing",
            "enable-startup-probes",
            "concurrent-fencing",
            "stop-orphan-resources",
            "stop-orphan-actions",
        )
    },
    "no-quorum-policy": (
        lambda v: _choice(v, ("stop", "freeze", "ignore", "demote", "suicide")),
        "stop, freeze, ignore, demote or suicide",
    ),
    "stonith-action": (lambda v: _choice(v, ("reboot", "off", "poweroff")), "reboot or off"),
    **{
        name: (parse_time_ms, TIME_HINT)
        for name in (
            "stonith-timeout",
            "cluster-recheck-interval",
            "dc-deadtime",
            "shutdown-escalation",
            "priority-fencing-delay",
            "cluster-delay",
            "election-timeout",
            "stonith-watchdog-timeout",
        )
    },
    **{
        name: (lambda v: _nonnegative(int(v.strip())), "an integer ≥ 0")
        for name in ("stonith-max-attempts", "batch-limit", "migration-limit")
    },
}


def _choice(value: str, choices: tuple[str, ...]) -> str:
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ValueError(value)


def _nonnegative(value: int) -> int:
    if value < 0:
        raise ValueError(value)
    return value


def _meta_problems(subject: str, meta: Pairs) -> Iterator[tuple[str, str]]:
    yield from _duplicate_key_problems(f"{subject} meta", meta)
    for name, value in meta:
        if name in _META_CHECKS:
            check, expected = _META_CHECKS[name]
            try:
                check(value)
            except ValueError:
                yield subject, f"meta {name}={value!r} is malformed; expected {expected}"


def unknown_property_hint(name: str) -> str | None:
    """For a property name Pacemaker does not know: the warning to give, else None.

    Pacemaker and crmsh accept any name (resource agents keep state in ``crm_config``, e.g.
    ``p_mysql_REPL_INFO``), so an unknown name is a warning, never a refusal.
    """
    if name in KNOWN_PROPERTIES:
        return None
    guess = difflib.get_close_matches(name, sorted(KNOWN_PROPERTIES), n=1)
    hint = f"did you mean {guess[0]}? " if guess else ""
    return f"is not a cluster option, so it has no effect on the cluster; {hint}(kept as written)"


_UNSUPPORTED_PROPERTY_VALUES: Final[dict[tuple[str, str], str]] = {
    ("no-quorum-policy", "suicide"): (
        "it needs a node to fence itself (a watchdog), which hacluster cannot do yet; use stop: "
        "a partition without quorum stops its resources and the partition with quorum fences it"
    ),
}
"""Values Pacemaker defines that hacluster refuses rather than accept and not act on."""


def _property_problems(properties: Pairs) -> Iterator[tuple[str, str]]:
    for name, value in properties:
        unsupported = _UNSUPPORTED_PROPERTY_VALUES.get((name, value.strip().lower()))
        if unsupported is not None:
            yield f"property {name}", f"value {value!r} is not supported: {unsupported}"
        elif name in _PROPERTY_CHECKS:
            check, expected = _PROPERTY_CHECKS[name]
            try:
                check(value)
            except ValueError:
                yield f"property {name}", f"value {value!r} is malformed; expected {expected}"


def _op_defaults_problems(op_defaults: Pairs) -> Iterator[tuple[str, str]]:
    yield from _duplicate_key_problems("op_defaults", op_defaults)
    for name, value in op_defaults:
        try:
            if name in ("timeout", "interval"):
                parse_time_ms(value)
            elif name == "on-fail":
                _choice(value, ON_FAIL_VALUES)
        except ValueError:
            yield "op_defaults", f"{name}={value!r} is malformed"


def _fencing_problems(cfg: ClusterConfig) -> Iterator[tuple[str, str]]:
    stonith_ids = {p.id for p in cfg.primitives if p.agent_class == "stonith"}
    seen: set[tuple[str, int]] = set()
    for level in cfg.fencing_levels:
        subject = f"fencing_topology {level.target}"
        if (level.target, level.index) in seen:
            yield subject, f"level {level.index} is defined twice"
        seen.add((level.target, level.index))
        if level.index < 1:
            yield subject, f"level index {level.index} must be at least 1"
        if not level.devices:
            yield subject, f"level {level.index} names no device"
        for device in level.devices:
            if device not in stonith_ids:
                yield (
                    subject,
                    f"device {device} is not a stonith primitive; define primitive {device} stonith:…",
                )


def _duplicate_key_problems(subject: str, pairs: Pairs) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            yield subject, f"{name} is set twice; keep one"
        seen.add(name)


# ---------------------------------------------------------------------------------------------
# from_json(): shape validation


def _from_dict(data: object) -> ClusterConfig:
    top = _object(data, "configuration", _TOP_KEYS)
    if top["format"] != 1 or isinstance(top["format"], bool):
        raise ValueError(f"configuration: format {top['format']!r} is not 1")
    return ClusterConfig(
        epoch=_int(top["epoch"], "epoch", minimum=0),
        source=_str(top["source"], "source"),
        primitives=tuple(
            _primitive(item, i) for i, item in enumerate(_list(top["primitives"], "primitives"))
        ),
        groups=tuple(
            Group(
                id=_str(g["id"], f"groups[{i}].id"),
                members=_strings(g["members"], f"groups[{i}].members"),
                meta=_pairs(g["meta"], f"groups[{i}].meta"),
            )
            for i, g in enumerate(_objects(top["groups"], "groups", ("id", "members", "meta")))
        ),
        locations=tuple(
            Location(
                id=_str(c["id"], f"locations[{i}].id"),
                rsc=_str(c["rsc"], f"locations[{i}].rsc"),
                node=_str(c["node"], f"locations[{i}].node"),
                score=_int(c["score"], f"locations[{i}].score", minimum=-INFINITY, maximum=INFINITY),
            )
            for i, c in enumerate(_objects(top["locations"], "locations", ("id", "rsc", "node", "score")))
        ),
        colocations=tuple(
            Colocation(
                id=_str(c["id"], f"colocations[{i}].id"),
                score=_int(c["score"], f"colocations[{i}].score", minimum=-INFINITY, maximum=INFINITY),
                rsc=_str(c["rsc"], f"colocations[{i}].rsc"),
                with_rsc=_str(c["with_rsc"], f"colocations[{i}].with_rsc"),
            )
            for i, c in enumerate(
                _objects(top["colocations"], "colocations", ("id", "score", "rsc", "with_rsc"))
            )
        ),
        orders=tuple(
            Order(
                id=_str(c["id"], f"orders[{i}].id"),
                kind=_enum(c["kind"], f"orders[{i}].kind", ORDER_KINDS),
                first=_str(c["first"], f"orders[{i}].first"),
                then=_str(c["then"], f"orders[{i}].then"),
                symmetrical=_bool(c["symmetrical"], f"orders[{i}].symmetrical"),
            )
            for i, c in enumerate(
                _objects(top["orders"], "orders", ("id", "kind", "first", "then", "symmetrical"))
            )
        ),
        fencing_levels=tuple(
            FencingLevel(
                target=_str(lv["target"], f"fencing_levels[{i}].target"),
                index=_int(lv["index"], f"fencing_levels[{i}].index", minimum=1),
                devices=_strings(lv["devices"], f"fencing_levels[{i}].devices"),
            )
            for i, lv in enumerate(
                _objects(top["fencing_levels"], "fencing_levels", ("target", "index", "devices"))
            )
        ),
        properties=_pairs(top["properties"], "properties"),
        rsc_defaults=_pairs(top["rsc_defaults"], "rsc_defaults"),
        op_defaults=_pairs(top["op_defaults"], "op_defaults"),
        node_attributes=tuple(
            _node(item, i) for i, item in enumerate(_list(top["node_attributes"], "node_attributes"))
        ),
    )


_TOP_KEYS: Final = (
    "format",
    "epoch",
    "source",
    "primitives",
    "groups",
    "locations",
    "colocations",
    "orders",
    "fencing_levels",
    "properties",
    "rsc_defaults",
    "op_defaults",
    "node_attributes",
)
_PRIMITIVE_KEYS: Final = ("id", "agent_class", "provider", "type", "params", "ops", "meta", "args")
_OP_KEYS: Final = ("name", "interval_ms", "timeout_ms", "depth", "on_fail", "role")


def _primitive(data: object, i: int) -> Primitive:
    where = f"primitives[{i}]"
    p = _object(data, where, _PRIMITIVE_KEYS)
    provider = p["provider"]
    return Primitive(
        id=_str(p["id"], f"{where}.id"),
        agent_class=_enum(p["agent_class"], f"{where}.agent_class", AGENT_CLASSES),
        provider=None if provider is None else _str(provider, f"{where}.provider"),
        type=_str(p["type"], f"{where}.type"),
        params=_pairs(p["params"], f"{where}.params"),
        ops=tuple(_op(item, f"{where}.ops[{j}]") for j, item in enumerate(_list(p["ops"], f"{where}.ops"))),
        meta=_pairs(p["meta"], f"{where}.meta"),
        args=_strings(p["args"], f"{where}.args"),
    )


def _op(data: object, where: str) -> Op:
    op = _object(data, where, _OP_KEYS)
    on_fail, role = op["on_fail"], op["role"]
    return Op(
        name=_str(op["name"], f"{where}.name"),
        interval_ms=_int(op["interval_ms"], f"{where}.interval_ms", minimum=0),
        timeout_ms=_int(op["timeout_ms"], f"{where}.timeout_ms", minimum=0),
        depth=_int(op["depth"], f"{where}.depth", minimum=0),
        on_fail=None if on_fail is None else _str(on_fail, f"{where}.on_fail"),
        role=None if role is None else _str(role, f"{where}.role"),
    )


def _node(data: object, i: int) -> tuple[str, Pairs]:
    where = f"node_attributes[{i}]"
    item = _list(data, where)
    if len(item) != 2:
        raise ValueError(f"{where}: expected [name, attributes]")
    return _str(item[0], f"{where}[0]"), _pairs(item[1], f"{where}[1]")


def _object(data: object, where: str, keys: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    if set(data) != set(keys):
        missing = sorted(set(keys) - set(data))
        extra = sorted(str(k) for k in set(data) - set(keys))
        raise ValueError(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return {str(k): v for k, v in data.items()}


def _objects(data: object, where: str, keys: tuple[str, ...]) -> list[dict[str, object]]:
    return [_object(item, f"{where}[{i}]", keys) for i, item in enumerate(_list(data, where))]


def _list(data: object, where: str) -> list[object]:
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a list, got {type(data).__name__}")
    return data


def _str(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise ValueError(f"{where}: expected a string, got {type(data).__name__}")
    return data


def _strings(data: object, where: str) -> tuple[str, ...]:
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(_list(data, where)))


def _bool(data: object, where: str) -> bool:
    if not isinstance(data, bool):
        raise ValueError(f"{where}: expected true or false, got {type(data).__name__}")
    return data


def _int(data: object, where: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise ValueError(f"{where}: expected an integer, got {type(data).__name__}")
    if (minimum is not None and data < minimum) or (maximum is not None and data > maximum):
        raise ValueError(f"{where}: {data} is outside [{minimum}, {maximum}]")
    return data


def _enum(data: object, where: str, choices: tuple[str, ...]) -> str:
    value = _str(data, where)
    if value not in choices:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _pairs(data: object, where: str) -> Pairs:
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(_list(data, where)):
        pair = _list(item, f"{where}[{i}]")
        if len(pair) != 2:
            raise ValueError(f"{where}[{i}]: expected [name, value]")
        pairs.append((_str(pair[0], f"{where}[{i}][0]"), _str(pair[1], f"{where}[{i}][1]")))
    return tuple(pairs)
