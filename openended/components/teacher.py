"""A teacher as a component (the curriculum placement), through an adapter.

The existing teachers work unchanged: `TeacherComponent` wraps any `openended.teachers`
teacher, proposes its tasks (``next_task``) and feeds it every finished episode's outcome
(``on_episode_end``), so a host can run a teacher beside other components. In evaluation
blocks the host hides rewards, and the adapter then skips the update: a teacher must not
learn from evaluation episodes either. Its state is the teacher's own ``state_dict``.

In ``openended run`` the experiment's ``teacher:`` section is this component: the teacher
service hosts it for every env runner, and the ``components:`` list adds the others.

>>> from openended.tasks import Box
>>> from openended.teachers import make_teacher
>>> comp = TeacherComponent(teacher=make_teacher("random", Box([0.0], [1.0]), seed=0))
>>> task = comp.next_task()
>>> comp.on_episode_end(env_index=0, outcome=task_outcome(task, 1.0))
>>> comp.updates
1
"""

from __future__ import annotations

from typing import Any, ClassVar

from openended.components.base import Component, ComponentConfig, HiddenOutcome, Placement
from openended.tasks import Outcome, Task

__all__ = ["TeacherComponent", "TeacherComponentConfig", "task_outcome"]


class TeacherComponentConfig(ComponentConfig):
    """A teacher by registry name (when built from YAML rather than around a teacher object)."""

    name: str = "random"
    preset: str | None = None
    space: dict[str, Any] | None = None
    config: dict[str, Any] = {}


def task_outcome(task: Task, episode_return: float, success: bool | None = None) -> Outcome:
    """A minimal `Outcome` for ``task`` (tests and examples)."""
    return Outcome(task_id=task.id, episode_return=float(episode_return), success=success)


class TeacherComponent(Component):
    """Any teacher as a curriculum-placement component (module doc)."""

    placement = Placement.CURRICULUM
    provides: ClassVar[tuple[str, ...]] = ("curriculum",)
    Config = TeacherComponentConfig

    def __init__(self, config: Any = None, *, teacher: Any = None) -> None:
        super().__init__(config)
        if teacher is None:
            from openended.tasks import space_from_dict
            from openended.teachers import make_teacher

            cfg = self.config
            if cfg.space is None:
                raise ValueError("TeacherComponent config.space: give the task space (space.to_dict()) or a teacher")
            teacher = make_teacher(cfg.name, space_from_dict(cfg.space), preset=cfg.preset, **cfg.config)
        self.teacher = teacher
        self.updates = 0
        self._queue: list[Task] = []

    def next_task(self, batch: int = 16) -> Task:
        """The teacher's next task (sampled ``batch`` at a time)."""
        if not self._queue:
            self._queue = list(self.teacher.sample(batch))[::-1]
        return self._queue.pop()

    def on_episode_end(self, *, env_index: int, outcome: Outcome | HiddenOutcome, **kw: Any) -> None:
        """Update the teacher with ``outcome``, unless the host hid its reward (evaluation block)."""
        if isinstance(outcome, HiddenOutcome):
            return
        self.teacher.update([outcome])
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """The teacher's state and the adapter's count."""
        return {"teacher": self.teacher.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the teacher and the count."""
        self.teacher.load_state_dict(state["teacher"])
        self.updates = int(state["updates"])
