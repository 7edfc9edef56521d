"""Cell records on disk: one JSON file per cell, written atomically, in a versioned results directory.

Layout of a results directory::

    results/
      manifest.json          {"format": "safeadapt-bench-results", "schema_version": 1, ...}
      cells/<cell_id>.json   one record per finished cell
      errors/<cell_id>.json  the traceback of the last failed attempt (the cell re-runs on resume)
      videos/<cell_id>/<split>-<camera>.mp4   rollout videos listed in the record

A record's sections: ``schema_version``, ``cell_id``, ``config`` (the full cell spec), ``seed``,
``agent``, ``metrics`` (deterministic scalars), ``curves`` (learning curves), ``evaluations``,
``agent_stats``, ``videos`` (rollout videos of the final evaluation: split, camera, path relative to
the results directory, episode seed, frames, fps), ``notes``, ``timing`` (every wall-clock quantity,
among them the agent's own under ``timing.agent_stats``: see :func:`split_volatile`) and ``provenance``
(versions, git SHA, hardware, torch device, render backend, executor, timestamps). Two runs of the same cell with
a deterministic agent give identical records apart from ``timing`` and ``provenance`` (see
:func:`comparable`), whichever executor ran them.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Version of the record format. Bump it when a field changes meaning or moves.
SCHEMA_VERSION = 1
FORMAT = "safeadapt-bench-results"
#: Record sections that hold run-dependent values (wall clock, host, executor).
VOLATILE_SECTIONS: tuple[str, ...] = ("timing", "provenance")
#: Distributions whose versions every record stores.
TRACKED_PACKAGES: tuple[str, ...] = (
    "safeadapt-bench",
    "gymnasium",
    "mujoco",
    "robosuite",
    "numpy",
    "torch",
    "stable-baselines3",
    "peft",
    "open_clip_torch",
    "minari",
    "rliable",
)


class IncompatibleResultsError(ValueError):
    """A results directory (or record) written by an incompatible record-schema version."""


class RecordConflictError(ValueError):
    """A cell record already exists with a different configuration; it is never overwritten."""


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _clean_floats(obj: Any) -> Any:
    """Non-finite floats become ``None`` (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean_floats(v) for v in obj]
    return obj


def to_json(record: dict[str, Any]) -> str:
    """Strict, stable JSON text of a record."""
    plain = json.loads(json.dumps(record, default=_jsonable))
    return json.dumps(_clean_floats(plain), indent=1, sort_keys=True, allow_nan=False)


def _file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``.

    The file gets the mode a plain ``open()`` would give it (0644 under the usual umask 022), not
    the private 0600 of ``tempfile.mkstemp``, so collaborators sharing a results directory can read it.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _git_sha() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        sha = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_kernel() -> str | None:
    """The kernel set numpy's bundled OpenBLAS runs (``"Haswell"``, ``"Cooperlake"``, ...; ``None`` when
    numpy has no bundled OpenBLAS). The simulator's controller multiplies matrices with numpy, and
    kernels round differently: the same seeded actions drift by about 1e-14 within 100 steps, so records
    reproduce bit for bit only on the same kernel (``OPENBLAS_CORETYPE`` chooses it)."""
    import ctypes
    import glob

    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libopenblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("openblas_get_corename64_", "openblas_get_corename", "scipy_openblas_get_corename64_"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def hardware() -> dict[str, Any]:
    """CPU, memory, numpy's OpenBLAS kernel and (if torch is already imported) GPU of this machine."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "blas_kernel": blas_kernel(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "os": platform.platform(),
    }
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    torch = __import__("sys").modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    else:
        info["gpu"] = None
    return info


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`TRACKED_PACKAGES` (``None`` when absent); nothing is imported."""
    out: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(executor: str | None = None) -> dict[str, Any]:
    """The ``provenance`` section: versions, git SHA, Python, hardware, executor and finish time."""
    return {
        "packages": package_versions(),
        "git_sha": _git_sha(),
        "python": platform.python_version(),
        "hardware": hardware(),
        "executor": executor,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def is_volatile_key(key: str) -> bool:
    """Whether an agent statistic named ``key`` depends on the run rather than the cell: a wall-clock
    figure (``seconds``, ``*_seconds``, ``wall*``) or a cache hit (``*from_cache``)."""
    k = str(key).lower()
    return k == "seconds" or k.endswith("_seconds") or k.startswith("wall") or k.endswith("from_cache")


def split_volatile(stats: Any) -> tuple[Any, dict[str, Any]]:
    """``(kept, moved)``: ``stats`` without its :func:`is_volatile_key` entries (at any depth), and those
    entries in the same nesting. The harness files ``moved`` under ``timing.agent_stats``, so that an
    agent's wall-clock figures never reach the compared part of a record."""
    if not isinstance(stats, dict):
        return stats, {}
    kept: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for k, v in stats.items():
        if is_volatile_key(k):
            moved[k] = v
            continue
        kept[k], sub = split_volatile(v)
        if sub:
            moved[k] = sub
    return kept, moved


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its run-dependent sections (for equality across runs and executors)."""
    return {k: v for k, v in record.items() if k not in VOLATILE_SECTIONS}


class ResultsDir:
    """A results directory: creates or checks its manifest, stores and loads cell records.

    Raises (on construction):
        IncompatibleResultsError: the manifest has another schema version.
        FileExistsError: the path is a non-empty directory that is not a results directory.
        PermissionError / NotADirectoryError: it cannot be created or written.
    """

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.cells_dir = os.path.join(self.path, "cells")
        self.errors_dir = os.path.join(self.path, "errors")
        manifest = os.path.join(self.path, "manifest.json")
        if os.path.exists(manifest):
            self.manifest = self._read_manifest(manifest)
        elif not create:
            raise FileNotFoundError(
                f"{self.path} is not a safeadapt-bench results directory (no manifest.json)."
            )
        else:
            if os.path.isdir(self.path) and os.listdir(self.path):
                raise FileExistsError(
                    f"{self.path} exists, is not empty and is not a safeadapt-bench results "
                    "directory; choose a new --results directory (nothing was written)."
                )
            try:
                os.makedirs(self.path, exist_ok=True)
                self.manifest = {
                    "format": FORMAT,
                    "schema_version": SCHEMA_VERSION,
                    "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "packages": package_versions(),
                }
                atomic_write_text(manifest, json.dumps(self.manifest, indent=1))
            except (PermissionError, NotADirectoryError, FileExistsError) as err:
                raise PermissionError(f"Cannot write the results directory {self.path}: {err}") from err
        if create:
            try:
                os.makedirs(self.cells_dir, exist_ok=True)
                os.makedirs(self.errors_dir, exist_ok=True)
                probe = tempfile.NamedTemporaryFile(dir=self.cells_dir, prefix=".tmp-probe-")
                probe.close()
            except OSError as err:
                raise PermissionError(f"Cannot write the results directory {self.path}: {err}") from err

    def _read_manifest(self, path: str) -> dict[str, Any]:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise IncompatibleResultsError(
                f"{path} is unreadable ({err}); not a results directory this version can use."
            ) from err
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise IncompatibleResultsError(f"{path} is not a safeadapt-bench results manifest.")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise IncompatibleResultsError(
                f"{self.path} holds records of schema version {data.get('schema_version')!r}, but this "
                f"safeadapt-bench writes and reads version {SCHEMA_VERSION}. Use a new --results "
                "directory, or the safeadapt-bench version that wrote it; nothing was changed."
            )
        return data

    def note_agent_order(self, agents: Sequence[str]) -> None:
        """Record the suite's agent order in the manifest (``agent_order``), so that ``safeadapt-bench
        report`` lists agents as the run's own report did. Agents already listed keep their place; new
        ones follow."""
        order = list(self.manifest.get("agent_order") or [])
        merged = order + [a for a in agents if a not in order]
        if merged != order:
            self.manifest["agent_order"] = merged
            atomic_write_text(os.path.join(self.path, "manifest.json"), json.dumps(self.manifest, indent=1))

    def record_path(self, cell_id: str) -> str:
        """Path of a cell's record."""
        return os.path.join(self.cells_dir, f"{cell_id}.json")

    def load(self, cell_id: str) -> dict[str, Any] | None:
        """A cell's record, or ``None`` when it has not finished."""
        path = self.record_path(cell_id)
        if not os.path.exists(path):
            return None
        return self._load_file(path)

    def _load_file(self, path: str) -> dict[str, Any]:
        with open(path) as f:
            try:
                record = json.load(f)
            except json.JSONDecodeError as err:
                raise IncompatibleResultsError(f"{path} is not valid JSON: {err}") from err
        if record.get("schema_version") != SCHEMA_VERSION:
            raise IncompatibleResultsError(
                f"{path} has record schema version {record.get('schema_version')!r}; "
                f"this safeadapt-bench reads version {SCHEMA_VERSION}."
            )
        return record

    def is_done(self, cell_id: str, config: dict[str, Any]) -> bool:
        """Whether the cell has a record; raises :class:`RecordConflictError` if its config differs."""
        record = self.load(cell_id)
        if record is None:
            return False
        if record["config"] != json.loads(json.dumps(config)):
            raise RecordConflictError(
                f"{self.record_path(cell_id)} was written with another configuration for the same cell; "
                "it is never overwritten. Use a new --results directory, or delete that record to redo it."
            )
        return True

    def write(self, record: dict[str, Any]) -> str:
        """Store a record atomically; an existing record is never replaced.

        ``record["_files"]`` (path relative to the results directory -> bytes, e.g. the rollout videos)
        is taken out of the record and written first.

        If another sweep on the same directory finished the cell first with the same config, its record
        is kept and this one dropped; with another config, :class:`RecordConflictError` is raised.
        """
        files = record.pop("_files", None) or {}
        path = self.record_path(record["cell_id"])
        if os.path.exists(path):
            self.is_done(record["cell_id"], record["config"])  # raises on a different config
            return path
        for rel, data in files.items():  # the record's videos first: a record never lists a missing file
            target = os.path.join(self.path, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            atomic_write_bytes(target, data)
        atomic_write_text(path, to_json(record))
        err = os.path.join(self.errors_dir, f"{record['cell_id']}.json")
        if os.path.exists(err):
            os.unlink(err)
        return path

    def write_error(self, cell_id: str, config: dict[str, Any], error: str) -> str:
        """Store the traceback of a failed attempt (replaced by the next attempt's)."""
        path = os.path.join(self.errors_dir, f"{cell_id}.json")
        atomic_write_text(path, json.dumps({"cell_id": cell_id, "config": config, "error": error}, indent=1))
        return path

    def records(self) -> list[dict[str, Any]]:
        """Every finished record, sorted by cell id (temporary files are ignored)."""
        if not os.path.isdir(self.cells_dir):
            return []
        names = sorted(n for n in os.listdir(self.cells_dir) if n.endswith(".json") and not n.startswith("."))
        return [self._load_file(os.path.join(self.cells_dir, n)) for n in names]


def load_records(path: str) -> list[dict[str, Any]]:
    """Every record of an existing results directory (checks its schema version)."""
    return ResultsDir(path, create=False).records()
