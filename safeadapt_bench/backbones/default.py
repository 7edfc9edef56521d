"""The embedded default backbone: a tiny CLIP (open_clip config ``SafeAdapt-ViT-T-8``) that this
project pretrains on its own rendered scenes (``safeadapt-bench backbone pretrain``).

Architecture (``assets/SafeAdapt-ViT-T-8.json``): ViT with 64x64 input, 8x8 patches, width 96,
4 layers, 3 heads; text transformer with width 64, 2 layers, 2 heads, context length 24, the
standard CLIP BPE vocabulary (49408 ids, open_clip's ``SimpleTokenizer``); 128-d joint embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: open_clip model name of the default backbone.
DEFAULT_MODEL = "SafeAdapt-ViT-T-8"
#: Its open_clip config file.
DEFAULT_CONFIG = ASSETS / f"{DEFAULT_MODEL}.json"
#: The shipped checkpoint (float16 safetensors, sparse token-embedding rows).
DEFAULT_CHECKPOINT = ASSETS / "safeadapt-vit-t-8.safetensors"

_registered = False


def register_default_config() -> None:
    """Make ``DEFAULT_MODEL`` known to open_clip (``open_clip.add_model_config``); idempotent."""
    global _registered
    if _registered:
        return
    import open_clip

    if DEFAULT_MODEL not in open_clip.list_models():
        open_clip.add_model_config(DEFAULT_CONFIG)
    _registered = True


@dataclass
class PretrainConfig:
    """Pretraining settings (the defaults made the shipped checkpoint).

    Attributes:
        seed: seeds torch, the caption draws and the batch order.
        scenes: number of rendered training scenes (seeds ``0 .. scenes-1``, categories in turn).
        steps: optimiser steps.
        batch_size: image-caption pairs per step.
        lr: peak AdamW learning rate (linear warm-up, cosine decay to 0).
        weight_decay: AdamW weight decay (not on norms, biases, embeddings or the logit scale).
        warmup: warm-up steps.
        depth: depth input of the model (``"stem"``, ``"channel"`` or ``"none"``).
        camera_size: rendered image side.
        shift: random translation augmentation, in pixels (RGB and depth together).
        position_fraction: share of captions that name the object's position (left / middle / right).
        model_name: open_clip model name to pretrain.
    """

    seed: int = 0
    scenes: int = 6000
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100
    depth: str = "channel"
    camera_size: int = 64
    shift: int = 3
    position_fraction: float = 1 / 3
    model_name: str = DEFAULT_MODEL


@dataclass
class SpatialConfig:
    """Settings of :func:`spatial_finetune` (the defaults made the shipped checkpoint).

    Attributes:
        seed: seeds torch, caption draws and batch order.
        episodes: scripted grasps rendered for the view set (category ``i % 10``).
        every: keep every ``every``-th step of each grasp.
        steps: optimiser steps.
        batch_size: frames per step (each gives a front and a wrist image).
        lr: peak AdamW learning rate (warm-up, then cosine decay to 0).
        warmup: warm-up steps.
        sigma: width of the keypoint target, in patches.
        shift: random translation augmentation, px (the keypoint target moves with it).
        keypoint_weight / depth_weight / caption_weight: loss weights.
    """

    seed: int = 0
    episodes: int = 100
    every: int = 3
    steps: int = 800
    batch_size: int = 64
    lr: float = 3e-4
    warmup: int = 50
    sigma: float = 0.6
    shift: int = 3
    keypoint_weight: float = 1.0
    depth_weight: float = 2.0
    caption_weight: float = 1.0
