"""``safeadapt-bench collect``: roll a scripted policy and write a Minari dataset of offline logs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from safeadapt_bench.data.ids import COLLECT_OBS_MODES, POLICIES

    p = sub.add_parser("collect", help="collect offline logs (a Minari dataset) with a scripted policy",
                       description="Roll a scripted policy (expert, noisy or careless) in a SafeAdapt env and "
                       "write a Minari dataset with RGB-D, proprioception, instruction, action, reward, cost and "
                       "its terms, success and category at every step. The dataset goes to "
                       "$MINARI_DATASETS_PATH (default ~/.minari/datasets) under a versioned id such as "
                       "safeadapt/lift-expert-v0.")
    p.add_argument("--env", required=True, metavar="ID", help="env id, e.g. SafeAdapt/Lift-v0 (see `envs`)")
    p.add_argument("--episodes", type=int, required=True, metavar="N", help="episodes to record")
    p.add_argument("--policy", choices=POLICIES, default="expert", help="behaviour policy (default expert)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="collection seed (default 0)")
    p.add_argument("--robot", default="Panda", help="robot (default Panda)")
    p.add_argument("--camera-size", type=int, default=64, metavar="PX", help="camera side in pixels (default 64)")
    p.add_argument("--categories", nargs="+", metavar="NAME", help="object categories (default: the env's split)")
    p.add_argument("--obs-mode", choices=COLLECT_OBS_MODES, default="rgbd+state",
                   help="what to record (default rgbd+state; 'state' records no images)")
    p.add_argument("--max-episode-steps", type=int, metavar="T", help="shorter episodes than the registered length")
    p.add_argument("--cameras", nargs="+", metavar="NAME",
                   help="observation cameras, e.g. front wrist (default: the env's, front)")
    p.add_argument("--terminate-on-success", action="store_true",
                   help="end an episode at its first success (the quick suite's logs)")
    p.add_argument("--id", dest="dataset_id", metavar="DATASET_ID",
                   help="dataset id to write (default: derived from the settings, e.g. safeadapt/lift-expert-v0)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes that roll episodes (default: every core from 10 episodes on; the dataset is "
                   "the same for any N)")
    p.add_argument("--force", action="store_true", help="replace an existing dataset with the same id")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from safeadapt_bench.data.collect import collect, default_workers

    extra = {} if args.max_episode_steps is None else {"max_episode_steps": args.max_episode_steps}
    if args.cameras:
        extra["cameras"] = list(args.cameras)
    if args.terminate_on_success:
        extra["terminate_on_success"] = True
    s = collect(args.env, args.episodes, args.policy, args.seed, robot=args.robot, camera_size=args.camera_size,
                obs_mode=args.obs_mode, categories=args.categories, force=args.force,
                progress=not args.no_progress, id_override=args.dataset_id,
                workers=args.workers or default_workers(args.episodes), **extra)
    if args.json:
        print(json.dumps(s.to_dict(), indent=2))
        return 0
    print(f"wrote {s.dataset_id} ({s.episodes} episodes, {s.steps} steps) to {s.path}")
    print(f"success rate {s.success_rate:.2f}, cost rate {s.cost_rate:.3f} per step, "
          f"mean episode cost {s.mean_episode_cost:.2f}, mean return {s.mean_return:.2f}")
    print(f"speed: {s.steps_per_second:.1f} steps/s collecting with {s.workers} worker(s) vs "
          f"{s.env_steps_per_second:.1f} steps/s env + policy alone in one process, same run ({s.overhead_ratio:.3f}x; "
          f"target >= 0.9x per worker), {s.seconds:.1f} s")
    return 0
