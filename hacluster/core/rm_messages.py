"""The resource managers' messages to each other: typed, validated before anything changes.

Theory of operation
-------------------
Resource managers talk through membership (which signs, sequences and retransmits); each
message is a Heartbeat message of type ``hac_*`` with string fields.  This module is the
one place that knows those fields:

=================  ============================================================================
``hac_state``      ``StateReport``: this node's local state of every resource (``r``: JSON),
                   whether it has probed everything (``pr``), whether it is leaving (``lv``),
                   its configuration version (``ep``, ``dg``) and order (``sq``), the nodes
                   it knows are down (``dn``) and saw vanish uncleanly (``ls``), comma-separated,
                   and the timeout of the watchdog it pets (``wd``, ms; absent or 0: none)
``hac_plan``       ``PlanMessage``: the DC's plan for configuration epoch ``ep``
``hac_cfg``        ``ConfigMessage``: a whole configuration (``cfg``: canonical JSON)
``hac_cleanup``    ``CleanupMessage``: forget failures of ``rsc`` on ``node`` (empty: all)
``hac_fence_req``  ``FenceRequest``: the DC asks ``executor`` to fence ``target`` (the DC itself)
``hac_fenced``     ``Fenced``: ``target`` was fenced with ``device``
=================  ============================================================================

Rules for this file:

* ``decode`` returns a message or raises ``MessageError`` — for any fields at all, and
  before the caller has changed anything (``tests/unit/test_rm_messages.py`` fuzzes it).
  A report with one bad field is refused whole: never half-applied.
* ``encode(message)`` gives the ``Broadcast``; ``decode(encode(m)) == m``.
* ``sq`` is ``generation:counter``: membership delivers a retransmitted message late, after
  newer ones, and the receiver drops one older than what it applied last.
* A field added later is optional in ``decode`` (``dn``, ``ls``: absent reads as empty), so a
  node of the previous version still reports; present, it is checked like any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig
from hacluster.core.effects import Broadcast, MessageDelivered
from hacluster.core.ids import NodeName
from hacluster.core.lrm import EXIT_REASON_MAX, LocalState, ResourceReport
from hacluster.core.plan import Plan, Reason, ReasonCode, Role
from hacluster.errors import DropReason, RemoteProtocolError

STATE_MSG: Final = "hac_state"
PLAN_MSG: Final = "hac_plan"
CONFIG_MSG: Final = "hac_cfg"
CLEANUP_MSG: Final = "hac_cleanup"
FENCE_REQUEST_MSG: Final = "hac_fence_req"
FENCED_MSG: Final = "hac_fenced"

NAME_MAX: Final = 255
TEXT_MAX: Final = 1000
COUNTER_MAX: Final = 2**63 - 1
NODES_MAX: Final = 256
"""More node names than any cluster has: a longer ``dn``/``ls`` is malformed."""

_INTEGER_RE: Final = re.compile(r"-?[0-9]{1,19}")

Order = tuple[int, int]
NO_ORDER: Final[Order] = (-1, -1)


class MessageError(RemoteProtocolError):
    """A peer's ``hac_*`` message is malformed; it is dropped whole and nothing changes."""

    def __init__(self, mtype: str, problem: str) -> None:
        self.mtype = mtype
        self.problem = problem
        super().__init__(DropReason.MALFORMED, f"{mtype}: {problem}")


# --- the messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateReport:
    order: Order
    epoch: int
    digest: str
    probed: bool
    leaving: bool
    resources: Mapping[str, ResourceReport] = field(default_factory=dict)
    down: frozenset[NodeName] = frozenset()
    """Nodes the sender saw stop cleanly or be fenced, and has not heard from since."""
    lost: frozenset[NodeName] = frozenset()
    """Nodes the sender saw vanish without a goodbye, not fenced yet."""
    watchdog_ms: int = 0
    """The timeout of the watchdog this node pets (0: none); self-fencing needs one everywhere."""


@dataclass(frozen=True, slots=True)
class PlanMessage:
    plan_id: int
    order: Order
    epoch: int
    plan: Plan


@dataclass(frozen=True, slots=True)
class ConfigMessage:
    config: ClusterConfig


@dataclass(frozen=True, slots=True)
class CleanupMessage:
    resource: str
    """Empty: every resource."""
    node: str
    """Empty: every node."""


@dataclass(frozen=True, slots=True)
class FenceRequest:
    target: NodeName
    executor: NodeName
    reason: str


@dataclass(frozen=True, slots=True)
class Fenced:
    target: NodeName
    device: str
    ms: int
    reason: str


RmMessage = StateReport | PlanMessage | ConfigMessage | CleanupMessage | FenceRequest | Fenced

# --- encode ----------------------------------------------------------------------------------------


def _compact(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def report_entry(report: ResourceReport) -> dict[str, object]:
    """The compact JSON object of one resource in ``hac_state``."""
    out: dict[str, object] = {"s": report.state.value}
    if report.failcount:
        out["fc"] = report.failcount
    if report.banned_everywhere:
        out["ba"] = 1
    if report.failed_op:
        out["op"] = report.failed_op
        out["rc"] = report.failed_rc
        if report.exit_reason:
            out["why"] = report.exit_reason[:EXIT_REASON_MAX]
    if report.role is not Role.STARTED:
        out["ro"] = report.role.value
    return out


def encode_resources(resources: Mapping[str, ResourceReport]) -> str:
    return _compact({rsc: report_entry(r) for rsc, r in sorted(resources.items())})


def encode_plan(plan: Plan) -> str:
    data: dict[str, object] = {
        "a": {r: n or "" for r, n in sorted(plan.assignment.items())},
        "why": {r: reason.text for r, reason in sorted(plan.reasons.items())},
        "code": {r: reason.code.value for r, reason in sorted(plan.reasons.items())},
        "fence": sorted(plan.needs_fencing),
    }
    if plan.held:
        data["hold"] = sorted(plan.held)
    if plan.roles:
        data["ro"] = {r: role.value for r, role in sorted(plan.roles.items())}
    return _compact(data)


def encode(message: RmMessage) -> Broadcast:
    pairs: tuple[tuple[str, str], ...]
    match message:
        case StateReport():
            pairs = (
                ("sq", f"{message.order[0]}:{message.order[1]}"),
                ("ep", str(message.epoch)),
                ("dg", message.digest),
                ("pr", str(int(message.probed))),
                ("lv", str(int(message.leaving))),
                ("dn", ",".join(sorted(message.down))),
                ("ls", ",".join(sorted(message.lost))),
                ("r", encode_resources(message.resources)),
            )
            if message.watchdog_ms:
                pairs += (("wd", str(message.watchdog_ms)),)
            return Broadcast(STATE_MSG, pairs)
        case PlanMessage():
            pairs = (
                ("id", str(message.plan_id)),
                ("sq", f"{message.order[0]}:{message.order[1]}"),
                ("ep", str(message.epoch)),
                ("plan", encode_plan(message.plan)),
            )
            return Broadcast(PLAN_MSG, pairs)
        case ConfigMessage():
            return Broadcast(
                CONFIG_MSG, (("ep", str(message.config.epoch)), ("cfg", message.config.to_json()))
            )
        case CleanupMessage():
            return Broadcast(CLEANUP_MSG, (("rsc", message.resource), ("node", message.node)))
        case FenceRequest():
            pairs = (("target", message.target), ("executor", message.executor), ("reason", message.reason))
            return Broadcast(FENCE_REQUEST_MSG, pairs)
        case Fenced():
            pairs = (
                ("target", message.target),
                ("device", message.device),
                ("ms", str(message.ms)),
                ("reason", message.reason),
            )
            return Broadcast(FENCED_MSG, pairs)


# --- decode ----------------------------------------------------------------------------------------


def decode(delivered: MessageDelivered) -> RmMessage | None:
    """The typed message, None for a ``hac_*`` type this version does not know (ignored), or
    ``MessageError`` naming the first bad field."""
    fields = _Fields(delivered)
    match delivered.mtype:
        case "hac_state":
            return StateReport(
                order=fields.order("sq"),
                epoch=fields.integer("ep", minimum=-1),
                digest=fields.text("dg", empty=True, maximum=NAME_MAX),
                probed=fields.flag("pr"),
                leaving=fields.flag("lv"),
                resources=_resources(fields, fields.json("r")),
                down=fields.node_set("dn"),
                lost=fields.node_set("ls"),
                watchdog_ms=fields.integer("wd", minimum=0, absent=0),
            )
        case "hac_plan":
            return PlanMessage(
                plan_id=fields.integer("id", minimum=0),
                order=fields.order("sq"),
                epoch=fields.integer("ep", minimum=-1),
                plan=_plan(fields, fields.json("plan")),
            )
        case "hac_cfg":
            epoch = fields.integer("ep", minimum=0)
            try:
                config = ClusterConfig.from_json(fields.text("cfg"))
            except ValueError as exc:
                raise fields.error(f"cfg: {exc}") from None
            if config.epoch != epoch:
                raise fields.error(f"ep {epoch} is not the configuration's epoch {config.epoch}")
            return ConfigMessage(config)
        case "hac_cleanup":
            return CleanupMessage(
                resource=fields.text("rsc", empty=True, maximum=NAME_MAX),
                node=fields.text("node", empty=True, maximum=NAME_MAX),
            )
        case "hac_fence_req":
            return FenceRequest(
                target=NodeName(fields.text("target", maximum=NAME_MAX)),
                executor=NodeName(fields.text("executor", maximum=NAME_MAX)),
                reason=fields.text("reason", empty=True, maximum=TEXT_MAX),
            )
        case "hac_fenced":
            return Fenced(
                target=NodeName(fields.text("target", maximum=NAME_MAX)),
                device=fields.text("device", maximum=NAME_MAX),
                ms=fields.integer("ms", minimum=0),
                reason=fields.text("reason", empty=True, maximum=TEXT_MAX),
            )
    return None


class _Fields:
    """Typed access to one message's fields; every failure is a ``MessageError``."""

    def __init__(self, delivered: MessageDelivered) -> None:
        self.mtype = delivered.mtype
        self._fields = dict(delivered.fields)

    def error(self, detail: str) -> MessageError:
        return MessageError(self.mtype, detail)

    def raw(self, name: str) -> str:
        value = self._fields.get(name)
        if value is None:
            raise self.error(f"field {name} is missing")
        return value

    def text(self, name: str, *, empty: bool = False, maximum: int | None = None) -> str:
        value = self.raw(name)
        return _text(self, name, value, empty=empty, maximum=maximum)

    def integer(self, name: str, *, minimum: int, absent: int | None = None) -> int:
        """``absent``: the value of a field older versions do not send (None: it is required)."""
        if absent is not None and name not in self._fields:
            return absent
        return _integer(self, name, self.raw(name), minimum)

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if value not in ("0", "1"):
            raise self.error(f"{name} must be 0 or 1, not {value[:20]!r}")
        return value == "1"

    def order(self, name: str) -> Order:
        generation, sep, counter = self.raw(name).partition(":")
        if not sep:
            raise self.error(f"{name} must be generation:counter")
        return (_integer(self, name, generation, 0), _integer(self, name, counter, 0))

    def node_set(self, name: str) -> frozenset[NodeName]:
        """An optional comma-separated list of node names (absent or empty: none)."""
        value = self._fields.get(name, "")
        if len(value) > NODES_MAX * (NAME_MAX + 1):
            raise self.error(f"{name} is longer than {NODES_MAX} node names")
        names = value.split(",") if value else []
        for i, node in enumerate(names):
            _text(self, f"{name}[{i}]", node, maximum=NAME_MAX)
        if len(set(names)) != len(names):
            raise self.error(f"{name} names a node twice")
        return frozenset(NodeName(n) for n in names)

    def json(self, name: str) -> object:
        try:
            data: object = json.loads(self.raw(name))
        except (ValueError, RecursionError) as exc:
            raise self.error(f"{name} is not JSON ({type(exc).__name__})") from None
        return data


def _text(
    fields: _Fields, name: str, value: object, *, empty: bool = False, maximum: int | None = None
) -> str:
    if not isinstance(value, str):
        raise fields.error(f"{name} must be a string")
    if not value and not empty:
        raise fields.error(f"{name} is empty")
    if maximum is not None and len(value) > maximum:
        raise fields.error(f"{name} is longer than {maximum} characters")
    return value


def _integer(fields: _Fields, name: str, value: object, minimum: int, maximum: int = COUNTER_MAX) -> int:
    if isinstance(value, str):
        if _INTEGER_RE.fullmatch(value) is None:
            raise fields.error(f"{name} must be a whole number, not {value[:20]!r}")
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise fields.error(f"{name} must be a whole number")
    if not minimum <= number <= maximum:
        raise fields.error(f"{name} {number} is out of range {minimum}..{maximum}")
    return number


def _object(fields: _Fields, name: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise fields.error(f"{name} must be a JSON object")
    return value


_STATES: Final = {state.value: state for state in LocalState}
_ROLES: Final = {role.value: role for role in Role}
_CODES: Final = {code.value: code for code in ReasonCode}
_ENTRY_KEYS: Final = frozenset({"s", "fc", "ba", "op", "rc", "why", "ro"})


def _resources(fields: _Fields, data: object) -> dict[str, ResourceReport]:
    out: dict[str, ResourceReport] = {}
    for rsc, raw in _object(fields, "r", data).items():
        _text(fields, "r: resource id", rsc, maximum=NAME_MAX)
        entry = _object(fields, f"r.{rsc}", raw)
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise fields.error(f"r.{rsc}: unknown keys {sorted(unknown)}")
        state = _STATES.get(_text(fields, f"r.{rsc}.s", entry.get("s")))
        if state is None:
            raise fields.error(f"r.{rsc}.s is not a resource state")
        op = entry.get("op")
        rc = entry.get("rc")
        why = entry.get("why")
        role = _ROLES.get(_text(fields, f"r.{rsc}.ro", entry.get("ro", Role.STARTED.value)))
        if role is None:
            raise fields.error(f"r.{rsc}.ro is not a role")
        out[rsc] = ResourceReport(
            state=state,
            failcount=_integer(fields, f"r.{rsc}.fc", entry.get("fc", 0), 0, INFINITY),
            banned_everywhere=_integer(fields, f"r.{rsc}.ba", entry.get("ba", 0), 0, 1) == 1,
            failed_op=None if op is None else _text(fields, f"r.{rsc}.op", op, maximum=NAME_MAX),
            failed_rc=None if rc is None else _integer(fields, f"r.{rsc}.rc", rc, -(2**31), 2**31),
            exit_reason=None if why is None else _text(fields, f"r.{rsc}.why", why, maximum=TEXT_MAX),
            role=role,
        )
    return out


def _plan(fields: _Fields, data: object) -> Plan:
    top = _object(fields, "plan", data)
    assignment: dict[str, NodeName | None] = {}
    for rsc, node in _object(fields, "plan.a", top.get("a")).items():
        _text(fields, "plan.a: resource id", rsc, maximum=NAME_MAX)
        assignment[rsc] = NodeName(_text(fields, f"plan.a.{rsc}", node, empty=True, maximum=NAME_MAX)) or None
    texts = _object(fields, "plan.why", top.get("why"))
    codes = _object(fields, "plan.code", top.get("code"))
    if set(texts) != set(codes):
        raise fields.error("plan.why and plan.code name different resources")
    reasons: dict[str, Reason] = {}
    for rsc, text in texts.items():
        code = _CODES.get(_text(fields, f"plan.code.{rsc}", codes[rsc]))
        if code is None:
            raise fields.error(f"plan.code.{rsc} is not a reason code")
        reasons[rsc] = Reason(code, _text(fields, f"plan.why.{rsc}", text, empty=True, maximum=4 * TEXT_MAX))
    roles: dict[str, Role] = {}
    for rsc, value in _object(fields, "plan.ro", top.get("ro", {})).items():
        role = _ROLES.get(_text(fields, f"plan.ro.{rsc}", value))
        if role is None:
            raise fields.error(f"plan.ro.{rsc} is not a role")
        roles[rsc] = role
    return Plan(
        assignment=assignment,
        reasons=reasons,
        needs_fencing=frozenset(NodeName(n) for n in _names(fields, "plan.fence", top.get("fence"))),
        held=frozenset(_names(fields, "plan.hold", top.get("hold", []))),
        roles=roles,
    )


def _names(fields: _Fields, name: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise fields.error(f"{name} must be a list")
    return [_text(fields, f"{name}[{i}]", item, maximum=NAME_MAX) for i, item in enumerate(value)]
