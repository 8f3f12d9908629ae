"""SISL multiwalker (``sisl/multiwalker_v9``) as a task ``ParallelEnv``.

Task dims: ``n_walkers``, ``terrain_length``, ``hardcore``, ``position_noise``,
``angle_noise`` (see `MultiwalkerTaskEnv`). The shared machinery is
`openended.envs.multiagent.base.TaskParallelEnv`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pettingzoo import ParallelEnv
from pydantic import Field, model_validator

from openended.envs.multiagent.base import (
    ParallelEnvConfig,
    TaskParallelEnv,
    check_default,
    check_range,
    default_count,
)
from openended.errors import DependencyNotInstalled
from openended.validation import config_or_kwargs

__all__ = ["MultiwalkerConfig", "MultiwalkerTaskEnv"]


class MultiwalkerConfig(ParallelEnvConfig):
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
        check_range(self.min_walkers, self.max_walkers, "walkers")
        check_range(self.min_terrain_length, self.max_terrain_length, "terrain_length")
        check_default(self, "walkers")
        return self


class MultiwalkerTaskEnv(TaskParallelEnv[MultiwalkerConfig, int]):
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
        cfg = config_or_kwargs(MultiwalkerConfig, config, kwargs, "env.multiwalker")
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
        c = self.config
        return {
            "n_walkers": (c.min_walkers, c.max_walkers, default_count(c, "walkers", 3)),
            "terrain_length": (c.min_terrain_length, c.max_terrain_length, c.max_terrain_length),
            "hardcore": (0, 1 if c.allow_hardcore else 0, 0),
            "position_noise": (0.0, c.max_position_noise, min(1e-3, c.max_position_noise)),
            "angle_noise": (0.0, c.max_angle_noise, min(1e-3, c.max_angle_noise)),
        }

    def _structure(self, p: dict[str, Any]) -> int:
        return p["n_walkers"]

    def _max_structure(self) -> int:
        return self.config.max_walkers

    def _build(self, structure: int) -> ParallelEnv:
        c = self.config
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
