"""A Pacemaker CIB's ``<status>`` section as what our core observes.  Pure.

Theory of operation
-------------------
``cib_xml.parse_cib_xml`` reads a CIB's configuration and never its status; this module reads
the status: ``read_status`` turns the ``<status>`` element into plain values, and
``snapshot_of`` turns a configuration and a status into the ``ClusterSnapshot`` every
decision is made from (``core/snapshot.py``), so that ``dc.plan_for`` and
``simulate.predict`` decide on a Pacemaker cluster's recorded state as they do on ours.

- **Nodes** (``node_state``): a node is a member when it is in the membership (``in_ccm``),
  its controller is up (``crmd``) and it has joined (``join=member``); Pacemaker 2.1.7 and
  later write a timestamp instead of ``true``/``online``, and any non-zero one counts.  A node
  that is not a member is *down cleanly* when it was expected down (``expected=down``, or
  fencing is off), and *unclean* otherwise: it may still run what it ran and, with fencing
  on, must be fenced first.  A configured node with no ``node_state`` at all was never seen:
  unclean with ``startup-fencing=true`` (the default), down otherwise.  These are
  Pacemaker's rules for reading node state (Pacemaker Explained, "Node Status").
- **Transient attributes**: fail counts (``fail-count-RSC`` and the per-operation
  ``fail-count-RSC#OP_INTERVAL``, summed per resource and node), ``shutdown`` (non-zero: the
  node is leaving), and node attributes (``standby``, ``maintenance`` and the rest).
- **Resource history** (``lrm_rsc_op``): each node's operations on each resource, replayed in
  call order through the local resource manager's own table (``lrm.TRANSITIONS``,
  ``lrm.rc_class``): a probe that found it running, a start, a failed monitor, a failed stop
  give the same ``LocalState`` and fail-count effect here as on a live node.  An operation
  still pending (``op-status=-1``) leaves the resource starting or stopping.  What the table
  has no row for (migrate_to/migrate_from, promote/demote, notify) is kept as data
  (``unreplayed``) for callers to judge; a successful one reads as running (migrate_from,
  promote, demote) or, for migrate_to, as "running until stopped".

Node names are lower-cased, as ``cib_xml`` lower-cases the configuration's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from hacluster.config.cib_xml import _parse_xml
from hacluster.core.cib import INFINITY, ClusterConfig, Pairs, is_true
from hacluster.core.edits import set_node_attribute
from hacluster.core.ids import NodeName
from hacluster.core.lrm import (
    OCF_ERR_CONFIGURED,
    OCF_ERR_GENERIC,
    OCF_ERR_INSTALLED,
    OCF_ERR_PERM,
    OCF_NOT_RUNNING,
    RUNNING_RCS,
    TRANSITIONS,
    Action,
    Count,
    LocalState,
    rc_class,
)
from hacluster.core.snapshot import ClusterSnapshot
from hacluster.errors import ConfigError

# Pacemaker's execution status of an operation (``op-status``; lrmd/services ``PCMK_EXEC_*``).
EXEC_PENDING: Final = -1
EXEC_DONE: Final = 0
EXEC_CANCELLED: Final = 1
EXEC_TIMEOUT: Final = 2
EXEC_NOT_SUPPORTED: Final = 3
EXEC_ERROR: Final = 4
EXEC_ERROR_HARD: Final = 5
EXEC_ERROR_FATAL: Final = 6
EXEC_NOT_INSTALLED: Final = 7

_EXEC_RC: Final = {
    EXEC_NOT_SUPPORTED: OCF_ERR_GENERIC,
    EXEC_ERROR_HARD: OCF_ERR_PERM,
    EXEC_ERROR_FATAL: OCF_ERR_CONFIGURED,
    EXEC_NOT_INSTALLED: OCF_ERR_INSTALLED,
}
"""An execution failure whose exit code says nothing: the class of error Pacemaker gives it."""

_BEFORE: Final = {
    Action.PROBE: LocalState.UNKNOWN,
    Action.START: LocalState.STARTING,
    Action.MONITOR: LocalState.STARTED,
    Action.STOP: LocalState.STOPPING,
}
"""The state a resource is in while each operation runs (the key of ``lrm.TRANSITIONS``)."""

_PENDING_STATE: Final = {"start": LocalState.STARTING, "stop": LocalState.STOPPING}

UNREPLAYED_OPS: Final = frozenset({"migrate_to", "migrate_from", "promote", "demote", "notify"})
"""Operations the local resource manager has no transition for yet."""

_FAIL_COUNT_PREFIX: Final = "fail-count-"
_RESERVED_ATTRIBUTES: Final = frozenset({"probe_complete", "shutdown", "terminate"})


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One ``lrm_rsc_op``: what a node last saw of one operation on one resource."""

    operation: str
    interval_ms: int
    call_id: int
    rc: int
    op_status: int
    exit_reason: str = ""
    expected_rc: int | None = None
    """The exit code the scheduler expected (third field of ``transition-key``); a monitor
    for the Stopped role expects 7."""

    @property
    def is_probe(self) -> bool:
        return self.operation == "monitor" and self.interval_ms == 0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One ``node_state``, read as Pacemaker reads it (module docstring)."""

    name: NodeName
    in_cluster: bool
    controller_online: bool
    join: str
    expected: str
    attributes: Pairs = ()
    """Transient node attributes, fail counts included, as written."""

    def attribute(self, name: str) -> str | None:
        return dict(self.attributes).get(name)


@dataclass(frozen=True, slots=True)
class CibStatus:
    """The whole ``<status>`` section, plus the ``have-quorum`` flag of ``<cib>``."""

    nodes: Mapping[NodeName, NodeStatus]
    history: Mapping[tuple[str, NodeName], tuple[OpRecord, ...]]
    """(resource, node) → its operations there, in call order."""
    has_quorum: bool = True


@dataclass(frozen=True, slots=True)
class ResourceOnNode:
    """The replayed history of one resource on one node."""

    state: LocalState
    failcount: int = 0
    banned_everywhere: bool = False
    unreplayed: tuple[str, ...] = ()
    """Operations in the history that ``lrm.TRANSITIONS`` has no row for."""


# --- reading -----------------------------------------------------------------------------------


def read_status(text: str | bytes, path: str = "cib.xml") -> CibStatus:
    """The status of a CIB document; ``ConfigError`` if it is not one (or a value is malformed)."""
    root, _ = _parse_xml(text, path)
    if root.tag != "cib":
        raise ConfigError([f"{path}: the root element is <{root.tag}>, not <cib>; is this a CIB?"])
    return status_of(root, path)


def status_of(root: ET.Element, path: str = "cib.xml") -> CibStatus:
    """``read_status`` of an already parsed ``<cib>`` element."""
    problems: list[str] = []
    nodes: dict[NodeName, NodeStatus] = {}
    history: dict[tuple[str, NodeName], tuple[OpRecord, ...]] = {}
    unames = {n.get("id"): n.get("uname") for n in root.iterfind("configuration/nodes/node")}
    status = root.find("status")
    for state in status if status is not None else ():
        if state.tag != "node_state":
            continue
        # A node_state names its node by uname, or only by the id of its <node> entry.
        node_id = state.get("id")
        name = NodeName((state.get("uname") or unames.get(node_id) or node_id or "").lower())
        if not name:
            problems.append(f"{path}: /cib/status/node_state has neither uname nor id")
            continue
        attributes: list[tuple[str, str]] = []
        for nvpair in state.iterfind("transient_attributes/instance_attributes/nvpair"):
            attributes.append((nvpair.get("name", ""), nvpair.get("value", "")))
        nodes[name] = NodeStatus(
            name=name,
            in_cluster=_is_up(state.get("in_ccm"), "true"),
            controller_online=_is_up(state.get("crmd"), "online"),
            join=(state.get("join") or "down").lower(),
            expected=(state.get("expected") or "down").lower(),
            attributes=tuple(attributes),
        )
        for resource in state.iterfind("lrm/lrm_resources/lrm_resource"):
            rsc = resource.get("id", "")
            ops = []
            for op in resource.iterfind("lrm_rsc_op"):
                record = _op_record(
                    op, f"{path}: /cib/status/node_state[@uname={name}]/…/lrm_resource[@id={rsc}]"
                )
                if isinstance(record, str):
                    problems.append(record)
                else:
                    ops.append(record)
            history[(rsc, name)] = tuple(sorted(set(ops), key=lambda o: o.call_id))
    if problems:
        raise ConfigError(problems)
    quorum = root.get("have-quorum", "1")
    return CibStatus(nodes, history, has_quorum=quorum == "1" or is_true(quorum))


def _is_up(value: str | None, word: str) -> bool:
    """``true``/``online`` of older Pacemakers, or a non-zero timestamp of newer ones."""
    if value is None:
        return False
    value = value.strip().lower()
    return value == word or (value.isdigit() and int(value) > 0)


def _op_record(op: ET.Element, where: str) -> OpRecord | str:
    """One operation, or the problem with it."""
    fields = {}
    for attribute, default in (("call-id", "0"), ("rc-code", "0"), ("op-status", "0"), ("interval", "0")):
        text = op.get(attribute, default)
        try:
            fields[attribute] = int(text)
        except ValueError:
            return f"{where}/lrm_rsc_op[@id={op.get('id', '')}]: {attribute}={text!r} is not a number"
    return OpRecord(
        operation=op.get("operation", ""),
        interval_ms=fields["interval"],
        call_id=fields["call-id"],
        rc=fields["rc-code"],
        op_status=fields["op-status"],
        exit_reason=op.get("exit-reason", ""),
        expected_rc=_expected_rc(op.get("transition-key", "")),
    )


def _expected_rc(key: str) -> int | None:
    """``ACTION:TRANSITION:EXPECTED_RC:UUID`` → the expected rc, if it is there."""
    parts = key.split(":")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


# --- replaying a resource's history ---------------------------------------------------------------


def replay(ops: tuple[OpRecord, ...]) -> ResourceOnNode:
    """The state and fail-count effect of one resource's operations on one node, in call order."""
    state = LocalState.UNKNOWN
    banned_here = banned_everywhere = False
    unreplayed: list[str] = []
    for op in ops:
        if op.op_status == EXEC_CANCELLED:
            continue  # a recurring monitor cancelled by a stop: says nothing about the state
        if op.operation in UNREPLAYED_OPS:
            unreplayed.append(op.operation)
            state = _unreplayed_state(op, state)
            continue
        action = _action(op)
        if action is None:
            continue  # meta-data, validate-all, reload…: the state does not change
        if op.op_status == EXEC_PENDING:
            state = _PENDING_STATE.get(op.operation, state)
            continue
        rc = _EXEC_RC.get(op.op_status, op.rc)
        if action is Action.MONITOR and rc == OCF_NOT_RUNNING and op.expected_rc == OCF_NOT_RUNNING:
            state = LocalState.STOPPED  # a monitor for the Stopped role found it stopped, as it should
            continue
        if action is Action.MONITOR and op.expected_rc == OCF_NOT_RUNNING and rc in RUNNING_RCS:
            state = LocalState.FAILED  # ... or found it running where it must not run
            continue
        step = TRANSITIONS[(_BEFORE[action], action)][rc_class(action, rc, op.op_status == EXEC_TIMEOUT)]
        state = step.state
        banned_here |= step.count in (Count.BAN_HERE, Count.BAN_UNTIL_CLEANUP, Count.BAN_EVERYWHERE)
        banned_everywhere |= step.count is Count.BAN_EVERYWHERE
    return ResourceOnNode(
        state=state,
        failcount=INFINITY if banned_here else 0,
        banned_everywhere=banned_everywhere,
        unreplayed=tuple(unreplayed),
    )


def _action(op: OpRecord) -> Action | None:
    if op.operation == "monitor":
        return Action.PROBE if op.interval_ms == 0 else Action.MONITOR
    if op.operation in ("start", "stop"):
        return Action(op.operation)
    return None


def _unreplayed_state(op: OpRecord, state: LocalState) -> LocalState:
    """A migrate/promote/demote/notify result: running if it succeeded, failed if not."""
    if op.op_status == EXEC_PENDING:
        return LocalState.STARTING
    if op.op_status != EXEC_DONE or op.rc not in (0, 8):
        return LocalState.FAILED
    return state if op.operation == "notify" else LocalState.STARTED


# --- the snapshot --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """What ``snapshot_of`` derives from a status, before it becomes a ``ClusterSnapshot``."""

    nodes: tuple[NodeName, ...]
    members: frozenset[NodeName]
    unclean: frozenset[NodeName]
    clean_exits: frozenset[NodeName]
    leaving: frozenset[NodeName]
    observed: Mapping[str, Mapping[NodeName, LocalState]]
    failcounts: Mapping[tuple[str, NodeName], int]
    banned_everywhere: frozenset[str]
    node_attributes: Mapping[NodeName, Pairs] = field(default_factory=dict)
    """Transient node attributes other than fail counts and the controller's own."""
    unreplayed: Mapping[tuple[str, NodeName], tuple[str, ...]] = field(default_factory=dict)


def observe(config: ClusterConfig, status: CibStatus) -> Observed:
    """The status read against the configuration (module docstring)."""
    configured = [NodeName(n) for n, _ in config.node_attributes]
    nodes = tuple(dict.fromkeys([*configured, *status.nodes]))
    fencing = config.is_stonith_enabled()
    startup_fencing = is_true(config.property("startup-fencing", "true"))
    members: set[NodeName] = set()
    unclean: set[NodeName] = set()
    clean: set[NodeName] = set()
    leaving: set[NodeName] = set()
    for node in nodes:
        ns = status.nodes.get(node)
        if ns is None:
            (unclean if startup_fencing and fencing else clean).add(node)
            continue
        kind = node_kind(ns, fencing=fencing)
        {"member": members, "leaving": leaving, "unclean": unclean, "down": clean}[kind].add(node)
        if kind == "leaving" or (kind == "member" and _nonzero(ns.attribute("shutdown"))):
            members.add(node)
            leaving.add(node)
    observed: dict[str, dict[NodeName, LocalState]] = {}
    failcounts: dict[tuple[str, NodeName], int] = {}
    banned: set[str] = set()
    unreplayed: dict[tuple[str, NodeName], tuple[str, ...]] = {}
    for (rsc, node), ops in status.history.items():
        result = replay(ops)
        if result.state is not LocalState.UNKNOWN:
            observed.setdefault(rsc, {})[node] = result.state
        if result.failcount:
            failcounts[(rsc, node)] = result.failcount
        if result.banned_everywhere:
            banned.add(rsc)
        if result.unreplayed:
            unreplayed[(rsc, node)] = result.unreplayed
    attributes: dict[NodeName, Pairs] = {}
    for node, ns in status.nodes.items():
        for rsc, count in _fail_counts(ns.attributes).items():
            key = (rsc, node)
            failcounts[key] = max(failcounts.get(key, 0), count)
        attributes[node] = tuple(
            (k, v)
            for k, v in ns.attributes
            if k not in _RESERVED_ATTRIBUTES and not k.startswith((_FAIL_COUNT_PREFIX, "last-failure-"))
        )
    return Observed(
        nodes=nodes,
        members=frozenset(members),
        unclean=frozenset(unclean),
        clean_exits=frozenset(clean),
        leaving=frozenset(leaving),
        observed=observed,
        failcounts=failcounts,
        banned_everywhere=frozenset(banned),
        node_attributes=attributes,
        unreplayed=unreplayed,
    )


def node_kind(ns: NodeStatus, *, fencing: bool) -> str:
    """``member``, ``leaving`` (up, but may run nothing: expected down, or not joined yet),
    ``unclean`` or ``down`` (cleanly), by Pacemaker's rules for node state."""
    up = ns.in_cluster or ns.controller_online
    if fencing:
        if ns.join == "nack":
            return "unclean"  # active, but refused when it tried to join
        if ns.expected == "down":
            return "leaving" if up else "down"
        if not ns.in_cluster or not ns.controller_online:
            return "unclean"
        if ns.join == "member":
            return "member"
        return "leaving" if ns.join in ("pending", "down") else "unclean"
    if not ns.in_cluster:
        return "down"
    if ns.controller_online:
        return "member" if ns.join == "member" else "leaving"
    return "unclean" if ns.expected == "member" else "down"


def _nonzero(value: str | None) -> bool:
    return value is not None and value.strip() not in ("", "0")


def _fail_counts(attributes: Pairs) -> dict[str, int]:
    """``fail-count-RSC`` and ``fail-count-RSC#OP_INTERVAL``, summed per resource (capped)."""
    counts: dict[str, int] = {}
    for name, value in attributes:
        if not name.startswith(_FAIL_COUNT_PREFIX):
            continue
        rsc = name[len(_FAIL_COUNT_PREFIX) :].partition("#")[0]
        text = value.strip().upper().lstrip("+")
        count = INFINITY if text == "INFINITY" else int(text) if text.isdigit() else 0
        counts[rsc] = min(INFINITY, counts.get(rsc, 0) + count)
    return counts


SNAPSHOT_ATTRIBUTES: Final = ("standby", "maintenance")
"""Transient node attributes the core reads today (through the configuration); the others
reach rules once node attributes are a placement input."""


def snapshot_of(
    config: ClusterConfig, status: CibStatus, cloned: Mapping[str, bool] | None = None
) -> ClusterSnapshot:
    """The view ``dc.plan_for`` and ``simulate.predict`` decide from, for a CIB's status.

    ``cloned``: cloned primitive id → whether its clone is globally unique; their history is
    renamed to instances (``instance_states``).
    """
    seen = observe(config, status)
    observed: Mapping[str, Mapping[NodeName, LocalState]] = seen.observed
    failcounts = seen.failcounts
    if cloned:
        observed, failcounts = instance_states(seen.nodes, seen.observed, seen.failcounts, cloned)
    for node, attributes in seen.node_attributes.items():
        for name, value in attributes:
            if name in SNAPSHOT_ATTRIBUTES:
                config = set_node_attribute(config, seen.nodes, node, name, value)
    placed = placement_attributes(config, seen.node_attributes, status.history, cloned or {})
    return ClusterSnapshot(
        config=config,
        nodes=seen.nodes,
        members=seen.members,
        observed=observed,
        failcounts=failcounts,
        banned_everywhere=seen.banned_everywhere,
        clean_exits=seen.clean_exits,
        unclean=seen.unclean,
        leaving=seen.leaving,
        has_quorum=status.has_quorum,
        node_attributes=placed,
    )


_ACTIVITY: Final = {
    LocalState.BLOCKED: 5,
    LocalState.FAILED: 4,
    LocalState.STOPPING: 3,
    LocalState.STARTING: 2,
    LocalState.STARTED: 1,
}
"""When a node's history holds several records of one anonymous clone, the one that says the
most about what may run there wins (a failed stop over a failure over a running copy)."""


def placement_attributes(
    config: ClusterConfig,
    transient: Mapping[NodeName, Pairs],
    history: Mapping[tuple[str, NodeName], object],
    cloned: Mapping[str, bool],
) -> dict[NodeName, dict[str, str]]:
    """Node → the attributes rules and promotion scores read: the configuration's permanent
    ones, overridden by the status's transient ones.

    An anonymous clone's promotion score may be recorded under the instance's own name
    (``master-d:1``, as older Pacemaker versions and ``crm_master`` inside an instance wrote
    it).  Pacemaker looks up the clone's name ``master-d`` first, then the name of the
    instance its history knows on that node; the core keys scores by the clone's name, so
    such a score is read as ``master-d`` on its node: when it is the only one there, or the
    one of the instance the node's history names.
    """
    out: dict[NodeName, dict[str, str]] = {NodeName(n): dict(pairs) for n, pairs in config.node_attributes}
    for node, pairs in transient.items():
        out.setdefault(node, {}).update(pairs)
    anonymous = {base for base, unique in cloned.items() if not unique}
    for node, attributes in out.items():
        by_base: dict[str, dict[str, str]] = {}
        for name, value in attributes.items():
            base, separator, index = name.removeprefix("master-").partition(":")
            if name.startswith("master-") and separator and index.isdigit() and base in anonymous:
                by_base.setdefault(base, {})[f"{base}:{index}"] = value
        for base, scores in by_base.items():
            if f"master-{base}" in attributes:
                continue
            known = [rsc for rsc in scores if (rsc, node) in history]
            if len(scores) == 1:
                attributes[f"master-{base}"] = next(iter(scores.values()))
            elif len(known) == 1:
                attributes[f"master-{base}"] = scores[known[0]]
    return out


def instance_states(
    nodes: tuple[NodeName, ...],
    observed: Mapping[str, Mapping[NodeName, LocalState]],
    failcounts: Mapping[tuple[str, NodeName], int],
    cloned: Mapping[str, bool],
) -> tuple[dict[str, dict[NodeName, LocalState]], dict[tuple[str, NodeName], int]]:
    """History of cloned primitives renamed to instances (``CHILD:N``), as the core keys them.

    A globally unique clone's instances are distinct resources, and its history already names
    them (``d:3``; a bare ``d`` is ``d:0``).  An anonymous clone's instances are
    interchangeable: Pacemaker records it as ``d`` or as any ``d:N``, so on each node all of
    them are one copy, and the copies are numbered ``d:0``, ``d:1`` … in node order.  A fail
    count follows the copy on its node (on a node without one, it stays on the clone's child).
    """
    out: dict[str, dict[NodeName, LocalState]] = {}
    anonymous: dict[str, dict[NodeName, LocalState]] = {}
    for rsc, states in observed.items():
        base, _, index = rsc.partition(":")
        if base not in cloned:
            out[rsc] = dict(states)
        elif cloned[base]:
            into = out.setdefault(f"{base}:{index or 0}", {})
            into.update(states)
        else:
            merged = anonymous.setdefault(base, {})
            for node, state in states.items():
                if _ACTIVITY.get(state, 0) >= _ACTIVITY.get(merged.get(node, LocalState.UNKNOWN), 0):
                    merged[node] = state
    copy_of: dict[tuple[str, NodeName], str] = {}
    for base, states in anonymous.items():
        active = [n for n in nodes if n in states and states[n] in _ACTIVITY]
        for number, node in enumerate(active):
            copy_of[(base, node)] = f"{base}:{number}"
            out[f"{base}:{number}"] = {node: states[node]}
    counts: dict[tuple[str, NodeName], int] = {}
    for (rsc, node), count in failcounts.items():
        base = rsc.partition(":")[0]
        key = (copy_of.get((base, node), rsc), node) if base in cloned and not cloned[base] else (rsc, node)
        counts[key] = max(counts.get(key, 0), count)
    return out, counts
