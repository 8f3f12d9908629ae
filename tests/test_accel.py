"""ACCEL: replayed high-score levels are edited into children, children enter the buffer by score."""

import numpy as np
import pytest

from openended.errors import ConfigError, TaskNotInSpace, TeacherStateError
from openended.tasks import Box, Discrete, Outcome, TextSpace
from openended.teachers import make_teacher

SPACE = Box([0.0, 0.0], [1.0, 1.0])
WORDS = TextSpace(["go left", "go right"])


def text_edit(task, space, rng, n_edits):
    """Test editor for a TextSpace: append n_edits words."""
    return space.task(task.text + " again" * n_edits, parent_ids=(task.id,), origin="edited")


def bad_edit(task, space, rng, n_edits):
    return "not a task"


def _run(t, rounds, score, batch=16):
    for _ in range(rounds):
        tasks = t.sample(batch)
        t.update([Outcome(x.id, 0.0, info={"score": score(x)}) for x in tasks])


def test_replays_are_followed_by_their_edited_children():
    t = make_teacher("accel", SPACE, seed=0, buffer_size=20, min_fill=0.5, replay_prob=1.0, n_edits=2)
    first = t.sample(10)
    assert all(x.origin == "uniform" for x in first)  # buffer empty: new levels
    t.update([Outcome(x.id, 0.0, info={"score": float(x.params[0])}) for x in first])
    out = t.sample(6)
    assert [x.origin for x in out] == ["replay", "edited"] * 3
    for parent, child in zip(out[::2], out[1::2]):
        assert child.parent_ids == (parent.id,)
        diff = np.abs(np.subtract(child.params, parent.params))
        assert 0 < diff.max() < 0.5 and SPACE.contains(child)  # a small perturbation inside the box


def test_high_scoring_levels_fill_the_buffer_and_are_replayed_most():
    t = make_teacher("accel", SPACE, seed=1, buffer_size=30, temperature=0.3, staleness_coef=0.1)
    _run(t, 60, lambda x: float(x.params[0] > 0.8))  # regret only on the right edge
    levels = [x for x in t.levels if x is not None]
    assert len(levels) == 30
    right = np.mean([x.params[0] > 0.8 for x in levels])
    assert right > 0.8  # low-score levels were replaced by high-score ones (uniform: 20 %)
    replayed = [x for x in t.sample(400) if x.origin == "replay"]
    assert np.mean([x.params[0] > 0.8 for x in replayed]) > 0.8
    s = t.stats()
    assert s["accel_replay"] > 0 and s["accel_edited"] > 0 and s["accel_inserted"] >= 30


def test_proxy_score_without_a_learner_score():
    t = make_teacher("accel", SPACE, seed=2, buffer_size=4, replay_prob=0.0)
    tasks = t.sample(4)
    t.update([Outcome(x.id, r) for x, r in zip(tasks, [0.0, 1.0, 2.0, 3.0])])
    assert sorted(t._score.tolist()) == [0.0, 1.0, 2.0, 3.0]  # |G - 0| for new levels
    new = t.sample(1)
    t.update([Outcome(new[0].id, 0.5)])
    assert sorted(t._score.tolist()) == [0.5, 1.0, 2.0, 3.0]  # replaced the weakest
    t.update([Outcome(x.id, 0.1) for x in t.sample(1)])
    assert t.stats()["accel_rejected"] == 1  # below every buffered score


def test_editor_for_other_spaces_and_errors():
    t = make_teacher("accel", WORDS, editor="test_accel:text_edit", buffer_size=2, min_fill=1.0, replay_prob=1.0)
    _run(t, 2, lambda x: 1.0, batch=2)
    out = t.sample(2)
    assert out[1].origin == "edited" and out[1].text.endswith(" again again again")
    with pytest.raises(ConfigError, match="has no built-in edit; set teacher.accel.editor"):
        make_teacher("accel", Discrete(5))
    with pytest.raises(ConfigError, match="teacher.accel.editor"):
        make_teacher("accel", WORDS, editor="test_accel:no_such_fn")
    bad = make_teacher("accel", WORDS, editor="test_accel:bad_edit", buffer_size=1, min_fill=1.0, replay_prob=1.0)
    _run(bad, 1, lambda x: 1.0, batch=1)
    with pytest.raises(TaskNotInSpace, match="editor returned 'not a task'"):
        bad.sample(1)


def test_state_round_trip_with_children_waiting():
    a = make_teacher("accel", SPACE, seed=3, buffer_size=10, replay_prob=1.0)
    _run(a, 3, lambda x: float(x.params[1]), batch=5)
    a.sample(1)  # a replay: its child waits
    b = make_teacher("accel", SPACE, seed=4, buffer_size=10, replay_prob=1.0)
    b.load_state_dict(a.state_dict())
    assert a.sample(7) == b.sample(7)
    with pytest.raises(TeacherStateError, match="buffer_size=10"):
        make_teacher("accel", SPACE, buffer_size=5).load_state_dict(a.state_dict())
