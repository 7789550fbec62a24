"""Who may do what on the API: the caller of every connection, and one table of commands.

Theory of operation.  The API socket is open to every local user (mode 0666): what a caller
may do is decided per connection from the kernel's word on who is at the other end, never
from anything the caller says.  ``SO_PEERCRED`` gives the caller's pid, uid and gid as they
were when it connected; its supplementary groups come from ``SO_PEERGROUPS`` (also taken at
connect time), else from ``Groups:`` in ``/proc/PID/status`` (checked to still belong to a
process with that uid and gid).  The caller then has one of three roles:

- ``FULL``: root, the daemon's own user (a daemon started as an ordinary user, such as
  ``hacluster demo``; that user can attach to the daemon anyway), and members of group
  ``haclient``.  Everything is allowed.
- ``READ_ONLY``: members of the group named by ha.cf's ``api_readonly_group``.  Only the
  commands marked ``READ`` below, and their answers pass through the redactor first
  (``hacluster.shell.redact``), since a diff or an ``hbparameter`` may quote a secret.
- ``NONE``: everyone else.  Every command is refused, with a message that says who may.

``COMMANDS`` is the one table: every API command by name, ``READ`` if it changes nothing,
``CHANGE`` if it changes the cluster *or acts outside the daemon* (``report`` writes a file
as root wherever it is told; ``stonith_test`` talks to a power switch with its password).
A command missing from the table is refused to everyone, and the API server refuses to start
with one (tests/unit/test_access.py checks every registered command is in it).

Every ``CHANGE`` request that is allowed leaves one audit line (INFO, logger
``hacluster.shell.access``) with the caller's uid, user name, pid, the command, its
arguments (secrets redacted, long texts as their size) and the outcome; every refusal leaves
a WARNING line.  Group names are looked up again at most every ``GROUP_CACHE_S`` seconds, so
a group created or changed while the daemon runs counts soon after.
"""

from __future__ import annotations

import enum
import errno
import grp
import json
import logging
import os
import pwd
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from hacluster.shell.redact import Redactor, known_secrets

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

logger = logging.getLogger(__name__)

FULL_GROUP: Final = "haclient"
GROUP_CACHE_S: Final = 10.0
SO_PEERGROUPS: Final = getattr(socket, "SO_PEERGROUPS", 59)
"""Linux >= 4.13; Python 3.11's socket module does not name it."""
AUDIT_VALUE_CHARS: Final = 80


class Access(enum.Enum):
    """What a command does, which decides who may run it."""

    READ = "read"
    """Changes nothing: read-only callers may run it."""
    CHANGE = "change"
    """Changes the cluster or acts outside the daemon: full callers only, audited."""


class Role(enum.Enum):
    FULL = "full"
    READ_ONLY = "read-only"
    NONE = "none"


READ, CHANGE = Access.READ, Access.CHANGE

COMMANDS: Final[Mapping[str, Access]] = {
    # status and the everyday reads
    "ping": READ,
    "status": READ,
    "status_ext": READ,
    "rscstatus": READ,
    "hbparameter": READ,
    "resource_show": READ,
    "stonith_list": READ,
    "stonith_show": READ,
    "configure_show": READ,
    "cluster_keys": READ,  # slots, methods and fingerprints; never a secret
    "attribute_query": READ,  # node attributes, as status shows them
    "property_query": READ,
    # history
    "history": READ,
    # explain: every one of these only computes an answer
    "resource_why": READ,
    "simulate": READ,
    "configure_verify": READ,
    "configure_diff": READ,
    # changes to the cluster
    "node_standby": CHANGE,
    "node_online": CHANGE,
    "node_attribute": CHANGE,
    "attribute_update": CHANGE,  # crm_attribute, attrd_updater, hacrm node attribute
    "property_update": CHANGE,  # crm_attribute -t crm_config
    "node_fence": CHANGE,
    "node_fence_confirm": CHANGE,
    "resource_start": CHANGE,
    "resource_stop": CHANGE,
    "resource_move": CHANGE,
    "resource_unmove": CHANGE,
    "resource_pin": CHANGE,
    "resource_meta": CHANGE,
    "resource_cleanup": CHANGE,
    "heartbeat_handover": CHANGE,
    "configure_load": CHANGE,
    "cluster_rotate_key": CHANGE,  # writes every member's authkeys
    # acting outside the daemon
    "report": CHANGE,
    "stonith_test": CHANGE,
}


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a connection, as the kernel saw it at connect time."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int]
    """The primary gid and every supplementary one."""

    def describe(self) -> str:
        return f"uid {self.uid} ({_user_name(self.uid, 'no user name')}, pid {self.pid})"


def peer_of(sock: socket.socket) -> Peer:
    """The credentials of the peer of a connected Unix socket."""
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return Peer(pid, uid, gid, frozenset({gid}) | _peer_groups(sock, pid, uid, gid))


def _peer_groups(sock: socket.socket, pid: int, uid: int, gid: int) -> frozenset[int]:
    for size in (4 * 256, 4 * 65536):
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:  # ERANGE: more groups than fit; ENOPROTOOPT: an older kernel
            if exc.errno == errno.ERANGE:
                continue
            break
        return frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
    return proc_groups(pid, uid, gid)


def proc_groups(pid: int, uid: int, gid: int) -> frozenset[int]:
    """Supplementary groups from ``/proc/PID/status``; none if that pid is gone or is now
    another process (its real uid or gid differ), so a reused pid never lends its groups."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return frozenset()
    try:
        uids, gids = fields["Uid"].split(), fields["Gid"].split()
        if int(uids[1]) != uid or int(gids[1]) != gid:  # effective ids, as SO_PEERCRED gives
            return frozenset()
        return frozenset(int(word) for word in fields["Groups"].split())
    except (KeyError, IndexError, ValueError):
        return frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    role: Role
    access: Access | None
    """None: the command is not in ``COMMANDS``."""
    refusal: str = ""
    """Why the command is refused; empty when it is allowed."""

    @property
    def allowed(self) -> bool:
        return not self.refusal


def _group_gid(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


@dataclass(slots=True)
class AccessPolicy:
    """The rules above, with the ha.cf values they depend on read when needed (SIGHUP)."""

    readonly_group: Callable[[], str | None] = lambda: None
    secrets: Callable[[], set[str]] = set
    daemon_uid: int = field(default_factory=os.geteuid)
    lookup_gid: Callable[[str], int | None] = field(default=_group_gid)
    _gids: dict[str, tuple[int | None, float]] = field(default_factory=dict)

    def role(self, peer: Peer) -> Role:
        if peer.uid in (0, self.daemon_uid):
            return Role.FULL
        full = self._gid(FULL_GROUP)
        if full is not None and full in peer.groups:
            return Role.FULL
        name = self.readonly_group()
        readers = self._gid(name) if name else None
        if readers is not None and readers in peer.groups:
            return Role.READ_ONLY
        return Role.NONE

    def decide(self, peer: Peer, command: str, role: Role | None = None) -> Decision:
        role = self.role(peer) if role is None else role
        access = COMMANDS.get(command)
        who = peer.describe()
        if access is None:
            return Decision(role, None, f"command {command!r} has no access class; nobody may run it")
        if role is Role.FULL:
            return Decision(role, access)
        if role is Role.READ_ONLY and access is READ:
            return Decision(role, access)
        if role is Role.READ_ONLY:
            return Decision(
                role,
                access,
                f"{who} may only read (group {self.readonly_group()}, api_readonly_group in ha.cf): "
                f"{command} {_what(command)}; run it as root or as a member of group {FULL_GROUP}",
            )
        readers = self.readonly_group()
        return Decision(
            role,
            access,
            f"{who} may not use the hacluster API: run hacrm as root or as a member of group {FULL_GROUP}"
            + (f", or of group {readers} to read status, history and explanations" if readers else ""),
        )

    def redactor(self) -> Redactor:
        """What read-only callers' answers pass through."""
        return Redactor(self.secrets())

    def _gid(self, name: str) -> int | None:
        now = time.monotonic()
        cached = self._gids.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        gid = self.lookup_gid(name)
        self._gids[name] = (gid, now + GROUP_CACHE_S)
        return gid


def _what(command: str) -> str:
    return "acts outside the daemon" if command in ("report", "stonith_test") else "changes the cluster"


def _user_name(uid: int, unknown: str = "-") -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return unknown


def audit_change(peer: Peer, command: str, request: Mapping[str, Any], outcome: str) -> None:
    """The one audit line of a change request that was allowed."""
    logger.info(
        "api change uid=%d user=%s pid=%d command=%s args=%s outcome=%s",
        peer.uid,
        _user_name(peer.uid),
        peer.pid,
        command,
        audit_args(request),
        outcome,
    )


def audit_refusal(peer: Peer, command: str, role: Role) -> None:
    logger.warning(
        "api refused uid=%d user=%s pid=%d command=%s role=%s",
        peer.uid,
        _user_name(peer.uid),
        peer.pid,
        command,
        role.value,
    )


def audit_args(request: Mapping[str, Any]) -> str:
    """A request's arguments for the audit line: secrets hidden, long texts as their size."""
    shown: dict[str, Any] = {}
    for name, value in request.items():
        if name == "command":
            continue
        if isinstance(value, str) and len(value) > AUDIT_VALUE_CHARS:
            value = f"<{len(value)} characters>"
        shown[name] = value
    return Redactor()(json.dumps(shown, sort_keys=True, separators=(",", ":"), default=str))


def api_access(daemon: Daemon) -> AccessPolicy:
    """The policy of a running daemon: its ha.cf's ``api_readonly_group`` and its secrets."""
    return AccessPolicy(
        readonly_group=lambda: daemon.config.api_readonly_group,
        secrets=lambda: known_secrets(daemon),
    )
