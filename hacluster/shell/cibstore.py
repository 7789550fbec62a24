"""The replicated configuration on disk: ``<state_dir>/cib.json``.

Each node keeps the newest version it has adopted, so a restart resumes from it instead of
from the resource file.  The file beside ha.cf wins only when *it* changed since it was last
loaded (its digest is stored with the copy): then it becomes a new version with a higher
epoch, and the cluster converges on it.  Writes are atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from hacluster.config.cluster import ResourceSource
from hacluster.core.cib import ClusterConfig

logger = logging.getLogger(__name__)

FILENAME = "cib.json"


def _path(state_dir: Path) -> Path:
    return state_dir / FILENAME


def load_stored(state_dir: Path) -> tuple[ClusterConfig, str] | None:
    """The stored copy and the digest of the file it came from, or None (missing/unreadable)."""
    path = _path(state_dir)
    try:
        data = json.loads(path.read_text())
        config = ClusterConfig.from_json(json.dumps(data["config"]))
        return config, str(data.get("source_digest", ""))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.error(
            "stored configuration unreadable, starting from the resource file path=%s error=%s", path, exc
        )
        return None


def save(state_dir: Path, config: ClusterConfig, source_digest: str) -> None:
    state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    path = _path(state_dir)
    tmp = path.with_suffix(".tmp")
    body = json.dumps(
        {"source_digest": source_digest, "config": json.loads(config.to_json())}, sort_keys=True
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def initial_config(state_dir: Path, source: ResourceSource) -> ClusterConfig:
    """The version to start with: the stored one, unless the resource file changed since."""
    stored = load_stored(state_dir)
    if stored is not None and stored[1] == source.digest:
        logger.info("configuration resumed from the state dir epoch=%d", stored[0].epoch)
        return stored[0]
    epoch = stored[0].epoch + 1 if stored is not None else max(source.config.epoch, 1)
    config = replace(source.config, epoch=epoch)
    if stored is not None:
        logger.info("resource file changed since it was last loaded: new configuration epoch=%d", epoch)
    save(state_dir, config, source.digest)
    return config
