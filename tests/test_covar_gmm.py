"""Covar-GMM: time stamps and LP as teachDeepRL, determinism, exact state round trips,
config errors, presets, toy-env smoke parity."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from support import toy_mastered

from openended.errors import ConfigError
from openended.tasks import Box, Outcome, Task
from openended.teachers import make_teacher
from openended.teachers.gmm.covar_gmm import CovarGMMTeacher

SPACE = Box([0.0, 0.0], [1.0, 1.0])
FAST = dict(fit_rate=20, refit_executor="thread")
REF = dict(mode="reference", fit_rate=20, k_max=6, refit_executor="inline")


def _ret(t: Task) -> float:
    x = np.asarray(t.params)
    return float(np.cos(5 * x[0]) * x[1])


def _step(t: Any, n: int) -> list[Task]:
    tasks = t.sample(n)
    t.update([Outcome(task_id=x.id, episode_return=_ret(x)) for x in tasks])
    return tasks


def _params(tasks: list[Task]) -> list[tuple]:
    return [x.params for x in tasks]


def test_rows_are_task_time_return_with_teachdeeprl_time_stamps() -> None:
    t = make_teacher("covar_gmm", SPACE, seed=0, fit_rate=7, k_max=4, refit_executor="inline")
    tasks = t.sample(10)
    t.update([Outcome(task_id=x.id, episode_return=float(i)) for i, x in enumerate(tasks)])
    rows = t._window.rows  # the last fit_rate rows
    times = np.arange(0, 1, 1 / 7)
    np.testing.assert_array_equal(rows[:, 2], times[[3, 4, 5, 6, 0, 1, 2]])
    np.testing.assert_array_equal(rows[:, 3], np.arange(3.0, 10.0))
    np.testing.assert_array_equal(rows[:, :2], np.array(_params(tasks[3:])))
    assert t.stats()["fits"] == 1  # fitted after episode 7


def _lp_teacher(mode: str, **kw: Any) -> CovarGMMTeacher:
    t = make_teacher(
        "covar_gmm", SPACE, seed=2, mode=mode, fit_rate=20, k_max=4, random_ratio=0.0, refit_executor="inline", **kw
    )
    cov = np.tile(np.diag([1e-4, 1e-4, 0.01, 0.04]), (3, 1, 1))
    cov[0, 2, 3] = cov[0, 3, 2] = -0.015  # return falls with time: LP 0
    cov[1, 2, 3] = cov[1, 3, 2] = 0.004  # slow rise over the whole batch
    cov[2, 2, 3] = cov[2, 3, 2] = 0.003
    means = np.array([[0.2, 0.2, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0.8, 0.8, 0.5, 0.5]])
    t._install({"weights": np.full(3, 1 / 3), "means": means, "covariances": cov})
    t._n_episodes = 20
    return t


@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_components_are_picked_by_positive_time_return_covariance(mode: str) -> None:
    t = _lp_teacher(mode)
    np.testing.assert_allclose(t.stats()["component_lp"], [0.0, 0.004, 0.003])
    x = np.array(_params(t.sample(2000)))
    near = np.argmin(((x[:, None, :] - np.array([0.2, 0.5, 0.8])[None, :, None]) ** 2).sum(-1), 1)
    frac = np.bincount(near, minlength=3) / len(x)
    np.testing.assert_allclose(frac, [0.0, 4 / 7, 3 / 7], atol=0.04)
    assert all(SPACE.contains(task) for task in t.sample(200))


def test_absolute_lp_and_improved_variant() -> None:
    np.testing.assert_allclose(_lp_teacher("fast", absolute_lp=True).stats()["component_lp"], [0.015, 0.004, 0.003])
    # improved: the same LP, components drawn in proportion to its square root
    st = _lp_teacher("fast", variant="improved").stats()
    np.testing.assert_allclose(st["component_lp"], [0.0, 0.004, 0.003])
    w = np.sqrt([0.0, 0.004, 0.003])
    np.testing.assert_allclose(st["component_probs"], w / w.sum())
    for mode in ("fast", "reference"):
        x = np.array(_params(_lp_teacher(mode, variant="improved").sample(2000)))
        frac = np.mean(np.abs(x[:, 0] - 0.8) < np.abs(x[:, 0] - 0.5))
        assert frac == pytest.approx(w[2] / w.sum(), abs=0.04)


@pytest.mark.parametrize("cfg", [FAST, REF], ids=["fast", "reference"])
def test_same_seed_and_outcomes_give_the_same_tasks(cfg: dict) -> None:
    runs = []
    for _ in range(2):
        with make_teacher("covar_gmm", SPACE, seed=4, **cfg) as t:
            runs.append([p for _ in range(8) for p in _params(_step(t, 7))])
            assert t.stats()["fits"] >= 2
    assert runs[0] == runs[1]


@pytest.mark.parametrize("cfg", [FAST, dict(REF, refit_executor="thread")], ids=["fast", "reference"])
def test_state_round_trip_with_a_pending_fit_continues_exactly(cfg: dict) -> None:
    a = make_teacher("covar_gmm", SPACE, seed=6, **cfg)
    for _ in range(6):
        _step(a, 7)  # the fit due at episode 40 is in flight or staged
    assert a.refitter.n_submitted > a.refitter.n_installed
    state = json.loads(json.dumps(a.state_dict()))
    b = make_teacher("covar_gmm", SPACE, seed=77, **cfg)
    b.load_state_dict(state)
    for _ in range(5):
        assert _params(_step(a, 9)) == _params(_step(b, 9))
    assert json.dumps(a.stats()["component_lp"]) == json.dumps(b.stats()["component_lp"])
    a.close()
    b.close()


def test_bad_configs_name_the_field() -> None:
    def msg(path: str, text: str) -> str:
        return f"^{re.escape(f'invalid configuration for teacher.covar_gmm:{chr(10)}{path}: {text}')}$"

    with pytest.raises(
        ConfigError,
        match=msg(
            "teacher.covar_gmm",
            "Value error, k_max (2) must be greater than k_min (2): the ks tried are "
            "np.arange(k_min, k_max), got {'k_max': 2}",
        ),
    ):
        make_teacher("covar_gmm", SPACE, k_max=2)
    with pytest.raises(
        ConfigError, match=msg("teacher.covar_gmm.variant", "Input should be 'original' or 'improved', got 'better'")
    ):
        make_teacher("covar_gmm", SPACE, variant="better")
    with pytest.raises(
        ConfigError, match=msg("teacher.covar_gmm.fit_rate", "Input should be greater than or equal to 2, got 1")
    ):
        make_teacher("covar_gmm", SPACE, fit_rate=1)


def test_presets_are_the_published_settings() -> None:
    c = make_teacher("covar_gmm", SPACE, preset="teachdeeprl").config
    assert (c.mode, c.fit_rate, c.random_ratio, c.k_min, c.k_max, c.return_bounds) == (
        "reference",
        250,
        0.2,
        2,
        11,
        (-150.0, 350.0),
    )
    c = make_teacher("covar_gmm", SPACE, preset="teachmyagent").config
    assert (c.mode, c.fit_rate, c.random_ratio, c.k_max, c.return_bounds, c.refit_executor) == (
        "reference",
        150,
        0.1,
        15,
        None,
        "inline",
    )
    assert make_teacher("covar_gmm", SPACE, preset="teachdeeprl_toy").config.return_bounds is None
    assert isinstance(make_teacher("igmm", SPACE), CovarGMMTeacher)


def test_toy_env_fast_covar_gmm_beats_random() -> None:
    random = toy_mastered(make_teacher("random", SPACE, seed=0), 3000)
    with make_teacher("covar_gmm", SPACE, seed=0, refit_executor="inline") as t:
        fast = toy_mastered(t, 3000)
        assert t.stats()["fits"] == 12
    assert random == 0 and fast >= 2
