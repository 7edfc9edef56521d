"""Every figure renders to PNG and PDF from records alone, reproducibly, with paper conventions."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from harness_fixtures import toy_suite
from matplotlib.collections import PolyCollection

from safeadapt_bench.harness import plots
from safeadapt_bench.harness.plots import curve_scores, make_plots
from safeadapt_bench.harness.records import load_records
from safeadapt_bench.harness.suites import TaskSpec
from safeadapt_bench.harness.sweep import run_sweep


def test_plots_render_to_files(tmp_path):
    res = str(tmp_path / "res")
    run_sweep(toy_suite(seeds=(0, 1)), res, progress=False)
    records = load_records(res)
    out = str(tmp_path / "figs")
    written = make_plots(records, out, reps=30)
    expected = {
        "learning_curves_steps",
        "learning_curves_wall",
        "pareto",
        "generalisation",
        "category_success",
        "adaptation_time",
        "interval_estimates",
        "probability_of_improvement",
    }
    files = set(os.listdir(out))
    for name in expected:
        for ext in ("png", "pdf"):
            path = os.path.join(out, f"{name}.{ext}")
            assert f"{name}.{ext}" in files and os.path.getsize(path) > 1000, path
    with open(os.path.join(out, "pareto.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert all(paths for paths in written.values())


def test_curve_scores_share_a_grid(tmp_path):
    res = str(tmp_path / "res")
    run_sweep(toy_suite(seeds=(0, 1), agents=("random",)), res, progress=False)
    grid, scores = curve_scores(load_records(res), "success")
    assert grid[0] == 0 and grid[-1] == 120
    assert scores["random"].shape == (2, 2, len(grid))


# ---------------------------------------------------------------- figures for papers
@pytest.fixture(scope="module")
def mixed_records(tmp_path_factory):
    """``random`` with 3 seeds, ``shielded-random`` with 2 (its seed-2 record dropped), one task."""
    res = str(tmp_path_factory.mktemp("mixed") / "res")
    suite = toy_suite(seeds=(0, 1, 2), tasks=(TaskSpec("Lift", obs_mode="state"),), final_eval_episodes=5)
    run_sweep(suite, res, progress=False)  # 5 final episodes: every category of each split
    return [r for r in load_records(res) if not (r["config"]["agent"] == "shielded-random" and r["seed"] == 2)]


@pytest.fixture
def captured(monkeypatch):
    """Figures by name, as they were when saved."""
    figs = {}
    original = plots._save

    def save(fig, out_dir, name, *args, **kwargs):
        figs[name] = {"axes": fig.axes, "images": [im for ax in fig.axes for im in ax.images]}
        return original(fig, out_dir, name, *args, **kwargs)

    monkeypatch.setattr(plots, "_save", save)
    return figs


def _band_area(ax) -> float:
    """Total area of the filled bands (PolyCollections) of an axes."""
    total = 0.0
    for coll in ax.collections:
        if isinstance(coll, PolyCollection):
            for path in coll.get_paths():
                x, y = path.vertices[:, 0], path.vertices[:, 1]
                total += abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2
    return total


def test_success_axes_span_zero_to_one(mixed_records, tmp_path, captured):
    make_plots(mixed_records, str(tmp_path / "figs"), reps=20)
    assert captured["learning_curves_steps"]["axes"][0].get_ylim() == (0.0, 1.0)
    assert captured["generalisation"]["axes"][0].get_ylim() == (0.0, 1.0)
    assert captured["pareto"]["axes"][0].get_ylim() == (0.0, 1.0)  # success_heldout on y
    success_axes = [ax for ax in captured["interval_estimates"]["axes"] if "Success" in ax.get_title()]
    assert len(success_axes) == 2 and all(ax.get_xlim() == (0.0, 1.0) for ax in success_axes)
    assert captured["category_success"]["images"][0].get_clim() == (0.0, 1.0)


def test_bands_only_for_agents_with_three_seeds(mixed_records, tmp_path, captured):
    plots.plot_learning_curves(mixed_records, str(tmp_path), reps=20)
    cost_ax = captured["learning_curves_steps"]["axes"][1]
    bands = [c for c in cost_ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # one per agent, in the records' order: random (3 seeds), shielded-random (2)
    area = [_band_area(_single(cost_ax, b)) for b in bands]
    assert area[0] > 0 and area[1] == pytest.approx(0.0, abs=1e-12)
    lb = pd.DataFrame([{"agent": "a", "metric": "m", "iqm": 0.5, "ci_low": 0.2, "ci_high": 0.9, "n_runs": 3},
                       {"agent": "b", "metric": "m", "iqm": 0.5, "ci_low": 0.2, "ci_high": 0.9, "n_runs": 2}])
    assert plots._lb_get(lb, "a", "m") == (0.5, 0.2, 0.9)
    assert plots._lb_get(lb, "b", "m") == (0.5, 0.5, 0.5)  # no error bar from 2 seeds


def _single(ax, coll):
    """A stand-in axes holding only ``coll`` (for :func:`_band_area`)."""
    return SimpleNamespace(collections=[coll])


def test_category_heat_map_has_train_then_held_out_categories(mixed_records, tmp_path):
    from safeadapt_bench.envs.categories import SPLITS

    agents, cols, table = plots.category_success(mixed_records)
    assert agents == ["random", "shielded-random"]
    train, heldout = SPLITS["Lift"]["train"], SPLITS["Lift"]["heldout"]
    assert [c for s, c in cols if s == "train"] == sorted(train)
    assert [c for s, c in cols if s == "held-out"] == sorted(heldout)
    assert [s for s, _ in cols] == ["train"] * len(train) + ["held-out"] * len(heldout)
    j = cols.index(("held-out", sorted(heldout)[0]))
    values = [r["evaluations"]["heldout"]["success_by_category"].get(sorted(heldout)[0]) for r in mixed_records
              if r["config"]["agent"] == "random"]
    values = [v for v in values if v is not None]
    assert table[0, j] == pytest.approx(np.mean(values)) if values else np.isnan(table[0, j])
    paths = plots.plot_category_success(mixed_records, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["category_success.png", "category_success.pdf"]


def test_figures_are_byte_identical_when_rebuilt(mixed_records, tmp_path):
    first, second = str(tmp_path / "one"), str(tmp_path / "two")
    make_plots(mixed_records, first, reps=20)
    make_plots(mixed_records, second, reps=20)
    names = sorted(os.listdir(first))
    assert names == sorted(os.listdir(second)) and len(names) >= 16
    for name in names:
        with open(os.path.join(first, name), "rb") as a, open(os.path.join(second, name), "rb") as b:
            assert a.read() == b.read(), name
    with open(os.path.join(first, "pareto.pdf"), "rb") as f:
        pdf = f.read()
    assert b"CreationDate" not in pdf and b"matplotlib" not in pdf.lower()
    with open(os.path.join(first, "pareto.png"), "rb") as f:
        assert b"Software" not in f.read()
    svgs = []
    for out in (first, second):  # SVG too, when asked for
        fig = plots._pyplot().figure()
        fig.gca().plot([0, 1], [0, 1])
        (path,) = plots._save(fig, out, "line", formats=("svg",))
        with open(path, "rb") as f:
            svgs.append(f.read())
    assert svgs[0] == svgs[1] and b"<dc:date>" not in svgs[0]
