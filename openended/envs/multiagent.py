"""PettingZoo parallel envs whose task is a vector of environment parameters.

Contents:
    MultiwalkerTaskEnv   -- SISL multiwalker: n_walkers, terrain length, hardcore terrain, sensor noise.
    SimpleSpreadTaskEnv  -- MPE simple_spread (``mpe2``): N agents = N landmarks, local_ratio, landmark layout.
    SimpleTagTaskEnv     -- MPE simple_tag (``mpe2``): good agents, adversaries, obstacles.
    TaskParallelEnv      -- the shared machinery (a ``pettingzoo.ParallelEnv`` + ``TaskEnvMixin``).
    rllib_env_creator    -- ``name -> (config dict -> ParallelEnv)``, for RLlib's ``ParallelPettingZooEnv``.

Task spaces are ``Box`` with named dimensions (``env.task_space().names``); the bounds come
from the env config, so ``min == max`` pins a dimension. Integer dimensions (agent counts,
``hardcore``, ``layout_seed``) are rounded to the nearest integer when the episode is built,
so continuous teachers (ALP-GMM, RIAC) can drive them; the `Outcome` keeps the id of the
task as given. Build tasks by name with ``env.task(n_walkers=4, hardcore=1)``.

Agents. ``possible_agents`` is fixed at construction to the *largest* team the task space
allows (``walker_0..walker_3`` for up to 4 walkers), with one fixed observation and action
space per agent, because RLlib (and most MARL code) reads the agent set and spaces once.
Each episode's ``agents`` is the subset its task uses. MPE observations change length with
the agent and landmark counts, so when a count varies across tasks the MPE envs pad them
(``observation="auto"``):

* ``"padded"``: upstream's full observation, entities in upstream order, each entity
  block (landmarks, other adversaries, other good agents, their velocities or messages)
  zero-filled up to the task space's maximum count. At the maximum counts this *is* the
  upstream observation, value for value; a slot keeps meaning the same entity across tasks.
* ``"nearest"``: ``mpe2``'s own fixed-shape partial-observability mode
  (``num_agent_neighbors``/``num_landmark_neighbors``: nearest entities first, zero-padded).
  Measured ~2x slower per step (a norm and a sort per entity per agent).
* ``"native"``: the upstream observation unchanged; only for fixed counts (the default then).

Switching structure (agent or landmark count) needs a new upstream env: envs are built on
first use and kept in a small LRU cache keyed by structure (``env_cache_size``), so
alternating tasks costs no rebuild; everything else (terrain length, noise, local_ratio,
layout) is set on the cached env before its reset.

Seeding. ``reset(seed=s)`` seeds the env's own generator; each reset passes a fresh seed
drawn from it to the upstream env, so a sequence of episodes is reproducible from one seed
even when the upstream env is swapped between tasks, and ``reset(seed=s)`` with the same
task gives the same trajectory for the same actions.

Outcomes. When an agent's episode ends, ``infos[agent]`` carries ``episode_return`` (its own
summed reward), ``episode_length``, ``team_return`` (mean return of its team) and
``success`` (the task's own criterion, per family below); every step's infos carry
``task_id``. ``episode_outcomes()`` returns one `Outcome` per agent of the last finished
episode (``student_id`` = agent id, ``info["team"]``, ``info["team_return"]``), so a
teacher can key on agents or teams. (An agent that finishes before the others, e.g.
multiwalker with ``remove_on_fall``, gets its own numbers at its last step; ``team_return``
needs the whole team, so it is in the infos of the agents still alive at the episode's
last step and always in ``episode_outcomes()``.)

RLlib. Envs never import Ray. ``rllib_env_creator("simple_spread")`` returns
``fn(config) -> ParallelEnv``; register
``lambda cfg: ParallelPettingZooEnv(rllib_env_creator("simple_spread")(cfg))`` with Ray
yourself (``openended.runtime`` does this).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openended.envs.base import TaskEnvMixin
from openended.errors import ConfigError, DependencyNotInstalled, TaskNotInSpace
from openended.tasks import Box, Outcome, Task
from openended.validation import validate_model

__all__ = [
    "MultiwalkerTaskEnv",
    "SimpleSpreadTaskEnv",
    "SimpleTagTaskEnv",
    "TaskParallelEnv",
    "MultiwalkerConfig",
    "SimpleSpreadConfig",
    "SimpleTagConfig",
    "rllib_env_creator",
]

_SEED_HIGH = 2**31 - 1


def _round(x: float) -> int:
    """Round half up (``floor(x + 0.5)``): the documented map from a Box value to an integer."""
    return int(np.floor(x + 0.5))


class _EnvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env_cache_size: int = Field(8, ge=1, description="Upstream envs kept per structure (LRU).")
    render_mode: Literal["rgb_array", "human"] | None = Field(None, description="Passed to the upstream env.")


def _check_range(lo: float, hi: float, name: str) -> None:
    if hi < lo:
        raise ValueError(f"{name}: min {lo} is above max {hi}")


def _check_default(cfg: BaseModel, k: str) -> None:
    lo, hi, d = getattr(cfg, f"min_{k}"), getattr(cfg, f"max_{k}"), getattr(cfg, f"default_{k}")
    if d is not None and not lo <= d <= hi:
        raise ValueError(f"default_{k}={d} is outside [{lo}, {hi}]")


def _default(cfg: BaseModel, k: str, upstream: int) -> int:
    """The default task's count: the configured one, else upstream's clipped into the range."""
    d = getattr(cfg, f"default_{k}")
    return int(d) if d is not None else int(np.clip(upstream, getattr(cfg, f"min_{k}"), getattr(cfg, f"max_{k}")))


# ----------------------------------------------------------------------------- base
class TaskParallelEnv(TaskEnvMixin, ParallelEnv):
    """A PettingZoo ``ParallelEnv`` over a cached upstream env, rebuilt per structure.

    Subclasses define the task dimensions (``_dims``), the integer ones, the structure key,
    how to build and configure the upstream env, team membership and success.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array", "human"],
        "is_parallelizable": True,
        "name": "task_parallel_env",
    }
    INT_DIMS: ClassVar[frozenset[str]] = frozenset()
    family: ClassVar[str] = "task_parallel_env"

    def __init__(self, config: _EnvConfig) -> None:
        self.config = config
        lo, hi, default = zip(*(self._dims()[n] for n in self._dim_names()))
        self._space = Box(list(lo), list(hi), names=self._dim_names(), name=self.family)
        self._default_task = self.task(**dict(zip(self._dim_names(), default)))
        self._cache: OrderedDict[Hashable, ParallelEnv] = OrderedDict()
        self._inner: ParallelEnv | None = None
        self._rng = np.random.default_rng()
        self.render_mode = config.render_mode
        probe = self._build(self._max_structure())
        self.possible_agents: list[str] = list(probe.possible_agents)
        self._obs_spaces = {a: probe.observation_space(a) for a in self.possible_agents}
        self._act_spaces = {a: probe.action_space(a) for a in self.possible_agents}
        self._cache[self._max_structure()] = probe
        self.agents: list[str] = []
        self._returns: dict[str, float] = {}
        self._length = 0
        self._params: dict[str, Any] = {}
        self._finished: dict[str, dict[str, Any]] = {}
        self._outcomes: list[Outcome] = []
        self.episodes = 0
        self.builds = 1

    # ------------------------------------------------------------- subclass surface
    def _dims(self) -> dict[str, tuple[float, float, float]]:
        """``name -> (low, high, default)`` from the config."""
        raise NotImplementedError

    def _dim_names(self) -> list[str]:
        return list(self._dims())

    def _structure(self, p: dict[str, Any]) -> Hashable:
        raise NotImplementedError

    def _max_structure(self) -> Hashable:
        raise NotImplementedError

    def _build(self, structure: Hashable) -> ParallelEnv:
        raise NotImplementedError

    def _configure(self, inner: ParallelEnv, p: dict[str, Any]) -> None:
        """Set the non-structural task parameters on the upstream env before its reset."""

    def _team(self, agent: str) -> str:
        return "team"

    def _on_step(self, inner: ParallelEnv) -> None:
        """Per-step hook (success criteria that depend on the whole episode)."""

    def _success(self, inner: ParallelEnv) -> dict[str, bool | None]:
        raise NotImplementedError

    # ---------------------------------------------------------------- task surface
    def task(self, **params: float) -> Task:
        """A validated task from named parameters; unnamed ones take the config defaults.

        Raises `TaskNotInSpace` naming an unknown parameter or a value outside its range.
        """
        names = self._dim_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TaskNotInSpace(f"{self.family}: unknown task parameter(s) {unknown}; valid: {names}")
        base = self._default_task.params if getattr(self, "_default_task", None) is not None else None
        values = [
            float(params[n]) if n in params else (base[i] if base else self._dims()[n][2]) for i, n in enumerate(names)
        ]
        self._validate(values)
        return self._space.task(values)

    def _validate(self, values: Any) -> None:
        """Raise `TaskNotInSpace` naming the family, the parameter, its value and its range."""
        names = self._dim_names()
        x = np.asarray(values, dtype=np.float64)
        if x.shape != (len(names),):
            raise TaskNotInSpace(
                f"{self.family}: a task has {len(names)} parameters {names}, got {len(x)} values {list(values)!r}"
            )
        for n, v, lo, hi in zip(names, x.tolist(), self._space.low.tolist(), self._space.high.tolist()):
            if not lo <= v <= hi:  # also catches NaN
                raise TaskNotInSpace(f"{self.family}: task parameter {n}={v!r} is outside [{lo}, {hi}]")

    def set_task(self, task: Task | Mapping[str, float] | Sequence[float] | np.ndarray) -> None:
        """Queue ``task`` for the next reset (validated now, naming the offending parameter).

        Accepts a `Task`, named parameters (``{"n_walkers": 4}``; others take the defaults)
        or one value per dimension in ``task_space().names`` order.
        """
        if isinstance(task, Task):  # first: a Task is a tuple too
            pass
        elif isinstance(task, Mapping):
            task = self.task(**task)
        elif isinstance(task, (list, tuple, np.ndarray)):
            self._validate(task)
            task = self._space.task(task)
        else:
            raise TaskNotInSpace(
                f"set_task expects an openended Task, a dict of named parameters or a sequence of "
                f"{len(self._dim_names())} values, got {type(task).__name__}"
            )
        self._validate(task.params)
        self._pending_task = task

    def task_params(self, task: Task | None = None) -> dict[str, Any]:
        """Named parameters of ``task`` (default: the running one) as the upstream env sees them."""
        t = task if task is not None else self._current_task
        if t is None:
            return {}
        return {n: (_round(v) if n in self.INT_DIMS else float(v)) for n, v in zip(self._dim_names(), t.params)}

    # ---------------------------------------------------------------- PettingZoo API
    def observation_space(self, agent: str) -> gym.spaces.Space:
        """The same object every call (space seeding works; RLlib reads it once)."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Space:
        return self._act_spaces[agent]

    def _get_inner(self, p: dict[str, Any]) -> ParallelEnv:
        key = self._structure(p)
        inner = self._cache.get(key)
        if inner is None:
            inner = self._build(key)
            self.builds += 1
            self._cache[key] = inner
            while len(self._cache) > self.config.env_cache_size:
                self._cache.popitem(last=False)  # dropped, not closed: MPE's close() quits pygame globally
        else:
            self._cache.move_to_end(key)
        return inner

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        task = self._task_for_reset(options)
        p = self.task_params(task)
        inner = self._get_inner(p)
        self._configure(inner, p)
        self._inner, self._params = inner, p
        obs, infos = inner.reset(seed=int(self._rng.integers(_SEED_HIGH)))
        self.agents = list(inner.agents)
        self._returns = dict.fromkeys(self.agents, 0.0)
        self._length = 0
        self._finished = {}
        tid = task.id
        infos = {a: {**infos.get(a, {}), "task_id": tid} for a in self.agents}
        return obs, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        inner = self._inner
        if inner is None or not self.agents:
            raise gym.error.ResetNeeded(f"{self.family}: call reset() before step() (the episode has ended)")
        live = inner.agents
        obs, rew, term, trunc, infos = inner.step({a: actions[a] for a in live if a in actions})
        self._length += 1
        for a, r in rew.items():
            self._returns[a] = self._returns.get(a, 0.0) + float(r)
        self._on_step(inner)
        tid = self._current_task.id
        out_infos = {a: {**infos.get(a, {}), "task_id": tid} for a in infos}
        done_now = [a for a in self.agents if term.get(a, False) or trunc.get(a, False)]
        self.agents = list(inner.agents)
        if done_now:
            success = self._success(inner)
            for a in done_now:
                self._finished[a] = {
                    "episode_return": self._returns[a],
                    "episode_length": self._length,
                    "success": success.get(a),
                }
                out_infos.setdefault(a, {"task_id": tid}).update(self._finished[a])
            if not self.agents:
                self._close_episode(out_infos)
        return obs, rew, term, trunc, out_infos

    def _close_episode(self, out_infos: dict[str, dict]) -> None:
        teams: dict[str, list[float]] = {}
        for a, f in self._finished.items():
            teams.setdefault(self._team(a), []).append(f["episode_return"])
        team_return = {t: float(np.mean(v)) for t, v in teams.items()}
        task = self._current_task
        outs = []
        for a, f in self._finished.items():
            team = self._team(a)
            f["team_return"] = team_return[team]
            if a in out_infos:
                out_infos[a].update(f)
            outs.append(
                Outcome(
                    task_id=task.id,
                    episode_return=f["episode_return"],
                    success=f["success"],
                    length=f["episode_length"],
                    student_id=a,
                    info={"team": team, "team_return": team_return[team], "family": self.family, **self._params},
                )
            )
        self._outcomes = outs
        self.episodes += 1

    @property
    def upstream(self) -> ParallelEnv | None:
        """The upstream PettingZoo env running the current episode (for inspection)."""
        return self._inner

    def episode_outcomes(self) -> list[Outcome]:
        """One `Outcome` per agent of the last finished episode (empty before the first ends)."""
        return list(self._outcomes)

    def render(self) -> Any:
        return None if self._inner is None else self._inner.render()

    def close(self) -> None:
        for inner in self._cache.values():
            inner.close()
        self._cache.clear()
        self._inner = None


# ------------------------------------------------------------------------- multiwalker
class MultiwalkerConfig(_EnvConfig):
    """Multiwalker task env. Task dims: n_walkers, terrain_length, hardcore, position_noise, angle_noise."""

    min_walkers: int = Field(2, ge=2, le=8, description="Fewest walkers a task may ask for.")
    max_walkers: int = Field(4, ge=2, le=8, description="Most walkers (fixes possible_agents).")
    default_walkers: int | None = Field(
        None, ge=2, le=8, description="n_walkers of the default task; None: upstream's 3, clipped."
    )
    min_terrain_length: int = Field(60, ge=40, le=1000, description="Shortest terrain, in terrain steps.")
    max_terrain_length: int = Field(200, ge=40, le=1000, description="Longest terrain (upstream default 200).")
    allow_hardcore: bool = Field(True, description="Whether tasks may turn on stumps, stairs and pits.")
    max_position_noise: float = Field(1e-2, ge=0.0, le=1.0, description="Upper bound of position_noise.")
    max_angle_noise: float = Field(1e-2, ge=0.0, le=1.0, description="Upper bound of angle_noise.")
    forward_reward: float = Field(1.0, description="Upstream option (fixed, not a task dimension).")
    terminate_reward: float = Field(-100.0, description="Upstream option.")
    fall_reward: float = Field(-10.0, description="Upstream option.")
    shared_reward: bool = Field(True, description="Upstream option.")
    terminate_on_fall: bool = Field(True, description="Upstream option.")
    remove_on_fall: bool = Field(True, description="Upstream option.")
    max_cycles: int = Field(500, ge=1, description="Upstream option (episode cap).")

    @model_validator(mode="after")
    def _check(self) -> MultiwalkerConfig:
        _check_range(self.min_walkers, self.max_walkers, "walkers")
        _check_range(self.min_terrain_length, self.max_terrain_length, "terrain_length")
        _check_default(self, "walkers")
        return self


class MultiwalkerTaskEnv(TaskParallelEnv):
    """SISL multiwalker (``sisl/multiwalker_v9``) with task parameters.

    Task dims: ``n_walkers`` (int; the package scales with it upstream), ``terrain_length``
    (int, terrain steps: episode distance), ``hardcore`` (0/1: upstream's obstacle terrain
    generator, stumps/stairs/pits, a class flag of ``MultiWalkerEnv`` set per instance here),
    ``position_noise`` and ``angle_noise`` (sensor noise). ``success``: the package crossed
    the finish line (upstream's right-edge condition) without the episode failing.
    """

    metadata: ClassVar[dict[str, Any]] = {**TaskParallelEnv.metadata, "name": "multiwalker_task_v0"}
    INT_DIMS = frozenset({"n_walkers", "terrain_length", "hardcore"})
    family = "multiwalker"

    def __init__(self, config: MultiwalkerConfig | None = None, **kwargs: Any) -> None:
        cfg = config if config is not None else validate_model(MultiwalkerConfig, kwargs, prefix="env.multiwalker")
        if config is not None and kwargs:
            raise ConfigError("env.multiwalker: pass either config= or keyword options, not both")
        try:
            # the module behind pettingzoo.make("parallel", "sisl/multiwalker_v9"); the
            # ``pettingzoo.sisl.multiwalker_v9`` shim only adds a DeprecationWarning
            from pettingzoo.sisl.multiwalker import multiwalker as multiwalker_v9
            from pettingzoo.sisl.multiwalker import multiwalker_base
        except ImportError as e:  # pragma: no cover
            raise DependencyNotInstalled("multiwalker needs pettingzoo[sisl] and box2d (the `envs` extra)") from e
        self._mod, self._base = multiwalker_v9, multiwalker_base
        super().__init__(cfg)

    def _dims(self) -> dict[str, tuple[float, float, float]]:
        c: MultiwalkerConfig = self.config  # type: ignore[assignment]
        return {
            "n_walkers": (c.min_walkers, c.max_walkers, _default(c, "walkers", 3)),
            "terrain_length": (c.min_terrain_length, c.max_terrain_length, c.max_terrain_length),
            "hardcore": (0, 1 if c.allow_hardcore else 0, 0),
            "position_noise": (0.0, c.max_position_noise, min(1e-3, c.max_position_noise)),
            "angle_noise": (0.0, c.max_angle_noise, min(1e-3, c.max_angle_noise)),
        }

    def _structure(self, p: dict[str, Any]) -> Hashable:
        return p["n_walkers"]

    def _max_structure(self) -> Hashable:
        return self.config.max_walkers  # type: ignore[attr-defined]

    def _build(self, structure: Hashable) -> ParallelEnv:
        c: MultiwalkerConfig = self.config  # type: ignore[assignment]
        return self._mod.parallel_env(
            n_walkers=int(structure),
            forward_reward=c.forward_reward,
            terminate_reward=c.terminate_reward,
            fall_reward=c.fall_reward,
            shared_reward=c.shared_reward,
            terminate_on_fall=c.terminate_on_fall,
            remove_on_fall=c.remove_on_fall,
            terrain_length=c.max_terrain_length,
            max_cycles=c.max_cycles,
            render_mode=c.render_mode,
        )

    def _configure(self, inner: ParallelEnv, p: dict[str, Any]) -> None:
        base = inner.unwrapped.env  # MultiWalkerEnv: read at its reset()
        base.terrain_length = p["terrain_length"]
        base.hardcore = bool(p["hardcore"])
        base.position_noise = p["position_noise"]
        base.angle_noise = p["angle_noise"]

    def _success(self, inner: ParallelEnv) -> dict[str, bool | None]:
        base = inner.unwrapped.env
        finish = (base.terrain_length - self._base.TERRAIN_GRASS) * self._base.TERRAIN_STEP
        ok = bool(base.package.position.x > finish and not base.game_over)
        return dict.fromkeys(self.possible_agents, ok)


# ----------------------------------------------------------------------- MPE: shared
def _mpe_observation_mode(mode: str, varying: bool, family: str) -> str:
    """Resolve ``observation="auto"``; refuse native observations whose length would vary."""
    if mode == "auto":
        return "padded" if varying else "native"
    if mode == "native" and varying:
        raise ConfigError(
            f"env.{family}.observation: 'native' observations change length when agent or landmark "
            "counts vary across tasks; use 'padded' or 'nearest', or pin the counts (min == max)"
        )
    return mode


def _fill(out: np.ndarray, at: int, vecs: list[np.ndarray], slots: int, width: int = 2) -> int:
    """Write ``vecs`` into ``out[at:]`` and leave ``slots - len(vecs)`` zero slots; return the new offset."""
    for v in vecs:
        out[at : at + width] = v
        at += width
    return at + (slots - len(vecs)) * width


def _spread_padded_observation(n_max: int) -> Callable[[Any, Any], np.ndarray]:
    """simple_spread's full observation with each block zero-filled to ``n_max`` (module doc)."""

    def observation(agent: Any, world: Any) -> np.ndarray:
        p = agent.state.p_pos
        others = [o for o in world.agents if o is not agent]
        dc = world.dim_c
        out = np.zeros(4 + 2 * n_max + 2 * (n_max - 1) + dc * (n_max - 1))
        out[0:2], out[2:4] = agent.state.p_vel, p
        at = _fill(out, 4, [lm.state.p_pos - p for lm in world.landmarks], n_max)
        at = _fill(out, at, [o.state.p_pos - p for o in others], n_max - 1)
        _fill(out, at, [o.state.c for o in others], n_max - 1, dc)
        return out

    return observation


def _tag_padded_observation(l_max: int, a_max: int, g_max: int) -> Callable[[Any, Any], np.ndarray]:
    """simple_tag's full observation with landmark, adversary and good-agent blocks zero-filled."""

    def observation(agent: Any, world: Any) -> np.ndarray:
        p = agent.state.p_pos
        lms = [lm.state.p_pos - p for lm in world.landmarks if not lm.boundary]
        advs = [o for o in world.agents if o.adversary and o is not agent]
        goods = [o for o in world.agents if not o.adversary and o is not agent]
        na, ng = a_max - int(agent.adversary), g_max - int(not agent.adversary)
        out = np.zeros(4 + 2 * (l_max + na + 2 * ng))
        out[0:2], out[2:4] = agent.state.p_vel, p
        at = _fill(out, 4, lms, l_max)
        at = _fill(out, at, [o.state.p_pos - p for o in advs], na)
        at = _fill(out, at, [o.state.p_pos - p for o in goods], ng)
        _fill(out, at, [o.state.p_vel for o in goods], ng)
        return out

    return observation


class _MPEConfig(_EnvConfig):
    max_cycles: int = Field(25, ge=1, description="Upstream option (episode length; MPE default 25).")
    continuous_actions: bool = Field(False, description="Upstream option.")
    observation: Literal["auto", "padded", "nearest", "native"] = Field(
        "auto", description="auto: padded when a count varies across tasks, else native (module doc)."
    )


class SimpleSpreadConfig(_MPEConfig):
    """simple_spread task env. Task dims: n_agents, local_ratio, layout_seed."""

    min_agents: int = Field(2, ge=1, le=10, description="Fewest agents (= landmarks).")
    max_agents: int = Field(4, ge=1, le=10, description="Most agents (fixes possible_agents).")
    default_agents: int | None = Field(
        None,
        ge=1,
        le=10,
        description="N of the default task; None: upstream's 3, clipped into [min_agents, max_agents].",
    )
    min_local_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Lower bound of local_ratio.")
    max_local_ratio: float = Field(1.0, ge=0.0, le=1.0, description="Upper bound of local_ratio.")
    num_layouts: int = Field(
        1000,
        ge=1,
        description="layout_seed ranges over -1 (random each episode) .. num_layouts-1 (a fixed landmark layout).",
    )

    @model_validator(mode="after")
    def _check(self) -> SimpleSpreadConfig:
        _check_range(self.min_agents, self.max_agents, "agents")
        _check_range(self.min_local_ratio, self.max_local_ratio, "local_ratio")
        _check_default(self, "agents")
        return self


class SimpleSpreadTaskEnv(TaskParallelEnv):
    """MPE simple_spread (``mpe2.simple_spread_v3``) with task parameters.

    Task dims: ``n_agents`` (int: agents and landmarks), ``local_ratio`` (weight of the
    local collision reward vs the shared coverage reward), ``layout_seed`` (int: ``-1`` draws
    landmark positions from the episode RNG as upstream; ``k >= 0`` places them from a
    generator seeded with ``k``, the same layout every episode, while agent start positions
    still vary). ``success``: every landmark has an agent within mpe2's capture radius (0.1)
    at the end of the episode. One team: ``team_return`` is the mean agent return.
    """

    metadata: ClassVar[dict[str, Any]] = {**TaskParallelEnv.metadata, "name": "simple_spread_task_v0"}
    INT_DIMS = frozenset({"n_agents", "layout_seed"})
    family = "simple_spread"

    def __init__(self, config: SimpleSpreadConfig | None = None, **kwargs: Any) -> None:
        cfg = config if config is not None else validate_model(SimpleSpreadConfig, kwargs, prefix="env.simple_spread")
        if config is not None and kwargs:
            raise ConfigError("env.simple_spread: pass either config= or keyword options, not both")
        try:
            from mpe2 import simple_spread_v3
        except ImportError as e:  # pragma: no cover
            raise DependencyNotInstalled("simple_spread needs mpe2 (the `envs` extra)") from e
        self._mod = simple_spread_v3
        self.observation_mode = _mpe_observation_mode(
            cfg.observation, cfg.min_agents != cfg.max_agents, "simple_spread"
        )
        self._layout_seed = -1
        super().__init__(cfg)

    def _dims(self) -> dict[str, tuple[float, float, float]]:
        c: SimpleSpreadConfig = self.config  # type: ignore[assignment]
        return {
            "n_agents": (c.min_agents, c.max_agents, _default(c, "agents", 3)),
            "local_ratio": (
                c.min_local_ratio,
                c.max_local_ratio,
                float(np.clip(0.5, c.min_local_ratio, c.max_local_ratio)),
            ),
            "layout_seed": (-1, c.num_layouts - 1, -1),
        }

    def _structure(self, p: dict[str, Any]) -> Hashable:
        return p["n_agents"]

    def _max_structure(self) -> Hashable:
        return self.config.max_agents  # type: ignore[attr-defined]

    def _build(self, structure: Hashable) -> ParallelEnv:
        c: SimpleSpreadConfig = self.config  # type: ignore[assignment]
        n_max = c.max_agents
        nearest = self.observation_mode == "nearest" and n_max > 1
        inner = self._mod.parallel_env(
            N=int(structure),
            max_cycles=c.max_cycles,
            continuous_actions=c.continuous_actions,
            render_mode=c.render_mode,
            num_agent_neighbors=n_max - 1 if nearest else None,
            num_landmark_neighbors=n_max if nearest else None,
        )
        raw = inner.unwrapped
        if self.observation_mode == "padded":
            raw.scenario.observation = _spread_padded_observation(n_max)  # this instance only
        upstream_reset_world = raw.scenario.reset_world

        def reset_world(world: Any, np_random: np.random.Generator) -> None:
            upstream_reset_world(world, np_random)
            if self._layout_seed >= 0:  # a fixed layout: its own generator, independent of the episode seed
                g = np.random.default_rng(self._layout_seed)
                for lm in world.landmarks:
                    lm.state.p_pos = g.uniform(-1, +1, world.dim_p)

        raw.scenario.reset_world = reset_world  # this instance only
        return inner

    def _configure(self, inner: ParallelEnv, p: dict[str, Any]) -> None:
        inner.unwrapped.local_ratio = p["local_ratio"]
        self._layout_seed = p["layout_seed"]

    def _success(self, inner: ParallelEnv) -> dict[str, bool | None]:
        raw = inner.unwrapped
        world, radius = raw.world, raw.scenario.CAPTURE_RADIUS
        pos = np.array([a.state.p_pos for a in world.agents])
        ok = all(np.min(np.linalg.norm(pos - lm.state.p_pos, axis=1)) < radius for lm in world.landmarks)
        return dict.fromkeys(self.possible_agents, bool(ok))


class SimpleTagConfig(_MPEConfig):
    """simple_tag task env. Task dims: num_good, num_adversaries, num_obstacles."""

    min_good: int = Field(1, ge=1, le=6, description="Fewest good agents (prey).")
    max_good: int = Field(2, ge=1, le=6, description="Most good agents.")
    default_good: int | None = Field(None, ge=1, le=6, description="Default task; None: upstream's 1, clipped.")
    min_adversaries: int = Field(2, ge=1, le=8, description="Fewest adversaries (predators).")
    max_adversaries: int = Field(4, ge=1, le=8, description="Most adversaries.")
    default_adversaries: int | None = Field(None, ge=1, le=8, description="Default task; None: upstream's 3, clipped.")
    min_obstacles: int = Field(0, ge=0, le=8, description="Fewest obstacles.")
    max_obstacles: int = Field(3, ge=0, le=8, description="Most obstacles.")
    default_obstacles: int | None = Field(None, ge=0, le=8, description="Default task; None: upstream's 2, clipped.")

    @model_validator(mode="after")
    def _check(self) -> SimpleTagConfig:
        for k in ("good", "adversaries", "obstacles"):
            _check_range(getattr(self, f"min_{k}"), getattr(self, f"max_{k}"), k)
            _check_default(self, k)
        return self


class SimpleTagTaskEnv(TaskParallelEnv):
    """MPE simple_tag (``mpe2.simple_tag_v3``) with task parameters.

    Task dims: ``num_good``, ``num_adversaries``, ``num_obstacles`` (ints). Teams:
    ``adversary`` and ``good``. ``success`` uses mpe2's own terminal criterion (every good
    agent touched by an adversary at the same step): the adversaries succeed if that
    happened at any step of the episode, the good agents if it never did.
    """

    metadata: ClassVar[dict[str, Any]] = {**TaskParallelEnv.metadata, "name": "simple_tag_task_v0"}
    INT_DIMS = frozenset({"num_good", "num_adversaries", "num_obstacles"})
    family = "simple_tag"

    def __init__(self, config: SimpleTagConfig | None = None, **kwargs: Any) -> None:
        cfg = config if config is not None else validate_model(SimpleTagConfig, kwargs, prefix="env.simple_tag")
        if config is not None and kwargs:
            raise ConfigError("env.simple_tag: pass either config= or keyword options, not both")
        try:
            from mpe2 import simple_tag_v3
        except ImportError as e:  # pragma: no cover
            raise DependencyNotInstalled("simple_tag needs mpe2 (the `envs` extra)") from e
        self._mod = simple_tag_v3
        varying = (cfg.min_good, cfg.min_adversaries, cfg.min_obstacles) != (
            cfg.max_good,
            cfg.max_adversaries,
            cfg.max_obstacles,
        )
        self.observation_mode = _mpe_observation_mode(cfg.observation, varying, "simple_tag")
        self._caught_all = False
        super().__init__(cfg)

    def _dims(self) -> dict[str, tuple[float, float, float]]:
        c: SimpleTagConfig = self.config  # type: ignore[assignment]
        return {
            "num_good": (c.min_good, c.max_good, _default(c, "good", 1)),
            "num_adversaries": (c.min_adversaries, c.max_adversaries, _default(c, "adversaries", 3)),
            "num_obstacles": (c.min_obstacles, c.max_obstacles, _default(c, "obstacles", 2)),
        }

    def _structure(self, p: dict[str, Any]) -> Hashable:
        return (p["num_good"], p["num_adversaries"], p["num_obstacles"])

    def _max_structure(self) -> Hashable:
        c: SimpleTagConfig = self.config  # type: ignore[assignment]
        return (c.max_good, c.max_adversaries, c.max_obstacles)

    def _build(self, structure: Hashable) -> ParallelEnv:
        c: SimpleTagConfig = self.config  # type: ignore[assignment]
        g, a, o = structure  # type: ignore[misc]
        nearest = self.observation_mode == "nearest"
        inner = self._mod.parallel_env(
            num_good=int(g),
            num_adversaries=int(a),
            num_obstacles=int(o),
            max_cycles=c.max_cycles,
            continuous_actions=c.continuous_actions,
            render_mode=c.render_mode,
            num_agent_neighbors=(c.max_good + c.max_adversaries - 1) if nearest else None,
            num_landmark_neighbors=(c.max_obstacles or None) if nearest else None,
        )
        if self.observation_mode == "padded":
            inner.unwrapped.scenario.observation = _tag_padded_observation(  # this instance only
                c.max_obstacles, c.max_adversaries, c.max_good
            )
        return inner

    def _team(self, agent: str) -> str:
        return "adversary" if agent.startswith("adversary") else "good"

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self._caught_all = False
        return super().reset(seed=seed, options=options)

    def _on_step(self, inner: ParallelEnv) -> None:
        if self._caught_all:
            return
        # mpe2's is_terminal test (every prey touching an adversary), in plain floats.
        # SPEEDUP: scenario.is_collision does a numpy sqrt+sum per pair (~6 us each).
        agents = inner.unwrapped.world.agents
        advs = [(float(a.state.p_pos[0]), float(a.state.p_pos[1]), a.size) for a in agents if a.adversary]
        for prey in agents:
            if prey.adversary:
                continue
            x, y, r = float(prey.state.p_pos[0]), float(prey.state.p_pos[1]), prey.size
            if not any((x - ax) ** 2 + (y - ay) ** 2 < (r + ar) ** 2 for ax, ay, ar in advs):
                return
        self._caught_all = True

    def _success(self, inner: ParallelEnv) -> dict[str, bool | None]:
        return {
            a: (self._caught_all if self._team(a) == "adversary" else not self._caught_all)
            for a in self.possible_agents
        }


# --------------------------------------------------------------------------- RLlib glue
_FAMILIES: dict[str, Callable[..., TaskParallelEnv]] = {
    "multiwalker": MultiwalkerTaskEnv,
    "simple_spread": SimpleSpreadTaskEnv,
    "simple_tag": SimpleTagTaskEnv,
}


def rllib_env_creator(name: str) -> Callable[[dict[str, Any] | None], TaskParallelEnv]:
    """``fn(config) -> ParallelEnv`` for ``ray.rllib.env.wrappers.pettingzoo_env.ParallelPettingZooEnv``.

    Ray-free on purpose: wrap it where Ray lives, e.g.
    ``register_env("spread", lambda c: ParallelPettingZooEnv(rllib_env_creator("simple_spread")(c)))``.
    RLlib's ``EnvContext`` is a dict subclass; its keys are passed as keyword config.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in _FAMILIES:
        raise ConfigError(f"rllib_env_creator: unknown multi-agent family {name!r}; choose one of {sorted(_FAMILIES)}")
    cls = _FAMILIES[key]

    def create(config: dict[str, Any] | None = None) -> TaskParallelEnv:
        return cls(**dict(config or {}))

    create.__name__ = f"create_{key}"
    return create
