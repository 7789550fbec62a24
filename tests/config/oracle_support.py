"""What the oracle tests share: skip or fail when a real tool is missing, and the hosts/stubs
the real Heartbeat needs to judge a file rather than this machine."""

from __future__ import annotations

import ipaddress
import os
import re

import pytest

from hacluster.config.crm_model import OBSOLETE_PROPERTIES, OLD_STACKS
from tests.integration.heartbeat_lab import heartbeat_available
from tests.oracles.pacemaker_tools import tools_available

PACEMAKER_DAEMONS = tuple(
    f"/usr/libexec/pacemaker/{name}" for name in ("cib", "stonithd", "lrmd", "attrd", "crmd", "pengine")
)
"""What Heartbeat 3.0.6 starts with crm on; Debian 12's Pacemaker 2 no longer ships them."""


def _missing(reason: str | None) -> None:
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI installs the real tools, so this must not be skipped: {reason}")
    pytest.skip(reason)


def require_heartbeat() -> None:
    _missing(heartbeat_available())


def require_pacemaker_tools() -> None:
    _missing(tools_available())


def heartbeat_inputs(ha_cf: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Names to resolve (ucast and ping peers) and executables to stub (respawn clients, Pacemaker)."""
    hosts: dict[str, str] = {}
    executables: set[str] = set(PACEMAKER_DAEMONS)
    for line in ha_cf.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        names = {"ucast": words[2:3], "ping": words[1:], "ping_group": words[2:]}.get(words[0], [])
        for name in names:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                hosts[name] = f"10.251.0.{len(hosts) + 1}"
        if words[0] in ("respawn", "failfast") and len(words) > 2 and words[2].startswith("/"):
            executables.add(words[2])
    return hosts, tuple(sorted(executables))


def without_obsolete_options(text: str) -> str:
    """crm text without the Pacemaker 1.x options Pacemaker 2's schema refuses, to show that
    they alone make today's crmsh refuse a file (hacluster reads them, see crm_model)."""
    names = "|".join(re.escape(name) for name in OBSOLETE_PROPERTIES)
    stacks = "|".join(re.escape(stack) for stack in OLD_STACKS)
    text = re.sub(rf'\b({names})=("[^"]*"|\S+)', "", text)
    text = re.sub(rf'\bcluster-infrastructure=("?)({stacks})\1', "", text)
    return re.sub(r"(?m)^property\s*$", "", text)  # a statement left with nothing to set
