"""``openended metrics``: find the lifelong logs under a path, compute, print a table, write JSON.

Why here and not in the CLI: the search rule (which scenario directories are lifelong runs
and which are single-task experts) and the table are part of the metrics' contract, and
stay testable without argparse.

Under the given path every directory holding ``logger_info.json`` is a scenario; those whose
``scenario_info.json`` says ``scenario_type: ste`` are single-task-expert runs and serve
as the STE reference of every other one (with any given explicitly).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openended.errors import LogFormatError
from openended.metrics.l2log import find_scenario_dirs
from openended.metrics.lifelong import LifelongMetrics, MetricSettings, compute_from_logs

__all__ = [
    "SHORT_NAMES",
    "MetricsRun",
    "split_scenarios",
    "compute_all",
    "format_table",
    "format_task_table",
    "missing_ste_note",
    "write_json",
]

#: Column headers of the table (l2metrics' names are long).
SHORT_NAMES = {
    "perf_recovery": "PR",
    "avg_train_perf": "MTP",
    "avg_eval_perf": "MEP",
    "perf_maintenance_mrlep": "PM",
    "perf_maintenance_mrtlp": "PM(mrtlp)",
    "forward_transfer_ratio": "FT",
    "backward_transfer_ratio": "BT",
    "forward_transfer_contrast": "FT(contrast)",
    "backward_transfer_contrast": "BT(contrast)",
    "ste_rel_perf": "RP",
    "sample_efficiency": "SE",
}

MetricsRun = tuple[Path, LifelongMetrics]


def _scenario_type(d: Path) -> str:
    try:
        return str(json.loads((d / "scenario_info.json").read_text()).get("scenario_type", ""))
    except (OSError, json.JSONDecodeError):
        return ""


def split_scenarios(path: str | Path) -> tuple[list[Path], list[Path]]:
    """(lifelong scenario dirs, single-task-expert scenario dirs) at or under ``path``."""
    found = find_scenario_dirs(path)
    if not found:
        raise LogFormatError(
            f"{path}: no l2logger scenario directory (one holding logger_info.json) at or under it;"
            " give a run directory or an l2logger log directory"
        )
    ste = [d for d in found if _scenario_type(d) == "ste"]
    return [d for d in found if d not in ste], ste


def compute_all(
    path: str | Path, ste_dirs: Sequence[str | Path] = (), settings: MetricSettings | None = None
) -> list[MetricsRun]:
    """Metrics of every lifelong run under ``path`` against every STE run found or given."""
    runs, found_ste = split_scenarios(path)
    ste = [*found_ste, *(Path(s) for s in ste_dirs)]
    if not runs:
        raise LogFormatError(f"{path}: only single-task-expert logs (scenario_type ste); nothing to score")
    return [(d, compute_from_logs(d, ste, settings)) for d in runs]


def _cell(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def format_table(results: Sequence[MetricsRun]) -> str:
    """Lifetime metrics, one row per run (and mean / std rows when there are several).

    >>> from openended.metrics.lifelong import LifelongMetrics
    >>> r = LifelongMetrics({"perf_maintenance_mrlep": -1.5, "ste_rel_perf": float("nan")}, {}, [], {})
    >>> print(format_table([(Path("runs/a/l2logs/toy-1"), r)]))
    run   |     PM |  RP
    ------+--------+----
    toy-1 | -1.500 | n/a
    """
    names = list(results[0][1].lifetime)
    header = ["run", *(SHORT_NAMES.get(n, n) for n in names)]
    rows = [[d.name, *(_cell(m.lifetime[n]) for n in names)] for d, m in results]
    if len(results) > 1:
        cols = [[m.lifetime[n] for _, m in results] for n in names]
        for label, fn in (("mean", np.nanmean), ("std", np.nanstd)):
            cells = []
            for c in cols:
                finite = [v for v in c if not math.isnan(v)]
                cells.append(_cell(float(fn(finite))) if finite else "n/a")
            rows.append([label, *cells])
    return _render(header, rows)


def format_task_table(metrics: LifelongMetrics) -> str:
    """One run's metrics per task; a transfer cell is the mean over the tasks it transferred to.

    >>> from openended.metrics.lifelong import LifelongMetrics
    >>> tasks = {"a_x": {"forward_transfer_ratio": {"b_x": 1.5, "c_x": 0.5}, "num_lx": 30, "num_ex": 8}}
    >>> print(format_task_table(LifelongMetrics({"forward_transfer_ratio": 1.0}, tasks, [], {})))
    task |    FT | LX | EX
    -----+-------+----+---
    a_x  | 1.000 | 30 |  8
    """
    names = list(metrics.lifetime)
    header = ["task", *(SHORT_NAMES.get(n, n) for n in names), "LX", "EX"]
    rows = []
    for task, vals in metrics.tasks.items():
        cells = []
        for n in names:
            v = vals.get(n, math.nan)
            if isinstance(v, dict):
                v = float(np.mean(list(v.values()))) if v else math.nan
            cells.append(_cell(v))
        rows.append([task, *cells, str(vals.get("num_lx", "")), str(vals.get("num_ex", ""))])
    return _render(header, rows)


def missing_ste_note(results: Sequence[MetricsRun]) -> str | None:
    """A hint naming the tasks without a single-task-expert run (RP and SE need one), or None."""
    missing = sorted({t for _, m in results for t in m.tasks if not m.info.get("ste_runs", {}).get(t)})
    if not missing:
        return None
    return (
        f"RP / SE need single-task-expert logs; none for: {', '.join(missing)}"
        " (give --ste DIR, or put scenario_type: ste logs under the path)"
    )


def _render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return " | ".join([first, *rest]).rstrip()

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def write_json(results: Sequence[MetricsRun], out: str | Path, settings: MetricSettings) -> Path:
    """All results (lifetime, per task, per regime) as one JSON file (NaN as null)."""
    doc: dict[str, Any] = {
        "settings": {
            "perf_measure": settings.preprocessing.perf_measure,
            "smoothing": settings.preprocessing.smoothing,
            "window_length": settings.preprocessing.window_length,
            "clamp_outliers": settings.preprocessing.clamp_outliers,
            "normalization": settings.preprocessing.normalization,
            "maintenance": settings.maintenance,
            "transfer": settings.transfer,
            "aggregation": settings.aggregation,
            "ste_averaging": settings.ste_averaging,
            "variant_mode": settings.preprocessing.variant_mode,
        },
        "runs": {str(d): m.to_json() for d, m in results},
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False))
    tmp.replace(path)
    return path
