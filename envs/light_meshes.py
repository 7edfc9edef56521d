"""Lighter visual meshes for software rendering, with the physics model unchanged.

With software rendering (llvmpipe), drawing a camera image costs about the number of mesh faces in
view, nearly independent of the image size. robosuite's visual meshes are detailed CAD exports: in
the Lift scene the Panda's link meshes, its gripper and the mount's pedestal hold 159k of the scene's
183k faces, and drawing them was about 90% of a 64x64 frame's time. At 64-256 px the detail is
below a pixel.

:func:`build_model` replaces robosuite's ``MjSim.from_xml_string`` model build
(``MujocoEnv._initialize_sim``): it compiles the same XML through ``mujoco.MjSpec``, and before the
final compile it decimates (quadric edge collapse, ``fast_simplification``) each mesh that is
*purely visual*: every geom using it has ``contype = conaffinity = 0`` and no textured material,
and it has at least :data:`MIN_FACES` faces. Collision meshes, inertias, masses, joints and every
other model field stay as compiled from the XML, so trajectories are bit-identical
(``tests/test_env_speed_physics.py``); only the look changes, by under one grey level on average at
64 px. The mesh vertices are put back in the asset's own frame (undoing MuJoCo's recentring,
``mesh_pos`` / ``mesh_quat``), so the lighter mesh sits where the detailed one did.

The decimation is deterministic; its result depends on the ``fast_simplification`` version, which is
pinned for that reason (``setup.cfg``). Decimated meshes are memoised per process.
"""

from __future__ import annotations

from safeadapt_bench.envs.rendering import select_backend

select_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

#: Fraction of a visual mesh's faces kept (the env's ``mesh_detail`` default). Measured over 100
#: seeded Lift steps at 64 px against the full meshes: 0.3 changes the front image by 0.6 grey levels
#: on average (0.15: 1.3; 0.05: 2.9, the pedestal's shape visibly changes) and draws 56k faces of 167k.
FACE_FRACTION = 0.3
#: Meshes with fewer faces are left as they are (a small part costs little to draw).
MIN_FACES = 1000

_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _purely_visual(model: mujoco.MjModel) -> dict[int, int]:
    """Mesh id -> face count, for meshes used only by non-colliding, untextured geoms."""
    users: dict[int, list[int]] = {}
    for g in np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH):
        users.setdefault(int(model.geom_dataid[g]), []).append(int(g))
    out = {}
    for mesh, geoms in users.items():
        collides = any(model.geom_contype[g] or model.geom_conaffinity[g] for g in geoms)
        textured = any(model.geom_matid[g] >= 0 and (model.mat_texid[model.geom_matid[g]] >= 0).any()
                       for g in geoms)
        if not collides and not textured:
            out[mesh] = int(model.mesh_facenum[mesh])
    return out


def _decimated(model: mujoco.MjModel, mesh: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The mesh's vertices (in the asset's frame) and faces, decimated to ``fraction`` of its faces."""
    import fast_simplification

    va, nv = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
    fa, nf = model.mesh_faceadr[mesh], model.mesh_facenum[mesh]
    vert, face = model.mesh_vert[va:va + nv], model.mesh_face[fa:fa + nf]
    key = (vert.tobytes(), face.tobytes(), fraction)
    if key not in _CACHE:
        # Weld the copies of a vertex that the asset splits at normal or texture seams: the
        # decimation collapses edges of one connected surface, not of a triangle soup.
        vert, index = np.unique(vert, axis=0, return_inverse=True)
        face = index.reshape(-1)[face]
        face = face[(face[:, 0] != face[:, 1]) & (face[:, 1] != face[:, 2]) & (face[:, 0] != face[:, 2])]
        v, f = fast_simplification.simplify(vert, face.astype(np.int32), target_reduction=1.0 - fraction)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.mesh_quat[mesh])
        v = v.astype(np.float64) @ rot.reshape(3, 3).T + model.mesh_pos[mesh]  # undo MuJoCo's recentring
        _CACHE[key] = (v, f.astype(np.int64))
    return _CACHE[key]


def check_fraction(fraction: float) -> float:
    """``fraction`` as a float in ``(0, 1]`` (the env's ``mesh_detail``); a clear error otherwise."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"mesh_detail must be a fraction of faces in (0, 1], got {fraction!r}; "
                         "1.0 draws robosuite's full meshes.")
    return float(fraction)


def build_model(xml: str, face_fraction: float = FACE_FRACTION) -> mujoco.MjModel:
    """Compile ``xml`` into a model whose purely visual meshes keep ``face_fraction`` of their faces.

    ``face_fraction=1`` compiles the XML as robosuite does, every mesh as loaded.
    """
    full = mujoco.MjModel.from_xml_string(xml)
    if check_fraction(face_fraction) == 1.0:
        return full
    spec = mujoco.MjSpec.from_string(xml)  # a fresh spec: one compiled already cannot take new mesh data
    for mesh, faces in _purely_visual(full).items():
        if faces < MIN_FACES:
            continue
        vert, face = _decimated(full, mesh, face_fraction)
        asset = spec.mesh(mujoco.mj_id2name(full, mujoco.mjtObj.mjOBJ_MESH, mesh))
        asset.file, asset.scale = "", [1.0, 1.0, 1.0]
        asset.usernormal, asset.userfacenormal, asset.usertexcoord, asset.userfacetexcoord = [], [], [], []
        asset.uservert, asset.userface = vert.ravel().tolist(), face.ravel().tolist()
    return spec.compile()


def simplifier_version() -> str:
    """The installed ``fast_simplification`` version (its output is the drawn geometry)."""
    from importlib.metadata import version

    return version("fast-simplification")


def face_count(model: mujoco.MjModel, visual_only: bool = True) -> int:
    """Number of mesh faces drawn (those of purely visual meshes with ``visual_only``)."""
    if visual_only:
        return sum(_purely_visual(model).values())
    return int(model.nmeshface)
