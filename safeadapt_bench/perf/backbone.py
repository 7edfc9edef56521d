"""Perf section ``backbone``: default-backbone throughput and the training cost of each adapter kind.

- images/s of the embedded default (RGB + depth, inference) at batch 1 and 64;
- one forward + backward at batch 64 with LoRA / bottleneck adapters (and full fine-tuning),
  each as a ratio to the frozen backbone (a forward without grad, then a backward through a linear
  head on the features: what training a policy on frozen features costs);
- the SB3 extractor's instruction-embedding cache against encoding the tokens every time.
"""

from __future__ import annotations

from safeadapt_bench.perf import Measurement, median_seconds

SECTION = "backbone"


def run(quick: bool) -> list[Measurement]:
    import torch

    from safeadapt_bench.adapters import AdapterConfig, add_adapter
    from safeadapt_bench.backbones import DEFAULT_CHECKPOINT, load_backbone

    reps = 3 if quick else 15
    pretrained = "default" if DEFAULT_CHECKPOINT.is_file() else None
    bb = load_backbone(pretrained=pretrained)
    g = torch.Generator().manual_seed(0)

    def batch(n: int):
        return (
            torch.randint(0, 256, (n, 64, 64, 3), dtype=torch.uint8, generator=g),
            0.5 + torch.rand(n, 64, 64, 1, generator=g),
        )

    out: list[Measurement] = []
    rates = {}
    for n in (1, 64):
        rgb, depth = batch(n)
        with torch.no_grad():
            bb.encode_image(rgb, depth)  # warm-up
            t = median_seconds(lambda rgb=rgb, depth=depth: bb.encode_image(rgb, depth), reps * (4 if n == 1 else 1))
        rates[n] = n / t
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

    rgb, depth = batch(64)
    head = torch.nn.Linear(bb.embed_dim, 7)

    def frozen_step():
        with torch.no_grad():
            f = bb.encode_image(rgb, depth)
        head(f).pow(2).mean().backward()

    frozen_step()
    t_frozen = median_seconds(frozen_step, reps)
    out.append(Measurement(SECTION, "frozen backbone fwd + head bwd, batch 64", t_frozen * 1e3, "ms"))
    variants = {
        "LoRA r=8, all blocks": AdapterConfig("lora", rank=8, placement="all"),
        "LoRA r=8, top block": AdapterConfig("lora", rank=8, placement="top"),
        "bottleneck dim=32, all blocks": AdapterConfig("bottleneck", bottleneck_dim=32, placement="all"),
        "bottleneck dim=32, top block": AdapterConfig("bottleneck", bottleneck_dim=32, placement="top"),
        "full fine-tuning (vision tower)": None,
    }
    for label, cfg in variants.items():
        m = load_backbone(pretrained=pretrained)
        if cfg is None:
            m.clip.visual.requires_grad_(True)
        else:
            add_adapter(m, cfg, "a")

        def step(m=m):
            head(m.encode_image(rgb, depth)).pow(2).mean().backward()

        step()
        t = median_seconds(step, reps)
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

    from gymnasium import spaces

    from safeadapt_bench.features import BackboneExtractor

    space = spaces.Dict(
        {"rgb": spaces.Box(0, 255, (64, 64, 3), "uint8"), "instruction": spaces.Box(0, 49407, (32,), "int64")}
    )
    ext = BackboneExtractor(space, backbone=bb)
    tokens = bb.fit_tokens(bb.tokenize(["pick up the milk carton", "lift the red cube"] * 32)).float()
    with torch.no_grad():
        ext.encode_instructions(tokens)
        t_cached = median_seconds(lambda: ext.encode_instructions(tokens), reps)
        t_plain = median_seconds(lambda: bb.encode_text(tokens), reps)
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
