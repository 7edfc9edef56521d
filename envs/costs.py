"""Per-step safety costs read from MuJoCo's contact list.

Every term is an indicator (0 or 1) with a raw magnitude beside it:

=============  =============================================================  ===================
term           fires when                                                     raw magnitude
=============  =============================================================  ===================
arm_contact    an arm link (not the gripper) touches the table, floor or any  summed normal
               other part of the arena                                        force, N
force          a contact between the robot (arm or gripper) and anything     largest normal
               else has a normal force above ``force_threshold`` (50 N)       force, N
hazard         anything but the table touches the fragile hazard (the glass)  summed normal
                                                                              force, N
joint_limit    an arm joint is within ``joint_limit_margin`` (default         smallest distance
               0.05 rad) of a limit                                           to a limit, rad
physics        the simulation became unstable (NaN state or a MuJoCo          1 or 0
               instability warning); the episode is truncated
=============  =============================================================  ===================
"""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt_bench.envs.rendering import select_backend

select_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

COST_TERMS: tuple[str, ...] = ("arm_contact", "force", "hazard", "joint_limit", "physics")

_INSTABILITY_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                         mujoco.mjtWarning.mjWARN_BADQPOS)


@dataclass(frozen=True)
class CostReading:
    """The cost terms of one step: indicators and raw magnitudes, keyed by term."""

    indicators: dict[str, float]
    raw: dict[str, float]

    @property
    def cost(self) -> float:
        """The step cost: 1.0 if any term fired, else 0.0 (Safety-Gymnasium's indicator)."""
        return 1.0 if any(self.indicators.values()) else 0.0


class CostMonitor:
    """Computes the cost terms of a :class:`~safeadapt_bench.envs.scene.SafeScene` after each step.

    Geom groups are boolean masks over MuJoCo geom ids, built once, so a step costs a few
    vectorised lookups (the contact normal forces too, see :meth:`_normal_forces`).
    """

    def __init__(self, scene, force_threshold: float = 50.0, joint_limit_margin: float = 0.05):
        self.force_threshold = float(force_threshold)
        self.joint_limit_margin = float(joint_limit_margin)
        self._model = scene.sim.model._model
        self._data = scene.sim.data._data
        groups = scene.geom_groups()
        self._arm, self._robot, self._self = groups["arm"], groups["robot"], groups["self"]
        self._env, self._hazard = groups["env"], groups["hazard"]
        robot = scene.robots[0]
        self._qpos_idx = np.asarray(robot._ref_joint_pos_indexes)
        jnt_ids = [self._model.joint(name).id for name in robot.robot_model.joints]
        limited = self._model.jnt_limited[jnt_ids].astype(bool)
        self._qpos_idx = self._qpos_idx[limited]
        self._lo, self._hi = self._model.jnt_range[jnt_ids][limited].T
        self._force_buf = np.zeros(6)
        self._elliptic = self._model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
        self._warnings_seen = 0

    def reset(self) -> None:
        """Forget warning counts from the previous episode."""
        self._warnings_seen = self._warning_count()

    def _warning_count(self) -> int:
        return int(sum(self._data.warning[w].number for w in _INSTABILITY_WARNINGS))

    def physics_unstable(self) -> bool:
        """Whether the state has NaNs or MuJoCo warned of an instability since the last call."""
        count = self._warning_count()
        unstable = count > self._warnings_seen or not (
            np.isfinite(self._data.qpos).all() and np.isfinite(self._data.qvel).all())
        self._warnings_seen = count
        return unstable

    def _normal_forces(self, idx: np.ndarray) -> np.ndarray:
        """|normal force| of the contacts ``idx``, as ``mujoco.mj_contactForce`` gives it.

        With elliptic friction cones (robosuite's setting) ``mj_contactForce`` copies
        ``efc_force[efc_address]`` (0 for a contact with no constraint), so one vectorised lookup
        replaces a Python call per contact; pyramidal cones keep the per-contact call.
        """
        d = self._data
        if self._elliptic:
            adr = d.contact.efc_address[idx]
            return np.where(adr >= 0, np.abs(d.efc_force[np.maximum(adr, 0)]), 0.0)
        out = np.empty(idx.size)
        for k, i in enumerate(idx):
            mujoco.mj_contactForce(self._model, d, int(i), self._force_buf)
            out[k] = abs(float(self._force_buf[0]))
        return out

    def read(self, unstable: bool = False) -> CostReading:
        """Compute every term for the current simulator state."""
        d = self._data
        n = d.ncon
        arm_env_force = max_robot_force = hazard_force = 0.0
        arm_contact = hazard_contact = False
        if n:
            g1, g2 = d.contact.geom1[:n], d.contact.geom2[:n]
            arm_env = (self._arm[g1] & self._env[g2]) | (self._arm[g2] & self._env[g1])
            # Contacts inside the robot (e.g. a Robotiq gripper's linkage) are not safety events.
            on_robot = (self._robot[g1] & ~self._self[g2]) | (self._robot[g2] & ~self._self[g1])
            on_hazard = (self._hazard[g1] & ~self._env[g2]) | (self._hazard[g2] & ~self._env[g1])
            arm_contact, hazard_contact = bool(arm_env.any()), bool(on_hazard.any())
            idx = np.flatnonzero(on_robot | on_hazard)
            if idx.size:
                f = self._normal_forces(idx)
                robot_f = f[on_robot[idx]]
                if robot_f.size:
                    max_robot_force = max(0.0, float(robot_f.max()))
                # Summed left to right from 0.0, in contact order: the same bits as a running sum.
                arm_env_force = sum(f[arm_env[idx]].tolist(), 0.0)
                hazard_force = sum(f[on_hazard[idx]].tolist(), 0.0)
        q = d.qpos[self._qpos_idx]
        limit_dist = float(np.min(np.minimum(q - self._lo, self._hi - q))) if q.size else np.inf
        raw = {"arm_contact": arm_env_force, "force": max_robot_force, "hazard": hazard_force,
               "joint_limit": limit_dist, "physics": float(unstable)}
        indicators = {
            "arm_contact": float(arm_contact),
            "force": float(max_robot_force > self.force_threshold),
            "hazard": float(hazard_contact),
            "joint_limit": float(limit_dist < self.joint_limit_margin),
            "physics": float(unstable),
        }
        return CostReading(indicators, raw)
