"""SPDL: each update stays in the KL trust region, follows high values, and moves toward the target once alpha > 0."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Outcome
from openended.teachers import make_teacher
from openended.teachers.gaussian import kl_grads, logpdf, logpdf_grads
from openended.teachers.spdl import gaussian_kl

SPACE = Box([0.0, 0.0], [10.0, 10.0])


def _run(t, rounds, value, batch=50):
    steps = []
    for _ in range(rounds):
        mu, cov, it = t.mu.copy(), t.cov, t.iteration
        tasks = t.sample(batch)
        t.update([Outcome(x.id, value(x.array)) for x in tasks])
        if t.iteration > it:
            steps.append(gaussian_kl(mu, cov, t.mu, t.cov))
    return steps


def test_density_and_analytic_gradients_match_scipy_and_finite_differences():
    from scipy.optimize import check_grad
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    d = 3
    tril = np.tril_indices(d)

    def chol_of(v):
        m = np.zeros((d, d))
        m[tril] = v
        return m

    x, w = rng.normal(size=(7, d)), rng.random(7)
    mu = rng.normal(size=d)
    chol = np.tril(rng.normal(size=(d, d)), -1) + np.diag(rng.random(d) + 0.5)
    assert np.allclose(logpdf(x, mu, chol), multivariate_normal(mu, chol @ chol.T).logpdf(x))
    theta = np.concatenate([mu, chol[tril]])
    other_mu, other_chol = rng.normal(size=d), np.diag(rng.random(d) + 0.5)

    def f_lp(th):
        return float(w @ logpdf(x, th[:d], chol_of(th[d:])))

    def g_lp(th):
        _, g_mu, g_chol = logpdf_grads(x, th[:d], chol_of(th[d:]), w)
        return np.concatenate([g_mu, g_chol[tril]])

    assert check_grad(f_lp, g_lp, theta) < 1e-4
    for first in (True, False):  # gradients in the first and in the second distribution

        def f_kl(th, first=first):
            a, b = (th[:d], chol_of(th[d:])), (other_mu, other_chol)
            return kl_grads(*(a + b if first else b + a))[0]

        def g_kl(th, first=first):
            a, b = (th[:d], chol_of(th[d:])), (other_mu, other_chol)
            _, m0, l0, m1, l1 = kl_grads(*(a + b if first else b + a))
            return np.concatenate([m0, l0[tril]] if first else [m1, l1[tril]])

        assert check_grad(f_kl, g_kl, theta) < 1e-4


def test_updates_respect_the_trust_region_and_follow_high_values():
    t = make_teacher(
        "spdl", SPACE, seed=0, initial_mean="centre", update_offset=0, update_frequency=100, alpha_offset=1000
    )
    steps = _run(t, 20, lambda x: float(x[0]))  # value grows with the first parameter; alpha stays 0
    assert len(steps) == 10 and max(steps) <= 0.1 + 1e-4 and max(steps) > 0.05  # the bound is used, never broken
    assert t.mu[0] > 0.7 and abs(t.mu[1] - 0.5) < 0.15  # the mean moved along the rewarded axis only
    assert t.stats()["spdl_alpha"] == 0.0


def test_alpha_pulls_toward_the_target_when_the_student_performs():
    kw = {"seed": 1, "initial_mean": "low", "initial_std": 0.05, "update_offset": 0, "update_frequency": 100}
    t = make_teacher("spdl", SPACE, alpha_offset=0, zeta=5.0, **kw)
    kl0 = t.stats()["spdl_kl_to_target"]
    _run(t, 40, lambda x: 1.0)  # flat positive values: only the KL-to-target term matters
    frozen = make_teacher("spdl", SPACE, alpha_offset=1000, zeta=5.0, **kw)
    _run(frozen, 40, lambda x: 1.0)
    pulled = t.stats()["spdl_kl_to_target"]
    assert t.stats()["spdl_alpha"] > 0 and frozen.stats()["spdl_alpha"] == 0
    assert pulled < 0.8 * kl0 and pulled < 0.8 * frozen.stats()["spdl_kl_to_target"]
    assert np.all(t.mu > frozen.mu)  # from the low corner toward the centre


def test_offset_and_step_counting():
    t = make_teacher("spdl", SPACE, update_unit="steps", update_offset=1000, update_frequency=500)
    tasks = t.sample(10)
    t.update([Outcome(x.id, 1.0, length=140) for x in tasks])  # 1,400 steps: not yet 1,500
    assert t.iteration == 0
    t.update([Outcome(x.id, 1.0, length=100) for x in t.sample(1)])
    assert t.iteration == 1
    assert make_teacher("spdl", SPACE, preset="teachmyagent").config.update_frequency == 50_000


def test_samples_stay_in_the_box_state_round_trip_and_errors():
    a = make_teacher("spdl", SPACE, seed=2, update_offset=0, update_frequency=60)
    _run(a, 5, lambda x: float(x.sum()), batch=40)
    assert all(SPACE.contains(x) for x in a.sample(500))
    b = make_teacher("spdl", SPACE, seed=3, update_offset=0, update_frequency=60)
    b.load_state_dict(a.state_dict())
    _run(a, 4, lambda x: float(x.sum()), batch=40)
    _run(b, 4, lambda x: float(x.sum()), batch=40)
    assert np.array_equal(a.mu, b.mu) and a.sample(5) == b.sample(5)
    with pytest.raises(ConfigError, match="initial_mean: 1 values"):
        make_teacher("spdl", SPACE, initial_mean=[1.0])
    with pytest.raises(ConfigError, match="teacher.spdl.max_kl"):
        make_teacher("spdl", SPACE, max_kl=0)
