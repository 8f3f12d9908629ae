"""Shared test fixtures for the task-id pairing checks (EnvPool and RLlib tests).

`CountEnv`'s episode return and length are functions of its task, so the service-side
`PairingTeacher` can verify every outcome against the task its id names: a host that
reported the next task's id, a neighbour's, or a stale one fails the check. Ray workers
cannot import this module, so tests ship it by value (`register_pickle_by_value`).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from openended.envs.base import TaskEnvMixin
from openended.tasks import Box, Outcome, Task
from openended.teachers import BaseTeacher, TeacherConfig

SPACE = Box([0.0], [1.0], names=["level"], name="count")


def episode_length(level: float) -> int:
    return 3 + int(level * 5)


class CountEnv(TaskEnvMixin, gym.Env):
    """An episode of task ``level`` lasts ``3 + int(5 * level)`` steps and pays ``level``
    per step, so return and length identify the task that was run."""

    def __init__(self) -> None:
        self._space = SPACE
        self.observation_space = gym.spaces.Box(0.0, 10.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        self._level, self._t = float(task.params[0]), 0
        return np.array([self._level, 0.0], np.float32), {"task_id": task.id}

    def step(self, action: Any):
        self._t += 1
        done = self._t >= episode_length(self._level)
        info: dict[str, Any] = {"task_id": self._current_task.id}
        if done:
            info["success"] = self._level > 0.5
        return np.array([self._level, self._t], np.float32), self._level, False, done, info


class PairingTeacher(BaseTeacher):
    """Uniform tasks; checks every outcome against the task its ``task_id`` names."""

    name = "pairing_test"
    Config = TeacherConfig

    def __init__(self, seed: int = 0) -> None:
        super().__init__(SPACE, TeacherConfig(seed=seed))
        self.pairs = 0
        self.mismatches = 0

    def _sample(self, n: int, student: str) -> list[Task]:
        return self.space.sample_uniform(self.rng, n)

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        for task, o in zip(tasks, outcomes):
            n = episode_length(task.params[0])
            self.pairs += 1
            if o.length != n or abs(o.episode_return - n * task.params[0]) > 1e-5:
                self.mismatches += 1

    def _stats(self) -> dict:
        return {"pairs": self.pairs, "mismatches": self.mismatches}
