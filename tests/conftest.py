"""Session-wide test set-up: caches go to a temporary directory, never the user's."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest hook
    # Rendered probe scenes are cached under $SAFEADAPT_CACHE; keep the tests' copy apart.
    os.environ["SAFEADAPT_CACHE"] = tempfile.mkdtemp(prefix="safeadapt-cache-")
