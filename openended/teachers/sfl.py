"""Sampling for learnability (SFL): replay the tasks the student solves about half the time.

Reference: Rutherford et al., "No Regrets: Investigating and Improving Regret
Approximations for Curriculum Discovery" (NeurIPS 2024, arXiv 2408.15099); Syllabus's
``Learnability`` curriculum ranks tasks the same way.

Algorithm:

1. Learnability of a task is ``p(1 - p)``, with ``p`` its success rate: 0 for tasks the
   student always or never solves, largest (1/4) at ``p = 1/2``.
2. Refresh (every ``refresh_every`` outcomes): draw ``n_candidates`` tasks uniformly and
   hand each out ``n_rollouts`` times before anything else (the *rollouts*, origin
   ``"evaluation"``). When all their outcomes are in (or at the next refresh, whichever
   comes first), the buffer becomes the ``buffer_size`` tasks of highest learnability
   among those with at least ``min_attempts`` outcomes since the last refresh (candidates
   and replayed tasks alike); tasks of learnability 0 never enter it.
3. Otherwise a draw is, with probability ``buffer_prob``, a task uniform from the buffer
   (origin ``"replay"``), else a task uniform from the space.

Defaults: ``buffer_size`` 100 and ``buffer_prob`` 0.5 follow the paper (top-K levels kept,
half of each training batch from the buffer), as we read it; they were not checked
against its code. What differs from the paper, because this
teacher sees only outcomes: SFL rolls out thousands of fresh levels in parallel on the
accelerator, separately from training; here the rollouts are episodes the student plays
(``n_candidates`` x ``n_rollouts`` per refresh, 256 x 4 by default), so they cost
episodes and the student also learns from them. Success is the outcome's ``success``
flag, or ``episode_return >= success_threshold`` where it has none.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from openended.tasks import Outcome, Task, TaskSpace
from openended.teachers.base import MAX_ROWS, BaseTeacher, TeacherConfig
from openended.teachers.success import SuccessConfig, success_of
from openended.teachers.views import task_rows

__all__ = ["SFLConfig", "SFLTeacher", "learnability"]


def learnability(successes: np.ndarray, attempts: np.ndarray) -> np.ndarray:
    """``p(1 - p)`` with ``p = successes / attempts`` (0 where there are no attempts).

    >>> learnability(np.array([0, 2, 4, 1]), np.array([4, 4, 4, 0])).tolist()
    [0.0, 0.25, 0.0, 0.0]
    """
    a = np.asarray(attempts, dtype=np.float64)
    p = np.divide(np.asarray(successes, dtype=np.float64), a, out=np.zeros_like(a), where=a > 0)
    return p * (1.0 - p)


class SFLConfig(TeacherConfig, SuccessConfig):
    """SFL settings (buffer size and replay share from the paper; rollout counts our own)."""

    buffer_size: int = Field(100, ge=1, description="Tasks kept in the learnability buffer (paper: top 100).")
    buffer_prob: float = Field(0.5, ge=0.0, le=1.0, description="Share of draws from the buffer (paper: 0.5).")
    n_candidates: int = Field(256, ge=1, le=MAX_ROWS, description="Fresh uniform tasks evaluated per refresh.")
    n_rollouts: int = Field(4, ge=1, le=MAX_ROWS, description="Episodes per candidate to estimate its success rate.")
    min_attempts: int = Field(2, ge=1, description="Outcomes a task needs in a period to be ranked.")
    refresh_every: int = Field(2048, ge=1, description="Outcomes between refreshes (rollouts included).")


class SFLTeacher(BaseTeacher):
    """Sampling for learnability on any space with uniform sampling (see the module docstring)."""

    name = "sfl"
    Config = SFLConfig
    config: SFLConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # the toy learner: mastered (reward > 0.75) counts as success
        "toy": {"success_threshold": 0.75, "n_candidates": 64, "n_rollouts": 4, "refresh_every": 1000},
    }

    def __init__(self, space: TaskSpace, config: SFLConfig | None = None) -> None:
        super().__init__(space, config)
        self.buffer: list[Task] = []
        self.buffer_scores: list[float] = []  # learnability of each buffered task when it was ranked
        self._rollouts: deque[Task] = deque()  # rollouts not handed out yet
        self._pending: dict[str, int] = {}  # candidate id -> outcomes still expected
        self._period: dict[str, list] = {}  # task id -> [task, attempts, successes] this period
        self._since_refresh = 0
        self._refreshes = 0
        self._start_round()

    # ------------------------------------------------------------------ algorithm
    def _start_round(self) -> None:
        """Queue ``n_candidates`` fresh uniform tasks, ``n_rollouts`` episodes each."""
        cfg = self.config
        cands = [t._replace(origin="evaluation") for t in self.space.sample_uniform(self.rng, cfg.n_candidates)]
        self._pending = {t.id: cfg.n_rollouts for t in cands}
        self._rollouts = deque(t for _ in range(cfg.n_rollouts) for t in cands)
        self._since_refresh = 0

    def _sample(self, n: int, student: str) -> list[Task]:
        out: list[Task] = []
        while self._rollouts and len(out) < n:
            out.append(self._rollouts.popleft())
        rest = n - len(out)
        if rest:
            from_buffer = self.rng.random(rest) < self.config.buffer_prob if self.buffer else np.zeros(rest, bool)
            n_buf = int(from_buffer.sum())
            picks = self.rng.integers(0, len(self.buffer), size=n_buf).tolist() if n_buf else []
            uniform = iter(self.space.sample_uniform(self.rng, rest - n_buf)) if rest > n_buf else iter(())
            it = iter(picks)
            out.extend(self.buffer[next(it)]._replace(origin="replay") if b else next(uniform) for b in from_buffer)
        return out

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        thr = self.config.success_threshold
        for task, o in zip(tasks, outcomes):
            row = self._period.setdefault(task.id, [task, 0, 0])
            row[1] += 1
            row[2] += int(success_of(o, thr))
            left = self._pending.get(task.id)
            if left is not None:
                if left <= 1:
                    del self._pending[task.id]
                else:
                    self._pending[task.id] = left - 1
        self._since_refresh += len(outcomes)
        if not self._pending and not self._rollouts and self._period:
            self._refresh_buffer()
        if self._since_refresh >= self.config.refresh_every:
            if self._period:
                self._refresh_buffer()
            self._start_round()

    def _refresh_buffer(self) -> None:
        """Buffer = the top ``buffer_size`` tasks by learnability this period; counts restart."""
        rows = [r for r in self._period.values() if r[1] >= self.config.min_attempts]
        self._period = {}
        if not rows:
            return
        score = learnability(np.array([r[2] for r in rows]), np.array([r[1] for r in rows]))
        order = np.argsort(-score, kind="stable")[: self.config.buffer_size]
        keep = [i for i in order.tolist() if score[i] > 0]
        self._refreshes += 1
        if keep:
            self.buffer = [rows[i][0] for i in keep]
            self.buffer_scores = [float(score[i]) for i in keep]

    def view(self) -> dict:
        """Dashboard view: the buffer with each task's learnability when it was ranked."""
        cols = {"learnability": np.asarray(self.buffer_scores, dtype=np.float64)}
        return {
            "kind": "scores",
            "teacher": self.name,
            "score": "learnability",
            "rows": task_rows(self.buffer, cols, "learnability"),
        }

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "buffer": [t.to_dict() for t in self.buffer],
            "buffer_scores": list(self.buffer_scores),
            "rollouts": [t.to_dict() for t in self._rollouts],
            "pending": dict(self._pending),
            "counts": [[r[0].to_dict(), r[1], r[2]] for r in self._period.values()],
            "since_refresh": self._since_refresh,
            "refreshes": self._refreshes,
        }

    def _load_state_dict(self, state: dict) -> None:
        self.buffer = [Task.from_dict(d) for d in state["buffer"]]
        self.buffer_scores = [float(x) for x in state["buffer_scores"]]
        self._rollouts = deque(Task.from_dict(d) for d in state["rollouts"])
        self._pending = {str(k): int(v) for k, v in state["pending"].items()}
        self._period = {}
        for d, a, s in state["counts"]:
            t = Task.from_dict(d)
            self._period[t.id] = [t, int(a), int(s)]
        self._since_refresh = int(state["since_refresh"])
        self._refreshes = int(state["refreshes"])

    def _stats(self) -> dict:
        return {
            "sfl_buffer": len(self.buffer),
            "sfl_buffer_learnability_mean": float(np.mean(self.buffer_scores)) if self.buffer_scores else 0.0,
            "sfl_refreshes": self._refreshes,
            "sfl_rollouts_queued": len(self._rollouts),
        }
