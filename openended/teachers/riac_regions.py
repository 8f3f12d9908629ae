"""RIAC's region tree: axis-aligned regions of a Box, their pairs and their ALP.

Each region keeps its (reward, task) pairs and their absolute learning progress (ALP).

Contents:
    RegionPairs   -- one region's bounded FIFO of pairs, a contiguous numpy window.
    region_alp    -- REFERENCE ``compute_alp``: |mean(first half) - mean(second half)|.
    alps_of_masks -- SPEEDUP: `region_alp` of many candidate subsets at once (split search).
    RegionTree    -- the nodes (bounds, ALP, children, split rule, pairs) in creation order,
                     with the operations the teacher needs: add a split's children, drop a
                     leaf's oldest pairs, pick regions in proportion to ALP, find a region's
                     worst task, state and stats.

What stays in `openended.teachers.riac`: the algorithm that decides -- where to split
(random attempts, reference and vectorised), what to sample, the update loop. The tree
holds no RNG and makes no random choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RegionPairs", "region_alp", "alps_of_masks", "RegionTree"]


class RegionPairs:
    """The (reward, task) pairs of one region, oldest first.

    SPEEDUP: the reference's two deques become one contiguous buffer of at least twice the
    capacity; appends are O(1) amortised and the live window ``[lo, hi)`` is always a
    contiguous view, so ALPs, argmins and splits are numpy slices.
    """

    __slots__ = ("r", "x", "lo", "hi", "maxlen")

    def __init__(self, dim: int, maxlen: int | None, r: np.ndarray | None = None, x: np.ndarray | None = None) -> None:
        n = 0 if r is None else len(r)
        cap = 2 * max(maxlen or 0, n, 8)
        self.r = np.empty(cap, dtype=np.float64)
        self.x = np.empty((cap, dim), dtype=np.float64)
        if n:
            self.r[:n] = r
            self.x[:n] = x
        self.lo, self.hi = 0, n
        self.maxlen = maxlen

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def rewards(self) -> np.ndarray:
        """The live rewards, oldest first (a view: valid until the next append)."""
        return self.r[self.lo : self.hi]

    @property
    def tasks(self) -> np.ndarray:
        """The live tasks, ``(len, dim)``, aligned with `rewards` (a view)."""
        return self.x[self.lo : self.hi]

    def append(self, reward: float, task: np.ndarray) -> None:
        """Add the newest pair; over ``maxlen`` the oldest drops out, as from a bounded deque."""
        if self.hi == len(self.r):
            self._make_room()
        self.r[self.hi] = reward
        self.x[self.hi] = task
        self.hi += 1
        if self.maxlen is not None and self.hi - self.lo > self.maxlen:
            self.lo += 1  # REFERENCE: deque(maxlen) drops the oldest pair

    def drop_oldest(self, k: int) -> None:
        """Forget the ``k`` oldest pairs (all of them if there are fewer)."""
        self.lo = min(self.hi, self.lo + k)

    def _make_room(self) -> None:
        n = self.hi - self.lo
        if 2 * n > len(self.r):  # only an unbounded buffer gets here: grow
            r = np.empty(2 * len(self.r), dtype=np.float64)
            x = np.empty((2 * len(self.r), self.x.shape[1]), dtype=np.float64)
            r[:n], x[:n] = self.rewards, self.tasks
            self.r, self.x = r, x
        else:  # slide the live window to the front (numpy copies overlapping slices safely)
            self.r[:n] = self.r[self.lo : self.hi]
            self.x[:n] = self.x[self.lo : self.hi]
        self.lo, self.hi = 0, n


_sum = np.add.reduce


def region_alp(rewards: np.ndarray, window: int) -> float:
    """REFERENCE ``compute_alp``: |mean(first half) - mean(second half)| of the last min(n, window)."""
    n = len(rewards)
    if n <= 2:
        return 0.0
    w = n if n < window else window
    half = w // 2
    return abs(float(_sum(rewards[n - w : n - half])) / (w - half) - float(_sum(rewards[n - half :])) / half)


def alps_of_masks(rewards: np.ndarray, masks: np.ndarray, window: int) -> np.ndarray:
    """SPEEDUP: `region_alp` of ``rewards[masks[:, j]]`` for every column j at once.

    A pair is in the second half when its rank counted from the newest pair of its
    column is <= half, in the first half when it is in (half, w].
    """
    counts = masks.sum(axis=0)
    w = np.minimum(counts, window)
    half = w // 2
    rank = np.cumsum(masks[::-1], axis=0)[::-1]  # 1 = newest pair of that column
    second = masks & (rank <= half)
    first = masks & (rank > half) & (rank <= w)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = (rewards @ first) / (w - half)
        m2 = (rewards @ second) / half
    return np.where(counts > 2, np.abs(m1 - m2), 0.0)


class RegionTree:
    """The regions, numbered in creation order; node 0 is the whole space.

    Creation order is the reference's treelib ``all_nodes()`` order.
    Routing fields (``left``, ``right``, ``split_dim``, ``thr``) are lists: the teacher's
    per-pair loop reads them as scalars, and list indexing beats numpy's there. Bounds and
    ALPs are arrays (vectorised sampling). ``maxlen`` bounds each region's FIFO (``None``
    once REFERENCE quirk 3 unbounded it, per region).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, maxlen: int, leaves_only: bool = False) -> None:
        self.dim = int(np.asarray(low).size)
        self.maxlen = int(maxlen)
        self.leaves_only = bool(leaves_only)
        self.low = np.asarray(low, dtype=np.float64).copy()[None, :]
        self.high = np.asarray(high, dtype=np.float64).copy()[None, :]
        self.alp = np.zeros(1)
        self.parent: list[int] = [-1]
        self.left: list[int] = [-1]
        self.right: list[int] = [-1]
        self.split_dim: list[int] = [-1]
        self.thr: list[float] = [0.0]
        self.pairs: list[RegionPairs] = [RegionPairs(self.dim, self.maxlen)]
        self.n_splits = 0
        self.n_discards = 0
        self.region_ids = np.zeros(1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.alp)

    def _refresh_region_ids(self) -> None:
        """Node ids sampling may pick: all nodes (reference default) or leaves only."""
        ids = np.arange(len(self.alp))
        self.region_ids = ids[np.asarray(self.left) < 0] if self.leaves_only else ids

    def split(self, node: int, dim: int, thr: float, mask: np.ndarray, child_alps: tuple[float, float]) -> None:
        """Give leaf ``node`` two children along ``dim`` at ``thr``.

        The lower child gets the pairs where ``mask`` is True, the upper one the others;
        ``child_alps`` are their ALPs.
        """
        X, R = self.pairs[node].tasks, self.pairs[node].rewards
        lo_child, hi_child = len(self.alp), len(self.alp) + 1
        low, high = self.low[node], self.high[node]
        low2, high1 = low.copy(), high.copy()
        high1[dim] = thr
        low2[dim] = thr
        self.low = np.vstack([self.low, low, low2])
        self.high = np.vstack([self.high, high1, high])
        self.alp = np.append(self.alp, child_alps)
        for m in (mask, ~mask):
            self.parent.append(node)
            self.left.append(-1)
            self.right.append(-1)
            self.split_dim.append(-1)
            self.thr.append(0.0)
            self.pairs.append(RegionPairs(self.dim, self.maxlen, R[m], X[m]))
        self.left[node], self.right[node] = lo_child, hi_child
        self.split_dim[node], self.thr[node] = dim, thr
        self.n_splits += 1
        self._refresh_region_ids()

    def discard_oldest(self, node: int, k: int, unbound: bool) -> None:
        """No valid split: drop ``node``'s ``k`` oldest pairs.

        ``unbound`` reproduces REFERENCE quirk 3 (the rebuilt deque has no maxlen).
        """
        self.pairs[node].drop_oldest(k)
        if unbound:
            self.pairs[node].maxlen = None
        self.n_discards += 1

    def pick(self, u: np.ndarray) -> np.ndarray:
        """Node ids picked in proportion to ALP (uniformly when every ALP is 0), one per uniform ``u``.

        REFERENCE ``proportional_choice(regions_alp, eps=0)``.
        """
        ids = self.region_ids
        cum = np.cumsum(self.alp[ids])
        total = cum[-1]
        if total <= 0.0:
            k = np.minimum((u * len(ids)).astype(np.int64), len(ids) - 1)
        else:
            k = np.minimum(np.searchsorted(cum, u * total, side="right"), len(ids) - 1)
        return ids[k]

    def worst_task(self, node: int) -> np.ndarray | None:
        """REFERENCE: the region's lowest-reward task (the first, i.e. oldest, of equal minima)."""
        pairs = self.pairs[node]
        if len(pairs) == 0:
            return None
        return pairs.tasks[int(np.argmin(pairs.rewards))]

    def state_dict(self) -> dict[str, Any]:
        """Every node's bounds, routing, ALP and pairs (arrays; numpy allowed in teacher state)."""
        return {
            "low": self.low.copy(),
            "high": self.high.copy(),
            "parent": np.asarray(self.parent, dtype=np.int64),
            "left": np.asarray(self.left, dtype=np.int64),
            "right": np.asarray(self.right, dtype=np.int64),
            "dim": np.asarray(self.split_dim, dtype=np.int64),
            "thr": np.asarray(self.thr, dtype=np.float64),
            "alp": self.alp.copy(),
            "pair_rewards": [p.rewards.copy() for p in self.pairs],
            "pair_tasks": [p.tasks.copy() for p in self.pairs],
            "bounded": [p.maxlen is not None for p in self.pairs],
            "n_splits": self.n_splits,
            "n_discards": self.n_discards,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict` (the tree's ``dim`` and ``maxlen`` come from the constructor)."""
        d = self.dim
        self.low = np.asarray(state["low"], dtype=np.float64).reshape(-1, d).copy()
        self.high = np.asarray(state["high"], dtype=np.float64).reshape(-1, d).copy()
        self.parent = [int(v) for v in state["parent"]]
        self.left = [int(v) for v in state["left"]]
        self.right = [int(v) for v in state["right"]]
        self.split_dim = [int(v) for v in state["dim"]]
        self.thr = [float(v) for v in state["thr"]]
        self.alp = np.asarray(state["alp"], dtype=np.float64).reshape(-1).copy()
        self.pairs = [
            RegionPairs(
                d,
                self.maxlen if bounded else None,
                np.asarray(r, dtype=np.float64).reshape(-1),
                np.asarray(x, dtype=np.float64).reshape(-1, d),
            )
            for r, x, bounded in zip(state["pair_rewards"], state["pair_tasks"], state["bounded"])
        ]
        self.n_splits = int(state["n_splits"])
        self.n_discards = int(state["n_discards"])
        self._refresh_region_ids()

    def regions(self) -> list[dict[str, Any]]:
        """Every node as a plain dict (stats, dashboards)."""
        leaves = np.asarray(self.left) < 0
        return [
            {
                "low": self.low[i].tolist(),
                "high": self.high[i].tolist(),
                "alp": float(self.alp[i]),
                "leaf": bool(leaves[i]),
                "n_pairs": len(self.pairs[i]),
                "parent": self.parent[i],
            }
            for i in range(len(self.alp))
        ]
