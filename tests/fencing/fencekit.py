"""Helpers for the fencing tests: running our agents, required tools, throw-away namespaces.

Tools the fencing tests need (ipmi_sim, ipmitool, fence_ipmilan, virsh, stonith, ip) are Debian
packages CI installs; a missing one skips the test locally but *fails* it under CI (``CI`` set
in the environment), so a broken CI image cannot turn the fencing tests into silent skips.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FENCING_DIR = REPO / "fencing"
AGENTS = ("fence_lab", "fence_ipmi", "fence_libvirt", "fence_ssh", "fence_manual", "fence_watchdog")
TOOL_TIMEOUT_S = 30

PACKAGES = {
    "ipmi_sim": "openipmi",
    "ipmitool": "ipmitool",
    "fence_ipmilan": "fence-agents",
    "virsh": "libvirt-clients",
    "stonith": "cluster-glue",
    "ip": "iproute2",
}


def agent_path(name: str) -> Path:
    return FENCING_DIR / name


def run_agent(
    name: str, stdin: str | None = None, args: Sequence[str] = (), timeout_s: float = TOOL_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run one of our agents: options from ``stdin`` (no args) or from ``args``."""
    return subprocess.run(
        [sys.executable, str(agent_path(name)), *args],
        input=stdin if not args else None,
        stdin=subprocess.DEVNULL if args else None,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def options(**values: object) -> str:
    """stdin text for an agent: one name=value line per keyword."""
    return "".join(f"{name}={value}\n" for name, value in values.items())


def need_tools(*names: str) -> dict[str, str]:
    """Paths of the named tools; skip when one is missing (fail under CI)."""
    found = {}
    for name in names:
        path = shutil.which(name) or next(
            (str(Path(d) / name) for d in ("/usr/sbin", "/sbin") if (Path(d) / name).exists()), None
        )
        if path is None:
            message = f"{name} is missing: apt-get install -y {PACKAGES.get(name, name)}"
            if os.environ.get("CI"):
                pytest.fail(f"{message} (CI must install it)")
            pytest.skip(message)
        found[name] = path
    return found


def require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the fencing namespace tests need root; CI runs as root")
        pytest.skip("needs root to create network namespaces (CI runs as root)")


def ip(*argv: str) -> str:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)} failed rc={done.returncode}: {done.stderr.strip()}")
    return done.stdout


def netns_pids(name: str) -> list[int]:
    try:
        return [int(pid) for pid in ip("netns", "pids", name).split()]
    except RuntimeError:
        return []


def link_is_up(netns: str, iface: str) -> bool:
    line = ip("-n", netns, "-o", "link", "show", "dev", iface)
    return "UP" in line.partition("<")[2].partition(">")[0].split(",")


@contextlib.contextmanager
def lab_node(prefix: str = "hf") -> Iterator[tuple[str, str]]:
    """A node namespace (veth ``e0``) cabled to a switch namespace (port ``p0``), both up.

    Yields (node_ns, switch_ns); kills whatever runs in them and deletes both at the end.
    """
    require_root()
    need_tools("ip")
    suffix = f"{os.getpid()}-{secrets.token_hex(3)}"
    node, switch = f"{prefix}-n-{suffix}", f"{prefix}-sw-{suffix}"
    created: list[str] = []
    try:
        for name in (switch, node):
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", switch, "link", "add", "p0", "type", "veth", "peer", "name", "e0", "netns", node)
        ip("-n", switch, "link", "set", "p0", "up")
        ip("-n", node, "link", "set", "e0", "up")
        yield node, switch
    finally:
        for name in created:
            for pid in netns_pids(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        for name in reversed(created):
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", name)
