.PHONY: test check soak nightly bench demo
test:            ## everything CI runs
	bash scripts/test
check:           ## lint, types, unit and sim tests (no root needed)
	python3 -m ruff check hacluster tests bench && python3 -m mypy && python3 -m pytest -q -m "not root and not slow"
soak:            ## long seed sweeps and soak runs
	python3 -m pytest -q -m slow
SEEDS ?= 1000000
nightly:         ## every simulation sweep over SEEDS seeds (hours; grep the log for SIM FAIL)
	python3 -m pytest -q -m sim tests/sim --sim-seeds=$(SEEDS)
bench:
	python3 bench/bench_codec.py
demo:
	hacluster demo
