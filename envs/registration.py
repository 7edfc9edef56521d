"""Registration of the ``SafeAdapt/*`` ids with Gymnasium, as a flat list."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

#: Episode lengths at 20 Hz control.
LIFT_STEPS = 150
PICK_PLACE_STEPS = 250
#: Distractors on the table in the grounding ids (``*Among*``); ``distractors=`` overrides it (0 to 3).
GROUNDING_DISTRACTORS = 3


def register_envs() -> None:
    """Register every SafeAdapt id (once per process)."""
    if "SafeAdapt/Lift-v0" in registry:
        return
    register(id="SafeAdapt/Lift-v0", entry_point="safeadapt_bench.envs.lift:LiftEnv",
             max_episode_steps=LIFT_STEPS, kwargs={"split": "train"})
    register(id="SafeAdapt/Lift-Heldout-v0", entry_point="safeadapt_bench.envs.lift:LiftEnv",
             max_episode_steps=LIFT_STEPS, kwargs={"split": "heldout"})
    register(id="SafeAdapt/PickPlace-v0", entry_point="safeadapt_bench.envs.pick_place:PickPlaceEnv",
             max_episode_steps=PICK_PLACE_STEPS, kwargs={"split": "train"})
    register(id="SafeAdapt/PickPlace-Heldout-v0", entry_point="safeadapt_bench.envs.pick_place:PickPlaceEnv",
             max_episode_steps=PICK_PLACE_STEPS, kwargs={"split": "heldout"})
    # Grounding: the target among distractors, named only by the instruction. The held-out ids draw
    # held-out targets among train-category distractors.
    n = GROUNDING_DISTRACTORS
    register(id="SafeAdapt/LiftAmong-v0", entry_point="safeadapt_bench.envs.lift:LiftEnv",
             max_episode_steps=LIFT_STEPS, kwargs={"split": "train", "distractors": n})
    register(id="SafeAdapt/LiftAmong-Heldout-v0", entry_point="safeadapt_bench.envs.lift:LiftEnv",
             max_episode_steps=LIFT_STEPS, kwargs={"split": "heldout", "distractors": n, "distractor_split": "train"})
    register(id="SafeAdapt/PickPlaceAmong-v0", entry_point="safeadapt_bench.envs.pick_place:PickPlaceEnv",
             max_episode_steps=PICK_PLACE_STEPS, kwargs={"split": "train", "distractors": n})
    register(id="SafeAdapt/PickPlaceAmong-Heldout-v0", entry_point="safeadapt_bench.envs.pick_place:PickPlaceEnv",
             max_episode_steps=PICK_PLACE_STEPS,
             kwargs={"split": "heldout", "distractors": n, "distractor_split": "train"})


def registered_ids() -> list[str]:
    """All registered SafeAdapt ids, sorted."""
    return sorted(i for i in registry if i.startswith("SafeAdapt/"))
