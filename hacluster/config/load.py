"""``load_config``: ha.cf and the authkeys beside it, checked together.

Every problem of both files is collected and raised as one ``ConfigError``, so an operator
fixes them in one go rather than one restart per mistake.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from hacluster.config.authkeys import read_authkeys
from hacluster.config.hacf import parse_hacf
from hacluster.config.model import LoadedConfig
from hacluster.errors import ConfigError


def default_node_name() -> str:
    """This machine's node name as Heartbeat sees it: ``uname -n``, lower-cased."""
    return os.uname().nodename.lower()


def load_config(hacf_path: str | Path, node_name: str) -> LoadedConfig:
    """Read ha.cf and ``authkeys`` from its directory; raise ``ConfigError`` with every problem."""
    path = Path(hacf_path)
    directory = path.parent
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"{path}: cannot read ha.cf ({exc.strerror}); check the path given to hacluster")
        text = None
    hacf = None if text is None else parse_hacf(text, str(path), node_name)
    authkeys = read_authkeys(directory / "authkeys")
    if hacf is not None:
        problems.extend(hacf.problems)
    problems.extend(authkeys.problems)
    if problems or hacf is None or authkeys.keyring is None:
        raise ConfigError(problems)
    values = dict(hacf.values)
    values.update(
        path=path,
        directory=directory,
        warnings=hacf.warnings + authkeys.warnings,
        raw=hacf.raw,
        where=hacf.where,
        keyring=authkeys.keyring,
    )
    try:
        return LoadedConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_validation_problems(exc, path, hacf.where)) from None


def _validation_problems(exc: ValidationError, path: Path, where: dict[str, str]) -> list[str]:
    """Pydantic's findings in our format.  Reaching here means the parser let a bad value by."""
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "ha.cf"
        directive = name.removesuffix("_ms")
        location = where.get(directive, str(path))
        problems.append(
            f"{location}: {directive}: value not accepted ({error['type']}); this check should have "
            "named the line itself, so please report it together with the line"
        )
    return problems
