"""Executors: run cells one after another, in a local process pool, or on a Ray cluster.

Every executor yields ``(spec, record, error)`` as cells finish; the driver alone writes records, so a
remote worker needs no access to the results directory. Workers draw no progress of their own: the
local executors pass each cell's phase reports to the driver's ``on_progress(spec, phase)``, in the
order they happened (pool workers through a queue the driver reads between results). Records are
identical across executors apart from the ``timing`` and ``provenance`` sections
(``provenance.executor`` names the executor).
"""

from __future__ import annotations

import os
import queue as queue_module
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from safeadapt_bench.harness.suites import CellSpec

Outcome = tuple[CellSpec, "dict[str, Any] | None", "str | None"]
#: In a pool worker: the queue its cells report phases to (set by :func:`_init_worker`).
_PHASES: Any = None
#: Seconds the driver waits for a finished cell's last phase reports to arrive.
_DRAIN_TIMEOUT = 5.0


def _run_cell_safe(
    spec_dict: dict[str, Any],
    overrides: dict[str, Any],
    sys_path: Sequence[str],
    cwd: str | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> tuple:
    """Worker entry point: run one cell, returning ``(record, None)`` or ``(None, traceback)``.

    ``sys_path`` and ``cwd`` are the driver's, so user modules and relative ``file.py:Class`` agent
    paths resolve in workers as they do in the driver (when the worker shares its filesystem).
    """
    if cwd and cwd != os.getcwd() and os.path.isdir(cwd):
        os.chdir(cwd)
    for p in reversed(list(sys_path)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from safeadapt_bench.harness.cell import run_cell

    spec = CellSpec.from_dict(spec_dict)
    cell_id = spec.cell_id
    if on_progress is None and _PHASES is not None:
        on_progress = lambda phase: _PHASES.put((cell_id, phase))  # noqa: E731
    report = on_progress or (lambda phase: None)
    try:
        report("start")
        return run_cell(spec, on_progress=on_progress, **overrides), None
    except Exception:  # noqa: BLE001 - reported per cell, the sweep goes on
        return None, traceback.format_exc()
    finally:
        if _PHASES is not None:
            _PHASES.put((cell_id, None))  # end marker: the driver has seen every report of this cell


def _init_worker(threads: int, phases: Any = None) -> None:
    """Pool initializer: share the cores between workers (torch would take them all in every worker),
    send phase reports to ``phases``, and drop the progress bars code in the worker draws (tqdm)."""
    global _PHASES
    from safeadapt_bench.harness.progress import BarFilter

    _PHASES = phases
    sys.stderr = BarFilter(sys.stderr)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


class LocalExecutor:
    """Cells in this process, one after another (``workers=1``), or in a spawn-based process pool."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}.")
        self.workers = workers

    def run(
        self,
        specs: Sequence[CellSpec],
        overrides: dict[str, Any],
        on_progress: Callable[[CellSpec, str], None] | None = None,
    ) -> Iterator[Outcome]:
        """Yield outcomes as cells finish; ``on_progress(spec, phase)`` gets every cell's phase reports."""
        if self.workers == 1:
            for spec in specs:
                report = None if on_progress is None else (lambda msg, spec=spec: on_progress(spec, msg))
                record, err = _run_cell_safe(spec.to_dict(), overrides, (), None, report)
                yield spec, record, err
            return
        yield from self._run_pool(specs, overrides, on_progress)

    def _run_pool(
        self,
        specs: Sequence[CellSpec],
        overrides: dict[str, Any],
        on_progress: Callable[[CellSpec, str], None] | None,
    ) -> Iterator[Outcome]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = multiprocessing.get_context("spawn")
        phases = ctx.Queue() if on_progress is not None else None
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(threads, phases))
        futures = {
            pool.submit(_run_cell_safe, s.to_dict(), overrides, list(sys.path), os.getcwd()): s for s in specs
        }
        by_id, ended = {s.cell_id: s for s in specs}, set()

        def drain(until: str | None = None) -> None:
            """Pass queued reports on; with ``until``, wait (a little) for that cell's end marker."""
            while phases is not None:
                try:
                    block = until is not None and until not in ended
                    cell_id, phase = phases.get(timeout=_DRAIN_TIMEOUT) if block else phases.get_nowait()
                except queue_module.Empty:
                    return
                if phase is None:
                    ended.add(cell_id)
                else:
                    on_progress(by_id[cell_id], phase)

        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f].cell_id):
                    drain(until=futures[fut].cell_id)
                    record, err = fut.result()
                    yield futures[fut], record, err
                drain()
        except BaseException:
            # Interrupted: drop queued cells and stop running ones (they re-run on resume).
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)


def _stop_pool(pool: Any) -> None:
    """Stop a ``ProcessPoolExecutor`` now, its running workers included: ``shutdown`` alone lets each finish
    its cell, so an interrupted run would leave them computing (and sharing the cores) after it exits."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for w in workers:
        w.terminate()
    for w in workers:
        w.join(timeout=10)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "The Ray executor needs Ray: pip install 'safeadapt-bench[ray]' "
            f"(or pip install 'ray[default]'). Import failed: {err}"
        ) from err
    return ray


class RayExecutor:
    """Cells as Ray tasks (one CPU each, or ``num_gpus`` per cell) on a cluster or a local instance.

    Args:
        address: cluster address (``ray://host:10001`` or ``auto``); ``None`` starts a local instance.
        num_cpus: CPUs of a local instance (ignored with ``address``).
        num_gpus_per_cell: GPUs each cell reserves.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, num_gpus_per_cell: float = 0.0
    ) -> None:
        self.ray = _import_ray()
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus_per_cell

    def run(
        self,
        specs: Sequence[CellSpec],
        overrides: dict[str, Any],
        on_progress: Callable[[CellSpec, str], None] | None = None,
    ) -> Iterator[Outcome]:
        """Submit every cell, then yield outcomes as they finish (``on_progress`` is not used)."""
        ray = self.ray
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(address=self.address, **kwargs)
            started = True
        try:
            task = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_retries=0)(_run_cell_safe)
            refs = {task.remote(s.to_dict(), overrides, list(sys.path), os.getcwd()): s for s in specs}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        record, err = ray.get(ref)
                    except Exception:  # noqa: BLE001 - a lost worker fails its cell only
                        record, err = None, traceback.format_exc()
                    yield refs[ref], record, err
        except BaseException:
            for ref in refs if "refs" in locals() else ():
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


def make_executor(
    name: str,
    workers: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus_per_cell: float = 0.0,
) -> LocalExecutor | RayExecutor:
    """``local`` or ``ray`` executor."""
    if name == "local":
        if address is not None:
            raise ValueError("--address is for --executor ray.")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address, num_cpus or (workers if workers > 1 else None), num_gpus_per_cell)
    raise ValueError(f"Unknown executor {name!r}; choose 'local' or 'ray'.")
