"""Held-out evaluation of an RLlib policy on a fixed test set of tasks.

Test sets (``evaluation.test_set``):

* ``grid``: Stump Tracks' 10x10 grid over [0,3]x[0,6] (TeachMyAgent's 100-task set); for
  another Box family, a regular grid of at most ``max_tasks`` points.
* ``uniform``: ``max_tasks`` uniform tasks from the training space (seed 4222, as
  teachDeepRL's test sets).
* ``held_out``: the family's own held-out tasks (Procgen's test levels, never given to
  the teacher).
* ``teacher``: every task the teacher knows (OMNI's sweep; the driver asks the service).
  With ``report_to_teacher`` the episodes go back to the teacher flagged ``info["eval"]``.

Dict/Tuple observations (Crafter) are flattened as RLlib's connector flattens them in
training (`FlattenLikeRLlib`).

All test envs step together and the policy acts on the whole batch (deterministic
actions), so one evaluation costs about one env step per task per step, not one policy
call per env step. "Mastered" = the fraction of tasks whose episode reported
``info["success"]`` (BipedalWalker: return > 230; Procgen: level completed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome, Task

__all__ = ["resolve_test_set", "rllib_policy", "module_policy", "evaluate_tasks", "sweep_outcomes", "FlattenLikeRLlib"]

PolicyFn = Callable[[Any], np.ndarray]
#: One test episode: (task, return, success or None, length, cut at the step cap).
Episode = tuple[Task, float, "bool | None", int, bool]


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

    def tensor(x: Any) -> Any:  # a batch, or a dict of batches (masked observations: mask + the rest)
        if isinstance(x, dict):
            return {k: tensor(v) for k, v in x.items()}
        return torch.as_tensor(np.asarray(x), dtype=torch.float32)

    def act(obs: Any) -> np.ndarray:
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: tensor(obs)})
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
    episodes_per_task: int = 1,
    max_envs: int | None = None,
) -> dict[str, Any]:
    """``episodes_per_task`` deterministic episodes per task, stepped together ``max_envs`` at a time.

    Returns mean return, mastered fraction (episodes that ended with ``info["success"]``),
    episodes cut by ``max_steps``, per-task returns (mean over its episodes) and success
    (a bool for one episode, the fraction for several), and ``episodes``: one
    `Episode` per episode (an OMNI sweep reports them to the teacher).
    """
    runs = [t for t in tasks for _ in range(episodes_per_task)]
    chunk = max(1, max_envs or len(runs) or 1)
    episodes: list[Episode] = []
    unfinished = 0
    for start in range(0, len(runs), chunk):
        part, left = _run_chunk(make_env, runs[start : start + chunk], policy, seed + start, max_steps)
        episodes += part
        unfinished += left
    returns: dict[str, list[float]] = {}
    succ: dict[str, list[bool | None]] = {}
    for t, r, s, _, _ in episodes:
        returns.setdefault(t.id, []).append(r)
        succ.setdefault(t.id, []).append(s)
    # An episode still running at the step cap (or one whose env reports no success)
    # does not count as mastered.
    mastered = sum(1 for _, _, s, _, _ in episodes if s) / len(episodes) if episodes else None
    return {
        "tasks": len(tasks),
        "episodes_per_task": episodes_per_task,
        "mean_return": float(np.mean([r for _, r, _, _, _ in episodes])) if episodes else None,
        "mastered": mastered,
        "unfinished": unfinished,
        "returns": {k: float(np.mean(v)) for k, v in returns.items()},
        # Per task, for the dashboard's held-out heatmap (evaluations.jsonl only).
        "task_params": {t.id: [float(p) for p in t.params] for t in tasks if _numeric(t.params)},
        "task_success": {k: _success_summary(v) for k, v in succ.items()},
        "episodes": episodes,
    }


def _success_summary(values: list[bool | None]) -> bool | float | None:
    if len(values) == 1:
        return values[0]
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _run_chunk(
    make_env: Callable[[], Any], tasks: Sequence[Task], policy: PolicyFn, seed: int, max_steps: int
) -> tuple[list[Episode], int]:
    """One episode per entry of ``tasks``, all envs stepped together; (episodes, still running at the cap)."""
    envs = [make_env() for _ in tasks]
    try:
        obs = []
        for i, (env, task) in enumerate(zip(envs, tasks)):
            env.set_task(task)
            o, _ = env.reset(seed=seed + i)
            obs.append(o)
        space: Any = envs[0].action_space if envs else None
        returns = np.zeros(len(tasks))
        lengths = np.zeros(len(tasks), dtype=np.int64)
        success: list[bool | None] = [None] * len(tasks)
        active = list(range(len(tasks)))
        for _ in range(max_steps):
            if not active:
                break
            actions = policy(stack_observations([obs[i] for i in active]))
            still = []
            for a, i in zip(actions, active):
                if hasattr(space, "low"):
                    a = np.clip(a, space.low, space.high)
                o, r, term, trunc, info = envs[i].step(a)
                returns[i] += float(r)
                lengths[i] += 1
                obs[i] = o
                if term or trunc:
                    s = info.get("success")
                    success[i] = None if s is None else bool(s)
                else:
                    still.append(i)
            active = still
        cut = set(active)
        eps = [
            (t, float(r), s, int(n), i in cut) for i, (t, r, s, n) in enumerate(zip(tasks, returns, success, lengths))
        ]
        return eps, len(active)
    finally:
        for e in envs:
            e.close()


def stack_observations(observations: Sequence[Any]) -> Any:
    """A batch of observations: one array, or per key for dict observations (masked: mask + the rest)."""
    first = observations[0]
    if isinstance(first, dict):
        return {k: stack_observations([o[k] for o in observations]) for k in first}
    return np.stack(observations)


def sweep_outcomes(episodes: Sequence[Episode], student: str, tag: str) -> list[Outcome]:
    """An evaluation sweep's episodes as outcomes flagged ``info["eval"]`` (ids unique per ``tag``).

    An episode cut at the step cap did not succeed (``success=False``, ``info["cut"]``),
    as it does not count as mastered: OMNI scores an unfinished evaluation as a failure.
    """
    out = []
    for k, (t, r, s, n, cut) in enumerate(episodes):
        info = {"eval": True, "cut": True} if cut else {"eval": True}
        success = False if cut and s is None else s
        out.append(
            Outcome(t.id, r, success=success, length=n, student_id=student, info=info, episode_id=f"eval-{tag}-{k}")
        )
    return out


class FlattenLikeRLlib(gym.ObservationWrapper):
    """Dict/Tuple observations flattened exactly as RLlib's ``FlattenObservations`` connector does.

    Training flattens in the env-to-module connector (Crafter: image + task id -> one
    vector, Discrete parts one-hot); evaluation steps envs itself, so it needs the same
    vector, built with the same RLlib function, or the policy would see other inputs.
    """

    def __init__(self, env: gym.Env) -> None:
        from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
        from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

        super().__init__(env)
        self._flatten = flatten_inputs_to_1d_tensor
        self._struct = get_base_struct_from_space(env.observation_space)
        size = self.observation(env.observation_space.sample()).shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        """The flat float32 vector the trained policy saw."""
        flat = self._flatten(observation, spaces_struct=self._struct, batch_axis=False)
        return np.asarray(flat, dtype=np.float32)

    def set_task(self, task: Task) -> None:
        """Forwarded: evaluation sets tasks directly."""
        self.env.set_task(task)  # type: ignore[attr-defined]


def _numeric(params: tuple) -> bool:
    """Whether a task's params are plain numbers (Box tasks, integer levels), i.e. plottable."""
    return all(isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool) for p in params)
