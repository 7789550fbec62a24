"""The resource-side journal, judged: what the resources themselves wrote, never a daemon's view.

    report = analyse_journal(journal, power_offs, limits={"web": Limits(max_active=1, max_promoted=0)})
    assert report.violations == [], report.summary()

The files (written by ``ocf:test:Journal``, tests/agents_fixtures/ocf/resource.d/test/Journal,
one O_APPEND write per line, CLOCK_MONOTONIC nanoseconds, which every namespace shares):

- ``journal``:       ``<ns> <node> <rsc> start|stop|promote|demote``
- ``journal.ticks``: ``<ns> <node> <rsc> tick``, from the resource's writer process while it runs.

``power_offs`` maps a node to upper bounds of the instants its every process was dead: from
the lab power switch's own log (``fence_lab power_log``) and from the harness's own crashes.

Intervals
---------
- A copy of ``rsc`` on ``node`` is **active** from its ``start`` line (written before the start
  does anything) until its ``stop`` line (written after the writer is gone) or the first
  power-off of ``node`` after the start, whichever comes first; ``open`` if neither yet.
- It is **promoted** from a ``promote`` line (written before the role is taken) until its
  ``demote`` line (written after it is given up), or the end of the active copy.

Every bound is late rather than early, so intervals come out too long, never too short: a
violation found here is real.

Rules (each a ``Violation`` with the instant, the nodes and the lines around it)
----------------------------------------------------------------------------------
- ``active``: more active copies of ``rsc`` at one instant than ``max_active`` (1 for a
  primitive).  With one copy allowed this is also "started before the node that last held it
  was fenced or stopped cleanly": the old copy ends only at its stop line or a power-off.
- ``promoted``: more promoted copies than ``max_promoted`` (0 for what is not promotable).
- ``promote-inactive``: a ``promote`` line on a node where the copy was not active.
- ``requires``: ``dependent`` active on a node while ``required`` was not active there (a group
  member and the member before it; a mandatory order with an INFINITY colocation).
- ``zombie-tick``: a writer tick outside every active interval of its node: a fence or stop
  that did not end the copy.

Resources without an entry in ``limits`` get ``DEFAULT_LIMITS``.  ``JournalReader`` reads the
files incrementally for long runs (the fault campaign); ``analyse_journal`` reads them whole.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ACTIONS = ("start", "stop", "promote", "demote")
EXCERPT_BEFORE_NS = 5_000_000_000
EXCERPT_AFTER_NS = 1_000_000_000
EXCERPT_LINES_MAX = 24


@dataclass(frozen=True, slots=True)
class Limits:
    """How many copies of a resource may be active, and promoted, at one instant."""

    max_active: int = 1
    max_promoted: int = 0


DEFAULT_LIMITS = Limits(max_active=1, max_promoted=0)


@dataclass(frozen=True, slots=True)
class Line:
    ns: int
    node: str
    rsc: str
    what: str

    def render(self, mark: bool = False) -> str:
        return f"{self.ns / 1e9:14.6f} {self.node} {self.rsc} {self.what}" + ("   <==" if mark else "")


@dataclass(frozen=True, slots=True)
class Interval:
    node: str
    rsc: str
    start_ns: int
    end_ns: int
    ended_by: str
    """``stop`` / ``demote``, ``power-off``, or ``open`` (still running when the report was made)."""
    role: str = "active"
    """``active`` (a running copy) or ``promoted``."""


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two nodes' active copies of one resource at the same instant."""

    rsc: str
    first: Interval
    second: Interval

    @property
    def ms(self) -> float:
        return (
            min(self.first.end_ns, self.second.end_ns) - max(self.first.start_ns, self.second.start_ns)
        ) / 1e6


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    """``active``, ``promoted``, ``promote-inactive``, ``requires`` or ``zombie-tick``."""
    rsc: str
    at_ns: int
    nodes: tuple[str, ...]
    detail: str
    excerpt: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.rule, self.rsc, self.at_ns)

    def render(self) -> str:
        head = f"{self.rule} {self.rsc} at {self.at_ns / 1e9:.6f} s on {','.join(self.nodes)}: {self.detail}"
        return "\n".join([head, *(f"    {line}" for line in self.excerpt)])


@dataclass(slots=True)
class JournalReport:
    intervals: list[Interval] = field(default_factory=list)
    """Active intervals (``role == "active"``), by start time."""
    promoted: list[Interval] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    zombie_ticks: list[tuple[int, str, str]] = field(default_factory=list)
    starts: int = 0
    stops: int = 0
    promotes: int = 0
    demotes: int = 0

    def open_copies(self) -> dict[str, list[str]]:
        """rsc → nodes where a copy is active now (by the journal and the power-offs alone)."""
        found: dict[str, list[str]] = {}
        for interval in self.intervals:
            if interval.ended_by == "open":
                found.setdefault(interval.rsc, []).append(interval.node)
        return found

    def summary(self) -> str:
        lines = [
            f"{len(self.intervals)} intervals, {self.starts} starts, {self.stops} stops, "
            f"{self.promotes} promotes, {self.demotes} demotes"
        ]
        lines += [
            f"  {i.rsc}@{i.node} {i.start_ns / 1e6:.1f}..{i.end_ns / 1e6:.1f} ms ({i.ended_by})"
            for i in self.intervals[-12:]
        ]
        lines += [
            f"  OVERLAP {o.rsc}: {o.first.node} and {o.second.node} for {o.ms:.1f} ms" for o in self.overlaps
        ]
        lines += [f"  VIOLATION {v.render()}" for v in self.violations[:10]]
        lines += [
            f"  ZOMBIE TICK {rsc}@{node} at {ns / 1e6:.1f} ms" for ns, node, rsc in self.zombie_ticks[:5]
        ]
        return "\n".join(lines)


# --- reading ----------------------------------------------------------------------------------


def parse_lines(text: str, actions: Sequence[str] = ACTIONS) -> list[Line]:
    """The well-formed lines of ``text`` (a line being written may be partial: skipped)."""
    out = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) == 4 and parts[0].isdigit() and parts[3] in actions:
            out.append(Line(int(parts[0]), parts[1], parts[2], parts[3]))
    return out


def read_lines(path: Path) -> list[tuple[int, str, str, str]]:
    """Every journal line as ``(ns, node, rsc, what)``, sorted by time."""
    text = ""
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text()
    return sorted((x.ns, x.node, x.rsc, x.what) for x in parse_lines(text, (*ACTIONS, "tick")))


class FileTail:
    """Complete lines appended to a file since the last call (a partial last line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return ""
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode(errors="replace")


class JournalReader:
    """The journal and its ticks, read incrementally; ``report`` judges everything so far."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self._lines = FileTail(journal)
        self._ticks = FileTail(Path(str(journal) + ".ticks"))
        self.lines: list[Line] = []
        self.ticks: dict[tuple[str, str], list[int]] = {}

    def refresh(self) -> None:
        new = parse_lines(self._lines.read())
        self.lines.extend(new)
        if new:
            self.lines.sort(key=lambda x: x.ns)
        for tick in parse_lines(self._ticks.read(), ("tick",)):
            bisect.insort(self.ticks.setdefault((tick.node, tick.rsc), []), tick.ns)

    def report(
        self,
        power_offs: Mapping[str, Sequence[int]],
        *,
        limits: Mapping[str, Limits] | None = None,
        requires: Iterable[tuple[str, str]] = (),
        now_ns: int | None = None,
    ) -> JournalReport:
        self.refresh()
        return judge(self.lines, self.ticks, power_offs, limits=limits, requires=requires, now_ns=now_ns)


def analyse_journal(
    journal: Path,
    power_offs: Mapping[str, Sequence[int]],
    now_ns: int | None = None,
    *,
    limits: Mapping[str, Limits] | None = None,
    requires: Iterable[tuple[str, str]] = (),
) -> JournalReport:
    """Intervals, overlaps, violations and zombie ticks of the whole journal at ``now_ns``."""
    return JournalReader(journal).report(power_offs, limits=limits, requires=requires, now_ns=now_ns)


# --- judging ----------------------------------------------------------------------------------


def judge(
    lines: Sequence[Line],
    ticks: Mapping[tuple[str, str], Sequence[int]],
    power_offs: Mapping[str, Sequence[int]],
    *,
    limits: Mapping[str, Limits] | None = None,
    requires: Iterable[tuple[str, str]] = (),
    now_ns: int | None = None,
) -> JournalReport:
    """Apply every rule of the module docstring to ``lines`` (sorted by time) and ``ticks``."""
    now_ns = now_ns if now_ns is not None else time.monotonic_ns()
    lines = [x for x in lines if x.ns <= now_ns]
    limits = limits or {}
    offs = {node: sorted(times) for node, times in power_offs.items()}
    report = JournalReport()
    _intervals(lines, offs, now_ns, report)
    report.intervals.sort(key=lambda i: (i.start_ns, i.node))
    report.promoted.sort(key=lambda i: (i.start_ns, i.node))
    _overlaps(report)
    context = _Context(lines, offs)
    for role, intervals in (("active", report.intervals), ("promoted", report.promoted)):
        report.violations += _over_limit(role, intervals, limits, context)
    for dependent, required in requires:
        report.violations += _unmet_requirement(dependent, required, report.intervals, context)
    _zombies(report, ticks, now_ns, context)
    report.violations.sort(key=lambda v: (v.at_ns, v.rule, v.rsc))
    return report


def _first_off_after(offs: Mapping[str, list[int]], node: str, after_ns: int, before_ns: int) -> int | None:
    times = offs.get(node, [])
    i = bisect.bisect_right(times, after_ns)
    return times[i] if i < len(times) and times[i] <= before_ns else None


def _intervals(
    lines: Sequence[Line], offs: Mapping[str, list[int]], now_ns: int, report: JournalReport
) -> None:
    active: dict[tuple[str, str], int] = {}
    promoted: dict[tuple[str, str], int] = {}

    def close(key: tuple[str, str], at_ns: int, ended_by: str) -> None:
        """End the active copy (and its promotion) at ``at_ns``, or at an earlier power-off."""
        start_ns = active.pop(key)
        off = _first_off_after(offs, key[0], start_ns, at_ns)
        end_ns, how = (off, "power-off") if off is not None else (at_ns, ended_by)
        report.intervals.append(Interval(key[0], key[1], start_ns, end_ns, how))
        if key in promoted:
            since = promoted.pop(key)
            report.promoted.append(Interval(key[0], key[1], since, max(since, end_ns), how, "promoted"))

    for line in lines:
        key = (line.node, line.rsc)
        if key in active and _first_off_after(offs, line.node, active[key], line.ns) is not None:
            close(key, line.ns, "power-off")  # powered off since it started: that copy is over
        if line.what == "start":
            report.starts += 1
            active.setdefault(key, line.ns)
        elif line.what == "stop":
            report.stops += 1
            if key in active:
                close(key, line.ns, "stop")
        elif line.what == "promote":
            report.promotes += 1
            if key not in active:
                report.violations.append(
                    Violation(
                        "promote-inactive",
                        line.rsc,
                        line.ns,
                        (line.node,),
                        f"promoted on {line.node}, where it was not started",
                    )
                )
            promoted.setdefault(key, line.ns)
        elif line.what == "demote":
            report.demotes += 1
            if key in promoted:
                since = promoted.pop(key)
                report.promoted.append(Interval(line.node, line.rsc, since, line.ns, "demote", "promoted"))
    for key in list(active):
        close(key, now_ns, "open")
    for key, since in promoted.items():  # promoted without an active copy (already a violation)
        report.promoted.append(Interval(key[0], key[1], since, now_ns, "open", "promoted"))


def _overlaps(report: JournalReport) -> None:
    by_rsc: dict[str, list[Interval]] = {}
    for interval in report.intervals:
        by_rsc.setdefault(interval.rsc, []).append(interval)
    for rsc, intervals in by_rsc.items():
        for i, first in enumerate(intervals):
            for second in intervals[i + 1 :]:
                if second.start_ns >= first.end_ns:
                    break
                if second.node != first.node:
                    report.overlaps.append(Overlap(rsc, first, second))


class _Context:
    """Renders the journal lines and power-offs around an instant, for a violation's excerpt."""

    def __init__(self, lines: Sequence[Line], offs: Mapping[str, list[int]]) -> None:
        self.lines = lines
        self.times = [x.ns for x in lines]
        self.offs = offs

    def excerpt(self, at_ns: int, rscs: Iterable[str], nodes: Iterable[str]) -> tuple[str, ...]:
        wanted, involved = set(rscs), set(nodes)
        low = bisect.bisect_left(self.times, at_ns - EXCERPT_BEFORE_NS)
        high = bisect.bisect_right(self.times, at_ns + EXCERPT_AFTER_NS)
        rows = [(x.ns, x.render(mark=x.ns == at_ns)) for x in self.lines[low:high] if x.rsc in wanted]
        for node in sorted(involved):
            for off in self.offs.get(node, []):
                if at_ns - EXCERPT_BEFORE_NS <= off <= at_ns + EXCERPT_AFTER_NS:
                    rows.append((off, f"{off / 1e9:14.6f} {node} powered off (upper bound)"))
        rows.sort()
        return tuple(text for _, text in rows[-EXCERPT_LINES_MAX:])


def _over_limit(
    role: str, intervals: Sequence[Interval], limits: Mapping[str, Limits], context: _Context
) -> list[Violation]:
    """Sweep the intervals of each resource; report each instant the count first exceeds its limit."""
    out = []
    by_rsc: dict[str, list[Interval]] = {}
    for interval in intervals:
        by_rsc.setdefault(interval.rsc, []).append(interval)
    for rsc, group in by_rsc.items():
        limit = limits.get(rsc, DEFAULT_LIMITS)
        allowed = limit.max_active if role == "active" else limit.max_promoted
        # Ends sort before starts at the same instant: an interval is [start, end).
        events = sorted(
            [(i.start_ns, 1, n) for n, i in enumerate(group)]
            + [(i.end_ns, 0, n) for n, i in enumerate(group)]
        )
        now: set[int] = set()
        over = False
        for at_ns, is_start, n in events:
            if not is_start:
                now.discard(n)
                over = over and len(now) > allowed
                continue
            now.add(n)
            if len(now) > allowed and not over:
                over = True
                holders = [group[m] for m in sorted(now)]
                nodes = tuple(i.node for i in holders)
                described = "; ".join(
                    f"{i.node} since {i.start_ns / 1e9:.6f} s (until {i.end_ns / 1e9:.6f} s, {i.ended_by})"
                    for i in holders
                )
                out.append(
                    Violation(
                        role,
                        rsc,
                        at_ns,
                        nodes,
                        f"{len(now)} {role} copies, at most {allowed} allowed: {described}",
                        context.excerpt(at_ns, [rsc], nodes),
                    )
                )
    return out


def _unmet_requirement(
    dependent: str, required: str, intervals: Sequence[Interval], context: _Context
) -> list[Violation]:
    out = []
    needed: dict[str, list[Interval]] = {}
    for interval in intervals:
        if interval.rsc == required:
            needed.setdefault(interval.node, []).append(interval)
    for interval in intervals:
        if interval.rsc != dependent:
            continue
        # Walk from the dependent's start: each covering interval of `required` moves the point on.
        point = interval.start_ns
        for cover in sorted(needed.get(interval.node, []), key=lambda i: i.start_ns):
            if cover.start_ns <= point < cover.end_ns:
                point = cover.end_ns
        if point < interval.end_ns:
            out.append(
                Violation(
                    "requires",
                    dependent,
                    point,
                    (interval.node,),
                    f"{dependent} active on {interval.node} while {required}, which it depends on, was not",
                    context.excerpt(point, [dependent, required], [interval.node]),
                )
            )
    return out


def _zombies(
    report: JournalReport, ticks: Mapping[tuple[str, str], Sequence[int]], now_ns: int, context: _Context
) -> None:
    mine: dict[tuple[str, str], list[Interval]] = {}
    for interval in report.intervals:
        mine.setdefault((interval.node, interval.rsc), []).append(interval)
    for key, times in ticks.items():
        covered = sorted(mine.get(key, []), key=lambda i: i.start_ns)
        # The gaps between active intervals, where no tick may fall.
        gaps, point = [], 0
        for interval in covered:
            if interval.start_ns > point:
                gaps.append((point, interval.start_ns))
            point = max(point, interval.end_ns)
        gaps.append((point, now_ns + 1))
        for low, high in gaps:
            first = bisect.bisect_right(times, low) if low > 0 else 0
            # A tick exactly at an interval's end is inside it (the stop line follows the last tick).
            last = bisect.bisect_left(times, high)
            for ns in times[first:last]:
                if ns > now_ns:
                    continue
                report.zombie_ticks.append((ns, key[0], key[1]))
    report.zombie_ticks.sort()
    seen_rsc: set[tuple[str, str]] = set()
    for ns, node, rsc in report.zombie_ticks:
        if (node, rsc) in seen_rsc:
            continue  # one violation per copy: its first zombie tick
        seen_rsc.add((node, rsc))
        report.violations.append(
            Violation(
                "zombie-tick",
                rsc,
                ns,
                (node,),
                f"the writer of {rsc} on {node} ticked outside every active interval (a stop or fence did not end it)",
                context.excerpt(ns, [rsc], [node]),
            )
        )
