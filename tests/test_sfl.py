"""SFL: the buffer holds the tasks of highest p(1-p); replay draws come from it at buffer_prob."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher
from openended.teachers.sfl import learnability

# level v succeeds with probability P[v]: 0, 0.5 and 1 (three of each kind)
P = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
SPACE = Discrete(list(range(len(P))))


def _run(t, rounds, batch=32, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        tasks = t.sample(batch)
        t.update([Outcome(x.id, 0.0, success=bool(rng.random() < P[x.value])) for x in tasks])


def test_learnability_peaks_at_half():
    s = learnability(np.array([0, 1, 2, 3, 4]), np.array([4, 4, 4, 4, 4]))
    assert s.tolist() == [0.0, 0.1875, 0.25, 0.1875, 0.0]


def test_buffer_keeps_only_tasks_solved_sometimes_and_replays_them():
    t = make_teacher("sfl", SPACE, seed=0, n_candidates=30, n_rollouts=8, buffer_size=5, refresh_every=10_000)
    first = t.sample(30)
    assert all(x.origin == "evaluation" for x in first)  # rollouts go out first
    _run(t, 10)
    assert t.stats()["sfl_refreshes"] >= 1
    assert {x.value for x in t.buffer} <= {3, 4, 5}  # only the p = 0.5 levels have p(1-p) > 0
    assert len(t.buffer) == 3 and all(s > 0.1 for s in t.buffer_scores)
    tasks = t.sample(4000)
    replay = [x for x in tasks if x.origin == "replay"]
    assert abs(len(replay) / 4000 - 0.5) < 0.03  # buffer_prob
    assert {x.value for x in replay} <= {3, 4, 5}


def test_buffer_is_cut_to_size_and_refreshed_periodically():
    t = make_teacher("sfl", SPACE, seed=1, n_candidates=9, n_rollouts=4, buffer_size=1, refresh_every=64)
    _run(t, 30, batch=16)
    assert len(t.buffer) == 1 and t.buffer[0].value in {3, 4, 5}
    assert t.stats()["sfl_refreshes"] >= 5  # one per refresh_every outcomes, at least


def test_return_threshold_stands_in_for_missing_success_on_box():
    space = Box([0.0], [1.0])
    t = make_teacher("sfl", space, seed=2, n_candidates=40, n_rollouts=6, success_threshold=0.5, buffer_prob=1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):  # returns: above 0.5 half the time only for x in [0.4, 0.6]
        tasks = t.sample(24)
        rets = [float(0.4 <= x.params[0] <= 0.6) * rng.random() + float(x.params[0] > 0.6) for x in tasks]
        t.update([Outcome(x.id, r) for x, r in zip(tasks, rets)])
    assert t.buffer and all(0.4 <= x.params[0] <= 0.6 for x in t.buffer)


def test_state_round_trip_mid_round_and_config_errors():
    a = make_teacher("sfl", SPACE, seed=3, n_candidates=9, n_rollouts=3, refresh_every=50)
    _run(a, 3, batch=10)
    b = make_teacher("sfl", SPACE, seed=4, n_candidates=9, n_rollouts=3, refresh_every=50)
    b.load_state_dict(a.state_dict())
    _run(a, 8, batch=10, seed=5)
    _run(b, 8, batch=10, seed=5)
    assert a.sample(20) == b.sample(20) and a.buffer == b.buffer
    with pytest.raises(ConfigError, match="teacher.sfl.buffer_prob"):
        make_teacher("sfl", SPACE, buffer_prob=1.5)
