"""BipedalWalker family: Stump Tracks, Hexagon Tracks, bodies, episode end, registry.

(Test sets, evaluation and video: ``tests/test_bipedal_eval.py``.)

Each test asserts an invariant a bug would break: upstream equivalence (bit for bit),
determinism under seed + task, when a task takes effect, exact error messages, the
task-difficulty ordering.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from openended.envs import make_env
from openended.envs.bipedal import MASTERY_RETURN, ClassicBipedalEnv, HexagonTracksEnv, StumpTracksEnv
from openended.envs.bipedal_eval import HeuristicPolicy, run_episode
from openended.envs.bipedal_terrain import FINISH_X, GROUND_Y, STUMP_CELLS, TERRAIN_STEP, TRACK_START_X, stump_blocks
from openended.envs.bodies import BodySpec, get_body, list_bodies, register_body
from openended.errors import ConfigError, TaskNotInSpace, UnknownName
from openended.tasks import Box

BODIES = ["classic", "short", "quadruped"]


def _rollout(env, task, seed: int, n: int, action_seed: int = 0):
    """Observations, rewards and end flags of ``n`` random-action steps (stops at episode end)."""
    env.set_task(task)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [(obs, 0.0, False, False, info["task_id"])]
    for _ in range(n):
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        out.append((obs, r, term, trunc, info["task_id"]))
        if term or trunc:
            break
    return out


# ------------------------------------------------------------------ gymnasium contract
@pytest.mark.filterwarnings("ignore:.*alternative render modes.*")
@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("family", [StumpTracksEnv, HexagonTracksEnv], ids=["stumps", "hexagon"])
def test_check_env_passes(family, body):
    env = family(body=body)
    check_env(env)
    spec = get_body(body)
    assert env.action_space.shape == (spec.action_dim,)
    assert env.observation_space.shape == (spec.obs_dim,)
    env.close()


@pytest.mark.filterwarnings("ignore:.*alternative render modes.*")
def test_check_env_classic():
    check_env(ClassicBipedalEnv())


def test_quadruped_has_more_joints_and_steps_generically():
    env = StumpTracksEnv(body="quadruped")
    assert env.action_space.shape == (8,) and env.observation_space.shape == (34,)
    assert not env._upstream_step
    steps = _rollout(env, [0.5, 3.0], seed=1, n=200)
    assert all(np.all(np.isfinite(o)) and o.shape == (34,) for o, *_ in steps)


# ------------------------------------------------------------ upstream equivalence
def test_classic_env_reproduces_upstream_bipedalwalker_exactly():
    upstream = gym.make("BipedalWalker-v3").unwrapped
    ours = ClassicBipedalEnv()
    for seed in (0, 7):
        o1, _ = upstream.reset(seed=seed)
        o2, info = ours.reset(seed=seed)
        assert np.array_equal(o1, o2) and info["task_id"] == ours.current_task.id
        rng = np.random.default_rng(seed)
        for _ in range(300):
            a = rng.uniform(-1, 1, 4).astype(np.float32)
            s1, r1, t1, _, _ = upstream.step(a)
            s2, r2, t2, _, _ = ours.step(a)
            assert np.array_equal(s1, s2) and r1 == r2 and t1 == t2
            if t1:
                break


def test_generic_step_matches_upstream_step_for_classic_body():
    """The N-leg step (used by the quadruped) is upstream's step for 4 joints."""
    a_env, b_env = StumpTracksEnv(), StumpTracksEnv()
    b_env._upstream_step = False
    a = _rollout(a_env, [1.0, 2.0], seed=3, n=300)
    b = _rollout(b_env, [1.0, 2.0], seed=3, n=300)
    assert len(a) == len(b)
    for (o1, r1, t1, *_), (o2, r2, t2, *_) in zip(a, b):
        assert np.array_equal(o1, o2) and t1 == t2
        assert r1 == pytest.approx(r2, rel=1e-5, abs=1e-6)  # only the energy sum is rounded differently


# --------------------------------------------------------------------- determinism
@pytest.mark.parametrize(
    "family,task", [(StumpTracksEnv, [1.2, 2.5]), (HexagonTracksEnv, [1.0] * 12)], ids=["stumps", "hexagon"]
)
@pytest.mark.parametrize("body", ["classic", "quadruped"])
def test_same_seed_and_task_give_identical_trajectory(family, task, body):
    a = _rollout(family(body=body), task, seed=11, n=150)
    b = _rollout(family(body=body), task, seed=11, n=150)
    assert len(a) == len(b)
    for (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) in zip(a, b):
        assert np.array_equal(o1, o2) and r1 == r2 and (t1, u1, i1) == (t2, u2, i2)


def test_terrain_comes_from_the_env_seed():
    env = StumpTracksEnv()
    env.set_task([1.0, 1.0])
    env.reset(seed=5)
    first = env.stumps.copy()
    env.reset(seed=5)
    assert np.array_equal(first, env.stumps)
    env.reset(seed=6)
    assert not np.array_equal(first[:, 2], env.stumps[:, 2])
    hexa = HexagonTracksEnv()
    hexa.reset(seed=5)
    p1 = [p.copy() for p in hexa.obstacles]
    hexa.reset(seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(p1, hexa.obstacles))


# ---------------------------------------------------------------- task semantics
def test_set_task_takes_effect_at_next_reset_only():
    env = StumpTracksEnv()
    space = env.task_space()
    low, high = space.task([0.0, 6.0]), space.task([3.0, 0.5])
    env.set_task(low)
    env.reset(seed=0)
    stumps_before = env.stumps.copy()
    env.set_task(high)  # mid-episode: queued, not applied
    for _ in range(5):
        *_, info = env.step(np.zeros(4, dtype=np.float32))
        assert info["task_id"] == low.id
    assert env.current_task == low
    assert np.array_equal(env.stumps, stumps_before)
    assert len(env.terrain[1].fixtures) == len(stumps_before)
    _, info = env.reset(seed=0)
    assert env.current_task == high and info["task_id"] == high.id
    assert env.stumps[:, 2].mean() > 2.5 * TERRAIN_STEP
    env.reset(seed=0)  # no new set_task: the task persists
    assert env.current_task == high


def test_reset_options_task_and_raw_params():
    env = StumpTracksEnv()
    task = env.task_space().task([2.0, 4.0])
    _, info = env.reset(seed=0, options={"task": task})
    assert info["task_id"] == task.id
    env.set_task([2.0, 4.0])  # raw parameters are accepted and give the same task id
    _, info = env.reset(seed=0)
    assert info["task_id"] == task.id


def test_default_task_is_the_easy_corner():
    env = StumpTracksEnv(height_range=(-3.0, 3.0))
    env.reset(seed=0)
    assert env.current_task.params == (-3.0, 6.0)
    assert np.allclose(env.stumps[:, 2], 0.05 * TERRAIN_STEP)  # negative heights clip to 0.05 steps: flat


def test_task_outside_the_box_names_parameter_and_range():
    env = StumpTracksEnv()
    msg = (
        "Box(low=[0.0, 0.0], high=[3.0, 6.0], names=['stump_height', 'obstacle_spacing']): "
        "parameter 'stump_height'=3.5 is outside [0.0, 3.0]"
    )
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        env.set_task([3.5, 1.0])
    # A task built in a wider space (the "mostly unfeasible" bounds) is refused the same way.
    wide = StumpTracksEnv(height_range=(0.0, 9.0)).task_space().task([1.0, 5.0])
    wide_bad = Box([0.0, 0.0], [9.0, 9.0], names=["stump_height", "obstacle_spacing"]).task([1.0, 7.0])
    env.set_task(wide)  # inside both boxes: fine
    msg = (
        "Box(low=[0.0, 0.0], high=[3.0, 6.0], names=['stump_height', 'obstacle_spacing']): "
        "parameter 'obstacle_spacing'=7.0 is outside [0.0, 6.0]"
    )
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        env.set_task(wide_bad)
    hexa = HexagonTracksEnv()
    params = [0.0] * 12
    params[7] = -0.5
    with pytest.raises(TaskNotInSpace, match=r"parameter 'v3_dy'=-0\.5 is outside \[0\.0, 4\.0\]$"):
        hexa.set_task(params)


def test_config_errors_are_specific():
    with pytest.raises(ConfigError, match=r"^height_range: must be finite with low <= high, got \(3\.0, 0\.0\)$"):
        StumpTracksEnv(height_range=(3, 0))
    with pytest.raises(ConfigError, match=r"^max_episode_steps: must be an integer >= 1, got 0$"):
        StumpTracksEnv(max_episode_steps=0)
    with pytest.raises(UnknownName, match=r"^unknown body 'quadrupd'\. Did you mean 'quadruped'\?"):
        StumpTracksEnv(body="quadrupd")


# ------------------------------------------------------------------ stump geometry
def test_stump_heights_widths_and_spacing_follow_the_definition():
    rng = np.random.default_rng(0)
    blocks = stump_blocks(rng, 2.0, 3.0)
    assert np.allclose(np.diff(blocks[:, 0]), 3.0)  # one stump every `spacing` x-units
    assert np.allclose(blocks[:, 1] - blocks[:, 0], TERRAIN_STEP)  # one step wide
    assert blocks[0, 0] == pytest.approx(TRACK_START_X) and blocks[-1, 1] <= FINISH_X
    h = blocks[:, 2] / TERRAIN_STEP
    assert abs(h.mean() - 2.0) < 0.1 and 0.05 < h.std() < 0.2  # ~ N(2, 0.1) in steps
    flat = stump_blocks(np.random.default_rng(0), -1.0, 3.0)
    assert np.allclose(flat[:, 2], 0.05 * TERRAIN_STEP)


@pytest.mark.parametrize("spacing", [0.0, 0.1, 0.3])
def test_overlapping_stumps_merge_into_their_upper_envelope(spacing):
    blocks = stump_blocks(np.random.default_rng(1), 1.0, spacing)
    assert np.all(blocks[1:, 0] >= blocks[:-1, 1] - 1e-9)  # no overlaps left
    assert len(blocks) < 400  # a few hundred bodies at most, not ~8,000
    covered = (blocks[:, 1] - blocks[:, 0]).sum()
    assert covered == pytest.approx(FINISH_X - TRACK_START_X, abs=2 * TERRAIN_STEP)  # a continuous plateau
    # Each block is as tall as the tallest (grid-snapped) stump covering it.
    period = max(0.01, spacing)
    n = int(np.floor((FINISH_X - TERRAIN_STEP - TRACK_START_X) / period)) + 1
    heights = np.maximum(0.05, np.random.default_rng(1).normal(1.0, 0.1, n)) * TERRAIN_STEP
    cell = TERRAIN_STEP / STUMP_CELLS
    starts = TRACK_START_X + cell * np.rint(period * np.arange(n) / cell)
    for x0, x1, h in blocks:
        mid = (x0 + x1) / 2
        assert h == heights[(starts <= mid) & (mid < starts + TERRAIN_STEP)].max()


def test_taller_stumps_make_the_track_harder():
    """gymnasium's scripted gait, blind to obstacles: mean return falls as stumps grow."""
    env = StumpTracksEnv(max_episode_steps=600)
    policy = HeuristicPolicy()
    means = []
    for height in (0.0, 1.0, 3.0):
        returns = [run_episode(env, policy, [height, 1.0], seed=s)["episode_return"] for s in range(4)]
        means.append(float(np.mean(returns)))
    assert means[0] > means[1] > means[2], means
    assert means[0] - means[2] > 50, means


# ---------------------------------------------------------- episode end and success
def test_success_is_return_above_230_and_return_is_tracked():
    env = ClassicBipedalEnv()  # gymnasium's heuristic walks the upstream terrain on seed 0
    policy = HeuristicPolicy()
    policy.reset()
    obs, _ = env.reset(seed=0)
    total, info, done = 0.0, {}, False
    while not done:
        obs, r, term, trunc, info = env.step(policy(obs))
        total += r
        done = term or trunc
        if not done:
            assert "success" not in info
    assert info["episode_return"] == pytest.approx(total)
    assert info["episode_return"] > MASTERY_RETURN and info["success"] is True
    assert info["episode_length"] == env.elapsed_steps


def test_time_limit_truncates_inside_the_env_with_success_info():
    env = StumpTracksEnv(max_episode_steps=5)
    env.reset(seed=0)
    for _i in range(5):
        _, _, term, trunc, info = env.step(np.zeros(4, dtype=np.float32))
    assert (term, trunc) == (False, True)
    assert info["success"] is False and info["episode_length"] == 5


# ---------------------------------------------------------------------- bodies
def test_body_registry_is_extensible():
    assert set(BODIES) <= set(list_bodies())
    long_legs = BodySpec(leg_h=45.0, description="test body")
    register_body("test_long_legs", long_legs, overwrite=True)
    env = StumpTracksEnv(body="test-long-legs")
    assert env.body is long_legs and env.body.upstream_step_compatible
    env.reset(seed=0)
    assert env.legs[0].fixtures[0].shape.vertices[2][1] == pytest.approx(45.0 / 30 / 2, rel=1e-6)
    two_pairs = StumpTracksEnv(body=BodySpec(leg_anchors_x=[-20, 20]))  # lists are fine: normalised
    assert two_pairs.action_space.shape == (8,) and not two_pairs._upstream_step
    assert len(_rollout(two_pairs, [0.0, 6.0], seed=0, n=20)) > 1
    with pytest.raises(ConfigError, match="already registered"):
        register_body("classic", long_legs)
    with pytest.raises(ConfigError, match=r"^BodySpec.leg_h: must be a finite number > 0, got -1\.0$"):
        BodySpec(leg_h=-1.0)


def test_short_legs_stand_lower_and_quadruped_is_heavier():
    heights, masses = {}, {}
    for body in BODIES:
        env = StumpTracksEnv(body=body)
        env.reset(seed=0)
        heights[body] = env.hull.position[1] - GROUND_Y
        masses[body] = env.hull.mass
    assert heights["short"] < heights["classic"] < heights["quadruped"]
    assert masses["quadruped"] > 1.4 * masses["classic"]


def test_importing_sets_no_sdl_variable():
    code = (
        "import os; os.environ.pop('SDL_VIDEODRIVER', None); import openended.envs.bipedal; "
        "print('SDL_VIDEODRIVER' in os.environ)"
    )
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------ registry and pickling
@pytest.mark.parametrize("name,obs_dim", [("stump_tracks", 24), ("hexagon", 24), ("bipedal_walker", 24)])
def test_registry_makes_each_family(name, obs_dim):
    env = make_env(name, body="classic")
    obs, info = env.reset(seed=0)
    assert obs.shape == (obs_dim,) and info["task_id"] == env.current_task.id


def test_pickle_round_trip_keeps_config():
    env = StumpTracksEnv(body="short", height_range=(0.0, 9.0), max_episode_steps=99)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.task_space() == env.task_space() and clone.body == env.body and clone.max_episode_steps == 99
