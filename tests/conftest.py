"""Session-wide test set-up: caches go to a temporary directory, never the user's."""

from __future__ import annotations

import os
import sys
import tempfile

# The physics-identity tests compare against trajectories recorded with OpenBLAS's Haswell kernels; on
# AVX-512 hosts OpenBLAS picks SkylakeX kernels, whose matrix products round differently (1 ulp, which
# grows to 5e-5 in qpos over a rollout). Pin the kernel before numpy loads OpenBLAS (`make test` also
# sets it, for processes that import numpy earlier).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest hook
    # Rendered probe scenes are cached under $SAFEADAPT_CACHE; keep the tests' copy apart.
    os.environ["SAFEADAPT_CACHE"] = tempfile.mkdtemp(prefix="safeadapt-cache-")
