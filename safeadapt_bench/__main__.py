"""``python -m safeadapt_bench`` runs the command line."""

import sys

from safeadapt_bench.cli import main

sys.exit(main())
