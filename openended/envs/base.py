"""What makes a gymnasium env a *task* env.

A task env has a task space, takes ``set_task`` at the next reset, and reports an
``Outcome`` at episode end.

Contract (checked by ``openended.envs.checker.check_task_env``):

* ``task_space() -> TaskSpace``: the tasks this env accepts.
* ``set_task(task)``: validated immediately (a task outside the space raises
  `TaskNotInSpace` naming the parameter and its range); takes effect at the **next**
  ``reset`` only, never mid-episode. ``reset(options={"task": task})`` does the same for
  that reset.
* ``current_task``: the task the running episode was started with.
* ``info["task_id"]`` on every reset/step; ``info["success"]`` at episode end where the
  task defines success.

`TaskEnvMixin` implements the bookkeeping; a family calls ``self._task_for_reset(options)``
at the top of ``reset`` and builds its episode from the returned task.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from gymnasium.error import ResetNeeded

from openended.errors import TaskNotInSpace
from openended.tasks import Outcome, Task, TaskSpace

__all__ = [
    "TaskEnv",
    "TaskEnvMixin",
    "episode_outcome",
    "INFO_TASK_ID",
    "INFO_SUCCESS",
    "INFO_EPISODE_RETURN",
    "INFO_EPISODE_LENGTH",
]

#: ``info`` keys every family uses (hosts read them at episode end).
INFO_TASK_ID = "task_id"
INFO_SUCCESS = "success"
INFO_EPISODE_RETURN = "episode_return"
INFO_EPISODE_LENGTH = "episode_length"


@runtime_checkable
class TaskEnv(Protocol):
    """The task surface hosts and teachers rely on (the contract in the module docstring).

    A Protocol rather than a base class, so a family need not inherit from anything of ours
    (wrappers such as `openended.envs.team.TeamEnv` forward it); `TaskEnvMixin` implements it.
    """

    def task_space(self) -> TaskSpace:
        """The tasks this env accepts (what a teacher samples from)."""

    def set_task(self, task: Task) -> None:
        """Queue ``task`` for the next ``reset``; raise `TaskNotInSpace` now if it is not in the space."""

    @property
    def current_task(self) -> Task | None:
        """The task the running episode was started with (``None`` before the first reset)."""


class TaskEnvMixin:
    """Task bookkeeping shared by every family.

    Subclasses set ``self._space`` and (optionally) ``self._default_task`` before the first
    reset.
    """

    _space: TaskSpace
    _default_task: Task | None = None
    _pending_task: Task | None = None
    _current_task: Task | None = None

    def task_space(self) -> TaskSpace:
        """`TaskEnv.task_space`: the space the subclass set up."""
        return self._space

    def set_task(self, task: Task | Any) -> None:
        """Queue ``task`` for the next ``reset`` (validated now, applied then).

        Raw parameters (a Box vector, a Discrete value, a text) are accepted and turned
        into a `Task` of this env's space.
        """
        if not isinstance(task, Task):
            maker = getattr(self._space, "task", None)
            if maker is None:
                raise TaskNotInSpace(f"set_task expects an openended Task, got {type(task).__name__}")
            task = maker(task)
        self._space.check_task(task)
        self._pending_task = task

    @property
    def current_task(self) -> Task | None:
        """`TaskEnv.current_task`: the task the running episode was started with."""
        return self._current_task

    def _running_task(self) -> Task:
        """The running episode's task, for ``step``; `ResetNeeded` before the first reset."""
        task = self._current_task
        if task is None:
            raise ResetNeeded(f"{type(self).__name__}: no episode is running; call reset() first")
        return task

    def _task_for_reset(self, options: dict[str, Any] | None) -> Task:
        """Resolve the task of the episode being reset: options > queued > previous > default."""
        task = (options or {}).get("task")
        if task is not None:
            self.set_task(task)
        if self._pending_task is not None:
            self._current_task, self._pending_task = self._pending_task, None
        elif self._current_task is None:
            if self._default_task is None:
                raise TaskNotInSpace(f"{type(self).__name__}: no task set; call set_task() before reset()")
            self._current_task = self._default_task
        return self._current_task


def episode_outcome(
    task: Task,
    episode_return: float,
    length: int,
    success: bool | None = None,
    student_id: str = "default",
    episode_id: str | None = None,
    *,
    task_id: str | None = None,
    **info: Any,
) -> Outcome:
    """The `Outcome` of one finished episode of ``task``: the one place an outcome is built.

    ``task_id`` overrides ``task.id`` when the env reports that it ran another task (a
    host passes ``info["task_id"]``, so a teacher is told what was actually played).
    ``success`` keeps ``None`` (the task defines no success) apart from ``False``.
    """
    return Outcome(
        task_id=task.id if task_id is None else str(task_id),
        episode_return=float(episode_return),
        success=None if success is None else bool(success),
        length=int(length),
        student_id=student_id,
        info=info,
        episode_id=episode_id,
    )
