"""``safeadapt-bench imitation``: what behaviour cloning on the logs reaches from each representation."""

from __future__ import annotations

import argparse
import textwrap

DEFAULT_OUT = "results/imitation/imitation_table.json"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from safeadapt_bench.harness.imitation import REPRESENTATIONS

    p = sub.add_parser(
        "imitation", help="the imitation table: behaviour cloning from each representation, no adaptation",
        description=textwrap.fill(
            "Collect (or reuse) expert logs, pre-train each representation on them as the reference agents do "
            "(frozen backbone, LoRA / bottleneck adapters at the top block or every block, full fine-tuning; "
            "privileged state as the reference), then evaluate each policy with no adaptation on seeded episodes "
            "of the train and held-out categories and probe its backbone for forgetting. Rows are written one at "
            "a time; an existing row of the same settings is kept, so an interrupted run resumes, and processes "
            "running other representations side by side may share one --out.", 100),
        epilog="examples:\n  safeadapt-bench imitation --representations state frozen lora-top --demos 200\n"
        "  safeadapt-bench imitation --representations frozen state --pool none "
        "--agent-kwargs '{\"object_points\": true, \"instruction\": false}'   # 3-D object points: the "
        "representation closest to issue 10's bar",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--representations", nargs="+", default=list(REPRESENTATIONS), metavar="NAME",
                   help=f"rows to run, from {list(REPRESENTATIONS)} (default: all)")
    p.add_argument("--env", default="SafeAdapt/Lift-v0", help="train-category env id (default SafeAdapt/Lift-v0)")
    p.add_argument("--heldout-env", default="SafeAdapt/Lift-Heldout-v0", help="held-out-category env id")
    p.add_argument("--demos", type=int, default=200, help="expert episodes to clone (default 200)")
    p.add_argument("--logs", default="noisy", choices=("noisy", "expert"),
                   help="the logs' policy: 'noisy' executes the expert's action plus noise and labels each step with "
                   "the expert's own action (DART; default), 'expert' records clean demos")
    p.add_argument("--log-colours", default="fixed", choices=("fixed", "random"),
                   help="the logs' object colours: 'fixed' keeps each category's own (default), 'random' tints every "
                   "logged object with a random colour (domain randomisation); evaluation always uses the own")
    p.add_argument("--cameras", nargs="+", default=["front", "wrist"], metavar="CAM",
                   help="env cameras the pixel rows see (default: front wrist)")
    p.add_argument("--updates", type=int, default=3000, help="pre-training updates per row (default 3000)")
    p.add_argument("--seconds", type=float, default=600.0, help="pre-training wall-clock cap per row (default 600)")
    p.add_argument("--batch-size", type=int, default=256, help="frames per update (default 256)")
    p.add_argument("--eval-episodes", type=int, default=50, help="seeded episodes per split (default 50)")
    p.add_argument("--pool", default="spatial_softmax", help="pooling of the pixel rows (default spatial_softmax)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--agent-kwargs", default=None, metavar="JSON",
                   help="extra reference-agent settings for every pixel row, as JSON "
                   "(e.g. '{\"pool_tokens\": \"both\"}'; see AgentConfig)")
    p.add_argument("--state-keys", nargs="+", default=None, metavar="KEY",
                   help="the privileged-state entries the state row sees (default: all), e.g. object_pos "
                   "eef_to_object")
    p.add_argument("--state-noise", type=float, default=0.0, metavar="M",
                   help="std (m) of Gaussian noise on the object's position in the state row's input, in training "
                   "and evaluation: what an object locator with that error would give a policy (default 0)")
    p.add_argument("--eval-colours", default=None, metavar="JSON",
                   help="paint categories in the evaluation envs, as JSON {category: [r, g, b]} (e.g. '{\"cylinder\": "
                   "[0.85, 0.15, 0.1]}': the held-out cylinder in the cube's red): does a policy find objects by "
                   "shape or by colour? (default: each category's own colour)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's own); use 1 per process when running several side by "
                   "side: two processes with the default threads each ran ~13x slower on 2 cores")
    p.add_argument("--no-probe", action="store_true", help="skip the forgetting probe")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                   help=f"JSON table (rows added as they finish; FILE.md gets the Markdown); default {DEFAULT_OUT}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    import torch

    from safeadapt_bench.harness.imitation import (
        ImitationSettings,
        add_row,
        check_representations,
        expert_logs,
        imitation_row,
        markdown_table,
        settings_dict,
        write_json_atomic,
    )
    from safeadapt_bench.pooling import POOLS

    names = check_representations(args.representations)
    if min(args.demos, args.updates, args.batch_size, args.eval_episodes) <= 0 or args.seconds <= 0:
        raise ValueError("--demos, --updates, --seconds, --batch-size and --eval-episodes must be positive.")
    if args.threads is not None and args.threads <= 0:
        raise ValueError(f"--threads must be a positive number of threads, got {args.threads}.")
    if args.pool not in POOLS:
        raise ValueError(f"Unknown --pool {args.pool!r}; choose one of {list(POOLS)}.")
    try:
        agent_kwargs = json.loads(args.agent_kwargs) if args.agent_kwargs else None
    except ValueError as err:
        raise ValueError(f"--agent-kwargs is not valid JSON ({err}); e.g. '{{\"pool_tokens\": \"both\"}}'.") from err
    if agent_kwargs is not None and not isinstance(agent_kwargs, dict):
        raise ValueError(f"--agent-kwargs must be a JSON object, got {args.agent_kwargs!r}.")
    eval_colours = None
    if args.eval_colours:
        from safeadapt_bench.envs.categories import check_object_colours

        try:
            eval_colours = json.loads(args.eval_colours)
        except ValueError as err:
            raise ValueError(f"--eval-colours is not valid JSON ({err}); e.g. "
                             "'{\"cylinder\": [0.85, 0.15, 0.1]}'.") from err
        check_object_colours(eval_colours)
    s = ImitationSettings(env_id=args.env, heldout_id=args.heldout_env, demos=args.demos, logs=args.logs,
                          log_colours=args.log_colours,
                          cameras=tuple(args.cameras), updates=args.updates,
                          seconds=args.seconds, batch_size=args.batch_size, eval_episodes=args.eval_episodes,
                          seed=args.seed, pool=args.pool, agent_kwargs=agent_kwargs,
                          state_keys=tuple(args.state_keys) if args.state_keys else None,
                          state_noise=args.state_noise, eval_colours=eval_colours)
    if "state" in names:
        from safeadapt_bench.harness.imitation import StateView

        StateView(s.state_keys, s.state_noise)  # bad keys or noise: an error before anything runs
    out = Path(args.out)
    table = {"settings": settings_dict(s), "rows": []}
    if out.exists():
        try:
            table = json.loads(out.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{out} exists but is not a readable table ({err}); move it away or pick another "
                             "--out.") from err
        if table.get("settings") != settings_dict(s):
            raise FileExistsError(f"{out} holds a table with other settings ({table.get('settings')}); pick "
                                  "another --out, or run with the same settings to add rows.")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    done = {r["representation"] for r in table["rows"]}
    probe = None
    if not args.no_probe:
        from safeadapt_bench.backbones import probe_accuracy as probe
    dataset = expert_logs(s, progress=True)
    for name in names:
        if name in done:
            print(f"imitation: {name}: kept from {out}")
            continue
        print(f"imitation: {name}: pre-training and evaluating ...", flush=True)
        row = imitation_row(name, dataset, s, probe)
        print(markdown_table([row]), flush=True)
        try:
            table = add_row(out, settings_dict(s), row)  # re-read: keeps rows another process added meanwhile
        except FileExistsError as err:  # another run wrote other settings there since the check above
            aside = out.with_name(f"{out.stem}.seed{s.seed}-{name}-{os.getpid()}.json")
            write_json_atomic(aside, {"settings": settings_dict(s), "rows": [row]})
            raise FileExistsError(f"{err} The row is kept in {aside}; it starts a table of its own (run again "
                                  f"with --out {aside} to add rows).") from err
    print(markdown_table(table["rows"]))
    return 0
