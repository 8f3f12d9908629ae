"""Procgen levels as tasks: the config, the training and held-out level sets, and the level-state cache.

Contents:
    ProcgenConfig         -- validated config (game, distribution mode, train/test level sets, ...).
    resolve_config        -- a config, or one validated from keyword options.
    LevelSets             -- training space, held-out space, and task validation against both.
    LevelStateCache       -- the mechanism: one serialised start state per level, LRU-bounded.
    level_complete, is_truncated, procgen_observation_space, procgen_module -- what both envs
                            (`openended.envs.procgen`) read procgen through.
    PROCGEN_GAMES, PROCGEN_TIMEOUT, NUM_ACTIONS -- the 16 games, the 1000-step timeout, 15 actions.

Why apart from the envs: this is *how a level gets into a running procgen env* (procgen's
C state, probes, level seeds), which both envs share and which changes for procgen's
reasons; the envs are the gymnasium surfaces (single, vector) over it.

Why the mechanism (measured on this 2-core machine, coinrun, see
``benchmarks/env_speed_procgen.py``): procgen fixes its level range at construction, so the
obvious route is one ``ProcgenGym3Env(num_levels=1, start_level=seed)`` per level. Building
one costs 0.6-2.8 ms (after the process's first build, ~2.7 s of asset loading), and a
vector of N such envs loses procgen's batched stepping. Procgen's own
``get_state``/``set_state`` (``state_test.py`` upstream: restoring a state reproduces the
rollout exactly, auto-resets included) gives a better route: build each level once in a
throw-away ``num=1`` probe (``num_levels=1, start_level=seed``), keep its serialised start
state (~38 kB for coinrun), and at an episode boundary write that state into sub-env ``i``
of the single batched env (0.13-0.6 ms, 4-6x cheaper than a rebuild). The restored state carries the probe's level
generator (``num_levels=1``), so procgen's own auto-reset then replays the same level:
when the next episode of a sub-env is on the same level, nothing is written at all.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openended.errors import DependencyNotInstalled, TaskNotInSpace
from openended.tasks import MAX_DISCRETE_VALUES, Discrete, Task
from openended.validation import config_or_kwargs

__all__ = [
    "ProcgenConfig",
    "resolve_config",
    "LevelSets",
    "LevelStateCache",
    "level_complete",
    "is_truncated",
    "procgen_observation_space",
    "procgen_module",
    "PROCGEN_GAMES",
    "PROCGEN_TIMEOUT",
    "NUM_ACTIONS",
]

GameName = Literal[
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
]
PROCGEN_GAMES: tuple[str, ...] = get_args(GameName)  # the 16 games, written once
PROCGEN_TIMEOUT = 1000  # procgen ends every episode after 1000 steps (game.h ``timeout``)
NUM_ACTIONS = 15
_MAX_SEED = 2**31 - 1


def procgen_module() -> Any:
    """The ``procgen`` package, imported on first use (a clear error names the install step).

    procgen registers gym 0.26 envs when imported, and gym's import prints a notice
    ("Gym has been unmaintained since 2022 ...") that no user of this family can act on
    (the family is gymnasium; only procgen needs gym): gym's own import is muted.
    """
    if "gym" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
            importlib.import_module("gym")
    try:
        import procgen
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DependencyNotInstalled(
            "the procgen family needs `procgen2` (import name `procgen`) and `gym3`: "
            "pip install --no-deps gym3==0.3.3 procgen2==0.10.7 (see docs/install.md)"
        ) from e
    return procgen


# ------------------------------------------------------------------------------ config
class ProcgenConfig(BaseModel):
    """Procgen task env configuration (``env.config`` in an experiment YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    game: GameName = Field("coinrun", description="Which of the 16 Procgen games.")
    distribution_mode: Literal["easy", "hard", "extreme", "memory"] = Field(
        "easy",
        description="Procgen level distribution (PLR and most papers use easy). 'exploration' is a "
        "single fixed level, so it is not offered as a task distribution.",
    )
    start_level: int = Field(0, ge=0, le=_MAX_SEED, description="First training level seed.")
    num_levels: int = Field(
        200,
        ge=1,
        le=MAX_DISCRETE_VALUES,
        description="Training levels: seeds start_level .. start_level+num_levels-1 (PLR: 200).",
    )
    test_start_level: int | None = Field(
        None,
        ge=0,
        le=_MAX_SEED,
        description="First held-out level seed; default start_level + num_levels (just past the training set).",
    )
    num_test_levels: int = Field(
        100, ge=1, le=MAX_DISCRETE_VALUES, description="Held-out evaluation levels (disjoint from training)."
    )
    num_threads: int = Field(
        4,
        ge=0,
        le=256,  # gym3 asserts on counts it cannot start (10**12 was an AssertionError, not a config error)
        description="Procgen's stepping threads per batched env (procgen default 4; "
        "0 steps in the calling thread, often fastest on 2 cores).",
    )
    state_cache_size: int = Field(
        1024,
        ge=1,
        description="Level start states kept (LRU, ~40 kB each for coinrun); a miss costs one probe build (~1-2 ms).",
    )
    prebuild_states: bool = Field(
        False,
        description="Build every training level's start state at construction (~1-2 ms each) instead of "
        "on first use, so the first pass over the levels does not pay for probes.",
    )
    max_episode_steps: int | None = Field(
        None, ge=1, le=PROCGEN_TIMEOUT, description="Truncate episodes earlier than procgen's own 1000-step timeout."
    )
    render_mode: Literal["rgb_array"] | None = Field(None, description="'rgb_array': render() returns the 64x64 frame.")
    center_agent: bool = Field(True, description="Procgen option (camera follows the agent).")
    use_backgrounds: bool = Field(True, description="Procgen option.")
    use_monochrome_assets: bool = Field(False, description="Procgen option.")
    restrict_themes: bool = Field(False, description="Procgen option.")
    use_generated_assets: bool = Field(False, description="Procgen option.")
    paint_vel_info: bool = Field(False, description="Procgen option (paints velocity into the frame).")

    @model_validator(mode="after")
    def _check_level_sets(self) -> ProcgenConfig:
        train_end = self.start_level + self.num_levels
        if train_end - 1 > _MAX_SEED:
            raise ValueError(
                f"start_level + num_levels - 1 = {train_end - 1} exceeds procgen's largest seed {_MAX_SEED}"
            )
        ts = self.test_start
        if ts + self.num_test_levels - 1 > _MAX_SEED:
            raise ValueError(
                f"test_start_level + num_test_levels - 1 = {ts + self.num_test_levels - 1} exceeds "
                f"procgen's largest seed {_MAX_SEED}"
            )
        if ts < train_end and self.start_level < ts + self.num_test_levels:
            raise ValueError(
                f"held-out levels {ts}..{ts + self.num_test_levels - 1} overlap training levels "
                f"{self.start_level}..{train_end - 1}; move test_start_level"
            )
        return self

    @property
    def test_start(self) -> int:
        """First held-out level seed: ``test_start_level``, or just past the training set."""
        return self.start_level + self.num_levels if self.test_start_level is None else self.test_start_level

    def procgen_options(self) -> dict[str, Any]:
        """Keyword options passed to every ``ProcgenGym3Env``, batched env and probes alike.

        A restored state is only valid in an env built with the same options.
        """
        return {
            "env_name": self.game,
            "distribution_mode": self.distribution_mode,
            "center_agent": self.center_agent,
            "use_backgrounds": self.use_backgrounds,
            "use_monochrome_assets": self.use_monochrome_assets,
            "restrict_themes": self.restrict_themes,
            "use_generated_assets": self.use_generated_assets,
            "paint_vel_info": self.paint_vel_info,
        }


def resolve_config(config: ProcgenConfig | None, kwargs: dict[str, Any], prefix: str) -> ProcgenConfig:
    """``config`` as given, or one validated from keyword options (``prefix`` names them in errors); not both."""
    return config_or_kwargs(ProcgenConfig, config, kwargs, prefix)


# ------------------------------------------------------------------------ the mechanism
class LevelStateCache:
    """Serialised start state of each level, built on demand and kept LRU-bounded.

    Why a probe per level: procgen's level range is fixed at construction, so the only
    faithful way to get level ``s`` is an env built with ``num_levels=1, start_level=s``.
    Its start state, written into any sub-env built with the same options, makes that
    sub-env play level ``s`` from its first frame, and procgen's own auto-reset keeps
    replaying ``s`` afterwards.
    """

    def __init__(self, config: ProcgenConfig) -> None:
        self._options = config.procgen_options()
        self._cap = config.state_cache_size
        self._states: OrderedDict[int, bytes] = OrderedDict()
        self.builds = 0
        self.hits = 0
        self.build_s = 0.0

    def __len__(self) -> int:
        return len(self._states)

    def prefetch(self, levels: Sequence[int]) -> None:
        """Build the states of ``levels`` now (at most ``state_cache_size`` stay cached)."""
        for lv in levels:
            self.get(int(lv))

    def get(self, level: int) -> bytes:
        """The start state of ``level`` (a probe build on a miss)."""
        st = self._states.get(level)
        if st is not None:
            self._states.move_to_end(level)
            self.hits += 1
            return st
        t0 = time.perf_counter()
        probe = procgen_module().ProcgenGym3Env(
            num=1, num_levels=1, start_level=int(level), rand_seed=int(level), num_threads=0, **self._options
        )
        st = probe.get_state()[0]
        probe.close()
        self.build_s += time.perf_counter() - t0
        self.builds += 1
        self._states[level] = st
        if len(self._states) > self._cap:
            self._states.popitem(last=False)
        return st


class LevelSets:
    """Training space, held-out space and the lookup both envs use to validate tasks."""

    def __init__(self, cfg: ProcgenConfig) -> None:
        tag = f"procgen/{cfg.game}/{cfg.distribution_mode}"
        self.train = Discrete(range(cfg.start_level, cfg.start_level + cfg.num_levels), name=f"{tag}/train")
        self.test = Discrete(range(cfg.test_start, cfg.test_start + cfg.num_test_levels), name=f"{tag}/test")
        self.tag = tag

    def resolve(self, task: Task | int) -> Task:
        """``task`` as a `Task` of the training or held-out set (an int is a level seed).

        Raises `TaskNotInSpace` naming the level if it is in neither set.
        """
        if isinstance(task, (int, np.integer)) and not isinstance(task, (bool, np.bool_)):
            v = int(task)
            for space in (self.train, self.test):
                if space.values[0] <= v <= space.values[-1]:  # both sets are contiguous ranges
                    return space.task(v)
            raise TaskNotInSpace(self._outside(f"level {v}"))
        if not isinstance(task, Task):
            raise TaskNotInSpace(
                f"set_task expects an openended Task or a level seed (int), got "
                f"{type(task).__name__}; build one with env.task_space().task(level) or take one "
                f"from env.test_levels()"
            )
        if self.train.contains(task) or self.test.contains(task):
            return task
        what = task.params[0] if len(task.params) == 1 else task.params
        raise TaskNotInSpace(self._outside(f"level {what!r} (task {task.id})"))

    def _outside(self, what: str) -> str:
        tr, te = self.train.values, self.test.values
        return (
            f"{self.tag}: {what} is neither a training level ({tr[0]}..{tr[-1]}) nor a held-out "
            f"level ({te[0]}..{te[-1]})"
        )


def level_complete(env: Any) -> np.ndarray:
    """``prev_level_complete`` of every sub-env, as of the last ``observe()``.

    SPEEDUP: gym3's ``get_info()`` builds a list of dicts for all N sub-envs (~20-250 us);
    the same values sit in the info buffer ``observe()`` just filled (gym3 0.3.3 is frozen
    upstream, so the private name is stable; ``get_info`` is the fallback).
    """
    buf = getattr(env, "_info", None)
    if isinstance(buf, dict) and "prev_level_complete" in buf:
        return buf["prev_level_complete"]
    return np.array([i["prev_level_complete"] for i in env.get_info()])


def is_truncated(procgen_ended: bool, complete: bool, length: int) -> bool:
    """Time limit (truncated) vs end of the game (terminated).

    Ours (``max_episode_steps``) cuts an episode procgen has not ended; procgen's own ends
    at 1000 steps without a completed level are its timeout; any other end is the game's.
    """
    if not procgen_ended:
        return True
    return not complete and length >= PROCGEN_TIMEOUT


def procgen_observation_space() -> gym.spaces.Box:
    """One procgen frame: uint8 ``(64, 64, 3)``."""
    return gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
