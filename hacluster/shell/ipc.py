"""The local API: newline-delimited JSON over a Unix socket, for ``hacrm`` and scripts.

One request per line, ``{"command": "status", ...}``; one answer per line,
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": {"code": ..., "message": ...}}``.
The socket is mode 0660, owned by root and by group ``haclient`` when that group exists, so
members of haclient may query and operate the cluster and nobody else may.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import inspect
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from hacluster.errors import HAClusterError

logger = logging.getLogger(__name__)

REQUEST_BYTES_MAX = 64 * 1024
GROUP = "haclient"

Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


class ApiError(HAClusterError):
    """A request the daemon refuses; ``code`` is stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class ApiServer:
    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self._handlers = dict(handlers)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _is_alive(self.path):
                raise HAClusterError(
                    f"{self.path}: another daemon already answers on this socket; "
                    "stop it first or set a different api_socket in ha.cf"
                )
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=REQUEST_BYTES_MAX
        )
        os.chmod(self.path, 0o660)
        with contextlib.suppress(KeyError, PermissionError):
            os.chown(self.path, 0, grp.getgrnam(GROUP).gr_gid)
        logger.info("api socket listening path=%s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await _reply(
                        writer, _error("REQUEST_TOO_LARGE", f"a request is at most {REQUEST_BYTES_MAX} bytes")
                    )
                    return
                if not line:
                    return
                await _reply(writer, await self._dispatch(line))
        except (ConnectionError, BrokenPipeError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _error("BAD_REQUEST", "a request is one JSON object per line")
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return _error("BAD_REQUEST", 'a request needs a "command" string')
        handler = self._handlers.get(request["command"])
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return _error("UNKNOWN_COMMAND", f"unknown command {request['command']!r}; known: {known}")
        try:
            result = handler(request)
            if inspect.isawaitable(result):
                result = await result
            return {"ok": True, "result": result}
        except ApiError as exc:
            return _error(exc.code, str(exc))
        except HAClusterError as exc:
            return _error(getattr(exc, "code", "REFUSED"), str(exc))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


async def _reply(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
    writer.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


def _is_alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True
