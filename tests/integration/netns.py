"""A throw-away network lab in namespaces: N nodes on one bridge, for root integration tests.

    with Lab("hal", nodes=2) as lab:
        proc = lab.run(1, ["python3", "-m", "something"], stdout=subprocess.PIPE)
        lab.exec(2, ["ip", "addr"])
        lab.set_link(1, up=False)      # pull node 1's cable
        lab.kill_all(2)                # crash every process in node 2's namespace

Layout: a switch namespace ``<prefix>-sw-<rand>`` holds bridge ``br0`` and one veth end
``p<i>`` per node; node ``i`` (1-based) lives in ``<prefix>-n<i>-<rand>`` with the other end
``e<i>`` addressed ``10.231.<x>.<i>/24`` (broadcast ``10.231.<x>.255``; ``x`` random per lab)
and ``lo`` up.  Nothing is configured in the root namespace.  Multicast snooping is off on the
bridge so groups flood like on a dumb switch.  With ``ipv6=True`` the nodes get no IPv4
address at all, only ``fd00:231:<x>::<i>/64`` (``address6``), and duplicate address detection
is off in their namespaces, so every address is usable as soon as the link is up.

Teardown kills every process in the lab's namespaces (and waits for those ``run`` started),
then deletes every namespace, even when building the lab or the test failed.  Constructing a
``Lab`` skips the test (``pytest.skip``) when not root or when ``ip`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pytest

COMMAND_TIMEOUT_S = 20
BRIDGE = "br0"


CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


def _has_capabilities(*capabilities: int) -> bool:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                effective = int(line.split()[1], 16)
                return all(effective >> cap & 1 for cap in capabilities)
    return False


def require_lab() -> None:
    """Skip the calling test unless namespaces can be built here."""
    missing = None
    if os.geteuid() != 0 or not _has_capabilities(CAP_SYS_ADMIN, CAP_NET_ADMIN):
        missing = "needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN for network namespaces (CI has them)"
    elif shutil.which("ip") is None:
        missing = "needs iproute2's `ip` to create network namespaces"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root, so this must not be skipped: {missing}")
        pytest.skip(missing)


def ip(*argv: str) -> str:
    """Run ``ip argv…`` and return stdout; a failure raises with ip's own message."""
    done = subprocess.run(
        ["ip", *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)} failed rc={done.returncode}: {done.stderr.strip()}")
    return done.stdout


def namespaces() -> set[str]:
    """Names of every network namespace on the host (``ip netns list``)."""
    return {line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()}


class Lab:
    """N node namespaces on one bridge.  Use as a context manager; node indices are 1-based."""

    def __init__(self, prefix: str, nodes: int = 2, *, ipv6: bool = False) -> None:
        assert 1 <= nodes <= 250, nodes
        assert prefix, "a lab needs a name prefix"
        assert len(prefix) <= 12, prefix
        assert "/" not in prefix, prefix
        require_lab()
        suffix = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.prefix = prefix
        self.nodes = nodes
        self.subnet = 1 + secrets.randbelow(254)
        self.ipv6 = ipv6
        self.switch = f"{prefix}-sw-{suffix}"
        self.node_namespaces = {i: f"{prefix}-n{i}-{suffix}" for i in range(1, nodes + 1)}
        self._started: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []

    # --- names and addresses -------------------------------------------------------------

    def namespace(self, i: int) -> str:
        return self.node_namespaces[i]

    def iface(self, i: int) -> str:
        """Node ``i``'s interface name, as seen inside its namespace."""
        assert i in self.node_namespaces, i
        return f"e{i}"

    def address(self, i: int) -> str:
        """Node ``i``'s IPv4 address; ``i`` may be any host number, e.g. an unused one."""
        assert 1 <= i <= 254, i
        return f"10.231.{self.subnet}.{i}"

    def address6(self, i: int) -> str:
        """Node ``i``'s IPv6 address (IPv6 labs); ``i`` may be any host number."""
        assert 1 <= i <= 0xFFFF, i
        return f"fd00:231:{self.subnet:x}::{i:x}"

    @property
    def broadcast(self) -> str:
        return f"10.231.{self.subnet}.255"

    # --- building and tearing down -------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        sw = self.switch
        self._add_namespace(sw)
        ip("-n", sw, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
        ip("-n", sw, "link", "set", BRIDGE, "up")
        for i, ns in self.node_namespaces.items():
            self._add_namespace(ns)
            port, iface = f"p{i}", self.iface(i)
            ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", ns)
            ip("-n", sw, "link", "set", port, "master", BRIDGE)
            ip("-n", sw, "link", "set", port, "up")
            if self.ipv6:
                for conf in ("all", "default", iface):
                    self._sysctl(ns, f"net.ipv6.conf.{conf}.accept_dad=0")
                ip("-n", ns, "addr", "add", f"{self.address6(i)}/64", "dev", iface, "nodad")
            else:
                ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "brd", self.broadcast, "dev", iface)
            ip("-n", ns, "link", "set", iface, "up")
        for i in self.node_namespaces:
            self.wait_for_carrier(i, up=True)

    @staticmethod
    def _sysctl(ns: str, setting: str) -> None:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", setting],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sysctl {setting} in {ns} failed: {done.stderr.strip()}")

    def wait_for_carrier(self, i: int, *, up: bool, timeout_s: float = 10) -> None:
        """Wait until node ``i``'s interface has carrier ``up`` and, when up, until its bridge
        port forwards: the kernel applies carrier changes asynchronously (linkwatch)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = ip("-n", self.namespace(i), "-o", "link", "show", self.iface(i))
            has_carrier = "NO-CARRIER" not in state and ",UP" in state and "state UP" in state
            if has_carrier and up:
                port = ip("-n", self.switch, "-d", "-o", "link", "show", f"p{i}")
                has_carrier = "bridge_slave state forwarding" in port
                state += " / " + port
            if has_carrier == up:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.iface(i)} in {self.namespace(i)} not {up=}: {state.strip()}")
            time.sleep(0.05)

    def close(self) -> None:
        """Kill everything in the lab and delete its namespaces; safe to call twice."""
        for ns in self._created:
            self._kill_namespace(ns)
        for proc in self._started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=COMMAND_TIMEOUT_S)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self._started.clear()
        problems = []
        for ns in reversed(self._created):
            try:
                ip("netns", "del", ns)
            except RuntimeError as exc:
                problems.append(str(exc))
        self._created.clear()
        if problems:
            raise RuntimeError("lab teardown left namespaces behind: " + "; ".join(problems))

    # --- running things ------------------------------------------------------------------

    def run(self, i: int, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside node ``i``'s namespace (``i == 0``: the switch namespace); the
        lab kills and reaps it at the end."""
        ns = self.switch if i == 0 else self.namespace(i)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **popen_kwargs)
        self._started.append(proc)
        return proc

    def exec(self, i: int, argv: Sequence[str], **run_kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion inside node ``i``'s namespace (text output captured)."""
        run_kwargs.setdefault("timeout", COMMAND_TIMEOUT_S)
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace(i), *argv],
            capture_output=True,
            text=True,
            check=False,
            **run_kwargs,
        )

    def set_link(self, i: int, up: bool) -> None:
        """Bring node ``i``'s bridge port down or up, like pulling or plugging its cable."""
        ip("-n", self.switch, "link", "set", f"p{i}", "up" if up else "down")

    def pids(self, i: int) -> list[int]:
        return self._pids(self.namespace(i))

    def kill_all(self, i: int) -> None:
        """SIGKILL every process in node ``i``'s namespace and wait until they are gone."""
        self._kill_namespace(self.namespace(i))

    @staticmethod
    def _pids(ns: str) -> list[int]:
        try:
            return [int(pid) for pid in ip("netns", "pids", ns).split()]
        except RuntimeError:
            return []

    def _kill_namespace(self, ns: str, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while pids := self._pids(ns):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # Our own children stay as zombies (still listed) until reaped.
            for proc in self._started:
                if proc.pid in pids or proc.poll() is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.1)
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes {pids} in namespace {ns} survived SIGKILL")
            time.sleep(0.02)
