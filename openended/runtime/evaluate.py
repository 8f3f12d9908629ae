"""Held-out evaluation of an RLlib policy on a fixed test set of tasks.

Test sets (``evaluation.test_set``):

* ``grid``: Stump Tracks' 10x10 grid over [0,3]x[0,6] (TeachMyAgent's 100-task set); for
  another Box family, a regular grid of at most ``max_tasks`` points.
* ``uniform``: ``max_tasks`` uniform tasks from the training space (seed 4222, as
  teachDeepRL's test sets); of a Discrete space, that many distinct values (all if fewer).
* ``held_out``: the family's own held-out tasks (Procgen's test levels, never given to
  the teacher).

All test envs step together and the policy acts on the whole batch (deterministic
actions), so one evaluation costs about one env step per task per step, not one policy
call per env step. "Mastered" = the fraction of tasks whose episode reported
``info["success"]`` (BipedalWalker: return > 230; Procgen: level completed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Task

__all__ = ["resolve_test_set", "rllib_policy", "module_policy", "evaluate_tasks"]

PolicyFn = Callable[[np.ndarray], np.ndarray]


def resolve_test_set(env: Any, family: str, name: str, max_tasks: int, seed: int = 4222) -> list[Task]:
    """The test set ``name`` (module docstring) of ``env``'s task space, at most ``max_tasks`` tasks.

    Raises `ConfigError` naming ``evaluation.test_set`` when the family cannot provide it
    (no held-out tasks, or a grid of a non-Box space).
    """
    space = env.task_space()
    if name == "held_out":
        fn = getattr(env, "test_levels", None) or getattr(env, "test_tasks", None)
        if fn is None:
            raise ConfigError(f"evaluation.test_set: family {family!r} has no held-out tasks; use grid or uniform")
        return list(fn())[:max_tasks]
    if not isinstance(space, Box):
        if name == "uniform" and isinstance(space, Discrete):  # distinct values: results are keyed by task id
            picked = np.random.default_rng(seed).choice(space.n, size=min(max_tasks, space.n), replace=False)
            return [space.task(space.values[i], origin="test") for i in np.sort(picked)]
        if name == "uniform":
            return space.sample_uniform(np.random.default_rng(seed), max_tasks)
        raise ConfigError(f"evaluation.test_set: {name!r} needs a Box task space; {family!r} has {space!r}")
    if name == "grid":
        if family == "stump_tracks":
            from openended.envs.bipedal_eval import stump_grid_test_set

            return stump_grid_test_set(10, space)
        per_dim = max(2, int(math.floor(max_tasks ** (1.0 / space.dim))))
        axes = [np.linspace(lo, hi, per_dim) for lo, hi in zip(space.low, space.high)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, space.dim)
        return space.tasks(grid, origin="test")
    if name == "uniform":
        return space.tasks(space.sample_array(np.random.default_rng(seed), max_tasks), origin="test")
    raise ConfigError(f"evaluation.test_set: must be one of grid, uniform, held_out; got {name!r}")


def rllib_policy(algo: Any, module_id: str | None = None) -> PolicyFn:
    """Deterministic batched actions from an RLlib (new API stack) algorithm's RLModule."""
    return module_policy(algo.get_module(module_id) if module_id else algo.get_module())


def module_policy(module: Any) -> PolicyFn:
    """Deterministic batched actions from an RLModule (an algorithm's, or one loaded from a checkpoint)."""
    import torch
    from ray.rllib.core.columns import Columns

    dist_cls = module.get_inference_action_dist_cls()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: torch.as_tensor(np.asarray(obs), dtype=torch.float32)})
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic()
            return dist.sample().cpu().numpy()

    return act


def evaluate_tasks(
    make_env: Callable[[], Any],
    tasks: Sequence[Task],
    policy: PolicyFn,
    *,
    seed: int = 0,
    max_steps: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    progress_every_s: float = 10.0,
) -> dict[str, Any]:
    """One deterministic episode per task, all envs stepped together.

    Returns mean return, mastered fraction (episodes that ended with ``info["success"]``),
    episodes cut by ``max_steps`` and per-task returns. ``progress(done, total)`` is called
    at most every ``progress_every_s`` seconds while episodes run (long held-out sets).
    """
    envs = [make_env() for _ in tasks]
    try:
        obs = []
        for i, (env, task) in enumerate(zip(envs, tasks)):
            env.set_task(task)
            o, _ = env.reset(seed=seed + i)
            obs.append(o)
        space = envs[0].action_space
        returns = np.zeros(len(tasks))
        success: list[bool | None] = [None] * len(tasks)
        active = list(range(len(tasks)))
        last_report = time.monotonic()
        for _ in range(max_steps):
            if not active:
                break
            if progress is not None and time.monotonic() - last_report >= progress_every_s:
                progress(len(tasks) - len(active), len(tasks))
                last_report = time.monotonic()
            actions = policy(np.stack([obs[i] for i in active]))
            still = []
            for a, i in zip(actions, active):
                if hasattr(space, "low"):
                    a = np.clip(a, space.low, space.high)
                o, r, term, trunc, info = envs[i].step(a)
                returns[i] += float(r)
                obs[i] = o
                if term or trunc:
                    s = info.get("success")
                    success[i] = None if s is None else bool(s)
                else:
                    still.append(i)
            active = still
        # An episode still running at the step cap (or one whose env reports no success)
        # does not count as mastered.
        mastered = sum(1 for s in success if s) / len(tasks) if len(tasks) else None
        return {
            "tasks": len(tasks),
            "mean_return": float(returns.mean()) if len(tasks) else None,
            "mastered": mastered,
            "unfinished": len(active),
            "returns": {t.id: float(r) for t, r in zip(tasks, returns)},
            # Per task, for the dashboard's held-out heatmap (evaluations.jsonl only).
            "task_params": {t.id: [float(p) for p in t.params] for t in tasks if _numeric(t.params)},
            "task_success": {t.id: s for t, s in zip(tasks, success)},
        }
    finally:
        for e in envs:
            e.close()


def _numeric(params: tuple) -> bool:
    """Whether a task's params are plain numbers (Box tasks, integer levels), i.e. plottable."""
    return all(isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool) for p in params)
