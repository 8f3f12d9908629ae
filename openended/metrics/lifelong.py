"""The lifelong-learning metrics, as l2metrics 3.1.0 defines them (New et al., arXiv 2201.08278).

Why our own: l2metrics is a pandas pipeline pinned to 2022 libraries (it calls ``np.NaN``,
removed in NumPy 2); the definitions are short, so they are written here on numpy and
checked against hand-computed fixtures and, where l2metrics is installed, against it on the
same logs (`tests/test_lifelong_metrics.py`). Names and units follow l2metrics' output.

All metrics run on preprocessed regimes (`openended.metrics.regimes`). ``TP(r)``, the
terminal performance of a regime, is the mean of an evaluation regime and the mean of the
last 10 % of a learning regime.

* **Performance maintenance** (``perf_maintenance_mrlep``): per task, the reference
  evaluations are the first evaluation of the task after each of its learning blocks; every
  later evaluation ``e`` that is not itself a reference gives ``TP(e) - TP(latest reference
  before e)``; the task value is their mean. ``mrtlp`` subtracts the latest learning
  regime's TP instead. Negative = forgetting.
* **Forward / backward transfer** (``*_transfer_ratio`` / ``_contrast``): for tasks ``i``
  (trained) and ``j`` (evaluated), two consecutive evaluations ``t1 < LB_i < t2`` of ``j``
  give ``TP(t2) / TP(t1)`` (contrast: ``(TP2 - TP1) / (TP1 + TP2)``); forward when the
  learning block of ``i`` comes before any training of ``j``, backward after. The first
  value of each (i, j) pair counts; the lifetime value is the mean over pairs.
* **Relative performance** (``ste_rel_perf``): per task, the sum of the first ``n``
  learning values of the lifelong run over the same sum of a single-task expert (``n`` =
  the shorter of the two), averaged over expert runs.
* **Sample efficiency** (``sample_efficiency``): ``(sat_LL / sat_STE) * (exp_STE / exp_LL)``
  with ``sat`` the maximum of the (again) smoothed learning curve and ``exp`` the index of
  its first maximum; 0 when ``sat_LL < 0.2 sat_STE`` or the lifelong learning curve's
  least-squares slope is negative; skipped when either reaches its maximum at index 0.
* **Performance recovery** (``perf_recovery``): for each repeated learning block of a task,
  the recovery time is the index of the first value reaching the previous learning
  block's TP (its length + 1 if never); the task value is minus the Theil-Sen slope of its
  recovery times (larger = recovers faster over the lifetime).
* ``avg_train_perf`` / ``avg_eval_perf``: mean learning / evaluation performance.

Lifetime values average the task values (``aggregation="median"`` takes the median).
When the log has sleep-phase rows, wake evaluation blocks are ignored for maintenance,
transfer and the averages (sleep evaluations replace them), as in l2metrics.

One deliberate difference: when several learning blocks of different tasks lie between
two evaluations of a task, l2metrics keeps one transfer value for that evaluation (the
last pair it visits); here each (trained, evaluated) pair gets it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats

from openended.errors import LogFormatError
from openended.metrics.l2log import read_log
from openended.metrics.regimes import Preprocessing, Regime, mean_per_experience, preprocess, smooth, to_regimes

__all__ = [
    "MetricSettings",
    "LifelongMetrics",
    "LIFETIME_METRICS",
    "terminal_performance",
    "compute_metrics",
    "compute_from_logs",
]

#: The lifetime metrics in l2metrics' column order (with the default methods).
LIFETIME_METRICS = (
    "perf_recovery",
    "avg_train_perf",
    "avg_eval_perf",
    "perf_maintenance_mrlep",
    "forward_transfer_ratio",
    "backward_transfer_ratio",
    "ste_rel_perf",
    "sample_efficiency",
)
TERM_WINDOW_RATIO = 0.1


@dataclass(frozen=True)
class MetricSettings:
    """How the metrics are computed (l2metrics' defaults)."""

    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    maintenance: Literal["mrlep", "mrtlp", "both"] = "mrlep"
    transfer: Literal["ratio", "contrast", "both"] = "ratio"
    aggregation: Literal["mean", "median"] = "mean"
    ste_averaging: Literal["metrics", "time"] = "metrics"

    def lifetime_names(self) -> list[str]:
        """The lifetime metric names these settings produce, in l2metrics' order."""
        names = ["perf_recovery", "avg_train_perf", "avg_eval_perf"]
        if self.maintenance in ("mrlep", "both"):
            names.append("perf_maintenance_mrlep")
        if self.maintenance in ("mrtlp", "both"):
            names.append("perf_maintenance_mrtlp")
        for method in ("ratio", "contrast"):
            if self.transfer in (method, "both"):
                names += [f"forward_transfer_{method}", f"backward_transfer_{method}"]
        return [*names, "ste_rel_perf", "sample_efficiency"]


@dataclass
class LifelongMetrics:
    """The result: lifetime values, per-task values and the regime table (NaN = not computable)."""

    lifetime: dict[str, float]
    tasks: dict[str, dict[str, Any]]
    regimes: list[dict[str, Any]]
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes null)."""
        return _json_clean({"lifetime": self.lifetime, "tasks": self.tasks, "regimes": self.regimes, "info": self.info})


def _json_clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def terminal_performance(r: Regime) -> float:
    """TP: mean of an evaluation regime; mean of the last 10 % of a learning regime."""
    v = r.per_experience()
    if v.size == 0:
        return math.nan
    ratio = 1.0 if r.block_type == "test" else TERM_WINDOW_RATIO
    return float(np.mean(v[int((1 - ratio) * v.size) :]))


def _saturation(values: np.ndarray) -> tuple[float, int]:
    """Max of the smoothed curve and the index of its first maximum."""
    s = smooth(values)
    s = s[~np.isnan(s)]
    if s.size == 0:
        return math.nan, -1
    sat = float(np.max(s))
    return sat, int(np.flatnonzero(s == sat)[0])


def _concat_learning(regimes: Sequence[Regime], task: str) -> tuple[np.ndarray, np.ndarray]:
    """The wake learning data of ``task``, regimes in order: (exp_nums, values)."""
    rs = [r for r in regimes if r.task_name == task and r.is_train and r.block_subtype == "wake"]
    if not rs:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate([r.exp_nums for r in rs]), np.concatenate([r.values for r in rs])


def _ste_learning(run: Sequence[Regime]) -> np.ndarray:
    vals = [r.values for r in run if r.is_train]
    return np.concatenate(vals) if vals else np.empty(0)


def _aggregate(values: Sequence[float], how: str) -> float:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan
    return float(np.median(v) if how == "median" else np.mean(v))


class _Computation:
    """One metrics computation over preprocessed regimes (holds the TP table)."""

    def __init__(self, regimes: list[Regime], ste: Mapping[str, list[list[Regime]]], settings: MetricSettings):
        self.regimes = regimes
        self.ste = ste
        self.settings = settings
        self.tp = {r.num: terminal_performance(r) for r in regimes}
        has_sleep = any(r.block_subtype == "sleep" for r in regimes)
        # With sleep rows, wake evaluations are replaced by sleep evaluations.
        self.scored = [r for r in regimes if not (has_sleep and r.block_type == "test" and r.block_subtype == "wake")]
        self.tasks = list(dict.fromkeys(r.task_name for r in self.scored))

    def _nums(self, task: str, block_type: str) -> np.ndarray:
        """Numbers of the scored regimes of ``task`` with ``block_type``, in order."""
        return np.array(
            [r.num for r in self.scored if r.task_name == task and r.block_type == block_type], dtype=np.int64
        )

    def maintenance(self, reference: Literal["mrlep", "mrtlp"]) -> dict[str, float]:
        out: dict[str, float] = {}
        for task in self.tasks:
            train, test = self._nums(task, "train"), self._nums(task, "test")
            refs = np.array([test[np.argmax(test > x)] for x in train if np.any(test > x)], dtype=np.int64)
            diffs = []
            for t in test:
                if not (np.any(t > refs) and t not in refs):
                    continue
                base = train[train < t][-1] if reference == "mrtlp" else refs[refs < t][-1]
                diffs.append(self.tp[int(t)] - self.tp[int(base)])
            diffs = [d for d in diffs if not math.isnan(d)]
            if diffs:
                out[task] = float(np.mean(diffs))
        return out

    def transfer(
        self, method: Literal["ratio", "contrast"]
    ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        """(forward, backward): {trained task: {evaluated task: first value}}."""
        fwd: dict[str, dict[str, float]] = {}
        bwd: dict[str, dict[str, float]] = {}
        for i in self.tasks:
            train_i = self._nums(i, "train")
            for j in self.tasks:
                if i == j or not len(train_i):
                    continue
                test_j, train_j = self._nums(j, "test"), self._nums(j, "train")
                first_j = train_j.min() if len(train_j) else None
                for tr in train_i:
                    forward = first_j is None or tr < first_j
                    if not forward and not tr > first_j:
                        continue
                    target = fwd if forward else bwd
                    if j in target.get(i, {}):
                        continue
                    for t1, t2 in zip(test_j, test_j[1:]):
                        if t1 < tr < t2:
                            v = self._transfer_value(self.tp[int(t1)], self.tp[int(t2)], method)
                            if v is not None:
                                target.setdefault(i, {})[j] = v
                            break
        return fwd, bwd

    @staticmethod
    def _transfer_value(tp1: float, tp2: float, method: str) -> float | None:
        if method == "ratio":
            return tp2 / tp1 if tp1 != 0 else None
        return (tp2 - tp1) / (tp1 + tp2) if (tp1 + tp2) != 0 else None

    def recovery(self) -> tuple[dict[str, list[float]], dict[str, float]]:
        """(recovery times per task, performance recovery per task)."""
        times: dict[str, list[float]] = {}
        for task in dict.fromkeys(r.task_name for r in self.regimes):
            rs = [r for r in self.regimes if r.task_name == task and r.is_train and r.block_subtype == "wake"]
            for prev, cur in zip(rs, rs[1:]):
                v = cur.per_experience()
                if v.size == 0:
                    continue
                hit = np.flatnonzero(v >= self.tp[prev.num])
                times.setdefault(task, []).append(float(hit[0]) if hit.size else float(len(cur.values) + 1))
        pr: dict[str, float] = {}
        if sum(len(v) for v in times.values()) > 1:
            for task, y in times.items():
                if len(y) > 1:
                    pr[task] = -float(stats.theilslopes(np.array(y)).slope)
        return times, pr

    def averages(self) -> tuple[dict[str, float], dict[str, float]]:
        train: dict[str, list[float]] = {}
        test: dict[str, list[float]] = {}
        for r in self.scored:
            target = train if r.is_train else test
            target.setdefault(r.task_name, []).append(float(np.nanmean(r.values)))
        return {t: float(np.mean(v)) for t, v in train.items()}, {t: float(np.mean(v)) for t, v in test.items()}

    def _ste_curves(self, task: str) -> list[np.ndarray]:
        """The STE learning curves of ``task``: one per run, or (``time``) their average over the shortest."""
        curves = [_ste_learning(run) for run in self.ste.get(task, [])]
        if self.settings.ste_averaging == "time" and curves:
            n = min(len(c) for c in curves)
            curves = [np.mean([c[:n] for c in curves], axis=0)]
        return curves

    def relative_performance(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for task in self.tasks:
            _, ll = _concat_learning(self.regimes, task)
            curves = self._ste_curves(task)
            if not ll.size or not curves:
                continue
            vals = []
            for ste in curves:
                n = min(ll.size, ste.size)
                vals.append(float(np.nansum(ll[:n]) / np.nansum(ste[:n])) if n else math.nan)
            out[task] = float(np.nanmean(vals))
        return out

    def sample_efficiency(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for task in self.tasks:
            exps, ll = _concat_learning(self.regimes, task)
            curves = self._ste_curves(task)
            if not ll.size or not curves:
                continue
            slope = float(np.polyfit(exps.astype(float), ll, 1)[0]) if ll.size > 1 else 0.0
            ll_sat, ll_exp = _saturation(mean_per_experience(exps, ll))
            if ll_exp == 0:
                continue
            vals = []
            for ste in curves:
                ste_sat, ste_exp = _saturation(ste)
                if ste_exp == 0:
                    continue
                if ll_sat < 0.2 * ste_sat or slope < 0:
                    vals.append(0.0)
                else:
                    vals.append((ll_sat / ste_sat) * (ste_exp / ll_exp))
            if vals:
                out[task] = float(np.mean(vals))
        return out


def compute_metrics(
    regimes: Sequence[Regime],
    ste: Mapping[str, Sequence[Sequence[Regime]]] | None = None,
    settings: MetricSettings | None = None,
    fixed_range: Mapping[str, tuple[float, float]] | None = None,
) -> LifelongMetrics:
    """Every lifelong metric of one run from its raw regimes (and STE runs keyed by task)."""
    settings = settings or MetricSettings()
    pre, ste_pre, used_range = preprocess(regimes, ste or {}, settings.preprocessing, fixed_range)
    c = _Computation(pre, ste_pre, settings)
    task_vals: dict[str, dict[str, Any]] = {t: {} for t in dict.fromkeys(r.task_name for r in pre)}

    def put(name: str, per_task: Mapping[str, Any]) -> None:
        for t in task_vals:
            task_vals[t][name] = per_task.get(t, math.nan)

    times, pr = c.recovery()
    put("perf_recovery", pr)
    put("recovery_times", {t: times.get(t, []) for t in task_vals})
    avg_train, avg_eval = c.averages()
    put("avg_train_perf", avg_train)
    put("avg_eval_perf", avg_eval)
    lifetime: dict[str, float] = {
        "perf_recovery": _aggregate(list(pr.values()), settings.aggregation),
        "avg_train_perf": _aggregate(list(avg_train.values()), settings.aggregation),
        "avg_eval_perf": _aggregate(list(avg_eval.values()), settings.aggregation),
    }
    for ref in ("mrlep", "mrtlp"):
        if settings.maintenance in (ref, "both"):
            pm = c.maintenance(ref)
            put(f"perf_maintenance_{ref}", pm)
            lifetime[f"perf_maintenance_{ref}"] = _aggregate(list(pm.values()), settings.aggregation)
    for method in ("ratio", "contrast"):
        if settings.transfer in (method, "both"):
            fwd, bwd = c.transfer(method)
            for name, table in ((f"forward_transfer_{method}", fwd), (f"backward_transfer_{method}", bwd)):
                put(name, {t: table.get(t, {}) for t in task_vals})
                lifetime[name] = _aggregate([v for row in table.values() for v in row.values()], settings.aggregation)
    rp = c.relative_performance()
    put("ste_rel_perf", rp)
    lifetime["ste_rel_perf"] = _aggregate(list(rp.values()), settings.aggregation)
    se = c.sample_efficiency()
    put("sample_efficiency", se)
    lifetime["sample_efficiency"] = _aggregate(list(se.values()), settings.aggregation)
    lifetime = {k: lifetime[k] for k in settings.lifetime_names()}
    for t in task_vals:
        task_vals[t]["num_lx"] = int(sum(len(r.values) for r in pre if r.task_name == t and r.is_train))
        task_vals[t]["num_ex"] = int(sum(len(r.values) for r in pre if r.task_name == t and not r.is_train))
    regime_table: list[dict[str, Any]] = [
        {
            "regime_num": r.num,
            "block_num": r.block_num,
            "block_type": r.block_type,
            "block_subtype": r.block_subtype,
            "task_name": r.task_name,
            "experiences": int(len(r.values)),
            "term_perf": c.tp[r.num],
        }
        for r in pre
    ]
    info = {
        "metrics_column": settings.preprocessing.perf_measure,
        "normalization_data_range": {t: list(v) for t, v in used_range.items()} if used_range else None,
        "num_lx": sum(v["num_lx"] for v in task_vals.values()),
        "num_ex": sum(v["num_ex"] for v in task_vals.values()),
        "ste_runs": {t: len(runs) for t, runs in (ste or {}).items()},
    }
    return LifelongMetrics(lifetime=lifetime, tasks=task_vals, regimes=regime_table, info=info)


def _ste_regimes(path: str | Path, pre: Preprocessing) -> tuple[str, list[Regime]]:
    _, _, rows = read_log(path)
    regimes = to_regimes(rows, pre.perf_measure, pre.variant_mode)
    trained = sorted({r.task_name for r in regimes if r.is_train})
    if len(trained) != 1:
        raise LogFormatError(f"{path}: a single-task-expert log trains exactly one task, found {trained}")
    return trained[0], regimes


def compute_from_logs(
    scenario_dir: str | Path,
    ste_dirs: Sequence[str | Path] = (),
    settings: MetricSettings | None = None,
) -> LifelongMetrics:
    """Read a scenario directory (and STE scenario directories) and compute its metrics."""
    settings = settings or MetricSettings()
    measure = settings.preprocessing.perf_measure
    logger_info, scenario_info, rows = read_log(scenario_dir)
    if measure not in logger_info["metrics_columns"]:
        raise LogFormatError(
            f"perf_measure: {measure!r} is not a metrics column of {scenario_dir} ({logger_info['metrics_columns']})"
        )
    ste: dict[str, list[list[Regime]]] = {}
    for d in ste_dirs:
        task, regs = _ste_regimes(d, settings.preprocessing)
        ste.setdefault(task, []).append(regs)
    result = compute_metrics(to_regimes(rows, measure, settings.preprocessing.variant_mode), ste, settings)
    result.info.update(
        {
            "run_id": Path(scenario_dir).name,
            "scenario_type": scenario_info.get("scenario_type", ""),
            "complexity": scenario_info.get("complexity", ""),
            "difficulty": scenario_info.get("difficulty", ""),
        }
    )
    return result
