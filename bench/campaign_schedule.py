"""The fault campaign's schedule: which fault comes next, drawn from a seed and nothing else.

    schedule = Schedule(seed=7, names=("n1", "n2", "n3"))
    step = schedule.next()       # Step(number=1, kind="partition", params={"nodes": ("n2",), ...})

Replay: the generator draws a fixed number of values per step, and its state (which nodes the
campaign holds down, the configuration variant) changes only by the steps themselves, never by
what the cluster did, so ``--seed N`` gives the same sequence of steps, with the same targets
and timings, on every run.  Where a fault must hit whatever node holds a resource at that
moment (a stop failure hits the holder), the step carries a ``pick`` number and the runner
resolves it against the cluster it sees (``resolve``): the schedule replays exactly, the node
may differ if the cluster placed things differently.

Quorum is kept: a step that takes nodes out (crash, partition, freeze, a failing stop, ...)
is only drawn while the nodes already down plus those it takes stay a minority.  Nodes the
lab fence device powers off come back by themselves (the runner boots them after the power
switch's ``on``); the schedule counts them as up.

``KINDS`` is the table of fault kinds: weight, when it may be drawn, how its parameters are
drawn, and how it changes the schedule's state.  A new kind is one more row.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaign_config import CHANGES, Variant

PICK_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    kind: str
    params: Mapping[str, Any]

    def describe(self) -> str:
        def show(value: Any) -> str:
            if isinstance(value, tuple):
                return ",".join(str(v) for v in value)
            if isinstance(value, float):
                return f"{value:g}"
            return str(value)

        args = " ".join(f"{key}={show(value)}" for key, value in self.params.items())
        return f"step {self.number} {self.kind}" + (f" {args}" if args else "")


@dataclass(slots=True)
class State:
    """What the schedule knows: nodes the campaign holds down (and how) and the variant."""

    names: tuple[str, ...]
    down: dict[str, str] = field(default_factory=dict)
    """node → ``crashed`` (power cut, cable out) or ``stopped`` (graceful stop)."""
    variant: Variant = field(default_factory=Variant)

    @property
    def up(self) -> list[str]:
        return [n for n in self.names if n not in self.down]

    @property
    def dc(self) -> str:
        """The designated coordinator once converged: the lowest-named member."""
        return min(self.up)

    def can_lose(self, count: int) -> bool:
        """May ``count`` more nodes go (fenced or down) with the rest still a majority?"""
        return len(self.down) + count <= (len(self.names) - 1) // 2


def resolve(pick: int, options: Sequence[str]) -> str:
    """The option a step's ``pick`` names among ``options`` as the runner sees them."""
    assert options, "nothing to pick from"
    return options[pick % len(options)]


Draw = Callable[[random.Random, State], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Kind:
    weight: int
    allowed: Callable[[State], bool]
    draw: Draw
    apply: Callable[[State, Mapping[str, Any]], None] = lambda state, params: None


def _node(rng: random.Random, state: State) -> str:
    return rng.choice(state.up)


def _minority(rng: random.Random, state: State) -> tuple[str, ...]:
    room = (len(state.names) - 1) // 2 - len(state.down)
    size = rng.randint(1, room)
    return tuple(sorted(rng.sample(state.up, size)))


def _pick(rng: random.Random) -> int:
    return rng.randrange(PICK_MAX)


def _maybe_moving(rng: random.Random) -> dict[str, Any]:
    """Four times in ten, a move (unit and target picks) that starts ``after_ms`` before the fault."""
    if rng.random() >= 0.4:
        return {}
    return {"move": _pick(rng), "to": _pick(rng), "after_ms": rng.randint(0, 300)}


def _mark_down(how: str) -> Callable[[State, Mapping[str, Any]], None]:
    def apply(state: State, params: Mapping[str, Any]) -> None:
        state.down[params["node"]] = how

    return apply


def _restart(state: State, params: Mapping[str, Any]) -> None:
    del state.down[params["node"]]


def _change(state: State, params: Mapping[str, Any]) -> None:
    state.variant = state.variant.changed(params["change"], state.names)


KINDS: dict[str, Kind] = {
    # A power cut: every process SIGKILLed, the cable out; the node stays down until `restart`.
    "crash": Kind(5, lambda s: s.can_lose(1), lambda r, s: {"node": _node(r, s)}, _mark_down("crashed")),
    "restart": Kind(
        0,  # weighted by the number of nodes down, see Schedule.next
        lambda s: bool(s.down),
        lambda r, s: {"node": r.choice(sorted(s.down))},
        _restart,
    ),
    # Nodes cut off from the rest (one node, or a minority group that still sees itself),
    # until the majority has fenced every one of them; then healed.  Sometimes a move has
    # just begun: the cut races its stops and starts.
    "partition": Kind(
        6, lambda s: s.can_lose(1), lambda r, s: {"nodes": _minority(r, s), **_maybe_moving(r)}
    ),
    # A cut shorter than the dead time: nothing may be fenced.
    "blip": Kind(
        3,
        lambda s: s.can_lose(1),
        lambda r, s: {"nodes": _minority(r, s), "fraction": round(r.uniform(0.1, 0.4), 2)},
    ),
    # SIGSTOP of one daemon past the dead time, then SIGCONT: the others fence it first.
    # Sometimes in the middle of a move.
    "freeze": Kind(5, lambda s: s.can_lose(1), lambda r, s: {"node": _node(r, s), **_maybe_moving(r)}),
    # Loss, delay and jitter (reordering), duplication on one node's cable while a resource moves.
    "netem": Kind(
        5,
        lambda s: s.can_lose(1),
        lambda r, s: {
            "node": _node(r, s),
            "loss": round(r.uniform(0.0, 0.15), 3),
            "delay_ms": r.randint(0, 60),
            "jitter_ms": r.randint(0, 40),
            "duplicate": round(r.uniform(0.0, 0.15), 3),
            "hold_s": round(r.uniform(2.0, 6.0), 1),
            "move": _pick(r),
            "to": _pick(r),
            "seed": r.randrange(2**31),
        },
    ),
    # A move starts a transition; the DC is crashed 0-300 ms into it.
    "dc_kill": Kind(
        4,
        lambda s: s.can_lose(1),
        lambda r, s: {"node": s.dc, "move": _pick(r), "to": _pick(r), "after_ms": r.randint(0, 300)},
        _mark_down("crashed"),
    ),
    "standby": Kind(4, lambda s: len(s.up) >= 2, lambda r, s: {"node": _node(r, s)}),
    "move": Kind(8, lambda s: len(s.up) >= 2, lambda r, s: {"unit": _pick(r), "to": _pick(r)}),
    # The resource's own process dies (its writer is killed): the monitor finds it failed.
    "monitor_fail": Kind(6, lambda s: True, lambda r, s: {"rsc": _pick(r)}),
    # The start fails on the node the resource is moved to: it must start elsewhere.
    "start_fail": Kind(5, lambda s: len(s.up) >= 2, lambda r, s: {"rsc": _pick(r), "to": _pick(r)}),
    # The stop fails on the holder while it moves away: the holder must be fenced first.
    "stop_fail": Kind(5, lambda s: s.can_lose(1), lambda r, s: {"rsc": _pick(r), "to": _pick(r)}),
    # resources.crm changed on every node, then SIGHUP to one of them.
    "config": Kind(
        4,
        lambda s: True,
        lambda r, s: {"change": r.choice(CHANGES), "node": _node(r, s)},
        _change,
    ),
    # SIGHUP with nothing changed: nothing may start or stop.
    "reload": Kind(3, lambda s: True, lambda r, s: {"node": _node(r, s)}),
    # SIGTERM: the node hands its resources over and leaves; nobody fences it.
    "graceful_stop": Kind(
        4, lambda s: s.can_lose(1), lambda r, s: {"node": _node(r, s)}, _mark_down("stopped")
    ),
}

RESTART_WEIGHT_PER_DOWN_NODE = 10


class Schedule:
    """An endless seeded sequence of steps; ``kinds`` restricts which kinds are drawn."""

    def __init__(self, seed: int, names: Sequence[str], kinds: Sequence[str] | None = None) -> None:
        unknown = sorted(set(kinds or ()) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {', '.join(unknown)}; known: {', '.join(KINDS)}")
        self.rng = random.Random(seed)
        self.state = State(tuple(names))
        self.kinds = tuple(kinds) if kinds else tuple(KINDS)
        self.number = 0

    def weight(self, name: str) -> int:
        if name == "restart":
            return RESTART_WEIGHT_PER_DOWN_NODE * len(self.state.down)
        return KINDS[name].weight

    def next(self) -> Step:
        # restart is always eligible when something is down, even if not asked for: a
        # schedule of crashes alone would otherwise run out of nodes.
        names = [*self.kinds, *(["restart"] if "restart" not in self.kinds else [])]
        eligible = [n for n in names if KINDS[n].allowed(self.state) and self.weight(n) > 0]
        assert eligible, f"no fault kind can run in state {self.state}"
        kind = self.rng.choices(eligible, weights=[self.weight(n) for n in eligible])[0]
        params = KINDS[kind].draw(self.rng, self.state)
        params["pause_s"] = round(self.rng.uniform(0.0, 1.0), 2)
        KINDS[kind].apply(self.state, params)
        self.number += 1
        return Step(self.number, kind, params)
