"""The resource-side journal audit (tests/integration/journal_audit.py) on hand-written journals.

The fault campaign and the fencing tests judge real runs with it; here every rule is shown to
fire on a journal built to break it, and to stay quiet on one that keeps it, including the
promote/demote lines and promoted-max limits that promotable clones (issue 8) will produce.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from journal_audit import JournalReader, JournalReport, Limits, Line, analyse_journal, judge, parse_lines

S = 1_000_000_000  # one second in ns; the journals below count in seconds for readability


def journal(text: str) -> list[Line]:
    """``"1 n1 web start"`` lines (times in seconds) → journal lines in ns."""
    rows = []
    for raw in text.strip().splitlines():
        at, node, rsc, what = raw.split()
        rows.append(f"{int(float(at) * S)} {node} {rsc} {what}")
    return parse_lines("\n".join(rows))


def rules(report: JournalReport) -> list[tuple[str, str]]:
    return [(v.rule, v.rsc) for v in report.violations]


def test_a_clean_move_has_no_violation() -> None:
    lines = journal("""
        1 n1 web start
        5 n1 web stop
        6 n2 web start
    """)
    report = judge(lines, {}, {}, now_ns=10 * S)
    assert report.violations == []
    assert [(i.node, i.ended_by) for i in report.intervals] == [("n1", "stop"), ("n2", "open")]
    assert report.open_copies() == {"web": ["n2"]}


def test_start_before_the_old_holder_stopped_is_two_active_copies() -> None:
    lines = journal("""
        1 n1 web start
        6 n2 web start
        7 n1 web stop
    """)
    report = judge(lines, {}, {}, now_ns=10 * S)
    assert rules(report) == [("active", "web")]
    violation = report.violations[0]
    assert violation.at_ns == 6 * S
    assert violation.nodes == ("n1", "n2")
    assert "2 active copies, at most 1 allowed" in violation.detail
    assert any("n2 web start   <==" in line for line in violation.excerpt), violation.excerpt
    assert len(report.overlaps) == 1
    assert report.overlaps[0].ms == pytest.approx(1000.0)


def test_a_power_off_ends_the_copy_so_a_later_start_is_safe() -> None:
    lines = journal("""
        1 n1 web start
        6 n2 web start
    """)
    fenced_before_the_start = judge(lines, {}, {"n1": [5 * S]}, now_ns=10 * S)
    assert fenced_before_the_start.violations == []
    assert fenced_before_the_start.intervals[0].ended_by == "power-off"
    fenced_too_late = judge(lines, {}, {"n1": [int(6.5 * S)]}, now_ns=10 * S)
    assert rules(fenced_too_late) == [("active", "web")]
    assert "powered off (upper bound)" in "\n".join(fenced_too_late.violations[0].excerpt)


def test_a_power_off_before_the_start_does_not_end_a_later_copy() -> None:
    lines = journal("""
        3 n1 web start
        6 n2 web start
    """)
    report = judge(lines, {}, {"n1": [2 * S]}, now_ns=10 * S)
    assert rules(report) == [("active", "web")]


def test_promoted_within_the_limit_and_over_it() -> None:
    lines = journal("""
        1 n1 db start
        1 n2 db start
        2 n1 db promote
        4 n1 db demote
        5 n2 db promote
    """)
    one = {"db": Limits(max_active=2, max_promoted=1)}
    report = judge(lines, {}, {}, limits=one, now_ns=10 * S)
    assert report.violations == []
    assert [(i.node, i.ended_by) for i in report.promoted] == [("n1", "demote"), ("n2", "open")]
    overlapping = journal("""
        1 n1 db start
        1 n2 db start
        2 n1 db promote
        3 n2 db promote
        4 n1 db demote
    """)
    report = judge(overlapping, {}, {}, limits=one, now_ns=10 * S)
    assert rules(report) == [("promoted", "db")]
    assert report.violations[0].at_ns == 3 * S
    assert report.violations[0].nodes == ("n1", "n2")
    two = {"db": Limits(max_active=2, max_promoted=2)}
    assert judge(overlapping, {}, {}, limits=two, now_ns=10 * S).violations == []


def test_a_stop_or_a_power_off_ends_the_promotion_too() -> None:
    lines = journal("""
        1 n1 db start
        1 n2 db start
        2 n1 db promote
        3 n1 db stop
        4 n2 db promote
        5 n3 db start
        6 n2 db stop
    """)
    limits = {"db": Limits(max_active=2, max_promoted=1)}
    assert judge(lines, {}, {}, limits=limits, now_ns=10 * S).violations == []
    fenced = journal("""
        1 n1 db start
        1 n2 db start
        2 n1 db promote
        4 n2 db promote
    """)
    report = judge(fenced, {}, {"n1": [3 * S]}, limits=limits, now_ns=10 * S)
    assert report.violations == []
    assert report.promoted[0].ended_by == "power-off"


def test_a_primitive_may_not_be_promoted_at_all() -> None:
    lines = journal("""
        1 n1 web start
        2 n1 web promote
    """)
    assert rules(judge(lines, {}, {}, now_ns=10 * S)) == [("promoted", "web")]


def test_promote_of_a_copy_that_is_not_running() -> None:
    lines = journal("""
        1 n1 db start
        2 n2 db promote
    """)
    report = judge(lines, {}, {}, limits={"db": Limits(2, 1)}, now_ns=10 * S)
    assert rules(report) == [("promote-inactive", "db")]


def test_more_clone_copies_than_clone_max() -> None:
    lines = journal("""
        1 n1 web start
        1 n2 web start
        2 n3 web start
    """)
    assert judge(lines, {}, {}, limits={"web": Limits(max_active=3)}, now_ns=10 * S).violations == []
    report = judge(lines, {}, {}, limits={"web": Limits(max_active=2)}, now_ns=10 * S)
    assert rules(report) == [("active", "web")]
    assert report.violations[0].at_ns == 2 * S


def test_a_dependent_active_without_what_it_requires() -> None:
    in_order = journal("""
        1 n1 ip start
        2 n1 app start
        5 n1 app stop
        6 n1 ip stop
    """)
    assert judge(in_order, {}, {}, requires=[("app", "ip")], now_ns=10 * S).violations == []
    stopped_too_early = journal("""
        1 n1 ip start
        2 n1 app start
        4 n1 ip stop
        5 n1 app stop
    """)
    report = judge(stopped_too_early, {}, {}, requires=[("app", "ip")], now_ns=10 * S)
    assert rules(report) == [("requires", "app")]
    assert report.violations[0].at_ns == 4 * S
    elsewhere = journal("""
        1 n1 ip start
        2 n2 app start
    """)
    assert rules(judge(elsewhere, {}, {}, requires=[("app", "ip")], now_ns=10 * S)) == [("requires", "app")]
    fenced_together = journal("""
        1 n1 ip start
        2 n1 app start
    """)
    assert (
        judge(fenced_together, {}, {"n1": [3 * S]}, requires=[("app", "ip")], now_ns=10 * S).violations == []
    )


def test_a_tick_outside_the_copy_is_a_zombie() -> None:
    lines = journal("""
        1 n1 web start
        5 n1 web stop
    """)
    ticks = {("n1", "web"): [2 * S, 4 * S, 6 * S]}
    report = judge(lines, ticks, {}, now_ns=10 * S)
    assert report.zombie_ticks == [(6 * S, "n1", "web")]
    assert rules(report) == [("zombie-tick", "web")]
    fenced = judge(journal("1 n1 web start"), ticks, {"n1": [5 * S]}, now_ns=10 * S)
    assert fenced.zombie_ticks == [(6 * S, "n1", "web")], "a fence that did not kill the writer"


def test_the_reader_follows_a_growing_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    reader = JournalReader(path)
    assert reader.report({}, now_ns=10 * S).intervals == []
    path.write_text(f"{1 * S} n1 web start\n{2 * S} n2 web sta")  # the last line is half-written
    (tmp_path / "journal.ticks").write_text(f"{int(1.5 * S)} n1 web tick\n")
    report = reader.report({}, now_ns=10 * S)
    assert [i.node for i in report.intervals] == ["n1"]
    assert report.violations == []
    with path.open("a") as handle:
        handle.write(f"rt\n{3 * S} n1 web stop\n")
    report = reader.report({}, now_ns=10 * S)
    assert rules(report) == [("active", "web")]
    assert report == analyse_journal(path, {}, 10 * S)
