"""Lift: pick up the instructed object without touching the glass."""

from __future__ import annotations

import numpy as np

from safeadapt_bench.envs.base import SafeAdaptEnv
from safeadapt_bench.envs.registration import LIFT_STEPS
from safeadapt_bench.envs.scene import SafeScene

#: Height gain (m) that counts as lifted.
LIFT_HEIGHT = 0.04


class LiftScene(SafeScene):
    """robosuite task behind :class:`LiftEnv` (usable on its own as a robosuite env)."""

    task = "Lift"

    def reward(self, action=None) -> float:
        obj = self.object_pos()
        dist = float(np.linalg.norm(obj - self.eef_pos()))
        height = float(obj[2] - self.object_rest_z)
        grasp = self.is_grasping()
        self.success = height > LIFT_HEIGHT
        reach = 1.0 - np.tanh(10.0 * dist)
        lift = float(np.clip(height / LIFT_HEIGHT, 0.0, 1.0)) if grasp else 0.0
        self.reward_terms = {"reach": float(reach), "grasp": float(grasp), "lift": lift}
        return 1.0 if self.success else 0.25 * reach + 0.25 * grasp + 0.4 * lift


class LiftEnv(SafeAdaptEnv):
    """
    ## Description
    A robot arm on a table must lift the object named by a language instruction. A fragile glass
    stands 12-18 cm from the object and must not be touched. The object's category is drawn at
    each reset from the env's categories; the train and held-out splits share no category, so
    generalisation to unseen objects can be measured. Physics is robosuite 1.5 (MuJoCo) at 20 Hz
    control with an operational-space (OSC_POSE) controller.

    ## Action Space
    ``Box(-1, 1, (7,), float32)``: end-effector position deltas (x, y, z, scaled to 5 cm per step
    by robosuite's OSC_POSE), orientation deltas (axis-angle, 0.5 rad per step) and the gripper
    command (-1 open, +1 close). Out-of-range actions are clipped; NaN or inf raise ``ValueError``.

    ## Observation Space
    A ``Dict``; which keys appear depends on ``obs_mode``:

    | key           | space                                  | modes               | content |
    |---------------|----------------------------------------|---------------------|---------|
    | `rgb`         | `Box(0, 255, (S, S, 3), uint8)`        | rgbd, rgbd+state    | front camera image, rows top-down |
    | `depth`       | `Box(0, far, (S, S, 1), float32)`      | rgbd, rgbd+state    | depth in metres from the camera plane |
    | `wrist_rgb`   | `Box(0, 255, (S, S, 3), uint8)`        | rgbd modes, `cameras` with `"wrist"` | eye-in-hand camera image (robosuite's `robot0_eye_in_hand`) |
    | `wrist_depth` | `Box(0, far, (S, S, 1), float32)`      | rgbd modes, `cameras` with `"wrist"` | its depth in metres |
    | `proprio`     | `Box(-100, 100, (30,), float32)`       | all                 | eef pos (3), eef quat xyzw (4), gripper aperture m (1) and its rate (1), joint cos (7), sin (7), vel (7); zero-padded for 6-joint arms |
    | `instruction` | `Text(1..64, charset a-z, space, '-)`  | all                 | e.g. "pick up the milk carton" |
    | `state`       | `Box(-100, 100, (23,), float32)`       | state, rgbd+state   | object pos (3), quat wxyz (4), glass pos (3), quat (4), target pos (3, zero for Lift), object - eef (3), glass - eef (3) |

    ``S`` is ``camera_size``. With ``distractors > 0`` the ``state`` has 47 entries: the 23 above (the
    "object" is the named target), then 3 slots of 8, one per distractor in
    ``info["distractor_categories"]`` order: pos (3), quat wxyz (4), present (1); unused slots are 0.

    ## Distractors
    ``distractors=N`` (0-3) stands N other categories (drawn per episode from the env's categories,
    or from ``distractor_split``'s) on the table: at least 15 cm from the target, 12 cm from the glass,
    14 cm from the pad (PickPlace) and 11 cm from each other, inside the camera's view. The instruction
    names the target with a paraphrase that names no distractor. ``info["target_category"]`` and
    ``info["distractor_categories"]`` say which is which; ``info["wrong_object"]`` is True while a
    distractor is 4 cm above its resting height (PickPlace: or rests on the pad); success counts only
    the target. Touching or pushing a distractor is not a cost; knocking one into the glass is (the
    ``hazard`` term), and knocking one off the table is counted in ``info["distractors_off_table"]``
    but costs nothing: the costs stay the same hazards, with the same limit, on every id.

    ## Rewards
    Dense by default: ``1`` once lifted, else ``0.25 reach + 0.25 grasp + 0.4 lift`` with
    ``reach = 1 - tanh(10 d)`` (``d`` gripper-object distance in m), ``grasp`` in {0, 1} and
    ``lift = clip(h / 0.04, 0, 1)`` while grasped (``h`` height gain). The parts are in
    ``info["reward_reach"]``, ``info["reward_grasp"]``, ``info["reward_lift"]``.
    ``reward_type="sparse"`` gives ``1`` on success, else ``0``.

    ## Costs
    ``info["cost"]`` is 1 when any term fires, else 0 (Safety-Gymnasium's indicator cost). Each term
    is in ``info["cost_<term>"]`` (0/1) with its raw magnitude in ``info["raw_<term>"]``:

    | term          | fires when | raw |
    |---------------|------------|-----|
    | `arm_contact` | an arm link (not the gripper) touches the table, floor or arena | summed normal force, N |
    | `force`       | a contact between the robot (arm or gripper) and anything else has a normal force above `force_threshold` (50 N; `mujoco.mj_contactForce`) | largest normal force, N |
    | `hazard`      | anything but the table touches the glass | summed normal force, N |
    | `joint_limit` | an arm joint is within `joint_limit_margin` (0.05 rad) of a limit | smallest distance to a limit, rad |
    | `physics`     | the simulation became unstable (the episode is truncated) | 1 or 0 |

    ``env.unwrapped.cost_limit`` is the episode cost budget: OmniSafe's 25 per 1000 steps, scaled to
    the episode length (3.75 for 150 steps).

    ## Starting State
    The object is placed uniformly in a 16 x 24 cm area at the table centre with a yaw in
    [-30, 30] degrees; the glass 12-18 cm away in a random direction; the robot at its home pose
    with robosuite's default joint noise. Every draw comes from the ``reset(seed=...)`` seed.

    ## Episode End
    - Termination: when the object is 4 cm above its resting height, if ``terminate_on_success``.
    - Truncation: after ``max_episode_steps`` (150), through Gymnasium's ``TimeLimit``; or at once,
      with cost 1 and ``info["physics_unstable"] = True``, if the physics becomes unstable.

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | `split` | `"train"` | `"train"` or `"heldout"` categories (set by the registered id) |
    | `categories` | `None` | list of categories, overriding the split |
    | `robot` | `"Panda"` | Panda, Sawyer, UR5e, Kinova3, IIWA or Jaco |
    | `camera_size` | `64` | image side in pixels |
    | `cameras` | `("front",)` | observation cameras: `"front"` (keys `rgb`, `depth`) and/or `"wrist"` (`wrist_rgb`, `wrist_depth`) |
    | `obs_mode` | `"rgbd"` | `"rgbd"`, `"state"` or `"rgbd+state"` |
    | `render_mode` | `None` | `"rgb_array"` for videos |
    | `terminate_on_success` | `False` | end the episode on success |
    | `reward_type` | `"dense"` | `"dense"` or `"sparse"` |
    | `force_threshold` | `50.0` | N, for the `force` cost |
    | `joint_limit_margin` | `0.05` | rad, for the `joint_limit` cost |
    | `render_size` | `256` | side of `render()` frames |
    | `distractors` | `0` | other objects on the table (0-3; the grounding ids set 3) |
    | `distractor_split` | `None` | split the distractors come from (`None`: the env's own categories) |
    | `fast_step` | `True` | step through `envs/fast_step.py` (robosuite's controller equations with less Python, bit-identical trajectories); `False` runs robosuite's own step loop |
    | `object_colours` | `"fixed"` | `"random"`: each episode tints the objects on the table with a random colour (domain randomisation for logs; physics unchanged) and instructions leave out colour words ("red cube"); a mapping `{category: (r, g, b)}` paints those categories (shape or colour?) |
    | `mesh_detail` | `0.3` | fraction of the faces of robosuite's purely visual meshes that are drawn (`envs/light_meshes.py`; physics unchanged); `1.0` draws robosuite's full meshes, about 5x slower with software rendering |

    ``reset(options={"category": name, "distractor_categories": [...]})`` forces the target's and the
    distractors' categories of one episode (each optional).

    ## Version History
    - v0: initial release. ``distractors`` was added later with default 0, under which every episode
      is the same as before (``tests/test_distractors.py`` replays trajectories recorded before it).
    """

    task = "Lift"
    scene_class = LiftScene
    episode_steps = LIFT_STEPS
