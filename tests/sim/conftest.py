"""Seed selection for the simulation tests.

``pytest tests/sim --sim-seed=N`` replays exactly seed N (every failure message prints it);
``--sim-seeds=K`` sweeps seeds 0..K-1 and ``--sim-seeds=A:B`` seeds A..B-1.  These options
are registered here, so name ``tests/sim`` (or a file in it) on the command line to use them.
"""

from __future__ import annotations

import pytest

SCENARIO_SEEDS = (1, 2)
SWEEP_SEEDS = 200


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sim", "deterministic simulation")
    group.addoption("--sim-seed", type=int, default=None, help="run every sim test with only this seed")
    group.addoption("--sim-seeds", default=None, help="seed sweep: K (seeds 0..K-1) or A:B (seeds A..B-1)")


def _sweep_seeds(config: pytest.Config) -> list[int]:
    text = config.getoption("sim_seeds", default=None)
    if not text:
        return list(range(SWEEP_SEEDS))
    first, sep, last = str(text).partition(":")
    try:
        return list(range(int(first), int(last))) if sep else list(range(int(first)))
    except ValueError:
        raise pytest.UsageError(
            f"--sim-seeds={text}: expected K or A:B (integers), e.g. --sim-seeds=500"
        ) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    single = metafunc.config.getoption("sim_seed", default=None)
    for name, default in (("sim_seed", None), ("sweep_seed", "sweep")):
        if name not in metafunc.fixturenames:
            continue
        if single is not None:
            seeds = [single]
        elif default == "sweep":
            seeds = _sweep_seeds(metafunc.config)
        else:
            seeds = list(SCENARIO_SEEDS)
        metafunc.parametrize(name, seeds, ids=[f"seed{s}" for s in seeds])
