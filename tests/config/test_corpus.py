"""hacluster's own corpus (tests/corpus): every ha.cf directive and every crm and CIB construct,
each file checked three ways.

1. **Our loader**: the verdict, features and messages the file's header states
   (``# expect: …``, ``# problem: …``, ``# warning: …``), and the full messages against a
   golden file (``tests/corpus/golden``; ``UPDATE_GOLDEN=1`` rewrites them: review the diff).
2. **The real tool**: Heartbeat 3.0.6 for ha.cf (``# heartbeat: accepts|refuses``), crmsh and
   crm_verify for crm text (``# crmsh: …``), crm_verify for CIBs (``<!-- crm_verify: … -->``).
3. **Round trip** for everything that loads from crm or a CIB: export as a CIB, crm_verify -x
   accepts it, and importing it gives the same configuration; import -> export -> import of a
   CIB changes nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from hacluster.config.cib_xml import parse_cib_xml, render_cib_xml
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import ClusterConfig
from tests.config.corpus import Judgement, first_node, judge_cib, judge_crm, judge_hacf
from tests.config.oracle_support import (
    heartbeat_inputs,
    require_heartbeat,
    require_pacemaker_tools,
    without_obsolete_options,
)
from tests.oracles.heartbeat_parse import heartbeat_verdict
from tests.oracles.pacemaker_tools import crm_verify_verdict, crmsh_verdict

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
GOLDEN = CORPUS / "golden"
_HEADER = re.compile(r"^\s*(?:#|<!--)\s*([a-z_]+):\s*(.*?)\s*(?:-->)?\s*$")


def _cases(kind: str) -> list[Path]:
    base = CORPUS / kind
    return sorted(p for p in base.iterdir() if p.suffix in (".cf", ".crm", ".xml") or p.is_dir())


def _header_file(case: Path) -> Path:
    return case / "ha.cf" if case.is_dir() else case


def header(case: Path) -> dict[str, list[str]]:
    """The ``key: value`` lines of a case's leading comments (keys may repeat)."""
    fields: dict[str, list[str]] = {}
    for line in _header_file(case).read_text().splitlines():
        match = _HEADER.match(line)
        if match is None:
            if line.strip().startswith(("#", "<!--")):
                continue
            break
        fields.setdefault(match.group(1), []).append(match.group(2))
    return fields


def judge(kind: str, case: Path) -> Judgement:
    if kind == "hacf":
        node = (header(case).get("node") or [None])[0]
        if case.is_dir():
            return judge_hacf(case, node=node)
        with tempfile.TemporaryDirectory(prefix="corpus-") as scratch:  # a lone .cf: its own directory
            (Path(scratch) / "ha.cf").write_text(case.read_text())
            return judge_hacf(Path(scratch), node=node)
    return judge_crm(case) if kind == "crm" else judge_cib(case)


ALL = [(kind, case) for kind in ("hacf", "crm", "cib") for case in _cases(kind)]
IDS = [f"{kind}/{case.name}" for kind, case in ALL]


@pytest.mark.parametrize(("kind", "case"), ALL, ids=IDS)
def test_our_loader(kind: str, case: Path) -> None:
    fields = header(case)
    judgement = judge(kind, case)
    assert judgement.verdict == fields["expect"][0], judgement.problems
    expected_features = sorted(
        f.strip() for f in ", ".join(fields.get("features", [])).split(",") if f.strip()
    )
    assert judgement.features == expected_features, judgement.problems
    for line in fields.get("problem", []):
        assert any(line in p for p in judgement.problems), (line, judgement.problems)
    for line in fields.get("warning", []):
        assert any(line in w for w in judgement.warnings), (line, judgement.warnings)
    golden = GOLDEN / f"{kind}-{case.stem}.txt"
    text = "".join(f"problem: {p}\n" for p in judgement.problems) + "".join(
        f"warning: {w}\n" for w in judgement.warnings
    )
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing; run with UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text()


def _loaded(kind: str, case: Path) -> ClusterConfig:
    if kind == "crm":
        return parse_resources_crm(case.read_text(), case.name)
    return parse_cib_xml(case.read_bytes(), case.name)


def _same(a: ClusterConfig, b: ClusterConfig) -> bool:
    """Equal content; primitives compared as a set, since a group is written where it stands."""
    da, db = a.to_dict(), b.to_dict()
    for data in (da, db):
        data["primitives"] = sorted(data["primitives"], key=lambda p: str(p["id"]))  # type: ignore[arg-type,index]
        data.pop("epoch"), data.pop("source")
    return da == db


LOADING = [(k, c) for k, c in ALL if k in ("crm", "cib") and header(c)["expect"][0] == "loads"]


@pytest.mark.parametrize(("kind", "case"), LOADING, ids=[f"{k}/{c.name}" for k, c in LOADING])
def test_round_trip(kind: str, case: Path) -> None:
    first = _loaded(kind, case)
    exported = render_cib_xml(first)
    second = parse_cib_xml(exported, "exported.xml")
    assert _same(first, second)
    third = parse_cib_xml(render_cib_xml(second), "again.xml")
    assert second.to_dict() | {"source": ""} == third.to_dict() | {"source": ""}


@pytest.mark.integration
@pytest.mark.parametrize(("kind", "case"), LOADING, ids=[f"{k}/{c.name}" for k, c in LOADING])
def test_crm_verify_accepts_the_export(kind: str, case: Path) -> None:
    require_pacemaker_tools()
    verdict = crm_verify_verdict(render_cib_xml(_loaded(kind, case)))
    assert verdict.accepted, verdict.output


HACF = [c for k, c in ALL if k == "hacf"]


@pytest.mark.root
@pytest.mark.integration
@pytest.mark.parametrize("case", HACF, ids=[c.name for c in HACF])
def test_heartbeat_agrees(case: Path) -> None:
    require_heartbeat()
    fields = header(case)
    ha_cf = _header_file(case).read_text()
    haresources = (
        (case / "haresources").read_text() if case.is_dir() and (case / "haresources").exists() else ""
    )
    hosts, executables = heartbeat_inputs(ha_cf)
    node = fields.get("node", [first_node(ha_cf)])[0]
    verdict = heartbeat_verdict(ha_cf, node, haresources, hosts=hosts, executables=executables)
    assert verdict.accepted == (fields["heartbeat"][0] == "accepts"), verdict.output
    for said in fields.get("heartbeat_says", []):
        assert said in verdict.output, verdict.output
    if fields["expect"][0] == "invalid":
        assert not verdict.accepted, "hacluster refuses a file Heartbeat accepts"


CRM = [c for k, c in ALL if k == "crm"]


@pytest.mark.integration
@pytest.mark.parametrize("case", CRM, ids=[c.name for c in CRM])
def test_crmsh_agrees(case: Path) -> None:
    require_pacemaker_tools()
    fields = header(case)
    text = case.read_text()
    verdict = crmsh_verdict(text)
    if fields["crmsh"][0] == "refuses-obsolete-options":  # only Pacemaker 1.x options, read here
        assert not verdict.accepted
        verdict = crmsh_verdict(without_obsolete_options(text))
        assert verdict.accepted, verdict.errors()
    assert verdict.accepted == (fields["crmsh"][0] != "refuses"), verdict.errors()
    for said in fields.get("crmsh_says", []):
        assert said in verdict.output
    if fields["expect"][0] != "invalid":
        assert verdict.accepted


CIB = [c for k, c in ALL if k == "cib"]


@pytest.mark.integration
@pytest.mark.parametrize("case", CIB, ids=[c.name for c in CIB])
def test_crm_verify_agrees(case: Path) -> None:
    require_pacemaker_tools()
    fields = header(case)
    verdict = crm_verify_verdict(case.read_text())
    assert verdict.accepted == (fields["crm_verify"][0] == "accepts"), verdict.output
    for said in fields.get("crm_verify_says", []):
        assert said in verdict.output


# -- the corpus covers every directive, statement and refused feature ----------------------------

IPV6_DIRECTIVES = frozenset(["mcast6", "ucast6", "ping6"])
"""Being built by the IPv6 work (issue 9); its own tests cover them."""


def test_every_hacf_directive_is_in_the_corpus() -> None:
    from hacluster.config.hacf import KNOWN_DIRECTIVES

    used: set[str] = set()
    for case in HACF:
        for line in _header_file(case).read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if words:
                used.add(words[0])
    assert sorted(KNOWN_DIRECTIVES - IPV6_DIRECTIVES - used) == []


def test_every_crm_statement_is_in_the_corpus() -> None:
    from hacluster.config.resources_crm import _HANDLERS

    text = "".join(case.read_text() for case in CRM)
    assert [word for word in _HANDLERS if not re.search(rf"(?m)^{word}\b", text)] == []


def test_every_missing_feature_is_refused_somewhere_in_the_corpus() -> None:
    from hacluster.config.features import MISSING

    messages = "".join(path.read_text() for path in GOLDEN.glob("*.txt"))
    assert [
        key for key, item in MISSING.items() if f": {item.feature} are not supported" not in messages
    ] == []
