"""``hacluster.shell.access``: every API command is classified, and the roles decide as documented.

Real connections from other uids and groups are in tests/integration/test_api_access.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hacluster.config import load_config
from hacluster.shell.access import (
    COMMANDS,
    Access,
    AccessPolicy,
    Peer,
    Role,
    audit_args,
    proc_groups,
)
from hacluster.shell.api import api_handlers
from hacluster.shell.daemon import Daemon

HACLIENT, READERS = 4106, 4100


def daemon(tmp_path: Path) -> Daemon:
    (tmp_path / "ha.cf").write_text(
        f"node solo\nucast lo 127.0.0.9\nlogfacility none\nstate_dir {tmp_path / 'state'}\n"
        f"api_socket {tmp_path / 'api.sock'}\n"
    )
    keys = tmp_path / "authkeys"
    keys.write_text("auth 1\n1 sha256 0123456789abcdef\n")
    keys.chmod(0o600)
    return Daemon(load_config(tmp_path / "ha.cf", "solo"), "solo")


def test_every_registered_api_command_is_classified(tmp_path: Path) -> None:
    # A new command must be added to access.COMMANDS (READ or CHANGE) or nobody may run it;
    # an entry left behind for a command that is gone is a mistake too.
    registered = set(api_handlers(daemon(tmp_path)))
    assert registered - set(COMMANDS) == set(), "classify these in hacluster/shell/access.py COMMANDS"
    assert set(COMMANDS) - registered == set(), "these COMMANDS entries name no API command"


def policy(readers: str | None = "hareaders") -> AccessPolicy:
    gids = {"haclient": HACLIENT, "hareaders": READERS}
    return AccessPolicy(readonly_group=lambda: readers, daemon_uid=999, lookup_gid=gids.get)


def peer(uid: int, gid: int = 5000, *groups: int) -> Peer:
    return Peer(pid=4242, uid=uid, gid=gid, groups=frozenset({gid, *groups}))


@pytest.mark.parametrize(
    ("who", "role"),
    [
        (peer(0, 0), Role.FULL),
        (peer(999), Role.FULL),  # the daemon's own user
        (peer(1001, 5000, HACLIENT), Role.FULL),
        (peer(1001, HACLIENT), Role.FULL),  # haclient as the primary group
        (peer(1001, 5000, READERS), Role.READ_ONLY),
        (peer(1001, READERS), Role.READ_ONLY),
        (peer(1001, 5000, READERS, HACLIENT), Role.FULL),
        (peer(1001), Role.NONE),
    ],
)
def test_roles(who: Peer, role: Role) -> None:
    assert policy().role(who) is role


def test_without_a_readonly_group_its_members_are_nobody() -> None:
    assert policy(readers=None).role(peer(1001, 5000, READERS)) is Role.NONE
    assert policy(readers="nosuchgroup").role(peer(1001, 5000, READERS)) is Role.NONE


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_role_against_each_command(command: str) -> None:
    rules = policy()
    assert rules.decide(peer(0, 0), command).allowed
    reader = rules.decide(peer(1001, 5000, READERS), command)
    assert reader.allowed is (COMMANDS[command] is Access.READ)
    if not reader.allowed:
        assert "may only read" in reader.refusal
        assert "group haclient" in reader.refusal
    nobody = rules.decide(peer(1001), command)
    assert not nobody.allowed
    assert "may not use the hacluster API" in nobody.refusal
    assert "or of group hareaders to read" in nobody.refusal


def test_an_unclassified_command_is_refused_to_everyone() -> None:
    decision = policy().decide(peer(0, 0), "brand_new_command")
    assert not decision.allowed
    assert "no access class" in decision.refusal


def test_groups_from_proc_are_this_process_s_and_nobody_else_s() -> None:
    me = proc_groups(os.getpid(), os.geteuid(), os.getegid())
    assert me == frozenset(os.getgroups())
    assert proc_groups(os.getpid(), os.geteuid() + 1, os.getegid()) == frozenset(), (
        "a reused pid lends nothing"
    )
    assert proc_groups(2**22 + 1, 0, 0) == frozenset()  # above pid_max: no such process


def test_audit_args_hide_secrets_and_long_texts() -> None:
    shown = json.loads(
        audit_args(
            {"command": "configure_load", "text": "x" * 500, "password": "pw", "node": "n1", "dry_run": False}
        )
    )
    assert shown == {"text": "<500 characters>", "password": "<redacted>", "node": "n1", "dry_run": False}
