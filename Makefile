# Common tasks. `make setup` once, then `make test`.
.PHONY: setup test test-slow lint perf quick

setup:
	bash .ci/setup

# The default test run (fast tier, ~10 min on 2 CPU cores).
test:
	OPENBLAS_CORETYPE=Haswell .venv/bin/python -m pytest -q -n 2 --dist loadfile

# Slow checks (full expert tables, long sweeps).
test-slow:
	OPENBLAS_CORETYPE=Haswell .venv/bin/python -m pytest -q -m slow

lint:
	.venv/bin/ruff check .

perf:
	.venv/bin/safeadapt-bench perf

# The main command: set up, then run the quick suite on the embedded default backbone into a results
# directory of your own (QUICK_RUN, default runs/quick/, ignored by git; a finished run is resumed, so
# delete it for a fresh one). Ends with the leaderboard and plots in $(QUICK_RUN)/report/ and a record-
# by-record comparison with the committed reference results/quick/: "reproduced", or what differs.
QUICK_RUN ?= runs/quick
quick: setup
	.venv/bin/safeadapt-bench run --suite quick --workers 2 --results $(QUICK_RUN) --compare-to results/quick
