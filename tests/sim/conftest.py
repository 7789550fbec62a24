"""Seed selection for the simulation tests (docs/simulation.md tells the whole story).

Scenario tests take ``sim_seed`` and run with seeds 1 and 2.  Seed sweeps take
``sweep_seed``: the seeds are handed out in *blocks* of ``--sim-block`` seeds (100 by
default), one pytest item per block, and the item runs the test once per seed.  A block
runs every one of its seeds even after a failure, prints each failing seed as it happens
(``SIM FAIL seed N …``, the line a nightly run is grepped for) and fails at the end naming
every failing seed and the command that replays the first one exactly.

- ``pytest tests/sim --sim-seed=N`` replays exactly seed N in every test;
- ``--sim-seeds=K`` sweeps seeds 0..K-1 in every sweep, ``--sim-seeds=A:B`` seeds A..B-1
  (the nightly mode: ``pytest -m sim tests/sim --sim-seeds=1000000`` runs for hours);
- the environment variable ``HACLUSTER_SIM_SEEDS`` says the same as ``--sim-seeds`` (for CI
  jobs that cannot change the command line);
- without either, each sweep runs its default count: ``SWEEP_SEEDS`` in its module (a dict
  from test name to count) or ``DEFAULT_SWEEP_SEEDS``.

These options are registered here, so name ``tests/sim`` (or a file in it) on the command
line to use them.
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

SCENARIO_SEEDS = (1, 2)
DEFAULT_SWEEP_SEEDS = 200
DEFAULT_BLOCK = 100
SEEDS_ENV = "HACLUSTER_SIM_SEEDS"


@dataclass(frozen=True, slots=True)
class SeedBlock:
    """Seeds ``first``..``last - 1`` of one sweep, run by one pytest item."""

    first: int
    last: int

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last))

    def __len__(self) -> int:
        return self.last - self.first


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sim", "deterministic simulation")
    group.addoption("--sim-seed", type=int, default=None, help="run every sim test with only this seed")
    group.addoption(
        "--sim-seeds",
        default=None,
        help=f"seed sweep: K (seeds 0..K-1) or A:B (seeds A..B-1); default ${SEEDS_ENV} or each sweep's own count",
    )
    group.addoption(
        "--sim-block", type=int, default=DEFAULT_BLOCK, help="seeds per pytest item in a sweep (default 100)"
    )


def _sweep_range(config: pytest.Config, default: int) -> tuple[int, int]:
    text = config.getoption("sim_seeds", default=None) or os.environ.get(SEEDS_ENV, "")
    if not text:
        return 0, default
    first, sep, last = str(text).partition(":")
    try:
        return (int(first), int(last)) if sep else (0, int(first))
    except ValueError:
        raise pytest.UsageError(
            f"--sim-seeds / ${SEEDS_ENV}={text}: expected K or A:B (integers), e.g. --sim-seeds=500"
        ) from None


def _default_count(metafunc: pytest.Metafunc) -> int:
    table = getattr(metafunc.module, "SWEEP_SEEDS", {})
    return int(table.get(metafunc.function.__name__, DEFAULT_SWEEP_SEEDS))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    single = metafunc.config.getoption("sim_seed", default=None)
    if "sim_seed" in metafunc.fixturenames:
        seeds = [single] if single is not None else list(SCENARIO_SEEDS)
        metafunc.parametrize("sim_seed", seeds, ids=[f"seed{s}" for s in seeds])
    if "sweep_seed" in metafunc.fixturenames:
        if single is not None:
            blocks = [SeedBlock(single, single + 1)]
        else:
            first, last = _sweep_range(metafunc.config, _default_count(metafunc))
            size = max(1, int(metafunc.config.getoption("sim_block")))
            blocks = [SeedBlock(a, min(a + size, last)) for a in range(first, last, size)]
        ids = [f"seed{b.first}" if len(b) == 1 else f"seeds{b.first}-{b.last - 1}" for b in blocks]
        metafunc.parametrize("sweep_seed", blocks, ids=ids)


class SweepFailure(AssertionError):
    """Some seeds of a block failed; the message lists them and how to replay one."""


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a sweep test once per seed of its block (module docstring)."""
    callspec = getattr(pyfuncitem, "callspec", None)
    block = callspec.params.get("sweep_seed") if callspec is not None else None
    if not isinstance(block, SeedBlock):
        return None
    function = pyfuncitem.obj
    names = inspect.signature(function).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    node = pyfuncitem.nodeid.split("[")[0]
    failures: list[tuple[int, BaseException]] = []
    for seed in block:
        kwargs["sweep_seed"] = seed
        try:
            function(**kwargs)
        except Exception as error:
            failures.append((seed, error))
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"SIM FAIL seed {seed} {node}: {first_line}", file=sys.stderr)
    if failures:
        seed, error = failures[0]
        detail = "".join(traceback.format_exception(error))
        raise SweepFailure(
            f"{len(failures)} of {len(block)} seeds failed: {[s for s, _ in failures]}\n"
            f"replay the first: pytest '{node}' --sim-seed={seed}\n{detail}"
        )
    return True
