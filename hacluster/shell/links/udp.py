"""UDP links: ``bcast``, ``mcast``, ``ucast``, ``mcast6`` and ``ucast6`` media on one interface.

Theory of operation: each link owns one datagram socket, bound to the link's port and
pinned to its interface with SO_BINDTODEVICE (or bound to ``spec.bind_address`` when one is
given, which needs no privilege and lets several nodes share the loopback interface).  The
same socket receives, through an asyncio ``DatagramProtocol``, and sends.  Sends go straight
to the non-blocking socket rather than through the transport's buffer, so each failure is
attributed to the send side and counted, and nothing piles up behind a dead interface: a
heartbeat that cannot leave now is stale by the next one.

Destinations: bcast sends to the interface's broadcast address (SIOCGIFBRDADDR, looked up at
open and again after a send error, since an operator may re-address the interface); mcast to
``(group, port)``; ucast to every target, minus the addresses known to be our own (a shared
ha.cf lists every node).  Target names are resolved at open; a name that does not resolve is
logged and retried every ``RESOLVE_RETRY_MS`` and does not stop the link.

IPv6 (``ucast6``, ``mcast6``, as Heartbeat's plugins): an AF_INET6 socket bound to
``[::]:port`` with IPV6_V6ONLY, so it shares the port with an IPv4 link on the same
interface, and pinned to the interface like the others.  ucast6 targets are numeric (a
link-local one carries the interface as its scope); this node's own addresses, skipped as
with ucast, come from /proc/net/if_inet6 of the daemon's network namespace.  mcast6 joins
its group on the interface and sends with the configured hop limit and loop flag.

Every datagram received, our own broadcasts included, goes to ``deliver`` unparsed: the core
authenticates and drops its own packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import logging
import socket
import struct
import time

from hacluster.core.settings import LinkKind, LinkSpec
from hacluster.shell.links.base import Deliver, Link, LinkOpenError

logger = logging.getLogger(__name__)

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SIOCGIFADDR = 0x8915
SIOCGIFBRDADDR = 0x8919
SIOCGIFINDEX = 0x8933

RECEIVE_BUFFER_BYTES = 4 << 20
SO_RCVBUFFORCE = 33
MAX_DATAGRAM_BYTES = 65_507
"""The largest UDP payload IPv4 can carry; a bigger message is dropped and counted."""
RESOLVE_RETRY_MS = 10_000


def _ifreq(device: str) -> bytes:
    return struct.pack("256s", device.encode()[:15])


def interface_address(sock: socket.socket, device: str, request: int) -> str | None:
    """An IPv4 address of ``device`` (SIOCGIFADDR or SIOCGIFBRDADDR), None if it has none.

    Asked through ``sock`` so the answer comes from the socket's own network namespace.
    """
    try:
        reply = fcntl.ioctl(sock.fileno(), request, _ifreq(device))
    except OSError:
        return None
    return socket.inet_ntoa(reply[20:24])


def interface_index(sock: socket.socket, device: str) -> int:
    reply = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, _ifreq(device))
    index: int = struct.unpack_from("i", reply, 16)[0]
    return index


def interface_ipv6_addresses(device: str) -> set[str]:
    """The IPv6 addresses on ``device`` (compressed form), from this namespace's /proc."""
    addresses: set[str] = set()
    try:
        with open("/proc/net/if_inet6") as table:
            for row in table:
                words = row.split()
                if len(words) >= 6 and words[5] == device:
                    addresses.add(ipaddress.IPv6Address(int(words[0], 16)).compressed)
    except OSError:
        pass
    return addresses


def _ipv6_destination(target: str, port: int, device: str) -> tuple[str, int, int, int]:
    """``(address, port, flowinfo, scope)`` for sendto; link-local ones need the interface."""
    address, _, scope = target.partition("%")
    scope_id = socket.if_nametoindex(scope or device) if ipaddress.IPv6Address(address).is_link_local else 0
    return (ipaddress.IPv6Address(address).compressed, port, 0, scope_id)


def _is_ipv4_literal(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return False
    return True


_UDP_KINDS = frozenset([LinkKind.BCAST, LinkKind.MCAST, LinkKind.UCAST, LinkKind.MCAST6, LinkKind.UCAST6])

RECEIVE_DATAGRAM_BYTES = 65_535
READS_PER_WAKEUP = 64
"""Datagrams read per readiness event.  asyncio's datagram transport reads one per event
loop turn, which a flood of garbage outpaces: the socket buffer then overflows and the
kernel drops heartbeats with the garbage.  Draining in batches keeps up (bounded, so one
busy link cannot starve the others or the timers)."""


class UdpLink(Link):
    """A bcast, mcast or ucast medium."""

    def __init__(self, spec: LinkSpec) -> None:
        assert spec.kind in _UDP_KINDS, spec.kind
        assert 0 < spec.port < 65536, spec.port
        super().__init__(spec)
        self._sock: socket.socket | None = None
        self._reading = False
        self._deliver: Deliver | None = None
        self._destinations: list[tuple[str, int] | tuple[str, int, int, int]] = []
        self._unresolved: list[str] = []
        self._resolve_due_ms = 0
        self._resolving: asyncio.Task[None] | None = None
        self._local_addresses: set[str] = set()

    # --- opening -------------------------------------------------------------------------

    async def open(self, deliver: Deliver) -> None:
        assert self._sock is None, "open() called twice"
        sock = self._make_socket()
        try:
            self._sock = sock
            self._resolve_fixed_destinations()
            if self.spec.kind is LinkKind.UCAST:
                await self._resolve_targets(self.spec.targets)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)
        except BaseException:
            self._sock = None
            sock.close()
            raise
        self._reading = True
        self._deliver = deliver
        logger.info(
            "link open link=%s kind=%s device=%s port=%d destinations=%s",
            self.name,
            self.spec.kind.value,
            self.spec.device,
            self.spec.port,
            ",".join(f"{d[0]}:{d[1]}" for d in self._destinations) or "-",
        )

    def _make_socket(self) -> socket.socket:
        spec = self.spec
        ipv6 = spec.kind.is_ipv6
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if ipv6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            with contextlib.suppress(OSError):  # root may go past net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)
            if spec.kind is LinkKind.BCAST:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                # Heartbeat sets SO_DONTROUTE too: the frame must leave on this interface.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_DONTROUTE, 1)
            if not spec.bind_address:
                self._bind_to_device(sock)
            if spec.kind is LinkKind.MCAST:
                self._join_group(sock)
            elif spec.kind is LinkKind.MCAST6:
                self._join_group6(sock)
            sock.bind(("::" if ipv6 else spec.bind_address, spec.port))
        except LinkOpenError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            where = f"{spec.bind_address or '*'}:{spec.port}"
            raise LinkOpenError(
                f"link {spec.name}: cannot bind UDP {where} on {spec.device}: {exc.strerror}; "
                "check that no other daemon uses the port and the address exists"
            ) from exc
        return sock

    def _bind_to_device(self, sock: socket.socket) -> None:
        device = self.spec.device
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
        except OSError as exc:
            if exc.errno == errno.EPERM and device == "lo":
                # Loopback demos run unprivileged; lo carries nothing but local traffic anyway.
                logger.info("link not pinned to lo (no CAP_NET_RAW) link=%s", self.name)
                return
            if exc.errno == errno.ENODEV:
                fix = "check the interface name with `ip link`"
            elif exc.errno == errno.EPERM:
                fix = "run as root (SO_BINDTODEVICE needs CAP_NET_RAW) or give a bind address"
            else:
                fix = "check the interface"
            raise LinkOpenError(
                f"link {self.name}: cannot bind to interface {device!r}: {exc.strerror}; {fix}"
            ) from exc

    def _join_group(self, sock: socket.socket) -> None:
        spec = self.spec
        assert len(spec.targets) == 1, "mcast needs exactly one group"
        group = spec.targets[0]
        try:
            index = interface_index(sock, spec.device)
            mreqn = struct.pack(
                "4s4si", socket.inet_aton(group), socket.inet_aton(spec.bind_address or "0.0.0.0"), index
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, spec.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(spec.loop))
        except OSError as exc:
            raise LinkOpenError(
                f"link {spec.name}: cannot join multicast group {group} on {spec.device}: "
                f"{exc.strerror}; check the interface exists, is up and the group is 224.0.0.0/4"
            ) from exc

    def _join_group6(self, sock: socket.socket) -> None:
        spec = self.spec
        assert len(spec.targets) == 1, "mcast6 needs exactly one group"
        group = spec.targets[0]
        try:
            index = socket.if_nametoindex(spec.device)
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, spec.ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(spec.loop))
        except OSError as exc:
            raise LinkOpenError(
                f"link {spec.name}: cannot join IPv6 multicast group {group} on {spec.device}: "
                f"{exc.strerror}; check the interface exists, is up and has an IPv6 link-local address"
            ) from exc

    def _resolve_fixed_destinations(self) -> None:
        """Broadcast or group destination, and our own addresses for the ucast self-skip."""
        sock = self._sock
        assert sock is not None
        spec = self.spec
        if spec.kind is LinkKind.MCAST6:
            self._destinations = [(spec.targets[0], spec.port, 0, socket.if_nametoindex(spec.device))]
            return
        if spec.kind is LinkKind.UCAST6:
            own6 = interface_ipv6_addresses(spec.device)
            self._destinations = []
            for target in spec.targets:
                destination = _ipv6_destination(target, spec.port, spec.device)
                if destination[0] not in own6 and destination not in self._destinations:
                    self._destinations.append(destination)
            return
        own = interface_address(sock, spec.device, SIOCGIFADDR)
        self._local_addresses = {address for address in (own, spec.bind_address) if address}
        if spec.kind is LinkKind.MCAST:
            self._destinations = [(spec.targets[0], spec.port)]
        elif spec.kind is LinkKind.BCAST:
            broadcast = interface_address(sock, spec.device, SIOCGIFBRDADDR)
            if broadcast == "0.0.0.0":
                broadcast = None  # e.g. lo, or an address added without ``brd``
            self._destinations = [(broadcast, spec.port)] if broadcast else []
            if not broadcast:
                self._count_send_error(f"interface {spec.device} has no IPv4 broadcast address yet")

    async def _resolve_targets(self, targets: tuple[str, ...] | list[str]) -> None:
        loop = asyncio.get_running_loop()
        unresolved: list[str] = []
        for target in targets:
            if _is_ipv4_literal(target):
                addresses = [target]
            else:
                try:
                    infos = await loop.getaddrinfo(
                        target, self.spec.port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                    )
                except OSError as exc:
                    logger.warning(
                        "ucast target unresolved link=%s target=%s error=%s retry_ms=%d",
                        self.name,
                        target,
                        exc,
                        RESOLVE_RETRY_MS,
                    )
                    unresolved.append(target)
                    continue
                addresses = [str(info[4][0]) for info in infos[:1]]
            for address in addresses:
                destination = (address, self.spec.port)
                if address not in self._local_addresses and destination not in self._destinations:
                    self._destinations.append(destination)
        self._unresolved = unresolved
        self._resolve_due_ms = time.monotonic_ns() // 1_000_000 + RESOLVE_RETRY_MS

    def _retry_resolution(self) -> None:
        """Called from ``send``: look again for a lost broadcast address or unresolved names."""
        sock = self._sock
        assert sock is not None
        if self.spec.kind is LinkKind.BCAST and not self._destinations:
            self._resolve_fixed_destinations()
        if not self._unresolved or self._resolving is not None:
            return
        if time.monotonic_ns() // 1_000_000 < self._resolve_due_ms:
            return
        task = asyncio.get_running_loop().create_task(self._resolve_targets(self._unresolved))
        task.add_done_callback(self._resolution_done)
        self._resolving = task

    def _resolution_done(self, task: asyncio.Task[None]) -> None:
        self._resolving = None

    # --- traffic -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock, deliver = self._sock, self._deliver
        if sock is None or deliver is None:
            return
        for _ in range(READS_PER_WAKEUP):
            try:
                data = sock.recv(RECEIVE_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors reported on the socket
                self._count_receive_error(f"{type(exc).__name__}: {exc}")
                return
            self._received += 1
            deliver(self.name, data)

    def send(self, data: bytes, classic: bytes) -> None:
        sock = self._sock
        if sock is None or not self._reading:
            self._count_send_error("link is not open")
            return
        if len(data) > MAX_DATAGRAM_BYTES:
            self._oversize += 1
            self._count_send_error(f"message of {len(data)} bytes exceeds {MAX_DATAGRAM_BYTES}")
            return
        self._retry_resolution()
        if not self._destinations:
            if self.spec.kind in (LinkKind.UCAST, LinkKind.UCAST6) and not self._unresolved:
                return  # every target is this node itself: nothing to send, nothing wrong
            self._count_send_error("no destination address (interface unaddressed or names unresolved)")
            return
        for destination in self._destinations:
            try:
                sock.sendto(data, destination)
            except BlockingIOError:
                self._count_send_error(f"send buffer full, dropped to {destination[0]}")
            except OSError as exc:
                self._count_send_error(f"to {destination[0]}: {exc.strerror or exc}")
                if self.spec.kind is LinkKind.BCAST:
                    self._destinations = []  # look the broadcast address up again next time
                    break
            else:
                self._sent += 1

    async def close(self) -> None:
        self._deliver = None
        if self._resolving is not None:
            self._resolving.cancel()
            self._resolving = None
        if self._reading and self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._reading = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            logger.info("link closed link=%s", self.name)
