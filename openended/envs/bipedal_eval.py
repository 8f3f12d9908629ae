"""Evaluating policies on the BipedalWalker task families: test sets, episodes, the scripted gait, videos.

Contents:
    stump_grid_test_set, uniform_test_set -- the published test sets' constructions.
    evaluate            -- mean return per test task and the % mastered.
    run_episode         -- one episode of a ``policy_fn`` (what evaluate and write_video run).
    HeuristicPolicy     -- gymnasium's scripted biped gait as a stateful ``policy_fn``.
    write_video         -- a GIF of a policy on a task.

Why apart from the envs (`openended.envs.bipedal`): the env module is the simulator and its
task contract; these are tools that *use* an env (a test set, a policy, a rollout loop, a
GIF writer) and change for other reasons. Pure Python, no Ray: ``evaluate(parallel=...)``
takes any order-preserving map, which the runtime supplies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium.envs.box2d import bipedal_walker as bw
from numpy.typing import ArrayLike

from openended.envs.bipedal import MASTERY_RETURN, STUMP_PARAM_NAMES, ParametricBipedalEnv
from openended.errors import ConfigError
from openended.tasks import Box, Task

__all__ = [
    "stump_grid_test_set",
    "uniform_test_set",
    "evaluate",
    "run_episode",
    "HeuristicPolicy",
    "write_video",
    "PolicyFn",
    "ParallelMap",
]

PolicyFn = Callable[[np.ndarray], Any]
ParallelMap = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


# ------------------------------------------------------------------------ test sets
def stump_grid_test_set(
    n: int = 10,
    space: Box | None = None,
    *,
    height: tuple[float, float] = (0.0, 3.0),
    spacing: tuple[float, float] = (0.0, 6.0),
) -> list[Task]:
    """TeachMyAgent's Stump Tracks test set: an ``n x n`` grid over ``[0, 3] x [0, 6]`` (ends included).

    The grid stays on ``[0, 3] x [0, 6]`` whatever the training bounds (teachDeepRL
    evaluates every stump-height experiment on the ``[0, 3]`` set); ``space`` only supplies
    the task ids' space and checks that the grid lies inside it. Order: height-major.
    """
    if n < 1:
        raise ConfigError(f"n: must be >= 1, got {n}")
    if space is None:
        space = Box([0.0, 0.0], [3.0, 6.0], names=list(STUMP_PARAM_NAMES), name="stump_tracks")
    hs, ss = np.linspace(*height, n), np.linspace(*spacing, n)
    grid = np.array([(h, s) for h in hs for s in ss], dtype=np.float64)
    return [t._replace(origin="test") for t in space.tasks(grid)]


def uniform_test_set(space: Box, n: int = 50, seed: int = 4222) -> list[Task]:
    """``n`` tasks drawn uniformly from ``space`` with ``np.random.default_rng(seed)``.

    Same construction as teachDeepRL's test sets (50 uniform tasks, seed 4222) but a
    different generator (theirs used the global legacy ``np.random``), so the tasks are
    not their pickle's tasks.
    """
    if not isinstance(space, Box):
        raise ConfigError(f"uniform_test_set: space must be a Box, got {type(space).__name__}")
    if n < 1:
        raise ConfigError(f"n: must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    return [t._replace(origin="test") for t in space.tasks(space.sample_array(rng, n))]


# ------------------------------------------------------------------------ evaluation
def run_episode(
    env: ParametricBipedalEnv,
    policy_fn: PolicyFn,
    task: Task | Sequence[float] | None = None,
    seed: int | None = None,
    max_steps: int | None = None,
    on_step: Callable[[ParametricBipedalEnv], None] | None = None,
) -> dict[str, Any]:
    """Run one episode; returns ``{"episode_return", "length", "success", "task_id"}``.

    ``policy_fn(obs) -> action``; if it has a ``reset()`` method it is called first, so
    stateful policies (``HeuristicPolicy``, recurrent nets) start fresh each episode.
    """
    if task is not None:
        env.set_task(task)
    reset = getattr(policy_fn, "reset", None)
    if callable(reset):
        reset()
    obs, info = env.reset(seed=seed)
    task_id = str(info["task_id"])  # the task the episode runs (the task-env contract's reset info)
    if on_step is not None:
        on_step(env)
    total, length, info = 0.0, 0, {}
    while True:
        obs, reward, terminated, truncated, info = env.step(policy_fn(obs))
        total += reward
        length += 1
        if on_step is not None:
            on_step(env)
        if terminated or truncated or (max_steps is not None and length >= max_steps):
            break
    return {
        "episode_return": total,
        "length": length,
        "success": total > MASTERY_RETURN,
        "task_id": task_id,
    }


def _evaluate_task(
    task: Task, *, policy_fn: PolicyFn, env_factory: Callable[[], Any], episodes: int, seed: int
) -> list[float]:
    env = env_factory()
    try:
        return [run_episode(env, policy_fn, task, seed=seed + k)["episode_return"] for k in range(episodes)]
    finally:
        env.close()


def _serial_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [fn(x) for x in items]


def evaluate(
    policy_fn: PolicyFn,
    env_factory: Callable[[], Any],
    test_set: Sequence[Task],
    episodes: int = 1,
    *,
    seed: int = 0,
    parallel: ParallelMap | None = None,
) -> dict[str, Any]:
    """Mean return per test task and the fraction of tasks mastered (mean return > 230).

    Episode ``k`` of every task uses seed ``seed + k``: tasks are compared on the same
    random numbers, and a re-run gives the same numbers.

    Args:
        policy_fn: ``obs -> action`` (optionally with ``reset()``; see `run_episode`).
        env_factory: zero-argument callable building one env of the family.
        test_set: tasks of the env's space (`stump_grid_test_set`, `uniform_test_set`).
        episodes: episodes per task.
        seed: base seed.
        parallel: ``map``-like ``parallel(fn, tasks) -> results`` (in order). ``None`` runs
            serially in-process; the runtime passes e.g. a Ray- or process-pool map. ``fn``
            is a picklable `functools.partial`; ``policy_fn`` and ``env_factory`` must be
            picklable for a process-based map.

    Returns:
        ``{"returns": {task_id: mean return}, "mastered": fraction in [0, 1]}`` (the unit of every "mastered").
    """
    if episodes < 1:
        raise ConfigError(f"episodes: must be >= 1, got {episodes}")
    tasks = list(test_set)
    if not tasks:
        raise ConfigError("test_set: is empty")
    fn = functools.partial(_evaluate_task, policy_fn=policy_fn, env_factory=env_factory, episodes=episodes, seed=seed)
    results = list((parallel or _serial_map)(fn, tasks))
    if len(results) != len(tasks):
        raise ConfigError(
            f"parallel: returned {len(results)} results for {len(tasks)} tasks; it must be an order-preserving map"
        )
    returns = {t.id: float(np.mean(r)) for t, r in zip(tasks, results)}
    mastered = sum(float(np.mean(r)) > MASTERY_RETURN for r in results)
    return {"returns": returns, "mastered": mastered / len(tasks)}


class HeuristicPolicy:
    """gymnasium's scripted biped gait (``BipedalWalkerHeuristics``) as a ``policy_fn``.

    Deterministic and stateful (``reset()`` restarts the gait); it knows nothing of
    obstacles, so its return falls as stumps grow, which makes it a cheap probe of task
    difficulty. 4-joint bodies only (``classic``, ``short``).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Restart the gait (`run_episode` calls it before each episode)."""
        self._h = bw.BipedalWalkerHeuristics()
        self._h.a = np.zeros(4)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The gait's action for ``obs`` (a 24-D observation of a 4-joint body)."""
        if len(obs) != 24:
            raise ConfigError(f"HeuristicPolicy drives 4-joint bodies (24-D observations), got {len(obs)}-D")
        return self._h.step_heuristic(obs).astype(np.float32)


def write_video(
    env: ParametricBipedalEnv,
    policy_fn: PolicyFn,
    task: Task | Sequence[float] | None,
    path: str,
    *,
    seed: int | None = 0,
    max_steps: int | None = None,
    every: int = 2,
    fps: float | None = None,
) -> dict[str, Any]:
    """Write a GIF of ``policy_fn`` running one episode of ``task`` to ``path``.

    ``env`` must have ``render_mode="rgb_array"`` (headless). Every ``every``-th frame is
    kept (GIFs of 2,000 full frames are large); ``fps=None`` plays in real time
    (50 / ``every``). ``task=None`` keeps the env's current or queued task. Returns the
    episode summary (`run_episode`) plus ``"frames"``.
    """
    import imageio.v2 as imageio  # only needed here

    if env.render_mode != "rgb_array":
        raise ConfigError(f"write_video: build the env with render_mode='rgb_array', got {env.render_mode!r}")
    if every < 1:
        raise ConfigError(f"every: must be >= 1, got {every}")
    frames: list[ArrayLike] = []
    counter = [0]

    def grab(e: ParametricBipedalEnv) -> None:
        if counter[0] % every == 0:
            frame = e.render()
            assert frame is not None, "an rgb_array env renders a frame"
            frames.append(frame)
        counter[0] += 1

    summary = run_episode(env, policy_fn, task, seed=seed, max_steps=max_steps, on_step=grab)
    imageio.mimsave(path, frames, duration=1000.0 / (fps or bw.FPS / every), loop=0)
    summary["frames"] = len(frames)
    return summary
