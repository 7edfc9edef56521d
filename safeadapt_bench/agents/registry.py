"""Finding agent classes by name, by ``module:Class`` path, or by entry point.

Resolution order for ``make_agent(spec)``:

1. a name registered here (the reference agents and the simple ones) or with :func:`register_agent`;
2. a name published by any installed distribution in the ``safeadapt_bench.agents`` entry-point group,
   e.g. in the user's ``pyproject.toml``::

       [project.entry-points."safeadapt_bench.agents"]
       my-agent = "my_package.agent:MyAgent"

3. a path ``package.module:Class``, or ``path/to/file.py:Class`` for an agent in a single file.

Registered names map to strings, so nothing is imported until an agent is used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from typing import Any

from safeadapt_bench.agents.base import REQUIRED_METHODS, Agent

#: Entry-point group that other distributions use to publish agents.
ENTRY_POINT_GROUP = "safeadapt_bench.agents"

#: Built-in names. The reference agents live in ``baselines/`` (installed as ``safeadapt_bench.baselines``).
_REGISTRY: dict[str, str] = {
    "safe-adapter": "safeadapt_bench.baselines.safe_adapter:SafeAdapterAgent",
    "full-finetune": "safeadapt_bench.baselines.full_finetune:FullFinetuneAgent",
    "adapter": "safeadapt_bench.baselines.adapter:AdapterAgent",
    "safe-rl": "safeadapt_bench.baselines.safe_rl:SafeRLAgent",
    "random": "safeadapt_bench.agents.simple:RandomAgent",
    "shielded-random": "safeadapt_bench.agents.simple:ShieldedRandomAgent",
}

#: The four reference agents of the benchmark.
REFERENCE_AGENTS: tuple[str, ...] = ("safe-adapter", "full-finetune", "adapter", "safe-rl")


class AgentResolutionError(ValueError):
    """An agent name or path that cannot be turned into a usable agent class."""


def register_agent(name: str, target: str, overwrite: bool = False) -> None:
    """Register ``name`` for the ``module:Class`` path ``target`` in this process."""
    if ":" not in target:
        raise ValueError(f"Agent target must look like 'package.module:Class', got {target!r}.")
    if name in _REGISTRY and not overwrite and _REGISTRY[name] != target:
        raise ValueError(f"Agent name {name!r} is already registered for {_REGISTRY[name]!r}.")
    _REGISTRY[name] = target


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_agents() -> dict[str, str]:
    """Every resolvable name with its target: built-in and registered ones, then entry points."""
    out = dict(_REGISTRY)
    for name, ep in _entry_points().items():
        out.setdefault(name, ep.value)
    return out


def _import_target(target: str, origin: str) -> Any:
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise AgentResolutionError(f"{origin}: {target!r} is not of the form 'package.module:Class'.")
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise AgentResolutionError(f"{origin}: file {module_name!r} does not exist.")
        mod_name = "_safeadapt_user_agent_" + os.path.splitext(os.path.basename(path))[0]
        module = sys.modules.get(mod_name)
        if module is None or getattr(module, "__file__", None) != path:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            hint = ""
            if module_name.startswith("safeadapt_bench.baselines"):
                hint = " (a reference agent that is not in baselines/ in this install)"
            raise AgentResolutionError(f"{origin}: cannot import {module_name!r}: {err}{hint}.") from err
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AgentResolutionError(f"{origin}: module {module_name!r} has no attribute {attr!r}.") from None


def validate_agent_class(cls: Any, origin: str = "agent") -> type:
    """Check that ``cls`` is a class with every method of the :class:`Agent` interface.

    Raises:
        AgentResolutionError: not a class, or methods missing / left abstract (all of them are named).
    """
    if not inspect.isclass(cls):
        raise AgentResolutionError(f"{origin}: {cls!r} is not a class.")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    bad = missing + [m for m in abstract if m not in missing]
    if bad:
        raise AgentResolutionError(
            f"{origin}: class {cls.__module__}.{cls.__qualname__} lacks required method(s) {bad}; "
            f"an agent implements {list(REQUIRED_METHODS)} (subclass safeadapt_bench.agents.Agent).")
    keys = getattr(cls, "required_obs_keys", ())
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise AgentResolutionError(f"{origin}: required_obs_keys must be a tuple of strings, got {keys!r}.")
    return cls


def resolve_agent(name_or_path: str | type) -> type:
    """The agent class for a registered name, entry-point name, ``module:Class`` or ``file.py:Class``.

    Raises:
        AgentResolutionError: unknown name (the known ones are listed), import failure, or a class that
            lacks a required method.
    """
    if inspect.isclass(name_or_path):
        return validate_agent_class(name_or_path)
    spec = str(name_or_path)
    if spec in _REGISTRY:
        return validate_agent_class(_import_target(_REGISTRY[spec], f"agent {spec!r}"), f"agent {spec!r}")
    eps = _entry_points()
    if spec in eps:
        origin = f"agent {spec!r} (entry point {eps[spec].value!r} of group {ENTRY_POINT_GROUP!r})"
        try:
            cls = eps[spec].load()
        except ImportError as err:
            raise AgentResolutionError(f"{origin}: cannot be loaded: {err}.") from err
        return validate_agent_class(cls, origin)
    if ":" in spec:
        return validate_agent_class(_import_target(spec, f"agent {spec!r}"), f"agent {spec!r}")
    raise AgentResolutionError(
        f"Unknown agent {spec!r}. Known agents: {sorted(known_agents())}. Or pass 'package.module:Class', "
        f"'path/to/file.py:Class', or publish one in the {ENTRY_POINT_GROUP!r} entry-point group.")


def observation_keys(observation_space: Any) -> tuple[str, ...] | None:
    """Keys of a Dict observation space, or ``None`` for other spaces."""
    spaces = getattr(observation_space, "spaces", None)
    if isinstance(spaces, dict):
        return tuple(spaces)
    return None


def check_obs_keys(agent_cls: type, observation_space: Any, env_name: str = "the environment") -> None:
    """Raise ``ValueError`` when the env's observation lacks a key the agent declares it needs."""
    need = tuple(getattr(agent_cls, "required_obs_keys", ()) or ())
    if not need:
        return
    have = observation_keys(observation_space)
    if have is None:
        raise ValueError(f"Agent {agent_cls.__qualname__} needs observation keys {list(need)}, but "
                         f"{env_name} has a non-Dict observation space {observation_space}.")
    missing = [k for k in need if k not in have]
    if missing:
        hint = ""
        if any(k in ("rgb", "depth") for k in missing):
            hint = " (camera keys need obs_mode='rgbd' or 'rgb')"
        raise ValueError(f"Agent {agent_cls.__qualname__} needs observation key(s) {missing} that "
                         f"{env_name} does not provide; it provides {sorted(have)}{hint}.")


def make_agent(name_or_path: str | type, observation_space: Any, action_space: Any, *, seed: int = 0,
               **kwargs: Any) -> Agent:
    """Resolve an agent, check the observation space has its required keys, and construct it."""
    cls = resolve_agent(name_or_path)
    check_obs_keys(cls, observation_space)
    return cls(observation_space, action_space, seed=seed, **kwargs)
