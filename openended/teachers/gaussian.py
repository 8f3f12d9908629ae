"""Gaussian densities and KL divergences with analytic gradients in (mean, Cholesky factor).

Why its own module: SPDL's update maximises an importance-weighted value minus a KL
penalty under a KL trust region; with these gradients SciPy's SLSQP needs one
evaluation per iteration instead of one per parameter (finite differences), which
made each update ~10x cheaper. Gradients with respect to a Cholesky factor ``L`` are
lower-triangular matrices (only the entries of ``L`` that exist).

Example:
    >>> import numpy as np
    >>> kl, *_ = kl_grads(np.zeros(1), np.eye(1), np.ones(1), np.eye(1))
    >>> round(kl, 6)
    0.5
"""

from __future__ import annotations

import numpy as np

__all__ = ["logpdf", "logpdf_grads", "kl_grads", "tri_inv"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def tri_inv(chol: np.ndarray) -> np.ndarray:
    """Inverse of a lower-triangular matrix (plain ``inv``: tiny matrices, lowest overhead)."""
    return np.linalg.inv(chol)


def logpdf(x: np.ndarray, mu: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Log density of each row of ``x`` under ``N(mu, chol @ chol.T)``."""
    z = tri_inv(chol) @ (np.atleast_2d(x) - mu).T
    return -0.5 * (z**2).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * mu.size * _LOG_2PI


def logpdf_grads(
    x: np.ndarray, mu: np.ndarray, chol: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``logpdf`` of each row and the gradients of ``sum_i weights_i * logpdf_i`` in ``mu`` and ``chol``."""
    inv = tri_inv(chol)
    z = inv @ (np.atleast_2d(x) - mu).T  # (d, n)
    lp = -0.5 * (z**2).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * mu.size * _LOG_2PI
    a = inv.T @ z  # d logp_i / d mu, per column
    g_mu = a @ weights
    g_chol = np.tril((a * weights) @ z.T) - weights.sum() * np.diag(1.0 / np.diag(chol))
    return lp, g_mu, g_chol


def kl_grads(
    mu0: np.ndarray, l0: np.ndarray, mu1: np.ndarray, l1: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``KL(N(mu0, L0 L0^T) || N(mu1, L1 L1^T))`` and its gradients in mu0, L0, mu1, L1."""
    inv1 = tri_inv(l1)
    m = inv1 @ l0
    z = inv1 @ (mu1 - mu0)
    d = mu0.size
    kl = 0.5 * ((m**2).sum() + z @ z - d) + np.log(np.diag(l1)).sum() - np.log(np.diag(l0)).sum()
    g_mu1 = inv1.T @ z
    g_l0 = np.tril(inv1.T @ m) - np.diag(1.0 / np.diag(l0))
    g_l1 = np.tril(-inv1.T @ (m @ m.T) - np.outer(g_mu1, z)) + np.diag(1.0 / np.diag(l1))
    return float(kl), -g_mu1, g_l0, g_mu1, g_l1
