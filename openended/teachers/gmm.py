"""Gaussian-mixture machinery shared by the ALP-GMM and Covar-GMM teachers.

Contents:
    Mixture          -- immutable fitted mixture with precomputed Cholesky factors and
                        vectorised batched sampling; round-trips through a dict of arrays.
    fit_reference    -- the published fit: one sklearn ``GaussianMixture`` per candidate k
                        (``np.arange(k_min, k_max)``), keep the lowest AIC/BIC/AICc.
    fit_fast         -- our own EM, batched across candidate ks (stacked components; its
                        loops compiled in `openended.teachers.gmm_em`), sklearn's init and
                        stopping rule; optionally warm-started and restricted to ks next
                        to the previous best.
    FitWindows       -- keeps the last ``fit_rate`` rows and says when a refit is due.
    sample_box_mixture -- the fast teachers' vectorised sampler (uniform / mixture, clipped).
    Prefetch         -- tasks drawn ahead in blocks for small ``sample`` calls.
    GMMTeacherConfig -- the config fields both GMM teachers share (schedule, ks, fitter).
    n_parameters, proportional_choice, component_probs, tasks_with_origin -- small helpers.

Why a fast fitter: the reference sweep fits 9 sklearn models one after the other every
``fit_rate`` episodes (~0.1 s single-threaded, seconds under thread contention), and for
250 points in <= 13 dimensions almost all of that is Python and per-call overhead, paid
once per k and per EM iteration. `fit_fast` runs the same computation for every k at
once: all components of all candidates are stacked (``C = sum k``), each EM iteration is
two GEMMs against packed outer products plus compiled per-component loops (Cholesky,
triangular inverse, log-sum-exp, moments -> covariances), and a candidate that has
converged drops out of the stack.

All fit functions are module-level and take/return plain arrays and dicts, so they can
run in a thread or a spawned process (`openended.teachers.refit.Refitter`) and their
results can be stored in a ``state_dict``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from openended.tasks import Box, Task
from openended.teachers import gmm_em

__all__ = [
    "Mixture",
    "fit_reference",
    "fit_fast",
    "FitWindows",
    "n_parameters",
    "proportional_choice",
    "sample_box_mixture",
    "tasks_with_origin",
    "component_probs",
    "Prefetch",
    "GMMTeacherConfig",
    "Criterion",
]

Criterion = Literal["aic", "bic", "aicc"]
_LOG_2PI = math.log(2.0 * math.pi)
_LLOYD_ITERS = 10  # Lloyd iterations of the k-means init (sklearn runs KMeans to convergence)


# ------------------------------------------------------------------------------- config
class GMMTeacherConfig(BaseModel):
    """Config fields shared by ALP-GMM and Covar-GMM (mixed into their configs)."""

    mode: Literal["reference", "fast"] = Field(
        "fast", description="reference: teachDeepRL's computation exactly; fast: same algorithm, faster machinery."
    )
    fit_rate: int = Field(
        250, ge=2, description="Episodes between refits; also the bootstrap length and the fit window."
    )
    random_ratio: float = Field(0.2, ge=0.0, le=1.0, description="Probability of a uniform task after bootstrap.")
    k_min: int = Field(2, ge=1, description="Smallest number of Gaussians tried.")
    k_max: int = Field(11, ge=2, description="Exclusive upper bound of the ks tried (np.arange(k_min, k_max)).")
    criterion: Literal["aic", "bic", "aicc"] = Field("aic", description="Model-selection criterion over the ks.")
    return_bounds: tuple[float, float] | None = Field(
        None, description="None: raw returns; (lo, hi): np.interp returns to [0, 1] first (TDRL: (-150, 350))."
    )
    k_window: int | None = Field(
        None, ge=0, description="Fast mode: None tries every k at every fit; an int only k_prev +- k_window."
    )
    fit_init: Literal["cold", "warm", "both"] = Field(
        "cold", description="Fast mode: start EM from k-means++ (cold), the previous mixture (warm) or both."
    )
    em_max_iter: int = Field(100, ge=1, description="Fast mode: EM iteration cap per fit.")
    em_tol: float = Field(1e-3, gt=0.0, description="Fast mode: stop when mean log-likelihood moves less.")
    reg_covar: float = Field(1e-6, ge=0.0, description="Fast mode: added to covariance diagonals (sklearn's).")
    prefetch: int = Field(
        64, ge=0, description="Fast mode: tasks drawn ahead per vectorised call for small sample() calls (0: off)."
    )

    @model_validator(mode="after")
    def _check_ks(self) -> GMMTeacherConfig:
        if self.k_max <= self.k_min:
            raise ValueError(
                f"k_max ({self.k_max}) must be greater than k_min ({self.k_min}): "
                f"the ks tried are np.arange(k_min, k_max)"
            )
        if self.fit_rate < self.k_max - 1:
            raise ValueError(
                f"fit_rate ({self.fit_rate}) must be at least the largest k tried ({self.k_max - 1}): "
                f"each fit uses fit_rate points"
            )
        return self

    @field_validator("return_bounds")
    @classmethod
    def _check_bounds(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError("must be (lo, hi) with lo < hi")
        return v


# ------------------------------------------------------------------------------ Mixture
def _robust_cholesky(cov: np.ndarray, reg: float = 1e-6) -> np.ndarray:
    """Lower Cholesky factors of a ``(k, D, D)`` stack; a matrix that is not numerically
    positive definite gets a growing diagonal jitter (rare: reg_covar normally suffices)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        out = np.empty_like(cov)
        eye = np.eye(cov.shape[-1])
        for i, c in enumerate(cov):
            jitter = 0.0
            for _ in range(12):
                try:
                    out[i] = np.linalg.cholesky(c + jitter * eye)
                    break
                except np.linalg.LinAlgError:
                    jitter = max(jitter * 10.0, reg, 1e-12 * float(np.abs(np.diag(c)).max(initial=1.0)))
            else:  # still not PD: fall back to a symmetric square root of the PSD part
                w, v = np.linalg.eigh((c + c.T) / 2)
                out[i] = v * np.sqrt(np.clip(w, 0.0, None))
        return out


@dataclass(frozen=True, eq=False)
class Mixture:
    """A fitted Gaussian mixture, immutable, ready to sample in batches.

    ``chol[i] @ chol[i].T == covariances[i]``; ``chol`` is lower triangular, so the
    first ``m`` coordinates of a draw depend only on ``chol[:, :m, :m]`` -- sampling the
    task coordinates alone (dropping ALP/time/return) needs no work on the others.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    chol: np.ndarray
    _factor_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_params(cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> Mixture:
        w = np.array(weights, dtype=np.float64).reshape(-1)
        mu = np.array(means, dtype=np.float64)
        cov = np.array(covariances, dtype=np.float64)
        if mu.ndim != 2 or cov.shape != (mu.shape[0], mu.shape[1], mu.shape[1]) or w.shape != (mu.shape[0],):
            raise ValueError(f"Mixture: inconsistent shapes weights{w.shape} means{mu.shape} covariances{cov.shape}")
        chol = _robust_cholesky(cov)
        for a in (w, mu, cov, chol):
            a.setflags(write=False)
        return cls(w, mu, cov, chol)

    @property
    def k(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(
        self, rng: np.random.Generator, n: int, comp_probs: np.ndarray | None = None, dims: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(components, x)``: ``n`` draws, components picked with ``comp_probs`` (default:
        the weights), only the first ``dims`` coordinates. Exactly two RNG calls."""
        m = self.dim if dims is None else int(dims)
        p = self.weights if comp_probs is None else np.asarray(comp_probs, dtype=np.float64)
        cdf = np.cumsum(p)
        # inverse-CDF pick (what rng.choice(p=...) does, without its per-call validation)
        comps = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), self.k - 1)
        z = rng.standard_normal((n, m))
        # SPEEDUP: x = mu + L z with the precomputed (truncated) Cholesky factors, instead
        # of an SVD per draw as np.random.multivariate_normal does: one GEMM of the draws
        # against every component's factor side by side, then each row keeps its own
        # component's block (cheaper than gathering a factor per row).
        blocks = (z @ self._stacked_factors(m)).reshape(n, self.k, m)
        x = blocks[np.arange(n), comps]
        x += self.means[comps, :m]
        return comps, x

    def _stacked_factors(self, m: int) -> np.ndarray:
        """``(m, k * m)``: column block ``c`` is ``chol[c, :m, :m].T`` (cached per ``m``)."""
        out = self._factor_cache.get(m)
        if out is None:
            out = np.ascontiguousarray(self.chol[:, :m, :m].transpose(2, 0, 1).reshape(m, self.k * m))
            self._factor_cache[m] = out
        return out

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Log density of each row of ``x`` (n, D) under the mixture."""
        x = np.asarray(x, dtype=np.float64)
        inv = np.linalg.inv(self.chol)  # (k, D, D) lower
        y = np.matmul(x[None, :, :] - self.means[:, None, :], np.swapaxes(inv, 1, 2))
        logdet = np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(1)
        lp = -0.5 * (self.dim * _LOG_2PI + (y * y).sum(-1)) - logdet[:, None]
        with np.errstate(divide="ignore"):
            lp = lp + np.log(self.weights)[:, None]
        mx = lp.max(0)
        return mx + np.log(np.exp(lp - mx).sum(0))

    def to_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays (``chol`` is recomputed on load, deterministically)."""
        return {
            "weights": np.array(self.weights),
            "means": np.array(self.means),
            "covariances": np.array(self.covariances),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mixture:
        return cls.from_params(d["weights"], d["means"], d["covariances"])


# ---------------------------------------------------------------------------- criteria
def n_parameters(k: int, dim: int) -> int:
    """Free parameters of a full-covariance mixture (as sklearn's ``_n_parameters``)."""
    return int(k * dim * (dim + 1) // 2 + k * dim + k - 1)


def _criterion(crit: str, mean_ll: np.ndarray, ks: np.ndarray, n: int, dim: int) -> np.ndarray:
    """AIC / BIC / AICc from the mean log-likelihood (fast fitter; AICc uses the correct
    parameter count for ``dim`` and is +inf where ``n - p - 1 <= 0``)."""
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
def fit_reference(
    data: np.ndarray,
    ks: Sequence[int],
    seed: int | None,
    criterion: Criterion = "aic",
    nb_em_init: int = 1,
    aicc_task_dim: int | None = None,
) -> dict[str, Any]:
    """REFERENCE: teachDeepRL/TeachMyAgent's fit, exactly (positional arguments work, so a
    `Refitter` can ship the call to a worker).

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
class _Packed:
    """The data as ``z = [packed outer products | x | 1]``, ``(n, P + D + 1)``.

    SPEEDUP: with it, every component's log density *and* every component's M-step
    moments (nk, sum r x, sum r x x') are a single GEMM over all stacked components:
    ``log N(x) + log w = -0.5 x'Ax + (A mu)'x + const`` is linear in the columns of ``z``.
    Symmetric matrices are packed to their upper triangle (half the work of ``D*D``)."""

    def __init__(self, x: np.ndarray) -> None:
        n, D = x.shape
        iu, ju = np.triu_indices(D)
        self.iu, self.ju = iu.astype(np.int64), ju.astype(np.int64)
        P = iu.size
        self.z = np.empty((n, P + D + 1))
        self.z[:, :P] = x[:, iu] * x[:, ju]
        self.z[:, P : P + D] = x
        self.z[:, -1] = 1.0
        self.zt = np.ascontiguousarray(self.z.T)


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
    """SPEEDUP: the candidate mixtures of a refit as one batched EM (loops in `gmm_em`).

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
    needs_prev = warm is not None and (init != "cold" or k_window is not None)
    prev = Mixture.from_dict(warm) if needs_prev else None
    if prev is not None and prev.dim != D:
        prev = None
    cand = _candidate_ks(ks, prev.k if prev is not None else None, k_window)
    cand = [k for k in cand if k <= n] or [min(int(k) for k in ks)]
    groups: list[tuple[int, str]] = []
    if prev is None or init in ("cold", "both"):
        groups += [(k, "cold") for k in cand]
    if prev is not None and init in ("warm", "both"):
        groups += [(k, "warm") for k in cand]
    G, K = len(groups), max(k for k, _ in groups)
    gk = np.asarray([k for k, _ in groups])
    group = np.repeat(np.arange(G), gk)  # flat component -> candidate
    first = np.r_[0, np.cumsum(gk)[:-1]]
    C = int(gk.sum())
    w = np.ones(C)
    mu = np.zeros((C, D))
    cov = np.broadcast_to(np.eye(D), (C, D, D)).copy()
    cold = np.asarray([kind == "cold" for _, kind in groups])
    pk = _Packed(x)
    if cold.any():
        chain_first = int(rng.integers(n))  # the k-means++ chain's random draws, in their order
        chain = gmm_em.kmeanspp_chain(x, chain_first, rng.random(K))
        sel = cold[group]
        w[sel], mu[sel], cov[sel] = gmm_em.kmeans_init(
            x, pk.z, pk.iu, pk.ju, chain, gk[cold].astype(np.int64), _LLOYD_ITERS, reg_covar
        )
    if prev is not None and not cold.all():
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
    w = w / np.add.reduceat(w, first)[group]  # each candidate's weights sum to 1
    starts = np.r_[0, np.cumsum(gk)].astype(np.int64)
    w, mu, cov, ll, n_iter, running = gmm_em.em(
        pk.z, pk.zt, pk.iu, pk.ju, w, mu, cov, starts, int(max_iter), float(tol), float(reg_covar)
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


# ---------------------------------------------------------------------------- helpers
class FitWindows:
    """The last ``size`` rows seen, and the fit windows a push completes.

    REFERENCE: a refit is due after the episode that makes the count a positive multiple
    of ``size`` (``len(tasks) >= fit_rate and len(tasks) % fit_rate == 0``), on exactly the
    last ``size`` rows; windows therefore never overlap.
    """

    def __init__(self, size: int, dim: int) -> None:
        self.size = int(size)
        self.rows = np.empty((0, dim))

    def push(self, rows: np.ndarray, n_before: int) -> list[np.ndarray]:
        rows = np.asarray(rows, dtype=np.float64)
        allr = np.concatenate([self.rows, rows]) if self.rows.size else rows
        off = allr.shape[0] - rows.shape[0]
        out = []
        for i in range(rows.shape[0]):
            c = n_before + i + 1
            if c >= self.size and c % self.size == 0:
                end = off + i + 1
                out.append(allr[end - self.size : end].copy())
        self.rows = allr[-self.size :].copy()
        return out

    def state(self) -> np.ndarray:
        return self.rows.copy()

    def load(self, rows: np.ndarray) -> None:
        self.rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.rows.shape[1])


def proportional_choice(v: np.ndarray, rng: np.random.Generator, eps: float = 0.0) -> int:
    """REFERENCE: teachDeepRL's ``proportional_choice``: uniform if the values sum to 0
    (or with prob ``eps``), else one multinomial draw with probabilities ``v / sum(v)``.
    The RNG calls follow the original's order (a ``rand()`` draw even when ``eps == 0``)."""
    v = np.asarray(v, dtype=np.float64)
    if np.sum(v) == 0 or rng.random() < eps:
        return int(rng.integers(np.size(v)))
    return int(np.argmax(rng.multinomial(1, v / np.sum(v))))


def component_probs(values: np.ndarray) -> np.ndarray:
    """Probabilities proportional to non-negative ``values``; uniform if they sum to 0."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    s = v.sum()
    return v / s if s > 0 else np.full(v.shape, 1.0 / v.size)


def sample_box_mixture(
    rng: np.random.Generator,
    mixture: Mixture | None,
    probs: np.ndarray | None,
    n: int,
    low: np.ndarray,
    high: np.ndarray,
    random_ratio: float,
    bootstrap: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """SPEEDUP: ``n`` tasks at once: ``(params (n, d), is_uniform (n,))``.

    Uniform in the box during bootstrap (or with no mixture yet) and with probability
    ``random_ratio``; otherwise a component drawn with ``probs``, a Gaussian draw of the
    task coordinates only (the marginal of the full draw), clipped to the box. A fixed
    number of RNG calls per batch, whatever ``n``.
    """
    d = low.shape[0]
    if bootstrap or mixture is None:
        return rng.uniform(low, high, size=(n, d)), np.ones(n, dtype=bool)
    is_uni = rng.random(n) < random_ratio
    n_uni = int(is_uni.sum())
    out = np.empty((n, d))
    if n_uni:
        out[is_uni] = rng.uniform(low, high, size=(n_uni, d))
    if n_uni < n:
        _, x = mixture.sample(rng, n - n_uni, probs, dims=d)
        out[~is_uni] = np.clip(x, low, high)
    return out, is_uni


def tasks_with_origin(space: Box, x: np.ndarray, uniform: np.ndarray) -> list[Task]:
    """Tasks for the rows of ``x`` in order; rows flagged ``uniform`` get origin
    ``"uniform"``, the others ``"sampled"`` (drawn from the mixture)."""
    return space.tasks(x, origin=list(map(_ORIGINS.__getitem__, uniform.tolist())), validate=False)


_ORIGINS = ("sampled", "uniform")


class Prefetch:
    """SPEEDUP: serve small ``sample(n)`` calls from tasks drawn ahead in one vectorised
    block of ``block`` draws (per-call numpy overhead, not arithmetic, dominates n=1).

    Deterministic: what is drawn, and when, depends only on the call sequence. The owner
    must `clear` it whenever the distribution changes (a new mixture goes live), so no
    task from an old model is ever served; the unserved draws are simply discarded.
    """

    def __init__(self, space: Box, block: int) -> None:
        self.space = space
        self.block = int(block)
        self._x = np.zeros((0, space.dim))
        self._uni = np.zeros(0, dtype=bool)
        self._tasks: list[Task] = []
        self._pos = 0

    def __len__(self) -> int:
        return len(self._tasks) - self._pos

    def clear(self) -> None:
        self._x, self._uni, self._tasks, self._pos = self._x[:0], self._uni[:0], [], 0

    def take(self, n: int, draw: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> list[Task]:
        """``n`` tasks: the buffered ones first, then a fresh block of ``max(block, missing)``."""
        if self.block <= 0:
            x, uni = draw(n)
            return tasks_with_origin(self.space, x, uni)
        out = self._tasks[self._pos : self._pos + n]
        self._pos += len(out)
        missing = n - len(out)
        if missing:
            x, uni = draw(max(self.block, missing))
            tasks = tasks_with_origin(self.space, x, uni)
            out += tasks[:missing]
            self._x, self._uni, self._tasks, self._pos = x, uni, tasks, missing
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The draws not served yet (tasks are rebuilt from them: same params, same ids)."""
        return {"x": self._x[self._pos :].copy(), "uniform": self._uni[self._pos :].copy()}

    def load(self, state: dict[str, Any]) -> None:
        x = np.asarray(state["x"], dtype=np.float64).reshape(-1, self.space.dim)
        uni = np.asarray(state["uniform"], dtype=bool).reshape(-1)
        self._x, self._uni, self._pos = x, uni, 0
        self._tasks = tasks_with_origin(self.space, x, uni) if uni.size else []
