"""Find the daemon's socket and ask it one question."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from hacluster.errors import HAClusterError

DEFAULT_SOCKET = "/run/hacluster/hacluster.sock"
ENV_SOCKET = "HACLUSTER_SOCKET"
ANSWER_BYTES_MAX = 16 * 1024 * 1024
NOT_ALLOWED_EXIT_STATUS = 4
"""Exit status when the daemon refuses the caller (Pacemaker's tools use 4 for "insufficient
privileges" too)."""


class CliError(HAClusterError):
    """An error for the operator, with a stable code and an exit status."""

    def __init__(self, code: str, message: str, exit_status: int = 1) -> None:
        self.code = code
        self.exit_status = exit_status
        super().__init__(message)


def resolve_socket(socket_arg: str | None, config_arg: str | None) -> str:
    """``--socket``, else ``$HACLUSTER_SOCKET``, else ``api_socket`` in ``--config``, else the default."""
    if socket_arg:
        return socket_arg
    if os.environ.get(ENV_SOCKET):
        return os.environ[ENV_SOCKET]
    if config_arg:
        return _api_socket_of(Path(config_arg))
    return DEFAULT_SOCKET


def _api_socket_of(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(
            "CONFIG_UNREADABLE", f"{path}: cannot read ({exc.strerror}); check --config", 2
        ) from exc
    for line in text.splitlines():
        match = re.match(r"\s*api_socket\s+(\S+)", line)
        if match:
            return match.group(1)
    return DEFAULT_SOCKET


def request(path: str, command: str, timeout_s: float = 5.0, **args: Any) -> dict[str, Any]:
    """Send one request, return its ``result``; raise ``CliError`` with the daemon's code."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise CliError(
                "DAEMON_NOT_RUNNING",
                f"no daemon socket at {path}; start `hacluster daemon`, or point --socket/--config at the right one",
            ) from None
        except PermissionError:
            raise CliError(
                "PERMISSION_DENIED",
                f"{path}: permission denied; run as root or as a member of group haclient",
                NOT_ALLOWED_EXIT_STATUS,
            ) from None
        except OSError as exc:
            raise CliError("DAEMON_UNREACHABLE", f"{path}: {exc.strerror}; is the daemon running?") from None
        try:
            sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        except OSError as exc:
            raise CliError("DAEMON_UNREACHABLE", f"{path}: connection lost ({exc.strerror or exc})") from None
        chunks = []
        size = 0
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise CliError("DAEMON_TIMEOUT", f"{path}: no answer within {timeout_s:g} s") from None
            except OSError as exc:
                raise CliError(
                    "DAEMON_UNREACHABLE", f"{path}: connection lost ({exc.strerror or exc})"
                ) from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n") or size > ANSWER_BYTES_MAX:
                break
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise CliError("BAD_ANSWER", f"{path}: the daemon's answer is not JSON") from None
    if not answer.get("ok"):
        error = answer.get("error", {})
        code = str(error.get("code", "ERROR"))
        status = NOT_ALLOWED_EXIT_STATUS if code == "ACCESS_DENIED" else 1
        raise CliError(code, str(error.get("message", "request failed")), status)
    result = answer["result"]
    assert isinstance(result, dict)
    return result
