"""Which torch device a cell's agent runs on: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:N]``.

The choice comes from the suite (``Suite.device``, ``device = "cuda"`` in a suite file) or from
``safeadapt-bench run --device``; it is not part of any cell's configuration, so a sweep can resume on
another machine. The harness passes the resolved device to agents whose constructor takes a
``device`` keyword (the reference agents do) and states it in the record's ``provenance.device``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

#: Accepted spellings (``cuda:N`` too).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(choice: Any) -> str:
    """``choice`` normalised (lower case, stripped); ``ValueError`` when it is not a device name.

    Imports nothing: suites check their ``device`` with it when they are built.
    """
    name = str(choice).strip().lower() if isinstance(choice, str) else None
    if name is None or not _PATTERN.match(name):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {choice!r}.")
    return name


def resolve_device(choice: str = "auto") -> str:
    """The concrete torch device for ``choice``: ``auto`` gives ``cuda`` when torch sees a CUDA GPU, else ``cpu``.

    Raises:
        ValueError: an unknown name, or ``cuda`` asked for where torch sees no (such) CUDA GPU.
    """
    name = check_device(choice)
    import torch

    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name.startswith("cuda"):
        if not available:
            raise ValueError(
                f"device {name!r} was asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is "
                "False); use --device cpu, or --device auto to take a GPU only where there is one."
            )
        index = int(name.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"device {name!r} was asked for, but torch sees {count} CUDA GPU(s) (0..{count - 1}).")
    return name


def takes_device(agent_cls: type) -> bool:
    """Whether an agent class's constructor names a ``device`` keyword (then the harness passes one)."""
    try:
        params = inspect.signature(agent_cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    p = params.get("device")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


__all__ = ["DEVICE_CHOICES", "check_device", "resolve_device", "takes_device"]
