"""What the tools share: argument parsing that exits as Pacemaker's do, and one API call.

Exit statuses are Pacemaker's (``crm_exit_t``): 0 ok, 1 error, 4 insufficient privileges,
64 usage, 102 not connected (no daemon), 105 no such attribute.  Every refusal prints one
line on stderr saying what was wrong and what to write, and changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from hacluster.cli.client import CliError, request, resolve_socket

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_INSUFFICIENT_PRIV: Final = 4
EXIT_USAGE: Final = 64
EXIT_DISCONNECT: Final = 102
EXIT_NOSUCH: Final = 105

DEFAULT_HACF: Final = Path("/etc/ha.d/ha.cf")
_NOT_CONNECTED: Final = frozenset({"DAEMON_NOT_RUNNING", "DAEMON_UNREACHABLE", "DAEMON_TIMEOUT"})


class ToolError(Exception):
    """A refusal: its message goes to stderr and the tool exits with ``status``."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        self.status = status
        super().__init__(message)


class Parser(argparse.ArgumentParser):
    """``argparse`` that raises ``ToolError`` (exit 64) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise ToolError(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def socket_path() -> str:
    """``$HACLUSTER_SOCKET`` (the executor sets it for agents), else ha.cf's ``api_socket``."""
    return resolve_socket(None, str(DEFAULT_HACF) if DEFAULT_HACF.exists() else None)


def call(command: str, **args: Any) -> dict[str, Any]:
    try:
        return request(socket_path(), command, **args)
    except CliError as exc:
        if exc.code in _NOT_CONNECTED:
            raise ToolError(f"could not reach the hacluster daemon: {exc}", EXIT_DISCONNECT) from None
        if exc.exit_status == EXIT_INSUFFICIENT_PRIV:
            raise ToolError(str(exc), EXIT_INSUFFICIENT_PRIV) from None
        raise ToolError(f"{exc.code}: {exc}") from None


def run(prog: str, main: Callable[[Sequence[str]], str], argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and print what it returns; a ``ToolError`` prints on stderr and sets the status."""
    try:
        out = main(sys.argv[1:] if argv is None else argv)
    except ToolError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.status
    sys.stdout.write(out)
    return EXIT_OK


def resource_instance(explicit: str | None) -> str:
    """``-r``/``-p RESOURCE``, else ``$OCF_RESOURCE_INSTANCE`` (what agents are given)."""
    resource = explicit or os.environ.get("OCF_RESOURCE_INSTANCE", "")
    if not resource:
        raise ToolError(
            "no resource given: pass one (-r RESOURCE / --promotion=RESOURCE) or run from an agent, "
            "which has OCF_RESOURCE_INSTANCE",
            EXIT_USAGE,
        )
    return resource
