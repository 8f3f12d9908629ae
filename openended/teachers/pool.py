"""The finite, growing task pool the known-task teachers (LP, OMNI, WebRL) work on.

Contents:
    TaskPool            -- known tasks in insertion order, indexed by id; positions never
                           change (tasks are only appended), so per-task arrays (LP
                           trackers, phase counters) can be indexed by position.
    known_tasks_of_space -- the initial pool: every Discrete value, or a TextSpace's texts.
    task_label          -- a short display label for a task (stats, dashboards).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from openended.errors import ConfigError
from openended.tasks import Discrete, Task, TaskSpace, TextSpace

__all__ = ["TaskPool", "known_tasks_of_space", "task_label"]


class TaskPool:
    """Known tasks in order, with an id -> position index.

    ``tasks`` is a plain list on purpose: samplers index it in their hot loop
    (``[pool.tasks[i] for i in idx]``), where a method call per task would cost more than
    the draw. Only `add` and `load` change it.
    """

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self.tasks: list[Task] = []
        self._index: dict[str, int] = {}
        self.add(tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]

    def index_of(self, task_id: str) -> int | None:
        """Position of the task with this id, or None if it is not in the pool."""
        return self._index.get(task_id)

    def add(self, tasks: Iterable[Task]) -> list[Task]:
        """Append the tasks whose id is not in the pool yet; returns the ones added, in order."""
        new = []
        for t in tasks:
            if t.id in self._index:
                continue
            self._index[t.id] = len(self.tasks)
            self.tasks.append(t)
            new.append(t)
        return new

    def to_dicts(self) -> list[dict[str, Any]]:
        """The pool for a ``state_dict`` (JSON-able)."""
        return [t.to_dict() for t in self.tasks]

    def load(self, dicts: Sequence[dict[str, Any]]) -> None:
        """Replace the pool with the tasks of `to_dicts` (same order, so same positions)."""
        self.tasks = [Task.from_dict(d) for d in dicts]
        self._index = {t.id: i for i, t in enumerate(self.tasks)}


def known_tasks_of_space(space: TaskSpace, texts: Sequence[str] | None = None) -> list[Task]:
    """The finite task list a known-task teacher works on.

    Every Discrete value, or the given texts (default: the TextSpace's seed tasks).
    """
    if isinstance(space, Discrete):
        return space.tasks_at(range(space.n), origin="sampled")
    if isinstance(space, TextSpace):
        src = list(texts) if texts is not None else list(space.seed_texts)
        if not src:
            raise ConfigError(
                "teacher on a TextSpace needs known tasks: pass tasks=[...] or build the "
                "TextSpace with seed_tasks=[...]"
            )
        return TaskPool(space.task(t, origin="seed") for t in src).tasks
    raise ConfigError(f"known-task teachers need a discrete or text space, got {space!r}")


def task_label(task: Task, n: int = 80) -> str:
    """A display label for a task (clipped; text is data, shown, never interpreted)."""
    s = task.text if task.text is not None else repr(list(task.params))
    return s if len(s) <= n else s[: n - 3] + "..."
