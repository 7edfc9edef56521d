"""Did a run reproduce a reference? Compare two results directories record by record.

Two records of the same cell reproduce each other when they are identical apart from their run-dependent
sections (``timing`` and ``provenance``, :data:`~safeadapt_bench.harness.records.VOLATILE_SECTIONS`):
every metric, curve point, evaluation and agent statistic equal, floats bit for bit. ``make quick``
compares a new user's run (``runs/quick``) with the committed ``results/quick``.

Fields that only the run has (a metric added to records after the reference was written, such as
``unsafe_force_learning``) cannot disagree with the reference: they are listed as new, not as differences.
A field that only the reference has is a difference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from safeadapt_bench.harness.records import VOLATILE_SECTIONS, comparable, load_records

#: Stands for an entry that one side lacks.
ABSENT = "<absent>"


@dataclass(frozen=True)
class Difference:
    """One field that differs: its dotted path in the record and both values."""

    path: str
    run: Any
    reference: Any


@dataclass
class Comparison:
    """The outcome of :func:`compare_results`.

    Attributes:
        run_dir, reference_dir: the two results directories.
        compared: cell ids present in both.
        missing: cell ids of the reference that the run lacks; extra: the run's cells the reference lacks.
        differences: cell id -> the fields that differ (only cells with at least one).
        added: dotted paths that the run's records hold and the reference's lack (newer fields), any cell.
        devices: cell id -> ``(run, reference)`` torch devices, where they differ (a likely cause).
        kernels: cell id -> ``(run, reference)`` OpenBLAS kernels (``provenance.hardware.blas_kernel``),
            where they differ (another likely cause: the simulator's matrix products round differently).
        packages: cell id -> ``{package: (run, reference)}`` versions (``provenance.packages``), where they
            differ (a third: a new release of peft or torch trains to other numbers).
    """

    run_dir: str
    reference_dir: str
    compared: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    differences: dict[str, list[Difference]] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)
    devices: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    kernels: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def reproduced(self) -> bool:
        """Same cells on both sides, each identical apart from the volatile sections."""
        return bool(self.compared) and not (self.missing or self.extra or self.differences)

    def report(self, max_fields: int = 20) -> str:
        """Human-readable outcome: ``reproduced`` or ``NOT reproduced`` and, per record, per field, what differs."""
        ignored = " and ".join(VOLATILE_SECTIONS)
        n = len(self.compared)
        new = (f" {len(self.added)} field(s) new since the reference was written, not compared: "
               f"{', '.join(sorted(self.added)[:5])}{' ...' if len(self.added) > 5 else ''}." if self.added else "")
        if self.reproduced:
            return (f"reproduced: {n} of {n} records in {self.run_dir} are identical to {self.reference_dir} "
                    f"apart from {ignored}.{new}")
        lines = [f"NOT reproduced: {self.run_dir} against {self.reference_dir} (ignoring {ignored}): "
                 f"{len(self.differences)} of {n} common records differ, {len(self.missing)} missing, "
                 f"{len(self.extra)} not in the reference.{new}"]
        lines += [f"  missing from the run: {c}" for c in self.missing]
        lines += [f"  not in the reference: {c}" for c in self.extra]
        for cell_id, diffs in self.differences.items():
            lines.append(f"  {cell_id}: {len(diffs)} field(s) differ")
            for d in diffs[:max_fields]:
                lines.append(f"    {d.path}: run {_short(d.run)} != reference {_short(d.reference)}")
            if len(diffs) > max_fields:
                lines.append(f"    ... and {len(diffs) - max_fields} more")
            if cell_id in self.devices:
                run_dev, ref_dev = self.devices[cell_id]
                lines.append(f"    (the run used device {run_dev!r}, the reference {ref_dev!r}: numerics differ "
                             "between devices)")
            if cell_id in self.kernels:
                run_k, ref_k = self.kernels[cell_id]
                lines.append(f"    (the run's OpenBLAS kernel is {run_k!r}, the reference's {ref_k!r}: the simulator's "
                             f"matrix products round differently; OPENBLAS_CORETYPE={ref_k} selects the reference's)")
            if cell_id in self.packages:
                pins = " ".join(f"{name}=={ref_v}" for name, (_, ref_v) in sorted(self.packages[cell_id].items()))
                versions = ", ".join(f"{name} {run_v} (reference {ref_v})"
                                     for name, (run_v, ref_v) in sorted(self.packages[cell_id].items()))
                lines.append(f"    (the run's packages differ: {versions}; `pip install {pins}` installs the "
                             "reference's)")
        return "\n".join(lines)


def _package_changes(run: dict[str, str], reference: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{package: (run, reference)}`` for the packages both sides name at different versions."""
    return {name: (run[name], reference[name]) for name in sorted(set(run) & set(reference))
            if name != "safeadapt-bench" and run[name] != reference[name]}


def _unindexed(path: str) -> str:
    """``evaluations.curve[3].x`` -> ``evaluations.curve[].x``: one name for a field of every list item."""
    return re.sub(r"\[\d+\]", "[]", path)


def _short(value: Any, width: int = 60) -> str:
    text = value if value == ABSENT else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff_values(run: Any, reference: Any, path: str = "") -> list[Difference]:
    """Every leaf where ``run`` and ``reference`` (JSON values) differ, by dotted path (``[i]`` for list items).

    Floats compare exactly; ``1`` and ``1.0`` are equal (JSON does not tell them apart). Lists of different
    lengths are one difference at the list's path.
    """
    if isinstance(run, dict) and isinstance(reference, dict):
        out: list[Difference] = []
        for key in sorted(set(run) | set(reference), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += diff_values(run.get(key, ABSENT), reference.get(key, ABSENT), sub)
        return out
    if isinstance(run, list) and isinstance(reference, list) and len(run) == len(reference):
        out = []
        for i, (a, b) in enumerate(zip(run, reference)):
            out += diff_values(a, b, f"{path}[{i}]")
        return out
    same = run == reference and isinstance(run, bool) == isinstance(reference, bool)
    return [] if same else [Difference(path, run, reference)]


def compare_records(run: dict[str, Any], reference: dict[str, Any]) -> list[Difference]:
    """The fields in which two records of one cell differ, ``timing`` and ``provenance`` left out."""
    return diff_values(comparable(run), comparable(reference))


def compare_results(run_dir: str, reference_dir: str) -> Comparison:
    """Compare every record of ``run_dir`` with the record of the same cell in ``reference_dir``.

    Raises:
        FileNotFoundError: either is not a results directory (no ``manifest.json``).
        IncompatibleResultsError: either holds records of another schema version.
    """
    run = {r["cell_id"]: r for r in load_records(run_dir)}
    ref = {r["cell_id"]: r for r in load_records(reference_dir)}
    out = Comparison(run_dir, reference_dir, compared=sorted(set(run) & set(ref)),
                     missing=sorted(set(ref) - set(run)), extra=sorted(set(run) - set(ref)))
    for cell_id in out.compared:
        diffs = compare_records(run[cell_id], ref[cell_id])
        out.added |= {_unindexed(d.path) for d in diffs if d.reference == ABSENT}
        diffs = [d for d in diffs if d.reference != ABSENT]
        if diffs:
            out.differences[cell_id] = diffs
            prov = [r[cell_id].get("provenance") or {} for r in (run, ref)]
            devices = tuple(p.get("device") for p in prov)
            if devices[0] != devices[1]:
                out.devices[cell_id] = devices
            kernels = tuple((p.get("hardware") or {}).get("blas_kernel") for p in prov)
            if None not in kernels and kernels[0] != kernels[1]:
                out.kernels[cell_id] = kernels
            packages = _package_changes(*(p.get("packages") or {} for p in prov))
            if packages:
                out.packages[cell_id] = packages
    return out


__all__ = ["ABSENT", "Comparison", "Difference", "compare_records", "compare_results", "diff_values"]
