# Common tasks. `make setup` once, then `make test`.
.PHONY: setup test test-slow lint perf

setup:
	bash .ci/setup

# The default test run (fast tier, ~10 min on 2 CPU cores).
test:
	.venv/bin/python -m pytest -q -n 2 --dist loadfile

# Slow checks (full expert tables, long sweeps).
test-slow:
	.venv/bin/python -m pytest -q -m slow

lint:
	.venv/bin/ruff check .

perf:
	.venv/bin/safeadapt-bench perf
