"""The replicated PostgreSQL agent on three real servers in three node namespaces.

The test plays the promotable-clone scheduler (which is still being built): it runs the
actions Pacemaker would run, in the order it would run them, with the notifications it would
send, and promotes the instance whose ``crm_master`` score is highest.  What it checks is the
agent's half: that the scores pick the most advanced standby, that promote/demote/rejoin keep
every acknowledged row, that at most one server ever answers as primary, and that the agent
refuses or reports what it must.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from pgreplica_lab import CLIENT, DB_NODES, PORT, ReplicaLab, ok, wait_for

from hacluster.agents.pgsql import find_pg_binary

pytestmark = [pytest.mark.root, pytest.mark.integration]


class Sampler:
    """Asks every server ``pg_is_in_recovery()`` over and over, from start to stop."""

    def __init__(self, rl: ReplicaLab) -> None:
        self.rl = rl
        self.samples: list[tuple[float, dict[int, bool | None]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), {i: self.rl.in_recovery(i) for i in DB_NODES}))
            self._stop.wait(0.05)

    def primaries(self) -> list[list[int]]:
        return [
            [i for i, recovering in answers.items() if recovering is False] for _, answers in self.samples
        ]


@pytest.fixture
def writer_script() -> str:
    """A client loop: one autocommit INSERT per psql run; prints the id once the commit is acknowledged."""
    return (
        "i=0; while :; do i=$((i+1)); "
        'if PGCONNECT_TIMEOUT=2 psql -X -q -h "$1" -p "$2" -U postgres -d postgres '
        '-c "insert into acked (id) values ($i)" >/dev/null 2>&1; then echo "$i"; fi; done'
    )


@pytest.fixture
def rl() -> Iterator[ReplicaLab]:
    with ReplicaLab() as lab:
        yield lab
        lab.print_logs()  # shown only when the test failed


def _acked(path: str) -> set[int]:
    with open(path) as f:
        return {int(line) for line in f.read().split()}


def _rows(rl: ReplicaLab, i: int) -> set[int]:
    text = rl.sql(i, "select coalesce(string_agg(id::text, ' '), '') from acked")
    return {int(x) for x in text.split()}


def _streaming(rl: ReplicaLab, primary: int) -> set[str]:
    text = rl.sql(
        primary,
        "select coalesce(string_agg(application_name, ' '), '') from pg_stat_replication where state = 'streaming'",
    )
    return set(text.split())


def test_crash_of_the_primary_promotes_the_most_advanced_standby_and_the_old_one_rejoins_rewound(
    rl: ReplicaLab, writer_script: str
) -> None:
    rl.build()
    assert rl.scores() == {"n1": 1000, "n2": 700, "n3": 600}, rl.scores()
    acked_file = str(rl.root / "acked.txt")
    with Sampler(rl) as sampler:
        with open(acked_file, "w") as out:
            writer = rl.lab.run(
                CLIENT, ["bash", "-c", writer_script, "writer", rl.lab.address(1), str(PORT)], stdout=out
            )
            wait_for(lambda: len(_acked(acked_file)) >= 50, 60, "50 acknowledged rows")
            # The cable goes first, so n1 keeps WAL no standby has: a commit it flushed but could
            # not get acknowledged.  Its timeline diverges, and only pg_rewind can bring it back.
            rl.lab.set_link(1, up=False)
            stranded = subprocess.Popen(
                ["runuser", "-u", "postgres", "--", find_pg_binary("psql"), "-X", "-q", "-h", str(rl.nodes[1].socketdir),
                 "-p", str(PORT), "-d", "postgres", "-c", "insert into acked (id) values (-1)"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            )  # fmt: skip
            time.sleep(1.0)
            assert stranded.poll() is None, (
                "the unreplicated commit must be waiting for its synchronous standby"
            )
            rl.crash(1)
            writer.kill()
        stranded.wait(timeout=30)
        acked = _acked(acked_file)
        assert len(acked) >= 50

        # The scheduler's view: a failed primary, two standbys whose monitors publish scores.
        for i in (2, 3):
            ok(rl.act(i, "monitor"), 0)
        scores = rl.scores()
        positions = {i: rl.position(i) for i in (2, 3)}
        winner = max((2, 3), key=lambda i: (scores[f"n{i}"] or 0, -i))
        other = 5 - winner
        assert positions[winner] >= positions[other], (scores, positions)
        if positions[2] == positions[3]:
            assert winner == 2, f"the synchronous standby wins a tie: {scores}"
        assert scores[f"n{winner}"] > scores[f"n{other}"], scores

        rl.notify([2, 3], "pre", "promote", promote=[winner], active=[2, 3], unpromoted=[2, 3], all=DB_NODES)
        promoted = ok(rl.act(winner, "promote"), 0)
        assert any("promoted to primary" in line for line in promoted.log), promoted
        rl.notify([2, 3], "post", "promote", promote=[winner], active=[2, 3], promoted=[winner], all=DB_NODES)
        ok(rl.act(winner, "monitor", OCF_RESKEY_CRM_meta_role="Promoted"), 8)
        assert rl.scores()[f"n{winner}"] == 1000
        wait_for(
            lambda: f"n{other}" in _streaming(rl, winner),
            30,
            f"n{other} to stream from the new primary n{winner}",
        )
        ok(rl.act(other, "monitor"), 0)

        on_winner = _rows(rl, winner)
        assert acked <= on_winner, f"acknowledged rows lost: {sorted(acked - on_winner)[:20]}"
        assert -1 not in on_winner, "a commit that was never acknowledged came back"
        rl.sql(winner, "insert into acked (id) select g from generate_series(100001, 100100) g")

        # n1 comes back after a reboot: probe, then start; it must be rewound onto the new timeline.
        rl.lab.set_link(1, up=True)
        rl.lab.wait_for_carrier(1, up=True)
        rl.reboot(1)
        ok(rl.act(1, "monitor", OCF_RESKEY_CRM_meta_interval="0"), 7)
        started = ok(rl.act(1, "start"), 0)
        assert any(
            "rewound before rejoining" in line and "servers diverged" in line for line in started.log
        ), started
        rl.notify(DB_NODES, "post", "start", start=[1], active=DB_NODES, promoted=[winner], all=DB_NODES)
        wait_for(lambda: "n1" in _streaming(rl, winner), 30, "n1 to stream from the new primary")
        ok(rl.act(1, "monitor"), 0)
        wait_for(lambda: _rows(rl, 1) >= acked | set(range(100001, 100101)), 30, "n1 to replay every row")
        assert -1 not in _rows(rl, 1), "pg_rewind must discard the commit only n1 had"
        assert rl.in_recovery(1) is True

    primaries = sampler.primaries()
    assert len(primaries) > 50, f"too few samples to mean anything: {len(primaries)}"
    assert max(len(p) for p in primaries) <= 1, [p for p in primaries if len(p) > 1][:5]
    assert [1] in primaries, "the samples never saw the old primary"
    assert [winner] in primaries, "the samples never saw the new primary"


def test_planned_switchover_demotes_the_primary_and_it_follows_the_new_one(rl: ReplicaLab) -> None:
    rl.build()
    rl.sql(1, "insert into acked (id) select g from generate_series(1, 200) g")
    with Sampler(rl) as sampler:
        # Pacemaker's order for moving the Promoted role: demote n1, then promote n2.
        rl.notify(DB_NODES, "pre", "demote", demote=[1], active=DB_NODES, promoted=[1], all=DB_NODES)
        demoted = ok(rl.act(1, "demote"), 0)
        assert rl.in_recovery(1) is True, demoted
        rl.notify(DB_NODES, "post", "demote", demote=[1], active=DB_NODES, all=DB_NODES)
        for i in DB_NODES:
            ok(rl.act(i, "monitor"), 0)
        rl.notify(DB_NODES, "pre", "promote", promote=[2], active=DB_NODES, all=DB_NODES)
        ok(rl.act(2, "promote"), 0)
        rl.notify(DB_NODES, "post", "promote", promote=[2], active=DB_NODES, promoted=[2], all=DB_NODES)
        ok(rl.act(2, "monitor", OCF_RESKEY_CRM_meta_role="Promoted"), 8)
        wait_for(lambda: _streaming(rl, 2) == {"n1", "n3"}, 30, "n1 and n3 to stream from n2")
        rl.sql(2, "insert into acked (id) select g from generate_series(201, 300) g")
        for i in (1, 3):
            wait_for(lambda i=i: len(_rows(rl, i)) == 300, 30, f"n{i} to replay the new primary's rows")
            ok(rl.act(i, "monitor"), 0)
        # The demote itself is idempotent on what is now a standby.
        ok(rl.act(1, "demote"), 0)
    assert max(len(p) for p in sampler.primaries()) <= 1


def test_lagging_standby_is_reported_and_refused_promotion() -> None:
    with ReplicaLab(stream_grace_s=2) as rl:
        rl.build()
        # Cut n3 off: n1 rejects its replication connections and ends the one it has.
        hba = rl.nodes[1].pgdata / "pg_hba.conf"
        hba.write_text(f"host replication all {rl.lab.address(3)}/32 reject\n" + hba.read_text())
        rl.sql(1, "select pg_reload_conf()")
        rl.sql(1, "select pg_terminate_backend(pid) from pg_stat_replication where application_name = 'n3'")
        rl.sql(1, "insert into acked (id) select g from generate_series(1, 1000) g")
        wait_for(lambda: rl.act(3, "monitor").rc != 0, 30, "n3's monitor to report it")
        broken = rl.act(3, "monitor")
        assert broken.rc == 1, broken
        reason = broken.reason or ""
        assert "standby n3 is not replicating: primary n1" in reason, reason
        assert "pg_hba.conf rejects replication connection" in reason, reason
        ok(rl.act(2, "monitor"), 0)
        assert rl.scores()["n3"] == 100, rl.scores()
        assert rl.scores()["n2"] == 700, rl.scores()

        rl.crash(1)
        for i in (2, 3):
            ok(rl.act(i, "monitor"), 0)
        assert rl.position(2) > rl.position(3)
        assert rl.scores()["n2"] > rl.scores()["n3"], rl.scores()
        refused = rl.act(3, "promote")
        assert refused.rc == 1, refused
        assert "refusing to promote n3: n2" in (refused.reason or ""), refused
        assert "more advanced" in (refused.reason or ""), refused
        assert rl.in_recovery(3) is True, "a refused promotion must leave the standby as it was"
        assert rl.scores()["n3"] == 1, rl.scores()
        ok(rl.act(2, "promote"), 0)
        assert rl.in_recovery(2) is False
        assert rl.in_recovery(3) is True
        assert len(_rows(rl, 2)) == 1000
