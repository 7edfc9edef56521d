"""The Gymnasium environment shared by every SafeAdapt task family."""

from __future__ import annotations

import contextlib
import random
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from safeadapt_bench.envs import distractors as dx
from safeadapt_bench.envs.categories import (
    INSTRUCTION_CHARSET,
    INSTRUCTION_MAX_LENGTH,
    check_object_colours,
    instructions,
    resolve_categories,
)
from safeadapt_bench.envs.costs import COST_TERMS, CostMonitor
from safeadapt_bench.envs.light_meshes import FACE_FRACTION, check_fraction

#: Observation cameras (``cameras=``): the fixed front view and the robot's eye-in-hand view.
CAMERA_NAMES: tuple[str, ...] = ("front", "wrist")
#: Observation keys of each camera's RGB and depth images (the front view keeps the plain names).
CAMERA_KEYS: dict[str, tuple[str, str]] = {"front": ("rgb", "depth"), "wrist": ("wrist_rgb", "wrist_depth")}

ROBOTS: tuple[str, ...] = ("Panda", "Sawyer", "UR5e", "Kinova3", "IIWA", "Jaco")
OBS_MODES: tuple[str, ...] = ("rgbd", "state", "rgbd+state")
#: Proprioception layout (30 floats, the same for every robot; arms with fewer joints are zero-padded).
PROPRIO_LAYOUT = {"eef_pos": 3, "eef_quat": 4, "gripper_aperture": 1, "gripper_aperture_vel": 1,
                  "joint_cos": 7, "joint_sin": 7, "joint_vel": 7}
PROPRIO_DIM = sum(PROPRIO_LAYOUT.values())
#: Privileged state layout (state modes only).
STATE_LAYOUT = {"object_pos": 3, "object_quat": 4, "hazard_pos": 3, "hazard_quat": 4, "target_pos": 3,
                "eef_to_object": 3, "eef_to_hazard": 3}
STATE_DIM = sum(STATE_LAYOUT.values())
#: With ``distractors > 0``, ``state`` appends one slot per possible distractor (``dx.SLOT_LAYOUT``: pos 3,
#: quat wxyz 4, present 1), padded with zeros to ``dx.MAX_DISTRACTORS`` slots, whatever N: 23 + 24 = 47.
GROUNDING_STATE_DIM = STATE_DIM + dx.DISTRACTOR_STATE_DIM
_BOUND = 100.0
#: Safety-Gymnasium / OmniSafe convention: a cost limit of 25 per 1000 steps.
COST_LIMIT_PER_1000_STEPS = 25.0


def _check_cameras(cameras: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """``cameras`` as a tuple of known, distinct camera names; a clear error otherwise."""
    cams = (cameras,) if isinstance(cameras, str) else tuple(cameras)
    unknown = [c for c in cams if c not in CAMERA_NAMES]
    if unknown or not cams or len(set(cams)) != len(cams):
        raise ValueError(f"cameras must be distinct names from {list(CAMERA_NAMES)} (at least one), "
                         f"got {list(cams)}; e.g. cameras=('front', 'wrist') or cameras=('front',).")
    return cams


@contextlib.contextmanager
def _global_rngs(seed: int):
    """Seed numpy's and Python's global generators for a block, then restore them."""
    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


class SafeAdaptEnv(gym.Env):
    """Base class: a :class:`~safeadapt_bench.envs.scene.SafeScene` behind Gymnasium's API.

    Subclasses set ``task`` and ``scene_class`` and document themselves.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    task: ClassVar[str]
    scene_class: ClassVar[type]
    #: Registered ``max_episode_steps``.
    episode_steps: ClassVar[int]

    def __init__(
        self,
        split: str = "train",
        categories: list[str] | tuple[str, ...] | None = None,
        robot: str = "Panda",
        camera_size: int = 64,
        obs_mode: str = "rgbd",
        render_mode: str | None = None,
        terminate_on_success: bool = False,
        reward_type: str = "dense",
        force_threshold: float = 50.0,
        joint_limit_margin: float = 0.05,
        render_size: int = 256,
        cameras: tuple[str, ...] | list[str] | str = ("front",),
        distractors: int = 0,
        distractor_split: str | None = None,
        fast_step: bool = True,
        object_colours: str = "fixed",
        mesh_detail: float = FACE_FRACTION,
    ):
        self.cameras = _check_cameras(cameras)
        painted = check_object_colours(object_colours)
        self.object_colours = object_colours
        self.mesh_detail = check_fraction(mesh_detail)
        self.categories = resolve_categories(self.task, split, categories)
        self.distractor_pool = dx.distractor_pool(self.task, self.categories, distractor_split)
        self.distractors = dx.check_distractors(distractors, self.categories, self.distractor_pool)
        if robot not in ROBOTS:
            raise ValueError(f"Unknown robot {robot!r}; choose one of {list(ROBOTS)}.")
        for name, size in (("camera_size", camera_size), ("render_size", render_size)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
                raise ValueError(f"{name} must be a positive integer number of pixels, got {size!r}.")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"Unknown obs_mode {obs_mode!r}; choose one of {list(OBS_MODES)}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"Unsupported render_mode {render_mode!r}; use one of "
                             f"{self.metadata['render_modes']} or None.")
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"Unknown reward_type {reward_type!r}; choose 'dense' or 'sparse'.")
        if force_threshold <= 0 or joint_limit_margin < 0:
            raise ValueError("force_threshold must be > 0 N and joint_limit_margin >= 0 rad.")
        self.split, self.robot, self.obs_mode = split, robot, obs_mode
        self.camera_size, self.render_size = int(camera_size), int(render_size)
        self.render_mode = render_mode
        self.terminate_on_success, self.reward_type = bool(terminate_on_success), reward_type
        self._use_camera = "rgbd" in obs_mode
        scene_categories = self.categories  # every object lives in the model; distractors add the pool's
        if self.distractors:
            scene_categories += tuple(c for c in self.distractor_pool if c not in self.categories)
        self.scene = self.scene_class(robots=robot, categories=scene_categories, camera_size=self.camera_size,
                                      use_camera_obs=self._use_camera, cameras=self.cameras,
                                      has_offscreen_renderer=render_mode == "rgb_array",
                                      random_colours=object_colours == "random", painted=painted,
                                      mesh_detail=self.mesh_detail)
        #: Whether steps go through the fast, bit-identical loop (:mod:`~safeadapt_bench.envs.fast_step`).
        self.fast_step = bool(fast_step) and self.scene.enable_fast_step()
        self.costs = CostMonitor(self.scene, force_threshold, joint_limit_margin)
        # a random tint, or another colour, would contradict "the red cube"
        self._instructions = {c: instructions(self.task, c, object_colours != "random" and c not in painted)
                              for c in self.categories}
        self._finger_geoms = self._gripper_finger_geoms()
        self._n_joints = len(self.scene.robots[0]._ref_joint_pos_indexes)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.scene.action_dim,), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        self._category = self.categories[0]
        self._instruction = ""
        self._distractor_categories: tuple[str, ...] = ()
        self._prev_aperture = 0.0
        self._needs_reset = True

    # ------------------------------------------------------------------ spaces
    def _make_observation_space(self) -> spaces.Dict:
        s = self.camera_size
        obs: dict[str, spaces.Space] = {}
        if self._use_camera:
            m = self.scene.sim.model
            self._near = m.vis.map.znear * m.stat.extent
            self._far = m.vis.map.zfar * m.stat.extent
            for cam in self.cameras:
                rgb_key, depth_key = CAMERA_KEYS[cam]
                obs[rgb_key] = spaces.Box(0, 255, (s, s, 3), np.uint8)
                obs[depth_key] = spaces.Box(0.0, float(self._far), (s, s, 1), np.float32)
        obs["proprio"] = spaces.Box(-_BOUND, _BOUND, (PROPRIO_DIM,), np.float32)
        obs["instruction"] = spaces.Text(max_length=INSTRUCTION_MAX_LENGTH, min_length=1,
                                         charset=INSTRUCTION_CHARSET)
        if "state" in self.obs_mode:
            dim = GROUNDING_STATE_DIM if self.distractors else STATE_DIM
            obs["state"] = spaces.Box(-_BOUND, _BOUND, (dim,), np.float32)
        return spaces.Dict(obs)

    def _gripper_finger_geoms(self) -> tuple[list[int], list[int]]:
        g = self.scene.gripper
        m = self.scene.sim.model
        sides = []
        for side in ("left", "right"):
            names = g.important_geoms.get(f"{side}_fingerpad") or g.important_geoms[f"{side}_finger"]
            sides.append([m.geom_name2id(n) for n in names])
        return sides[0], sides[1]

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options={"category": name, "distractor_categories": [...]}`` forces the
        target's category and the distractors' (each optional)."""
        super().reset(seed=seed)
        options = dict(options or {})
        category = options.pop("category", None)
        forced = options.pop("distractor_categories", None)
        if options:
            raise ValueError(f"Unknown reset options {sorted(options)}; the options are 'category' and "
                             "'distractor_categories'.")
        if category is None:
            category = self.categories[int(self.np_random.integers(len(self.categories)))]
        elif category not in self.categories:
            raise ValueError(f"Category {category!r} is not in this env's categories {list(self.categories)}; "
                             "make the env with categories=[...] or the other split to use it.")
        paraphrases = self._instructions[category]
        if forced is not None:
            self._distractor_categories = dx.check_forced(forced, category, self.distractor_pool, self.distractors)
        else:  # no draw without distractors: the distractor-free ids keep their seeded episodes
            self._distractor_categories = (dx.choose(self.np_random, category, self.distractor_pool, self.distractors)
                                           if self.distractors else ())
        paraphrases = dx.unambiguous(paraphrases, self._distractor_categories)
        self._instruction = paraphrases[int(self.np_random.integers(len(paraphrases)))]
        self._category = category
        scene_seed = int(self.np_random.integers(2**63 - 1))
        self.scene.rng.bit_generator.state = np.random.PCG64(scene_seed).state
        self.scene.active_category = category
        self.scene.distractor_categories = self._distractor_categories
        self.scene.make_render_current()
        with _global_rngs(scene_seed):
            rs_obs = self.scene.reset()
        self.costs.reset()
        self._prev_aperture = self._aperture()
        self._needs_reset = False
        info = {"category": category, "instruction": self._instruction, "success": False,
                **self._grounding_info(), "wrong_object": False}
        return self._observation(rs_obs), info

    def step(self, action):
        if self._needs_reset:
            raise gym.error.ResetNeeded(
                "Cannot call step() before reset(), or after the physics became unstable; call reset().")
        action = self._check_action(action)
        self.scene.make_render_current()
        try:
            rs_obs, reward, _, _ = self.scene.step(action)
            unstable = self.costs.physics_unstable()
        except (np.linalg.LinAlgError, FloatingPointError):  # controller broke on a bad state
            unstable, reward = True, 0.0
        reading = self.costs.read(unstable=unstable)
        success = bool(self.scene.success) and not unstable
        if unstable:
            self._needs_reset = True
            reward = 0.0
            obs = self._observation(None)
        else:
            obs = self._observation(rs_obs)
            if self.reward_type == "sparse":
                reward = float(success)
        info: dict[str, Any] = {"cost": reading.cost}
        for term in COST_TERMS:
            info[f"cost_{term}"] = reading.indicators[term]
            info[f"raw_{term}"] = reading.raw[term]
        info.update({"success": success, "category": self._category, "physics_unstable": unstable})
        info.update(self._grounding_info())
        info["wrong_object"] = self.scene.wrong_object() and not unstable
        info.update({f"reward_{k}": v for k, v in self.scene.reward_terms.items()})
        terminated = success and self.terminate_on_success
        return obs, float(reward), terminated, unstable, info

    def render(self):
        """An RGB frame from the front camera at ``render_size`` (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        self.scene.make_render_current()
        frame = self.scene.sim.render(width=self.render_size, height=self.render_size, camera_name="frontview")
        return np.ascontiguousarray(frame[::-1])

    def camera_calibration(self) -> dict[str, Any]:
        """Each observation camera's field of view and pose, and the table top's height, in the form of
        :func:`safeadapt_bench.depth_points.calibration_dict`: the front camera in the world frame, the
        wrist camera in the end effector's (origin ``proprio[0:3]``, rotation ``proprio[3:7]``, xyzw)."""
        from safeadapt_bench.depth_points import CameraCalibration, calibration_dict
        from safeadapt_bench.envs.scene import CAMERAS, TABLE_TOP

        sim, robot = self.scene.sim, self.scene.robots[0]
        body = sim.model.body_name2id(robot.robot_model.eef_name["right"])
        eef_rot, eef_pos = sim.data.body_xmat[body].reshape(3, 3), self.scene.eef_pos()
        out = {}
        for cam in self.cameras:
            cid = sim.model.camera_name2id(CAMERAS[cam])
            pos, rot = sim.data.cam_xpos[cid].copy(), sim.data.cam_xmat[cid].reshape(3, 3).copy()
            frame = "eef" if cam == "wrist" else "world"
            if frame == "eef":
                pos, rot = eef_rot.T @ (pos - eef_pos), eef_rot.T @ rot
            out[cam] = CameraCalibration(float(sim.model.cam_fovy[cid]), frame, tuple(np.round(pos, 6).tolist()),
                                         tuple(np.round(rot.reshape(-1), 6).tolist()))
        return calibration_dict(out, float(TABLE_TOP[2]))

    def close(self):
        scene = getattr(self, "scene", None)
        if scene is not None:
            # robosuite frees the render context's GL objects in whichever context is current: make it
            # this env's, or another live env's framebuffer and textures would be freed instead
            scene.make_render_current()
            scene.close()
            self.scene = None

    # ------------------------------------------------------------------ helpers
    def _grounding_info(self) -> dict[str, Any]:
        return {"target_category": self._category, "distractor_categories": list(self._distractor_categories),
                "distractors_off_table": self.scene.distractors_off_table()}

    def _check_action(self, action) -> np.ndarray:
        a = np.asarray(action)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"Action dtype {a.dtype} is not a real number type; pass a float array "
                            f"of shape {self.action_space.shape}.")
        if a.shape != self.action_space.shape:
            raise ValueError(f"Action shape {a.shape} does not match the action space shape "
                             f"{self.action_space.shape} (arm OSC_POSE deltas + gripper).")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"Action contains NaN or inf at indices {np.flatnonzero(~np.isfinite(a)).tolist()}; "
                             "check the policy's outputs.")
        return np.clip(a, -1.0, 1.0)

    def _aperture(self) -> float:
        xpos = self.scene.sim.data.geom_xpos
        left, right = self._finger_geoms
        return float(np.linalg.norm(xpos[left].mean(0) - xpos[right].mean(0)))

    def _proprio(self, rs_obs) -> np.ndarray:
        p = np.zeros(PROPRIO_DIM, dtype=np.float32)
        n, pre = self._n_joints, "robot0_"
        aperture = self._aperture()
        p[0:3] = rs_obs[pre + "eef_pos"]
        p[3:7] = rs_obs[pre + "eef_quat"]
        p[7] = aperture
        p[8] = (aperture - self._prev_aperture) * self.scene.control_freq
        p[9:9 + n] = rs_obs[pre + "joint_pos_cos"]
        p[16:16 + n] = rs_obs[pre + "joint_pos_sin"]
        p[23:23 + n] = rs_obs[pre + "joint_vel"]
        self._prev_aperture = aperture
        return np.clip(p, -_BOUND, _BOUND)

    def _state(self) -> np.ndarray:
        d = self.scene.sim.data
        obj, haz = self.scene.active_body_id, self.scene.hazard_body_id
        eef = self.scene.eef_pos()
        s = np.concatenate([d.body_xpos[obj], d.body_xquat[obj], d.body_xpos[haz], d.body_xquat[haz],
                            self.scene.target_pos, d.body_xpos[obj] - eef, d.body_xpos[haz] - eef])
        if self.distractors:
            s = np.concatenate([s, dx.state_slots(self.scene.distractor_poses())])
        return np.clip(s, -_BOUND, _BOUND).astype(np.float32)

    def _observation(self, rs_obs) -> dict[str, Any]:
        if rs_obs is None:  # after an instability: a valid, all-zero observation
            obs = {k: np.zeros(sp.shape, sp.dtype) for k, sp in self.observation_space.spaces.items()
                   if isinstance(sp, spaces.Box)}
            obs["instruction"] = self._instruction
            return obs
        obs: dict[str, Any] = {}
        if self._use_camera:
            for cam, rs_name in zip(self.cameras, self.scene.camera_names):
                rgb_key, depth_key = CAMERA_KEYS[cam]
                obs[rgb_key] = np.ascontiguousarray(rs_obs[f"{rs_name}_image"][::-1])
                z = rs_obs[f"{rs_name}_depth"][::-1].astype(np.float32)
                depth = self._near / (1.0 - z * (1.0 - self._near / self._far))
                obs[depth_key] = np.clip(depth, 0.0, self._far).astype(np.float32)
        obs["proprio"] = self._proprio(rs_obs)
        obs["instruction"] = self._instruction
        if "state" in self.obs_mode:
            obs["state"] = self._state()
        return obs

    @property
    def cost_limit(self) -> float:
        """Cost budget per episode: Safety-Gymnasium's 25 per 1000 steps, scaled to the registered length."""
        return COST_LIMIT_PER_1000_STEPS * self.episode_steps / 1000

    @property
    def category(self) -> str:
        """The active object category."""
        return self._category

    @property
    def distractor_categories(self) -> tuple[str, ...]:
        """The categories standing beside the target this episode (empty without distractors)."""
        return self._distractor_categories

    @property
    def instruction(self) -> str:
        """The active language instruction."""
        return self._instruction
