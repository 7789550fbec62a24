"""The fault campaign's pure parts (bench/campaign_*.py): the seeded schedule, the convergence
check and the daemon-log scan, on hand-written inputs.  The campaign itself runs in
tests/integration/test_campaign.py."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from campaign import Options, Summary
from campaign_audit import Expected, convergence_problems, scan_log
from campaign_config import CHANGES, Context, Variant, build_model
from campaign_schedule import KINDS, Schedule

NAMES = ("n1", "n2", "n3")


# --- the schedule ------------------------------------------------------------------------------


def test_a_seed_replays_the_same_schedule() -> None:
    first = [Schedule(42, NAMES).next() for _ in range(1)]
    one, two = Schedule(42, NAMES), Schedule(42, NAMES)
    steps = [one.next() for _ in range(300)]
    assert steps == [two.next() for _ in range(300)]
    assert steps[0] == first[0]
    assert [s.describe() for s in steps] != [
        s.describe() for s in (Schedule(43, NAMES).next() for _ in range(300))
    ]


@pytest.mark.parametrize("nodes", [3, 4, 5])
def test_the_schedule_keeps_a_majority_and_draws_every_kind(nodes: int) -> None:
    names = tuple(f"n{i}" for i in range(1, nodes + 1))
    schedule = Schedule(7, names)
    kinds: Counter[str] = Counter()
    for _ in range(2000):
        step = schedule.next()
        kinds[step.kind] += 1
        down = len(schedule.state.down)
        assert down <= (nodes - 1) // 2, (step, schedule.state)
        if step.kind in ("partition", "blip"):
            assert 1 <= len(step.params["nodes"]) <= (nodes - 1) // 2 - down
        if step.kind == "dc_kill":
            assert step.params["node"] not in schedule.state.up
    assert set(kinds) == set(KINDS), f"never drawn: {set(KINDS) - set(kinds)}"


def test_kinds_can_be_restricted_and_restart_follows_crashes() -> None:
    schedule = Schedule(3, NAMES, kinds=["crash", "move"])
    drawn = {schedule.next().kind for _ in range(200)}
    assert drawn == {"crash", "move", "restart"}
    with pytest.raises(ValueError, match="unknown fault kinds nosuch"):
        Schedule(3, NAMES, kinds=["nosuch"])


def test_configuration_changes_walk_the_variants() -> None:
    variant = Variant()
    for change in CHANGES:
        changed = variant.changed(change, NAMES)
        assert changed != variant
        assert changed.changed(change, NAMES) == variant or change == "location"
    with pytest.raises(ValueError, match="unknown configuration change"):
        variant.changed("colour", NAMES)


def test_the_model_lists_what_the_audits_need(tmp_path: Path) -> None:
    ctx = Context(tmp_path / "journal", tmp_path / "faults", "10.0.0.100", ("primitive f stonith:fence_lab",))
    model = build_model(Variant(with_j4=True), NAMES, ctx)
    assert model.resources == ("j1", "j2", "j3", "vip", "jg1", "jg2", "j4")
    assert set(model.limits) == {"j1", "j2", "j3", "jg1", "jg2", "j4"}
    assert ("jg2", "jg1") in model.requires
    assert ("j2", "j1") in model.requires
    assert model.group_of == {"vip": "grp", "jg1": "grp", "jg2": "grp"}
    assert model.vip == ("vip", "10.0.0.100")
    assert "location l-j3-prefers j3 50: n2" in model.crm
    assert "fault_dir=" in model.crm
    assert "j4" not in build_model(Variant(), NAMES, ctx).resources


# --- convergence -------------------------------------------------------------------------------


def status(
    node: str, *, dc: str = "n1", up: tuple[str, ...] = NAMES, placed: dict[str, Any] | None = None
) -> dict[str, Any]:
    placed = {"a": "n2", "b": "n2"} if placed is None else placed
    return {
        "cluster": {"state": "active", "dc": dc, "quorum": True},
        "nodes": [{"name": n, "state": "active" if n in up else "dead", "type": "normal"} for n in NAMES],
        "resources": [
            {"id": r, "state": "started" if n else "stopped", "node": n, "reason": "why"}
            for r, n in placed.items()
        ],
        "pending": [],
        "fencing_pending": {},
    }


EXPECTED = Expected(
    names=NAMES, up=frozenset(NAMES), resources=("a", "b"), together=(("a", "b"),), journaled=frozenset({"a"})
)


def test_a_converged_cluster_has_no_problem() -> None:
    views = {n: status(n) for n in NAMES}
    assert convergence_problems(views, EXPECTED, journal_copies={"a": ["n2"]}) == []


@pytest.mark.parametrize(
    ("change", "expected_text"),
    [
        (lambda v: v.update(n3=None), "n3 does not answer"),
        (lambda v: v["n2"]["cluster"].update(dc="n2"), "DC views n1=n1, n2=n2, n3=n1"),
        (lambda v: v["n3"]["nodes"][0].update(state="dead"), "n3 sees n1=dead"),
        (lambda v: v["n1"]["cluster"].update(quorum=False), "n1 has no quorum"),
        (lambda v: v["n1"].update(pending=["a"]), "n1 has operations in flight on a"),
        (lambda v: v["n2"].update(fencing_pending={"n3": "waiting"}), "n2 waits to fence n3=waiting"),
        (
            lambda v: v["n1"]["resources"][1].update(state="stopped", node=None),
            "n1 sees b stopped on None (why)",
        ),
        (lambda v: v["n1"]["resources"][1].update(node="n3"), "views disagree where b runs"),
    ],
)
def test_each_kind_of_unconverged_view_is_named(change: Any, expected_text: str) -> None:
    views: dict[str, Any] = {n: status(n) for n in NAMES}
    change(views)
    problems = convergence_problems(views, EXPECTED)
    assert any(expected_text in p for p in problems), problems


def test_groups_standby_the_journal_and_the_vip_are_checked() -> None:
    apart = {n: status(n, placed={"a": "n1", "b": "n2"}) for n in NAMES}
    assert any("a+b belong together" in p for p in convergence_problems(apart, EXPECTED))
    views = {n: status(n) for n in NAMES}
    avoid = Expected(names=NAMES, up=frozenset(NAMES), resources=("a", "b"), avoid=frozenset({"n2"}))
    assert any("which is in standby" in p for p in convergence_problems(views, avoid))
    assert convergence_problems(views, EXPECTED, journal_copies={"a": ["n2", "n3"]}) == [
        "journal: a active on ['n2', 'n3'], status says n2"
    ]
    vip = Expected(names=NAMES, up=frozenset(NAMES), resources=("a", "b"), vip=("a", "10.0.0.100"))
    assert convergence_problems(views, vip, vip_holders=["n1"]) == [
        "VIP 10.0.0.100 configured on ['n1'], status says n2"
    ]
    down = Expected(names=NAMES, up=frozenset({"n1", "n2"}), resources=("a", "b"))
    two = {n: status(n, up=("n1", "n2")) for n in ("n1", "n2")}
    assert convergence_problems(two, down) == []
    on_dead = {n: status(n, up=("n1", "n2"), placed={"a": "n3", "b": "n3"}) for n in ("n1", "n2")}
    assert any("which should be down" in p for p in convergence_problems(on_dead, down))


# --- the daemon logs ---------------------------------------------------------------------------

STAMP = "2026-12-04 18:35:37,683 n1 hacluster.shell.daemon[24153]"


def test_decisions_with_reasons_pass() -> None:
    text = "\n".join(
        [
            f"{STAMP} INFO: plan 1: j1 -> n2 (goes to n2 (score 0)); vip -> nowhere (moving: stopped on n1 first) [PLAN]",
            f"{STAMP} WARNING: n2 declared dead: silent on bcast e1 for 1001 ms > deadtime 1000 ms [NODE_DEAD node=n2 old=active new=dead]",
            f"{STAMP} INFO: designated coordinator is now n1 (lowest-named member) [DC_CHANGED]",
            f"{STAMP} WARNING: n3 will be fenced (it left the membership without a clean stop) after 200 ms [FENCING_REQUESTED target=n3]",
            f"{STAMP} WARNING: jg2 start failed, rc 1 'error': injected; banned from this node (18 ms) [RESOURCE_START resource=jg2 rc=1 state=failed]",
            f"{STAMP} INFO: j1 started (35 ms) [RESOURCE_START resource=j1 rc=0 state=started]",
            f"{STAMP} INFO: op finished resource=j1 action=start interval_ms=0 rc=0 duration_ms=35",
        ]
    )
    assert scan_log(text, "n1") == []


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("INFO: plan 2: j1 -> n2 () [PLAN]", "plan entry without a reason: 'j1 -> n2 ()'"),
        ("INFO: plan 2: j1 -> n2 (None) [PLAN]", "plan entry without a reason"),
        ("WARNING: n2 declared dead: [NODE_DEAD node=n2]", "NODE_DEAD without its reason"),
        ("INFO: designated coordinator is now n1 [DC_CHANGED]", "DC_CHANGED without its reason"),
        (
            "WARNING: n3 will be fenced () now [FENCING_REQUESTED target=n3]",
            "FENCING_REQUESTED without its reason",
        ),
        ("INFO: fencing n3 cancelled: None [FENCING_CANCELLED]", "FENCING_CANCELLED with an empty reason"),
        (
            "WARNING: jg2 start failed (18 ms) [RESOURCE_START resource=jg2 rc=1 state=failed]",
            "a failed operation without",
        ),
        ("INFO:  [OWN_STATE]", "OWN_STATE with no sentence at all"),
    ],
)
def test_decisions_without_a_reason_are_found(line: str, detail: str) -> None:
    findings = scan_log(f"{STAMP} {line}", "n1")
    assert [f.kind for f in findings] == ["no-reason"]
    assert detail in findings[0].detail


def test_a_traceback_is_found_with_its_lines() -> None:
    text = "\n".join(
        [
            f"{STAMP} INFO: n1 is up: started [OWN_STATE]",
            "Traceback (most recent call last):",
            '  File "hacluster/shell/daemon.py", line 1, in run',
            "    boom()",
            "ZeroDivisionError: division by zero",
            f"{STAMP} INFO: n1 is up: started [OWN_STATE]",
        ]
    )
    findings = scan_log(text, "n2")
    assert [f.kind for f in findings] == ["traceback"]
    assert findings[0].node == "n2"
    assert "ZeroDivisionError: division by zero" in findings[0].detail
    assert "OWN_STATE" not in findings[0].detail


# --- the results file --------------------------------------------------------------------------


def test_the_results_of_a_run_kept_with_keep_are_json() -> None:
    """Regression (seed 3002092346, 4 nodes, 16 minutes, --keep): 377 steps passed every audit,
    then writing bench/results/*.json failed on the ``keep`` path (not JSON serialisable),
    so the run exited 1 with a traceback and no results file."""
    options = Options(seed=3002092346, minutes=16, nodes=4, kinds=("crash", "move"), keep=Path("/tmp/k"))
    data = json.loads(json.dumps(Summary(seed=options.seed).as_dict(options)))
    assert data["options"]["keep"] == "/tmp/k"
    assert data["options"]["kinds"] == ["crash", "move"]
    assert "results" not in data["options"]
