"""ACCEL's edit for the MiniGrid maze family: add or remove walls (`minigrid_mazes.edit_maze_task`),
editable fixed layouts (``wall_edits``), the family's ``task_editor`` hook and ACCEL driven by it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minigrid")

from openended.config import load_experiment, teacher_config
from openended.envs import env_task_editor, make_env
from openended.envs.minigrid_mazes import edit_maze_task, flip_walls, generate_maze
from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box, Outcome
from openended.teachers import make_teacher
from openended.teachers.checker import check_teacher

EDITOR = "openended.envs.minigrid_mazes:edit_maze_task"


def _diff(a, b) -> int:
    return int(np.sum(a.walls != b.walls))


def test_flip_walls_adds_and_removes_walls_but_never_on_start_or_goal():
    lay = generate_maze(7, 0.0, 1.0, seed=0)  # an empty 5x5 room
    inner = lay.size - 2
    free = next(c for c in range(inner * inner) if (1 + c % inner, 1 + c // inner) not in (lay.start, lay.goal))
    x, y = 1 + free % inner, 1 + free // inner
    one = flip_walls(lay, [free])
    assert one.walls[y, x] and _diff(lay, one) == 1  # a wall added
    assert flip_walls(one, [free]) == lay  # and removed again
    assert flip_walls(lay, [free + inner * inner]) == one  # indices wrap to the room
    start = (lay.start[1] - 1) * inner + (lay.start[0] - 1)
    assert flip_walls(lay, [start]) == lay  # the start stays floor


def test_wall_edits_make_fixed_editable_levels():
    env = make_env("minigrid_maze", wall_edits=2, num_layouts=50)
    space = env.task_space()
    assert space.names == ("size", "wall_density", "goal_distance", "layout_seed", "edit_0", "edit_1")
    assert space.low[3:].tolist() == [-1, -1, -1] and space.high[3:].tolist() == [49, 120, 120]
    base = space.task([9, 0.2, 0.5, 7, -1, -1])
    layouts = [env.layout_of(base, seed) for seed in (0, 1, 2)]
    assert layouts[0] == layouts[1] == layouts[2] == generate_maze(9, 0.2, 0.5, seed=7)  # one level, any episode
    per_episode = space.task([9, 0.2, 0.5, -1, -1, -1])
    assert env.layout_of(per_episode, 0) != env.layout_of(per_episode, 1)  # -1: a distribution, as before
    edited = env.layout_of(space.task([9, 0.2, 0.5, 7, 12, -1]), 0)
    assert _diff(layouts[0], edited) <= 1
    env.set_task(space.task([9, 0.2, 0.5, 7, 12, 30]))
    obs, info = env.reset(seed=0)
    assert env.layout == flip_walls(layouts[0], [12, 30]) and obs.shape == env.observation_space.shape
    env.close()
    assert make_env("minigrid_maze").task_space().dim == 3  # off by default: the space is unchanged


def test_edit_adds_or_removes_walls_of_one_fixed_layout():
    env = make_env("minigrid_maze", wall_edits=4)
    space = env.task_space()
    rng = np.random.default_rng(0)
    for parent in space.sample_uniform(np.random.default_rng(1), 20):
        child = edit_maze_task(parent, space, rng, 3)
        assert space.contains(child) and child.parent_ids == (parent.id,) and child.origin == "edited"
        assert np.array_equal(child.array[:3], parent.array[:3])  # size, density, distance kept
        seed = int(np.floor(child.params[3] + 0.5))
        assert seed >= 0  # a level, not a distribution
        if parent.params[3] >= -0.5:
            assert child.params[3] == parent.params[3]
        before = env.layout_of(space.task([*parent.params[:3], seed, *parent.params[4:]]), 0)
        assert _diff(before, env.layout_of(child, 0)) <= 2 * 3  # each edit moves at most one slot's flip
    empty = space.task([11, 0.0, 1.0, 3, -1, -1, -1, -1])
    child = edit_maze_task(empty, space, np.random.default_rng(2), 2)
    assert sum(p >= 0 for p in child.params[4:]) == 2  # free slots are used first
    walls = _diff(env.layout_of(empty, 0), env.layout_of(child, 0))
    assert 0 < walls <= 2  # walls added to the empty room (unless a flip hit start / goal)
    a, b = (edit_maze_task(empty, space, np.random.default_rng(5), 3) for _ in range(2))
    assert a == b  # deterministic in the generator
    env.close()


def test_plain_maze_space_edits_wall_density_by_one_wall():
    space = make_env("minigrid_maze").task_space()
    parent = space.task([7, 0.3, 0.5])
    child = edit_maze_task(parent, space, np.random.default_rng(0), 1)
    assert child.params[0] == 7 and child.params[2] == 0.5
    assert abs(child.params[1] - 0.3) == pytest.approx(1 / (5 * 5 - 2))  # one wall of a 5x5 interior
    with pytest.raises(TaskNotInSpace, match="edit_maze_task: edits minigrid_maze tasks"):
        edit_maze_task(Box([0], [1]).task([0.5]), Box([0], [1]), np.random.default_rng(0), 1)


def test_accel_edits_maze_levels_through_the_family_editor():
    assert env_task_editor("minigrid_maze") == EDITOR and env_task_editor("toy") is None
    space = make_env("minigrid_maze", wall_edits=3).task_space()
    t = make_teacher("accel", space, editor=EDITOR, buffer_size=8, min_fill=0.5, replay_prob=1.0, n_edits=2)
    rng = np.random.default_rng(0)
    children = []
    for _ in range(30):
        tasks = t.sample(2)
        children += [x for x in tasks if x.origin == "edited"]
        t.update([Outcome(x.id, float(rng.random())) for x in tasks])
    assert children and all(space.contains(c) and c.params[3] >= 0 for c in children)
    assert all(sum(p >= 0 for p in c.params[4:]) >= 1 for c in children)  # every child carries wall flips
    check_teacher(lambda seed: make_teacher("accel", space, editor=EDITOR, seed=seed, buffer_size=8, min_fill=0.25))


def test_experiments_fill_accels_editor_from_the_family():
    base = {"name": "t", "env": {"family": "minigrid_maze", "config": {"wall_edits": 2}}, "teacher": {"name": "accel"}}
    assert teacher_config(load_experiment(base))["editor"] == EDITOR
    off = load_experiment(base, ["teacher.config.editor=null"])
    assert teacher_config(off)["editor"] is None  # an explicit null keeps ACCEL's Box edits
    assert "editor" not in teacher_config(load_experiment({**base, "env": {"family": "toy"}}))
    assert "editor" not in teacher_config(load_experiment({**base, "teacher": {"name": "plr"}}))
    with pytest.raises(ConfigError, match=r"register_env\('x'\)\.task_editor: expected an import path"):
        from openended.envs import register_env

        register_env("x", "openended.envs.toy:ToyTaskEnv", task_editor="nope")
