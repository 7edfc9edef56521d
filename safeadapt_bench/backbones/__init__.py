"""Vision-language backbones: open_clip models with depth input, and the embedded default.

``load_backbone()`` gives the embedded default (frozen); see :mod:`.loader` for tags and files.
Names load lazily, so importing this package (e.g. for the CLI's ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib

from safeadapt_bench.backbones.default import (
    DEFAULT_CHECKPOINT,
    DEFAULT_MODEL,
    PretrainConfig,
    register_default_config,
)

_LAZY = {
    "Backbone": "loader",
    "load_backbone": "loader",
    "DEPTH_MODES": "depth",
    "probe_accuracy": "probe",
    "SceneSet": "scenes",
    "pretrain": "pretrain",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"safeadapt_bench.backbones.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'safeadapt_bench.backbones' has no attribute {name!r}")


__all__ = ["DEFAULT_CHECKPOINT", "DEFAULT_MODEL", "PretrainConfig", "register_default_config", *_LAZY]
