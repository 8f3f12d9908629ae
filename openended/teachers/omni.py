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

import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast

import numpy as np
from pydantic import ConfigDict, Field, field_serializer
from typing_extensions import override

from openended.errors import ConfigError
from openended.moi.base import Judge, JudgeContext
from openended.tasks import Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.lp import TaskDistribution
from openended.teachers.pool import task_label
from openended.teachers.refit import Refitter
from openended.teachers.views import task_rows

__all__ = ["OMNIConfig", "OMNITeacher", "resolve_judge", "partition_tasks"]

INTERESTING, BORING, UNLABELLED = 1, 0, -1


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
    """OMNI's Algorithm 1 (pure; runs in the background thread).

    ``cache[A][B] = (boring, reason)`` holds verdicts already asked; it is only read here.
    Returns labels (1 interesting, 0 boring), boring reasons, new cache entries and counts.
    """
    n = len(texts)
    order = np.argsort(-np.asarray(success, dtype=np.float64), kind="stable")
    labels = np.full(n, UNLABELLED, dtype=np.int8)
    reasons: dict[int, str] = {}
    fresh: dict[str, dict[str, tuple[bool, str]]] = {}
    calls = judged = errors = 0
    last_error = ""
    for a in order.tolist():
        if labels[a] != UNLABELLED:
            continue
        time.sleep(0)  # SPEEDUP: yield the GIL so sampling threads never wait a switch interval
        labels[a] = INTERESTING
        unl = np.flatnonzero(labels == UNLABELLED)
        if unl.size == 0:
            break
        aid = ids[a]
        known = cache.get(aid, {})
        new = fresh.setdefault(aid, {})
        need = [b for b in unl.tolist() if ids[b] not in known and ids[b] not in new]
        ctx = JudgeContext(mastered=(texts[a],), description=description, extra={"task_id": aid})
        for s in range(0, len(need), batch_size):
            chunk = need[s : s + batch_size]
            calls += 1
            try:
                verdicts = judge.judge([texts[b] for b in chunk], ctx)
                if len(verdicts) != len(chunk):
                    raise ConfigError(f"judge returned {len(verdicts)} verdicts for {len(chunk)} candidates")
            except Exception as err:  # noqa: BLE001 - a judge failure must not stop the curriculum
                errors += len(chunk)
                last_error = f"{type(err).__name__}: {str(err)[:200]}"
                continue
            finally:
                time.sleep(0)
            for b, v in zip(chunk, verdicts):
                if not v.ok:
                    errors += 1
                    last_error = (v.reason or "judge returned ok=False")[:200]
                    continue
                judged += 1
                boring = float(v.score) < 0.5
                new[ids[b]] = (boring, v.reason[:300] if boring else "")
        for b in unl.tolist():
            cached = known.get(ids[b]) or new.get(ids[b])
            if cached is not None and cached[0]:
                labels[b] = BORING
                reasons[b] = f"given {texts[a][:80]!r} (success {float(success[a]):.2f}): {cached[1]}"
    fresh = {k: v for k, v in fresh.items() if v}
    return {
        "labels": labels,
        "reasons": reasons,
        "fresh": fresh,
        "calls": calls,
        "judged": judged,
        "errors": errors,
        "last_error": last_error,
    }


class OMNIConfig(RefitConfig, TeacherConfig):
    """OMNI: MoI weighting (Algorithm 1) over a base sampler with the TaskDistribution hook."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    base: str = Field("lp", description="Registered name of the base sampler (needs probabilities()).")
    base_config: dict[str, Any] = Field(
        default_factory=dict, description="Config of the base sampler (seed defaults to this seed)."
    )
    judge: Any = Field("embedding", description="Judge name ('embedding', 'oracle', ...) or a Judge instance.")
    judge_config: dict[str, Any] = Field(default_factory=dict, description="Keyword config for a named judge.")
    partition_every: int = Field(25, ge=1, description="Recompute the partition every this many updates.")
    boring_weight: float = Field(0.001, ge=0.0, le=1.0, description="Probability factor of boring tasks.")
    description: str = Field("", description="Environment description passed to the judge.")
    judge_batch_size: int = Field(64, ge=1, description="Candidates per judge call.")
    stats_max_listed: int = Field(20, ge=0, description="Boring/interesting tasks listed in stats().")
    refit_executor: Literal["inline", "thread"] = Field(
        "thread", description="Where partitions run: thread (background) or inline (inside update)."
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
        }
    }

    def __init__(self, space: TaskSpace, config: OMNIConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        from openended.teachers.registry import make_teacher  # lazy: registry imports this module

        bcfg = {"seed": cfg.seed, **cfg.base_config}
        if cfg.base in ("lp", "learning_progress"):
            bcfg.setdefault("update_every", cfg.partition_every)
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
        self._reasons: dict[str, str] = {}
        self._cache: dict[str, dict[str, tuple[bool, str]]] = {}
        self._n_updates = 0
        self._due = False
        self._version = 0
        self._counts.update({"partitions": 0, "judge_calls": 0, "judged_pairs": 0, "judge_errors": 0})
        self._last_error = ""
        self._cdf_key: tuple = ()
        self._cdf = np.zeros(0)
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
        # The base keeps its own issued-task table (every known task is registered there).
        self.base.update(outcomes)
        self._n_updates += 1
        cfg = self.config
        if self._n_updates % cfg.partition_every == 0:
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
        cache = dict(self._cache)  # shallow: the job only reads the inner dicts
        assert self.refitter is not None
        self.refitter.submit(
            partition_tasks, self.judge, texts, ids, success, cache, cfg.description, cfg.judge_batch_size
        )

    def refresh_partition(self) -> None:
        """Compute a partition now and install it (tests, end of run); blocks on the judge."""
        assert self.refitter is not None
        self._submit()
        self.refitter.drain()

    def _install(self, result: dict[str, Any]) -> None:
        """Swap a finished partition in (runs in the caller's thread, never concurrently)."""
        for aid, entries in result["fresh"].items():
            merged = dict(self._cache.get(aid, {}))
            merged.update({k: tuple(v) for k, v in entries.items()})
            self._cache[aid] = merged
        labels = np.asarray(result["labels"], dtype=np.int8)
        k = len(self._tasks) - labels.size
        if k > 0:  # tasks added while the partition ran start unlabelled
            labels = np.concatenate([labels, np.full(k, UNLABELLED, dtype=np.int8)])
        cfg = self.config
        weights = np.where(labels == BORING, cfg.boring_weight, 1.0)
        self._reasons = {self._tasks[int(i)].id: r for i, r in result["reasons"].items()}
        self._labels, self._weights = labels, weights
        self._version += 1
        self._counts["partitions"] += 1
        self._counts["judge_calls"] += int(result["calls"])
        self._counts["judged_pairs"] += int(result["judged"])
        self._counts["judge_errors"] += int(result["errors"])
        if result["last_error"]:
            self._last_error = result["last_error"]

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "base": self.base.state_dict(),
            "labels": self._labels.astype(np.int64),
            "reasons": self._reasons,
            "cache": {a: {b: [v[0], v[1]] for b, v in d.items()} for a, d in self._cache.items()},
            "n_updates": self._n_updates,
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
        self._reasons = dict(state["reasons"])
        self._cache = {a: {b: (bool(v[0]), str(v[1])) for b, v in d.items()} for a, d in state["cache"].items()}
        self._n_updates = int(state["n_updates"])
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
            "omni/judge_cache_pairs": sum(len(d) for d in self._cache.values()),
            "omni/last_judge_error": self._last_error,
        }
        k = cfg.stats_max_listed
        if k:
            boring = [i for i in np.flatnonzero(lab == BORING).tolist()][:k]
            out["omni/boring_tasks"] = [
                {
                    "task": task_label(self._tasks[i]),
                    "id": self._tasks[i].id,
                    "reason": self._reasons.get(self._tasks[i].id, ""),
                }
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
            r["reason"] = self._reasons.get(r["id"], "")
        counts = {name: int((self._labels == code).sum()) for code, name in names.items()}
        return {"kind": "partition", "teacher": self.name, "version": self._version, "counts": counts, "rows": rows}
