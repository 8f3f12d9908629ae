"""How the GMM teachers turn a live `Mixture` into tasks.

Contents:
    proportional_choice -- REFERENCE: teachDeepRL's component pick (one multinomial draw).
    component_probs     -- the fast sampler's component probabilities from the LP signal.
    sample_box_mixture  -- SPEEDUP: ``n`` tasks in one vectorised draw (uniform / mixture, clipped).
    tasks_with_origin   -- rows -> `Task` objects tagged ``"uniform"`` / ``"sampled"``.
    arrays_with_origin  -- the same rows as `TaskArrays` (the array path: no `Task` built).
    Prefetch            -- SPEEDUP: tasks drawn ahead in blocks for small ``sample`` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from openended.tasks import Box, Task, TaskArrays
from openended.teachers.gmm.mixture import Mixture

__all__ = [
    "proportional_choice",
    "component_probs",
    "sample_box_mixture",
    "tasks_with_origin",
    "arrays_with_origin",
    "Prefetch",
]


def proportional_choice(v: np.ndarray, rng: np.random.Generator, eps: float = 0.0) -> int:
    """REFERENCE: teachDeepRL's ``proportional_choice``.

    Uniform if the values sum to 0 (or with prob ``eps``), else one multinomial draw with
    probabilities ``v / sum(v)``. The RNG calls follow the original's order (a ``rand()`` draw even when ``eps == 0``).
    """
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
    """Tasks for the rows of ``x`` in order, tagged with where they came from.

    Rows flagged ``uniform`` get origin ``"uniform"``, the others ``"sampled"`` (drawn
    from the mixture).
    """
    return space.tasks(x, origin=list(map(_ORIGINS.__getitem__, uniform.tolist())), validate=False)


_ORIGINS = ("sampled", "uniform")


def arrays_with_origin(space: Box, x: np.ndarray, uniform: np.ndarray) -> TaskArrays:
    """`tasks_with_origin` as `TaskArrays`: the same ids, params and origins, as columns."""
    return TaskArrays(space.ids_u64(x), uniform.astype(np.uint8), _ORIGINS, params=x)


class Prefetch:
    """SPEEDUP: serve small ``sample(n)`` calls from tasks drawn ahead in one vectorised block.

    A block is ``block`` draws: per-call numpy overhead, not arithmetic, dominates n=1.

    Deterministic: what is drawn, and when, depends only on the call sequence. The owner
    must `clear` it whenever the distribution changes (a new mixture goes live), so no
    task from an old model is ever served; the unserved draws are simply discarded.
    """

    def __init__(self, space: Box, block: int) -> None:
        self.space = space
        self.block = int(block)
        self._x = np.zeros((0, space.dim))
        self._uni = np.zeros(0, dtype=bool)
        self._pos = 0

    def __len__(self) -> int:
        return len(self._uni) - self._pos

    def clear(self) -> None:
        """Discard the unserved draws (the distribution changed)."""
        self._x, self._uni, self._pos = self._x[:0], self._uni[:0], 0

    def take(self, n: int, draw: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> list[Task]:
        """``n`` tasks: the buffered ones first, then a fresh block of ``max(block, missing)``."""
        x, uni = self.take_rows(n, draw)
        return tasks_with_origin(self.space, x, uni)

    def take_rows(self, n: int, draw: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """`take` as ``(params (n, d), is_uniform (n,))``: the same draws, no `Task` built (the array path)."""
        if self.block <= 0:
            return draw(n)
        start = self._pos
        served = min(n, len(self._uni) - start)
        self._pos += served
        if served == n:
            return self._x[start : start + n], self._uni[start : start + n]
        missing = n - served
        x, uni = draw(max(self.block, missing))
        head_x, head_uni = self._x[start : start + served], self._uni[start : start + served]
        self._x, self._uni, self._pos = x, uni, missing
        if not served:
            return x[:missing], uni[:missing]
        return np.concatenate([head_x, x[:missing]]), np.concatenate([head_uni, uni[:missing]])

    def state(self) -> dict[str, np.ndarray]:
        """The draws not served yet (tasks are rebuilt from them: same params, same ids)."""
        return {"x": self._x[self._pos :].copy(), "uniform": self._uni[self._pos :].copy()}

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of `state`: the unserved draws become the buffer again."""
        x = np.asarray(state["x"], dtype=np.float64).reshape(-1, self.space.dim)
        uni = np.asarray(state["uniform"], dtype=bool).reshape(-1)
        self._x, self._uni, self._pos = x, uni, 0
