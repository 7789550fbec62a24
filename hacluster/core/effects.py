"""Inputs the core accepts and effects it returns.

The shell turns the outside world into inputs (a packet arrived, a timer fired, the operator
asked to stop) and carries out the effects (send these bytes, log this decision).  All are
frozen values so a simulation can record, compare and replay them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from hacluster.core.ids import LinkName, NodeName

# --- inputs ------------------------------------------------------------------------------


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

# --- effects -----------------------------------------------------------------------------


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


Effect = Send | SendPings | Notice | NodeStateChanged | Stopped | MessageDelivered | KeyMessage


class Rng(Protocol):
    """The randomness the core may use; ``random.Random(seed)`` satisfies it."""

    def randrange(self, start: int, stop: int, /) -> int: ...
