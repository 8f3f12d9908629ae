"""The fast GMM fitter's EM loop, compiled with numba.

Why compiled: a refit fits every candidate k at once (``C = sum k`` stacked components,
up to 54 at ``k = 2..10``) on ~250 points. The two data passes of each EM iteration are
GEMMs over all components (BLAS, as fast from here as from numpy); what numpy could not
make cheap was everything between them -- per component a Cholesky factor, its
triangular inverse, the precision matrix and the packed E-step coefficients, then a
segmented log-sum-exp, the convergence bookkeeping and the moment -> covariance step.
In numpy those are ~40 small batched calls per iteration (~0.2 ms of call overhead and
per-matrix LAPACK dispatch at 13 dimensions); here they are plain loops.

Compiled with `jit`: ``numba.njit(nogil=True)`` (a refit running in the teacher's
thread executor does not hold the GIL, so ``sample`` calls on other threads run while it
fits), cached on disk where numba finds a writable place (numba keys the cache by this
module's path: ``__pycache__`` next to this file, else its user cache directory), so only
the first process on a machine compiles the kernels, ~8 s, and later ones load them in
~0.3 s -- `warm_up` lets callers pay that up front. Where neither place is writable the
kernels compile once per process instead of failing at import. The EM loop's kernels
also let multiply-adds fuse (`_fma_jit`); the k-means initialisation keeps sklearn's
arithmetic.

Pure algorithm code: numpy and numba only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

__all__ = ["em", "fit_cold", "kmeans_init", "kmeanspp_chain", "normalise_weights", "pack", "warm_up", "jit"]

_log = logging.getLogger(__name__)
_LOG_2PI = math.log(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


def jit(fn: Callable[..., Any], fma: bool = False) -> Any:
    """Compile ``fn`` lazily (on first call) with numba, nogil, cached on disk when possible.

    ``fma``: let LLVM fuse ``a * b + c`` into one fused multiply-add (numba's
    ``fastmath={"contract"}``: no reassociation, no other fast-math liberty). For the EM
    kernels only, whose results need not match a numpy computation bit for bit; the ALP
    and id-table kernels reproduce numpy's arithmetic exactly and keep it off.
    """
    options: dict[str, Any] = {"nogil": True}
    if fma:
        options["fastmath"] = {"contract"}
    try:
        return nb.njit(cache=True, **options)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available": no writable cache dir
        return nb.njit(**options)(fn)


def _fma_jit(fn: Callable[..., Any]) -> Any:
    """`jit` with fused multiply-adds: the EM loop's kernels.

    SPEEDUP: numba keeps ``a * b + c`` as a multiply and an add unless contraction is
    allowed; fused, the polynomial of `_exp_shifted` runs ~1.7x faster and a refit ~13 %
    faster. Each fused step rounds once instead of twice (no less accurate); on 100 fit
    windows of the service benchmark every fit chose the same k, criteria within 1e-9.
    """
    return jit(fn, fma=True)


@_fma_jit
def _cholesky(a: np.ndarray, jitter: float, out: np.ndarray) -> bool:
    """Lower Cholesky factor of ``a + jitter * I`` into ``out``; False if not positive definite."""
    d = a.shape[0]
    for j in range(d):
        s = a[j, j] + jitter
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if not s > 0.0:
            return False
        ljj = math.sqrt(s)
        out[j, j] = ljj
        for i in range(j + 1, d):
            t = a[i, j]
            for k in range(j):
                t -= out[i, k] * out[j, k]
            out[i, j] = t / ljj
        for i in range(j):
            out[i, j] = 0.0
    return True


@_fma_jit
def _precision(cov: np.ndarray, reg: float, chol: np.ndarray, inv: np.ndarray, prec: np.ndarray) -> float:
    """``prec = cov^-1`` and the return value ``log |cov|^(1/2)``.

    A matrix that is not numerically positive definite gets a growing diagonal jitter
    (as `Mixture`'s robust Cholesky); if even that fails (non-finite entries), the
    precision of its diagonal alone, floored at ``reg``.
    """
    d = cov.shape[0]
    ok = _cholesky(cov, 0.0, chol)
    if not ok:
        top = 1.0
        for i in range(d):
            top = max(top, abs(cov[i, i]))
        jitter = 0.0
        for _ in range(12):
            jitter = max(jitter * 10.0, reg, 1e-12 * top)
            if _cholesky(cov, jitter, chol):
                ok = True
                break
    if not ok:  # not finite or hopeless: the diagonal alone (floored at reg)
        logdet = 0.0
        for a in range(d):
            v = abs(cov[a, a])
            v = v if v > reg else max(reg, 1e-300)
            logdet += 0.5 * math.log(v)
            for b in range(d):
                prec[a, b] = 0.0
            prec[a, a] = 1.0 / v
        return logdet
    logdet = 0.0
    for i in range(d):  # inv = chol^-1 (lower), by forward substitution
        logdet += math.log(chol[i, i])
        inv[i, i] = 1.0 / chol[i, i]
        for j in range(i):
            s = 0.0
            for k in range(j, i):
                s += chol[i, k] * inv[k, j]
            inv[i, j] = -s * inv[i, i]
        for j in range(i + 1, d):
            inv[i, j] = 0.0
    for a in range(d):  # prec = inv' inv, symmetric
        for b in range(a, d):
            s = 0.0
            for r in range(b, d):
                s += inv[r, a] * inv[r, b]
            prec[a, b] = s
            prec[b, a] = s
    return logdet


@_fma_jit
def _coefficients(
    w: np.ndarray,
    mu: np.ndarray,
    cov: np.ndarray,
    comps: np.ndarray,
    iu: np.ndarray,
    ju: np.ndarray,
    reg: float,
    coef: np.ndarray,
) -> None:
    """Fill row ``r`` of ``coef`` with component ``comps[r]``'s E-step coefficients.

    The row is ``log w + log N(x)`` as a linear function of the packed data columns
    ``[x_i x_j (i <= j) | x | 1]``.
    """
    d = mu.shape[1]
    p = iu.shape[0]
    chol = np.empty((d, d))
    inv = np.empty((d, d))
    prec = np.empty((d, d))
    for r in range(comps.shape[0]):
        c = comps[r]
        logdet = _precision(cov[c], reg, chol, inv, prec)
        for q in range(p):
            a, b = iu[q], ju[q]
            coef[r, q] = -0.5 * prec[a, b] if a == b else -prec[a, b]  # off-diagonals appear twice
        quad = 0.0
        for a in range(d):
            s = 0.0
            for b in range(d):
                s += prec[a, b] * mu[c, b]
            coef[r, p + a] = s
            quad += s * mu[c, a]
        coef[r, p + d] = math.log(w[c]) - logdet - 0.5 * (quad + d * _LOG_2PI)


@_fma_jit
def _m_step(
    mom: np.ndarray,
    comps: np.ndarray,
    iu: np.ndarray,
    ju: np.ndarray,
    n: int,
    reg: float,
    w: np.ndarray,
    mu: np.ndarray,
    cov: np.ndarray,
) -> None:
    """The M-step as sklearn computes it (+10 eps on nk, ``reg`` on the diagonal).

    Reads the packed moments ``mom[r] = sum_i resp[r, i] * [x_i x_i' (packed) | x_i | 1]``
    of component ``comps[r]``.
    """
    d = mu.shape[1]
    p = iu.shape[0]
    for r in range(comps.shape[0]):
        c = comps[r]
        nk = mom[r, p + d] + 10.0 * _EPS
        for a in range(d):
            mu[c, a] = mom[r, p + a] / nk
        for q in range(p):
            a, b = iu[q], ju[q]
            v = mom[r, q] / nk - mu[c, a] * mu[c, b]
            if a == b:
                v += reg
            cov[c, a, b] = v
            cov[c, b, a] = v
        w[c] = nk / n


@jit
def kmeanspp_chain(x: np.ndarray, first: int, u: np.ndarray) -> np.ndarray:
    """One k-means++ seeding chain of ``u.size`` centres starting at row ``first``.

    ``u`` are the uniform draws that pick the next centres (each ~ D^2 to the chain so far).
    Its first k centres are a valid k-means++ seeding for every k, so one chain
    initialises all candidates.
    """
    n, d = x.shape
    kmax = u.shape[0]
    centres = np.empty((kmax, d))
    centres[0] = x[first]
    d2 = np.empty(n)
    for i in range(n):
        s = 0.0
        for a in range(d):
            t = x[i, a] - centres[0, a]
            s += t * t
        d2[i] = s
    for j in range(1, kmax):
        total = 0.0
        for i in range(n):
            total += d2[i]
        if total > 0:  # the first row whose running D^2 sum exceeds u * total
            target = u[j] * total
            idx = n - 1
            run = 0.0
            for i in range(n):
                run += d2[i]
                if run > target:
                    idx = i
                    break
        else:
            idx = int(u[j] * n) % n
        centres[j] = x[idx]
        for i in range(n):
            s = 0.0
            for a in range(d):
                t = x[i, a] - centres[j, a]
                s += t * t
            d2[i] = min(d2[i], s)
    return centres


@jit
def kmeans_init(
    x: np.ndarray,
    z: np.ndarray,
    iu: np.ndarray,
    ju: np.ndarray,
    chain: np.ndarray,
    ks: np.ndarray,
    iters: int,
    reg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k-means initialisation as sklearn does it, for every candidate at once.

    Candidate ``g`` starts from the first ``ks[g]`` centres of ``chain``, runs Lloyd
    iterations (at most ``iters``, until its labels stop changing; ties go to the lower
    centre), and its components are the M-step of the resulting hard assignment.
    Returns stacked ``(w, mu, cov)``.

    All candidates step together: one GEMM per iteration gives ``x . c`` for every
    centre of every candidate (the nearest centre minimises ``|c|^2 - 2 x . c``).
    """
    n, d = x.shape
    n_groups = ks.shape[0]
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for g in range(n_groups):
        starts[g + 1] = starts[g] + ks[g]
    n_comps = int(starts[n_groups])
    q = z.shape[1]
    centres = np.empty((n_comps, d))
    for g in range(n_groups):
        centres[starts[g] : starts[g + 1]] = chain[: ks[g]]
    labels = np.full((n_groups, n), -1, dtype=np.int64)  # index within the candidate
    running = np.ones(n_groups, dtype=np.bool_)
    cc = np.empty(n_comps)
    cnt = np.empty(n_comps)
    sums = np.empty((n_comps, d))
    nearest = np.empty(n)  # per point: the smallest |c|^2 - 2 x . c so far, and its centre
    arg = np.empty(n, dtype=np.int64)
    xt = np.ascontiguousarray(x.T)
    for _ in range(iters):
        for c in range(n_comps):
            s = 0.0
            for a in range(d):
                s += centres[c, a] * centres[c, a]
            cc[c] = s
        dots = np.dot(centres, xt)  # (n_comps, n)
        any_running = False
        for g in range(n_groups):
            if not running[g]:
                continue
            # SPEEDUP: centres outer, points inner: each pass is a vector compare-and-select
            # over a contiguous row of `dots` (points outer was a scalar loop on AVX2)
            c0 = starts[g]
            for i in range(n):
                nearest[i] = cc[c0] - 2.0 * dots[c0, i]
                arg[i] = 0
            for j in range(1, ks[g]):
                c = c0 + j
                for i in range(n):
                    v = cc[c] - 2.0 * dots[c, i]
                    if v < nearest[i]:  # strict: ties keep the lower centre
                        nearest[i] = v
                        arg[i] = j
            changed = False
            for i in range(n):
                if arg[i] != labels[g, i]:
                    labels[g, i] = arg[i]
                    changed = True
            if not changed:
                running[g] = False
                continue
            any_running = True
            for c in range(starts[g], starts[g + 1]):  # centres = means of their points
                cnt[c] = 0.0
                for a in range(d):
                    sums[c, a] = 0.0
            for i in range(n):
                c = starts[g] + labels[g, i]
                cnt[c] += 1.0
                for a in range(d):
                    sums[c, a] += x[i, a]
            for c in range(starts[g], starts[g + 1]):
                if cnt[c] > 0:  # an empty cluster keeps its centre
                    for a in range(d):
                        centres[c, a] = sums[c, a] / cnt[c]
        if not any_running:
            break
    mom = np.zeros((n_comps, q))
    for g in range(n_groups):
        for i in range(n):
            row = starts[g] + labels[g, i]
            for c in range(q):
                mom[row, c] += z[i, c]
    w = np.empty(n_comps)
    mu = np.empty((n_comps, d))
    cov = np.empty((n_comps, d, d))
    _m_step(mom, np.arange(n_comps), iu, ju, n, reg, w, mu, cov)
    return w, mu, cov


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody-Waite): kf * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
# 1.5 * 2^52: adding it leaves a double's integer part in its low mantissa bits, so
# (x + _ROUND) - _ROUND is x rounded to the nearest integer, in two vector adds
_ROUND = 6755399441055744.0
_TWO52 = 4503599627370496.0  # 2^52: kf + _TWO52 + 1023 holds kf + 1023 in its low bits
# 1/j! for j = 13 .. 2, Horner order: the Taylor tail after r^13 is below 1e-17 for |r| <= ln2 / 2
_EXP_POLY = tuple(1.0 / math.factorial(j) for j in range(13, 1, -1))


@_fma_jit
def _exp_shifted(row: np.ndarray, shift: np.ndarray, bits: np.ndarray) -> None:
    """``row[i] = exp(row[i] - shift[i])`` in place, for arguments <= 0 (a log-sum-exp's).

    SPEEDUP: ``math.exp`` is a libm call per element that LLVM cannot vectorise (no SVML
    in numba's llvmlite here) and was ~40 % of a fit. This is the textbook reduction
    ``exp(t) = 2^k exp(r)``, ``|r| <= ln2 / 2``, a degree-13 Taylor polynomial in ``r`` and
    ``2^k`` assembled in the exponent bits: branch-free, so the loop vectorises. Within
    1 ulp of ``math.exp`` (tested); arguments below -708 give ~3e-308 instead of a
    subnormal or 0 -- nothing next to the log-sum-exp's largest term, which is 1.

    SPEEDUP: ``k`` is rounded with the ``_ROUND`` trick and ``2^k`` built from the float
    ``kf + 2^52 + 1023`` shifted left 52 bits, not with ``math.floor`` and a float->int64
    conversion: CPUs without AVX-512 have no vector instruction for that conversion and
    the loop stayed scalar there (2.8 -> 1.5 ns a value on an AVX2 EPYC, same results).
    """
    n = row.shape[0]
    scale = bits.view(np.float64)
    for i in range(n):
        t = max(row[i] - shift[i], -708.0)
        kf = (t * _LOG2E + _ROUND) - _ROUND
        r = (t - kf * _LN2_HI) - kf * _LN2_LO
        p = _EXP_POLY[0]
        for c in _EXP_POLY[1:]:
            p = p * r + c
        row[i] = (p * r + 1.0) * r + 1.0
        scale[i] = kf + (_TWO52 + 1023.0)
    for i in range(n):
        bits[i] = bits[i] << 52
    for i in range(n):
        row[i] *= scale[i]


@_fma_jit
def em(
    z: np.ndarray,
    zt: np.ndarray,
    iu: np.ndarray,
    ju: np.ndarray,
    w: np.ndarray,
    mu: np.ndarray,
    cov: np.ndarray,
    starts: np.ndarray,
    max_iter: int,
    tol: float,
    reg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """EM on all candidate mixtures at once; see `openended.teachers.gmm.fit.fit_fast`.

    ``z`` (``zt`` its transpose, contiguous) are the packed data columns of the centred
    points, ``iu, ju`` the packed index pairs; components are stacked flat, mixture
    ``g`` owning ``starts[g]:starts[g + 1]``. A mixture stops once its mean
    log-likelihood moves by less than ``tol`` (sklearn's rule) and is left out of later
    iterations. Returns the parameters whose log-likelihood was evaluated last (updated
    copies), that log-likelihood per mixture, the iterations run and how many mixtures
    were still running at ``max_iter``.
    """
    n = z.shape[0]
    q = z.shape[1]
    n_groups = starts.shape[0] - 1
    n_comps = starts[n_groups]
    w = w.copy()
    mu = mu.copy()
    cov = cov.copy()
    active = np.ones(n_groups, dtype=np.bool_)
    prev = np.full(n_groups, -np.inf)
    ll = np.full(n_groups, -np.inf)
    comps = np.arange(n_comps)
    ebits = np.empty(n, dtype=np.int64)  # scratch for `_exp_shifted`
    mxv = np.empty(n)  # per point: max over a mixture's components, then 1 / sum
    sv = np.empty(n)
    n_active = n_groups
    it = 0
    for it in range(1, max_iter + 1):
        # the running mixtures' components, in order
        m = 0
        for g in range(n_groups):
            if active[g]:
                for c in range(starts[g], starts[g + 1]):
                    comps[m] = c
                    m += 1
        act = comps[:m]
        coef = np.empty((m, q))
        _coefficients(w, mu, cov, act, iu, ju, reg, coef)
        resp = np.dot(coef, zt)  # (m, n) weighted log densities
        # per mixture: log-sum-exp over its components, responsibilities in place
        done = np.zeros(n_groups, dtype=np.bool_)
        r0 = 0
        for g in range(n_groups):
            if not active[g]:
                continue
            k = starts[g + 1] - starts[g]
            for i in range(n):  # rows are contiguous: loop over points innermost
                mxv[i] = resp[r0, i]
                sv[i] = 0.0
            # SPEEDUP: two rows a pass: LLVM vectorises this loop and not the one-row one
            # (6.4 -> 1.3 us for 54 rows on AVX2); the same maxima, taken in the same order
            for r in range(r0 + 1, r0 + k - 1, 2):
                for i in range(n):
                    a = max(mxv[i], resp[r, i])
                    mxv[i] = max(a, resp[r + 1, i])
            if (k - 1) % 2 == 1:
                r = r0 + k - 1
                for i in range(n):
                    mxv[i] = max(mxv[i], resp[r, i])
            for r in range(r0, r0 + k):
                _exp_shifted(resp[r], mxv, ebits)
                for i in range(n):
                    sv[i] += resp[r, i]
            total = 0.0
            for i in range(n):
                total += mxv[i]
            # SPEEDUP: sum_i log(sv_i) as logs of block products (one libm log per 32
            # points): each sv_i is in [1, k], so a block's product stays finite for k < 4e9
            for b0 in range(0, n, 32):
                prod = 1.0
                for i in range(b0, min(b0 + 32, n)):
                    prod *= sv[i]
                total += math.log(prod)
            for i in range(n):
                sv[i] = 1.0 / sv[i]
            for r in range(r0, r0 + k):
                for i in range(n):
                    resp[r, i] *= sv[i]
            ll_new = total / n
            ll[g] = ll_new
            done[g] = abs(ll_new - prev[g]) < tol
            prev[g] = ll_new
            r0 += k
        keep = np.empty(m, dtype=np.int64)  # rows of resp whose mixture goes on
        n_keep = 0
        r0 = 0
        for g in range(n_groups):
            if not active[g]:
                continue
            k = starts[g + 1] - starts[g]
            if done[g]:
                active[g] = False
                n_active -= 1
            else:
                for r in range(r0, r0 + k):
                    keep[n_keep] = r
                    n_keep += 1
            r0 += k
        if n_active == 0 or it == max_iter:
            break
        if n_keep == m:
            mom = np.dot(resp, z)
        else:
            mom = np.dot(resp[keep[:n_keep]], z)
        _m_step(mom, act[keep[:n_keep]], iu, ju, n, reg, w, mu, cov)
    return w, mu, cov, ll, it, n_active


@jit
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """``a[lo:lo + n].sum()`` in numpy's order (its pairwise summation), so results match numpy's bit for bit."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r = np.empty(8)
        for j in range(8):
            r[j] = a[lo + j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[lo + i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise_sum(a, lo, half) + _pairwise_sum(a, lo + half, n - half)


@jit
def pack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The points packed for the EM's GEMMs: ``(z, zt, iu, ju)``.

    ``z = [packed outer products | x | 1]``, ``(n, P + D + 1)``; ``zt`` its transpose
    (contiguous); ``iu, ju`` the index pairs of the products (``np.triu_indices`` order).

    SPEEDUP: with it, every component's log density *and* every component's M-step
    moments (nk, sum r x, sum r x x') are a single GEMM over all stacked components:
    ``log N(x) + log w = -0.5 x'Ax + (A mu)'x + const`` is linear in the columns of ``z``.
    Symmetric matrices are packed to their upper triangle (half the work of ``D*D``).
    """
    n, d = x.shape
    p = d * (d + 1) // 2
    iu = np.empty(p, dtype=np.int64)
    ju = np.empty(p, dtype=np.int64)
    m = 0
    for a in range(d):
        for b in range(a, d):
            iu[m] = a
            ju[m] = b
            m += 1
    z = np.empty((n, p + d + 1))
    for i in range(n):
        for q in range(p):
            z[i, q] = x[i, iu[q]] * x[i, ju[q]]
        for a in range(d):
            z[i, p + a] = x[i, a]
        z[i, p + d] = 1.0
    return z, np.ascontiguousarray(z.T), iu, ju


@jit
def normalise_weights(w: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Scale each candidate's weights (``ks[g]`` stacked components each) to sum to 1, in place.

    Each sum is taken in ``np.add.reduceat``'s order, so the weights equal numpy's
    ``w / np.add.reduceat(w, first)[group]`` bit for bit. Returns the candidates' starts.
    """
    starts = np.zeros(ks.shape[0] + 1, dtype=np.int64)
    for g in range(ks.shape[0]):
        starts[g + 1] = starts[g] + ks[g]
        f = starts[g]
        total = w[f] + _pairwise_sum(w, f + 1, ks[g] - 1)
        for c in range(f, starts[g + 1]):
            w[c] = w[c] / total
    return starts


@jit
def fit_cold(
    x: np.ndarray,
    chain_first: int,
    u: np.ndarray,
    ks: np.ndarray,
    lloyd_iters: int,
    max_iter: int,
    tol: float,
    reg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """`fit.fit_fast` with cold starts only (its default), in one compiled call.

    `pack`, the k-means++ chain, the k-means init of every candidate ``ks[g]``,
    `normalise_weights`, then `em`; ``x`` are the centred points; returns what `em`
    returns. Bit for bit the same as calling those steps one by one (tested).

    SPEEDUP: a refit runs on a worker thread beside a request thread that runs Python.
    Every return from compiled code or a GIL-releasing numpy call made the fit queue for
    the GIL; with one call it takes the GIL only to start and to return. In the service
    (1,024-outcome reports into ALP-GMM) a fit took ~3.5 ms of CPU and ~4 ms of wall time
    where it takes ~2.1 ms alone, so the request thread waited for it.
    """
    z, zt, iu, ju = pack(x)
    chain = kmeanspp_chain(x, chain_first, u)
    w, mu, cov = kmeans_init(x, z, iu, ju, chain, ks, lloyd_iters, reg)
    starts = normalise_weights(w, ks)
    return em(z, zt, iu, ju, w, mu, cov, starts, max_iter, tol, reg)


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels now, on a tiny problem.

    So the first real refit does not pay for it: a few seconds the first time on a
    machine (the compile holds the GIL), ~0.1 s in later processes, nothing after the
    first call in a process.
    """
    global _warm
    if _warm:
        return
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2))
    z, zt, iu, ju = pack(x)
    ks = np.array([1, 2], dtype=np.int64)
    w = np.full(3, 0.5)
    starts = normalise_weights(w, ks)
    cov = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    em(z, zt, iu, ju, w, rng.standard_normal((3, 2)), cov, starts, 3, 1e-3, 1e-6)
    chain = kmeanspp_chain(x, 0, rng.random(2))
    kmeans_init(x, z, iu, ju, chain, ks, 2, 1e-6)
    fit_cold(x, 0, rng.random(2), ks, 2, 3, 1e-3, 1e-6)
    _warm = True
    seconds = time.perf_counter() - t0
    if seconds > 1.0:  # it compiled: say why make_teacher paused
        _log.info("compiled the fast GMM fitter's kernels in %.1f s (once per machine: numba caches them)", seconds)
