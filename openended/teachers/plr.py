"""Prioritized Level Replay (PLR) over a Discrete level set, with a bounded level buffer.

Reference: Jiang, Grefenstette, Rocktäschel, "Prioritized Level Replay" (ICML 2021,
arXiv 2010.03934), code ``facebookresearch/level-replay`` (``level_replay/level_sampler.py``,
``arguments.py``, README). The bounded buffer with replacement of the lowest-scoring level is
Robust PLR / PLR⊥ (Jiang et al. 2021, arXiv 2110.02439; ``facebookresearch/dcd``
``level_replay/level_sampler.py``).

Contents:
    rank_weights / power_weights / staleness_weights / score_weights -- the transforms.
    mix_staleness / replay_distribution -- ``P = (1-ρ)·h(scores) + ρ·h_stale(staleness)``.
    PLRConfig / PLRTeacher -- the registered ``"plr"`` teacher (``Discrete`` spaces only).

Algorithm (one draw; ``sample(n)`` makes ``n`` draws in order):

1. Replay decision. With nothing buffered, explore; with every level of the space
   buffered, replay; otherwise, once the buffer is at least ``min_fill`` full, replay with
   probability ``replay_prob`` (schedule ``"fixed"``) or with probability equal to the fill
   fraction (schedule ``"proportionate"``, the original PLR default).
2. Explore: a level *not* in the buffer, uniformly (never-seen levels of a finite training
   set, or any level outside the buffer once it is bounded).
3. Replay: a buffered level from ``P`` above. Scores ``S`` go through ``h``: rank
   prioritisation ``h(S)_i = (1/rank_i)^(1/β)`` (rank 1 = highest score; ties by buffer
   slot) normalised; staleness ``c_i`` = draws since level ``i`` was last drawn, through
   ``c^(1/T)`` normalised (uniform if all are 0). Every draw (explore or replay) resets the
   drawn level's staleness, as the reference does.
4. Update. Each outcome scores its level: ``info["score"]`` when the learner reports one
   (PLR's ``value_l1`` = mean |GAE| over the episode, or positive value loss), otherwise a
   return-based proxy (below). A buffered level's score becomes
   ``(1-α)·old + α·new`` (``score_ema``; PLR uses α = 1, replace). A new level takes a free
   slot, or replaces the slot with the lowest score (``buffer_priority="score"``, PLR⊥) or
   the lowest replay probability (``"replay_support"``, dcd's default) if its score is at
   least that slot's; else it stays unbuffered.

Return-based proxies (``score_source="proxy"``, or ``"auto"`` without ``info["score"]``);
the teacher sees only episode outcomes, so they stand in for the learner's value error:

* ``"return_l1"`` (default): ``|G - b_l|`` with ``b_l`` a per-level running mean of returns
  (rate ``proxy_baseline_rate``, ``b_l = 0`` before the level's first episode). This is
  PLR's L1 value loss with a tabular per-level value estimate: high where returns still
  move, ~0 where the student is stable (always solved or always failed).
* ``"max_mc"``: ``max_G_l - G`` (PLR⊥'s MaxMC regret with the episode return as the
  value): high where the student once did better than it does now.

Defaults (``PLRConfig``): rank prioritisation, β = 0.1, staleness ρ = 0.1 (staleness power
transform, T = 1), α = 1, as in the PLR README's Procgen command (verified in
``facebookresearch/level-replay``). Replay probability 0.5 with a fixed schedule and
``min_fill`` 0.5 are the robust (PLR⊥/dcd, jaxued) settings; the original Procgen runs
used the proportionate schedule with ``rho = 1.0`` (no replay until every training level
was seen) -- preset ``"plr_procgen"``. Buffer size defaults to ``min(|space|, 4000)``:
the whole 200-level Procgen training set, or dcd's 4,000 for large spaces.

Deviations from the reference, on purpose: ranks are taken among buffered levels only
(the reference ranks unseen levels too, at score 0, which only matters when seen scores
are ≤ 0); all-zero staleness falls back to uniform instead of an unnormalised vector
(the reference's ``np.random.choice`` would raise there); partial-episode scores are the
learner's job (one outcome = one finished episode).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from openended.errors import ConfigError, TeacherStateError
from openended.tasks import Discrete, Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.views import MAX_ROWS

__all__ = [
    "PLRConfig",
    "PLRTeacher",
    "rank_weights",
    "power_weights",
    "staleness_weights",
    "score_weights",
    "mix_staleness",
    "replay_distribution",
    "DEFAULT_MAX_BUFFER",
]

DEFAULT_MAX_BUFFER = 4000  # dcd's seed_buffer_size for unbounded level spaces


# ------------------------------------------------------------------------------ maths
def rank_weights(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Normalised rank prioritisation ``(1/rank)^(1/β)``; rank 1 is the highest score.

    Why ranks: they are invariant to the scale of the score (value losses drift by orders
    of magnitude during training) and give outliers bounded weight. Ties are broken by
    position (earlier first), so the result is deterministic.

    >>> np.round(rank_weights(np.array([0.2, 0.9, 0.5]), 1.0), 4).tolist()
    [0.1818, 0.5455, 0.2727]
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    order = np.argsort(-s, kind="stable")
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.arange(1, s.size + 1)
    w = ranks ** (-1.0 / temperature)
    return w / w.sum()


def power_weights(values: np.ndarray, temperature: float, eps: float = 0.0) -> np.ndarray:
    """Normalised ``(v + eps)^(1/T)`` (negative values clamp to 0); uniform if all are 0."""
    v = np.maximum(np.asarray(values, dtype=np.float64), 0.0) + eps
    if v.size == 0:
        return v
    w = v ** (1.0 / temperature)
    z = w.sum()
    return w / z if z > 0 else np.full(v.size, 1.0 / v.size)


def staleness_weights(
    staleness: np.ndarray, temperature: float = 1.0, transform: Literal["power", "rank"] = "power"
) -> np.ndarray:
    """Normalised staleness weights: ``c^(1/T)`` (PLR default) or rank of ``c``.

    Why staleness at all: a level's score was measured with an older policy; mixing in
    ``ρ`` of staleness-proportional mass bounds how out of date any score can get.
    """
    if transform == "rank":
        return rank_weights(staleness, temperature)
    return power_weights(staleness, temperature)


def score_weights(
    scores: np.ndarray, *, temperature: float, transform: Literal["rank", "power"] = "rank", staleness_coef: float = 0.0
) -> np.ndarray:
    """``h(S)``: rank prioritisation, or the power transform (with the reference's ``eps``)."""
    if transform == "rank":
        return rank_weights(scores, temperature)
    return power_weights(scores, temperature, eps=0.0 if staleness_coef > 0 else 1e-3)


def mix_staleness(
    p_score: np.ndarray,
    staleness: np.ndarray,
    *,
    staleness_coef: float,
    transform: Literal["power", "rank"] = "power",
    temperature: float = 1.0,
) -> np.ndarray:
    """``(1-ρ)·p_score + ρ·h_c(staleness)``; ``p_score`` unchanged when ``ρ = 0``."""
    if staleness_coef <= 0 or p_score.size == 0:
        return p_score
    return (1.0 - staleness_coef) * p_score + staleness_coef * staleness_weights(staleness, temperature, transform)


def replay_distribution(
    scores: np.ndarray,
    staleness: np.ndarray,
    *,
    temperature: float,
    staleness_coef: float,
    score_transform: Literal["rank", "power"] = "rank",
    staleness_transform: Literal["power", "rank"] = "power",
    staleness_temperature: float = 1.0,
) -> np.ndarray:
    """``P = (1-ρ)·h(S) + ρ·h_c(C)`` over the buffered levels (sums to 1).

    >>> np.round(replay_distribution(np.array([3.0, 1.0]), np.array([0.0, 2.0]),
    ...                              temperature=1.0, staleness_coef=0.5), 4).tolist()
    [0.3333, 0.6667]
    """
    p = score_weights(scores, temperature=temperature, transform=score_transform, staleness_coef=staleness_coef)
    return mix_staleness(
        p, staleness, staleness_coef=staleness_coef, transform=staleness_transform, temperature=staleness_temperature
    )


# ----------------------------------------------------------------------------- config
class PLRConfig(TeacherConfig):
    """Prioritized Level Replay (defaults: PLR's Procgen scoring + the robust replay rule)."""

    replay_prob: float = Field(
        0.5, ge=0.0, le=1.0, description="P(replay) per draw under the fixed schedule (robust PLR: 0.5)."
    )
    replay_schedule: Literal["fixed", "proportionate"] = Field(
        "fixed", description="fixed: replay_prob; proportionate: P(replay) = buffer fill fraction (PLR 2021)."
    )
    min_fill: float = Field(
        0.5, ge=0.0, le=1.0, description="Buffer fill fraction before any replay (PLR's rho; 1.0 = see all first)."
    )
    buffer_size: int | None = Field(None, ge=1, description="Level buffer capacity; None = min(|space|, 4000).")
    buffer_priority: Literal["score", "replay_support"] = Field(
        "score", description="Which slot a new level may replace when full: lowest score or lowest P(replay)."
    )
    score_transform: Literal["rank", "power"] = Field("rank", description="h(S): rank prioritisation or power.")
    temperature: float = Field(0.1, gt=0.0, description="β of the score transform (PLR: 0.1).")
    staleness_coef: float = Field(0.1, ge=0.0, le=1.0, description="ρ: staleness mixing weight (PLR: 0.1).")
    staleness_transform: Literal["power", "rank"] = Field("power", description="Staleness transform (PLR: power).")
    staleness_temperature: float = Field(1.0, gt=0.0, description="Temperature of the staleness transform.")
    score_ema: float = Field(1.0, gt=0.0, le=1.0, description="α: score <- (1-α) old + α new (PLR: 1.0, i.e. replace).")
    score_source: Literal["auto", "info", "proxy"] = Field(
        "auto", description="auto: info[score_key] if present else the proxy; info: require it; proxy: ignore it."
    )
    score_key: str = Field("score", min_length=1, description="Outcome.info key with the learner's level score.")
    proxy: Literal["return_l1", "max_mc"] = Field("return_l1", description="Return-based score proxy (module doc).")
    proxy_baseline_rate: float = Field(
        0.5, gt=0.0, le=1.0, description="Rate of the per-level running mean return used by return_l1."
    )
    stats_top_k: int = Field(10, ge=0, le=1000, description="Levels listed in stats() (highest P(replay) first).")


# ---------------------------------------------------------------------------- teacher
class PLRTeacher(BaseTeacher):
    """PLR over a ``Discrete`` space (Procgen levels, seeds, minigames).

    One buffer serves every student (PLR trains one agent); ``student`` is ignored.
    Implements the ``TaskDistribution`` hook (``known_tasks``/``probabilities``/
    ``success_estimates``) so an MoI weighting can wrap it.
    """

    name = "plr"
    Config = PLRConfig
    space_kinds = ("discrete",)
    config: PLRConfig
    space: Discrete  # guaranteed by space_kinds
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # facebookresearch/level-replay README + arguments.py (Procgen, 200 levels).
        "plr_procgen": {
            "replay_schedule": "proportionate",
            "min_fill": 1.0,
            "score_transform": "rank",
            "temperature": 0.1,
            "staleness_coef": 0.1,
            "staleness_transform": "power",
            "staleness_temperature": 1.0,
            "score_ema": 1.0,
        },
        # Robust PLR (PLR⊥) replay rule with PLR's Procgen prioritisation.
        "robust_plr": {
            "replay_schedule": "fixed",
            "replay_prob": 0.5,
            "min_fill": 0.5,
            "temperature": 0.1,
            "staleness_coef": 0.1,
            "score_ema": 1.0,
        },
    }

    def __init__(self, space: TaskSpace, config: PLRConfig | None = None) -> None:
        super().__init__(space, config)
        cfg, space = self.config, self.space
        self._n_space = space.n
        cap = cfg.buffer_size if cfg.buffer_size is not None else min(space.n, DEFAULT_MAX_BUFFER)
        if cap > space.n:
            raise ConfigError(f"teacher.plr.buffer_size: must be at most the number of levels ({space.n}), got {cap}")
        self.capacity = int(cap)
        b = self.capacity
        self._level = np.full(b, -1, dtype=np.int64)  # space index held by each slot (-1: empty)
        self._score = np.zeros(b, dtype=np.float64)
        self._last = np.zeros(b, dtype=np.int64)  # draw counter when last drawn
        self._baseline = np.zeros(b, dtype=np.float64)  # return_l1 proxy: running mean return
        self._max_ret = np.full(b, -np.inf)  # max_mc proxy
        self._episodes = np.zeros(b, dtype=np.int64)
        self._success = np.zeros(b, dtype=np.float64)  # running success rate (where reported)
        self._slot: dict[int, int] = {}  # space index -> slot
        self._draws = 0  # global draw counter (staleness clock)
        self._drawn_unbuffered: OrderedDict[int, int] = OrderedDict()  # explored, not yet scored -> draw
        self._decisions = {"replay": 0, "explore": 0}
        self._inserted = 0
        self._replaced = 0
        self._rejected = 0
        self._proxy_used = 0
        self.distribution_version = 0

    # ------------------------------------------------------------------ internals
    def _filled(self) -> np.ndarray:
        return np.flatnonzero(self._level >= 0)

    def _score_probs(self, filled: np.ndarray) -> np.ndarray:
        """Score part ``h(S)`` over the filled slots (fixed within one ``sample`` call)."""
        c = self.config
        return score_weights(
            self._score[filled], temperature=c.temperature, transform=c.score_transform, staleness_coef=c.staleness_coef
        )

    def _mix(self, p_score: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Mix in the staleness part, which changes with every draw."""
        c = self.config
        stale = (self._draws - self._last[filled]).astype(np.float64)
        return mix_staleness(
            p_score,
            stale,
            staleness_coef=c.staleness_coef,
            transform=c.staleness_transform,
            temperature=c.staleness_temperature,
        )

    def _decide_replay(self, n_filled: int) -> bool:
        if n_filled == 0:
            return False
        if n_filled >= self._n_space:
            return True  # nothing left to explore
        fill = n_filled / self.capacity
        c = self.config
        if fill < c.min_fill:
            return False
        p = c.replay_prob if c.replay_schedule == "fixed" else fill
        return bool(self.rng.random() < p)

    def _explore_index(self) -> int:
        """A uniformly drawn space index outside the buffer."""
        n, k = self._n_space, len(self._slot)
        if k <= n // 2:  # rejection sampling: < 2 tries expected
            while True:
                i = int(self.rng.integers(n))
                if i not in self._slot:
                    return i
        mask = np.ones(n, dtype=bool)
        mask[self._level[self._level >= 0]] = False
        free = np.flatnonzero(mask)
        return int(free[self.rng.integers(free.size)])

    def _touch(self, index: int) -> None:
        self._draws += 1
        slot = self._slot.get(index)
        if slot is not None:
            self._last[slot] = self._draws
        else:
            d = self._drawn_unbuffered
            d[index] = self._draws
            d.move_to_end(index)
            while len(d) > max(4 * self.capacity, 10_000):
                d.popitem(last=False)

    # --------------------------------------------------------------- BaseTeacher hooks
    def _sample(self, n: int, student: str) -> list[Task]:
        filled = self._filled()
        p_score = self._score_probs(filled) if filled.size else filled
        out: list[int] = []
        for _ in range(n):
            if self._decide_replay(filled.size):
                p = self._mix(p_score, filled)
                u = self.rng.random() * p.sum()
                j = min(int(np.searchsorted(np.cumsum(p), u, side="right")), p.size - 1)
                index = int(self._level[filled[j]])
                self._decisions["replay"] += 1
            else:
                index = self._explore_index()
                self._decisions["explore"] += 1
            self._touch(index)
            out.append(index)
        self.distribution_version += 1
        return self.space.tasks_at(out, origin="sampled")

    def _score_of(self, outcome: Outcome, slot: int | None) -> float:
        c = self.config
        if c.score_source != "proxy":
            v = outcome.info.get(c.score_key) if outcome.info else None
            if v is not None:
                v = float(v)
                if not np.isfinite(v):
                    raise ConfigError(
                        f"teacher.plr: outcome for task {outcome.task_id} has info[{c.score_key!r}]="
                        f"{v!r}; the learner must report a finite level score"
                    )
                return v
            if c.score_source == "info":
                raise ConfigError(
                    f"teacher.plr.score_source='info': outcome for task {outcome.task_id} has no "
                    f"info[{c.score_key!r}]; report the level score (e.g. mean |GAE|) or use "
                    f"score_source='auto'"
                )
        self._proxy_used += 1
        g = outcome.episode_return
        if c.proxy == "return_l1":
            base = self._baseline[slot] if slot is not None else 0.0
            return abs(g - base)
        best = self._max_ret[slot] if slot is not None else -np.inf
        return max(best - g, 0.0) if np.isfinite(best) else 0.0

    def _record(self, slot: int, outcome: Outcome, fresh: bool) -> None:
        """Per-level statistics behind the proxies and ``success_estimates``."""
        g = outcome.episode_return
        r = self.config.proxy_baseline_rate
        self._baseline[slot] = g if fresh else self._baseline[slot] + r * (g - self._baseline[slot])
        self._max_ret[slot] = g if fresh else max(self._max_ret[slot], g)
        self._episodes[slot] = 1 if fresh else self._episodes[slot] + 1
        if outcome.success is not None:
            s = float(bool(outcome.success))
            self._success[slot] = s if fresh else self._success[slot] + r * (s - self._success[slot])
        elif fresh:
            self._success[slot] = 0.0

    def _insert_slot(self, score: float) -> int | None:
        """Slot a new level with ``score`` goes to (None: rejected)."""
        filled = self._filled()
        if filled.size < self.capacity:
            return int(np.flatnonzero(self._level < 0)[0])
        if self.config.buffer_priority == "score":
            j = int(np.argmin(self._score))
        else:
            j = int(filled[np.argmin(self._mix(self._score_probs(filled), filled))])
        return j if self._score[j] <= score else None

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        alpha = self.config.score_ema
        space = self.space
        for task, o in zip(tasks, outcomes):
            index = space.index_of_id(task.id)
            if index is None:  # registered from elsewhere but not of this space (cannot happen for issued ones)
                continue
            slot = self._slot.get(index)
            score = self._score_of(o, slot)
            if slot is not None:
                self._score[slot] = (1.0 - alpha) * self._score[slot] + alpha * score
                self._record(slot, o, fresh=False)
                continue
            slot = self._insert_slot(score)
            if slot is None:
                self._rejected += 1
                continue
            old = int(self._level[slot])
            if old >= 0:
                del self._slot[old]
                self._replaced += 1
            self._inserted += 1
            self._level[slot] = index
            self._slot[index] = slot
            self._score[slot] = score  # first score of a level: no EMA (the reference sets it too)
            self._last[slot] = self._drawn_unbuffered.pop(index, self._draws)
            self._record(slot, o, fresh=True)
        self.distribution_version += 1

    # ------------------------------------------------------------------- persistence
    def _state_dict(self) -> dict:
        return {
            "capacity": self.capacity,
            "level": self._level,
            "score": self._score,
            "last": self._last,
            "baseline": self._baseline,
            "max_ret": np.where(np.isfinite(self._max_ret), self._max_ret, -1e308),
            "episodes": self._episodes,
            "success": self._success,
            "draws": self._draws,
            "drawn_unbuffered": [[k, v] for k, v in self._drawn_unbuffered.items()],
            "decisions": dict(self._decisions),
            "inserted": self._inserted,
            "replaced": self._replaced,
            "rejected": self._rejected,
            "proxy_used": self._proxy_used,
            "distribution_version": self.distribution_version,
        }

    def _load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise TeacherStateError(
                f"plr state has buffer capacity {state['capacity']}, this teacher has "
                f"{self.capacity}; build it with buffer_size={state['capacity']}"
            )
        self._level = np.asarray(state["level"], dtype=np.int64).copy()
        self._score = np.asarray(state["score"], dtype=np.float64).copy()
        self._last = np.asarray(state["last"], dtype=np.int64).copy()
        self._baseline = np.asarray(state["baseline"], dtype=np.float64).copy()
        mr = np.asarray(state["max_ret"], dtype=np.float64).copy()
        self._max_ret = np.where(mr <= -1e308, -np.inf, mr)
        self._episodes = np.asarray(state["episodes"], dtype=np.int64).copy()
        self._success = np.asarray(state["success"], dtype=np.float64).copy()
        self._slot = {int(lv): s for s, lv in enumerate(self._level.tolist()) if lv >= 0}
        self._draws = int(state["draws"])
        self._drawn_unbuffered = OrderedDict((int(k), int(v)) for k, v in state["drawn_unbuffered"])
        self._decisions = {k: int(v) for k, v in state["decisions"].items()}
        self._inserted, self._replaced = int(state["inserted"]), int(state["replaced"])
        self._rejected, self._proxy_used = int(state["rejected"]), int(state["proxy_used"])
        self.distribution_version = int(state["distribution_version"])

    # -------------------------------------------------------------- inspection hooks
    def replay_distribution(self) -> tuple[list[Task], np.ndarray]:
        """Buffered levels (in slot order) and their current replay probabilities."""
        filled = self._filled()
        if not filled.size:
            return [], np.zeros(0)
        p = self._mix(self._score_probs(filled), filled)
        return self.space.tasks_at(self._level[filled]), p

    def known_tasks(self) -> list[Task]:
        """``TaskDistribution`` hook: the buffered levels."""
        return self.replay_distribution()[0]

    def probabilities(self) -> np.ndarray:
        """``TaskDistribution`` hook: replay probabilities of `known_tasks`."""
        return self.replay_distribution()[1]

    def success_estimates(self) -> np.ndarray:
        """``TaskDistribution`` hook: running success rate per buffered level (0 where unreported)."""
        return self._success[self._filled()].copy()

    def level_stats(self, top_k: int | None = None) -> list[dict[str, Any]]:
        """Per-level rows (value, score, staleness, P(replay), episodes), highest P(replay) first."""
        filled = self._filled()
        if not filled.size:
            return []
        p = self._mix(self._score_probs(filled), filled)
        order = np.argsort(-p, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        values = self.space.values
        return [
            {
                "level": values[int(self._level[filled[j]])],
                "score": float(self._score[filled[j]]),
                "staleness": int(self._draws - self._last[filled[j]]),
                "p_replay": float(p[j]),
                "episodes": int(self._episodes[filled[j]]),
            }
            for j in order.tolist()
        ]

    def _stats(self) -> dict:
        filled = self._filled()
        sc = self._score[filled]
        out: dict[str, Any] = {
            "plr/buffer_size": int(filled.size),
            "plr/buffer_capacity": self.capacity,
            "plr/seen_fraction": float(len(self._slot) / self._n_space),
            "plr/replay_decisions": self._decisions["replay"],
            "plr/explore_decisions": self._decisions["explore"],
            "plr/inserted": self._inserted,
            "plr/replaced": self._replaced,
            "plr/rejected": self._rejected,
            "plr/proxy_scores": self._proxy_used,
            "plr/score_mean": float(sc.mean()) if sc.size else 0.0,
            "plr/score_max": float(sc.max()) if sc.size else 0.0,
            "plr/staleness_max": int((self._draws - self._last[filled]).max()) if filled.size else 0,
        }
        out["plr/top_levels"] = self.level_stats(self.config.stats_top_k)
        return out

    def __repr__(self) -> str:
        return f"PLRTeacher(space={self.space!r}, capacity={self.capacity}, seed={self.config.seed})"

    def view(self) -> dict:
        """Dashboard view: buffered levels (score, staleness, P(replay)), most likely first.

        See `openended.teachers.views`.
        """
        rows = self.level_stats(MAX_ROWS)
        for r in rows:
            r["task"] = str(r.pop("level"))[:80]
        return {
            "kind": "scores",
            "teacher": self.name,
            "score": "score",
            "buffer_size": int(self._filled().size),
            "capacity": self.capacity,
            "rows": rows,
        }
