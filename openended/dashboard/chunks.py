"""Bounded time chunks: what the dashboard keeps of millions of logged tasks and outcomes.

Why chunks: the pages ask "where were tasks sampled between then and then" and "how did
returns move", never for single events. Events are counted into consecutive chunks of
``cap`` rows; when there are `MAX_CHUNKS` closed chunks, neighbours merge pairwise and
``cap`` doubles. So memory is bounded whatever the log's length, a time slider always has
up to 64 positions, and a query sums at most 64 small arrays.

Contents:
    Chunks         -- the chunking (rows in order, with wall-clock times), payload-agnostic.
    BoxSampling    -- Box tasks: per chunk a 2-D histogram per pair of dimensions, marginals,
                      a thinned sample of points and counts by origin.
    TableSampling  -- Discrete/text tasks: per chunk counts per task id, and labels.
    OutcomeSeries  -- outcomes: per chunk count, return sum, successes, per student.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["Chunks", "BoxSampling", "TableSampling", "OutcomeSeries", "MAX_CHUNKS"]

MAX_CHUNKS = 64
#: Histogram bins per dimension (fewer when there are many dimension pairs).
BINS = 40
#: Dimensions whose pairs are histogrammed (a slider over 16 dims would not be read anyway).
MAX_PAIR_DIMS = 8
#: Points each Box chunk keeps for scatter plots.
POINTS_PER_CHUNK = 250
#: Distinct task labels remembered (discrete/text spaces).
MAX_LABELS = 100_000

P = TypeVar("P")


class Chunk(Generic[P]):
    """Rows ``[start, start + n)`` of a stream, seen between times ``t0`` and ``t1``."""

    __slots__ = ("start", "n", "t0", "t1", "payload")

    def __init__(self, start: int, payload: P) -> None:
        self.start, self.n = start, 0
        self.t0: float | None = None
        self.t1: float | None = None
        self.payload = payload

    def meta(self) -> dict[str, Any]:
        """Position and time span, for a slider's labels."""
        return {"start": self.start, "n": self.n, "t0": self.t0, "t1": self.t1}


class Chunks(Generic[P]):
    """Rows in order, cut into chunks of ``cap`` rows; merged pairwise past `MAX_CHUNKS`.

    Subclasses say what a chunk holds: ``_new`` (empty payload), ``_add`` (rows ``a:b`` of
    a batch into a payload), ``_merge`` (two payloads into one), optionally ``_seal``.
    """

    def __init__(self, cap: int) -> None:
        self.cap = int(cap)
        self.closed: list[Chunk[P]] = []
        self.open: Chunk[P] = Chunk(0, self._new())
        self.total = 0

    # -------------------------------------------------------------- override points
    def _new(self) -> P:  # pragma: no cover - abstract
        raise NotImplementedError

    def _add(self, payload: P, batch: Any, a: int, b: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _merge(self, a: P, b: P) -> P:  # pragma: no cover - abstract
        raise NotImplementedError

    def _seal(self, payload: P) -> None:
        """Finish a payload before it is read or closed (flush buffers)."""

    # ------------------------------------------------------------------- writing
    def add_batch(
        self, batch: Any, n: int, t0: float | None, t1: float | None, times: np.ndarray | None = None
    ) -> None:
        """Add ``n`` rows seen between ``t0`` and ``t1`` (split across chunks as needed).

        ``times``: each row's time instead (rows of many events added at once).
        """
        a = 0
        while a < n:
            ch = self.open
            b = min(n, a + self.cap - ch.n)
            self._add(ch.payload, batch, a, b)
            ch.n += b - a
            if times is not None:
                t0, t1 = float(times[a:b].min()), float(times[a:b].max())
            if t0 is not None:
                ch.t0 = t0 if ch.t0 is None else min(ch.t0, t0)
            if t1 is not None:
                ch.t1 = t1 if ch.t1 is None else max(ch.t1, t1)
            self.total += b - a
            a = b
            if ch.n >= self.cap:
                self._close()

    def _close(self) -> None:
        self._seal(self.open.payload)
        self.closed.append(self.open)
        self.open = Chunk(self.total, self._new())
        if len(self.closed) >= MAX_CHUNKS:
            merged = []
            for i in range(0, len(self.closed) - 1, 2):
                x, y = self.closed[i], self.closed[i + 1]
                m = Chunk(x.start, self._merge(x.payload, y.payload))
                m.n, m.t0, m.t1 = x.n + y.n, _min(x.t0, y.t0), _max(x.t1, y.t1)
                merged.append(m)
            if len(self.closed) % 2:
                merged.append(self.closed[-1])
            self.closed = merged
            self.cap *= 2

    # ------------------------------------------------------------------- reading
    def chunks(self) -> list[Chunk[P]]:
        """Closed chunks and the open one (if it has rows), in order."""
        if self.open.n:
            self._seal(self.open.payload)
            return [*self.closed, self.open]
        return list(self.closed)

    def meta(self) -> list[dict[str, Any]]:
        """Every chunk's position and time span."""
        return [c.meta() for c in self.chunks()]

    def window(self, lo: int | None, hi: int | None) -> list[Chunk[P]]:
        """Chunks ``lo..hi`` inclusive (clamped; ``None`` = first / last)."""
        cs = self.chunks()
        if not cs:
            return []
        last = len(cs) - 1
        lo_i = 0 if lo is None else max(0, min(int(lo), last))
        hi_i = last if hi is None else max(lo_i, min(int(hi), last))
        return cs[lo_i : hi_i + 1]


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


# ------------------------------------------------------------------------ Box spaces
class _BoxPayload:
    __slots__ = ("pairs", "marg", "pending", "n_pending", "points", "origins", "seen")

    def __init__(self, n_pairs: int, dims: int, bins: int) -> None:
        self.pairs = np.zeros((n_pairs, bins * bins), dtype=np.int64)
        self.marg = np.zeros((dims, bins), dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = []  # rows not yet counted
        self.n_pending = 0
        self.points: list[np.ndarray] = []
        self.origins: Counter[str] = Counter()
        self.seen = 0  # rows added (thinning keeps every stride-th of them)


class BoxSampling(Chunks[_BoxPayload]):
    """Where Box tasks were sampled: histograms per dimension pair, marginals, points.

    Batches are ``(params (n, d), origin_codes, origin_names)``; binning is vectorised and
    histograms are built per chunk from buffered bins (one ``bincount`` per pair per
    flush, not per batch).
    """

    def __init__(self, low: list[float], high: list[float], names: list[str], cap: int = 256) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.names = list(names)
        self.dims = min(len(self.low), MAX_PAIR_DIMS)
        self.pair_index = list(combinations(range(self.dims), 2))
        self.bins = BINS if len(self.pair_index) <= 6 else 24
        span = self.high[: self.dims] - self.low[: self.dims]
        self._scale = self.bins / np.where(span > 0, span, 1.0)
        super().__init__(cap)

    def _new(self) -> _BoxPayload:
        return _BoxPayload(len(self.pair_index), self.dims, self.bins)

    def _add(self, payload: _BoxPayload, batch: Any, a: int, b: int) -> None:
        params, codes, names = batch
        payload.pending.append((params[a:b, : self.dims], codes[a:b], tuple(names)))
        payload.n_pending += b - a
        if payload.n_pending >= 65_536:
            self._seal(payload)

    def _seal(self, payload: _BoxPayload) -> None:
        """Count buffered rows: vectorised over up to 64k rows instead of per batch."""
        if not payload.pending:
            return
        x = np.concatenate([p[0] for p in payload.pending])
        for params, codes, names in payload.pending:
            if len(names) == 1:
                payload.origins[names[0]] += len(params)
            else:
                for code, count in zip(*np.unique(codes, return_counts=True)):
                    payload.origins[names[int(code)]] += int(count)
        payload.pending, payload.n_pending = [], 0
        stride = max(1, self.cap // POINTS_PER_CHUNK)
        first = (-payload.seen) % stride  # keeps rows whose index in the chunk is a multiple of stride
        payload.seen += len(x)
        payload.points.append(x[first::stride].astype(np.float32))
        binned = ((x - self.low[: self.dims]) * self._scale).astype(np.int64)
        np.clip(binned, 0, self.bins - 1, out=binned)
        g = self.bins
        for k, (i, j) in enumerate(self.pair_index):
            payload.pairs[k] += np.bincount(binned[:, i] * g + binned[:, j], minlength=g * g)
        for i in range(self.dims):
            payload.marg[i] += np.bincount(binned[:, i], minlength=g)

    def _merge(self, a: _BoxPayload, b: _BoxPayload) -> _BoxPayload:
        self._seal(a)
        self._seal(b)
        a.pairs += b.pairs
        a.marg += b.marg
        pts = np.concatenate(a.points + b.points) if (a.points or b.points) else np.zeros((0, self.dims), np.float32)
        a.points = [pts[:: max(1, len(pts) // POINTS_PER_CHUNK)]]
        a.origins.update(b.origins)
        return a

    def edges(self, dim: int) -> list[float]:
        """Bin edges of one dimension."""
        return np.linspace(self.low[dim], self.high[dim], self.bins + 1).tolist()

    def histogram(self, i: int, j: int, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        """``(bins_i, bins_j)`` counts of dims ``(i, j)`` over chunks ``lo..hi``."""
        if i == j or not (0 <= i < self.dims and 0 <= j < self.dims):
            raise ValueError(f"dims must be two different indices below {self.dims}, got {i}, {j}")
        k = self.pair_index.index((min(i, j), max(i, j)))
        total = np.zeros(self.bins * self.bins, dtype=np.int64)
        for c in self.window(lo, hi):
            total += c.payload.pairs[k]
        h = total.reshape(self.bins, self.bins)
        return h if i < j else h.T

    def marginal_over_time(self, dim: int) -> np.ndarray:
        """``(chunks, bins)`` counts of one dimension, chunk by chunk."""
        cs = self.chunks()
        if not cs:
            return np.zeros((0, self.bins), dtype=np.int64)
        return np.stack([c.payload.marg[dim] for c in cs])

    def points(self, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        """The thinned sample of tasks in chunks ``lo..hi`` (at most ~250 per chunk)."""
        pts = [p for c in self.window(lo, hi) for p in c.payload.points]
        return np.concatenate(pts) if pts else np.zeros((0, self.dims), np.float32)

    def origins(self, lo: int | None = None, hi: int | None = None) -> dict[str, int]:
        """Tasks per origin (``uniform`` bootstrap draws vs the teacher's own) in chunks ``lo..hi``."""
        total: Counter[str] = Counter()
        for c in self.window(lo, hi):
            total.update(c.payload.origins)
        return dict(total)


# ------------------------------------------------------------ Discrete/text spaces
class TableSampling(Chunks["Counter[Any]"]):
    """How often each Discrete/text task was sampled, chunk by chunk.

    Batches are ``(ids, labels)``: ``ids`` a ``uint64`` array or a list of strings;
    ``labels`` ``{id: label}`` for contents shipped in that batch.
    """

    def __init__(self, cap: int = 256) -> None:
        self.labels: dict[Any, str] = {}
        super().__init__(cap)

    def _new(self) -> Counter[Any]:
        return Counter()

    def _add(self, payload: Counter[Any], batch: Any, a: int, b: int) -> None:
        ids, labels = batch
        for k, v in labels.items():
            if len(self.labels) < MAX_LABELS or k in self.labels:
                self.labels[k] = v
        part = ids[a:b]
        if isinstance(part, np.ndarray):
            keys, counts = np.unique(part, return_counts=True)
            payload.update(dict(zip(keys.tolist(), counts.tolist())))
        else:
            payload.update(part)

    def _merge(self, a: Counter[Any], b: Counter[Any]) -> Counter[Any]:
        a.update(b)
        return a

    def label(self, key: Any) -> str:
        """The task's label (its text or value), or its id when never shipped."""
        lab = self.labels.get(key)
        if lab is not None:
            return lab
        return f"{key:016x}" if isinstance(key, int) else str(key)

    def counts(self, lo: int | None = None, hi: int | None = None) -> Counter[Any]:
        """Draws per task id in chunks ``lo..hi``."""
        total: Counter[Any] = Counter()
        for c in self.window(lo, hi):
            total.update(c.payload)
        return total

    @staticmethod
    def task_id(key: Any) -> str:
        """A counted key as a task id string."""
        return f"{key:016x}" if isinstance(key, int) else str(key)


# ------------------------------------------------------------------------- outcomes
class _OutcomePayload:
    __slots__ = ("n", "ret_sum", "success_known", "successes", "students", "pending")

    def __init__(self) -> None:
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]] = []
        self.n = 0
        self.ret_sum = 0.0
        self.success_known = 0
        self.successes = 0
        self.students: dict[str, list[float]] = {}  # name -> [n, return sum, success known, successes]


class OutcomeSeries(Chunks[_OutcomePayload]):
    """Accepted outcomes, chunk by chunk: count, mean return, success rate, per student.

    Batches are ``(returns, success (-1 unknown / 0 / 1), student_codes, student_names)``.
    """

    def __init__(self, cap: int = 128) -> None:
        super().__init__(cap)

    def _new(self) -> _OutcomePayload:
        return _OutcomePayload()

    def _add(self, payload: _OutcomePayload, batch: Any, a: int, b: int) -> None:
        returns, success, codes, names = batch
        payload.pending.append((returns[a:b], success[a:b], codes[a:b], tuple(names)))
        if len(payload.pending) >= 1024:
            self._seal(payload)

    def _seal(self, payload: _OutcomePayload) -> None:
        """Fold buffered batches in: one pass per distinct student-name tuple, not per batch."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for k, (_, _, _, names) in enumerate(payload.pending):
            groups.setdefault(names, []).append(k)
        for names, ks in groups.items():
            parts = [payload.pending[k] for k in ks]
            self._fold(
                payload,
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
                names,
            )
        payload.pending = []

    @staticmethod
    def _fold(payload: _OutcomePayload, r: np.ndarray, s: np.ndarray, codes: np.ndarray, names: tuple) -> None:
        payload.n += len(r)
        payload.ret_sum += float(r.sum())
        known = s >= 0
        payload.success_known += int(known.sum())
        payload.successes += int((s == 1).sum())
        if len(names) == 1:
            groups: list[tuple[str, Any]] = [(names[0], slice(None))]
        else:
            groups = [(names[int(k)], codes == k) for k in np.unique(codes).tolist()]
        for name, sel in groups:
            acc = payload.students.setdefault(name, [0, 0.0, 0, 0])
            rs, ss = r[sel], s[sel]
            acc[0] += len(rs)
            acc[1] += float(rs.sum())
            acc[2] += int((ss >= 0).sum())
            acc[3] += int((ss == 1).sum())

    def _merge(self, a: _OutcomePayload, b: _OutcomePayload) -> _OutcomePayload:
        self._seal(a)
        self._seal(b)
        a.n += b.n
        a.ret_sum += b.ret_sum
        a.success_known += b.success_known
        a.successes += b.successes
        for name, acc in b.students.items():
            mine = a.students.setdefault(name, [0, 0.0, 0, 0])
            for i in range(4):
                mine[i] += acc[i]
        return a

    def series(self) -> dict[str, Any]:
        """Per chunk: outcomes so far, mean return, success rate, outcomes/s; per student too."""
        rows: list[dict[str, Any]] = []
        students: dict[str, list[dict[str, Any]]] = {}
        prev_t: float | None = None
        for c in self.chunks():
            p = c.payload
            end = c.start + c.n
            dt = (c.t1 - (prev_t if prev_t is not None else c.t0)) if c.t1 is not None and c.t0 is not None else 0
            rows.append(
                {
                    "outcomes": end,
                    "t": c.t1,
                    "mean_return": p.ret_sum / p.n if p.n else None,
                    "success_rate": p.successes / p.success_known if p.success_known else None,
                    "outcomes_per_s": c.n / dt if dt and dt > 0 else None,
                }
            )
            for name, (n, rsum, known, succ) in p.students.items():
                students.setdefault(name, []).append(
                    {
                        "outcomes": end,
                        "mean_return": rsum / n if n else None,
                        "success_rate": succ / known if known else None,
                    }
                )
            prev_t = c.t1
        return {"rows": rows, "students": students}
