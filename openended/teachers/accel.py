"""ACCEL: prioritized level replay whose high-regret levels are edited into new ones.

Reference: Parker-Holder et al., "Evolving Curricula with Regret-Based Environment Design"
(ICML 2022, arXiv 2203.01302), code ``facebookresearch/dcd`` and ``DramaLlama/jaxued``.

Algorithm (one draw; ``sample(n)`` makes ``n`` in order):

1. If an edited level is waiting, hand it out (origin ``"edited"``, its parent in
   ``parent_ids``): ACCEL evaluates the children of the levels it just replayed.
2. Else, once the buffer is ``min_fill`` full, replay with probability ``replay_prob``:
   a buffered level from PLR's ``P = (1-rho) h(S) + rho h_c(staleness)`` (rank
   prioritisation with temperature ``beta``; `openended.teachers.plr.replay_distribution`),
   and queue ``edit(level)`` -- ``n_edits`` small edits -- as a new level.
3. Else a new level, uniform from the space.
4. ``update``: a level's score is ``info["score"]`` when the learner reports one
   (positive value loss, MaxMC regret), else PLR's return-based proxy (``return_l1``:
   ``|G - running mean return of the level|``; ``max_mc``: ``max G - G``). A buffered level's
   score is replaced (``score_ema`` 1); a new or edited level enters a free slot or
   replaces the lowest-scoring one if its score is at least that (PLR-perp).

Edits: on a ``Box`` space each edit moves one random parameter by a Gaussian step of
``edit_scale`` times its range, clipped to the box (dcd's BipedalWalker edits change one
terrain parameter by a small step). Other spaces need an edit operation: ``editor`` is an
import path ``"pkg.mod:fn"`` to ``fn(task, space, rng, n_edits) -> Task``; without one, a
Discrete or Text space is refused. An env family supplies its own edit as its
``task_editor`` (`openended.envs.registry.env_task_editor`) and experiments fill
``editor`` from it: ``minigrid_maze``'s adds or removes walls
(`openended.envs.minigrid_mazes.edit_maze_task`; fixed editable levels with the family's
``wall_edits`` option). The teacher itself stays env-agnostic.

Defaults are dcd's BipedalWalker ACCEL settings (replay 0.9, buffer 1,000, staleness
0.5, 3 edits; its score temperature is not in our notes, 0.1 = PLR's is used);
presets ``dcd_minigrid`` (replay 0.8, beta 0.3, 5 edits, buffer 4,000, staleness 0.3) and ``jaxued_maze`` (replay 0.8,
buffer 4,000, staleness 0.3, beta 0.3, min fill 0.5). What differs from the reference:
PLR-perp's "train only on replayed levels" is the learner's choice (the origin tells
it), and without a learner-reported score the regret is the return proxy above.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from openended.errors import ConfigError, TaskNotInSpace, TeacherStateError
from openended.registry import resolve_import_path
from openended.tasks import Box, Outcome, Task, TaskSpace
from openended.teachers.base import MAX_ROWS, BaseTeacher, TeacherConfig
from openended.teachers.plr import score_weights
from openended.teachers.views import task_rows

__all__ = ["ACCELConfig", "ACCELTeacher", "box_edit"]

Editor = Callable[[Task, TaskSpace, np.random.Generator, int], Task]


def box_edit(task: Task, space: Box, rng: np.random.Generator, n_edits: int, scale: float) -> Task:
    """``n_edits`` Gaussian steps, each on one random parameter, of ``scale`` x its range; clipped."""
    x = task.array.copy()
    span = space.high - space.low
    for _ in range(n_edits):
        i = int(rng.integers(space.dim))
        x[i] += rng.normal(0.0, scale * span[i])
    return space.task(space.clip(x), parent_ids=(task.id,), origin="edited")


class ACCELConfig(TeacherConfig):
    """ACCEL settings (defaults: dcd's BipedalWalker ACCEL run)."""

    replay_prob: float = Field(0.9, ge=0.0, le=1.0, description="P(replay) per draw once min_fill (dcd bipedal: 0.9).")
    buffer_size: int = Field(1000, ge=1, le=MAX_ROWS, description="Level buffer capacity (dcd bipedal: 1,000).")
    min_fill: float = Field(0.5, ge=0.0, le=1.0, description="Buffer fill fraction before any replay.")
    temperature: float = Field(0.1, gt=0.0, description="beta of the rank prioritisation.")
    staleness_coef: float = Field(0.5, ge=0.0, le=1.0, description="rho: staleness weight (dcd bipedal: 0.5).")
    n_edits: int = Field(3, ge=1, description="Edits per child level (dcd bipedal: 3; minigrid: 5).")
    edit_scale: float = Field(0.05, gt=0.0, le=1.0, description="Box edits: step std as a fraction of the range.")
    editor: str | None = Field(None, description="Import path 'pkg.mod:fn' of fn(task, space, rng, n_edits) -> Task.")
    score_key: str = Field("score", min_length=1, description="Outcome.info key with the learner's level score.")
    proxy: Literal["return_l1", "max_mc"] = Field("return_l1", description="Score without a learner score.")
    proxy_baseline_rate: float = Field(0.5, gt=0.0, le=1.0, description="Rate of the running mean of return_l1.")


class ACCELTeacher(BaseTeacher):
    """ACCEL over a Box space (built-in edits) or any space with an ``editor``."""

    name = "accel"
    Config = ACCELConfig
    config: ACCELConfig
    space_kinds = ("box",)  # and any space kind with an `editor`
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "dcd_bipedal": {"replay_prob": 0.9, "buffer_size": 1000, "staleness_coef": 0.5, "n_edits": 3},
        # dcd Minigrid ACCEL: replay 0.8, beta 0.3, 5 edits; buffer 4,000 and staleness 0.3 of dcd's Minigrid runs
        "dcd_minigrid": {
            "replay_prob": 0.8,
            "temperature": 0.3,
            "n_edits": 5,
            "buffer_size": 4000,
            "staleness_coef": 0.3,
        },
        "jaxued_maze": {
            "replay_prob": 0.8,
            "buffer_size": 4000,
            "staleness_coef": 0.3,
            "temperature": 0.3,
            "min_fill": 0.5,
        },
    }

    def __init__(self, space: TaskSpace, config: ACCELConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        if cfg.editor is not None:
            self._edit: Editor = resolve_import_path(cfg.editor, "teacher.accel.editor")
        elif isinstance(space, Box):
            box = space
            self._edit = lambda t, _s, rng, n: box_edit(t, box, rng, n, cfg.edit_scale)
        else:  # pragma: no cover - `_supports` refused it
            raise AssertionError(space)
        b = cfg.buffer_size
        self.levels: list[Task | None] = [None] * b
        self._slot: dict[str, int] = {}
        self._score = np.zeros(b)
        self._last = np.zeros(b, dtype=np.int64)
        self._baseline = np.zeros(b)
        self._max_ret = np.zeros(b)
        self._draws = 0
        self._children: deque[Task] = deque()
        self._counts_by = {"replay": 0, "new": 0, "edited": 0, "inserted": 0, "rejected": 0}

    def _supports(self, space: TaskSpace) -> bool:
        if isinstance(space, Box) or self.config.editor is not None:
            return True
        raise ConfigError(
            f"teacher.accel: ACCEL edits levels, and {space!r} has no built-in edit; set "
            "teacher.accel.editor to 'pkg.mod:fn' with fn(task, space, rng, n_edits) -> Task"
        )

    # ------------------------------------------------------------------ algorithm
    def _filled(self) -> np.ndarray:
        return np.array(sorted(self._slot.values()), dtype=np.int64)

    def _sample(self, n: int, student: str) -> list[Task]:
        cfg = self.config
        filled = self._filled()  # the buffer changes only in `update`
        can_replay = filled.size > 0 and filled.size >= cfg.min_fill * cfg.buffer_size
        # SPEEDUP: P = (1-rho) P_score + rho P_stale is drawn as a mixture: pick the part, then
        # a level from it. P_score is fixed within a call (one CDF); P_stale (staleness^1,
        # uniform when all are 0) is the only part that moves with each draw.
        score_cdf = np.cumsum(score_weights(self._score[filled], temperature=cfg.temperature)) if can_replay else filled
        out: list[Task] = []
        for _ in range(n):
            self._draws += 1
            if self._children:
                out.append(self._children.popleft())
                self._counts_by["edited"] += 1
                continue
            if can_replay and self.rng.random() < cfg.replay_prob:
                slot = int(filled[self._replay_index(score_cdf, filled)])
                parent = self.levels[slot]
                assert parent is not None
                self._last[slot] = self._draws
                out.append(parent._replace(origin="replay"))
                self._children.append(self._checked_child(parent))
                self._counts_by["replay"] += 1
            else:
                out.extend(self.space.sample_uniform(self.rng, 1))
                self._counts_by["new"] += 1
        return out

    def _replay_index(self, score_cdf: np.ndarray, filled: np.ndarray) -> int:
        """Position in ``filled`` of a draw from PLR's rank + staleness mixture."""
        if self.rng.random() < self.config.staleness_coef:
            stale = np.cumsum(self._draws - self._last[filled])
            if stale[-1] <= 0:
                return int(self.rng.integers(filled.size))
            return min(int(np.searchsorted(stale, self.rng.random() * stale[-1], side="right")), filled.size - 1)
        return min(int(np.searchsorted(score_cdf, self.rng.random() * score_cdf[-1], side="right")), filled.size - 1)

    def _checked_child(self, parent: Task) -> Task:
        child = self._edit(parent, self.space, self.rng, self.config.n_edits)
        if not isinstance(child, Task) or not self.space.contains(child):
            raise TaskNotInSpace(f"teacher.accel.editor returned {child!r}, not a task of {self.space!r}")
        return child

    def _proxy(self, g: float, slot: int | None) -> float:
        if self.config.proxy == "return_l1":
            return abs(g - (self._baseline[slot] if slot is not None else 0.0))
        return max(self._max_ret[slot] - g, 0.0) if slot is not None else 0.0

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        key, rate = self.config.score_key, self.config.proxy_baseline_rate
        for task, o in zip(tasks, outcomes):
            slot = self._slot.get(task.id)
            reported = o.info.get(key) if o.info else None
            score = float(reported) if isinstance(reported, (int, float)) else self._proxy(o.episode_return, slot)
            g = o.episode_return
            if slot is not None:
                self._score[slot] = score
                self._baseline[slot] += rate * (g - self._baseline[slot])
                self._max_ret[slot] = max(self._max_ret[slot], g)
                continue
            slot = self._free_or_weakest(score)
            if slot is None:
                self._counts_by["rejected"] += 1
                continue
            old = self.levels[slot]
            if old is not None:
                del self._slot[old.id]
            self.levels[slot] = task._replace(origin="sampled")
            self._slot[task.id] = slot
            self._score[slot], self._baseline[slot], self._max_ret[slot] = score, g, g
            self._last[slot] = self._draws
            self._counts_by["inserted"] += 1

    def _free_or_weakest(self, score: float) -> int | None:
        """A free slot, else the lowest-scoring one if ``score`` is at least its score."""
        if len(self._slot) < self.config.buffer_size:
            return next(i for i, t in enumerate(self.levels) if t is None)
        j = int(np.argmin(self._score))
        return j if self._score[j] <= score else None

    def view(self) -> dict:
        """Dashboard view: buffered levels with score and staleness, highest score first."""
        filled = self._filled()
        levels = [t for t in (self.levels[i] for i in filled.tolist()) if t is not None]
        cols = {"score": self._score[filled], "staleness": (self._draws - self._last[filled]).astype(np.float64)}
        return {"kind": "scores", "teacher": self.name, "score": "score", "rows": task_rows(levels, cols, "score")}

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "levels": [t.to_dict() if t is not None else None for t in self.levels],
            "score": self._score.copy(),
            "last": self._last.copy(),
            "baseline": self._baseline.copy(),
            "max_ret": self._max_ret.copy(),
            "draws": self._draws,
            "children": [t.to_dict() for t in self._children],
            "counts_by": dict(self._counts_by),
        }

    def _load_state_dict(self, state: dict) -> None:
        if len(state["levels"]) != self.config.buffer_size:
            raise TeacherStateError(
                f"accel state has a buffer of {len(state['levels'])} levels, this teacher "
                f"{self.config.buffer_size}; build it with buffer_size={len(state['levels'])}"
            )
        self.levels = [Task.from_dict(d) if d is not None else None for d in state["levels"]]
        self._slot = {t.id: i for i, t in enumerate(self.levels) if t is not None}
        self._score = np.asarray(state["score"], dtype=np.float64).copy()
        self._last = np.asarray(state["last"], dtype=np.int64).copy()
        self._baseline = np.asarray(state["baseline"], dtype=np.float64).copy()
        self._max_ret = np.asarray(state["max_ret"], dtype=np.float64).copy()
        self._draws = int(state["draws"])
        self._children = deque(Task.from_dict(d) for d in state["children"])
        self._counts_by = {k: int(v) for k, v in state["counts_by"].items()}

    def _stats(self) -> dict:
        filled = self._filled()
        return {
            "buffer_fill": int(filled.size),
            "mean_score": float(self._score[filled].mean()) if filled.size else 0.0,
            **{f"accel_{k}": v for k, v in self._counts_by.items()},
        }
