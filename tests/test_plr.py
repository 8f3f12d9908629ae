"""PLR teacher: transforms on hand-computed cases, replay/explore rule, buffer, proxies, state."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from openended.errors import ConfigError, TeacherStateError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher
from openended.teachers.plr import PLRTeacher, rank_weights, replay_distribution, staleness_weights


def scored(teacher: PLRTeacher, scores: dict[int, float], returns: dict[int, float] | None = None) -> None:
    """Report one outcome per level value with ``info["score"]`` (levels registered first)."""
    sp = teacher.space
    tasks = [sp.task(v) for v in scores]
    teacher.register_tasks(tasks)
    teacher.update(
        [
            Outcome(task_id=t.id, episode_return=(returns or {}).get(v, 0.0), info={"score": s})
            for t, (v, s) in zip(tasks, scores.items())
        ]
    )


def levels(tasks) -> list[int]:
    return [t.value for t in tasks]


# ------------------------------------------------------------------------------ maths
def test_rank_weights_hand_computed():
    np.testing.assert_allclose(rank_weights(np.array([0.2, 0.9, 0.5]), 1.0), [2 / 11, 6 / 11, 3 / 11])
    # beta = 0.5: weights rank^-2 = 1/9, 1, 1/4, sum 49/36
    np.testing.assert_allclose(rank_weights(np.array([0.2, 0.9, 0.5]), 0.5), [4 / 49, 36 / 49, 9 / 49])
    # ties: earlier position ranks first
    np.testing.assert_allclose(rank_weights(np.array([1.0, 1.0, 0.0]), 1.0), [6 / 11, 3 / 11, 2 / 11])
    # beta = 0.1 is almost greedy
    w = rank_weights(np.array([0.0, 5.0]), 0.1)
    np.testing.assert_allclose(w, np.array([2.0**-10, 1.0]) / (1 + 2.0**-10))


def test_staleness_and_mixture_hand_computed():
    np.testing.assert_allclose(staleness_weights(np.array([0.0, 1.0, 3.0])), [0, 0.25, 0.75])
    np.testing.assert_allclose(staleness_weights(np.zeros(4)), [0.25] * 4)  # all fresh: uniform
    p = replay_distribution(np.array([3.0, 1.0]), np.array([0.0, 2.0]), temperature=1.0, staleness_coef=0.5)
    np.testing.assert_allclose(p, [0.5 * 2 / 3 + 0.0, 0.5 * 1 / 3 + 0.5])
    p = replay_distribution(np.array([3.0, 1.0]), np.array([5.0, 2.0]), temperature=1.0, staleness_coef=0.0)
    np.testing.assert_allclose(p, [2 / 3, 1 / 3])


def test_teacher_replay_distribution_rank_plus_staleness():
    t = make_teacher("plr", Discrete(4), temperature=1.0, staleness_coef=0.1, replay_prob=1.0, min_fill=0.0)
    scored(t, {0: 0.5, 1: 2.0, 2: 1.0})
    tasks, p = t.replay_distribution()
    assert levels(tasks) == [0, 1, 2]
    rank = np.array([2 / 11, 6 / 11, 3 / 11])
    np.testing.assert_allclose(p, 0.9 * rank + 0.1 * np.full(3, 1 / 3))  # no draws yet: staleness all 0
    drawn = t.sample(1)[0].value  # replay_prob 1 and a level left unseen: still a replay
    assert drawn in (0, 1, 2) and t.stats()["plr/replay_decisions"] == 1
    stale = np.array([0.0 if v == drawn else 1.0 for v in (0, 1, 2)])
    np.testing.assert_allclose(t.replay_distribution()[1], 0.9 * rank + 0.1 * stale / stale.sum())
    rows = {r["level"]: r for r in t.level_stats()}
    assert rows[drawn]["staleness"] == 0 and all(rows[v]["staleness"] == 1 for v in (0, 1, 2) if v != drawn)


def test_replay_frequencies_follow_the_distribution():
    t = make_teacher("plr", Discrete(4), temperature=1.0, staleness_coef=0.0, replay_prob=1.0, min_fill=0.0, seed=3)
    scored(t, {0: 0.5, 1: 2.0, 2: 1.0})
    draws = levels(t.sample(6000))
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq[:3], [2 / 11, 6 / 11, 3 / 11], atol=0.02)
    assert freq[3] == 0  # the unseen level is never replayed


# ---------------------------------------------------------------- replay / explore rule
def test_explore_draws_unseen_levels_only():
    t = make_teacher("plr", Discrete(50), replay_prob=0.5, min_fill=0.0, seed=1)
    scored(t, {v: float(v) for v in range(10)})
    buffered = set(range(10))
    before = t.stats()
    batch = levels(t.sample(200))
    after = t.stats()
    n_replay = after["plr/replay_decisions"] - before["plr/replay_decisions"]
    n_explore = after["plr/explore_decisions"] - before["plr/explore_decisions"]
    assert n_replay + n_explore == 200 and 60 < n_explore < 140
    assert sum(v in buffered for v in batch) == n_replay  # every explore picked an unseen level
    t0 = make_teacher("plr", Discrete(50), replay_prob=0.0, min_fill=0.0, seed=1)
    scored(t0, {v: 1.0 for v in range(10)})
    assert not set(levels(t0.sample(100))) & buffered


def test_empty_buffer_explores_and_full_coverage_replays():
    t = make_teacher("plr", Discrete(5), replay_prob=0.0, min_fill=0.0)
    first = levels(t.sample(20))
    assert t.stats()["plr/replay_decisions"] == 0 and set(first) <= set(range(5))
    scored(t, {v: 1.0 + v for v in range(5)})  # every level seen: nothing left to explore
    t.sample(30)
    assert t.stats()["plr/replay_decisions"] == 30


def test_min_fill_and_proportionate_schedule():
    t = make_teacher("plr", Discrete(4), replay_prob=1.0, min_fill=1.0)
    scored(t, {0: 1.0, 1: 2.0, 2: 3.0})
    assert set(levels(t.sample(25))) == {3}  # PLR's rho = 1: see every level before replaying
    p = make_teacher("plr", Discrete(4), preset="plr_procgen", seed=5)
    scored(p, {0: 1.0, 1: 2.0, 2: 3.0})
    assert set(levels(p.sample(10))) == {3}
    scored(p, {3: 0.5})
    p.sample(40)
    assert p.stats()["plr/explore_decisions"] == 10
    q = make_teacher("plr", Discrete(8), replay_schedule="proportionate", min_fill=0.0, seed=2)
    scored(q, {v: 1.0 for v in range(2)})  # fill 2/8: replay w.p. 0.25
    q.sample(2000)
    frac = q.stats()["plr/replay_decisions"] / 2000
    assert abs(frac - 0.25) < 0.04


# ------------------------------------------------------------------------------ buffer
def test_bounded_buffer_replaces_lowest_score_only_when_beaten():
    t = make_teacher("plr", Discrete(10), buffer_size=2)
    scored(t, {0: 1.0, 1: 3.0})
    scored(t, {2: 2.0})  # beats level 0 (1.0): replaces it
    assert sorted(levels(t.known_tasks())) == [1, 2]
    scored(t, {3: 0.5})  # loses to the lowest (2.0): not admitted
    assert sorted(levels(t.known_tasks())) == [1, 2]
    s = t.stats()
    assert (s["plr/inserted"], s["plr/replaced"], s["plr/rejected"]) == (3, 1, 1)
    t.sample(50)  # level 0 was evicted, so it is unseen again and may be explored
    assert s["plr/buffer_size"] == 2 and t.capacity == 2


def test_score_ema_and_learner_scores():
    t = make_teacher("plr", Discrete(3), score_ema=0.5)
    scored(t, {0: 2.0})
    scored(t, {0: 4.0})
    assert t.level_stats()[0]["score"] == pytest.approx(3.0)
    assert t.stats()["plr/proxy_scores"] == 0


@pytest.mark.parametrize("proxy,expected", [("return_l1", [10.0, 6.0, 1.0]), ("max_mc", [0.0, 6.0, 2.0])])
def test_return_proxies_hand_computed(proxy, expected):
    # return_l1: |G - b|, b: 0 -> 10 -> 7 (rate 0.5); max_mc: max G so far - G
    t = make_teacher("plr", Discrete(3), proxy=proxy, proxy_baseline_rate=0.5)
    task = t.space.task(1)
    t.register_tasks([task])
    got = []
    for g in (10.0, 4.0, 8.0):
        t.update([Outcome(task_id=task.id, episode_return=g)])
        got.append(t.level_stats()[0]["score"])
    assert got == pytest.approx(expected)
    assert t.stats()["plr/proxy_scores"] == 3


def test_info_score_source_is_enforced():
    t = make_teacher("plr", Discrete(3), score_source="info")
    task = t.space.task(0)
    t.register_tasks([task])
    msg = (
        f"teacher.plr.score_source='info': outcome for task {task.id} has no info['score']; report the level "
        "score (e.g. mean |GAE|) or use score_source='auto'"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        t.update([Outcome(task_id=task.id, episode_return=1.0)])
    msg = f"teacher.plr: outcome for task {task.id} has info['score']=nan; the learner must report a finite level score"
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        t.update([Outcome(task_id=task.id, episode_return=1.0, info={"score": float("nan")})])


# ------------------------------------------------------------- determinism and state
def drive(t: PLRTeacher, rounds: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        tasks = t.sample(6)
        out += levels(tasks)
        outs = [
            Outcome(
                task_id=x.id,
                episode_return=float(rng.normal()),
                success=bool(rng.random() < 0.4),
                info={"score": float(rng.random())} if rng.random() < 0.5 else {},
            )
            for x in tasks
        ]
        t.update(outs[::-1])
    return out


def test_same_seed_same_samples_and_different_seed_differs():
    sp = Discrete(30)
    a = drive(make_teacher("plr", sp, seed=4, buffer_size=10), 30, 0)
    b = drive(make_teacher("plr", sp, seed=4, buffer_size=10), 30, 0)
    c = drive(make_teacher("plr", sp, seed=5, buffer_size=10), 30, 0)
    assert a == b and a != c


def test_state_round_trip_continues_identically():
    sp = Discrete(40)
    t = make_teacher("plr", sp, seed=2, buffer_size=12)
    drive(t, 25, 1)
    state = json.loads(json.dumps(t.state_dict()))  # must survive JSON
    u = make_teacher("plr", sp, seed=99, buffer_size=12)
    u.load_state_dict(state)
    assert u.level_stats() == t.level_stats()
    assert drive(u, 15, 7) == drive(t, 15, 7)
    assert u.stats()["plr/top_levels"] == t.stats()["plr/top_levels"]
    wrong = make_teacher("plr", sp, buffer_size=5)
    with pytest.raises(
        TeacherStateError,
        match=r"^plr state has buffer capacity 12, this teacher has 5; build it "
        r"with buffer_size=12$",
    ):
        wrong.load_state_dict(state)


def test_stats_are_top_k_and_json():
    t = make_teacher("plr", Discrete(500), stats_top_k=5)
    scored(t, {v: float(v % 17) for v in range(200)})
    s = t.stats()
    json.dumps(s)
    top = s["plr/top_levels"]
    assert len(top) == 5 and top[0]["p_replay"] >= top[-1]["p_replay"]
    assert s["plr/buffer_size"] == 200 and s["plr/seen_fraction"] == pytest.approx(0.4)
    assert t.probabilities().sum() == pytest.approx(1.0) and len(t.success_estimates()) == 200


def test_bad_config_and_space_errors():
    with pytest.raises(
        ConfigError,
        match=r"^invalid configuration for teacher\.plr:\nteacher\.plr\.temperature: "
        r"Input should be greater than 0, got 0$",
    ):
        make_teacher("plr", Discrete(4), temperature=0)
    with pytest.raises(
        ConfigError,
        match=r"^teacher\.plr\.buffer_size: must be at most the number of levels "
        r"\(4\), got 10$",
    ):
        make_teacher("plr", Discrete(4), buffer_size=10)
    with pytest.raises(
        ConfigError,
        match=r"^teacher 'plr' works on discrete spaces, got Box\(low=\[0\.0\], "
        r"high=\[1\.0\], names=\['x0'\]\)$",
    ):
        make_teacher("plr", Box([0], [1]))
