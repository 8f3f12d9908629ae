"""MPE (``mpe2``) simple_spread and simple_tag as task ``ParallelEnv``s, with fixed-shape observations.

Contents:
    SimpleSpreadTaskEnv -- N agents = N landmarks, local_ratio, landmark layout.
    SimpleTagTaskEnv    -- good agents, adversaries, obstacles.
    SimpleSpreadConfig, SimpleTagConfig -- their validated configs.

MPE observations change length with the agent and landmark counts, so when a count varies
across tasks these envs pad them (``observation="auto"``):

* ``"padded"``: upstream's full observation, entities in upstream order, each entity
  block (landmarks, other adversaries, other good agents, their velocities or messages)
  zero-filled up to the task space's maximum count. At the maximum counts this *is* the
  upstream observation, value for value; a slot keeps meaning the same entity across tasks.
* ``"nearest"``: ``mpe2``'s own fixed-shape partial-observability mode
  (``num_agent_neighbors``/``num_landmark_neighbors``: nearest entities first, zero-padded).
  Measured ~2x slower per step (a norm and a sort per entity per agent).
* ``"native"``: the upstream observation unchanged; only for fixed counts (the default then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
from pettingzoo import ParallelEnv
from pydantic import Field, model_validator
from typing_extensions import override

from openended.envs.multiagent.base import (
    ParallelEnvConfig,
    TaskParallelEnv,
    check_default,
    check_range,
    default_count,
)
from openended.errors import ConfigError, DependencyNotInstalled
from openended.validation import config_or_kwargs

__all__ = ["SimpleSpreadConfig", "SimpleSpreadTaskEnv", "SimpleTagConfig", "SimpleTagTaskEnv"]


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


class _MPEConfig(ParallelEnvConfig):
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
        check_range(self.min_agents, self.max_agents, "agents")
        check_range(self.min_local_ratio, self.max_local_ratio, "local_ratio")
        check_default(self, "agents")
        return self


class SimpleSpreadTaskEnv(TaskParallelEnv[SimpleSpreadConfig, int]):
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
        cfg = config_or_kwargs(SimpleSpreadConfig, config, kwargs, "env.simple_spread")
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
        c = self.config
        return {
            "n_agents": (c.min_agents, c.max_agents, default_count(c, "agents", 3)),
            "local_ratio": (
                c.min_local_ratio,
                c.max_local_ratio,
                float(np.clip(0.5, c.min_local_ratio, c.max_local_ratio)),
            ),
            "layout_seed": (-1, c.num_layouts - 1, -1),
        }

    def _structure(self, p: dict[str, Any]) -> int:
        return p["n_agents"]

    def _max_structure(self) -> int:
        return self.config.max_agents

    def _build(self, structure: int) -> ParallelEnv:
        c = self.config
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
            check_range(getattr(self, f"min_{k}"), getattr(self, f"max_{k}"), k)
            check_default(self, k)
        return self


class SimpleTagTaskEnv(TaskParallelEnv[SimpleTagConfig, tuple[int, int, int]]):
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
        cfg = config_or_kwargs(SimpleTagConfig, config, kwargs, "env.simple_tag")
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
        c = self.config
        return {
            "num_good": (c.min_good, c.max_good, default_count(c, "good", 1)),
            "num_adversaries": (c.min_adversaries, c.max_adversaries, default_count(c, "adversaries", 3)),
            "num_obstacles": (c.min_obstacles, c.max_obstacles, default_count(c, "obstacles", 2)),
        }

    def _structure(self, p: dict[str, Any]) -> tuple[int, int, int]:
        return (p["num_good"], p["num_adversaries"], p["num_obstacles"])

    def _max_structure(self) -> tuple[int, int, int]:
        c = self.config
        return (c.max_good, c.max_adversaries, c.max_obstacles)

    def _build(self, structure: tuple[int, int, int]) -> ParallelEnv:
        c = self.config
        g, a, o = structure
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

    @override
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
