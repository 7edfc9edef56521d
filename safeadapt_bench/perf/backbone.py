"""Perf section ``backbone``: default-backbone throughput and the training cost of each adapter kind.

- images/s of the embedded default (RGB + depth, inference) at batch 1 and 64;
- one forward + backward at batch 64 with LoRA / bottleneck adapters (and full fine-tuning),
  each as a ratio to the frozen backbone (a forward without grad, then a backward through a linear
  head on the features: what training a policy on frozen features costs);
- the SB3 extractor's instruction-embedding cache against encoding the tokens every time.
"""

from __future__ import annotations

import statistics

from safeadapt_bench.perf import Measurement, median_seconds

SECTION = "backbone"


def _interleaved(fns: list, repeats: int, warmup: int = 3) -> list[float]:
    """Median seconds of each of ``fns``, timed in turn (A, B, A, B, ...), so that load from
    other processes on a shared machine falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            times[i].append(median_seconds(fn, 1))
    return [statistics.median(t) for t in times]


def run(quick: bool) -> list[Measurement]:
    import torch

    from safeadapt_bench.adapters import AdapterConfig, add_adapter
    from safeadapt_bench.backbones import DEFAULT_CHECKPOINT, load_backbone

    reps = 5 if quick else 21
    pretrained = "default" if DEFAULT_CHECKPOINT.is_file() else None
    bb = load_backbone(pretrained=pretrained)
    g = torch.Generator().manual_seed(0)

    def batch(n: int):
        return (
            torch.randint(0, 256, (n, 64, 64, 3), dtype=torch.uint8, generator=g),
            0.5 + torch.rand(n, 64, 64, 1, generator=g),
        )

    out: list[Measurement] = []
    (rgb1, d1), (rgb64, d64) = batch(1), batch(64)
    with torch.no_grad():
        t1, t64 = _interleaved([lambda: bb.encode_image(rgb1, d1), lambda: bb.encode_image(rgb64, d64)], reps)
    rates = {1: 1 / t1, 64: 64 / t64}
    out.append(Measurement(SECTION, "default backbone images/s, batch 1 (rgb+depth, CPU)", rates[1], "img/s"))
    out.append(
        Measurement(
            SECTION,
            "default backbone images/s, batch 64",
            rates[64],
            "img/s",
            reference_name="batch 1",
            reference=rates[1],
        )
    )

    rgb, depth = rgb64, d64
    head = torch.nn.Linear(bb.embed_dim, 7)

    def frozen_step():
        with torch.no_grad():
            f = bb.encode_image(rgb, depth)
        head(f).pow(2).mean().backward()

    variants = {
        "LoRA r=8, all blocks": AdapterConfig("lora", rank=8, placement="all"),
        "LoRA r=8, top block": AdapterConfig("lora", rank=8, placement="top"),
        "bottleneck dim=32, all blocks": AdapterConfig("bottleneck", bottleneck_dim=32, placement="all"),
        "bottleneck dim=32, top block": AdapterConfig("bottleneck", bottleneck_dim=32, placement="top"),
        "full fine-tuning (vision tower)": None,
    }
    frozen_times = []
    for label, cfg in variants.items():
        m = load_backbone(pretrained=pretrained)
        if cfg is None:
            m.clip.visual.requires_grad_(True)
        else:
            add_adapter(m, cfg, "a")

        def step(m=m):
            head(m.encode_image(rgb, depth)).pow(2).mean().backward()

        t_frozen, t = _interleaved([frozen_step, step], max(3, reps // 2))
        frozen_times.append(t_frozen)
        out.append(
            Measurement(
                SECTION,
                f"{label}: fwd + bwd, batch 64",
                t * 1e3,
                "ms",
                reference_name="frozen backbone",
                reference=t_frozen * 1e3,
            )
        )
    out.insert(
        2, Measurement(SECTION, "frozen backbone fwd + head bwd, batch 64", statistics.median(frozen_times) * 1e3, "ms")
    )

    from gymnasium import spaces

    from safeadapt_bench.features import BackboneExtractor

    space = spaces.Dict(
        {
            "rgb": spaces.Box(0, 255, (64, 64, 3), "uint8"),
            "instruction": spaces.Box(0, 49407, (32,), "int64"),
        }
    )
    ext = BackboneExtractor(space, backbone=bb)
    tokens = bb.fit_tokens(bb.tokenize(["pick up the milk carton", "lift the red cube"] * 32)).float()
    with torch.no_grad():
        t_cached, t_plain = _interleaved(
            [lambda: ext.encode_instructions(tokens), lambda: bb.encode_text(tokens)], reps
        )
    out.append(
        Measurement(
            SECTION,
            "instruction embeddings, batch 64, cached by token ids",
            t_cached * 1e3,
            "ms",
            reference_name="text tower every time",
            reference=t_plain * 1e3,
        )
    )
    return out
