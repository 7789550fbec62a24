"""Frozen snapshots the CLI and the status API read (``statistics()``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkStats:
    """One local link as seen for one peer."""

    name: str
    state: str
    """``up`` or ``dead``."""
    last_heard_ms_ago: int | None
    gap_p50_ms: int | None
    gap_p99_ms: int | None
    gap_max_ms: int | None
    gap_samples: int


@dataclass(frozen=True, slots=True)
class NodeStats:
    name: str
    state: str
    """``init`` | ``up`` | ``active`` | ``dead`` (normal nodes); ``ping`` | ``dead`` (ping)."""
    type: str
    """``normal`` or ``ping``."""
    generation: int | None
    links: tuple[LinkStats, ...]
    dead_interval_ms: int
    last_heard_ms_ago: int | None
    recommended_deadtime_ms: int | None
    """From the worst gap seen on any link; None until enough samples exist."""


@dataclass(frozen=True, slots=True)
class MembershipStats:
    node: str
    state: str
    generation: int
    comm_up: bool
    keepalive_ms: int
    deadtime_ms: int
    nodes: tuple[NodeStats, ...]
    dropped: tuple[tuple[str, int], ...]
    """Drop counters by reason, every reason listed (zeros included)."""
    received: int
    sent: int
    retransmit_requests_sent: int
    retransmissions_sent: int


@dataclass(frozen=True, slots=True)
class GapSamples:
    """Heartbeat gaps of one peer over one link, for the shell's metrics."""

    node: str
    link: str
    observed: int
    """Gaps measured since start, a running count (the window below keeps only the newest)."""
    recent_ms: tuple[int, ...]
    """The newest gaps, oldest first; at most ``gap_window`` of them."""
