"""API commands of node attributes and cluster properties, for ``hacrm node attribute`` and
the Pacemaker-compatible tools (``hacluster/tools/``: crm_attribute, attrd_updater, …).

``attribute_query`` (read) answers every node's attributes with their lifetimes;
``attribute_update`` (change) sets or removes one: a ``forever`` attribute is an edit of
the replicated configuration (``edits.set_node_attribute``, as ``standby`` is), a ``reboot``
one an ``AttributeRequested`` input to the core (``core/attributes.py`` says where it lives).
``property_update`` (change) sets or removes one cluster property (``crm_attribute -t
crm_config``); the property is checked as ``configure load`` checks it, before anything
is proposed.  Every bad argument is refused with a code and nothing changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING

from hacluster.core import edits
from hacluster.core.attributes import LIFETIMES, name_problem, value_problem
from hacluster.core.cib import ClusterConfig
from hacluster.core.effects import AttributeRequested
from hacluster.core.ids import NodeName
from hacluster.shell.api import Answer, Request, Route, arg, change, nodes_of
from hacluster.shell.ipc import ApiError

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon


def _lifetime(request: Request) -> str:
    lifetime = request.get("lifetime") or "forever"
    if lifetime not in LIFETIMES:
        raise ApiError("BAD_REQUEST", f"lifetime must be one of {', '.join(LIFETIMES)}, got {lifetime!r}")
    return str(lifetime)


def _value(request: Request) -> str | None:
    value = request.get("value")
    if value is not None and not isinstance(value, str):
        raise ApiError("BAD_REQUEST", f"value must be a string or null, got {value!r}")
    if value is not None and (problem := value_problem(value)) is not None:
        raise ApiError("BAD_VALUE", problem)
    return value


def _name(request: Request) -> str:
    name = arg(request, "name")
    problem = name_problem(name)
    if problem is not None:
        raise ApiError("BAD_ATTRIBUTE_NAME", problem)
    return name


def _node(daemon: Daemon, request: Request) -> str:
    node = request.get("node") or daemon.node
    if not isinstance(node, str):
        raise ApiError("BAD_REQUEST", f"node must be a string, got {node!r}")
    nodes = nodes_of(daemon)
    if node not in nodes:
        raise ApiError("UNKNOWN_NODE", f"no node named {node!r}; configured nodes: {', '.join(nodes)}")
    return node


def attribute_query(daemon: Daemon, request: Request) -> Answer:
    """Every configured node's attributes: ``{node: {name: {"value", "lifetime"}}}``."""
    view = daemon.view()
    nodes: dict[str, dict[str, dict[str, str]]] = {n: {} for n in nodes_of(daemon)}
    for node, pairs in view.config.node_attributes:
        for name, value in pairs:
            nodes.setdefault(node, {})[name] = {"value": value, "lifetime": "forever"}
    for node, attributes in view.transient_attributes().items():
        for name, value in attributes.items():
            nodes.setdefault(node, {})[name] = {"value": value, "lifetime": "reboot"}
    return {"node": daemon.node, "members": list(view.members()), "nodes": nodes}


async def attribute_update(daemon: Daemon, request: Request) -> Answer:
    node, name, value, lifetime = _node(daemon, request), _name(request), _value(request), _lifetime(request)
    if lifetime == "forever":
        answer = await change(
            daemon, request, lambda c: edits.set_node_attribute(c, nodes_of(daemon), node, name, value)
        )
        return {**answer, "node": node, "name": name, "lifetime": lifetime}
    if node != daemon.node and node not in daemon.view().members():
        raise ApiError(
            "NODE_NOT_ACTIVE",
            f"{node} is not an active member: a transient (--lifetime reboot) attribute lives only "
            "while its node is up; use --lifetime forever to keep it in the configuration",
        )
    answer = {"dry_run": bool(request.get("dry_run")), "node": node, "name": name, "lifetime": lifetime}
    if request.get("dry_run"):
        return answer

    def apply(now_ms: int) -> Answer:
        daemon.submit(AttributeRequested(NodeName(node), name, value), now_ms)
        return answer

    return await daemon.operate(apply)


def property_query(daemon: Daemon, request: Request) -> Answer:
    return {"properties": dict(daemon.view().config.properties)}


def property_update(daemon: Daemon, request: Request) -> Awaitable[Answer]:
    name, value = arg(request, "name"), _value(request)

    def make(config: ClusterConfig) -> ClusterConfig:
        new = edits.set_property(config, name, value)
        problems = [what for subject, what in new.problems() if subject == f"property {name}"]
        if problems:
            raise edits.EditError("BAD_PROPERTY", f"property {name}: {problems[0]}")
        return new

    return change(daemon, request, make)


ROUTES: Mapping[str, Route] = {
    "attribute_query": attribute_query,
    "attribute_update": attribute_update,
    "property_query": property_query,
    "property_update": property_update,
}
