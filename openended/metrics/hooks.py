"""An episode hook that writes every finished episode of a host as an l2logger row.

Why: the runtime's `EpisodeHost` (EnvPool, RLlib's single- and multi-agent wrappers) fires
``episode_start`` / ``episode_end`` hooks for every env slot; adding this object with
``host.add_hooks(hook)`` logs a lifelong run without touching the host. Whoever runs the
scenario sets the current block with `EpisodeLogHook.set_block` at each block boundary.
It matches `EpisodeHooks` structurally (this package does not import the runtime).

The task name of a row comes from ``names`` (task id -> scenario task name); a task the
mapping does not know is named by ``fallback`` (default ``task_<id>``) and must still be a
task of the current block, so a host running a task outside the scenario is an error,
not a silent row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from openended.errors import LogFormatError
from openended.metrics.l2log import EpisodeLogger
from openended.metrics.scenario import Block
from openended.tasks import Outcome, Task

__all__ = ["EpisodeLogHook", "task_params"]


def task_params(task: Task) -> dict[str, Any]:
    """A task's parameters as the JSON dict of the log's ``task_params`` column."""
    params: dict[str, Any] = {"task_id": task.id}
    if len(task.params):
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in task.params)
        # Box parameters as floats; Discrete values may be strings (SC2 minigames, level names)
        params["params"] = np.asarray(task.params, dtype=float).tolist() if numeric else [str(v) for v in task.params]
    if task.text:
        params["text"] = task.text
    json.dumps(params)  # fail here, with the task, if something is not JSON
    return params


class EpisodeLogHook:
    """`EpisodeHooks` object: one l2logger row per ``episode_end``, in the block set last."""

    def __init__(
        self,
        logger: EpisodeLogger,
        names: Mapping[str, str] | None = None,
        fallback: Callable[[Task], str] | None = None,
    ) -> None:
        self.logger = logger
        self.names = dict(names or {})
        self.fallback = fallback or (lambda t: f"task_{t.id}")
        self.block: Block | None = None
        self._running: dict[int, Task] = {}

    def set_block(self, block: Block) -> None:
        """The block the next episodes belong to (a host calls it at every block boundary)."""
        self.block = block

    def episode_start(self, *, env_index: int, task: Task, **kw: Any) -> None:
        """Remember the task slot ``env_index`` runs (its params go into the row)."""
        self._running[env_index] = task

    def episode_end(self, *, env_index: int, outcome: Outcome, **kw: Any) -> None:
        """Write the row of slot ``env_index``'s finished episode."""
        if self.block is None:
            raise LogFormatError("EpisodeLogHook: set_block(block) before the first episode ends")
        task = self._running.pop(env_index, None)
        if task is None or task.id != outcome.task_id:
            raise LogFormatError(f"env slot {env_index}: episode_end for task {outcome.task_id} without its start")
        name = self.names.get(task.id) or self.fallback(task)
        self.logger.episode(
            self.block,
            name,
            outcome.episode_return,
            success=outcome.success,
            length=outcome.length,
            task_params=task_params(task),
        )
