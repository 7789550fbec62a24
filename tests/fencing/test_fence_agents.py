"""Our fence agents against the fence-agents contract: metadata, options, validation, actions.

The executables run as processes where the contract is about the process (metadata, stdin vs
argv, exit codes); the validation matrix calls ``api.run`` in-process, the same code the
launchers call, to keep the suite fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from fencekit import AGENTS, agent_path, need_tools, options, run_agent

from hacluster.fencing_agents import api, manual
from hacluster.fencing_agents.ipmi import IpmiAgent
from hacluster.fencing_agents.lab import LabAgent
from hacluster.fencing_agents.libvirt import LibvirtAgent
from hacluster.fencing_agents.manual import ManualAgent
from hacluster.fencing_agents.ssh import SshAgent
from hacluster.fencing_agents.watchdog import WatchdogAgent

CLASSES: dict[str, type[api.FenceAgent]] = {
    "fence_lab": LabAgent,
    "fence_ipmi": IpmiAgent,
    "fence_libvirt": LibvirtAgent,
    "fence_ssh": SshAgent,
    "fence_manual": ManualAgent,
    "fence_watchdog": WatchdogAgent,
}


def call(agent: str, **values: object) -> api.Outcome:
    return api.run(CLASSES[agent], [], options(**values))


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_metadata_is_fence_agents_xml(agent: str) -> None:
    done = run_agent(agent, options(action="metadata"))
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(done.stdout)
    assert root.tag == "resource-agent"
    assert root.get("name") == agent
    assert root.get("shortdesc"), "fence-agents put shortdesc on the root element"
    assert root.find("version") is None, "that is the OCF dialect"
    params = {p.get("name"): p for p in root.iter("parameter")}
    for name, param in params.items():
        getopt = param.find("getopt")
        assert getopt is not None, name
        assert "--" in (getopt.get("mixed") or ""), name
        assert param.find("content") is not None, name
        assert param.findtext("shortdesc"), name
    assert {"action", "plug", "port", "delay"} <= set(params)
    assert params["port"].get("deprecated") == "1"
    assert params["plug"].get("obsoletes") == "port"
    actions = {a.get("name") for a in root.iter("action")}
    assert {"metadata", "validate-all", "monitor", "off", "reboot"} <= actions
    # The same document through the command-line form.
    assert run_agent(agent, args=["-o", "metadata"]).stdout == done.stdout


def test_launcher_runs_from_a_checkout_without_the_package_installed(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        [sys.executable, "-S", str(agent_path("fence_lab")), "-o", "metadata"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert 'name="fence_lab"' in done.stdout


def test_actions_advertised_match_what_each_agent_can_do() -> None:
    assert "on" not in SshAgent.actions, "ssh cannot power a node on"
    assert "status" not in ManualAgent.actions
    assert "status" not in WatchdogAgent.actions
    assert {"on", "off", "reboot", "status", "list"} <= LabAgent.actions


# --- options ----------------------------------------------------------------------------------


def test_stdin_rules_quotes_renames_and_unknown_names() -> None:
    text = '# a comment\n\nipaddr="10.1.1.1"\nlogin=admin\nnodename=n1\nbogus-name=1\nip-port=999\n'
    values, warnings = api.parse_stdin(text, api.all_params(IpmiAgent))
    assert values["ip"] == "10.1.1.1"
    assert values["username"] == "admin"
    assert "ipport" not in values, "ip-port is not ipport"
    assert warnings == [
        "Parse error: Ignoring unknown option 'bogus_name'",
        "Parse error: Ignoring unknown option 'ip_port'",
    ], "nodename is dropped silently"


def test_unknown_stdin_option_warns_but_works() -> None:
    outcome = call("fence_manual", action="monitor", state_dir="/tmp", colour="blue")
    assert outcome.rc == 0
    assert "Ignoring unknown option 'colour'" in outcome.stderr


def test_command_line_forms() -> None:
    values = api.parse_argv(
        ["-a", "10.0.0.1", "--ipport=6230", "--login", "root", "-P", "--method", "cycle"],
        api.all_params(IpmiAgent),
    )
    assert values == {
        "ip": "10.0.0.1",
        "ipport": "6230",
        "username": "root",
        "lanplus": "1",
        "method": "cycle",
    }
    done = run_agent("fence_ipmi", args=["--no-such-option", "1"])
    assert done.returncode == 1
    assert "unknown option '--no-such-option'" in done.stderr
    assert run_agent("fence_ipmi", args=["--help"]).stdout.startswith("Usage: fence_ipmi")


def test_unsupported_action_is_rc_1() -> None:
    outcome = call("fence_ssh", action="on", ip="192.0.2.1")
    assert outcome.rc == 1
    assert "Unrecognised action 'on'" in outcome.stderr


BAD = [
    ("fence_ipmi", {"username": "a"}, "ip is required"),
    ("fence_ipmi", {"ip": "h", "username": "a", "ipport": "abc"}, "ipport='abc' is not an integer"),
    ("fence_ipmi", {"ip": "h", "username": "a", "method": "bogus"}, "method='bogus' is not allowed"),
    ("fence_ipmi", {"ip": "h"}, "username is required"),
    ("fence_lab", {"plug": "x", "plugs": "a,b"}, "plug='x' is not one of plugs=a,b"),
    ("fence_lab", {"plug": "../etc"}, "plug '../etc' is not a valid name"),
    ("fence_lab", {"plug": "a", "switch_netns": "sw"}, "switch_netns and switch_ports go together"),
    ("fence_lab", {"plug": "a", "switch_netns": "sw", "switch_ports": "b:p1"}, "no port for plug='a'"),
    ("fence_lab", {"plug": "a", "power_timeout": "soon"}, "power_timeout='soon' is not a number of seconds"),
    ("fence_lab", {"plug": "a", "power_log": "/nonexistent-dir/power.log"}, "its directory does not exist"),
    ("fence_libvirt", {"plug": "vm;reboot"}, "contains quotes, ';'"),
    ("fence_ssh", {"username": "root"}, "ip is required"),
    (
        "fence_ssh",
        {"ip": "h", "identity_file": "/nonexistent/key"},
        "identity_file='/nonexistent/key' does not exist",
    ),
    ("fence_manual", {"state_dir": "relative/dir"}, "must be an absolute path"),
    ("fence_manual", {"verbose": "maybe"}, "verbose='maybe' is not a boolean"),
    ("fence_watchdog", {"watchdog_device": "/nonexistent/watchdog"}, "refusing to count on watchdog"),
    ("fence_watchdog", {"watchdog_device": "/dev/null"}, "is not a watchdog device"),
    ("fence_watchdog", {"watchdog_device": "/etc/hostname"}, "is not a character device"),
]


@pytest.mark.parametrize(("agent", "values", "message"), BAD, ids=[f"{a}-{m[:24]}" for a, _, m in BAD])
def test_validate_all_rejects_bad_options(agent: str, values: dict[str, str], message: str) -> None:
    outcome = call(agent, action="validate-all", **values)
    assert outcome.rc == 1
    assert message in outcome.stderr
    assert outcome.stderr.startswith(f"Failed: {agent}: ")


def test_validate_all_bad_options_through_the_executable() -> None:
    done = run_agent("fence_ipmi", options(action="validate-all", ip="h", username="u", ipport="x"))
    assert done.returncode == 1
    assert "ipport='x' is not an integer" in done.stderr


@pytest.mark.parametrize(
    ("agent", "values"),
    [
        ("fence_ipmi", {"ip": "127.0.0.1", "username": "u", "password": "p"}),
        ("fence_lab", {"plug": "a", "plugs": "a,b", "switch_netns": "sw", "switch_ports": "a:p1,b:p2"}),
        ("fence_libvirt", {"plug": "vm1", "uri": "test:///default"}),
        ("fence_ssh", {"ip": "192.0.2.1"}),
        ("fence_manual", {"state_dir": "/tmp"}),
    ],
)
def test_validate_all_accepts_good_options_without_touching_the_device(
    agent: str, values: dict[str, str]
) -> None:
    outcome = call(agent, action="validate-all", **values)
    assert (outcome.rc, outcome.stderr) == (0, "")


# --- fence_watchdog ---------------------------------------------------------------------------


def test_watchdog_refuses_to_fence_without_a_watchdog() -> None:
    if os.path.exists("/dev/watchdog"):
        pytest.skip("this machine has a watchdog; the refusal path needs one that is missing")
    started = time.monotonic()
    for action in ("off", "monitor"):
        outcome = call("fence_watchdog", action=action, plug="n2", watchdog_timeout="30")
        assert outcome.rc == 1
        assert "no watchdog device at /dev/watchdog; refusing" in outcome.stderr
    assert time.monotonic() - started < 5, "it refused before waiting 2 × watchdog_timeout"


# --- fence_manual -----------------------------------------------------------------------------


def start_manual(state_dir: Path, node: str, **extra: object) -> subprocess.Popen[str]:
    request = state_dir.parent / f"{node}.stdin"
    request.write_text(
        options(action="off", plug=node, nodename=node, state_dir=state_dir, poll_interval="0.05", **extra)
    )
    with request.open() as stdin:
        return subprocess.Popen(
            [sys.executable, str(agent_path("fence_manual"))],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_manual_fencing_waits_for_the_operator(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    manual.confirm(state, "node2", operator="stale")  # given before anyone asked
    proc = start_manual(state, "node2")
    try:
        wait_for(lambda: manual.pending_requests(state) == ["node2"])
        assert not manual.confirm_path(state, "node2").exists(), "the stale confirmation was removed"
        time.sleep(0.3)
        assert proc.poll() is None, "it must not succeed before the operator confirms"
        threading.Timer(0.1, manual.confirm, args=(state, "node2")).start()
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Success: Powered OFF" in out
    assert "CRITICAL: manual fencing of node2" in err
    assert "stale confirmation" in err
    assert sorted(os.listdir(state)) == [], "request and confirmation are consumed"


def test_manual_fencing_times_out_without_confirmation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = start_manual(state, "node3", confirm_timeout="0.4")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "no operator confirmed that node3 is off within 0.4 s" in err
    assert manual.pending_requests(state) == []
    with pytest.raises(ValueError, match="not a valid name"):
        manual.confirm(state, "../x")


# --- fence_ssh (a stand-in ssh, no sshd) ------------------------------------------------------

FAKE_SSH = r"""#!/bin/sh
echo "$@" >> @DIR@/argv
[ -e @DIR@/down ] && exit 255
for last; do :; done
[ "$last" = true ] && exit 0
touch @DIR@/down
exit 255
"""


def test_ssh_agent_runs_the_command_and_verifies_the_node_is_gone(tmp_path: Path) -> None:
    fake = tmp_path / "ssh"
    fake.write_text(FAKE_SSH.replace("@DIR@", str(tmp_path)))
    fake.chmod(0o755)
    key = tmp_path / "id_test"
    key.write_text("not a real key\n")
    common = {"ip": "192.0.2.7", "ipport": "2222", "identity_file": key, "ssh_path": fake}
    assert run_agent("fence_ssh", options(action="status", **common)).returncode == 0
    done = run_agent("fence_ssh", options(action="off", **common))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Success: Powered OFF\n"
    calls = (tmp_path / "argv").read_text().splitlines()
    assert f"-i {key} -l root 192.0.2.7 reboot -f" in calls[1]
    assert "-p 2222" in calls[1]
    assert "BatchMode=yes" in calls[1]
    status = run_agent("fence_ssh", options(action="status", **common))
    assert (status.returncode, status.stdout) == (2, "Status: OFF\n")


# --- fence_libvirt (libvirt's test driver) ----------------------------------------------------

NODES_XML = """<node>
  <domain type='test'><name>node1</name><memory>65536</memory><os><type>hvm</type></os></domain>
  <domain type='test'><name>node2</name><memory>65536</memory><os><type>hvm</type></os></domain>
</node>
"""


def test_libvirt_agent_against_the_test_driver(tmp_path: Path) -> None:
    need_tools("virsh")
    nodes = tmp_path / "nodes.xml"
    nodes.write_text(NODES_XML)
    uri = f"test://{nodes}"
    listed = run_agent("fence_libvirt", options(action="list", uri=uri))
    assert (listed.returncode, listed.stdout) == (0, "node1,node1\nnode2,node2\n")
    assert run_agent("fence_libvirt", options(action="monitor", uri=uri)).returncode == 0
    status = run_agent("fence_libvirt", options(action="status", uri=uri, port="node1"))
    assert (status.returncode, status.stdout) == (0, "Status: ON\n")
    # The test driver forgets everything when virsh exits, so off is verified inside the same
    # virsh process (destroy; domstate) — which is how the agent always does it.
    off = run_agent("fence_libvirt", options(action="off", uri=uri, plug="node1"))
    assert (off.returncode, off.stdout) == (0, "Success: Powered OFF\n"), off.stderr
    on = run_agent("fence_libvirt", options(action="on", uri=uri, plug="node2"))
    assert on.returncode == 0, on.stderr
    missing = run_agent("fence_libvirt", options(action="status", uri=uri, plug="node9"))
    assert missing.returncode == 1
    assert "failed to get domain 'node9'" in missing.stderr
