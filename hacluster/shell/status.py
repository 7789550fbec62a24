"""The status document: what ``hacrm status --json`` prints (shape: docs/status-json.md)."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hacluster.core.stats import MembershipStats
    from hacluster.shell.daemon import Daemon
    from hacluster.shell.view import CoreView

_PRIORITY = ("blocked", "failed", "stopping", "starting", "started", "unknown", "stopped")


def _links(node: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": link.name,
            "state": link.state,
            "last_heard_ms_ago": link.last_heard_ms_ago,
            "gap_ms": {
                "p50": link.gap_p50_ms,
                "p99": link.gap_p99_ms,
                "max": link.gap_max_ms,
                "samples": link.gap_samples,
            },
        }
        for link in node.links
    ]


def resources_document(view: CoreView) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Resources (cluster-wide state, node, fail counts, plan reason) and groups."""
    config = view.config
    reports = view.members_reports()
    plan = view.plan
    resources = []
    node_count = len(view.snapshot(0).nodes)
    for rsc in config.runnable_ids(node_count):
        primitive = config.primitive(rsc)
        per_node = reports.get(rsc, {})
        states = {n: r.state.value for n, r in per_node.items()}
        active = sorted(
            n for n, s in states.items() if s in ("started", "starting", "stopping", "failed", "blocked")
        )
        state = next((s for s in _PRIORITY if s in states.values()), "stopped")
        if state == "unknown" and not active:
            state = "stopped" if all(s in ("stopped", "unknown") for s in states.values()) else state
        failed = [
            {"node": n, "op": r.failed_op, "rc": r.failed_rc, "reason": r.exit_reason}
            for n, r in sorted(per_node.items())
            if r.failed_op
        ]
        group = config.group_of(primitive.id)
        target = plan.assignment.get(rsc) if plan is not None else None
        reason = plan.reasons.get(rsc) if plan is not None else None
        clone = config.clone_of(rsc)
        entry: dict[str, Any] = {
            "id": rsc,
            "agent": primitive.agent,
            "group": group.id if group is not None else None,
        }
        if clone is not None:
            entry["clone"] = clone.id
            if config.is_promotable(rsc):
                roles = {per_node[n].role.value for n in active if n in per_node}
                entry["role"] = roles.pop() if len(roles) == 1 else None
        resources.append(
            {
                **entry,
                "state": state,
                "node": active[0] if len(active) == 1 else (active or None),
                "nodes": active,
                "target": target,
                "reason": reason.text
                if reason is not None
                else ""
                if plan is not None
                else "no plan yet from the DC",
                "failcounts": {n: r.failcount for n, r in sorted(per_node.items()) if r.failcount},
                "failures": failed,
                "managed": config.is_managed(rsc) and not (plan is not None and rsc in plan.held),
                "target_role": config.target_role_of(rsc),
            }
        )
    groups = [{"id": g.id, "members": list(g.members)} for g in config.groups]
    return resources, groups


def nodes_document(view: CoreView, stats: MembershipStats) -> list[dict[str, Any]]:
    """Every node as membership sees it, with its attributes (standby read as the cluster reads it)."""
    config = view.config
    nodes = []
    for node in stats.nodes:
        attributes = dict(next((a for n, a in config.node_attributes if n == node.name), ()))
        nodes.append(
            {
                "name": node.name,
                "state": node.state,
                "type": node.type,
                "local": node.name == stats.node,
                "generation": node.generation,
                "dead_interval_ms": node.dead_interval_ms,
                "last_heard_ms_ago": node.last_heard_ms_ago,
                "recommended_deadtime_ms": node.recommended_deadtime_ms,
                "standby": config.is_node_standby(node.name),
                "attributes": attributes,
                "links": _links(node),
            }
        )
    return nodes


def status_document(daemon: Daemon, at_ms: int) -> dict[str, Any]:
    view = daemon.view()
    stats = view.statistics(at_ms)
    config = view.config
    nodes = nodes_document(view, stats)
    resources, groups = resources_document(view)
    return {
        "cluster": {
            "node": stats.node,
            "state": stats.state,
            "generation": stats.generation,
            "comm_up": stats.comm_up,
            "keepalive_ms": stats.keepalive_ms,
            "deadtime_ms": stats.deadtime_ms,
            "dc": view.dc,
            "quorum": view.has_quorum(),
            "config_epoch": config.epoch,
            "stonith_enabled": config.is_stonith_enabled(),
            "pid": os.getpid(),
            "uptime_ms": daemon.uptime_ms,
            "config": str(daemon.config.path),
        },
        "nodes": nodes,
        "resources": resources,
        "groups": groups,
        "pending": view.pending_here(),
        "fencing": [
            {
                "target": e.target,
                "by": e.by,
                "device": e.device,
                "action": e.action,
                "result": e.result,
                "ms": e.ms,
                "reason": e.reason,
                "ago_ms": at_ms - e.at_ms,
            }
            for e in view.fencing_history()
        ],
        "fencing_pending": dict(view.fencing_pending()),
        "links": daemon.link_counters(),
        "packets": {
            "received": stats.received,
            "sent": stats.sent,
            "dropped": dict(stats.dropped),
            "queue_overflows": daemon.queue_overflows,
            "retransmit_requests_sent": stats.retransmit_requests_sent,
            "retransmissions_sent": stats.retransmissions_sent,
        },
        "warnings": daemon.warnings,
        "alerts": daemon.alerts.statistics(),
        "watchdog": watchdog_document(daemon, at_ms),
    }


def watchdog_document(daemon: Daemon, at_ms: int) -> dict[str, Any]:
    """This node's watchdog (None fields when ha.cf has no watchdog line) and self-fencing."""
    view = daemon.view()
    fencing_ms, refusal = view.watchdog_fencing(at_ms)
    doc: dict[str, Any] = {
        "device": None,
        "petting": False,
        "self_fencing_ms": fencing_ms,
        "self_fencing_refused": refusal if fencing_ms == 0 else None,
        "nodes": {node: ms for node, ms in sorted(view.watchdogs().items())},
    }
    if daemon.watchdog is not None:
        doc.update(asdict(daemon.watchdog.statistics()))
    return doc
