"""Devices: ``auto`` picks CUDA when torch sees a GPU (mocked here) and the CPU otherwise; suites and
``run --device`` override it; records state it; rendering takes EGL on a GPU machine. No GPU needed."""

from __future__ import annotations

import json
import os

import pytest
import torch
from harness_fixtures import toy_suite

from safeadapt_bench.cli import main
from safeadapt_bench.envs.rendering import choose_backend
from safeadapt_bench.harness.devices import check_device, resolve_device, takes_device
from safeadapt_bench.harness.records import load_records
from safeadapt_bench.harness.suites import SUITES, Suite, SuiteError, TaskSpec, load_suite_file
from safeadapt_bench.harness.sweep import run_sweep
from safeadapt_bench.harness.toy import make_env


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch believes it has one CUDA GPU (nothing is ever put on it in these tests)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Mocked GPU")


def test_auto_is_the_cpu_without_a_gpu(no_cuda):
    assert resolve_device("auto") == "cpu"
    assert resolve_device(" CPU ") == "cpu"


def test_auto_is_cuda_where_torch_sees_a_gpu(fake_cuda):
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match=r"sees 1 CUDA GPU"):
        resolve_device("cuda:1")


def test_cuda_without_a_gpu_and_bad_names_fail_clearly(no_cuda):
    with pytest.raises(ValueError, match=r"no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    for bad in ("gpu", "cuda:x", "", None, 0):
        with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
            check_device(bad)


def _toy_rgbd():
    return make_env("SafeAdapt/Lift-v0", obs_mode="rgbd", camera_size=8)


def test_reference_agent_runs_on_the_resolved_device(no_cuda):
    from safeadapt_bench.baselines.adapter import AdapterAgent

    env = _toy_rgbd()
    agent = AdapterAgent(env.observation_space, env.action_space, seed=0, net_arch=(8,))
    assert agent.device == "cpu" and agent.model.device.type == "cpu"
    assert "device" not in agent.config.to_dict()  # an execution choice, not part of the agent's config


def test_reference_agent_asks_sb3_for_cuda_when_auto_finds_a_gpu(fake_cuda, monkeypatch):
    import safeadapt_bench.baselines.common.agent as agent_module

    seen = {}

    class FakeSAC:
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)

        def set_logger(self, logger):
            seen["logger"] = logger

    monkeypatch.setattr(agent_module, "SafeSAC", FakeSAC)
    from safeadapt_bench.baselines.adapter import AdapterAgent

    env = _toy_rgbd()
    AdapterAgent(env.observation_space, env.action_space, seed=0)
    assert seen["device"] == "cuda"
    AdapterAgent(env.observation_space, env.action_space, seed=0, device="cpu")
    assert seen["device"] == "cpu"


def test_frames_move_to_the_device_but_indices_stay_on_the_cpu():
    from safeadapt_bench.baselines.common.agent import frames_on
    from safeadapt_bench.baselines.common.frames import LoggedFrames

    n = 5
    frames = LoggedFrames(tokens={"front": torch.zeros(n, 2, 4)}, obs={"proprio": torch.zeros(n, 3)},
                          actions=torch.zeros(n, 7), labels=torch.zeros(n, 7), costs=torch.zeros(n),
                          episode=torch.zeros(n, dtype=torch.long), step=torch.arange(n))
    assert frames_on(frames, "cpu") is frames
    moved = frames_on(frames, "meta")
    assert all(t.device.type == "meta" for t in (moved.tokens["front"], moved.obs["proprio"], moved.actions,
                                                 moved.labels, moved.costs))
    assert moved.episode.device.type == "cpu" and moved.step.device.type == "cpu"
    assert len(moved.window_starts(2)) == n - 1  # built on the CPU indices


def test_harness_passes_the_device_and_records_it(tmp_path, fake_cuda):
    agents = ("harness_fixtures:DeviceAgent", "random")
    res = str(tmp_path / "auto")
    run_sweep(toy_suite(agents=agents, seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),)), res,
              progress=False)
    by_agent = {r["config"]["agent"]: r for r in load_records(res)}
    device_rec = by_agent["harness_fixtures:DeviceAgent"]
    assert device_rec["provenance"]["device"] == "cuda"  # auto, with torch seeing a (mocked) GPU
    assert device_rec["agent_stats"]["pretrain"]["device"] == "cuda"
    assert "device" not in device_rec["config"]["agent_kwargs"]
    assert by_agent["random"]["provenance"]["device"] is None  # RandomAgent takes no device
    assert by_agent["random"]["provenance"]["mujoco_gl"] == os.environ.get("MUJOCO_GL")

    res_cpu = str(tmp_path / "cpu")
    suite = toy_suite(agents=agents[:1], seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),))
    run_sweep(suite.replace(device="cuda"), res_cpu, progress=False, device="cpu")  # the argument wins
    assert load_records(res_cpu)[0]["provenance"]["device"] == "cpu"
    assert takes_device(type("A", (), {"__init__": lambda self, *, device="auto": None}))
    assert not takes_device(type("B", (), {"__init__": lambda self, **kwargs: None}))


def test_suites_and_the_cli_choose_the_device(tmp_path, no_cuda, capsys):
    assert all(s.device == "auto" for s in SUITES.values())
    with pytest.raises(SuiteError, match="device must be"):
        Suite("x", agents=("random",), tasks=(TaskSpec(),), seeds=(0,), device="gpu")
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nagents = ["random"]\nseeds = [0]\ntasks = ["Lift"]\ndevice = "CPU"\n')
    assert load_suite_file(str(path)).device == "cpu"

    assert main(["run", "--suite", "quick", "--dry-run", "--device", "cpu", "--results", str(tmp_path / "q")]) == 0
    assert "device cpu" in capsys.readouterr().out
    assert main(["run", "--suite", "quick", "--dry-run", "--device", "tpu", "--results", str(tmp_path / "q")]) == 2
    assert "--device: device must be" in capsys.readouterr().err
    # cuda asked for on a machine without one: refused before anything is written
    res = tmp_path / "never"
    assert main(["run", "--suite", "smoke", "--device", "cuda", "--results", str(res)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err and not res.exists()


def test_rendering_takes_egl_on_a_gpu_machine_and_software_otherwise():
    assert choose_backend(None, gpu=True, osmesa=True) == "egl"
    assert choose_backend(None, gpu=False, osmesa=True) == "osmesa"
    assert choose_backend(None, gpu=False, osmesa=False) == "egl"  # Mesa's llvmpipe
    assert choose_backend("osmesa", gpu=True, osmesa=True) == "osmesa"  # MUJOCO_GL wins


def test_vit_b_32_option_reaches_the_loader_with_clear_errors():
    from safeadapt_bench.baselines.adapter import AdapterAgent
    from safeadapt_bench.baselines.common.config import AgentConfig
    from safeadapt_bench.harness.suites import VIT_B_32

    with pytest.raises(ValueError, match=r"backbone='ViT-B-32' needs backbone_pretrained.*laion2b_s34b_b79k"):
        AgentConfig(backbone="ViT-B-32")
    suite = SUITES["standard-vit-b-32"]
    assert all(spec.agent_kwargs.items() >= VIT_B_32.items() for spec in suite.cells())
    for agent in suite.agents:  # every reference agent accepts the option
        AgentConfig(**suite.agent_kwargs[agent])
    env = _toy_rgbd()
    # An unknown tag is refused by the loader before any download: proof that the option reaches it.
    with pytest.raises(ValueError, match="Unknown pretrained tag 'no-such-tag' for 'ViT-B-32'"):
        AdapterAgent(env.observation_space, env.action_space, backbone="ViT-B-32", backbone_pretrained="no-such-tag")
    kwargs = AdapterAgent(None, None, **VIT_B_32)._policy_kwargs()["features_extractor_kwargs"]
    assert (kwargs["backbone"], kwargs["pretrained"]) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert json.loads(json.dumps(suite.cells()[0].to_dict()))["agent_kwargs"] == suite.cells()[0].agent_kwargs
