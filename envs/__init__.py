"""The SafeAdapt environment suite (installed as ``safeadapt_bench.envs``).

Importing this package is light: env classes load through string entry points on ``gymnasium.make``.
"""

from safeadapt_bench.envs.categories import CATEGORIES, SPLITS, instructions

__all__ = ["CATEGORIES", "SPLITS", "instructions"]
