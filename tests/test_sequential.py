"""Sequential stages: each stage runs until its condition holds, outcomes reach the stage that issued them."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher

SPACE = Discrete(list(range(10)))


def _feed(t, n, ret=0.0, success=None):
    tasks = t.sample(n)
    t.update([Outcome(x.id, ret, success=success) for x in tasks])
    return tasks


def test_fixed_stage_then_teacher_after_n_episodes():
    t = make_teacher(
        "sequential", SPACE, stages=[{"tasks": [0, 1], "until": {"episodes": 20}}, {"teacher": "random"}], seed=0
    )
    tasks = _feed(t, 10) + _feed(t, 9)
    assert {x.value for x in tasks} <= {0, 1} and t.stage == 0
    _feed(t, 1)
    assert t.stage == 1 and t.stats()["stage_teacher"] == "random"
    assert len({x.value for x in t.sample(200)}) == 10


def test_mean_return_and_success_conditions_use_a_full_window():
    stages = [
        {"tasks": [0], "until": {"mean_return": 0.5, "window": 10}},
        {"tasks": [1], "until": {"success_rate": 0.8, "episodes": 1000, "window": 5, "combine": "all"}},
        {"tasks": [2]},
    ]
    t = make_teacher("sequential", SPACE, stages=stages)
    _feed(t, 9, ret=1.0)
    assert t.stage == 0  # 9 < window
    _feed(t, 1, ret=1.0)
    assert t.stage == 1
    _feed(t, 50, success=True)
    assert t.stage == 1  # success rate holds, but "all" also wants 1000 episodes
    _feed(t, 950, success=True)
    assert t.stage == 2
    _feed(t, 5000, ret=10.0, success=True)
    assert t.stage == 2  # the last stage never ends
    assert {x.value for x in t.sample(20)} == {2}


def test_late_outcomes_reach_the_issuing_stage_and_count_for_no_condition():
    t = make_teacher(
        "sequential",
        SPACE,
        stages=[
            {"teacher": "plr", "until": {"episodes": 4}},
            {"teacher": "random", "until": {"episodes": 4}},
            {"tasks": [9]},
        ],
    )
    early = t.sample(8)
    t.update([Outcome(x.id, 1.0) for x in early[:4]])
    assert t.stage == 1
    t.update([Outcome(x.id, 1.0) for x in early[4:]])  # late: for stage 0's PLR, not stage 1's count
    assert t.teachers[0].stats()["outcomes"] == 8 and t.stage == 1 and t.stats()["stage_episodes"] == 0


def test_stage_errors_name_the_stage():
    with pytest.raises(ConfigError, match=r"exactly one of 'teacher' and 'tasks'"):
        make_teacher("sequential", SPACE, stages=[{"teacher": "random", "tasks": [1]}])
    with pytest.raises(ConfigError, match=r"stages\[1\]: .*works on box"):
        make_teacher("sequential", SPACE, stages=[{"teacher": "random", "until": {"episodes": 5}}, {"teacher": "riac"}])
    with pytest.raises(ConfigError, match=r"stages\[0\]: .*outside"):
        make_teacher("sequential", Box([0], [1]), stages=[{"tasks": [[2.0]]}])
    with pytest.raises(ConfigError, match=r"stages\.0\.until\.episodes"):
        make_teacher("sequential", SPACE, stages=[{"teacher": "random", "until": {"episodes": 0}}])


def test_state_round_trip_keeps_stage_and_stage_teachers():
    kw = {"stages": [{"teacher": "random", "until": {"episodes": 30}}, {"teacher": "riac"}], "seed": 3}
    space = Box([0, 0], [1, 1])
    a = make_teacher("sequential", space, **kw)
    rng = np.random.default_rng(0)
    for _ in range(5):
        tasks = a.sample(8)
        a.update([Outcome(x.id, float(rng.random())) for x in tasks])
    assert a.stage == 1
    b = make_teacher("sequential", space, **{**kw, "seed": 3})
    b.load_state_dict(a.state_dict())
    assert b.stage == 1
    for _ in range(5):
        ta, tb = a.sample(8), b.sample(8)
        assert ta == tb
        rets = rng.random(8).tolist()
        for t, tasks in ((a, ta), (b, tb)):
            t.update([Outcome(x.id, r) for x, r in zip(tasks, rets)])


def test_view_is_the_stage_teachers_or_the_fixed_tasks():
    t = make_teacher("sequential", SPACE, stages=[{"tasks": [3, 4], "until": {"episodes": 2}}, {"teacher": "plr"}])
    v = t.view()
    assert v["kind"] == "scores" and v["stage"] == 0 and sorted(r["task"] for r in v["rows"]) == ["3", "4"]
    _feed(t, 2)
    v = t.view()
    assert v["teacher"] == "sequential" and v["stage_teacher"] == "plr" and v["stage"] == 1
