"""The decision history: every decision this node logged, kept for ``hacrm history``.

Theory of operation
-------------------
The core explains each decision in a ``Notice`` (the text *is* the reason) and reports node
state changes as ``NodeStateChanged``.  The driver hands each of them to ``History.record``,
which keeps those at INFO and above as *events*: plain JSON-ready dicts with the wall-clock
time (ISO 8601 and epoch milliseconds), this node's name, the code, level, text and fields.

Events live in a bounded ring in memory (``RING_MAX``) and are appended, one JSON line each,
to ``<state_dir>/history.jsonl``; past ``FILE_BYTES_MAX`` the file becomes
``history.jsonl.1`` (the older one is dropped), so the disk use stays under two files.  On
start the newest lines of both files are read back, so the history survives a restart.

Listeners (alert hooks, metrics) subscribe and get each new event right after it is stored.
They run inside the driver, so a listener must only queue work or bump counters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from hacluster.core.effects import Level, NodeStateChanged, Notice

logger = logging.getLogger(__name__)

RING_MAX = 10_000
"""Events kept in memory (and read back from disk on start)."""
FILE_BYTES_MAX = 5 * 1024 * 1024
"""Size at which ``history.jsonl`` is rotated to ``history.jsonl.1``."""
FILENAME = "history.jsonl"
LEVEL_MIN = Level.INFO

Event = dict[str, Any]
Listener = Callable[[Event], None]


def iso_time(epoch_ms: int) -> str:
    """Local time with its UTC offset, millisecond precision: what operators read in logs."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone().isoformat(timespec="milliseconds")


def make_event(node: str, code: str, level: Level, text: str, fields: Iterable[tuple[str, Any]]) -> Event:
    epoch_ms = time.time_ns() // 1_000_000
    return {
        "time": iso_time(epoch_ms),
        "epoch_ms": epoch_ms,
        "node": node,
        "code": code,
        "level": level.name,
        "text": text,
        "fields": {str(k): v for k, v in fields},
    }


def event_of(node: str, effect: Notice | NodeStateChanged) -> Event | None:
    """The history event for one effect, or None when it is below ``LEVEL_MIN``."""
    if isinstance(effect, Notice):
        if effect.level < LEVEL_MIN:
            return None
        return make_event(node, effect.code, effect.level, effect.text, effect.fields)
    lost = effect.new == "dead" and not effect.graceful
    how = " (said goodbye)" if effect.graceful else ""
    return make_event(
        node,
        "NODE_STATE_CHANGED",
        Level.WARNING if lost else Level.INFO,
        f"{effect.node}: {effect.old} -> {effect.new}{how}: {effect.reason}",
        (
            ("node", effect.node),
            ("old", effect.old),
            ("new", effect.new),
            ("graceful", effect.graceful),
        ),
    )


class History:
    """The ring, the file and the listeners; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        node: str,
        *,
        ring_max: int = RING_MAX,
        file_bytes_max: int = FILE_BYTES_MAX,
    ) -> None:
        self.path = state_dir / FILENAME
        self.node = node
        self._ring: deque[Event] = deque(maxlen=ring_max)
        self._file_bytes_max = file_bytes_max
        self._file: IO[str] | None = None
        self._size = 0
        self._listeners: list[Listener] = []
        self._write_errors = 0

    def open(self) -> None:
        """Read back the newest events of the last run and open the file for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ring.extend(_tail(history_files(self.path.parent), self._ring.maxlen or RING_MAX))
        self._reopen()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def record(self, effect: Notice | NodeStateChanged) -> Event | None:
        """Keep one decision (INFO and above); tell the listeners.  Called by the driver."""
        event = event_of(self.node, effect)
        if event is None:
            return None
        self.add(event)
        return event

    def add(self, event: Event) -> None:
        self._ring.append(event)
        self._append(event)
        for listener in self._listeners:
            listener(event)

    def events(self) -> list[Event]:
        """Every event in memory, oldest first."""
        return list(self._ring)

    def query(
        self,
        *,
        resource: str = "",
        node: str = "",
        code: str = "",
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """The events matching every filter given, oldest first; ``limit`` keeps the newest."""
        out = [
            e
            for e in self._ring
            if matches(e, resource=resource, node=node, code=code, since_ms=since_ms, until_ms=until_ms)
        ]
        return out[-limit:] if limit else out

    # --- the file -----------------------------------------------------------------------

    def _reopen(self) -> None:
        try:
            self._file = self.path.open("a", encoding="utf-8")
            self._size = self._file.tell()
        except OSError as exc:
            self._file = None
            logger.error("history file cannot be opened path=%s error=%s", self.path, exc.strerror)

    def _append(self, event: Event) -> None:
        if self._file is None:
            return
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        try:
            if self._size + len(line) > self._file_bytes_max and self._size > 0:
                self._file.close()
                os.replace(self.path, self.path.with_name(FILENAME + ".1"))
                self._file = self.path.open("a", encoding="utf-8")
                self._size = 0
            self._file.write(line)
            self._file.flush()
            self._size += len(line)
        except OSError as exc:
            self._write_errors += 1
            if self._write_errors in (1, 10, 100) or self._write_errors % 1000 == 0:
                logger.error(
                    "history file write failed path=%s error=%s failures=%d",
                    self.path,
                    exc.strerror,
                    self._write_errors,
                )
            if self._file.closed:
                self._reopen()


def matches(
    event: Event,
    *,
    resource: str = "",
    node: str = "",
    code: str = "",
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> bool:
    """Filter semantics of ``hacrm history``: ``resource``/``node`` match a field or the text.

    ``code`` matches the code exactly or as a prefix ending at ``_`` (``RESOURCE`` finds
    ``RESOURCE_START``), case-insensitively.
    """
    epoch_ms = int(event.get("epoch_ms", 0))
    if since_ms is not None and epoch_ms < since_ms:
        return False
    if until_ms is not None and epoch_ms > until_ms:
        return False
    if code:
        wanted, actual = code.upper(), str(event.get("code", "")).upper()
        if actual != wanted and not actual.startswith(wanted.rstrip("_") + "_"):
            return False
    fields = event.get("fields") or {}
    if resource and not _mentions(event, fields, resource, ("resource", "rsc", "group")):
        return False
    return not node or _mentions(event, fields, node, ("node", "target", "by", "src", "from", "to"))


def _mentions(event: Event, fields: dict[str, Any], name: str, keys: tuple[str, ...]) -> bool:
    if any(str(fields.get(key, "")) == name for key in keys):
        return True
    return _word_in(name, str(event.get("text", "")))


def _word_in(word: str, text: str) -> bool:
    """``word`` as a whole word of ``text`` (so ``n1`` does not match ``n10``)."""
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_-") and not (after.isalnum() or after in "_-"):
            return True
        start = text.find(word, start + 1)
    return False


def _tail(paths: list[Path], count: int) -> Iterator[Event]:
    """The newest ``count`` parseable events of the files, oldest first (bad lines skipped)."""
    lines: deque[str] = deque(maxlen=count)
    for path in paths:
        with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8", errors="replace") as handle:
            lines.extend(handle)
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "epoch_ms" in event:
            yield event


def read_files(state_dir: Path, since_ms: int | None = None) -> list[Event]:
    """Every event in both history files (for reports), oldest first, from ``since_ms`` on."""
    return [e for e in _tail(history_files(state_dir), 10 * RING_MAX) if matches(e, since_ms=since_ms)]


def history_files(state_dir: Path) -> list[Path]:
    """The rotated file and the current one, oldest first."""
    return [state_dir / (FILENAME + ".1"), state_dir / FILENAME]
