"""CLI golden tests: ``pytest tests/cli --update-golden`` rewrites tests/cli/golden/*.txt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="write the CLI's current output into tests/cli/golden/*.txt instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: compare ``text`` with golden/<name>.txt (or write it, when updating)."""
    update = bool(request.config.getoption("--update-golden", default=False))

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / f"{name}.txt"
        if update:
            GOLDEN_DIR.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing; run: pytest tests/cli --update-golden, then review it"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"output differs from {path.name}; if the change is intended: pytest tests/cli --update-golden"
        )

    return check
