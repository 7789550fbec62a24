"""Helpers for the agent tests (imported as ``ocfkit``): the launcher scripts, ocf-tester, and the OCF environment.

ocf-tester runs each launcher as a script, so the ``python3`` it finds on PATH must import
hacluster's dependencies: the tests put ``dirname(sys.executable)`` first on PATH.  (The
``meta-data`` check runs as ``nobody``, who may only reach the system Python; that works
because meta-data needs nothing but the stdlib and the launcher adds the checkout to sys.path.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AGENTS_DIR = REPO / "resource_agents"
DTD_DIR = Path("/usr/share/resource-agents")
OCF_TESTER_TIMEOUT_S = 120


def agent_path(name: str) -> Path:
    path = AGENTS_DIR / name
    assert path.is_file(), f"{path} is missing"
    return path


def script_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ with this interpreter's directory first on PATH (for launchers and ocf-tester)."""
    env = dict(os.environ)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port nothing listens on right now (for a throw-away server on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, namespaces, runuser); CI runs as root")


def require_tool(tool: str, package: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"needs {tool}: apt-get install -y {package}")
    return path


def validate_metadata(xml: str) -> subprocess.CompletedProcess[str]:
    """``xmllint --noout --valid -`` in the DTD's directory, exactly as ocf-tester does it."""
    require_tool("xmllint", "libxml2-utils")
    if not (DTD_DIR / "ra-api-1.dtd").is_file():
        pytest.skip("needs /usr/share/resource-agents/ra-api-1.dtd: apt-get install -y resource-agents")
    return subprocess.run(
        ["xmllint", "--noout", "--valid", "-"],
        input=xml,
        cwd=DTD_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def run_ocf_tester(
    agent: str,
    instance: str,
    params: dict[str, str],
    *,
    prefix: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ocf-tester on a launcher; ``prefix`` wraps it (``ip netns exec NS``, ``unshare -m``).

    ocf-tester hands its environment on to the agent, so ``extra_env`` reaches the agent too.
    """
    require_root()
    tester = require_tool("ocf-tester", "resource-agents")
    require_tool("xmllint", "libxml2-utils")
    argv = [*(prefix or []), tester, "-n", instance]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    argv.append(str(agent_path(agent)))
    return subprocess.run(
        argv,
        env=script_env(extra_env),
        capture_output=True,
        text=True,
        timeout=OCF_TESTER_TIMEOUT_S,
        check=False,
    )


def assert_passed(done: subprocess.CompletedProcess[str], agent: str) -> None:
    report = f"rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    assert f"{agent_path(agent)} passed all tests" in done.stdout, report


def ocf_env(instance: str, params: dict[str, str], **extra: str) -> dict[str, str]:
    """An OCF environment for ``Agent.run``: a recurring-monitor interval unless overridden."""
    env = {
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "PATH": script_env()["PATH"],
    }
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    env.update(extra)
    return env
