"""API commands behind the everyday CLI: node attributes, resource details, pins, Heartbeat tools.

Reads answer at once from the driver's current state; changes are pure edits
(``hacluster.core.edits``) proposed from this node through ``Daemon.operate``, and each takes
``dry_run``.  A pin with an expiry (``resource move --pin --until``) is dropped by the DC: a
small task here checks the wall clock once a second and proposes the edit when a pin is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from hacluster.core import edits
from hacluster.core.cib import ClusterConfig
from hacluster.core.effects import ProposeConfig
from hacluster.shell.api import Answer, Request, Route, arg, change, nodes_of
from hacluster.shell.ipc import ApiError
from hacluster.shell.redact import hide_params

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

logger = logging.getLogger(__name__)

PIN_EXPIRY_CHECK_S = 1.0


def _optional(request: Request, name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError("BAD_REQUEST", f"{name!r} must be a string or null")
    return value


def _available(daemon: Daemon, config: ClusterConfig) -> tuple[str, ...]:
    """Nodes that can take resources now: members, not in standby or maintenance."""
    members = set(daemon.view().members()) | {daemon.node}
    return tuple(
        n
        for n in nodes_of(daemon)
        if n in members and not config.is_node_standby(n) and not config.is_node_in_maintenance(n)
    )


def status_ext(daemon: Daemon, request: Request) -> Answer:
    doc = daemon.status()
    config = daemon.view().config
    doc["pins"] = [
        {"id": cid, "resource": rsc, "node": node, "until_s": until}
        for cid, rsc, node, until in edits.pins(config)
    ]
    doc["moves"] = [
        {"id": loc.id, "resource": loc.rsc, "node": loc.node}
        for loc in config.locations
        if loc.id.startswith(edits.MOVE_PREFIX)
    ]
    for entry in doc["resources"]:
        entry["failure_timeout"] = config.meta_of(entry["id"], "failure-timeout")
        entry["migration_threshold"] = config.meta_of(entry["id"], "migration-threshold")
        on_maintenance = [n for n in entry["nodes"] if config.is_node_in_maintenance(n)]
        entry["maintenance_nodes"] = on_maintenance
        if on_maintenance or config.is_maintenance_mode():
            entry["managed"] = False
    for node in doc["nodes"]:
        node["maintenance"] = config.is_node_in_maintenance(node["name"])
    doc["cluster"]["maintenance_mode"] = config.is_maintenance_mode()
    doc["local_links"] = sorted(link.name for link in daemon.config.links)
    return doc


def resource_show(daemon: Daemon, request: Request) -> Answer:
    rsc = arg(request, "resource")
    view = daemon.view()
    config = view.config
    group = next((g for g in config.groups if g.id == rsc), None)
    if group is None and rsc not in config.resource_ids():
        known = ", ".join([*config.resource_ids(), *(g.id for g in config.groups)]) or "none"
        raise ApiError("UNKNOWN_RESOURCE", f"no resource or group named {rsc!r}; known: {known}")
    reports = view.reports()
    members = group.members if group is not None else (rsc,)
    primitives = []
    for member in members:
        p = config.primitive(member)
        per_node = reports.get(member, {})
        primitives.append(
            {
                "id": p.id,
                "agent": p.agent,
                "args": list(p.args),
                "params": hide_params(p.params),
                "meta": dict(p.meta),
                "ops": [
                    {
                        "name": op.name,
                        "interval_ms": op.interval_ms,
                        "timeout_ms": op.timeout_ms,
                        **({"on_fail": op.on_fail} if op.on_fail else {}),
                        **({"role": op.role} if op.role else {}),
                    }
                    for op in p.ops
                ],
                "states": {n: r.state.value for n, r in sorted(per_node.items())},
                "failcounts": {n: r.failcount for n, r in sorted(per_node.items()) if r.failcount},
                "failures": [
                    {"node": n, "op": r.failed_op, "rc": r.failed_rc, "reason": r.exit_reason}
                    for n, r in sorted(per_node.items())
                    if r.failed_op
                ],
                "target_role": config.target_role_of(p.id),
                "failure_timeout": config.meta_of(p.id, "failure-timeout"),
                "migration_threshold": config.meta_of(p.id, "migration-threshold"),
            }
        )
    container = group if group is not None else config.group_of(rsc)
    owner = container.id if container is not None else None
    return {
        "id": rsc,
        "kind": "group" if group is not None else "primitive",
        "group": None if group is not None else owner,
        "meta": dict(group.meta) if group is not None else dict(config.primitive(rsc).meta),
        "primitives": primitives,
        "constraints": [
            {"id": loc.id, "node": loc.node, "score": loc.score}
            for loc in config.locations
            if loc.rsc in (rsc, owner)
        ],
        "pins": [
            {"id": cid, "node": node, "until_s": until}
            for cid, r, node, until in edits.pins(config)
            if r in (rsc, owner)
        ],
    }


def resource_meta(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    rsc, name = arg(request, "resource"), arg(request, "name")
    value = _optional(request, "value")
    return change(daemon, request, lambda c: edits.set_meta(c, rsc, name, value))


def node_attribute(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    name = arg(request, "name")
    value = _optional(request, "value")
    targets = request.get("nodes")
    if targets is None:
        targets = [arg(request, "node")]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets) or not targets:
        raise ApiError("BAD_REQUEST", "'nodes' must be a non-empty list of node names")

    def make(config: ClusterConfig) -> ClusterConfig:
        new = config
        for target in targets:
            new = edits.set_node_attribute(new, nodes_of(daemon), target, name, value)
        if new.node_attributes == config.node_attributes:
            return config
        return replace(new, epoch=config.epoch + 1)

    return change(daemon, request, make)


def resource_pin(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    rsc, node = arg(request, "resource"), arg(request, "node")
    until = request.get("until_s")
    if until is not None and (not isinstance(until, int) or until <= int(time.time())):
        raise ApiError("BAD_REQUEST", "'until_s' must be a unix time in the future")
    return change(daemon, request, lambda c: edits.pin(c, nodes_of(daemon), rsc, node, until_s=until))


async def heartbeat_handover(daemon: Daemon, request: Request) -> Answer:
    which = str(request.get("which") or "all")
    takeover = bool(request.get("takeover"))
    moved: list[tuple[str, str]] = []

    def make(config: ClusterConfig) -> ClusterConfig:
        new, pins_made = edits.hand_over(
            config,
            nodes_of(daemon),
            daemon.node,
            which,
            takeover=takeover,
            running_on=daemon.view().running_on(),
            available=_available(daemon, config),
        )
        moved[:] = pins_made
        return new

    answer = await change(daemon, request, make)
    answer["node"] = daemon.node
    answer["moves"] = [{"resource": unit, "node": node} for unit, node in moved]
    return answer


def rscstatus(daemon: Daemon, request: Request) -> Answer:
    view = daemon.view()
    moving = bool(view.pending_here())
    return {
        "node": daemon.node,
        "rsc_hold": edits.rsc_hold(view.config, daemon.node, view.running_on(), moving),
    }


def hbparameter(daemon: Daemon, request: Request) -> Answer:
    name = arg(request, "name")
    return {"name": name, "value": daemon.config.hbparameter(name)}


ROUTES: Mapping[str, Route] = {
    "status_ext": status_ext,
    "resource_show": resource_show,
    "resource_meta": resource_meta,
    "resource_pin": resource_pin,
    "node_attribute": node_attribute,
    "heartbeat_handover": heartbeat_handover,
    "hbparameter": hbparameter,
    "rscstatus": rscstatus,
}


def start_pin_expiry(daemon: Daemon) -> None:
    """Start the pin expiry task (no running loop: a test building the table only)."""
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop()  # raises without one
        daemon.spawn(_expire_pins(daemon))


async def _expire_pins(daemon: Daemon) -> None:
    """On the DC, drop pins whose ``--until`` has passed (wall clock: the operator gave a date)."""
    while True:
        await asyncio.sleep(PIN_EXPIRY_CHECK_S)
        if daemon.core is None or daemon.view().dc != daemon.node:
            continue
        if edits.expire_pins(daemon.view().config, int(time.time())) is None:
            continue

        def apply(now_ms: int) -> Answer:
            current = daemon.view().config
            new = edits.expire_pins(current, int(time.time()))
            if new is not None:
                gone = {cid for cid, *_ in edits.pins(current)} - {cid for cid, *_ in edits.pins(new)}
                logger.info("pin expired constraints=%s epoch=%d", ",".join(sorted(gone)) or "-", new.epoch)
                daemon.submit(ProposeConfig(new), now_ms)
            return {}

        try:
            await daemon.operate(apply)
        except ApiError as exc:
            logger.warning("pin expiry postponed error=%s", exc)
