"""hacrm, cl_status, hb_standby and hb_takeover against real daemons on loopback (no root).

One three-node cluster (``DemoCluster``) serves the module: group ``service`` prefers n1 and
``extra`` prefers n2, both with score 100 and stickiness 0.  Each test leaves placement as it
found it (preference honoured, no CLI constraints), so the tests run in any order except the
last one, which kills n3.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.cli.client import CliError, request
from hacluster.cli.commands.heartbeat import cl_status_main, hb_standby_main, hb_takeover_main
from hacluster.cli.main import main
from hacluster.shell.demo import DemoCluster

pytestmark = pytest.mark.integration

RESOURCES = """\
primitive web ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive app ocf:hacluster:Dummy op monitor interval=1s timeout=5s
primitive extra ocf:hacluster:Dummy op monitor interval=1s timeout=5s
group service web app
location prefer-service service 100: n1
location prefer-extra extra 100: n2
property stonith-enabled=false
"""


def run(entry: Callable[[list[str]], int], *argv: str) -> tuple[int, str, str]:
    """Call a CLI entry point in this process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = entry(list(argv))
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def wait_for(what: str, predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Cli:
    def __init__(self, cluster: DemoCluster) -> None:
        self.cluster = cluster
        self.sock = cluster.socket_of("n1")

    def hacrm(self, *argv: str, node: str = "n1") -> tuple[int, str, str]:
        return run(main, "--socket", self.cluster.socket_of(node), *argv)

    def ok(self, *argv: str, node: str = "n1") -> str:
        status, out, err = self.hacrm(*argv, node=node)
        assert status == 0, f"hacrm {' '.join(argv)} exited {status}: {out}{err}"
        return out

    def status(self) -> dict[str, Any]:
        return request(self.sock, "status_ext")

    def epoch(self) -> int:
        return int(self.status()["cluster"]["config_epoch"])

    def where(self) -> dict[str, str | None]:
        """Group or resource -> the one node running it (None while moving or stopped)."""
        by_id = {r["id"]: r for r in self.status()["resources"]}

        def unit(members: list[str]) -> str | None:
            nodes = {by_id[m]["node"] if by_id[m]["state"] == "started" else None for m in members}
            return nodes.pop() if len(nodes) == 1 else None

        return {"service": unit(["web", "app"]), "extra": unit(["extra"])}

    def wait_where(self, service: str | None, extra: str | None, timeout_s: float = 10.0) -> None:
        want = {"service": service, "extra": extra}
        wait_for(f"placement {want}", lambda: self.where() == want, timeout_s)

    def cli_constraints(self) -> list[str]:
        return re.findall(r"^location (cli-\S+)", self.ok("configure", "show"), re.MULTILINE)

    def reset(self) -> None:
        """Back to the starting point: no CLI constraints, no standby, preference honoured."""
        for rsc in ("service", "extra"):
            self.hacrm("resource", "unmove", rsc)
        self.ok("node", "online", "--all")
        self.wait_where("n1", "n2")


def start_cluster(root: Path, names: int, resources: str) -> DemoCluster:
    cluster = DemoCluster(root, names)
    for name in cluster.names:
        (root / name / "resources.crm").write_text(resources)
    for name in cluster.names:
        cluster.start(name)
    assert cluster.wait_all_active(), f"daemons did not all become active; see {root}/*/stderr.log"
    return cluster


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    root = Path(tempfile.mkdtemp(prefix="hacluster-cli-e2e-"))
    cluster = start_cluster(root, 3, RESOURCES)
    try:
        c = Cli(cluster)
        c.wait_where("n1", "n2", timeout_s=20)
        yield c
    finally:
        cluster.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def clean(cli: Cli) -> Iterator[Cli]:
    yield cli
    cli.reset()


def test_standby_moves_the_group_and_online_brings_it_back_without_stickiness(clean: Cli) -> None:
    clean.ok("node", "standby", "n1")
    wait_for("service off n1", lambda: clean.where()["service"] in ("n2", "n3"))
    assert clean.status()["nodes"][0]["standby"] is True
    clean.ok("node", "online", "n1")
    clean.wait_where("n1", "n2")


def test_online_leaves_the_group_where_it_is_when_stickiness_outweighs_the_preference(clean: Cli) -> None:
    request(clean.sock, "resource_meta", resource="service", name="resource-stickiness", value="200")
    try:
        clean.ok("node", "standby", "n1")
        holder = wait_for(
            "service off n1",
            lambda: clean.where()["service"] not in (None, "n1") and clean.where()["service"],
        )
        clean.ok("node", "online", "n1")
        time.sleep(1.0)  # a plan that wanted to move it back would have started it on n1 by now
        assert clean.where()["service"] == holder
    finally:
        request(clean.sock, "resource_meta", resource="service", name="resource-stickiness", value=None)


def test_move_is_one_shot(clean: Cli) -> None:
    n3 = clean.cluster.socket_of("n3")
    before = len(request(n3, "history", resource="extra", code="RESOURCE_START")["events"])
    moved = clean.ok("resource", "move", "extra", "n3")
    # With stickiness 0 and its preference for n2, extra goes home as soon as the move is done:
    # the stay on n3 can be shorter than a status poll, so n3's own history is the witness.
    assert "may move back" in moved
    wait_for(
        "extra started on n3",
        lambda: len(request(n3, "history", resource="extra", code="RESOURCE_START")["events"]) > before,
    )
    wait_for("the one-shot constraint to go", lambda: not clean.cli_constraints())
    clean.wait_where("n1", "n2")


def test_pin_stays_until_unmove_and_is_listed_in_status(clean: Cli) -> None:
    clean.ok("resource", "move", "extra", "n3", "--pin")
    clean.wait_where("n1", "n3")
    time.sleep(0.5)
    assert clean.cli_constraints() == ["cli-prefer-extra"]
    assert "cli-prefer-extra: extra pinned to n3 until unmove" in clean.ok("status")
    clean.ok("resource", "unmove", "extra")
    clean.wait_where("n1", "n2")


def test_pin_with_until_is_removed_by_the_dc_when_it_expires(clean: Cli) -> None:
    out = clean.ok("resource", "move", "extra", "n3", "--pin", "--until", "2s")
    assert "pin cli-prefer-extra ends at" in out
    assert clean.status()["pins"][0]["until_s"] is not None
    clean.wait_where("n1", "n3")
    wait_for("the pin to expire", lambda: not clean.status()["pins"], timeout_s=6)
    attributes = [n["attributes"] for n in clean.status()["nodes"]]
    assert all(not any(k.startswith("cli-") for k in a) for a in attributes), attributes
    clean.wait_where("n1", "n2")


@pytest.mark.parametrize(
    "argv",
    [
        ("node", "standby", "n1"),
        ("node", "standby", "--all"),
        ("node", "online", "--all"),
        ("node", "maintenance", "n1"),
        ("node", "attribute", "n2", "rack", "r1"),
        ("resource", "stop", "service"),
        ("resource", "move", "extra", "n3"),
        ("resource", "move", "extra", "n3", "--pin", "--until", "1h"),
        ("resource", "restart", "service"),
        ("resource", "failcount", "extra", "delete"),
        ("hb_standby", "all"),
        ("hb_takeover", "foreign"),
    ],
)
def test_dry_run_changes_nothing(cli: Cli, argv: tuple[str, ...]) -> None:
    before = cli.epoch()
    out = cli.ok(*argv, "--dry-run")
    assert "dry run" in out
    time.sleep(0.2)
    assert cli.epoch() == before
    assert cli.where() == {"service": "n1", "extra": "n2"}


def test_bad_resources_file_on_sighup_is_refused_and_the_running_config_kept(cli: Cli) -> None:
    path = cli.cluster.root / "n1" / "resources.crm"
    log = cli.cluster.root / "n1" / "ha-log"
    before, shown = cli.epoch(), cli.ok("configure", "show")
    good = path.read_text()
    path.write_text(good + "primitive broken ocf:hacluster:Dummy op monitor interval=soon\ncolocation x\n")
    try:
        cli.cluster.procs["n1"].send_signal(signal.SIGHUP)
        wait_for("the refusal in the log", lambda: "config reload refused" in log.read_text())
        refused = [line for line in log.read_text().splitlines() if "config reload refused" in line]
        assert any(re.search(r"resources\.crm:8\b", line) for line in refused), refused
        assert any(re.search(r"resources\.crm:9\b", line) for line in refused), refused
        time.sleep(0.3)
        assert cli.epoch() == before
        assert cli.ok("configure", "show") == shown
        assert cli.where() == {"service": "n1", "extra": "n2"}
    finally:
        path.write_text(good)


def test_restart_stops_then_starts_and_puts_target_role_back(clean: Cli) -> None:
    log = clean.cluster.root / "n2" / "ha-log"
    stops = log.read_text().count("extra stopped")
    request(clean.sock, "resource_meta", resource="extra", name="target-role", value="Started")
    out = clean.ok("resource", "restart", "extra", "--wait", "20s")
    assert "extra restarted (running on n2)" in out
    assert log.read_text().count("extra stopped") == stops + 1
    assert request(clean.sock, "resource_show", resource="extra")["meta"].get("target-role") == "Started"
    request(clean.sock, "resource_meta", resource="extra", name="target-role", value=None)
    # A group restarts as a whole; with no target-role before, none after.
    assert "service restarted (running on n1)" in clean.ok("resource", "restart", "service")
    assert "target-role" not in request(clean.sock, "resource_show", resource="service")["meta"]
    # Nothing to restart: a stopped resource is refused and left stopped.
    clean.ok("resource", "stop", "extra")
    status, _out, err = clean.hacrm("resource", "restart", "extra")
    assert status == 1
    assert "RESOURCE_STOPPED" in err
    assert "hacrm resource start extra" in err
    clean.ok("resource", "start", "extra")


def test_hb_standby_and_hb_takeover_move_the_right_sets(clean: Cli) -> None:
    sock = ("--socket", clean.sock)  # run on n1: service is local to n1, extra is foreign
    status, out, _ = run(hb_standby_main, *sock, "local")
    assert status == 0, out
    assert "service -> n2" in out
    clean.wait_where("n2", "n2")
    status, out, _ = run(hb_takeover_main, *sock, "foreign")
    assert status == 0, out
    assert "extra -> n1" in out
    assert "service" not in out
    clean.wait_where("n2", "n1")
    status, out, _ = run(hb_takeover_main, *sock, "local")
    clean.wait_where("n1", "n1")
    assert run(cl_status_main, *sock, "rscstatus")[1] == "all\n"
    status, out, _ = run(hb_standby_main, *sock, "failback")  # = foreign: extra goes home to n2
    assert "extra -> n2" in out
    clean.wait_where("n1", "n2")
    assert run(cl_status_main, *sock, "rscstatus")[1] == "local\n"
    status, out, _ = run(hb_standby_main, *sock)  # all: n1 goes into standby
    assert status == 0
    assert "n1 is in standby" in out
    wait_for("service off n1", lambda: clean.where()["service"] in ("n2", "n3"))
    assert run(cl_status_main, *sock, "rscstatus")[1] == "none\n"
    status, out, _ = run(hb_takeover_main, *sock, "all")
    clean.wait_where("n1", "n1")
    assert clean.status()["nodes"][0]["standby"] is False
    assert sorted(clean.cli_constraints()) == ["cli-prefer-extra", "cli-prefer-service"]
    assert run(hb_standby_main, *sock, "nonsense")[0] == 2


def test_cl_status_output_and_exit_codes(cli: Cli) -> None:
    sock = ("--socket", cli.sock)
    assert run(cl_status_main, *sock, "hbstatus") == (0, "hacluster is running on this machine.\n", "")
    gone = ("--socket", str(cli.cluster.root / "nothing.sock"))
    assert run(cl_status_main, *gone, "hbstatus") == (1, "hacluster is stopped on this machine.\n", "")
    assert run(cl_status_main, *sock, "listnodes") == (0, "n1\nn2\nn3\n", "")
    assert run(cl_status_main, *sock, "nodestatus", "n2") == (0, "active\n", "")
    assert run(cl_status_main, *sock, "nodestatus", "-m", "n2")[1] == "The cluster node n2 is active\n"
    status, out, err = run(cl_status_main, *sock, "nodestatus", "nosuch")
    assert (status, out) == (2, "")
    assert "nosuch is not a node" in err
    assert run(cl_status_main, *sock, "nodetype", "n3") == (0, "normal\n", "")
    links = run(cl_status_main, *sock, "listhblinks", "n2")[1].split("\n")[0].strip()
    assert links
    assert run(cl_status_main, *sock, "hblinkstatus", "n2", links) == (0, "up\n", "")
    assert run(cl_status_main, *sock, "hblinkstatus", "n2", "eth9")[0] == 2
    assert run(cl_status_main, *sock, "hbparameter", "-p", "keepalive") == (0, "100ms\n", "")
    assert run(cl_status_main, *sock, "hbparameter", "-p", "baud") == (1, "", "")
    assert run(cl_status_main, *sock, "rscstatus") == (0, "local\n", "")
    assert run(cl_status_main, *sock, "nosuchcommand")[0] == 2
    # The same through hacrm.
    assert cli.hacrm("cl_status", "nodestatus", "n3") == (0, "active\n", "")


def test_node_show_attribute_and_failcount(clean: Cli) -> None:
    out = clean.ok("node", "show", "n2")
    assert out.startswith("Node n2: active")
    assert "gap p50" in out
    assert "extra\t(ocf:hacluster:Dummy)" in out
    clean.ok("node", "attribute", "n2", "rack", "r1")
    assert clean.ok("node", "attribute", "n2", "rack") == "r1\n"
    assert "rack=r1" in clean.ok("node", "attribute", "n2")
    assert "rack=r1" in clean.ok("status", "--full")
    clean.ok("node", "attribute", "n2", "--delete", "rack")
    status, _out, err = clean.hacrm("node", "attribute", "n2", "rack")
    assert status == 1
    assert "no attribute 'rack'" in err
    assert clean.ok("resource", "failcount", "extra") == "extra: no failures\n"
    assert clean.ok("resource", "failcount", "extra", "delete").startswith("done")
    show = clean.ok("resource", "show", "extra")
    assert "agent ocf:hacluster:Dummy" in show
    assert "op monitor interval=1s timeout=5s" in show
    assert clean.hacrm("resource", "show", "nosuch")[0] == 2
    assert clean.hacrm("node", "show", "nosuch")[0] == 2


def test_watch_redraws_on_change_and_exits_0_on_ctrl_c(clean: Cli) -> None:
    argv = [sys.executable, "-m", "hacluster.cli.main", "--socket", clean.sock, "status", "--watch"]
    proc = subprocess.Popen(
        [*argv, "--interval", "30s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("--- ")  # not a tty: separated snapshots, no escape codes
        clean.ok("node", "attribute", "n3", "rack", "r2")
        lines = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("--- "):
                break
        assert lines[-1].startswith("--- "), "no redraw within 5 s of the change (interval is 30 s)"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        clean.ok("node", "attribute", "n3", "--delete", "rack")
    assert proc.returncode == 0, err
    assert "\x1b[" not in "".join(lines)


def test_bad_arguments_exit_2_and_name_the_fix(cli: Cli) -> None:
    status, _, err = cli.hacrm("node", "standby")
    assert status == 2
    assert "hacrm node standby NODE" in err
    status, _, err = cli.hacrm("node", "standby", "nosuch")
    assert status == 2
    assert "configured nodes: n1, n2, n3" in err
    status, _, err = cli.hacrm("resource", "move", "extra", "n3", "--until", "1h")
    assert status == 2
    assert "--until needs --pin" in err
    status, _, err = cli.hacrm("resource", "move", "extra", "n3", "--pin", "--until", "yesterday")
    assert status == 2
    assert "2030-01-31T18:00" in err


def test_zz_dead_node_status_exits_1(cli: Cli) -> None:
    """Last in the module: it kills n3."""
    cli.cluster.kill("n3")
    sock = ("--socket", cli.sock)
    wait_for("n3 dead", lambda: run(cl_status_main, *sock, "nodestatus", "n3")[1] == "dead\n")
    assert run(cl_status_main, *sock, "nodestatus", "n3")[0] == 1
    with contextlib.suppress(CliError):
        cli.reset()


# --- node maintenance, on its own cluster ------------------------------------------------------

MAINTENANCE_RESOURCES = """\
primitive web ocf:hacluster:Dummy op monitor interval=1s timeout=5s
location prefer-web web 100: n1
property stonith-enabled=false
"""


def test_node_maintenance_leaves_resources_running_unmanaged() -> None:
    root = Path(tempfile.mkdtemp(prefix="hacluster-cli-maint-"))
    cluster = start_cluster(root, 2, MAINTENANCE_RESOURCES)
    sock = cluster.socket_of("n2")
    try:

        def web() -> dict[str, Any]:
            return next(
                r for r in request(sock, "status_ext", timeout_s=1.0)["resources"] if r["id"] == "web"
            )

        wait_for("web on n1", lambda: web()["state"] == "started" and web()["node"] == "n1", 20)
        assert run(main, "--socket", sock, "node", "maintenance", "n1")[0] == 0
        wait_for("web unmanaged", lambda: not web()["managed"])
        time.sleep(1.0)  # n1 is out of placement, yet nothing stops web there or starts it elsewhere
        assert web()["nodes"] == ["n1"]
        assert web()["state"] == "started"
        assert "(unmanaged)" in run(main, "--socket", sock, "status")[1]
        assert cluster.states_seen_by("n2").get("n1") == "active"
        # n1 itself keeps answering and keeps hearing its peer (it only stopped managing).
        assert request(cluster.socket_of("n1"), "ping", timeout_s=1.0) == {"pong": True}
        assert cluster.states_seen_by("n1").get("n2") == "active"
        assert run(main, "--socket", sock, "node", "maintenance", "n1", "off")[0] == 0
        wait_for("web managed on n1", lambda: web()["managed"] and web()["nodes"] == ["n1"])
    finally:
        cluster.stop_all()
        shutil.rmtree(root, ignore_errors=True)
