"""Every figure renders to PNG and PDF from records alone."""

from __future__ import annotations

import os

from harness_fixtures import toy_suite

from safeadapt_bench.harness.plots import curve_scores, make_plots
from safeadapt_bench.harness.records import load_records
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
