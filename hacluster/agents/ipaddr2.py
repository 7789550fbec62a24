"""IPaddr2: a floating IPv4 or IPv6 address, added with netlink and announced to the link.

Theory of operation: the daemon calls this agent in-process right after declaring a peer
dead, so start does no subprocess and no interpreter start: one netlink request through
pyroute2 (a few milliseconds), then the first gratuitous ARP from an AF_PACKET socket, and
the remaining ARPs from a background thread (or, when run as a script, a detached child
process, so the script can exit at once as resource-agents' send_arp does).

IPv6 addresses are announced with unsolicited neighbour advertisements (RFC 4861 §7.2.6:
ICMPv6 type 136 to ff02::1, Override set, the interface's MAC as target link-layer address,
hop limit 255) instead of gratuitous ARP.  A new IPv6 address normally stays *tentative*
for about a second while duplicate address detection runs, and a tentative address neither
sends nor receives; so by default (``nodad=true``) it is added with IFA_F_NODAD and is usable
the moment start returns.  That is safe for a cluster address: the cluster itself makes
sure that the previous holder has stopped or been fenced.  With ``nodad=false`` start adds
it normally and waits until DAD has finished, failing if DAD found the address in use.

Monitor answers 0 only when the address is on ``nic`` *and* the link is up: a VIP on a dead
link serves nobody, and 1 lets the manager move it.  Probes follow the OCF probe rule: on a
node where ``nic`` is missing or nothing is configurable, they answer 7, never 2 or 6.

Hidden key ``HA_NETNS`` (environment, not a parameter): the name of a network namespace
under /run/netns to act in.  Netlink goes through ``IPRoute(netns=…)``; ARP sockets are made
by a short-lived thread that joined that namespace (``setns`` affects only its thread).  Tests
use it to drive the agent in-process against a namespace of their own; the daemon, which
already lives in its node's namespace, never sets it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import logging
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from hacluster.agents.ocf import RC, Action, Agent, AgentError, Context, Parameter

if TYPE_CHECKING:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

ETH_P_ARP: Final = 0x0806
ETH_P_IP: Final = 0x0800
ICMP6_NEIGHBOR_ADVERT: Final = 136
ND_OPT_TARGET_LINKADDR: Final = 2
NA_FLAG_OVERRIDE: Final = 0x20000000
ALL_NODES: Final = "ff02::1"
IFA_F_NODAD: Final = 0x02
IFA_F_DADFAILED: Final = 0x08
IFA_F_TENTATIVE: Final = 0x40
DAD_WAIT_MS: Final = 10_000
"""Longest wait for DAD to finish with nodad=false (the kernel's default takes about 1-2 s)."""
DAD_POLL_MS: Final = 20
ARPOP_REQUEST: Final = 1
ARPOP_REPLY: Final = 2
IFF_UP: Final = 0x1
IFF_LOOPBACK: Final = 0x8
IFF_NOARP: Final = 0x80
CLONE_NEWNET: Final = 0x40000000
RT_TABLE_MAIN: Final = 254
RTN_UNICAST: Final = 1
LIFETIME_FOREVER: Final = 0xFFFFFFFF
LINK_UP_STATES: Final = frozenset(["UP", "UNKNOWN"])
"""operstate UNKNOWN is what lo, dummy and tun report while administratively up."""

_BROADCAST_MAC: Final = b"\xff" * 6
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Background ARP senders of this process, so stop can end the burst it no longer wants.
_garp_lock = threading.Lock()
_garp_stops: dict[tuple[str | None, str, str], threading.Event] = {}


class _Target(NamedTuple):
    """Where the address goes, after defaults and auto-detection."""

    ip: str
    nic: str
    ifindex: int
    version: int
    """4 or 6."""
    prefixlen: int
    broadcast: str | None
    label: str | None
    flags: int
    operstate: str
    mac: bytes
    """The interface's hardware address (empty when it has none, e.g. a tun)."""

    @property
    def family(self) -> int:
        return socket.AF_INET6 if self.version == 6 else socket.AF_INET


def _setns(netns: str) -> None:
    """Move the *calling thread* into network namespace ``netns`` (/run/netns/<name>)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _packet_socket(nic: str, netns: str | None, protocol: int = ETH_P_ARP) -> socket.socket:
    """An AF_PACKET socket bound to ``nic`` (in ``netns`` when given) for ``protocol`` frames.

    (A socket for ETH_P_ALL also sees the frames this host sends; tests capture with one.)
    """

    def make() -> socket.socket:
        # Made for no protocol and given one by ``bind``: a socket made for a protocol is
        # hooked on every interface at once, and binding it then unhooks it, which waits for
        # an RCU grace period (synchronize_net, 8-16 ms measured) on the takeover path.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.bind((nic, protocol))
        except BaseException:
            sock.close()
            raise
        return sock

    return _socket_in(netns, make)


def _socket_in(netns: str | None, make: Callable[[], socket.socket]) -> socket.socket:
    """``make()`` run in network namespace ``netns`` (a throw-away thread joins it), or here."""
    if netns is None:
        return make()
    box: list[socket.socket | BaseException] = []

    def in_namespace() -> None:
        try:
            _setns(netns)
            box.append(make())
        except BaseException as exc:
            box.append(exc)

    # A throw-away thread: its namespace dies with it, the socket keeps the one it was made in.
    worker = threading.Thread(target=in_namespace, name=f"garp-setns-{netns}")
    worker.start()
    worker.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def garp_frame(mac: bytes, ip: str, *, reply: bool = False) -> bytes:
    """An Ethernet broadcast frame carrying an unsolicited ARP for ``ip`` from ``mac``."""
    assert len(mac) == 6, mac
    spa = socket.inet_aton(ip)
    tha = _BROADCAST_MAC if reply else b"\x00" * 6
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, ARPOP_REPLY if reply else ARPOP_REQUEST)
    arp += mac + spa + tha + spa
    return _BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP) + arp


def send_garp(
    nic: str,
    ip: str,
    count: int,
    interval_ms: int,
    *,
    netns: str | None = None,
    reply: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Send ``count`` gratuitous ARPs for ``ip`` from ``nic``'s MAC, ``interval_ms`` apart.

    Blocking: the daemon calls it from a worker thread, e.g. periodically while a VIP is
    active so switches and peers that missed the first burst learn the new MAC.  Returns how
    many frames were sent (fewer when ``stop`` is set); raises ``OSError`` on socket errors.
    """
    assert count >= 0, count
    assert interval_ms >= 0, interval_ms
    if count == 0:
        return 0
    sock = _packet_socket(nic, netns)
    try:
        mac = sock.getsockname()[4]
        if len(mac) != 6:
            raise OSError(errno.EINVAL, f"{nic} has no Ethernet address; cannot send ARP")
        frame = garp_frame(mac, ip, reply=reply)
        return _spaced(count, interval_ms, stop, lambda: sock.send(frame))
    finally:
        # Closing a packet socket waits for an RCU grace period too (about 16 ms): a thread
        # does it, so that a start returns, and the takeover goes on, once the frames are out.
        threading.Thread(target=sock.close, name="garp-close", daemon=True).start()


def _spaced(count: int, interval_ms: int, stop: threading.Event | None, send: Callable[[], object]) -> int:
    """Call ``send`` ``count`` times, ``interval_ms`` apart; fewer once ``stop`` is set."""
    sent = 0
    for i in range(count):
        if i > 0:
            if stop is None:
                time.sleep(interval_ms / 1000)
            elif stop.wait(interval_ms / 1000):
                break
        send()
        sent += 1
    return sent


def neighbour_advert(mac: bytes, ip: str) -> bytes:
    """The ICMPv6 body of an unsolicited neighbour advertisement for ``ip`` (checksum 0: the
    kernel fills it in on an ICMPv6 raw socket)."""
    assert len(mac) == 6, mac
    target = socket.inet_pton(socket.AF_INET6, ip)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac
    return struct.pack("!BBHI", ICMP6_NEIGHBOR_ADVERT, 0, 0, NA_FLAG_OVERRIDE) + target + option


def send_unsolicited_na(
    nic: str,
    ip: str,
    mac: bytes,
    count: int,
    interval_ms: int,
    *,
    netns: str | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Send ``count`` unsolicited neighbour advertisements for ``ip`` to all nodes on ``nic``.

    The IPv6 counterpart of ``send_garp``: from the address itself, hop limit 255 (receivers
    drop neighbour discovery with any other), Override set so caches take the new MAC.
    """
    assert count >= 0, count
    if count == 0:
        return 0
    index = socket.if_nametoindex(nic) if netns is None else 0

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, nic.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            ifindex = socket.if_nametoindex(nic)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            sock.bind((ip, 0, 0, ifindex))
        except BaseException:
            sock.close()
            raise
        return sock

    with contextlib.closing(_socket_in(netns, make)) as sock:
        if not index:
            index = sock.getsockname()[3]
        frame = neighbour_advert(mac, ip)
        return _spaced(count, interval_ms, stop, lambda: sock.sendto(frame, (ALL_NODES, 0, 0, index)))


def _mac(text: object) -> bytes:
    try:
        mac = bytes.fromhex(str(text).replace(":", ""))
    except ValueError:
        return b""
    return mac if len(mac) == 6 else b""


def _ipr(env: Mapping[str, str]) -> IPRoute:
    from pyroute2 import IPRoute  # lazy: 0.3 s to import, and meta-data must not need it

    netns = env.get("HA_NETNS") or None
    return IPRoute(netns=netns) if netns else IPRoute()


@contextlib.contextmanager
def _netlink(env: Mapping[str, str]) -> Iterator[IPRoute]:
    ipr = _ipr(env)
    try:
        yield ipr
    finally:
        ipr.close()


def _prefixlen(text: str, version: int = 4) -> int:
    """CIDR bits from ``24`` or ``255.255.255.0`` (IPv6: 0..128); ``AgentError`` (6) otherwise."""
    text = text.strip()
    if version == 6:
        if not text.isdigit() or not 0 <= int(text) <= 128:
            raise AgentError(RC.ERR_CONFIGURED, f"cidr_netmask={text!r} must be 0..128 for an IPv6 address")
        return int(text)
    try:
        bits = int(text) if text.isdigit() else ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        bits = -1
    if not 0 <= bits <= 32:
        raise AgentError(RC.ERR_CONFIGURED, f"cidr_netmask={text!r} must be 0..32 or a dotted netmask")
    return bits


class IPaddr2Agent(Agent):
    name = "IPaddr2"
    version = "1.0"
    shortdesc = "Manages a virtual IPv4 or IPv6 address"
    longdesc = (
        "Adds a floating IPv4 or IPv6 address to an interface with netlink and announces it with "
        "gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6), so the cluster can "
        "move it between nodes. Monitor succeeds only when the address is configured and the "
        "interface's link is up."
    )
    parameters = (
        Parameter(
            "ip",
            "IP address",
            "The virtual IPv4 or IPv6 address, e.g. 192.168.1.10 or 2001:db8::10.",
            required=True,
            unique=True,
        ),
        Parameter(
            "nic",
            "Network interface",
            "Base interface to add the address to (not an alias such as eth0:1). Empty: the "
            "interface whose route covers the address.",
        ),
        Parameter(
            "cidr_netmask",
            "CIDR netmask",
            "Prefix length such as 24 (or a dotted netmask). Empty: taken from the route that covers the address.",
        ),
        Parameter(
            "broadcast", "Broadcast address", "IPv4 broadcast address; empty: derived from the prefix."
        ),
        Parameter(
            "iflabel",
            "Interface label",
            "Label suffix: the address is labelled nic:iflabel (15 characters at most; IPv4 only).",
        ),
        Parameter(
            "arp_interval",
            "ARP interval (ms)",
            "Milliseconds between gratuitous ARPs (IPv6: neighbour advertisements).",
            "integer",
            "200",
        ),
        Parameter(
            "arp_count",
            "ARP count",
            "Number of gratuitous ARPs (IPv6: unsolicited neighbour advertisements) sent on start.",
            "integer",
            "5",
        ),
        Parameter(
            "arp_count_refresh",
            "ARP count on monitor",
            "Number of gratuitous ARPs re-sent on each successful monitor (0: none).",
            "integer",
            "0",
        ),
        Parameter(
            "arp_bg", "ARP in background", "Send all ARPs but the first in the background.", "boolean", "true"
        ),
        Parameter(
            "nodad",
            "No duplicate address detection",
            "IPv6: add the address without duplicate address detection, so it is usable at once "
            "(the cluster has already made sure the previous holder is stopped or fenced). false: "
            "run DAD and wait until it has finished (about a second), failing if the address is "
            "in use elsewhere.",
            "boolean",
            "true",
        ),
        Parameter(
            "preferred_lft",
            "Preferred lifetime",
            "Preferred lifetime of the address in seconds, or forever. 0 marks it deprecated, "
            "so the kernel does not pick it as the source of outgoing connections.",
            default="forever",
        ),
    )
    actions = (
        Action("start", 20_000),
        Action("stop", 20_000),
        Action("status", 20_000, interval_ms=10_000),
        Action("monitor", 20_000, interval_ms=10_000, depth=0),
        Action("meta-data", 5_000),
        Action("validate-all", 20_000),
    )

    # ------------------------------------------------------------------ configuration

    def _ip(self, ctx: Context) -> IPAddress:
        text = ctx.param("ip").strip()
        if not text:
            raise AgentError(RC.ERR_CONFIGURED, "parameter ip is required")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise AgentError(RC.ERR_CONFIGURED, f"ip={text!r} is not an IPv4 or IPv6 address") from None
        if address.is_multicast or address.is_unspecified or address.is_loopback:
            raise AgentError(RC.ERR_CONFIGURED, f"ip={text!r} is not a unicast address")
        if address.version == 6 and address.is_link_local:
            raise AgentError(RC.ERR_CONFIGURED, f"ip={text!r} is link-local; use a global or ULA address")
        return address

    def _check_arp_params(self, ctx: Context) -> None:
        ctx.integer("arp_interval", minimum=1, maximum=3_600_000)
        ctx.integer("arp_count", minimum=0, maximum=10_000)
        ctx.integer("arp_count_refresh", minimum=0, maximum=10_000)
        ctx.boolean("arp_bg")
        ctx.boolean("nodad")
        lft = ctx.param("preferred_lft").strip()
        if lft != "forever" and not lft.isdigit():
            raise AgentError(
                RC.ERR_CONFIGURED, f"preferred_lft={lft!r} must be a number of seconds or forever"
            )

    def _route_for(self, ipr: IPRoute, address: IPAddress, index: int | None) -> tuple[int, int] | None:
        """(oif, prefixlen) of the longest main-table route covering ``address`` (optionally via ``index``)."""
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        best: tuple[int, int] | None = None
        for route in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
            dst, dst_len, oif = route.get("RTA_DST"), route["dst_len"], route.get("RTA_OIF")
            if route["type"] != RTN_UNICAST or dst is None or dst_len == 0 or oif is None:
                continue
            if index is not None and oif != index:
                continue
            if address in ipaddress.ip_network(f"{dst}/{dst_len}", strict=False) and (
                best is None or dst_len > best[1]
            ):
                best = (oif, dst_len)
        return best

    def _target(self, ctx: Context, ipr: IPRoute) -> _Target:
        """Resolve nic, prefix, broadcast and label; AgentError 6 (bad anywhere) or 2 (bad here)."""
        address = self._ip(ctx)
        ip, version = address.compressed, address.version
        self._check_arp_params(ctx)
        nic = ctx.param("nic").strip()
        if ":" in nic:
            raise AgentError(RC.ERR_CONFIGURED, f"nic={nic!r} must be a base interface, not an alias")
        if nic:
            found = ipr.link_lookup(ifname=nic)
            if not found:
                raise AgentError(RC.ERR_ARGS, f"interface {nic} does not exist on this node")
            index = int(found[0])
            route = self._route_for(ipr, address, index)
        else:
            route = self._route_for(ipr, address, None)
            if route is None:
                raise AgentError(RC.ERR_ARGS, f"no route on this node covers {ip}; set nic and cidr_netmask")
            index = route[0]
        link = ipr.get_links(index)[0]
        nic = str(link.get("IFLA_IFNAME"))
        cidr = ctx.param("cidr_netmask")
        host_bits = 128 if version == 6 else 32
        prefixlen = _prefixlen(cidr, version) if cidr.strip() else (route[1] if route else host_bits)
        broadcast = ctx.param("broadcast").strip() or None
        iflabel = ctx.param("iflabel").strip()
        if version == 6 and (broadcast or iflabel):
            which = "broadcast" if broadcast else "iflabel"
            raise AgentError(RC.ERR_CONFIGURED, f"{which} does not apply to the IPv6 address {ip}; remove it")
        if broadcast is not None:
            try:
                broadcast = str(ipaddress.IPv4Address(broadcast))
            except ValueError:
                raise AgentError(
                    RC.ERR_CONFIGURED, f"broadcast={broadcast!r} is not an IPv4 address"
                ) from None
        elif version == 4 and prefixlen <= 30:
            broadcast = str(ipaddress.IPv4Network(f"{ip}/{prefixlen}", strict=False).broadcast_address)
        label = f"{nic}:{iflabel}" if iflabel else None
        if label is not None and len(label) > 15:
            raise AgentError(
                RC.ERR_CONFIGURED, f"label {label!r} is longer than 15 characters; shorten iflabel"
            )
        return _Target(
            ip,
            nic,
            index,
            version,
            prefixlen,
            broadcast,
            label,
            int(link["flags"]),
            str(link.get("IFLA_OPERSTATE")),
            _mac(link.get("IFLA_ADDRESS")),
        )

    @staticmethod
    def _address_flags(ipr: IPRoute, target: _Target) -> int | None:
        """The address's IFA flags on the interface, or None when it is not there."""
        for a in ipr.get_addr(family=target.family, index=target.ifindex):
            if a.get("IFA_ADDRESS") == target.ip or a.get("IFA_LOCAL") == target.ip:
                return int(a.get("IFA_FLAGS") or a["flags"])
        return None

    @classmethod
    def _has_address(cls, ipr: IPRoute, target: _Target) -> bool:
        return cls._address_flags(ipr, target) is not None

    # ------------------------------------------------------------------ actions

    def validate_all(self, ctx: Context) -> int:
        with _netlink(ctx.env) as ipr:
            self._target(ctx, ipr)
        return RC.SUCCESS

    def start(self, ctx: Context) -> int:
        with _netlink(ctx.env) as ipr:
            target = self._target(ctx, ipr)
            if self._has_address(ipr, target):
                return RC.SUCCESS
            extra: dict[str, Any] = {}
            if target.broadcast:
                extra["broadcast"] = target.broadcast
            if target.label:
                extra["label"] = target.label
            lft = ctx.param("preferred_lft").strip()
            if lft != "forever":
                extra.update(preferred=int(lft), valid=LIFETIME_FOREVER)
            nodad = target.version == 6 and ctx.boolean("nodad")
            if nodad:
                extra["flags"] = IFA_F_NODAD
            from pyroute2 import NetlinkError  # lazy: meta-data must not need pyroute2

            try:
                ipr.addr("add", index=target.ifindex, address=target.ip, prefixlen=target.prefixlen, **extra)
            except NetlinkError as exc:
                raise AgentError(
                    RC.ERR_GENERIC, f"Unable to add {target.ip}/{target.prefixlen} to {target.nic}: {exc}"
                ) from exc
            if target.version == 6 and not nodad:
                self._wait_for_dad(ipr, target)
        logger.info("vip added ip=%s nic=%s prefixlen=%d", target.ip, target.nic, target.prefixlen)
        self._announce(ctx, target, ctx.integer("arp_count"), background=ctx.boolean("arp_bg"))
        return RC.SUCCESS

    def _wait_for_dad(self, ipr: IPRoute, target: _Target) -> None:
        """With nodad=false: wait until the kernel's DAD has finished; fail if it found a twin."""
        deadline = time.monotonic() + DAD_WAIT_MS / 1000
        while True:
            flags = self._address_flags(ipr, target)
            if flags is not None and flags & IFA_F_DADFAILED:
                raise AgentError(
                    RC.ERR_GENERIC,
                    f"duplicate address detection failed for {target.ip} on {target.nic}: another host "
                    "uses it; find it (ip -6 neigh) before starting the address here",
                )
            if flags is not None and not flags & IFA_F_TENTATIVE:
                return
            if time.monotonic() > deadline:
                raise AgentError(
                    RC.ERR_GENERIC, f"{target.ip} on {target.nic} still tentative after {DAD_WAIT_MS} ms"
                )
            time.sleep(DAD_POLL_MS / 1000)

    def stop(self, ctx: Context) -> int:
        with _netlink(ctx.env) as ipr:
            try:
                target = self._target(ctx, ipr)
            except AgentError as exc:
                # Nothing we could have started can exist with this configuration on this node.
                logger.warning("vip stop treated as stopped instance=%s reason=%s", ctx.instance, exc.reason)
                return RC.SUCCESS
            self._cancel_garp(ctx, target)
            if not self._has_address(ipr, target):
                return RC.SUCCESS
            from pyroute2 import NetlinkError  # lazy: meta-data must not need pyroute2

            try:
                ipr.addr("del", index=target.ifindex, address=target.ip, prefixlen=target.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:
                    raise AgentError(
                        RC.ERR_GENERIC, f"Unable to remove IP {target.ip} from {target.nic}: {exc}"
                    ) from exc
            if self._has_address(ipr, target):
                raise AgentError(RC.ERR_GENERIC, f"Unable to remove IP {target.ip} from {target.nic}")
        logger.info("vip removed ip=%s nic=%s", target.ip, target.nic)
        return RC.SUCCESS

    def monitor(self, ctx: Context) -> int:
        with _netlink(ctx.env) as ipr:
            try:
                target = self._target(ctx, ipr)
            except AgentError:
                if ctx.is_probe:
                    return RC.NOT_RUNNING  # a node without the nic cannot be running the VIP
                raise
            flags = self._address_flags(ipr, target)
            if flags is None:
                return RC.NOT_RUNNING
        if flags & IFA_F_DADFAILED:
            raise AgentError(
                RC.ERR_GENERIC, f"{target.ip} on {target.nic}: duplicate address detection failed"
            )
        link_up = bool(target.flags & IFF_UP) and target.operstate in LINK_UP_STATES
        if not link_up:
            raise AgentError(
                RC.ERR_GENERIC, f"{target.ip} is on {target.nic} but its link is down ({target.operstate})"
            )
        refresh = ctx.integer("arp_count_refresh")
        if refresh > 0 and ctx.action == "monitor":
            self._announce(ctx, target, refresh, background=True)
        return RC.SUCCESS

    # ------------------------------------------------------------------ gratuitous ARP

    def _pidfile(self, ctx: Context, target: _Target) -> str:
        return os.path.join(ctx.state_dir, f"IPaddr2-garp-{target.nic}-{target.ip}.pid")

    def _announce(self, ctx: Context, target: _Target, count: int, *, background: bool) -> None:
        """First ARP now, the rest in the background (thread in-process, detached child as a script)."""
        if count <= 0 or target.flags & (IFF_LOOPBACK | IFF_NOARP):
            return
        if target.version == 6 and not target.mac:
            return  # no link-layer address to announce (tun, ...)
        netns = ctx.env.get("HA_NETNS") or None
        interval_ms = ctx.integer("arp_interval")
        try:
            if not background:
                _send_announcements(target, count, interval_ms, netns=netns)
                return
            _send_announcements(target, 1, 0, netns=netns)
        except OSError as exc:
            logger.warning("gratuitous arp failed ip=%s nic=%s error=%s", target.ip, target.nic, exc)
            return
        if count > 1 and ctx.standalone:
            self._garp_detached(ctx, target, count - 1, interval_ms, netns)
        elif count > 1:
            key = (netns, target.nic, target.ip)
            stop = threading.Event()
            with _garp_lock:
                previous = _garp_stops.pop(key, None)
                if previous is not None:
                    previous.set()
                _garp_stops[key] = stop

            def burst() -> None:
                try:
                    stop.wait(interval_ms / 1000)
                    if not stop.is_set():
                        _send_announcements(target, count - 1, interval_ms, netns=netns, stop=stop)
                except OSError as exc:
                    logger.warning("gratuitous arp failed ip=%s nic=%s error=%s", target.ip, target.nic, exc)
                finally:
                    with _garp_lock:
                        if _garp_stops.get(key) is stop:
                            del _garp_stops[key]

            threading.Thread(target=burst, name=f"garp-{target.ip}", daemon=True).start()

    def _garp_detached(
        self, ctx: Context, target: _Target, count: int, interval_ms: int, netns: str | None
    ) -> None:
        """Script mode: a double-forked child sends the rest, so the manager sees start return now."""
        pidfile = self._pidfile(ctx, target)
        os.makedirs(os.path.dirname(pidfile), exist_ok=True)
        first = os.fork()
        if first:
            os.waitpid(first, 0)
            return
        try:  # first child: new session, fork the sender, exit
            os.setsid()
            if os.fork():
                os._exit(0)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            with open(pidfile, "w") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(interval_ms / 1000)
            _send_announcements(target, count, interval_ms, netns=netns)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
            os._exit(0)

    def _cancel_garp(self, ctx: Context, target: _Target) -> None:
        with _garp_lock:
            stop = _garp_stops.pop((ctx.env.get("HA_NETNS") or None, target.nic, target.ip), None)
        if stop is not None:
            stop.set()
        pidfile = self._pidfile(ctx, target)
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                is_ours = b"IPaddr2" in f.read()
        except (OSError, ValueError):
            return
        if pid > 0 and is_ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(OSError):
            os.unlink(pidfile)


def _send_announcements(
    target: _Target, count: int, interval_ms: int, *, netns: str | None, stop: threading.Event | None = None
) -> int:
    """Gratuitous ARP for an IPv4 address, unsolicited neighbour advertisements for IPv6."""
    if target.version == 6:
        return send_unsolicited_na(
            target.nic, target.ip, target.mac, count, interval_ms, netns=netns, stop=stop
        )
    return send_garp(target.nic, target.ip, count, interval_ms, netns=netns, stop=stop)
