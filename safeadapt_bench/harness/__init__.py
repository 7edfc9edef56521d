"""The benchmark harness: suites, one-cell runner, records, executors, leaderboard and plots.

Heavy parts (pandas, matplotlib, rliable, ray) load only in the modules that need them.
"""
