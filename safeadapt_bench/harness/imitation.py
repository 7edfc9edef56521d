"""The imitation table: what behaviour cloning on the logs reaches from each representation.

Each row pre-trains one representation on the same expert logs (the reference agents' own
pre-training: behaviour cloning on the backbone's features, with the frozen part computed once
per logged frame), then evaluates the policy with no adaptation at all on seeded episodes of the
train and the held-out categories, and probes the backbone for forgetting. The privileged-state row
(an MLP on proprio + the simulator's object state, the same loss) is the reference a pixel policy is
measured against. This is the lossless-adaptation comparison (frozen vs adapters vs full
fine-tuning) on this benchmark's tasks.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

#: Representations: (agent, agent kwargs). ``state`` is the privileged-state reference.
REPRESENTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "frozen": ("adapter", {"adapter": None}),
    "lora-top": ("adapter", {"adapter": "lora", "adapter_placement": "top"}),
    "lora-all": ("adapter", {"adapter": "lora", "adapter_placement": "all"}),
    "bottleneck-top": ("adapter", {"adapter": "bottleneck", "adapter_placement": "top"}),
    "bottleneck-all": ("adapter", {"adapter": "bottleneck", "adapter_placement": "all"}),
    "full-finetune": ("full-finetune", {}),
    "state": ("state-bc", {}),
}


@dataclass
class ImitationSettings:
    """One imitation study.

    Attributes:
        env_id / heldout_id: the train-category and held-out-category env ids.
        demos: expert episodes to clone (collected once, episodes end on success).
        logs: the scripted policy that writes them: ``"noisy"`` (the default) injects action noise and
            records the expert's own action as the label (DART); ``"expert"`` records clean demos.
        dataset_seed: collection seed.
        log_colours: the logs' object colours (the env's ``object_colours``): ``"fixed"`` keeps each
            category's own, ``"random"`` tints each logged object with a random colour (domain
            randomisation). Evaluation always sees the categories' own colours.
        camera_size: image side, px.
        cameras: the env's cameras (``("front", "wrist")``: both, one encoder each).
        updates / seconds: pre-training budget per row (the first reached stops it).
        batch_size: frames per update.
        eval_episodes: seeded evaluation episodes per split (categories balanced).
        seed: training seed.
        pool: the pixel rows' pooling (``safeadapt_bench.pooling.POOLS``).
        agent_kwargs: extra reference-agent settings for every pixel row.
        state_keys: the privileged-state entries the ``state`` row sees (names of
            ``STATE_LAYOUT``; ``None``: all of them).
        state_noise: std (m) of Gaussian noise added to the object's position in the ``state`` row's
            input (``object_pos`` and ``eef_to_object`` alike, each step, in training and evaluation):
            what an object locator with that error would give a policy.
        eval_colours: the evaluation envs' ``object_colours`` (``None``: each category's own); a mapping
            ``{category: (r, g, b)}`` paints those categories, e.g. held-out ones in a train category's
            colour: whether a policy finds objects by shape or by colour.
    """

    env_id: str = "SafeAdapt/Lift-v0"
    heldout_id: str = "SafeAdapt/Lift-Heldout-v0"
    demos: int = 200
    logs: str = "noisy"
    dataset_seed: int = 0
    log_colours: str = "fixed"
    camera_size: int = 64
    cameras: tuple[str, ...] = ("front", "wrist")
    updates: int = 3000
    seconds: float = 600.0
    batch_size: int = 256
    eval_episodes: int = 50
    seed: int = 0
    pool: str = "spatial_softmax"
    agent_kwargs: dict[str, Any] | None = None
    state_keys: tuple[str, ...] | None = None
    state_noise: float = 0.0
    eval_colours: dict[str, Any] | None = None


def check_representations(names: list[str]) -> list[str]:
    """``names`` if all are known, else a ``ValueError`` listing the choices."""
    unknown = [n for n in names if n not in REPRESENTATIONS]
    if unknown:
        raise ValueError(f"Unknown representation(s) {unknown}; choose from {list(REPRESENTATIONS)}.")
    return list(names)


def expert_logs(s: ImitationSettings, progress: bool = False) -> Any:
    """The expert logs of the study (collected when missing), as an ``OfflineDataset``."""
    from safeadapt_bench.data import load, provide_dataset

    did = provide_dataset(s.env_id, s.logs, s.demos, s.dataset_seed, camera_size=s.camera_size,
                          cameras=tuple(s.cameras), terminate_on_success=True, object_colours=s.log_colours,
                          progress=progress)
    return load(did, episodes=s.demos)


class StateBC(nn.Module):
    """The privileged-state reference: an MLP on normalised ``[proprio, state]``, cloned with the same
    loss as the reference agents (arm MSE on the squashed mean, logistic loss on the gripper's sign)."""

    required_obs_keys = ("proprio", "state")

    def __init__(self, in_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256),
                 view: StateView | None = None) -> None:
        super().__init__()
        self.view = view or StateView()
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        self.net = nn.Sequential(*layers, nn.Linear(last, act_dim))
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def act(self, obs: dict[str, Any], deterministic: bool = True) -> np.ndarray:
        x = torch.as_tensor(np.concatenate([obs["proprio"], self.view(obs["state"])]), dtype=torch.float32)[None]
        with torch.no_grad():
            return torch.tanh(self(x))[0].numpy()


class StateView:
    """The part of the privileged state a ``state`` row sees (``keys`` of ``STATE_LAYOUT``, all by
    default), with Gaussian noise of std ``noise`` (m, seeded) on the object's position."""

    def __init__(self, keys: tuple[str, ...] | None = None, noise: float = 0.0, seed: int = 0) -> None:
        from safeadapt_bench.envs.base import STATE_LAYOUT

        keys = tuple(keys) if keys else tuple(STATE_LAYOUT)
        unknown = [k for k in keys if k not in STATE_LAYOUT]
        if unknown or len(set(keys)) != len(keys):
            raise ValueError(f"state_keys must be distinct entries of the state, from {list(STATE_LAYOUT)}; got "
                             f"{list(keys)}.")
        if not noise >= 0:
            raise ValueError(f"state_noise must be a std in metres >= 0, got {noise!r}.")
        start = np.cumsum([0, *STATE_LAYOUT.values()])
        spans = {k: np.arange(start[i], start[i + 1]) for i, k in enumerate(STATE_LAYOUT)}
        self.columns = np.concatenate([spans[k] for k in keys])
        self.noisy = np.concatenate([spans["object_pos"], spans["eef_to_object"]]).reshape(2, 3)
        self.noise, self.rng = float(noise), np.random.default_rng(seed)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        state = np.array(state, dtype=np.float64)
        if self.noise > 0:
            n = self.rng.normal(0.0, self.noise, state.shape[:-1] + (3,))
            state[..., self.noisy[0]] += n
            state[..., self.noisy[1]] += n
        return state[..., self.columns]


def _state_arrays(dataset: Any, view: StateView | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    view = view or StateView()
    xs, acts = [], []
    for ep in dataset.episodes():
        if ep.state is None:
            raise ValueError(f"The logs {dataset.id!r} hold no privileged state; collect them with obs_mode "
                             "'rgbd+state'.")
        xs.append(np.concatenate([ep.proprio[:len(ep)], view(ep.state[:len(ep)])], axis=1))
        acts.append(ep.labels)
    return torch.as_tensor(np.concatenate(xs), dtype=torch.float32), torch.as_tensor(np.concatenate(acts))


def train_state_bc(dataset: Any, s: ImitationSettings) -> tuple[StateBC, dict[str, Any]]:
    """Clone the logs' actions from ``[proprio, state]`` (budget and seed of ``s``)."""
    import torch.nn.functional as F

    torch.manual_seed(s.seed)
    train, val = dataset.split(0.1)
    view = StateView(s.state_keys, s.state_noise, seed=s.seed)
    x, a = _state_arrays(train, view)
    policy = StateBC(x.shape[1], a.shape[1], view=view)
    policy.mean.copy_(x.mean(0))
    policy.std.copy_(x.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.updates)
    gen = torch.Generator().manual_seed(s.seed)

    def loss(xb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        out = policy(xb)
        return (F.mse_loss(torch.tanh(out[:, :-1]), ab[:, :-1])
                + F.binary_cross_entropy_with_logits(2 * out[:, -1], (ab[:, -1] > 0).float()))

    t0, n = time.perf_counter(), 0
    while n < s.updates and time.perf_counter() - t0 < s.seconds:
        idx = torch.randint(len(x), (min(s.batch_size, len(x)),), generator=gen)
        opt.zero_grad()
        loss(x[idx], a[idx]).backward()
        opt.step()
        sched.step()
        n += 1
    stats: dict[str, Any] = {"updates": n, "frames": len(x), "wall_seconds": round(time.perf_counter() - t0, 2)}
    if val is not None:
        xv, av = _state_arrays(val, view)
        with torch.no_grad():
            stats["val_bc"] = float(loss(xv, av))
    policy.eval()
    return policy, stats


def _make_env(env_id: str, s: ImitationSettings, state: bool, evaluation: bool = False) -> Any:
    import gymnasium as gym

    import safeadapt_bench  # noqa: F401  (registers the ids)

    colours = {"object_colours": s.eval_colours} if evaluation and s.eval_colours else {}
    if state:
        return gym.make(env_id, obs_mode="state", terminate_on_success=True, **colours)
    return gym.make(env_id, camera_size=s.camera_size, cameras=tuple(s.cameras), terminate_on_success=True,
                    **colours)


def _pixel_policy(name: str, dataset: Any, s: ImitationSettings, env: Any, probe: Any
                  ) -> tuple[Any, dict[str, Any], dict[str, float | None]]:
    """Build and pre-train a reference agent; ``probe`` (or ``None``) measures its backbone before and after."""
    from safeadapt_bench.agents.budget import Budget
    from safeadapt_bench.agents.registry import resolve_agent

    agent_name, kwargs = REPRESENTATIONS[name]
    kwargs = {**kwargs, "pool": s.pool, "pretrain_batch_size": s.batch_size, **(s.agent_kwargs or {})}
    agent = resolve_agent(agent_name)(env.observation_space, env.action_space, seed=s.seed, **kwargs)
    before = float(probe(agent.backbone())["top1"]) if probe is not None else None
    t0 = time.perf_counter()
    stats = agent.pretrain(dataset, Budget(updates=s.updates, wall_seconds=s.seconds))
    stats["wall_seconds"] = round(time.perf_counter() - t0, 2)  # reading the logs and the frozen pass included
    after = float(probe(agent.backbone())["top1"]) if probe is not None else None
    forgetting = None if before is None else before - after
    return agent, stats, {"probe_before": before, "probe_after": after, "forgetting": forgetting}


def imitation_row(name: str, dataset: Any, s: ImitationSettings, probe: Any = None) -> dict[str, Any]:
    """Pre-train representation ``name`` on ``dataset``, evaluate it on both splits, probe forgetting."""
    from safeadapt_bench.harness.monitor import evaluate

    check_representations([name])
    state = name == "state"
    probes: dict[str, float | None] = {"probe_before": None, "probe_after": None, "forgetting": None}
    if state:
        policy, stats = train_state_bc(dataset, s)
    else:
        env = _make_env(s.env_id, s, state)
        try:
            policy, stats, probes = _pixel_policy(name, dataset, s, env, probe)
        finally:
            env.close()
    results = {}
    for split, env_id, seed in (("train", s.env_id, 20_000_000), ("heldout", s.heldout_id, 30_000_000)):
        e = _make_env(env_id, s, state, evaluation=True)
        try:
            results[split] = evaluate(policy, e, s.eval_episodes, seed + 1000 * s.seed)
        finally:
            e.close()
    return {
        "representation": name,
        "agent": REPRESENTATIONS[name][0],
        "demos": s.demos,
        "updates": stats.get("updates"),
        "pretrain_seconds": round(float(stats.get("wall_seconds", stats.get("seconds"))), 1),
        "val_bc": stats.get("val_bc"),
        "success_train": results["train"]["success"],
        "success_heldout": results["heldout"]["success"],
        "safe_ratio": float(np.mean([results[k]["safe_ratio"] for k in results])),
        "success_by_category": {**results["train"]["success_by_category"],
                                **results["heldout"]["success_by_category"]},
        "eval_episodes": s.eval_episodes,
        **probes,
        "pretrain_stats": {k: v for k, v in stats.items() if k != "val_curve"},
        "val_curve": stats.get("val_curve"),
        "provenance": provenance(dataset),
    }


def provenance(dataset: Any) -> dict[str, Any]:
    """What a row's figures depend on beyond its settings: numpy's OpenBLAS kernel and torch's threads in
    this process, and the logs (their id, steps and the kernel that collected them: logs collected on
    another kernel hold other episodes, see ``safeadapt_bench.data.collect``)."""
    import torch

    from safeadapt_bench.harness.records import blas_kernel

    return {"blas_kernel": blas_kernel(), "torch_threads": torch.get_num_threads(),
            "logs": {"id": dataset.id, "steps": int(dataset.minari.total_steps),
                     "blas_kernel": dataset.info.get("blas_kernel")}}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def add_row(path: Path, settings: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Add ``row`` to the table file at ``path`` (replacing a row of the same representation) and rewrite
    its Markdown; returns the table. The file is read again under a lock on its folder, so processes
    writing rows of the same settings to one file side by side keep each other's rows."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        table = json.loads(path.read_text()) if path.exists() else {"settings": settings, "rows": []}
        if table.get("settings") != settings:
            raise FileExistsError(f"{path} now holds a table with other settings; the row is not written there.")
        table["rows"] = [r for r in table["rows"] if r["representation"] != row["representation"]] + [row]
        write_json_atomic(path, table)
        Path(str(path) + ".md").write_text(markdown_table(table["rows"]))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown."""
    def fmt(v: Any, spec: str = ".2f") -> str:
        return "n/a" if v is None else format(v, spec)

    lines = ["| representation | agent | demos | updates | pre-training s | val BC loss | success train | "
             "success held-out | safe-action ratio | forgetting |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['representation']} | {r['agent']} | {r['demos']} | {r['updates']} | "
                     f"{r['pretrain_seconds']:.0f} | {fmt(r.get('val_bc'), '.3f')} | {fmt(r['success_train'])} | "
                     f"{fmt(r['success_heldout'])} | {fmt(r['safe_ratio'], '.3f')} | "
                     f"{fmt(r.get('forgetting'), '.3f')} |")
    return "\n".join(lines) + "\n"


def settings_dict(s: ImitationSettings) -> dict[str, Any]:
    """The settings as a plain dict (for the table file)."""
    d = json.loads(json.dumps(asdict(s)))  # tuples as lists, as the table file reads back
    for key, default in (("state_keys", None), ("state_noise", 0.0), ("eval_colours", None)):  # older tables
        if d[key] == default:
            del d[key]
    return d
