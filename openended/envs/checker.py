"""`check_task_env`: drive an env family through the task-env contract (see `envs/base.py`).

Checks, with messages naming the likely cause:
* ``task_space()`` returns a `TaskSpace`; tasks sampled from it are accepted;
* ``set_task`` takes effect at the next ``reset`` only (not mid-episode);
* ``info["task_id"]`` names the task of the running episode;
* the same seed and task give the same first observation;
* a task outside the space is rejected with `TaskNotInSpace`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from openended.errors import TaskNotInSpace
from openended.tasks import Box, Discrete, Task, TaskSpace, TextSpace

__all__ = ["check_task_env", "TaskEnvCheckError"]


class TaskEnvCheckError(AssertionError):
    """An env broke the task-env contract."""


def _obs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_obs_equal(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _outside(space: TaskSpace) -> Task | None:
    if isinstance(space, Box):
        return Task("f" * 16, tuple((space.high + 1.0).tolist()))
    if isinstance(space, Discrete):
        return Task("e" * 16, ("__not_a_value__",))
    if isinstance(space, TextSpace):
        return Task("d" * 16, (), "")
    return None


def check_task_env(make: Callable[[], Any], *, seed: int = 0, steps: int = 3) -> None:
    """Raise `TaskEnvCheckError` if envs built by ``make()`` break the contract."""
    env, twin = make(), make()
    try:
        space = env.task_space()
        if not isinstance(space, TaskSpace):
            raise TaskEnvCheckError(f"task_space() returned {type(space).__name__}, not an openended TaskSpace")
        rng = np.random.default_rng(seed)
        if isinstance(space, TextSpace) and not space.seed_texts:
            raise TaskEnvCheckError("a TextSpace env must list its seed tasks so hosts can start")
        t1, t2 = space.sample_uniform(rng, 2)
        env.set_task(t1)
        obs, info = env.reset(seed=seed)
        if info.get("task_id") != t1.id:
            raise TaskEnvCheckError(
                f"reset info['task_id']={info.get('task_id')!r}, expected {t1.id}: the env must report the task it runs"
            )
        if env.current_task is None or env.current_task.id != t1.id:
            raise TaskEnvCheckError("current_task is not the task passed to set_task before reset")
        env.set_task(t2)  # queued: must not change the running episode
        for _ in range(steps):
            _, _, term, trunc, info = env.step(env.action_space.sample())
            if "task_id" in info and info["task_id"] != t1.id:
                raise TaskEnvCheckError("set_task changed the task mid-episode; it must wait for the next reset")
            if term or trunc:
                break
        _, info = env.reset()
        if info.get("task_id") != t2.id:
            raise TaskEnvCheckError("the task queued with set_task was not applied at the next reset")
        twin.set_task(t1)
        obs2, _ = twin.reset(seed=seed)
        if not _obs_equal(obs, obs2):
            raise TaskEnvCheckError(
                "same seed and task gave different first observations; seed every random draw from the env's np_random"
            )
        bad = _outside(space)
        if bad is not None:
            try:
                env.set_task(bad)
            except TaskNotInSpace:
                pass
            else:
                raise TaskEnvCheckError(f"set_task accepted a task outside {space!r}; validate in set_task")
    finally:
        for e in (env, twin):
            e.close()
