"""`Mixture`: a fitted Gaussian mixture, immutable, with precomputed Cholesky factors.

What both GMM teachers sample from once a fit is live. Built from plain arrays (what a
fit returns, what a ``state_dict`` stores) and back, so fits can run in a thread or a
spawned process and their results survive a JSON round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Mixture", "n_parameters"]

_LOG_2PI = math.log(2.0 * math.pi)


def _robust_cholesky(cov: np.ndarray, reg: float = 1e-6) -> np.ndarray:
    """Lower Cholesky factors of a ``(k, D, D)`` stack.

    A matrix that is not numerically positive definite gets a growing diagonal jitter
    (rare: reg_covar normally suffices).
    """
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
        """A read-only mixture from ``(k,)``, ``(k, D)`` and ``(k, D, D)`` arrays (copied), factored now.

        Raises:
            ValueError: the shapes do not agree.
        """
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
        """Number of components."""
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        """Dimension D of the fitted rows (task coordinates plus the extra ones)."""
        return int(self.means.shape[1])

    def sample(
        self, rng: np.random.Generator, n: int, comp_probs: np.ndarray | None = None, dims: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws as ``(components, x)``; exactly two RNG calls.

        Components are picked with ``comp_probs`` (default: the weights); only the first
        ``dims`` coordinates are drawn.
        """
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
        """Inverse of `to_dict` (extra keys, e.g. a fit's info, are ignored)."""
        return cls.from_params(d["weights"], d["means"], d["covariances"])


# ---------------------------------------------------------------------------- criteria
def n_parameters(k: int, dim: int) -> int:
    """Free parameters of a full-covariance mixture (as sklearn's ``_n_parameters``)."""
    return int(k * dim * (dim + 1) // 2 + k * dim + k - 1)
