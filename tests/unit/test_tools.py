"""The Pacemaker-compatible tools: what each option combination means, and refusals.

A refusal must come before anything is asked of the daemon: these tests point the tools at
a socket that does not exist, so a tool that tried to connect would exit 102 (not
connected) instead of the usage status 64.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hacluster.shell.executor import TOOLS_DIR
from hacluster.tools import attrd_updater, crm_attribute, crm_master, crm_node
from hacluster.tools.common import EXIT_DISCONNECT, EXIT_USAGE, ToolError, run
from hacluster.tools.crm_attribute import Target, target_of

TOOLS = ("crm_attribute", "crm_master", "attrd_updater", "crm_node")


@pytest.fixture(autouse=True)
def no_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HACLUSTER_SOCKET", str(tmp_path / "nobody-home.sock"))
    monkeypatch.setenv("OCF_RESOURCE_INSTANCE", "pgsql:1")


def target(*argv: str) -> Target:
    return target_of(crm_attribute.parser().parse_args(argv))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("-n", "cluster-delay", "-G"), Target("property", "cluster-delay")),
        (("-t", "crm_config", "-n", "x"), Target("property", "x")),
        (("-N", "n2", "-n", "rack", "-v", "a"), Target("node", "rack", "n2", "forever")),
        (("-n", "rack", "-l", "reboot", "-v", "a"), Target("node", "rack", "", "reboot")),
        (("-t", "status", "-n", "rack"), Target("node", "rack", "", "reboot")),
        (("-t", "nodes", "-n", "rack", "-N", "n1"), Target("node", "rack", "n1", "forever")),
        (("--promotion", "-v", "10"), Target("node", "master-pgsql", "", "reboot")),
        (("-p", "-D"), Target("node", "master-pgsql", "", "reboot")),
        (("--promotion=db", "-N", "n3", "-G"), Target("node", "master-db", "n3", "reboot")),
        (("-p", "-l", "forever", "-v", "1"), Target("node", "master-pgsql", "", "forever")),
        (("-U", "n2", "-n", "x", "--get-value"), Target("node", "x", "n2", "forever")),
    ],
)
def test_crm_attribute_targets_what_pacemaker_would(argv: tuple[str, ...], expected: Target) -> None:
    assert target(*argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "name the attribute with -n NAME"),
        (("-n", "x", "-v", "1", "-D"), "not allowed with argument"),
        (("-n", "x", "-l", "sometimes"), "invalid choice"),
        (("-n", "x", "-t", "status", "-l", "forever"), "contradicts"),
        (("-n", "x", "-t", "rsc_defaults"), "not supported"),
        (("-p", "-n", "x"), "drop -n"),
        (("-p", "-t", "crm_config"), "drop -t crm_config"),
        (("-t", "crm_config", "-n", "x", "-N", "n1"), "drop -N and -l"),
        (("--bogus",), "unrecognized arguments"),
    ],
)
def test_crm_attribute_refuses_bad_arguments_before_asking(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("crm_attribute", crm_attribute.main, list(argv)) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_promotion_without_a_resource_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCF_RESOURCE_INSTANCE")
    with pytest.raises(ToolError, match="no resource given") as caught:
        target("-p", "-v", "5")
    assert caught.value.status == EXIT_USAGE


def test_a_good_request_without_a_daemon_says_not_connected(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("crm_attribute", crm_attribute.main, ["-p", "-v", "5"]) == EXIT_DISCONNECT
    assert "could not reach the hacluster daemon" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-l", "reboot", "-v", "5"], ["--promotion=pgsql:1", "-l", "reboot", "-v", "5"]),
        (["-D"], ["--promotion=pgsql:1", "-l", "forever", "-D"]),
        (["-r", "db", "-G", "-q", "-N", "n2"], ["--promotion=db", "-l", "forever", "-N", "n2", "-G", "-q"]),
        (["-Q"], ["--promotion=pgsql:1", "-l", "forever", "-G"]),
    ],
)
def test_crm_master_is_crm_attribute_promotion(argv: list[str], expected: list[str]) -> None:
    assert crm_master.translate(argv) == expected
    assert target(*expected).name == (
        "master-db" if "-r" in argv else "master-pgsql"
    )  # crm_attribute takes it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: -n/--name"),
        (["-n", "pingd", "-B", "3"], "-B and -Y need -d DELAY"),
        (["-n", "pingd", "-Y"], "-B and -Y need -d DELAY"),
        (["-n", "pingd", "-U", "3", "-d", "soon"], "is not a delay"),
        (["-n", "pingd", "-U", "3", "-Q"], "not allowed with argument"),
        (["-n", "pingd", "-A"], "-A only goes with -Q"),
        (["-n", "pingd"], "give a command"),
    ],
)
def test_attrd_updater_refuses_bad_arguments_before_asking(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("attrd_updater", attrd_updater.main, argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_attrd_updater_accepts_what_the_ping_agent_runs() -> None:
    # -Y and -R have nothing to change here, so they answer without the daemon
    assert run("attrd_updater", attrd_updater.main, ["-n", "pingd", "-Y", "-d", "5s"]) == 0
    for argv in (["-n", "pingd", "-v", "3", "-d", "5s"], ["-n", "pingd", "-B", "3", "-d", "5"]):
        assert run("attrd_updater", attrd_updater.main, argv) == EXIT_DISCONNECT


@pytest.mark.parametrize("argv", [[], ["-n", "-l"], ["--nonsense"]])
def test_crm_node_needs_exactly_one_command(argv: list[str]) -> None:
    assert run("crm_node", crm_node.main, argv) == EXIT_USAGE


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_has_an_executable(tool: str) -> None:
    path = TOOLS_DIR / tool
    assert path.is_file()
    assert path.stat().st_mode & stat.S_IXUSR
    assert f"-m hacluster.tools.{tool} " in path.read_text()
    assert os.access(path, os.X_OK)
