"""``hacluster/core`` stays pure: no module there may import I/O, clocks, randomness or logging.

The core gets time, randomness and packets as arguments and answers with effects
(STYLE.md §1), which is what lets the simulator replay it from a seed.  This reads each
file's syntax tree, so nothing is imported and no side effect can hide a violation.

Refused: the modules in ``FORBIDDEN`` (process state and signals too: ``sys``, ``signal``),
any of our own package but the core and ``hacluster.errors`` (the shell above all, however the
import is spelled: relative imports are resolved against the file's package), dynamic imports
(``importlib``, ``__import__``), which would hide all of the above, and reading the wall clock
through ``datetime`` (``now``, ``utcnow``, ``today``), which needs no forbidden import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "hacluster" / "core"

FORBIDDEN = frozenset(
    {
        "asyncio",
        "socket",
        "serial",
        "subprocess",
        "time",
        "random",
        "pyroute2",
        "psutil",
        "pydantic",
        "logging",
        "os",
        "threading",
        "select",
        "selectors",
        "sys",
        "signal",
        "importlib",
    }
)
"""Top-level modules the core must not import (their submodules included)."""

ALLOWED_OWN = ("hacluster.core", "hacluster.errors")
"""The only parts of our own package the core may use."""


WALL_CLOCK = frozenset({"now", "utcnow", "today"})
"""``datetime``/``date`` methods that read the clock."""


def _absolute(module: str | None, level: int, package: str) -> str:
    """The absolute name of a (possibly relative) import made in ``package``."""
    if not level:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level <= len(parts) else []
    return ".".join([*base, module] if module else base)


def forbidden_imports(source: str, filename: str = "<test>", package: str = "hacluster.core") -> list[str]:
    """Every import or clock read in ``source`` that breaks the rules, as ``file:line: what``."""
    problems = []
    tree = ast.parse(source, filename)
    clock_names = {"datetime", "date"}  # the module, and names bound to its classes
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _absolute(node.module, node.level, package) == "datetime":
            clock_names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            clock_names |= {alias.asname for alias in node.names if alias.name == "datetime" and alias.asname}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            # "from .. import shell" imports hacluster.shell: each name may be a submodule.  The
            # base itself counts unless it is a package above what is allowed ("hacluster").
            above = any(allowed.startswith(base + ".") for allowed in ALLOWED_OWN)
            modules = ([] if above else [base]) + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Name) and node.id == "__import__":
            problems.append(f"{filename}:{node.lineno}: __import__ (a dynamic import)")
            continue
        elif (
            isinstance(node, ast.Attribute) and node.attr in WALL_CLOCK and _is_clock(node.value, clock_names)
        ):
            problems.append(f"{filename}:{node.lineno}: {ast.unparse(node)} (reads the wall clock)")
            continue
        else:
            continue
        for module in modules:
            top = module.partition(".")[0]
            own_but_outside = top == "hacluster" and not any(
                module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_OWN
            )
            if top in FORBIDDEN or own_but_outside:
                problems.append(f"{filename}:{node.lineno}: {module}")
                break
    return problems


def _is_clock(value: ast.expr, clock_names: set[str]) -> bool:
    if isinstance(value, ast.Name):
        return value.id in clock_names
    return isinstance(value, ast.Attribute) and value.attr in ("datetime", "date")


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    names = {path.name for path in core_files()}
    assert {"__init__.py", "codec.py", "effects.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    relative = path.relative_to(CORE.parent.parent)
    package = ".".join(relative.with_suffix("").parts[:-1])
    problems = forbidden_imports(path.read_text(encoding="utf-8"), str(relative), package)
    assert not problems, "the core must stay free of I/O, clocks and logging:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import time", True),
        ("import os.path", True),
        ("from asyncio import sleep", True),
        ("import json, socket", True),
        ("def f():\n    import random", True),
        ("from logging.handlers import SysLogHandler", True),
        ("from hacluster.shell import daemon", True),
        ("import hacluster.config", True),
        ("import sys", True),
        ("from signal import SIGTERM", True),
        ("import importlib", True),
        ("from importlib import import_module", True),
        ("mod = __import__('socket')", True),
        ("from ..shell import daemon", True),
        ("from .. import shell", True),
        ("from ..shell.executor import OpResult", True),
        ("from ...hacluster import x", True),
        ("import datetime\nt = datetime.datetime.now()", True),
        ("from datetime import datetime\nt = datetime.now()", True),
        ("from datetime import datetime as dt\nt = dt.utcnow()", True),
        ("from datetime import date\nd = date.today()", True),
        ("import datetime as d\nx = d.date.today()", True),
        ("from hacluster.errors import DecodeError", False),
        ("from hacluster.core.codec import Message", False),
        ("from . import codec", False),
        ("from .codec import Message", False),
        ("from .. import errors", False),
        ("from hacluster import errors", False),
        ("from hacluster import shell", True),
        ("from ..core import ids", False),
        ("import timeit_not_time, dataclasses, hashlib", False),
        ("from datetime import timedelta\nx = timedelta(seconds=1)", False),
        ("from datetime import datetime\nx = datetime.fromisoformat(text)", False),
    ],
)
def test_checker_itself(source: str, bad: bool) -> None:
    assert bool(forbidden_imports(source)) is bad
