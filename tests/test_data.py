"""Offline logs: env -> Minari dataset -> loader round trip, errors, overwrite, interruption, listing, provider."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import safeadapt_bench  # noqa: F401  (registers the ids)
from safeadapt_bench.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetVersionError,
    collect,
    dataset_id,
    episode_seed,
    load,
    provide_dataset,
)
from safeadapt_bench.envs.costs import COST_TERMS
from safeadapt_bench.experts import make_policy

ENV = "SafeAdapt/Lift-v0"
STEPS = 25
EPISODES = 2
KW = {"camera_size": 16, "max_episode_steps": STEPS}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A data directory for this module (``MINARI_DATASETS_PATH``)."""
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        yield path


@pytest.fixture(scope="module")
def expert_logs(root):
    """Two short expert episodes with a 16 px RGB-D camera: (summary, dataset id)."""
    summary = collect(ENV, EPISODES, "expert", seed=3, progress=False, **KW)
    return summary


def _replay(seed: int, episodes: int, obs_mode: str = "rgbd+state", **kw):
    """What the env gives when the expert is rolled again on the collection's episode seeds."""
    env = gym.make(ENV, obs_mode=obs_mode, **kw)
    policy = make_policy("expert", env, seed=seed)
    out = []
    for i in range(episodes):
        s = episode_seed(seed, i)
        obs, _ = env.reset(seed=s)
        policy.reset(seed=s)
        rec = {"obs": [obs], "actions": [], "rewards": [], "infos": []}
        done = False
        while not done:
            a = np.clip(np.asarray(policy(obs), np.float32), -1, 1)
            obs, r, term, trunc, info = env.step(a)
            rec["obs"].append(obs)
            rec["actions"].append(a)
            rec["rewards"].append(r)
            rec["infos"].append(info)
            done = term or trunc
        out.append(rec)
    env.close()
    return out


def _copy(root: Path, src_id: str, dst_id: str, edit=None) -> None:
    """Copy a dataset under another id, optionally editing its ``safeadapt`` metadata."""
    shutil.copytree(root / src_id, root / dst_id)
    meta_path = root / dst_id / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["dataset_id"] = dst_id
    if edit:
        edit(meta["safeadapt"])
    meta_path.write_text(json.dumps(meta))


# ---------------------------------------------------------------- round trip
def test_round_trip_keeps_observations_actions_and_costs_exactly(expert_logs):
    s = expert_logs
    assert s.dataset_id == "safeadapt/lift-expert-cam16-seed3-t25-v3"
    assert (s.episodes, s.steps) == (EPISODES, EPISODES * STEPS)
    ds = load(s.dataset_id)
    assert ds.total_episodes == EPISODES
    expected = _replay(3, EPISODES, **KW)
    episodes = list(ds.episodes())
    for ep, ref in zip(episodes, expected, strict=True):
        assert len(ep) == STEPS and ep.seed == episode_seed(3, ep.index)
        for key in ("rgb", "depth", "proprio", "state"):
            want = np.stack([o[key] for o in ref["obs"]])
            got = getattr(ep, key)
            assert got.dtype == want.dtype and got.shape == want.shape, key
            np.testing.assert_array_equal(got, want, err_msg=key)  # images too: lossless
        assert ep.instruction == ref["obs"][0]["instruction"]
        assert ep.category == ref["infos"][0]["category"]
        np.testing.assert_array_equal(ep.actions, np.stack(ref["actions"]))
        np.testing.assert_array_equal(ep.rewards, np.array(ref["rewards"]))
        for key in ["cost", "success"] + [f"{p}_{t}" for t in COST_TERMS for p in ("cost", "raw")]:
            np.testing.assert_array_equal(ep.infos[key], np.array([i[key] for i in ref["infos"]]), err_msg=key)
        assert ds.categories[int(ep.infos["category"][0])] == ep.category
        assert ep.truncations[-1] and not ep.truncations[:-1].any()

    # batches, in order: every step once, the same values, torch-ready
    import torch

    batches = list(ds.batches(batch_size=7, shuffle=False))
    assert [len(b) for b in batches] == [7] * 7 + [1]
    cat = {k: torch.cat([getattr(b, k) for b in batches]) for k in ("rgb", "depth", "proprio", "action", "cost",
                                                                     "done", "state", "episode", "step")}
    want_rgb = np.concatenate([ep.rgb[:-1] for ep in episodes]).transpose(0, 3, 1, 2)
    assert cat["rgb"].dtype == torch.uint8 and tuple(cat["rgb"].shape) == (EPISODES * STEPS, 3, 16, 16)
    np.testing.assert_array_equal(cat["rgb"].numpy(), want_rgb)
    np.testing.assert_array_equal(cat["depth"].numpy(),
                                  np.concatenate([ep.depth[:-1] for ep in episodes]).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(cat["proprio"].numpy(), np.concatenate([ep.proprio[:-1] for ep in episodes]))
    np.testing.assert_array_equal(cat["state"].numpy(), np.concatenate([ep.state[:-1] for ep in episodes]))
    np.testing.assert_array_equal(cat["action"].numpy(), np.concatenate([ep.actions for ep in episodes]))
    np.testing.assert_array_equal(cat["cost"].numpy(), np.concatenate([ep.costs for ep in episodes]))
    assert cat["done"].sum().item() == EPISODES and cat["done"][STEPS - 1]
    instr = [i for b in batches for i in b.instruction]
    assert instr == [ep.instruction for ep in episodes for _ in range(STEPS)]

    # shuffled: still every (episode, step) exactly once
    pairs = [(int(e), int(t)) for b in ds.batches(batch_size=8, seed=1) for e, t in zip(b.episode, b.step)]
    assert sorted(pairs) == [(e, t) for e in range(EPISODES) for t in range(STEPS)]
    assert pairs != sorted(pairs)


@pytest.mark.parametrize("size, storage", [(32, "png"), (16, "gzip")])
def test_minari_api_gives_the_env_space_losslessly_and_compressed(expert_logs, root, size, storage):
    """``minari.load_dataset`` alone (no safeadapt loader) gives every observation in the env's shape."""
    import h5py
    import minari

    kw = {"camera_size": size, "max_episode_steps": 12}
    did = expert_logs.dataset_id if size == 16 else collect(ENV, 2, "expert", seed=5, progress=False, **kw).dataset_id
    seed, n = (3, EPISODES) if size == 16 else (5, 2)
    ds = minari.load_dataset(did)
    env = gym.make(ENV, obs_mode="rgbd+state", camera_size=size)
    assert ds.observation_space == env.observation_space
    env.close()
    expected = _replay(seed, n, **(KW if size == 16 else kw))
    for ep, ref in zip(ds.iterate_episodes(), expected, strict=True):
        for key in ("rgb", "depth", "proprio", "state"):
            want = np.stack([o[key] for o in ref["obs"]])
            got = ep.observations[key]
            assert got.dtype == want.dtype and got.shape == want.shape, key
            np.testing.assert_array_equal(got, want, err_msg=key)
        assert got.shape[1:] == ds.observation_space[key].shape
    with h5py.File(root / did / "data" / "main_data.hdf5") as f:
        obs = f["episode_0/observations"]
        assert obs["depth"].compression == "gzip"
        if storage == "png":
            assert bytes(obs["rgb"][0][:8]) == b"\x89PNG\r\n\x1a\n"
        else:
            assert obs["rgb"].compression == "gzip" and obs["rgb"].shape == (STEPS + 1, 16, 16, 3)
    assert load(did).info["image_storage"] == {"rgb": storage, "depth": "gzip"}
    on_disk = sum(p.stat().st_size for p in (root / did).rglob("*") if p.is_file()) / 1e6
    # Minari reports the size in MB rounded to one decimal
    assert minari.load_dataset(did).storage.metadata["dataset_size"] == pytest.approx(on_disk, rel=0.05, abs=0.05)


def test_contrastive_pairs_are_observation_and_following_window(expert_logs):
    ds = load(expert_logs.dataset_id)
    episodes = {ep.index: ep for ep in ds.episodes()}
    w = 5
    batches = list(ds.contrastive_pairs(batch_size=16, window=w, seed=0))
    assert sum(len(b) for b in batches) == EPISODES * (STEPS - w + 1)
    b = batches[0]
    assert tuple(b.window_action.shape) == (16, w, 7) and tuple(b.window_proprio.shape) == (16, w, 30)
    assert tuple(b.window_state.shape) == (16, w, 23) and tuple(b.rgb.shape) == (16, 3, 16, 16)
    for i in range(len(b)):
        ep, t = episodes[int(b.episode[i])], int(b.step[i])
        np.testing.assert_array_equal(b.rgb[i].numpy(), ep.rgb[t].transpose(2, 0, 1))
        np.testing.assert_array_equal(b.window_action[i].numpy(), ep.actions[t:t + w])
        np.testing.assert_array_equal(b.window_proprio[i].numpy(), ep.proprio[t:t + w])
        np.testing.assert_array_equal(b.window_cost[i].numpy(), ep.costs[t:t + w].astype(np.float32))
        assert b.instruction[i] == ep.instruction
    with pytest.raises(ValueError, match="has 100 steps"):
        list(ds.contrastive_pairs(window=100))


def test_loader_reads_episodes_lazily(expert_logs):
    ds = load(expert_logs.dataset_id)
    read = []
    original = ds.minari.iterate_episodes

    def counting(indices):
        read.extend(int(i) for i in indices)
        return original(indices)

    ds.minari.iterate_episodes = counting
    it = ds.batches(batch_size=4, chunk_episodes=1, seed=0)
    next(it)
    assert len(read) == 1  # one episode in memory for the first batch
    list(it)
    assert sorted(read) == [0, 1]


def test_splits_and_episode_prefix(expert_logs):
    did = expert_logs.dataset_id
    assert load(did, split="train", val_fraction=0.5).episode_indices.tolist() == [0]
    assert load(did, split="val", val_fraction=0.5).episode_indices.tolist() == [1]
    assert load(did, episodes=1).total_episodes == 1
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        load(did, split="test")
    with pytest.raises(ValueError, match="has 2 episodes, 5 were asked"):
        load(did, episodes=5)


# ---------------------------------------------------------------- metadata and errors
def test_metadata_records_provenance(expert_logs):
    meta = load(expert_logs.dataset_id).info
    assert meta["env_id"] == ENV and meta["policy"] == "expert" and meta["seed"] == 3
    assert meta["package_version"] == safeadapt_bench.__version__
    assert meta["env_kwargs"] == {"robot": "Panda", "obs_mode": "rgbd+state", "camera_size": 16,
                                  "max_episode_steps": STEPS}
    assert meta["registered_spec"]["entry_point"] == "safeadapt_bench.envs.lift:LiftEnv"
    assert meta["episode_seeds"] == [episode_seed(3, i) for i in range(EPISODES)]
    assert meta["image_storage"] == {"rgb": "gzip", "depth": "gzip"} and meta["cost_terms"] == list(COST_TERMS)


def test_missing_corrupt_and_foreign_version_datasets_raise_clearly(expert_logs, root):
    did = expert_logs.dataset_id
    with pytest.raises(DatasetNotFoundError, match="not found.*safeadapt-bench collect"):
        load("safeadapt/nothing-here-v0")
    with pytest.raises(ValueError, match="Malformed dataset id"):
        load("not a valid id!")

    _copy(root, did, "safeadapt/truncated-v0")
    h5 = root / "safeadapt/truncated-v0/data/main_data.hdf5"
    h5.write_bytes(h5.read_bytes()[:2000])
    with pytest.raises(DatasetCorruptError, match="corrupt or incomplete"):
        load("safeadapt/truncated-v0")
    _copy(root, did, "safeadapt/nometa-v0")
    os.remove(root / "safeadapt/nometa-v0/data/metadata.json")
    with pytest.raises(DatasetCorruptError):
        load("safeadapt/nometa-v0")

    cases = {
        "safeadapt/otherenv-v0": (lambda m: m.update(env_id="SafeAdapt/Lift-v9"), "not registered"),
        "safeadapt/otherspec-v0": (lambda m: m["registered_spec"].update(max_episode_steps=999), "env spec"),
        "safeadapt/otherpkg-v0": (lambda m: m.update(package_version="9.0.0"), "safeadapt-bench 9.0.0"),
        "safeadapt/otherlayout-v0": (lambda m: m.update(layout_version=7), "layout version 7"),
    }
    for new_id, (edit, message) in cases.items():
        _copy(root, did, new_id, edit)
        with pytest.raises(DatasetVersionError, match=message):
            load(new_id)
    assert load("safeadapt/otherpkg-v0", check_version=False).total_episodes == EPISODES

    from safeadapt_bench.data import list_datasets

    rows = {r["id"]: r for r in list_datasets()}
    assert rows[did]["problem"] == "" and rows["safeadapt/otherenv-v0"]["problem"]
    for bad in ("safeadapt/truncated-v0", "safeadapt/nometa-v0", "safeadapt/otherenv-v0",
                "safeadapt/otherspec-v0", "safeadapt/otherpkg-v0", "safeadapt/otherlayout-v0"):
        shutil.rmtree(root / bad)


def test_unknown_policy_split_and_env_are_refused(root):
    with pytest.raises(ValueError, match="Unknown policy 'random'.*expert"):
        collect(ENV, 1, "random", progress=False)
    with pytest.raises(ValueError, match="Unknown policy"):
        dataset_id(ENV, "random")
    with pytest.raises(ValueError, match="not a SafeAdapt env id"):
        dataset_id("CartPole-v1", "expert")
    with pytest.raises(ValueError, match="episodes must be a positive integer"):
        collect(ENV, 0, "expert", progress=False)
    with pytest.raises(ValueError, match="obs_mode 'rgbd'"):
        collect(ENV, 1, "expert", obs_mode="rgbd", progress=False)
    with pytest.raises(ValueError, match="split"):  # the env's own error, raised before anything is written
        collect(ENV, 1, "expert", progress=False, split="test", obs_mode="state")
    assert not any(p.name.startswith(".collect-") for p in root.iterdir())


def test_ids_are_versioned_and_encode_settings():
    assert dataset_id(ENV, "expert") == "safeadapt/lift-expert-v3"
    assert dataset_id("SafeAdapt/PickPlace-Heldout-v0", "careless", robot="UR5e", camera_size=32, seed=2) == \
        "safeadapt/pickplace-heldout-careless-ur5e-cam32-seed2-v3"
    assert dataset_id(ENV, "noisy", obs_mode="state", categories=["cube"]) == "safeadapt/lift-noisy-state-cube-v3"
    a, b = dataset_id(ENV, "expert", force_threshold=40.0), dataset_id(ENV, "expert", force_threshold=60.0)
    assert a != b and a.startswith("safeadapt/lift-expert-k")
    # an env default named explicitly keeps the id; another value changes it
    assert dataset_id(ENV, "noisy", object_colours="fixed") == dataset_id(ENV, "noisy")
    assert dataset_id(ENV, "noisy", object_colours="random") != dataset_id(ENV, "noisy")


# ---------------------------------------------------------------- overwrite, interruption
def test_overwrite_needs_force_and_interruption_leaves_nothing(root):
    kw = {"obs_mode": "state", "max_episode_steps": 6, "progress": False}
    s = collect(ENV, 1, "expert", seed=11, **kw)
    with pytest.raises(FileExistsError, match="--force"):
        collect(ENV, 1, "expert", seed=11, **kw)
    s2 = collect(ENV, 2, "expert", seed=11, force=True, **kw)
    assert s2.dataset_id == s.dataset_id and load(s.dataset_id).total_episodes == 2

    class Interrupting:
        def __init__(self, policy):
            self.policy, self.calls = policy, 0

        def reset(self, seed=None, episode=None):
            self.policy.reset(seed=seed, episode=episode)

        def __call__(self, obs):
            self.calls += 1
            if self.calls == 9:  # in the second episode, after the first was written
                raise KeyboardInterrupt
            return self.policy(obs)

    def factory(name, env, seed=None):
        return Interrupting(make_policy(name, env, seed=seed))

    with pytest.raises(KeyboardInterrupt):
        collect(ENV, 3, "expert", seed=12, policy_factory=factory, **kw)
    assert not (root / dataset_id(ENV, "expert", seed=12, obs_mode="state", max_episode_steps=6)).exists()
    # a forced recollection that is interrupted keeps the old dataset
    with pytest.raises(KeyboardInterrupt):
        collect(ENV, 3, "expert", seed=11, force=True, policy_factory=factory, **kw)
    assert load(s.dataset_id).total_episodes == 2
    assert not any(p.name.startswith((".collect-", ".trash-")) for p in root.rglob(".*"))


# ---------------------------------------------------------------- provider and CLI
def test_provider_collects_once_and_serves_the_harness(root):
    kw = {"obs_mode": "state", "max_episode_steps": 5}
    did = provide_dataset(ENV, "noisy", 1, seed=4, **kw)
    assert did == "safeadapt/lift-noisy-state-seed4-t5-v3"
    mtime = (root / did / "data" / "main_data.hdf5").stat().st_mtime_ns
    assert provide_dataset(ENV, "noisy", 1, seed=4, **kw) == did
    assert (root / did / "data" / "main_data.hdf5").stat().st_mtime_ns == mtime  # reused
    assert provide_dataset(ENV, "noisy", 2, seed=4, **kw) == did and load(did).total_episodes == 2
    first = load(did, episodes=1).episode(0)

    from safeadapt_bench.data import wrap
    from safeadapt_bench.harness.suites import TaskSpec

    task = TaskSpec("Lift", obs_mode="state", env_kwargs={"max_episode_steps": 5})
    ds = provide_dataset(task=task, policy="noisy", episodes=1, seed=4)
    assert ds.total_episodes == 1 and ds.spec.dataset_id == did  # the harness gets a MinariDataset view
    np.testing.assert_array_equal(wrap(ds).episode(0).actions, first.actions)
    batch = next(wrap(ds).batches(4))
    assert batch.rgb is None and tuple(batch.proprio.shape) == (4, 30)


def test_cli_collect_and_datasets(root, capsys):
    from safeadapt_bench.cli import main

    argv = ["collect", "--env", ENV, "--episodes", "1", "--policy", "careless", "--seed", "5",
            "--obs-mode", "state", "--max-episode-steps", "8", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote safeadapt/lift-careless-state-seed5-t8-v3 (1 episodes, 8 steps)" in out
    assert "steps/s collecting with 1 worker(s) vs" in out and "target >= 0.9x per worker" in out
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    two = ["collect", "--env", ENV, "--episodes", "2", "--camera-size", "16", "--cameras", "front", "wrist",
           "--terminate-on-success", "--max-episode-steps", "6", "--workers", "2", "--no-progress", "--json"]
    assert main(two) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["workers"] == 2 and summary["episodes"] == 2
    meta = load(summary["dataset_id"]).info
    assert meta["env_kwargs"]["cameras"] == ["front", "wrist"] and meta["env_kwargs"]["terminate_on_success"] is True
    assert main(["datasets", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    row = {r["id"]: r for r in listing["datasets"]}["safeadapt/lift-careless-state-seed5-t8-v3"]
    assert row["episodes"] == 1 and row["steps"] == 8 and row["policy"] == "careless"
    assert 0 <= row["cost_rate"] <= 1 and row["success_rate"] in (0.0, 1.0) and row["size_mb"] > 0
    assert row["mb_per_episode"] == pytest.approx(row["size_mb"] / row["episodes"])
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "lift-careless-state-seed5-t8-v3" in out and "MB/episode" in out


# ---------------------------------------------------------------- speed
@pytest.mark.slow
def test_recording_overhead_is_at_most_ten_percent():
    from safeadapt_bench.perf.data import measure

    collecting, alone, in_run = measure("state", episodes=2, steps=150, rounds=3)
    # The same run's env + policy time is the precise reference; separate runs on a shared 2-core
    # machine scatter by 10-20% (load), so the A/B figure only guards against gross regressions.
    assert collecting >= 0.9 * in_run
    assert collecting >= 0.8 * alone


def test_noisy_logs_record_the_expert_action_as_the_label(root):
    """DART: the ``noisy`` policy's logs hold the executed (noisy) action and, as the behaviour-cloning
    label, the expert's own action at the same state; expert logs label each step with its action."""
    kw = {"obs_mode": "state", "max_episode_steps": 8}
    noisy = load(provide_dataset(ENV, "noisy", 1, seed=5, **kw)).episode(0)
    assert noisy.infos["expert_action"].shape == noisy.actions.shape
    arm = np.abs(noisy.labels[:, :6] - noisy.actions[:, :6])
    assert arm.max() > 0.05  # the noise is in the executed action only
    np.testing.assert_array_equal(noisy.labels[:, 6], noisy.actions[:, 6])  # the gripper gets no noise
    # the label is what the expert does in the state the noise led to
    env = gym.make(ENV, obs_mode="state", max_episode_steps=8)
    pol = make_policy("expert", env, seed=0)
    obs, _ = env.reset(seed=noisy.seed)
    pol.reset(seed=noisy.seed)
    for t in range(3):
        np.testing.assert_allclose(pol(obs), noisy.labels[t], atol=1e-6)
        obs, *_ = env.step(noisy.actions[t])
    env.close()
    expert = load(provide_dataset(ENV, "expert", 1, seed=5, **kw)).episode(0)
    np.testing.assert_array_equal(expert.labels, expert.actions)


def _hdf5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_a_dataset_records_its_blas_kernel_and_reuse_on_another_warns(root, monkeypatch):
    """The OpenBLAS kernel (OPENBLAS_CORETYPE) changes collected episodes (Lift noisy, seed 0, 200 episodes:
    17965 steps on Cooperlake, 17969 on Haswell, 26 episodes differ): a dataset records it, and reusing
    one from another kernel warns instead of silently mixing the two."""
    import safeadapt_bench.harness.records as records

    kw = {"obs_mode": "state", "max_episode_steps": 3}
    did = provide_dataset(ENV, "expert", 1, seed=21, **kw)
    kernel = load(did).info["blas_kernel"]
    assert kernel == records.blas_kernel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same kernel: reused silently
        assert provide_dataset(ENV, "expert", 1, seed=21, **kw) == did
    monkeypatch.setattr(records, "blas_kernel", lambda: "NotThisOne")
    if kernel is not None:
        with pytest.warns(UserWarning, match=f"OPENBLAS_CORETYPE={kernel}"):
            assert provide_dataset(ENV, "expert", 1, seed=21, **kw) == did


def test_parallel_collection_writes_the_serial_dataset(root):
    """Episodes rolled in two worker processes give, array for array, the dataset one process writes
    (careless: seeded noise and the manoeuvre picked by the episode's index; images as PNG)."""
    kw = {"camera_size": 32, "max_episode_steps": 60, "progress": False}  # long enough to grasp
    one = collect(ENV, 4, "careless", seed=9, id_override="safeadapt/par-one-v0", **kw)
    two = collect(ENV, 4, "careless", seed=9, id_override="safeadapt/par-two-v0", workers=2, **kw)
    assert (one.workers, two.workers) == (1, 2) and one.steps == two.steps
    a = _hdf5_arrays(Path(one.path) / "data" / "main_data.hdf5")
    b = _hdf5_arrays(Path(two.path) / "data" / "main_data.hdf5")
    assert sorted(a) == sorted(b) and any(k.endswith("observations/rgb") for k in a)
    for k in a:
        va, vb = a[k], b[k]
        if va.dtype == object:  # PNG frames: variable-length byte arrays
            assert all(np.array_equal(x, y) for x, y in zip(va, vb, strict=True)), k
        else:
            np.testing.assert_array_equal(va, vb, err_msg=k)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        collect(ENV, 1, "expert", workers=0, **kw)
    from safeadapt_bench.data.collect import MIN_PARALLEL_EPISODES, default_workers

    assert default_workers(MIN_PARALLEL_EPISODES - 1) == 1  # spawning costs more than it saves
    assert default_workers(MIN_PARALLEL_EPISODES) == len(os.sched_getaffinity(0))
