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
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hacluster.core import edits
from hacluster.core.cib import ClusterConfig
from hacluster.core.lrm import LocalState
from hacluster.shell.ipc import ApiError, Handler
from hacluster.shell.redact import hide_params

if TYPE_CHECKING:
    from hacluster.core.node import NodeCore
    from hacluster.shell.daemon import Daemon

logger = logging.getLogger(__name__)

PIN_EXPIRY_CHECK_S = 1.0


def _arg(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("BAD_REQUEST", f"this command needs a non-empty string {name!r}")
    return value


def _optional(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError("BAD_REQUEST", f"{name!r} must be a string or null")
    return value


def _is_true(text: str | None) -> bool:
    return text is not None and text.strip().lower() in ("on", "true", "yes", "y", "1")


def handlers(daemon: Daemon) -> dict[str, Handler]:
    def core() -> NodeCore:
        assert daemon.core is not None
        return daemon.core

    def nodes() -> tuple[str, ...]:
        return tuple(daemon.config.nodes)

    def running_on() -> dict[str, set[str]]:
        return {
            rsc: {n for n, s in states.items() if s is LocalState.STARTED}
            for rsc, states in core().rm.observed().items()
        }

    def available(config: ClusterConfig) -> tuple[str, ...]:
        members = set(core().membership.members()) | {daemon.node}
        return tuple(
            n
            for n in nodes()
            if n in members
            and not _is_true(config.node_attribute(n, "standby"))
            and not _is_true(config.node_attribute(n, "maintenance"))
        )

    async def change(
        request: dict[str, Any], make: Callable[[ClusterConfig], ClusterConfig], **extra: Any
    ) -> dict[str, Any]:
        dry_run = bool(request.get("dry_run"))

        def apply(now_ms: int) -> dict[str, Any]:
            current = core().rm.config
            try:
                new = make(current)
            except edits.EditError as exc:
                raise ApiError(exc.code, str(exc)) from None
            if new is current:
                return {"dry_run": dry_run, "epoch": current.epoch, "unchanged": True, **extra}
            if dry_run:
                return {"dry_run": True, "epoch": current.epoch, "would_be_epoch": new.epoch, **extra}
            daemon.execute(core().propose_config(new, now_ms))
            return {"dry_run": False, "epoch": new.epoch, **extra}

        return await daemon.operate(apply)

    def status_ext(_request: dict[str, Any]) -> dict[str, Any]:
        doc = daemon.status()
        config = core().rm.config
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
            on_maintenance = [n for n in entry["nodes"] if _is_true(config.node_attribute(n, "maintenance"))]
            entry["maintenance_nodes"] = on_maintenance
            if on_maintenance or _is_true(config.property("maintenance-mode")):
                entry["managed"] = False
        for node in doc["nodes"]:
            node["maintenance"] = _is_true(node["attributes"].get("maintenance"))
        doc["cluster"]["maintenance_mode"] = _is_true(config.property("maintenance-mode"))
        doc["local_links"] = sorted(link.name for link in daemon.config.links)
        return doc

    def resource_show(request: dict[str, Any]) -> dict[str, Any]:
        rsc = _arg(request, "resource")
        config = core().rm.config
        group = next((g for g in config.groups if g.id == rsc), None)
        if group is None and rsc not in config.resource_ids():
            known = ", ".join([*config.resource_ids(), *(g.id for g in config.groups)]) or "none"
            raise ApiError("UNKNOWN_RESOURCE", f"no resource or group named {rsc!r}; known: {known}")
        details = core().rm.resource_details()
        members = group.members if group is not None else (rsc,)
        primitives = []
        for member in members:
            p = config.primitive(member)
            per_node = details.get(member, {})
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
                    "states": {n: str(e.get("s", "unknown")) for n, e in sorted(per_node.items())},
                    "failcounts": {n: e["fc"] for n, e in sorted(per_node.items()) if e.get("fc")},
                    "failures": [
                        {"node": n, "op": e.get("op"), "rc": e.get("rc"), "reason": e.get("why")}
                        for n, e in sorted(per_node.items())
                        if e.get("op")
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

    def resource_meta(request: dict[str, Any]) -> Any:
        rsc, name = _arg(request, "resource"), _arg(request, "name")
        value = _optional(request, "value")
        return change(request, lambda c: edits.set_meta(c, rsc, name, value))

    def node_attribute(request: dict[str, Any]) -> Any:
        name = _arg(request, "name")
        value = _optional(request, "value")
        targets = request.get("nodes")
        if targets is None:
            targets = [_arg(request, "node")]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets) or not targets:
            raise ApiError("BAD_REQUEST", "'nodes' must be a non-empty list of node names")

        def make(config: ClusterConfig) -> ClusterConfig:
            new = config
            for target in targets:
                new = edits.set_node_attribute(new, nodes(), target, name, value)
            if new.node_attributes == config.node_attributes:
                return config
            return replace(new, epoch=config.epoch + 1)

        return change(request, make)

    def resource_pin(request: dict[str, Any]) -> Any:
        rsc, node = _arg(request, "resource"), _arg(request, "node")
        until = request.get("until_s")
        if until is not None and (not isinstance(until, int) or until <= int(time.time())):
            raise ApiError("BAD_REQUEST", "'until_s' must be a unix time in the future")
        return change(request, lambda c: edits.pin(c, nodes(), rsc, node, until_s=until))

    def heartbeat_handover(request: dict[str, Any]) -> Any:
        which = str(request.get("which") or "all")
        takeover = bool(request.get("takeover"))
        moved: list[tuple[str, str]] = []

        def make(config: ClusterConfig) -> ClusterConfig:
            new, pins_made = edits.hand_over(
                config,
                nodes(),
                daemon.node,
                which,
                takeover=takeover,
                running_on=running_on(),
                available=available(config),
            )
            moved[:] = pins_made
            return new

        async def run() -> dict[str, Any]:
            answer = await change(request, make)
            answer["node"] = daemon.node
            answer["moves"] = [{"resource": unit, "node": node} for unit, node in moved]
            return answer

        return run()

    def rscstatus(_request: dict[str, Any]) -> dict[str, Any]:
        rm = core().rm
        moving = any(
            rm.local_state(r) in (LocalState.STARTING, LocalState.STOPPING) for r in rm.config.resource_ids()
        )
        return {"node": daemon.node, "rsc_hold": edits.rsc_hold(rm.config, daemon.node, running_on(), moving)}

    def hbparameter(request: dict[str, Any]) -> dict[str, Any]:
        name = _arg(request, "name")
        return {"name": name, "value": daemon.config.hbparameter(name)}

    _start_pin_expiry(daemon)
    return {
        "status_ext": status_ext,
        "resource_show": resource_show,
        "resource_meta": resource_meta,
        "resource_pin": resource_pin,
        "node_attribute": node_attribute,
        "heartbeat_handover": heartbeat_handover,
        "hbparameter": hbparameter,
        "rscstatus": rscstatus,
    }


def _start_pin_expiry(daemon: Daemon) -> None:
    with contextlib.suppress(RuntimeError):  # no running loop: a test building the table only
        asyncio.get_running_loop()  # raises without one
        daemon.spawn(_expire_pins(daemon))


async def _expire_pins(daemon: Daemon) -> None:
    """On the DC, drop pins whose ``--until`` has passed (wall clock: the operator gave a date)."""
    while True:
        await asyncio.sleep(PIN_EXPIRY_CHECK_S)
        core = daemon.core
        if core is None or core.rm.dc != daemon.node:
            continue
        if edits.expire_pins(core.rm.config, int(time.time())) is None:
            continue

        def apply(now_ms: int) -> dict[str, Any]:
            assert daemon.core is not None
            current = daemon.core.rm.config
            new = edits.expire_pins(current, int(time.time()))
            if new is not None:
                gone = {cid for cid, *_ in edits.pins(current)} - {cid for cid, *_ in edits.pins(new)}
                logger.info("pin expired constraints=%s epoch=%d", ",".join(sorted(gone)) or "-", new.epoch)
                daemon.execute(daemon.core.propose_config(new, now_ms))
            return {}

        try:
            await daemon.operate(apply)
        except ApiError as exc:
            logger.warning("pin expiry postponed error=%s", exc)
