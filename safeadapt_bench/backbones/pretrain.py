"""Image-text contrastive pretraining of the embedded default backbone on rendered scenes.

Every image is paired with a templated caption (category, colour, position, or a task instruction)
drawn with a seeded generator. The loss is CLIP's symmetric cross-entropy, except that every caption
in the batch that is true of an image (same category, and same position where it names one) is a
positive: with ten categories a batch holds many true pairs that plain CLIP would push apart.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from safeadapt_bench.backbones.captions import sample_caption, vocabulary_texts
from safeadapt_bench.backbones.default import DEFAULT_CHECKPOINT, PretrainConfig
from safeadapt_bench.backbones.loader import Backbone, load_backbone
from safeadapt_bench.backbones.scenes import PRETRAIN_SEED_OFFSET, SceneSet, render_scenes


def _augment(rgb: torch.Tensor, depth: torch.Tensor, shift: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Random translation by up to ``shift`` px (edge padding), the same for RGB and depth."""
    if shift <= 0:
        return rgb, depth
    b, _, h, w = rgb.shape
    x = torch.cat([rgb, depth], 1)
    x = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    off = torch.randint(0, 2 * shift + 1, (b, 2), generator=gen)
    out = torch.stack([x[i, :, off[i, 0] : off[i, 0] + h, off[i, 1] : off[i, 1] + w] for i in range(b)])
    return out[:, :3], out[:, 3:]


def _match_matrix(cats: list[str], pos: list[str], cap_cats: list[str], cap_pos: list[str | None]) -> torch.Tensor:
    c = np.array(cats)[:, None] == np.array(cap_cats)[None, :]
    p = np.array([[q is None or q == w for q in cap_pos] for w in pos])
    return torch.as_tensor(c & p, dtype=torch.float32)


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets spread over every true pair (``match[i, j] = 1``)."""
    logits = scale * img @ txt.T
    li = -(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    lt = -(match / match.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (li + lt) / 2


def pretrain(
    config: PretrainConfig,
    *,
    scenes: SceneSet | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[Backbone, dict]:
    """Pretrain a backbone from random weights; returns it (unfrozen, eval mode) and a record."""
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    if scenes is None:
        scenes = render_scenes(
            config.scenes,
            PRETRAIN_SEED_OFFSET,
            camera_size=config.camera_size,
            progress=progress,
            desc="rendering training scenes",
        )
    t_render = time.perf_counter() - t0
    model = load_backbone(config.model_name, pretrained=None, depth=config.depth, freeze=False)
    model.train()
    rgb_all = torch.as_tensor(scenes.rgb).permute(0, 3, 1, 2).contiguous()
    depth_all = torch.as_tensor(scenes.depth).permute(0, 3, 1, 2).contiguous()
    cats, words = scenes.categories, scenes.position_words
    tok_cache: dict[str, torch.Tensor] = {}
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / config.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps))
        ),
    )
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    order = np.concatenate(
        [rng.permutation(len(scenes)) for _ in range(config.steps * config.batch_size // len(scenes) + 1)]
    )
    losses = []
    bar = tqdm(range(config.steps), desc="pretraining", disable=not progress)
    t1 = time.perf_counter()
    for step in bar:
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        caps = [sample_caption(cats[i], words[i], rng, config.position_fraction) for i in idx]
        for text, _ in caps:
            if text not in tok_cache:
                tok_cache[text] = model.tokenize(text)[0]
        tokens = torch.stack([tok_cache[t] for t, _ in caps])
        rgb, depth = _augment(rgb_all[idx].float(), depth_all[idx], config.shift, gen)
        img = model.encode_image(rgb / 255.0, depth if config.depth != "none" else None)
        txt = model.encode_text(tokens)
        match = _match_matrix(
            [cats[i] for i in idx], [words[i] for i in idx], [cats[i] for i in idx], [p for _, p in caps]
        )
        loss = contrastive_loss(img, txt, model.clip.logit_scale.exp().clamp(max=100), match)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    model.eval()
    record = {
        "config": asdict(config),
        "render_seconds": round(t_render, 1),
        "train_seconds": round(time.perf_counter() - t1, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    log(f"pretrained {config.steps} steps in {record['train_seconds']} s; final loss {record['final_loss']:.3f}")
    return model, record


def trained_token_rows(backbone: Backbone) -> torch.Tensor:
    """Token ids that pretraining text uses (start/end tokens included): the rows worth shipping."""
    return backbone.tokenize(vocabulary_texts()).unique()


def ship(backbone: Backbone, path: str | Path = DEFAULT_CHECKPOINT, record: dict | None = None) -> Path:
    """Write ``backbone`` as a compact checkpoint: float16, only the trained token-embedding rows."""
    return backbone.save(
        path,
        compact=True,
        keep_token_rows=trained_token_rows(backbone),
        metadata={"record": json.dumps(record or {})},
    )
