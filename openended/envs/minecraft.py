"""Minecraft tasks (MineDojo) as a curriculum family, acted on in VPT's action space.

The task space is a catalogue of MineDojo task ids, each with its text prompt, so both
ALP-style teachers (``space: discrete``: the ids) and text teachers (``space: text``: the
prompts) work. Each episode runs one task; success is MineDojo's own programmatic check
(``is_successful`` after each step). The agent acts like VPT (20 buttons + an 11 x 11 camera
grid; `openended.envs.minecraft_actions`) and sees VPT's input: an RGB frame (128 x 128 by
default, height x width x 3) plus inventory quantities, life stats and the task index.

Backends: ``minedojo`` (the real simulator; imported lazily, needs Java 8 and downloads
Minecraft at its first reset) or ``fake`` (`FakeMineDojoTask`: MineDojo's spec, a toy world,
for tests and wiring checks). What was run where is in docs/minecraft.md.

Catalogues: ``sample`` — a fixed list of MineDojo programmatic task ids (harvest, combat,
tech tree) with prompts written here, usable without MineDojo; ``programmatic`` /
``creative`` — MineDojo's own catalogues and prompts (``minedojo.tasks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from typing_extensions import override

from openended.envs.base import TaskEnvMixin
from openended.envs.minecraft_actions import VPT_BUTTONS, VPT_CAMERA_BINS, VPTToMineDojo
from openended.errors import ConfigError, DependencyNotInstalled, TaskNotInSpace
from openended.tasks import Discrete, Task, TextSpace

__all__ = ["SAMPLE_TASKS", "load_catalogue", "MinecraftTaskEnv", "INSTALL_HINT"]

INSTALL_HINT = (
    "the minecraft family's 'minedojo' backend needs MineDojo (pip install minedojo; it needs a Java 8 "
    "JDK and downloads Minecraft at the first reset, see docs/minecraft.md); use backend: fake to test the wiring"
)

#: MineDojo programmatic task ids with a prompt each (MineDojo's own prompts replace these
#: when ``catalogue`` is ``programmatic``). Harvest counts follow MineDojo's naming.
SAMPLE_TASKS: dict[str, str] = {
    "harvest_1_log": "obtain a log",
    "harvest_1_dirt": "obtain dirt",
    "harvest_1_milk": "obtain a bucket of milk",
    "harvest_8_log": "obtain 8 logs",
    "harvest_1_wool": "obtain wool",
    "harvest_1_cobblestone": "obtain cobblestone",
    "harvest_1_iron_ingot": "obtain an iron ingot",
    "harvest_1_paper": "obtain paper",
    "combat_cow_forest_barehand": "hunt a cow in the forest with bare hands",
    "combat_zombie_forest_leather_armors_wooden_sword_shield": "combat a zombie in the forest",
    "combat_spider_plains_leather_armors_diamond_sword_shield": "combat a spider in the plains",
    "techtree_from_barehand_to_wooden_sword": "craft a wooden sword starting with bare hands",
    "techtree_from_barehand_to_stone_sword": "craft a stone sword starting with bare hands",
    "techtree_from_wood_to_wooden_pickaxe": "craft a wooden pickaxe starting with wood",
}


def load_catalogue(name: str) -> dict[str, str]:
    """``{task id: prompt}`` of a catalogue: ``sample`` here, or MineDojo's ``programmatic`` / ``creative``."""
    if name == "sample":
        return dict(SAMPLE_TASKS)
    if name not in ("programmatic", "creative"):
        raise ConfigError(f"env.minecraft.catalogue: must be 'sample', 'programmatic' or 'creative', got {name!r}")
    try:
        import minedojo.tasks as md_tasks  # optional: not installable here
    except ImportError as e:
        raise DependencyNotInstalled(f"catalogue {name!r}: {INSTALL_HINT}") from e
    table = (
        md_tasks.ALL_PROGRAMMATIC_TASK_INSTRUCTIONS
        if name == "programmatic"
        else md_tasks.ALL_CREATIVE_TASK_INSTRUCTIONS
    )
    return {str(k): str(v[0]) for k, v in table.items()}


def _minedojo_backend(task_id: str, image_size: tuple[int, int], seed: int, world_seed: int) -> Any:
    try:
        import minedojo  # optional: not installable here
    except ImportError as e:
        raise DependencyNotInstalled(INSTALL_HINT) from e
    return minedojo.make(task_id=task_id, image_size=image_size, seed=seed, world_seed=world_seed)


class MinecraftTaskEnv(TaskEnvMixin, gym.Env):
    """One MineDojo task per episode, in VPT's action space; ``set_task`` applies at the next reset.

    Observation: ``{"pov": uint8 (H, W, 3), "inventory": float32 (36,), "life": float32 (3,),
    "task": task index}``. Action: ``MultiDiscrete([2] * 20 + [11, 11])`` — VPT's buttons, then
    its camera pitch and yaw bins. Reward: MineDojo's task reward.

    Args:
        catalogue: ``sample``, ``programmatic`` or ``creative`` (see `load_catalogue`).
        tasks: task ids to keep from the catalogue (default: all of it).
        space: ``discrete`` (task ids) or ``text`` (their prompts).
        backend: ``minedojo`` or ``fake``; or a callable ``(task_id, image_size, seed,
            world_seed) -> env`` with MineDojo's interface.
        image_size: (height, width) of the frames MineDojo renders (VPT: 128 x 128).
        max_episode_steps: step limit per episode (truncation).
        seed, world_seed: MineDojo's seeds (an episode's ``reset(seed=...)`` replaces ``seed``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        catalogue: str = "sample",
        tasks: Sequence[str] | None = None,
        space: Literal["discrete", "text"] = "discrete",
        backend: str | Callable[..., Any] = "minedojo",
        image_size: Sequence[int] = (128, 128),
        max_episode_steps: int = 1000,
        seed: int = 0,
        world_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        table = load_catalogue(catalogue)
        if tasks is not None:
            unknown = [t for t in tasks if t not in table]
            if unknown:
                raise ConfigError(f"env.minecraft.tasks: {unknown[:3]} not in the {catalogue!r} catalogue")
            table = {t: table[t] for t in tasks}
        if not table:
            raise ConfigError("env.minecraft.tasks: needs at least one task")
        if len(image_size) != 2 or min(int(x) for x in image_size) < 16:
            raise ConfigError(f"env.minecraft.image_size: (height, width), each >= 16, got {image_size!r}")
        if max_episode_steps < 1:
            raise ConfigError(f"env.minecraft.max_episode_steps: must be >= 1, got {max_episode_steps}")
        if callable(backend):
            self._make_backend: Callable[..., Any] = backend
        elif backend == "fake":
            from openended.envs.minedojo_fake import FakeMineDojoTask

            self._make_backend = lambda task_id, image_size, seed, world_seed: FakeMineDojoTask(
                task_id, image_size, seed, world_seed, prompt=table.get(task_id)
            )
        elif backend == "minedojo":
            import importlib.util

            if importlib.util.find_spec("minedojo") is None:  # say so now, not at the first reset
                raise DependencyNotInstalled(INSTALL_HINT)
            self._make_backend = _minedojo_backend
        else:
            raise ConfigError(f"env.minecraft.backend: must be 'minedojo', 'fake' or a callable, got {backend!r}")
        self._ids = list(table)
        self._prompt_to_id = {p: i for i, p in table.items()}
        if space == "discrete":
            self._space: Discrete | TextSpace = Discrete(self._ids, name="minecraft")
            self._default_task = self._space.task(self._ids[0])
        elif space == "text":
            self._space = TextSpace(list(table.values()), name="minecraft")
            self._default_task = self._space.task(table[self._ids[0]], origin="seed")
        else:
            raise ConfigError(f"env.minecraft.space: must be 'discrete' or 'text', got {space!r}")
        self._table = table
        self.render_mode = render_mode
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._max_steps = int(max_episode_steps)
        self._seed, self._world_seed = int(seed), int(world_seed)
        self._sim: Any = None
        self._sim_task: str | None = None
        self._convert = VPTToMineDojo()
        self._steps = 0
        self._frame: np.ndarray | None = None
        h, w = self._image_size
        self.observation_space = spaces.Dict(
            {
                "pov": spaces.Box(0, 255, (h, w, 3), np.uint8),
                "inventory": spaces.Box(0.0, np.inf, (36,), np.float32),
                "life": spaces.Box(0.0, np.inf, (3,), np.float32),
                "task": spaces.Discrete(len(self._ids)),
            }
        )
        self.action_space = spaces.MultiDiscrete([2] * len(VPT_BUTTONS) + [VPT_CAMERA_BINS] * 2)

    # --------------------------------------------------------------- tasks
    def _task_id(self, task: Task) -> str:
        if isinstance(self._space, Discrete):
            return str(task.params[0])
        task_id = self._prompt_to_id.get(task.text or "")
        if task_id is None:
            raise TaskNotInSpace(
                f"MinecraftTaskEnv: no MineDojo task has the prompt {(task.text or '')[:60]!r}; "
                "a text task must be one of the catalogue's prompts"
            )
        return task_id

    @override
    def set_task(self, task: Task | Any) -> None:
        """Queue ``task`` for the next reset; a text task must be one of the catalogue's prompts."""
        super().set_task(task)
        if self._pending_task is not None:
            try:
                self._task_id(self._pending_task)
            except TaskNotInSpace:
                self._pending_task = None
                raise

    # --------------------------------------------------------------- gymnasium
    def _obs(self, raw: dict[str, Any]) -> dict[str, Any]:
        frame = np.ascontiguousarray(np.transpose(np.asarray(raw["rgb"], dtype=np.uint8), (1, 2, 0)))
        self._frame = frame
        life = raw.get("life_stats", {})
        return {
            "pov": frame,
            "inventory": np.asarray(raw["inventory"]["quantity"], dtype=np.float32).reshape(36),
            "life": np.array(
                [float(np.asarray(life.get(k, [0.0])).reshape(-1)[0]) for k in ("life", "food", "oxygen")],
                dtype=np.float32,
            ),
            "task": np.int64(self._ids.index(self._sim_task)) if self._sim_task is not None else np.int64(0),
        }

    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        task_id = self._task_id(task)
        if seed is not None:
            self._seed = int(seed)
        if self._sim is None or task_id != self._sim_task or seed is not None:
            # MineDojo builds one simulator per task (a Java process): swap only on a change.
            self.close()
            self._sim = self._make_backend(task_id, self._image_size, self._seed, self._world_seed)
            self._sim_task = task_id
        self._convert.reset()
        self._steps = 0
        raw = self._sim.reset()
        return self._obs(raw), {"task_id": task.id, "task": self._table[task_id]}

    @override
    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self._sim is None:
            raise gym.error.ResetNeeded("MinecraftTaskEnv: call reset() before step()")
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape != (len(VPT_BUTTONS) + 2,):
            raise ValueError(f"MinecraftTaskEnv: actions have {len(VPT_BUTTONS) + 2} parts, got {a.shape}")
        raw, reward, done, _ = self._sim.step(self._convert(a[: len(VPT_BUTTONS)], a[len(VPT_BUTTONS) :]))
        self._steps += 1
        success = bool(getattr(self._sim, "is_successful", False))
        obs = self._obs(raw)
        terminated = bool(success or obs["life"][0] <= 0.0)
        truncated = bool(not terminated and (done or self._steps >= self._max_steps))
        info: dict[str, Any] = {"task_id": self._current_task.id if self._current_task else None}
        if terminated or truncated:
            info["success"] = success
        return obs, float(reward), terminated, truncated, info

    @override
    def render(self) -> np.ndarray | None:  # type: ignore[override]  # gymnasium types render's return loosely
        return self._frame

    @override
    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim, self._sim_task = None, None
