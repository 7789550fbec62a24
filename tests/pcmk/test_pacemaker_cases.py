"""Pacemaker's 522 scheduler regression cases as a test of our scheduler (``tests/pcmk/cases.py``).

Every representable case must agree with Pacemaker's final placement, roles and fenced nodes,
unless it is listed: in ``deliberate_differences.json`` (we differ on purpose; the category is
explained in ``docs/pacemaker-cases.md``) or in ``known_disagreements.json`` (the work queue:
each entry records what Pacemaker does and what we do, as this test computes them, and a
one-line diagnosis).  A listed case that starts agreeing, or whose difference changes, fails
too, so both lists stay true.  The cases we cannot represent, and why, are the table of
``docs/pacemaker-cases.md``, which ``test_docs_counts_are_current`` holds to the code.
"""

from __future__ import annotations

import pytest

from tests.pcmk.cases import (
    CORPUS,
    DELIBERATE_FILE,
    KNOWN_FILE,
    Outcome,
    case_names,
    load_list,
    outcome,
)
from tests.pcmk.report import DOCS, render_counts, section_of

if not (CORPUS / "xml").is_dir():
    pytest.fail(f"{CORPUS} is missing; the Pacemaker scheduler corpus comes with shared/", pytrace=False)

NAMES = case_names()
KNOWN = load_list(KNOWN_FILE)
DELIBERATE = load_list(DELIBERATE_FILE)
REPRESENTABLE = [n for n in NAMES if outcome(n).representable]


def test_the_corpus_is_whole() -> None:
    assert len(NAMES) == 522
    missing = [n for n in NAMES if not (CORPUS / "summary" / f"{n}.summary").is_file()]
    assert missing == []


def _listed(o: Outcome) -> dict[str, str] | None:
    return DELIBERATE.get(o.name) or KNOWN.get(o.name)


@pytest.mark.parametrize("name", REPRESENTABLE)
def test_case_agrees_with_pacemaker(name: str) -> None:
    o = outcome(name)
    entry = _listed(o)
    if entry is None:
        assert o.differences == (), f"{name}: we disagree with Pacemaker:\n" + "\n".join(o.differences)
        return
    assert o.differences, f"{name} agrees with Pacemaker now: remove it from its list"
    assert entry["difference"] == " | ".join(o.differences), (
        f"{name}: the difference changed; update its entry: " + " | ".join(o.differences)
    )


def test_lists_name_only_representable_cases() -> None:
    assert set(KNOWN).isdisjoint(DELIBERATE)
    stray = sorted(n for n in [*KNOWN, *DELIBERATE] if n not in REPRESENTABLE)
    assert stray == [], "listed, but not a representable case (any more): " + ", ".join(stray)
    for name, entry in [*KNOWN.items(), *DELIBERATE.items()]:
        assert entry.get("category"), f"{name}: give a category"
        assert entry.get("diagnosis"), f"{name}: give a one-line diagnosis"


def test_every_unrepresentable_case_says_why() -> None:
    for name in NAMES:
        o = outcome(name)
        if not o.representable:
            assert o.unsupported or o.refused, name


def test_docs_counts_are_current() -> None:
    written = section_of(DOCS.read_text())
    assert written == render_counts(), (
        "docs/pacemaker-cases.md is out of date: run `.venv/bin/python -m tests.pcmk.report --write`"
    )
