"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parent / "vectors" / "heartbeat"
"""Captured Heartbeat 3.0.6 UDP payloads; keys and origin in its README.md."""


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The folder of captured Heartbeat packets (``tests/vectors/heartbeat``)."""
    assert VECTORS_DIR.is_dir(), f"{VECTORS_DIR} is missing; it is part of the repository"
    return VECTORS_DIR


# The event-loop watch (tests/loopwatch.py): every test fails if one of its loops was blocked.
from loopwatch import pytest_addoption, pytest_runtest_call  # noqa: E402, F401  (hooks, by name)
