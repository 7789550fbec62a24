"""Watchdog self-fencing: whether this node keeps petting its watchdog, and when a silent peer
counts as fenced.  Pure.

Theory of operation
-------------------
A node with ``watchdog /dev/watchdog`` in ha.cf pets the device from its driver loop
(``shell/watchdog.py``).  A hung daemon pets nothing and the device resets the machine.  That
alone protects against hangs; **self-fencing** (Pacemaker's ``stonith-watchdog-timeout``, sbd
without a disk) builds fencing on it, for clusters with no power switch:

- **This node** (``pet_verdict``) stops petting — for good: the shell never asks again once
  the verdict was no (``shell/watchdog.py``) — when it may run a resource it can no longer be
  trusted with: its partition lost quorum while something of it was active (noted by the
  resource manager at the step that lost it, ``lost_quorum_running``, so that a stop
  finishing before the next pet does not hide it), or a stop failed here and no fence device
  can reach this node.  A node that ran nothing when it lost quorum keeps petting: without
  quorum it starts nothing, so it has nothing to reset for (and one booting alone does not
  reboot in a loop).
- **Its peers** (``watchdog_fencing_ms``) count a lost node as fenced once
  ``stonith-watchdog-timeout`` has passed since it fell silent.  The timing budget: the lost
  node noticed the loss about when we did (both wait ``deadtime``; their last packets are at
  most a keepalive apart), stopped petting then, and its device resets it at most
  ``watchdog_timeout`` later.  ``stonith-watchdog-timeout ≥ 2 × watchdog_timeout`` (sbd's
  ``msgwait`` rule) leaves at least one more ``watchdog_timeout`` for that skew.
- **Quorum** (``watchdog_quorum``): a strict majority of the configured nodes, and in an even
  split the half holding the lowest-named node (corosync's ``auto_tie_breaker``).  So a
  two-node cluster, which otherwise always has quorum, has it on one side of a cut only: the
  other side stops everything and, if anything ran there, resets.  The price, stated in
  docs/fencing.md: when the lowest-named node really fails, the other cannot tell that from a
  cut link and takes nothing over.
- **Refusal** (``watchdog_refusal``): self-fencing is only as good as the worst watchdog, so it
  is refused — the fence stays impossible and says why — unless every configured node has
  announced a working one (``StateReport.watchdog_ms``) no longer than half the timeout, and
  ``no-quorum-policy`` is not ``ignore`` (a partition without quorum would keep running).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from hacluster.core.cib import ClusterConfig, parse_time_ms
from hacluster.core.fence_devices import levels_for
from hacluster.core.ids import NodeName
from hacluster.core.lrm import MAYBE_ACTIVE, LocalState
from hacluster.core.snapshot import ClusterSnapshot

WATCHDOG_PROPERTY: Final = "stonith-watchdog-timeout"
WATCHDOG_DEVICE: Final = "watchdog"
"""The device name fencing history shows for a fence by self-fencing."""


class PetCode(enum.Enum):
    HEALTHY = "healthy"
    NO_QUORUM = "no-quorum"
    STOP_FAILED = "stop-failed"


@dataclass(frozen=True, slots=True)
class PetVerdict:
    """Whether to pet the watchdog now, and why."""

    pet: bool
    code: PetCode
    reason: str


HEALTHY: Final = PetVerdict(True, PetCode.HEALTHY, "healthy")
_ACTIVE: Final = MAYBE_ACTIVE - {LocalState.UNKNOWN}
"""What counts as running here; not yet probed (unknown) does not: this daemon started nothing
yet, and a node that boots alone, without quorum, must not reset for it."""


def configured_timeout_ms(config: ClusterConfig) -> int:
    """``stonith-watchdog-timeout`` in ms; 0 when unset, 0 or malformed (``check`` refuses that)."""
    text = config.property(WATCHDOG_PROPERTY)
    if text is None:
        return 0
    try:
        return max(0, parse_time_ms(text))
    except ValueError:
        return 0


def watchdog_quorum(nodes: tuple[NodeName, ...], members: frozenset[NodeName]) -> bool:
    """A strict majority of ``nodes``; exactly half wins if it holds the lowest-named node."""
    present = len(members & set(nodes))
    if 2 * present != len(nodes):
        return 2 * present > len(nodes)
    return bool(nodes) and min(nodes) in members


def watchdog_refusal(view: ClusterSnapshot) -> str | None:
    """Why self-fencing cannot be used although ``stonith-watchdog-timeout`` is set, or None."""
    timeout_ms = configured_timeout_ms(view.config)
    if timeout_ms <= 0:
        return f"{WATCHDOG_PROPERTY} is not set"
    if view.config.no_quorum_policy() == "ignore":
        return (
            "no-quorum-policy=ignore: a partition without quorum would keep its resources, so a silent node "
            "cannot be assumed to have reset itself; use no-quorum-policy=stop"
        )
    missing = [node for node in view.nodes if view.watchdogs.get(node, 0) <= 0]
    if missing:
        return (
            f"{', '.join(missing)} announced no working watchdog (add watchdog /dev/watchdog to its ha.cf, "
            "load a watchdog driver, and restart it there)"
        )
    slow = [node for node in view.nodes if 2 * view.watchdogs[node] > timeout_ms]
    if slow:
        worst = max(view.watchdogs[node] for node in slow)
        return (
            f"{WATCHDOG_PROPERTY} ({timeout_ms} ms) is less than twice the watchdog timeout of "
            f"{', '.join(slow)} ({worst} ms); raise it to at least {2 * worst} ms"
        )
    return None


def watchdog_fencing_ms(view: ClusterSnapshot) -> int:
    """How long after a node fell silent it counts as fenced by its own watchdog; 0: never."""
    if not view.config.is_stonith_enabled() or watchdog_refusal(view) is not None:
        return 0
    return configured_timeout_ms(view.config)


def pet_verdict(view: ClusterSnapshot) -> PetVerdict:
    """Whether this node (``view.node``) keeps petting: the local half of self-fencing."""
    node = view.node
    assert node is not None, "the verdict is about the node that took the snapshot"
    if configured_timeout_ms(view.config) <= 0 or not view.config.is_stonith_enabled():
        return HEALTHY  # a plain watchdog: only a hung daemon resets the node
    mine = {rsc: states[node] for rsc, states in view.observed.items() if node in states}
    if not view.has_quorum or view.lost_quorum_running:
        running = sorted(
            {rsc for rsc, state in mine.items() if state in _ACTIVE} | set(view.lost_quorum_running)
        )
        if running:
            return PetVerdict(
                False,
                PetCode.NO_QUORUM,
                f"this partition lost quorum while {', '.join(running)} may run here; peers will count "
                f"{node} as fenced after {WATCHDOG_PROPERTY}",
            )
    blocked = sorted(rsc for rsc, state in mine.items() if state is LocalState.BLOCKED)
    if blocked and not levels_for(view.config, view.devices(), node):
        return PetVerdict(
            False,
            PetCode.STOP_FAILED,
            f"stop of {', '.join(blocked)} failed here and no fence device can fence {node}",
        )
    return HEALTHY
