"""Headless render-backend selection, done before mujoco or robosuite is imported."""

from __future__ import annotations

import ctypes.util
import glob
import os


def gpu_present() -> bool:
    """Whether an NVIDIA GPU device node is visible."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def osmesa_available() -> bool:
    """Whether the OSMesa software renderer library is installed."""
    return ctypes.util.find_library("OSMesa") is not None


def select_backend() -> str:
    """Pick MuJoCo's OpenGL backend and export it as ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM``.

    ``MUJOCO_GL`` set by the user wins. Otherwise: EGL where a GPU is present, else OSMesa, else
    EGL through Mesa's software rasteriser (llvmpipe). Must run before mujoco is imported.
    """
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        backend = "egl" if gpu_present() or not osmesa_available() else "osmesa"
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend
