"""ADR: bounds widen after good returns on them, narrow after bad ones, never leave the space."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher

SPACE = Box([0.0, 0.0], [1.0, 2.0])


def _feed(t, n, ret):
    tasks = t.sample(n)
    t.update([Outcome(x.id, ret(x)) for x in tasks])
    return tasks


def test_starts_as_a_point_and_expands_after_success_above_threshold():
    t = make_teacher("adr", SPACE, seed=0, max_reward_thr=1.0, min_reward_thr=0.0, queue_len=10, step_size=0.1)
    first = t.sample(5)
    assert all(x.params == (0.5, 1.0) for x in first)  # the box centre, a single point
    t.update([Outcome(x.id, 2.0) for x in first])
    assert t.cur_low.tolist() == [0.5, 1.0]  # 5 < queue_len: no decision yet
    t.update([Outcome(x.id, 2.0) for x in t.sample(5)])
    # every task sat on every bound: all four queues filled and all widened by one step
    assert np.allclose(t.cur_low, [0.4, 0.9]) and np.allclose(t.cur_high, [0.6, 1.1])
    assert t.stats()["adr_expanded"] == 4


def test_shrinks_after_failures_and_never_crosses_or_leaves_the_space():
    t = make_teacher("adr", SPACE, seed=1, initial="low", queue_len=2, step_size=0.3, max_reward_thr=1.0)
    for _ in range(30):  # always succeed: the box grows to the whole space, never past it
        _feed(t, 8, lambda x: 5.0)
    assert t.cur_low.tolist() == [0.0, 0.0] and np.allclose(t.cur_high, [1.0, 2.0])
    for _ in range(200):  # always fail: the high bounds come back down, never below the low ones
        _feed(t, 8, lambda x: -1.0)
        assert np.all(t.cur_low <= t.cur_high)
    assert np.allclose(t.cur_high, t.cur_low)
    assert t.stats()["adr_shrunk"] > 0


def test_bound_with_middling_returns_stays_and_boundary_fraction_matches_p():
    t = make_teacher("adr", SPACE, seed=2, initial="low", queue_len=4, max_reward_thr=1.0, min_reward_thr=0.0)
    for _ in range(5):
        _feed(t, 8, lambda x: 5.0)
    low, high = t.cur_low.copy(), t.cur_high.copy()
    for _ in range(20):
        _feed(t, 16, lambda x: 0.5)  # between the thresholds: no decision moves a bound
    assert np.array_equal(t.cur_low, low) and np.array_equal(t.cur_high, high)
    tasks = t.sample(4000)
    frac = np.mean([x.origin == "boundary" for x in tasks])
    assert abs(frac - 0.5) < 0.03  # the class default boundary_sampling_p
    arr = np.array([x.params for x in tasks])
    assert np.all(arr >= t.cur_low) and np.all(arr <= t.cur_high)


def test_late_outcomes_of_a_moved_bound_are_dropped():
    t = make_teacher("adr", SPACE, seed=3, queue_len=1, max_reward_thr=1.0, boundary_sampling_p=1.0)
    stale = t.sample(3)
    t.update([Outcome(stale[0].id, 5.0)])  # moves every bound outwards
    widths = t.cur_high - t.cur_low
    t.update([Outcome(x.id, -5.0) for x in stale[1:]])  # the old centre is on no bound any more
    assert np.array_equal(t.cur_high - t.cur_low, widths)


def test_relative_step_presets_and_errors():
    t = make_teacher("adr", Box([0.0], [10.0]), initial="low", relative_step=True, step_size=0.1, queue_len=1)
    t.update([Outcome(x.id, 500.0) for x in t.sample(1)])
    assert t.cur_high.tolist() == [1.0]
    assert make_teacher("adr", SPACE, preset="teachmyagent").config.boundary_sampling_p == 0.7
    with pytest.raises(ConfigError, match="min_reward_thr"):
        make_teacher("adr", SPACE, min_reward_thr=5.0, max_reward_thr=1.0)
    with pytest.raises(ConfigError, match="initial: 3 values"):
        make_teacher("adr", SPACE, initial=[0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="works on box"):
        make_teacher("adr", Discrete(3))


def test_state_round_trip_continues_identically():
    a = make_teacher("adr", SPACE, seed=4, preset="toy")
    for _ in range(20):
        _feed(a, 8, lambda x: float(x.params[0] < 0.3))
    b = make_teacher("adr", SPACE, seed=9, preset="toy")
    b.load_state_dict(a.state_dict())
    for _ in range(10):
        ta, tb = a.sample(8), b.sample(8)
        assert ta == tb
        for t, tasks in ((a, ta), (b, tb)):
            t.update([Outcome(x.id, float(x.params[0] < 0.3)) for x in tasks])
    assert np.array_equal(a.cur_high, b.cur_high)
