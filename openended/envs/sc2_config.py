"""Configuration of the SC2 minigame family (``env.config`` of an experiment), pure pydantic.

Contents:
    MINIGAMES  -- the seven DeepMind minigames, in the order of pysc2's docs.
    SC2Task    -- one task: a map plus the per-task parameters pysc2 allows.
    SC2Config  -- the env config: the task list, resolutions, action set, backend.

Per-task parameters, and why each is where it is:

* ``step_mul`` (game steps per agent step) and ``game_steps_per_episode`` are applied per
  call / by the env, so tasks differing only in them share a running game;
* ``screen`` / ``minimap`` (feature-layer resolution) bind a game at launch. The env's
  observation and action spaces are sized for the largest resolution of any task; a task
  at a lower resolution is zero-padded and its out-of-range cells are masked;
* ``bot_race`` / ``bot_difficulty`` add a built-in bot on a melee map (``Simple64``); such
  a task's success is a win. A minigame's success is ``score >= success_score`` (the maps
  have no win/loss; ``None`` = the task defines no success).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MINIGAMES", "SC2Task", "SC2Config", "BOT_DIFFICULTIES", "RACES"]

MINIGAMES: tuple[str, ...] = (
    "MoveToBeacon",
    "CollectMineralShards",
    "FindAndDefeatZerglings",
    "DefeatRoaches",
    "DefeatZerglingsAndBanelings",
    "CollectMineralsAndGas",
    "BuildMarines",
)
RACES = Literal["terran", "zerg", "protoss", "random"]
#: pysc2's ``sc2_env.Difficulty`` names.
BOT_DIFFICULTIES = Literal[
    "very_easy", "easy", "medium", "medium_hard", "hard", "harder", "very_hard", "cheat_vision", "cheat_money"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SC2Task(_Model):
    """One task of the family: a map and its per-task parameters (unset: the env's defaults)."""

    map: str = Field(description="pysc2 map name: a minigame (MoveToBeacon, ...) or a melee map (Simple64).")
    name: str | None = Field(None, description="Task value in the Discrete space (default: the map name).")
    screen: int | None = Field(None, ge=8, le=256, description="Feature screen side in cells (default: env's).")
    minimap: int | None = Field(None, ge=8, le=256, description="Feature minimap side (default: env's).")
    step_mul: int | None = Field(None, ge=1, le=1000, description="Game steps per agent step (default: env's).")
    game_steps_per_episode: int | None = Field(
        None, ge=1, description="Cut the episode (truncated) after this many game steps (default: the map's own)."
    )
    success_score: float | None = Field(None, description="Minigame success: final score >= this (None: no success).")
    bot_race: RACES | None = Field(None, description="Melee maps: race of the built-in bot.")
    bot_difficulty: BOT_DIFFICULTIES | None = Field(None, description="Melee maps: difficulty of the built-in bot.")

    @property
    def value(self) -> str:
        """The task's value in the Discrete space."""
        return self.name or self.map

    @model_validator(mode="after")
    def _bot_fields_together(self) -> SC2Task:
        if (self.bot_race is None) != (self.bot_difficulty is None):
            raise ValueError("bot_race and bot_difficulty go together: set both (a melee map with a bot) or neither")
        return self


class SC2Config(_Model):
    """SC2 task env configuration (``env.config`` in an experiment YAML)."""

    tasks: list[SC2Task] = Field(
        default_factory=lambda: [SC2Task(map=m) for m in MINIGAMES],
        min_length=1,
        description="The task space, one entry per task (default: the seven minigames).",
    )
    screen: int = Field(32, ge=8, le=256, description="Default feature screen side (cells).")
    minimap: int = Field(32, ge=8, le=256, description="Default feature minimap side (cells).")
    step_mul: int = Field(8, ge=1, le=1000, description="Default game steps per agent step (pysc2's minigame default).")
    screen_features: list[str] | None = Field(
        None, description="Feature-screen layers to observe, by pysc2 name (None: all 27)."
    )
    minimap_features: list[str] | None = Field(None, description="Feature-minimap layers to observe (None: all 11).")
    functions: Literal["minigames", "all"] | list[str] = Field(
        "minigames", description="Action functions: 'minigames' (23), 'all' (573) or pysc2 function names."
    )
    agent_race: RACES = Field("terran", description="The agent's race (minigames are played as Terran).")
    backend: Literal["game", "mock"] = Field(
        "game", description="game: the real StarCraft II ($SC2PATH); mock: pysc2's SC2TestEnv (canned observations)."
    )
    max_games: int = Field(
        1, ge=1, le=16, description="Live game processes per env (a map/resolution switch reuses one)."
    )
    max_launch_attempts: int = Field(3, ge=1, le=20, description="Launch tries before a dead game is an error.")
    game_seed: int | None = Field(None, ge=0, le=2**31 - 1, description="SC2's random seed (None: the game's own).")
    sc2_version: str | None = Field(None, description="Game version to run (None: the newest installed).")
    mock_episode_length: int = Field(10, ge=1, description="backend mock: agent steps per episode.")
    mock_crash_after_steps: int | None = Field(
        None, ge=0, description="backend mock, fault injection: each mock game dies after this many calls."
    )

    @model_validator(mode="after")
    def _check(self) -> SC2Config:
        values = [t.value for t in self.tasks]
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise ValueError(f"task names must be unique; {dup} appear twice (give one a distinct 'name')")
        if self.backend != "mock" and self.mock_crash_after_steps is not None:
            raise ValueError("mock_crash_after_steps is fault injection for backend: mock only")
        return self

    @property
    def max_screen(self) -> int:
        """The largest screen side of any task (the observation / action size)."""
        return max(t.screen or self.screen for t in self.tasks)

    @property
    def max_minimap(self) -> int:
        """The largest minimap side of any task."""
        return max(t.minimap or self.minimap for t in self.tasks)
