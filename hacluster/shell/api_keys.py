"""API commands of the cluster keys: ``cluster_keys`` (read) and ``cluster_rotate_key`` (change).

The protocol itself is in ``hacluster/shell/keyrotation.py``; this module only checks the
request and shapes the answer.  No answer ever holds a secret: keys are named by slot,
method and a fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.authkeys import read_authkeys
from hacluster.shell.ipc import ApiError
from hacluster.shell.keyrotation import TIMEOUT_MS_DEFAULT, describe_keys

if TYPE_CHECKING:
    from hacluster.shell.api import Route
    from hacluster.shell.daemon import Daemon

TIMEOUT_MS_MAX = 600_000


def cluster_keys(daemon: Daemon, request: dict[str, Any]) -> dict[str, Any]:
    running = daemon.view().keyring()
    path = Path(daemon.config.directory) / "authkeys"
    on_disk = read_authkeys(path)
    answer: dict[str, Any] = {
        "node": daemon.node,
        "sending_slot": running.sign_index,
        "keys": describe_keys(running),
        "file": str(path),
    }
    if on_disk.keyring is None:
        answer["file_problems"] = on_disk.problems
    else:
        answer["file_keys"] = describe_keys(on_disk.keyring)
        answer["file_sending_slot"] = on_disk.keyring.sign_index
    return answer


async def cluster_rotate_key(daemon: Daemon, request: dict[str, Any]) -> dict[str, Any]:
    method = request.get("method") or ""
    timeout_ms = request.get("timeout_ms", TIMEOUT_MS_DEFAULT)
    if not isinstance(method, str):
        raise ApiError("BAD_REQUEST", f"method must be a string, got {method!r}")
    if (
        not isinstance(timeout_ms, int)
        or isinstance(timeout_ms, bool)
        or not 0 < timeout_ms <= TIMEOUT_MS_MAX
    ):
        raise ApiError("BAD_REQUEST", f"timeout_ms must be 1..{TIMEOUT_MS_MAX}, got {timeout_ms!r}")
    return await daemon.key_rotation.rotate(
        method=method,
        timeout_ms=timeout_ms,
        force=bool(request.get("force")),
        dry_run=bool(request.get("dry_run")),
    )


ROUTES: Mapping[str, Route] = {"cluster_keys": cluster_keys, "cluster_rotate_key": cluster_rotate_key}
