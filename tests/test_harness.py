"""Harness: cell records, resume after a kill, executors agree, bad inputs give clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from harness_fixtures import TOY, replace_settings, toy_suite, toy_toml

from safeadapt_bench.agents import AgentResolutionError
from safeadapt_bench.cli import main
from safeadapt_bench.harness.cell import run_cell
from safeadapt_bench.harness.executors import LocalExecutor, make_executor
from safeadapt_bench.harness.metrics import METRICS, time_to_threshold
from safeadapt_bench.harness.records import (
    SCHEMA_VERSION,
    IncompatibleResultsError,
    RecordConflictError,
    ResultsDir,
    comparable,
    load_records,
)
from safeadapt_bench.harness.report import build_report
from safeadapt_bench.harness.suites import (
    QUICK_ADAPTER_FEATURES,
    QUICK_OBJECT_POINTS,
    QUICK_SAFE_RL,
    CellSpec,
    SuiteError,
    TaskSpec,
    get_suite,
    load_suite_file,
)
from safeadapt_bench.harness.sweep import run_sweep

NEEDS_RGB = """
import numpy as np
from safeadapt_bench.agents.simple import RandomAgent

class CameraAgent(RandomAgent):
    required_obs_keys = ("rgb", "instruction")
"""


def _snapshot(path: str) -> dict[str, bytes]:
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = f.read()
    return out


def test_cell_record_has_every_metric_and_safety_fields():
    suite = toy_suite(
        tasks=(TaskSpec("Lift", robot="Panda", target_robot="UR5e", obs_mode="state"),), seeds=(3,)
    )
    cells = suite.cells()
    rand, shield = (run_cell(c) for c in cells)
    for rec in (rand, shield):
        assert rec["schema_version"] == SCHEMA_VERSION and rec["seed"] == 3
        assert set(rec["metrics"]) >= {m for m, i in METRICS.items() if i.section == "metrics"}
        assert set(rec["timing"]) >= {m for m, i in METRICS.items() if i.section == "timing"}
        assert rec["curves"]["env_steps"][0] == 0 and rec["curves"]["env_steps"][-1] == 120
        assert len(rec["timing"]["curve_wall_seconds"]) == len(rec["curves"]["env_steps"])
        assert rec["metrics"]["adapt_env_steps"] == 120
        assert rec["evaluations"]["train"]["episodes"] == 3 and rec["evaluations"]["heldout"]["episodes"] == 3
        assert (
            rec["metrics"]["success_source_robot"] is not None
        )  # cross-embodiment: evaluated on the logs' robot
        assert rec["metrics"]["forgetting"] is None  # no backbone
        stats = rec["evaluations"]["learning"]["step_stats"]
        assert stats["steps"] == 120 and 0 <= stats["safe_steps"] <= 120
        assert rec["provenance"]["packages"]["gymnasium"] and "cpu" in rec["provenance"]["hardware"]
        assert rec["config"]["task"]["target_robot"] == "UR5e"
        # one video per split of the final evaluation, first episode, from env.render()
        files = rec.pop("_files")
        assert [(v["split"], v["camera"]) for v in rec["videos"]] == [
            ("train", "front"), ("heldout", "front"), ("source_robot", "front")]
        for v in rec["videos"]:
            assert v["frames"] == 21 and v["fps"] == 20 and v["every"] == 1 and files[v["path"]][4:8] == b"ftyp"
            assert v["path"] == f"videos/{rec['cell_id']}/{v['split']}-front.mp4"
        assert rec["timing"]["video_seconds"] > 0
        json.dumps(rec)
    assert rand["metrics"]["veto_rate_learning"] is None and rand["agent"]["uses_veto"] is False
    assert 0 < shield["metrics"]["veto_rate_learning"] < 1 and shield["metrics"]["veto_rate_deployment"] > 0
    # the veto removes every force cost of the toy env, so the shielded agent is at least as safe
    assert shield["metrics"]["safe_ratio_learning"] >= rand["metrics"]["safe_ratio_learning"]
    # same seed -> same record apart from timing and provenance
    again = run_cell(cells[0], videos=False)
    assert again.pop("_files") == {} and again.pop("videos") == []
    rand.pop("videos")
    assert comparable(again) == comparable(json.loads(json.dumps(rand)))


DEPLOY_AGENT = """
from safeadapt_bench.agents.simple import RandomAgent

class DeployAgent(RandomAgent):
    robots = []  # the robot of each env the harness deploys the agent on, in order

    def deploy_on(self, env):
        self.robots.append(env.unwrapped.robot)

    def act(self, obs, deterministic=True):
        assert self.robots, "acted before deploy_on"
        return super().act(obs, deterministic)
"""


def test_harness_deploys_the_agent_on_each_robot_before_it_acts(tmp_path, monkeypatch):
    (tmp_path / "sab_deploy_agent.py").write_text(DEPLOY_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = toy_suite(agents=("sab_deploy_agent:DeployAgent",), seeds=(0,),
                      tasks=(TaskSpec("Lift", robot="Panda", target_robot="UR5e", obs_mode="state"),))
    run_cell(suite.cells()[0], videos=False)
    from sab_deploy_agent import DeployAgent

    # 4 curve points on the target, adaptation, final train and held-out on it, then the logs' robot
    assert DeployAgent.robots == ["UR5e"] * 5 + ["UR5e"] * 2 + ["Panda"], DeployAgent.robots


def test_time_to_threshold_is_censored_when_never_reached():
    assert time_to_threshold([0, 10, 20], [0.0, 1.0, 2.0], [0.0, 0.6, 1.0], 0.5, 30, 3.0) == {
        "steps": 10,
        "seconds": 1.0,
        "censored": False,
    }
    assert time_to_threshold([0, 10], [0.0, 1.0], [0.0, 0.2], 0.5, 30, 3.0) == {
        "steps": 30,
        "seconds": 3.0,
        "censored": True,
    }


def test_missing_obs_keys_fail_before_running(tmp_path, monkeypatch):
    (tmp_path / "sab_camera_agent.py").write_text(NEEDS_RGB)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = toy_suite(agents=("sab_camera_agent:CameraAgent",), seeds=(0,))
    with pytest.raises(ValueError, match=r"needs observation key\(s\) \['rgb'\].*obs_mode='state'.*'rgbd'"):
        run_sweep(suite, str(tmp_path / "res"), progress=False)
    assert os.listdir(tmp_path / "res" / "cells") == []
    rgbd = suite.replace(tasks=(TaskSpec("Lift", obs_mode="rgbd", camera_size=8),))
    assert run_sweep(rgbd, str(tmp_path / "res2"), progress=False).completed == [
        "Lift-Panda__sab_camera_agent_CameraAgent__seed0"
    ]


def test_killed_sweep_resumes_to_the_same_records(tmp_path):
    cfg = toy_toml(str(tmp_path / "suite.toml"), cells_steps=15000, seeds=(0, 1, 2))
    res = str(tmp_path / "res")
    cmd = [sys.executable, "-m", "safeadapt_bench", "run", "--config", cfg, "--results", res, "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = os.path.join(res, "cells")
    deadline = time.time() + 120
    while time.time() < deadline and not (
        os.path.isdir(cells) and any(n.endswith(".json") and not n.startswith(".") for n in os.listdir(cells))
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {
        n: open(os.path.join(cells, n), "rb").read() for n in os.listdir(cells) if not n.startswith(".")
    }
    assert 1 <= len(before) < 6, "the kill should land mid-sweep"

    suite = load_suite_file(cfg)
    result = run_sweep(suite, res, progress=False)
    assert sorted(result.skipped) == sorted(n[:-5] for n in before) and len(result.completed) == 6 - len(
        before
    )
    for name, data in before.items():  # finished cells are neither recomputed nor rewritten
        assert open(os.path.join(cells, name), "rb").read() == data
    fresh = str(tmp_path / "fresh")
    run_sweep(suite, fresh, progress=False)
    assert [comparable(r) for r in load_records(res)] == [comparable(r) for r in load_records(fresh)]
    # a third run has nothing to do
    assert run_sweep(suite, res, progress=False).completed == []


def _state(pid: int) -> str | None:
    """A process's state letter from /proc (``"Z"``: a zombie), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid``, from /proc."""
    out = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and _alive(int(name)):
            out.append(int(name))
    return out


def test_terminated_run_stops_its_workers_and_keeps_its_records(tmp_path):
    """`kill` (SIGTERM) on `run --workers 2` stops the worker processes too (they used to compute on, orphaned,
    sharing the cores with whatever ran next), exits 130 and keeps the cells already written."""
    cfg = toy_toml(str(tmp_path / "suite.toml"), cells_steps=15000, seeds=(0, 1, 2))
    res = str(tmp_path / "res")
    cmd = [sys.executable, "-m", "safeadapt_bench", "run", "--config", cfg, "--results", res, "--no-report",
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cells = os.path.join(res, "cells")
    deadline = time.time() + 180
    while time.time() < deadline and not (
        os.path.isdir(cells) and any(n.endswith(".json") and not n.startswith(".") for n in os.listdir(cells))
    ):
        time.sleep(0.05)
    workers = [c for c in _children(proc.pid) if "spawn_main" in open(f"/proc/{c}/cmdline").read()]
    written = {n: open(os.path.join(cells, n), "rb").read() for n in os.listdir(cells) if n.endswith(".json")}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert len(workers) == 2 and 1 <= len(written) < 6
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "a worker outlived its run"
    for name, data in written.items():
        assert open(os.path.join(cells, name), "rb").read() == data


def test_process_pool_and_ray_give_the_same_records_as_local(tmp_path, monkeypatch):
    # A user agent given by a relative file path resolves in every worker (they get the driver's cwd).
    (tmp_path / "sab_user_shield.py").write_text(
        "from safeadapt_bench.agents.simple import ShieldedRandomAgent\n\n"
        "class UserShield(ShieldedRandomAgent):\n    pass\n"
    )
    monkeypatch.chdir(tmp_path)
    suite = toy_suite(
        agents=("random", "sab_user_shield.py:UserShield"),
        seeds=(0,),
        tasks=(TaskSpec("Lift", obs_mode="state"),),
    )
    run_sweep(suite, "local", LocalExecutor(), progress=False)
    run_sweep(suite, "pool", LocalExecutor(workers=2), progress=False)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_sweep(suite, "ray", make_executor("ray"), progress=False)
    finally:
        ray.shutdown()
    assert result.failed == {}
    local = load_records("local")
    assert len(local) == 2 and local[1]["agent"]["uses_veto"]
    for other in ("pool", "ray"):
        recs = load_records(other)
        assert [comparable(r) for r in recs] == [comparable(r) for r in local]
    assert {r["provenance"]["executor"] for r in load_records("ray")} == {"ray"}


def test_ray_missing_gives_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'safeadapt-bench\[ray\]'"):
        make_executor("ray")


def test_unknown_suite_agent_task_and_malformed_files(tmp_path, capsys):
    with pytest.raises(SuiteError, match="Unknown suite 'nope'.*'quick'.*'standard'"):
        get_suite("nope")
    assert main(["run", "--suite", "nope", "--results", str(tmp_path / "r")]) == 2
    assert "Unknown suite 'nope'" in capsys.readouterr().err
    bad_provider = toy_suite(dataset_episodes=5, dataset_provider="sab_nope:provide")
    with pytest.raises(ValueError, match="dataset_provider 'sab_nope:provide': cannot import 'sab_nope'"):
        run_sweep(bad_provider, str(tmp_path / "r0"), progress=False)
    assert os.listdir(tmp_path / "r0" / "cells") == []
    with pytest.raises(AgentResolutionError, match="Unknown agent 'no-such-agent'"):
        run_sweep(toy_suite(agents=("no-such-agent",)), str(tmp_path / "r1"), progress=False)
    assert (
        main(["run", "--suite", "smoke", "--agents", "no-such-agent", "--results", str(tmp_path / "r2")]) == 2
    )
    assert "Known agents" in capsys.readouterr().err
    assert main(["run", "--suite", "smoke", "--tasks", "Stack", "--dry-run"]) == 2
    assert "Unknown task(s) ['Stack']" in capsys.readouterr().err
    bad = {
        "broken.toml": ('agents = ["random"\n', "malformed TOML"),
        "broken.yaml": ("agents: [random\n", "malformed YAML"),
        "task.toml": ('agents = ["random"]\nseeds = [0]\ntasks = ["Stack"]\n', "Unknown task 'Stack'"),
        "key.toml": (
            'agents = ["random"]\nseeds = [0]\ntasks = ["Lift"]\nbudget = 3\n',
            r"unknown key\(s\) \['budget'\]",
        ),
        "settings.yaml": (
            "agents: [random]\nseeds: [0]\ntasks: [Lift]\nsettings: {adapt_steps: 3}\n",
            r"settings: unknown key\(s\) \['adapt_steps'\]",
        ),
        "missing.toml": ('agents = ["random"]\ntasks = ["Lift"]\n', "missing required key 'seeds'"),
        "suite.json": ("{}", "must end in .toml, .yaml or .yml"),
    }
    for name, (text, msg) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SuiteError, match=msg):
            load_suite_file(str(tmp_path / name))
    assert main(["run", "--config", str(tmp_path / "broken.toml")]) == 2
    assert "malformed TOML" in capsys.readouterr().err


def test_unwritable_and_foreign_and_incompatible_results_dirs(tmp_path):
    suite = toy_suite(seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),))
    (tmp_path / "file").write_text("x")
    with pytest.raises(PermissionError, match="Cannot write the results directory"):
        run_sweep(suite, str(tmp_path / "file" / "res"), progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a safeadapt-bench results directory"):
        run_sweep(suite, str(foreign), progress=False)
    assert os.listdir(foreign) == ["notes.txt"]

    res = tmp_path / "res"
    run_sweep(suite, str(res), progress=False)
    manifest = json.loads((res / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (res / "manifest.json").write_text(json.dumps(manifest))
    before = _snapshot(str(res))
    with pytest.raises(IncompatibleResultsError, match=f"schema version {SCHEMA_VERSION + 1}"):
        run_sweep(suite, str(res), progress=False)
    with pytest.raises(IncompatibleResultsError):
        load_records(str(res))
    assert main(["report", str(res)]) == 2
    assert _snapshot(str(res)) == before


def test_changed_config_never_overwrites_a_record(tmp_path):
    suite = toy_suite(seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),))
    res = str(tmp_path / "res")
    run_sweep(suite, res, progress=False)
    before = _snapshot(res)
    with pytest.raises(RecordConflictError, match="never overwritten"):
        run_sweep(replace_settings(suite, adapt_env_steps=60), res, progress=False)
    assert _snapshot(res) == before
    rd = ResultsDir(res)
    rec = load_records(res)[0]
    rd.write({**rec, "metrics": {}})  # same cell and config (a concurrent sweep): the first record stays
    assert _snapshot(res) == before
    with pytest.raises(RecordConflictError):
        rd.write({**rec, "config": {**rec["config"], "seed": 99}})
    assert _snapshot(res) == before


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    cfg = toy_toml(str(tmp_path / "suite.toml"))
    assert main(["run", "--config", cfg, "--results", str(tmp_path / "res"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 to run" in out and "Lift-Panda__shielded-random__seed1" in out
    assert not (tmp_path / "res").exists()
    assert main(["run", "--suite", "quick", "--dry-run", "--results", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    from safeadapt_bench.harness.suites import SUITES

    quick = SUITES["quick"]
    assert "safe-adapter" in out and f"{len(quick.agents) * len(quick.tasks) * len(quick.seeds)} to run" in out


def test_cli_run_and_report_end_to_end(tmp_path, capsys):
    cfg = toy_toml(str(tmp_path / "suite.toml"))
    res = str(tmp_path / "res")
    assert main(["run", "--config", cfg, "--results", res, "--no-report", "--seeds", "0"]) == 0
    assert "2 cell(s) run" in capsys.readouterr().out
    assert main(["report", res, "--reps", "50", "--no-plots"]) == 0
    assert "| random |" in capsys.readouterr().out


def test_cell_spec_roundtrip_and_named_suites():
    for name in ("smoke", "quick", "standard", "cross-embodiment"):
        suite = get_suite(name)
        for spec in suite.cells()[:3]:
            assert CellSpec.from_dict(spec.to_dict()) == spec
    xe = get_suite("cross-embodiment")
    assert all(t.target_robot and t.target_robot != t.robot for t in xe.tasks)
    quick, medium = get_suite("quick"), get_suite("medium")  # quick's logs and pre-training, 10x adaptation
    assert medium.agents == quick.agents
    (q,), (m,) = quick.tasks, medium.tasks  # the same logs; quick adapts on the UR5e, medium on the Panda
    assert (q.robot, q.target_robot, m.target_robot) == ("Panda", "UR5e", None)
    assert dataclasses.replace(q, target_robot=None) == m
    representation = {*QUICK_OBJECT_POINTS, *QUICK_ADAPTER_FEATURES, *QUICK_SAFE_RL}
    points = {a: {k: v for k, v in kw.items() if k not in representation} for a, kw in quick.agent_kwargs.items()}
    assert medium.agent_kwargs == points  # medium's records predate quick's object points
    # the adapter agents' object head reads the frozen backbone, their adapted embedding goes beside the points
    assert [a for a, kw in quick.agent_kwargs.items() if kw.get("locate_with_adapters") is False] == [
        "safe-adapter", "adapter"]
    assert all(kw["object_points"] and kw["proprio"] == "eef" for kw in quick.agent_kwargs.values())
    # the gate and the pre-trained reward critics are safe-rl's alone (they broke the adapter agents)
    assert [a for a, kw in quick.agent_kwargs.items() if kw.get("critic_pretrain")] == ["safe-rl"]
    assert quick.agent_kwargs["safe-rl"]["point_gate"] == 0.1
    assert medium.settings.adapt_env_steps == 3000 and quick.settings.adapt_env_steps == 1000
    ms, qs = medium.settings, quick.settings
    assert (ms.dataset_policy, ms.dataset_episodes) == ("noisy", qs.dataset_episodes)
    assert ms.pretrain_seconds == qs.pretrain_seconds
    assert TOY["env_factory"].endswith(":make_env")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("ref", ["quick", "quick-panda", "quick-object-points", "medium", "medium-critic-pretrain",
                                 "quick-adapters", "quick-veto-off", "quick-gate", "quick-critic", "quick-batch",
                                 "medium-ur5e"])
def test_committed_references_are_what_their_suites_run(ref):
    """Each committed record's config is the one its suite (named, or the suite file beside it) gives that cell
    today, so `run ... --compare-to results/<ref>` can reproduce it."""
    path = os.path.join(REPO, "results", ref)
    toml = os.path.join(path, "suite.toml")
    suite = load_suite_file(toml) if os.path.exists(toml) else get_suite(ref)
    specs = {c.cell_id: c.to_dict() for c in suite.cells()}
    cells = sorted(os.listdir(os.path.join(path, "cells")))
    assert cells, f"results/{ref} holds no records"
    for name in cells:
        with open(os.path.join(path, "cells", name)) as f:
            rec = json.load(f)
        assert rec["config"] == specs[rec["cell_id"]], rec["cell_id"]
    # and holds every cell of it (`make quick` compares each cell of the suite with these records)
    assert sorted(n.removesuffix(".json") for n in cells) == sorted(specs)


FLAKY_AGENT = '''
import os
from safeadapt_bench.agents.simple import RandomAgent

class FlakyAgent(RandomAgent):
    """Fails in adapt() while the file named by $SAB_FAIL exists."""

    def adapt(self, env, budget, callback=None):
        if os.path.exists(os.environ["SAB_FAIL"]):
            raise RuntimeError("adapt exploded")
        return super().adapt(env, budget, callback)
'''


def test_failed_cell_is_reported_kept_out_and_retried(tmp_path, monkeypatch):
    (tmp_path / "sab_flaky_agent.py").write_text(FLAKY_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    flag = tmp_path / "fail"
    flag.write_text("1")
    monkeypatch.setenv("SAB_FAIL", str(flag))
    suite = toy_suite(
        agents=("random", "sab_flaky_agent:FlakyAgent"),
        seeds=(0,),
        tasks=(TaskSpec("Lift", obs_mode="state"),),
    )
    res = str(tmp_path / "res")
    first = run_sweep(suite, res, progress=False)
    assert first.completed == ["Lift-Panda__random__seed0"]
    ((failed_id, tb),) = first.failed.items()
    assert "adapt exploded" in tb
    assert os.path.exists(os.path.join(res, "errors", failed_id + ".json"))
    assert len(load_records(res)) == 1
    flag.unlink()
    second = run_sweep(suite, res, progress=False)
    assert second.completed == [failed_id] and second.skipped == ["Lift-Panda__random__seed0"]
    assert not os.path.exists(os.path.join(res, "errors", failed_id + ".json"))


FORGETFUL_AGENT = '''
from types import SimpleNamespace
from safeadapt_bench.agents.simple import RandomAgent

class ForgetfulAgent(RandomAgent):
    """Its "backbone" loses probe accuracy while adapting."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.net = SimpleNamespace(acc=0.9)

    def backbone(self):
        return self.net

    def adapt(self, env, budget, callback=None):
        self.net.acc = 0.6
        return super().adapt(env, budget, callback)

def probe(backbone):
    return {"top1": backbone.acc, "chance": 0.1}
'''


def test_forgetting_is_measured_with_a_pluggable_probe(tmp_path, monkeypatch):
    (tmp_path / "sab_forgetful.py").write_text(FORGETFUL_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = toy_suite(
        agents=("sab_forgetful:ForgetfulAgent", "random"),
        seeds=(0,),
        tasks=(TaskSpec("Lift", obs_mode="state"),),
        probe="sab_forgetful:probe",
    )
    forgetful, plain = (run_cell(c) for c in suite.cells())
    assert forgetful["metrics"]["probe_initial"] == 0.9 and forgetful["metrics"]["probe_final"] == 0.6
    assert forgetful["metrics"]["forgetting"] == pytest.approx(0.3)
    assert forgetful["evaluations"]["probe"]["final"] == {"top1": 0.6, "chance": 0.1}
    assert plain["metrics"]["forgetting"] is None  # no backbone
    # a callable probe can be injected directly too
    rec = run_cell(suite.cells()[0], probe=lambda b: b.acc / 2)
    assert rec["metrics"]["forgetting"] == pytest.approx(0.15)


def test_aliases_run_variants_of_one_agent(tmp_path):
    (tmp_path / "variants.toml").write_text(
        'agents = ["random", "random-still"]\nseeds = [0]\ntasks = [{task = "Lift", obs_mode = "state"}]\n'
        '[aliases]\nrandom-still = "random"\n[agent_kwargs.random-still]\nscale = 0.0\n'
        "[settings]\ndataset_episodes = 0\nadapt_env_steps = 40\neval_every = 20\neval_episodes = 1\n"
        'final_eval_episodes = 1\nenv_factory = "safeadapt_bench.harness.toy:make_env"\nprobe = "none"\n'
    )
    suite = load_suite_file(str(tmp_path / "variants.toml"))
    assert run_sweep(suite, str(tmp_path / "res"), progress=False).failed == {}
    still, plain = load_records(str(tmp_path / "res"))  # sorted by cell id
    assert plain["agent"]["class"] == still["agent"]["class"] == "safeadapt_bench.agents.simple:RandomAgent"
    assert still["config"]["agent_target"] == "random" and still["config"]["agent_kwargs"] == {"scale": 0.0}
    # zero actions never press down, so the still variant has no force cost
    assert still["metrics"]["safe_ratio_learning"] >= plain["metrics"]["safe_ratio_learning"]
    with pytest.raises(SuiteError, match="not another alias"):
        suite.replace(aliases={"a": "b", "b": "random"})


def test_save_agent_writes_a_loadable_checkpoint(tmp_path):
    from safeadapt_bench.agents.simple import ShieldedRandomAgent

    suite = toy_suite(
        agents=("shielded-random",), seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),), save_agent=True
    )
    res = tmp_path / "res"
    run_sweep(suite, str(res), progress=False)
    (rec,) = load_records(str(res))
    assert rec["agent"]["checkpoint"] == "agents/Lift-Panda__shielded-random__seed0/agent"
    agent = ShieldedRandomAgent.load(str(res / rec["agent"]["checkpoint"]))
    assert agent.act(None).shape == (7,)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_records_and_reports_honour_the_umask(tmp_path, umask, mode):
    suite = toy_suite(seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),), agents=("random",))
    old = os.umask(umask)
    try:
        run_sweep(suite, str(tmp_path / "res"), progress=False)
        build_report(str(tmp_path / "res"), plots=False)
    finally:
        os.umask(old)
    files = [os.path.join(d, n) for d, _, names in os.walk(tmp_path / "res") for n in names]
    assert any("/cells/" in f for f in files) and any("/report/" in f for f in files)
    assert {f: oct(os.stat(f).st_mode & 0o777) for f in files} == {f: oct(mode) for f in files}


BAR_AGENT = """import sys
from tqdm import tqdm
from safeadapt_bench.agents.simple import RandomAgent

class BarAgent(RandomAgent):
    def pretrain(self, dataset, budget):
        for _ in tqdm(range(50), desc="my own bar", disable=False):
            pass
        print("a line of my own", file=sys.stderr)
        return super().pretrain(dataset, budget)
"""


def test_two_worker_progress_without_a_tty_is_one_line_per_cell_event_in_order(tmp_path, capfd, monkeypatch):
    (tmp_path / "sab_bar_agent.py").write_text(BAR_AGENT)
    monkeypatch.chdir(tmp_path)
    suite = toy_suite(agents=("random", "sab_bar_agent.py:BarAgent"), seeds=(0, 1),
                      tasks=(TaskSpec("Lift", obs_mode="state"),))
    result = run_sweep(suite, str(tmp_path / "res"), LocalExecutor(workers=2))
    out, err = capfd.readouterr()
    assert len(result.completed) == 4 and "\r" not in out + err and "━" not in out and "…" not in out
    # the workers drew nothing: their bars are dropped, their plain lines pass
    assert "my own bar" not in err and err.count("a line of my own") == 2
    lines = out.splitlines()
    parsed = [re.fullmatch(r"\[ *(\d+):(\d\d)\] (\S+): (.+)", ln) for ln in lines]
    assert all(parsed), [ln for ln, m in zip(lines, parsed) if not m]
    times = [int(m[1]) * 60 + int(m[2]) for m in parsed]
    assert times == sorted(times)
    by_cell: dict[str, list[str]] = {}
    for m in parsed:
        by_cell.setdefault(m[3], []).append(m[4])
    assert sorted(by_cell) == sorted(s.cell_id for s in suite.cells())
    for events in by_cell.values():
        evals = [e for e in events if e.endswith("evaluating")]
        assert events[:4] == ["start", "dataset", "pretrain", "adapt"] and len(evals) == 4
        assert events[4:12:2] == evals and events[12:14] == ["evaluate", "video"] and events[-1].startswith("done (")
        for asked, told in zip(evals, events[5:13:2]):  # each curve point's result follows its evaluation
            assert re.fullmatch(asked.split(",")[0] + r": success \d\.\d\d, episodic cost \d+\.\d\d", told), told
    done = [m[4] for m in parsed if m[4].startswith("done (")]
    assert [d.split()[1] for d in done] == ["(1/4", "(2/4", "(3/4", "(4/4"]


def test_long_episodes_are_filmed_every_kth_step_with_the_last_frame():
    import gymnasium as gym

    from safeadapt_bench.agents.simple import RandomAgent
    from safeadapt_bench.harness.monitor import MAX_FILM_FRAMES, Film, evaluate
    from safeadapt_bench.harness.toy import ToySafeEnv

    inner = ToySafeEnv(render_mode="rgb_array")
    inner.spec = gym.envs.registration.EnvSpec("Toy-v0", max_episode_steps=100)  # what gym.make gives
    env = gym.wrappers.TimeLimit(inner, 100)
    film = Film()
    res = evaluate(RandomAgent(env.observation_space, env.action_space, seed=0), env, 2, seed=0, film=film)
    assert res["episodes"] == 2 and film.every == 3 and film.fps(20) == pytest.approx(20 / 3)
    assert len(film.frames["front"]) == 35 <= MAX_FILM_FRAMES  # steps 0, 3, ..., 99 and the last (100)
    assert film.frames["front"][0].shape == (64, 64, 3) and "wrist" not in film.frames


def test_videos_default_per_suite_and_stay_out_of_the_cell_config(tmp_path):
    assert get_suite("quick").videos and not get_suite("smoke").videos  # smoke: filming measured at 12.7%
    base = open(toy_toml(str(tmp_path / "a.toml"))).read()
    (tmp_path / "off.toml").write_text("videos = false\n" + base)
    (tmp_path / "bad.toml").write_text("videos = 3\n" + base)
    off = load_suite_file(str(tmp_path / "off.toml"))
    assert off.videos is False and [c.to_dict() for c in off.cells()] == [
        c.to_dict() for c in load_suite_file(str(tmp_path / "a.toml")).cells()]
    with pytest.raises(SuiteError, match="'videos' must be true or false"):
        load_suite_file(str(tmp_path / "bad.toml"))
    one = off.replace(seeds=(0,), agents=("random",))
    run_sweep(one, str(tmp_path / "res"), progress=False)
    (rec,) = load_records(str(tmp_path / "res"))
    assert rec["videos"] == [] and not os.path.exists(tmp_path / "res" / "videos")


def test_report_lists_agents_in_the_order_of_the_suite_that_wrote_the_records(tmp_path):
    res = str(tmp_path / "res")
    suite = toy_suite(agents=("shielded-random", "random"), seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),))
    run_sweep(suite, res, progress=False)
    assert json.load(open(os.path.join(res, "manifest.json")))["agent_order"] == ["shielded-random", "random"]
    default = build_report(res, str(tmp_path / "default"), reps=20, plots=False)
    table = open(os.path.join(default, "leaderboard.md")).read()
    assert table.index("shielded-random") < table.index("| random")  # not the cell ids' alphabetical order
    explicit = build_report(res, str(tmp_path / "explicit"), reps=20, plots=False,
                            agent_order=["shielded-random", "random"])
    assert open(os.path.join(explicit, "leaderboard.md")).read() == table
    reverse = build_report(res, str(tmp_path / "reverse"), reps=20, plots=False, agent_order=["random"])
    assert open(os.path.join(reverse, "leaderboard.md")).read() != table  # --order still wins
    # A later sweep with another agent keeps the recorded order and appends the new one.
    ResultsDir(res).note_agent_order(["random", "extra"])
    assert json.load(open(os.path.join(res, "manifest.json")))["agent_order"] == ["shielded-random", "random", "extra"]
