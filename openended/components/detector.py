"""Task-change detection from experience alone (the scenario need not announce the change).

`TaskChangeDetector` watches a per-episode feature vector -- the episode return and the
episode's first observation (flattened; averaged into ``obs_bins`` bins when it is
longer) -- and never reads task ids. It keeps the last
``2 * window`` episodes; when the newer half differs from the older half by more than
``threshold`` standard errors in any feature (a two-window Welch z statistic), it
publishes a `TaskChange` (``announced=False``) on the bus and starts a fresh reference.
Components that react to a change (EWC's consolidation, a replay's table switch)
subscribe to `TASK_CHANGE` instead of calling it.

During evaluation blocks the host hides returns, so only the observation feature is used.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from openended.components.base import Component, ComponentConfig, HiddenOutcome, Placement
from openended.components.bus import TASK_CHANGE, TaskChange
from openended.tasks import Outcome

__all__ = ["TaskChangeDetector", "TaskChangeDetectorConfig"]


class TaskChangeDetectorConfig(ComponentConfig):
    """How sensitive the detector is."""

    window: int = Field(20, ge=2, description="Episodes per comparison window (two windows are compared).")
    threshold: float = Field(6.0, gt=0, description="z statistic (any feature) that counts as a change.")
    min_std: float = Field(1e-3, gt=0, description="Floor of a window's standard deviation (constant features).")
    obs_bins: int = Field(16, ge=1, description="The first observation is averaged into at most this many features.")


class TaskChangeDetector(Component):
    """Publishes `TASK_CHANGE` when the episode statistics shift (module doc)."""

    placement = Placement.ENV_RUNNER
    provides: ClassVar[tuple[str, ...]] = ("task_change",)
    Config = TaskChangeDetectorConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._first_obs: dict[int, list[float]] = {}
        self._history: deque[list[float]] = deque(maxlen=2 * self.config.window)
        self.episodes = 0
        self.detections: list[int] = []

    def on_episode_start(self, *, env_index: int, task: Any, **kw: Any) -> None:
        """Remember the first observation's features (the task is not looked at)."""
        obs = kw.get("obs")
        flat = np.asarray(obs if obs is not None else [0.0], dtype=np.float64).ravel()
        bins = min(self.config.obs_bins, flat.size)
        self._first_obs[env_index] = [float(c.mean()) for c in np.array_split(flat, bins)]

    def on_episode_end(self, *, env_index: int, outcome: Outcome | HiddenOutcome, **kw: Any) -> None:
        """Add the episode's features; test for a change."""
        self.episodes += 1
        ret = float("nan") if isinstance(outcome, HiddenOutcome) else outcome.episode_return
        obs = self._first_obs.get(env_index, [0.0])
        if self._history and len(self._history[-1]) != 1 + len(obs):
            self._history.clear()  # another observation shape: start again
        self._history.append([ret, *obs])
        score = self._score()
        if score is not None and score > self.config.threshold:
            self.detections.append(self.episodes)
            self._history.clear()
            if self.bus is not None:
                self.bus.publish(
                    TASK_CHANGE, TaskChange(source="task_change_detector", episode=self.episodes, score=score)
                )

    def _score(self) -> float | None:
        w = self.config.window
        if len(self._history) < 2 * w:
            return None
        h = np.asarray(self._history, dtype=np.float64)
        old, new = h[:w], h[w:]
        best = 0.0
        for j in range(h.shape[1]):
            a, b = old[:, j], new[:, j]
            if np.isnan(a).any() or np.isnan(b).any():
                continue  # returns hidden (evaluation block)
            se = np.sqrt((max(a.std(), self.config.min_std) ** 2 + max(b.std(), self.config.min_std) ** 2) / w)
            best = max(best, abs(b.mean() - a.mean()) / se)
        return best

    def state_dict(self) -> dict[str, Any]:
        """The window and the counts."""
        return {
            "history": [list(x) for x in self._history],
            "episodes": self.episodes,
            "detections": list(self.detections),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self._history.clear()
        self._history.extend(list(x) for x in state["history"])
        self.episodes = int(state["episodes"])
        self.detections = [int(x) for x in state["detections"]]
