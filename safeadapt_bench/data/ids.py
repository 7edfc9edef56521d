"""Dataset ids, the data directory and the errors of the offline-log package.

Ids follow Minari's ``namespace/name-vN`` form, e.g. ``safeadapt/lift-expert-v0``. The name encodes
everything that changes the data (task, split, policy, robot, camera, observation mode, categories,
seed, other env kwargs), so two collections with different settings never share an id. ``-vN`` is
:data:`DATASET_VERSION`, bumped when the recorded layout or the scripted policies' labels change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: Minari namespace of every dataset this package writes.
NAMESPACE = "safeadapt"
#: Version of the recorded data (the ``-vN`` of every id); bump it when the layout or the scripted
#: policies' actions change. 2: the expert's descent no longer ends on one step without progress
#: (under the noisy policy's noise that happened in mid-air, so logs labelled "close" there).
#: 3: the images are drawn with lighter visual meshes (``envs/light_meshes.py``); actions, states and
#: costs are the same as version 2's.
DATASET_VERSION = 3
#: Behaviour policies (``safeadapt_bench.experts.POLICIES``; repeated here so listing ids stays light).
POLICIES: tuple[str, ...] = ("expert", "noisy", "careless")
#: Observation modes that can be collected: the scripted policies read ``obs["state"]``.
COLLECT_OBS_MODES: tuple[str, ...] = ("rgbd+state", "state")
#: Environment variable that sets the data directory (Minari's own).
DATA_ENV_VAR = "MINARI_DATASETS_PATH"

_DEFAULTS: dict[str, Any] = {"robot": "Panda", "camera_size": 64, "obs_mode": "rgbd+state"}
#: Env kwargs at these (the env's default) values are left out of the id, so naming a default keeps the id.
_ENV_DEFAULTS: dict[str, Any] = {"object_colours": "fixed"}


class DatasetNotFoundError(FileNotFoundError):
    """No dataset with that id in the data directory."""


class DatasetCorruptError(ValueError):
    """A dataset directory exists but cannot be read (missing or broken files)."""


class DatasetVersionError(ValueError):
    """A dataset was recorded with another env version, package version or layout version."""


def datasets_root() -> Path:
    """The data directory: ``$MINARI_DATASETS_PATH``, else Minari's default ``~/.minari/datasets``."""
    root = os.environ.get(DATA_ENV_VAR)
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def dataset_path(dataset_id: str) -> Path:
    """Directory of a dataset id under :func:`datasets_root`."""
    return datasets_root() / dataset_id


def check_policy(policy: str) -> str:
    """``policy`` if it is a known behaviour policy, else a ``ValueError`` naming the choices."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown policy {policy!r}; choose one of {list(POLICIES)}.")
    return policy


def _slug(env_id: str) -> str:
    """``SafeAdapt/Lift-Heldout-v0`` -> ``lift-heldout``; ``SafeAdapt/Lift-v1`` -> ``lift-env1``."""
    from gymnasium.envs.registration import parse_env_id

    ns, name, version = parse_env_id(env_id)
    if ns != "SafeAdapt":
        raise ValueError(f"{env_id!r} is not a SafeAdapt env id; `safeadapt-bench envs` lists them.")
    slug = name.lower()
    return slug if not version else f"{slug}-env{version}"


def dataset_id(env_id: str, policy: str, *, seed: int = 0, robot: str = "Panda", camera_size: int = 64,
               obs_mode: str = "rgbd+state", categories: list[str] | tuple[str, ...] | None = None,
               **env_kwargs: Any) -> str:
    """The versioned id of a collection, e.g. ``safeadapt/lift-expert-v0``.

    Defaults are left out of the name; others are appended: ``-ur5e`` (robot), ``-cam16``,
    ``-state`` (no images), ``-cube-ball`` (categories), ``-seed3``, ``-t30`` (``max_episode_steps``),
    ``-k<hash>`` (other env kwargs).
    The episode count is not part of the id: a collection is a prefix of any larger one with the
    same id (episode seeds depend only on the seed and the episode index).
    """
    check_policy(policy)
    parts = [_slug(env_id), policy]
    if robot != _DEFAULTS["robot"]:
        parts.append(robot.lower())
    if obs_mode not in COLLECT_OBS_MODES:
        raise ValueError(f"Cannot collect with obs_mode {obs_mode!r}: the scripted policies read the state; "
                         f"choose one of {list(COLLECT_OBS_MODES)}.")
    if obs_mode == "state":
        parts.append("state")
    elif int(camera_size) != _DEFAULTS["camera_size"]:
        parts.append(f"cam{int(camera_size)}")
    if categories:
        parts.extend(str(c).lower() for c in categories)
    if seed:
        parts.append(f"seed{int(seed)}")
    env_kwargs = {k: v for k, v in env_kwargs.items() if k not in _ENV_DEFAULTS or v != _ENV_DEFAULTS[k]}
    if env_kwargs.get("max_episode_steps") is not None:
        parts.append(f"t{int(env_kwargs.pop('max_episode_steps'))}")
    if env_kwargs:
        blob = json.dumps(env_kwargs, sort_keys=True, default=str).encode()
        parts.append("k" + hashlib.sha1(blob).hexdigest()[:8])
    return f"{NAMESPACE}/{'-'.join(parts)}-v{DATASET_VERSION}"
