"""Inputs the core accepts and effects it returns: the closed set, every one in this file.

The shell turns the outside world into inputs (a packet arrived, a timer fired, an agent
finished, the operator asked for something) and carries out the effects (send these bytes,
run this agent, fence that node, persist this configuration, log this decision).  All are
frozen values so a simulation can record, compare and replay them.

Rules for this file:

* ``NodeInput`` is everything ``NodeCore.handle`` accepts and ``Effect`` everything it
  returns; both are closed unions, so the shell's dispatch ends in ``assert_never`` and a new
  kind of input or effect cannot be forgotten by a caller (mypy says where).
* Operator actions (a configuration change, a cleanup, a fence request or confirmation, a
  re-read of ha.cf) are inputs like the others: the shell never reaches into the core to
  change it, and a simulation replays them.
* Two kinds stay inside the core and never reach the shell: ``MessageDelivered`` (membership
  → resource manager) and ``Broadcast`` (resource manager → membership).  ``NodeCore`` routes
  them between its layers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from hacluster.core.ids import LinkName, NodeName

if TYPE_CHECKING:
    from hacluster.core.cib import ClusterConfig, Primitive
    from hacluster.core.codec import KeyRing
    from hacluster.core.fence_devices import FenceDeviceSpec
    from hacluster.core.settings import MembershipSettings

# --- inputs: from the wire, the clock, the operator --------------------------------------------


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """Raw bytes that arrived on ``link``; nothing about them is trusted yet."""

    link: LinkName
    data: bytes


@dataclass(frozen=True, slots=True)
class Tick:
    """A timer fired; the core compares its deadlines with ``now_ms``."""


@dataclass(frozen=True, slots=True)
class PingReplied:
    """An ICMP echo reply came back from ``address``, which belongs to ping node ``node``."""

    node: NodeName
    address: str


@dataclass(frozen=True, slots=True)
class StopRequested:
    """The operator asked this node to leave the cluster gracefully."""


Input = PacketReceived | Tick | PingReplied | StopRequested
"""What membership itself handles."""


# --- inputs: results of slow work ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentFinished:
    """The result of one ``RunAgent`` (same ``call_id``)."""

    call_id: int
    resource: str
    action: str
    interval_ms: int
    rc: int
    exit_reason: str | None = None
    timed_out: bool = False
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class FenceFinished:
    """The result of one ``Fence`` (same ``request_id``)."""

    request_id: int
    target: NodeName
    device: str
    ok: bool
    duration_ms: int
    detail: str = ""


# --- inputs: operator actions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposeConfig:
    """An operator's configuration change made on this node (epoch above the current one)."""

    config: ClusterConfig


@dataclass(frozen=True, slots=True)
class CleanupRequested:
    """Forget failures of ``resource`` (all when empty) on ``node`` (all when empty), re-probe."""

    resource: str = ""
    node: str = ""


@dataclass(frozen=True, slots=True)
class FenceRequested:
    """``hacrm node fence``: fence ``node`` now."""

    node: NodeName


@dataclass(frozen=True, slots=True)
class FenceConfirmed:
    """``hacrm node fence-confirm``: the operator's word that ``node`` is down."""

    node: NodeName


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """ha.cf was read again: membership settings, the node list and ha.cf fence devices."""

    membership: MembershipSettings
    nodes: tuple[NodeName, ...]
    extra_devices: tuple[FenceDeviceSpec, ...]


@dataclass(frozen=True, slots=True)
class KeyringInstalled:
    """The shell read new keys (authkeys reloaded, or a cluster key rotation step)."""

    keyring: KeyRing
    reason: str


@dataclass(frozen=True, slots=True)
class KeyMessageToSend:
    """Send one ``hac_key`` message (cluster key rotation, ``shell/keyrotation.py``)."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AttributeRequested:
    """``crm_attribute -l reboot``, ``attrd_updater``, ``hacrm node attribute --lifetime reboot``:
    set (``value`` None: remove) transient attribute ``name`` of ``node`` (``core/attributes.py``)."""

    node: NodeName
    name: str
    value: str | None


OperatorInput = (
    ProposeConfig
    | AttributeRequested
    | CleanupRequested
    | FenceRequested
    | FenceConfirmed
    | Reconfigured
    | KeyringInstalled
    | KeyMessageToSend
)

NodeInput = Input | AgentFinished | FenceFinished | OperatorInput
"""Everything ``NodeCore.handle`` accepts."""


# --- effects for the shell ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send one message on ``link``, or on every link when ``link`` is None.

    ``data`` is the netstring form (UDP); ``classic`` the classic form for serial links,
    empty when no serial link is configured.
    """

    data: bytes
    classic: bytes = b""
    link: LinkName | None = None


@dataclass(frozen=True, slots=True)
class SendPings:
    """Send one ICMP echo to every address of every ping node."""


class Level(enum.IntEnum):
    """Same numbers as the stdlib ``logging`` levels, without importing it here."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


@dataclass(frozen=True, slots=True)
class Notice:
    """A decision or observation worth a log line: ``text`` is the sentence, with reason."""

    code: str
    level: Level
    text: str
    fields: tuple[tuple[str, str | int], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """A peer (or this node) changed state; the resource layer listens to these."""

    node: NodeName
    old: str
    new: str
    reason: str
    graceful: bool = False
    """For ``dead``: the node said goodbye (``shutdone``), so it runs nothing any more."""


@dataclass(frozen=True, slots=True)
class Stopped:
    """The graceful stop finished; the shell may exit."""


@dataclass(frozen=True, slots=True)
class RunAgent:
    """Run one agent operation; the shell answers with ``AgentFinished`` (same ``call_id``)."""

    call_id: int
    resource: str
    primitive: Primitive
    action: str
    interval_ms: int
    timeout_ms: int
    depth: int = 0
    meta: tuple[tuple[str, str], ...] = ()
    """``CRM_meta_*`` keys for the agent's environment (``CRM_meta_clone``,
    ``CRM_meta_clone_max`` …, Pacemaker's names); the executor exports each one as
    ``OCF_RESKEY_CRM_meta_*``.  Empty for a resource outside clones."""


@dataclass(frozen=True, slots=True)
class Fence:
    """Run ``action`` of ``device`` against ``target``; the shell answers ``FenceFinished``."""

    request_id: int
    target: NodeName
    device: FenceDeviceSpec
    action: str = "reboot"


@dataclass(frozen=True, slots=True)
class ConfigAdopted:
    """A new configuration version is in force; the shell persists it in the state dir."""

    config: ClusterConfig
    source: NodeName


@dataclass(frozen=True, slots=True)
class KeyMessage:
    """An authentic, new ``hac_key`` message (cluster key rotation) for the shell.

    The shell owns authkeys (a file), so membership hands these up instead of the resource
    manager; ``hacluster/shell/keyrotation.py`` speaks the protocol.
    """

    src: NodeName
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return field_value(self.fields, name)


def field_value(fields: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of field ``name``, as Heartbeat's lookups do; None when absent."""
    for key, value in fields:
        if key == name:
            return value
    return None


Effect = (
    Send | SendPings | Notice | NodeStateChanged | Stopped | RunAgent | Fence | ConfigAdopted | KeyMessage
)
"""Everything ``NodeCore.handle`` returns."""


# --- between the layers inside the core -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """An authentic, new, in-sequence message for the layers above membership.

    Only types starting with ``hac_`` (ours) are delivered; Heartbeat's own R1 types are
    handled or ignored by membership itself.
    """

    src: NodeName
    mtype: str
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return field_value(self.fields, name)


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send an upper-layer message to every node (membership sequences and signs it)."""

    mtype: str
    pairs: tuple[tuple[str, str], ...]


MembershipEffect = Send | SendPings | Notice | NodeStateChanged | Stopped | MessageDelivered | KeyMessage
"""What ``Membership`` returns."""

RmEffect = Notice | RunAgent | Fence | ConfigAdopted | Broadcast
"""What ``ResourceManager`` returns."""


class Rng(Protocol):
    """The randomness the core may use; ``random.Random(seed)`` satisfies it."""

    def randrange(self, start: int, stop: int, /) -> int: ...
