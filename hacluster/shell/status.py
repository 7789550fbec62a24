"""The status document: what ``hacrm status --json`` prints (shape: docs/status-json.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from hacluster.core.lrm import LocalState

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

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


def resources_document(daemon: Daemon) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Resources (cluster-wide state, node, fail counts, plan reason) and groups."""
    assert daemon.core is not None
    rm = daemon.core.rm
    config = rm.config
    members = set(daemon.core.membership.members()) | {daemon.node}
    details = rm.resource_details()
    plan = rm.plan
    resources = []
    for primitive in config.primitives:
        if primitive.agent_class == "stonith":
            continue
        per_node = {n: e for n, e in details.get(primitive.id, {}).items() if n in members}
        states = {n: str(e.get("s", "unknown")) for n, e in per_node.items()}
        active = sorted(
            n for n, s in states.items() if s in ("started", "starting", "stopping", "failed", "blocked")
        )
        state = next((s for s in _PRIORITY if s in states.values()), "stopped")
        if state == "unknown" and not active:
            state = "stopped" if all(s in ("stopped", "unknown") for s in states.values()) else state
        failed = [
            {"node": n, "op": e.get("op"), "rc": e.get("rc"), "reason": e.get("why")}
            for n, e in sorted(per_node.items())
            if e.get("op")
        ]
        group = config.group_of(primitive.id)
        target = plan.assignment.get(primitive.id) if plan is not None else None
        resources.append(
            {
                "id": primitive.id,
                "agent": primitive.agent,
                "group": group.id if group is not None else None,
                "state": state,
                "node": active[0] if len(active) == 1 else (active or None),
                "nodes": active,
                "target": target,
                "reason": plan.reasons.get(primitive.id, "")
                if plan is not None
                else "no plan yet from the DC",
                "failcounts": {n: e["fc"] for n, e in sorted(per_node.items()) if e.get("fc")},
                "failures": failed,
                "managed": (config.meta_of(primitive.id, "is-managed") or "true").lower()
                not in ("false", "no", "0", "off"),
                "target_role": config.target_role_of(primitive.id),
            }
        )
    groups = [{"id": g.id, "members": list(g.members)} for g in config.groups]
    return resources, groups


def status_document(daemon: Daemon, at_ms: int) -> dict[str, Any]:
    assert daemon.core is not None
    stats = daemon.core.membership.statistics(at_ms)
    rm = daemon.core.rm
    nodes = []
    for node in stats.nodes:
        attributes = dict(next((a for n, a in rm.config.node_attributes if n == node.name), ()))
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
                "standby": attributes.get("standby", "off").lower() in ("on", "true", "yes", "1"),
                "attributes": attributes,
                "links": _links(node),
            }
        )
    resources, groups = resources_document(daemon)
    local_pending = [
        r for r in rm.config.resource_ids() if rm.local_state(r) in (LocalState.STARTING, LocalState.STOPPING)
    ]
    return {
        "cluster": {
            "node": stats.node,
            "state": stats.state,
            "generation": stats.generation,
            "comm_up": stats.comm_up,
            "keepalive_ms": stats.keepalive_ms,
            "deadtime_ms": stats.deadtime_ms,
            "dc": rm.dc,
            "quorum": rm.has_quorum(),
            "config_epoch": rm.config.epoch,
            "stonith_enabled": rm.config.is_stonith_enabled(),
            "pid": os.getpid(),
            "uptime_ms": daemon.uptime_ms,
            "config": str(daemon.config.path),
        },
        "nodes": nodes,
        "resources": resources,
        "groups": groups,
        "pending": local_pending,
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
            for e in rm.fencing.history()
        ],
        "fencing_pending": dict(rm.fencing_pending()),
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
    }
