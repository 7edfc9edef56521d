"""One progress display for a whole sweep, whatever the number of workers.

Workers draw nothing: the executors pass each cell's phase reports (``dataset``, ``pretrain``,
``adapt``, ``evaluate``, ...) to the driver, which alone shows them. On a terminal the display is a
live panel (the running cells with their phase, cells done, elapsed time and ETA); without one (a
log file, CI) it prints one line per cell event, in the order the events happened::

    [   0:04] lift-panda-random-s0: start
    [   0:04] lift-panda-random-s0: dataset
    [   0:31] lift-panda-random-s0: done (1/8 cells, 0 failed; ETA 3:37)
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from safeadapt_bench.harness.suites import CellSpec


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class SweepProgress:
    """The sweep's display: :meth:`phase` for each phase report, :meth:`finish` for each finished cell.

    Args:
        total: cells to run now.
        skipped: cells that already had records.
        stream: where to write (default ``sys.stdout``).
        live: a live terminal panel (default: when ``stream`` is a terminal); otherwise one line per event.
    """

    def __init__(self, total: int, skipped: int = 0, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.total, self.done, self.failed = total, 0, 0
        self.running: dict[str, str] = {}
        self.t0 = time.perf_counter()
        self.live = None
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if live if live is not None else is_tty:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(file=self.stream)
            self.live = Live(console=self.console, refresh_per_second=4, transient=True, get_renderable=self._panel)
            self.live.start()
        if skipped:
            self._line(f"resuming: {skipped} cell(s) already have records")

    # ------------------------------------------------------------------ events
    def phase(self, spec: CellSpec, phase: str) -> None:
        """A running cell reports what it is doing."""
        self.running[spec.cell_id] = phase
        self._event(f"{spec.cell_id}: {phase}")

    def finish(self, spec: CellSpec, err: str | None) -> None:
        """A cell finished (``err`` is its traceback when it failed)."""
        self.running.pop(spec.cell_id, None)
        self.done += 1
        self.failed += bool(err)
        status = "failed" if err else "done"
        self._event(
            f"{spec.cell_id}: {status} ({self.done}/{self.total} cells, {self.failed} failed; ETA {_clock(self.eta())})"
        )

    def eta(self) -> float | None:
        """Seconds left: the wall time per finished cell so far, times the cells left."""
        if not self.done:
            return None
        return (time.perf_counter() - self.t0) / self.done * (self.total - self.done)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ------------------------------------------------------------------ output
    def _event(self, text: str) -> None:
        if self.live is None:
            self._line(f"[{_clock(time.perf_counter() - self.t0):>7}] {text}")
        else:
            if " done (" in text or " failed (" in text:
                self.console.print(text)

    def _line(self, text: str) -> None:
        if self.live is not None:
            self.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def _panel(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for _ in range(3):
            table.add_column(no_wrap=True)
        elapsed = _clock(time.perf_counter() - self.t0)
        table.add_row(
            f"[bold]cells[/bold] {self.done}/{self.total} done, {self.failed} failed",
            f"elapsed {elapsed}",
            f"ETA {_clock(self.eta())}",
        )
        for cell_id, phase in self.running.items():
            table.add_row(f"  {cell_id}", phase, "")
        return table


class BarFilter(io.TextIOBase):
    """A text stream that passes complete lines on to ``stream`` and drops progress-bar redraws.

    A redraw is anything written after a carriage return without a newline, as tqdm and similar bars
    do; ordinary lines (warnings, prints) go through unchanged.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream, self._line, self._bar = stream, "", False

    def write(self, text: str) -> int:
        *lines, self._line = (self._line + text).split("\n")
        for line in lines:
            if "\r" not in line and not (self._bar and not line):  # a bar's closing newline is dropped too
                self.stream.write(line + "\n")
            self._bar = False
        if "\r" in self._line:  # a bar is being redrawn on this line: drop it, up to its newline
            self._line, self._bar = "", True
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def no_bars() -> Iterator[None]:
    """Inside the block, progress bars that cells draw on ``sys.stderr`` are dropped (see :class:`BarFilter`)."""
    old = sys.stderr
    sys.stderr = BarFilter(old)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = old
