"""A stable-baselines3 features extractor that runs the env's Dict observation through a backbone.

Use with ``MultiInputPolicy`` on an env wrapped in ``InstructionTokens``::

    from safeadapt_bench.adapters import AdapterConfig
    from safeadapt_bench.features import BackboneExtractor
    policy_kwargs = dict(features_extractor_class=BackboneExtractor,
                         features_extractor_kwargs=dict(adapter=AdapterConfig("lora", rank=8),
                                                        pool="spatial_softmax"))
    PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs)

As robomimic's ``ObservationEncoder``, there is one visual encoder per camera (``rgb``/``depth`` the
front view, ``wrist_rgb``/``wrist_depth`` the wrist view), on one shared backbone: backbone -> pool
(``pool``: the backbone's pooled embedding, or a learned :mod:`~safeadapt_bench.pooling` head over
its patch tokens, per camera) -> features. Features are ``[each camera's visual feature, instruction
embedding, every other entry (proprio, state) flattened and normalised]``. The backbone stays frozen
unless the caller unfreezes it; adapters (if any) train through the image path. The text tower is
frozen, so instruction embeddings are cached by token ids.

The frozen part of the image path is split out (:meth:`BackboneExtractor.frozen_tokens`: the
tokens entering the first vision block with a trainable weight), so pre-training can compute it once
per logged frame and reuse it (:meth:`BackboneExtractor.features_from_tokens`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from safeadapt_bench.adapters import AdapterConfig, adapters_disabled, add_adapter, load_adapter
from safeadapt_bench.backbones import Backbone, load_backbone
from safeadapt_bench.depth_points import (
    PANDA_CALIBRATION,
    attended_point,
    parse_calibration,
    patch_clouds,
    quat_xyzw_to_matrix,
)
from safeadapt_bench.pooling import POOLS, make_pool

#: Image keys of each camera: (rgb, depth), as the env names them.
CAMERA_KEYS: dict[str, tuple[str, str]] = {"front": ("rgb", "depth"), "wrist": ("wrist_rgb", "wrist_depth")}
IMAGE_KEYS = tuple(k for keys in CAMERA_KEYS.values() for k in keys)
TEXT_KEY = "instruction"
#: Features per camera of ``object_points``.
OBJECT_POINT_DIM = 9
#: Which patch tokens a pooling head reads (see ``BackboneExtractor``).
POOL_TOKENS: tuple[str, ...] = ("last", "first", "both")


#: What the policy reads of ``proprio``: ``"full"`` (all 30 numbers, joints included) or ``"eef"`` (the end
#: effector's pose and the gripper's aperture, the same meaning on every arm; see ``extra_inputs``).
PROPRIO_MODES = ("full", "eef")
#: Length of ``proprio="eef"``: position 3, rotation 6, aperture and its rate 2.
EEF_PROPRIO_DIM = 11


class BackboneExtractor(BaseFeaturesExtractor):
    """Dict observation -> backbone image and text embeddings + the remaining entries.

    Args:
        observation_space: the env's Dict space (``rgb`` required; ``depth``, ``instruction``
            token ids and any Box entries optional).
        backbone: a :class:`Backbone`, or an open_clip model name (loaded with ``pretrained``);
            ``None``: the embedded default.
        pretrained: weights for a named backbone (see :func:`load_backbone`).
        adapter: an :class:`AdapterConfig` to add (named ``"policy"``), or a saved adapter file.
        use_depth: feed each camera's depth to the depth stem.
        cache_size: instruction embeddings kept in the cache (least recently used dropped).
        pool: ``"embedding"`` (the backbone's pooled embedding), ``"spatial_softmax"`` or
            ``"attention"`` (a learned head over the patch tokens, per camera; see
            :mod:`safeadapt_bench.pooling`). With a head, each camera's feature is the head's output
            followed by the pooled embedding.
        keypoints: keypoints of ``"spatial_softmax"``; queries: queries of ``"attention"``.
        pool_tokens: which patch tokens the head reads: the last block's (``"last"``), the patch
            embedding's (``"first"``: local appearance and position, before any block), or both
            side by side (``"both"``).
        pool_embedding: with a head, follow its output by the camera's pooled embedding (``False``:
            the head's output alone; the pooled embedding is the whole feature without a head).
        keypoint_features: token projections ``"spatial_softmax"`` reads at each keypoint.
        keypoint_depth: ``"spatial_softmax"`` also reads the camera's depth at each keypoint (its depth
            image averaged per patch): 3-D keypoints, which do not depend on the object's colour.
        instruction: feed the instruction embedding (``False``: the policy ignores ``instruction``).
        object_keypoints: add, per camera, what the backbone's object head says (the object's expected
            ``(x, y)`` in the image and the depth channel there; see
            :mod:`~safeadapt_bench.backbones.object_head`): features fitted on every category, not only
            the logs'.
        object_points: add, per camera, where the object is in 3-D: the depth pixels under the object
            head's attention back-projected through ``camera_calibration`` (the object's visible surface
            in the world frame, relative to the table and to the end effector, the attended fraction of
            pixels on the table, and the object's top height above the table and relative to the end
            effector; :mod:`~safeadapt_bench.depth_points`). Needs depth and ``proprio``.
        camera_calibration: the cameras' calibration (``env.unwrapped.camera_calibration()``);
            ``None``: the Panda scene's (:data:`~safeadapt_bench.depth_points.PANDA_CALIBRATION`).
        point_noise: std (metres) of Gaussian noise added to each object point while the extractor is in
            training mode (augmentation: the policy learns to act on a locator with that error).
        point_gate: with ``object_points`` and several cameras, where a later camera's point lies farther
            than this (metres) from the first camera's, the higher of the two is replaced by the lower (a
            camera that lost the object attends to the gripper, which is above the object until it holds
            it); ``None``: no gate.
        proprio: ``"full"`` (every proprio number, the arm's joints included) or ``"eef"`` (the end
            effector's pose and the gripper's aperture only: the same meaning on every robot, for a policy
            moved to another arm).
        locate_with_adapters: the object head (``object_keypoints``, ``object_points``) reads the adapted
            tokens (``True``), or the backbone's own, adapters disabled (``False``: the tokens the head was
            fitted on; adapters tuned on one robot's images then cannot move the locator on another's).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        backbone: Backbone | str | None = None,
        pretrained: str | Path | None = "default",
        adapter: AdapterConfig | str | Path | None = None,
        use_depth: bool = True,
        cache_size: int = 4096,
        pool: str = "embedding",
        keypoints: int = 32,
        queries: int = 4,
        pool_tokens: str = "last",
        pool_embedding: bool = True,
        keypoint_features: int = 0,
        keypoint_depth: bool = False,
        instruction: bool = True,
        object_keypoints: bool = False,
        object_points: bool = False,
        camera_calibration: dict | None = None,
        point_noise: float = 0.0,
        point_gate: float | None = None,
        proprio: str = "full",
        locate_with_adapters: bool = True,
    ):
        if not isinstance(observation_space, spaces.Dict) or "rgb" not in observation_space.spaces:
            raise ValueError(
                "BackboneExtractor needs a Dict observation space with an 'rgb' entry "
                f"(obs_mode 'rgbd' or 'rgbd+state'); got {observation_space}."
            )
        text_space = observation_space.spaces.get(TEXT_KEY) if instruction else None
        if text_space is not None and not isinstance(text_space, spaces.Box):
            raise ValueError(
                "obs['instruction'] must be token ids: wrap the env in safeadapt_bench.envs.wrappers.InstructionTokens."
            )
        if pool not in POOLS:
            raise ValueError(f"Unknown pool {pool!r}; choose one of {list(POOLS)}.")
        if pool_tokens not in POOL_TOKENS:
            raise ValueError(f"Unknown pool_tokens {pool_tokens!r}; choose one of {list(POOL_TOKENS)}.")
        if not isinstance(backbone, Backbone):
            backbone = load_backbone(backbone, pretrained)
        if object_keypoints and backbone.object_head is None:
            raise ValueError(f"object_keypoints=True needs a backbone with an object head; {backbone.model_name} "
                             f"({backbone.pretrained}) has none. Fit one with `safeadapt-bench backbone spatial` "
                             "(or safeadapt_bench.backbones.spatial.fit_object_head), or set object_keypoints=False.")
        width = backbone.vision_width * (2 if pool_tokens == "both" else 1)
        cameras = [c for c, (rgb_key, _) in CAMERA_KEYS.items() if rgb_key in observation_space.spaces]
        calibration = self._check_object_points(object_points, observation_space, backbone, cameras,
                                                camera_calibration)
        if keypoint_depth and not all(CAMERA_KEYS[c][1] in observation_space.spaces for c in cameras):
            raise ValueError("keypoint_depth=True needs each camera's depth image in the observation "
                             "(obs_mode 'rgbd').")
        learned = pool not in ("embedding", "none")
        heads = {c: make_pool(pool, width, backbone.grid_size, keypoints=keypoints, queries=queries,
                              keypoint_features=keypoint_features, keypoint_depth=keypoint_depth)
                 for c in cameras} if learned else {}
        if proprio not in PROPRIO_MODES:
            raise ValueError(f"Unknown proprio {proprio!r}; choose one of {list(PROPRIO_MODES)}.")
        extra = [k for k in observation_space.spaces if k not in (*IMAGE_KEYS, TEXT_KEY)]
        n_extra = sum(EEF_PROPRIO_DIM if (k, proprio) == ("proprio", "eef")
                      else int(torch.tensor(observation_space.spaces[k].shape).prod()) for k in extra)
        if pool == "none" and not (object_keypoints or object_points):
            raise ValueError("pool='none' leaves only the object head's features: set object_keypoints=True (or "
                             "object_points=True), or pick another pool.")
        pool_embedding = pool == "embedding" or (pool_embedding and pool != "none")
        per_camera = (backbone.embed_dim * pool_embedding + (next(iter(heads.values())).out_dim if heads else 0)
                      + 3 * object_keypoints + OBJECT_POINT_DIM * object_points)
        dim = per_camera * len(cameras) + (backbone.embed_dim if text_space is not None else 0) + n_extra
        super().__init__(observation_space, features_dim=dim)
        self.backbone = backbone
        self.cameras, self.pool, self.pool_tokens = cameras, pool, pool_tokens
        self.pool_embedding = pool_embedding
        self.object_keypoints = object_keypoints
        self.object_points = bool(object_points)
        self.calibration = calibration
        if not (point_noise >= 0.0 and math.isfinite(point_noise)):
            raise ValueError(f"point_noise is a standard deviation in metres (>= 0); got {point_noise!r}.")
        self.point_noise = float(point_noise)
        if point_gate is not None and not (point_gate > 0.0 and math.isfinite(point_gate)):
            raise ValueError(f"point_gate is a distance in metres (> 0) or None; got {point_gate!r}.")
        self.point_gate = None if point_gate is None else float(point_gate)
        self.keypoint_depth = bool(keypoint_depth) and learned
        self.pools = torch.nn.ModuleDict(heads)
        #: Normalisation of the other entries (``(x - mean) / std``); pre-training sets it from the logs.
        self.register_buffer("extra_mean", torch.zeros(n_extra))
        self.register_buffer("extra_std", torch.ones(n_extra))
        if isinstance(adapter, AdapterConfig):
            add_adapter(backbone, adapter, "policy")
        elif adapter is not None:
            load_adapter(backbone, adapter, "policy")
        self.use_depth = use_depth and all(CAMERA_KEYS[c][1] in observation_space.spaces for c in cameras)
        self.has_text = text_space is not None
        self.extra_keys = extra
        self.proprio = proprio
        self.locate_with_adapters = bool(locate_with_adapters)
        self.cache_size = cache_size
        self._text_cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @staticmethod
    def _check_object_points(object_points: bool, space: spaces.Dict, backbone: Backbone, cameras: list[str],
                             calibration: dict | None) -> dict | None:
        """The parsed calibration when ``object_points`` is on (``None`` otherwise), or a clear error."""
        if not object_points:
            return None
        if backbone.object_head is None:
            raise ValueError("object_points=True needs a backbone with an object head (its attention says which "
                             "depth pixels are the object); set object_points=False.")
        missing = [k for k in (*(CAMERA_KEYS[c][1] for c in cameras), "proprio") if k not in space.spaces]
        if missing:
            raise ValueError(f"object_points=True needs each camera's depth and 'proprio' in the observation; "
                             f"missing {missing}.")
        return BackboneExtractor._parsed_calibration(calibration or PANDA_CALIBRATION, cameras)

    @staticmethod
    def _parsed_calibration(calibration: dict, cameras: list[str]) -> dict:
        """``{"cameras": {name: CameraCalibration}, "table_z": z}``, or a clear error when a camera is missing."""
        cams, table_z = parse_calibration(calibration)
        unknown = [c for c in cameras if c not in cams]
        if unknown:
            raise ValueError(f"The camera calibration has no entry for {unknown}; take it from "
                             "env.unwrapped.camera_calibration() of an env with the policy's cameras.")
        return {"cameras": cams, "table_z": table_z}

    def set_calibration(self, calibration: dict) -> None:
        """Back-project the object points through ``calibration`` (``env.unwrapped.camera_calibration()``)
        from now on: the robot the policy acts on. Another robot's wrist camera sits elsewhere; the points
        stay in the world frame, so the policy itself needs no change."""
        if not self.object_points:
            raise ValueError("set_calibration: this extractor has object_points=False; nothing uses a calibration.")
        self.calibration = self._parsed_calibration(calibration, self.cameras)

    @contextmanager
    def calibrated(self, calibration: dict | None) -> Iterator[None]:
        """Within the block, use ``calibration`` (the parsed form held in :attr:`calibration`; ``None``: keep
        the current one): logged frames keep the calibration of the robot that logged them."""
        old = self.calibration
        self.calibration = old if calibration is None else calibration
        try:
            yield
        finally:
            self.calibration = old

    def encode_instructions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Instruction embeddings, from the cache where the same token ids were seen before."""
        tokens = self.backbone.fit_tokens(tokens).cpu()
        keys = [row.numpy().tobytes() for row in tokens]
        missing = list(OrderedDict.fromkeys(k for k in keys if k not in self._text_cache))
        self.cache_misses += len(missing)
        self.cache_hits += len(keys) - len(missing)
        if missing:
            rows = torch.stack([tokens[keys.index(k)] for k in missing])
            with torch.no_grad():
                emb = self.backbone.encode_text(rows.to(self.backbone.mean.device)).detach()
            for k, e in zip(missing, emb):
                self._text_cache[k] = e
        for k in keys:
            self._text_cache.move_to_end(k)
        out = torch.stack([self._text_cache[k] for k in keys])
        while len(self._text_cache) > self.cache_size:
            self._text_cache.popitem(last=False)
        return out

    # ------------------------------------------------------------------ the image path
    def frozen_start(self) -> int | None:
        """Index of the first vision block with a trainable weight (the number of blocks if none);
        ``None`` when the patch embedding itself trains (nothing of the image path is frozen)."""
        v = self.backbone.clip.visual
        stem = [v.conv1, v.ln_pre]
        stem_params = [p for m in stem for p in m.parameters()] + [v.class_embedding, v.positional_embedding]
        if any(p.requires_grad for p in stem_params):
            return None
        for i, block in enumerate(self.backbone.blocks):
            if any(p.requires_grad for p in block.parameters()):
                return i
        return len(self.backbone.blocks)

    def frozen_tokens(self, observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per camera, the tokens entering block :meth:`frozen_start` (computed without autograd when
        that part is frozen): what pre-training may compute once per frame and reuse."""
        start = self.frozen_start()
        out = {}
        for cam in self.cameras:
            rgb_key, depth_key = CAMERA_KEYS[cam]
            depth = observations[depth_key] if self.use_depth else None  # the backbone's depth stem
            with torch.set_grad_enabled(start is None and torch.is_grad_enabled()):
                x = self.backbone.vision_embed(observations[rgb_key], depth)
                out[cam] = x if start is None else self.backbone.vision_blocks(x, 0, start)
                if self.pools and self.pool_tokens != "last":
                    out[f"{cam}/embed"] = x[:, 1:]
                if self.keypoint_depth:
                    out[f"{cam}/depth"] = self.backbone.depth_grid(observations[depth_key])
            if self.object_points:
                out[f"{cam}/cloud"] = self._cloud(cam, observations)
        return out

    def _cloud(self, cam: str, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """:func:`~safeadapt_bench.depth_points.patch_clouds` of ``cam`` (fixed per frame: cacheable)."""
        c = self.calibration["cameras"][cam]
        proprio = observations["proprio"].float()
        depth = observations[CAMERA_KEYS[cam][1]].float()
        with torch.no_grad():
            return patch_clouds(depth, c, self.calibration["table_z"], self.backbone.grid_size,
                                proprio[:, :3], quat_xyzw_to_matrix(proprio[:, 3:7]))

    def features_from_tokens(self, tokens: dict[str, torch.Tensor], observations: dict[str, torch.Tensor],
                             with_embedding: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Features from :meth:`frozen_tokens`' output and the observation's other entries.

        With ``with_embedding``, returns ``(features, embedding)``: the first camera's pooled image
        embedding as well, whether the features hold it or not (the contrastive loss aligns it).
        """
        start = self.frozen_start() or 0
        parts, first, slots, points = [], None, [], []
        for cam in self.cameras:
            x = self.backbone.vision_blocks(tokens[cam], start)
            pooled, last = self.backbone.vision_head(x)
            first = pooled if first is None else first
            patches = last
            if cam in self.pools:
                if self.pool_tokens == "first":
                    patches = tokens[f"{cam}/embed"]
                elif self.pool_tokens == "both":
                    patches = torch.cat([tokens[f"{cam}/embed"], patches], dim=-1)
                depth = (tokens[f"{cam}/depth"],) if self.keypoint_depth else ()
                parts.append(self.pools[cam](patches, *depth))
            if self.pool_embedding:
                parts.append(pooled)
            located = last  # the tokens the object head reads
            adapted = getattr(self.backbone, "active_adapter", None) is not None
            if (self.object_keypoints or self.object_points) and adapted and not self.locate_with_adapters:
                with torch.no_grad(), adapters_disabled(self.backbone):
                    located = self.backbone.vision_head(self.backbone.vision_blocks(tokens[cam], start))[1]
            if self.object_keypoints:
                parts.append(self.backbone.object_head.locate(located, cam))
            if self.object_points:
                slots.append(len(parts))
                points.append(self._attended_point(cam, tokens[f"{cam}/cloud"], located))
                parts.append(None)  # filled in below, once every camera's point is known
        for i, p in zip(slots, self._gated(points)):
            parts[i] = self._point_features(p, observations)
        ref = parts[0]
        if self.has_text:
            parts.append(self.encode_instructions(observations[TEXT_KEY]).to(ref.device, ref.dtype))
        if self.extra_keys:
            parts.append((self.extra_inputs(observations).to(ref.dtype) - self.extra_mean) / self.extra_std)
        features = torch.cat(parts, dim=1)
        return (features, first) if with_embedding else features

    def _attended_point(self, cam: str, cloud: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """``(B, 5)``: the object head's attended point on ``cam`` (:func:`attended_point`), with the
        training-time ``point_noise``."""
        attn = torch.softmax(self.backbone.object_head.logits(last, cam), dim=1)
        p = attended_point(cloud.to(attn.dtype), attn, self.calibration["table_z"])
        if self.training and self.point_noise > 0:  # augmentation: a locator with this error, while training
            e = self.point_noise * torch.randn_like(p[:, :3])
            p = torch.cat([p[:, :3] + e, p[:, 3:4], p[:, 4:] + e[:, 2:]], 1)
        return p

    def _gated(self, points: list[torch.Tensor]) -> list[torch.Tensor]:
        """The cameras' points with :attr:`point_gate` applied: where a later camera's point is farther than
        the gate from the first camera's, the higher of the two (height above the table) becomes the lower."""
        if self.point_gate is None or len(points) < 2:
            return points
        first, later = points[0], []
        for p in points[1:]:
            far = (p[:, :3] - first[:, :3]).norm(dim=1, keepdim=True) > self.point_gate
            lower = torch.where(p[:, 2:3] < first[:, 2:3], p, first)
            later.append(torch.where(far, lower, p))
            first = torch.where(far, lower, first)
        return [first, *later]

    def _point_features(self, p: torch.Tensor, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, 9)``: the attended 3-D point relative to the table and to the end effector, the attended
        fraction of pixels on the table, and the object's top height above the table and relative to the
        end effector (lengths in decimetres)."""
        table_z = self.calibration["table_z"]
        eef = observations["proprio"][:, :3].to(p.dtype) - torch.tensor([0.0, 0.0, table_z], dtype=p.dtype,
                                                                        device=p.device)
        top = p[:, 4:]
        return torch.cat([10 * p[:, :3], 10 * (p[:, :3] - eef), p[:, 3:4], 10 * top, 10 * (top - eef[:, 2:])], 1)

    def extra_inputs(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, n)``: the observation's other entries (proprio, state), flattened, before normalisation.
        With ``proprio="eef"``, proprio is the end effector's position, its rotation as the first two columns
        of the rotation matrix (the same for ``q`` and ``-q``), and the gripper's aperture and its rate:
        what every arm shares, without its joints."""
        parts = []
        for k in self.extra_keys:
            x = observations[k].reshape(observations[k].shape[0], -1).float()
            if k == "proprio" and self.proprio == "eef":
                rot = quat_xyzw_to_matrix(x[:, 3:7])[:, :, :2].reshape(-1, 6)
                x = torch.cat([x[:, :3], rot, x[:, 7:9]], 1)
            parts.append(x)
        return torch.cat(parts, 1)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor, min_std: float = 1e-3) -> None:
        """Normalise the other entries (proprio, state) with these statistics from now on."""
        self.extra_mean.copy_(torch.as_tensor(mean, dtype=self.extra_mean.dtype))
        self.extra_std.copy_(torch.as_tensor(std, dtype=self.extra_std.dtype).clamp_min(min_std))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.features_from_tokens(self.frozen_tokens(observations), observations)

    def train(self, mode: bool = True) -> BackboneExtractor:
        """Keep the frozen backbone in eval mode while the policy trains."""
        super().train(mode)
        if not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self
