"""Where the object is in 3-D: the depth pixels under the object head's attention, back-projected.

The backbone's object head (:mod:`~safeadapt_bench.backbones.object_head`, fitted on all ten
categories) says on its 8x8 token grid *which patches* hold the object. A patch is 2-4 cm of table in
the wrist view and 8.6 cm in the front view, too coarse for a grasp. The depth image, through the
camera's calibration, says where every pixel is. :func:`patch_clouds` back-projects each camera's depth
pixels into the world frame and keeps, per patch, the count, the sum and the highest of the points that
stand on the table (above it, not the gripper's own fingers); :func:`attended_point` weights the patches
by the squared attention of the object head and returns the mean of those points (the visible surface
of the object, with pixel precision, whatever its colour) and the attended patches' top: how high the
object stands, which sets the grasp height (the scripted expert grasps 1.7 cm below the top).

The calibration (:class:`CameraCalibration`) is what a real robot's camera calibration gives: the
vertical field of view, and the camera's pose in the world frame (a fixed camera) or in the
end-effector's frame (a wrist camera, placed each step from the end-effector pose in ``proprio``). The
env reports its own with ``env.unwrapped.camera_calibration()``; :data:`PANDA_CALIBRATION` is the
Lift / PickPlace scene's with the Panda arm, the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from safeadapt_bench.backbones.loader import _channels_first

#: Pixels nearer to the camera than this (metres) are ignored: the wrist camera sees its own fingers.
NEAR_CLIP = 0.06
#: Points this far above the table top (metres) count as standing on it.
ABOVE_TABLE = 0.004
#: ... and this far above it at most (higher: the arm reaching into the front view).
MAX_HEIGHT = 0.4


@dataclass(frozen=True)
class CameraCalibration:
    """One camera's intrinsics and pose (MuJoCo's convention: the camera looks along its -z, y up).

    Attributes:
        fovy: vertical field of view, degrees.
        frame: ``"world"`` (a fixed camera) or ``"eef"`` (mounted on the end effector).
        pos: the camera's position in that frame, metres.
        rot: its 3x3 rotation matrix in that frame, row-major (9 numbers).
    """

    fovy: float
    frame: str
    pos: tuple[float, float, float]
    rot: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.frame not in ("world", "eef"):
            raise ValueError(f"CameraCalibration.frame must be 'world' or 'eef', not {self.frame!r}.")
        if len(self.pos) != 3 or len(self.rot) != 9:
            raise ValueError("CameraCalibration needs pos (3 numbers) and rot (a 3x3 matrix as 9 numbers).")


def calibration_dict(cameras: dict[str, CameraCalibration], table_z: float) -> dict:
    """A plain (JSON-able) form: ``{"table_z": z, "cameras": {name: {...}}}``."""
    return {"table_z": float(table_z), "cameras": {k: asdict(v) for k, v in cameras.items()}}


def parse_calibration(calibration: dict) -> tuple[dict[str, CameraCalibration], float]:
    """The inverse of :func:`calibration_dict`, with a clear error for a malformed one."""
    try:
        cams = {k: CameraCalibration(float(v["fovy"]), str(v["frame"]), tuple(map(float, v["pos"])),
                                     tuple(map(float, v["rot"])))
                for k, v in calibration["cameras"].items()}
        return cams, float(calibration["table_z"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"A camera calibration is {{'table_z': z, 'cameras': {{name: {{fovy, frame, pos, rot}}}}}}; "
                         f"got {calibration!r} ({e}). Take it from env.unwrapped.camera_calibration().") from e


#: The Lift / PickPlace scene's calibration with the Panda (``env.unwrapped.camera_calibration()``
#: reports the same; ``tests/test_depth_points.py`` checks it).
PANDA_CALIBRATION: dict = calibration_dict({
    "front": CameraCalibration(50.0, "world", (0.55, 0.0, 1.3), (
        0.0, -0.531135, 0.847287, 1.0, 0.0, 0.0, 0.0, 0.847287, 0.531135)),
    "wrist": CameraCalibration(75.0, "eef", (0.05, 0.0, -0.097), (
        0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0)),
}, 0.8)


def quat_xyzw_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """``(B, 4)`` unit quaternions ``(x, y, z, w)`` (robosuite's order, as in ``proprio``) -> ``(B, 3, 3)``."""
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x, y, z, w = q.unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], 1).reshape(-1, 3, 3)


def camera_points(depth: torch.Tensor, cam: CameraCalibration, eef_pos: torch.Tensor | None = None,
                  eef_rot: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 1, S, S)`` planar depth (metres, row 0 at the top) -> ``(B, S, S, 3)`` world points."""
    depth = _channels_first(depth, 1, "depth")
    s = depth.shape[-1]
    f = (s / 2) / torch.tan(torch.deg2rad(torch.tensor(cam.fovy, dtype=depth.dtype)) / 2)
    centre = torch.arange(s, dtype=depth.dtype, device=depth.device) + 0.5 - s / 2
    d = depth[:, 0]
    x = centre[None, None, :] / f * d
    y = -centre[None, :, None] / f * d
    local = torch.stack([x, y, -d], -1)  # camera frame
    rot = torch.as_tensor(cam.rot, dtype=depth.dtype, device=depth.device).reshape(3, 3)
    pos = torch.as_tensor(cam.pos, dtype=depth.dtype, device=depth.device)
    pts = local @ rot.T + pos
    if cam.frame == "eef":
        if eef_pos is None or eef_rot is None:
            raise ValueError("A wrist camera's points need the end-effector pose (proprio).")
        pts = torch.einsum("bij,bhwj->bhwi", eef_rot, pts) + eef_pos[:, None, None, :]
    return pts


def patch_clouds(depth: torch.Tensor, cam: CameraCalibration, table_z: float, grid: int,
                 eef_pos: torch.Tensor | None = None, eef_rot: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, grid**2, 5)``: per patch (row-major), the fraction of its pixels that stand on the table, the
    sum of their world points divided by the patch's pixel count, and the height of the highest of them
    above the table (0 when none). Fixed by the depth image and the pose: computed once per frame."""
    depth = _channels_first(depth, 1, "depth")
    pts = camera_points(depth, cam, eef_pos, eef_rot)
    z = pts[..., 2]
    keep = (z > table_z + ABOVE_TABLE) & (z < table_z + MAX_HEIGHT) & (depth[:, 0] > NEAR_CLIP)
    vals = torch.cat([keep[..., None].to(pts.dtype), pts * keep[..., None]], -1).permute(0, 3, 1, 2)
    vals = F.adaptive_avg_pool2d(vals, grid)  # (B, 4, grid, grid): per patch, whatever the image size
    top = F.adaptive_max_pool2d(((z - table_z) * keep)[:, None], grid)  # (B, 1, grid, grid)
    # contiguous: the attended sums then reduce in one order, whether the clouds were cached or not
    return torch.cat([vals, top], 1).flatten(2).transpose(1, 2).contiguous()


def attended_point(clouds: torch.Tensor, attention: torch.Tensor, table_z: float) -> torch.Tensor:
    """``(B, 5)``: the object's point (world x, y and height above the table) under ``attention``
    ``(B, grid**2)`` squared, the attended fraction of pixels on the table (a confidence), and the
    attended patches' top height above the table (where a grasp starts: the expert's is 1.7 cm below it)."""
    w = attention ** 2
    w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    n = (w * clouds[..., 0]).sum(1, keepdim=True)
    point = (w[..., None] * clouds[..., 1:4]).sum(1) / n.clamp_min(1e-6)
    point = point - torch.tensor([0.0, 0.0, table_z], dtype=point.dtype, device=point.device)
    on_table = (clouds[..., 0] > 0).to(w.dtype)
    top = (w * clouds[..., 4]).sum(1, keepdim=True) / (w * on_table).sum(1, keepdim=True).clamp_min(1e-12)
    found = n > 1e-6
    point = torch.where(found, point, torch.zeros_like(point))  # nothing attended on the table: zeros
    return torch.cat([point, n, torch.where(found, top, torch.zeros_like(top))], 1)
