"""API commands of the operations tools: ``history`` and ``report``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hacluster.shell.api import Answer, Request, Route
from hacluster.shell.ipc import ApiError
from hacluster.shell.report import write_report

if TYPE_CHECKING:
    from hacluster.shell.daemon import Daemon

HISTORY_LIMIT_DEFAULT = 200


def _opt_int(request: Request, name: str) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiError("BAD_REQUEST", f"{name} must be a non-negative whole number, got {value!r}")
    return value


def _opt_str(request: Request, name: str) -> str:
    value = request.get(name) or ""
    if not isinstance(value, str):
        raise ApiError("BAD_REQUEST", f"{name} must be a string, got {value!r}")
    return value


def history(daemon: Daemon, request: Request) -> Answer:
    limit = _opt_int(request, "limit")
    found = daemon.history.query(
        resource=_opt_str(request, "resource"),
        node=_opt_str(request, "node"),
        code=_opt_str(request, "code"),
        since_ms=_opt_int(request, "since_ms"),
        until_ms=_opt_int(request, "until_ms"),
    )
    limit = HISTORY_LIMIT_DEFAULT if limit is None else limit
    shown = found[-limit:] if limit else found
    return {"node": daemon.node, "events": shown, "matched": len(found)}


async def report(daemon: Daemon, request: Request) -> Answer:
    path = Path(_opt_str(request, "file"))
    if not path.is_absolute():
        raise ApiError("BAD_REQUEST", f"file must be an absolute path, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ApiError(
            "NO_SUCH_DIRECTORY", f"{path.parent} is not a directory; create it or pick another path"
        )
    try:
        return await write_report(daemon, path, _opt_int(request, "since_ms"))
    except OSError as exc:
        raise ApiError("REPORT_FAILED", f"{path}: cannot write the report ({exc.strerror or exc})") from None


ROUTES: Mapping[str, Route] = {"history": history, "report": report}
