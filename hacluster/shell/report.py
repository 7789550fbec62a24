"""``hacrm report``: one tarball with what a support engineer asks for first, secrets removed.

Theory of operation
-------------------
The daemon gathers, in the event loop, what only it knows right now (the status document,
the replicated configuration, the secrets to hide), then reads files and writes the tarball
in a worker thread so the driver is never held up by disk I/O.

Every member of the tarball goes through ``hacluster.shell.redact`` (the one redactor: by
value, every secret the daemon knows; by shape, ``password=…``-like text it does not), and
authkeys keeps only ``auth N``, slot numbers and method names, whatever the method.  A report
is meant to be mailed; when in doubt, it hides.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import sys
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.cluster import HARESOURCES, RESOURCES_CRM
from hacluster.shell import cibstore, subprocesses
from hacluster.shell.history import read_files
from hacluster.shell.redact import REDACTED, SECRET_WORDS, Redactor, known_secrets, redact_authkeys

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

LOG_TAIL_BYTES = 2 * 1024 * 1024
PACKAGES = ("hacluster", "pydantic", "prometheus_client", "pyroute2", "psutil", "pyserial", "cryptography")
UNAME_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What the loop hands to the worker thread."""

    node: str
    hacf: Path
    directory: Path
    state_dir: Path
    logfile: str | None
    debugfile: str | None
    status: dict[str, Any]
    cib_fallback: str
    uname: str
    since_ms: int | None
    secrets: set[str]


async def write_report(daemon: Daemon, path: Path, since_ms: int | None) -> dict[str, Any]:
    """Gather in the loop, write in a thread; returns the path, the member names and sizes."""
    assert daemon.core is not None
    config = daemon.config
    snapshot = _Snapshot(
        node=str(daemon.node),
        hacf=Path(config.path),
        directory=Path(config.directory),
        state_dir=Path(config.state_dir),
        logfile=config.logfile,
        debugfile=config.debugfile,
        status=daemon.status(),
        cib_fallback=daemon.view().config.to_json(),
        uname=await _uname(),
        since_ms=since_ms,
        secrets=known_secrets(daemon),
    )
    return await asyncio.to_thread(_write, snapshot, path)


async def _uname() -> str:
    done = await subprocesses.run(
        ["uname", "-a"],
        env={"PATH": subprocesses.SYSTEM_PATH, "LANG": "C"},
        timeout_ms=UNAME_TIMEOUT_MS,
        grace_ms=0,
    )
    if done.exit_status == 0:
        return done.stdout.decode(errors="replace")
    return " ".join(os.uname()) + "\n"


def _write(snap: _Snapshot, path: Path) -> dict[str, Any]:
    redact = Redactor(snap.secrets)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    top = f"hacluster-report-{snap.node}-{stamp}"
    members: dict[str, str] = {}
    members["ha.cf"] = _read(snap.hacf)
    authkeys = snap.directory / "authkeys"
    if authkeys.exists():
        members["authkeys"] = redact_authkeys(_read(authkeys))
    for name in (RESOURCES_CRM, HARESOURCES):
        if (snap.directory / name).exists():
            members[name] = _read(snap.directory / name)
    cib = snap.state_dir / cibstore.FILENAME
    members["cib.json"] = _read(cib) if cib.exists() else snap.cib_fallback + "\n"
    members["status.json"] = json.dumps(snap.status, indent=2, default=str) + "\n"
    events = read_files(snap.state_dir, snap.since_ms)
    members["history.jsonl"] = "".join(json.dumps(e, default=str) + "\n" for e in events)
    for label, log in (("logfile", snap.logfile), ("debugfile", snap.debugfile)):
        if log:
            members[f"{label}.tail"] = _tail(Path(log))
    members["uname.txt"] = snap.uname
    members["versions.txt"] = _versions()
    members["README.txt"] = _readme(snap, len(events))
    texts = {name: redact(text) for name, text in members.items()}
    # Every member passed through the redactor; authkeys was also cut down to methods.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in texts.items():
                data = text.encode("utf-8", "replace")
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                info.mtime = int(time.time())
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {
        "path": str(path),
        "files": [f"{top}/{name}" for name in texts],
        "bytes": path.stat().st_size,
        "events": len(events),
        "redactions": redact.replacements,
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"# {path}: cannot read ({exc.strerror})\n"


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read()
    except OSError as exc:
        return f"# {path}: cannot read ({exc.strerror})\n"
    text = data.decode("utf-8", "replace")
    if len(data) == LOG_TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return text


def _versions() -> str:
    lines = [f"python {sys.version.split()[0]} ({platform.python_implementation()})"]
    for name in PACKAGES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    lines.append(f"platform {platform.platform()}")
    return "\n".join(lines) + "\n"


def _readme(snap: _Snapshot, events: int) -> str:
    since = (
        "everything kept"
        if snap.since_ms is None
        else f"since {datetime.fromtimestamp(snap.since_ms / 1000)}"
    )
    return (
        f"hacluster report from node {snap.node}, made {datetime.now().astimezone().isoformat(timespec='seconds')}\n"
        f"history.jsonl: {events} decisions ({since}); status.json: the live status document;\n"
        "cib.json: the replicated configuration; *.tail: the end of the daemon's log files.\n"
        f"Secrets (authkeys keys, parameters whose names hold {'/'.join(SECRET_WORDS)}) are replaced by {REDACTED}.\n"
    )
