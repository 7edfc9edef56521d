"""The imitation table: rows on the real code path (tiny budgets), resuming, settings checks, errors."""

from __future__ import annotations

import json

import pytest
import torch

from safeadapt_bench.cli import main
from safeadapt_bench.harness.imitation import (
    ImitationSettings,
    check_representations,
    markdown_table,
    settings_dict,
)
from safeadapt_bench.harness.records import blas_kernel


def test_unknown_representation_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match="Unknown representation.*'lora-top'"):
        check_representations(["frozen", "lora-middle"])
    assert main(["imitation", "--representations", "nope", "--out", "unused.json"]) == 2
    assert "Unknown representation" in capsys.readouterr().err
    assert main(["imitation", "--agent-kwargs", "{pool_tokens: both", "--out", "unused.json"]) == 2
    assert "--agent-kwargs is not valid JSON" in capsys.readouterr().err
    assert main(["imitation", "--agent-kwargs", "[1]", "--out", "unused.json"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert main(["imitation", "--threads", "0", "--out", "unused.json"]) == 2
    assert "--threads must be a positive" in capsys.readouterr().err


def test_settings_round_trip_through_the_table_file():
    s = ImitationSettings(cameras=("front", "wrist"), logs="noisy")
    assert json.loads(json.dumps(settings_dict(s))) == settings_dict(s)  # the resume check compares these


def test_state_row_is_written_kept_on_resume_and_other_settings_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "data"))
    out = tmp_path / "table.json"
    args = ["imitation", "--representations", "state", "--demos", "2", "--updates", "20", "--eval-episodes", "1",
            "--cameras", "front", "--no-probe", "--threads", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert main(args) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    table = json.loads(out.read_text())
    (row,) = table["rows"]
    assert row["representation"] == "state" and row["updates"] == 20 and row["demos"] == 2
    assert 0.0 <= row["success_train"] <= 1.0 and 0.0 < row["safe_ratio"] <= 1.0
    assert row["val_bc"] is not None and table["settings"]["logs"] == "noisy"
    prov = row["provenance"]  # what the figures depend on beyond the settings
    assert prov["torch_threads"] == 1 and prov["blas_kernel"] == blas_kernel()
    assert prov["logs"]["blas_kernel"] == blas_kernel() and prov["logs"]["steps"] > 0
    assert "| state | state-bc | 2 | 20 |" in (tmp_path / "table.json.md").read_text()
    capsys.readouterr()
    assert main(args) == 0  # resumed: the row is kept, not recomputed
    assert "state: kept from" in capsys.readouterr().out
    assert json.loads(out.read_text()) == table
    assert main([*args[:-1], str(out), "--demos", "3"]) == 2  # other settings: refused, the table untouched
    assert "other settings" in capsys.readouterr().err
    assert json.loads(out.read_text()) == table


def test_markdown_table_prints_missing_values_as_na():
    row = {"representation": "frozen", "agent": "adapter", "demos": 2, "updates": 5, "pretrain_seconds": 1.0,
           "val_bc": None, "success_train": 0.5, "success_heldout": 0.25, "safe_ratio": 0.9, "forgetting": None}
    line = markdown_table([row]).splitlines()[-1]
    assert line == "| frozen | adapter | 2 | 5 | 1 | n/a | 0.50 | 0.25 | 0.900 | n/a |"


def test_rows_from_processes_side_by_side_are_all_kept(tmp_path):
    """Two runs sharing one --out: each re-reads the file before writing, so a row the other wrote
    after this one started is kept; a file switched to other settings meanwhile is refused."""
    from safeadapt_bench.harness.imitation import add_row

    out, s = tmp_path / "table.json", settings_dict(ImitationSettings())
    row = {"representation": "state", "agent": "state-bc", "demos": 2, "updates": 5, "pretrain_seconds": 1.0,
           "val_bc": 0.1, "success_train": 0.5, "success_heldout": 0.25, "safe_ratio": 0.9, "forgetting": None}
    add_row(out, s, row)  # the other process's row, written after ours started
    add_row(out, s, {**row, "representation": "frozen", "agent": "adapter"})
    table = json.loads(out.read_text())
    assert [r["representation"] for r in table["rows"]] == ["state", "frozen"]
    assert (tmp_path / "table.json.md").read_text().count("\n") == 4
    add_row(out, s, {**row, "success_train": 0.75})  # the same representation again: replaced, not doubled
    rows = json.loads(out.read_text())["rows"]
    assert [(r["representation"], r["success_train"]) for r in rows] == [("frozen", 0.5), ("state", 0.75)]
    with pytest.raises(FileExistsError, match="other settings"):
        add_row(out, {**s, "demos": 3}, row)


def test_state_view_picks_entries_and_moves_the_object_position_alike_in_both_of_its_entries():
    import numpy as np

    from safeadapt_bench.envs.base import STATE_DIM
    from safeadapt_bench.harness.imitation import StateView

    state = np.random.default_rng(1).normal(size=(5, STATE_DIM))
    full = StateView()(state)
    np.testing.assert_array_equal(full, state)
    sub = StateView(("object_pos", "eef_to_object"))(state)
    np.testing.assert_array_equal(sub, np.concatenate([state[:, 0:3], state[:, 17:20]], axis=1))
    noisy = StateView(None, noise=0.01, seed=3)(state)
    moved = noisy - state
    np.testing.assert_allclose(moved[:, 0:3], moved[:, 17:20])  # one locator error, seen in both entries
    assert 0.002 < np.abs(moved[:, 0:3]).mean() < 0.03
    np.testing.assert_array_equal(moved[:, 3:17], 0)  # nothing else moves
    np.testing.assert_array_equal(noisy, StateView(None, noise=0.01, seed=3)(state))  # seeded


def test_state_keys_and_noise_are_checked_and_old_tables_keep_their_settings(capsys):
    base = ["imitation", "--representations", "state", "--out", "unused.json"]
    assert main([*base, "--state-keys", "object_pose"]) == 2
    assert "state_keys must be distinct entries of the state" in capsys.readouterr().err
    assert main([*base, "--state-noise", "-0.01"]) == 2
    assert "state_noise must be a std in metres >= 0" in capsys.readouterr().err
    assert "state_keys" not in settings_dict(ImitationSettings())  # tables written before the option resume
    assert settings_dict(ImitationSettings(state_keys=("object_pos",), state_noise=0.01))["state_keys"] == [
        "object_pos"]


def test_a_row_is_kept_aside_when_its_table_changed_settings_while_it_ran(tmp_path, monkeypatch, capsys):
    import safeadapt_bench.harness.imitation as imitation

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "data"))
    out = tmp_path / "table.json"
    real_row = imitation.imitation_row

    def row_then_race(name, dataset, s, probe=None):
        row = real_row(name, dataset, s, probe)
        # another run (other seed) writes its table to the same --out while this row was computed
        out.write_text(json.dumps({"settings": {**settings_dict(s), "seed": 99}, "rows": []}))
        return row

    monkeypatch.setattr(imitation, "imitation_row", row_then_race)
    args = ["imitation", "--representations", "state", "--demos", "2", "--updates", "20", "--eval-episodes", "1",
            "--cameras", "front", "--no-probe", "--threads", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert main(args) == 2
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert "other settings" in err and "The row is kept in" in err
    (aside,) = tmp_path.glob("table.seed0-state-*.json")
    kept = json.loads(aside.read_text())
    assert kept["settings"]["seed"] == 0 and kept["rows"][0]["representation"] == "state"
    assert json.loads(out.read_text())["settings"]["seed"] == 99  # the other run's table is untouched


def test_eval_colours_are_checked_kept_in_the_settings_and_paint_only_the_evaluation_envs(capsys):
    from safeadapt_bench.harness.imitation import _make_env

    base = ["imitation", "--representations", "state", "--out", "unused.json"]
    assert main([*base, "--eval-colours", "{cylinder"]) == 2
    assert "--eval-colours is not valid JSON" in capsys.readouterr().err
    assert main([*base, "--eval-colours", '{"cylinder": [0.85, 0.15]}']) == 2
    assert "three numbers" in capsys.readouterr().err
    assert "eval_colours" not in settings_dict(ImitationSettings())  # older tables resume
    s = ImitationSettings(eval_colours={"cylinder": [0.85, 0.15, 0.1]})
    assert settings_dict(s)["eval_colours"] == {"cylinder": [0.85, 0.15, 0.1]}
    for evaluation in (False, True):
        env = _make_env(s.heldout_id, s, state=True, evaluation=evaluation)
        try:
            assert env.unwrapped.scene.painted.keys() == ({"cylinder"} if evaluation else set())
        finally:
            env.close()
