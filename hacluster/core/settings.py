"""The plain, frozen settings the core runs on.

``hacluster.config`` parses and validates the operator's files (pydantic, line numbers,
every error at once) and then builds these; the core never sees pydantic.  All durations
are integer milliseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hacluster.core.codec import KeyRing
from hacluster.core.ids import LinkName, NodeName


class LinkKind(enum.Enum):
    BCAST = "bcast"
    MCAST = "mcast"
    UCAST = "ucast"
    MCAST6 = "mcast6"
    UCAST6 = "ucast6"
    SERIAL = "serial"

    @property
    def is_ipv6(self) -> bool:
        return self in (LinkKind.MCAST6, LinkKind.UCAST6)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One local medium.  ``name`` is how logs, status and the CLI call it."""

    name: LinkName
    kind: LinkKind
    device: str
    """Interface (UDP kinds) or serial device path."""
    targets: tuple[str, ...] = ()
    """ucast: peer addresses or names; ucast6: IPv6 addresses (``%scope`` allowed);
    mcast, mcast6: (group,); otherwise empty."""
    port: int = 694
    ttl: int = 1
    """mcast: the IP TTL; mcast6: the hop limit."""
    loop: bool = False
    baud: int = 19200
    bind_address: str = ""
    """UDP kinds: bind to this local address instead of binding to ``device``.

    For several nodes on one host over loopback (127.0.0.x, no root needed); empty means
    bind to the wildcard address and pin the socket to ``device`` (SO_BINDTODEVICE).
    """


@dataclass(frozen=True, slots=True)
class PingNode:
    """A ping node (``ping``: one address, named by it) or ping group (several addresses)."""

    name: NodeName
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MembershipSettings:
    node: NodeName
    nodes: tuple[NodeName, ...]
    """Every configured node, this one included."""
    links: tuple[LinkSpec, ...]
    keyring: KeyRing
    generation: int
    keepalive_ms: int = 1000
    deadtime_ms: int = 30_000
    warntime_ms: int = 15_000
    initdead_ms: int = 60_000
    deadping_ms: int = 30_000
    ping_nodes: tuple[PingNode, ...] = ()
    autojoin: str = "none"
    """``none``: packets from unknown nodes are dropped; ``other``/``any``: they join."""
    hopfudge: int = 1
    max_rexmit_delay_ms: int = 250
    inner_auth: bool = True
    """``msgfmt classic``: add the inner ``auth=`` field to netstring packets too."""
    cluster: str = "linux-ha"
    """Sent as field ``cl`` when not Heartbeat's default; a packet naming another is dropped."""
    gap_window: int = 1024
    """How many recent heartbeat gaps per peer and link the late-heartbeat statistic keeps."""
    wall_offset_ms: int = 0
    """Wall clock minus the monotonic clock at start; only for the informational ``ts``."""
    session_id: bytes = b""
    """16 random bytes per daemon start (``os.urandom``) that key this sender's encrypted
    packets (``codec.Sealer``); empty: membership draws them from its rng (simulations)."""

    def __post_init__(self) -> None:
        assert self.node in self.nodes or self.autojoin == "any", "this node must be configured"
        assert self.keepalive_ms > 0
        assert self.deadtime_ms > 2 * self.keepalive_ms, "deadtime must exceed 2 x keepalive"
        assert self.initdead_ms >= self.deadtime_ms
        assert len({link.name for link in self.links}) == len(self.links), "link names are unique"
        assert len(self.session_id) in (0, 16), "a session id is 16 bytes"
