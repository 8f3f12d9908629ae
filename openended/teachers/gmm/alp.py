"""Absolute learning progress (ALP) of an episode: ``|r - r_nn|`` against its nearest past task.

``r_nn`` is the return of the nearest previously seen task.

Contents:
    ReferenceALP -- teachDeepRL's ``EmpiricalALPComputer`` semantics, exactly: 1-NN over
                    *all* past (task, return) pairs in raw task units, through the same
                    buffered kd-tree (so exact ties resolve the same way).
    WindowALP    -- the fast computer: a bounded FIFO window in a ring buffer, exact 1-NN.
                    In at most 3 dimensions through a persistent uniform grid, one query
                    after the other (`alp_kernels`, compiled); above, by brute force (one
                    GEMM per block of queries) or, for big batches in at most 6
                    dimensions, a kd-tree built for that call only. Both paths give the
                    same ALPs (a property test checks it).

Both take batches, ``update(tasks (n, d), returns (n,)) -> alps (n,)``, and a batch gives
exactly what one-by-one calls in the same order give: row ``i`` sees rows ``< i`` of the
batch and not the later ones. ALP is 0 while 5 or fewer pairs are stored (as the
reference's ``len(knn) > 5`` test).

Why ties matter: clipping to the box puts many tasks *exactly* on its faces and corners,
so identical tasks are common and "which of the equally near neighbours" changes the ALP.
* Reference: teachDeepRL keeps a main ``cKDTree`` (rebuilt when its 500-point buffer is
  merged) and a buffer tree (rebuilt on every query), queries both and keeps the main
  tree's answer when the distances are equal (``<=``); inside a tree, scipy's traversal
  decides. `ReferenceALP` uses the same scipy trees with the same options and the same
  merge/truncate schedule, so it returns the same neighbour.
* Fast: among equally near neighbours the most recently stored wins (documented rule,
  "progress since this task was last seen"), computed on exact distances.

Measured (2 shared cores, CPU time): 1,024 queries against a full 20k-pair window take
~0.35 ms at d=2 and ~0.9 ms at d=3 through the grid (the batched kd-tree path: ~5.6 ms;
1,024 tasks reported over and over, every query tied with ~20 exact duplicates: ~0.3 ms,
was ~57 ms), ~7 ms at d=4 (kd-tree; repeated tasks now ~8 ms through a ball query for
the tied rows, were a window-wide GEMM) and ~40 ms at d=12 (GEMM); the
reference answers one query in ~0.1-0.2 ms but stalls for ~8 ms at 20k pairs (15-20 ms in
the original) whenever its main tree is rebuilt (every 500 pairs) and keeps every pair.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from openended.teachers.gmm import alp_kernels

__all__ = ["ReferenceALP", "WindowALP", "MIN_STORED"]

#: ALP is 0 until more than this many (task, return) pairs are stored (reference rule).
MIN_STORED = 5
_EPS = float(np.finfo(np.float64).eps)


def _as_batch(tasks: np.ndarray, returns: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(tasks, dtype=np.float64).reshape(-1, dim)
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if x.shape[0] != r.shape[0]:
        raise ValueError(f"ALP update: {x.shape[0]} tasks but {r.shape[0]} returns")
    return x, r


# ----------------------------------------------------------------------------- reference
class ReferenceALP:
    """REFERENCE: teachDeepRL ``EmpiricalALPComputer`` over a ``BufferedDataset``.

    The dataset's settings: ``buffer_size=500``, ``lateness=0``, ``max_size=alp_max_size``.

    * query (only when more than 5 pairs are stored): nearest task in the main tree and in
      the buffer tree; the main tree's answer wins unless the buffer's is strictly closer;
    * add: into the buffer while it holds fewer than ``buffer_size`` pairs; otherwise the
      buffer is merged into the main set (main tree invalidated), a new buffer starts with
      the pair, and the main set is cut to its newest ``max_size`` pairs (the buffer never is).
    """

    def __init__(self, dim: int, max_size: int | None = None, buffer_size: int = 500) -> None:
        self.dim = int(dim)
        self.max_size = max_size
        self.buffer_size = int(buffer_size)
        self._main_x: list[np.ndarray] = []
        self._main_r: list[float] = []
        self._buf_x: list[np.ndarray] = []
        self._buf_r: list[float] = []
        self._main_tree: Any = None
        self._buf_tree: Any = None

    def __len__(self) -> int:
        return len(self._main_x) + len(self._buf_x)

    @staticmethod
    def _tree(points: list[np.ndarray]) -> Any:
        from scipy.spatial import cKDTree

        # REFERENCE: the options teachDeepRL's Dataset._build_tree passes.
        return cKDTree(np.asarray(points, dtype=np.float64), compact_nodes=False, balanced_tree=False)

    def _nearest_return(self, task: np.ndarray) -> float:
        if self._main_x:
            if self._main_tree is None:
                self._main_tree = self._tree(self._main_x)
            dm, im = self._main_tree.query(task, k=1)
            if not self._buf_x:
                return self._main_r[int(im)]
        else:
            dm, im = None, None
        if self._buf_tree is None:  # REFERENCE: lateness=0 -> rebuilt after every add
            self._buf_tree = self._tree(self._buf_x)
        db, ib = self._buf_tree.query(task, k=1)
        if dm is not None and dm <= db:
            return self._main_r[int(im)]
        return self._buf_r[int(ib)]

    def _add(self, task: np.ndarray, r: float) -> None:
        if len(self._buf_x) < self.buffer_size:
            self._buf_x.append(task)
            self._buf_r.append(r)
        else:
            self._main_x.extend(self._buf_x)
            self._main_r.extend(self._buf_r)
            self._main_tree = None
            self._buf_x, self._buf_r = [task], [r]
            if self.max_size and len(self._main_x) > self.max_size:
                cut = len(self._main_x) - self.max_size
                del self._main_x[:cut]
                del self._main_r[:cut]
        self._buf_tree = None

    def update(self, tasks: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """ALP of each (task, return) in order, storing each pair after its query."""
        x, r = _as_batch(tasks, returns, self.dim)
        out = np.zeros(x.shape[0])
        for i in range(x.shape[0]):
            if len(self) > MIN_STORED:
                out[i] = abs(float(r[i]) - self._nearest_return(x[i]))
            self._add(x[i].copy(), float(r[i]))
        return out

    def state_dict(self) -> dict[str, Any]:
        """The main set and the buffer as arrays (the kd-trees are rebuilt from them)."""
        d = self.dim
        return {
            "main_x": np.asarray(self._main_x, dtype=np.float64).reshape(-1, d),
            "main_r": np.asarray(self._main_r, dtype=np.float64),
            "buf_x": np.asarray(self._buf_x, dtype=np.float64).reshape(-1, d),
            "buf_r": np.asarray(self._buf_r, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict`."""
        d = self.dim
        self._main_x = [row.copy() for row in np.asarray(state["main_x"], dtype=np.float64).reshape(-1, d)]
        self._main_r = [float(v) for v in np.asarray(state["main_r"]).reshape(-1)]
        self._buf_x = [row.copy() for row in np.asarray(state["buf_x"], dtype=np.float64).reshape(-1, d)]
        self._buf_r = [float(v) for v in np.asarray(state["buf_r"]).reshape(-1)]
        self._main_tree = self._buf_tree = None  # trees are a pure function of the data


# ---------------------------------------------------------------------------------- fast
class WindowALP:
    """SPEEDUP: exact 1-NN ALP over the last ``max_size`` pairs (FIFO), no index rebuilds.

    The window is a ring buffer of rows ``[x, |x|^2]``. In at most ``grid_max_dim``
    (<= 3) dimensions a uniform grid over it is kept up to date and the batch goes
    through `alp_kernels.grid_alp` row by row (O(1) store and evict, a few cells per
    query; the cell size follows the data and only affects speed). Otherwise (or for a
    batch with coordinates the grid cannot cell), the batched path: candidates for a block of queries
    come from one GEMM of ``[-2q, 1]`` against the window (``|x|^2 - 2 q.x``: the squared
    distance less the per-query constant) or, for batches of ``tree_min_batch`` or more
    in at most ``tree_max_dim`` dimensions, from a kd-tree built over the window for that
    call (k nearest, then the GEMM for any row where they are not conclusive). Every
    candidate within a rounding margin of the best is re-scored on exact coordinate
    differences, so the neighbour chosen does not depend on the batching or the path;
    ties go to the most recently stored pair. ``scale`` (optional) multiplies coordinates
    before distances, e.g. ``1 / (high - low)`` for the unit cube (a flagged deviation).
    ``max_size=None`` keeps everything (the ring then grows by doubling, an amortised copy).
    ``block``: queries per GEMM. SPEEDUP: 64 keeps the ``(block, window)`` distance matrix
    (10 MB at a 20k window) in the CPU cache for the scans that follow; at d = 12, 1,024
    queries take ~42 ms against ~66 ms with blocks of 256 (same results: blocks only
    chunk the work). ``grid_max_dim=0`` forces the batched path (tests compare the two).
    """

    #: Grid path: mean pairs per cell the cell size aims at (speed only).
    _grid_occupancy = 0.5

    def __init__(
        self,
        dim: int,
        max_size: int | None = 20_000,
        scale: np.ndarray | None = None,
        block: int = 64,
        tree_min_batch: int = 64,
        tree_max_dim: int = 6,
        chunk: int = 1024,
        grid_max_dim: int = alp_kernels.MAX_DIM,
    ) -> None:
        self.dim = int(dim)
        self.grid_max_dim = min(int(grid_max_dim), alp_kernels.MAX_DIM)
        self._grid: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # head, next, prev, bucket
        self._grid_h = 0.0  # cell size of the grid (0: not built)
        self._grid_box: tuple[np.ndarray, np.ndarray] | None = None  # bounds of every pair ever stored
        if self.dim <= self.grid_max_dim:
            alp_kernels.warm_up()
        self.tree_min_batch = int(tree_min_batch)
        self.tree_max_dim = int(tree_max_dim)
        self._tree: Any = None
        self._tree_k = 8
        self.max_size = None if max_size is None else int(max_size)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64).reshape(dim)
        self.block = int(block)
        self.chunk = int(chunk)
        self._alloc(self.max_size if self.max_size is not None else 1024)
        self._total = 0  # pairs ever stored (= the sequence number of the next one)
        self._n2max = 0.0  # largest squared norm ever stored (a safe bound for the margin)

    def _alloc(self, cap: int) -> None:
        self._xa = np.zeros((cap, self.dim + 1))
        self._r = np.zeros(cap)
        self._seq = np.full(cap, -1, dtype=np.int64)

    def __len__(self) -> int:
        return self._total if self.max_size is None else min(self._total, self.max_size)

    def update(self, tasks: np.ndarray, returns: np.ndarray, query_from: int = 0) -> np.ndarray:
        """ALP of each (task, return) in order, storing each pair after its query.

        ``query_from``: rows before it are stored without a query (their ALP is NaN).
        SPEEDUP: a caller that will only read the ALPs of a batch's last rows (ALP-GMM
        fits only the newest window of a batch) skips the nearest-neighbour search for the
        others; the pairs stored, and so every later ALP, are the same.

        SPEEDUP: a batch larger than ``chunk`` goes through in chunks (exact: a batch gives
        the one-by-one ALPs, so any split does too). Within one call every query is
        compared with all earlier rows of its batch, so one call costs O(batch^2): 100,000
        outcomes took ~190 s in one call, ~0.6 s of CPU in chunks of 1,024
        (`benchmarks/teacher_update_scaling.py`).
        """
        x, r = _as_batch(tasks, returns, self.dim)
        query_from = max(0, int(query_from))
        if self.dim <= self.grid_max_dim and x.shape[0]:
            out = self._update_grid(x, r, query_from)
            if out is not None:
                return out
        self._grid_h, self._grid_box = 0.0, None  # the batched path stores without linking: rebuild next time
        if x.shape[0] > self.chunk:
            return np.concatenate(
                [
                    self._update_chunk(x[s : s + self.chunk], r[s : s + self.chunk], query_from - s)
                    for s in range(0, x.shape[0], self.chunk)
                ]
            )
        return self._update_chunk(x, r, query_from)

    def _update_grid(self, x: np.ndarray, r: np.ndarray, query_from: int = 0) -> np.ndarray | None:
        """SPEEDUP: the batch one row at a time through the grid kernel (d <= 3).

        Same ALPs and same stored state as the batched path (`alp_kernels`). None when
        the grid cannot be used for this batch (non-finite or enormous coordinates): the
        batched path then takes it.
        """
        b, d = x.shape
        xs = x * self.scale if self.scale is not None else x
        lo, hi = xs.min(0), xs.max(0)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or max(-lo.min(), hi.max()) > 1e100:
            return None
        ba = np.empty((b, d + 1))
        ba[:, :-1] = xs
        ba[:, -1] = (xs * xs).sum(1)
        W = self.max_size
        if W is None and self._total + b > self._r.size:  # grow by doubling (amortised), as _store
            cap = self._r.size
            xa, rr, sq = self._xa, self._r, self._seq
            self._alloc(max(self._total + b, 2 * cap))
            self._xa[:cap], self._r[:cap], self._seq[:cap] = xa, rr, sq
            self._grid_h = 0.0
        prepared = self._grid_prepare(lo, hi, b)
        if prepared is None:
            return None
        h, tol = prepared
        assert self._grid is not None
        head, nxt, prv, bkt = self._grid
        out = np.empty(b)
        rr = np.ascontiguousarray(r, dtype=np.float64)
        alp_kernels.grid_alp(
            self._xa,
            self._r,
            self._seq,
            head,
            nxt,
            prv,
            bkt,
            ba,
            rr,
            self._total,
            -1 if W is None else W,
            h,
            tol,
            query_from,
            out,
        )
        self._total += b
        self._n2max = max(self._n2max, float(ba[:, -1].max()))
        return out

    def _grid_prepare(self, lo: np.ndarray, hi: np.ndarray, b: int) -> tuple[float, float] | None:
        """Cell size and rounding margin for this batch; (re)build the grid if it is off (None: no grid).

        The cell size only affects speed. It follows the bounding box of every pair
        stored so far and the window's fill; the grid is rebuilt (O(window)) when the
        ideal size moves by more than 2x, i.e. a handful of times while the window fills.
        """
        d = self.dim
        if self._grid_box is None:
            stored = self._seq >= 0
            if stored.any():
                lo = np.minimum(lo, self._xa[stored, :d].min(0))
                hi = np.maximum(hi, self._xa[stored, :d].max(0))
        else:
            lo, hi = np.minimum(lo, self._grid_box[0]), np.maximum(hi, self._grid_box[1])
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or max(-lo.min(), hi.max()) > 1e100:
            return None  # something stored by the batched path is not grid-friendly
        self._grid_box = (lo, hi)
        W = self.max_size
        n = self._total + b if W is None else min(self._total + b, W)
        ext = hi - lo
        e = float(ext.max()) if float(ext.max()) > 0.0 else 1.0
        ext = np.maximum(ext, 1e-3 * e)
        maxabs = float(max(-lo.min(), hi.max(), 0.0))
        h = max(float(self._grid_occupancy * np.prod(ext) / max(n, 1)) ** (1.0 / d), maxabs * 2.0**-40, 1e-150)
        cap = self._r.size
        size = 1 << max(4, int(2 * cap - 1).bit_length())  # power of two >= 2 * capacity
        g = self._grid
        if g is None or g[0].size != size or g[1].size != cap or not (0.5 * self._grid_h <= h <= 2.0 * self._grid_h):
            if g is None or g[0].size != size or g[1].size != cap:
                links = [np.empty(cap, dtype=np.int64) for _ in range(3)]
                g = (np.full(size, -1, dtype=np.int64), links[0], links[1], links[2])
                self._grid = g
            alp_kernels.grid_build(self._xa, self._seq, g[0], g[1], g[2], g[3], h)
            self._grid_h = h
        h = self._grid_h
        return h, 64.0 * _EPS * maxabs + 1e-12 * h

    def _update_chunk(self, x: np.ndarray, r: np.ndarray, query_from: int = 0) -> np.ndarray:
        b = x.shape[0]
        out = np.zeros(b)
        out[: max(0, query_from)] = np.nan  # stored without a query
        if b == 0:
            return out
        xs = x * self.scale if self.scale is not None else x
        ba = np.empty((b, self.dim + 1))
        ba[:, :-1] = xs
        ba[:, -1] = (xs * xs).sum(1)
        seqs = self._total + np.arange(b)
        visible = seqs if self.max_size is None else np.minimum(seqs, self.max_size)
        first = int(np.searchsorted(visible, MIN_STORED, side="right"))  # first row with an ALP
        first = max(first, query_from)
        filled = min(self._total, self._r.size)
        self._tree = None
        if b - first >= self.tree_min_batch and self.dim <= self.tree_max_dim and filled > 4 * self._tree_k:
            from scipy.spatial import cKDTree

            # SPEEDUP: a big batch in few dimensions: one kd-tree over the window, built
            # for this call only (cost proportional to the batch's work; no persistent
            # index, so nothing to rebuild later).
            self._tree = cKDTree(self._xa[:filled, :-1], balanced_tree=False, compact_nodes=False)  # 2x faster build
        for s in range(first, b, self.block):
            e = min(b, s + self.block)
            in_hist, idx = self._nearest(ba[s:e], seqs[s:e], ba[:e], seqs[:e])
            cap = self._r.size
            nn_r = np.where(in_hist, self._r[np.minimum(idx, cap - 1)], r[np.minimum(idx, b - 1)])
            out[s:e] = np.abs(r[s:e] - nn_r)
        self._tree = None
        self._store(ba, r, seqs)
        return out

    def _nearest(
        self, qa_rows: np.ndarray, qseq: np.ndarray, ba: np.ndarray, bseq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest visible neighbour of each query row, exactly; ties -> newest.

        Returns ``(in_history, index)``, the index being a ring slot (``in_history``) or a
        batch row.

        Candidates come from the history (GEMM brute force, or a kd-tree for big batches
        in low dimensions) and from the earlier rows of the batch (GEMM); every candidate
        within rounding distance of its set's best is re-scored exactly.
        """
        d = self.dim
        q = qa_rows[:, :d]
        filled = min(self._total, self._r.size)  # slots [0, filled) hold pairs (the ring fills in order)
        rows_h, cand_h = self._history_candidates(qa_rows, qseq, filled)
        rows_b, cand_b = self._gemm_candidates(qa_rows, ba, self._batch_visible(qseq, bseq))
        qi = np.concatenate([rows_h, rows_b])
        in_hist = np.concatenate([np.ones(rows_h.size, dtype=bool), np.zeros(rows_b.size, dtype=bool)])
        j = np.concatenate([cand_h, cand_b])
        pts = np.concatenate([self._xa[cand_h, :d], ba[cand_b, :d]])
        pseq = np.concatenate([self._seq[cand_h], bseq[cand_b]])
        exact = np.zeros(qi.size)
        for c in range(d):  # exact and batch-independent per pair
            diff = q[qi, c] - pts[:, c]
            exact += diff * diff
        order = np.lexsort((-pseq, exact, qi))
        qs = qi[order]
        head = np.ones(qs.size, dtype=bool)
        head[1:] = qs[1:] != qs[:-1]
        return in_hist[order][head], j[order][head]

    def _batch_visible(self, qseq: np.ndarray, bseq: np.ndarray) -> np.ndarray:
        vis = bseq[None, :] < qseq[:, None]
        if self.max_size is not None:
            vis &= bseq[None, :] >= (qseq - self.max_size)[:, None]
        return vis

    def _evicted_mask(self, qseq: np.ndarray, filled: int) -> np.ndarray | None:
        """``(bq, filled)`` True where a history slot is outside a query's window.

        Batch row i no longer sees the i oldest pairs. None if nothing is evicted.
        """
        W, total = self.max_size, self._total
        if W is None or int(qseq[-1]) - W <= max(0, total - W):
            return None
        return self._seq[None, :filled] < (qseq - W)[:, None]

    def _gemm_candidates(
        self, qa_rows: np.ndarray, pa: np.ndarray, visible: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, point) pairs within rounding distance of each row's best, by one GEMM."""
        d = self.dim
        if pa.shape[0] == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        qa = np.empty_like(qa_rows)
        qa[:, :d] = -2.0 * qa_rows[:, :d]
        qa[:, d] = 1.0
        a = qa @ pa.T  # (bq, m): |p|^2 - 2 q.p, the squared distance less |q|^2
        if visible is not None:
            a[~visible] = np.inf
        jb = a.argmin(1)
        best = a[np.arange(a.shape[0]), jb]
        # the GEMM form rounds by at most a few (d+2) eps (|q|^2 + |p|^2): keep all that close
        margin = 16.0 * (d + 4) * _EPS * (qa_rows[:, d] + max(self._n2max, float(pa[:, d].max()))) + 1e-300
        close = a <= (best + margin)[:, None]
        n_close = np.where(np.isfinite(best), close.sum(1), 0)  # a row may see no point at all
        one = np.flatnonzero(n_close == 1)
        many = np.flatnonzero(n_close > 1)  # ties or near-ties: all of them (rare)
        rows, cols = [one], [jb[one]]
        if many.size:
            r2, c2 = np.nonzero(close[many])
            rows.append(many[r2])
            cols.append(c2)
        return np.concatenate(rows), np.concatenate(cols)

    def _history_candidates(self, qa_rows: np.ndarray, qseq: np.ndarray, filled: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.dim
        bq = qa_rows.shape[0]
        if filled == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        if self._tree is None:
            evicted = self._evicted_mask(qseq, filled)
            return self._gemm_candidates(qa_rows, self._xa[:filled], None if evicted is None else ~evicted)
        # kd-tree over the history (built once per update call): k nearest, then the
        # visible ones within rounding of the best visible; where the k-th still ties,
        # a ball query around the best visible distance; where all k are evicted, the GEMM.
        k = min(self._tree_k, filled)
        dist, idx = self._tree.query(qa_rows[:, :d], k=k)
        dist, idx = dist.reshape(bq, k), idx.reshape(bq, k)
        W = self.max_size
        vis = np.ones((bq, k), dtype=bool) if W is None else self._seq[idx] >= (qseq - W)[:, None]
        dv = np.where(vis, dist, np.inf)
        best = dv.min(1)
        near = dist <= best[:, None] * (1.0 + 1e-9)
        close = vis & near
        # not conclusive: no visible point among the k, or the k-th is still as near as
        # the best (visible or not), so equally near points may lie beyond the k returned
        unsure = ~np.isfinite(best) | (near[:, -1] & (k < filled))
        rows, cols = np.nonzero(close & ~unsure[:, None])
        out_r, out_c = [rows], [idx[rows, cols]]
        u = np.flatnonzero(unsure)
        tie = u[np.isfinite(best[u])]
        if tie.size:
            # Ties beyond the k returned (typically exact duplicates, all at distance 0:
            # tasks reported again and again): every point as near as the best visible
            # one, by a ball query. SPEEDUP: these rows used to fall back to the GEMM over
            # the whole window (~55 ms per 1,024 repeated tasks).
            balls = self._tree.query_ball_point(qa_rows[tie, :d], r=best[tie] * (1.0 + 1e-9))
            lens = np.fromiter((len(p) for p in balls), dtype=np.intp, count=tie.size)
            pts = np.fromiter(itertools.chain.from_iterable(balls), dtype=np.intp, count=int(lens.sum()))
            qrow = np.repeat(tie, lens)
            if W is not None:
                keep = self._seq[pts] >= qseq[qrow] - W
                qrow, pts = qrow[keep], pts[keep]
            out_r.append(qrow)
            out_c.append(pts)
        u = u[~np.isfinite(best[u])]  # no visible point among the k: the GEMM
        if u.size:
            evicted = self._evicted_mask(qseq[u], filled)
            r2, c2 = self._gemm_candidates(qa_rows[u], self._xa[:filled], None if evicted is None else ~evicted)
            out_r.append(u[r2])
            out_c.append(c2)
        return np.concatenate(out_r), np.concatenate(out_c)

    def _store(self, ba: np.ndarray, r: np.ndarray, seqs: np.ndarray) -> None:
        W = self.max_size
        if W is None:
            need = self._total + seqs.size
            cap = self._r.size
            if need > cap:  # grow by doubling (amortised)
                xa, rr, sq = self._xa, self._r, self._seq
                self._alloc(max(need, 2 * cap))
                self._xa[:cap], self._r[:cap], self._seq[:cap] = xa, rr, sq
            idx = seqs
        else:
            if seqs.size > W:  # only the newest W rows survive anyway
                ba, r, seqs = ba[-W:], r[-W:], seqs[-W:]
            idx = seqs % W
        self._xa[idx] = ba
        self._r[idx] = r
        self._seq[idx] = seqs
        self._total += int(seqs[-1] - self._total + 1) if seqs.size else 0
        self._n2max = max(self._n2max, float(ba[:, -1].max(initial=0.0)))

    def state_dict(self) -> dict[str, Any]:
        """The stored pairs oldest first, with their sequence numbers and the total seen."""
        filled = self._seq >= 0
        order = np.argsort(self._seq[filled], kind="stable")
        return {
            "x": self._xa[filled][order, :-1],
            "r": self._r[filled][order],
            "seq": self._seq[filled][order],
            "total": int(self._total),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict` (the ring is reallocated for the window size)."""
        x = np.asarray(state["x"], dtype=np.float64).reshape(-1, self.dim)
        seq = np.asarray(state["seq"], dtype=np.int64).reshape(-1)
        total = int(state["total"])
        self._alloc(self.max_size if self.max_size is not None else max(1024, total))
        idx = seq if self.max_size is None else seq % self.max_size
        self._xa[idx, :-1] = x
        self._xa[idx, -1] = (x * x).sum(1)
        self._r[idx] = np.asarray(state["r"], dtype=np.float64).reshape(-1)
        self._seq[idx] = seq
        self._total = total
        self._n2max = float(self._xa[idx, -1].max(initial=0.0))
        self._grid, self._grid_h, self._grid_box = None, 0.0, None  # rebuilt from the ring on the next update
