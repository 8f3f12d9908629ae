"""`SelfPlayTaskEnv`: a two-sided PettingZoo game whose task is the opponent (self-play).

Why: self-play teachers (`openended.teachers.self_play`) choose *who* the learner plays,
one opponent per episode. Making the opponent the env's task lets every host that runs
task envs (RLlib's multi-agent wrapper `CurriculumMultiAgentEnv`, `EnvPool`, `TeamEnv`)
run self-play unchanged: each reset takes the next task from the teacher, i.e. an
opponent slot, and each finished episode reports one `Outcome` for that slot, its
``success`` the learner's win -- what PFSP's win rates are counted from.

The env wraps a PettingZoo ``ParallelEnv`` (``game``, an import path; default
rock-paper-scissors, ``pettingzoo.classic.rps_v2``). The learner plays ``learner_agents``
(default the game's first agent); the other agents are acted *inside* the env by the
opponent policy of the episode's slot, so RLlib only ever sees the learner's agents and
trains one policy. The policy of a slot comes from a loader (``opponent``, an import path
of ``factory(action_spaces, **opponent_config) -> loader``; ``loader(slot_value) ->
policy``; ``policy(obs_by_agent) -> actions_by_agent``); the env keeps the last
``policy_cache`` loaded policies. The runtime's loader
(`openended.runtime.rllib_self_play.snapshot_opponents`) loads frozen snapshots of the
learner's RLlib module that the driver saves; `random_opponents` here plays uniformly (a
fixed baseline, and what tests without Ray use). Envs never import Ray.

Task space: ``Discrete`` over ``slots`` values ``opponent_0 .. opponent_<slots-1>`` (name
``self_play``): which slots hold a checkpoint is the teacher's pool, not the env's.

Observations: a ``Discrete`` observation (rock-paper-scissors: the other player's last
move) is given one-hot as a float32 ``Box`` (RLlib's default models take Box inputs);
the opponent policies see the same form. Snapshots of the learner act for the opponent,
so every opponent agent must have the learner's observation and action spaces (checked).

Outcome per episode: one per learner agent: ``episode_return`` its summed reward,
``success`` = return ``> win_margin`` (a win; a draw is not), ``info`` with
``opponent_return`` (the mean opponent agent's return) and ``opponent`` (the slot value).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from openended.envs.base import TaskEnvMixin, episode_outcome
from openended.errors import ConfigError
from openended.registry import resolve_import_path
from openended.tasks import Discrete, Outcome
from openended.validation import config_or_kwargs

__all__ = ["SelfPlayEnvConfig", "SelfPlayTaskEnv", "OpponentPolicy", "OpponentLoader", "random_opponents"]

#: ``policy(observations by agent) -> actions by agent`` (the opponent's agents alive this step).
OpponentPolicy = Callable[[Mapping[str, Any]], dict[str, Any]]
#: ``loader(slot value) -> policy`` of that slot's opponent.
OpponentLoader = Callable[[str], OpponentPolicy]

_SEED_HIGH = 2**31 - 1


class SelfPlayEnvConfig(BaseModel):
    """Self-play env settings (the game, which side learns, the opponent slots and loader)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    game: str = Field(
        "pettingzoo.classic.rps_v2:parallel_env",
        description="Import path 'pkg.mod:fn' of a PettingZoo ParallelEnv factory (the two-sided game).",
    )
    game_config: dict[str, Any] = Field(
        default_factory=lambda: {"max_cycles": 10}, description="Keyword options of the game factory."
    )
    learner_agents: list[str] | None = Field(
        None, description="Agents the learner plays (None: the game's first agent); the others are the opponent."
    )
    slots: int = Field(8, ge=1, le=10_000, description="Opponent slots: task values opponent_0 .. opponent_<slots-1>.")
    opponent: str = Field(
        "openended.envs.multiagent.self_play:random_opponents",
        description="Import path of factory(action_spaces, **opponent_config) -> loader(slot) -> policy.",
    )
    opponent_config: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the factory.")
    win_margin: float = Field(0.0, description="A learner agent wins when its return is above this.")
    policy_cache: int = Field(4, ge=1, description="Loaded opponent policies kept (LRU).")


def random_opponents(action_spaces: Mapping[str, gym.Space], seed: int = 0) -> OpponentLoader:
    """Every slot plays uniformly random actions (one seeded generator per slot)."""

    def load(slot: str) -> OpponentPolicy:
        spaces = {a: _copy_space(s, seed) for a, s in action_spaces.items()}
        return lambda obs: {a: spaces[a].sample() for a in obs}

    return load


def _copy_space(space: gym.Space, seed: int) -> gym.Space:
    out = copy.deepcopy(space)
    out.seed(seed)
    return out


def _one_hot_space(space: gym.Space) -> gym.Space:
    """A ``Discrete`` observation space as a one-hot float32 Box; others unchanged."""
    if isinstance(space, gym.spaces.Discrete):
        return gym.spaces.Box(0.0, 1.0, shape=(int(space.n),), dtype=np.float32)
    return space


class SelfPlayTaskEnv(TaskEnvMixin, ParallelEnv):
    """The learner's side of a two-sided game; the task (an opponent slot) plays the other side."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "is_parallelizable": True, "name": "self_play_v0"}
    family = "self_play"

    def __init__(
        self, config: SelfPlayEnvConfig | None = None, *, loader: OpponentLoader | None = None, **kwargs: Any
    ) -> None:
        cfg = config_or_kwargs(SelfPlayEnvConfig, config, kwargs, "env.self_play")
        self.config = cfg
        self.game: Any = resolve_import_path(cfg.game, "env.self_play.game")(**cfg.game_config)
        agents = list(self.game.possible_agents)
        learners = list(cfg.learner_agents) if cfg.learner_agents is not None else agents[:1]
        unknown = sorted(set(learners) - set(agents))
        if unknown or not learners:
            raise ConfigError(f"env.self_play.learner_agents: {learners} must be a non-empty subset of {agents}")
        self.possible_agents: list[str] = learners
        self.opponent_agents: list[str] = [a for a in agents if a not in learners]
        if not self.opponent_agents:
            raise ConfigError(f"env.self_play.learner_agents: {learners} leaves no agent of {agents} to the opponent")
        ref = learners[0]
        obs0, act0 = self.game.observation_space(ref), self.game.action_space(ref)
        for a in [*learners[1:], *self.opponent_agents]:
            if self.game.observation_space(a) != obs0 or self.game.action_space(a) != act0:
                raise ConfigError(
                    f"env.self_play.game: agent {a!r} has other spaces than {ref!r}; snapshots of the learner "
                    "can only play a side with the learner's observation and action spaces"
                )
        self._raw_obs_space = obs0
        self._obs_space = _one_hot_space(obs0)
        self._act_space = act0
        self._space = Discrete([f"opponent_{i}" for i in range(cfg.slots)], name="self_play")
        self._default_task = self._space.task_at(0)
        if loader is None:
            factory = resolve_import_path(cfg.opponent, "env.self_play.opponent")
            loader = factory({a: act0 for a in self.opponent_agents}, **cfg.opponent_config)
        self._loader: OpponentLoader = loader
        self._policies: OrderedDict[str, OpponentPolicy] = OrderedDict()
        self._policy: OpponentPolicy | None = None
        self._rng = np.random.default_rng()
        self.agents: list[str] = []
        self._opp_obs: dict[str, Any] = {}
        self._returns: dict[str, float] = {}
        self._length = 0
        self._outcomes: list[Outcome] = []
        self.loads = 0

    # ------------------------------------------------------------------ spaces
    @override
    def observation_space(self, agent: str) -> gym.spaces.Space:
        return self._obs_space

    @override
    def action_space(self, agent: str) -> gym.spaces.Space:
        return self._act_space

    def _obs(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        if self._obs_space is self._raw_obs_space:
            return dict(raw)
        n = int(self._raw_obs_space.n)
        return {a: np.eye(n, dtype=np.float32)[int(o)] for a, o in raw.items()}

    def _opponent(self, slot: str) -> OpponentPolicy:
        policy = self._policies.get(slot)
        if policy is None:
            policy = self._loader(slot)
            self.loads += 1
            self._policies[slot] = policy
            while len(self._policies) > self.config.policy_cache:
                self._policies.popitem(last=False)
        else:
            self._policies.move_to_end(slot)
        return policy

    # ------------------------------------------------------------------ PettingZoo API
    @override
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        task = self._task_for_reset(options)
        self._policy = self._opponent(str(task.params[0]))
        obs, infos = self.game.reset(seed=int(self._rng.integers(_SEED_HIGH)))
        obs = self._obs(obs)
        self._opp_obs = {a: obs[a] for a in self.opponent_agents if a in obs}
        self.agents = [a for a in self.possible_agents if a in obs]
        self._returns = {a: 0.0 for a in [*self.possible_agents, *self.opponent_agents]}
        self._length = 0
        return {a: obs[a] for a in self.agents}, {a: {**infos.get(a, {}), "task_id": task.id} for a in self.agents}

    @override
    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._policy is None or not self.agents:
            raise gym.error.ResetNeeded("self_play: call reset() before step() (the episode has ended)")
        live = set(self.game.agents)
        joint = {a: actions[a] for a in self.agents if a in actions and a in live}
        opp_obs = {a: o for a, o in self._opp_obs.items() if a in live}
        if opp_obs:
            joint.update(self._policy(opp_obs))
        obs, rew, term, trunc, infos = self.game.step(joint)
        obs = self._obs(obs)
        self._length += 1
        for a, r in rew.items():
            self._returns[a] = self._returns.get(a, 0.0) + float(r)
        self._opp_obs = {a: obs[a] for a in self.opponent_agents if a in obs}
        task = self._running_task()
        mine = self.agents
        out_infos = {a: {**infos.get(a, {}), "task_id": task.id} for a in mine}
        self.agents = [a for a in mine if not (term.get(a, False) or trunc.get(a, False))]
        if not self.agents:
            self._finish()
        return (
            {a: obs[a] for a in mine if a in obs},
            {a: float(rew.get(a, 0.0)) for a in mine},
            {a: bool(term.get(a, False)) for a in mine},
            {a: bool(trunc.get(a, False)) for a in mine},
            out_infos,
        )

    def _finish(self) -> None:
        task = self._running_task()
        opp = float(np.mean([self._returns[a] for a in self.opponent_agents]))
        self._outcomes = [
            episode_outcome(
                task,
                self._returns[a],
                self._length,
                self._returns[a] > self.config.win_margin,
                student_id=a,
                opponent=str(task.params[0]),
                opponent_return=opp,
            )
            for a in self.possible_agents
        ]

    def episode_outcomes(self) -> list[Outcome]:
        """One `Outcome` per learner agent of the last finished episode (empty before the first ends)."""
        return list(self._outcomes)

    @override
    def close(self) -> None:
        self.game.close()
        self._policies.clear()
