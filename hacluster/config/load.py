"""``load_config``: ha.cf and the authkeys beside it, checked together.

Every problem of both files is collected and raised as one ``ConfigError``, so an operator
fixes them in one go rather than one restart per mistake.  ``read_config`` gives the parts
without raising, so ``config.cluster.load_cluster`` can add the resource file's problems to
the same list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hacluster.config.authkeys import AuthkeysResult, read_authkeys
from hacluster.config.hacf import HaCfResult, parse_hacf
from hacluster.config.model import LoadedConfig
from hacluster.errors import ConfigError


def default_node_name() -> str:
    """This machine's node name as Heartbeat sees it: ``uname -n``, lower-cased."""
    return os.uname().nodename.lower()


@dataclass(frozen=True, slots=True)
class ConfigParts:
    """ha.cf and authkeys as read, with every problem found; ``loaded()`` once there are none."""

    path: Path
    hacf: HaCfResult | None
    """None when ha.cf could not be read at all."""
    authkeys: AuthkeysResult
    problems: tuple[str, ...]

    def loaded(self) -> LoadedConfig:
        """The validated configuration; ``ConfigError`` if any problem was found."""
        if self.problems or self.hacf is None or self.authkeys.keyring is None:
            raise ConfigError(list(self.problems))
        values = dict(self.hacf.values)
        values.update(
            path=self.path,
            directory=self.path.parent,
            warnings=self.hacf.warnings + self.authkeys.warnings,
            raw=self.hacf.raw,
            where=self.hacf.where,
            keyring=self.authkeys.keyring,
        )
        try:
            return LoadedConfig.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_validation_problems(exc, self.path, self.hacf.where)) from None


def read_config(hacf_path: str | Path, node_name: str) -> ConfigParts:
    """Read ha.cf and ``authkeys`` from its directory, collecting every problem (never raises)."""
    path = Path(hacf_path)
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"{path}: cannot read ha.cf ({exc.strerror}); check the path given to hacluster")
        text = None
    hacf = None if text is None else parse_hacf(text, str(path), node_name)
    authkeys = read_authkeys(path.parent / "authkeys")
    if hacf is not None:
        problems.extend(hacf.problems)
    problems.extend(authkeys.problems)
    return ConfigParts(path, hacf, authkeys, tuple(problems))


def load_config(hacf_path: str | Path, node_name: str) -> LoadedConfig:
    """Read ha.cf and ``authkeys`` from its directory; raise ``ConfigError`` with every problem."""
    return read_config(hacf_path, node_name).loaded()


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
