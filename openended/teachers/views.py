"""Teacher views: small, JSON-able pictures of a teacher's state, for dashboards.

Why: a run's metrics rows keep only scalar teacher stats and its checkpoints hold the full
state; a dashboard needs the middle ground -- mixture components with their ALP, RIAC's
regions, per-task scores, OMNI's partition with the judge's reasons, WebRL's lineage --
bounded in size and cheap enough (well under a millisecond for default-size teachers) to
take between iterations. Views are never computed on the sampling path: the run loop asks
the service for them (`TeacherServiceCore.views`) and appends them to the run directory.

The contract (optional, like ``stats``): a teacher that has a picture to show defines
``view() -> dict``. Every view carries ``"kind"`` (which drawing: ``gmm``, ``regions``,
``scores``, ``partition``, ``lineage``) and ``"teacher"``; lists hold at most `MAX_ROWS`
entries; floats are rounded to 6 significant digits; task texts are clipped labels
(`openended.teachers.pool.task_label`) -- data to show, never markup.

Contents:
    teacher_view  -- a teacher's view, ``None`` if it has none, an ``error`` view if it failed.
    gmm_view      -- mixture components (mean, covariance, signal, probability) in task dims.
    box_regions   -- axis-aligned regions (bounds, ALP, pairs held), highest ALP first.
    task_rows     -- per-task rows (label, id, numeric columns), highest ``order_by`` first.
    lineage_nodes -- the newest pool tasks plus their ancestors, for a lineage tree.

Example:
    >>> from openended.tasks import Box, Outcome
    >>> from openended.teachers import make_teacher
    >>> t = make_teacher("riac", Box([0, 0], [1, 1]), seed=0)
    >>> tasks = t.sample(8)
    >>> t.update([Outcome(x.id, float(x.params[0])) for x in tasks])
    >>> v = teacher_view(t)
    >>> v["kind"], v["teacher"], len(v["regions"]) >= 1
    ('regions', 'riac', True)
    >>> teacher_view(make_teacher("random", Box([0], [1]))) is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openended.tasks import Box, Task
from openended.teachers.pool import task_label

__all__ = ["MAX_ROWS", "teacher_view", "gmm_view", "box_regions", "task_rows", "lineage_nodes", "rounded"]

#: Most rows (tasks, regions, nodes) one view lists.
MAX_ROWS = 200
#: Task dimensions a GMM view keeps (covariances grow with the square).
MAX_DIMS = 16


def rounded(a: Any) -> Any:
    """Array (or scalar) as JSON numbers with 6 significant digits (non-finite -> None)."""
    arr = np.asarray(a, dtype=np.float64)
    out = np.where(np.isfinite(arr), arr, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = 10.0 ** (5 - np.where(out != 0, np.floor(np.log10(np.abs(out))), 0))
        short = np.round(out * scale) / scale
    out = np.where(np.isfinite(short), short, out)
    return _nan_to_none(out.tolist())


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    return None if v != v else v  # NaN is the only value not equal to itself


def teacher_view(teacher: Any) -> dict[str, Any] | None:
    """``teacher.view()`` if it has one, else ``None``.

    A failing view becomes ``{"kind": "error", ...}`` so a dashboard bug never stops a run.
    """
    view = getattr(teacher, "view", None)
    if view is None:
        return None
    try:
        return view()
    except Exception as err:  # noqa: BLE001 - a view is for display only; the run goes on
        return {"kind": "error", "teacher": getattr(teacher, "name", "?"), "error": f"{type(err).__name__}: {err}"}


def gmm_view(
    teacher: str,
    space: Box,
    means: np.ndarray | None,
    covariances: np.ndarray | None,
    signal_name: str,
    signal: np.ndarray | None,
    probs: np.ndarray | None,
    weights: np.ndarray | None,
    **extra: Any,
) -> dict[str, Any]:
    """A GMM teacher's components in the task dimensions, with their signal and probability.

    The extra fit coordinates (ALP, time, return) are dropped; ``signal`` is what the
    teacher draws components by (ALP-GMM: mean ALP; Covar-GMM: LP).
    """
    d = min(space.dim, MAX_DIMS)
    out: dict[str, Any] = {
        "kind": "gmm",
        "teacher": teacher,
        "dims": list(space.names[:d]),
        "low": rounded(space.low[:d]),
        "high": rounded(space.high[:d]),
        "signal": signal_name,
        "components": [],
        **extra,
    }
    if means is None or covariances is None:
        return out
    k = min(means.shape[0], MAX_ROWS)
    mu, cov = rounded(means[:k, :d]), rounded(covariances[:k, :d, :d])
    sig = rounded(signal[:k]) if signal is not None else [None] * k
    p = rounded(probs[:k]) if probs is not None else [None] * k
    w = rounded(weights[:k]) if weights is not None else [None] * k
    out["components"] = [{"mean": mu[i], "cov": cov[i], "signal": sig[i], "p": p[i], "weight": w[i]} for i in range(k)]
    return out


def box_regions(
    low: np.ndarray, high: np.ndarray, alp: np.ndarray, n_pairs: Sequence[int], limit: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """Regions as ``{"low", "high", "alp", "n_pairs"}`` rows, highest ALP first, at most ``limit``."""
    order = np.argsort(-np.asarray(alp, dtype=np.float64), kind="stable")[:limit]
    lo, hi, a = rounded(low[order, :MAX_DIMS]), rounded(high[order, :MAX_DIMS]), rounded(alp[order])
    return [
        {"low": lo[j], "high": hi[j], "alp": a[j], "n_pairs": int(n_pairs[i])} for j, i in enumerate(order.tolist())
    ]


def task_rows(
    tasks: Sequence[Task], columns: Mapping[str, np.ndarray], order_by: str, limit: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """One row per task (``task`` label, ``id``, then ``columns``), highest ``order_by`` first.

    Ties keep the tasks' order; at most ``limit`` rows.
    """
    if not tasks:
        return []
    key = np.asarray(columns[order_by], dtype=np.float64)
    order = np.argsort(-np.nan_to_num(key, nan=-np.inf), kind="stable")[:limit].tolist()
    cols = {name: rounded(np.asarray(v, dtype=np.float64)[order]) for name, v in columns.items()}
    return [
        {"task": task_label(tasks[i]), "id": tasks[i].id, **{name: cols[name][j] for name in cols}}
        for j, i in enumerate(order)
    ]


def lineage_nodes(
    tasks: Sequence[Task], columns: Mapping[str, np.ndarray], limit: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """The newest ``limit`` tasks of a pool plus their ancestors still in the pool, oldest first.

    Each node has its label, origin, parent ids and ``columns``; at most ``2 * limit`` nodes.
    """
    index = {t.id: i for i, t in enumerate(tasks)}
    keep = set(range(max(0, len(tasks) - limit), len(tasks)))
    stack = list(keep)
    while stack and len(keep) < 2 * limit:
        for pid in tasks[stack.pop()].parent_ids:
            j = index.get(pid)
            if j is not None and j not in keep:
                keep.add(j)
                stack.append(j)
    order = sorted(keep)
    cols = {name: rounded(np.asarray(v, dtype=np.float64)[order]) for name, v in columns.items()}
    return [
        {
            "task": task_label(tasks[i]),
            "id": tasks[i].id,
            "origin": tasks[i].origin,
            "parents": list(tasks[i].parent_ids),
            **{name: cols[name][j] for name in cols},
        }
        for j, i in enumerate(order)
    ]
