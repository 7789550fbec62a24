"""The heartbeat generation (``hg``): bumped and fsync'ed at every daemon start.

Peers use it to tell a restart from a replay (reference §7.1), so it must never go back:
the new value is written to a temporary file, fsync'ed, renamed over the old one, and the
directory is fsync'ed too, before the daemon sends a single packet.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from hacluster.errors import HAClusterError

logger = logging.getLogger(__name__)

FILENAME = "generation"


def next_generation(state_dir: Path, method: str = "file") -> int:
    """Read, increment, persist and return the generation for this start."""
    state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    path = state_dir / FILENAME
    stored = _read(path)
    now_s = int(time.time())
    if method == "time":
        value = max(now_s, (stored or 0) + 1)
    elif stored is None:
        value = now_s  # as Heartbeat: a missing file starts from the current time
    else:
        value = stored + 1
    _write(path, value)
    logger.info("generation %d stored in %s (method=%s previous=%s)", value, path, method, stored)
    return value


def _read(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HAClusterError(f"{path}: cannot read the generation file ({exc}); fix or remove it") from exc
    try:
        value = int(text.strip())
    except ValueError:
        raise HAClusterError(
            f"{path}: generation file holds {text.strip()[:32]!r}, expected a decimal number; "
            "remove the file to restart from the current time"
        ) from None
    if value < 0:
        raise HAClusterError(f"{path}: negative generation {value}; remove the file")
    return value


def _write(path: Path, value: int) -> None:
    tmp = path.with_suffix(".tmp")
    data = f"{value:>15d}\n".encode("ascii")  # Heartbeat's 16-byte right-aligned layout
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
