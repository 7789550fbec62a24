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

from hacluster.core.ids import NodeName
from tests.pcmk.cases import (
    CORPUS,
    DELIBERATE_FILE,
    KNOWN_FILE,
    Ours,
    Outcome,
    case_names,
    compare,
    load_list,
    outcome,
    parse_summary,
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


SUMMARY = """Current cluster status:
  * Node List:
    * Online: [ n1 n2 ]

Transition Summary:
  * Fence (reboot) N3 'peer is no longer part of the cluster'
  * Fence (on) n1 'required by unfencing'
  * Move       ip      ( n1 -> n2 )

Executing Cluster Transition:
  * Resource action: ip              stop on n1

Revised Cluster Status:
  * Node List:
    * Online: [ n1 n2 ]

  * Full List of Resources:
    * Fencing\t(stonith:fence_xvm):\t Started n1
    * ip\t(ocf:heartbeat:IPaddr2):\t Started n2
    * Resource Group: g:
      * fs\t(ocf:heartbeat:Filesystem):\t FAILED n1 (blocked)
      * db\t(ocf:heartbeat:pgsql):\t Stopped (disabled)
    * multi\t(ocf:pacemaker:Dummy):\t FAILED (unmanaged) [ n1 n2 ]
    * old\t(ocf:pacemaker:Dummy):\t ORPHANED Started n1
    * Clone Set: ms [stateful] (promotable):
      * Promoted: [ n1 ]
      * Unpromoted: [ n2 ]
    * Clone Set: u [child] (unique):
      * child:0\t(ocf:pacemaker:Dummy):\t Started n2
"""


def test_the_summary_parser_reads_every_kind_of_line() -> None:
    expected = parse_summary(SUMMARY)
    assert expected.fenced == {"n3"}  # unfencing (on) is not a fence
    assert expected.placement == {
        "ip": {("n2", "Started")},
        "fs": {("n1", "Failed")},
        "multi": {("n1", "Failed"), ("n2", "Failed")},
        "old": {("n1", "Started")},
    }
    assert expected.clones == {"ms": (("Promoted", "n1"), ("Unpromoted", "n2")), "u": (("Started", "n2"),)}


def test_a_difference_says_what_pacemaker_does_and_what_we_do() -> None:
    expected = parse_summary(SUMMARY)
    ours = Ours({"ip": frozenset({(NodeName("n1"), "Started")})}, frozenset())
    lines = compare(expected, ours)
    assert "ip: Pacemaker Started n2; we Started n1" in lines
    assert "fs: Pacemaker Failed n1; we stopped" in lines
    assert "fenced: Pacemaker n3; we none" in lines


GROUP_CLONE = """Revised Cluster Status:
  * Full List of Resources:
    * Clone Set: ms-sf [group] (promotable, unique):
      * Resource Group: group:0:
        * a:0\t(ocf:heartbeat:Stateful):\t Unpromoted node-b
        * b:0\t(ocf:heartbeat:Stateful):\t Unpromoted node-b
      * Resource Group: group:1:
        * a:1\t(ocf:heartbeat:Stateful):\t Promoted node-a
        * b:1\t(ocf:heartbeat:Stateful):\t Promoted node-a
    * ip\t(ocf:heartbeat:IPaddr2):\t Started node-a
"""


def test_a_clone_of_a_group_counts_one_instance_per_group_instance() -> None:
    expected = parse_summary(GROUP_CLONE)
    assert expected.clones == {"ms-sf": (("Promoted", "node-a"), ("Unpromoted", "node-b"))}
    assert expected.placement == {"ip": {("node-a", "Started")}}
