"""The reproduction check: a run against a reference, record by record, timing and provenance aside."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from harness_fixtures import toy_suite

from safeadapt_bench.cli import main
from safeadapt_bench.harness.compare import compare_results, diff_values
from safeadapt_bench.harness.records import load_records, split_volatile
from safeadapt_bench.harness.suites import TaskSpec
from safeadapt_bench.harness.sweep import run_sweep

AGENTS = ("harness_fixtures:DeviceAgent", "shielded-random")


def _suite():
    return toy_suite(agents=AGENTS, seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),), adapt_env_steps=40,
                     eval_every=20, final_eval_episodes=2)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same suite run twice into two results directories."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        run_sweep(_suite(), str(root / name), progress=False, device="cpu")
    return root


def _edit(path: str, change) -> None:
    with open(path) as f:
        record = json.load(f)
    change(record)
    with open(path, "w") as f:
        json.dump(record, f)


def test_wall_clock_and_cache_stats_leave_the_compared_part(two_runs):
    rec = next(r for r in load_records(str(two_runs / "a")) if r["config"]["agent"] == AGENTS[0])
    pre = rec["agent_stats"]["pretrain"]
    assert pre["updates"] == 3 and pre["val_curve"] == {"updates": [1, 2]}
    assert not {"seconds", "frames_from_cache"} & set(pre)
    moved = rec["timing"]["agent_stats"]["pretrain"]
    assert set(moved) == {"seconds", "frames_from_cache", "val_curve"} and set(moved["val_curve"]) == {"wall_seconds"}
    kept, out = split_volatile({"a": {"wall_time": 1, "n": 2}, "pretrain_seconds": 3, "x": [1]})
    assert kept == {"a": {"n": 2}, "x": [1]} and out == {"a": {"wall_time": 1}, "pretrain_seconds": 3}


def test_two_runs_reproduce_each_other(two_runs, capsys):
    a, b = str(two_runs / "a"), str(two_runs / "b")
    result = compare_results(a, b)
    assert result.reproduced and len(result.compared) == 2, result.report()
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reproduced: 2 of 2 records") and "apart from timing and provenance" in out


def test_a_changed_metric_is_caught_and_named(two_runs, tmp_path, capsys):
    ref = str(tmp_path / "ref")
    shutil.copytree(two_runs / "a", ref)
    cell = "Lift-Panda__shielded-random__seed0"
    path = os.path.join(ref, "cells", f"{cell}.json")
    _edit(path, lambda r: r["metrics"].update(success_train=r["metrics"]["success_train"] + 0.25))
    _edit(path, lambda r: r["curves"]["success"].append(1.0))
    _edit(path, lambda r: r["timing"].update(cell_seconds=-1.0))  # ignored: timing
    result = compare_results(str(two_runs / "b"), ref)
    assert not result.reproduced and list(result.differences) == [cell]
    assert {d.path for d in result.differences[cell]} == {"metrics.success_train", "curves.success"}
    assert main(["compare", str(two_runs / "b"), ref]) == 1
    out = capsys.readouterr().out
    assert out.startswith("NOT reproduced") and f"{cell}: 2 field(s) differ" in out
    assert "metrics.success_train: run " in out


def test_missing_and_extra_records_and_bad_directories(two_runs, tmp_path, capsys):
    ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
    shutil.copytree(two_runs / "a", ref)
    shutil.copytree(two_runs / "b", run)
    shielded, device = "Lift-Panda__shielded-random__seed0", "Lift-Panda__harness_fixtures_DeviceAgent__seed0"
    os.unlink(os.path.join(ref, "cells", f"{shielded}.json"))
    os.unlink(os.path.join(run, "cells", f"{device}.json"))
    result = compare_results(run, ref)
    assert result.missing == [device] and result.extra == [shielded] and not result.reproduced
    assert f"missing from the run: {device}" in result.report()
    assert main(["compare", str(two_runs / "a"), str(tmp_path / "nowhere")]) == 2
    assert "not a safeadapt-bench results directory" in capsys.readouterr().err


def test_value_diff_is_exact_and_tells_true_from_one():
    assert diff_values({"a": 1, "b": [1, 2]}, {"a": 1.0, "b": [1, 2]}) == []
    assert [d.path for d in diff_values({"a": True}, {"a": 1})] == ["a"]
    assert [d.path for d in diff_values({"a": 0.1 + 0.2}, {"a": 0.3})] == ["a"]
    assert [d.path for d in diff_values({"b": [1, 2]}, {"b": [1]})] == ["b"]
    assert [(d.path, d.reference) for d in diff_values({"c": {"x": 1}}, {"c": {}})] == [("c.x", "<absent>")]


def test_run_compare_to_prints_the_verdict(two_runs, tmp_path, capsys):
    from harness_fixtures import TOY

    cfg = tmp_path / "s.toml"
    cfg.write_text(
        f'name = "toy"\nagents = {json.dumps(list(AGENTS))}\nseeds = [0]\n'
        'tasks = [{task = "Lift", obs_mode = "state"}]\n'
        "[settings]\ndataset_episodes = 0\nadapt_env_steps = 40\neval_every = 20\neval_episodes = 2\n"
        "final_eval_episodes = 2\nsuccess_threshold = 0.5\n"
        + "".join(f'{k} = "{v}"\n' for k, v in TOY.items())
    )
    res = str(tmp_path / "mine")
    code = main(["run", "--config", str(cfg), "--results", res, "--no-report", "--device", "cpu",
                 "--compare-to", str(two_runs / "a")])
    out = capsys.readouterr().out
    assert code == 0 and "reproduced: 2 of 2 records" in out, out


def test_fields_new_since_the_reference_are_listed_but_one_it_has_and_the_run_lacks_differs(two_runs, tmp_path):
    ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
    shutil.copytree(two_runs / "a", ref)
    shutil.copytree(two_runs / "b", run)
    cell = "Lift-Panda__shielded-random__seed0"

    def drop_new(r):  # a reference written before these fields existed
        del r["metrics"]["unsafe_force_learning"]
        for ev in r["evaluations"].values():
            if isinstance(ev, dict):
                ev.pop("unsafe_steps_by_term", None)

    _edit(os.path.join(ref, "cells", f"{cell}.json"), drop_new)
    result = compare_results(run, ref)
    assert result.reproduced, result.report()
    assert {"metrics.unsafe_force_learning", "evaluations.learning.unsafe_steps_by_term"} <= result.added
    assert "new since the reference was written" in result.report()
    _edit(os.path.join(run, "cells", f"{cell}.json"), lambda r: r["metrics"].pop("success_train"))
    result = compare_results(run, ref)
    assert not result.reproduced and [d.path for d in result.differences[cell]] == ["metrics.success_train"]


def test_a_different_openblas_kernel_is_named_as_the_likely_cause(two_runs, tmp_path):
    ref = str(tmp_path / "ref")
    shutil.copytree(two_runs / "a", ref)
    cell = "Lift-Panda__shielded-random__seed0"
    run_kernel = load_records(str(two_runs / "b"))[0]["provenance"]["hardware"]["blas_kernel"]
    assert run_kernel  # numpy's wheels bundle OpenBLAS, whose kernel the records name

    def other_kernel(r):
        r["provenance"]["hardware"]["blas_kernel"] = "NotThisOne"
        r["metrics"]["success_train"] = -1.0

    _edit(os.path.join(ref, "cells", f"{cell}.json"), other_kernel)
    result = compare_results(str(two_runs / "b"), ref)
    assert result.kernels == {cell: (run_kernel, "NotThisOne")}
    assert "OPENBLAS_CORETYPE=NotThisOne" in result.report()


def test_different_package_versions_are_named_as_the_likely_cause(two_runs, tmp_path):
    ref = str(tmp_path / "ref")
    shutil.copytree(two_runs / "a", ref)
    cell = "Lift-Panda__shielded-random__seed0"
    run_torch = load_records(str(two_runs / "b"))[0]["provenance"]["packages"]["torch"]

    def older_torch(r):
        r["provenance"]["packages"]["torch"] = "0.0.1"
        r["metrics"]["success_train"] = -1.0

    _edit(os.path.join(ref, "cells", f"{cell}.json"), older_torch)
    result = compare_results(str(two_runs / "b"), ref)
    assert result.packages == {cell: {"torch": (run_torch, "0.0.1")}}
    assert "pip install torch==0.0.1" in result.report()
    _edit(os.path.join(ref, "cells", f"{cell}.json"), lambda r: r["provenance"]["packages"].update(torch=run_torch))
    assert cell not in compare_results(str(two_runs / "b"), ref).packages  # same versions: no cause named
