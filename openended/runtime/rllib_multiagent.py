"""Per-episode curriculum for PettingZoo parallel task envs inside RLlib (multi-agent PPO).

Contents:
    CurriculumMultiAgentEnv            -- RLlib ``MultiAgentEnv`` around a task ``ParallelEnv``.
    register_curriculum_multiagent_env -- register a multi-agent family + teacher service with RLlib.
    rllib_env_creator                  -- ``family -> (config -> ParallelEnv)``, for RLlib's ``ParallelPettingZooEnv``.
    shared_policy_config               -- one policy shared by every agent.

`CurriculumMultiAgentEnv` runs its episodes through an `EpisodeHost` as one team
(`openended.runtime.episodes`): each reset pops the next task from the process's shared
`TeacherClient` (the same clients and counters as `CurriculumEnv`), and when every agent is
done the episode is reported as **one** `Outcome` for the curriculum's student, aggregated
by `openended.envs.team.team_result`: the mean agent return, success when every agent that
reports success succeeded, per-agent returns in ``info["agent_returns"]``.

Agents that may be absent in a task (fewer walkers) are declared up front
(``possible_agents``, padded observations): RLlib needs fixed spaces per agent id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ray.rllib.env.multi_agent_env import MultiAgentEnv
from typing_extensions import override

from openended.envs.registry import is_multi_agent_family, list_envs, make_task_env
from openended.envs.team import is_parallel_env
from openended.errors import ConfigError
from openended.registry import normalize_name
from openended.runtime.episodes import EpisodeHost
from openended.runtime.process_clients import EPISODE_COUNTERS, ProcessClient
from openended.runtime.rllib import BUS_INTERVAL_S, bus_bridge, curriculum_env_creator, env_runner_components
from openended.tasks import Task

__all__ = [
    "CurriculumMultiAgentEnv",
    "register_curriculum_multiagent_env",
    "rllib_env_creator",
    "shared_policy_config",
]


class CurriculumMultiAgentEnv(MultiAgentEnv):
    """Runs every episode of a task ``ParallelEnv`` on the next task of a curriculum.

    ``env.host`` is its `EpisodeHost` (``env.host.add_hooks(...)`` for lifecycle hooks).
    """

    def __init__(
        self,
        env: Any,
        service: str | Any,
        curriculum: str,
        student: str = "default",
        *,
        namespace: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        bus: str | None = None,
        stores: Mapping[str, str] | None = None,
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
        self._client = ProcessClient(service, curriculum, student, namespace=namespace, client_options=client_options)
        self.host = EpisodeHost(
            [env],
            student=student,
            counters=EPISODE_COUNTERS,
            connect=self._client.get,
            owner="CurriculumMultiAgentEnv",
        )
        #: Env-runner components of this env (one team episode = one episode for them), or ``None``.
        self.components = env_runner_components(components, self.host, stores, namespace)
        self._bridge = bus_bridge(self.components, bus, namespace)

    @property
    def task(self) -> Task | None:
        """The task of the running episode."""
        return self.host.tasks[0]

    @override
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if self._bridge is not None:
            self._bridge.exchange(BUS_INTERVAL_S)
        obs, infos = self.host.begin(0, seed=seed, options=options)
        self.agents = list(self.env.agents)
        return obs, infos

    @override
    def step(  # type: ignore[override]  # RLlib's per-agent dicts break the gymnasium Env signature it subclasses
        self, action_dict: dict
    ) -> tuple[dict, dict, dict, dict, dict]:
        obs, rew, term, trunc, infos = self.host.step_team(0, action_dict)
        self.agents = list(self.env.agents)
        done = not self.agents
        term = dict(term, __all__=done and any(term.values()))
        trunc = dict(trunc, __all__=done and not term["__all__"])
        return obs, rew, term, trunc, infos

    @override
    def close(self) -> None:
        if self.components is not None:
            self.components.block_end()
            self.components.lifetime_end()
        self._client.release()
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
    components: list[dict[str, Any]] | None = None,
    bus: str | None = None,
    stores: Mapping[str, str] | None = None,
) -> str:
    """``ray.tune.registry.register_env`` for a multi-agent task family (`CurriculumMultiAgentEnv`)."""
    from ray.tune.registry import register_env

    creator = curriculum_env_creator(
        CurriculumMultiAgentEnv,
        family,
        env_config,
        service_name,
        curriculum,
        student,
        namespace=namespace,
        client_options=client_options,
        field="register_curriculum_multiagent_env.family",
        components=components,
        bus=bus,
        stores=stores,
    )
    register_env(env_name, creator)
    return env_name


def rllib_env_creator(family: str) -> Callable[[Mapping[str, Any] | None], Any]:
    """``fn(config) -> task ParallelEnv`` of a registered multi-agent family, for RLlib's ``ParallelPettingZooEnv``.

    ``register_env("spread", lambda c: ParallelPettingZooEnv(rllib_env_creator("simple_spread")(c)))``.

    RLlib's ``EnvContext`` is a dict subclass; its keys are passed as keyword config.
    """
    if not is_multi_agent_family(family):
        raise ConfigError(
            f"rllib_env_creator: unknown multi-agent family {family!r}; choose one of {list_envs(multi_agent=True)}"
        )

    def create(config: Mapping[str, Any] | None = None) -> Any:
        return make_task_env(family, config, field="rllib_env_creator.family")

    create.__name__ = f"create_{normalize_name(family)}"
    return create


def _shared(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    return "shared"


def shared_policy_config(config: Any) -> Any:
    """One policy shared by every agent (the multiwalker / MPE-spread convention)."""
    return config.multi_agent(policies={"shared"}, policy_mapping_fn=_shared)
