"""The :class:`Agent` interface every benchmarked method implements (one file is enough).

Life of an agent in one benchmark cell (see ``safeadapt_bench.harness.cell``)::

    agent = AgentClass(observation_space, action_space, seed=seed, **agent_kwargs)
    agent.pretrain(dataset, Budget(updates=..., wall_seconds=...))   # offline logs, may be None
    agent.deploy_on(env)                        # optional hook, before the agent acts in an env
    agent.act(obs, deterministic=True)          # evaluation right after pre-training (curve at step 0)
    agent.adapt(env, Budget(env_steps=..., wall_seconds=...), callback)  # online, on train categories;
                                                # the callback evaluates with act() every eval_every steps
    action = agent.act(obs, deterministic=True)                       # final evaluation
    agent.save(path); AgentClass.load(path)

Safety bookkeeping is done by the harness: it wraps every env in a monitor that records, for each
executed action, whether it was safe (``info["cost"] == 0``). An agent whose safety filter can veto
actions sets ``uses_veto = True`` and calls :meth:`Agent.note_veto` once per executed action (in
``act``, or through :class:`safeadapt_bench.agents.veto.VetoWrapper` inside its own training loop).
Agents built on stable-baselines3 find a callback bridge in :mod:`safeadapt_bench.agents.sb3`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from safeadapt_bench.agents.budget import Budget

#: ``callback(stats) -> keep_going``. ``adapt`` calls it after every env step (it is cheap; the
#: harness only evaluates when an evaluation is due), passing an optional dict of its own training
#: statistics (losses, Lagrange multipliers, ...) or ``None``. When it returns ``False`` the agent
#: must stop adapting and return.
AdaptCallback = Callable[[dict[str, Any] | None], bool]

#: Methods a class must define to be used as an agent (checked by the registry before running).
REQUIRED_METHODS: tuple[str, ...] = ("pretrain", "adapt", "act", "save", "load", "trainable_parameters")


class Agent(abc.ABC):
    """Base class of benchmarked agents.

    Class attributes:
        required_obs_keys: keys the agent reads from the (Dict) observation, e.g. ``("rgb", "instruction")``.
            The harness checks them against the env's observation space before a cell runs.
        uses_veto: whether the agent has a safety veto and reports it through :meth:`note_veto`.

    Args:
        observation_space: the env's observation space (a ``gymnasium.spaces.Dict`` for SafeAdapt envs).
        action_space: the env's action space (``Box(-1, 1, (7,))``).
        seed: seed for the agent's own randomness.
        **kwargs: agent-specific options (from ``agent_kwargs`` in a suite).
    """

    required_obs_keys: ClassVar[tuple[str, ...]] = ()
    uses_veto: ClassVar[bool] = False

    def __init__(self, observation_space: Any, action_space: Any, *, seed: int = 0, **kwargs: Any) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.seed = seed
        self.kwargs = kwargs

    # ---- the interface -------------------------------------------------------------------------
    @abc.abstractmethod
    def pretrain(self, dataset: Any, budget: Budget) -> dict[str, Any] | None:
        """Learn from offline logs (a ``minari.MinariDataset``, a path, or ``None`` when there are none).

        Returns optional statistics (losses) that the harness stores in the record.
        """

    @abc.abstractmethod
    def adapt(self, env: Any, budget: Budget, callback: AdaptCallback | None = None) -> dict[str, Any] | None:
        """Adapt online on ``env`` within ``budget``; call ``callback`` after every env step.

        Stop when the budget is spent or the callback returns ``False``. The first ``env.reset()``
        may pass ``seed=None``: the harness seeds it. Returns optional statistics.
        """

    @abc.abstractmethod
    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """The action for one observation: float32 array of the action space's shape.

        Must work from construction on: the harness evaluates right after ``pretrain`` and, through the
        callback, during ``adapt``.
        """

    @abc.abstractmethod
    def save(self, path: str) -> None:
        """Write everything :meth:`load` needs to ``path`` (a file or directory the agent chooses)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str) -> Agent:
        """Rebuild an agent written by :meth:`save`."""

    @abc.abstractmethod
    def trainable_parameters(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts of what adaptation updates and of the whole model."""

    # ---- optional hooks ------------------------------------------------------------------------
    def deploy_on(self, env: Any) -> None:
        """Called by the harness before the agent acts in ``env`` (each evaluation, and adaptation): the
        place to read the env's fixed sensor set-up, such as another robot's camera calibration
        (``env.unwrapped.camera_calibration()``). Default: nothing."""
        return None

    def backbone(self) -> Any | None:
        """The vision-language backbone, for the forgetting probe; ``None`` when there is none."""
        return None

    # ---- veto bookkeeping (only agents with ``uses_veto = True`` call these) ---------------------
    def note_veto(self, fired: bool) -> None:
        """Report the veto decision for the action about to be executed."""
        self._pending_veto = bool(fired)

    def pop_veto(self) -> bool | None:
        """The decision reported since the last executed step, then cleared (the harness calls this).

        Agents with ``uses_veto = True`` that reported nothing count as "not fired".
        """
        fired = getattr(self, "_pending_veto", None)
        self._pending_veto = None
        if fired is None and self.uses_veto:
            return False
        return fired
