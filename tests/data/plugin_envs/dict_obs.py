"""DictReachEnv: a Dict-observation task env (like Crafter's image + task), small enough for a test run."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from openended.envs.base import INFO_SUCCESS, INFO_TASK_ID, TaskEnvMixin
from openended.tasks import Discrete


class DictReachEnv(TaskEnvMixin, gym.Env):
    """Reach position ``task`` (0..3) on a line; observation {"pos": Box, "task": Discrete}."""

    def __init__(self, max_steps: int = 8) -> None:
        self._space = Discrete([0, 1, 2, 3], name="target")
        self._default_task = self._space.task(1)
        self.max_steps = max_steps
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Dict(
            {"pos": gym.spaces.Box(-10.0, 10.0, (1,), np.float32), "task": gym.spaces.Discrete(4)}
        )

    def _obs(self) -> dict[str, Any]:
        return {"pos": np.array([self.pos], np.float32), "task": int(self.target)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.target = int(self._task_for_reset(options).params[0])
        self.pos, self.steps = 0.0, 0
        return self._obs(), {INFO_TASK_ID: self._running_task().id}

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        self.pos += 1.0 if action == 1 else -1.0
        self.steps += 1
        reached = self.pos == self.target
        done = reached or self.steps >= self.max_steps
        info: dict[str, Any] = {INFO_TASK_ID: self._running_task().id}
        if done:
            info[INFO_SUCCESS] = reached
        return self._obs(), float(reached), reached, not reached and done, info
