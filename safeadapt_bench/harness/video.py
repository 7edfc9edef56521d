"""Rollout videos: frames from ``env.render()`` (and the wrist camera) encoded as H.264 MP4 by imageio."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

#: Frames smaller than this (pixels, shorter side) are enlarged by an integer factor (nearest pixel).
MIN_VIDEO_SIZE = 128


def _prepare(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.uint8)
    factor = max(1, -(-MIN_VIDEO_SIZE // min(frame.shape[:2])))
    if factor > 1:
        frame = frame.repeat(factor, axis=0).repeat(factor, axis=1)
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2  # yuv420p needs even sizes
    return np.ascontiguousarray(frame[:h, :w])


def encode_mp4(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """The frames (``H x W x 3`` uint8) as an H.264 / yuv420p MP4, ready for a browser's ``<video>``."""
    import imageio.v2 as imageio

    if not len(frames):
        raise ValueError("encode_mp4 needs at least one frame.")
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio.get_writer(
            path, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1,
            ffmpeg_log_level="error", output_params=["-movflags", "+faststart"],
        )
        with writer:
            for frame in frames:
                writer.append_data(_prepare(frame))
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)
