"""What the dashboard keeps of a run's small files: metrics rows, evaluations, teacher views.

Each store is fed the file's new lines (`openended.dashboard.tail`) and keeps a bounded,
evenly thinned history (`Thinned`): past ``max_items`` it drops every other item and keeps
one in two from then on, so a run of a million iterations costs what one of two thousand
does, and the newest item is always there.

Contents:
    Thinned       -- the bounded, evenly thinned list.
    MetricsSeries -- flattened metrics rows with rates (tasks/s, outcomes/s, env steps/s),
                     in-flight tasks, per-student values and numeric teacher stats.
    EvalSeries    -- held-out evaluations: the mastered curve and per-task grids (heatmaps).
    ViewsStore    -- teacher views per (curriculum, student) and WebRL's phase history.
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

import numpy as np

from openended.dashboard.tail import clean_json

__all__ = ["Thinned", "MetricsSeries", "EvalSeries", "ViewsStore", "number"]

T = TypeVar("T")

#: Metrics fields plotted as they are.
BASE_FIELDS = (
    "iteration",
    "wall_s",
    "time",
    "iteration_s",
    "env_steps",
    "episodes",
    "env_steps_total",
    "episodes_total",
    "mean_return",
    "success_rate",
    "mastered",
    "tasks_sampled",
    "outcomes_accepted",
)
#: Counters turned into per-second rates between consecutive rows: ``(field, rate name)``.
RATES = (
    ("tasks_sampled", "tasks_per_s"),
    ("outcomes_accepted", "outcomes_per_s"),
    ("env_steps_total", "env_steps_per_s"),
)
STUDENT_FIELDS = ("mean_return", "success_rate", "mastered")


def number(v: Any) -> float | None:
    """A finite float, or ``None`` (missing, non-numeric, NaN, infinite); bools count as 0/1."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


class Thinned(Generic[T]):
    """At most ``max_items`` items, evenly spaced over everything added, newest always last."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max(2, int(max_items))
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self._kept: list[T] = []
        self._latest: T | None = None  # the newest item when it is not one of the kept ones
        self._stride = 1
        self._seen = 0

    def add(self, item: T) -> None:
        """Add the newest item."""
        if self._seen % self._stride == 0:
            self._kept.append(item)
            self._latest = None
            if len(self._kept) > self.max_items:
                self._kept = self._kept[::2]
                self._stride *= 2
        else:
            self._latest = item
        self._seen += 1

    def items(self) -> list[T]:
        """The kept items, oldest first, ending with the newest one added."""
        return self._kept if self._latest is None else [*self._kept, self._latest]

    def __len__(self) -> int:
        return len(self._kept) + (self._latest is not None)


class MetricsSeries:
    """``metrics.jsonl`` rows, flattened to numbers (see module docstring)."""

    def __init__(self, students: list[str], max_rows: int = 2000) -> None:
        self.students = list(students)
        self.rows: Thinned[dict[str, float | None]] = Thinned(max_rows)
        self.last: dict[str, Any] | None = None

    def reset(self) -> None:
        """Forget every row (the file was rewritten: a resumed run redoes its last iterations)."""
        self.rows.reset()
        self.last = None

    def add(self, row: dict[str, Any]) -> None:
        """Flatten and keep one metrics row."""
        flat = {k: number(row.get(k)) for k in BASE_FIELDS}
        prev = self.last
        dw = None if prev is None else _diff(row.get("wall_s"), prev.get("wall_s"))
        for field, rate in RATES:
            d = None if prev is None else _diff(row.get(field), prev.get(field))
            flat[rate] = d / dw if d is not None and dw else None
        ts, oa = flat["tasks_sampled"], flat["outcomes_accepted"]
        flat["in_flight"] = ts - oa if ts is not None and oa is not None else None
        for i, r in enumerate(row.get("per_student") or []):
            name = self.students[i] if i < len(self.students) else f"student{i}"
            for k in STUDENT_FIELDS:
                flat[f"student.{name}.{k}"] = number(r.get(k))
        for student, stats in (row.get("teacher") or {}).items():
            if isinstance(stats, dict):
                for k, v in stats.items():
                    x = number(v)
                    if x is not None:
                        flat[f"teacher.{student}.{k}"] = x
        for k, v in (row.get("eval") or {}).items():
            x = number(v)
            if x is not None:
                flat[f"eval.{k}"] = x
        self.rows.add(flat)
        self.last = row

    def columns(self, prefix: str = "") -> dict[str, list[float | None]]:
        """Column-wise series of every field starting with ``prefix`` (missing -> None)."""
        rows = self.rows.items()
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(k for k in r if k.startswith(prefix)))
        return {k: [r.get(k) for r in rows] for k in keys}


def _diff(a: Any, b: Any) -> float | None:
    x, y = number(a), number(b)
    return None if x is None or y is None else x - y


class EvalSeries:
    """``evaluations.jsonl``: the held-out curve and per-task results for heatmaps."""

    def __init__(self, max_rows: int = 2000, max_grids: int = 100) -> None:
        self.rows: Thinned[dict[str, float | None]] = Thinned(max_rows)
        self.grids: Thinned[dict[str, Any]] = Thinned(max_grids)

    def reset(self) -> None:
        """Forget everything."""
        self.rows.reset()
        self.grids.reset()

    def add(self, ev: dict[str, Any]) -> None:
        """Keep one evaluation row (and its per-task grid when tasks have 1-2 numeric params)."""
        mastered = number(ev.get("mastered"))
        if mastered is None and number(ev.get("mastered_pct")) is not None:
            mastered = number(ev["mastered_pct"]) / 100.0  # type: ignore[operator]
        self.rows.add(
            {
                "iteration": number(ev.get("iteration")),
                "env_steps_total": number(ev.get("env_steps_total")),
                "mastered": mastered,
                "mean_return": number(ev.get("mean_return")),
            }
        )
        grid = eval_grid(ev)
        if grid is not None:
            self.grids.add(grid)


def eval_grid(ev: dict[str, Any]) -> dict[str, Any] | None:
    """Per-task returns (and success) of one evaluation on a regular grid, or as points.

    Needs ``task_params`` (written since the dashboard exists); ``None`` without it.
    """
    params = ev.get("task_params") or {}
    returns = ev.get("returns") or {}
    success = ev.get("task_success") or {}
    ids = [i for i in params if i in returns]
    if not ids:
        return None
    dims = {len(params[i]) for i in ids}
    if dims not in ({1}, {2}):
        return None
    p = np.asarray([params[i] for i in ids], dtype=np.float64)
    r = [number(returns[i]) for i in ids]
    s = [None if success.get(i) is None else bool(success[i]) for i in ids]
    out: dict[str, Any] = {
        "iteration": number(ev.get("iteration")),
        "env_steps_total": number(ev.get("env_steps_total")),
        "mastered": number(ev.get("mastered")),
    }
    if p.shape[1] == 2:
        xs, ys = np.unique(p[:, 0]), np.unique(p[:, 1])
        if len(xs) * len(ys) == len(ids) and len(xs) <= 100 and len(ys) <= 100:
            z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
            ok: list[list[bool | None]] = [[None] * len(xs) for _ in ys]
            xi = {v: k for k, v in enumerate(xs.tolist())}
            yi = {v: k for k, v in enumerate(ys.tolist())}
            for (a, b), ret, suc in zip(p.tolist(), r, s):
                z[yi[b]][xi[a]] = ret
                ok[yi[b]][xi[a]] = suc
            out.update({"kind": "grid", "x": xs.tolist(), "y": ys.tolist(), "z": z, "success": ok})
            return out
    out.update({"kind": "points", "params": p[:400].tolist(), "returns": r[:400], "success": s[:400]})
    return out


class ViewsStore:
    """Teacher views per ``(curriculum, student)``, thinned, plus WebRL's phase funnels."""

    def __init__(self, max_views: int = 300, max_phases: int = 500) -> None:
        self.max_views = max_views
        self.max_phases = max_phases
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self.views: dict[tuple[str, str], Thinned[dict[str, Any]]] = {}
        self.phases: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}

    def add(self, line: dict[str, Any]) -> None:
        """Keep one ``views.jsonl`` line (every curriculum and student in it)."""
        for cur, students in (line.get("views") or {}).items():
            if not isinstance(students, dict):
                continue
            for student, view in students.items():
                if not isinstance(view, dict):
                    continue
                key = (str(cur), str(student))
                item = {
                    "iteration": line.get("iteration"),
                    "t": line.get("t"),
                    "env_steps_total": line.get("env_steps_total"),
                    "view": clean_json(view),
                }
                self.views.setdefault(key, Thinned(self.max_views)).add(item)
                phase = view.get("last_phase")
                if isinstance(phase, dict) and isinstance(phase.get("phase"), int):
                    book = self.phases.setdefault(key, {})
                    book[phase["phase"]] = clean_json(phase)
                    if len(book) > self.max_phases:
                        del book[min(book)]

    def keys(self) -> list[tuple[str, str]]:
        """The ``(curriculum, student)`` pairs with views."""
        return list(self.views)
