"""IPaddr2 in a network namespace of the test's own: ocf-tester, then the in-process API.

In-process calls pass the hidden ``HA_NETNS`` key so the agent acts in the test's namespace
(netlink via ``IPRoute(netns=…)``, ARP sockets made by a thread that joined it); nothing
touches the root namespace.  The interface is a ``dummy`` when the kernel has that driver,
else one end of a veth pair (some container kernels lack ``dummy``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest
from ocfkit import assert_passed, ocf_env, require_root, run_ocf_tester

from hacluster.agents import RC, IPaddr2Agent, send_garp
from hacluster.agents.ipaddr2 import ETH_P_ARP, IFA_F_NODAD, IFA_F_TENTATIVE, _packet_socket

pytestmark = pytest.mark.root

ETH_P_ALL = 0x0003
NIC = "d0"
VIP = "10.231.77.50"
BASE = "10.231.77.1/24"


def ip(*argv: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace ``hac-ra-<rand>`` with lo and ``d0`` (10.231.77.1/24) up; deleted afterwards."""
    require_root()
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip")
    name = f"hac-ra-{secrets.token_hex(4)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        if subprocess.run(
            ["ip", "-n", name, "link", "add", NIC, "type", "dummy"], capture_output=True
        ).returncode:
            ip("-n", name, "link", "add", NIC, "type", "veth", "peer", "name", f"{NIC}p")
            ip("-n", name, "link", "set", f"{NIC}p", "up")
        ip("-n", name, "addr", "add", BASE, "dev", NIC)
        ip("-n", name, "link", "set", NIC, "up")
        yield name
    finally:
        ip("netns", "del", name, check=False)


def addresses(ns: str) -> dict[str, str]:
    """address → "prefixlen label" on d0, read with iproute2 (independent of the agent)."""
    [link] = json.loads(ip("-j", "-n", ns, "-4", "addr", "show", "dev", NIC))
    return {a["local"]: f"{a['prefixlen']} {a.get('label', '')}".strip() for a in link["addr_info"]}


def vip_env(ns: str, **params: str) -> dict[str, str]:
    base = {"ip": VIP, "nic": NIC, "cidr_netmask": "24"}
    base.update(params)
    return ocf_env("vip", {k: v for k, v in base.items() if v != ""}, HA_NETNS=ns)


def probe(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OCF_RESKEY_CRM_meta_interval": "0"}


@contextlib.contextmanager
def arp_capture(ns: str) -> Iterator[socket.socket]:
    sock = _packet_socket(NIC, ns, ETH_P_ALL)  # ETH_P_ALL: sees the frames d0 sends, too
    sock.settimeout(0.05)
    try:
        yield sock
    finally:
        sock.close()


def garps_for(sock: socket.socket, vip: str, wait_s: float) -> list[bytes]:
    """Gratuitous ARP frames for ``vip`` seen within ``wait_s`` (sender IP == target IP == vip)."""
    frames, deadline, packed = [], time.monotonic() + wait_s, socket.inet_aton(vip)
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            continue
        if struct.unpack("!H", frame[12:14])[0] == ETH_P_ARP and frame[28:32] == packed == frame[38:42]:
            frames.append(frame)
    return frames


def test_ipaddr2_passes_ocf_tester(netns: str) -> None:
    params = {"ip": VIP, "cidr_netmask": "24", "nic": NIC}
    done = run_ocf_tester("IPaddr2", "vip", params, prefix=["ip", "netns", "exec", netns])
    assert_passed(done, "IPaddr2")


def test_start_adds_address_and_announces_it(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, arp_count="3", arp_interval="50", iflabel="vip")
    agent.run("validate-all", env)  # load pyroute2 before timing start, as the daemon has it loaded
    with arp_capture(netns) as capture:
        began = time.monotonic()
        result = agent.run("start", env)
        start_ms = (time.monotonic() - began) * 1000
        assert result.rc == RC.SUCCESS, result.exit_reason
        assert addresses(netns)[VIP] == "24 d0:vip"
        frames = garps_for(capture, VIP, wait_s=0.6)
    assert start_ms < 1000, f"in-process start took {start_ms:.0f} ms"
    assert len(frames) == 3
    mac = bytes.fromhex(
        ip("-n", netns, "-o", "link", "show", NIC).split("link/ether ")[1].split()[0].replace(":", "")
    )
    assert all(frame[6:12] == mac == frame[22:28] for frame in frames)
    assert all(frame[:6] == b"\xff" * 6 for frame in frames)
    assert agent.run("start", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.SUCCESS
    assert agent.run("monitor", probe(env)).rc == RC.SUCCESS


def test_monitor_fails_when_link_is_down(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, arp_count="0")
    assert agent.run("start", env).rc == RC.SUCCESS
    ip("-n", netns, "link", "set", NIC, "down")
    down = agent.run("monitor", env)
    assert down.rc == RC.ERR_GENERIC
    assert "link is down" in (down.exit_reason or "")
    ip("-n", netns, "link", "set", NIC, "up")
    assert agent.run("monitor", env).rc == RC.SUCCESS


def test_stop_removes_address_and_is_idempotent(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, arp_count="0")
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("start", env).rc == RC.SUCCESS
    assert VIP in addresses(netns)
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert VIP not in addresses(netns)
    assert BASE.split("/")[0] in addresses(netns)
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    assert agent.run("monitor", probe(env)).rc == RC.NOT_RUNNING


def test_stop_ends_a_background_arp_burst(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, arp_count="50", arp_interval="100")
    with arp_capture(netns) as capture:
        assert agent.run("start", env).rc == RC.SUCCESS
        assert agent.run("stop", env).rc == RC.SUCCESS
        garps_for(capture, VIP, wait_s=0.15)  # drain anything already in flight
        assert garps_for(capture, VIP, wait_s=0.5) == []


def test_nic_and_netmask_are_found_from_the_route(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, nic="", cidr_netmask="", arp_count="0")
    assert agent.run("start", env).rc == RC.SUCCESS
    assert addresses(netns)[VIP].split()[0] == "24"
    assert agent.run("monitor", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    nowhere = agent.run("validate-all", vip_env(netns, ip="10.99.0.5", nic="", cidr_netmask=""))
    assert nowhere.rc == RC.ERR_ARGS


def test_probe_on_a_node_without_the_nic_answers_7(netns: str) -> None:
    agent = IPaddr2Agent()
    env = vip_env(netns, nic="eth9")
    assert agent.run("monitor", probe(env)).rc == RC.NOT_RUNNING
    assert agent.run("stop", env).rc == RC.SUCCESS
    invalid = agent.run("validate-all", env)
    assert invalid.rc == RC.ERR_ARGS
    assert "eth9" in (invalid.exit_reason or "")
    assert agent.run("start", env).rc == RC.ERR_ARGS


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"ip": "10.231.77.300"}, "not an IPv4 or IPv6 address"),
        ({"ip": "224.0.0.5"}, "not a unicast address"),
        ({"ip": ""}, "required"),
        ({"cidr_netmask": "33"}, "cidr_netmask"),
        ({"arp_count": "-1"}, "arp_count"),
        ({"nic": "d0:1"}, "alias"),
        ({"arp_bg": "maybe"}, "arp_bg"),
    ],
)
def test_validate_rejects_malformed_configuration(netns: str, params: dict[str, str], words: str) -> None:
    result = IPaddr2Agent().run("validate-all", vip_env(netns, **params))
    assert result.rc == RC.ERR_CONFIGURED
    assert words in (result.exit_reason or "")


def test_send_garp_sends_count_frames(netns: str) -> None:
    with arp_capture(netns) as capture:
        assert send_garp(NIC, "10.231.77.9", 2, 10, netns=netns) == 2
        frames = garps_for(capture, "10.231.77.9", wait_s=0.3)
    assert len(frames) == 2
    assert all(struct.unpack("!H", f[20:22])[0] == 1 for f in frames)  # ARP request (arping -U style)


# --- IPv6 -------------------------------------------------------------------------------------

VIP6 = "fd00:231:77::50"
BASE6 = "fd00:231:77::1/64"
ETH_P_IPV6 = 0x86DD


@pytest.fixture
def netns6() -> Iterator[str]:
    """A namespace with a veth pair d0/d0p (DAD runs on veth, not on a NOARP dummy), d0 with
    ``fd00:231:77::1/64`` added without DAD; deleted afterwards."""
    require_root()
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip")
    name = f"hac-ra6-{secrets.token_hex(4)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", NIC, "type", "veth", "peer", "name", f"{NIC}p")
        ip("-n", name, "link", "set", f"{NIC}p", "up")
        ip("-n", name, "addr", "add", BASE6, "dev", NIC, "nodad")
        ip("-n", name, "link", "set", NIC, "up")
        yield name
    finally:
        ip("netns", "del", name, check=False)


def addresses6(ns: str) -> dict[str, set[str]]:
    """IPv6 address on d0 → its iproute2 flags (``tentative``, ``nodad``, ...)."""
    [link] = json.loads(ip("-j", "-n", ns, "-6", "addr", "show", "dev", NIC))
    flags = ("tentative", "nodad", "dadfailed")
    return {a["local"]: {f for f in flags if a.get(f)} for a in link["addr_info"]}


def vip6_env(ns: str, **params: str) -> dict[str, str]:
    return vip_env(ns, **{"ip": VIP6, "cidr_netmask": "64", **params})


def advertisements_for(sock: socket.socket, vip: str, wait_s: float) -> list[bytes]:
    """Neighbour advertisements for ``vip`` (ICMPv6 type 136, target ``vip``) seen in ``wait_s``."""
    frames, deadline, target = [], time.monotonic() + wait_s, socket.inet_pton(socket.AF_INET6, vip)
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            continue
        if struct.unpack("!H", frame[12:14])[0] != ETH_P_IPV6 or frame[20] != 58:
            continue
        icmp = frame[54:]
        if icmp[0] == 136 and icmp[8:24] == target:
            frames.append(frame)
    return frames


def test_ipv6_start_is_usable_at_once_and_announced_with_neighbour_adverts(netns6: str) -> None:
    agent = IPaddr2Agent()
    env = vip6_env(netns6, arp_count="3", arp_interval="50")
    agent.run("validate-all", env)
    with arp_capture(netns6) as capture:
        assert agent.run("start", env).rc == RC.SUCCESS, "start"
        assert addresses6(netns6)[VIP6] == {"nodad"}, "usable at once: not tentative"
        frames = advertisements_for(capture, VIP6, wait_s=0.6)
    assert len(frames) == 3
    mac = bytes.fromhex(
        ip("-n", netns6, "-o", "link", "show", NIC).split("link/ether ")[1].split()[0].replace(":", "")
    )
    for frame in frames:
        assert frame[:6] == bytes.fromhex("333300000001"), "to the all-nodes group"
        assert frame[6:12] == mac
        assert frame[21] == 255, "hop limit 255, or receivers ignore it"
        assert frame[22:38] == socket.inet_pton(socket.AF_INET6, VIP6), "from the address itself"
        icmp = frame[54:]
        assert icmp[4] & 0x20, "Override set"
        assert not icmp[4] & 0x40, "not solicited"
        assert icmp[24:32] == b"\x02\x01" + mac, "target link-layer address option"
    assert agent.run("monitor", env).rc == RC.SUCCESS
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert VIP6 not in addresses6(netns6)
    assert agent.run("stop", env).rc == RC.SUCCESS
    assert agent.run("monitor", env).rc == RC.NOT_RUNNING
    assert IFA_F_NODAD == 0x02


def test_ipv6_with_dad_waits_until_the_address_is_no_longer_tentative(netns6: str) -> None:
    agent = IPaddr2Agent()
    env = vip6_env(netns6, nodad="false", arp_count="1")
    began = time.monotonic()
    assert agent.run("start", env).rc == RC.SUCCESS
    took_ms = (time.monotonic() - began) * 1000
    assert addresses6(netns6)[VIP6] == set(), "DAD finished: neither tentative nor nodad"
    print(f"start with DAD took {took_ms:.0f} ms")
    assert took_ms > 200, "DAD takes about a second: start must have waited"
    assert IFA_F_TENTATIVE == 0x40


def test_ipv6_prefix_and_nic_from_the_route(netns6: str) -> None:
    agent = IPaddr2Agent()
    env = vip6_env(netns6, nic="", cidr_netmask="", arp_count="0")
    assert agent.run("start", env).rc == RC.SUCCESS
    [link] = json.loads(ip("-j", "-n", netns6, "-6", "addr", "show", "dev", NIC))
    assert {(a["local"], a["prefixlen"]) for a in link["addr_info"]} >= {(VIP6, 64)}
    assert agent.run("stop", env).rc == RC.SUCCESS


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"cidr_netmask": "129"}, "0..128"),
        ({"cidr_netmask": "255.255.255.0"}, "0..128"),
        ({"iflabel": "vip"}, "iflabel does not apply"),
        ({"broadcast": "fd00::ff"}, "broadcast does not apply"),
        ({"ip": "fe80::50"}, "link-local"),
        ({"ip": "ff02::1"}, "not a unicast address"),
        ({"nodad": "perhaps"}, "nodad"),
    ],
)
def test_ipv6_validate_rejects_what_does_not_apply(netns6: str, params: dict[str, str], words: str) -> None:
    result = IPaddr2Agent().run("validate-all", vip6_env(netns6, **params))
    assert result.rc == RC.ERR_CONFIGURED
    assert words in (result.exit_reason or "")
