"""Headless render-backend selection, done before mujoco or robosuite is imported."""

from __future__ import annotations

import ctypes.util
import glob
import importlib
import importlib.util
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
    if not gpu_present():
        # Mesa's llvmpipe renders small images no faster with worker threads, and a process that
        # forks after they started (gymnasium's async vector envs) deadlocks in the child.
        os.environ.setdefault("LP_NUM_THREADS", "0")
    _preload_triton()
    return backend


def _preload_triton() -> None:
    """Load triton's LLVM before Mesa's software rasteriser loads its own.

    torch imports triton lazily (e.g. ``import open_clip`` does); if that happens after a Mesa
    (llvmpipe) GL context exists, the two LLVM copies clash and the process segfaults. Loading
    triton first avoids it. Nothing to do where triton is not installed.
    """
    if importlib.util.find_spec("triton") is not None:
        importlib.import_module("triton")
