"""The local API: newline-delimited JSON over a Unix socket, for ``hacrm`` and scripts.

One request per line, ``{"command": "status", ...}``; one answer per line,
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": {"code": ..., "message": ...}}``.

Who may do what is decided per connection from the caller's credentials
(``hacluster.shell.access``: root and group haclient everything, ``api_readonly_group`` the
reads, nobody else anything), so the socket itself is mode 0666: everyone can connect, and a
caller who may not use the API is told so (``ACCESS_DENIED``) instead of getting EACCES.  A
caller with no role gets one answer and the connection is closed; one that sends nothing is
dropped after ``REFUSED_WAIT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from hacluster.errors import HAClusterError
from hacluster.shell.access import (
    COMMANDS,
    Access,
    AccessPolicy,
    Peer,
    Role,
    audit_change,
    audit_refusal,
    peer_of,
)

logger = logging.getLogger(__name__)

REQUEST_BYTES_MAX = 64 * 1024
SOCKET_MODE = 0o666
REFUSED_WAIT_S = 2.0

Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


class ApiError(HAClusterError):
    """A request the daemon refuses; ``code`` is stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class ApiServer:
    def __init__(
        self, path: Path, handlers: Mapping[str, Handler], access: AccessPolicy | None = None
    ) -> None:
        unclassified = sorted(set(handlers) - set(COMMANDS))
        assert not unclassified, f"API commands without an access class in shell/access.py: {unclassified}"
        self.path = path
        self._handlers = dict(handlers)
        self._access = access if access is not None else AccessPolicy()
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
        os.chmod(self.path, SOCKET_MODE)
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
            try:
                peer = peer_of(writer.get_extra_info("socket"))
            except OSError as exc:
                logger.warning("api connection without peer credentials, closed error=%s", exc)
                return
            role = self._access.role(peer)
            while True:
                try:
                    if role is Role.NONE:
                        line = await asyncio.wait_for(reader.readline(), REFUSED_WAIT_S)
                    else:
                        line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await _reply(
                        writer, _error("REQUEST_TOO_LARGE", f"a request is at most {REQUEST_BYTES_MAX} bytes")
                    )
                    return
                except TimeoutError:
                    return
                if not line:
                    return
                await _reply(writer, await self._dispatch(line, peer, role))
                if role is Role.NONE:
                    return
        except (ConnectionError, BrokenPipeError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, peer: Peer, role: Role) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _error("BAD_REQUEST", "a request is one JSON object per line")
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return _error("BAD_REQUEST", 'a request needs a "command" string')
        command: str = request["command"]
        handler = self._handlers.get(command)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return _error("UNKNOWN_COMMAND", f"unknown command {command!r}; known: {known}")
        decision = self._access.decide(peer, command, role)
        if not decision.allowed:
            audit_refusal(peer, command, role)
            return _error("ACCESS_DENIED", decision.refusal)
        if decision.access is Access.CHANGE:
            outcome = "cancelled"
            try:
                answer = await self._run(handler, request)
                outcome = _outcome(answer)
                return answer
            finally:
                audit_change(peer, command, request, outcome)
        answer = await self._run(handler, request)
        if role is Role.READ_ONLY and answer.get("ok"):
            answer["result"] = self._access.redactor().value(answer["result"])
        return answer

    async def _run(self, handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
        try:
            result = handler(request)
            if inspect.isawaitable(result):
                result = await result
            return {"ok": True, "result": result}
        except ApiError as exc:
            return _error(exc.code, str(exc))
        except HAClusterError as exc:
            return _error(getattr(exc, "code", "REFUSED"), str(exc))


def _outcome(answer: dict[str, Any]) -> str:
    if not answer.get("ok"):
        return f"error:{answer['error']['code']}"
    result = answer.get("result")
    return "dry-run" if isinstance(result, dict) and result.get("dry_run") else "ok"


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
