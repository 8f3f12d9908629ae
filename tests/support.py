"""Helpers shared by several test modules (not collected: no ``test_`` prefix).

* `CountEnv` / `PairingTeacher`: the task-id pairing check of the EnvPool and RLlib tests.
  `CountEnv`'s episode return and length are functions of its task, so the service-side
`PairingTeacher` can verify every outcome against the task its id names: a host that
  reported the next task's id, a neighbour's, or a stale one fails the check.
* `FAST_PPO`: small PPO settings for tests of the RLlib plumbing.
* `local_ray`: a module-scoped local Ray with a short temp dir; Ray workers cannot import
  test modules, so it ships the caller's module and this one by value.
* `ScriptedClient` / `HookRecorder` / `counter_delta`: a teacher client with a fixed task
  sequence, an `EpisodeHooks` object recording every call, and a counter snapshot that
  restores process-wide counters (the episode-host tests).
* `toy_mastered`: cells of the toy learner a teacher gets mastered in a short run.
* `teacher_spaces`: a small task space for every built-in teacher (input-validation and
  property tests drive each teacher on it).
* `slow_gmm_fits`: make every fast GMM fit take a given extra time (refit timing tests).
* `load_script`: import a script of the repository (a benchmark, an example) as a module.
* `bounded_address_space`: a block whose huge allocations fail with MemoryError instead
  of reaching the OOM killer.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from openended.envs.base import TaskEnvMixin
from openended.envs.toy import ToyLearner
from openended.tasks import Box, Discrete, Outcome, Task, TaskSpace, TextSpace
from openended.teachers import BaseTeacher, TeacherConfig

SPACE = Box([0.0], [1.0], names=["level"], name="count")
#: PPO settings for RLlib plumbing tests: small and fast, the point is not learning.
FAST_PPO = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "model_config": {"fcnet_hiddens": [16, 16]},
}


def episode_length(level: float) -> int:
    return 3 + int(level * 5)


class CountEnv(TaskEnvMixin, gym.Env):
    """An episode of task ``level`` lasts ``3 + int(5 * level)`` steps and pays ``level``
    per step, so return and length identify the task that was run."""

    def __init__(self) -> None:
        self._space = SPACE
        self.observation_space = gym.spaces.Box(0.0, 10.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        self._level, self._t = float(task.params[0]), 0
        return np.array([self._level, 0.0], np.float32), {"task_id": task.id}

    def step(self, action: Any):
        self._t += 1
        done = self._t >= episode_length(self._level)
        info: dict[str, Any] = {"task_id": self._current_task.id}
        if done:
            info["success"] = self._level > 0.5
        return np.array([self._level, self._t], np.float32), self._level, False, done, info


class PairingTeacher(BaseTeacher):
    """Uniform tasks; checks every outcome against the task its ``task_id`` names."""

    name = "pairing_test"
    Config = TeacherConfig

    def __init__(self, seed: int = 0) -> None:
        super().__init__(SPACE, TeacherConfig(seed=seed))
        self.pairs = 0
        self.mismatches = 0

    def _sample(self, n: int, student: str) -> list[Task]:
        return self.space.sample_uniform(self.rng, n)

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        for task, o in zip(tasks, outcomes):
            n = episode_length(task.params[0])
            self.pairs += 1
            if o.length != n or abs(o.episode_return - n * task.params[0]) > 1e-5:
                self.mismatches += 1

    def _stats(self) -> dict:
        return {"pairs": self.pairs, "mismatches": self.mismatches}


class ScriptedClient:
    """Hands out a fixed sequence of tasks (cycling) and keeps every reported outcome."""

    def __init__(self, tasks: list[Task]) -> None:
        self._tasks = tasks
        self._n = 0
        self.reported: list[Outcome] = []

    def next_task(self) -> Task:
        task = self._tasks[self._n % len(self._tasks)]
        self._n += 1
        return task

    def report(self, outcome: Outcome) -> None:
        self.reported.append(outcome)

    def flush(self, wait: bool = False) -> None:
        pass

    def stats(self) -> dict:
        return {"issued": self._n}

    def close(self) -> None:
        pass


class HookRecorder:
    """Records every hook call as ``(name, env_index, what)``; checks the keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def task_change(self, *, env_index: int, old_task: Task | None, new_task: Task, **kw: Any) -> None:
        assert kw == {}
        self.calls.append(("task_change", env_index, None if old_task is None else old_task.id, new_task.id))

    def episode_start(self, *, env_index: int, task: Task, **kw: Any) -> None:
        assert set(kw) == {"obs", "info", "seed"}
        infos = kw["info"].values() if "task_id" not in kw["info"] else [kw["info"]]  # a team: one per agent
        assert all(info["task_id"] == task.id for info in infos)
        self.calls.append(("episode_start", env_index, task.id))

    def episode_end(self, *, env_index: int, outcome: Outcome, **kw: Any) -> None:
        assert set(kw) == {"info"}
        self.calls.append(("episode_end", env_index, outcome.task_id))


class EndsOnly:
    """Defines one hook: only it is called."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def episode_end(self, *, env_index: int, outcome: Outcome, **kw: Any) -> None:
        self.outcomes.append(outcome)


@contextmanager
def counter_delta(counters: Any) -> Iterator[dict[str, int]]:
    """Yield a dict that, on exit, holds how much each of ``counters`` (an `EpisodeCounters`)
    grew inside the block, and put the counters back: process-wide counters are read as
    lifetime totals by later tests in the same process."""
    before = counters.as_dict()
    delta: dict[str, int] = {}
    try:
        yield delta
    finally:
        after = counters.as_dict()
        delta.update({k: after[k] - before[k] for k in after})
        for k, v in before.items():
            setattr(counters, k, v)


@contextmanager
def local_ray(namespace: str, caller: str) -> Iterator[None]:
    """Start a fresh 2-CPU local Ray for one test module (shut down on exit)."""
    import ray

    tmp = tempfile.mkdtemp(prefix="oe-ray-")  # short: Ray's socket paths must stay < 108 bytes
    ray.cloudpickle.register_pickle_by_value(sys.modules[caller])
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if ray.is_initialized():  # a previous module left one running: start from a known state
        ray.shutdown()
    ray.init(num_cpus=2, namespace=namespace, include_dashboard=False, _temp_dir=tmp, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def toy_mastered(teacher: Any, episodes: int, batch: int = 10) -> int:
    """Cells of teachDeepRL's 10x10 toy learner mastered after ``episodes`` taught by ``teacher``."""
    env = ToyLearner()
    for _ in range(episodes // batch):
        tasks = teacher.sample(batch)
        teacher.update([Outcome(task_id=x.id, episode_return=env.episode(x.params)) for x in tasks])
    return int(round(env.score()))  # % of 100 cells = cells mastered


def teacher_spaces() -> dict[str, TaskSpace]:
    """A small task space of the right kind for each built-in teacher."""
    box, levels = Box([0, 0], [1, 1]), Discrete(6)
    return {
        "random": box,
        "alp_gmm": box,
        "covar_gmm": box,
        "riac": box,
        "plr": levels,
        "lp": levels,
        "omni": levels,
        "webrl": TextSpace(["pick up the key", "open the door", "go to the red ball"]),
    }


#: SC2 minigames on pysc2's mock game, small and quick: 8x8 layers, 3 feature layers, 6-step episodes.
SC2_SMALL: dict[str, Any] = {
    "backend": "mock",
    "screen": 8,
    "minimap": 8,
    "screen_features": ["player_relative", "selected"],
    "minimap_features": ["player_relative"],
    "mock_episode_length": 6,
}


def tensorboard_scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` read back from TensorBoard event files (TFRecord framing)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def run_cli_with_test_plugins(run_dir: pathlib.Path, sets: dict) -> subprocess.CompletedProcess:
    """`openended run` (toy_alpgmm.yaml overridden by ``sets``) with tests/data's plugin envs importable."""
    root = pathlib.Path(__file__).resolve().parents[1]
    args = ["run", "experiments/toy_alpgmm.yaml", "--run-dir", str(run_dir), "--no-progress"]
    args += [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="300")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "tests" / "data"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "openended.cli", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def stats_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The growth of each numeric entry of a process-wide stats dict (``curriculum_stats()``)
    between two reads: earlier tests in the same process leave their episodes in the totals."""
    return {k: v - before.get(k, 0) if isinstance(v, (int, float)) else v for k, v in after.items()}


def slow_gmm_fits(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every fast-mode fit a GMM teacher submits sleeps ``seconds`` first (then fits for real)."""
    import openended.teachers.gmm.base as gmm_base  # the module whose fit_fast GMM teachers submit

    real = gmm_base.fit_fast

    def slow_fit(*args: Any) -> dict:
        time.sleep(seconds)
        return real(*args)

    monkeypatch.setattr(gmm_base, "fit_fast", slow_fit)


def load_script(path: pathlib.Path, name: str, *, register: bool = True) -> Any:
    """Import the script at ``path`` as module ``name``.

    ``register``: put it in ``sys.modules`` (its dataclasses and pickles then resolve in this
    process); off, cloudpickle ships its functions to Ray workers by value, where the
    script is not importable.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: Address space a block under `bounded_address_space` may add to this process: far above
#: what any accepted config needs to build, far below what fills a CI machine.
MEMORY_HEADROOM_BYTES = 4 * 2**30


@contextmanager
def bounded_address_space(headroom: int = MEMORY_HEADROOM_BYTES) -> Iterator[None]:
    """This process's address space bounded to its current size plus ``headroom`` (Linux; elsewhere a no-op).

    Why: a test that feeds configs sizes (fuzzing, 10**12 counts) must fail with a
    MemoryError when something builds a huge object, not have the OOM killer end the whole
    run (``env.config.impossible: 10**12`` once built a 10**12-entry task list in CI).
    Import what the block needs (RLlib, torch) before it: their libraries' mappings then
    count in the current size, not against the headroom.
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    import resource

    import psutil

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = psutil.Process().memory_info().vms + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
