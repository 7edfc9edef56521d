"""Parameter-efficient adapters for a backbone's vision tower, in peft's shape: config, layer, model.

``add_adapter(backbone, AdapterConfig(kind="lora", rank=8, placement="top"))`` adds one;
``set_active_adapter`` swaps, ``adapters_disabled`` gives back the backbone's exact outputs,
``save_adapter`` / ``load_adapter`` write and read small files apart from the backbone.
"""

from safeadapt_bench.adapters.config import KINDS, PLACEMENTS, AdapterConfig
from safeadapt_bench.adapters.layer import Bottleneck, BottleneckLayer
from safeadapt_bench.adapters.model import (
    adapter_state_dict,
    adapters_disabled,
    add_adapter,
    delete_adapter,
    load_adapter,
    parameter_counts,
    save_adapter,
    set_active_adapter,
)

__all__ = [
    "KINDS",
    "PLACEMENTS",
    "AdapterConfig",
    "Bottleneck",
    "BottleneckLayer",
    "adapter_state_dict",
    "adapters_disabled",
    "add_adapter",
    "delete_adapter",
    "load_adapter",
    "parameter_counts",
    "save_adapter",
    "set_active_adapter",
]
