"""Load an open_clip model (the embedded default, a pretrained tag, or a local checkpoint) as a
:class:`Backbone` that encodes RGB + depth images and instruction tokens. Frozen by default."""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from safeadapt_bench.backbones.checkpoint import read_checkpoint, write_checkpoint
from safeadapt_bench.backbones.default import DEFAULT_CHECKPOINT, DEFAULT_MODEL, register_default_config
from safeadapt_bench.backbones.depth import DEPTH_MODES, DepthPatchConv, install_depth_stem
from safeadapt_bench.backbones.object_head import PREFIX as OBJECT_HEAD_PREFIX
from safeadapt_bench.backbones.object_head import ObjectHead

#: Metric depth (metres) is clipped to this range and mapped to [-1, 1] (the ``"linear"`` encoding of
#: checkpoints written before the wrist camera).
DEPTH_RANGE: tuple[float, float] = (0.3, 2.3)
#: How metric depth becomes the depth channel: ``(kind, (lo, hi))``, clipped to ``[lo, hi]`` metres and
#: mapped to [-1, 1] linearly or in log depth. ``"log"`` resolves the wrist camera's 4-40 cm as well as
#: the front camera's 0.4-2.8 m; ``"linear"`` flattens everything nearer than 30 cm.
DEPTH_ENCODINGS: dict[str, tuple[float, float]] = {"linear": DEPTH_RANGE, "log": (0.02, 3.0)}
#: The encoding of new models (random weights, open_clip tags); a checkpoint carries its own.
DEFAULT_DEPTH_ENCODING = "log"


class Backbone(nn.Module):
    """An open_clip CLIP model with a depth stem, and helpers to encode observations.

    Attributes:
        clip: the open_clip ``CLIP`` module (its ``visual`` tower is where adapters go).
        model_name: the open_clip model name.
        pretrained: where the weights came from (``"default"``, a tag, a path or ``"none"``).
        depth_mode: one of ``DEPTH_MODES``.
        depth_encoding: how metric depth is normalised (a key of ``DEPTH_ENCODINGS``).
    """

    def __init__(self, clip: nn.Module, model_name: str, *, pretrained: str = "none", depth: str = "channel",
                 depth_encoding: str = DEFAULT_DEPTH_ENCODING):
        super().__init__()
        if depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"Unknown depth encoding {depth_encoding!r}; choose one of {list(DEPTH_ENCODINGS)}.")
        self.depth_encoding = depth_encoding
        self.clip = clip
        #: The object head shipped with the checkpoint (``None``: the backbone has none).
        self.object_head: ObjectHead | None = None
        self.model_name = model_name
        self.pretrained = pretrained
        self.depth_mode = depth
        install_depth_stem(clip.visual, depth)
        cfg = getattr(clip.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(clip.visual, "image_size", 224))
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        self.register_buffer(
            "mean",
            torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1),
            persistent=False,
        )
        self.register_buffer(
            "std",
            torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1),
            persistent=False,
        )
        self.context_length = int(getattr(clip, "context_length", 77))
        self.embed_dim = int(clip.text_projection.shape[1]) if hasattr(clip, "text_projection") else None
        self._tokenizer = None

    # ----------------------------------------------------------------- structure
    @property
    def blocks(self) -> list[nn.Module]:
        """The vision tower's transformer blocks, bottom first."""
        tr = getattr(self.clip.visual, "transformer", None)
        blocks = getattr(tr, "resblocks", None)
        if blocks is None:
            raise ValueError(
                f"{self.model_name}'s vision tower ({type(self.clip.visual).__name__}) has no "
                "open_clip transformer blocks (`visual.transformer.resblocks`); adapters need a ViT."
            )
        return list(blocks)

    def freeze(self, frozen: bool = True) -> Backbone:
        """Set ``requires_grad`` of every backbone weight to ``not frozen``; returns self."""
        for p in self.parameters():
            p.requires_grad_(not frozen)
        return self

    # ----------------------------------------------------------------- inputs
    def preprocess(self, rgb: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Turn RGB (uint8 0..255 or float 0..1, channel-first or -last) and optional metric depth
        into the normalised ``(B, 3|4, S, S)`` tensor that the vision tower takes."""
        x = _channels_first(rgb, 3, "rgb").float()
        if rgb.dtype == torch.uint8 or (x.numel() and x.max() > 1.5):
            x = x / 255.0
        x = _resize(x, self.image_size)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        if depth is None or self.depth_mode == "none":
            return x
        d = _resize(self.normalize_depth(_channels_first(depth, 1, "depth").float()), self.image_size)
        if d.shape[0] != x.shape[0]:
            raise ValueError(f"rgb and depth batch sizes differ ({x.shape[0]} vs {d.shape[0]}).")
        return torch.cat([x, d], dim=1)

    def depth_grid(self, depth: torch.Tensor) -> torch.Tensor:
        """The depth channel (as :meth:`preprocess` encodes it, in [-1, 1]) averaged over each patch:
        ``(B, grid**2)``, row-major like the patch tokens."""
        d = _resize(self.normalize_depth(_channels_first(depth, 1, "depth").float()), self.image_size)
        return F.avg_pool2d(d, self.image_size // self.grid_size).flatten(1)

    def normalize_depth(self, depth: torch.Tensor) -> torch.Tensor:
        """Metric depth -> the depth channel in [-1, 1] (see ``DEPTH_ENCODINGS``)."""
        lo, hi = DEPTH_ENCODINGS[self.depth_encoding]
        d = depth.clamp(lo, hi)
        if self.depth_encoding == "log":
            d, lo, hi = d.log(), math.log(lo), math.log(hi)
        return (d - (lo + hi) / 2) / ((hi - lo) / 2)

    @property
    def tokenizer(self):
        """open_clip's tokenizer for this model (standard CLIP BPE ids, ``context_length`` long)."""
        if self._tokenizer is None:
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.model_name, context_length=self.context_length)
        return self._tokenizer

    def tokenize(self, texts: str | list[str]) -> torch.Tensor:
        """Token ids ``(N, context_length)`` for ``texts``."""
        return self.tokenizer([texts] if isinstance(texts, str) else list(texts))

    def fit_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pad (with 0) or cut token ids to this model's context length; ids arrive as float from SB3."""
        tokens = tokens.round().long() if tokens.is_floating_point() else tokens.long()
        if tokens.dim() == 1:
            tokens = tokens[None]
        n = tokens.shape[1]
        if n < self.context_length:
            return F.pad(tokens, (0, self.context_length - n))
        if n > self.context_length:
            if tokens[:, self.context_length :].any():
                raise ValueError(
                    f"Instruction tokens are longer than {self.model_name}'s context length "
                    f"{self.context_length}; wrap the env with InstructionTokens(env, "
                    f"context_length={self.context_length})."
                )
            tokens = tokens[:, : self.context_length]
        return tokens

    # ----------------------------------------------------------------- encoders
    def encode_image(
        self, rgb: torch.Tensor, depth: torch.Tensor | None = None, *, normalize: bool = True
    ) -> torch.Tensor:
        """Image embedding ``(B, embed_dim)`` of RGB (+ depth)."""
        return self.clip.encode_image(self.preprocess(rgb, depth), normalize=normalize)

    def encode_text(self, tokens: torch.Tensor | str | list[str], *, normalize: bool = True) -> torch.Tensor:
        """Text embedding ``(N, embed_dim)`` of token ids (or of strings, tokenized here)."""
        if isinstance(tokens, str | list):
            tokens = self.tokenize(tokens)
        return self.clip.encode_text(self.fit_tokens(tokens).to(self.mean.device), normalize=normalize)

    # ----------------------------------------------------------------- vision stages
    def vision_embed(self, rgb: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens entering the first vision block, ``(B, 1 + grid**2, width)`` (CLS first).

        The same steps as open_clip's ``VisionTransformer`` before its transformer (patch conv with
        the depth stem, class and positional embeddings, ``ln_pre``); patch dropout is not applied.
        """
        v = self.clip.visual
        x = v.conv1(self.preprocess(rgb, depth))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        return v.ln_pre(x)

    def vision_blocks(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run vision blocks ``start:stop`` on batch-first tokens ``(B, L, width)``."""
        batch_first = getattr(self.clip.visual.transformer, "batch_first", True)
        x = x if batch_first else x.transpose(0, 1)
        for block in self.blocks[start:stop]:
            x = block(x)
        return x if batch_first else x.transpose(0, 1)

    def vision_head(self, x: torch.Tensor, *, normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled embedding (B, embed_dim), patch tokens (B, grid**2, width))`` from the last block's
        output, as open_clip's CLS-pooled ViT computes them (``ln_post``, then the projection)."""
        v = self.clip.visual
        if getattr(v, "attn_pool", None) is not None or getattr(v, "pool_type", "tok") != "tok" or getattr(
                v, "final_ln_after_pool", False):
            raise ValueError(f"{self.model_name}'s vision tower does not pool its CLS token after ln_post; "
                             "spatial features need a CLIP-style ViT (pool_type 'tok').")
        x = v.ln_post(x)
        pooled = x[:, 0] @ v.proj if v.proj is not None else x[:, 0]
        return (F.normalize(pooled, dim=-1) if normalize else pooled), x[:, 1:]

    @property
    def grid_size(self) -> int:
        """Patches per side of the vision tower's token grid."""
        return int(round((self.clip.visual.positional_embedding.shape[0] - 1) ** 0.5))

    @property
    def vision_width(self) -> int:
        """Width of the vision tokens."""
        return int(self.clip.visual.positional_embedding.shape[1])

    # ----------------------------------------------------------------- saving
    def save(
        self,
        path: str | Path,
        *,
        compact: bool = False,
        keep_token_rows: torch.Tensor | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Path:
        """Write the weights (open_clip keys + depth stem) as safetensors with the model name.

        Args:
            compact: store as float16 (the file roughly halves; outputs change by rounding only).
            keep_token_rows: store only these rows of the token-embedding table (others load as 0).
            metadata: extra string entries for the file's metadata.
        """
        meta = {
            **(metadata or {}),
            "model_name": self.model_name,
            "depth": self.depth_mode,
            "pretrained": str(self.pretrained),
            "depth_range": json.dumps(DEPTH_ENCODINGS[self.depth_encoding]),
            "depth_encoding": self.depth_encoding,
        }
        sparse = {"token_embedding.weight": keep_token_rows} if keep_token_rows is not None else None
        state = dict(self.clip.state_dict())
        if self.object_head is not None:
            state.update({OBJECT_HEAD_PREFIX + k: v for k, v in self.object_head.state_dict().items()})
            meta["object_head_cameras"] = ",".join(self.object_head.cameras)
        return write_checkpoint(path, state, meta, sparse_rows=sparse, dtype=torch.float16 if compact else None)


def _channels_first(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() == 2 and channels == 1:
        x = x[None, None]
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"{what} must be (B, H, W, {channels}) or (B, {channels}, H, W); got shape {tuple(x.shape)}.")
    if x.shape[1] == channels:
        return x
    if x.shape[-1] == channels:
        return x.permute(0, 3, 1, 2)
    raise ValueError(f"{what} must have {channels} channel(s), first or last; got shape {tuple(x.shape)}.")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _check_model_name(name: str) -> None:
    import open_clip

    models = open_clip.list_models()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=5, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"Unknown open_clip model {name!r}.{hint} See `open_clip.list_models()` "
            f"({len(models)} names), or use the default {DEFAULT_MODEL!r}."
        )


def _load_state(clip: nn.Module, sd: dict[str, torch.Tensor], source: str, model_name: str) -> None:
    """Strictly load ``sd`` into ``clip``; the depth stem may be absent (it then starts at zero)."""
    own = clip.state_dict()
    missing = [k for k in own if k not in sd and ".conv1.depth." not in k]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es), e.g. {shapes[:2]}")
        raise ValueError(
            f"Checkpoint {source!r} does not match model {model_name!r}: "
            + "; ".join(parts)
            + ". Pass the model name the checkpoint was saved from (and its depth mode)."
        )
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v.to(own[k].dtype))


def load_backbone(
    model_name: str | None = None,
    pretrained: str | Path | None = "default",
    *,
    depth: str | None = None,
    freeze: bool = True,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
) -> Backbone:
    """Build a :class:`Backbone`.

    Args:
        model_name: an open_clip model name (``open_clip.list_models()``); default
            ``DEFAULT_MODEL``, or the name stored in a safeadapt checkpoint file.
        pretrained: ``"default"`` (the embedded checkpoint; default model only), an open_clip
            pretrained tag (downloaded by open_clip where the network allows), a local checkpoint
            path (``.safetensors`` or a ``.pt`` state dict, read with ``weights_only=True``), or
            ``None`` for random weights.
        depth: depth input, one of ``DEPTH_MODES``; default: the checkpoint's, else ``"channel"``.
        freeze: set ``requires_grad=False`` on every weight (the default).
        device: where to put the model.

    Raises:
        ValueError: unknown model name or tag, corrupt or mismatched checkpoint, bad depth mode.
        FileNotFoundError: a checkpoint path that does not exist.
        RuntimeError: a pretrained tag could not be downloaded (no network).
    """
    import open_clip

    register_default_config()
    sd, meta, source = None, {}, "none"
    if pretrained == "default":
        if model_name not in (None, DEFAULT_MODEL):
            raise ValueError(
                f"pretrained='default' is the embedded {DEFAULT_MODEL!r} checkpoint; for "
                f"{model_name!r} pass an open_clip pretrained tag, a checkpoint path or None."
            )
        if not DEFAULT_CHECKPOINT.is_file():
            raise FileNotFoundError(
                f"The embedded checkpoint {str(DEFAULT_CHECKPOINT)!r} is missing; run "
                "`safeadapt-bench backbone pretrain` to create it."
            )
        pretrained = DEFAULT_CHECKPOINT
    tag = None
    if pretrained is not None and _looks_like_path(pretrained):
        sd, meta = read_checkpoint(pretrained)
        source = str(pretrained)
        if pretrained == DEFAULT_CHECKPOINT:
            source = "default"
        stored = meta.get("model_name")
        if stored and model_name and stored != model_name:
            raise ValueError(
                f"Checkpoint {str(pretrained)!r} holds model {stored!r}, not {model_name!r}; "
                "drop model_name or pass the matching one."
            )
        model_name = model_name or stored
    elif pretrained is not None:
        tag = str(pretrained)
    model_name = model_name or DEFAULT_MODEL
    _check_model_name(model_name)
    depth = depth or meta.get("depth") or "channel"
    if depth not in DEPTH_MODES:
        raise ValueError(f"Unknown depth mode {depth!r}; choose one of {DEPTH_MODES}.")
    if meta.get("depth") and meta["depth"] != "none" and depth != meta["depth"]:
        raise ValueError(f"Checkpoint was saved with depth={meta['depth']!r}; load it with that depth mode.")
    if tag is not None:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if tag not in tags:
            raise ValueError(
                f"Unknown pretrained tag {tag!r} for {model_name!r}; known tags: {tags or 'none'}. "
                "Or pass a local checkpoint path, 'default' or None."
            )
        try:
            clip = open_clip.create_model(model_name, pretrained=tag, cache_dir=cache_dir)
        except Exception as err:  # network errors come in many types
            raise RuntimeError(
                f"Could not fetch open_clip weights {model_name}/{tag} ({type(err).__name__}: "
                f"{err}). Offline? Download the checkpoint elsewhere and pass its local path "
                "as `pretrained`."
            ) from err
        source = tag
    else:
        import logging

        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # open_clip warns about random init
        try:
            clip = open_clip.create_model(model_name, pretrained=None)
        finally:
            logging.getLogger().setLevel(level)
    # checkpoints written before depth encodings were stored used the linear one
    encoding = meta.get("depth_encoding", "linear") if sd is not None else DEFAULT_DEPTH_ENCODING
    backbone = Backbone(clip, model_name, pretrained=source, depth=depth, depth_encoding=encoding)
    if sd is not None:
        head = {k[len(OBJECT_HEAD_PREFIX):]: sd.pop(k) for k in list(sd) if k.startswith(OBJECT_HEAD_PREFIX)}
        _load_state(backbone.clip, sd, source, model_name)
        if head:
            cameras = tuple(meta.get("object_head_cameras", "front,wrist").split(","))
            backbone.object_head = ObjectHead(backbone.vision_width, backbone.grid_size, cameras)
            backbone.object_head.load_state_dict({k: v.float() for k, v in head.items()})
    backbone.freeze(freeze)
    backbone.eval()
    return backbone.to(device)


def _looks_like_path(p: str | Path) -> bool:
    if isinstance(p, Path):
        return True
    return (
        "/" in p or "\\" in p or Path(p).suffix in (".safetensors", ".pt", ".pth", ".bin", ".ckpt") or Path(p).exists()
    )


__all__ = ["Backbone", "DEPTH_MODES", "DepthPatchConv", "load_backbone"]
