"""``simulate`` runs the cluster's own code: the live state machine and ``predict`` agree.

Each case starts a simulated cluster of real ``NodeCore``s (``rmsim.RmSim``: agents that
succeed, a power switch that fences), lets it settle, takes the DC's snapshot — exactly
what ``hacrm simulate`` reads — and asks ``predict`` what a what-if would do.  Then the same
what-if happens to the live cluster, and the two must agree:

- on the final placement: where every resource runs once the cluster is at rest;
- on the actions: the same fences, stops, starts, moves, recoveries and restarts;
- on their order, wherever order matters: each resource's own actions, a prerequisite's
  start before what needs it, a dependent's stop before what it needs, a fence before any
  start or move it gates.  (Independent resources run in parallel in the live cluster, so
  their relative order is not fixed; ``predict`` lists rounds one after another.)

A table of named scenarios covers crash, failure, standby, partition, configuration change,
groups, orders, colocations, fencing on and off, and a failed stop; a seeded sweep draws
configurations and what-ifs at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from rmsim import JournalEntry, RmSim

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import edits
from hacluster.core.ids import NodeName
from hacluster.core.lrm import LocalState
from hacluster.core.orders import dependencies
from hacluster.core.simulate import Action, Fence, Move, Recover, Restart, Start, Stop, _fold, predict_sides

pytestmark = pytest.mark.sim


SWEEP_SEEDS = {"test_seeded_sweep": 1500}
"""Seeds in a suite run (conftest.py; ``--sim-seeds`` overrides)."""

FENCE_DEVICE = "primitive fence-lab stonith:fence_lab\n"
NO_FENCING = "property stonith-enabled=false\n"


@dataclass(frozen=True)
class WhatIf:
    """One what-if, said to ``predict`` and done to the live cluster."""

    crash: tuple[str, ...] = ()
    kill: tuple[tuple[str, str], ...] = ()
    """(resource, node): the resource dies there; predict: ``--fail rsc`` (it runs only there)."""
    standby: tuple[str, ...] = ()
    partition: tuple[tuple[str, ...], ...] | None = None
    config: str | None = None
    """A new configuration text (the whole file)."""
    fail_stop: tuple[tuple[str, str], ...] = ()
    """(resource, node) whose stops fail from now on: applied before the snapshot, with
    ``before`` doing what makes the cluster stop it, so the snapshot holds the failed stop."""
    before: str | None = None
    """A configuration applied (and settled up to the failed stop) before the snapshot."""


@dataclass
class Outcome:
    actions: list[Action]
    placement: dict[str, list[str]]
    extra: dict[str, Any] = field(default_factory=dict)


def _live_actions(
    sim: RmSim,
    since: int,
    fences_since: int,
    killed: set[tuple[str, str]],
    fencing: bool,
    side: set[str] | None = None,
    cut_off: dict[str, list[str]] | None = None,
) -> list[Action]:
    """The live cluster's journal since the what-if, as ``predict``'s actions.

    ``side``: only what this side of a partition did (and what its fences stopped); for a
    partition without fencing, ``cut_off`` (resource → nodes across the cut, at the cut)
    counts as lost from this side's point of view at the start, or when this side fences
    that node, as ``predict`` counts it.
    """
    events: list[tuple[int, int, tuple[str, str, str, bool]]] = []
    fences = [(t, executor, target) for t, executor, target in sim.fences[fences_since:]]
    if side is not None:
        # What ran across the cut is lost to this side when it is cut off (no fencing), or
        # when this side fences its node.
        fences = [f for f in fences if f[1] in side]
        for rsc, nodes in sorted((cut_off or {}).items()):
            for node in nodes:
                fenced = [t for t, _, target in fences if target == node]
                if not fencing:
                    events.append((-1, len(events), ("lost", rsc, node, True)))
                elif fenced:
                    events.append((fenced[0], 10**6 + len(events), ("lost", rsc, node, False)))
    failed = set(killed)
    for index, entry in enumerate(sim.journal[since:]):
        if side is not None and entry.node not in side:
            continue  # the other side's business (its losses are above)
        event = _event(entry, killed, failed, fencing)
        if event is not None:
            events.append((entry.time_ms, index, event))
    for time_ms, _, target in fences:
        events.append((time_ms, -1, ("fence", target, "", False)))
    events.sort(key=lambda e: (e[0], e[1]))
    return _fold([e for _, _, e in events])


def _event(
    entry: JournalEntry, killed: set[tuple[str, str]], failed: set[tuple[str, str]], fencing: bool
) -> tuple[str, str, str, bool] | None:
    key = (entry.resource, entry.node)
    if entry.action == "start" and entry.rc == 0:
        return ("start", entry.resource, entry.node, False)
    if entry.action == "stop" and entry.rc == 0:
        was_failed = key in failed
        failed.discard(key)
        return ("stop", entry.resource, entry.node, was_failed)
    if entry.action == "lost" and key not in killed:
        return ("lost", entry.resource, entry.node, not fencing)  # a machine went down with it
    return None


def _placement(sim: RmSim, resources: list[str]) -> dict[str, list[str]]:
    return {rsc: sim.where(rsc) for rsc in resources}


def _predicted_placement(
    initial: dict[str, list[str]], actions: list[Action], powered_off: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Where everything runs after ``actions``; a crashed machine runs nothing (``predict``
    does not list the loss of what it ran when nothing takes it over)."""
    where = {rsc: set(nodes) - set(powered_off) for rsc, nodes in initial.items()}
    for action in actions:
        match action:
            case Fence():
                for nodes in where.values():
                    nodes.discard(action.node)
            case Stop():
                where[action.rsc].discard(action.node)
            case Start():
                where[action.rsc].add(action.node)
            case Move():
                where[action.rsc].discard(action.from_node)
                where[action.rsc].add(action.to_node)
            case Recover() | Restart():
                pass
    return {rsc: sorted(nodes) for rsc, nodes in where.items()}


def _normal(action: Action) -> Action:
    """Fence reasons are compared elsewhere; the live record has the target only."""
    return Fence(action.node, "", action.action) if isinstance(action, Fence) else action


def _must_precede(first: Action, then: Action, deps: dict[str, list[str]], *, lost_node_fence: bool) -> bool:
    """Whether the live cluster is bound to do ``first`` before ``then`` (module docstring).

    The fence of a lost node gates every start (nothing starts while it may still run
    anything); the fence of a member whose stop failed gates only what moves off it.
    """
    if isinstance(first, Fence):
        if lost_node_fence:
            return isinstance(then, Start | Move | Recover | Restart)
        return isinstance(then, Move) and then.from_node == first.node
    if isinstance(then, Fence):
        return False  # a fence waits for its delay, not for what else is done meanwhile
    a, b = first.rsc, then.rsc  # type: ignore[union-attr]
    if a == b:
        return True
    starts_b = isinstance(then, Start | Move | Recover | Restart)
    stops_a = isinstance(first, Stop)
    if a in deps.get(b, []) and starts_b and not stops_a:
        return True  # b needs a: a is (re)started before b starts again
    return bool(b in deps.get(a, []) and isinstance(first, Stop) and isinstance(then, Stop))


def check_agreement(
    predicted: list[Action],
    live: list[Action],
    deps: dict[str, list[str]],
    what: str,
    lost: frozenset[str] = frozenset(),
    *,
    lost_node_fence: bool = True,
) -> None:
    """``lost``: machines that went down (crashed or fenced): what they ran stopped all at
    once, so those stops have no order among themselves."""
    predicted = [_normal(a) for a in predicted]
    live = [_normal(a) for a in live]
    assert sorted(map(repr, predicted)) == sorted(map(repr, live)), (
        f"{what}: actions differ\n  predicted {predicted}\n  live      {live}"
    )
    position = {repr(a): i for i, a in enumerate(live)}
    for i, first in enumerate(predicted):
        for then in predicted[i + 1 :]:
            both_lost = isinstance(first, Stop) and isinstance(then, Stop) and {first.node, then.node} <= lost
            if _must_precede(first, then, deps, lost_node_fence=lost_node_fence) and not both_lost:
                assert position[repr(first)] < position[repr(then)], (
                    f"{what}: predicted {first} before {then}, the cluster did them the other way round\n"
                    f"  predicted {predicted}\n  live      {live}"
                )


def run_case(config: str, nodes: int, what_if: WhatIf, seed: int = 0) -> None:
    sim = RmSim(nodes=nodes, seed=seed, config_text=config, agent_delay_ms=(2, 20))
    sim.settle()
    what_if = _where_it_runs(sim, what_if)
    fencing = sim.core(sim.live()[0]).rm.config.is_stonith_enabled()
    if what_if.fail_stop:
        for rsc, node in what_if.fail_stop:
            sim.fail_stop(node, rsc)
        assert what_if.before is not None
        sim.propose_config(sim.live()[0], what_if.before)
        blocked = what_if.fail_stop[0]
        sim.run_until_true(
            lambda: _dc_sees(sim, blocked[0], blocked[1], LocalState.BLOCKED), 5000, "the stop fails"
        )
    dc = sim.core(sim.live()[0]).rm.dc
    assert dc is not None
    snapshot = sim.core(dc).rm.snapshot(sim.now_ms)
    resources = [p.id for p in snapshot.config.primitives if p.agent_class != "stonith"]
    initial = _placement(sim, resources)
    new_config = None
    if what_if.config is not None:
        new_config = parse_resources_crm(what_if.config, "sim.crm", epoch=snapshot.config.epoch + 1)
    sides = predict_sides(
        snapshot,
        config=new_config,
        crash=what_if.crash,
        fail=[rsc for rsc, _ in what_if.kill],
        standby=what_if.standby,
        partition=[list(side) for side in what_if.partition] if what_if.partition is not None else None,
    )
    since, fences_since = len(sim.journal), len(sim.fences)
    killed: set[tuple[str, str]] = set()
    for node in what_if.crash:
        sim.crash(node, power_off=True)
    for rsc, node in what_if.kill:
        killed.add((rsc, node))
        sim.kill(node, rsc)
    if what_if.partition is not None:
        first, *rest = what_if.partition
        sim.partition(first, [n for side in rest for n in side])
    if new_config is not None:
        sim.propose_config(dc, new_config)
    if what_if.standby:
        changed = sim.core(dc).rm.config
        for node in what_if.standby:
            changed = edits.set_node_attribute(changed, sim.names, node, "standby", "on")
        sim.propose_config(dc, changed)
    if what_if.partition is not None or (what_if.fail_stop and not fencing):
        sim.run_for(sim.deadtime_ms + 4000)  # never "settled": two sides, or a copy stuck running
    else:
        sim.settle()
        sim.run_until_true(lambda: not _fencing_pending(sim), 10_000, "fencing is done")
        sim.settle()
    deps = dependencies(new_config if new_config is not None else snapshot.config)
    what = f"seed {seed}: {what_if}"
    if what_if.partition is None:
        predicted = list(sides[0].actions)
        live = _live_actions(sim, since, fences_since, killed, fencing)
        lost = frozenset(what_if.crash) | {target for _, _, target in sim.fences[fences_since:]}
        check_agreement(predicted, live, deps, what, lost, lost_node_fence=not what_if.fail_stop)
        expected = _predicted_placement(initial, predicted, what_if.crash)
        assert _placement(sim, resources) == expected, f"{what}: placement"
        return
    for side in sides:
        members = set(side.members)
        cut_off = {r: [n for n in nodes if n not in members] for r, nodes in initial.items()}
        live = _live_actions(sim, since, fences_since, killed, fencing, side=members, cut_off=cut_off)
        lost = frozenset(n for n in sim.names if n not in members)
        check_agreement(list(side.actions), live, deps, f"{what} side {sorted(members)}", lost)
        seen = {r: [n for n in nodes if n in members] for r, nodes in _placement(sim, resources).items()}
        expected = _predicted_placement(
            {r: [n for n in ns if n in members] for r, ns in initial.items()}, list(side.actions)
        )
        assert seen == expected, f"{what} side {sorted(members)}: placement"


def _where_it_runs(sim: RmSim, what_if: WhatIf) -> WhatIf:
    """A kill without a node: of the first listed resource that runs, where it runs."""
    if not what_if.kill or all(node for _, node in what_if.kill):
        return what_if
    for rsc, _ in what_if.kill:
        where = sim.where(rsc)
        if where:
            return WhatIf(kill=((rsc, where[0]),))
    running = [r for r in sim.resources() if sim.where(r)]
    if running:
        return WhatIf(kill=((running[0], sim.where(running[0])[0]),))
    return WhatIf(crash=(sim.names[0],))  # nothing runs at all: crash a node instead


def _fencing_pending(sim: RmSim) -> bool:
    return any(sim.core(n).rm.fencing_pending() for n in sim.live())


def _dc_sees(sim: RmSim, rsc: str, node: str, state: LocalState) -> bool:
    live = sim.live()
    if not live:
        return False
    dc = sim.core(live[0]).rm.dc
    return (
        dc is not None and dc in live and sim.core(dc).rm.observed().get(rsc, {}).get(NodeName(node)) is state
    )


# --- the table -----------------------------------------------------------------------------------

GROUP = """
primitive vip ocf:hacluster:Dummy op monitor interval=1s
primitive app ocf:hacluster:Dummy op monitor interval=1s
group web vip app
primitive db ocf:hacluster:Dummy op monitor interval=1s
order db-then-web Mandatory: db web
colocation web-with-db inf: web db
location db-prefers-n1 db 50: n1
"""
SPREAD = """
primitive a ocf:hacluster:Dummy op monitor interval=1s
primitive b ocf:hacluster:Dummy op monitor interval=1s
primitive c ocf:hacluster:Dummy op monitor interval=1s
colocation b-not-with-a -inf: b a
order a-then-c Mandatory: a c
rsc_defaults resource-stickiness=10
"""

CASES: dict[str, tuple[str, int, WhatIf]] = {
    "crash, fencing off": (GROUP + NO_FENCING, 3, WhatIf(crash=("n1",))),
    "crash, fencing on": (GROUP + FENCE_DEVICE, 3, WhatIf(crash=("n1",))),
    "crash of a node running nothing": (GROUP + FENCE_DEVICE, 3, WhatIf(crash=("n3",))),
    "crash, two nodes, fencing on": (SPREAD + FENCE_DEVICE, 2, WhatIf(crash=("n2",))),
    "failed monitor of a prerequisite": (GROUP + NO_FENCING, 3, WhatIf(kill=(("db", "n1"),))),
    "failed monitor in a group": (GROUP + FENCE_DEVICE, 3, WhatIf(kill=(("vip", "n1"),))),
    "failed monitor, spread": (SPREAD + NO_FENCING, 3, WhatIf(kill=(("a", "n1"),))),
    "standby of the busy node": (GROUP + NO_FENCING, 3, WhatIf(standby=("n1",))),
    "standby with anti-colocation": (SPREAD + FENCE_DEVICE, 3, WhatIf(standby=("n2",))),
    "configuration change: a new preference": (
        GROUP + NO_FENCING,
        3,
        WhatIf(config=GROUP.replace("db 50: n1", "db 50: n2") + NO_FENCING),
    ),
    "configuration change: new parameters restart": (
        GROUP + FENCE_DEVICE,
        3,
        WhatIf(
            config=GROUP.replace(
                "primitive app ocf:hacluster:Dummy", "primitive app ocf:hacluster:Dummy params fake=2"
            )
            + FENCE_DEVICE
        ),
    ),
    "configuration change: a resource stopped by target-role": (
        SPREAD + NO_FENCING,
        3,
        WhatIf(
            config=SPREAD.replace(
                "primitive a ocf:hacluster:Dummy", "primitive a ocf:hacluster:Dummy meta target-role=Stopped"
            )
            + NO_FENCING
        ),
    ),
    "partition, fencing off, quorum decides": (
        GROUP + NO_FENCING,
        3,
        WhatIf(partition=(("n1",), ("n2", "n3"))),
    ),
    "partition, fencing on": (GROUP + FENCE_DEVICE, 3, WhatIf(partition=(("n1",), ("n2", "n3")))),
    "failed stop, fencing on": (
        GROUP + FENCE_DEVICE,
        3,
        WhatIf(fail_stop=(("app", "n1"),), before=GROUP.replace("db 50: n1", "db 50: n2") + FENCE_DEVICE),
    ),
    "failed stop, fencing off": (
        GROUP + NO_FENCING,
        3,
        WhatIf(fail_stop=(("app", "n1"),), before=GROUP.replace("db 50: n1", "db 50: n2") + NO_FENCING),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_live_cluster_does_what_simulate_predicts(name: str, sim_seed: int) -> None:
    config, nodes, what_if = CASES[name]
    run_case(config, nodes, what_if, sim_seed)


# --- the sweep ------------------------------------------------------------------------------------


def random_case(seed: int) -> tuple[str, int, WhatIf]:
    rng = random.Random(seed)
    nodes = rng.choice((2, 3, 3, 4))
    names = [f"n{i + 1}" for i in range(nodes)]
    count = rng.randint(2, 5)
    ids = [f"r{i}" for i in range(count)]
    lines = [f"primitive {r} ocf:hacluster:Dummy op monitor interval=1s" for r in ids]
    free = list(ids)
    if count >= 3 and rng.random() < 0.5:
        members = rng.sample(ids, 2)
        lines.append(f"group g {' '.join(members)}")
        free = [r for r in ids if r not in members] + ["g"]
    # Orders only forward in the list and one constraint per pair: an order cycle starts
    # nothing at all, and the live cluster never settles (a configuration error).
    pairs = [(a, b) for i, a in enumerate(free) for b in free[i + 1 :]]
    for i, (a, b) in enumerate(rng.sample(pairs, min(len(pairs), rng.randint(0, 2)))):
        lines.append(f"order o{i} Mandatory: {a} {b}")
    for i, (a, b) in enumerate(rng.sample(pairs, min(len(pairs), rng.randint(0, 2)))):
        first, then = (a, b) if rng.random() < 0.5 else (b, a)
        lines.append(f"colocation c{i} {rng.choice(['inf', '-inf', '50'])}: {first} {then}")
    for i in range(rng.randint(0, 2)):
        lines.append(f"location l{i} {rng.choice(free)} {rng.choice([10, 50, 100])}: {rng.choice(names)}")
    if rng.random() < 0.5:
        lines.append(f"rsc_defaults resource-stickiness={rng.choice([0, 20, 100])}")
    text = "\n".join(lines) + "\n" + (FENCE_DEVICE if rng.random() < 0.5 else NO_FENCING)
    kind = rng.choice(("crash", "kill", "standby", "config"))
    if kind == "crash":
        what_if = WhatIf(crash=(rng.choice(names),))
    elif kind == "standby":
        what_if = WhatIf(standby=(rng.choice(names),))
    elif kind == "config":
        extra = f"location moved {rng.choice(free)} 200: {rng.choice(names)}\n"
        what_if = WhatIf(config=text + extra)
    else:
        what_if = WhatIf(kill=tuple((r, "") for r in rng.sample(ids, len(ids))))
    return text, nodes, what_if


def test_seeded_sweep(sweep_seed: int) -> None:
    text, nodes, what_if = random_case(sweep_seed)
    run_case(text, nodes, what_if, sweep_seed)
