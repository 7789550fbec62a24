"""The API's commands: a routing table of module-level handlers, ``handler(daemon, request)``.

Reads answer at once from the core's read-only view (``daemon.view()``).  Every change is
an operator input to the core (``ProposeConfig`` for an edit of the replicated
configuration, ``CleanupRequested``, ``FenceRequested``, ``FenceConfirmed``), fed by the
driver through ``Daemon.operate``; ``dry_run`` returns what would change and changes
nothing.

``ROUTES`` here and in the modules of ``EXTRA_API_MODULES`` (each has its own ``ROUTES``)
make the whole command set; ``api_handlers`` binds them to one daemon for the socket server.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.resources_crm import render_resources_crm
from hacluster.core import edits
from hacluster.core.cib import ClusterConfig
from hacluster.core.effects import CleanupRequested, FenceConfirmed, FenceRequested, ProposeConfig
from hacluster.core.ids import NodeName
from hacluster.fencing_agents.manual import DEFAULT_STATE_DIR as MANUAL_DEFAULT_STATE_DIR
from hacluster.fencing_agents.manual import confirm as manual_confirm
from hacluster.shell.daemon import fence_device
from hacluster.shell.ipc import ApiError, Handler
from hacluster.shell.redact import hide_params

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

Request = dict[str, Any]
Answer = dict[str, Any]
Route = Callable[["Daemon", Request], Answer | Awaitable[Answer]]
"""One command: the daemon it runs in and the request; the answer (or a coroutine of it)."""


def arg(request: Request, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("BAD_REQUEST", f"this command needs a non-empty string {name!r}")
    return value


def nodes_of(daemon: Daemon) -> tuple[str, ...]:
    return tuple(daemon.config.nodes)


async def change(
    daemon: Daemon, request: Request, make: Callable[[ClusterConfig], ClusterConfig], **extra: Any
) -> Answer:
    """Propose ``make(current configuration)`` from the driver; ``dry_run`` only says the epoch.

    ``make`` may return the configuration it was given: nothing to change, nothing proposed.
    """
    dry_run = bool(request.get("dry_run"))

    def apply(now_ms: int) -> Answer:
        current = daemon.view().config
        try:
            new = make(current)
        except edits.EditError as exc:
            raise ApiError(exc.code, str(exc)) from None
        if new is current:
            return {"dry_run": dry_run, "epoch": current.epoch, "unchanged": True, **extra}
        if dry_run:
            return {"dry_run": True, "epoch": current.epoch, "would_be_epoch": new.epoch, **extra}
        daemon.submit(ProposeConfig(new), now_ms)
        return {"dry_run": False, "epoch": new.epoch, **extra}

    return await daemon.operate(apply)


def _known_node(daemon: Daemon, node: str) -> None:
    nodes = nodes_of(daemon)
    if node not in nodes:
        raise ApiError("UNKNOWN_NODE", f"no node named {node!r}; configured nodes: {', '.join(nodes)}")


# --- resources ------------------------------------------------------------------------------------


async def resource_cleanup(daemon: Daemon, request: Request) -> Answer:
    rsc = str(request.get("resource") or "")
    node = str(request.get("node") or "")
    if rsc and rsc not in daemon.view().config.resource_ids():
        raise ApiError("UNKNOWN_RESOURCE", f"no primitive named {rsc!r}")
    if request.get("dry_run"):
        return {"dry_run": True}

    def apply(now_ms: int) -> Answer:
        daemon.submit(CleanupRequested(rsc, node), now_ms)
        return {"dry_run": False}

    return await daemon.operate(apply)


def resource_start(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    rsc = arg(request, "resource")
    return change(daemon, request, lambda c: edits.set_meta(c, rsc, "target-role", None))


def resource_stop(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    rsc = arg(request, "resource")
    return change(daemon, request, lambda c: edits.set_meta(c, rsc, "target-role", "Stopped"))


async def resource_move(daemon: Daemon, request: Request) -> Answer:
    rsc, node = arg(request, "resource"), arg(request, "node")
    pin = bool(request.get("pin"))
    answer = await change(daemon, request, lambda c: edits.move(c, nodes_of(daemon), rsc, node, pin=pin))
    config = daemon.view().config
    members = (*config.resource_ids(), *(g.id for g in config.groups))
    if not pin and rsc in members and config.stickiness_of(rsc) <= 0:
        answer["warning"] = (
            f"{rsc} has resource-stickiness 0: once the move is done it may move back where its "
            f"location preferences point; use --pin to keep it on {node}"
        )
    return answer


def resource_unmove(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    rsc = arg(request, "resource")
    return change(daemon, request, lambda c: edits.unmove(c, rsc))


def configure_show(daemon: Daemon, request: Request) -> Answer:
    config = daemon.view().config
    return {"text": render_resources_crm(config), "epoch": config.epoch}


# --- nodes ----------------------------------------------------------------------------------------


def node_standby(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    node = arg(request, "node")
    return change(
        daemon, request, lambda c: edits.set_node_attribute(c, nodes_of(daemon), node, "standby", "on")
    )


def node_online(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    node = arg(request, "node")
    return change(
        daemon, request, lambda c: edits.set_node_attribute(c, nodes_of(daemon), node, "standby", None)
    )


async def node_fence(daemon: Daemon, request: Request) -> Answer:
    node = arg(request, "node")
    _known_node(daemon, node)
    if node == daemon.node:
        raise ApiError("FENCE_SELF", f"{node} is this node; run the command on another node")
    if not daemon.view().fencing_configured():
        raise ApiError("FENCING_NOT_CONFIGURED", "no fence device is configured; see docs/fencing.md")
    if request.get("dry_run"):
        return {"dry_run": True}

    def apply(now_ms: int) -> Answer:
        daemon.submit(FenceRequested(NodeName(node)), now_ms)
        return {"dry_run": False, "requested": node}

    return await daemon.operate(apply)


async def node_fence_confirm(daemon: Daemon, request: Request) -> Answer:
    node = arg(request, "node")
    _known_node(daemon, node)
    if node == daemon.node:
        raise ApiError("FENCE_SELF", f"{node} is this node: it is obviously up")
    if node in daemon.view().members() and not request.get("force"):
        raise ApiError(
            "NODE_IS_ACTIVE",
            f"{node} is an active member right now; confirming it down would allow two copies of its "
            "resources; check it really is off, then repeat with --force",
        )
    if request.get("dry_run"):
        return {"dry_run": True}

    def apply(now_ms: int) -> Answer:
        # A fence_manual agent may be waiting on this node: it watches its own state_dir
        # (a device parameter, /var/lib/hacluster by default), so confirm there too.
        dirs = {Path(daemon.config.state_dir)}
        for device in daemon.view().devices():
            if device.agent in ("fence_manual", "stonith:fence_manual"):
                dirs.add(Path(dict(device.params).get("state_dir", MANUAL_DEFAULT_STATE_DIR)))
        for directory in sorted(dirs):
            manual_confirm(directory, node)
        daemon.submit(FenceConfirmed(NodeName(node)), now_ms)
        return {"dry_run": False, "confirmed": node}

    return await daemon.operate(apply)


# --- fence devices --------------------------------------------------------------------------------


def _devices(daemon: Daemon) -> list[Answer]:
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
        for d in daemon.view().devices()
    ]


def stonith_list(daemon: Daemon, request: Request) -> Answer:
    return {"devices": _devices(daemon)}


def stonith_show(daemon: Daemon, request: Request) -> Answer:
    device = arg(request, "device")
    devices = _devices(daemon)
    for entry in devices:
        if entry["id"] == device:
            return entry
    raise ApiError(
        "UNKNOWN_DEVICE",
        f"no fence device {device!r}; known: {', '.join(d['id'] for d in devices) or 'none'}",
    )


async def stonith_test(daemon: Daemon, request: Request) -> Answer:
    device_id = arg(request, "device")
    target = request.get("node") or None
    spec = next((d for d in daemon.view().devices() if d.id == device_id), None)
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


# --- the daemon -------------------------------------------------------------------------------------


def status(daemon: Daemon, request: Request) -> Answer:
    return daemon.status()


def ping(daemon: Daemon, request: Request) -> Answer:
    return {"pong": True}


ROUTES: Mapping[str, Route] = {
    "node_fence": node_fence,
    "node_fence_confirm": node_fence_confirm,
    "stonith_list": stonith_list,
    "stonith_show": stonith_show,
    "stonith_test": stonith_test,
    "status": status,
    "ping": ping,
    "configure_show": configure_show,
    "node_standby": node_standby,
    "node_online": node_online,
    "resource_start": resource_start,
    "resource_stop": resource_stop,
    "resource_move": resource_move,
    "resource_unmove": resource_unmove,
    "resource_cleanup": resource_cleanup,
}

EXTRA_API_MODULES: tuple[str, ...] = ("api_cli", "api_ops", "api_explain", "api_keys", "api_attrs")
"""Modules (``hacluster.shell.<name>``) whose ``ROUTES`` add more commands."""


def routes() -> dict[str, Route]:
    """Every command, from this module and ``EXTRA_API_MODULES``; a name is defined once."""
    table = dict(ROUTES)
    for name in EXTRA_API_MODULES:
        extra: Mapping[str, Route] = importlib.import_module(f"hacluster.shell.{name}").ROUTES
        assert not set(extra) & set(table), f"{name} redefines {set(extra) & set(table)}"
        table.update(extra)
    return table


def api_handlers(daemon: Daemon) -> dict[str, Handler]:
    """The routing table bound to ``daemon``, for ``ApiServer``."""
    from hacluster.shell.api_cli import start_pin_expiry

    start_pin_expiry(daemon)
    return {name: functools.partial(route, daemon) for name, route in routes().items()}
