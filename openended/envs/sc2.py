"""StarCraft II minigames (pysc2-evolved) as a task env: one task = one minigame with its parameters.

Contents:
    SC2TaskEnv -- the gymnasium env (registered as ``sc2_minigames``).
Config: `openended.envs.sc2_config` (``SC2Config``, ``SC2Task``, ``MINIGAMES``); actions:
`openended.envs.sc2_actions`; game processes: `openended.envs.sc2_game`.

Task space: ``Discrete`` over the task names (default: the seven DeepMind minigames), named
``sc2/<screen>x<minimap>`` so teacher state of one layout is not loaded into another.

Observation (``Dict``, float32 unless noted):

* ``screen``: the chosen feature-screen layers, each divided by its pysc2 scale,
  ``(layers, S, S)`` for the largest screen side ``S``; a smaller task fills the top-left;
* ``minimap``: the same for the minimap, ``(layers, M, M)``;
* ``player``: pysc2's 11 player counters, ``log1p``-scaled;
* ``available_actions`` (int8): 1 for each function of the action set available now;
* ``action_mask`` (int8): the mask of the flat action (`ActionLayout.mask`), what an
  action-masking policy applies to its logits.

Action: ``MultiDiscrete([function, arg_1, ..., arg_k])`` (`ActionLayout`). A function that
is not available becomes ``no_op`` and a point out of the task's resolution is clipped;
``info["invalid_action"]`` says so.

Episode end and outcome: the map ends the episode (its timer, or a win/loss on melee maps)
-> terminated; ``game_steps_per_episode`` reached -> truncated. ``info["score"]`` is pysc2's
cumulative score (``score_cumulative[0]``); ``info["success"]`` is a win on a bot task,
``score >= success_score`` on a minigame that sets one, absent otherwise.

The game process (`openended.envs.sc2_game`): launched at the first reset that needs it (so
building an env, as ``openended check`` does, needs no game), kept across episodes and
tasks, closed by ``close()``. If it dies mid-episode, the step returns ``truncated`` with
``info["success"] = False`` and ``info["game_crashed"]`` (the host reports that failed
outcome: the episode is never lost) and the next reset launches a new game; a reset that
cannot get a game after ``max_launch_attempts`` raises `SC2GameCrashed`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from typing_extensions import override

from openended.envs.base import INFO_EPISODE_LENGTH, INFO_EPISODE_RETURN, INFO_SUCCESS, INFO_TASK_ID, TaskEnvMixin
from openended.envs.sc2_actions import ActionLayout
from openended.envs.sc2_config import SC2Config, SC2Task
from openended.envs.sc2_game import (
    CrashingTestEnv,
    GameCache,
    GameKey,
    SC2GameCrashed,
    check_sc2_install,
    game_errors,
    import_pysc2,
)
from openended.errors import ConfigError
from openended.tasks import Discrete, Task
from openended.validation import config_or_kwargs

__all__ = ["SC2TaskEnv"]


def _layer_indices(names: list[str] | None, layers: Any, field: str) -> list[int]:
    """Indices of pysc2 feature layers by name (all of them for ``None``)."""
    if names is None:
        return list(range(len(layers)))
    by_name = {f.name: i for i, f in enumerate(layers)}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise ConfigError(f"{field}: unknown or no layer(s) {unknown}; choose from {sorted(by_name)}")
    return [by_name[n] for n in names]


class SC2TaskEnv(TaskEnvMixin, gym.Env):
    """SC2 minigames (or melee maps against a bot) behind the task-env contract.

    Example (pysc2's mock game, so it runs without StarCraft II):
        >>> env = SC2TaskEnv(backend="mock", screen=16, minimap=16)
        >>> env.set_task(env.task_space().task("DefeatRoaches"))
        >>> obs, info = env.reset(seed=0)
        >>> sorted(obs), obs["screen"].shape
        (['action_mask', 'available_actions', 'minimap', 'player', 'screen'], (27, 16, 16))
        >>> env.close()
    """

    metadata: dict[str, Any] = {"render_modes": []}
    _space: Discrete

    def __init__(self, config: SC2Config | None = None, **kwargs: Any) -> None:
        self.config = config_or_kwargs(SC2Config, config, kwargs, "env.config")
        cfg = self.config
        import_pysc2()
        from pysc2_evolved import maps
        from pysc2_evolved.lib import features

        self._maps: dict[str, Any] = {}
        for i, t in enumerate(cfg.tasks):
            try:
                self._maps[t.map] = maps.get(t.map)
            except maps.lib.NoMapError:
                raise ConfigError(
                    f"env.config.tasks[{i}].map: pysc2 knows no map {t.map!r} (minigames: MoveToBeacon, ...; "
                    "melee: Simple64, ...)"
                ) from None
            players = self._maps[t.map].players or 1
            if (players > 1) != (t.bot_race is not None) or players > 2:
                raise ConfigError(
                    f"env.config.tasks[{i}]: map {t.map!r} is for {players} player(s); a 1-player map (minigame) "
                    "takes no bot, a 2-player melee map needs bot_race and bot_difficulty"
                )
        self._tasks: dict[str, SC2Task] = {t.value: t for t in cfg.tasks}
        self._space = Discrete([t.value for t in cfg.tasks], name=f"sc2/{cfg.max_screen}x{cfg.max_minimap}")
        self._default_task = self._space.task_at(0)
        self._screen_idx = _layer_indices(cfg.screen_features, features.SCREEN_FEATURES, "env.config.screen_features")
        self._minimap_idx = _layer_indices(
            cfg.minimap_features, features.MINIMAP_FEATURES, "env.config.minimap_features"
        )
        self._screen_scale = np.array([features.SCREEN_FEATURES[i].scale for i in self._screen_idx], dtype=np.float32)[
            :, None, None
        ]
        self._minimap_scale = np.array(
            [features.MINIMAP_FEATURES[i].scale for i in self._minimap_idx], dtype=np.float32
        )[:, None, None]
        s, m = cfg.max_screen, cfg.max_minimap
        self.layout = ActionLayout(cfg.functions, s, m)
        n_fn = len(self.layout.functions)
        self._screen_shape = (len(self._screen_idx), s, s)
        self._minimap_shape = (len(self._minimap_idx), m, m)
        self.observation_space = gym.spaces.Dict(
            {
                "screen": gym.spaces.Box(0.0, np.inf, self._screen_shape, np.float32),
                "minimap": gym.spaces.Box(0.0, np.inf, self._minimap_shape, np.float32),
                "player": gym.spaces.Box(0.0, np.inf, (11,), np.float32),
                "available_actions": gym.spaces.Box(0, 1, (n_fn,), np.int8),
                "action_mask": gym.spaces.Box(0, 1, (self.layout.mask_size,), np.int8),
            }
        )
        self.action_space = gym.spaces.MultiDiscrete(self.layout.nvec)
        self._games = GameCache(self._launch, cfg.max_games)
        self._game: Any = None
        self._key: GameKey | None = None
        self._available = np.zeros(0, dtype=np.int64)
        self._obs: dict[str, np.ndarray] | None = None
        self._ret, self._len, self._done = 0.0, 0, True
        self._game_steps = 0  # game loops this episode
        self.crashes = 0
        self._checked_install = False

    # ------------------------------------------------------------------ task surface
    def task_params(self, task: Task | str) -> SC2Task:
        """The `SC2Task` entry of a task (or task name)."""
        value = task.params[0] if isinstance(task, Task) else task
        return self._tasks[self._space.validate(value)]

    def _resolution(self, t: SC2Task) -> tuple[int, int]:
        return t.screen or self.config.screen, t.minimap or self.config.minimap

    def _game_key(self, t: SC2Task) -> GameKey:
        screen, minimap = self._resolution(t)
        return GameKey(t.map, screen, minimap, t.bot_race, t.bot_difficulty)

    # ------------------------------------------------------------------ the game
    def _launch(self, key: GameKey) -> Any:
        """A new pysc2 env for ``key`` (real game or mock)."""
        from pysc2_evolved.env import sc2_env

        cfg = self.config
        players: list[Any] = [sc2_env.Agent(getattr(sc2_env.Race, cfg.agent_race))]
        if key.bot_race is not None:
            players.append(
                sc2_env.Bot(getattr(sc2_env.Race, key.bot_race), getattr(sc2_env.Difficulty, str(key.bot_difficulty)))
            )
        aif = sc2_env.AgentInterfaceFormat(
            feature_dimensions=sc2_env.Dimensions(screen=key.screen, minimap=key.minimap)
        )
        common: dict[str, Any] = {"map_name": key.map_name, "players": players, "agent_interface_format": aif}
        if cfg.backend == "mock":
            return CrashingTestEnv(
                crash_after_steps=cfg.mock_crash_after_steps, episode_length=cfg.mock_episode_length, **common
            )
        if not self._checked_install:
            check_sc2_install(m.path for m in self._maps.values())
            self._checked_install = True
        return sc2_env.SC2Env(
            **common,
            step_mul=cfg.step_mul,
            game_steps_per_episode=0,  # the env cuts episodes itself (per task), see step()
            random_seed=cfg.game_seed,
            version=cfg.sc2_version,
        )

    def _first_timestep(self, t: SC2Task) -> Any:
        """Reset a live game for task ``t`` (launching one if needed), retrying a game that dies."""
        key = self._game_key(t)
        last: BaseException | None = None
        for _ in range(self.config.max_launch_attempts):
            try:
                game = self._games.get(key)
                timestep = game.reset()[0]
            except game_errors() as e:
                last = e
                self.crashes += 1
                self._games.discard(key)
                continue
            self._game, self._key = game, key
            return timestep
        raise SC2GameCrashed(
            f"sc2: no working game for map {t.map!r} after {self.config.max_launch_attempts} launch attempts "
            f"(env.config.max_launch_attempts); last error: {last!r}"
        )

    # ------------------------------------------------------------------ observations
    def _observation(self, raw: Any, t: SC2Task) -> dict[str, np.ndarray]:
        screen, minimap = self._resolution(t)
        scr = np.zeros(self._screen_shape, np.float32)
        scr[:, :screen, :screen] = np.asarray(raw["feature_screen"])[self._screen_idx] / self._screen_scale
        mm = np.zeros(self._minimap_shape, np.float32)
        mm[:, :minimap, :minimap] = np.asarray(raw["feature_minimap"])[self._minimap_idx] / self._minimap_scale
        self._available = np.asarray(raw["available_actions"], dtype=np.int64)
        avail = np.zeros(len(self.layout.functions), np.int8)
        avail[self.layout.function_slots(self._available)] = 1
        return {
            "screen": scr,
            "minimap": mm,
            "player": np.log1p(np.maximum(np.asarray(raw["player"], np.float32), 0.0)),
            "available_actions": avail,
            "action_mask": self.layout.mask(self._available, screen, minimap),
        }

    # ------------------------------------------------------------------------- gym API
    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        t = self.task_params(task)
        timestep = self._first_timestep(t)
        self._obs = self._observation(timestep.observation, t)
        self._ret, self._len, self._done = 0.0, 0, False
        self._game_steps = 0
        return self._obs, {INFO_TASK_ID: task.id, "map": t.map}

    @override
    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self._done or self._obs is None:
            raise ResetNeeded("SC2TaskEnv: the episode has ended; call reset() before step()")
        task = self._running_task()
        t = self.task_params(task)
        screen, minimap = self._resolution(t)
        call, allowed = self.layout.to_call(action, self._available, screen, minimap)
        step_mul = t.step_mul or self.config.step_mul
        try:
            timestep = self._game.step([call], step_mul=step_mul)[0]
        except game_errors() as e:
            return self._crashed(task, e)
        raw = timestep.observation
        self._obs = self._observation(raw, t)
        reward = float(timestep.reward)
        self._ret += reward
        self._len += 1
        self._game_steps += step_mul  # pysc2 (not realtime) advances exactly step_mul game loops
        score = float(np.asarray(raw["score_cumulative"]).reshape(-1)[0])
        info: dict[str, Any] = {INFO_TASK_ID: task.id, "map": t.map, "score": score, "invalid_action": not allowed}
        terminated = bool(timestep.last())
        limit = t.game_steps_per_episode
        truncated = not terminated and limit is not None and self._game_steps >= limit
        if terminated or truncated:
            self._done = True
            info.update({INFO_EPISODE_RETURN: self._ret, INFO_EPISODE_LENGTH: self._len})
            success = self._success(t, terminated, reward, score)
            if success is not None:
                info[INFO_SUCCESS] = success
        return self._obs, reward, terminated, truncated, info

    @staticmethod
    def _success(t: SC2Task, terminated: bool, last_reward: float, score: float) -> bool | None:
        """Win on a bot task (pysc2's final reward there is +1/0/-1); the score criterion on a minigame."""
        if t.bot_race is not None:
            return terminated and last_reward > 0
        return None if t.success_score is None else score >= t.success_score

    def _crashed(self, task: Task, error: BaseException) -> tuple[dict, float, bool, bool, dict]:
        """The game died mid-episode: end the episode as failed (truncated) and drop the game."""
        self.crashes += 1
        if self._key is not None:
            self._games.discard(self._key)
        self._game, self._key, self._done = None, None, True
        assert self._obs is not None, "step() checked that an episode runs"
        info = {
            INFO_TASK_ID: task.id,
            INFO_SUCCESS: False,
            INFO_EPISODE_RETURN: self._ret,
            INFO_EPISODE_LENGTH: self._len,
            "game_crashed": f"{type(error).__name__}: {error}"[:300],
        }
        return self._obs, 0.0, False, True, info

    def action_argument_usage(self) -> list[list[int]]:
        """Which argument components each function takes (`ActionLayout.argument_usage`), for the policy."""
        return self.layout.argument_usage()

    def game_stats(self) -> dict[str, int]:
        """Game processes launched, crashes seen, games alive now."""
        return {"launches": self._games.launches, "crashes": self.crashes, "live_games": len(self._games)}

    @override
    def close(self) -> None:
        games = getattr(self, "_games", None)
        if games is not None:
            games.close()
        self._game = None
        super().close()
