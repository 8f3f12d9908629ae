"""From log rows to regimes, and the preprocessing the lifelong metrics run on.

Why a module of its own: every metric is defined on *regimes* — maximal runs of rows with
the same (block, block type, subtype, task) — after the same preprocessing, so getting
these right once is what makes the metrics agree with l2metrics 3.1.0. Its defaults:

1. Drop incomplete experiences and rows whose performance column is empty.
2. Smooth each learning regime with a flat (moving-average) window: the given length, or
   ``min(int(0.2 * n), 100)`` when none is given or the regime is shorter than it; no
   smoothing under 3; the signal is reflected at both ends so the output keeps its length.
   Evaluation regimes are not smoothed (single-task-expert runs: every regime is).
3. Optionally clip each task to its 10th-90th percentile (LL and STE training data together).
4. Normalise per task to ``(x - min) / (max - min) * 100 + 1`` with min / max over the
   lifelong data and the STE training data of the task (a constant task becomes 1).

>>> [float(v) for v in smooth(np.array([0.0, 0.0, 3.0, 0.0, 0.0, 0.0]), window_len=3)]
[1.0, 0.0, 1.0, 1.0, 1.0, 0.0]

(l2metrics' alignment, kept: an odd window's average is shifted by one experience.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from openended.errors import ConfigError, LogFormatError
from openended.metrics.l2log import LogRow

__all__ = [
    "Regime",
    "Preprocessing",
    "smooth",
    "mean_per_experience",
    "to_regimes",
    "preprocess",
    "data_range",
]


@dataclass(frozen=True)
class Regime:
    """A maximal run of rows with the same block, block type, subtype and task; ``values`` per row."""

    num: int
    block_num: int
    block_type: str
    block_subtype: str
    task_name: str
    exp_nums: np.ndarray
    values: np.ndarray

    @property
    def is_train(self) -> bool:
        """A learning regime."""
        return self.block_type == "train"

    def per_experience(self) -> np.ndarray:
        """The values averaged per ``exp_num`` (several workers may log the same one), NaNs dropped."""
        v = mean_per_experience(self.exp_nums, self.values)
        return v[~np.isnan(v)]


def mean_per_experience(exp_nums: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` averaged over rows with the same ``exp_num`` (ordered by it); as is when all differ."""
    if len(np.unique(exp_nums)) == len(exp_nums):
        return values
    keys, inv = np.unique(exp_nums, return_inverse=True)
    sums = np.zeros(len(keys))
    np.add.at(sums, inv, values)
    return sums / np.bincount(inv)


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing settings (l2metrics' defaults)."""

    perf_measure: str = "reward"
    smoothing: Literal["flat", "none"] = "flat"
    window_length: int | None = None
    smooth_eval: bool = False
    clamp_outliers: bool = False
    normalization: Literal["task", "run", "none"] = "task"
    variant_mode: Literal["aware", "agnostic"] = "aware"


def smooth(x: np.ndarray, window_len: int | None = None) -> np.ndarray:
    """Flat moving average of ``x`` with reflected ends; same length as ``x`` (l2metrics' smoothing)."""
    x = np.asarray(x, dtype=float)
    if window_len is None or x.size < window_len:
        window_len = min(int(x.size * 0.2), 100)
    if window_len < 3:
        return x
    w = window_len
    padded = np.concatenate([x[w - 1 : 0 : -1], x, x[-2 : -w - 1 : -1]])
    padded = padded[~np.isnan(padded)]
    y = np.convolve(np.full(w, 1.0 / w), padded, mode="valid")
    return y[int(math.floor(w / 2 - 1)) : -int(math.ceil(w / 2))]


def to_regimes(rows: Sequence[LogRow], perf_measure: str, variant_mode: str = "aware") -> list[Regime]:
    """Complete rows with a value for ``perf_measure``, cut into regimes (rows sorted as `read_log` gives).

    ``variant_mode="agnostic"`` scores ``label_variant`` tasks by their label (the text
    before the first ``_``): all variants of a task are one task.
    """
    kept = [r for r in rows if r.exp_status == "complete" and not math.isnan(r.values.get(perf_measure, math.nan))]
    if variant_mode == "agnostic":
        kept = [replace(r, task_name=r.task_name.split("_")[0]) for r in kept]
    if not kept:
        raise LogFormatError(f"the log has no complete experience with a value for {perf_measure!r}")
    regimes: list[Regime] = []
    start = 0
    for i in range(1, len(kept) + 1):
        if i < len(kept) and _key(kept[i]) == _key(kept[start]):
            continue
        chunk = kept[start:i]
        first = chunk[0]
        order = np.argsort([r.exp_num for r in chunk], kind="stable")
        regimes.append(
            Regime(
                num=len(regimes),
                block_num=first.block_num,
                block_type=first.block_type,
                block_subtype=first.block_subtype,
                task_name=first.task_name,
                exp_nums=np.array([chunk[j].exp_num for j in order], dtype=np.int64),
                values=np.array([chunk[j].values[perf_measure] for j in order], dtype=float),
            )
        )
        start = i
    return regimes


def _key(r: LogRow) -> tuple[int, str, str, str]:
    return (r.block_num, r.block_type, r.block_subtype, r.task_name)


def data_range(
    regimes: Sequence[Regime], ste: Mapping[str, Sequence[Sequence[Regime]]]
) -> dict[str, tuple[float, float]]:
    """Per task (min, max) over the lifelong values and the task's STE training values."""
    out: dict[str, tuple[float, float]] = {}
    for task in dict.fromkeys(r.task_name for r in regimes):
        vals = [r.values for r in regimes if r.task_name == task]
        vals += [r.values for run in ste.get(task, ()) for r in run if r.is_train]
        cat = np.concatenate(vals)
        out[task] = (float(np.nanmin(cat)), float(np.nanmax(cat)))
    return out


def _with_values(regimes: Iterable[Regime], fn: Callable[[Regime], np.ndarray]) -> list[Regime]:
    return [replace(r, values=fn(r)) for r in regimes]


def preprocess(
    regimes: Sequence[Regime],
    ste: Mapping[str, Sequence[Sequence[Regime]]],
    settings: Preprocessing,
    fixed_range: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[list[Regime], dict[str, list[list[Regime]]], dict[str, tuple[float, float]] | None]:
    """Smooth, clamp and normalise the lifelong regimes and the STE runs; returns them and the range used."""
    out = list(regimes)
    ste_out = {t: [list(run) for run in runs] for t, runs in ste.items()}
    if settings.smoothing != "none":
        w = settings.window_length
        out = _with_values(out, lambda r: smooth(r.values, w) if r.is_train or settings.smooth_eval else r.values)
        ste_out = {t: [_with_values(run, lambda r: smooth(r.values, w)) for run in runs] for t, runs in ste_out.items()}
    if settings.clamp_outliers:
        out, ste_out = _clamp(out, ste_out, fixed_range)
    if settings.normalization == "none":
        return out, ste_out, None
    rng = dict(fixed_range) if fixed_range is not None else data_range(out, ste_out)
    missing = sorted({r.task_name for r in out} - set(rng))
    if missing:
        raise ConfigError(f"data range: no min/max for tasks {missing}")
    if settings.normalization == "run":
        lo, hi = min(v[0] for v in rng.values()), max(v[1] for v in rng.values())
        rng = {t: (lo, hi) for t in rng}

    def norm(r: Regime) -> np.ndarray:
        lo, hi = rng[r.task_name]
        if lo == hi:
            return r.values * 0 + 1.0
        return (r.values - lo) / (hi - lo) * 100.0 + 1.0

    out = _with_values(out, norm)
    ste_out = {t: [_with_values(run, norm) for run in runs] if t in rng else runs for t, runs in ste_out.items()}
    return out, ste_out, rng


def _clamp(
    regimes: list[Regime],
    ste: dict[str, list[list[Regime]]],
    fixed_range: Mapping[str, tuple[float, float]] | None,
) -> tuple[list[Regime], dict[str, list[list[Regime]]]]:
    bounds: dict[str, tuple[float, float]] = {}
    for task in dict.fromkeys(r.task_name for r in regimes):
        if fixed_range is not None:
            bounds[task] = fixed_range[task]
            continue
        x = np.concatenate([r.values for r in regimes if r.task_name == task])
        x_ste = [r.values for run in ste.get(task, ()) for r in run if r.is_train]
        if x_ste:
            x = np.concatenate([x, *x_ste])
        lo, hi = np.quantile(x, (0.1, 0.9))
        bounds[task] = (float(lo), float(hi))
    clipped = _with_values(regimes, lambda r: np.clip(r.values, *bounds[r.task_name]))

    def clip(r: Regime) -> np.ndarray:
        return np.clip(r.values, *bounds[r.task_name]) if r.task_name in bounds else r.values

    return clipped, {t: [_with_values(run, clip) for run in runs] for t, runs in ste.items()}
