"""The ``safeadapt-bench`` command line.

Each sub-command lives in its own module here, exposing ``add_parser(subparsers)``; the module
must import heavy libraries inside its handler, so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import Any

#: Sub-command modules in ``safeadapt_bench.cli``, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "envs",
    "perf",
    "run",
    "report",
    "compare",
    "agents",
    "backbone",
    "collect",
    "datasets",
    "experts",
    "imitation",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command attached."""
    parser = argparse.ArgumentParser(
        prog="safeadapt-bench",
        description="Benchmark safe, parameter-efficient adaptation of vision-language backbones "
        "to robot manipulation.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"safeadapt_bench.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    on_term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if on_term is not None:  # `kill` stops a run as Ctrl-C does: workers stopped, written results kept
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, KeyError) as err:
        if args.debug:
            raise
        print(f"safeadapt-bench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"safeadapt-bench {args.command}: interrupted; results already written are kept.",
              file=sys.stderr)
        return 130
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM handler: raise ``KeyboardInterrupt`` so that a terminated run cleans up as Ctrl-C does."""
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
