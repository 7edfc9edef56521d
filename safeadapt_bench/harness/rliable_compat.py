"""Import rliable's ``library``, ``metrics`` and ``plot_utils`` on this project's stack.

rliable 1.2 needs arch < 8, and arch 7.2 fails to import under pandas 3 because it calls pandas'
private ``deprecate_kwarg(old, new)`` with the pandas 2 signature (pandas 3 added a leading warning
class). arch 8 imports but drops the ``random_state`` argument rliable passes. When the plain import
fails with that TypeError, the import is retried with a shim that accepts the old signature; arch's
bootstrap code itself is unaffected. Nothing else in the process is changed.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

import numpy as np


def _import() -> tuple[ModuleType, ModuleType]:
    import rliable.library
    import rliable.metrics

    return rliable.library, rliable.metrics


def rliable_modules() -> tuple[ModuleType, ModuleType]:
    """``(rliable.library, rliable.metrics)``, imported with the pandas-3 shim when needed."""
    try:
        return _import()
    except TypeError as err:
        if "deprecate_kwarg" not in str(err):
            raise
    import pandas.util._decorators as dec

    original = dec.deprecate_kwarg

    def compat(*args, **kwargs):
        if args and isinstance(args[0], str):  # pandas 2 signature: (old_arg_name, new_arg_name, ...)
            return original(FutureWarning, *args, **kwargs)
        return original(*args, **kwargs)

    for name in list(sys.modules):
        if name.split(".")[0] in ("arch", "rliable"):
            del sys.modules[name]
    dec.deprecate_kwarg = compat
    try:
        return _import()
    finally:
        dec.deprecate_kwarg = original


def plot_utils() -> ModuleType:
    """``rliable.plot_utils`` (after :func:`rliable_modules`)."""
    rliable_modules()
    import rliable.plot_utils

    return rliable.plot_utils


@contextlib.contextmanager
def seeded_bootstrap(seed: int) -> Iterator[np.random.RandomState]:
    """Make rliable's bootstrap reproducible inside the block; yields the ``random_state`` to pass.

    rliable 1.2's ``StratifiedBootstrap.update_indices`` draws from NumPy's *global* generator and
    ignores ``random_state``, so the global generator is seeded here and restored afterwards. arch's
    FutureWarning about ``random_state`` is silenced.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(state)
