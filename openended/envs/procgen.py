"""Procgen with per-episode level control: one task = one level of one game.

Contents:
    ProcgenTaskEnv        -- gymnasium ``Env`` (one episode at a time; what RLlib's runners step).
    ProcgenVectorTaskEnv  -- gymnasium ``VectorEnv`` over one ``ProcgenGym3Env(num=N)``, per-sub-env
                             tasks, same-step autoreset (for throughput).
Config, level sets and the level-state cache: `openended.envs.procgen_levels`.

Task = (game, level seed, distribution mode). The game and the mode are fixed per env (they
select the compiled game and its level generator), so the task space is ``Discrete`` over
the level seeds of the training set, ``range(start_level, start_level + num_levels)``
(PLR's protocol: 200 training levels); ``test_levels()`` is a disjoint held-out set for
evaluation. ``set_task`` accepts tasks of either set; a teacher only ever sees the training
space. The space's ``name`` (``procgen/coinrun/easy/train``) keeps teacher state of one
game from being loaded into another.

How a level is put into a running procgen env (the level-state cache, and why) is in
`openended.envs.procgen_levels`.

Observations are uint8 ``(64, 64, 3)``; 15 discrete actions. ``info["success"]`` is
procgen's ``prev_level_complete`` at episode end (every game sets ``level_complete`` when
the level is won: coin reached, fish quota eaten, ...), ``info["task_id"]`` and
``info["level_seed"]`` are on every step, ``episode_return``/``episode_length`` at episode
end. An episode that hits procgen's 1000-step timeout without completing the level is
reported as truncated, not terminated.

The terminal frame. Procgen resets inside ``act`` and never exposes the last frame of an
episode; the step that ends an episode returns the frame the final action was taken in
(single env) or puts it in ``infos["final_obs"]`` (vector env, same-step autoreset). For a
bootstrap at truncation this is one frame stale; for termination it is unused.

Unset tasks. Until a sub-env is given a task it plays a training level drawn uniformly with
its ``np_random`` at each episode (plain procgen ``num_levels=N`` training: the
domain-randomisation baseline, seeded by ``reset(seed=...)``). Once a task is set it
persists for later episodes until another is set (the ``TaskEnvMixin`` contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from typing_extensions import override

from openended.envs.base import TaskEnvMixin, episode_outcome
from openended.envs.procgen_levels import (
    NUM_ACTIONS,
    PROCGEN_TIMEOUT,
    LevelSets,
    LevelStateCache,
    ProcgenConfig,
    is_truncated,
    level_complete,
    procgen_module,
    procgen_observation_space,
    resolve_config,
)
from openended.errors import ConfigError
from openended.tasks import Discrete, Outcome, Task

__all__ = ["ProcgenTaskEnv", "ProcgenVectorTaskEnv"]


# ---------------------------------------------------------------------------- single env
class ProcgenTaskEnv(TaskEnvMixin, gym.Env):
    """One Procgen game as a gymnasium ``Env`` whose level is the task.

    ``set_task(task)`` (or ``reset(options={"task": task})``) takes effect at the next
    ``reset``; the running episode always finishes on its level.

    The example is skipped as a doctest: procgen is an optional install, and a process's
    first procgen env spends ~1.2 s loading its assets. ``tests/test_procgen.py``
    (``test_set_task_applies_only_at_next_reset``) runs these steps where procgen is installed.

    Example:
        >>> env = ProcgenTaskEnv(game="coinrun", num_levels=200)      # doctest: +SKIP
        >>> env.set_task(env.task_space().task(17))                   # doctest: +SKIP
        >>> obs, info = env.reset(seed=0); info["level_seed"]         # doctest: +SKIP
        17
        >>> env.close()                                               # doctest: +SKIP
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 15}
    _space: Discrete  # the training levels

    def __init__(self, config: ProcgenConfig | None = None, **kwargs: Any) -> None:
        self.config = resolve_config(config, kwargs, "env.procgen")
        self._sets = LevelSets(self.config)
        self._space = self._sets.train
        self._states = LevelStateCache(self.config)
        if self.config.prebuild_states:
            self._states.prefetch(self._sets.train.values[: self.config.state_cache_size])
        self.observation_space = procgen_observation_space()
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.render_mode = self.config.render_mode
        self._env = procgen_module().ProcgenGym3Env(
            num=1,
            num_levels=1,
            start_level=self.config.start_level,
            rand_seed=0,
            num_threads=0,
            **self.config.procgen_options(),
        )
        self._act_buf = np.zeros(1, dtype=np.int32)
        self._limit = self.config.max_episode_steps or PROCGEN_TIMEOUT
        self._explicit = False  # a task was set: it persists; before that, episodes draw uniformly
        self._inner_level: int | None = None  # the level the procgen sub-env is at the start of
        self._fresh = False  # sub-env sits at the first frame of an episode of _inner_level
        self._obs: np.ndarray | None = None
        self._ret = 0.0
        self._len = 0
        self._done = True
        self.last_outcome: Outcome | None = None

    # ------------------------------------------------------------------ task surface
    def set_task(self, task: Task | int) -> None:
        """Queue ``task`` (a training or held-out level, or its seed) for the next ``reset``."""
        self._pending_task = self._sets.resolve(task)

    def test_levels(self) -> list[Task]:
        """The held-out evaluation levels (disjoint from `task_space`)."""
        return self._sets.test.all_tasks

    def test_task_space(self) -> Discrete:
        """The held-out levels as a space (what an evaluation samples from)."""
        return self._sets.test

    # ------------------------------------------------------------------------- gym API
    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is not None:
            self.set_task(task)
        if self._pending_task is not None:
            self._current_task, self._pending_task = self._pending_task, None
            self._explicit = True
        elif not self._explicit:
            self._current_task = self._space.task_at(int(self.np_random.integers(self._space.n)))
        task = self._running_task()
        level = int(task.params[0])
        if not (self._fresh and self._inner_level == level):
            st = self._states.get(level)
            self._env.call_c_func("set_state", 0, st, len(st))
            self._inner_level = level
        _, ob, _ = self._env.observe()
        self._obs = ob["rgb"][0]
        self._fresh = False
        self._ret, self._len, self._done = 0.0, 0, False
        return self._obs, {"task_id": task.id, "level_seed": level}

    @override
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done or self._obs is None:  # reset() sets both
            raise ResetNeeded("ProcgenTaskEnv: the episode has ended; call reset() before step()")
        act = self._act_buf  # SPEEDUP: one reusable int32 buffer instead of an array per step
        act[0] = action
        self._env.act(act)
        rew, ob, first = self._env.observe()
        r = float(rew[0])
        self._ret += r
        self._len += 1
        task = self._running_task()
        info: dict[str, Any] = {"task_id": task.id, "level_seed": self._inner_level}
        if first[0] or self._len >= self._limit:
            complete = bool(first[0]) and bool(level_complete(self._env)[0])
            truncated = is_truncated(bool(first[0]), complete, self._len)
            terminated = not truncated
            # procgen already auto-reset to the start of the same level (first[0]); a
            # truncation by max_episode_steps leaves it mid-episode, so reset() rewrites it.
            self._fresh = bool(first[0])
            self._done = True
            info.update(success=complete, episode_return=self._ret, episode_length=self._len)
            self.last_outcome = episode_outcome(
                task, self._ret, self._len, success=complete, level_seed=self._inner_level, game=self.config.game
            )
            if not first[0]:  # cut by max_episode_steps: procgen did not reset, its frame is the real one
                self._obs = ob["rgb"][0]
            return self._obs, r, terminated, truncated, info  # else the last frame procgen showed (module doc)
        self._obs = ob["rgb"][0]
        return self._obs, r, False, False, info

    @override
    def render(self) -> np.ndarray | None:  # type: ignore[override]  # gymnasium's return type is an unbound TypeVar
        return None if self.render_mode is None or self._obs is None else self._obs.copy()

    @override
    def close(self) -> None:
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()
        super().close()

    @property
    def state_cache(self) -> LevelStateCache:
        """The level start states (hit, build and timing counters for benchmarks)."""
        return self._states


# ---------------------------------------------------------------------------- vector env
#: The most sub-envs one batched env may run (one process steps them all; 4,096 64x64
#: frames are ~50 MB). A bound because the count comes from experiment files.
MAX_VECTOR_ENVS = 4096


class ProcgenVectorTaskEnv(VectorEnv):
    """``num_envs`` sub-envs of one game in one batched ``ProcgenGym3Env``, each with its own task.

    A sub-env's task switches at that sub-env's own episode boundaries.

    Autoreset is same-step (procgen's native behaviour): the step that ends sub-env ``i``'s
    episode returns the first frame of its next episode, with the finished episode's
    statistics in ``infos["final_info"]`` (``episode_return``, ``episode_length``,
    ``success``, ``task_id``, ``level_seed``) and its last shown frame in
    ``infos["final_obs"]``. ``infos["task_id"]`` always names the task of the episode the
    returned observation belongs to. Finished episodes also queue an `Outcome` each;
    `pop_outcomes` drains them (what a runtime batches to the teacher).

    ``set_task(task, index=None)`` queues a task for sub-env ``index`` (all if ``None``);
    ``set_tasks([...])`` one per sub-env (``None`` leaves one alone). Queued tasks apply
    at that sub-env's next episode start, never mid-episode.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, num_envs: int = 16, config: ProcgenConfig | None = None, **kwargs: Any) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or not 1 <= num_envs <= MAX_VECTOR_ENVS:
            raise ConfigError(f"env.procgen.num_envs: must be an int in 1..{MAX_VECTOR_ENVS:,}, got {num_envs!r}")
        self.config = resolve_config(config, kwargs, "env.procgen")
        self.num_envs = num_envs
        self._sets = LevelSets(self.config)
        self._states = LevelStateCache(self.config)
        if self.config.prebuild_states:
            self._states.prefetch(self._sets.train.values[: self.config.state_cache_size])
        self.single_observation_space = procgen_observation_space()
        self.single_action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.render_mode = self.config.render_mode
        self._env = procgen_module().ProcgenGym3Env(
            num=num_envs,
            num_levels=1,
            start_level=self.config.start_level,
            rand_seed=0,
            num_threads=self.config.num_threads,
            **self.config.procgen_options(),
        )
        self._limit = self.config.max_episode_steps or PROCGEN_TIMEOUT
        n = num_envs
        self._pending: list[Task | None] = [None] * n
        self._current: list[Task | None] = [None] * n
        self._explicit = np.zeros(n, dtype=bool)
        self._level = np.full(n, -1, dtype=np.int64)
        self._ret = np.zeros(n, dtype=np.float64)
        self._len = np.zeros(n, dtype=np.int64)
        self._obs: np.ndarray | None = None
        self._outbox: list[Outcome] = []
        self._ids = np.full(n, None, dtype=object)  # task id per sub-env, kept current by _start
        self._all = np.ones(n, dtype=bool)
        self._all.setflags(write=False)
        self.level_switches = 0
        self._np_random, self._np_random_seed = gym.utils.seeding.np_random()

    # ------------------------------------------------------------------ task surface
    def task_space(self) -> Discrete:
        """Training levels (what a teacher samples from)."""
        return self._sets.train

    def test_levels(self) -> list[Task]:
        """Held-out evaluation levels (disjoint from `task_space`)."""
        return self._sets.test.all_tasks

    def test_task_space(self) -> Discrete:
        """The held-out levels as a space (what an evaluation samples from)."""
        return self._sets.test

    def set_task(self, task: Task | int, index: int | None = None) -> None:
        """Queue ``task`` (or a level seed) for sub-env ``index`` (every sub-env if ``None``) at its next episode."""
        task = self._sets.resolve(task)
        if index is None:
            self._pending = [task] * self.num_envs
            return
        if not 0 <= int(index) < self.num_envs:
            raise ConfigError(f"set_task: index must be in 0..{self.num_envs - 1}, got {index!r}")
        self._pending[int(index)] = task

    def set_tasks(self, tasks: Sequence[Task | int | None]) -> None:
        """One queued task per sub-env (``None`` leaves that sub-env's queue as it is)."""
        if len(tasks) != self.num_envs:
            raise ConfigError(f"set_tasks: expected {self.num_envs} tasks (one per sub-env), got {len(tasks)}")
        resolved = [None if t is None else self._sets.resolve(t) for t in tasks]  # all validated before any is queued
        for i, t in enumerate(resolved):
            if t is not None:
                self._pending[i] = t

    @property
    def current_tasks(self) -> list[Task | None]:
        """The task each sub-env's running episode was started with."""
        return list(self._current)

    def pop_outcomes(self) -> list[Outcome]:
        """Outcomes of the episodes finished since the last call (oldest first)."""
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------------------- internals
    def _next_task(self, i: int) -> Task:
        task = self._pending[i]
        if task is not None:
            self._pending[i] = None
            self._explicit[i] = True
            return task
        cur = self._current[i]
        if self._explicit[i] and cur is not None:
            return cur
        space = self._sets.train
        return space.task_at(int(self.np_random.integers(space.n)))

    def _start(self, i: int, force: bool) -> bool:
        """Begin sub-env ``i``'s next episode; True if a state was written (frame changed)."""
        task = self._next_task(i)
        self._current[i] = task
        self._ids[i] = task.id
        level = int(task.params[0])
        self._ret[i] = 0.0
        self._len[i] = 0
        if not force and self._level[i] == level:
            return False  # procgen's own auto-reset already restarted this very level
        st = self._states.get(level)
        self._env.call_c_func("set_state", i, st, len(st))
        self._level[i] = level
        self.level_switches += 1
        return True

    # ------------------------------------------------------------------------- gym API
    @override
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode in every sub-env. ``options={"task": t}`` or ``{"tasks": [...]}``."""
        if seed is not None:
            if not isinstance(seed, (int, np.integer)):
                raise ConfigError(
                    "ProcgenVectorTaskEnv.reset: seed must be one int (levels come from tasks; the "
                    f"seed only drives uniform draws of unset sub-envs), got {seed!r}"
                )
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(int(seed))
        options = options or {}
        if options.get("task") is not None:
            self.set_task(options["task"])
        if options.get("tasks") is not None:
            self.set_tasks(options["tasks"])
        for i in range(self.num_envs):
            self._start(i, force=True)
        _, ob, _ = self._env.observe()
        self._obs = ob["rgb"]
        return self._obs, {
            "task_id": self._ids.copy(),
            "_task_id": self._all,
            "level_seed": self._level.copy(),
            "_level_seed": self._all,
        }

    @override
    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._obs is None:
            raise ResetNeeded("ProcgenVectorTaskEnv: call reset() before step()")
        self._env.act(np.asarray(actions, dtype=np.int32).reshape(self.num_envs))
        rew, ob, first = self._env.observe()
        obs = ob["rgb"]
        rew = rew.astype(np.float32, copy=False)
        self._ret += rew
        self._len += 1
        ended = first | (self._len >= self._limit)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        if ended.any():
            idx = np.flatnonzero(ended)
            completed = level_complete(self._env).astype(bool)  # copy: a re-observe below overwrites it
            n = self.num_envs
            fin = {
                "episode_return": np.zeros(n),
                "episode_length": np.zeros(n, dtype=np.int64),
                "success": np.zeros(n, dtype=bool),
                "task_id": np.full(n, None, dtype=object),
                "level_seed": np.full(n, -1, dtype=np.int64),
            }
            final_obs = np.full(n, None, dtype=object)
            rewrite = False
            for i in idx.tolist():
                complete = bool(first[i]) and bool(completed[i])
                trunc = is_truncated(bool(first[i]), complete, int(self._len[i]))
                terminated[i], truncated[i] = not trunc, trunc
                task = self._current[i]
                assert task is not None, "reset() started every sub-env"
                fin["episode_return"][i] = self._ret[i]
                fin["episode_length"][i] = self._len[i]
                fin["success"][i] = complete
                fin["task_id"][i] = task.id
                fin["level_seed"][i] = self._level[i]
                final_obs[i] = self._obs[i] if first[i] else obs[i]  # procgen's reset hides the last frame
                self._outbox.append(
                    episode_outcome(
                        task,
                        float(self._ret[i]),
                        int(self._len[i]),
                        success=complete,
                        level_seed=int(self._level[i]),
                        game=self.config.game,
                    )
                )
                # a max_episode_steps cut leaves procgen mid-episode: force a rewrite
                rewrite |= self._start(i, force=not bool(first[i]))
            mask = ended.copy()
            fin.update({f"_{k}": mask for k in list(fin)})
            infos = {"final_info": fin, "_final_info": mask, "final_obs": final_obs, "_final_obs": mask}
            if rewrite:
                obs = self._env.observe()[1]["rgb"]
        self._obs = obs
        infos["task_id"] = self._ids.copy()
        infos["_task_id"] = self._all
        return obs, rew, terminated, truncated, infos

    @override
    def render(self) -> tuple[np.ndarray, ...] | None:  # type: ignore[override]  # as ProcgenTaskEnv.render
        if self.render_mode is None or self._obs is None:
            return None
        return tuple(self._obs.copy())

    @override
    def close_extras(self, **kwargs: Any) -> None:
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()

    @property
    def state_cache(self) -> LevelStateCache:
        """The level start states (hit, build and timing counters for benchmarks)."""
        return self._states
