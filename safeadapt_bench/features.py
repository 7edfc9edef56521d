"""A stable-baselines3 features extractor that runs the env's Dict observation through a backbone.

Use with ``MultiInputPolicy`` on an env wrapped in ``InstructionTokens``::

    from safeadapt_bench.adapters import AdapterConfig
    from safeadapt_bench.features import BackboneExtractor
    policy_kwargs = dict(features_extractor_class=BackboneExtractor,
                         features_extractor_kwargs=dict(adapter=AdapterConfig("lora", rank=8)))
    PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs)

Features are ``[image embedding (rgb + depth), instruction embedding, every other entry flattened]``
(the other entries are ``proprio`` and, in state modes, ``state``). The backbone stays frozen; only
the adapter (if any) trains through the image path. The text tower is frozen, so instruction
embeddings are cached by token ids.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from safeadapt_bench.adapters import AdapterConfig, add_adapter, load_adapter
from safeadapt_bench.backbones import Backbone, load_backbone

IMAGE_KEYS = ("rgb", "depth")
TEXT_KEY = "instruction"


class BackboneExtractor(BaseFeaturesExtractor):
    """Dict observation -> backbone image and text embeddings + the remaining entries.

    Args:
        observation_space: the env's Dict space (``rgb`` required; ``depth``, ``instruction``
            token ids and any Box entries optional).
        backbone: a :class:`Backbone`, or an open_clip model name (loaded with ``pretrained``);
            ``None``: the embedded default.
        pretrained: weights for a named backbone (see :func:`load_backbone`).
        adapter: an :class:`AdapterConfig` to add (named ``"policy"``), or a saved adapter file.
        use_depth: feed ``depth`` to the depth stem.
        cache_size: instruction embeddings kept in the cache (least recently used dropped).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        backbone: Backbone | str | None = None,
        pretrained: str | Path | None = "default",
        adapter: AdapterConfig | str | Path | None = None,
        use_depth: bool = True,
        cache_size: int = 4096,
    ):
        if not isinstance(observation_space, spaces.Dict) or "rgb" not in observation_space.spaces:
            raise ValueError(
                "BackboneExtractor needs a Dict observation space with an 'rgb' entry "
                f"(obs_mode 'rgbd' or 'rgbd+state'); got {observation_space}."
            )
        text_space = observation_space.spaces.get(TEXT_KEY)
        if text_space is not None and not isinstance(text_space, spaces.Box):
            raise ValueError(
                "obs['instruction'] must be token ids: wrap the env in safeadapt_bench.envs.wrappers.InstructionTokens."
            )
        if not isinstance(backbone, Backbone):
            backbone = load_backbone(backbone, pretrained)
        extra = [k for k in observation_space.spaces if k not in (*IMAGE_KEYS, TEXT_KEY)]
        n_extra = sum(int(torch.tensor(observation_space.spaces[k].shape).prod()) for k in extra)
        dim = backbone.embed_dim * (2 if text_space is not None else 1) + n_extra
        super().__init__(observation_space, features_dim=dim)
        self.backbone = backbone
        if isinstance(adapter, AdapterConfig):
            add_adapter(backbone, adapter, "policy")
        elif adapter is not None:
            load_adapter(backbone, adapter, "policy")
        self.use_depth = use_depth and "depth" in observation_space.spaces
        self.has_text = text_space is not None
        self.extra_keys = extra
        self.cache_size = cache_size
        self._text_cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def _vision_trainable(self) -> bool:
        return any(p.requires_grad for p in self.backbone.clip.visual.parameters())

    def encode_instructions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Instruction embeddings, from the cache where the same token ids were seen before."""
        tokens = self.backbone.fit_tokens(tokens).cpu()
        keys = [row.numpy().tobytes() for row in tokens]
        missing = list(OrderedDict.fromkeys(k for k in keys if k not in self._text_cache))
        self.cache_misses += len(missing)
        self.cache_hits += len(keys) - len(missing)
        if missing:
            rows = torch.stack([tokens[keys.index(k)] for k in missing])
            with torch.no_grad():
                emb = self.backbone.encode_text(rows.to(self.backbone.mean.device)).detach()
            for k, e in zip(missing, emb):
                self._text_cache[k] = e
        for k in keys:
            self._text_cache.move_to_end(k)
        out = torch.stack([self._text_cache[k] for k in keys])
        while len(self._text_cache) > self.cache_size:
            self._text_cache.popitem(last=False)
        return out

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        depth = observations["depth"] if self.use_depth else None
        if self._vision_trainable():
            img = self.backbone.encode_image(observations["rgb"], depth)
        else:
            with torch.no_grad():
                img = self.backbone.encode_image(observations["rgb"], depth)
        parts = [img]
        if self.has_text:
            parts.append(self.encode_instructions(observations[TEXT_KEY]).to(img.device, img.dtype))
        parts += [observations[k].reshape(img.shape[0], -1).to(img.dtype) for k in self.extra_keys]
        return torch.cat(parts, dim=1)

    def train(self, mode: bool = True) -> BackboneExtractor:
        """Keep the frozen backbone in eval mode while the policy trains."""
        super().train(mode)
        if not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self
