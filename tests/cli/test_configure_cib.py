"""Golden output of ``hacrm configure import`` and ``configure show --xml`` (no daemon needed:
``import --print`` only converts, and ``show --xml`` is rendered from fixed crm text)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hacluster.cli.commands.configure import cib_text_of
from hacluster.cli.main import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
Golden = Callable[[str, str], None]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["--socket", "/nonexistent", *argv])
    captured = capsys.readouterr()
    return (
        status,
        f"$ hacrm {' '.join(argv)}\n[exit {status}]\n--- stdout\n{captured.out}--- stderr\n{captured.err}",
    )


def test_import_print(
    golden: Golden, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS / "cib")
    status, text = _run(["configure", "import", "pacemaker-1.0.xml", "--print"], capsys)
    assert status == 0
    golden("configure-import-print", text)


def test_import_refused(
    golden: Golden, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS / "cib")
    status, text = _run(["configure", "import", "not-built.xml", "--print"], capsys)
    assert status == 1
    assert "nothing was changed" in text
    golden("configure-import-refused", text)


def test_import_unreadable(capsys: pytest.CaptureFixture[str]) -> None:
    status, text = _run(["configure", "import", "/nonexistent/cib.xml", "--print"], capsys)
    assert status == 2
    assert "cannot read" in text


def test_show_xml(golden: Golden) -> None:
    golden("configure-show-xml", cib_text_of((FIXTURES / "cluster.crm").read_text(), 12))
