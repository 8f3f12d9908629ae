"""Automatic domain randomization (ADR): a box of tasks that grows where the student succeeds.

Reference: OpenAI et al., "Solving Rubik's Cube with a Robot Hand" (2019, arXiv
1910.07113), as implemented by TeachMyAgent (``TeachMyAgent/teachers/algos/adr.py``,
Romac et al., ICML 2021).

Algorithm:

1. The current box starts as one point (``initial``): ``cur_low = cur_high = x0``.
2. ``sample``: a task uniform in ``[cur_low, cur_high]``; with probability
   ``boundary_sampling_p`` one random dimension is pinned to its current low or high
   bound (a *boundary* task).
3. ``update``: each bound (dimension x side) has a queue of the last ``queue_len``
   returns of tasks that sat exactly on it. When a queue is full, its mean decides:
   ``>= max_reward_thr`` moves the bound outwards by ``step_size`` (clipped to the space),
   ``<= min_reward_thr`` moves it inwards (never past the other bound); then the queue
   is emptied.

Defaults and presets (``teachmyagent``: the TeachMyAgent benchmark CLI): boundary
probability 0.7 (class default 0.5), step 0.1 in raw task units, thresholds 0 / 180 on
the raw return, queue length 10. ``toy``: the same rule in the toy learner's units
(rewards in [0, 1], mastery 0.75) starting from its easy corner.

Differences from TeachMyAgent, on purpose:

* A task counts for a bound if its value equals the bound *when its outcome arrives* (as
  in TMA), so late outcomes of a bound that has moved since are dropped, not misfiled.
* TMA refuses to run without expert knowledge (the start point); here the start point is
  ``initial`` (the box centre by default, ``low`` / ``high`` corner, ``random`` or a list).
* TMA's unreachable ``elif`` branches in the boundary choice are not reproduced: each
  dimension and side is equally likely, as the paper describes.
* ``relative_step=True`` reads ``step_size`` as a fraction of each dimension's range
  (TMA: raw units only).
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from openended.errors import ConfigError
from openended.tasks import Box, Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.views import box_regions, rounded

__all__ = ["ADRConfig", "ADRTeacher"]


class ADRConfig(TeacherConfig):
    """ADR settings; defaults are TeachMyAgent's class defaults, thresholds its benchmark's."""

    boundary_sampling_p: float = Field(
        0.5, ge=0.0, le=1.0, description="Probability that a task has one dimension on a bound (TMA class: 0.5)."
    )
    step_size: float = Field(0.1, gt=0.0, description="How far a bound moves per decision (TMA: 0.1 raw units).")
    relative_step: bool = Field(False, description="Read step_size as a fraction of each dimension's range.")
    max_reward_thr: float = Field(180.0, description="Queue mean at or above this widens the bound (TMA: 180).")
    min_reward_thr: float = Field(0.0, description="Queue mean at or below this narrows the bound (TMA: 0).")
    queue_len: int = Field(10, ge=1, description="Returns per bound before a decision (TMA: 10).")
    initial: Literal["centre", "low", "high", "random"] | list[float] = Field(
        "centre", description="Start point: box centre, low/high corner, a uniform point, or explicit params."
    )


class ADRTeacher(BaseTeacher):
    """Automatic domain randomization over a ``Box`` (see the module docstring)."""

    name = "adr"
    Config = ADRConfig
    config: ADRConfig
    space: Box
    space_kinds = ("box",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # TeachMyAgent benchmark CLI (run.py / benchmark scripts): p 0.7, step 0.1, thresholds 0 / 180, queue 10
        "teachmyagent": {
            "boundary_sampling_p": 0.7,
            "step_size": 0.1,
            "max_reward_thr": 180.0,
            "min_reward_thr": 0.0,
            "queue_len": 10,
        },
        # the same rule in the toy learner's units: reward = competence / 100, mastered above 0.75
        "toy": {
            "boundary_sampling_p": 0.7,
            "step_size": 0.1,
            "max_reward_thr": 0.75,
            "min_reward_thr": 0.0,
            "queue_len": 10,
            "initial": "low",
        },
    }

    def __init__(self, space: TaskSpace, config: ADRConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        if cfg.min_reward_thr > cfg.max_reward_thr:
            raise ConfigError(
                f"teacher.adr.min_reward_thr ({cfg.min_reward_thr}) must not exceed max_reward_thr "
                f"({cfg.max_reward_thr}); swap them"
            )
        x0 = self._initial_point()
        self.cur_low, self.cur_high = x0.copy(), x0.copy()
        span = self.space.high - self.space.low
        self._step = cfg.step_size * span if cfg.relative_step else np.full(self.space.dim, cfg.step_size)
        d = self.space.dim
        self._queues: list[list[deque[float]]] = [[deque(maxlen=cfg.queue_len) for _ in range(2)] for _ in range(d)]
        self._moves = {"expanded": 0, "shrunk": 0}

    def _initial_point(self) -> np.ndarray:
        init, sp = self.config.initial, self.space
        if isinstance(init, list):
            if len(init) != sp.dim:
                raise ConfigError(f"teacher.adr.initial: {len(init)} values for a {sp.dim}-dimensional space")
            return sp.validate(init).copy()
        if init == "random":
            return sp.sample_array(self.rng, 1)[0]
        return {"centre": (sp.low + sp.high) / 2.0, "low": sp.low.copy(), "high": sp.high.copy()}[init]

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        d = self.space.dim
        x = self.rng.uniform(self.cur_low, self.cur_high, size=(n, d))
        on_bound = self.rng.random(n) < self.config.boundary_sampling_p
        dims = self.rng.integers(0, d, size=n)
        high_side = self.rng.random(n) < 0.5
        rows = np.flatnonzero(on_bound)
        x[rows, dims[rows]] = np.where(high_side[rows], self.cur_high[dims[rows]], self.cur_low[dims[rows]])
        origins = np.where(on_bound, "boundary", "sampled").tolist()
        return self.space.tasks(self.space.clip(x), origin=origins, validate=False)

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        cfg = self.config
        xs = np.array([t.params for t in tasks], dtype=np.float64)
        on_bound = ((xs == self.cur_low) | (xs == self.cur_high)).any(axis=1)
        for row in np.flatnonzero(on_bound).tolist():  # SPEEDUP: only tasks on some bound need the loop
            x, o = xs[row], outcomes[row]
            for i in np.flatnonzero((x == self.cur_low) | (x == self.cur_high)).tolist():
                for side, bound in ((0, self.cur_low), (1, self.cur_high)):
                    if x[i] != bound[i]:
                        continue
                    q = self._queues[i][side]
                    q.append(o.episode_return)
                    if len(q) == cfg.queue_len:
                        self._decide(i, side, float(np.mean(q)))
                        q.clear()

    def _decide(self, i: int, side: int, mean_return: float) -> None:
        """Widen (good mean) or narrow (bad mean) bound ``side`` of dimension ``i``."""
        cfg, sp = self.config, self.space
        outward = -1.0 if side == 0 else 1.0
        if mean_return >= cfg.max_reward_thr:
            direction = outward
            self._moves["expanded"] += 1
        elif mean_return <= cfg.min_reward_thr:
            direction = -outward
            self._moves["shrunk"] += 1
        else:
            return
        step = direction * self._step[i]
        if side == 0:
            self.cur_low[i] = min(max(self.cur_low[i] + step, sp.low[i]), self.cur_high[i])
        else:
            self.cur_high[i] = max(min(self.cur_high[i] + step, sp.high[i]), self.cur_low[i])

    def view(self) -> dict:
        """Dashboard view: the current box as one region (``n_pairs``: returns queued on its bounds)."""
        queued = sum(len(q) for pair in self._queues for q in pair)
        return {
            "kind": "regions",
            "teacher": self.name,
            "dims": list(self.space.names),
            "low": rounded(self.space.low),
            "high": rounded(self.space.high),
            "n_regions": 1,
            "n_leaves": 1,
            "regions": box_regions(self.cur_low[None, :], self.cur_high[None, :], np.zeros(1), [queued]),
        }

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "cur_low": self.cur_low.copy(),
            "cur_high": self.cur_high.copy(),
            "queues": [[list(q) for q in pair] for pair in self._queues],
            "moves": dict(self._moves),
        }

    def _load_state_dict(self, state: dict) -> None:
        self.cur_low = np.asarray(state["cur_low"], dtype=np.float64).copy()
        self.cur_high = np.asarray(state["cur_high"], dtype=np.float64).copy()
        for pair, saved in zip(self._queues, state["queues"]):
            for q, values in zip(pair, saved):
                q.clear()
                q.extend(float(v) for v in values)
        self._moves = {k: int(v) for k, v in state["moves"].items()}

    def _stats(self) -> dict:
        span = np.where(self.space.high > self.space.low, self.space.high - self.space.low, 1.0)
        return {
            "adr_low": self.cur_low.tolist(),
            "adr_high": self.cur_high.tolist(),
            "adr_width_fraction": float(np.mean((self.cur_high - self.cur_low) / span)),
            "adr_expanded": self._moves["expanded"],
            "adr_shrunk": self._moves["shrunk"],
        }
