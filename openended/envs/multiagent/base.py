"""`TaskParallelEnv`: a PettingZoo ``ParallelEnv`` over a cached upstream env, with a task space.

Contents:
    TaskParallelEnv    -- the shared machinery every multi-agent family subclasses.
    ParallelEnvConfig  -- config fields every family has (upstream env cache, render mode).
    round_half_up, check_range, check_default, default_count -- what the families' configs
                          and task dimensions are built with.

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
``success`` (the task's own criterion, per family); every step's infos carry ``task_id``.
``episode_outcomes()`` returns one `Outcome` per agent of the last finished episode
(``student_id`` = agent id, ``info["team"]``, ``info["team_return"]``), so a teacher can
key on agents or teams. (An agent that finishes before the others, e.g. multiwalker with
``remove_on_fall``, gets its own numbers at its last step; ``team_return`` needs the whole
team, so it is in the infos of the agents still alive at the episode's last step and always
in ``episode_outcomes()``.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from openended.envs.base import TaskEnvMixin, episode_outcome
from openended.errors import TaskNotInSpace
from openended.tasks import Box, Outcome, Task

__all__ = [
    "TaskParallelEnv",
    "ParallelEnvConfig",
    "round_half_up",
    "check_range",
    "check_default",
    "default_count",
]

_SEED_HIGH = 2**31 - 1


def round_half_up(x: float) -> int:
    """Round half up (``floor(x + 0.5)``): the documented map from a Box value to an integer."""
    return int(np.floor(x + 0.5))


class ParallelEnvConfig(BaseModel):
    """Config fields every multi-agent family has; each family's config extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_cache_size: int = Field(8, ge=1, description="Upstream envs kept per structure (LRU).")
    render_mode: Literal["rgb_array", "human"] | None = Field(None, description="Passed to the upstream env.")


def check_range(lo: float, hi: float, name: str) -> None:
    """A config's ``min_<name>``/``max_<name>`` pair must not be inverted (pydantic turns this into a field error)."""
    if hi < lo:
        raise ValueError(f"{name}: min {lo} is above max {hi}")


def check_default(cfg: BaseModel, k: str) -> None:
    """A configured ``default_<k>`` must lie in ``[min_<k>, max_<k>]``."""
    lo, hi, d = getattr(cfg, f"min_{k}"), getattr(cfg, f"max_{k}"), getattr(cfg, f"default_{k}")
    if d is not None and not lo <= d <= hi:
        raise ValueError(f"default_{k}={d} is outside [{lo}, {hi}]")


def default_count(cfg: BaseModel, k: str, upstream: int) -> int:
    """The default task's count: the configured one, else upstream's clipped into the range."""
    d = getattr(cfg, f"default_{k}")
    return int(d) if d is not None else int(np.clip(upstream, getattr(cfg, f"min_{k}"), getattr(cfg, f"max_{k}")))


# ----------------------------------------------------------------------------- base
ConfigT = TypeVar("ConfigT", bound=ParallelEnvConfig)
StructureT = TypeVar("StructureT", bound=Hashable)


class TaskParallelEnv(TaskEnvMixin, ParallelEnv, Generic[ConfigT, StructureT]):
    """A PettingZoo ``ParallelEnv`` over a cached upstream env, rebuilt per structure.

    Subclasses define the task dimensions (``_dims``), the integer ones, the structure key,
    how to build and configure the upstream env, team membership and success. They are
    parameterised by their config class and their structure key (an agent count, or a
    tuple of counts), so both are typed where a subclass reads them.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array", "human"],
        "is_parallelizable": True,
        "name": "task_parallel_env",
    }
    INT_DIMS: ClassVar[frozenset[str]] = frozenset()
    family: ClassVar[str] = "task_parallel_env"
    _space: Box  # every multi-agent task space is a named Box

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        lo, hi, default = zip(*(self._dims()[n] for n in self._dim_names()))
        self._space = Box(list(lo), list(hi), names=self._dim_names(), name=self.family)
        self._default_task = self.task(**dict(zip(self._dim_names(), default)))
        self._cache: OrderedDict[StructureT, ParallelEnv] = OrderedDict()
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

    def _structure(self, p: dict[str, Any]) -> StructureT:
        raise NotImplementedError

    def _max_structure(self) -> StructureT:
        raise NotImplementedError

    def _build(self, structure: StructureT) -> ParallelEnv:
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
        default = self._default_task  # None while __init__ builds the default task itself
        base = default.params if default is not None else None
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
            t = task
        elif isinstance(task, Mapping):
            t = self.task(**task)
        elif isinstance(task, (list, tuple, np.ndarray)):
            self._validate(task)
            t = self._space.task(task)
        else:
            raise TaskNotInSpace(
                f"set_task expects an openended Task, a dict of named parameters or a sequence of "
                f"{len(self._dim_names())} values, got {type(task).__name__}"
            )
        self._validate(t.params)
        self._pending_task = t

    def task_params(self, task: Task | None = None) -> dict[str, Any]:
        """Named parameters of ``task`` (default: the running one) as the upstream env sees them."""
        t = task if task is not None else self._current_task
        if t is None:
            return {}
        return {n: (round_half_up(v) if n in self.INT_DIMS else float(v)) for n, v in zip(self._dim_names(), t.params)}

    # ---------------------------------------------------------------- PettingZoo API
    @override
    def observation_space(self, agent: str) -> gym.spaces.Space:
        """The same object every call (space seeding works; RLlib reads it once)."""
        return self._obs_spaces[agent]

    @override
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

    @override
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

    @override
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
        tid = self._running_task().id
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
        task = self._running_task()
        outs = []
        for a, f in self._finished.items():
            team = self._team(a)
            f["team_return"] = team_return[team]
            if a in out_infos:
                out_infos[a].update(f)
            outs.append(
                episode_outcome(
                    task,
                    f["episode_return"],
                    f["episode_length"],
                    f["success"],
                    student_id=a,
                    team=team,
                    team_return=team_return[team],
                    family=self.family,
                    **self._params,
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

    @override
    def render(self) -> Any:
        return None if self._inner is None else self._inner.render()

    @override
    def close(self) -> None:
        for inner in self._cache.values():
            inner.close()
        self._cache.clear()
        self._inner = None
