"""hacrm's argument trees, exit status 2 for bad usage, the completion script, and the pure
edits behind hb_standby/hb_takeover and timed pins.  No daemon is needed."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from hacluster.cli import completion
from hacluster.cli.commands import resource, status
from hacluster.cli.commands.heartbeat import cl_status_main, hb_standby_main, hb_takeover_main
from hacluster.cli.main import build_parser, main
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import edits
from hacluster.core.cib import ClusterConfig

NO_DAEMON = ("--socket", "/nonexistent/hacluster.sock")


def run(entry: Callable[[list[str]], int], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# --- argument trees -------------------------------------------------------------------------


def test_every_mutating_command_accepts_dry_run() -> None:
    tree = completion.command_tree(build_parser())
    mutating = [
        "node standby",
        "node online",
        "node maintenance",
        "node attribute",
        "node fence",
        "node fence-confirm",
        "resource start",
        "resource stop",
        "resource restart",
        "resource move",
        "resource unmove",
        "resource cleanup",
        "resource failcount",
        "hb_standby",
        "hb_takeover",
    ]
    missing = [path for path in mutating if "--dry-run" not in tree[path]["opts"]]
    assert not missing


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("status", "--watch"), {"watch": True, "interval": 1000, "full": False}),
        (("status", "--watch", "--interval", "250ms"), {"interval": 250}),
        (("status", "--full"), {"full": True, "watch": False}),
        (("node", "standby", "--all"), {"all": True, "node": ""}),
        (("node", "maintenance", "n1"), {"state": "on"}),
        (("node", "maintenance", "n1", "off"), {"state": "off"}),
        (("node", "attribute", "n1", "rack", "r1"), {"name": "rack", "value": "r1", "delete": None}),
        (("node", "attribute", "n1", "--delete", "rack"), {"name": None, "delete": "rack"}),
        (("resource", "restart", "web", "--wait", "2m"), {"wait": 120.0, "dry_run": False}),
        (("resource", "failcount", "web"), {"action": "show", "node": ""}),
        (("resource", "failcount", "web", "delete", "--node", "n2"), {"action": "delete", "node": "n2"}),
        (("resource", "move", "web", "n2", "--pin"), {"pin": True, "until": None}),
        (("hb_standby",), {"set": "all"}),
        (("hb_takeover", "failback"), {"set": "failback"}),
        (("cl_status", "hbparameter", "-p", "keepalive"), {"parameter": "keepalive"}),
        (("cl_status", "hblinkstatus", "n2", "eth1"), {"node": "n2", "link": "eth1"}),
        (("completion", "bash"), {"shell": "bash"}),
    ],
)
def test_arguments_parse(argv: tuple[str, ...], expected: dict[str, object]) -> None:
    args = parse(*argv)
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("status", "--interval", "soon"), "is not a time"),
        (("status", "--interval", "0"), "must be more than 0"),
        (("node", "maintenance", "n1", "maybe"), "invalid choice"),
        (("resource", "restart", "web", "--wait", "forever"), "is not a time"),
        (("resource", "move", "web", "n2", "--pin", "--until", "1999-01-01"), "is not in the future"),
        (("resource", "move", "web", "n2", "--pin", "--until", "someday"), "2030-01-31T18:00"),
        (("resource", "failcount", "web", "reset"), "invalid choice"),
        (("hb_standby", "everything"), "invalid choice"),
        (("cl_status", "hbparameter"), "-p"),
        (("cl_status", "nodestatus"), "NODE"),
        (("completion", "zsh"), "invalid choice"),
        (("node",), "NODE_COMMAND"),
    ],
)
def test_bad_usage_exits_2_with_a_message(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(main, *NO_DAEMON, *argv)
    assert code == 2
    assert out == ""
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("node", "standby"), "hacrm node standby NODE"),
        (("node", "online", "n1", "--all"), "not both"),
        (("node", "attribute", "n1", "rack", "--delete", "rack"), "--delete NAME takes no other"),
        (("resource", "move", "web", "n2", "--until", "1h"), "--until needs --pin"),
    ],
)
def test_bad_combinations_exit_2_before_asking_the_daemon(argv: tuple[str, ...], message: str) -> None:
    code, _out, err = run(main, *NO_DAEMON, *argv)
    assert code == 2
    assert message in err
    assert "DAEMON_NOT_RUNNING" not in err


def test_without_a_daemon_commands_exit_1_and_say_how_to_start_it() -> None:
    code, _out, err = run(main, *NO_DAEMON, "status")
    assert code == 1
    assert "DAEMON_NOT_RUNNING" in err


def test_heartbeat_scripts_without_a_daemon() -> None:
    assert run(cl_status_main, *NO_DAEMON, "hbstatus") == (1, "hacluster is stopped on this machine.\n", "")
    code, _out, err = run(cl_status_main, *NO_DAEMON, "nodestatus", "n1")
    assert code == 1
    assert err.startswith("cl_status: no daemon socket")
    assert run(cl_status_main, *NO_DAEMON, "bogus")[0] == 2
    assert run(hb_standby_main, *NO_DAEMON, "bogus")[0] == 2
    assert run(hb_takeover_main, *NO_DAEMON, "all")[0] == 1
    assert "foreign/failback" in run(hb_standby_main, "--help")[1]


def test_until_takes_a_date_or_a_duration() -> None:
    assert resource.until_epoch_s("90m", now_s=1_000.0) == 1_000 + 5_400
    assert resource.until_epoch_s("PT1H", now_s=1_000.0) == 4_600
    local = int(datetime(2030, 1, 31, 18, 0).timestamp())  # a date without a zone is local time
    assert resource.until_epoch_s("2030-01-31T18:00", now_s=0) == local
    assert resource.until_epoch_s("2030-01-31 18:00", now_s=0) == resource.until_epoch_s(
        "2030-01-31T18:00", 0
    )


def test_watch_ignores_timers_but_not_state() -> None:
    doc = {
        "cluster": {"node": "n1", "uptime_ms": 5, "pid": 1, "dc": "n1"},
        "nodes": [
            {
                "name": "n1",
                "state": "active",
                "attributes": {},
                "links": [{"state": "up", "last_heard_ms_ago": 3}],
            }
        ],
        "resources": [],
    }
    later = {**doc, "cluster": {**doc["cluster"], "uptime_ms": 900}}
    later["nodes"] = [{**doc["nodes"][0], "last_heard_ms_ago": 80}]
    assert status.significant(later) == status.significant(doc)
    changed = {**doc, "nodes": [{**doc["nodes"][0], "state": "dead"}]}
    assert status.significant(changed) != status.significant(doc)


# --- completion -----------------------------------------------------------------------------


def test_completion_script_names_every_command() -> None:
    code, script, _ = run(main, "completion", "bash")
    assert code == 0
    tree = completion.command_tree(build_parser())
    for path, entry in tree.items():
        for sub in entry["sub"]:
            assert sub in script, f"{path} {sub}"
    assert "complete -F _hacrm hacrm" in script


def test_complete_prints_nothing_without_a_daemon() -> None:
    assert run(main, *NO_DAEMON, "--complete", "nodes") == (0, "", "")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["hacrm", ""], {"status", "node", "resource", "cl_status", "completion"}),
        (["hacrm", "no"], {"node"}),
        (["hacrm", "node", "m"], {"maintenance"}),
        (["hacrm", "--socket", "/x", "resource", "re"], {"restart"}),
        (["hacrm", "node", "maintenance", "n1", ""], {"on", "off"}),
        (["hacrm", "status", "--w"], {"--watch"}),
        (["hacrm", "cl_status", "nodes"], {"nodestatus"}),
    ],
)
def test_bash_completion_completes(words: list[str], expected: set[str]) -> None:
    script = completion.bash_script()
    probe = (
        script
        + f"\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + '_hacrm; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    got = set(done.stdout.split())
    assert expected <= got


# --- pure edits behind the commands ---------------------------------------------------------

CONFIG = """\
primitive web ocf:hacluster:Dummy
primitive app ocf:hacluster:Dummy
primitive extra ocf:hacluster:Dummy
group service web app
location prefer-service service 100: n1
location prefer-extra extra 100: n2
property stonith-enabled=false
"""
NODES = ("n1", "n2", "n3")


def config() -> ClusterConfig:
    return parse_resources_crm(CONFIG, "resources.crm")


HOME = {"web": {"n1"}, "app": {"n1"}, "extra": {"n2"}}


def test_heartbeat_sets_are_relative_to_the_node() -> None:
    cfg = config()
    assert edits.heartbeat_units(cfg, "n1", "local") == ["service"]
    assert edits.heartbeat_units(cfg, "n1", "foreign") == ["extra"]
    assert edits.heartbeat_units(cfg, "n1", "failback") == ["extra"]
    assert edits.heartbeat_units(cfg, "n3", "local") == []
    assert edits.rsc_hold(cfg, "n1", HOME, False) == "local"
    assert edits.rsc_hold(cfg, "n2", HOME, False) == "local"
    assert edits.rsc_hold(cfg, "n3", HOME, False) == "none"
    assert edits.rsc_hold(cfg, "n1", {**HOME, "extra": {"n1"}}, False) == "all"
    assert edits.rsc_hold(cfg, "n1", HOME, True) == "transition"


def test_hand_over_standby_local_pins_running_units_to_another_node() -> None:
    cfg = config()
    new, moves = edits.hand_over(
        cfg, NODES, "n1", "local", takeover=False, running_on=HOME, available=("n1", "n2", "n3")
    )
    assert moves == [("service", "n2")]
    assert new.epoch == cfg.epoch + 1
    assert [p[:3] for p in edits.pins(new)] == [("cli-prefer-service", "service", "n2")]
    # Standby foreign on n1: nothing foreign runs there, so nothing changes.
    same, none = edits.hand_over(
        cfg, NODES, "n1", "foreign", takeover=False, running_on=HOME, available=NODES
    )
    assert (same, none) == (cfg, [])
    with pytest.raises(edits.EditError, match="no other node can take service"):
        edits.hand_over(cfg, NODES, "n1", "local", takeover=False, running_on=HOME, available=("n1",))


def test_hand_over_all_is_standby_and_takeover_ends_it() -> None:
    cfg = config()
    standby, moves = edits.hand_over(
        cfg, NODES, "n1", "all", takeover=False, running_on=HOME, available=NODES
    )
    assert moves == []
    assert standby.node_attribute("n1", "standby") == "on"
    back, moves = edits.hand_over(
        standby, NODES, "n1", "all", takeover=True, running_on=HOME, available=NODES
    )
    assert back.node_attribute("n1", "standby") is None
    assert moves == [("extra", "n1")]
    assert back.epoch == standby.epoch + 1


def test_timed_pins_expire_with_their_attribute() -> None:
    cfg = edits.pin(config(), NODES, "extra", "n3", until_s=1_000)
    assert edits.pins(cfg) == [("cli-prefer-extra", "extra", "n3", 1_000)]
    assert cfg.node_attribute("n3", "cli-prefer-extra-until") == "1000"
    assert cfg.check() == []
    assert edits.expire_pins(cfg, 999) is None
    expired = edits.expire_pins(cfg, 1_000)
    assert expired is not None
    assert edits.pins(expired) == []
    assert expired.node_attributes == ()
    assert expired.epoch == cfg.epoch + 1
    # An expiry left behind by `resource unmove` is tidied up too.
    unmoved = edits.unmove(cfg, "extra")
    tidy = edits.expire_pins(unmoved, 0)
    assert tidy is not None
    assert tidy.node_attributes == ()
    # Re-pinning without --until drops the old expiry.
    assert edits.pin(cfg, NODES, "extra", "n2").node_attributes == ()
    assert replace(cfg, epoch=0) != replace(edits.pin(cfg, NODES, "extra", "n2"), epoch=0)
