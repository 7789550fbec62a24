"""The replicated PostgreSQL agent's rules (hacluster.agents.pgscore), driven with plain values."""

from __future__ import annotations

import pytest

from hacluster.agents.pgscore import (
    SCORE_ASYNC,
    SCORE_LAGGING,
    SCORE_PRIMARY,
    SCORE_SYNC,
    SCORE_UNKNOWN_SYNC,
    CloneEnv,
    Peer,
    ServerStatus,
    conninfo,
    conninfo_host_port,
    edit_auto_conf,
    find_primary,
    format_lsn,
    merge_peers,
    parse_lsn,
    parse_node_list,
    promotion_blocker,
    promotion_score,
)

MB = 1 << 20


def standby(position: int) -> ServerStatus:
    return ServerStatus(in_recovery=True, position=position)


def primary(position: int, timeline: int = 2, sync_state_of_asker: str = "") -> ServerStatus:
    return ServerStatus(
        in_recovery=False, position=position, timeline=timeline, sync_state_of_asker=sync_state_of_asker
    )


@pytest.mark.parametrize(
    ("text", "position"), [("0/0", 0), ("0/3000060", 0x3000060), ("1/A", (1 << 32) + 10)]
)
def test_lsn_round_trip(text: str, position: int) -> None:
    assert parse_lsn(text) == position
    assert format_lsn(position) == text


@pytest.mark.parametrize("text", ["", "3000060", "0/", "x/1", "0/123456789", "0/1/2"])
def test_malformed_lsn_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a WAL location"):
        parse_lsn(text)


def test_node_list_forms() -> None:
    peers = parse_node_list("n1 n2=10.0.0.2 n3=10.0.0.3:5433 n4=[fd00::4]:6000 n5=fd00::5", 5432)
    assert peers == (
        Peer("n1", "n1", 5432),
        Peer("n2", "10.0.0.2", 5432),
        Peer("n3", "10.0.0.3", 5433),
        Peer("n4", "fd00::4", 6000),
        Peer("n5", "fd00::5", 5432),
    )
    assert parse_node_list("  ", 5432) == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n1 -n2", "'-n2' is not a node name"),
        ("n1=10.0.0.1:99999", "port '99999' is not 1..65535"),
        ("n1=10.0.0.1:x", "port 'x' is not 1..65535"),
        ("n1=", "no host after '='"),
        ("n1 n1=10.0.0.1", "names n1 twice"),
    ],
)
def test_bad_node_list_says_which_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_node_list(text, 5432)


def test_merge_peers_adds_notified_nodes_and_never_me() -> None:
    configured = parse_node_list("n1=10.0.0.1 n2=10.0.0.2", 5432)
    merged = merge_peers(configured, ["n2", "n3", "n1", "bad name"], 5432, me="n1")
    assert merged == (Peer("n2", "10.0.0.2", 5432), Peer("n3", "n3", 5432))


@pytest.mark.parametrize(
    ("me", "streaming", "the_primary", "standbys", "sync_state", "score"),
    [
        (primary(100), False, None, (), "", SCORE_PRIMARY),
        # A primary answers: streaming and close behind it counts, by sync state.
        (standby(100), True, primary(100), (), "sync", SCORE_SYNC),
        (standby(100), True, primary(100), (), "quorum", SCORE_SYNC),
        (standby(100), True, primary(100 + MB), (), "potential", SCORE_ASYNC),
        (standby(100), True, primary(100), (), "async", SCORE_ASYNC),
        (standby(100), True, primary(100), (), "", SCORE_UNKNOWN_SYNC),
        (standby(100), True, primary(100 + 17 * MB), (), "sync", SCORE_LAGGING),
        (standby(100), False, primary(100), (), "sync", SCORE_LAGGING),
        # No primary answers: the WAL held decides, ties included; the last sync state orders them.
        (standby(500), False, None, (standby(400), standby(500)), "sync", SCORE_SYNC),
        (standby(500), False, None, (standby(400),), "potential", SCORE_ASYNC),
        (standby(500), False, None, (), "", SCORE_UNKNOWN_SYNC),
        (standby(400), False, None, (standby(500),), "sync", SCORE_LAGGING),
    ],
)
def test_promotion_score_table(
    me: ServerStatus,
    streaming: bool,
    the_primary: ServerStatus | None,
    standbys: tuple[ServerStatus, ...],
    sync_state: str,
    score: int,
) -> None:
    got = promotion_score(
        me=me,
        streaming=streaming,
        primary=the_primary,
        standbys=standbys,
        sync_state=sync_state,
        lag_tolerance=16 * MB,
    )
    assert got == score


def test_scores_rank_sync_above_async_above_lagging_below_primary() -> None:
    assert SCORE_PRIMARY > SCORE_SYNC > SCORE_ASYNC > SCORE_UNKNOWN_SYNC > SCORE_LAGGING > 0


def test_promotion_blocker() -> None:
    n1, n2, n3 = (Peer(f"n{i}", f"10.0.0.{i}", 5432) for i in (1, 2, 3))
    assert promotion_blocker("n2", 500, {}) is None
    assert promotion_blocker("n2", 500, {n3: standby(500)}) is None, "a tie does not block"
    assert promotion_blocker("n2", 500, {n3: standby(400)}) is None
    behind = promotion_blocker("n3", 0x3000000, {n2: standby(0x3000060)})
    assert behind == (
        "refusing to promote n3: n2 (10.0.0.2:5432) is more advanced (WAL 0/3000060 > 0/3000000 here); promote n2 instead"
    )
    still = promotion_blocker("n2", 900, {n1: primary(100), n3: standby(950)})
    assert still is not None
    assert still.startswith("refusing to promote n2: n1 (10.0.0.1:5432) still answers as primary")


def test_find_primary_never_picks_one_of_two() -> None:
    n1, n2, n3 = (Peer(f"n{i}", f"10.0.0.{i}", 5432) for i in (1, 2, 3))
    assert find_primary({}) is None
    assert find_primary({n1: standby(1), n2: standby(2)}) is None
    assert find_primary({n1: standby(1), n2: primary(2)}) == n2
    with pytest.raises(ValueError, match=r"2 instances answer as primary: n1 .*, n3 "):
        find_primary({n1: primary(1), n2: standby(2), n3: primary(3)})


def test_clone_env_reads_pacemaker_meta_with_legacy_spellings() -> None:
    env = {
        "OCF_RESKEY_CRM_meta_clone": "1",
        "OCF_RESKEY_CRM_meta_clone_max": "3",
        "OCF_RESKEY_CRM_meta_clone_node_max": "1",
        "OCF_RESKEY_CRM_meta_master_max": "1",
        "OCF_RESKEY_CRM_meta_notify": "true",
        "OCF_RESKEY_CRM_meta_role": "Master",
        "OCF_RESKEY_CRM_meta_notify_type": "post",
        "OCF_RESKEY_CRM_meta_notify_operation": "promote",
        "OCF_RESKEY_CRM_meta_notify_promote_uname": "n2 ",
        "OCF_RESKEY_CRM_meta_notify_master_uname": "n2",
        "OCF_RESKEY_CRM_meta_notify_slave_uname": "n1 n3",
        "OCF_RESKEY_CRM_meta_notify_demote_uname": " ",
        "OCF_RESKEY_CRM_meta_notify_active_uname": "n1 n2 n3",
    }
    clone = CloneEnv.from_env(env)
    assert clone.is_clone
    assert (clone.clone, clone.clone_max, clone.clone_node_max, clone.promoted_max) == ("1", 3, 1, 1)
    assert clone.notify
    assert clone.role == "Promoted"
    assert (clone.notify_type, clone.notify_operation) == ("post", "promote")
    assert clone.nodes("promote") == ("n2",)
    assert clone.nodes("demote") == ()
    assert clone.nodes("promoted") == ("n2",)
    assert clone.nodes("unpromoted") == ("n1", "n3")
    assert clone.nodes("promote", "active") == ("n2", "n1", "n3")
    plain = CloneEnv.from_env({})
    assert not plain.is_clone
    assert not plain.notify
    assert plain.role is None


def test_clone_env_promoted_max_wins_over_master_max() -> None:
    env = {"OCF_RESKEY_CRM_meta_promoted_max": "1", "OCF_RESKEY_CRM_meta_master_max": "2"}
    assert CloneEnv.from_env(env).promoted_max == 1


def test_malformed_clone_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="OCF_RESKEY_CRM_meta_clone_max='three' is not a whole number"):
        CloneEnv.from_env({"OCF_RESKEY_CRM_meta_clone_max": "three"})


def test_conninfo_quotes_and_reads_back() -> None:
    text = conninfo(host="10.0.0.2", port=5432, user="rep'user", application_name="n 1\\x")
    assert text == "host='10.0.0.2' port='5432' user='rep\\'user' application_name='n 1\\\\x'"
    assert conninfo_host_port(text) == ("10.0.0.2", 5432)
    assert conninfo_host_port(conninfo(host="it's", user="u")) == ("it's", None)
    assert conninfo_host_port("") is None


def test_edit_auto_conf_replaces_removes_and_keeps_the_rest() -> None:
    before = (
        "# Do not edit this file manually!\n"
        "work_mem = '8MB'\n"
        "primary_conninfo = 'host=old'\n"
        "Synchronous_Standby_Names = 'x'\n"
        "primary_conninfo = 'host=older'\n"
    )
    after = edit_auto_conf(
        before, {"primary_conninfo": "host='n2' user='it''s'", "synchronous_standby_names": None}
    )
    assert after == (
        "# Do not edit this file manually!\nwork_mem = '8MB'\nprimary_conninfo = 'host=''n2'' user=''it''''s'''\n"
    )
    assert edit_auto_conf("", {"hot_standby": "on"}) == "hot_standby = 'on'\n"
