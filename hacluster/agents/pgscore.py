"""The replicated PostgreSQL agent's decisions, as plain functions of plain values.

Theory of operation: ``pgreplica`` asks servers where they are (role, WAL position, timeline,
sync state) and then decides; the deciding happens here, with no I/O, so every rule has one
home and a unit test.  The rules:

- **Position** of an instance = the WAL it holds: on a primary its current write position, on
  a standby the greater of what it has received and what it has replayed (promotion replays
  everything received, so received-but-not-yet-replayed WAL counts).
- **Promotion score** (``promotion_score``): the primary keeps ``SCORE_PRIMARY``.  A standby
  is *up to date* when it streams from a primary it can see and trails it by at most
  ``lag_tolerance`` bytes, or, when no primary answers, when no reachable standby holds more
  WAL than it does.  Up to date it scores 700 if the primary last reported it synchronous
  (``sync``/``quorum``), 600 if asynchronous (``potential``/``async``), 500 if it never saw one;
  lagging or disconnected it scores 100.  So the scheduler promotes a synchronous standby
  that has everything, else the most advanced one, and a lagging one only when nothing
  better is left.
- **Promote guard** (``promotion_blocker``): a standby refuses promotion while another
  instance answers as primary, or while a reachable standby holds more WAL.
- **Clone environment** (``CloneEnv.from_env``): Pacemaker's ``OCF_RESKEY_CRM_meta_*``,
  including the legacy ``master``/``slave`` spellings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

SCORE_PRIMARY: Final = 1000
SCORE_SYNC: Final = 700
SCORE_ASYNC: Final = 600
SCORE_UNKNOWN_SYNC: Final = 500
SCORE_LAGGING: Final = 100
SCORE_REFUSED: Final = 1
"""What a standby publishes after refusing a promotion: promotable, but behind everyone else."""

SYNC_STATES: Final = frozenset(["sync", "quorum"])
ASYNC_STATES: Final = frozenset(["potential", "async"])

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


# ---------------------------------------------------------------------------------- positions


def parse_lsn(text: str) -> int:
    """``"0/3000060"`` → bytes since the start of WAL; ValueError for anything else."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a WAL location (like 0/3000060)")
    return int(match.group(1), 16) << 32 | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    assert 0 <= position < 1 << 64, position
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


# ---------------------------------------------------------------------------------- peers


@dataclass(frozen=True, slots=True)
class Peer:
    """Another instance's node and where its server answers."""

    name: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


def is_node_name(name: str) -> bool:
    """Node names go into application_name and synchronous_standby_names: keep them plain."""
    return _NODE_NAME.fullmatch(name) is not None


def parse_node_list(text: str, default_port: int) -> tuple[Peer, ...]:
    """``"n1 n2=10.0.0.2 n3=10.0.0.3:5433"`` → peers; ValueError naming the bad entry.

    A bare name is also its host (resolved by DNS or /etc/hosts); the port defaults to the
    instance's own ``pgport``, since replicas normally listen on the same port.
    """
    peers: dict[str, Peer] = {}
    for entry in text.split():
        name, sep, address = entry.partition("=")
        if not is_node_name(name):
            raise ValueError(f"node_list entry {entry!r}: {name!r} is not a node name (letters, digits, _.-)")
        host, port = name, default_port
        if sep:
            host, port_text = _split_address(address)
            if not host:
                raise ValueError(f"node_list entry {entry!r}: no host after '='; write NAME=HOST[:PORT]")
            if port_text:
                if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                    raise ValueError(f"node_list entry {entry!r}: port {port_text!r} is not 1..65535")
                port = int(port_text)
        if name in peers:
            raise ValueError(f"node_list names {name} twice")
        peers[name] = Peer(name, host, port)
    return tuple(peers.values())


def _split_address(address: str) -> tuple[str, str]:
    """``HOST[:PORT]``, with IPv6 written ``[ADDR]:PORT`` or bare (then without a port)."""
    if address.startswith("["):
        inside, _, rest = address[1:].partition("]")
        return inside, rest.removeprefix(":")
    if address.count(":") > 1:
        return address, ""
    host, _, port_text = address.partition(":")
    return host, port_text


def merge_peers(
    configured: Iterable[Peer], names: Iterable[str], default_port: int, me: str
) -> tuple[Peer, ...]:
    """Configured peers, then any other node named by the cluster (addressed by its name); never ``me``."""
    merged: dict[str, Peer] = {p.name: p for p in configured if p.name != me}
    for name in names:
        if name != me and name not in merged and is_node_name(name):
            merged[name] = Peer(name, name, default_port)
    return tuple(merged.values())


# ---------------------------------------------------------------------------------- statuses


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What one server said about itself (and, seen from a primary, about the asking standby)."""

    in_recovery: bool
    position: int
    timeline: int | None = None  # a primary's current timeline
    sync_state_of_asker: str = ""  # the primary's pg_stat_replication.sync_state for the asker

    @property
    def is_primary(self) -> bool:
        return not self.in_recovery


def promotion_score(
    *,
    me: ServerStatus,
    streaming: bool,
    primary: ServerStatus | None,
    standbys: Iterable[ServerStatus],
    sync_state: str,
    lag_tolerance: int,
) -> int:
    """The score this instance publishes; see the module docstring for the table."""
    if me.is_primary:
        return SCORE_PRIMARY
    if primary is not None:
        up_to_date = streaming and primary.position - me.position <= lag_tolerance
    else:
        up_to_date = all(me.position >= other.position for other in standbys)
    if not up_to_date:
        return SCORE_LAGGING
    if sync_state in SYNC_STATES:
        return SCORE_SYNC
    if sync_state in ASYNC_STATES:
        return SCORE_ASYNC
    return SCORE_UNKNOWN_SYNC


def promotion_blocker(me: str, my_position: int, peers: Mapping[Peer, ServerStatus]) -> str | None:
    """Why ``me`` must not be promoted now (an exit reason), or None.

    Safety first (another primary answers), then data (a reachable standby holds more WAL);
    ties do not block, so two equally advanced standbys can each be promoted.
    """
    primaries = sorted(str(peer) for peer, status in peers.items() if status.is_primary)
    if primaries:
        return (
            f"refusing to promote {me}: {', '.join(primaries)} still answers as primary; "
            "demote or fence it first"
        )
    ahead = [(status.position, peer) for peer, status in peers.items() if status.position > my_position]
    if ahead:
        position, peer = max(ahead, key=lambda item: (item[0], item[1].name))
        return (
            f"refusing to promote {me}: {peer} is more advanced (WAL {format_lsn(position)} > "
            f"{format_lsn(my_position)} here); promote {peer.name} instead"
        )
    return None


def find_primary(peers: Mapping[Peer, ServerStatus]) -> Peer | None:
    """The one peer that answers as primary; ValueError when several do (never pick one)."""
    primaries = sorted((peer for peer, status in peers.items() if status.is_primary), key=lambda p: p.name)
    if len(primaries) > 1:
        raise ValueError(
            f"{len(primaries)} instances answer as primary: {', '.join(map(str, primaries))}; "
            "refusing to follow any until one is demoted or fenced"
        )
    return primaries[0] if primaries else None


# ---------------------------------------------------------------------------------- clone environment


def _names(value: str | None) -> tuple[str, ...]:
    """Pacemaker's space-separated lists; an empty list may arrive as a single blank."""
    return tuple((value or "").split())


_TRUE = frozenset(["true", "yes", "1", "on", "y"])


@dataclass(frozen=True, slots=True)
class CloneEnv:
    """The clone and notification metadata Pacemaker passes in ``OCF_RESKEY_CRM_meta_*``."""

    clone: str | None
    clone_max: int | None
    clone_node_max: int | None
    promoted_max: int | None
    notify: bool
    role: str | None  # "Promoted" / "Unpromoted" for a role-specific monitor
    notify_type: str  # "pre" / "post" in a notify action
    notify_operation: str  # "start" / "stop" / "promote" / "demote"
    notify_lists: Mapping[str, tuple[str, ...]]  # "promote" -> node names, "active" -> …

    @property
    def is_clone(self) -> bool:
        return self.clone_max is not None

    def nodes(self, *kinds: str) -> tuple[str, ...]:
        """Node names in the notify lists ``kinds`` (e.g. "promote", "active"), in order, once each."""
        seen: dict[str, None] = {}
        for kind in kinds:
            for name in self.notify_lists.get(kind, ()):
                seen.setdefault(name, None)
        return tuple(seen)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloneEnv:
        """Read the metadata; a malformed number is a ValueError naming the variable."""

        def meta(name: str) -> str | None:
            value = env.get(f"OCF_RESKEY_CRM_meta_{name}")
            return value.strip() if value is not None and value.strip() else None

        def number(*names: str) -> int | None:
            for name in names:
                text = meta(name)
                if text is not None:
                    if not text.isdigit():
                        raise ValueError(f"OCF_RESKEY_CRM_meta_{name}={text!r} is not a whole number")
                    return int(text)
            return None

        lists: dict[str, tuple[str, ...]] = {}
        legacy = {"master": "promoted", "slave": "unpromoted"}
        for key in ("start", "stop", "promote", "demote", "active", "inactive", "available", "all",
                    "promoted", "unpromoted", "master", "slave"):  # fmt: skip
            names = _names(env.get(f"OCF_RESKEY_CRM_meta_notify_{key}_uname"))
            target = legacy.get(key, key)
            lists[target] = tuple(dict.fromkeys((*lists.get(target, ()), *names)))
        role = meta("role")
        return cls(
            clone=meta("clone"),
            clone_max=number("clone_max"),
            clone_node_max=number("clone_node_max"),
            promoted_max=number("promoted_max", "master_max"),
            notify=(meta("notify") or "").lower() in _TRUE,
            role={"Master": "Promoted", "Slave": "Unpromoted"}.get(role, role) if role else None,
            notify_type=meta("notify_type") or "",
            notify_operation=meta("notify_operation") or "",
            notify_lists=lists,
        )


# ---------------------------------------------------------------------------------- configuration text


def conninfo(**fields: str | int) -> str:
    """A libpq connection string; every value quoted, so spaces and quotes are safe."""
    parts = []
    for key, value in fields.items():
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        parts.append(f"{key}='{text}'")
    return " ".join(parts)


def conninfo_host_port(text: str) -> tuple[str, int | None] | None:
    """``host`` and ``port`` of a libpq string we wrote (``conninfo``); None when it names no host."""
    fields = dict(re.findall(r"(\w+)='((?:[^'\\]|\\.)*)'", text))
    host = fields.get("host", "").replace("\\'", "'").replace("\\\\", "\\")
    if not host:
        return None
    port = fields.get("port", "")
    return host, int(port) if port.isdigit() else None


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def edit_auto_conf(text: str, settings: Mapping[str, str | None]) -> str:
    """postgresql.auto.conf with ``settings`` replaced (None removes one), other lines kept.

    The file's format is one ``name = 'value'`` per line, as ALTER SYSTEM writes it; a name
    appearing twice keeps its last value in PostgreSQL, so every old line of a managed name
    goes and the new value is appended once.
    """
    managed = {name.lower() for name in settings}
    kept = []
    for line in text.splitlines():
        name = (
            line.split("=", 1)[0].strip().lower() if "=" in line and not line.lstrip().startswith("#") else ""
        )
        if name not in managed:
            kept.append(line)
    for name, value in settings.items():
        if value is not None:
            kept.append(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'")
    return "\n".join(kept) + "\n"
