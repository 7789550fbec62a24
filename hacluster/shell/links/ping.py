"""The ping medium: ICMP echoes to ping nodes (``ping`` / ``ping_group`` / ``ping6`` in ha.cf).

Theory of operation: on every ``SendPings`` effect the daemon calls ``send_pings``, which
sends one echo request to every address of every ping node, all with this process's
identifier and each with the next sequence number.  The sequence number is remembered with
its (ping node, address) in a bounded table; a reply whose sequence number (and, on a raw
socket, identifier) and source address match an entry is reported through
``deliver_reply(node, address)``, which the daemon turns into a ``PingReplied`` input.  The
core decides liveness (``deadping``); this module only counts.

Unlike Heartbeat we do not carry a signed status message in the echo payload: the reply is
matched to a request we sent, which is what the core needs.

Socket: a raw ICMP socket when we may (root, CAP_NET_RAW), otherwise a kernel "ping socket"
(SOCK_DGRAM, IPPROTO_ICMP), allowed where ``net.ipv4.ping_group_range`` covers our group;
the kernel then chooses the identifier and shows us only our own replies.  IPv6 addresses
(``ping6``) get ICMPv6 echoes (types 128/129) on a second socket of the same kind; the
kernel computes ICMPv6 checksums itself and a raw ICMPv6 socket delivers no IP header.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hacluster.core.ids import NodeName
from hacluster.core.settings import PingNode
from hacluster.shell.links.base import ErrorLog, LinkOpenError

logger = logging.getLogger(__name__)

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
MAX_OUTSTANDING = 1024
"""Unanswered requests remembered; older ones are forgotten (their replies count as stray)."""
PAYLOAD = b"hacluster ping node check"
READ_BYTES = 2048


@dataclass(frozen=True, slots=True)
class PingCounters:
    sent: int = 0
    replies: int = 0
    send_errors: int = 0
    receive_errors: int = 0
    stray: int = 0
    """Echo replies with our identifier that match no outstanding request."""
    outstanding: int = 0
    raw_socket: bool = False
    last_error: str | None = None


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) over ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int, payload: bytes, *, ipv6: bool = False) -> bytes:
    """An echo request; for ICMPv6 the checksum field stays 0: the kernel fills it in."""
    if ipv6:
        return struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, identifier, sequence) + payload
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, identifier, sequence)
    checksum = icmp_checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum, identifier, sequence) + payload


def _family_of(address: str) -> socket.AddressFamily:
    try:
        literal = ipaddress.ip_address(address)
    except ValueError:
        return socket.AF_INET  # a host name: resolved over IPv4, as Heartbeat's ping does
    return socket.AF_INET6 if literal.version == 6 else socket.AF_INET


@dataclass(frozen=True, slots=True)
class _Request:
    node: NodeName
    address: str
    """As configured; reported back in ``deliver_reply``."""
    resolved: str


class PingLink:
    """Sends echoes to ping nodes and reports which addresses answered."""

    def __init__(
        self,
        ping_nodes: tuple[PingNode, ...],
        deliver_reply: Callable[[NodeName, str], None],
        *,
        raw: bool | None = None,
    ) -> None:
        """``raw``: None tries a raw socket and falls back to a ping socket; True/False forces one."""
        self.ping_nodes = ping_nodes
        self._deliver_reply: Callable[[NodeName, str], None] | None = deliver_reply
        self._want_raw = raw
        self._socks: dict[socket.AddressFamily, socket.socket] = {}
        self._raw_by_family: dict[socket.AddressFamily, bool] = {}
        self._raw = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._identifier = os.getpid() & 0xFFFF
        self._sequence = 0
        self._outstanding: collections.OrderedDict[int, _Request] = collections.OrderedDict()
        self._targets: list[tuple[NodeName, str, str]] = []
        self._sent = 0
        self._replies = 0
        self._send_errors = 0
        self._receive_errors = 0
        self._stray = 0
        self._last_error: str | None = None
        self._send_log = ErrorLog("ping", "send")

    async def open(self) -> None:
        assert not self._socks, "open() called twice"
        families = {_family_of(a) for node in self.ping_nodes for a in node.addresses} or {socket.AF_INET}
        try:
            for family in sorted(families):
                self._socks[family] = self._make_socket(family)
        except BaseException:
            for sock in self._socks.values():
                sock.close()
            self._socks.clear()
            raise
        self._raw = all(self._raw_by_family.values())
        self._loop = asyncio.get_running_loop()
        self._targets = await self._resolve()
        for family, sock in self._socks.items():
            self._loop.add_reader(sock.fileno(), self._on_readable, family)
        logger.info(
            "ping link open raw_socket=%s targets=%s",
            self._raw,
            ",".join(f"{node}={address}" for node, address, _ in self._targets) or "-",
        )

    def _make_socket(self, family: socket.AddressFamily) -> socket.socket:
        errors = []
        protocol = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
        if self._want_raw is not False:
            try:
                sock = socket.socket(family, socket.SOCK_RAW, protocol)
            except OSError as exc:
                errors.append(f"raw socket: {exc.strerror}")
            else:
                self._raw_by_family[family] = True
                sock.setblocking(False)
                return sock
        if self._want_raw is not True:
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM, protocol)
            except OSError as exc:
                errors.append(f"ping socket: {exc.strerror}")
            else:
                self._raw_by_family[family] = False
                sock.setblocking(False)
                return sock
        kind = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
        raise LinkOpenError(
            f"cannot send {kind} echoes for ping nodes ({'; '.join(errors)}); run as root, grant "
            "CAP_NET_RAW, or include this group in sysctl net.ipv4.ping_group_range"
        )

    async def _resolve(self) -> list[tuple[NodeName, str, str]]:
        """(node, configured address, IP address) for every address that resolves."""
        assert self._loop is not None
        targets = []
        for node in self.ping_nodes:
            for address in node.addresses:
                try:
                    infos = await self._loop.getaddrinfo(address, None, family=_family_of(address))
                except OSError as exc:
                    logger.warning(
                        "ping address unresolved node=%s address=%s error=%s", node.name, address, exc
                    )
                    continue
                targets.append((node.name, address, str(infos[0][4][0])))
        return targets

    def send_pings(self) -> None:
        if not self._socks:
            return
        for node, address, resolved in self._targets:
            family = _family_of(resolved)
            sock = self._socks.get(family)
            if sock is None:
                continue
            self._sequence = (self._sequence + 1) & 0xFFFF
            self._outstanding.pop(self._sequence, None)
            self._outstanding[self._sequence] = _Request(node, address, resolved)
            while len(self._outstanding) > MAX_OUTSTANDING:
                self._outstanding.popitem(last=False)
            packet = echo_request(self._identifier, self._sequence, PAYLOAD, ipv6=family == socket.AF_INET6)
            try:
                sock.sendto(packet, (resolved, 0))
            except OSError as exc:
                self._send_errors += 1
                self._last_error = f"to {resolved}: {exc.strerror or exc}"
                self._send_log.report(self._last_error)
            else:
                self._sent += 1

    def _on_readable(self, family: socket.AddressFamily) -> None:
        sock = self._socks.get(family)
        while sock is not None and self._deliver_reply is not None:
            try:
                data, source = sock.recvfrom(READ_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self._receive_errors += 1
                self._last_error = f"receive: {exc.strerror or exc}"
                return
            self._on_packet(data, str(source[0]), family)

    def _on_packet(self, data: bytes, source: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        assert self._deliver_reply is not None
        raw = self._raw_by_family.get(family, False)
        ipv6 = family == socket.AF_INET6
        if raw and not ipv6:
            if len(data) < 20:
                return
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 8:
            return
        kind, _code, _checksum, identifier, sequence = struct.unpack_from("!BBHHH", data)
        if kind != (ICMP6_ECHO_REPLY if ipv6 else ICMP_ECHO_REPLY):
            return  # echo requests to us, unreachables, neighbour discovery: not ours to judge
        if raw and identifier != self._identifier:
            return  # another process's ping
        if ipv6:
            source = source.partition("%")[0]
        request = self._outstanding.get(sequence)
        if request is None or request.resolved != source:
            self._stray += 1
            return
        del self._outstanding[sequence]
        self._replies += 1
        self._deliver_reply(request.node, request.address)

    async def close(self) -> None:
        """Stop listening; async like ``Link.close`` so the daemon closes every medium alike."""
        self._deliver_reply = None
        if not self._socks:
            return
        for sock in self._socks.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()
        self._outstanding.clear()
        logger.info("ping link closed")

    def statistics(self) -> PingCounters:
        return PingCounters(
            sent=self._sent,
            replies=self._replies,
            send_errors=self._send_errors,
            receive_errors=self._receive_errors,
            stray=self._stray,
            outstanding=len(self._outstanding),
            raw_socket=self._raw,
            last_error=self._last_error,
        )
