"""Sequential (stage) curricula: run one teacher or fixed task set after another.

Reference: Syllabus's ``SequentialCurriculum(curriculum_list, stopping_conditions)``
(Sullivan et al., 2024): a list of curricula, each with a condition to move on.

Each stage is either a registered teacher (``teacher``, ``preset``, ``config``) or a fixed
list of tasks (``tasks``: Box parameter lists, Discrete values or texts, drawn uniformly).
A stage ends when its ``until`` condition holds, counted over the outcomes of the tasks
*this stage* issued: ``episodes`` (at least N outcomes), ``mean_return`` and
``success_rate`` (over the last ``window`` outcomes, once ``window`` are in); with several
conditions ``combine`` says whether ``any`` (default) or ``all`` must hold. The last
stage has no end. Outcomes of tasks an earlier stage issued still reach that stage's
teacher (they arrive late in a distributed run) but count for no condition.

Every stage's teacher is built up front, so a bad stage fails at construction with its
index in the message; stage ``i``'s teacher is seeded ``seed + i``.
What differs from Syllabus: conditions are typed fields rather than strings such as
``"episodes>=500"``, and the stage teachers are any registered teacher, not only
Syllabus curricula. Success is the outcome's flag, or the return threshold where it has none.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box, Discrete, Outcome, Task, TaskSpace, TextSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.registry import make_teacher
from openended.teachers.success import SuccessConfig, success_of
from openended.teachers.views import task_rows

__all__ = ["StageCondition", "StageConfig", "SequentialConfig", "SequentialTeacher"]


class StageCondition(BaseModel):
    """When a stage ends (any/all of the given conditions; none given = never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    episodes: int | None = Field(None, ge=1, description="At least this many outcomes of the stage's tasks.")
    mean_return: float | None = Field(None, description="Mean return over the last `window` outcomes >= this.")
    success_rate: float | None = Field(None, ge=0.0, le=1.0, description="Success rate over the window >= this.")
    window: int = Field(100, ge=1, description="Outcomes the mean return / success rate is taken over.")
    combine: Literal["any", "all"] = Field("any", description="Whether any or all conditions must hold.")


class StageConfig(BaseModel):
    """One stage: a registered teacher, or a fixed list of tasks; and when it ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: str | None = Field(None, description="Registered teacher name (e.g. 'random', 'alp_gmm').")
    preset: str | None = Field(None, description="That teacher's preset.")
    config: dict[str, Any] = Field(default_factory=dict, description="That teacher's config overrides.")
    tasks: list[Any] | None = Field(None, description="A fixed task set (Box param lists, values or texts).")
    until: StageCondition = Field(default_factory=StageCondition, description="When the stage ends.")

    @model_validator(mode="after")
    def _one_kind(self) -> StageConfig:
        if (self.teacher is None) == (self.tasks is None):
            raise ValueError("give exactly one of 'teacher' and 'tasks'")
        if self.tasks is not None and not self.tasks:
            raise ValueError("'tasks' must not be empty")
        return self


class SequentialConfig(TeacherConfig, SuccessConfig):
    """The stages, in order (default: one uniform stage)."""

    stages: list[StageConfig] = Field(
        default_factory=lambda: [StageConfig(teacher="random")], min_length=1, description="Stages in order."
    )


class SequentialTeacher(BaseTeacher):
    """Runs stage teachers in order, moving on when a stage's condition holds."""

    name = "sequential"
    Config = SequentialConfig
    config: SequentialConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # uniform warm-up, then RIAC: a common staging (e.g. TeachMyAgent's bootstrap phases)
        "warmup": {
            "stages": [{"teacher": "random", "until": {"episodes": 1000}}, {"teacher": "riac"}],
        },
    }

    def __init__(self, space: TaskSpace, config: SequentialConfig | None = None) -> None:
        super().__init__(space, config)
        self.stage = 0
        self.teachers: list[BaseTeacher | None] = []
        self.fixed: list[list[Task] | None] = []
        for i, st in enumerate(self.config.stages):
            try:
                if st.teacher is not None:
                    teacher = make_teacher(
                        st.teacher, space, preset=st.preset, **{"seed": self.config.seed + i, **st.config}
                    )
                    self.teachers.append(teacher)
                    self.fixed.append(None)
                else:
                    self.teachers.append(None)
                    self.fixed.append([self._fixed_task(v) for v in st.tasks or ()])
            except (ConfigError, TaskNotInSpace) as err:
                self.close()
                raise ConfigError(f"teacher.sequential.stages[{i}]: {err}") from None
        self._owner: OrderedDict[str, int] = OrderedDict()  # task id -> stage that issued it
        self._episodes = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=self._window())

    def _fixed_task(self, value: Any) -> Task:
        space = self.space
        if isinstance(space, (Box, Discrete, TextSpace)):
            return space.task(value)
        raise ConfigError(f"teacher.sequential: a fixed task set needs a Box, Discrete or Text space, got {space!r}")

    def _window(self) -> int:
        return self.config.stages[self.stage].until.window

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        teacher, fixed = self.teachers[self.stage], self.fixed[self.stage]
        if teacher is not None:
            tasks = teacher.sample(n, student=student)
        else:
            assert fixed is not None
            tasks = [fixed[i] for i in self.rng.integers(0, len(fixed), size=n).tolist()]
        owner = self._owner
        for t in tasks:
            owner[t.id] = self.stage
            owner.move_to_end(t.id)
        while len(owner) > self.config.max_tracked_tasks:
            owner.popitem(last=False)
        return tasks

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        by_stage: dict[int, list[Outcome]] = {}
        for t, o in zip(tasks, outcomes):
            by_stage.setdefault(self._owner.get(t.id, self.stage), []).append(o)
        for i, outs in sorted(by_stage.items()):
            teacher = self.teachers[i]
            if teacher is not None:
                teacher.update(outs)
        current = self.stage
        thr = self.config.success_threshold
        for o in by_stage.get(current, ()):
            self._episodes += 1
            self._recent.append((o.episode_return, float(success_of(o, thr))))
        if current + 1 < len(self.teachers) and self._stage_done():
            self.stage += 1
            self._episodes = 0
            self._recent = deque(maxlen=self._window())

    def _stage_done(self) -> bool:
        cond = self.config.stages[self.stage].until
        full = len(self._recent) >= cond.window
        arr = np.asarray(self._recent, dtype=np.float64).reshape(-1, 2)
        checks = []
        if cond.episodes is not None:
            checks.append(self._episodes >= cond.episodes)
        if cond.mean_return is not None:
            checks.append(full and float(arr[:, 0].mean()) >= cond.mean_return)
        if cond.success_rate is not None:
            checks.append(full and float(arr[:, 1].mean()) >= cond.success_rate)
        if not checks:
            return False
        return all(checks) if cond.combine == "all" else any(checks)

    def view(self) -> dict:
        """Dashboard view: the running stage teacher's own view, tagged with the stage.

        A stage without a view (a fixed task set, ``random``) shows its tasks as score rows.
        """
        teacher = self.teachers[self.stage]
        inner = getattr(teacher, "view", None)
        if inner is not None:
            v = dict(inner())
            v.update(teacher=self.name, stage=self.stage, stage_teacher=v.get("teacher"))
            return v
        tasks = self.fixed[self.stage] or []
        cols = {"stage": np.full(len(tasks), float(self.stage))}
        return {
            "kind": "scores",
            "teacher": self.name,
            "score": "stage",
            "stage": self.stage,
            "rows": task_rows(tasks, cols, "stage"),
        }

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "stage": self.stage,
            "episodes": self._episodes,
            "recent": [list(r) for r in self._recent],
            "owner": [[k, v] for k, v in self._owner.items()],
            "teachers": [t.state_dict() if t is not None else None for t in self.teachers],
        }

    def _load_state_dict(self, state: dict) -> None:
        self.stage = int(state["stage"])
        self._episodes = int(state["episodes"])
        self._recent = deque(((float(r[0]), float(r[1])) for r in state["recent"]), maxlen=self._window())
        self._owner = OrderedDict((str(k), int(v)) for k, v in state["owner"])
        for t, s in zip(self.teachers, state["teachers"]):
            if t is not None:
                t.load_state_dict(s)

    def _stats(self) -> dict:
        arr = np.asarray(self._recent, dtype=np.float64).reshape(-1, 2)
        out: dict[str, Any] = {
            "stage": self.stage,
            "stage_episodes": self._episodes,
            "stage_mean_return": float(arr[:, 0].mean()) if len(arr) else 0.0,
            "stage_success_rate": float(arr[:, 1].mean()) if len(arr) else 0.0,
        }
        teacher = self.teachers[self.stage]
        if teacher is not None:
            out["stage_teacher"] = teacher.name
        return out

    def close(self) -> None:
        """Close every stage's teacher (idempotent)."""
        for t in getattr(self, "teachers", ()):
            if t is not None:
                t.close()
        super().close()
