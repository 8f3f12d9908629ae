"""MiniGrid (Farama ``minigrid`` 3.2) as task families: parameterised mazes, seeded levels, named tasks.

Contents:
    MiniGridMazeEnv    -- family ``minigrid_maze``: a ``Box`` task space over
                          ``(size, wall_density, goal_distance)`` (the UED testbed of PLR,
                          ACCEL, minimax); the layout comes from the task and a level seed
                          drawn from the env's seeded generator (`minigrid_mazes.generate_maze`).
    MiniGridLevelsEnv  -- family ``minigrid_levels``: ``Discrete`` over seeded level ids
                          ``0..num_levels-1`` (PLR's space); a level fixes parameters and layout.
    MiniGridTasksEnv   -- family ``minigrid_tasks``: ``Discrete`` over registered MiniGrid
                          tasks (DoorKey, KeyCorridor, MultiRoom, LavaCrossing, Unlock, ...),
                          the sizes part of the task value; a lifelong-learning scenario.
    encode_observation -- the flat float32 observation all three share.

Observations. One flat ``float32`` vector RLlib's PPO trains on with its default MLP:
the agent's ``view x view x 3`` MiniGrid encoding (object type / 10, colour / 5, state / 2,
so every entry is in [0, 1]) followed by a one-hot of the agent's direction (4), 151 values
for the default 7x7 view. The mission string is left out (every maze has the same one; a
task family's mission is implied by the task). Actions: MiniGrid's 7 discrete actions.

Success. ``info["success"]`` at episode end is MiniGrid's own criterion: the episode
terminated with a positive reward (goal reached, door unlocked); lava, time-outs and
unsolvable mazes are failures. Rewards are MiniGrid's ``1 - 0.9 * steps / max_steps``.

Held-out tasks. ``test_tasks()`` lists tasks the teacher never sees, which ``set_task``
also accepts and the evaluation path (``evaluation.test_set: held_out``) runs with fixed
seeds. For mazes: the hand-drawn `HARD_MAZES` (labyrinth, four rooms, zig-zag, nine rooms,
perfect maze) plus ``num_test_levels`` seeded levels from a disjoint seed range; for
named tasks, every task of the family.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import override

from openended.envs.base import TaskEnvMixin, episode_outcome
from openended.envs.minigrid_mazes import (
    FRAME,
    HARD_MAZES,
    MAX_WALL_DENSITY,
    MIN_SIZE,
    MazeLayout,
    flip_walls,
    generate_maze,
    level_params,
    shortest_path,
)
from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome, Task, TaskSpace
from openended.validation import config_or_kwargs

__all__ = [
    "MiniGridMazeConfig",
    "MiniGridTasksConfig",
    "MiniGridMazeEnv",
    "MiniGridLevelsEnv",
    "MiniGridTasksEnv",
    "DEFAULT_TASKS",
    "encode_observation",
    "observation_space",
]

#: The named-task family's default tasks, roughly easiest first (MiniGrid ids without "MiniGrid-" / "-v0").
DEFAULT_TASKS: tuple[str, ...] = (
    "Empty-5x5",
    "DoorKey-5x5",
    "Unlock",
    "LavaGapS5",
    "SimpleCrossingS9N1",
    "DoorKey-6x6",
    "LavaCrossingS9N1",
    "MultiRoom-N2-S4",
    "KeyCorridorS3R1",
    "DoorKey-8x8",
)
_SCALE = np.array([10.0, 5.0, 2.0], dtype=np.float32)  # MiniGrid's largest object, colour and state indices


def observation_space(view: int) -> gym.spaces.Box:
    """The flat observation of a ``view x view`` agent view (module docstring)."""
    return gym.spaces.Box(0.0, 1.0, (view * view * 3 + 4,), np.float32)


def encode_observation(obs: dict[str, Any], out: np.ndarray) -> np.ndarray:
    """MiniGrid's dict observation as the flat float32 vector, written into ``out`` (returned)."""
    image = obs["image"]
    n = image.size
    np.divide(image.reshape(-1, 3), _SCALE, out=out[:n].reshape(-1, 3))
    out[n:] = 0.0
    out[n + int(obs["direction"])] = 1.0
    return out


# ------------------------------------------------------------------------------ configs
class MiniGridMazeConfig(BaseModel):
    """Options of the maze families (``minigrid_maze``, ``minigrid_levels``)."""

    model_config = ConfigDict(extra="forbid")

    frame: int = Field(
        FRAME, ge=7, le=25, description="Side of the square grid every maze is drawn in (walls included)."
    )
    agent_view_size: int = Field(7, ge=3, le=15, description="Side of the agent's egocentric view (odd).")
    max_episode_steps: int = Field(250, ge=1, le=100_000, description="Steps before an episode is truncated.")
    num_levels: int = Field(200, ge=1, le=10**6, description="minigrid_levels: training level ids 0..num_levels-1.")
    test_start_level: int = Field(
        1_000_000, ge=0, description="First seed of the held-out levels (disjoint from the training ids)."
    )
    num_test_levels: int = Field(
        20, ge=0, le=10_000, description="Seeded held-out levels besides the hand-drawn mazes."
    )
    hard_mazes: bool = Field(True, description="Include the hand-drawn HARD_MAZES in the held-out tasks.")
    wall_edits: int = Field(
        0,
        ge=0,
        le=64,
        description="minigrid_maze: edit slots (walls ACCEL can add or remove); >0 adds layout_seed and edit_* dims.",
    )
    num_layouts: int = Field(
        10_000, ge=1, le=2**31 - 1, description="minigrid_maze with wall_edits: layout_seed is in -1..num_layouts-1."
    )

    @field_validator("agent_view_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd (MiniGrid centres the agent), got {v}")
        return v


class MiniGridTasksConfig(BaseModel):
    """Options of the named-task family (``minigrid_tasks``)."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        list(DEFAULT_TASKS), min_length=1, description="Registered MiniGrid ids without 'MiniGrid-' and '-v0'."
    )
    agent_view_size: int = Field(7, ge=3, le=15, description="Side of the agent's egocentric view (odd).")
    max_episode_steps: int | None = Field(None, ge=1, description="Override every task's own step limit.")

    @field_validator("tasks")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        import minigrid  # noqa: F401  # registers the MiniGrid-* ids with gymnasium

        missing = [n for n in names if _gym_id(n) not in gym.registry]
        if missing:
            known = sorted(k[9:-3] for k in gym.registry if k.startswith("MiniGrid-") and k.endswith("-v0"))
            raise ValueError(f"unknown MiniGrid task(s) {missing}; registered: {', '.join(known)}")
        if len(set(names)) != len(names):
            raise ValueError("tasks must be unique")
        return names


def _gym_id(name: str) -> str:
    return f"MiniGrid-{name}-v0"


# ----------------------------------------------------------------------------- the base
class _GridTaskEnv(TaskEnvMixin, gym.Env):
    """What the families share: the flat observation, episode bookkeeping, success and outcomes."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}
    _test: Discrete | None = None

    def __init__(self, view: int) -> None:
        self.observation_space = observation_space(view)
        self.action_space = gym.spaces.Discrete(7)
        self._inner: Any = None
        self._buf = np.zeros(self.observation_space.shape, dtype=np.float32)
        self._ret, self._len, self._done = 0.0, 0, True
        self.last_outcome: Outcome | None = None

    def _start(self, task: Task, seed: int) -> tuple[Any, dict]:
        """Start the episode of ``task`` with level seed ``seed``: the MiniGrid env to step, its first observation."""
        raise NotImplementedError

    def _info(self, task: Task) -> dict[str, Any]:
        return {"task_id": task.id}

    @override
    def set_task(self, task: Task | Any) -> None:
        test = self._test
        if test is not None and isinstance(task, Task) and test.contains(task):
            self._pending_task = task  # a held-out task: accepted for evaluation, never sampled
            return
        super().set_task(task)

    def test_tasks(self) -> list[Task]:
        """Held-out tasks (module docstring): never in `task_space`, accepted by `set_task`."""
        return [] if self._test is None else list(self._test.all_tasks)

    def test_task_space(self) -> Discrete | None:
        """The held-out tasks as a space (``None`` if there are none)."""
        return self._test

    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        self._inner, obs = self._start(task, int(self.np_random.integers(2**31 - 1)))
        self._ret, self._len, self._done = 0.0, 0, False
        return encode_observation(obs, self._buf).copy(), self._info(task)

    @override
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done:
            raise ResetNeeded(f"{type(self).__name__}: the episode has ended; call reset() before step()")
        task = self._running_task()
        obs, reward, terminated, truncated, _ = self._inner.step(int(action))
        r = float(reward)
        self._ret += r
        self._len += 1
        info = self._info(task)
        if terminated or truncated:
            self._done = True
            success = bool(terminated and r > 0.0)
            info.update(success=success, episode_return=self._ret, episode_length=self._len)
            self.last_outcome = episode_outcome(task, self._ret, self._len, success=success)
        return encode_observation(obs, self._buf).copy(), r, bool(terminated), bool(truncated), info

    @override
    def render(self) -> np.ndarray | None:  # type: ignore[override]  # gymnasium's return type is an unbound TypeVar
        return None if self._inner is None else self._inner.get_frame(highlight=True, tile_size=16)


# ------------------------------------------------------------------------------- mazes
def _maze_env_class() -> type:
    """The MiniGrid env that draws a given `MazeLayout` (built lazily: importing minigrid loads pygame)."""
    from minigrid.core.grid import Grid
    from minigrid.core.mission import MissionSpace
    from minigrid.core.world_object import Goal, Wall
    from minigrid.minigrid_env import MiniGridEnv

    class LayoutEnv(MiniGridEnv):
        """Draws ``self.layout`` at every reset."""

        def __init__(self, frame: int, view: int, max_steps: int) -> None:
            super().__init__(
                mission_space=MissionSpace(mission_func=lambda: "get to the green goal square"),
                grid_size=frame,
                max_steps=max_steps,
                agent_view_size=view,
                see_through_walls=False,
            )
            self.layout: MazeLayout | None = None

        def _gen_grid(self, width: int, height: int) -> None:
            lay = self.layout
            assert lay is not None, "set layout before reset"
            self.grid = Grid(width, height)
            wall = Wall()  # one shared object: walls are immutable
            # SPEEDUP: Grid keeps a flat row-major list (index y * width + x), the order of
            # walls.ravel(); filling it at once is ~5x cheaper than a Grid.set per wall.
            self.grid.grid = [wall if w else None for w in lay.walls.ravel().tolist()]
            self.put_obj(Goal(), *lay.goal)
            self.agent_pos = lay.start
            self.agent_dir = lay.start_dir
            self.mission = "get to the green goal square"

    return LayoutEnv


class MiniGridMazeEnv(_GridTaskEnv):
    """Mazes with task parameters: ``Box`` over ``(size, wall_density, goal_distance)``.

    A task is a distribution of layouts: each episode draws a level seed from the env's
    seeded generator, and ``generate_maze(*task.params, seed)`` builds the maze (so the same
    ``reset(seed=...)`` and task give the same maze). ``info`` reports ``solvable`` and
    ``shortest_path`` (-1 if unsolvable) of the running maze at reset.

    Example:
        >>> env = MiniGridMazeEnv(frame=9)
        >>> env.set_task(env.task_space().task([7, 0.1, 1.0]))
        >>> obs, info = env.reset(seed=0); obs.shape, info["solvable"]
        ((151,), True)
        >>> env.close()
    """

    _space: TaskSpace

    def __init__(self, config: MiniGridMazeConfig | None = None, **kwargs: Any) -> None:
        self.config = config_or_kwargs(MiniGridMazeConfig, config, kwargs, f"env.{self.family}")
        cfg = self.config
        super().__init__(cfg.agent_view_size)
        self._space = self._train_space()
        held: list[str] = [f"hard:{n}" for n in HARD_MAZES if cfg.hard_mazes and HARD_MAZES[n].frame <= cfg.frame]
        held += [f"level:{s}" for s in range(cfg.test_start_level, cfg.test_start_level + cfg.num_test_levels)]
        if cfg.test_start_level < cfg.num_levels and cfg.num_test_levels:
            raise ConfigError(
                f"env.{self.family}.test_start_level: held-out seeds must not overlap training levels "
                f"0..{cfg.num_levels - 1}; set it to {cfg.num_levels} or more"
            )
        self._test = Discrete(held, name=f"minigrid/maze{cfg.frame}/test") if held else None
        self._maze_env = _maze_env_class()(cfg.frame, cfg.agent_view_size, cfg.max_episode_steps)
        self.layout: MazeLayout | None = None

    family = "minigrid_maze"

    def _train_space(self) -> TaskSpace:
        cfg = self.config
        f, k = cfg.frame, cfg.wall_edits
        low, high = [MIN_SIZE, 0.0, 0.0], [f, MAX_WALL_DENSITY, 1.0]
        names = ["size", "wall_density", "goal_distance"]
        if k:  # editable levels (minigrid_mazes, "Edits"): a fixed layout plus wall flips
            low += [-1.0] * (1 + k)
            high += [cfg.num_layouts - 1] + [(f - 2) ** 2 - 1] * k
            names += ["layout_seed"] + [f"edit_{i}" for i in range(k)]
        name = f"minigrid/maze{f}" if not k else f"minigrid/maze{f}/edits{k}"
        return Box(low, high, names=tuple(names), name=name)

    def layout_of(self, task: Task, seed: int) -> MazeLayout:
        """The layout ``task`` gets with level seed ``seed`` (a held-out or level task ignores the seed)."""
        value = task.params[0]
        frame = self.config.frame
        if isinstance(value, str):  # held-out: "hard:<name>" or "level:<seed>"
            kind, _, rest = value.partition(":")
            if kind == "hard":
                return _embed(HARD_MAZES[rest], frame)
            return generate_maze(*level_params(int(rest), frame), seed=int(rest), frame=frame)
        if len(task.params) == 1:  # a seeded level id (minigrid_levels)
            return generate_maze(*level_params(int(value), frame), seed=int(value), frame=frame)
        size, density, dist = (float(p) for p in task.params[:3])
        if len(task.params) == 3:
            return generate_maze(size, density, dist, seed=seed, frame=frame)
        layout_seed = int(np.floor(float(task.params[3]) + 0.5))
        layout = generate_maze(size, density, dist, seed=seed if layout_seed < 0 else layout_seed, frame=frame)
        flips = [c for c in (int(np.floor(float(p) + 0.5)) for p in task.params[4:]) if c >= 0]
        return flip_walls(layout, flips)

    @override
    def _start(self, task: Task, seed: int) -> tuple[Any, dict]:
        self.layout = self.layout_of(task, seed)
        env = self._maze_env
        env.layout = self.layout
        return env, env.reset(seed=seed)[0]

    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = super().reset(seed=seed, options=options)
        assert self.layout is not None
        path = shortest_path(self.layout)
        info.update(solvable=path is not None, shortest_path=-1 if path is None else path)  # -1: vector infos need ints
        return obs, info

    @override
    def close(self) -> None:
        self._maze_env.close()
        super().close()


class MiniGridLevelsEnv(MiniGridMazeEnv):
    """Seeded maze levels: ``Discrete`` over ids ``0..num_levels-1`` (PLR's level space).

    Level ``i`` is ``generate_maze(*level_params(i), seed=i)``: parameters uniform over the
    maze Box, one fixed layout per id, whatever the episode's seed.
    """

    family = "minigrid_levels"

    @override
    def _train_space(self) -> TaskSpace:
        return Discrete(range(self.config.num_levels), name=f"minigrid/maze{self.config.frame}/levels")


def _embed(layout: MazeLayout, frame: int) -> MazeLayout:
    """``layout`` drawn top-left in a larger ``frame`` (the rest walls)."""
    if layout.frame == frame:
        return layout
    walls = np.ones((frame, frame), dtype=bool)
    walls[: layout.frame, : layout.frame] = layout.walls
    return MazeLayout(walls, layout.start, layout.start_dir, layout.goal, layout.size, layout.name)


# ------------------------------------------------------------------------- named tasks
class MiniGridTasksEnv(_GridTaskEnv):
    """Registered MiniGrid tasks as a ``Discrete`` family (values like ``"DoorKey-5x5"``).

    One upstream env per task, built on first use and kept; the episode's level seed comes
    from this env's seeded generator, so ``reset(seed=...)`` and a task fix the level.

    Example:
        >>> env = MiniGridTasksEnv(tasks=["Empty-5x5", "DoorKey-5x5"])
        >>> env.set_task(env.task_space().task("DoorKey-5x5"))
        >>> obs, info = env.reset(seed=0); obs.shape
        (151,)
        >>> env.close()
    """

    def __init__(self, config: MiniGridTasksConfig | None = None, **kwargs: Any) -> None:
        self.config = config_or_kwargs(MiniGridTasksConfig, config, kwargs, "env.minigrid_tasks")
        super().__init__(self.config.agent_view_size)
        self._space = Discrete(self.config.tasks, name="minigrid/tasks")
        self._test = Discrete(self.config.tasks, name="minigrid/tasks/test")
        self._envs: dict[str, Any] = {}

    def _env_for(self, name: str) -> Any:
        env = self._envs.get(name)
        if env is None:
            import minigrid  # noqa: F401  # registers the MiniGrid-* ids

            kwargs: dict[str, Any] = {"agent_view_size": self.config.agent_view_size}
            if self.config.max_episode_steps is not None:
                kwargs["max_steps"] = self.config.max_episode_steps
            env = self._envs[name] = gym.make(_gym_id(name), **kwargs).unwrapped
        return env

    @override
    def _start(self, task: Task, seed: int) -> tuple[Any, dict]:
        env = self._env_for(str(task.params[0]))
        return env, env.reset(seed=seed)[0]

    @override
    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        super().close()
