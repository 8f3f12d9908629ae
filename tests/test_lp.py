"""LearningProgressTeacher: OMNI's LP maths on hand-computed cases, sources, determinism, state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box, Discrete, Outcome, TextSpace
from openended.teachers import make_teacher
from openended.teachers.lp import LearningProgressTeacher, LPTracker, TaskDistribution, lp_to_probabilities, reweight


def _sig(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def test_reweight_hand_values() -> None:
    # f(p) = 0.9 p / (p + 0.1 (1 - 2p))
    got = reweight(np.array([0.0, 0.01, 0.1, 0.5, 1.0]), 0.1)
    np.testing.assert_allclose(got, [0.0, 0.009 / 0.108, 0.5, 0.9, 1.0])


def test_lp_to_probabilities_keeps_lp_or_success_then_zscore_sigmoid() -> None:
    # keep tasks 0 (LP>0) and 1 (success>0); z = [1, -1]
    p = lp_to_probabilities(np.array([0.4, 0.0, 0.0]), np.array([0.1, 1.0, 0.0]))
    a, b = _sig(1.0), _sig(-1.0)
    np.testing.assert_allclose(p, [a / (a + b), b / (a + b), 0.0])


def test_lp_to_probabilities_uniform_when_nothing_qualifies() -> None:
    np.testing.assert_allclose(lp_to_probabilities(np.zeros(4), np.zeros(4)), np.full(4, 0.25))


def test_tracker_double_ema_first_observation_initialises() -> None:
    tr = LPTracker(2, alpha=0.1, theta=0.1)
    tr.record(np.array([0, 0]), np.array([0.0, 0.0]), np.array([False, False]))
    tr.step(use_eval=False)
    assert tr.fast[0] == 0.0 and tr.slow[0] == 0.0 and tr.seen[0] == 1 and tr.seen[1] == 0
    tr.record(np.array([0]), np.array([1.0]), np.array([False]))
    tr.step(use_eval=False)
    assert tr.fast[0] == pytest.approx(0.1)  # 0.1*1 + 0.9*0
    assert tr.slow[0] == pytest.approx(0.01)  # 0.1*0.1 + 0.9*0 (uses the new p_fast)
    assert tr.lp()[0] == pytest.approx(0.5 - 0.009 / 0.108)
    assert tr.lp()[1] == 0.0  # never observed: frozen at 0


def test_teacher_lp_and_distribution_hand_case() -> None:
    t = make_teacher("lp", Discrete(3), preset="omni", update_every=1, seed=0)  # reference: no exploration
    ids = [task.id for task in t.known_tasks()]
    t.update([Outcome(ids[0], 0.0, success=False), Outcome(ids[1], 1.0, success=True)])
    t.update([Outcome(ids[0], 1.0, success=True), Outcome(ids[1], 1.0, success=True)])
    lp = t.learning_progress()
    assert lp[0] == pytest.approx(0.5 - 0.009 / 0.108)
    assert lp[1] == 0.0 and lp[2] == 0.0
    # task 1 kept (success > 0) with LP 0, task 2 dropped; z-scores are +1 / -1
    a, b = _sig(1.0), _sig(-1.0)
    np.testing.assert_allclose(t.probabilities(), [a / (a + b), b / (a + b), 0.0])
    assert isinstance(t, TaskDistribution)
    for task in t.sample(50):
        assert task.id in ids[:2]


def test_default_exploration_floor_keeps_never_succeeded_tasks_sampled() -> None:
    # the hand case above with the floor on (its default): the never-observed task 2 keeps its share
    t = make_teacher("lp", Discrete(3), update_every=1, seed=0, optimistic_new=False)
    e = t.config.explore
    assert e > 0  # on by default
    ids = [task.id for task in t.known_tasks()]
    t.update([Outcome(ids[0], 0.0, success=False), Outcome(ids[1], 1.0, success=True)])
    t.update([Outcome(ids[0], 1.0, success=True), Outcome(ids[1], 1.0, success=True)])
    a, b = _sig(1.0), _sig(-1.0)
    np.testing.assert_allclose(t.probabilities(), [(1 - e) * a / (a + b), (1 - e) * b / (a + b), e])
    assert ids[2] in {x.id for x in t.sample(200)}


def test_tasks_added_later_are_tried_first() -> None:
    space = TextSpace(["collect_wood", "place_table", "collect_stone"])
    t = make_teacher("lp", space, update_every=1, seed=0)
    ids = [x.id for x in t.known_tasks()]
    t.update([Outcome(ids[0], 0.0, success=False), Outcome(ids[1], 1.0, success=True)])
    t.update([Outcome(ids[0], 1.0, success=True), Outcome(ids[1], 1.0, success=True)])
    t.add_tasks([space.task("make_wood_pickaxe")])
    p = t.probabilities()
    assert p[3] == pytest.approx(p[0]) and p[3] == p.max()  # optimistic: the top LP until observed
    assert p[2] == pytest.approx(t.config.explore)  # initial, never observed: only the floor
    t.update([Outcome(t.known_tasks()[3].id, 0.0, success=False)])
    assert t.probabilities()[3] < p[3]  # observed and failed: the prior is gone
    ref = make_teacher("lp", space, preset="omni", update_every=1, seed=0)
    ref.update([Outcome(ids[0], 0.0, success=False), Outcome(ids[1], 1.0, success=True)])
    ref.add_tasks([space.task("make_wood_pickaxe")])
    assert ref.probabilities()[3] == 0.0


def test_explore_share_is_spread_over_dropped_tasks_only() -> None:
    p = lp_to_probabilities(np.array([0.4, 0.0, 0.0, 0.0]), np.array([0.1, 1.0, 0.0, 0.0]), explore=0.2)
    a, b = _sig(1.0), _sig(-1.0)
    np.testing.assert_allclose(p, [0.8 * a / (a + b), 0.8 * b / (a + b), 0.1, 0.1])
    # nothing dropped: the floor changes nothing
    np.testing.assert_allclose(lp_to_probabilities(np.zeros(3), np.zeros(3), explore=0.5), np.full(3, 1 / 3))


def test_optimistic_prior_gives_unseen_tasks_the_top_lp() -> None:
    lp, ema = np.array([0.4, 0.0, 0.0]), np.array([0.1, 1.0, 0.0])
    p = lp_to_probabilities(lp, ema, unseen=np.array([False, False, True]))
    # task 2 is kept with LP 0.4: z = [0.707, -1.414, 0.707]
    z = (np.array([0.4, 0.0, 0.4]) - 0.8 / 3) / np.array([0.4, 0.0, 0.4]).std()
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(p, s / s.sum())


def test_train_only_lp_does_not_freeze_on_first_window_successes() -> None:
    # Training outcomes only: task i starts to succeed only after update 10 * i (a prerequisite
    # chain). Reference LP drops every task that failed its first window and never samples it
    # again; the default floor keeps trying them and finds the later ones.
    space = Discrete(6)
    found = {}
    for mode, kw in (("reference", {"preset": "omni"}), ("default", {})):
        t = make_teacher("lp", space, seed=0, **kw, update_every=2)
        succeeded: set[int] = set()
        for u in range(80):
            ts = t.sample(8)
            outs = []
            for x in ts:
                ok = u >= 10 * int(x.params[0])
                succeeded |= {int(x.params[0])} if ok else set()
                outs.append(Outcome(x.id, float(ok), success=ok))
            t.update(outs)
        found[mode] = len(succeeded)
    assert found["reference"] <= 2 and found["default"] == 6


def test_random_baseline_normalisation() -> None:
    space = Discrete(["a", "b"])
    t = make_teacher("lp", space, update_every=1, random_baseline={"a": 0.5})
    a = space.task("a")
    t.update([Outcome(a.id, 1.0, success=True)] * 3 + [Outcome(a.id, 0.0, success=False)])
    # raw 0.75 -> norm max(0.75 - 0.5, 0) / 0.5 = 0.5; raw EMA stays raw
    tr = t._tracker
    assert tr.fast[0] == pytest.approx(0.5) and tr.ema_raw[0] == pytest.approx(0.75)


def test_eval_outcomes_take_over_once_seen() -> None:
    space = Discrete(["a"])
    t = make_teacher("lp", space, update_every=1)
    a = space.task("a")
    t.update([Outcome(a.id, 1.0, success=True)])  # training only: rate 1
    assert t.success_estimates()[0] == 1.0
    t.update([Outcome(a.id, 1.0, success=True)] * 5 + [Outcome(a.id, 0.0, success=False, info={"eval": True})])
    # only the evaluation outcome counts now: rate 0 -> ema 0.9
    assert t.success_estimates()[0] == pytest.approx(0.9)
    assert t.stats()["lp/source"] == "eval"


def test_update_every_counts_updates_or_outcomes() -> None:
    space = Discrete(["a"])
    a = space.task("a")
    t = make_teacher("lp", space, update_every=3)
    for _ in range(2):
        t.update([Outcome(a.id, 1.0, success=True)])
    assert t.stats()["lp/steps"] == 0
    t.update([Outcome(a.id, 1.0, success=True)])
    assert t.stats()["lp/steps"] == 1
    t2 = make_teacher("lp", space, update_every=3, recompute_unit="outcomes")
    t2.update([Outcome(a.id, 1.0, success=True)] * 3)
    assert t2.stats()["lp/steps"] == 1


def test_outcomes_without_success_are_skipped_or_thresholded() -> None:
    space = Discrete(["a"])
    a = space.task("a")
    t = make_teacher("lp", space, update_every=1)
    t.update([Outcome(a.id, 5.0)])
    assert t.stats()["lp/outcomes_without_success"] == 1
    t2 = make_teacher("lp", space, update_every=1, success_from_return=1.0)
    t2.update([Outcome(a.id, 5.0)])
    assert t2.success_estimates()[0] == 1.0


def _drive(t: LearningProgressTeacher, rounds: int, rng: np.random.Generator) -> list[str]:
    out = []
    for _ in range(rounds):
        ts = t.sample(16)
        out += [x.id for x in ts]
        t.update([Outcome(x.id, 0.0, success=bool(rng.random() < (hash(x.id) % 7) / 7)) for x in ts])
    return out


def test_determinism_and_state_round_trip() -> None:
    space = Discrete(40)
    a = make_teacher("lp", space, update_every=2, seed=3)
    b = make_teacher("lp", space, update_every=2, seed=3)
    assert _drive(a, 10, np.random.default_rng(0)) == _drive(b, 10, np.random.default_rng(0))
    state = json.loads(json.dumps(a.state_dict()))
    c = make_teacher("lp", space, update_every=2, seed=99)
    c.load_state_dict(state)
    assert [x.id for x in a.sample(64)] == [x.id for x in c.sample(64)]
    np.testing.assert_array_equal(a.probabilities(), c.probabilities())


def test_text_space_known_tasks_and_growth() -> None:
    space = TextSpace(["collect_wood", "place_table"])
    t = make_teacher("lp", space, update_every=1)
    assert [x.text for x in t.known_tasks()] == ["collect_wood", "place_table"]
    new = t.add_tasks([space.task("collect_wood_2"), space.task("collect_wood")])
    assert [x.text for x in new] == ["collect_wood_2"]
    assert len(t.probabilities()) == 3
    t.update([Outcome(new[0].id, 1.0, success=True)])  # a grown task is known to update()
    assert t.stats()["unknown_task_outcomes"] == 0
    with pytest.raises(ConfigError):
        make_teacher("lp", TextSpace())


def test_add_tasks_with_a_foreign_task_adds_none_of_the_batch() -> None:
    space = TextSpace(["collect_wood"])
    t = make_teacher("lp", space)
    with pytest.raises(TaskNotInSpace):
        t.add_tasks([space.task("place_table"), Box([0], [1]).task([0.5])])
    assert [x.text for x in t.known_tasks()] == ["collect_wood"] and len(t.probabilities()) == 1
    assert [x.text for x in t.add_tasks([space.task("place_table")])] == ["place_table"]


def test_stats_list_top_lp_and_mastered_fraction() -> None:
    space = Discrete(["a", "b"])
    t = make_teacher("lp", space, update_every=1, stats_top_k=1)
    a = space.task("a")
    t.update([Outcome(a.id, 1.0, success=True)])
    s = t.stats()
    assert s["lp/mastered_fraction"] == 0.5
    assert len(s["lp/top"]) == 1 and set(s["lp/top"][0]) == {"task", "id", "lp", "ema_success", "p"}


def test_update_resolved_learns_as_update_does() -> None:
    """OMNI hands its base already-resolved tasks (`update_resolved`): same learning, same counts."""
    space = TextSpace([f"task {i}" for i in range(12)])
    a = make_teacher("lp", space, seed=3, update_every=2)
    b = make_teacher("lp", space, seed=3, update_every=2)
    rng = np.random.default_rng(0)
    for _ in range(6):
        ta, tb = a.sample(8), b.sample(8)
        assert [t.id for t in ta] == [t.id for t in tb]
        wins = rng.random(8) < 0.5
        outs = [Outcome(t.id, float(w), success=bool(w)) for t, w in zip(ta, wins)]
        a.update(outs)
        b.update_resolved(tb, outs)
    np.testing.assert_array_equal(a.probabilities(), b.probabilities())
    assert a.stats()["outcomes"] == b.stats()["outcomes"] == 48
    assert a.stats()["update_calls"] == b.stats()["update_calls"] == 6
