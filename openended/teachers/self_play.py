"""Fictitious and prioritized fictitious self-play: pick the opponent for each episode from a pool.

References: Heinrich, Lanctot & Silver, "Fictitious Self-Play in Extensive-Form Games"
(ICML 2015) -- opponents uniform over past versions of the learner; Vinyals et al.,
"Grandmaster level in StarCraft II using multi-agent reinforcement learning" (Nature
2019) -- prioritized FSP, opponent ``B`` drawn with weight ``f(P[learner beats B])``,
``f_hard(x) = (1 - x)^p`` (focus on the opponents the learner loses to) or
``f_var(x) = x(1 - x)`` (opponents of similar strength). Syllabus ships both
(``FictitiousSelfPlay``, ``PrioritizedFictitiousSelfPlay``).

The task space is the opponent pool: a ``Discrete`` space whose values name opponent
slots (checkpoint names, or ``0..N-1``). A slot is in the pool once it has *joined*: the
first ``initial_pool`` values at the start (the initial policy), then one more each time
the run saves a learner checkpoint and calls ``add_opponent(value)`` (or every
``add_every`` outcomes, when the teacher itself decides when a checkpoint is due; the run
reads ``latest_opponent`` and saves the learner under that name). Beyond ``max_pool``
members the oldest leaves (Syllabus's ``max_agents``).

Each draw is the newest member with probability ``latest_prob`` (plain self-play), else
uniform over the pool (``mode="fsp"``) or weighted by ``f`` of the learner's win rate
against each member (``"pfsp"``). The win rate is the success rate over the last
``window`` episodes against that opponent (success = a win: the outcome's flag, else
``episode_return >= success_threshold``); an opponent without games counts as 0.5.

What differs from the papers: AlphaStar's league (main exploiters, league exploiters)
is not modelled; the weighting exponent ``p`` is a config value (AlphaStar does not
publish it; 2 here). This teacher decides *which* opponent plays; the opponents themselves
(frozen snapshots of the learner acting inside the env) are the runtime's:
`openended.envs.multiagent.self_play` (the env whose task is the opponent slot) and
`openended.runtime.rllib_self_play` (RLlib snapshots, per-episode opponents).
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Discrete, Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.success import SuccessConfig, success_of
from openended.teachers.views import task_rows

__all__ = ["SelfPlayConfig", "SelfPlayTeacher", "pfsp_weights"]


def pfsp_weights(win_rates: np.ndarray, weighting: Literal["hard", "variance"], power: float) -> np.ndarray:
    """Normalised PFSP weights from the learner's win rate against each opponent.

    ``hard``: ``(1 - x)^p``; ``variance``: ``x(1 - x)``; uniform where every weight is 0.

    >>> pfsp_weights(np.array([0.0, 0.5, 1.0]), "hard", 2.0).round(3).tolist()
    [0.8, 0.2, 0.0]
    """
    x = np.clip(np.asarray(win_rates, dtype=np.float64), 0.0, 1.0)
    w = (1.0 - x) ** power if weighting == "hard" else x * (1.0 - x)
    z = w.sum()
    return w / z if z > 0 else np.full(x.size, 1.0 / x.size)


class SelfPlayConfig(TeacherConfig, SuccessConfig):
    """Opponent pool settings (FSP / PFSP)."""

    mode: Literal["fsp", "pfsp"] = Field("pfsp", description="Uniform over the pool, or prioritized by win rate.")
    weighting: Literal["hard", "variance"] = Field("hard", description="PFSP f: (1-x)^p or x(1-x) (AlphaStar).")
    pfsp_power: float = Field(2.0, gt=0.0, description="p of f_hard (not published by AlphaStar; ours).")
    latest_prob: float = Field(0.0, ge=0.0, le=1.0, description="Probability of playing the newest member.")
    initial_pool: int = Field(1, ge=1, description="Values (in space order) in the pool at the start.")
    max_pool: int | None = Field(None, ge=1, description="Most members; the oldest leaves beyond it.")
    add_every: int | None = Field(
        None, ge=1, description="Outcomes between checkpoints joining (None: the run calls add_opponent)."
    )
    window: int = Field(100, ge=1, description="Games per opponent the win rate is taken over.")


class SelfPlayTeacher(BaseTeacher):
    """Opponent sampling for self-play over a Discrete pool of opponent slots."""

    name = "self_play"
    Config = SelfPlayConfig
    config: SelfPlayConfig
    space: Discrete
    space_kinds = ("discrete",)
    #: Methods a driver may call through the teacher service's control call: a run that
    #: decides itself when a checkpoint joins saves it, then calls ``add_opponent(value)``.
    CONTROLS: ClassVar[tuple[str, ...]] = ("add_opponent",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "fsp": {"mode": "fsp"},  # Heinrich et al. 2015: uniform over past versions
        "pfsp": {"mode": "pfsp", "weighting": "hard", "pfsp_power": 2.0},  # AlphaStar's f_hard
        "self_play": {"latest_prob": 1.0},  # always the newest version (Syllabus SelfPlay)
    }

    def __init__(self, space: TaskSpace, config: SelfPlayConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        if cfg.initial_pool > self.space.n:
            raise ConfigError(
                f"teacher.self_play.initial_pool: {cfg.initial_pool} is more than the {self.space.n} opponent slots"
            )
        if cfg.max_pool is not None and cfg.initial_pool > cfg.max_pool:
            raise ConfigError(
                f"teacher.self_play.initial_pool: {cfg.initial_pool} is more than max_pool={cfg.max_pool}"
            )
        self.pool: list[int] = list(range(cfg.initial_pool))  # space indices, oldest first
        self._next = cfg.initial_pool
        self._games: dict[int, deque[float]] = {}
        self._since_add = 0

    # ------------------------------------------------------------------ the pool
    def add_opponent(self, value: Any = None) -> Task:
        """A new member (``value``, or the next unused slot in space order); returns its task."""
        if value is None:
            if self._next >= self.space.n:
                raise TaskNotInSpace(
                    f"self_play: all {self.space.n} opponent slots are used; pass a value to reuse one"
                )
            idx = self._next
        else:
            idx = self.space.index(value)
        self._next = max(self._next, idx + 1)
        if idx in self.pool:
            self.pool.remove(idx)
        self.pool.append(idx)
        self._games.pop(idx, None)  # a new checkpoint under an old name starts unplayed
        limit = self.config.max_pool
        while limit is not None and len(self.pool) > limit:
            self._games.pop(self.pool.pop(0), None)
        return self.space.task_at(idx)

    def win_rates(self) -> np.ndarray:
        """The learner's win rate against each pool member (0.5 without games), pool order."""
        return np.array([float(np.mean(g)) if (g := self._games.get(i)) else 0.5 for i in self.pool])

    def probabilities(self) -> np.ndarray:
        """Draw probability of each pool member, pool order."""
        cfg = self.config
        k = len(self.pool)
        base = (
            pfsp_weights(self.win_rates(), cfg.weighting, cfg.pfsp_power) if cfg.mode == "pfsp" else np.full(k, 1 / k)
        )
        p = (1.0 - cfg.latest_prob) * base
        p[-1] += cfg.latest_prob
        return p

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        picks = self.rng.choice(len(self.pool), size=n, p=self.probabilities())
        return self.space.tasks_at([self.pool[i] for i in picks.tolist()], origin="opponent")

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        thr, window = self.config.success_threshold, self.config.window
        members = set(self.pool)
        for t, o in zip(tasks, outcomes):
            idx = self.space.index_of_id(t.id)
            if idx is None or idx not in members:
                continue  # an opponent that has left the pool since
            self._games.setdefault(idx, deque(maxlen=window)).append(float(success_of(o, thr)))
        every = self.config.add_every
        if every is not None:
            self._since_add += len(outcomes)
            while self._since_add >= every and self._next < self.space.n:
                self._since_add -= every
                self.add_opponent()

    def view(self) -> dict:
        """Dashboard view: pool members with the learner's win rate and the draw probability."""
        tasks = [self.space.task_at(i) for i in self.pool]
        cols = {"p": self.probabilities(), "win_rate": self.win_rates()}
        return {"kind": "scores", "teacher": self.name, "score": "p", "rows": task_rows(tasks, cols, "p")}

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "pool": list(self.pool),
            "next": self._next,
            "games": [[i, list(g)] for i, g in self._games.items()],
            "since_add": self._since_add,
        }

    def _load_state_dict(self, state: dict) -> None:
        self.pool = [int(i) for i in state["pool"]]
        self._next = int(state["next"])
        self._games = {int(i): deque(map(float, g), maxlen=self.config.window) for i, g in state["games"]}
        self._since_add = int(state["since_add"])

    def _stats(self) -> dict:
        rates = self.win_rates()
        return {
            "pool_size": len(self.pool),
            "latest_opponent": self.space.values[self.pool[-1]],
            "mean_win_rate": float(rates.mean()),
            "min_win_rate": float(rates.min()),
        }
