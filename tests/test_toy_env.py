"""The teachDeepRL toy learner (hand-built cases, batched == sequential, options) and its
gymnasium task env (check_env, task applied at the next reset)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.stats as sps
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

from openended.envs import make_env
from openended.envs.toy import ToyLearner, ToyTaskEnv
from openended.errors import ConfigError, TaskNotInSpace


def cell(i: int, j: int) -> list[float]:
    """A task in the middle of cell (i, j) of the default 10 x 10 grid."""
    return [(i + 0.5) / 10, (j + 0.5) / 10]


# ----------------------------------------------------------------------- semantics
def test_unlock_wave_from_the_corner():
    L = ToyLearner()
    assert L.episode(cell(0, 0)) == 0.01  # the corner learns from the start
    assert L.episode(cell(1, 1)) == 0.0  # locked: no previous neighbour >= 75
    for _ in range(73):
        L.episode(cell(0, 0))
    assert L.competence[0, 0] == 74
    assert L.episode(cell(1, 1)) == 0.0 and L.competence[1, 1] == 0
    L.episode(cell(0, 0))  # (0, 0) reaches 75: unlocks (0, 1), (1, 0) and (1, 1)
    assert [L.episode(cell(*c)) for c in [(1, 1), (0, 1), (1, 0)]] == [0.01] * 3
    assert L.episode(cell(2, 2)) == 0.0  # its previous neighbours (1,1), (1,2), (2,1) are all < 75
    assert L.episode(cell(0, 2)) == 0.0  # (0, 1) is its only previous neighbour
    assert L.competence.sum() == 75 + 3


def test_competence_caps_at_100_and_score_counts_above_75():
    L = ToyLearner()
    for _ in range(75):
        L.episode(cell(0, 0))
    assert L.score() == 0.0  # mastered means > 75, unlocking means >= 75
    L.episode(cell(0, 0))
    assert L.score() == 1.0  # 1 of 100 cells
    rewards = [L.episode(cell(0, 0)) for _ in range(60)]
    assert rewards[-1] == 1.0 and L.competence[0, 0] == 100


def test_binning_matches_teachdeeprl_scipy_binning():
    L = ToyLearner()
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.random((300, 2)), np.round(rng.random((100, 2)), 1), [[1.0, 1.0], [0.0, 1.0], [0.3, 0.7], [0.1, 0.9]]]
    )
    ours = L.cells(x)
    for row, c in zip(x, ours):
        stat = sps.binned_statistic_dd(row[None, :], np.ones((1, 2)), "count", bins=[L.edges] * 2).statistic
        assert np.ravel_multi_index(tuple(v[0] for v in stat[0].nonzero()), (10, 10)) == c


def test_out_of_space_task_is_rejected():
    msg = "ToyLearner: task 0 dimension 1 = 1.5 is outside [0, 1]"
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        ToyLearner().episode([0.2, 1.5])
    msg = "ToyLearner: expected an (n, 2) array of tasks, got shape (1, 3)"
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        ToyLearner().episode([0.2, 0.5, 0.1])


def _wave_tasks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tasks biased to the corner so unlocks happen inside a batch."""
    return np.clip(rng.exponential(0.12, size=(n, 2)), 0.0, 1.0)


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"noise": 0.1},
        {"unlearnable": ((1, 2), (2, 3))},
        {"noise": 0.05, "unlearnable": ((3, 0), (4, 1)), "extra_dims": 1},
        {"noise": 0.05, "unlearnable": ((3, 0), (4, 1)), "unlearnable_reward": "zero"},
    ],
)
def test_batched_equals_sequential(opts):
    rng = np.random.default_rng(1)
    tasks = _wave_tasks(rng, 3000)
    if opts.get("extra_dims"):
        tasks = np.concatenate([tasks, rng.random((3000, 1))], axis=1)
    seq, bat = ToyLearner(seed=4, **opts), ToyLearner(seed=4, **opts)
    r_seq = np.array([seq.episode(t) for t in tasks])
    sizes = rng.integers(1, 400, size=100)
    r_bat, lo = [], 0
    for s in sizes:
        r_bat.append(bat.episodes(tasks[lo : lo + s]))
        lo += s
        if lo >= len(tasks):
            break
    r_bat = np.concatenate(r_bat)
    assert np.array_equal(r_seq, r_bat)
    assert np.array_equal(seq.competence, bat.competence)
    assert seq.competence.max() == 100 and (seq.competence > 75).sum() >= 5  # the wave went somewhere


def test_noise_perturbs_rewards_not_learning():
    tasks = _wave_tasks(np.random.default_rng(2), 2000)
    clean, noisy, again = ToyLearner(), ToyLearner(noise=0.1, seed=3), ToyLearner(noise=0.1, seed=3)
    r_clean, r_noisy = clean.episodes(tasks), noisy.episodes(tasks)
    assert np.array_equal(clean.competence, noisy.competence)
    assert np.all((r_noisy >= 0) & (r_noisy <= 1))
    inner = (r_clean > 0.3) & (r_clean < 0.7)  # away from the clipping
    assert 0.08 < np.std(r_noisy[inner] - r_clean[inner]) < 0.12
    assert np.array_equal(again.episodes(tasks), r_noisy)


def test_unlearnable_cells_never_learn_and_reward_noise():
    L = ToyLearner(unlearnable=((0, 1), (1, 2)), seed=0)  # cells (0..1, 1..2)
    assert L.unlearnable.sum() == 4
    for _ in range(100):
        L.episode(cell(0, 0))
    r = L.episodes(np.array([cell(1, 1)] * 500 + [cell(0, 3)] * 5))
    assert L.competence[1, 1] == 0 and L.competence[0, 3] == 0  # (0, 3)'s only neighbour (0, 2) is dead
    assert 0.45 < r[:500].mean() < 0.55 and r[:500].std() > 0.25
    assert L.episode(cell(1, 0)) == 0.01  # learnable cells around still learn
    assert L.score() == pytest.approx(100 / 96)  # unlearnable cells are not counted
    mask = np.zeros((10, 10), dtype=bool)
    mask[1:3, 1:3] = True
    assert ToyLearner(unlearnable=mask).unlearnable.sum() == 4


def test_infeasible_cells_pay_zero_and_draw_no_noise():
    mask = np.ones((10, 10), dtype=bool)
    mask[:5, :5] = False  # TeachMyAgent's "mostly unfeasible": one learnable quadrant
    L = ToyLearner(unlearnable=mask, unlearnable_reward="zero", seed=0)
    r = L.episodes(np.array([cell(7, 7)] * 50 + [cell(0, 0)] * 80 + [cell(0, 5)] * 10))
    assert np.all(r[:50] == 0.0) and r[129] == 0.8 and np.all(r[130:] == 0.0)
    assert L.competence[0, 5] == 0 and L.competence[0, 1] == 0
    assert L.score() == pytest.approx(100 * 1 / 25)  # 1 of the 25 learnable cells mastered
    state = L.rng.bit_generator.state
    L.episode(cell(9, 9))
    assert L.rng.bit_generator.state == state  # zero-reward cells consume no random draws
    with pytest.raises(ConfigError, match="^ToyLearner.unlearnable_reward: must be 'noise' or 'zero', got 'none'$"):
        ToyLearner(unlearnable_reward="none")


def test_bad_unlearnable_spec():
    msg = "ToyLearner.unlearnable: rectangle [0, 5]..[2, 10] must satisfy 0 <= lo <= hi <= 9"
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        ToyLearner(unlearnable=((0, 5), (2, 10)))
    msg = "ToyLearner.unlearnable: a mask must have the grid shape (10, 10), got (3, 3)"
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        ToyLearner(unlearnable=np.zeros((3, 3), dtype=bool))


def test_extra_dims_are_ignored():
    rng = np.random.default_rng(5)
    base = _wave_tasks(rng, 1500)
    plain, extra = ToyLearner(), ToyLearner(extra_dims=3)
    assert extra.task_space().dim == 5 and extra.task_space().names[2:] == ("extra0", "extra1", "extra2")
    r1 = plain.episodes(base)
    r2 = extra.episodes(np.concatenate([base, rng.random((1500, 3))], axis=1))
    assert np.array_equal(r1, r2)


def test_three_dims_wave():
    L = ToyLearner(n_dims=3, n_cells=4)
    c = lambda i, j, k: [(i + 0.5) / 4, (j + 0.5) / 4, (k + 0.5) / 4]  # noqa: E731
    for _ in range(75):
        L.episode(c(0, 0, 0))
    assert L.episode(c(1, 1, 1)) == 0.01 and L.episode(c(0, 0, 1)) == 0.01
    assert L.episode(c(1, 1, 2)) == 0.0


def test_learner_state_round_trip():
    rng = np.random.default_rng(0)
    a = ToyLearner(noise=0.1, seed=1)
    a.episodes(_wave_tasks(rng, 500))
    b = ToyLearner(noise=0.1, seed=99)
    b.load_state_dict(a.state_dict())
    more = _wave_tasks(rng, 500)
    assert np.array_equal(a.episodes(more), b.episodes(more))


# ---------------------------------------------------------------------- gymnasium
def test_check_env_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no spec" notes from gymnasium about render modes
        check_env(ToyTaskEnv())
        check_env(ToyTaskEnv(noise=0.1, unlearnable=((2, 2), (3, 3)), extra_dims=1))


def test_set_task_takes_effect_at_next_reset():
    env = make_env("toy")
    space = env.task_space()
    a, b = space.task(cell(0, 0)), space.task(cell(5, 5))
    env.set_task(a)
    obs, info = env.reset(seed=0)
    assert info["task_id"] == a.id and np.allclose(obs, a.params)
    env.set_task(b)  # queued: the running episode keeps task a
    _, reward, terminated, truncated, info = env.step(0)
    assert (info["task_id"], reward, terminated, truncated, info["success"]) == (a.id, 0.01, True, False, False)
    with pytest.raises(ResetNeeded):
        env.step(0)
    _, info = env.reset()
    assert info["task_id"] == b.id
    _, info = env.reset()
    assert info["task_id"] == b.id  # stays until another task is set
    _, info = env.reset(options={"task": a})
    assert info["task_id"] == a.id


def test_seeded_reset_restarts_the_student_unseeded_continues():
    env = ToyTaskEnv()
    a = env.task_space().task(cell(0, 0))
    env.reset(seed=1, options={"task": a})
    for _ in range(80):
        env.reset()
        _, reward, _, _, info = env.step(0)
    assert reward == 0.8 and info["success"] and info["competence"] == 80
    env.reset(seed=1)
    _, reward, _, _, info = env.step(0)
    assert reward == 0.01 and not info["success"]


def test_task_env_exposes_progress_and_resumable_student():
    env = ToyTaskEnv(seed=0)
    space = env.task_space()
    env.reset(seed=0)
    for _ in range(80):
        env.set_task(space.task([0.05, 0.05]))
        env.reset()
        env.step(0)
    assert env.curriculum_metrics()["mastered"] == 0.01  # cell (0, 0) has 80 > 75
    clone = ToyTaskEnv(seed=1)
    clone.reset(seed=1)
    clone.load_state_dict(env.state_dict())
    assert clone.curriculum_metrics() == env.curriculum_metrics()


@pytest.mark.parametrize(
    "kw",
    [{}, {"noise": 0.1}, {"unlearnable": ((1, 2), (2, 3)), "noise": 0.05}, {"extra_dims": 2}],
    ids=["plain", "noise", "unlearnable", "extra_dims"],
)
def test_scalar_episode_matches_batched_episodes(kw):
    """The plain-Python `episode` fast path gives exactly `episodes` on one-row arrays."""
    a, b = ToyLearner(seed=4, **kw), ToyLearner(seed=4, **kw)
    rng = np.random.default_rng(0)
    # bias towards the corner so cells unlock; include exact bin edges and the top edge
    xs = np.concatenate(
        [rng.uniform(0, 0.35, size=(3000, a.dim)), np.full((3, a.dim), 0.3), np.ones((2, a.dim)), np.zeros((2, a.dim))]
    )
    ra = [a.episode(x) for x in xs]
    rb = list(b.episodes(xs[:1000])) + [float(b.episodes(x[None, :])[0]) for x in xs[1000:]]
    assert ra == rb  # the vectorised batch path and the scalar path agree episode by episode
    assert np.array_equal(a.competence, b.competence) and a.score() == b.score() > 0
