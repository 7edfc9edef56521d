"""``safeadapt-bench backbone``: pretrain the embedded default, probe a backbone, show adapter sizes."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backbone",
        help="pretrain / probe the vision-language backbone, adapter sizes",
        description="Pretrain the embedded default backbone, measure zero-shot probe "
        "retrieval of any backbone (optionally adapted), or list adapter sizes.",
    )
    bsub = p.add_subparsers(dest="backbone_command", required=True, metavar="ACTION")

    from safeadapt_bench.backbones.default import PretrainConfig  # light: no torch

    d = PretrainConfig()
    pt = bsub.add_parser(
        "pretrain",
        help="pretrain the default backbone on rendered scenes and ship it",
        description="Image-text contrastive pretraining on rendered scenes with templated "
        "captions; writes a compact checkpoint (default: the package's embedded one) and "
        "reports the probe accuracy of the written file.",
    )
    pt.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    pt.add_argument("--scenes", type=int, default=d.scenes, help=f"training scenes (default {d.scenes})")
    pt.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    pt.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    pt.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    pt.add_argument(
        "--depth",
        choices=("stem", "channel", "none"),
        default=d.depth,
        help=f"depth input (default {d.depth})",
    )
    pt.add_argument("--out", default=None, help="checkpoint to write (default: the embedded default)")
    pt.add_argument("--scene-cache", default=None, help="npz file to cache rendered training scenes in")
    pt.add_argument("--record", default=None, help="also write the run record (config, probe) to this JSON file")
    pt.add_argument("--no-progress", action="store_true", help="hide progress bars")
    pt.set_defaults(func=run_pretrain)

    from safeadapt_bench.backbones.default import SpatialConfig  # light: no torch

    sc = SpatialConfig()
    sp = bsub.add_parser(
        "spatial",
        help="teach a pretrained backbone's patch tokens where the object is (front + wrist views) and ship it",
        description="Render front and wrist views along scripted grasps of all ten categories, then fine-tune a "
        "pretrained backbone on them: an object-keypoint loss and a patch-depth loss on the patch tokens, and "
        "the image-text loss on the front views. The default input is the embedded checkpoint and the default "
        "output overwrites it. Prints the probe accuracy of the written file.",
        epilog="example: safeadapt-bench backbone spatial --steps 800 --out /tmp/spatial.safetensors")
    sp.add_argument("--pretrained", default="default", help="checkpoint to start from (default: the embedded one)")
    sp.add_argument("--depth-encoding", choices=("log", "linear"), default="log",
                    help="depth channel encoding to train for (default log: resolves the wrist camera's range)")
    sp.add_argument("--episodes", type=int, default=sc.episodes,
                    help=f"scripted grasps to render (default {sc.episodes})")
    sp.add_argument("--every", type=int, default=sc.every, help=f"keep every n-th step (default {sc.every})")
    sp.add_argument("--steps", type=int, default=sc.steps, help=f"optimiser steps (default {sc.steps})")
    sp.add_argument("--batch-size", type=int, default=sc.batch_size, help=f"frames per step (default {sc.batch_size})")
    sp.add_argument("--seed", type=int, default=sc.seed, help=f"seed (default {sc.seed})")
    sp.add_argument("--out", default=None, help="checkpoint to write (default: the embedded default)")
    sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sp.set_defaults(func=run_spatial)

    pr = bsub.add_parser(
        "probe",
        help="zero-shot image->caption retrieval on the held-out probe scenes",
        description="Top-1 retrieval on 500 probe scenes (seeds disjoint from pretraining).",
    )
    pr.add_argument("--model", default=None, help="open_clip model name (default: the embedded default)")
    pr.add_argument("--pretrained", default="default", help="'default', an open_clip tag or a checkpoint path")
    pr.add_argument("--adapter", default=None, help="an adapter file to apply first")
    pr.add_argument("--no-depth", action="store_true", help="probe with RGB only")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=run_probe)

    info = bsub.add_parser("adapters", help="trainable-parameter fraction of each adapter kind and placement")
    info.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    info.add_argument("--bottleneck-dim", type=int, default=32, help="bottleneck size (default 32)")
    info.set_defaults(func=run_adapters)


def run_pretrain(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from safeadapt_bench.backbones import DEFAULT_CHECKPOINT, load_backbone
    from safeadapt_bench.backbones.pretrain import PretrainConfig, pretrain, ship  # noqa: F811
    from safeadapt_bench.backbones.probe import probe_accuracy
    from safeadapt_bench.backbones.scenes import PRETRAIN_SEED_OFFSET, render_scenes

    cfg = PretrainConfig(
        seed=args.seed,
        scenes=args.scenes,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        depth=args.depth,
    )
    scenes = render_scenes(
        cfg.scenes,
        PRETRAIN_SEED_OFFSET,
        camera_size=cfg.camera_size,
        progress=not args.no_progress,
        desc="rendering training scenes",
        cache=args.scene_cache,
    )
    model, record = pretrain(cfg, scenes=scenes, progress=not args.no_progress)
    out = Path(args.out) if args.out else DEFAULT_CHECKPOINT
    ship(model, out, record)
    shipped = load_backbone(pretrained=out)
    record["probe"] = probe_accuracy(shipped, use_depth=cfg.depth != "none")
    record["probe_fp32"] = probe_accuracy(model, use_depth=cfg.depth != "none")
    record["checkpoint"] = out.name
    record["checkpoint_bytes"] = out.stat().st_size
    ship(model, out, record)  # the file carries its own record
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(json.dumps(record, indent=2))
    p = record["probe"]
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB)")
    print(
        f"probe top-1 (10-way category, chance 0.10): {p['top1']:.3f}  "
        f"train categories {p['top1_train']:.3f}  "
        f"held-out categories {p['top1_heldout']:.3f}  category+position (30-way): {p['top1_position']:.3f}  "
        f"[{int(p['n'])} probe scenes]"
    )
    return 0


def run_spatial(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from safeadapt_bench.backbones import DEFAULT_CHECKPOINT, load_backbone
    from safeadapt_bench.backbones.pretrain import ship
    from safeadapt_bench.backbones.probe import probe_accuracy
    from safeadapt_bench.backbones.spatial import SpatialConfig, spatial_finetune
    from safeadapt_bench.backbones.views import render_views, views_cache

    if min(args.episodes, args.every, args.steps, args.batch_size) <= 0:
        raise ValueError("--episodes, --every, --steps and --batch-size must be positive.")
    cfg = replace(SpatialConfig(), seed=args.seed, episodes=args.episodes, every=args.every, steps=args.steps,
                  batch_size=args.batch_size)
    bb = load_backbone(pretrained=args.pretrained, freeze=False)
    views = render_views(cfg.episodes, every=cfg.every, camera_size=bb.image_size, grid=bb.grid_size,
                         progress=not args.no_progress,
                         cache=views_cache(cfg.episodes, bb.image_size, bb.grid_size, cfg.every))
    bb.depth_encoding = args.depth_encoding
    record = spatial_finetune(bb, views, cfg, progress=not args.no_progress)
    record.update(start=str(args.pretrained), depth_encoding=args.depth_encoding)
    out = Path(args.out) if args.out else DEFAULT_CHECKPOINT
    ship(bb, out, record)
    record["probe"] = probe_accuracy(load_backbone(pretrained=out))
    ship(bb, out, record)  # the file carries its own record
    p = record["probe"]
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB); probe top-1 {p['top1']:.3f} (train categories "
          f"{p['top1_train']:.3f}, held-out {p['top1_heldout']:.3f}), category+position {p['top1_position']:.3f}")
    return 0


def run_probe(args: argparse.Namespace) -> int:
    import json

    from safeadapt_bench.adapters import load_adapter
    from safeadapt_bench.backbones import load_backbone
    from safeadapt_bench.backbones.probe import probe_accuracy

    bb = load_backbone(args.model, args.pretrained)
    if args.adapter:
        load_adapter(bb, args.adapter)
    res = probe_accuracy(bb, use_depth=not args.no_depth)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"{bb.model_name} ({bb.pretrained}{', adapter ' + args.adapter if args.adapter else ''}): "
            f"top-1 {res['top1']:.3f} (train cats {res['top1_train']:.3f}, held-out cats "
            f"{res['top1_heldout']:.3f}), category+position {res['top1_position']:.3f}, "
            f"chance {res['chance']:.2f}"
        )
    return 0


def run_adapters(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from safeadapt_bench.adapters import AdapterConfig, add_adapter, parameter_counts
    from safeadapt_bench.backbones import load_backbone

    table = Table(title="Adapters on the default backbone's vision tower")
    for col in ("kind", "placement", "blocks", "adapter params", "% of backbone", "% of vision tower"):
        table.add_column(col)
    for kind in ("lora", "bottleneck"):
        for placement in ("bottom", "middle", "top", "all"):
            bb = load_backbone(pretrained=None)
            cfg = AdapterConfig(kind, rank=args.rank, bottleneck_dim=args.bottleneck_dim, placement=placement)
            add_adapter(bb, cfg, "a")
            c = parameter_counts(bb, "a")
            size = f"r={args.rank}" if kind == "lora" else f"dim={args.bottleneck_dim}"
            table.add_row(
                f"{kind} ({size})",
                placement,
                str(cfg.block_indices(len(bb.blocks))),
                f"{c['adapter']:,}",
                f"{100 * c['fraction']:.3f}",
                f"{100 * c['fraction_vision']:.2f}",
            )
    console = Console()
    console.print(table)
    console.print(f"backbone: {c['backbone']:,} parameters ({c['vision']:,} in the vision tower incl. depth stem)")
    return 0
