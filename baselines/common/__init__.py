"""Shared machinery of the reference agents: config, the SafeSAC core, offline pre-training, base agent."""

from safeadapt_bench.baselines.common.agent import ReferenceAgent
from safeadapt_bench.baselines.common.config import AgentConfig
from safeadapt_bench.baselines.common.pretrain import info_nce, pretrain
from safeadapt_bench.baselines.common.sac import CostCritic, CostReplayBuffer, SafeSAC, TunableExtractor

__all__ = ["AgentConfig", "CostCritic", "CostReplayBuffer", "ReferenceAgent", "SafeSAC", "TunableExtractor",
           "info_nce", "pretrain"]
