"""Golden output of ``hacrm``: status, resource why, simulate, configure diff/verify, usage errors.

No daemon: each case builds the API's answer from a fixed document or a fixed cluster
snapshot (tests/cli/fixtures) with the same functions the daemon uses, and renders it with
the CLI's formatter.  ``pytest tests/cli --update-golden`` rewrites the files; review the diff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hacluster.cli import render
from hacluster.cli.client import CliError
from hacluster.cli.commands.configure import format_diff, format_verify
from hacluster.cli.commands.explain import format_simulation, format_why
from hacluster.cli.main import main
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import edits
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.snapshot import ClusterSnapshot, Failure, has_quorum
from hacluster.shell.api_explain import (
    diff_answer,
    new_config,
    parse_text,
    simulate_answer,
    verify_answer,
    why_answer,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NODES = (NodeName("n1"), NodeName("n2"), NodeName("n3"))
SCENARIOS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "scenarios.json").read_text())
Golden = Callable[[str, str], None]


def _key(text: str) -> tuple[str, NodeName]:
    rsc, _, node = text.partition("@")
    return rsc, NodeName(node)


def snapshot(name: str) -> ClusterSnapshot:
    """Scenario ``name`` of scenarios.json over cluster.crm: every primitive stopped unless listed."""
    spec = SCENARIOS[name]
    config = parse_resources_crm(
        (FIXTURES / "cluster.crm").read_text() + spec.get("config_extra", ""), "cluster.crm"
    )
    for rsc in spec.get("target_role_stopped", []):
        config = edits.set_meta(config, rsc, "target-role", "Stopped")
    config = replace(config, epoch=12)
    members = frozenset(NodeName(n) for n in spec["members"])
    observed: dict[str, dict[NodeName, LocalState]] = {
        p.id: dict.fromkeys(sorted(members), LocalState.STOPPED)
        for p in config.primitives
        if p.agent_class != "stonith"
    }
    for rsc, node in spec.get("running", {}).items():
        observed[rsc][NodeName(node)] = LocalState.STARTED
    for key, state in spec.get("states", {}).items():
        rsc, node = _key(key)
        observed[rsc][node] = LocalState(state)
    return ClusterSnapshot(
        config=config,
        nodes=NODES,
        members=members,
        observed=observed,
        failcounts={_key(k): v for k, v in spec.get("failcounts", {}).items()},
        failures={_key(k): Failure(**v) for k, v in spec.get("failures", {}).items()},
        unclean=frozenset(NodeName(n) for n in spec.get("unclean", [])),
        fence_pending={NodeName(n): t for n, t in spec.get("fence_pending", {}).items()},
        has_quorum=has_quorum(len(NODES), len(members)),
        dc=min(members),
        now_ms=spec.get("now_ms"),
        node=min(members),
    )


def test_status(golden: Golden) -> None:
    document = json.loads((FIXTURES / "status.json").read_text())
    golden("status", render.status_text(document))


WHY_CASES = [
    ("healthy", "vip"),
    ("healthy", "g-web"),
    ("db-banned", "db"),
    ("db-banned", "web"),
    ("start-failure", "db"),
    ("fence-pending", "vip"),
    ("blocked", "web"),
    ("blocked", "vip"),
    ("stopped", "web"),
    ("stopped", "db"),
    ("no-quorum", "db"),
    ("failed", "db"),
    ("failed", "web"),
    ("failed", "vip"),
    ("blocked", "db"),
]


def test_resource_why(golden: Golden) -> None:
    out = []
    for scenario, rsc in WHY_CASES:
        out.append(f"$ hacrm resource why {rsc}    # scenario {scenario}\n")
        out.append(format_why(why_answer(snapshot(scenario), rsc)) + "\n")
    golden("resource-why", "".join(out))


SIMULATIONS = {
    "simulate-crash": ("healthy", {"crash": ["n1"]}),
    "simulate-standby": ("healthy", {"standby": ["n1"]}),
    "simulate-fail": ("healthy", {"fail": ["db"]}),
    "simulate-fail-threshold": ("db-two-failures", {"fail": ["db"]}),
    "simulate-partition": ("healthy", {"partition": [["n1"], ["n2", "n3"]]}),
    "simulate-fence-pending": ("fence-pending", {}),
    "simulate-blocked": ("blocked", {}),
    "simulate-no-quorum": ("healthy", {"crash": ["n2", "n3"]}),
}


@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_simulate(golden: Golden, name: str) -> None:
    scenario, what = SIMULATIONS[name]
    flags = [f"--{k} {v}" for k in ("crash", "fail", "standby") for v in what.get(k, [])]
    flags += [f"--partition {','.join(side)}" for side in what.get("partition", [])]
    header = " ".join(["$ hacrm simulate", *flags]) + f"    # scenario {scenario}\n"
    golden(name, header + format_simulation(simulate_answer(snapshot(scenario), what)))


@pytest.mark.parametrize(
    ("name", "file", "mode"),
    [
        ("configure-diff", "cluster-new.crm", "replace"),
        ("configure-diff-update", "cluster-update.crm", "update"),
    ],
)
def test_configure_diff(golden: Golden, name: str, file: str, mode: str) -> None:
    snap = snapshot("healthy")
    new = new_config(snap.config, parse_text((FIXTURES / file).read_text(), file), mode, file)
    header = f"$ hacrm configure diff {'--update ' if mode == 'update' else ''}{file}    # scenario healthy\n"
    golden(name, header + format_diff(diff_answer(snap, new, file), file))


def test_configure_verify(golden: Golden) -> None:
    out = ["$ hacrm configure verify cluster.crm\n"]
    text = (FIXTURES / "cluster.crm").read_text() + "location web-on-n9 g-web 50: n9\n"
    out.append(format_verify(verify_answer(text, "cluster.crm", NODES), "cluster.crm"))
    out.append("\n$ hacrm configure verify broken.crm\n")
    with pytest.raises(CliError) as caught:
        format_verify(verify_answer((FIXTURES / "broken.crm").read_text(), "broken.crm", NODES), "broken.crm")
    out.append(f"hacrm: error [{caught.value.code}]: {caught.value}\n")
    golden("configure-verify", "".join(out))


USAGE_ERRORS = [
    ["simulate", "--fail", "vip::n1"],
    ["simulate", "--partition", "n1,,n2"],
    ["simulate", "--crash"],
    ["configure", "load", "merge", "x.crm"],
    ["resource", "why"],
]


def test_usage_errors_exit_2_and_name_the_fix(golden: Golden, capsys: pytest.CaptureFixture[str]) -> None:
    out = []
    for argv in USAGE_ERRORS:
        with pytest.raises(SystemExit) as caught:
            main(["--socket", "/nonexistent", *argv])
        assert caught.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        out.append(f"$ hacrm {' '.join(argv)}\n{last}\n")
    golden("usage-errors", "".join(out))
