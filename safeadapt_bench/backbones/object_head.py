"""The backbone's object head: where the object is in each camera's patch tokens, and how near.

Trained with the spatial objective (:mod:`~safeadapt_bench.backbones.spatial`) and shipped with the
backbone, like a detector head with its tower: per camera, a linear logit per patch token (a softmax
over the grid puts the object), and a linear read-out of each token's depth channel. A policy gets
:meth:`ObjectHead.locate`'s numbers as category-agnostic features: it learns its own keypoints from
the logs' five categories, but this head was fitted on all ten.
"""

from __future__ import annotations

import torch
from torch import nn

#: Cameras the head has a keypoint map for, in order (env names).
HEAD_CAMERAS: tuple[str, ...] = ("front", "wrist")
#: State-dict prefix of the head in a checkpoint file.
PREFIX = "object_head."


class ObjectHead(nn.Module):
    """Linear heads on patch tokens ``(B, grid**2, width)``: a keypoint logit per camera, a depth read-out.

    Args:
        width: token width.
        grid: patches per side.
        cameras: camera names, one keypoint map each.
    """

    def __init__(self, width: int, grid: int, cameras: tuple[str, ...] = HEAD_CAMERAS) -> None:
        super().__init__()
        self.grid, self.cameras = grid, tuple(cameras)
        self.keypoint = nn.ModuleList(nn.Linear(width, 1) for _ in self.cameras)
        self.depth = nn.Linear(width, 1)
        lin = torch.linspace(-1, 1, grid)
        ys, xs = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("coords", torch.stack([xs.reshape(-1), ys.reshape(-1)], 1), persistent=False)

    def logits(self, patches: torch.Tensor, camera: str) -> torch.Tensor:
        """``(B, grid**2)`` keypoint logits of ``camera``'s map."""
        if camera not in self.cameras:
            raise ValueError(f"The object head has maps for {list(self.cameras)}, not {camera!r}.")
        return self.keypoint[self.cameras.index(camera)](patches).squeeze(-1)

    def locate(self, patches: torch.Tensor, camera: str) -> torch.Tensor:
        """``(B, 3)``: the object's expected ``(x, y)`` in ``[-1, 1]`` grid coordinates and the depth
        channel expected there."""
        attn = torch.softmax(self.logits(patches, camera), dim=1)
        xy = attn @ self.coords
        depth = (attn * self.depth(patches).squeeze(-1)).sum(1, keepdim=True)
        return torch.cat([xy, depth], dim=1)
