"""A faster equivalent of robosuite's step loop, with the same physics to the bit.

robosuite 1.5 runs its whole Python controller stack at each of the 25 physics substeps of a 20 Hz
step: ``RobotEnv._pre_action`` -> ``FixedBaseRobot.control`` -> ``CompositeController.update_state``
and ``run_controller`` -> ``OperationalSpaceController.run_controller`` / ``update`` and
``SimpleGripController.run_controller``, looking sites up by name, allocating Jacobians six times
and recomputing values that stay fixed within a step. :class:`FastStepper` replaces that loop:

- the first substep of each step (the *policy step*) still sets the goal with robosuite's own
  ``CompositeController.set_goal`` (OSC goal from the delta action, gripper action formatting) and
  runs the gripper's own ``run_controller``; it leaves out ``FixedBaseRobot.control``'s proprioceptive
  bookkeeping (the ``recent_qpos`` / ``recent_ee_*`` / ``recent_torques`` buffers and an eef
  acceleration estimate), which only robosuite's Wipe task and its energy properties read;
- the other substeps run :meth:`FastStepper._arm_torques`, which evaluates robosuite's OSC
  equations (``osc.py: run_controller``, with its ``opspace_matrices``, ``orientation_error`` and
  ``nullspace_torques``) in the same order on the same operands, so the torques are bit-identical;
- what is fixed within a step is computed once per step: the controller origin (the fixed base's
  ``*_center`` site), the goal in world coordinates (``origin_pos + origin_ori @ goal_pos`` and
  ``origin_ori @ goal_ori``) and the gripper command (``bias + weight * goal_qvel``, already written
  to ``data.ctrl`` by the policy substep);
- the observables are robosuite's own ``Observable`` objects (so they sample at the same substep as
  before), but only those the env returns are enabled (:data:`RETURNED_OBSERVABLES` and the
  cameras), and the observation dict skips robosuite's per-modality concatenations.

:func:`supports` says whether a scene's controller set-up is the one this path reproduces (fixed
base, OSC_POSE in the base frame with fixed impedance and no interpolator, a simple gripper, lite
physics); any other set-up keeps robosuite's loop. ``tests/test_env_speed_physics.py`` checks the
trajectories against ones recorded from robosuite's loop.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from safeadapt_bench.envs.rendering import select_backend

select_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from robosuite.controllers.parts.arm.osc import OperationalSpaceController  # noqa: E402
from robosuite.controllers.parts.gripper.simple_grip import SimpleGripController  # noqa: E402
from robosuite.robots.fixed_base_robot import FixedBaseRobot  # noqa: E402
from robosuite.utils import observables as obs_utils  # noqa: E402
from robosuite.utils.control_utils import nullspace_torques, opspace_matrices, orientation_error  # noqa: E402

#: robosuite observables (without the ``robot0_`` prefix) that the env reads; camera images stay too.
#: ``joint_pos`` feeds ``joint_pos_cos`` / ``joint_pos_sin`` through robosuite's observation cache.
RETURNED_OBSERVABLES: tuple[str, ...] = ("joint_pos", "joint_pos_cos", "joint_pos_sin", "joint_vel", "eef_pos",
                                         "eef_quat")


def supports(scene) -> bool:
    """Whether ``scene``'s robot and controllers are the set-up :class:`FastStepper` reproduces."""
    if len(scene.robots) != 1 or not scene.lite_physics:
        return False
    robot = scene.robots[0]
    parts = robot.composite_controller.part_controllers
    if not isinstance(robot, FixedBaseRobot) or set(parts) != {"right", "right_gripper"}:
        return False
    arm, grip = parts["right"], parts["right_gripper"]
    return (type(arm) is OperationalSpaceController and type(grip) is SimpleGripController
            and arm.interpolator_pos is None and arm.interpolator_ori is None and grip.interpolator is None
            and arm.impedance_mode == "fixed" and arm.input_ref_frame == "base" and arm.num_ref_sites == 1
            and arm.lite_physics and all(robot._enabled_parts.get(p, False) for p in parts))


try:  # ``np.clip``'s ufunc, without ``np.clip``'s Python wrapper (the same values)
    from numpy._core.umath import clip as _clip  # numpy >= 2
except ImportError:
    from numpy.core.umath import clip as _clip


def _as_index(idx) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (the same elements, without fancy-indexing copies)."""
    a = np.asarray(idx, dtype=np.intp)
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


class FastStepper:
    """Steps a :class:`~safeadapt_bench.envs.scene.SafeScene` like ``robosuite.environments.base.step``.

    Args:
        scene: a scene for which :func:`supports` holds.
    """

    def __init__(self, scene):
        if not supports(scene):
            raise ValueError("FastStepper reproduces only one fixed-base arm with OSC_POSE (base frame, fixed "
                             "impedance, no interpolator) and a simple gripper, with lite physics.")
        self.scene = scene
        self._m, self._d = scene.sim.model._model, scene.sim.data._data
        robot = scene.robots[0]
        arm = self._arm = robot.composite_controller.part_controllers["right"]  # robosuite remakes it at reset
        self._ref_sid = scene.sim.model.site_name2id(arm.ref_name)
        center = scene.sim.model.site_name2id(f"{arm.naming_prefix}{arm.part_name}_center")
        self._center_sid = center
        idx = robot._ref_actuators_indexes_dict["right"]
        self._arm_ctrl_idx = idx
        self._ctrl_lo = scene.sim.model.actuator_ctrlrange[idx, 0]
        self._ctrl_hi = scene.sim.model.actuator_ctrlrange[idx, 1]
        gidx = robot._ref_actuators_indexes_dict["right_gripper"]
        ranges = scene.sim.model.actuator_ctrlrange
        self._grip_ctrl = (gidx, ranges[gidx, 0], ranges[gidx, 1])
        nv = self._m.nv
        self._jacp, self._jacr = np.zeros((3, nv)), np.zeros((3, nv))
        self._mass = np.ndarray(shape=(nv, nv), dtype=np.float64, order="C")
        self._substeps = int(scene.control_timestep / scene.model_timestep)
        self._static_origin = bool(self._m.body_weldid[self._m.site_bodyid[center]] == 0)
        self._dofs, self._qpos = _as_index(arm.qvel_index), _as_index(arm.qpos_index)
        self._dof_slices = isinstance(self._dofs, slice)

    def stale(self) -> bool:
        """Whether the scene has a new simulation since this stepper was made (after a hard reset)."""
        return self.scene.sim.data._data is not self._d

    # ------------------------------------------------------------------ observables
    def trim_observables(self) -> None:
        """Disable the robot observables the env never returns (joint accelerations, gripper joints, ...)."""
        pre = self.scene.robots[0].robot_model.naming_prefix
        keep = {pre + n for n in RETURNED_OBSERVABLES}
        for name in list(self.scene._observables):
            if name.startswith(pre) and name not in keep and not name.endswith(("_image", "_depth")):
                self.scene.modify_observable(name, "enabled", False)
        self._observables = [o for o in self.scene._observables.values() if o.is_enabled()]
        self._observables_of = self.scene._observables
        first = self._observables[0]
        # One clock for all when every observable samples alike (robosuite's defaults): same rate, no
        # delay, corruption or filter. Then they all sample at the same substep, in dict order.
        self._shared_clock = all(
            o._sampling_timestep == first._sampling_timestep and o._delayer is obs_utils.NO_DELAY
            and o._corrupter is obs_utils.NO_CORRUPTION and o._filter is obs_utils.NO_FILTER
            for o in self._observables)

    def _update_observables(self) -> None:
        """robosuite's ``_update_observables`` over the enabled observables only. With a shared clock
        the first observable's own ``update`` decides, and the others sample with it."""
        dt, cache = self.scene.model_timestep, self.scene._obs_cache
        if not self._shared_clock:
            for o in self._observables:
                o.update(timestep=dt, obs_cache=cache)
            return
        clock, *others = self._observables
        before = clock._current_observed_value
        clock.update(timestep=dt, obs_cache=cache)
        if clock._current_observed_value is not before:  # it sampled: so would every other one
            for o in others:  # the sampling part of ``Observable.update``
                v = np.array(o._sensor(cache))
                o._current_observed_value = v[0] if len(v.shape) == 1 and v.shape[0] == 1 else v
                cache[o.name] = np.array(o._current_observed_value)

    def _sync_clocks(self) -> None:
        """Give every observable the shared clock's timer state (what its own updates would have left)."""
        if self._shared_clock:
            clock, *others = self._observables
            for o in others:
                o._time_since_last_sample, o._sampled = clock._time_since_last_sample, clock._sampled

    def observations(self) -> OrderedDict:
        """The enabled, active observables' values, without robosuite's per-modality concatenations."""
        return OrderedDict((o.name, o.obs) for o in self._observables if o.is_active())

    # ------------------------------------------------------------------ control
    def _policy_substep(self, action: np.ndarray) -> None:
        """``FixedBaseRobot.control(action, policy_step=True)`` without the bookkeeping buffers."""
        robot = self.scene.robots[0]
        if len(action) != robot.action_dim:
            raise ValueError(f"environment got invalid action dimension -- expected {robot.action_dim}, "
                             f"got {len(action)}")
        composite = robot.composite_controller
        composite.update_state()
        if self._arm.new_update:  # what ``set_goal``'s own ``update()`` would compute, done here
            self._update_arm_state()
            self._arm.new_update = False
        composite.set_goal(action)
        self._step_constants()
        ctrl = self._d.ctrl
        ctrl[self._arm_ctrl_idx] = np.clip(self._arm_torques(update=False), self._ctrl_lo, self._ctrl_hi)
        gidx, lo, hi = self._grip_ctrl
        ctrl[gidx] = np.clip(composite.part_controllers["right_gripper"].run_controller(), lo, hi)
        self._arm.new_update = True  # as ``Controller.run_controller`` leaves it

    def _step_constants(self) -> None:
        """The controller origin (the arm's ``*_center`` site), the goal in world coordinates and the
        origin's Jacobian. robosuite recomputes them at every substep; where the site sits on a body
        welded to the world they stay fixed within a step (IIWA's sits on its first link: there they are
        recomputed at every substep, as robosuite does)."""
        arm, d = self._arm, self.scene.sim.data
        origin_pos = np.array(d.site_xpos[self._center_sid])
        origin_ori = np.array(d.site_xmat[self._center_sid].reshape([3, 3]))
        self._desired_pos = origin_pos + np.dot(origin_ori, arm.goal_pos)
        self._desired_ori = np.dot(origin_ori, arm.goal_ori)
        jacp, jacr = np.zeros((3, self._m.nv)), np.zeros((3, self._m.nv))
        mujoco.mj_jacSite(self._m, self._d, jacp, jacr, self._center_sid)
        self._center_jacp, self._center_jacr = jacp, jacr

    def _update_arm_state(self) -> None:
        """``Controller.update`` (lite physics): reference site pose, velocity and Jacobians, joint
        state and mass matrix, written into the controller's own arrays as robosuite does (same values,
        same memory layouts, so the jitted OSC functions below take the same code paths)."""
        arm, m, d = self._arm, self._m, self._d
        sid, qvel, dofs = self._ref_sid, d.qvel, self._dofs
        jacp, jacr = self._jacp, self._jacr
        mujoco.mj_jacSite(m, d, jacp, jacr, sid)
        arm.ref_pos[:] = d.site_xpos[sid]
        arm.ref_ori_mat[:, :] = d.site_xmat[sid].reshape([3, 3])
        arm.ref_pos_vel[:] = np.dot(jacp, qvel)
        arm.ref_ori_vel[:] = np.dot(jacr, qvel)
        arm.J_pos[:, :] = jacp[:, dofs]
        arm.J_ori[:, :] = jacr[:, dofs]
        arm.J_full[:3] = arm.J_pos
        arm.J_full[3:] = arm.J_ori
        arm.joint_pos = d.qpos[self._qpos].copy()
        arm.joint_vel = qvel[dofs].copy()
        mujoco.mj_fullM(m, self._mass, d.qM)
        # robosuite's ``M[idx, :][:, idx]`` is Fortran-ordered; keep that layout.
        arm.mass_matrix = np.asfortranarray(self._mass[dofs, dofs]) if self._dof_slices else \
            self._mass[dofs, :][:, dofs]

    def _arm_torques(self, update: bool = True) -> np.ndarray:
        """``OperationalSpaceController.run_controller`` for the fixed-goal, no-interpolator case.

        ``update=False`` uses the controller's state as it stands (at the policy step robosuite's
        ``set_goal`` has just updated it, or, on an episode's first step, left the reset-time state).
        The elementwise parts (errors, gains) are fused into 6-vectors: elementwise IEEE arithmetic
        gives the same bits in any grouping. Matrix products keep robosuite's operands and shapes.
        """
        if update:
            self._update_arm_state()
            if not self._static_origin:
                self._step_constants()
        arm, d = self._arm, self._d
        err = np.empty(6)
        err[:3] = self._desired_pos - arm.ref_pos
        err[3:] = orientation_error(self._desired_ori, arm.ref_ori_mat)
        vel = np.concatenate([arm.ref_pos_vel, arm.ref_ori_vel])
        base_vel = np.concatenate([np.dot(self._center_jacp, d.qvel), np.dot(self._center_jacr, d.qvel)])
        vel_err = -(vel - base_vel)
        desired = err * arm.kp + vel_err * arm.kd
        lambda_full, lambda_pos, lambda_ori, nullspace_matrix = opspace_matrices(
            arm.mass_matrix, arm.J_full, arm.J_pos, arm.J_ori)
        if arm.uncoupling:
            decoupled_wrench = np.concatenate([np.dot(lambda_pos, desired[:3]), np.dot(lambda_ori, desired[3:])])
        else:
            decoupled_wrench = np.dot(lambda_full, desired)
        torques = np.dot(arm.J_full.T, decoupled_wrench) + d.qfrc_bias[self._dofs]
        torques += nullspace_torques(arm.mass_matrix, nullspace_matrix, arm.initial_joint, arm.joint_pos,
                                     arm.joint_vel)
        arm.torques = torques
        return torques

    # ------------------------------------------------------------------ step
    def step(self, action: np.ndarray) -> tuple[OrderedDict, float, bool, dict[str, Any]]:
        """One control step, as ``robosuite.environments.base.MujocoEnv.step`` (no viewer)."""
        scene, m, d = self.scene, self._m, self._d
        if scene.done:
            raise ValueError("executing action in terminated episode")
        scene.timestep += 1
        self._arm = scene.robots[0].composite_controller.part_controllers["right"]
        if scene._observables is not getattr(self, "_observables_of", None):  # new after a hard reset
            self.trim_observables()
        mujoco.mj_step1(m, d)
        self._policy_substep(action)
        mujoco.mj_step2(m, d)
        self._update_observables()
        ctrl, idx, lo, hi = d.ctrl, self._arm_ctrl_idx, self._ctrl_lo, self._ctrl_hi
        for _ in range(self._substeps - 1):
            mujoco.mj_step1(m, d)
            ctrl[idx] = _clip(self._arm_torques(), lo, hi)
            self._arm.new_update = True  # as ``Controller.run_controller`` leaves it
            mujoco.mj_step2(m, d)
            self._update_observables()
        self._sync_clocks()
        scene.cur_time += scene.control_timestep
        reward, done, info = scene._post_action(action)
        return self.observations(), reward, done, info
