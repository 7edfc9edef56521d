"""Headless render-backend selection, done before mujoco or robosuite is imported."""

from __future__ import annotations

import ctypes.util
import glob
import importlib
import importlib.util
import logging
import os
import sys

#: robosuite's import-time warnings that do not concern this suite (each message's start): no
#: private macro file (its defaults are what the suite uses), no ``robosuite_models`` (robots the
#: suite does not use) and no mink whole-body IK (the GR1 humanoid only). Its other warnings show.
ROBOSUITE_HARMLESS: tuple[str, ...] = (
    "No private macro file found!",
    "It is recommended to use a private macro file",
    "To setup, run: python",
    "Could not import robosuite_models.",
    "Could not load the mink-based whole-body IK.",
)


class _HarmlessRobosuiteWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.getMessage().startswith(ROBOSUITE_HARMLESS))


def quiet_robosuite_banner() -> None:
    """Drop :data:`ROBOSUITE_HARMLESS` from robosuite's logger (``robosuite_logs``); idempotent."""
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _HarmlessRobosuiteWarnings) for f in logger.filters):
        logger.addFilter(_HarmlessRobosuiteWarnings())


def gpu_present() -> bool:
    """Whether an NVIDIA GPU device node is visible."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def osmesa_available() -> bool:
    """Whether the OSMesa software renderer library is installed."""
    return ctypes.util.find_library("OSMesa") is not None


def choose_backend(user: str | None, gpu: bool, osmesa: bool) -> str:
    """MuJoCo's OpenGL backend: ``user`` (``MUJOCO_GL``) if set; else ``egl`` on a GPU machine (hardware
    EGL through the NVIDIA driver), else ``osmesa`` (software), else ``egl`` through Mesa's llvmpipe."""
    if user:
        return user
    return "egl" if gpu or not osmesa else "osmesa"


def select_backend() -> str:
    """Pick MuJoCo's OpenGL backend and export it as ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM``.

    Idempotent. Every env module that imports mujoco or robosuite calls it first (it also silences
    robosuite's harmless import banner, :func:`quiet_robosuite_banner`).

    ``MUJOCO_GL`` set by the user wins. Otherwise: EGL where a GPU is present, else OSMesa, else
    EGL through Mesa's software rasteriser (llvmpipe). Must run before mujoco is imported.
    """
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        backend = choose_backend(None, gpu_present(), osmesa_available())
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    if not gpu_present():
        # Mesa's llvmpipe renders small images no faster with worker threads, and a process that
        # forks after they started (gymnasium's async vector envs) deadlocks in the child.
        os.environ.setdefault("LP_NUM_THREADS", "0")
    _preload_triton()
    quiet_robosuite_banner()
    return backend


def _llvm_loaded() -> bool:
    """Whether a shared LLVM (Mesa's llvmpipe uses one) is already mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return "libLLVM" in maps.read()
    except OSError:
        return False


def _preload_triton() -> None:
    """Keep triton's LLVM and Mesa's apart.

    torch imports triton lazily (``import open_clip`` does). If that happens after Mesa's software
    rasteriser (llvmpipe) has loaded its LLVM, the two copies clash and the process segfaults.
    So triton is loaded first; where Mesa's LLVM is already loaded (mujoco imported with
    ``MUJOCO_GL`` already set), triton is marked unavailable instead, which torch handles (triton
    is of no use without a GPU anyway). Nothing to do where triton is not installed or on a GPU.
    """
    if "triton" in sys.modules or gpu_present() or importlib.util.find_spec("triton") is None:
        return
    if _llvm_loaded():
        sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError
    else:
        importlib.import_module("triton")
