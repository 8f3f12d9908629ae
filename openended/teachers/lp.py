"""Learning-progress (LP) teacher over a finite set of known tasks (OMNI's LP core).

Reference: Zhang et al., "OMNI: Open-endedness via Models of human Notions of
Interestingness" (ICLR 2024, arXiv 2306.01711), code ``jennyzzt/omni`` (``train.py``,
``envs/env_tr_lp.py``); the reweighting is Kanitscheider et al. 2021 (arXiv 2106.14876).
Preset ``"omni"`` reproduces the paper's settings (alpha 0.1, theta 0.1, every 25 updates).

Contents:
    reweight            -- ``f(p) = (1-theta) p / (p + theta (1 - 2p))`` (emphasises low success).
    lp_to_probabilities -- LP -> keep (LP > 0 or EMA success > 0) -> z-score -> sigmoid -> normalise.
    LPTracker           -- vectorised per-task success windows, double EMA and LP; growable.
    TaskDistribution    -- the hook other teachers read (OMNI's MoI weighting, WebRL's pool):
                           ``known_tasks()``, ``probabilities()``, ``success_estimates()``.
    LearningProgressTeacher / LPConfig -- the registered ``"lp"`` teacher.

How OMNI's "every 25 updates" maps here. OMNI evaluates *all* tasks every 25 PPO updates
(20 held-out episodes per task), then takes one double-EMA step. Here one ``update()``
call is one learner iteration's batch of finished episodes, so ``update_every=25`` with
``recompute_unit="updates"`` (default) takes one EMA step every 25 ``update()`` calls,
using the success rate of each task over the outcomes collected since the previous step.
``recompute_unit="outcomes"`` counts outcomes instead (for services whose batches vary in
size). Outcomes with ``info["eval"]`` truthy are held-out evaluations: once any has been
seen (``success_source="auto"``) only evaluation outcomes feed the EMAs, as in OMNI;
otherwise training outcomes do. A task without outcomes in a window keeps its EMAs
(OMNI evaluates every task, so it never has this case; freezing is the conservative
choice: no data, no claimed progress or regress).

First observation of a task initialises ``p_fast = p_slow = normalised rate`` and the raw
EMA to the raw rate (as the reference does), so a task's first window never counts as
progress by itself.

Sampling is ``searchsorted`` on a cached CDF: O(log n) per task and never waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field

from openended.errors import ConfigError
from openended.tasks import Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.pool import TaskPool, known_tasks_of_space, task_label
from openended.teachers.views import task_rows

__all__ = [
    "reweight",
    "lp_to_probabilities",
    "cadence_increment",
    "LPTracker",
    "TaskDistribution",
    "LPConfig",
    "LearningProgressTeacher",
]


# ------------------------------------------------------------------------------ maths
def reweight(p: np.ndarray, theta: float) -> np.ndarray:
    """Kanitscheider et al.'s ``f(p) = (1-θ)p / (p + θ(1-2p))``.

    Why: a change from 0.01 to 0.05 success means more than one from 0.90 to 0.94; f is
    steep near 0 and flat near 1, so LP on f(p) favours tasks that are just starting to
    work. ``f(0) = 0``, ``f(1) = 1``; the denominator is positive for p in [0, 1] and
    θ in (0, 1).
    """
    p = np.asarray(p, dtype=np.float64)
    return (1.0 - theta) * p / (p + theta * (1.0 - 2.0 * p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def lp_to_probabilities(
    lp: np.ndarray,
    ema_success: np.ndarray,
    *,
    unseen: np.ndarray | None = None,
    explore: float = 0.0,
) -> np.ndarray:
    """OMNI's map from LP to a sampling distribution, plus the two exploration switches.

    1. Keep tasks with ``LP > 0`` or ``ema_success > 0``; the others get probability 0
       (never-solved, never-changing tasks, e.g. impossible ones, drop out).
    2. z-score LP over the kept tasks (std 0 -> divide by 1), sigmoid, normalise.
    3. If no task qualifies, the same transform over all tasks (uniform when LP is flat).

    Exploration (both off = the reference, exactly):

    * ``unseen`` (optimistic prior): tasks in this mask (never observed) are kept with
      the highest LP of the kept tasks, so a new task is tried before it is judged.
    * ``explore`` (floor): that share of the mass is spread uniformly over the tasks
      steps 1-3 give 0, so a task that has never succeeded stays sampled (it may start
      to succeed once its prerequisites are learned, which LP alone would never see).
    """
    lp = np.asarray(lp, dtype=np.float64)
    n = lp.size
    if n == 0:
        return lp.copy()
    keep = (lp > 0) | (np.asarray(ema_success) > 0)
    if unseen is not None and np.any(unseen):
        unseen = np.asarray(unseen, dtype=bool)
        lp = lp.copy()
        lp[unseen] = lp[keep & ~unseen].max() if np.any(keep & ~unseen) else 0.0
        keep = keep | unseen
    out = _kept_distribution(lp, keep)
    dropped = out <= 0
    if explore > 0 and dropped.any():
        out = (1.0 - explore) * out
        out[dropped] += explore / dropped.sum()
    return out


def _kept_distribution(lp: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Steps 1-3 of `lp_to_probabilities` for a given keep mask."""
    n = lp.size
    sub = lp[keep] if keep.any() else lp
    std = sub.std()
    z = (sub - sub.mean()) / (std if std > 0 else 1.0)
    s = _sigmoid(z)
    s = s / s.sum()
    if keep.any():
        out = np.zeros(n)
        out[keep] = s
        return out
    return s


# ---------------------------------------------------------------------------- cadence
#: What an "every N" counts: update() calls, outcomes, or evaluation sweeps (update() calls
#: carrying eval-flagged outcomes; `openended run` reports each sweep in one call).
CadenceUnit = Literal["updates", "outcomes", "evaluations"]


def cadence_increment(unit: CadenceUnit, n_outcomes: int, has_eval: bool) -> int:
    """How far one ``update()`` call moves an "every N ``unit``" counter.

    Why three units: in a service, ``update()`` runs once per client flush (32 outcomes
    or 1 s), so "updates" there measures wall-clock timing, not training. "outcomes"
    counts episodes; "evaluations" counts OMNI's evaluation sweeps.
    """
    if unit == "outcomes":
        return n_outcomes
    if unit == "evaluations":
        return int(has_eval)
    return 1


# ---------------------------------------------------------------------------- tracker
class LPTracker:
    """Per-task success windows, double EMA and bidirectional LP, vectorised over tasks.

    Indices are positions in the owner's task list; ``grow`` appends tasks (WebRL pools,
    OMNI over a growing text space). Two windows are kept: evaluation and training
    outcomes, so the owner can choose the source at each step.
    """

    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "fast",
        "slow",
        "ema_raw",
        "raw_last",
        "baseline",
        "seen",
        "attempts_total",
        "successes_total",
        "win_att_eval",
        "win_suc_eval",
        "win_att_train",
        "win_suc_train",
    )
    # One float64 vector per name in _ARRAYS, all of length n (set in __init__ via setattr).
    fast: np.ndarray  # EMA of normalised success, rate alpha
    slow: np.ndarray  # EMA of ``fast``, rate alpha
    ema_raw: np.ndarray  # EMA of raw success (the success estimate)
    raw_last: np.ndarray  # raw success of the last window a task was observed in
    baseline: np.ndarray  # random-agent success, subtracted before normalising
    seen: np.ndarray  # 1.0 once a task has been observed
    attempts_total: np.ndarray
    successes_total: np.ndarray
    win_att_eval: np.ndarray  # current window: evaluation attempts / successes
    win_suc_eval: np.ndarray
    win_att_train: np.ndarray  # current window: training attempts / successes
    win_suc_train: np.ndarray

    def __init__(self, n: int = 0, *, alpha: float = 0.1, theta: float = 0.1) -> None:
        self.alpha = float(alpha)
        self.theta = float(theta)
        self.n = 0
        for name in self._ARRAYS:
            setattr(self, name, np.zeros(0, dtype=np.float64))
        self.steps = 0
        self.first_step_n = 0  # tasks known at the first step; later ones are "new" (optimistic prior)
        self.grow(n)

    def grow(self, k: int) -> None:
        """Append ``k`` unobserved tasks."""
        if k <= 0:
            return
        for name in self._ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(k)]))
        self.n += k

    def record(self, idx: np.ndarray, success: np.ndarray, is_eval: np.ndarray) -> None:
        """Add outcomes (task index, 0/1 success, evaluation flag) to the current window."""
        idx = np.asarray(idx, dtype=np.int64)
        s = np.asarray(success, dtype=np.float64)
        e = np.asarray(is_eval, dtype=bool)
        np.add.at(self.win_att_eval, idx[e], 1.0)
        np.add.at(self.win_suc_eval, idx[e], s[e])
        np.add.at(self.win_att_train, idx[~e], 1.0)
        np.add.at(self.win_suc_train, idx[~e], s[~e])
        np.add.at(self.attempts_total, idx, 1.0)
        np.add.at(self.successes_total, idx, s)

    def step(self, *, use_eval: bool, min_attempts: int = 1) -> np.ndarray:
        """One double-EMA step from the current window; clears both windows.

        Returns the boolean mask of tasks whose EMAs moved.
        """
        att = self.win_att_eval if use_eval else self.win_att_train
        suc = self.win_suc_eval if use_eval else self.win_suc_train
        upd = att >= max(1, min_attempts)
        raw = np.zeros(self.n)
        raw[upd] = suc[upd] / att[upd]
        b = self.baseline
        denom = np.where(1.0 - b > 0, 1.0 - b, 1.0)
        norm = np.maximum(raw - b, 0.0) / denom
        a = self.alpha
        first = upd & (self.seen == 0)
        later = upd & (self.seen > 0)
        # REFERENCE: first observation initialises both EMAs (LP starts at 0).
        self.fast[first] = norm[first]
        self.slow[first] = norm[first]
        self.ema_raw[first] = raw[first]
        # REFERENCE: p_fast <- a*norm + (1-a)*p_fast; p_slow <- a*p_fast + (1-a)*p_slow (new p_fast).
        self.fast[later] = a * norm[later] + (1.0 - a) * self.fast[later]
        self.slow[later] = a * self.fast[later] + (1.0 - a) * self.slow[later]
        self.ema_raw[later] = a * raw[later] + (1.0 - a) * self.ema_raw[later]
        self.raw_last[upd] = raw[upd]
        self.seen[upd] = 1.0
        for name in ("win_att_eval", "win_suc_eval", "win_att_train", "win_suc_train"):
            getattr(self, name)[:] = 0.0
        if self.steps == 0:
            self.first_step_n = self.n
        self.steps += 1
        return upd

    def lp(self) -> np.ndarray:
        """Bidirectional LP: ``|f(p_fast) - f(p_slow)|`` (forgetting counts as progress too)."""
        return np.abs(reweight(self.fast, self.theta) - reweight(self.slow, self.theta))

    def probabilities(self, *, explore: float = 0.0, optimistic: bool = False) -> np.ndarray:
        """OMNI's sampling distribution from the current LP and EMA success (`lp_to_probabilities`).

        ``optimistic`` treats tasks added after the first step (WebRL's admissions, LP's
        ``add_tasks``) and never observed since as top-LP; ``explore`` is the floor's share.
        Both off = the reference. The initial tasks get no prior: before the first step the
        distribution is uniform anyway, and in a large universe (OMNI's 1,023 impossible
        tasks) re-trying every task missed by the first window costs more than it finds.
        """
        unseen = None
        if optimistic and self.steps > 0:
            unseen = (self.seen == 0) & (np.arange(self.n) >= self.first_step_n)
        return lp_to_probabilities(self.lp(), self.ema_raw, unseen=unseen, explore=explore)

    def state_dict(self) -> dict:
        """Copies of every array plus the step count and rates."""
        d: dict[str, Any] = {name: getattr(self, name).copy() for name in self._ARRAYS}
        d.update(n=self.n, steps=self.steps, alpha=self.alpha, theta=self.theta, first_step_n=self.first_step_n)
        return d

    def load_state_dict(self, d: dict) -> None:
        """Inverse of `state_dict`; raises `ConfigError` if an array's length disagrees with ``n``."""
        self.n = int(d["n"])
        self.steps = int(d["steps"])
        self.alpha = float(d["alpha"])
        self.theta = float(d["theta"])
        self.first_step_n = int(d.get("first_step_n", self.n))  # older states: every task counts as initial
        for name in self._ARRAYS:
            arr = np.asarray(d[name], dtype=np.float64).reshape(-1)
            if arr.size != self.n:
                raise ConfigError(f"LPTracker state: {name} has {arr.size} entries, expected {self.n}")
            setattr(self, name, arr.copy())


# --------------------------------------------------------------------- distribution hook
@runtime_checkable
class TaskDistribution(Protocol):
    """A teacher whose sampling distribution is an explicit vector over known tasks.

    OMNI's MoI weighting multiplies ``probabilities()`` by its interesting/boring weights,
    so any teacher with this hook can be the base sampler:

    * LP (here): known tasks are the Discrete values or the known texts.
    * PLR: known tasks are the level buffer; ``probabilities()`` is the rank+staleness mix
      over buffered levels; ``success_estimates()`` the levels' last returns mapped to
      [0, 1] (or their solved rate).
    * ALP-GMM: known tasks are a finite candidate set (e.g. the archive of sampled
      parameters, or one representative per GMM component/region); ``probabilities()``
      is the mixture's mass on each candidate (component weight x ALP). MoI then judges
      the regions' descriptions.

    ``distribution_version`` changes whenever the vector changes, so a wrapper can
    cache its combined CDF.
    """

    distribution_version: int

    def known_tasks(self) -> list[Task]:
        """The tasks the distribution is over, in a fixed order that only grows."""
        ...

    def probabilities(self) -> np.ndarray:
        """Sampling probability of each of ``known_tasks()`` (same order, sums to 1)."""
        ...

    def success_estimates(self) -> np.ndarray:
        """Estimated success in [0, 1] of each of ``known_tasks()`` (OMNI orders tasks by it)."""
        ...


# ----------------------------------------------------------------------------- teacher
class LPConfig(TeacherConfig):
    """Learning-progress teacher (OMNI's LP core)."""

    ema_alpha: float = Field(0.1, gt=0.0, le=1.0, description="EMA rate of both fast and slow EMAs.")
    p_theta: float = Field(0.1, gt=0.0, lt=0.5, description="Reweighting theta: f(p) emphasises low success.")
    update_every: int = Field(25, ge=1, description="EMA/LP step every this many updates (or outcomes).")
    recompute_unit: CadenceUnit = Field(
        "updates",
        description="What update_every counts: update() calls (one per learner iteration in-process; one per "
        "client flush in a service), outcomes, or evaluations (update() calls carrying eval outcomes: a sweep).",
    )
    min_attempts: int = Field(1, ge=1, description="Outcomes a task needs in a window to move its EMAs.")
    success_source: Literal["auto", "eval", "train"] = Field(
        "auto", description="auto: evaluation outcomes (info['eval']) once any seen, else training ones."
    )
    random_baseline: dict[str, float] | None = Field(
        None, description="Random-agent success per task (key: task id or text): norm = max(r-b,0)/(1-b)."
    )
    success_from_return: float | None = Field(
        None, description="If set, an outcome without success counts as success when return >= this."
    )
    tasks: list[str] | None = Field(
        None, description="TextSpace only: the known task texts (default: the space's seed tasks)."
    )
    explore: float = Field(
        0.3,
        ge=0.0,
        lt=1.0,
        description="Exploration floor: share of sampling spread uniformly over the tasks LP gives 0 "
        "(never succeeded, no progress), so they keep being tried. 0 = OMNI's reference.",
    )
    optimistic_new: bool = Field(
        True,
        description="Tasks added after the first LP step (add_tasks) get the top LP until observed "
        "(False = reference).",
    )
    mastered_threshold: float = Field(0.9, ge=0.0, le=1.0, description="EMA success counted as mastered (stats).")
    stats_top_k: int = Field(10, ge=0, description="How many top-LP tasks stats() lists.")


class LearningProgressTeacher(BaseTeacher):
    """Samples known tasks in proportion to sigmoid(z(LP)); see the module docstring. Stable."""

    name = "lp"
    Config = LPConfig
    config: LPConfig
    space_kinds = ("discrete", "text")
    PRESETS = {
        "omni": {
            "ema_alpha": 0.1,
            "p_theta": 0.1,
            "update_every": 25,
            "recompute_unit": "updates",
            "success_source": "auto",
            "explore": 0.0,
            "optimistic_new": False,
        }
    }

    def __init__(self, space: TaskSpace, config: LPConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        if cfg.tasks is not None and space.kind != "text":
            raise ConfigError("teacher.lp.tasks: only for TextSpace; a Discrete space's tasks are its values")
        self._pool = TaskPool()
        self._tracker = LPTracker(0, alpha=cfg.ema_alpha, theta=cfg.p_theta)
        self._pending = 0
        self._eval_seen = False
        self._no_success = 0
        self.distribution_version = 0
        self._probs = np.zeros(0)
        self._cdf = np.zeros(0)
        self.add_tasks(known_tasks_of_space(space, cfg.tasks))

    # ---------------------------------------------------------------- known tasks
    def add_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        """Make tasks known: sampled from now on, starting unobserved.

        Returns the tasks actually added (ids already known are skipped). Every task is
        checked against the space before any is added.
        """
        for t in tasks:  # all checked before any is added: a bad task leaves nothing half-added
            self.space.check_task(t)
        new = self._pool.add(tasks)
        if new:
            self._tracker.grow(len(new))
            self._apply_baseline(range(len(self._pool) - len(new), len(self._pool)))
            self.register_tasks(new)
            self._refresh()
        return new

    def _apply_baseline(self, positions: Sequence[int]) -> None:
        base = self.config.random_baseline
        if not base:
            return
        for i in positions:
            t = self._pool[i]
            b = base.get(t.id, base.get(t.text or "", None))
            if b is not None:
                if not 0.0 <= b <= 1.0:
                    raise ConfigError(f"teacher.lp.random_baseline[{t.text!r}]: must be in [0, 1], got {b}")
                self._tracker.baseline[i] = b

    def index_of(self, task_id: str) -> int | None:
        """Position of a known task in ``known_tasks()``, or None if it is not known."""
        return self._pool.index_of(task_id)

    # ------------------------------------------------------------ TaskDistribution
    def known_tasks(self) -> list[Task]:
        """The known tasks in the order of ``probabilities()`` (a copy)."""
        return list(self._pool.tasks)

    def probabilities(self) -> np.ndarray:
        """Current sampling distribution over ``known_tasks()`` (a copy)."""
        return self._probs.copy()

    def success_estimates(self) -> np.ndarray:
        """EMA of raw success per known task (OMNI's ``ema_tsr``; 0 where unobserved)."""
        return self._tracker.ema_raw.copy()

    def learning_progress(self) -> np.ndarray:
        """Current bidirectional LP per known task (`LPTracker.lp`)."""
        return self._tracker.lp()

    def _refresh(self) -> None:
        cfg = self.config
        self._probs = self._tracker.probabilities(explore=cfg.explore, optimistic=cfg.optimistic_new)
        self._cdf = np.cumsum(self._probs)
        self.distribution_version += 1

    # -------------------------------------------------------------------- algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        # SPEEDUP: inverse-CDF sampling on a cached CDF instead of rng.choice(p=...) per call.
        cdf = self._cdf
        idx = np.searchsorted(cdf, self.rng.random(n) * cdf[-1], side="right")
        np.minimum(idx, len(self._pool) - 1, out=idx)
        ts = self._pool.tasks
        return [ts[i] for i in idx.tolist()]

    def _success_of(self, o: Outcome) -> float | None:
        if o.success is not None:
            return 1.0 if o.success else 0.0
        thr = self.config.success_from_return
        if thr is not None:
            return 1.0 if o.episode_return >= thr else 0.0
        return None

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        idx, suc, ev = [], [], []
        has_eval = False
        for t, o in zip(tasks, outcomes):
            i = self._pool.index_of(t.id)
            s = self._success_of(o)
            has_eval |= bool(o.info.get("eval", False)) if o.info else False
            if i is None or s is None:
                self._no_success += s is None
                continue
            idx.append(i)
            suc.append(s)
            e = bool(o.info.get("eval", False)) if o.info else False
            ev.append(e)
            self._eval_seen |= e
        if idx:
            self._tracker.record(np.asarray(idx), np.asarray(suc), np.asarray(ev))
        cfg = self.config
        self._pending += cadence_increment(cfg.recompute_unit, len(idx), has_eval)
        if self._pending >= cfg.update_every:
            self._pending = 0
            self.recompute()

    def recompute(self) -> None:
        """Take one EMA step now and rebuild the distribution (normally automatic)."""
        cfg = self.config
        use_eval = cfg.success_source == "eval" or (cfg.success_source == "auto" and self._eval_seen)
        self._tracker.step(use_eval=use_eval, min_attempts=cfg.min_attempts)
        self._refresh()

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "tasks": self._pool.to_dicts(),
            "tracker": self._tracker.state_dict(),
            "pending": self._pending,
            "eval_seen": self._eval_seen,
            "no_success": self._no_success,
            "distribution_version": self.distribution_version,
        }

    def _load_state_dict(self, state: dict) -> None:
        self._pool.load(state["tasks"])
        self._tracker.load_state_dict(state["tracker"])
        self._pending = int(state["pending"])
        self._eval_seen = bool(state["eval_seen"])
        self._no_success = int(state["no_success"])
        self._refresh()
        self.distribution_version = int(state["distribution_version"])

    def _stats(self) -> dict:
        cfg = self.config
        tr = self._tracker
        lp = tr.lp()
        out: dict[str, Any] = {
            "lp/known_tasks": len(self._pool),
            "lp/steps": tr.steps,
            "lp/mastered_fraction": float((tr.ema_raw >= cfg.mastered_threshold).mean()) if tr.n else 0.0,
            "lp/active_fraction": float((self._probs > 0).mean()) if tr.n else 0.0,
            "lp/mean_lp": float(lp.mean()) if tr.n else 0.0,
            "lp/source": "eval"
            if (cfg.success_source == "eval" or (cfg.success_source == "auto" and self._eval_seen))
            else "train",
            "lp/outcomes_without_success": self._no_success,
        }
        k = min(cfg.stats_top_k, tr.n)
        if k:
            top = np.argsort(-lp, kind="stable")[:k]
            out["lp/top"] = [
                {
                    "task": task_label(self._pool[i]),
                    "id": self._pool[i].id,
                    "lp": float(lp[i]),
                    "ema_success": float(tr.ema_raw[i]),
                    "p": float(self._probs[i]),
                }
                for i in top
            ]
        return out

    def view(self) -> dict:
        """Dashboard view: known tasks with LP, EMA success and probability, highest LP first.

        See `openended.teachers.views`.
        """
        columns = {"lp": self.learning_progress(), "ema_success": self.success_estimates(), "p": self._probs}
        return {
            "kind": "scores",
            "teacher": self.name,
            "score": "lp",
            "n_tasks": len(self._pool),
            "rows": task_rows(self._pool.tasks, columns, "lp"),
        }
