"""Scripted experts that solve every task from the privileged state, and their noisy and careless modes."""

from safeadapt_bench.experts.policies import POLICIES, ScriptedPolicy, make_policy

__all__ = ["POLICIES", "ScriptedPolicy", "make_policy"]
