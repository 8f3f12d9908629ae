"""`WindowALP`'s low-dimensional path: exact 1-NN ALP over a FIFO window with a uniform grid.

Why: `alp.WindowALP`'s general path answers a batch with a kd-tree built for that call
plus O(batch^2) GEMM blocks for the batch's own rows: ~6 ms per 1,024 outcomes at d = 2
against a 20k window, most of the teacher service's cost per report. In 1-3 dimensions a
persistent uniform grid (spatial hash) over the window answers each query by looking at
a handful of cells, and storing or evicting a pair is O(1), so the queries can simply be
answered one by one, in order -- which is the definition the batched path reproduces.

Semantics (identical to the batched path, checked by a property test):
    * row ``i`` of a batch sees the pairs stored before it, within the window (the last
      ``max_size`` pairs; unbounded when ``W < 0``), then is stored, evicting the oldest;
    * ALP is 0 while ``MIN_STORED`` or fewer pairs are visible;
    * the nearest pair minimises the exact squared distance ``sum_c (q_c - p_c)^2``,
      summed in coordinate order from 0.0 (the batched path's exact re-score); ties go to
      the most recently stored pair (largest sequence number).

The grid: cell ``floor(x_c / h)`` per coordinate, hashed into a power-of-two table of
doubly linked lists of ring slots (a bucket may hold several cells; extra points are
only extra exact comparisons). A query scans cells in growing Chebyshev rings around its
own and stops once its best squared distance is below the squared distance from the
query to the outside of the scanned block, less a rounding margin ``tol``; a query that
would scan more cells than there are stored pairs scans the ring buffer instead. Cell
sizes are chosen by the caller (`alp.WindowALP._grid_prepare`) and only affect speed.

Compiled with `em_kernels.jit` (numba, nogil, cached on disk); `warm_up` loads or
compiles them. Pure algorithm code: numpy and numba only.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from openended.teachers.gmm.em_kernels import jit

__all__ = ["grid_alp", "grid_build", "warm_up", "MAX_DIM"]

#: Largest task dimension the grid kernels handle.
MAX_DIM = 3
_MIN_STORED = 5  # = alp.MIN_STORED (imported there; kept literal here to avoid a cycle)
_EPS = float(np.finfo(np.float64).eps)
_H1 = np.int64(73856093)
_H2 = np.int64(19349663)
_H3 = np.int64(83492791)


@jit
def _bucket(c0: Any, c1: Any, c2: Any, mask: int) -> Any:
    return ((c0 * _H1) ^ (c1 * _H2) ^ (c2 * _H3)) & mask


@jit
def _cells(xa: np.ndarray, row: int, d: int, inv_h: float) -> tuple[Any, Any, Any]:
    c0 = np.int64(math.floor(xa[row, 0] * inv_h))
    c1 = np.int64(math.floor(xa[row, 1] * inv_h)) if d > 1 else np.int64(0)
    c2 = np.int64(math.floor(xa[row, 2] * inv_h)) if d > 2 else np.int64(0)
    return c0, c1, c2


@jit
def _link(slot: int, bk: int, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, bkt: np.ndarray) -> None:
    first = head[bk]
    nxt[slot] = first
    prv[slot] = -1
    if first >= 0:
        prv[first] = slot
    head[bk] = slot
    bkt[slot] = bk


@jit
def _unlink(slot: int, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, bkt: np.ndarray) -> None:
    p, n = prv[slot], nxt[slot]
    if p >= 0:
        nxt[p] = n
    else:
        head[bkt[slot]] = n
    if n >= 0:
        prv[n] = p


@jit
def grid_build(
    xa: np.ndarray, sq: np.ndarray, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, bkt: np.ndarray, h: float
) -> None:
    """(Re)link every stored slot (``sq >= 0``) into an empty grid of cell size ``h``."""
    d = xa.shape[1] - 1
    mask = head.shape[0] - 1
    inv_h = 1.0 / h
    head[:] = -1
    for s in range(sq.shape[0]):
        if sq[s] >= 0:
            c0, c1, c2 = _cells(xa, s, d, inv_h)
            _link(s, _bucket(c0, c1, c2, mask), head, nxt, prv, bkt)


@jit
def _scan(
    bk: int,
    q: np.ndarray,
    d: int,
    xa: np.ndarray,
    sq: np.ndarray,
    head: np.ndarray,
    nxt: np.ndarray,
    best: float,
    bslot: int,
) -> tuple[float, int]:
    """Fold bucket ``bk``'s slots into the running (best squared distance, slot)."""
    s = head[bk]
    while s >= 0:
        e = 0.0
        for c in range(d):  # the batched path's exact re-score, term for term
            t = q[c] - xa[s, c]
            e += t * t
        if bslot < 0 or e < best or (e == best and sq[s] > sq[bslot]):
            best = e
            bslot = s
        s = nxt[s]
    return best, bslot


@jit
def _nearest(
    q: np.ndarray,
    d: int,
    xa: np.ndarray,
    sq: np.ndarray,
    head: np.ndarray,
    nxt: np.ndarray,
    n_stored: int,
    h: float,
    tol: float,
) -> int:
    """Ring slot of the nearest stored pair to ``q`` (ties: newest); -1 if none is stored."""
    mask = head.shape[0] - 1
    inv_h = 1.0 / h
    q0 = np.int64(math.floor(q[0] * inv_h))
    q1 = np.int64(math.floor(q[1] * inv_h)) if d > 1 else np.int64(0)
    q2 = np.int64(math.floor(q[2] * inv_h)) if d > 2 else np.int64(0)
    best = np.inf
    bslot = -1
    visited = 0
    limit = 4 * n_stored + 64
    ring = 0
    while True:
        if d == 1:
            best, bslot = _scan(_bucket(q0 - ring, 0, 0, mask), q, d, xa, sq, head, nxt, best, bslot)
            if ring > 0:
                best, bslot = _scan(_bucket(q0 + ring, 0, 0, mask), q, d, xa, sq, head, nxt, best, bslot)
            visited += 2
        elif d == 2:
            for a in range(-ring, ring + 1):
                if a == -ring or a == ring:
                    for b in range(-ring, ring + 1):
                        best, bslot = _scan(_bucket(q0 + a, q1 + b, 0, mask), q, d, xa, sq, head, nxt, best, bslot)
                    visited += 2 * ring + 1
                else:
                    best, bslot = _scan(_bucket(q0 + a, q1 - ring, 0, mask), q, d, xa, sq, head, nxt, best, bslot)
                    best, bslot = _scan(_bucket(q0 + a, q1 + ring, 0, mask), q, d, xa, sq, head, nxt, best, bslot)
                    visited += 2
        else:
            for a in range(-ring, ring + 1):
                for b in range(-ring, ring + 1):
                    if a == -ring or a == ring or b == -ring or b == ring:
                        for c in range(-ring, ring + 1):
                            best, bslot = _scan(
                                _bucket(q0 + a, q1 + b, q2 + c, mask), q, d, xa, sq, head, nxt, best, bslot
                            )
                        visited += 2 * ring + 1
                    else:
                        best, bslot = _scan(
                            _bucket(q0 + a, q1 + b, q2 - ring, mask), q, d, xa, sq, head, nxt, best, bslot
                        )
                        best, bslot = _scan(
                            _bucket(q0 + a, q1 + b, q2 + ring, mask), q, d, xa, sq, head, nxt, best, bslot
                        )
                        visited += 2
        # every pair outside the scanned block is farther than its nearest face
        bound = np.inf
        for c in range(d):
            qc = q0 if c == 0 else (q1 if c == 1 else q2)
            bound = min(bound, q[c] - (qc - ring) * h, (qc + ring + 1) * h - q[c])
        bound -= tol + 64.0 * _EPS * (ring + 2) * h  # rounding of the cells and of this bound
        if bound > 0.0 and best < bound * bound * (1.0 - 1e-9):
            return bslot
        ring += 1
        if visited > limit:  # sparse around this query: scan the ring buffer itself
            for s in range(sq.shape[0]):
                if sq[s] >= 0:
                    e = 0.0
                    for c in range(d):
                        t = q[c] - xa[s, c]
                        e += t * t
                    if bslot < 0 or e < best or (e == best and sq[s] > sq[bslot]):
                        best = e
                        bslot = s
            return bslot


@jit
def grid_alp(
    xa: np.ndarray,
    rr: np.ndarray,
    sq: np.ndarray,
    head: np.ndarray,
    nxt: np.ndarray,
    prv: np.ndarray,
    bkt: np.ndarray,
    ba: np.ndarray,
    rb: np.ndarray,
    total: int,
    window: int,
    h: float,
    tol: float,
    query_from: int,
    out: np.ndarray,
) -> None:
    """ALP of each batch row in order; each row is then stored (evicting the oldest).

    ``xa (cap, d + 1)``, ``rr``, ``sq`` are the ring (rows ``[x, |x|^2]``, returns,
    sequence numbers, -1 = empty), ``head/nxt/prv/bkt`` the grid over it (cell size
    ``h``), ``ba (b, d + 1)`` and ``rb`` the batch in the ring's row format, ``total`` the
    pairs stored so far, ``window`` the window size (< 0: unbounded, then ``cap >= total +
    b``), ``tol`` the rounding margin of the stopping rule for coordinates as large as
    any stored or queried (the kernel adds the part that grows with the ring). Rows
    before ``query_from`` are stored without a query (ALP NaN). Writes ``out (b,)``.
    """
    d = ba.shape[1] - 1
    mask = head.shape[0] - 1
    inv_h = 1.0 / h
    for i in range(ba.shape[0]):
        seq = total + i
        n_vis = seq if window < 0 else min(seq, window)
        if i < query_from:
            out[i] = np.nan
        elif n_vis > _MIN_STORED:
            s = _nearest(ba[i], d, xa, sq, head, nxt, n_vis, h, tol)
            out[i] = abs(rb[i] - rr[s])
        else:
            out[i] = 0.0
        slot = seq if window < 0 else seq % window
        if sq[slot] >= 0:
            _unlink(slot, head, nxt, prv, bkt)
        for c in range(d + 1):
            xa[slot, c] = ba[i, c]
        rr[slot] = rb[i]
        sq[slot] = seq
        c0, c1, c2 = _cells(xa, slot, d, inv_h)
        _link(slot, _bucket(c0, c1, c2, mask), head, nxt, prv, bkt)


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's cache) the grid kernels now, on a tiny problem."""
    global _warm
    if _warm:
        return
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for d in (1, 2, 3):  # one specialisation serves every d (same array types)
        cap = 16
        xa = np.zeros((cap, d + 1))
        sq = np.full(cap, -1, dtype=np.int64)
        head = np.full(32, -1, dtype=np.int64)
        nxt, prv, bkt = (np.zeros(cap, dtype=np.int64) for _ in range(3))
        grid_build(xa, sq, head, nxt, prv, bkt, 0.25)
        ba = np.zeros((20, d + 1))
        ba[:, :d] = rng.random((20, d))
        grid_alp(xa, np.zeros(cap), sq, head, nxt, prv, bkt, ba, rng.random(20), 0, cap, 0.25, 1e-12, 2, np.zeros(20))
    _warm = True
    seconds = time.perf_counter() - t0
    if seconds > 1.0:
        import logging

        logging.getLogger(__name__).info("compiled the ALP grid kernels in %.1f s (once per machine)", seconds)
