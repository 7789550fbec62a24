"""Two real Heartbeat 3.0.6 nodes on a namespaced bridge: the lab harness itself works.

The namespaces are made here with plain `ip` commands (a switch namespace holding a bridge,
two node namespaces each joined to it by a veth pair) so this test depends on nothing but
heartbeat_lab.  Every name carries a random suffix; teardown removes them even on failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from heartbeat_lab import HeartbeatNode, heartbeat_available, make_authkeys, make_ha_cf

pytestmark = [pytest.mark.root, pytest.mark.integration]

SUBNET = "10.213.7"


def require_heartbeat() -> None:
    """Skip where the lab cannot run; in CI as root a missing heartbeat is a failure."""
    reason = heartbeat_available()
    if reason is None:
        return
    if os.geteuid() == 0 and os.environ.get("CI") == "true":
        pytest.fail(f"heartbeat lab cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed rc={result.returncode}: {result.stderr.strip()}")


@dataclass(frozen=True, slots=True)
class TwoNodeNet:
    switch: str
    nodes: tuple[str, str]  # namespace names; also used as node names
    interfaces: tuple[str, str]  # the node-side veth in each namespace


@pytest.fixture
def two_node_net() -> Iterator[TwoNodeNet]:
    require_heartbeat()
    suffix = f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
    net = TwoNodeNet(
        switch=f"hbl{suffix}-sw",
        nodes=(f"hbl{suffix}-n1", f"hbl{suffix}-n2"),
        interfaces=(f"hb{suffix}e1", f"hb{suffix}e2"),
    )
    created: list[str] = []
    try:
        for name in (net.switch, *net.nodes):
            ip("netns", "add", name)
            created.append(name)
        bridge = f"hb{suffix}br"
        ip("-n", net.switch, "link", "add", bridge, "type", "bridge")
        ip("-n", net.switch, "link", "set", bridge, "up")
        for i, (node_ns, interface) in enumerate(zip(net.nodes, net.interfaces, strict=True), start=1):
            port = f"hb{suffix}p{i}"
            ip(
                "-n",
                net.switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                interface,
                "netns",
                node_ns,
            )
            ip("-n", net.switch, "link", "set", port, "master", bridge)
            ip("-n", net.switch, "link", "set", port, "up")
            ip("-n", node_ns, "link", "set", "lo", "up")
            ip("-n", node_ns, "addr", "add", f"{SUBNET}.{i}/24", "brd", "+", "dev", interface)
            ip("-n", node_ns, "link", "set", interface, "up")
        yield net
    finally:
        for name in reversed(created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            # The §16 recipe kept per-node config here; remove any left by other tools too.
            shutil.rmtree(Path("/etc/netns", name), ignore_errors=True)


@pytest.fixture
def started_nodes(two_node_net: TwoNodeNet, tmp_path: Path) -> Iterator[tuple[HeartbeatNode, HeartbeatNode]]:
    net = two_node_net
    authkeys = make_authkeys(secrets.token_hex(16))
    n1, n2 = (
        HeartbeatNode(
            netns=netns,
            node_name=netns,
            workdir=tmp_path / netns,
            ha_cf=make_ha_cf(
                nodes=list(net.nodes), interfaces=[interface], keepalive_ms=200, deadtime_ms=1000
            ),
            authkeys=authkeys,
        )
        for netns, interface in zip(net.nodes, net.interfaces, strict=True)
    )
    try:
        n1.start()
        n2.start()
        yield n1, n2
    finally:
        n1.kill()
        n2.kill()


@pytest.mark.timeout(60)
def test_two_real_nodes_see_each_other_active_then_dead_after_kill(
    started_nodes: tuple[HeartbeatNode, HeartbeatNode], two_node_net: TwoNodeNet
) -> None:
    n1, n2 = started_nodes
    assert n1.nsenter("uname", "-n").stdout.strip() == n1.node_name
    assert os.uname().nodename not in (n1.node_name, n2.node_name), "the host's hostname changed"

    # Comm-up takes about 0.6-1.5 s when both start together (initdead is not waited out).
    n1.wait_nodestatus(n2.node_name, "active", timeout_s=10)
    n2.wait_nodestatus(n1.node_name, "active", timeout_s=10)
    n1.wait_nodestatus(n1.node_name, "active", timeout_s=5)
    links = n1.cl_status("listhblinks", n2.node_name)
    assert links.stdout.split() == [two_node_net.interfaces[0]], links  # named after the local medium
    assert n2.cl_status("hbparameter", "-p", "keepalive").stdout.strip() == "200ms"

    n2.kill()
    assert not n2.is_running
    assert n2.processes() == []
    killed_at = time.monotonic()
    # Heartbeat 3.0.6 advertises dt = deadtime + 2000 ms and the peer applies it, so with
    # deadtime 1000ms the kill is noticed after about 3.1-3.3 s.
    n1.wait_nodestatus(n2.node_name, "dead", timeout_s=8)
    detect_s = time.monotonic() - killed_at
    assert 0.8 < detect_s < 6, f"dead after {detect_s:.2f}s"
    assert f"node {n2.node_name}: is dead" in n1.log
    assert n1.cl_status("nodestatus", n2.node_name).returncode == 1  # cl_status exits 1 for dead

    n1.stop(timeout_s=20)
    assert not n1.is_running
    assert n1.processes() == []
    assert "Heartbeat shutdown complete" in n1.log


def test_inner_script_refuses_to_run_outside_its_namespace(two_node_net: TwoNodeNet, tmp_path: Path) -> None:
    """The guard stops hostname/mount when inner.sh is not under `ip netns exec`."""
    node = HeartbeatNode(
        netns=two_node_net.nodes[0],
        node_name="must-not-be-set",
        workdir=tmp_path,
        ha_cf="",
        authkeys="",
    )
    script = node.write_inner_script(Path("/bin/false"))
    # Even if the guard were broken, unshare keeps hostname and mounts away from the host.
    result = subprocess.run(
        ["unshare", "--uts", "--mount", "--propagation", "private", "/bin/sh", str(script)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 1, result
    assert "refusing to touch hostname/mounts" in result.stderr
    assert os.uname().nodename != "must-not-be-set"
