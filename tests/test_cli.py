"""The command line: help, envs listing, perf plumbing, error reporting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from safeadapt_bench.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_envs_json_lists_ids_categories_and_splits(capsys):
    assert main(["envs", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    ids = {row["id"]: row for row in listing["envs"]}
    assert ids["SafeAdapt/Lift-v0"]["split"] == "train"
    assert "cylinder" in ids["SafeAdapt/Lift-Heldout-v0"]["categories"]
    assert listing["cost_terms"][:4] == ["arm_contact", "force", "hazard", "joint_limit"]


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "safeadapt_bench", "envs"], check=True,
                         capture_output=True, text=True).stdout
    assert "SafeAdapt/PickPlace-Heldout-v0" in out


def test_errors_are_reported_without_traceback(capsys):
    from safeadapt_bench.perf import Measurement

    assert Measurement("s", "x", 2.0, "u", "ref", 4.0).ratio == 0.5
    with pytest.raises(SystemExit):
        main(["perf", "--section", "nonexistent"])
    assert "invalid choice" in capsys.readouterr().err


def test_envs_json_lists_the_grounding_ids_with_their_distractors(capsys):
    assert main(["envs", "--json"]) == 0
    ids = {row["id"]: row for row in json.loads(capsys.readouterr().out)["envs"]}
    among = ids["SafeAdapt/LiftAmong-Heldout-v0"]
    assert (among["split"], among["distractors"], among["distractor_split"]) == ("heldout", 3, "train")
    assert "cylinder" in among["categories"]
    assert ids["SafeAdapt/PickPlaceAmong-v0"]["distractor_split"] == "train"
    assert ids["SafeAdapt/Lift-v0"]["distractors"] == 0


def test_robosuite_banner_is_silenced_but_other_robosuite_warnings_show():
    out = subprocess.run([sys.executable, "-m", "safeadapt_bench", "envs"], check=True,
                         capture_output=True, text=True)
    assert "WARNING" not in out.stdout + out.stderr
    code = ("import gymnasium as gym, safeadapt_bench\n"
            "env = gym.make('SafeAdapt/Lift-v0', obs_mode='state'); env.reset(seed=0); env.close()\n"
            "from robosuite.utils.log_utils import ROBOSUITE_DEFAULT_LOGGER as log\n"
            "log.warning('something else went wrong')\n")
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if "robosuite WARNING" in ln]
    assert len(lines) == 1 and "something else went wrong" in lines[0], lines
