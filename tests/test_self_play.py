"""Self-play: opponents join the pool, FSP draws uniformly, PFSP favours the opponents the learner loses to."""

import numpy as np
import pytest

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher
from openended.teachers.self_play import pfsp_weights

POOL = Discrete([f"ckpt_{i}" for i in range(6)], name="opponents")


def _play(t, rounds, beats, batch=64, seed=0):
    """The learner wins against opponent v with probability beats[v]."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        tasks = t.sample(batch)
        t.update([Outcome(x.id, 0.0, success=bool(rng.random() < beats[x.value])) for x in tasks])


def test_pool_starts_with_the_initial_policy_and_grows_with_checkpoints():
    t = make_teacher("self_play", POOL, seed=0)
    assert {x.value for x in t.sample(50)} == {"ckpt_0"}
    assert t.add_opponent().value == "ckpt_1" and t.add_opponent("ckpt_4").value == "ckpt_4"
    assert {x.value for x in t.sample(500)} == {"ckpt_0", "ckpt_1", "ckpt_4"}
    assert t.add_opponent().value == "ckpt_5"  # the next slot after the highest used
    with pytest.raises(TaskNotInSpace, match="all 6 opponent slots are used"):
        t.add_opponent()


def test_fsp_is_uniform_and_pfsp_prefers_strong_opponents():
    beats = {f"ckpt_{i}": w for i, w in enumerate([0.9, 0.9, 0.1, 0.5, 0.5, 0.5])}
    fsp = make_teacher("self_play", POOL, preset="fsp", initial_pool=3)
    pfsp = make_teacher("self_play", POOL, preset="pfsp", initial_pool=3)
    for t in (fsp, pfsp):
        _play(t, 20, beats)
    assert np.allclose(fsp.probabilities(), 1 / 3)
    p = pfsp.probabilities()
    assert p[2] > 0.9 and p[0] < 0.05  # (1 - 0.1)^2 vs (1 - 0.9)^2
    counts = {v: 0 for v in ("ckpt_0", "ckpt_1", "ckpt_2")}
    for x in pfsp.sample(2000):
        counts[x.value] += 1
    assert counts["ckpt_2"] > 1700


def test_variance_weighting_latest_prob_and_max_pool():
    assert pfsp_weights(np.array([0.5, 0.0, 1.0]), "variance", 2.0).tolist() == [1.0, 0.0, 0.0]
    t = make_teacher("self_play", POOL, preset="self_play", initial_pool=2)
    assert {x.value for x in t.sample(100)} == {"ckpt_1"}  # latest_prob 1: always the newest
    with pytest.raises(ConfigError, match="initial_pool: 3 is more than max_pool=2"):
        make_teacher("self_play", POOL, initial_pool=3, max_pool=2)
    t = make_teacher("self_play", POOL, initial_pool=2, max_pool=2)
    t.add_opponent()
    t.add_opponent()
    assert [POOL.values[i] for i in t.pool] == ["ckpt_2", "ckpt_3"]


def test_checkpoints_join_every_n_outcomes_and_departed_opponents_are_ignored():
    t = make_teacher("self_play", POOL, add_every=100, max_pool=2)
    first = t.sample(10)
    _play(t, 3, {v: 0.5 for v in POOL.values}, batch=50)  # 150 outcomes: one join
    assert t.stats()["pool_size"] == 2 and t.stats()["latest_opponent"] == "ckpt_1"
    _play(t, 2, {v: 0.5 for v in POOL.values}, batch=50)  # 250: ckpt_2 joins, ckpt_0 leaves
    assert t.stats()["latest_opponent"] == "ckpt_2" and 0 not in t.pool
    t.update([Outcome(x.id, 0.0, success=True) for x in first])  # late games vs ckpt_0: dropped
    assert 0 not in t._games


def test_errors_and_state_round_trip():
    with pytest.raises(ConfigError, match="works on discrete"):
        make_teacher("self_play", Box([0], [1]))
    with pytest.raises(ConfigError, match="initial_pool: 7 is more than the 6"):
        make_teacher("self_play", POOL, initial_pool=7)
    beats = {v: w for v, w in zip(POOL.values, [0.2, 0.8, 0.5, 0.3, 0.6, 0.9])}
    a = make_teacher("self_play", POOL, initial_pool=4, seed=1)
    _play(a, 5, beats)
    b = make_teacher("self_play", POOL, initial_pool=4, seed=2)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.probabilities(), b.probabilities())
    assert a.sample(30) == b.sample(30)
