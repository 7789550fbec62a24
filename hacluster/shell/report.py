"""``hacrm report``: one tarball with what a support engineer asks for first, secrets removed.

Theory of operation
-------------------
The daemon gathers, in the event loop, what only it knows right now (the status document,
the replicated configuration, the secrets to hide), then reads files and writes the tarball
in a worker thread so the driver is never held up by disk I/O.

Redaction is by *value* and by *shape*.  Every secret the daemon knows (authkeys keys, and
the values of parameters whose names contain ``passw``, ``secret``, ``key`` or ``token`` in
resources and fence devices, ha.cf's ``stonith_host`` arguments included) is replaced by
``<redacted>`` wherever it appears, in every file.  On top of that, anything shaped like
``name=value`` or a JSON ``"name": "value"`` with such a name is redacted even when the value
is unknown to us (a password typed into a log line), and authkeys keeps only its slot
numbers and method names.  A report is meant to be mailed; when in doubt, it hides.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import platform
import re
import sys
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.cluster import HARESOURCES, RESOURCES_CRM
from hacluster.shell import cibstore
from hacluster.shell.history import read_files

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

REDACTED = "<redacted>"
SECRET_WORDS = ("passw", "secret", "key", "token")
LOG_TAIL_BYTES = 2 * 1024 * 1024
SHORT_SECRET = 6
"""Secrets shorter than this are replaced as whole words only, so that a short password does
not blank out every word that contains it."""
PACKAGES = ("hacluster", "pydantic", "prometheus_client", "pyroute2", "psutil", "pyserial", "cryptography")

_NAME = r"[\w.-]*(?:passw|secret|key|token)[\w.-]*"
_SHAPES = (
    # name=value, name="quoted value"
    (re.compile(rf"(?i)\b({_NAME})=(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"), rf"\1={REDACTED}"),
    # JSON "name": "value"
    (re.compile(rf'(?i)("{_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*"'), rf'\1"{REDACTED}"'),
    # JSON pairs ["name", "value"] (params in cib.json)
    (re.compile(rf'(?i)(\[\s*"{_NAME}"\s*,\s*)"(?:[^"\\]|\\.)*"'), rf'\1"{REDACTED}"'),
)


def is_secret_name(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


class Redactor:
    """Replaces known secret values and secret-shaped ``name=value`` text."""

    def __init__(self, secrets: set[str]) -> None:
        values = {s for s in secrets if s and s != REDACTED}
        escaped = {json.dumps(s)[1:-1] for s in values}
        ordered = sorted(values | escaped, key=len, reverse=True)
        self._long = [s for s in ordered if len(s) >= SHORT_SECRET]
        short = [re.escape(s) for s in ordered if len(s) < SHORT_SECRET]
        self._short = re.compile(rf"(?<![\w])(?:{'|'.join(short)})(?![\w])") if short else None
        self.replacements = 0

    def __call__(self, text: str) -> str:
        for secret in self._long:
            if secret in text:
                self.replacements += text.count(secret)
                text = text.replace(secret, REDACTED)
        if self._short is not None:
            text, count = self._short.subn(REDACTED, text)
            self.replacements += count
        for pattern, replacement in _SHAPES:
            text, count = pattern.subn(replacement, text)
            self.replacements += count
        return text


def redact_authkeys(text: str) -> str:
    """Keep ``auth N``, comments, slot numbers and methods; drop every key."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0].isdigit():
            out.append(f"{words[0]} {words[1]} {REDACTED}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def known_secrets(daemon: Daemon) -> set[str]:
    """Every secret value this daemon knows of (read in the loop)."""
    secrets: set[str] = set()
    for key in daemon.config.keyring.keys.values():
        if key.secret:
            secrets.add(key.secret.decode("utf-8", "replace"))
    if daemon.core is not None:
        view = daemon.view()
        for primitive in view.config.primitives:
            secrets.update(v for k, v in primitive.params if is_secret_name(k))
        for device in view.devices():
            secrets.update(v for k, v in device.params if is_secret_name(k))
            # cluster-glue plugins take positional arguments: any of them may be a password.
            for k, v in device.params:
                if k == "args":
                    secrets.update(_positional_secrets(v.split()))
    for line in daemon.config.stonith_host:
        words = line.split()[2:]
        secrets.update(v.split("=", 1)[1] for v in words if "=" in v and is_secret_name(v.split("=", 1)[0]))
        if not line.split()[1].startswith("fence_"):
            secrets.update(_positional_secrets(words))
    # Node names and numbers appear in plugin arguments (host lists, ports) and everywhere else.
    public = set(daemon.config.nodes) | {"*"}
    return {s for s in secrets if s.strip() and s not in public and not s.isdigit()}


def _positional_secrets(words: list[str]) -> set[str]:
    out = set()
    for word in words:
        try:
            ipaddress.ip_address(word)
        except ValueError:
            out.add(word)
    return out


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
    try:
        proc = await asyncio.create_subprocess_exec(
            "uname", "-a", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(5):
            out, _ = await proc.communicate()
        return out.decode(errors="replace")
    except (OSError, TimeoutError):
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
        f"Secrets (authkeys keys, password/secret/key/token parameters) are replaced by {REDACTED}.\n"
    )
