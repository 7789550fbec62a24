"""Node attributes: what rules, promotion scores and connectivity placement read.  Pure.

Theory of operation
-------------------
A node attribute is a name and a string value attached to one node.  There are two kinds,
with Pacemaker's lifetimes:

- **permanent** (``--lifetime forever``): part of the replicated configuration, next to
  ``standby`` and ``maintenance`` (``ClusterConfig.node_attributes``), changed through
  ``edits.set_node_attribute`` and kept across reboots;
- **transient** (``--lifetime reboot``): held by the node they describe and lost when it
  leaves.  Each node keeps its own and sends them in every ``StateReport`` (``at``), so every
  member knows every member's, a newcomer learns them from the next reports, and a node that
  leaves or reboots (new generation, empty set) takes its own with it.  A change made on
  another node travels as an ``AttributeRequest`` (``hac_attr``) to the node it describes,
  which applies it and reports it; nobody else writes a node's transient attributes.

``node_attributes(config, transient)`` merges the two — a transient value hides a permanent
one of the same name, as Pacemaker's status section does — and is what the scheduler reads.

Connectivity (ha.cf ``ping``/``ping_group``) is a transient attribute each node sets on
itself: ``ping_score`` of the ping nodes membership currently sees answering.  Membership
damps it: a ping node counts as lost only after ``deadping`` without any echo reply, so one
lost echo changes nothing.  ``ipfail_bans`` gives ``haresources`` clusters Heartbeat's
``ipfail``: the nodes that see fewer ping nodes than the best online member give their
resources to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Final

from hacluster.core.cib import INFINITY, ClusterConfig, Location
from hacluster.core.ids import NodeName

NAME_MAX: Final = 255
VALUE_MAX: Final = 1000
ATTRIBUTES_MAX: Final = 100
"""Transient attributes one node may hold: each travels in every report of that node."""

PING_ATTRIBUTE_DEFAULT: Final = "pingd"
PING_MULTIPLIER_DEFAULT: Final = 1
PING_MULTIPLIER_MAX: Final = 1_000_000
PING_DAMPEN_MS_DEFAULT: Final = 5000
"""Pacemaker's ``ping`` agent's default ``dampen`` (5 s)."""
IPFAIL_PREFIX: Final = "ipfail-"
"""Ids of the constraints ``ipfail_bans`` adds to the placement input (never to the stored
configuration)."""

LIFETIMES: Final = ("reboot", "forever")
"""``reboot``: transient; ``forever``: permanent (Pacemaker's ``-l`` values)."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]*")

Attributes = Mapping[NodeName, Mapping[str, str]]


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a node attribute's name, or None.

    ``#uname``, ``#id`` and the other ``#`` names are the scheduler's own; spaces, ``=`` and
    control characters would not survive ``crm_attribute`` output or the crm syntax."""
    if not name:
        return "an attribute name is empty"
    if len(name) > NAME_MAX:
        return f"attribute name {name[:40]!r}… is longer than {NAME_MAX} characters"
    if name.startswith("#"):
        return f"attribute name {name!r} starts with '#': those names (#uname, #id) are built in"
    if _NAME_RE.fullmatch(name) is None:
        return (
            f"attribute name {name!r} has a character other than letters, digits and _ . : @ + -"
            " (or starts with one of . : @ + -)"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a node attribute's value, or None."""
    if len(value) > VALUE_MAX:
        return f"attribute value is longer than {VALUE_MAX} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "attribute value has a control character (newline, tab, …)"
    return None


def node_attributes(config: ClusterConfig, transient: Attributes) -> dict[NodeName, dict[str, str]]:
    """Every node's attributes as the scheduler reads them: permanent, then transient on top."""
    out: dict[NodeName, dict[str, str]] = {}
    for node, pairs in config.node_attributes:
        out.setdefault(NodeName(node), {}).update(pairs)
    for node, attributes in transient.items():
        out.setdefault(node, {}).update(attributes)
    return out


def apply_change(current: Mapping[str, str], name: str, value: str | None) -> dict[str, str]:
    """``current`` with ``name`` set to ``value`` (removed with None); checked first."""
    problem = name_problem(name) or (value_problem(value) if value is not None else None)
    if problem is not None:
        raise ValueError(problem)
    updated = dict(current)
    if value is None:
        updated.pop(name, None)
    else:
        if name not in updated and len(updated) >= ATTRIBUTES_MAX:
            raise ValueError(f"a node holds at most {ATTRIBUTES_MAX} transient attributes")
        updated[name] = value
    return updated


def promotion_attribute(resource: str) -> str:
    """Pacemaker's name of a promotion score: ``master-<resource>``, without a ``:N`` suffix."""
    return "master-" + strip_instance(resource)


def strip_instance(resource: str) -> str:
    """``pgsql:2`` → ``pgsql`` (an anonymous clone instance's number is not part of the name)."""
    base, sep, number = resource.rpartition(":")
    return base if sep and number.isdigit() and number.isascii() else resource


# --- connectivity ---------------------------------------------------------------------------------


def ping_score(reachable: int, multiplier: int) -> int:
    """The connectivity attribute's value: ping nodes answering × multiplier."""
    assert reachable >= 0
    assert multiplier >= 1
    return reachable * multiplier


def is_haresources(config: ClusterConfig) -> bool:
    """The configuration came from Heartbeat's ``haresources`` (ipfail applies)."""
    return PurePath(config.source).name == "haresources"


def ipfail_bans(
    config: ClusterConfig, attributes: Attributes, online: Iterable[NodeName], ping_attribute: str
) -> tuple[Location, ...]:
    """Heartbeat's ``ipfail`` for ``haresources`` clusters, as -INFINITY locations.

    Among the online nodes that report ``ping_attribute`` (a whole number), every node that
    sees fewer ping nodes than the best one may not run any resource: they go where the
    network is.  Equal counts (or no counts at all) ban nobody, and a node whose count is not
    known is neither banned nor counted, so an unknown value never moves anything.
    """
    if not is_haresources(config):
        return ()
    counts: dict[NodeName, int] = {}
    for node in online:
        raw = attributes.get(node, {}).get(ping_attribute)
        if raw is not None and raw.isascii() and raw.isdigit():
            counts[node] = int(raw)
    if len(counts) < 2:
        return ()
    best = max(counts.values())
    worse = sorted(n for n, c in counts.items() if c < best)
    units = (
        *(g.id for g in config.groups),
        *(p.id for p in config.primitives if p.agent_class != "stonith" and config.group_of(p.id) is None),
    )
    return tuple(
        Location(id=f"{IPFAIL_PREFIX}{unit}-{node}", rsc=unit, node=node, score=-INFINITY)
        for unit in units
        for node in worse
    )
