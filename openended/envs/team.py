"""A team of agents on one task is one episode for the teacher: the aggregation, and `TeamEnv`.

Contents:
    TeamResult      -- what one team episode amounts to (return, success, length, per-agent returns).
    team_result     -- the aggregation, from a task ``ParallelEnv``'s ``episode_outcomes()``.
    is_parallel_env -- a PettingZoo parallel env (``possible_agents``, per-agent spaces)?
    TeamEnv         -- a task ``ParallelEnv`` seen as one single-agent gymnasium env.

Why one aggregation: every host of a team (the runtime's episode host, for EnvPools and
RLlib's multi-agent wrapper alike, and `TeamEnv`'s end-of-episode ``info``) must tell the
teacher the same thing about the same episode. A team episode's return is the mean agent
return; its success is true when every agent that reports success succeeded (``None`` when
none does); its length is the longest agent's; per-agent returns go along so a teacher can
look closer. One outcome per episode keeps teachers' bookkeeping what they expect (ALP-GMM
pairs one return with one task).

`TeamEnv` is a pure gymnasium adapter (no runtime, no Ray): single-agent hosts (`EnvPool`,
evaluation loops) step ``env.step(action)`` and read one reward. Actions and observations
are dicts keyed by ``possible_agents``; the step reward is the mean of the live agents'
rewards (what a single-agent policy learns from); the episode ends when every agent is
done, and its end ``info`` carries the `team_result` (``success``, ``episode_return``,
``episode_length``, ``agent_returns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from typing_extensions import override

from openended.envs.base import INFO_EPISODE_LENGTH, INFO_EPISODE_RETURN, INFO_SUCCESS, INFO_TASK_ID
from openended.tasks import Outcome, Task, TaskSpace

__all__ = ["TeamResult", "team_result", "is_parallel_env", "TeamEnv"]


class TeamResult(NamedTuple):
    """One team episode, aggregated over its agents' outcomes."""

    task_id: str
    episode_return: float
    success: bool | None
    length: int
    agent_returns: dict[str, float]


def team_result(agent_outcomes: Sequence[Outcome]) -> TeamResult:
    """Aggregate one finished team episode (one `Outcome` per agent, ``student_id`` = agent id).

    Raises ``ValueError`` on an empty sequence: a team episode without agents has no result.
    """
    if not agent_outcomes:
        raise ValueError("team_result: the episode has no agent outcomes (did it finish?)")
    known = [o.success for o in agent_outcomes if o.success is not None]
    return TeamResult(
        task_id=agent_outcomes[0].task_id,
        episode_return=float(np.mean([o.episode_return for o in agent_outcomes])),
        success=all(known) if known else None,
        length=max(int(o.length or 0) for o in agent_outcomes),
        agent_returns={o.student_id: o.episode_return for o in agent_outcomes},
    )


def is_parallel_env(env: Any) -> bool:
    """A PettingZoo parallel env: ``possible_agents`` and per-agent space methods, not a gymnasium env."""
    return (
        hasattr(env, "possible_agents")
        and not isinstance(env, gym.Env)
        and callable(getattr(env, "observation_space", None))
    )


class TeamEnv(gym.Env):
    """A task ``ParallelEnv`` (``set_task``, ``episode_outcomes``) as one single-agent env (module doc)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        agents = list(env.possible_agents)
        self.observation_space = gym.spaces.Dict({a: env.observation_space(a) for a in agents})
        self.action_space = gym.spaces.Dict({a: env.action_space(a) for a in agents})

    def task_space(self) -> TaskSpace:
        """The wrapped env's `TaskEnv.task_space`."""
        return self.env.task_space()

    def set_task(self, task: Task | Any) -> None:
        """The wrapped env's `TaskEnv.set_task` (it accepts named parameters too)."""
        self.env.set_task(task)

    @property
    def current_task(self) -> Task | None:
        """The wrapped env's `TaskEnv.current_task`."""
        return self.env.current_task

    def episode_outcomes(self) -> list[Outcome]:
        """The team's per-agent outcomes of the last finished episode (what hosts aggregate)."""
        return self.env.episode_outcomes()

    @override
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        obs, _ = self.env.reset(seed=seed, options=options)
        return obs, {INFO_TASK_ID: self.env.current_task.id}

    @override
    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        obs, rew, term, trunc, _infos = self.env.step(action)
        reward = float(np.mean(list(rew.values()))) if rew else 0.0
        info: dict[str, Any] = {INFO_TASK_ID: self.env.current_task.id}
        done = not self.env.agents
        if done:
            result = team_result(self.env.episode_outcomes())
            info[INFO_SUCCESS] = result.success
            info[INFO_EPISODE_RETURN] = result.episode_return
            info[INFO_EPISODE_LENGTH] = result.length
            info["agent_returns"] = result.agent_returns
        terminated = done and any(term.values())
        return obs, reward, terminated, done and not terminated, info

    @override
    def close(self) -> None:
        self.env.close()
