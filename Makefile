# Common tasks. `make setup` once, then `make test`.
.PHONY: setup test test-slow lint perf quick

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

# The main command: set up, then run the quick suite (4 reference agents x Lift x 2 seeds) on the
# embedded default backbone; ends with the leaderboard and plots in results/quick/.
quick: setup
	.venv/bin/safeadapt-bench run --suite quick --workers 2 --results results/quick
