"""The agent interface, budgets, per-step safety records and agent discovery.

A benchmarked method subclasses :class:`Agent` in one file and is run by name, by
``module:Class`` / ``file.py:Class`` path, or through the ``safeadapt_bench.agents`` entry-point group.
"""

from safeadapt_bench.agents.base import REQUIRED_METHODS, AdaptCallback, Agent
from safeadapt_bench.agents.budget import Budget, BudgetMeter
from safeadapt_bench.agents.registry import (
    ENTRY_POINT_GROUP,
    REFERENCE_AGENTS,
    AgentResolutionError,
    check_obs_keys,
    known_agents,
    make_agent,
    register_agent,
    resolve_agent,
    validate_agent_class,
)
from safeadapt_bench.agents.stats import StepRecord, StepStats

__all__ = [
    "ENTRY_POINT_GROUP", "REFERENCE_AGENTS", "REQUIRED_METHODS", "AdaptCallback", "Agent",
    "AgentResolutionError", "Budget", "BudgetMeter", "StepRecord", "StepStats", "check_obs_keys",
    "known_agents", "make_agent", "register_agent", "resolve_agent", "validate_agent_class",
]
