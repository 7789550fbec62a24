"""The 30 real files of shared/real-configs: each loads, or is refused for a missing feature,
or is really invalid, and the real tool agrees (real_configs.json lists every verdict).

The unit test judges every file with hacluster's loaders (no root, no tools).  The oracle
tests ask Heartbeat 3.0.6 (ha.cf) and crmsh + crm_verify (crm) for their own verdicts: a
file hacluster calls invalid must be refused by the real tool (or, where the real tool only
refuses it later, the message says why), and a file the tool accepts must load or name a
missing feature.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.config.corpus import first_node, judge_crm, judge_hacf
from tests.config.oracle_support import (
    heartbeat_inputs,
    require_heartbeat,
    require_pacemaker_tools,
    without_obsolete_options,
)
from tests.oracles.heartbeat_parse import heartbeat_verdict
from tests.oracles.pacemaker_tools import crmsh_verdict

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-configs"
EXPECTED: dict[str, dict[str, Any]] = {
    key: value
    for key, value in json.loads((Path(__file__).parent / "real_configs.json").read_text()).items()
    if not key.startswith("_")
}


def _real() -> Path:
    if not REAL.is_dir():
        pytest.fail(f"{REAL} is missing; the real configuration corpus comes with shared/")
    return REAL


def test_the_list_covers_all_thirty_files() -> None:
    on_disk = {f"hacf/{d.name}" for d in (_real() / "hacf").iterdir()} | {
        f"crm/{f.name}" for f in (_real() / "crm").iterdir()
    }
    assert on_disk == set(EXPECTED)
    assert len(on_disk) == 30


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_verdict(key: str) -> None:
    expected = EXPECTED[key]
    path = _real() / key
    judgement = judge_hacf(path) if key.startswith("hacf/") else judge_crm(path)
    assert judgement.verdict == expected["verdict"], judgement.problems
    assert judgement.features == expected.get("features", []), judgement.problems
    for line in expected.get("problems", []):
        assert any(line in problem for problem in judgement.problems), (line, judgement.problems)
    for problem in judgement.problems:
        assert re.match(r"^[\w.-]+(:\d+)?: ", problem), f"no file:line in {problem!r}"


@pytest.mark.root
@pytest.mark.integration
@pytest.mark.parametrize("key", sorted(k for k in EXPECTED if k.startswith("hacf/")))
def test_heartbeat_agrees(key: str) -> None:
    require_heartbeat()
    expected = EXPECTED[key]
    directory = _real() / key
    ha_cf = (directory / "ha.cf").read_text()
    haresources = (directory / "haresources").read_text() if (directory / "haresources").exists() else ""
    hosts, executables = heartbeat_inputs(ha_cf)
    verdict = heartbeat_verdict(ha_cf, first_node(ha_cf), haresources, hosts=hosts, executables=executables)
    assert verdict.accepted == (expected["heartbeat"] == "accepts"), verdict.output
    if "heartbeat_says" in expected:
        assert expected["heartbeat_says"] in verdict.output
    if expected["verdict"] == "invalid" and verdict.accepted:
        assert expected.get("why_invalid"), f"{key}: Heartbeat accepts it; say why hacluster refuses"
    if expected["verdict"] == "loads" and not verdict.accepted:
        assert expected.get("why_we_load"), f"{key}: Heartbeat refuses it; say why hacluster loads it"


@pytest.mark.integration
@pytest.mark.parametrize("key", sorted(k for k in EXPECTED if k.startswith("crm/")))
def test_crmsh_agrees(key: str) -> None:
    require_pacemaker_tools()
    expected = EXPECTED[key]
    text = (_real() / key).read_text()
    verdict = crmsh_verdict(text)
    if expected["crmsh"] == "accepts":
        assert verdict.accepted, verdict.errors()
    elif expected["crmsh"] == "refuses":
        assert not verdict.accepted
        assert expected["crmsh_says"] in verdict.output
    else:  # today's crmsh refuses only the Pacemaker 1.x options, which hacluster reads
        assert not verdict.accepted
        modern = crmsh_verdict(without_obsolete_options(text))
        assert modern.accepted, modern.errors()
    if expected["verdict"] in ("loads", "missing-feature"):
        assert expected["crmsh"] != "refuses", key
