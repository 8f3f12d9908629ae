"""MiniGrid families: layouts from task parameters, the flat observation, success, held-out
tasks through the evaluation path, and hosting in an in-process EnvPool with the teacher core."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from openended.envs import make_env
from openended.envs.minigrid import MiniGridLevelsEnv, MiniGridMazeEnv, MiniGridTasksEnv
from openended.envs.minigrid_mazes import (
    HARD_MAZES,
    MazeLayout,
    generate_maze,
    level_params,
    shortest_path,
)
from openended.errors import ConfigError, TaskNotInSpace
from openended.runtime.client import LocalTeacherClient
from openended.runtime.core import TeacherServiceCore
from openended.runtime.envpool import EnvPoolCore
from openended.runtime.evaluate import evaluate_tasks, resolve_test_set
from openended.tasks import Box, Discrete

_DIRS = {(1, 0): 0, (0, 1): 1, (-1, 0): 2, (0, -1): 3}


def _path(layout: MazeLayout) -> list[tuple[int, int]]:
    """Cells of a shortest start-to-goal path (BFS with parents)."""
    walls, start, goal = layout.walls, layout.start, layout.goal
    parent = {start: start}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for dx, dy in _DIRS:
            nxt = (cell[0] + dx, cell[1] + dy)
            if not walls[nxt[1], nxt[0]] and nxt not in parent:
                parent[nxt] = cell
                queue.append(nxt)
    cells = [goal]
    while cells[-1] != start:
        cells.append(parent[cells[-1]])
    return cells[::-1]


def _walk(env, layout: MazeLayout) -> tuple[float, bool, dict]:
    """Drive ``env`` along the shortest path (turn right until facing the next cell, then forward)."""
    cells, d = _path(layout), layout.start_dir
    for a, b in zip(cells, cells[1:]):
        want = _DIRS[(b[0] - a[0], b[1] - a[1])]
        while d != want:
            _, _, term, trunc, info = env.step(1)  # right
            d = (d + 1) % 4
            assert not (term or trunc)
        _, r, term, trunc, info = env.step(2)  # forward
    return r, term, info


# ------------------------------------------------------------------------------ layouts
def test_layout_is_a_function_of_parameters_and_seed():
    a = generate_maze(9, 0.3, 0.5, seed=11)
    assert generate_maze(9, 0.3, 0.5, seed=11) == a
    assert generate_maze(9, 0.3, 0.5, seed=12) != a
    assert generate_maze(9, 0.31, 0.5, seed=11) != a
    # size: the frame outside the room is wall; density: the share of free interior cells walled
    assert a.walls[:, 9:].all() and a.walls[9:, :].all()
    interior = a.walls[1:8, 1:8]
    assert interior.sum() == round(0.3 * (49 - 2))
    assert not a.walls[a.start[1], a.start[0]] and not a.walls[a.goal[1], a.goal[0]]


@pytest.mark.parametrize("seed", range(20))
def test_goal_distance_and_empty_rooms(seed):
    far = generate_maze(11, 0.0, 1.0, seed=seed)
    near = generate_maze(11, 0.0, 0.0, seed=seed)
    manhattan = lambda lay: abs(lay.start[0] - lay.goal[0]) + abs(lay.start[1] - lay.goal[1])  # noqa: E731
    assert manhattan(near) == 1  # the closest cell that is not the start
    assert manhattan(far) >= 9  # 16 is the room's largest; from a central start less is possible
    assert shortest_path(far) == manhattan(far)  # no walls: solvable, path = Manhattan distance


def test_dense_mazes_are_sometimes_unsolvable_and_levels_span_the_box():
    solvable = [generate_maze(*level_params(i), seed=i).solvable for i in range(200)]
    assert 0.5 < np.mean(solvable) < 0.95
    params = np.array([level_params(i) for i in range(200)])
    assert params[:, 0].min() < 6 and params[:, 0].max() > 12 and params[:, 1].max() > 0.5


def test_hard_mazes_are_solvable_and_long():
    lengths = {name: shortest_path(lay) for name, lay in HARD_MAZES.items()}
    assert set(lengths) == {"labyrinth", "four_rooms", "zigzag", "nine_rooms", "perfect_maze"}
    assert all(n is not None and n >= 19 for n in lengths.values()), lengths


# ---------------------------------------------------------------------------- the envs
@pytest.mark.parametrize("name", ["labyrinth", "zigzag", "four_rooms"])
def test_walking_the_shortest_path_reaches_the_goal_of_a_held_out_maze(name):
    env = MiniGridMazeEnv()
    (task,) = [t for t in env.test_tasks() if t.params[0] == f"hard:{name}"]
    env.set_task(task)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (151,) and env.observation_space.contains(obs)
    assert info["solvable"] and info["shortest_path"] == shortest_path(HARD_MAZES[name])
    r, term, info = _walk(env, HARD_MAZES[name])
    assert term and info["success"] is True and 0.5 < r < 1.0
    assert info["episode_length"] == env.last_outcome.length and env.last_outcome.success
    env.close()


def test_a_box_task_builds_the_layout_of_its_parameters_with_a_seeded_level():
    env = MiniGridMazeEnv(frame=9)
    task = env.task_space().task([7, 0.2, 1.0])
    env.set_task(task)
    env.reset(seed=3)
    first = env.layout
    env.reset(seed=3)
    assert env.layout == first and first.size == 7
    env.reset()  # a new level seed, same parameters
    assert env.layout != first and env.layout.size == 7
    assert env.layout.walls[1:6, 1:6].sum() == round(0.2 * 23)
    env.close()


def test_failure_when_time_runs_out_and_episode_must_be_reset():
    env = MiniGridMazeEnv(max_episode_steps=5)
    env.set_task(env.task_space().task([13, 0.0, 1.0]))
    env.reset(seed=0)
    for _ in range(5):
        _, r, term, trunc, info = env.step(0)  # turning never reaches the goal
    assert trunc and not term and info["success"] is False and r == 0.0
    with pytest.raises(Exception, match="reset"):
        env.step(0)
    env.close()


def test_levels_space_fixes_one_layout_per_id_and_held_out_seeds_are_disjoint():
    env = MiniGridLevelsEnv(num_levels=50, num_test_levels=5)
    space = env.task_space()
    assert isinstance(space, Discrete) and space.n == 50
    env.set_task(space.task(7))
    env.reset(seed=1)
    a = env.layout
    env.reset(seed=2)
    assert env.layout == a == generate_maze(*level_params(7), seed=7)
    held = env.test_tasks()
    assert len(held) == 5 + len(HARD_MAZES) and not any(space.contains(t) for t in held)
    with pytest.raises(TaskNotInSpace):
        env.set_task(space.task(7)._replace(id="0" * 16, params=(10**6,)))
    with pytest.raises(ConfigError, match="test_start_level"):
        MiniGridLevelsEnv(num_levels=100, test_start_level=50)
    env.close()


def test_named_tasks_family_runs_each_registered_task():
    env = MiniGridTasksEnv(tasks=["Empty-5x5", "DoorKey-5x5", "LavaGapS5"])
    assert env.task_space().values == ("Empty-5x5", "DoorKey-5x5", "LavaGapS5")
    for task in env.task_space().all_tasks:
        env.set_task(task)
        obs, info = env.reset(seed=0)
        assert info["task_id"] == task.id and obs.shape == (151,)
        assert type(env._inner).__name__.lower().startswith(str(task.params[0]).split("-")[0].lower()[:4])
    # Empty-5x5: the goal is two forward, one right turn, two forward from the corner start.
    env.set_task(env.task_space().task("Empty-5x5"))
    env.reset(seed=0)
    for a in (2, 2, 1, 2):
        _, r, term, _, info = env.step(a)
    _, r, term, _, info = env.step(2)
    assert term and info["success"] and r > 0
    env.close()


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="agent_view_size"):
        make_env("minigrid_maze", agent_view_size=6)
    with pytest.raises(ConfigError, match=r"tasks.*unknown MiniGrid task\(s\) \['DoorKey-99x99'\]"):
        make_env("minigrid_tasks", tasks=["DoorKey-99x99"])
    with pytest.raises(ConfigError, match="frame"):
        make_env("minigrid_levels", frame=3)


# ---------------------------------------------------------------- evaluation and hosting
def test_held_out_set_runs_through_the_evaluation_path():
    env = MiniGridMazeEnv(num_test_levels=3)
    tasks = resolve_test_set(env, "minigrid_maze", "held_out", max_tasks=100)
    assert [t.params[0] for t in tasks][:5] == [f"hard:{n}" for n in HARD_MAZES] and len(tasks) == 8
    turn = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731  # always turn left: never succeeds
    out = evaluate_tasks(lambda: MiniGridMazeEnv(num_test_levels=3), tasks, turn, max_steps=300)
    assert out["tasks"] == 8 and out["mastered"] == 0.0 and out["unfinished"] == 0
    assert set(out["task_success"]) == {t.id for t in tasks}
    env.close()


@pytest.mark.parametrize("family", ["minigrid_maze", "minigrid_levels", "minigrid_tasks"])
def test_hosted_in_an_envpool_every_episode_reaches_the_teacher(family):
    env = make_env(family)
    space = env.task_space()
    env.close()
    core = TeacherServiceCore()
    teacher = "alp_gmm" if isinstance(space, Box) else "plr"
    core.add_curriculum("mg", teacher, space, config={"seed": 0})
    client = LocalTeacherClient(core, "mg", buffer_size=16, low_watermark=4, flush_every=8)
    pool = EnvPoolCore(family, {}, num_envs=2, client=client, steps_per_call=400, seed=0)
    out = pool.step()
    pool.close()
    assert out["steps"] == 800 and out["episodes"] > 0
    counters = core.snapshot()["curricula"]["mg"]["counters"]
    assert counters["outcomes_accepted"] == pool.total_episodes
    assert pool.stats()["task_id_mismatches"] == 0
