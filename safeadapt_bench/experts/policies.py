"""Scripted pick / lift / place policies driven by the privileged ``state`` observation.

The expert reads the target's pose from ``state[0:7]`` (the named object) and, among distractors, the
distractors' poses from the slots after it; it moves at a safe height above the glass and the
distractors, descends vertically onto the object with the
gripper's closing axis aligned to the object's narrow side, grasps, lifts and (PickPlace) carries
the object above the glass to the pad and sets it down. ``noisy`` adds Gaussian noise to the arm's
action and keeps the action without it in :attr:`ScriptedPolicy.label`; the logs record that label
as ``expert_action``, so behaviour cloning learns how the expert recovers from the states the noise
led to (DART, Laskey et al. 2017). ``careless`` interleaves unsafe manoeuvres (table slams, sweeps
through the glass, pressing the wrist on the table, over-reaching to a joint limit) so that logs hold
labelled unsafe transitions.
Grippers that need another grasp than the Panda's have a row in :data:`ROBOT_TUNING`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safeadapt_bench.envs.base import STATE_DIM
from safeadapt_bench.envs.distractors import SLOT_DIM
from safeadapt_bench.envs.scene import TABLE_TOP

POLICIES: tuple[str, ...] = ("expert", "noisy", "careless")
#: Unsafe manoeuvres of the careless mode, cycled through in a seeded order.
MANEUVERS: tuple[str, ...] = ("table_slam", "hazard_sweep", "wrist_press", "overreach")
#: Steps each manoeuvre lasts before the expert takes over again.
MANEUVER_STEPS = {"table_slam": 20, "hazard_sweep": 30, "wrist_press": 45, "overreach": 60}

_MAX_DELTA = 0.05  # OSC_POSE: one action unit is 5 cm
#: Arm-action noise of the ``noisy`` mode. Measured (privileged-state BC on 200 Lift episodes, 50
#: evaluation episodes per split): labels from clean expert logs 0.68 train / 0.40 held-out; from
#: logs with this noise and the expert's labels (DART) 0.82 / 0.64.
NOISE_STD = 0.3
_GLASS_TOP = TABLE_TOP[2] + 0.09
#: Consecutive descending steps without progress that mean the fingers rest on something.
BLOCKED_STEPS = 3
#: Height (m) by which a held object's bottom clears the tallest distractor while travelling.
DISTRACTOR_CLEARANCE = 0.04


def _yaw_from_quat_wxyz(q: np.ndarray) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _yaw_from_quat_xyzw(q: np.ndarray) -> float:
    x, y, z, w = q
    return _yaw_from_quat_wxyz(np.array([w, x, y, z]))


def _approach_from_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """The eef frame's z axis (the fingers' pointing direction) in the world frame."""
    x, y, z, w = q
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


def _wrap(angle: float, period: float) -> float:
    """Wrap ``angle`` into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


class ScriptedPolicy:
    """A phase machine over the env's privileged state.

    Args:
        task: ``"Lift"`` or ``"PickPlace"``.
        category: the object category (sets grasp height and yaw symmetry); read from the env
            at each ``reset`` when the policy is made through :func:`make_policy`.
        mode: one of :data:`POLICIES`.
        seed: seeds the noise and the careless manoeuvres.
        noise_std: action noise of the ``noisy`` mode.
    """

    def __init__(self, task: str, mode: str = "expert", seed: int | None = None, noise_std: float = NOISE_STD,
                 env=None):
        if mode not in POLICIES:
            raise ValueError(f"Unknown policy {mode!r}; choose one of {list(POLICIES)}.")
        if task not in ("Lift", "PickPlace"):
            raise ValueError(f"No scripted policy for task {task!r}.")
        self.task, self.mode, self.noise_std = task, mode, noise_std
        self._env = env
        self._pad: float | None = None
        self._base: tuple[np.ndarray, np.ndarray] | None = None
        self._rng = np.random.default_rng(seed)
        self._episode = 0
        self._order = self._rng.permutation(len(MANEUVERS))
        self.reset()

    def reset(self, seed: int | None = None, episode: int | None = None) -> None:
        """Start a new episode (``seed`` reseeds the noise).

        ``episode``: the episode's index in a collection, which picks the careless manoeuvre, so that
        a worker rolling episodes out of order picks what a serial collection would (default: count
        resets; the constructor's own reset is number 0, so collection episode ``i`` is reset ``i + 1``).
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if episode is not None:
            self._episode = int(episode) + 1
        self.phase, self.t_phase = "approach", 0
        self.label: np.ndarray | None = None
        self.maneuver = MANEUVERS[self._order[self._episode % len(MANEUVERS)]] if self.mode == "careless" else None
        self._maneuver_start = int(self._rng.integers(3, 10))
        self._episode += 1
        self._grasp_yaw = None
        self._obj_z0 = None
        self._prev_z = np.inf
        self._t_total = 0
        self._last_wrist, self._last_yaw_cmd, self._wrist_gain = None, 0.0, 0.0
        self._stalled = self._blocked = 0

    # ------------------------------------------------------------------ helpers
    def _category(self) -> str:
        return self._env.unwrapped.category if self._env is not None else "cube"

    def _distractor_top(self, state: np.ndarray) -> float | None:
        """Height of the tallest distractor's top (from the state's distractor slots), or None."""
        names = tuple(getattr(getattr(self._env, "unwrapped", None), "distractor_categories", ()) or ())
        slots = state[STATE_DIM:].reshape(-1, SLOT_DIM) if len(state) > STATE_DIM else np.zeros((0, SLOT_DIM))
        tops = [slot[2] + (GRASP[names[i]].top if i < len(names) else 0.1)  # 0.1: taller than any category
                for i, slot in enumerate(slots) if slot[-1] > 0]
        return max(tops) if tops else None

    def _pad_offset(self) -> float:
        """Height of the finger pads above the eef site (robot-specific; 0.003 m on the Panda),
        measured once from the gripper model while it points down."""
        if self._pad is None:
            self._pad = 0.003
            scene = getattr(self._env, "unwrapped", None)
            scene = getattr(scene, "scene", None)
            if scene is not None:
                g, m, d = scene.gripper, scene.sim.model, scene.sim.data
                names = [n for side in ("left", "right")
                         for n in (g.important_geoms.get(f"{side}_fingerpad") or g.important_geoms[f"{side}_finger"])]
                pads = np.array([d.geom_xpos[m.geom_name2id(n)][2] for n in names])
                self._pad = float(pads.mean() - scene.eef_pos()[2])
        return self._pad

    def _robot_base(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The arm's base position and rotation matrix (world frame), read once, or None."""
        if self._base is None:
            scene = getattr(getattr(self._env, "unwrapped", None), "scene", None)
            if scene is None:
                return None
            m, d = scene.sim.model, scene.sim.data
            body = m.body_name2id(scene.robots[0].robot_model.root_body)
            self._base = d.body_xpos[body].copy(), d.body_xmat[body].reshape(3, 3).copy()
        return self._base

    def _reach_tilt(self, eef_quat_xyzw: np.ndarray, place: np.ndarray, tune: RobotTuning) -> np.ndarray:
        """Roll/pitch command (base frame) tilting the fingers toward the robot base when the place
        point lies within ``tune.reach_tilt[0]`` of it (full tilt 8 cm closer): the wrist stays
        farther out, so an elbow that cannot fold far keeps off its limit. Zero without a
        ``reach_tilt``. The tilt depends on the place point only, so it is constant while carrying."""
        base = None if tune.reach_tilt is None else self._robot_base()
        if base is None:
            return np.zeros(2)
        reach, max_tilt = tune.reach_tilt
        radial = np.r_[place[:2] - base[0][:2], 0.0]
        dist = float(np.linalg.norm(radial))
        tilt = max_tilt * float(np.clip((reach - dist) / 0.08, 0.0, 1.0))
        want = np.cos(tilt) * np.array([0.0, 0.0, -1.0]) - np.sin(tilt) * radial / max(dist, 1e-6)
        turn = base[1].T @ np.cross(_approach_from_quat_xyzw(eef_quat_xyzw), want)  # small-angle axis-angle
        return np.clip(2.0 * turn[:2], -0.3, 0.3)

    def _tuning(self) -> RobotTuning:
        robot = getattr(getattr(self._env, "unwrapped", None), "robot", None)
        return ROBOT_TUNING.get(robot, DEFAULT_TUNING)

    @staticmethod
    def _open(proprio: np.ndarray, tune: RobotTuning) -> float:
        """Gripper command while approaching: open, but no wider than ``tune.max_open``."""
        return -1.0 if tune.max_open is None or proprio[7] < tune.max_open else 0.0

    def _wrist(self) -> tuple[float, float, float] | None:
        """Last arm joint's position and limits (privileged), or None."""
        costs = getattr(getattr(self._env, "unwrapped", None), "costs", None)
        if costs is None or not len(costs._qpos_idx):
            return None
        q = float(costs._data.qpos[costs._qpos_idx[-1]])
        return q, float(costs._lo[-1]), float(costs._hi[-1])

    def _wrist_guard(self, yaw_cmd: float) -> float:
        """Learn how a yaw command moves the wrist joint; once the object is held (its yaw no longer
        matters), turn the wrist away from a joint limit it is closing in on."""
        wrist = self._wrist()
        if wrist is None:
            return yaw_cmd
        q, lo, hi = wrist
        if self._last_wrist is not None and abs(self._last_yaw_cmd) > 0.2:
            self._wrist_gain += (q - self._last_wrist) * self._last_yaw_cmd
        self._last_wrist = q
        if self.phase in ("lift", "carry", "lower") and self._wrist_gain != 0:
            margin = 0.6
            if q > hi - margin or q < lo + margin:
                away = -1.0 if q > hi - margin else 1.0  # the joint should move this way
                yaw_cmd = 0.5 * away * np.sign(self._wrist_gain)
        self._last_yaw_cmd = yaw_cmd
        return yaw_cmd

    def _move(self, eef: np.ndarray, goal: np.ndarray, gain: float = 1.5, limit: float = 1.0) -> np.ndarray:
        return np.clip(gain * (goal - eef) / _MAX_DELTA, -limit, limit)

    def _yaw_action(self, eef_quat_xyzw: np.ndarray, state: np.ndarray, period: float, offset: float) -> float:
        """Turn the gripper to the grasp yaw: fingers on the object's narrow sides and, where the
        object's symmetry leaves a choice, the hand's long axis across the glass direction."""
        eef_yaw = _yaw_from_quat_xyzw(eef_quat_xyzw)
        if self._grasp_yaw is None:
            to_glass = state[7:9] - state[0:2]
            across = float(np.arctan2(to_glass[1], to_glass[0]))  # fingers (local y) perpendicular
            if period == 0:  # round: any yaw grasps
                candidates = [across, across + np.pi]
            else:
                obj_yaw = _yaw_from_quat_wxyz(state[3:7]) + offset
                candidates = [obj_yaw + k * period for k in range(int(round(2 * np.pi / period)))]
            # Prefer the yaw closest to "across", then the smallest turn from the current yaw.
            self._grasp_yaw = min(candidates, key=lambda y: (round(abs(_wrap(y - across, np.pi)), 2),
                                                             abs(_wrap(y - eef_yaw, 2 * np.pi))))
        err = _wrap(self._grasp_yaw - eef_yaw, 2 * np.pi)
        return float(np.clip(2.0 * err, -1, 1))

    # ------------------------------------------------------------------ act
    def __call__(self, obs: dict) -> np.ndarray:
        state, proprio = obs["state"], obs["proprio"]
        t_maneuver = self._t_total - self._maneuver_start
        if self.maneuver is not None and 0 <= t_maneuver < MANEUVER_STEPS[self.maneuver]:
            action = self._unsafe(state, proprio, t_maneuver)
        else:
            action = self._expert(state, proprio)
        self.label = np.clip(action, -1, 1).astype(np.float32)  # before the noise: the DART label
        if self.mode == "noisy":
            action[:6] += self._rng.normal(0, self.noise_std, 6)
        self.t_phase += 1
        self._t_total += 1
        return np.clip(action, -1, 1).astype(np.float32)

    def _unsafe(self, state: np.ndarray, proprio: np.ndarray, t: int) -> np.ndarray:
        a = np.zeros(7)
        if self.maneuver == "table_slam":
            a[2], a[6] = -1.0, 1.0
        elif self.maneuver == "hazard_sweep":
            a[:3] = np.clip(10 * state[20:23], -1, 1)
        elif self.maneuver == "wrist_press":
            if t < 12:
                a[4] = 1.0
            else:
                a[2] = -1.0
        elif self.maneuver == "overreach":
            a[0], a[2] = 1.0, 0.5
        if t == MANEUVER_STEPS[self.maneuver] - 1:  # hand back to the expert from scratch
            self.phase, self.t_phase = "approach", 0
        return a

    def _expert(self, state: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        eef = proprio[0:3]
        obj, target = state[0:3], state[14:17]
        info = GRASP[self._category()]
        if self.phase == "approach":  # the object rests: grasp and travel heights derive from its height
            self._obj_z0 = float(obj[2])
        pad = self._pad_offset()
        tune = self._tuning()
        floor = TABLE_TOP[2] + (0.017 - pad if tune.floor is None else tune.floor)
        grasp_z = max(self._obj_z0 + info.top - GRASP_BELOW_TOP - tune.depth - pad, floor)
        # Put the fingers' centre, not the eef site, over the object.
        eef_yaw = _yaw_from_quat_xyzw(proprio[3:7])
        c, s_ = np.cos(eef_yaw), np.sin(eef_yaw)
        aim = obj[:2] - np.array([[c, -s_], [s_, c]]) @ np.asarray(tune.finger_centre)
        hold = 0.0 if tune.hold_grip else 1.0  # gripper command while carrying
        safe_z = max(_GLASS_TOP + 0.09, grasp_z + 0.10)
        top = self._distractor_top(state)
        if top is not None:  # travel high enough that the held object's bottom clears every distractor
            safe_z = max(safe_z, top + grasp_z - TABLE_TOP[2] + DISTRACTOR_CLEARANCE)
        a = np.zeros(7)
        p = self.phase
        if p == "approach":
            goal = np.array([aim[0], aim[1], safe_z])
            if abs(eef[2] - safe_z) > 0.04 and np.linalg.norm(eef[:2] - aim) > 0.02:
                goal[:2] = eef[:2]  # climb first, then travel
            a[:3] = self._move(eef, goal)
            a[5] = self._yaw_action(proprio[3:7], state, info.yaw_period, info.yaw_offset)
            a[6] = self._open(proprio, tune)
            xy_tol, yaw_tol = tune.descend_tol
            if np.linalg.norm(eef[:2] - aim) < xy_tol and abs(eef[2] - safe_z) < 0.03 and abs(a[5]) < yaw_tol:
                self._next("descend")
        elif p == "descend":
            a[:3] = self._move(eef, np.array([aim[0], aim[1], grasp_z]), limit=0.6)
            a[5] = self._yaw_action(proprio[3:7], state, info.yaw_period, info.yaw_offset)
            a[6] = self._open(proprio, tune)
            # resting on something: stop. One step without progress is not enough: under the noisy
            # policy's action noise it happens in mid-air, and the grasp labels would say "close" there.
            stuck = self.t_phase > 4 and self._prev_z - eef[2] < 0.001
            self._blocked = self._blocked + 1 if stuck else 0
            if eef[2] - grasp_z < 0.006 or self._blocked >= BLOCKED_STEPS or self.t_phase > 40:
                self._next("grasp")
        elif p == "grasp":  # close until the fingers stop moving (grippers close at different speeds)
            a[6] = 1
            self._stalled = self._stalled + 1 if self.t_phase >= 6 and proprio[8] > -0.004 else 0
            if self._stalled >= tune.stall_steps or self.t_phase >= 70:  # stopped closing
                self._next("lift")
        elif p == "lift":
            a[:3] = self._move(eef, np.array([eef[0], eef[1], safe_z]), limit=0.6)
            a[6] = 1
            if self.task == "PickPlace" and eef[2] > safe_z - 0.02:
                self._next("carry")
        elif p == "carry":
            goal = np.array([target[0], target[1], safe_z]) + (eef - obj) * np.array([1, 1, 0])
            a[:3] = self._move(eef, goal, limit=0.6)
            a[6] = hold
            if np.linalg.norm(obj[:2] - target[:2]) < 0.012:
                self._next("lower")
        elif p == "lower":
            place_z = eef[2] - obj[2] + self._obj_z0 + 0.01  # the object 1 cm above its resting height
            goal = np.array([eef[0], eef[1], place_z]) + np.r_[(target[:2] - obj[:2]), 0.0]
            a[:3] = self._move(eef, goal, limit=0.4)
            a[6] = hold
            if eef[2] - place_z < 0.01 or self.t_phase > 40:
                self._next("release")
        elif p == "release":
            a[6] = -1
            if (self.t_phase >= 4 and abs(proprio[8]) < 0.01) or self.t_phase >= 30:
                self._next("retreat")
        elif p == "retreat":
            a[:3] = self._move(eef, np.array([eef[0], eef[1], safe_z]), limit=0.5)
            a[6] = -1
        if self.task == "PickPlace" and p in ("carry", "lower", "release", "retreat"):
            a[3:5] = self._reach_tilt(proprio[3:7], target, tune)
        self._prev_z = float(eef[2])
        a[5] = self._wrist_guard(float(a[5]))
        return a

    def _next(self, phase: str) -> None:
        self.phase, self.t_phase = phase, -1


class _Grasp:
    """Per-category grasp parameters.

    Args:
        top: height of the object's collision top above its body origin, m (from ``geom_aabb``).
        yaw_period: symmetry of the object about z (0 for round objects).
        yaw_offset: gripper yaw relative to the object's yaw.
    """

    def __init__(self, top: float, yaw_period: float, yaw_offset: float = 0.0):
        self.top, self.yaw_period, self.yaw_offset = top, yaw_period, yaw_offset


#: The finger pads' centre goes 1.7 cm below the object's top: on the Panda the palm's lowest point
#: is 2.7 cm above the eef site and the pads' centre 0.3 cm, so the palm stays clear.
GRASP_BELOW_TOP = 0.017
GRASP: dict[str, _Grasp] = {
    "cube": _Grasp(0.021, np.pi / 2),
    "ball": _Grasp(0.026, 0.0),
    "can": _Grasp(0.039, 0.0),
    "milk": _Grasp(0.083, np.pi / 2),
    "bread": _Grasp(0.025, np.pi / 2),
    "cylinder": _Grasp(0.040, 0.0),
    "capsule": _Grasp(0.045, 0.0),
    "bottle": _Grasp(0.095, 0.0),
    "lemon": _Grasp(0.020, 0.0),
    "cereal": _Grasp(0.075, np.pi),
}


@dataclass(frozen=True)
class RobotTuning:
    """Per-robot grasp parameters (grippers differ in finger length, speed and shape).

    Args:
        depth: how much deeper than the default the grip site goes, m.
        floor: lowest grip-site height above the table, m (None: the finger pads 1.7 cm above it).
        stall_steps: consecutive steps the fingers must stop closing before the lift.
        max_open: widest finger aperture while approaching, m (None: open fully).
        hold_grip: once lifted, stop driving the fingers closed (a gripper that integrates its
            command, like the Jaco's, would otherwise need as long to open again).
        finger_centre: the fingers' centre relative to the eef site, in the eef's yaw frame (x, y), m.
        reach_tilt: ``(reach, tilt)``: from the carry on (PickPlace), tilt the fingers toward the
            robot base by up to ``tilt`` rad when the pad is closer than ``reach`` m (horizontally) to
            the base, keeping the wrist out so the elbow need not fold to its limit (None: keep the
            hand as it is).
        descend_tol: lined up enough over the object to descend: the fingers' centre within
            ``descend_tol[0]`` m of it and the yaw command below ``descend_tol[1]``. Measured
            (privileged-state BC on 200 noisy Lift episodes, 50 evaluation episodes per split):
            (0.01, 0.1) 0.94 train / 0.68 held-out, (0.02, 0.2) 0.96 / 0.74; the tighter one
            holds the cloned policy at the hover point longer.
    """

    depth: float = 0.0
    floor: float | None = None
    stall_steps: int = 1
    max_open: float | None = None
    hold_grip: bool = False
    finger_centre: tuple[float, float] = (0.0, 0.0)
    reach_tilt: tuple[float, float] | None = None
    descend_tol: tuple[float, float] = (0.02, 0.2)


DEFAULT_TUNING = RobotTuning()
#: Robots whose gripper needs its own grasp; the others use :data:`DEFAULT_TUNING`.
#: Jaco (three fingers, position servos whose target moves 1 % of the range per step): its
#: fingertips reach ~3 cm below the grip site and touch the object ~2 cm lower than the Panda's
#: pads, so it grasps 2 cm deeper but keeps the grip site 2.5 cm above the table (fingertips off
#: it). Fingertip-only grasps near a can's or carton's top slipped out on the lift. Opening fully
#: takes ~45 steps to undo, so it opens to 7 cm only; it lifts after 3 stalled steps (a finger
#: bouncing on the table reads as one), stops closing once lifted so the release is quick, and
#: centres the midpoint between thumb and index/pinky pads (measured 4.0, 2.8 mm off the grip
#: site) over the object. It starts its descent lined up within 1 cm (from 2 cm it closed on a
#: carton's edge).
#: IIWA: its elbow (J4) stops at 120 deg, so with the hand vertical it reaches its limit whenever the
#: pad lies within ~0.42 m of the base (4 % of PickPlace steps were joint-limit costs); the hand
#: tilts its fingers toward the base by up to 0.35 rad (20 deg) for pads closer than 0.46 m.
ROBOT_TUNING: dict[str, RobotTuning] = {
    "Jaco": RobotTuning(depth=0.02, floor=0.025, stall_steps=3, max_open=0.07, hold_grip=True,
                          finger_centre=(0.004, 0.0028), descend_tol=(0.01, 0.1)),
    "IIWA": RobotTuning(reach_tilt=(0.46, 0.35)),
}


def make_policy(name: str, env, seed: int | None = None) -> ScriptedPolicy:
    """A scripted policy for ``env`` (made with ``obs_mode="state"`` or ``"rgbd+state"``).

    Raises:
        ValueError: an unknown policy name, or an env without the privileged ``state`` observation.
    """
    if name not in POLICIES:
        raise ValueError(f"Unknown policy {name!r}; choose one of {list(POLICIES)}.")
    if "state" not in env.observation_space.spaces:
        raise ValueError("Scripted policies read the privileged state: make the env with "
                         "obs_mode='state' or 'rgbd+state'.")
    return ScriptedPolicy(env.unwrapped.task, mode=name, seed=seed, env=env)
