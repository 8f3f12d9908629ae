"""A stand-in for a MineDojo task env with the same observation and action spec, for tests.

MineDojo needs Java 8 and downloads Minecraft at its first reset, neither of which exists on
the machines this project is tested on. `FakeMineDojoTask` mirrors what the adapter
(`openended.envs.minecraft`) uses of ``minedojo.make(task_id, image_size, seed, world_seed)``:

* ``reset() -> obs`` and ``step(action) -> (obs, reward, done, info)`` (gym 0.21's API);
* ``obs["rgb"]`` uint8 ``(3, H, W)``; ``obs["inventory"]["name"]`` / ``["quantity"]`` over 36
  slots; ``obs["life_stats"]`` (``life``, ``food``, ``oxygen``); ``obs["location_stats"]``
  (``pos``, ``pitch``, ``yaw``); ``obs["voxels"]["block_name"]`` ``(3, 3, 3)``;
* the action is the 8-part ``MultiDiscrete([3, 3, 4, 25, 25, 8, 244, 36])``;
* ``is_successful`` (MineDojo's task check, read after each step), ``task_prompt``,
  ``is_terminated``-style episode end after ``episode_len`` steps or at zero life.

Its world is a toy, not Minecraft: attacking while looking roughly level yields the
harvest target with a fixed probability, combat tasks count hits, tech-tree tasks count
craft actions. That is enough for a random or learning policy to succeed sometimes, so
success, reward and task plumbing can be tested end to end. Nothing here claims Minecraft
behaviour.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["FakeMineDojoTask"]

_HARVEST = re.compile(r"^harvest_(?:(\d+)_)?([a-z_]+?)(?:_with_.*)?$")


class FakeMineDojoTask:
    """One MineDojo-like task env; see the module docstring for what is and is not faithful."""

    def __init__(
        self,
        task_id: str,
        image_size: tuple[int, int] = (64, 64),
        seed: int = 0,
        world_seed: int = 0,
        episode_len: int = 200,
        prompt: str | None = None,
        p_yield: float = 0.15,
    ) -> None:
        self.task_id = task_id
        self.task_prompt = prompt or task_id.replace("_", " ")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.episode_len = int(episode_len)
        self.p_yield = float(p_yield)
        self._rng = np.random.default_rng([int(seed), int(world_seed)])
        m = _HARVEST.match(task_id)
        if task_id.startswith("harvest") and m:
            self._goal = ("harvest", m.group(2), int(m.group(1) or 1))
        elif task_id.startswith("combat"):
            self._goal = ("combat", task_id.split("_")[1], 3)
        elif task_id.startswith("techtree"):
            self._goal = ("craft", task_id.rsplit("_to_", 1)[-1], 4)
        else:  # creative / survival: open-ended, no programmatic check
            self._goal = ("open", "", 0)
        self._is_successful = False
        self._reset_state()

    @property
    def is_successful(self) -> bool:
        """MineDojo's task check after the last step."""
        return self._is_successful

    def _reset_state(self) -> None:
        self._t = 0
        self._pitch = 0.0
        self._yaw = 0.0
        self._pos = np.zeros(3)
        self._life = 20.0
        self._progress = 0
        self._names = np.array(["air"] * 36, dtype=object)
        self._qty = np.zeros(36, dtype=np.float32)

    def reset(self) -> dict[str, Any]:
        """A new episode (MineDojo: obs only)."""
        self._reset_state()
        self._is_successful = False
        return self._obs()

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, dict[str, Any]]:
        """One step of the 8-part MultiDiscrete action (gym 0.21's 4-tuple)."""
        a = np.asarray(action, dtype=np.int64)
        if a.shape != (8,):
            raise ValueError(f"MineDojo actions have 8 parts, got shape {a.shape}")
        self._t += 1
        self._pitch = float(np.clip(self._pitch + (a[3] - 12) * 15.0, -90.0, 90.0))
        self._yaw = float((self._yaw + (a[4] - 12) * 15.0) % 360.0)
        heading = np.deg2rad(self._yaw)
        self._pos += (1.0 if a[0] == 1 else -1.0 if a[0] == 2 else 0.0) * np.array(
            [np.sin(heading), 0.0, np.cos(heading)]
        )
        kind, target, need = self._goal
        before = self._progress
        if kind == "harvest" and a[5] == 3 and abs(self._pitch) <= 45.0 and self._rng.random() < self.p_yield:
            self._progress += 1
            self._names[0], self._qty[0] = target, float(self._progress)
        elif kind == "combat" and a[5] == 3 and self._rng.random() < self.p_yield:
            self._progress += 1
        elif kind == "craft" and a[5] == 4:
            self._progress += 1
        if self._rng.random() < 0.002:  # the world is not safe
            self._life = 0.0
        self._is_successful = kind != "open" and self._progress >= need
        reward = float(self._progress > before) / max(need, 1)
        done = self._is_successful or self._life <= 0.0 or self._t >= self.episode_len
        return self._obs(), reward, done, {"elapsed_steps": self._t}

    def _obs(self) -> dict[str, Any]:
        h, w = self.image_size
        shade = np.uint8(int(self._yaw) % 256)
        rgb = np.empty((3, h, w), dtype=np.uint8)
        rgb[0], rgb[1], rgb[2] = shade, np.uint8(int(self._pitch + 90) % 256), np.uint8(self._progress * 40 % 256)
        blocks = np.full((3, 3, 3), "dirt", dtype=object)
        blocks[:, 2, :] = "air"
        return {
            "rgb": rgb,
            "inventory": {"name": self._names.copy(), "quantity": self._qty.copy()},
            "life_stats": {"life": np.array([self._life]), "food": np.array([20.0]), "oxygen": np.array([300.0])},
            "location_stats": {
                "pos": self._pos.copy(),
                "pitch": np.array([self._pitch]),
                "yaw": np.array([self._yaw]),
            },
            "voxels": {"block_name": blocks},
        }

    def close(self) -> None:
        """Nothing to release (MineDojo stops its Java process here)."""
