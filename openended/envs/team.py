"""`TeamEnv`: a PettingZoo task ``ParallelEnv`` seen as one single-agent gymnasium env.

Why: single-agent hosts (`EnvPool`, evaluation loops) step ``env.step(action)`` and read
one reward; a team of agents on one task is one episode for the teacher. Actions and
observations are dicts keyed by ``possible_agents``; the reward is the mean of the live
agents' rewards (so the episode return is the mean agent return, as in
`CurriculumMultiAgentEnv`); the episode ends when every agent is done; ``info["success"]``
is true when every agent that reports success succeeded.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from openended.tasks import Task, TaskSpace

__all__ = ["TeamEnv"]


class TeamEnv(gym.Env):
    def __init__(self, env: Any) -> None:
        self.env = env
        agents = list(env.possible_agents)
        self.observation_space = gym.spaces.Dict({a: env.observation_space(a) for a in agents})
        self.action_space = gym.spaces.Dict({a: env.action_space(a) for a in agents})

    def task_space(self) -> TaskSpace:
        return self.env.task_space()

    def set_task(self, task: Task | Any) -> None:
        self.env.set_task(task)

    @property
    def current_task(self) -> Task | None:
        return self.env.current_task

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        obs, _ = self.env.reset(seed=seed, options=options)
        return obs, {"task_id": self.env.current_task.id}

    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        obs, rew, term, trunc, infos = self.env.step(action)
        reward = float(np.mean(list(rew.values()))) if rew else 0.0
        info: dict[str, Any] = {"task_id": self.env.current_task.id}
        done = not self.env.agents
        if done:
            outs = self.env.episode_outcomes()
            known = [o.success for o in outs if o.success is not None]
            info["success"] = all(known) if known else None
            info["agent_returns"] = {o.student_id: o.episode_return for o in outs}
        terminated = done and any(term.values())
        return obs, reward, terminated, done and not terminated, info

    def close(self) -> None:
        self.env.close()
