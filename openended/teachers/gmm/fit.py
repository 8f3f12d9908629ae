"""Fitting a Gaussian mixture to a fit window: the reference sweep and the fast batched EM.

Contents:
    fit_reference -- REFERENCE: the published fit: one sklearn ``GaussianMixture`` per
                     candidate k (``np.arange(k_min, k_max)``), keep the lowest AIC/BIC/AICc.
    fit_fast      -- SPEEDUP: our own EM, batched across candidate ks (stacked components;
                     its loops compiled in `openended.teachers.gmm.em_kernels`), sklearn's
                     init and stopping rule; optionally warm-started and restricted to ks
                     next to the previous best.
    prepare_reference -- imports what `fit_reference` needs before the first fit.

Why a fast fitter: the reference sweep fits 9 sklearn models one after the other every
``fit_rate`` episodes (~0.1 s single-threaded, seconds under thread contention), and for
250 points in <= 13 dimensions almost all of that is Python and per-call overhead, paid
once per k and per EM iteration. `fit_fast` runs the same computation for every k at
once: all components of all candidates are stacked (``C = sum k``), each EM iteration is
two GEMMs against packed outer products plus compiled per-component loops (Cholesky,
triangular inverse, log-sum-exp, moments -> covariances), and a candidate that has
converged drops out of the stack.

Both fit functions are module-level and take/return plain arrays and dicts, so they can
run in a thread or a spawned process (`openended.teachers.refit.Refitter`) and their
results can be stored in a ``state_dict``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from openended.teachers.gmm import em_kernels
from openended.teachers.gmm.mixture import Mixture, n_parameters

__all__ = ["fit_reference", "fit_fast", "prepare_reference", "Criterion"]

Criterion = Literal["aic", "bic", "aicc"]
_LLOYD_ITERS = 10  # Lloyd iterations of the k-means init (sklearn runs KMeans to convergence)


# ------------------------------------------------------------------------ criteria
def _criterion(crit: str, mean_ll: np.ndarray, ks: np.ndarray, n: int, dim: int) -> np.ndarray:
    """AIC / BIC / AICc from the mean log-likelihood (fast fitter).

    AICc uses the correct parameter count for ``dim`` and is +inf where ``n - p - 1 <= 0``.
    """
    p = np.array([n_parameters(int(k), dim) for k in ks], dtype=np.float64)
    aic = -2.0 * n * mean_ll + 2.0 * p
    if crit == "aic":
        return aic
    if crit == "bic":
        return -2.0 * n * mean_ll + p * math.log(n)
    denom = n - p - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, aic + 2.0 * p * (p + 1.0) / np.where(denom > 0, denom, 1.0), np.inf)


def _tdrl_aicc_params(k: int, task_dim: int) -> float:
    # REFERENCE: teachDeepRL's get_nb_gmm_params counts parameters with d = len(mins),
    # the *task* dimension, although the mixture lives in d+1 dims (task + ALP).
    return k * ((task_dim * task_dim - task_dim) / 2 + 2 * task_dim + 1) - 1


# ------------------------------------------------------------------------ reference fit
def prepare_reference() -> None:
    """Import scikit-learn's mixture (and with it its OpenMP runtime) now.

    Why: the `Refitter` pins the BLAS/OpenMP pools it finds when a fit starts; a first
    fit that imported sklearn itself would run its k-means on every core, and on 2 shared
    cores those threads' spinning costs more than they compute (see
    `openended.teachers.refit.run_single_threaded`). The fast mode's `em_kernels.warm_up`
    plays the same role for the compiled fitter.
    """
    import sklearn.mixture  # noqa: F401 - the import is the point: sklearn loads before the first fit


def fit_reference(
    data: np.ndarray,
    ks: Sequence[int],
    seed: int | None,
    criterion: Criterion = "aic",
    nb_em_init: int = 1,
    aicc_task_dim: int | None = None,
) -> dict[str, Any]:
    """REFERENCE: teachDeepRL/TeachMyAgent's fit, exactly.

    Positional arguments work, so a `Refitter` can ship the call to a worker.

    One ``GaussianMixture(n_components=k, covariance_type='full', random_state=seed,
    warm_start=False, n_init=nb_em_init)`` per k (sklearn defaults otherwise: k-means
    init, tol 1e-3, reg_covar 1e-6, max_iter 100), the lowest criterion wins (first on
    ties, as ``np.argmin``). ``aicc_task_dim`` is the dimension teachDeepRL uses in its
    AICc penalty (the task dimension, see `_tdrl_aicc_params`).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = np.asarray(data, dtype=np.float64)
    n = x.shape[0]
    models, scores, not_converged = [], [], 0
    for k in ks:
        gm = GaussianMixture(
            n_components=int(k), covariance_type="full", random_state=seed, warm_start=False, n_init=int(nb_em_init)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # counted below instead
            gm.fit(x)
        not_converged += int(not gm.converged_)
        if criterion == "bic":
            s = gm.bic(x)
        elif criterion == "aic":
            s = gm.aic(x)
        else:
            q = _tdrl_aicc_params(int(k), aicc_task_dim if aicc_task_dim is not None else x.shape[1])
            with np.errstate(divide="ignore"):  # TDRL divides by zero when n == q + 1
                s = gm.aic(x) + np.float64(2 * q * (q + 1)) / np.float64(n - q - 1)
        models.append(gm)
        scores.append(float(s))
    best = int(np.argmin(scores))
    gm = models[best]
    return {
        "weights": np.array(gm.weights_),
        "means": np.array(gm.means_),
        "covariances": np.array(gm.covariances_),
        "k": int(gm.n_components),
        "ks": np.asarray(list(ks), dtype=np.int64),
        "scores": np.asarray(scores),
        "n_iter": int(sum(m.n_iter_ for m in models)),
        "not_converged": not_converged,
        "cold": True,
    }


# ----------------------------------------------------------------------------- fast fit
def _candidate_ks(ks: Sequence[int], warm_k: int | None, window: int | None) -> list[int]:
    ks = [int(k) for k in ks]
    if warm_k is None or window is None:
        return ks
    near = [k for k in ks if abs(k - warm_k) <= window]
    return near or ks


def fit_fast(
    data: np.ndarray,
    ks: Sequence[int],
    criterion: Criterion = "aic",
    warm: dict[str, Any] | None = None,
    seed: int | Sequence[int] = 0,
    k_window: int | None = None,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    init: Literal["cold", "warm", "both"] = "cold",
) -> dict[str, Any]:
    """SPEEDUP: the candidate mixtures of a refit as one batched EM (loops in `em_kernels`).

    Candidates: every k in ``ks`` (default, ``k_window=None``), or, once a previous
    mixture is given as ``warm``, only ``k_prev - k_window .. k_prev + k_window``.
    Each candidate starts
    * ``cold`` (default): from one k-means++ chain (its first k centres) and at most
      ``_LLOYD_ITERS`` Lloyd iterations, hard responsibilities -> M-step: sklearn's
      k-means init (which runs KMeans to convergence);
    * ``warm``: from the previous parameters (``k < k_prev`` keeps the heaviest
      components; ``k > k_prev`` adds components on the worst-explained points, with the
      average covariance);
    * ``both``: both starts compete.
    Then sklearn's EM: M-step with +10 eps on nk and ``reg_covar`` on the diagonals; a
    candidate stops when its mean log-likelihood moves by less than ``tol`` (and is left
    out of later iterations), at most ``max_iter`` iterations; lowest criterion wins.

    Why the defaults (cold, every k) and not warm + a k window: on ALP-GMM's toy-env
    runs (20k episodes, 10 seeds each, % cells mastered) cold/every-k reached 34.9 (the
    published reference: 34.7), while k_prev +- 2 reached 33.1, warm+cold with k_prev +- 1
    32.5 and warm-only with k_prev +- 1 30.3 (3 seeds): warm starts drift into worse local
    optima (mean AIC +9 vs sklearn on the same windows) and a k window cannot follow the
    jumps of the best k between non-overlapping windows. The batched sweep over every k
    costs less than sklearn spends on a single k.
    """
    raw = np.asarray(data, dtype=np.float64)
    n, D = raw.shape
    centre = raw.mean(0)
    x = raw - centre  # EM is translation-equivariant; centring keeps moment sums exact
    rng = np.random.default_rng(seed)
    needs_prev = init != "cold" or k_window is not None
    prev = Mixture.from_dict(warm) if warm is not None and needs_prev else None
    if prev is not None and prev.dim != D:
        prev = None
    cand = _candidate_ks(ks, prev.k if prev is not None else None, k_window)
    cand = [k for k in cand if k <= n] or [min(int(k) for k in ks)]
    groups: list[tuple[int, str]] = []
    if prev is None or init in ("cold", "both"):
        groups += [(k, "cold") for k in cand]
    if prev is not None and init in ("warm", "both"):
        groups += [(k, "warm") for k in cand]
    K = max(k for k, _ in groups)
    gk = np.asarray([k for k, _ in groups], dtype=np.int64)
    first = np.r_[0, np.cumsum(gk)[:-1]]
    cold = np.asarray([kind == "cold" for _, kind in groups])
    if cold.all():  # the default: the whole fit in one compiled call (`em_kernels.fit_cold`)
        chain_first = int(rng.integers(n))  # the k-means++ chain's random draws, in their order
        w, mu, cov, ll, n_iter, running = em_kernels.fit_cold(
            x, chain_first, rng.random(K), gk, _LLOYD_ITERS, int(max_iter), float(tol), float(reg_covar)
        )
    else:
        assert prev is not None  # warm candidates exist only with a previous mixture
        w, mu, cov, ll, n_iter, running = _em_with_warm_starts(
            x, raw, centre, prev, gk, cold, rng, int(max_iter), float(tol), float(reg_covar)
        )
    scores = _criterion(criterion, ll, gk, n, D)
    best = int(np.argmin(scores))
    k, f = int(gk[best]), int(first[best])
    wb = w[f : f + k] / w[f : f + k].sum()
    return {
        "weights": wb,
        "means": mu[f : f + k] + centre,
        "covariances": cov[f : f + k].copy(),
        "k": k,
        "ks": gk.astype(np.int64),
        "scores": np.asarray(scores, dtype=np.float64),
        "n_iter": int(n_iter),
        "not_converged": running,
        "cold": bool(cold[best]),
    }


def _em_with_warm_starts(
    x: np.ndarray,
    raw: np.ndarray,
    centre: np.ndarray,
    prev: Mixture,
    gk: np.ndarray,
    cold: np.ndarray,
    rng: np.random.Generator,
    max_iter: int,
    tol: float,
    reg_covar: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """`fit_fast`'s EM when some candidates (``~cold``) start from the previous mixture ``prev``.

    ``x = raw - centre``: the centred points.
    """
    n, D = x.shape
    group = np.repeat(np.arange(gk.size), gk)  # flat component -> candidate
    first = np.r_[0, np.cumsum(gk)[:-1]]
    C = int(gk.sum())
    w = np.ones(C)
    mu = np.zeros((C, D))
    cov = np.broadcast_to(np.eye(D), (C, D, D)).copy()
    z, zt, iu, ju = em_kernels.pack(x)
    if cold.any():
        chain_first = int(rng.integers(n))  # the k-means++ chain's random draws, in their order
        chain = em_kernels.kmeanspp_chain(x, chain_first, rng.random(int(gk.max())))
        sel = cold[group]
        w[sel], mu[sel], cov[sel] = em_kernels.kmeans_init(x, z, iu, ju, chain, gk[cold], _LLOYD_ITERS, reg_covar)
    order = np.argsort(-prev.weights, kind="stable")  # heaviest first
    worst = np.argsort(prev.log_prob(raw), kind="stable")  # worst explained first
    avg_cov = np.average(prev.covariances, axis=0, weights=prev.weights)
    for g in np.flatnonzero(~cold).tolist():
        k, f = int(gk[g]), int(first[g])
        keep = np.sort(order[: min(k, prev.k)])
        m = keep.size
        w[f : f + m] = prev.weights[keep]
        mu[f : f + m] = prev.means[keep] - centre
        cov[f : f + m] = prev.covariances[keep]
        for j in range(k - m):
            w[f + m + j] = 1.0 / k
            mu[f + m + j] = x[worst[j % n]]
            cov[f + m + j] = avg_cov
    starts = em_kernels.normalise_weights(w, gk)  # each candidate's weights sum to 1
    return em_kernels.em(z, zt, iu, ju, w, mu, cov, starts, max_iter, tol, reg_covar)
