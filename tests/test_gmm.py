"""GMM machinery: the reference fit is sklearn's, the fast fit finds the same clusters,
mixtures sample what they say and survive a dict round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from openended.jsonio import from_jsonable, to_jsonable
from openended.teachers.gmm.base import FitWindows
from openended.teachers.gmm.fit import fit_fast, fit_reference
from openended.teachers.gmm.mixture import Mixture, n_parameters
from openended.teachers.gmm.sampling import component_probs, proportional_choice

CENTRES = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 5.0, 5.0], [5.0, 0.0, 5.0]])


def _clusters(seed: int, n: int = 250, k: int = 4, sd: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lab = np.arange(n) % k
    return CENTRES[:k][lab] + rng.normal(0.0, sd, (n, 3)), lab


def _sorted_means(m: np.ndarray) -> np.ndarray:
    return m[np.lexsort(np.round(m).T[::-1])]  # clusters sit on integer centres


def test_fit_reference_is_sklearn_with_the_teacher_seed() -> None:
    x, _ = _clusters(0)
    res = fit_reference(x, [2, 3, 4, 5], seed=7, criterion="aic")
    aics = [GaussianMixture(k, covariance_type="full", random_state=7).fit(x).aic(x) for k in (2, 3, 4, 5)]
    assert res["k"] == 2 + int(np.argmin(aics))
    np.testing.assert_allclose(res["scores"], aics, rtol=0, atol=0)
    direct = GaussianMixture(res["k"], covariance_type="full", random_state=7).fit(x)
    np.testing.assert_array_equal(res["means"], direct.means_)
    np.testing.assert_array_equal(res["covariances"], direct.covariances_)


def test_fit_reference_aicc_uses_teachdeeprl_parameter_count() -> None:
    # TDRL counts k * ((d^2 - d)/2 + 2d + 1) - 1 parameters with d = the task dimension.
    x, _ = _clusters(1, n=120)
    res = fit_reference(x, [2, 3], seed=0, criterion="aicc", aicc_task_dim=2)
    for k, score in zip((2, 3), res["scores"]):
        gm = GaussianMixture(k, covariance_type="full", random_state=0).fit(x)
        q = k * ((4 - 2) / 2 + 4 + 1) - 1
        assert score == pytest.approx(gm.aic(x) + 2 * q * (q + 1) / (120 - q - 1), rel=1e-12)


def test_n_parameters_matches_sklearn() -> None:
    x, _ = _clusters(2, n=60)
    for k in (1, 3, 5):
        gm = GaussianMixture(k, covariance_type="full", random_state=0).fit(x)
        assert n_parameters(k, 3) == gm._n_parameters()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_fit_matches_sklearn_on_separated_clusters(seed: int) -> None:
    x, _ = _clusters(seed)
    ks = list(range(2, 8))
    ref = fit_reference(x, ks, seed=0)
    fast = fit_fast(x, ks, seed=seed)
    assert fast["k"] == ref["k"] == 4
    np.testing.assert_allclose(_sorted_means(fast["means"]), _sorted_means(ref["means"]), atol=0.02)
    np.testing.assert_allclose(np.sort(fast["weights"]), np.sort(ref["weights"]), atol=0.01)
    assert fast["scores"].min() <= ref["scores"].min() + 1.0  # as good a likelihood, give or take


def test_fast_fit_warm_start_tries_only_neighbouring_ks() -> None:
    x, _ = _clusters(3)
    first = fit_fast(x, range(2, 11), seed=0)
    assert sorted(set(first["ks"].tolist())) == list(range(2, 11))  # cold: every k
    x2, _ = _clusters(4)
    second = fit_fast(x2, range(2, 11), warm=first, seed=1, k_window=1)
    assert sorted(set(second["ks"].tolist())) == [first["k"] - 1, first["k"], first["k"] + 1]
    assert second["k"] == 4
    np.testing.assert_allclose(_sorted_means(second["means"]), _sorted_means(CENTRES), atol=0.1)


def test_fast_fit_is_deterministic_and_finite_on_degenerate_data() -> None:
    # many exact duplicates (tasks clipped onto a corner) and a constant column
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros((150, 3)), rng.uniform(0, 1, (100, 3))])
    x[:, 2] = 0.5
    a = fit_fast(x, range(2, 8), seed=3)
    b = fit_fast(x, range(2, 8), seed=3)
    for key in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(a[key], b[key])
        assert np.all(np.isfinite(a[key]))
    mix = Mixture.from_dict(a)  # the covariances are usable (Cholesky succeeds)
    assert np.all(np.isfinite(mix.chol))


def test_mixture_dict_round_trip_through_json() -> None:
    x, _ = _clusters(5)
    mix = Mixture.from_dict(fit_fast(x, [4], seed=0))
    d = from_jsonable(json.loads(json.dumps(to_jsonable(mix.to_dict()))))
    back = Mixture.from_dict(d)
    for a, b in (
        (mix.weights, back.weights),
        (mix.means, back.means),
        (mix.covariances, back.covariances),
        (mix.chol, back.chol),
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(mix.chol @ np.swapaxes(mix.chol, 1, 2), mix.covariances, atol=1e-12)
    with pytest.raises(ValueError):
        mix.means[0, 0] = 1.0  # immutable


def test_mixture_sample_follows_probs_and_truncated_marginal() -> None:
    cov0 = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.1], [0.3, 0.1, 2.0]])
    mix = Mixture.from_params([0.9, 0.1], [[0.0, 0.0, 0.0], [10.0, -10.0, 3.0]], [cov0, 0.25 * np.eye(3)])
    rng = np.random.default_rng(0)
    comps, x = mix.sample(rng, 100_000, comp_probs=np.array([0.25, 0.75]), dims=2)
    assert x.shape == (100_000, 2)
    assert np.mean(comps == 1) == pytest.approx(0.75, abs=0.01)  # probs, not the weights
    x0 = x[comps == 0]
    np.testing.assert_allclose(x0.mean(0), [0.0, 0.0], atol=0.03)
    np.testing.assert_allclose(np.cov(x0.T), cov0[:2, :2], atol=0.03)
    np.testing.assert_allclose(x[comps == 1].mean(0), [10.0, -10.0], atol=0.02)
    # same generator state -> same draws
    c2, x2 = mix.sample(np.random.default_rng(0), 100_000, comp_probs=np.array([0.25, 0.75]), dims=2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(comps, c2)


def test_fit_windows_fire_on_multiples_of_fit_rate_whatever_the_batching() -> None:
    rows = np.arange(30, dtype=float)[:, None]
    one = FitWindows(4, 1)
    seen_one = [w[:, 0].tolist() for i in range(30) for w in one.push(rows[i : i + 1], i)]
    batched = FitWindows(4, 1)
    seen_b, n = [], 0
    for size in (3, 7, 1, 9, 10):
        seen_b += [w[:, 0].tolist() for w in batched.push(rows[n : n + size], n)]
        n += size
    expected = [list(range(e - 4, e)) for e in (4, 8, 12, 16, 20, 24, 28)]
    assert seen_one == seen_b == [[float(v) for v in w] for w in expected]


def test_proportional_choice_and_component_probs() -> None:
    rng = np.random.default_rng(0)
    picks = {proportional_choice(np.zeros(4), rng) for _ in range(200)}
    assert picks == {0, 1, 2, 3}  # all zero -> uniform
    assert {proportional_choice(np.array([0.0, 2.0, 0.0]), rng) for _ in range(50)} == {1}
    np.testing.assert_allclose(component_probs(np.array([0.0, 1.0, 3.0])), [0.0, 0.25, 0.75])
    np.testing.assert_allclose(component_probs(np.array([-1.0, 0.0])), [0.5, 0.5])


def _packed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    iu, ju = np.triu_indices(x.shape[1])
    z = np.concatenate([x[:, iu] * x[:, ju], x, np.ones((len(x), 1))], axis=1)
    return z, np.ascontiguousarray(z.T), iu.astype(np.int64), ju.astype(np.int64)


def _mixture_loglik(x: np.ndarray, w: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> float:
    from scipy.stats import multivariate_normal

    dens = sum(wk * multivariate_normal(m, c).pdf(x) for wk, m, c in zip(w, mu, cov))
    return float(np.log(dens).mean())


def test_compiled_em_step_is_the_textbook_e_and_m_step() -> None:
    from openended.teachers.gmm import em_kernels

    x, _ = _clusters(5, n=90)
    x = x - x.mean(0)
    z, zt, iu, ju = _packed(x)
    rng = np.random.default_rng(0)
    # two candidate mixtures stacked: k = 2 and k = 3
    w = np.array([0.4, 0.6, 0.2, 0.3, 0.5])
    mu = rng.normal(0, 2, (5, 3))
    cov = np.stack([np.eye(3) * s for s in (1.0, 2.0, 0.5, 1.5, 3.0)])
    starts = np.array([0, 2, 5], dtype=np.int64)
    # max_iter=1: the log-likelihood of the given parameters, parameters untouched
    w1, mu1, cov1, ll, n_iter, running = em_kernels.em(z, zt, iu, ju, w, mu, cov, starts, 1, 0.0, 1e-6)
    assert n_iter == 1 and running == 2
    np.testing.assert_array_equal(mu1, mu)
    for g, (a, b) in enumerate(((0, 2), (2, 5))):
        assert ll[g] == pytest.approx(_mixture_loglik(x, w[a:b], mu[a:b], cov[a:b]), rel=1e-10)
    # max_iter=2: one M-step from the responsibilities of those parameters (sklearn's formulas)
    w2, mu2, cov2, ll2, _, _ = em_kernels.em(z, zt, iu, ju, w, mu, cov, starts, 2, 0.0, 1e-6)
    from scipy.stats import multivariate_normal

    for a, b in ((0, 2), (2, 5)):
        dens = np.stack([wk * multivariate_normal(m, c).pdf(x) for wk, m, c in zip(w[a:b], mu[a:b], cov[a:b])])
        resp = dens / dens.sum(0)
        nk = resp.sum(1) + 10 * np.finfo(np.float64).eps
        means = resp @ x / nk[:, None]
        np.testing.assert_allclose(mu2[a:b], means, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(w2[a:b], nk / len(x), rtol=1e-9)
        for j in range(b - a):
            d = x - means[j]
            expect = (resp[j][:, None] * d).T @ d / nk[j] + 1e-6 * np.eye(3)
            np.testing.assert_allclose(cov2[a + j], expect, rtol=1e-8, atol=1e-12)
        assert ll2[(a > 0) * 1] == pytest.approx(_mixture_loglik(x, w2[a:b], mu2[a:b], cov2[a:b]), rel=1e-10)


def test_compiled_exp_is_within_an_ulp_of_libm() -> None:
    from openended.teachers.gmm import em_kernels

    t = np.concatenate([np.linspace(-708.0, 0.0, 400_001), -np.logspace(-18, 2, 2001), [0.0, -1e-300]])
    shift = np.random.default_rng(0).normal(0.0, 50.0, t.size)
    row = t + shift  # the kernel exponentiates row - shift
    em_kernels._exp_shifted(row, shift, np.empty(t.size, dtype=np.int64))
    expect = np.exp((t + shift) - shift)
    assert np.all(np.abs(row - expect) <= np.spacing(expect))  # at most one unit in the last place
    assert row[-2] == 1.0  # the log-sum-exp's largest term is exactly 1
    below = np.array([-709.0, -1e4, -np.inf])
    em_kernels._exp_shifted(below, np.zeros(3), np.empty(3, dtype=np.int64))
    assert np.all((below >= 0.0) & (below < 1e-300))  # underflow: a tiny positive, never NaN
    nan = np.array([np.nan, 0.0])
    em_kernels._exp_shifted(nan, np.array([0.0, np.nan]), np.empty(2, dtype=np.int64))
    assert np.isnan(nan).all()  # NaN stays NaN, as with libm (a broken candidate stays visible)


def test_compiled_kmeans_init_is_lloyd_from_the_chain() -> None:
    from sklearn.cluster import KMeans

    from openended.teachers.gmm import em_kernels

    x, _ = _clusters(6)
    z, _, iu, ju = _packed(x)
    chain = em_kernels.kmeanspp_chain(x, 3, np.random.default_rng(0).random(5))
    assert all(any(np.array_equal(c, row) for row in x) for c in chain)  # centres are data points
    np.testing.assert_array_equal(chain[0], x[3])
    ks = np.array([2, 4, 5], dtype=np.int64)
    w, mu, cov = em_kernels.kmeans_init(x, z, iu, ju, chain, ks, 300, 1e-6)
    for _g, (k, first) in enumerate(zip(ks, (0, 2, 6))):
        km = KMeans(int(k), init=chain[:k], n_init=1, max_iter=300, tol=0.0, algorithm="lloyd").fit(x)
        np.testing.assert_allclose(mu[first : first + k], km.cluster_centers_, atol=1e-9)
        np.testing.assert_allclose(w[first : first + k] * len(x), np.bincount(km.labels_, minlength=k), atol=1e-6)


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_one_call_cold_fit_is_the_composition_of_its_steps_bit_for_bit(dim: int) -> None:
    """`em_kernels.fit_cold` packs, seeds, initialises, normalises and runs EM in one call;
    each step must give exactly what the separate kernels and numpy give."""
    from openended.teachers.gmm import em_kernels

    rng = np.random.default_rng(dim)
    x = rng.standard_normal((120, dim)) * rng.uniform(0.1, 3.0, dim)
    x = x - x.mean(0)
    ks = np.arange(1, 12, dtype=np.int64)  # k = 9..11: numpy's pairwise order for the weight sums
    u = rng.random(int(ks.max()))
    got = em_kernels.fit_cold(x, 7, u, ks, 10, 60, 1e-3, 1e-6)
    z, zt, iu, ju = _packed(x)
    chain = em_kernels.kmeanspp_chain(x, 7, u)
    w, mu, cov = em_kernels.kmeans_init(x, z, iu, ju, chain, ks, 10, 1e-6)
    first = np.r_[0, np.cumsum(ks)[:-1]]
    w = w / np.add.reduceat(w, first)[np.repeat(np.arange(ks.size), ks)]
    starts = np.r_[0, np.cumsum(ks)].astype(np.int64)
    expect = em_kernels.em(z, zt, iu, ju, w, mu, cov, starts, 60, 1e-3, 1e-6)
    for a, b in zip(got, expect):
        np.testing.assert_array_equal(a, b)


def test_compiled_pairwise_sum_follows_numpys_order() -> None:
    from openended.teachers.gmm import em_kernels

    a = np.random.default_rng(0).random(700) * np.logspace(-8, 8, 700)
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 300, 698]:
        for lo in (0, 1):
            got = a[lo] + em_kernels._pairwise_sum(a, lo + 1, n)  # what np.add.reduceat does
            assert got == np.add.reduceat(a[lo : lo + n + 1], [0])[0], (n, lo)


def test_compiled_em_survives_covariances_that_are_not_positive_definite() -> None:
    from openended.teachers.gmm import em_kernels

    x, _ = _clusters(7, n=40)
    z, zt, iu, ju = _packed(x - x.mean(0))
    cov = np.stack([np.diag([1.0, -0.5, 1.0]), np.full((3, 3), np.nan)])  # indefinite; not finite
    w, mu, cov, ll, _, _ = em_kernels.em(
        z, zt, iu, ju, np.array([0.5, 0.5]), np.zeros((2, 3)), cov, np.array([0, 2], dtype=np.int64), 5, 1e-3, 1e-6
    )
    assert np.isfinite(ll).all() and np.isfinite(mu).all() and np.isfinite(cov).all()


def test_kernels_are_cached_on_disk_and_warm_up_loads_them_in_a_fresh_process() -> None:
    """numba keys its cache by the kernel module's path: after the move to gmm/em_kernels.py
    the kernels must still be cache-enabled, and a new process must load, not compile, them."""
    import subprocess
    import sys

    from numba.core.caching import NullCache

    from openended.teachers.gmm import em_kernels

    kernels = [em_kernels.em, em_kernels.kmeans_init, em_kernels.kmeanspp_chain]
    assert all(not isinstance(k._cache, NullCache) for k in kernels)
    em_kernels.warm_up()  # compiles (first time on this machine) and writes the cache
    code = (
        "from openended.teachers.gmm import em_kernels as k; k.warm_up(); "
        "print(sum(sum(f.stats.cache_hits.values()) for f in (k.em, k.kmeans_init, k.kmeanspp_chain)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert int(out.stdout.strip().splitlines()[-1]) >= 3


def test_kernels_compile_uncached_where_numba_has_no_cache_locator() -> None:
    """A function numba cannot cache (no source file: no locator) still compiles, once per process."""
    from numba.core.caching import NullCache

    from openended.teachers.gmm.em_kernels import jit

    ns: dict = {}
    exec("def add_one(x):\n    return x + 1\n", ns)  # source "<string>": numba has no cache locator for it
    fn = jit(ns["add_one"])
    assert fn(1) == 2 and isinstance(fn._cache, NullCache)
