"""Per-episode curriculum for PettingZoo parallel task envs inside RLlib (multi-agent PPO).

`CurriculumMultiAgentEnv` is RLlib's ``MultiAgentEnv`` around a task ``ParallelEnv``
(`openended.envs.multiagent`): each reset pops the next task from the process's shared
`TeacherClient` (the same clients as `CurriculumEnv`), and when every agent is done the
episode is reported as **one** `Outcome` for the curriculum's student: the mean agent
return, success when every agent that reports success succeeded, per-agent returns in
``info["agent_returns"]``. One outcome per episode keeps teachers' bookkeeping what they
expect (ALP-GMM pairs one return with one task).

Agents that may be absent in a task (fewer walkers) are declared up front
(``possible_agents``, padded observations): RLlib needs fixed spaces per agent id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from openended.errors import ConfigError
from openended.runtime.rllib import _COUNTS, _acquire_client, _make_inner, _release_client
from openended.tasks import Outcome

__all__ = ["CurriculumMultiAgentEnv", "register_curriculum_multiagent_env", "shared_policy_config", "is_parallel_env"]


def is_parallel_env(env: Any) -> bool:
    """A PettingZoo parallel env (has ``possible_agents`` and per-agent spaces)."""
    return hasattr(env, "possible_agents") and callable(getattr(env, "observation_space", None))


class CurriculumMultiAgentEnv(MultiAgentEnv):
    """Runs every episode of a task ``ParallelEnv`` on the next task of a curriculum."""

    def __init__(
        self,
        env: Any,
        service: str | Any,
        curriculum: str,
        student: str = "default",
        *,
        namespace: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not (is_parallel_env(env) and hasattr(env, "set_task") and hasattr(env, "episode_outcomes")):
            raise ConfigError(
                f"CurriculumMultiAgentEnv: {env!r} is not a task ParallelEnv "
                "(see openended.envs.multiagent.TaskParallelEnv)"
            )
        self.env = env
        self.possible_agents = list(env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        self._args = (service, namespace, curriculum, student, dict(client_options or {}))
        self._student = student
        self._client_key: tuple | None = None
        self._client: Any = None
        self._task = None

    def _get_client(self) -> Any:
        if self._client is None:
            service, namespace, curriculum, student, opts = self._args
            self._client_key, self._client = _acquire_client(service, namespace, curriculum, student, opts)
        return self._client

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        task = self._get_client().next_task()
        self.env.set_task(task)
        obs, infos = self.env.reset(seed=seed, options=options)
        self._task = task
        self.agents = list(self.env.agents)
        _COUNTS["resets"] += 1
        return obs, infos

    def step(self, action_dict: dict) -> tuple[dict, dict, dict, dict, dict]:
        obs, rew, term, trunc, infos = self.env.step(action_dict)
        self.agents = list(self.env.agents)
        done = not self.agents
        term = dict(term, __all__=done and any(term.values()))
        trunc = dict(trunc, __all__=done and not term["__all__"])
        if done:
            self._report()
        return obs, rew, term, trunc, infos

    def _report(self) -> None:
        outs = self.env.episode_outcomes()
        if not outs or self._task is None:
            return
        successes = [o.success for o in outs if o.success is not None]
        self._client.report(
            Outcome(
                task_id=self._task.id,
                episode_return=float(np.mean([o.episode_return for o in outs])),
                success=all(successes) if successes else None,
                length=max(int(o.length or 0) for o in outs),
                student_id=self._student,
                info={"agent_returns": {o.student_id: o.episode_return for o in outs}},
            )
        )
        _COUNTS["episodes_reported"] += 1

    def close(self) -> None:
        if self._client_key is not None:
            _release_client(self._client_key)
            self._client_key, self._client = None, None
        self.env.close()


def register_curriculum_multiagent_env(
    env_name: str,
    family: str,
    env_config: Mapping[str, Any],
    service_name: str,
    curriculum: str,
    student: str = "default",
    *,
    namespace: str | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> str:
    """``ray.tune.registry.register_env`` for a multi-agent task family."""
    from ray.tune.registry import register_env

    cfg, opts = dict(env_config or {}), dict(client_options or {})

    def creator(_ctx: Any = None) -> CurriculumMultiAgentEnv:
        return CurriculumMultiAgentEnv(
            _make_inner(family, cfg), service_name, curriculum, student, namespace=namespace, client_options=opts
        )

    register_env(env_name, creator)
    return env_name


def _shared(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    return "shared"


def shared_policy_config(config: Any) -> Any:
    """One policy shared by every agent (the multiwalker / MPE-spread convention)."""
    return config.multi_agent(policies={"shared"}, policy_mapping_fn=_shared)
