"""The scenario teacher: issues the tasks of the learning block a lifelong scenario is in.

Why a teacher: in a lifelong run (the experiment's ``scenario:`` section) the curriculum
is not adaptive, it is the scenario — train on A, evaluate, train on B, ... The env hosts
still pull every task from the teacher service, so the scenario is served by a teacher
whose task set the run's driver switches at each learning block (`set_tasks`, one of the
teacher's ``CONTROLS``: the only methods the service lets a driver call on a teacher).
Between switches it draws uniformly from the block's tasks and counts the outcomes per
task, which the driver reads from ``stats()``.

The task set is part of the teacher state, so a checkpoint restores the block it was in;
the driver also sets it again after a resume (the call is idempotent).

>>> from openended.tasks import Discrete
>>> t = ScenarioTeacher(Discrete(["a", "b"]))
>>> t.set_tasks(["b"])
>>> [x.params[0] for x in t.sample(3)]
['b', 'b', 'b']
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from pydantic import Field

from openended.errors import ConfigError
from openended.tasks import Discrete, Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig

__all__ = ["ScenarioTeacher", "ScenarioTeacherConfig"]


class ScenarioTeacherConfig(TeacherConfig):
    """The first block's tasks (the driver replaces them at each block)."""

    tasks: list[Any] = Field(default_factory=list, description="Discrete values issued until set_tasks is called.")


class ScenarioTeacher(BaseTeacher):
    """Uniform over the current block's tasks; the driver switches blocks with `set_tasks` (module doc)."""

    name = "scenario"
    Config = ScenarioTeacherConfig
    config: ScenarioTeacherConfig
    space_kinds = ("discrete",)
    #: Methods a driver may call through the service (``TeacherService.control``).
    CONTROLS: ClassVar[tuple[str, ...]] = ("set_tasks",)

    def __init__(self, space: TaskSpace, config: ScenarioTeacherConfig | None = None) -> None:
        super().__init__(space, config)
        assert isinstance(self.space, Discrete)
        self.discrete: Discrete = self.space
        self.current: list[Task] = self._tasks_of(self.config.tasks or list(self.discrete.values))
        self.block_outcomes: Counter[str] = Counter()  # task id -> outcomes since the last switch
        self.switches = 0

    def _tasks_of(self, values: list[Any]) -> list[Task]:
        if not values:
            raise ConfigError("scenario teacher: set_tasks needs at least one task value")
        return [self.discrete.task(v, origin="scenario") for v in values]

    def set_tasks(self, values: list[Any]) -> None:
        """Issue only ``values`` from now on (a no-op when they are the current ones)."""
        tasks = self._tasks_of(list(values))
        if [t.id for t in tasks] == [t.id for t in self.current]:
            return
        self.current = tasks
        self.block_outcomes = Counter()
        self.switches += 1

    def _sample(self, n: int, student: str) -> list[Task]:
        if len(self.current) == 1:
            return [self.current[0]] * n
        picks = self.rng.integers(0, len(self.current), size=n)
        return [self.current[i] for i in picks.tolist()]

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        current = {t.id for t in self.current}
        self.block_outcomes.update(t.id for t in tasks if t.id in current)

    def _state_dict(self) -> dict:
        return {
            "current": [t.params[0] for t in self.current],
            "block_outcomes": dict(self.block_outcomes),
            "switches": self.switches,
        }

    def _load_state_dict(self, state: dict) -> None:
        self.current = self._tasks_of(list(state["current"]))
        self.block_outcomes = Counter({str(k): int(v) for k, v in state["block_outcomes"].items()})
        self.switches = int(state["switches"])

    def _stats(self) -> dict:
        return {
            "current_tasks": [str(t.params[0]) for t in self.current],
            "block_outcomes": int(sum(self.block_outcomes.values())),
            "switches": self.switches,
        }
