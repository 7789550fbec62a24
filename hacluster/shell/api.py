"""The API's commands: read-only views answered at once, changes applied by the driver.

Every change is an edit of the replicated configuration (``hacluster.core.edits``) or a
cleanup, proposed to the cluster from this node.  ``dry_run`` returns what would change and
changes nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.resources_crm import render_resources_crm
from hacluster.core import edits
from hacluster.core.cib import ClusterConfig
from hacluster.core.ids import NodeName
from hacluster.fencing_agents.manual import DEFAULT_STATE_DIR as MANUAL_DEFAULT_STATE_DIR
from hacluster.fencing_agents.manual import confirm as manual_confirm
from hacluster.shell.daemon import fence_device
from hacluster.shell.ipc import ApiError, Handler
from hacluster.shell.redact import hide_params

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon


def _arg(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("BAD_REQUEST", f"this command needs a non-empty string {name!r}")
    return value


EXTRA_API_MODULES: tuple[str, ...] = ("api_cli", "api_ops", "api_explain")
"""Modules (``hacluster.shell.<name>``) whose ``handlers(daemon)`` add more commands."""


def api_handlers(daemon: Daemon) -> dict[str, Handler]:
    handlers = _core_handlers(daemon)
    for name in EXTRA_API_MODULES:
        extra = importlib.import_module(f"hacluster.shell.{name}").handlers(daemon)
        assert not set(extra) & set(handlers), f"{name} redefines {set(extra) & set(handlers)}"
        handlers.update(extra)
    return handlers


def _core_handlers(daemon: Daemon) -> dict[str, Handler]:
    def core() -> Any:
        assert daemon.core is not None
        return daemon.core

    def nodes() -> tuple[str, ...]:
        return tuple(daemon.config.nodes)

    async def change(request: dict[str, Any], make: Any) -> dict[str, Any]:
        dry_run = bool(request.get("dry_run"))

        def apply(now_ms: int) -> dict[str, Any]:
            current: ClusterConfig = core().rm.config
            try:
                new: ClusterConfig = make(current)
            except edits.EditError as exc:
                raise ApiError(exc.code, str(exc)) from None
            if dry_run:
                return {"dry_run": True, "epoch": current.epoch, "would_be_epoch": new.epoch}
            daemon.execute(core().propose_config(new, now_ms))
            return {"dry_run": False, "epoch": new.epoch}

        return await daemon.operate(apply)

    async def cleanup(request: dict[str, Any]) -> dict[str, Any]:
        rsc = str(request.get("resource") or "")
        node = str(request.get("node") or "")
        if rsc and rsc not in core().rm.config.resource_ids():
            raise ApiError("UNKNOWN_RESOURCE", f"no primitive named {rsc!r}")
        if request.get("dry_run"):
            return {"dry_run": True}

        def apply(now_ms: int) -> dict[str, Any]:
            daemon.execute(core().cleanup(rsc, node, now_ms))
            return {"dry_run": False}

        return await daemon.operate(apply)

    def standby(on: bool) -> Handler:
        def handler(request: dict[str, Any]) -> Any:
            node = _arg(request, "node")
            value = "on" if on else None
            return change(request, lambda c: edits.set_node_attribute(c, nodes(), node, "standby", value))

        return handler

    def role(started: bool) -> Handler:
        def handler(request: dict[str, Any]) -> Any:
            rsc = _arg(request, "resource")
            value = None if started else "Stopped"
            return change(request, lambda c: edits.set_meta(c, rsc, "target-role", value))

        return handler

    async def move(request: dict[str, Any]) -> Any:
        rsc, node = _arg(request, "resource"), _arg(request, "node")
        pin = bool(request.get("pin"))
        answer = await change(request, lambda c: edits.move(c, nodes(), rsc, node, pin=pin))
        config: ClusterConfig = core().rm.config
        members = (*config.resource_ids(), *(g.id for g in config.groups))
        if not pin and rsc in members and config.stickiness_of(rsc) <= 0:
            answer["warning"] = (
                f"{rsc} has resource-stickiness 0: once the move is done it may move back where its "
                f"location preferences point; use --pin to keep it on {node}"
            )
        return answer

    def unmove(request: dict[str, Any]) -> Any:
        rsc = _arg(request, "resource")
        return change(request, lambda c: edits.unmove(c, rsc))

    def fence(request: dict[str, Any]) -> Any:
        node = _arg(request, "node")
        if node not in nodes():
            raise ApiError("UNKNOWN_NODE", f"no node named {node!r}; configured nodes: {', '.join(nodes())}")
        if node == daemon.node:
            raise ApiError("FENCE_SELF", f"{node} is this node; run the command on another node")
        if not core().rm.fencing_configured():
            raise ApiError("FENCING_NOT_CONFIGURED", "no fence device is configured; see docs/fencing.md")
        if request.get("dry_run"):
            return {"dry_run": True}

        def apply(now_ms: int) -> dict[str, Any]:
            daemon.execute(core().request_fence(NodeName(node), now_ms))
            return {"dry_run": False, "requested": node}

        return daemon.operate(apply)

    def fence_confirm(request: dict[str, Any]) -> Any:
        node = _arg(request, "node")
        if node not in nodes():
            raise ApiError("UNKNOWN_NODE", f"no node named {node!r}; configured nodes: {', '.join(nodes())}")
        if node == daemon.node:
            raise ApiError("FENCE_SELF", f"{node} is this node: it is obviously up")
        if node in core().membership.members() and not request.get("force"):
            raise ApiError(
                "NODE_IS_ACTIVE",
                f"{node} is an active member right now; confirming it down would allow two copies of its "
                "resources; check it really is off, then repeat with --force",
            )
        if request.get("dry_run"):
            return {"dry_run": True}

        def apply(now_ms: int) -> dict[str, Any]:
            # A fence_manual agent may be waiting on this node: it watches its own state_dir
            # (a device parameter, /var/lib/hacluster by default), so confirm there too.
            dirs = {Path(daemon.config.state_dir)}
            for device in core().rm.devices():
                if device.agent in ("fence_manual", "stonith:fence_manual"):
                    dirs.add(Path(dict(device.params).get("state_dir", MANUAL_DEFAULT_STATE_DIR)))
            for directory in sorted(dirs):
                manual_confirm(directory, node)
            daemon.execute(core().confirm_fenced(NodeName(node), now_ms))
            return {"dry_run": False, "confirmed": node}

        return daemon.operate(apply)

    def devices() -> list[dict[str, Any]]:
        return [
            {
                "id": d.id,
                "agent": d.agent,
                "hosts": list(d.host_list) + [n for n, _ in d.host_map],
                "delay_base_ms": d.delay_base_ms,
                "delay_max_ms": d.delay_max_ms,
                "timeout_ms": d.timeout_ms,
                "params": hide_params(d.params),
            }
            for d in core().rm.devices()
        ]

    def stonith_show(request: dict[str, Any]) -> dict[str, Any]:
        device = _arg(request, "device")
        for entry in devices():
            if entry["id"] == device:
                return entry
        raise ApiError(
            "UNKNOWN_DEVICE",
            f"no fence device {device!r}; known: {', '.join(d['id'] for d in devices()) or 'none'}",
        )

    async def stonith_test(request: dict[str, Any]) -> dict[str, Any]:
        device_id = _arg(request, "device")
        target = request.get("node") or None
        spec = next((d for d in core().rm.devices() if d.id == device_id), None)
        if spec is None:
            raise ApiError("UNKNOWN_DEVICE", f"no fence device {device_id!r}")
        result = await daemon.fencer.test(fence_device(spec), target)
        return {
            "device": device_id,
            "target": target,
            "ok": result.ok,
            "rc": result.rc,
            "duration_ms": result.duration_ms,
            "steps": [{"step": name, "ms": ms} for name, ms in result.steps],
            "output": result.output[-2000:],
        }

    return {
        "node_fence": fence,
        "node_fence_confirm": fence_confirm,
        "stonith_list": lambda _r: {"devices": devices()},
        "stonith_show": stonith_show,
        "stonith_test": stonith_test,
        "status": lambda _r: daemon.status(),
        "ping": lambda _r: {"pong": True},
        "configure_show": lambda _r: {
            "text": render_resources_crm(core().rm.config),
            "epoch": core().rm.config.epoch,
        },
        "node_standby": standby(True),
        "node_online": standby(False),
        "resource_start": role(True),
        "resource_stop": role(False),
        "resource_move": move,
        "resource_unmove": unmove,
        "resource_cleanup": cleanup,
    }
