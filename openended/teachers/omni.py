"""OMNI: a model of interestingness (MoI) weighting over a learning-progress sampler.

Reference: Zhang, Lehman, Stanley, Clune, "OMNI: Open-endedness via Models of human
Notions of Interestingness" (ICLR 2024, arXiv 2306.01711); code ``jennyzzt/omni``
``envs/env_{tr,trc,trs}_omni.py`` (partition) and ``train.py`` (LP). Preset ``"omni"``
reproduces the paper's settings: LP base (alpha 0.1, theta 0.1), partition every 25
updates, boring tasks x0.001.

How it works:

1. A base sampler with the `TaskDistribution` hook (LP by default) gives a probability
   per known task and an EMA success estimate per task.
2. Every ``partition_every`` updates a **partition** is computed in the background
   (Algorithm 1): sort tasks by EMA success, descending (ties: task order); walk the
   list; a task not yet labelled becomes *interesting*, and every still-unlabelled task
   the judge calls boring *given it is done well* becomes *boring*. There is no mastery
   threshold: in each family of variants the best-performing member stays interesting.
3. Sampling uses ``base_probability x (boring_weight if boring else 1)``, renormalised
   (boring tasks are down-weighted, not removed).

Judges: any `openended.moi.Judge` (``judge(candidates, JudgeContext(mastered=(A,)))``,
score < 0.5 = boring), by name (``"embedding"`` default, ``"oracle"``; resolved with
``openended.moi.registry.make_judge`` when importable) or as an instance. Each verdict
"B given A" is asked once and cached (OMNI's cached GPT-3 table, built lazily), so a
partition after the first costs only judgements for new (A, B) pairs. A failed verdict
(``ok=False`` or an exception) counts as interesting and is asked again next time.

Never blocking sampling: the partition runs on the `Refitter` (a thread; judges may hold
models or sockets, so not a process) and is swapped in atomically:
``refit_swap="next_update"`` (default) installs it at the next ``update()``, so runs are
reproducible given a deterministic judge, and that ``update`` waits for a slow judge;
``"asap"`` installs it at the first call after it finishes and never waits anywhere
(a partition due while one is still running is postponed, not queued).

Differences from the reference, on purpose: compound tasks are judged as whole texts
(the reference marks a compound boring only if each part is boring given some
interesting task); dummy tasks are labelled like any other (the reference skips them;
LP gives never-solved tasks probability 0 anyway, so this only matters while nothing
has been solved).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast

import numpy as np
from pydantic import ConfigDict, Field, field_serializer
from typing_extensions import override

from openended.errors import ConfigError
from openended.moi.base import Judge
from openended.tasks import Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.lp import CadenceUnit, TaskDistribution, cadence_increment
from openended.teachers.omni_partition import (
    BORING,
    INTERESTING,
    UNLABELLED,
    VerdictTable,
    partition_with_table,
)
from openended.teachers.pool import task_label
from openended.teachers.refit import Refitter, SwapPolicy
from openended.teachers.views import task_rows

__all__ = ["OMNIConfig", "OMNITeacher", "resolve_judge", "partition_tasks", "INTERESTING", "BORING", "UNLABELLED"]


def resolve_judge(judge: Any, config: dict[str, Any] | None = None) -> Judge:
    """A judge instance from a name (``"embedding"``, ``"oracle"``, any registered one).

    An instance is passed through. Imports lazily so heavy backends load only on use.
    """
    if not isinstance(judge, str):
        if not callable(getattr(judge, "judge", None)):
            raise ConfigError(
                f"teacher.omni.judge: expected a judge name or an object with "
                f"judge(candidates, context), got {type(judge).__name__}"
            )
        return judge
    cfg = dict(config or {})
    try:
        from openended.moi.registry import make_judge
    except ImportError:
        pass
    else:
        return make_judge(judge, **cfg)
    # The moi registry is not importable: the two built-in offline judges by hand.
    if judge == "embedding":
        from openended.moi.embedding import EmbeddingJudge

        return EmbeddingJudge(**cfg)
    if judge == "oracle":
        from openended.moi.oracle import RuleOracleJudge

        return RuleOracleJudge(**cfg)
    raise ConfigError(f"teacher.omni.judge: unknown judge {judge!r}; use 'embedding', 'oracle' or an instance")


def partition_tasks(
    judge: Judge,
    texts: Sequence[str],
    ids: Sequence[str],
    success: np.ndarray,
    cache: dict[str, dict[str, tuple[bool, str]]],
    description: str = "",
    batch_size: int = 64,
) -> dict[str, Any]:
    """OMNI's Algorithm 1 with verdicts cached as ``cache[A][B] = (boring, reason)`` (only read).

    A convenience form of `partition_with_table` (what the teacher runs): returns labels,
    boring reasons as text, new cache entries and counts.
    """
    table = VerdictTable.from_state({a: {b: list(v) for b, v in d.items()} for a, d in cache.items()}, ids)
    res = partition_with_table(judge, texts, ids, success, table.rows, description, batch_size)
    table.merge(res["fresh"], len(ids))
    reasons = {}
    for b in np.flatnonzero(res["labels"] == BORING).tolist():
        a = int(res["by"][b])
        why = table.reasons.get((ids[a], b), "")
        reasons[b] = f"given {texts[a][:80]!r} (success {float(success[a]):.2f}): {why}"
    fresh = {
        aid: {ids[b]: (bool(v == 1), new["reasons"].get(b, "")) for b, v in zip(new["idx"].tolist(), new["verdict"])}
        for aid, new in res["fresh"].items()
    }
    return {**res, "reasons": reasons, "fresh": fresh}


class OMNIConfig(RefitConfig, TeacherConfig):
    """OMNI: MoI weighting (Algorithm 1) over a base sampler with the TaskDistribution hook."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    base: str = Field("lp", description="Registered name of the base sampler (needs probabilities()).")
    base_config: dict[str, Any] = Field(
        default_factory=dict, description="Config of the base sampler (seed defaults to this seed)."
    )
    judge: Any = Field("embedding", description="Judge name ('embedding', 'oracle', ...) or a Judge instance.")
    judge_config: dict[str, Any] = Field(default_factory=dict, description="Keyword config for a named judge.")
    partition_every: int = Field(25, ge=1, description="Recompute the partition every this many partition_unit.")
    partition_unit: CadenceUnit = Field(
        "updates",
        description="What partition_every counts: update() calls, outcomes, or evaluations (sweeps of "
        "eval-flagged outcomes, OMNI's protocol). The base LP's recompute_unit defaults to the same.",
    )
    boring_weight: float = Field(0.001, ge=0.0, le=1.0, description="Probability factor of boring tasks.")
    explore: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="Exploration floor after the MoI weighting: this share is spread over the tasks that are not "
        "boring but get base probability 0 (never solved, no progress). Replaces an LP base's own floor "
        "(its explore defaults to 0 here). 0 = OMNI's reference.",
    )
    description: str = Field("", description="Environment description passed to the judge.")
    judge_batch_size: int = Field(64, ge=1, description="Candidates per judge call.")
    stats_max_listed: int = Field(20, ge=0, description="Boring/interesting tasks listed in stats().")
    refit_executor: Literal["inline", "thread"] = Field(
        "thread", description="Where partitions run: thread (background) or inline (inside update)."
    )
    refit_swap: SwapPolicy = Field(
        "asap",
        description="When a finished partition goes live: asap (default; update never waits on the judge) or "
        "next_update (reproducible given a deterministic judge; the preset 'omni' uses it).",
    )

    @field_serializer("judge")
    def _judge_name(self, judge: Any) -> str:
        return judge if isinstance(judge, str) else str(getattr(judge, "name", type(judge).__name__))


class _BaseSampler(TaskDistribution, Protocol):
    """What OMNI uses of its base sampler: a teacher's update, persistence, stats and close."""

    def update(self, outcomes: Sequence[Outcome]) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


class OMNITeacher(BaseTeacher):
    """MoI-weighted sampling over a base sampler (see the module docstring). Experimental."""

    name = "omni"
    Config = OMNIConfig
    config: OMNIConfig
    space_kinds = ("discrete", "text")
    PRESETS = {
        "omni": {
            "base": "lp",
            "base_config": {
                "ema_alpha": 0.1,
                "p_theta": 0.1,
                "update_every": 25,
                "explore": 0.0,
                "optimistic_new": False,
            },
            "partition_every": 25,
            "boring_weight": 0.001,
            "explore": 0.0,
            "refit_swap": "next_update",
        }
    }

    def __init__(self, space: TaskSpace, config: OMNIConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        from openended.teachers.registry import make_teacher  # lazy: registry imports this module

        bcfg = {"seed": cfg.seed, **cfg.base_config}
        if cfg.base in ("lp", "learning_progress"):
            bcfg.setdefault("update_every", cfg.partition_every)
            bcfg.setdefault("recompute_unit", cfg.partition_unit)
            bcfg.setdefault("explore", 0.0)  # the floor is applied after the MoI weighting (explore)
        base = make_teacher(cfg.base, space, **bcfg)
        if not isinstance(base, TaskDistribution):
            raise ConfigError(
                f"teacher.omni.base: {cfg.base!r} has no TaskDistribution hook "
                "(known_tasks/probabilities/success_estimates); use 'lp' or add the hook"
            )
        self.base: _BaseSampler = base
        self.judge: Judge = resolve_judge(cfg.judge, cfg.judge_config)
        self.refitter = Refitter(self._install, executor=cfg.refit_executor, swap=cfg.refit_swap, lag=cfg.refit_lag)
        self._tasks: list[Task] = []
        self._labels = np.zeros(0, dtype=np.int8)
        self._weights = np.zeros(0)
        self._why: dict[str, dict[str, Any]] = {}  # boring task id -> which learned task made it boring, score
        self._table = VerdictTable()
        self._n_updates = 0
        self._pending = 0  # toward partition_every, in partition_unit
        self._due = False
        self._version = 0
        self._counts.update({"partitions": 0, "judge_calls": 0, "judged_pairs": 0, "judge_errors": 0})
        self._last_error = ""
        self._cdf_key: tuple = ()
        self._cdf = np.zeros(0)
        self._submitted_success = np.zeros(0)
        self._sync_tasks()
        self.register_tasks(self._tasks)

    # ------------------------------------------------------------------ plumbing
    def _sync_tasks(self) -> None:
        """Follow the base's known tasks (they only grow); new tasks start interesting."""
        known = self.base.known_tasks()
        if len(known) != len(self._tasks):
            k = len(known) - len(self._tasks)
            self._tasks = known
            self._labels = np.concatenate([self._labels, np.full(k, UNLABELLED, dtype=np.int8)])
            self._weights = np.concatenate([self._weights, np.ones(k)])

    def add_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        """Add known tasks (TextSpace): forwarded to the base sampler."""
        new: list[Task] = self.base.add_tasks(tasks)  # type: ignore[attr-defined]  # not in the hook: LP has it
        self._sync_tasks()
        self.register_tasks(new)
        return new

    def probabilities(self) -> np.ndarray:
        """The MoI-weighted distribution over ``known_tasks()``."""
        self._ensure_cdf()
        p = np.diff(self._cdf, prepend=0.0)
        return p / p.sum() if p.sum() > 0 else p

    def known_tasks(self) -> list[Task]:
        """The base's known tasks, as of the last sync (a copy)."""
        return list(self._tasks)

    def success_estimates(self) -> np.ndarray:
        """The base sampler's estimates: MoI reweights sampling, not what is learnt."""
        return self.base.success_estimates()

    @property
    def distribution_version(self) -> int:
        """Changes when the base's distribution or the committed partition changes."""
        return hash((self.base.distribution_version, self._version))

    def partition(self) -> dict[str, list[str]]:
        """The committed partition: task ids by label."""
        out: dict[str, list[str]] = {"interesting": [], "boring": [], "unlabelled": []}
        names = {INTERESTING: "interesting", BORING: "boring", UNLABELLED: "unlabelled"}
        for t, lab in zip(self._tasks, self._labels.tolist()):
            out[names[lab]].append(t.id)
        return out

    def _ensure_cdf(self) -> None:
        key = (self.base.distribution_version, self._version, len(self._tasks))
        if key == self._cdf_key:
            return
        self._sync_tasks()
        p = self.base.probabilities()
        w = self._weights[: p.size]
        q = p * w
        if q.sum() <= 0:
            q = np.ones(p.size)
        explore = self.config.explore
        if explore > 0:
            # Why after MoI: a floor in the base goes mostly to boring tasks (OMNI's 1,023 impossible
            # ones), where x0.001 removes it; here it reaches the interesting tasks LP dropped.
            cand = (p <= 0) & (self._labels[: p.size] != BORING)
            if cand.any():
                q = (1.0 - explore) * q / q.sum() + explore * cand / cand.sum()
        self._cdf = np.cumsum(q)
        self._cdf_key = key

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        self._ensure_cdf()
        cdf = self._cdf
        idx = np.searchsorted(cdf, self.rng.random(n) * cdf[-1], side="right")
        np.minimum(idx, len(self._tasks) - 1, out=idx)
        ts = self._tasks
        return [ts[i] for i in idx.tolist()]

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        # The base keeps its own issued-task table (every known task is registered there);
        # the ids are resolved already, so a BaseTeacher base skips its own lookup.
        if isinstance(self.base, BaseTeacher):
            self.base.update_resolved(tasks, outcomes)
        else:
            self.base.update(outcomes)
        self._n_updates += 1
        cfg = self.config
        has_eval = any(o.info.get("eval", False) for o in outcomes if o.info)
        self._pending += cadence_increment(cfg.partition_unit, len(outcomes), has_eval)
        if self._pending >= cfg.partition_every:
            self._pending = 0
            self._due = True
        if self._due:
            if cfg.refit_swap == "asap" and self.refitter is not None and self.refitter.busy:
                return  # postponed: the running partition is installed first
            self._due = False
            self._submit()

    def _submit(self) -> None:
        cfg = self.config
        self._sync_tasks()
        texts = [t.text if t.text is not None else repr(list(t.params)) for t in self._tasks]
        ids = [t.id for t in self._tasks]
        success = self.base.success_estimates()
        rows = dict(self._table.rows)  # shallow: rows are replaced on install, never written in place
        assert self.refitter is not None
        self.refitter.submit(
            partition_with_table,
            self.judge,
            texts,
            ids,
            success,
            rows,
            cfg.description,
            cfg.judge_batch_size,
            cfg.refit_executor != "inline",
        )
        self._submitted_success = success

    def refresh_partition(self) -> None:
        """Compute a partition now and install it (tests, end of run); blocks on the judge."""
        assert self.refitter is not None
        self._submit()
        self.refitter.drain()

    def _install(self, result: dict[str, Any]) -> None:
        """Swap a finished partition in (runs in the caller's thread, never concurrently)."""
        self._table.merge(result["fresh"], len(self._tasks))
        labels = np.asarray(result["labels"], dtype=np.int8)
        k = len(self._tasks) - labels.size
        if k > 0:  # tasks added while the partition ran start unlabelled
            labels = np.concatenate([labels, np.full(k, UNLABELLED, dtype=np.int8)])
        cfg = self.config
        weights = np.where(labels == BORING, cfg.boring_weight, 1.0)
        success = self._submitted_success
        self._why = {}
        for b in np.flatnonzero(labels == BORING).tolist():
            a = int(result["by"][b])
            ta = self._tasks[a]
            given_success = float(success[a]) if a < success.size else float("nan")
            judge_reason = self._table.reasons.get((ta.id, b), "")
            self._why[self._tasks[b].id] = {
                "given_id": ta.id,
                "given": task_label(ta),
                "given_success": given_success,
                "score": float(result["score"][b]),
                "judge_reason": judge_reason,
                "reason": f"given {task_label(ta)[:80]!r} (success {given_success:.2f}): {judge_reason}",
            }
        self._labels, self._weights = labels, weights
        self._version += 1
        self._counts["partitions"] += 1
        self._counts["judge_calls"] += int(result["calls"])
        self._counts["judged_pairs"] += int(result["judged"])
        self._counts["judge_errors"] += int(result["errors"])
        if result["last_error"]:
            self._last_error = result["last_error"]

    def boring_reasons(self) -> dict[str, dict[str, Any]]:
        """Why each boring task is boring (a copy), by task id.

        Each entry: the learned task that made it boring (``given_id``, ``given``, its
        ``given_success`` then), the judge's ``score`` for the pair and its ``reason``.
        """
        return {k: dict(v) for k, v in self._why.items()}

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "base": self.base.state_dict(),
            "labels": self._labels.astype(np.int64),
            "why": self._why,
            "cache": self._table.to_state([t.id for t in self._tasks]),
            "n_updates": self._n_updates,
            "pending": self._pending,
            "due": self._due,
            "version": self._version,
            "last_error": self._last_error,
        }

    def _load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state["base"])
        self._tasks = []
        self._labels = np.zeros(0, dtype=np.int8)
        self._weights = np.zeros(0)
        self._sync_tasks()
        labels = np.asarray(state["labels"], dtype=np.int8).reshape(-1)
        self._labels[: labels.size] = labels
        cfg = self.config
        self._weights = np.where(self._labels == BORING, cfg.boring_weight, 1.0)
        # older states kept reason strings only ("reasons"): no structured record to restore
        self._why = {k: dict(v) for k, v in state.get("why", {}).items()}
        self._table = VerdictTable.from_state(state["cache"], [t.id for t in self._tasks])
        self._n_updates = int(state["n_updates"])
        # older states counted update() calls only
        self._pending = int(state.get("pending", self._n_updates % self.config.partition_every))
        self._due = bool(state["due"])
        self._version = int(state["version"])
        self._last_error = str(state["last_error"])
        self._cdf_key = ()

    def _stats(self) -> dict:
        cfg = self.config
        lab = self._labels
        out: dict[str, Any] = {
            "omni/partition_version": self._version,
            "omni/interesting": int((lab == INTERESTING).sum()),
            "omni/boring": int((lab == BORING).sum()),
            "omni/unlabelled": int((lab == UNLABELLED).sum()),
            "omni/judge": getattr(self.judge, "name", type(self.judge).__name__),
            "omni/judge_cache_pairs": self._table.pairs(),
            "omni/last_judge_error": self._last_error,
        }
        k = cfg.stats_max_listed
        if k:
            boring = [i for i in np.flatnonzero(lab == BORING).tolist()][:k]
            out["omni/boring_tasks"] = [
                {"task": task_label(self._tasks[i]), "id": self._tasks[i].id, **self._why.get(self._tasks[i].id, {})}
                for i in boring
            ]
            inter = np.flatnonzero(lab == INTERESTING).tolist()[:k]
            out["omni/interesting_tasks"] = [task_label(self._tasks[i]) for i in inter]
        base = {
            f"omni/base/{key}": v
            for key, v in self.base.stats().items()
            if key.startswith("lp/") or key in ("outcomes",)
        }
        out.update(base)
        return out

    @override
    def close(self) -> None:
        super().close()
        self.base.close()

    def view(self) -> dict:
        """Dashboard view: the committed partition with the judge's reasons, by EMA success.

        See `openended.teachers.views`.
        """
        n = min(len(self._tasks), self._labels.size)
        base = cast(TaskDistribution, self.base)  # checked in __init__
        p = base.probabilities()[:n] * self._weights[:n]
        columns = {"success": base.success_estimates()[:n], "p": p / p.sum() if p.sum() > 0 else p}
        rows = task_rows(self._tasks[:n], columns, "success")
        labels = {t.id: int(lab) for t, lab in zip(self._tasks, self._labels.tolist())}
        names = {INTERESTING: "interesting", BORING: "boring", UNLABELLED: "unlabelled"}
        for r in rows:
            r["label"] = names[labels[r["id"]]]
            why = self._why.get(r["id"], {})
            r["reason"] = why.get("reason", "")
            r["given"] = why.get("given")
            r["judge_score"] = why.get("score")
        counts = {name: int((self._labels == code).sum()) for code, name in names.items()}
        return {"kind": "partition", "teacher": self.name, "version": self._version, "counts": counts, "rows": rows}
