"""The README's two commands work as written for root without sudo and for a user with sudo.

What can be checked without running them (the runs themselves are in the report of the change
that made them so: a debootstrap'ed Debian 12 as root with no sudo, and a user with sudo rights):
they call our scripts, not ``sudo``; the scripts decide how to become root; ``.ci/run`` runs
exactly the README's test command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_command(heading: str) -> str:
    """The indented command line that follows the README paragraph starting with ``heading``."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^\*\*{re.escape(heading)}\*\*.*?\n\n    (\S[^\n]*)$", text, re.M | re.S)
    assert match, f"README.md has no command under **{heading}**"
    return match.group(1).strip()


@pytest.mark.parametrize("heading", ["Run the demo", "Run the whole test suite"])
def test_readme_commands_need_no_sudo_binary(heading: str) -> None:
    command = readme_command(heading)
    assert "sudo" not in command.split(), (
        f"{command!r} fails where sudo is not installed (root in a container)"
    )
    script = ROOT / command.split()[0]
    assert script.is_file(), command
    assert os.access(script, os.X_OK), f"{script} must be executable: the README runs it as {command!r}"
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_ci_runs_the_readme_test_command() -> None:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("exec ")]
    assert lines == [f"exec {readme_command('Run the whole test suite')}"]


def test_the_scripts_become_root_only_through_the_one_helper() -> None:
    helper = (ROOT / "scripts" / "root.sh").read_text()
    assert 'if [ "$(id -u)" -eq 0 ]' in helper, "as root, a command must run without sudo"
    assert "command -v sudo" in helper
    demo = (ROOT / "scripts" / "demo").read_text()
    assert "as_root apt-get" in demo
    assert re.search(r"^[^#]*\bsudo\b", demo, re.M) is None, "the demo calls sudo only through as_root"
    test = (ROOT / "scripts" / "test").read_text()
    # Re-run through sudo only when not root and sudo exists.
    assert re.search(r'if \[ "\$\(id -u\)" -ne 0 \]; then\n  if command -v sudo', test)


def test_as_root_runs_directly_as_root_and_says_what_to_do_without_sudo(tmp_path: Path) -> None:
    # Exercise the helper with a PATH that has no sudo on it (this is what a container without
    # sudo looks like).  As root the command runs; the message path needs a non-root user.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "basename", "echo", "true"):
        found = subprocess.run(
            ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True
        ).stdout.strip()
        if found.startswith("/"):
            (bin_dir / tool).symlink_to(found)
    script = f". {ROOT / 'scripts' / 'root.sh'}; as_root echo ran-as-root"
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-c", script], capture_output=True, text=True, env={"PATH": str(bin_dir)})
    if os.geteuid() == 0:
        assert (done.returncode, done.stdout) == (0, "ran-as-root\n"), done.stderr
    else:
        assert done.returncode == 1
        assert "sudo is not installed: run it as root" in done.stderr
