"""BipedalWalker evaluation (`openended.envs.bipedal_eval`): the published test sets' shapes,
`evaluate` (serial == parallel hook, mastery counted), and the headless GIF writer."""

from __future__ import annotations

import numpy as np

from openended.envs.bipedal import MASTERY_RETURN, ClassicBipedalEnv, HexagonTracksEnv, StumpTracksEnv
from openended.envs.bipedal_eval import HeuristicPolicy, evaluate, stump_grid_test_set, uniform_test_set, write_video


# -------------------------------------------------------------------- test sets
def test_stump_grid_test_set_is_10x10_over_the_box():
    tasks = stump_grid_test_set()
    assert len(tasks) == 100 and len({t.id for t in tasks}) == 100
    params = np.array([t.params for t in tasks])
    assert params.min(axis=0).tolist() == [0.0, 0.0] and params.max(axis=0).tolist() == [3.0, 6.0]
    assert len(np.unique(params[:, 0])) == 10 and len(np.unique(params[:, 1])) == 10
    env = StumpTracksEnv(height_range=(0.0, 9.0))  # same grid, ids valid in the wider space
    env.set_task(tasks[-1])
    assert stump_grid_test_set(n=3) != tasks and len(stump_grid_test_set(n=3)) == 9


def test_uniform_test_set_is_seeded_and_inside_the_space():
    space = HexagonTracksEnv().task_space()
    a, b = uniform_test_set(space), uniform_test_set(space)
    assert len(a) == 50 and [t.id for t in a] == [t.id for t in b]
    assert all(space.contains(t) and len(t.params) == 12 for t in a)
    assert [t.id for t in uniform_test_set(space, seed=1)] != [t.id for t in a]
    assert len(uniform_test_set(StumpTracksEnv().task_space(), n=7)) == 7


def test_evaluate_returns_per_task_and_mastered_fraction_with_parallel_hook():
    tasks = stump_grid_test_set(n=2)
    factory = lambda: StumpTracksEnv(max_episode_steps=40)  # noqa: E731
    zero = lambda obs: np.zeros(4, dtype=np.float32)  # noqa: E731
    serial = evaluate(zero, factory, tasks, episodes=2)
    calls = []

    def mapper(fn, items):
        calls.append(len(items))
        return [fn(t) for t in items]

    par = evaluate(zero, factory, tasks, episodes=2, parallel=mapper)
    assert calls == [4]
    assert serial == par
    assert list(serial["returns"]) == [t.id for t in tasks]
    assert serial["mastered"] == 0.0


def test_evaluate_counts_a_mastered_task():
    env_task = ClassicBipedalEnv().task_space().all_tasks
    result = evaluate(HeuristicPolicy(), ClassicBipedalEnv, env_task, seed=0)
    assert result["mastered"] == 1.0
    assert result["returns"][env_task[0].id] > MASTERY_RETURN


# ------------------------------------------------------------------- rendering, video
def test_rgb_array_render_headless_and_gif(tmp_path):
    env = StumpTracksEnv(render_mode="rgb_array")
    env.set_task([2.0, 1.0])
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # sky, ground, stumps, walker
    path = tmp_path / "walk.gif"
    summary = write_video(env, HeuristicPolicy(), [2.0, 1.0], str(path), max_steps=12, every=3)
    import imageio.v2 as imageio

    frames = imageio.mimread(path)
    assert summary["frames"] == len(frames) == 5  # reset frame + 12 steps, every 3rd
    env.close()
