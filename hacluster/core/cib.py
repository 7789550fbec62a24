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
OP_ROLES: Final = ("Started", "Stopped", "Promoted", "Unpromoted")
TARGET_ROLES: Final = ("Started", "Stopped", "Promoted", "Unpromoted")
ROLES: Final = ("Started", "Promoted", "Unpromoted")
"""Roles a constraint can name (``colocation … db-clone:Promoted``, ``location … role=``)."""
LEGACY_ROLES: Final[dict[str, str]] = {"master": "Promoted", "slave": "Unpromoted"}
"""Pacemaker 1.x names, accepted by the parsers with a warning."""
ORDER_ACTIONS: Final = ("start", "stop", "promote", "demote")
RULE_OPERATIONS: Final = ("defined", "not_defined", "eq", "ne", "lt", "gt", "lte", "gte")
RULE_TYPES: Final = ("string", "integer", "number", "version")
CLONE_META: Final = (
    "clone-max",
    "clone-node-max",
    "globally-unique",
    "interleave",
    "ordered",
    "notify",
    "promotable",
    "promoted-max",
    "promoted-node-max",
)
"""The clone options Pacemaker defines (Pacemaker Explained, "Clone options")."""
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


def _last_value(pairs: Pairs, name: str) -> str | None:
    """``dict(pairs).get(name)`` without building the dict: the last pair named ``name`` wins."""
    found = None
    for key, value in pairs:
        if key == name:
            found = value
    return found


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
class Expression:
    """One test of a rule on a node's attributes: ``pingd lte 0``, ``defined db``, ``#uname eq n1``.

    ``value`` is None exactly for ``defined``/``not_defined``; ``type`` None means Pacemaker's
    default (``number``/``integer`` for lt/gt/lte/gte, ``string`` otherwise; ``core.rules``).
    """

    attribute: str
    operation: str
    value: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A location rule: on the nodes where it holds, add ``score`` (or the node's value of
    ``score_attribute``); ``boolean_op`` joins the expressions (``and`` or ``or``)."""

    score: int
    expressions: tuple[Expression, ...]
    boolean_op: str = "and"
    score_attribute: str | None = None
    role: str | None = None
    """The rule applies to instances in this role only (``Promoted``); None: any."""


@dataclass(frozen=True, slots=True)
class Location:
    """``rsc`` prefers (score > 0) or avoids (score < 0) ``node``; or, with ``rules`` (and
    ``node`` empty), every node where a rule holds gets that rule's score."""

    id: str
    rsc: str
    node: str
    score: int
    rules: tuple[Rule, ...] = ()
    role: str | None = None
    """Only instances of a promotable clone in this role (``Promoted``) are concerned."""


@dataclass(frozen=True, slots=True)
class Colocation:
    """``rsc`` is placed relative to ``with_rsc``: with it (score > 0) or away (score < 0)."""

    id: str
    score: int
    rsc: str
    with_rsc: str
    rsc_role: str | None = None
    """``db-clone:Promoted``: only the instance in that role follows; None: any (Started)."""
    with_rsc_role: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """``first`` starts before ``then``; symmetrical orders also stop ``then`` first."""

    id: str
    kind: str
    first: str
    then: str
    symmetrical: bool = True
    first_action: str = "start"
    """``order … db-clone:promote vip``: the action of ``first`` that ``then`` waits for."""
    then_action: str = "start"


@dataclass(frozen=True, slots=True)
class Clone:
    """``child`` (a primitive or a group) runs as several instances, ``CHILD:0`` … (Pacemaker's
    names); with ``promotable=true`` some of them are promoted.  ``meta`` keeps the operator's
    strings; ``ClusterConfig.clone_settings`` reads them with Pacemaker's defaults."""

    id: str
    child: str
    meta: Pairs


@dataclass(frozen=True, slots=True)
class CloneSettings:
    """A clone's options, typed, with Pacemaker's defaults (Pacemaker Explained, clones)."""

    clone_max: int
    """Instances in all; default: the number of nodes."""
    clone_node_max: int = 1
    globally_unique: bool = False
    interleave: bool = False
    ordered: bool = False
    notify: bool = False
    promotable: bool = False
    promoted_max: int = 1
    promoted_node_max: int = 1


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
    clones: tuple[Clone, ...] = ()

    # -- lookups ----------------------------------------------------------------------------

    def primitive(self, rsc_id: str) -> Primitive:
        """The primitive ``rsc_id`` (or the primitive of instance ``rsc_id``, ``db:1``);
        ``KeyError`` if there is none."""
        base = base_id(rsc_id)
        for primitive in self.primitives:
            if primitive.id == base:
                return primitive
        raise KeyError(rsc_id)

    def clone(self, clone_id: str) -> Clone:
        """The clone ``clone_id``; ``KeyError`` if there is none."""
        for clone in self.clones:
            if clone.id == clone_id:
                return clone
        raise KeyError(clone_id)

    def clone_of(self, rsc_id: str) -> Clone | None:
        """The clone that ``rsc_id`` (a clone, its child, a member of its child group, or an
        instance of any of them) belongs to, if any."""
        base = base_id(rsc_id)
        for clone in self.clones:
            if base in (clone.id, clone.child):
                return clone
            group = self._group_or_none(clone.child)
            if group is not None and base in group.members:
                return clone
        return None

    def _group_or_none(self, group_id: str) -> Group | None:
        for group in self.groups:
            if group.id == group_id:
                return group
        return None

    def clone_settings(self, clone_id: str, node_count: int) -> CloneSettings:
        """``clone_id``'s options with Pacemaker's defaults (``clone-max``: ``node_count``);
        malformed values (``check()`` reports them) read as the default."""
        meta = dict(self.clone(clone_id).meta)

        def number(*names: str, default: int) -> int:
            for name in names:
                if name in meta:
                    return _or_default(_nonnegative_int, meta[name], default)
            return default

        def flag(name: str) -> bool:
            return is_true(meta.get(name))

        return CloneSettings(
            clone_max=number("clone-max", default=node_count),
            clone_node_max=number("clone-node-max", default=1),
            globally_unique=flag("globally-unique"),
            interleave=flag("interleave"),
            ordered=flag("ordered"),
            notify=flag("notify"),
            promotable=flag("promotable"),
            promoted_max=number("promoted-max", "master-max", default=1),
            promoted_node_max=number("promoted-node-max", "master-node-max", default=1),
        )

    def is_promotable(self, rsc_id: str) -> bool:
        """``rsc_id`` belongs to a clone with ``promotable=true``."""
        clone = self.clone_of(rsc_id)
        return clone is not None and is_true(dict(clone.meta).get("promotable"))

    def clone_members(self, clone_id: str) -> tuple[str, ...]:
        """The primitives each instance of ``clone_id`` runs, in start order."""
        child = self.clone(clone_id).child
        group = self._group_or_none(child)
        return group.members if group is not None else (child,)

    def instances(self, clone_id: str, node_count: int) -> tuple[str, ...]:
        """Instance ids of the clone's child, ``CHILD:0`` … ``CHILD:clone-max-1``."""
        child = self.clone(clone_id).child
        count = self.clone_settings(clone_id, node_count).clone_max
        return tuple(instance_id(child, i) for i in range(count))

    def runnable_ids(self, node_count: int) -> tuple[str, ...]:
        """Every resource the cluster starts and stops (fence devices aside), in configuration
        order: primitive ids, a cloned primitive replaced by its instances (``d:0``, ``d:1``…)."""
        out: list[str] = []
        for primitive in self.primitives:
            if primitive.agent_class == "stonith":
                continue
            clone = self.clone_of(primitive.id)
            if clone is None:
                out.append(primitive.id)
                continue
            count = self.clone_settings(clone.id, node_count).clone_max
            out.extend(instance_id(primitive.id, i) for i in range(count))
        return tuple(out)

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
        """A meta attribute: the resource's, then its group's, then its clone's, then
        ``rsc_defaults``, then defaults.  An instance id (``db:1``) reads its primitive's."""
        # Read in the order of precedence and stop at the first hit: this runs for every
        # resource on every step, so it builds no list or dict (a later duplicate key wins,
        # as ``dict(pairs)`` would have it).
        rsc_id = base_id(rsc_id)
        for primitive in self.primitives:
            if primitive.id == rsc_id:
                value = _last_value(primitive.meta, name)
                if value is not None:
                    return value
        for group in self.groups:
            if group.id == rsc_id or rsc_id in group.members:
                value = _last_value(group.meta, name)
                if value is not None:
                    return value
        clone = self.clone_of(rsc_id)
        if clone is not None:
            value = _last_value(clone.meta, name)
            if value is not None:
                return value
        value = _last_value(self.rsc_defaults, name)
        if value is not None:
            return value
        if default is not None:
            return default
        if name == "resource-stickiness" and clone is not None:
            return "1"  # Pacemaker gives clones a stickiness of 1 so instances do not shuffle
        return RSC_DEFAULTS.get(name)

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
        """``Started``, ``Stopped``, ``Promoted`` or ``Unpromoted`` (``Master``/``Slave`` read as
        the latter two); malformed reads as Started."""
        role, _ = canonical_role(self.meta_of(rsc_id, "target-role") or "Started")
        return role if role in TARGET_ROLES else "Started"

    def stickiness_of(self, rsc_id: str) -> int:
        """``resource-stickiness``; 1 for a clone instance without one (``meta_of``)."""
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
            "locations": [_location_dict(c) for c in self.locations],
            "colocations": [_colocation_dict(c) for c in self.colocations],
            "orders": [_order_dict(c) for c in self.orders],
            "fencing_levels": [
                {"target": lv.target, "index": lv.index, "devices": list(lv.devices)}
                for lv in self.fencing_levels
            ],
            "properties": [list(kv) for kv in self.properties],
            "rsc_defaults": [list(kv) for kv in self.rsc_defaults],
            "op_defaults": [list(kv) for kv in self.op_defaults],
            "node_attributes": [[name, [list(kv) for kv in attrs]] for name, attrs in self.node_attributes],
            **(
                {
                    "clones": [
                        {"id": c.id, "child": c.child, "meta": [list(kv) for kv in c.meta]}
                        for c in self.clones
                    ]
                }
                if self.clones
                else {}
            ),
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


INSTANCE_SEPARATOR: Final = ":"
"""``db:0``: a clone instance is its child's id, a colon and its number (``:`` is not valid
in an id, so an instance id can never clash with a configured one)."""


def instance_id(child: str, index: int) -> str:
    return f"{child}{INSTANCE_SEPARATOR}{index}"


def base_id(rsc_id: str) -> str:
    """The configured id an instance id names (``db:1`` → ``db``); other ids unchanged."""
    return rsc_id.partition(INSTANCE_SEPARATOR)[0]


def instance_index(rsc_id: str) -> int | None:
    """The instance number of ``db:1`` (1); None for an id that is not an instance."""
    _, separator, number = rsc_id.partition(INSTANCE_SEPARATOR)
    return int(number) if separator and number.isdigit() else None


def canonical_role(text: str) -> tuple[str | None, bool]:
    """A role word as the model keeps it (``Promoted``…), and whether it was a legacy name
    (``Master``/``Slave``) that the parser warns about; (None, False) for an unknown word."""
    word = text.strip().lower()
    if word in LEGACY_ROLES:
        return LEGACY_ROLES[word], True
    for role in (*ROLES, "Stopped"):
        if word == role.lower():
            return role, False
    return None, False


def _nonnegative_int(text: str) -> int:
    return _nonnegative(int(text.strip()))


# Optional keys are written only when they differ from their default, so a configuration
# without clones, roles or rules has the same canonical JSON (and digest) as before they existed.


def _location_dict(c: Location) -> dict[str, object]:
    out: dict[str, object] = {"id": c.id, "rsc": c.rsc, "node": c.node, "score": c.score}
    if c.rules:
        out["rules"] = [
            {
                "score": r.score,
                "score_attribute": r.score_attribute,
                "boolean_op": r.boolean_op,
                "role": r.role,
                "expressions": [
                    {"attribute": e.attribute, "operation": e.operation, "value": e.value, "type": e.type}
                    for e in r.expressions
                ],
            }
            for r in c.rules
        ]
    if c.role is not None:
        out["role"] = c.role
    return out


def _colocation_dict(c: Colocation) -> dict[str, object]:
    out: dict[str, object] = {"id": c.id, "score": c.score, "rsc": c.rsc, "with_rsc": c.with_rsc}
    if c.rsc_role is not None:
        out["rsc_role"] = c.rsc_role
    if c.with_rsc_role is not None:
        out["with_rsc_role"] = c.with_rsc_role
    return out


def _order_dict(c: Order) -> dict[str, object]:
    out: dict[str, object] = {
        "id": c.id,
        "kind": c.kind,
        "first": c.first,
        "then": c.then,
        "symmetrical": c.symmetrical,
    }
    if c.first_action != "start":
        out["first_action"] = c.first_action
    if c.then_action != "start":
        out["then_action"] = c.then_action
    return out


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
    yield from _clone_problems(cfg, primitive_ids, group_ids)
    resources = primitive_ids | group_ids | {c.id for c in cfg.clones}
    for location in cfg.locations:
        subject = f"location {location.id}"
        yield from _reference_problems(subject, (location.rsc,), resources)
        if not location.node and not location.rules:
            yield subject, "names no node; write location ID RSC SCORE: NODE"
        yield from _role_problems(cfg, subject, location.rsc, location.role)
        for rule in location.rules:
            yield from _rule_problems(subject, rule)
            yield from _role_problems(cfg, subject, location.rsc, rule.role)
    for colocation in cfg.colocations:
        subject = f"colocation {colocation.id}"
        yield from _reference_problems(subject, (colocation.rsc, colocation.with_rsc), resources)
        yield from _role_problems(cfg, subject, colocation.rsc, colocation.rsc_role)
        yield from _role_problems(cfg, subject, colocation.with_rsc, colocation.with_rsc_role)
        if colocation.rsc == colocation.with_rsc:
            yield subject, f"colocates {colocation.rsc} with itself; name two different resources"
        yield from _nested_problems(cfg, subject, (colocation.rsc, colocation.with_rsc))
    for order in cfg.orders:
        subject = f"order {order.id}"
        yield from _reference_problems(subject, (order.first, order.then), resources)
        if order.first == order.then:
            yield subject, f"orders {order.first} after itself; name two different resources"
        for rsc, action in ((order.first, order.first_action), (order.then, order.then_action)):
            if action not in ORDER_ACTIONS:
                yield subject, f"action {action!r} of {rsc} is unknown; expected {', '.join(ORDER_ACTIONS)}"
            elif action in ("promote", "demote") and not cfg.is_promotable(rsc):
                yield subject, f"{rsc}:{action}: {rsc} is not a promotable clone; order its start instead"
            elif action in ("stop", "demote"):
                yield (
                    subject,
                    f"{rsc}:{action}: ordering the {action} action is not supported yet; order the "
                    f"{'start' if action == 'stop' else 'promote'} (the reverse runs in reverse order)",
                )
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


_CLONE_META_CHECKS: Final[dict[str, tuple[Callable[[str], object], str]]] = {
    **{
        name: (_nonnegative_int, "an integer ≥ 0")
        for name in (
            "clone-max",
            "clone-node-max",
            "promoted-max",
            "promoted-node-max",
            "master-max",
            "master-node-max",
        )
    },
    **{
        name: (parse_boolean, "true or false")
        for name in ("globally-unique", "interleave", "ordered", "notify", "promotable")
    },
}


def _clone_problems(
    cfg: ClusterConfig, primitive_ids: set[str], group_ids: set[str]
) -> Iterator[tuple[str, str]]:
    cloned: dict[str, str] = {}
    for clone in cfg.clones:
        subject = f"clone {clone.id}"
        if clone.child not in primitive_ids | group_ids:
            yield (
                subject,
                f"child {clone.child} is neither a primitive nor a group; define it or fix the name",
            )
            continue
        if clone.child in cloned:
            yield (
                subject,
                f"{clone.child} is already cloned by {cloned[clone.child]}; a resource is cloned once",
            )
        cloned[clone.child] = clone.id
        group = cfg.group_of(clone.child)
        if group is not None:
            yield subject, f"{clone.child} is a member of group {group.id}; clone the whole group instead"
        members = cfg.clone_members(clone.id)
        if any(cfg.primitive(m).agent_class == "stonith" for m in members if m in primitive_ids):
            yield subject, "a fencing device cannot be cloned; every node can use it as it is"
        yield from _meta_problems(subject, clone.meta)
        for name, value in clone.meta:
            if name in _CLONE_META_CHECKS:
                check, expected = _CLONE_META_CHECKS[name]
                try:
                    check(value)
                except ValueError:
                    yield subject, f"meta {name}={value!r} is malformed; expected {expected}"
        meta = dict(clone.meta)
        if not is_true(meta.get("promotable")) and any(
            k in meta for k in ("promoted-max", "promoted-node-max", "master-max", "master-node-max")
        ):
            yield (
                subject,
                "promoted-max applies only to promotable clones; add meta promotable=true or remove it",
            )
    for kind, element_id, meta_pairs in (
        *(("primitive", p.id, p.meta) for p in cfg.primitives),
        *(("group", g.id, g.meta) for g in cfg.groups),
    ):
        target = dict(meta_pairs).get("target-role")
        role = canonical_role(target)[0] if target is not None else None
        if role in ("Promoted", "Unpromoted") and not cfg.is_promotable(element_id):
            yield (
                f"{kind} {element_id}",
                f"target-role={target}: only a promotable clone has that role; write Started",
            )
    for primitive in cfg.primitives:
        for op in primitive.ops:
            if op.role in ("Promoted", "Unpromoted") and not cfg.is_promotable(primitive.id):
                yield (
                    f"primitive {primitive.id}",
                    f"op {op.name} role={op.role}: {primitive.id} is not in a promotable clone; "
                    "remove role= or clone it with meta promotable=true",
                )


def _role_problems(cfg: ClusterConfig, subject: str, rsc: str, role: str | None) -> Iterator[tuple[str, str]]:
    if role is None or role == "Started":
        return
    if role not in ROLES:
        yield subject, f"role {role!r} is unknown; expected {', '.join(ROLES)}"
    elif not cfg.is_promotable(rsc):
        yield (
            subject,
            f"role {role} of {rsc}: only a promotable clone has that role; name the role-less resource",
        )


def _rule_problems(subject: str, rule: Rule) -> Iterator[tuple[str, str]]:
    if not rule.expressions:
        yield subject, "a rule without an expression; write e.g. rule -inf: not_defined pingd"
    if rule.boolean_op not in ("and", "or"):
        yield subject, f"boolean-op {rule.boolean_op!r} is unknown; expected and or or"
    for expression in rule.expressions:
        what = f"rule expression {expression.attribute} {expression.operation}"
        if expression.operation not in RULE_OPERATIONS:
            yield subject, f"{what}: operation unknown; expected {', '.join(RULE_OPERATIONS)}"
        elif (expression.value is None) != (expression.operation in ("defined", "not_defined")):
            yield subject, f"{what}: defined/not_defined take no value, every other operation one"
        if expression.type is not None and expression.type not in RULE_TYPES:
            yield subject, f"{what}: type {expression.type!r} is unknown; expected {', '.join(RULE_TYPES)}"


def _id_problems(cfg: ClusterConfig) -> Iterator[tuple[str, str]]:
    kinds: dict[str, str] = {}
    elements = [
        *(("primitive", p.id) for p in cfg.primitives),
        *(("group", g.id) for g in cfg.groups),
        *(("clone", c.id) for c in cfg.clones),
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
    "target-role": (
        lambda v: _choice(canonical_role(v)[0] or v, TARGET_ROLES),
        "Started, Stopped, Promoted or Unpromoted",
    ),
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
    top = _object(data, "configuration", _TOP_KEYS, _OPTIONAL_TOP_KEYS)
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
                rules=tuple(
                    _rule(r, f"locations[{i}].rules[{j}]")
                    for j, r in enumerate(_list(c.get("rules", []), f"locations[{i}].rules"))
                ),
                role=_optional_enum(c.get("role"), f"locations[{i}].role", ROLES),
            )
            for i, c in enumerate(
                _objects(top["locations"], "locations", ("id", "rsc", "node", "score"), ("rules", "role"))
            )
        ),
        colocations=tuple(
            Colocation(
                id=_str(c["id"], f"colocations[{i}].id"),
                score=_int(c["score"], f"colocations[{i}].score", minimum=-INFINITY, maximum=INFINITY),
                rsc=_str(c["rsc"], f"colocations[{i}].rsc"),
                with_rsc=_str(c["with_rsc"], f"colocations[{i}].with_rsc"),
                rsc_role=_optional_enum(c.get("rsc_role"), f"colocations[{i}].rsc_role", ROLES),
                with_rsc_role=_optional_enum(
                    c.get("with_rsc_role"), f"colocations[{i}].with_rsc_role", ROLES
                ),
            )
            for i, c in enumerate(
                _objects(
                    top["colocations"],
                    "colocations",
                    ("id", "score", "rsc", "with_rsc"),
                    ("rsc_role", "with_rsc_role"),
                )
            )
        ),
        orders=tuple(
            Order(
                id=_str(c["id"], f"orders[{i}].id"),
                kind=_enum(c["kind"], f"orders[{i}].kind", ORDER_KINDS),
                first=_str(c["first"], f"orders[{i}].first"),
                then=_str(c["then"], f"orders[{i}].then"),
                symmetrical=_bool(c["symmetrical"], f"orders[{i}].symmetrical"),
                first_action=_enum(
                    c.get("first_action", "start"), f"orders[{i}].first_action", ORDER_ACTIONS
                ),
                then_action=_enum(c.get("then_action", "start"), f"orders[{i}].then_action", ORDER_ACTIONS),
            )
            for i, c in enumerate(
                _objects(
                    top["orders"],
                    "orders",
                    ("id", "kind", "first", "then", "symmetrical"),
                    ("first_action", "then_action"),
                )
            )
        ),
        clones=tuple(
            Clone(
                id=_str(c["id"], f"clones[{i}].id"),
                child=_str(c["child"], f"clones[{i}].child"),
                meta=_pairs(c["meta"], f"clones[{i}].meta"),
            )
            for i, c in enumerate(_objects(top.get("clones", []), "clones", ("id", "child", "meta")))
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
_OPTIONAL_TOP_KEYS: Final = ("clones",)
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


def _object(
    data: object, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    if not set(keys) <= set(data) <= set(keys) | set(optional):
        missing = sorted(set(keys) - set(data))
        extra = sorted(str(k) for k in set(data) - set(keys) - set(optional))
        raise ValueError(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return {str(k): v for k, v in data.items()}


def _objects(
    data: object, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[dict[str, object]]:
    return [_object(item, f"{where}[{i}]", keys, optional) for i, item in enumerate(_list(data, where))]


def _optional_enum(data: object, where: str, choices: tuple[str, ...]) -> str | None:
    return None if data is None else _enum(data, where, choices)


def _optional_str(data: object, where: str) -> str | None:
    return None if data is None else _str(data, where)


def _rule(data: object, where: str) -> Rule:
    r = _object(data, where, ("score", "score_attribute", "boolean_op", "role", "expressions"))
    return Rule(
        score=_int(r["score"], f"{where}.score", minimum=-INFINITY, maximum=INFINITY),
        score_attribute=_optional_str(r["score_attribute"], f"{where}.score_attribute"),
        boolean_op=_enum(r["boolean_op"], f"{where}.boolean_op", ("and", "or")),
        role=_optional_enum(r["role"], f"{where}.role", ROLES),
        expressions=tuple(
            Expression(
                attribute=_str(e["attribute"], f"{where}.expressions[{k}].attribute"),
                operation=_enum(e["operation"], f"{where}.expressions[{k}].operation", RULE_OPERATIONS),
                value=_optional_str(e["value"], f"{where}.expressions[{k}].value"),
                type=_optional_enum(e["type"], f"{where}.expressions[{k}].type", RULE_TYPES),
            )
            for k, e in enumerate(
                _objects(
                    r["expressions"], f"{where}.expressions", ("attribute", "operation", "value", "type")
                )
            )
        ),
    )


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
