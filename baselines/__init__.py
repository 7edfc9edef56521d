"""Reference agents (installed as ``safeadapt_bench.baselines``)."""
