"""``hacluster/core`` stays pure: no module there may import I/O, clocks, randomness or logging.

The core gets time, randomness and packets as arguments and answers with effects
(STYLE.md §1), which is what lets the simulator replay it from a seed.  This reads each
file's syntax tree, so nothing is imported and no side effect can hide a violation.
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
    }
)
"""Top-level modules the core must not import (their submodules included)."""

ALLOWED_OWN = ("hacluster.core", "hacluster.errors")
"""The only parts of our own package the core may use."""


def forbidden_imports(source: str, filename: str = "<test>") -> list[str]:
    """Every import in ``source`` that breaks the rules, as ``file:line: module``."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue  # relative imports stay inside hacluster.core
        for module in modules:
            top = module.partition(".")[0]
            own_but_outside = top == "hacluster" and not any(
                module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_OWN
            )
            if top in FORBIDDEN or own_but_outside:
                problems.append(f"{filename}:{node.lineno}: {module}")
    return problems


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    names = {path.name for path in core_files()}
    assert {"__init__.py", "codec.py", "effects.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    problems = forbidden_imports(path.read_text(encoding="utf-8"), str(path.relative_to(CORE.parent.parent)))
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
        ("from hacluster.errors import DecodeError", False),
        ("from hacluster.core.codec import Message", False),
        ("from . import codec", False),
        ("import timeit_not_time, dataclasses, hashlib", False),
    ],
)
def test_checker_itself(source: str, bad: bool) -> None:
    assert bool(forbidden_imports(source)) is bad
