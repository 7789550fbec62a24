.PHONY: test check soak bench demo
test:            ## everything CI runs
	bash scripts/test
check:           ## lint, types, unit and sim tests (no root needed)
	python3 -m ruff check hacluster tests bench && python3 -m mypy && python3 -m pytest -q -m "not root and not slow"
soak:            ## long seed sweeps and soak runs
	python3 -m pytest -q -m slow
bench:
	python3 bench/bench_codec.py
demo:
	hacluster demo
