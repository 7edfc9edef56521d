"""The HTML report (``report/index.html``), rendered with Jinja2 from the records alone.

It holds the leaderboard, every figure, the expert logs' figures, the rollout videos, the suite's
settings and the provenance of the cells. Figures and videos are linked by relative paths, so the
results directory can be moved or served as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from safeadapt_bench.harness.leaderboard import wide
from safeadapt_bench.harness.metrics import METRICS
from safeadapt_bench.harness.records import atomic_write_text

#: Splits of the video table, in order.
VIDEO_SPLITS: tuple[str, ...] = ("train", "heldout", "source_robot")


def _task_label(cfg: dict[str, Any]) -> str:
    t = cfg["task"]
    return f"{t['task']}-{t['robot']}" + (f"->{t['target_robot']}" if t.get("target_robot") else "")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _leaderboard(lb: pd.DataFrame) -> dict[str, Any]:
    table = wide(lb)
    rows = [
        {"metric": m, "description": METRICS[m].description if m in METRICS else "", "cells": list(table[m])}
        for m in table.columns
    ]
    return {"agents": list(table.index), "rows": rows}


def _experts(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for r in records:
        d = r.get("dataset") or {}
        if d.get("id"):
            row = {"task": _task_label(r["config"]), **{k: _fmt(v) for k, v in d.items()}}
            seen.setdefault((row["task"], d["id"], d.get("episodes")), row)
    return list(seen.values())


def _videos(records: Sequence[dict[str, Any]], results: str, out_dir: str) -> tuple[list[str], list[dict]]:
    columns = sorted(
        {(v["split"], v["camera"]) for r in records for v in r.get("videos") or ()},
        key=lambda sc: (VIDEO_SPLITS.index(sc[0]) if sc[0] in VIDEO_SPLITS else 99, sc[1]),
    )
    rows = []
    for r in records:
        if not r.get("videos"):
            continue
        by = {(v["split"], v["camera"]): v for v in r["videos"]}
        cells = []
        for key in columns:
            v = by.get(key)
            if v is not None:
                path = os.path.join(results, v["path"])
                v = {**v, "src": os.path.relpath(path, out_dir), "exists": os.path.isfile(path)}
            cells.append(v)
        cfg = r["config"]
        rows.append({"agent": cfg["agent"], "task": _task_label(cfg), "seed": cfg["seed"], "videos": cells})
    return [f"{s} ({c})" for s, c in columns], rows


def _values(values: Sequence[Any]) -> str:
    uniq = sorted({_fmt(v) for v in values})
    return ", ".join(uniq)


def _settings(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = list(dict.fromkeys(k for r in records for k in r["config"]["settings"]))
    return [(k, _values([r["config"]["settings"].get(k) for r in records])) for k in keys]


def _provenance(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    prov = [r.get("provenance") or {} for r in records]
    out = [(k, _values([p.get(k) for p in prov])) for k in ("git_sha", "python", "executor", "device", "mujoco_gl")]
    for k in ("cpu", "cpu_count", "memory_gib", "gpu", "os"):
        out.append((f"hardware.{k}", _values([(p.get("hardware") or {}).get(k) for p in prov])))
    names = list(dict.fromkeys(n for p in prov for n in p.get("packages") or {}))
    out += [(f"packages.{n}", _values([(p.get("packages") or {}).get(n) for p in prov])) for n in names]
    return out


def render_html(
    records: Sequence[dict[str, Any]],
    lb: pd.DataFrame,
    results: str,
    out_dir: str,
    figures: dict[str, list[str]] | None = None,
    reps: int | None = None,
) -> str:
    """The report page as HTML text (``figures``: what ``make_plots`` wrote, name -> paths)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("safeadapt_bench", "templates"),
        autoescape=jinja2.select_autoescape(("html", "j2")),
        undefined=jinja2.StrictUndefined,
    )
    figs = []
    for paths in (figures or {}).values():
        for png in (p for p in paths if p.endswith(".png")):
            stem = os.path.splitext(os.path.basename(png))[0]
            figs.append({"name": stem.replace("_", " "), "src": os.path.relpath(png, out_dir),
                         "pdf": os.path.relpath(png[:-4] + ".pdf", out_dir)})
    video_columns, videos = _videos(records, results, out_dir)
    cfgs = [r["config"] for r in records]
    finished = [(r.get("provenance") or {}).get("finished_at") for r in records]
    return env.get_template("report.html.j2").render(
        title=", ".join(dict.fromkeys(c["suite"] for c in cfgs)),
        n_cells=len(records),
        agents=list(dict.fromkeys(c["agent"] for c in cfgs)),
        tasks=list(dict.fromkeys(_task_label(c) for c in cfgs)),
        seeds=sorted({c["seed"] for c in cfgs}),
        results_name=os.path.basename(os.path.abspath(results)),
        finished=max((f for f in finished if f), default="-"),
        leaderboard=_leaderboard(lb),
        leaderboard_note="IQM over seeds and tasks [95% stratified-bootstrap interval] (rliable"
        + (f", {reps} bootstrap reps)." if reps else ")."),
        figures=figs,
        experts=_experts(records),
        video_columns=video_columns,
        videos=videos,
        settings=_settings(records),
        provenance=_provenance(records),
    )


def write_html(records: Sequence[dict[str, Any]], lb: pd.DataFrame, results: str, out_dir: str,
               figures: dict[str, list[str]] | None = None, reps: int | None = None) -> str:
    """Write ``out_dir/index.html`` atomically; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "index.html")
    atomic_write_text(path, render_html(records, lb, results, out_dir, figures, reps))
    return path
