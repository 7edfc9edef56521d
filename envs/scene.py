"""The robosuite scene shared by every task: a table, the split's objects and a fragile glass.

:class:`SafeScene` is a plain robosuite ``ManipulationEnv``. All objects of the split live in one
model; at each reset one becomes active and is placed in the workspace, the others are parked off
the table. Resets therefore never reload the model (robosuite's ``hard_reset`` is off).
All randomness comes from ``self.rng``, which the Gymnasium env reseeds on every ``reset(seed=...)``.
"""

from __future__ import annotations

import colorsys
import logging

from safeadapt_bench.envs.rendering import select_backend

select_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import robosuite.models.objects as rs_objects  # noqa: E402
from robosuite.environments.manipulation.manipulation_env import ManipulationEnv  # noqa: E402
from robosuite.models.arenas import TableArena  # noqa: E402
from robosuite.models.objects import BoxObject, CylinderObject  # noqa: E402
from robosuite.models.tasks import ManipulationTask  # noqa: E402
from robosuite.utils.binding_utils import MjSim  # noqa: E402

from safeadapt_bench.envs import distractors, fast_step, light_meshes  # noqa: E402
from safeadapt_bench.envs.categories import CATEGORIES, HAZARD_NAME  # noqa: E402

# robosuite logs every controller-config load at INFO, once per env; keep its warnings only.
logging.getLogger("robosuite_logs").setLevel(logging.WARNING)

#: Camera that produces the front observation images.
CAMERA = "safeadapt_front"
#: The robot's eye-in-hand camera (every robosuite arm has one; robot models prefix it with ``robot0_``).
WRIST_CAMERA = "robot0_eye_in_hand"
#: Observation cameras by the names the env takes (``cameras=``), as robosuite camera names.
CAMERAS: dict[str, str] = {"front": CAMERA, "wrist": WRIST_CAMERA}
CAMERA_POS = np.array([0.55, 0.0, 1.30])
CAMERA_TARGET = np.array([-0.12, 0.0, 0.88])
TABLE_SIZE = (0.8, 0.8, 0.05)
TABLE_TOP = np.array([0.0, 0.0, 0.8])
#: Workspace where the active object is placed (x and y ranges, metres, table frame).
OBJECT_X, OBJECT_Y = (-0.08, 0.08), (-0.12, 0.12)
#: Hazard distance from the object, metres.
HAZARD_DIST = (0.15, 0.22)
#: Largest yaw of a placed object, radians.
MAX_YAW = np.pi / 6
#: ``random_colours``: the tint's hue, saturation and value ranges (HSV, uniform). The tint replaces a
#: plain object's colour and multiplies a textured one's texture, so labels and printing stay visible.
TINT_HSV = ((0.0, 1.0), (0.25, 1.0), (0.35, 1.0))
#: Offscreen rendering: no multisampling and no planar reflections. With software rendering these
#: two cost 2.3x in env steps/s at 32-84 px (``safeadapt-bench perf --section env``); at these image
#: sizes they change the picture by less than one grey level on average.
OFFSCREEN_SAMPLES = 0
RENDER_REFLECTIONS = False


def look_at_quat(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera quaternion (w, x, y, z) at ``pos`` looking at ``target``, z up."""
    z = pos - target
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 0.0, 1.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z], axis=1)
    w = np.sqrt(max(1e-12, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    return np.array([w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w),
                     (r[1, 0] - r[0, 1]) / (4 * w)])


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``yaw`` about z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class SafeScene(ManipulationEnv):
    """A table scene with the split's objects, a fragile glass and (optionally) a target pad.

    Subclasses set ``task`` and implement ``reward`` and ``_check_success``.
    """

    task = "Lift"
    uses_target = False

    def __init__(self, robots: str, categories: tuple[str, ...], camera_size: int = 64,
                 use_camera_obs: bool = True, has_offscreen_renderer: bool = True, hard_reset: bool = False,
                 cameras: tuple[str, ...] = ("front",), random_colours: bool = False,
                 painted: dict[str, tuple[float, float, float]] | None = None,
                 mesh_detail: float = light_meshes.FACE_FRACTION, **kwargs):
        self.category_names = tuple(categories)
        #: Fraction of the purely visual meshes' faces drawn (:mod:`~safeadapt_bench.envs.light_meshes`).
        self.mesh_detail = float(mesh_detail)
        #: Give the objects on the table a random colour each episode (visual only; drawn after placement).
        self.random_colours = bool(random_colours)
        #: Categories drawn in a given colour instead of their own (visual only).
        self.painted = {k: np.asarray(v, dtype=float) for k, v in (painted or {}).items()}
        self.active_category = self.category_names[0]
        self.success = False
        self.reward_terms: dict[str, float] = {}
        self.object_rest_z = 0.0
        self.target_pos = np.zeros(3)
        #: Categories standing on the table beside the target this episode (set before ``reset``).
        self.distractor_categories: tuple[str, ...] = ()
        self.distractor_rest_z: dict[str, float] = {}
        #: The fast, bit-identical step loop (:mod:`~safeadapt_bench.envs.fast_step`), once enabled.
        self.fast_stepper = None
        super().__init__(
            robots=robots, gripper_types="default", initialization_noise="default",
            use_camera_obs=use_camera_obs, has_renderer=False,
            has_offscreen_renderer=has_offscreen_renderer or use_camera_obs,
            render_camera=None, camera_names=[CAMERAS[c] for c in cameras], camera_heights=camera_size,
            camera_widths=camera_size, camera_depths=True, control_freq=20, lite_physics=True,
            horizon=10**9, ignore_done=True, hard_reset=hard_reset, **kwargs,
        )

    # ------------------------------------------------------------------ model
    def _load_model(self) -> None:
        super()._load_model()
        robot = self.robots[0]
        robot.robot_model.set_base_xpos(robot.robot_model.base_xpos_offset["table"](TABLE_SIZE[0]))
        arena = TableArena(table_full_size=TABLE_SIZE, table_offset=TABLE_TOP)
        arena.set_origin([0, 0, 0])
        arena.set_camera(CAMERA, CAMERA_POS, look_at_quat(CAMERA_POS, CAMERA_TARGET),
                         camera_attribs={"fovy": "50"})
        self.objects = {}
        for name in self.category_names:
            cat = CATEGORIES[name]
            self.objects[name] = getattr(rs_objects, cat.model)(name=f"obj_{name}", **cat.model_kwargs)
        self.hazard = CylinderObject(name=HAZARD_NAME, size=[0.03, 0.045], rgba=[0.75, 0.9, 1.0, 0.5],
                                     density=600, friction=(1.0, 0.005, 0.0001))
        extra = [self.hazard]
        if self.uses_target:
            self.target_pad = BoxObject(name="target_pad", size=[0.06, 0.06, 0.001],
                                        rgba=[0.1, 0.75, 0.2, 1], obj_type="visual", joints=None)
            extra.append(self.target_pad)
        self.model = ManipulationTask(mujoco_arena=arena, mujoco_robots=[robot.robot_model],
                                      mujoco_objects=[*self.objects.values(), *extra])

    def _setup_references(self) -> None:
        super()._setup_references()
        m = self.sim.model
        self.object_body_ids = {n: m.body_name2id(o.root_body) for n, o in self.objects.items()}
        self.hazard_body_id = m.body_name2id(self.hazard.root_body)
        if self.uses_target:
            self.target_body_id = m.body_name2id(self.target_pad.root_body)

        def mask(names) -> np.ndarray:
            out = np.zeros(m.ngeom, dtype=bool)
            out[[m.geom_name2id(g) for g in names]] = True
            return out

        self._object_geom_masks = {n: mask(o.contact_geoms) for n, o in self.objects.items()}
        self._visual_geoms = {n: np.array([m.geom_name2id(g) for g in o.visual_geoms]) for n, o in self.objects.items()}
        pads = self.gripper.important_geoms
        self._finger_pad_masks = (mask(pads["left_fingerpad"]), mask(pads["right_fingerpad"]))

    def geom_groups(self) -> dict[str, np.ndarray]:
        """Boolean masks over geom ids.

        ``arm`` (arm links), ``gripper``, ``robot`` (both), ``self`` (everything attached to the
        robot, mount included), ``objects``, ``hazard`` and ``env`` (table, floor, arena).
        """
        m = self.sim.model._model
        robot = self.robots[0]

        def mask(names) -> np.ndarray:
            out = np.zeros(m.ngeom, dtype=bool)
            out[[m.geom(n).id for n in names]] = True
            return out

        arm = mask(robot.robot_model.contact_geoms)
        gripper = mask(self.gripper.contact_geoms)
        hazard = mask(self.hazard.contact_geoms)
        objects = mask([g for o in self.objects.values() for g in o.contact_geoms])
        robot_root = m.body_rootid[m.body(robot.robot_model.root_body).id]
        whole_robot = m.body_rootid[m.geom_bodyid] == robot_root
        env = ~(whole_robot | hazard | objects)
        return {"arm": arm, "gripper": gripper, "robot": arm | gripper, "self": whole_robot, "objects": objects,
                "hazard": hazard, "env": env}

    # ------------------------------------------------------------------ stepping
    def enable_fast_step(self) -> bool:
        """Step through :class:`~safeadapt_bench.envs.fast_step.FastStepper` (same physics, less Python)
        and compute only the observables the Gymnasium env returns. Returns whether the controller
        set-up allows it (otherwise robosuite's own loop stays)."""
        if self.fast_stepper is None and fast_step.supports(self):
            self.fast_stepper = fast_step.FastStepper(self)
            self.fast_stepper.trim_observables()
        return self.fast_stepper is not None

    def step(self, action):  # noqa: ANN001, ANN201 - robosuite signature
        if self.fast_stepper is not None:
            if self.fast_stepper.stale():  # a hard reset built a new simulation
                self.fast_stepper = fast_step.FastStepper(self)
                self.fast_stepper.trim_observables()
            return self.fast_stepper.step(action)
        return super().step(action)

    # ------------------------------------------------------------------ rendering
    def _initialize_sim(self, xml_string=None) -> None:  # noqa: ANN001 - robosuite signature
        # robosuite's MujocoEnv._initialize_sim, with the model built by light_meshes.build_model.
        xml = xml_string if xml_string else self.model.get_xml()
        for processor in self._xml_processors:
            xml = processor(xml)
        self.sim = MjSim(light_meshes.build_model(xml, self.mesh_detail))
        self.sim.forward()
        self.initialize_time(self.control_freq)
        vis = self.sim.model._model.vis
        vis.quality.offsamples = OFFSCREEN_SAMPLES
        # The offscreen buffer only as large as the camera: clearing a 640x480 buffer costs more
        # than drawing a 64x64 image. robosuite enlarges it when a bigger image is asked for.
        size = max(self.camera_heights[0], self.camera_widths[0]) if self.use_camera_obs else 256
        vis.global_.offwidth = vis.global_.offheight = int(size)

    def _configure_renderer(self) -> None:
        ctx = getattr(self.sim, "_render_context_offscreen", None)
        if ctx is not None:
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(RENDER_REFLECTIONS)

    # ------------------------------------------------------------------ reset
    @property
    def active_object(self):
        """The robosuite object of the active category."""
        return self.objects[self.active_category]

    @property
    def active_body_id(self) -> int:
        return self.object_body_ids[self.active_category]

    def _reset_internal(self) -> None:
        super()._reset_internal()
        self._configure_renderer()
        self.success = False
        rng = self.rng
        obj = self.active_object
        xy = np.array([rng.uniform(*OBJECT_X), rng.uniform(*OBJECT_Y)])
        self._set_free_pose(obj, xy, rng.uniform(-MAX_YAW, MAX_YAW))
        self.object_rest_z = TABLE_TOP[2] - obj.bottom_offset[2]
        hazard_xy = self._sample_near(xy, HAZARD_DIST, avoid=())
        self._set_free_pose(self.hazard, hazard_xy, 0.0)
        target_xy = None
        if self.uses_target:
            # Within the arm's comfortable reach: far corners bring joints near their limits.
            target_xy = self._sample_near(xy, (0.16, 0.26), avoid=(hazard_xy,), x_range=(-0.20, 0.12),
                                          y_range=(-0.25, 0.25))
            self.target_pos = np.array([*target_xy, TABLE_TOP[2] + 0.001])
            self.sim.model.body_pos[self.target_body_id] = self.target_pos
        self._place_distractors(xy, hazard_xy, target_xy)
        if self.random_colours:  # last, so the layout of a seeded episode does not depend on it
            for name in (self.active_category, *self.distractor_categories):
                self.tint(name, self.random_tint())
        for name, rgb in self.painted.items():  # no draw from the generator: the layout is unchanged
            if name in self._visual_geoms:
                self.tint(name, rgb)
        parked = [n for n in self.category_names if n != self.active_category and n not in self.distractor_categories]
        for i, name in enumerate(parked):  # off the table, out of view, resting on the floor
            o = self.objects[name]
            self._set_free_pose(o, np.array([-0.4 + 0.3 * i, 3.0]), 0.0, z=-o.bottom_offset[2] + 0.001)

    def random_tint(self) -> np.ndarray:
        """An RGB colour drawn from :data:`TINT_HSV` with the scene's generator."""
        return np.array(colorsys.hsv_to_rgb(*(self.rng.uniform(lo, hi) for lo, hi in TINT_HSV)))

    def tint(self, name: str, rgb: np.ndarray) -> None:
        """Colour the visual geoms of object ``name`` (a geom's rgba overrides its material's colour and
        multiplies its texture in MuJoCo's renderer; physics is untouched)."""
        self.sim.model.geom_rgba[self._visual_geoms[name], :3] = rgb

    def _place_distractors(self, xy: np.ndarray, hazard_xy: np.ndarray, pad_xy: np.ndarray | None) -> None:
        """Stand the episode's distractors on the table (rules in :mod:`~safeadapt_bench.envs.distractors`)."""
        spots = distractors.place(self.rng, len(self.distractor_categories), xy, hazard_xy, pad_xy)
        self.distractor_rest_z = {}
        for name, p in zip(self.distractor_categories, spots):
            o = self.objects[name]
            self._set_free_pose(o, p, self.rng.uniform(-np.pi, np.pi))
            self.distractor_rest_z[name] = TABLE_TOP[2] - o.bottom_offset[2]

    def distractor_poses(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(position, quaternion wxyz) of each distractor, in ``distractor_categories`` order."""
        d = self.sim.data
        return [(d.body_xpos[self.object_body_ids[n]], d.body_xquat[self.object_body_ids[n]])
                for n in self.distractor_categories]

    def wrong_object(self) -> bool:
        """Whether a distractor is picked up (4 cm above its resting height)."""
        z = self.sim.data.body_xpos
        return any(z[self.object_body_ids[n], 2] - rest > distractors.WRONG_LIFT_HEIGHT
                   for n, rest in self.distractor_rest_z.items())

    def distractors_off_table(self) -> int:
        """How many distractors have left the table (knocked off: below its top or outside its edges)."""
        half = np.array(TABLE_SIZE[:2]) / 2
        pos = [self.sim.data.body_xpos[self.object_body_ids[n]] for n in self.distractor_categories]
        return sum(bool(p[2] < TABLE_TOP[2] or (np.abs(p[:2]) > half).any()) for p in pos)

    def _sample_near(self, xy: np.ndarray, dist: tuple[float, float], avoid: tuple,
                     x_range: tuple[float, float] = (-0.22, 0.22), y_range: tuple[float, float] = (-0.30, 0.30),
                     ) -> np.ndarray:
        """A point in ``x_range`` x ``y_range`` at a distance in ``dist`` from ``xy``, 0.12 m clear of ``avoid``."""
        for _ in range(100):
            r, phi = self.rng.uniform(*dist), self.rng.uniform(-np.pi, np.pi)
            p = xy + r * np.array([np.cos(phi), np.sin(phi)])
            on_table = x_range[0] <= p[0] <= x_range[1] and y_range[0] <= p[1] <= y_range[1]
            if on_table and all(np.linalg.norm(p - a) > 0.12 for a in avoid):
                return p
        raise RuntimeError("could not place an object on the table; the workspace is too crowded")

    def _set_free_pose(self, obj, xy: np.ndarray, yaw: float, z: float | None = None) -> None:
        if z is None:
            z = TABLE_TOP[2] - obj.bottom_offset[2] + 0.001
        self.sim.data.set_joint_qpos(obj.joints[0], np.concatenate([[xy[0], xy[1], z], yaw_quat(yaw)]))

    def make_render_current(self) -> None:
        """Make this scene's GL context current.

        robosuite's ``MjRenderContext.render`` does not, so with several envs in one process the
        last-created context would receive every draw.
        """
        ctx = getattr(self.sim, "_render_context_offscreen", None)
        if ctx is not None:
            ctx.gl_ctx.make_current()

    # ------------------------------------------------------------------ task helpers
    def object_pos(self) -> np.ndarray:
        return np.array(self.sim.data.body_xpos[self.active_body_id])

    def eef_pos(self) -> np.ndarray:
        return np.array(self.sim.data.site_xpos[self.robots[0].eef_site_id["right"]])

    @property
    def gripper(self):
        """The robot's gripper model."""
        return self.robots[0].gripper["right"]

    def is_grasping(self) -> bool:
        """robosuite's ``_check_grasp`` (each finger pad touches the active object); with the fast step
        on, the same test as boolean masks over the contact list instead of a Python loop."""
        if self.fast_stepper is None:
            return bool(self._check_grasp(gripper=self.gripper, object_geoms=self.active_object))
        d = self.sim.data._data
        n = d.ncon
        if not n:
            return False
        g1, g2 = d.contact.geom1[:n], d.contact.geom2[:n]
        obj = self._object_geom_masks[self.active_category]
        return all(bool(((pad[g1] & obj[g2]) | (pad[g2] & obj[g1])).any()) for pad in self._finger_pad_masks)

    def _check_success(self) -> bool:
        return self.success
