"""teachDeepRL's toy learner as a simulated student, plus a gymnasium task env around it.

Anchor: teachDeepRL ``teachDRL/toy_env/toy_env.py`` (class ``ToyEnv``) @ 747cda2, the
cheap regression test for curriculum teachers (reference numbers in
``benchmarks/toy_curriculum.py``).

The learner: the task space ``[0, 1]^n_dims`` is cut into ``n_cells`` bins per dimension.
An episode on a task bins it into its cell; cell ``(0, ..., 0)`` always gains +1
competence, any other cell gains +1 only while one of its *previous* neighbours (indices
from ``{i, i-1}`` per dimension, itself excluded) has competence >= 75, so competence
spreads as a wave from the corner. Competence is capped at 100 and the reward is
``competence / 100`` after the update. "Mastered" is competence > 75.

Options the original lacks (all off by default, so the default is the original):

* ``noise``: Gaussian std added to every reward, clipped to [0, 1] (TDRL's commented-out
  noise line).
* ``unlearnable``: cells that never gain competence. Their reward is uniform noise in
  [0, 1) (``unlearnable_reward="noise"``: spurious learning progress that a teacher should
  learn to avoid) or always 0 (``"zero"``: infeasible tasks, as TeachMyAgent's "mostly
  unfeasible" criterion). They do not count in ``score()``.
* ``extra_dims``: irrelevant trailing task dimensions, ignored by the learner (TDRL's
  "discard potential useless dimensions").

Contents:
    ToyLearner  -- gymnasium-free fast API: ``episode``, batched ``episodes``, ``score``,
                   ``competence``, ``state_dict``.
    ToyTaskEnv  -- a one-step ``gymnasium.Env`` with ``set_task`` applied at the next reset.

Example:
    >>> learner = ToyLearner(seed=0)
    >>> learner.episode([0.05, 0.05])   # cell (0, 0) learns from the start
    0.01
    >>> learner.episode([0.15, 0.15])   # cell (1, 1) is locked until a lower neighbour >= 75
    0.0
    >>> learner.score()
    0.0
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy.special import ndtr
from typing_extensions import override

from openended.envs.base import TaskEnvMixin
from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box

__all__ = ["ToyLearner", "ToyTaskEnv", "MAX_COMPETENCE", "UNLOCK_COMPETENCE"]

#: Competence cap per cell (TDRL ``max_per_cube``).
MAX_COMPETENCE = 100
#: A neighbour at or above this unlocks a cell; a cell *above* it is mastered (TDRL: 3/4 of the cap).
UNLOCK_COMPETENCE = 75

_NEVER = np.iinfo(np.int64).max
#: The noise draws when there are none (never indexed; no generator call, so the stream is unchanged).
_NO_DRAWS = np.empty((0, 0))


def _edges(n_cells: int) -> np.ndarray:
    """Bin edges exactly as TDRL builds them (``np.arange``).

    ``linspace`` where arange rounds to an extra edge (n_cells = 6, 9, 21, ...; TDRL would
    mis-shape its grid there).
    """
    step = 1 / n_cells
    e = np.arange(0, 1 + step, step)
    if len(e) != n_cells + 1 or e[-1] < 1.0:
        e = np.linspace(0.0, 1.0, n_cells + 1)
    return e


#: The most cells a learner keeps counters for (8 bytes each: 76 MiB), and the most ignored dims.
MAX_CELLS = 10_000_000
MAX_EXTRA_DIMS = 1024


def _check_size(n_dims: int, n_cells: int, extra_dims: int) -> None:
    """Refuse grids too large to allocate before anything is allocated (``n_dims=9`` asked for 7.45 GiB)."""
    # n_cells >= 2 doubles the cells per dimension, so n_dims > 64 is over any limit; checked
    # first so that n_cells ** n_dims is never computed for a huge n_dims.
    cells = n_cells**n_dims if n_cells == 1 or n_dims <= 64 else MAX_CELLS + 1
    if cells > MAX_CELLS:
        raise ConfigError(
            f"ToyLearner.n_dims: n_cells ** n_dims = {n_cells} ** {n_dims} cells is more than {MAX_CELLS:,} "
            f"(8 bytes each); lower n_dims or n_cells"
        )
    if extra_dims > MAX_EXTRA_DIMS:
        raise ConfigError(f"ToyLearner.extra_dims: at most {MAX_EXTRA_DIMS}, got {extra_dims}")


class ToyLearner:
    """The toy learner (see the module docstring). Not thread-safe; one per simulated student.

    Args:
        n_dims: learnable task dimensions.
        n_cells: bins per dimension (``n_cells ** n_dims`` cells).
        noise: std of the Gaussian added to rewards (then clipped to [0, 1]); 0 = TDRL.
        unlearnable: cells that never learn: a boolean mask shaped like the grid, or an
            inclusive rectangle of cell indices ``((lo_0, lo_1, ...), (hi_0, hi_1, ...))``.
        unlearnable_reward: ``"noise"`` (uniform in [0, 1)) or ``"zero"`` in unlearnable cells.
        extra_dims: trailing task dimensions the learner ignores.
        seed: seed of the learner's own generator (noise and unlearnable rewards only).
    """

    def __init__(
        self,
        n_dims: int = 2,
        n_cells: int = 10,
        noise: float = 0.0,
        unlearnable: np.ndarray | Sequence[Sequence[int]] | None = None,
        extra_dims: int = 0,
        seed: int = 0,
        unlearnable_reward: str = "noise",
    ) -> None:
        if not isinstance(n_dims, (int, np.integer)) or n_dims < 1:
            raise ConfigError(f"ToyLearner.n_dims: must be an int >= 1, got {n_dims!r}")
        if not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
            raise ConfigError(f"ToyLearner.n_cells: must be an int >= 1, got {n_cells!r}")
        if not isinstance(extra_dims, (int, np.integer)) or extra_dims < 0:
            raise ConfigError(f"ToyLearner.extra_dims: must be an int >= 0, got {extra_dims!r}")
        _check_size(int(n_dims), int(n_cells), int(extra_dims))
        if not (np.isfinite(noise) and noise >= 0):
            raise ConfigError(f"ToyLearner.noise: must be a finite std >= 0, got {noise!r}")
        self.n_dims, self.n_cells, self.extra_dims = int(n_dims), int(n_cells), int(extra_dims)
        if unlearnable_reward not in ("noise", "zero"):
            raise ConfigError(f"ToyLearner.unlearnable_reward: must be 'noise' or 'zero', got {unlearnable_reward!r}")
        self.noise = float(noise)
        self.unlearnable_reward = unlearnable_reward
        self.seed = seed
        self.shape = (self.n_cells,) * self.n_dims
        self.edges = _edges(self.n_cells)
        self._unlearnable = self._parse_unlearnable(unlearnable)
        self._has_unlearnable = bool(self._unlearnable.any())
        self._noisy_dead = self._has_unlearnable and unlearnable_reward == "noise"
        self._n_draws = int(self.noise > 0) + int(self._noisy_dead)
        self._competence = np.zeros(int(np.prod(self.shape)), dtype=np.int64)  # flat, C order
        self._strides = np.array([self.n_cells ** (self.n_dims - 1 - k) for k in range(self.n_dims)], dtype=np.int64)
        self._stride_list = self._strides.tolist()
        self._edge_list = self.edges.tolist()
        self._neighbours: dict[int, np.ndarray] = {}
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.n_episodes = 0

    def _parse_unlearnable(self, spec: Any) -> np.ndarray:
        if spec is None:
            return np.zeros(int(np.prod(self.shape)), dtype=bool)
        arr = np.asarray(spec)
        if arr.dtype == bool:
            if arr.shape != self.shape:
                raise ConfigError(
                    f"ToyLearner.unlearnable: a mask must have the grid shape {self.shape}, got {arr.shape}"
                )
            return arr.reshape(-1).copy()
        if arr.shape != (2, self.n_dims) or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(
                f"ToyLearner.unlearnable: expected a bool mask of shape {self.shape} or "
                f"((lo_0..lo_{self.n_dims - 1}), (hi_0..hi_{self.n_dims - 1})) cell indices, "
                f"got {spec!r}"
            )
        lo, hi = arr
        if np.any(lo < 0) or np.any(hi >= self.n_cells) or np.any(lo > hi):
            raise ConfigError(
                f"ToyLearner.unlearnable: rectangle {lo.tolist()}..{hi.tolist()} must satisfy "
                f"0 <= lo <= hi <= {self.n_cells - 1}"
            )
        mask = np.zeros(self.shape, dtype=bool)
        mask[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = True
        return mask.reshape(-1)

    # ------------------------------------------------------------------ queries
    @property
    def dim(self) -> int:
        """Task dimensions the learner accepts (learnable + extra)."""
        return self.n_dims + self.extra_dims

    @property
    def competence(self) -> np.ndarray:
        """Competence per cell (0..100), shaped like the grid; a read-only view."""
        view = self._competence.reshape(self.shape)
        view.flags.writeable = False
        return view

    @property
    def unlearnable(self) -> np.ndarray:
        """Boolean mask of the permanently unlearnable cells, shaped like the grid."""
        return self._unlearnable.reshape(self.shape).copy()

    def score(self) -> float:
        """% of learnable cells mastered (competence > 75); TDRL's ``get_score`` when all are learnable."""
        learnable = ~self._unlearnable
        return (
            100.0
            * float(np.count_nonzero(self._competence[learnable] > UNLOCK_COMPETENCE))
            / max(1, int(learnable.sum()))
        )

    def task_space(self) -> Box:
        """The unit box the learner accepts (learnable dimensions first)."""
        names = [f"x{k}" for k in range(self.n_dims)] + [f"extra{k}" for k in range(self.extra_dims)]
        return Box(np.zeros(self.dim), np.ones(self.dim), names=names, name="toy")

    def cells(self, params: np.ndarray) -> np.ndarray:
        """Flat cell index of each row of an ``(n, dim)`` array (TDRL's binned_statistic_dd binning)."""
        x = self._check(params)[:, : self.n_dims]
        idx = np.digitize(x, self.edges) - 1
        idx[x >= self.edges[-1]] = self.n_cells - 1  # the right-most edge belongs to the last bin
        return idx @ self._strides

    def cell_competence(self, params: Sequence[float] | np.ndarray) -> int:
        """Competence of the cell holding one task."""
        return int(self._competence[self.cells(np.asarray(params, dtype=np.float64)[None, :])[0]])

    def _check(self, params: np.ndarray) -> np.ndarray:
        x = np.asarray(params, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise TaskNotInSpace(f"ToyLearner: expected an (n, {self.dim}) array of tasks, got shape {x.shape}")
        bad = ~((x >= 0.0) & (x <= 1.0))  # also catches NaN
        if bad.any():
            r, c = map(int, np.argwhere(bad)[0])
            raise TaskNotInSpace(f"ToyLearner: task {r} dimension {c} = {float(x[r, c])!r} is outside [0, 1]")
        return x

    def _previous_neighbours(self, cell: int) -> np.ndarray:
        """Flat ids of the cells whose competence can unlock ``cell`` (cached)."""
        nb = self._neighbours.get(cell)
        if nb is None:
            idx = [int(i) for i in np.unravel_index(cell, self.shape)]
            combos = itertools.product(*[sorted({i, max(0, i - 1)}) for i in idx])
            nb = np.array(sorted({int(np.dot(c, self._strides)) for c in combos} - {cell}), dtype=np.int64)
            self._neighbours[cell] = nb
        return nb

    # ----------------------------------------------------------------- episodes
    def episode(self, params: Sequence[float] | np.ndarray) -> float:
        """Run one episode on one task; return its reward.

        Same result and noise stream as ``episodes`` on a one-row array.
        """
        # SPEEDUP: plain-Python path for the sequential case (numpy's per-call overhead is
        # most of an episode's cost; ~5x faster), same binning as np.digitize.
        x = [float(v) for v in params]
        if len(x) != self.dim:
            return float(self.episodes(np.asarray(x, dtype=np.float64)[None, :])[0])  # raises the shape error
        cell = 0
        edges, top = self._edge_list, self.n_cells - 1
        for k in range(self.dim):
            v = x[k]
            if not 0.0 <= v <= 1.0:  # also NaN
                raise TaskNotInSpace(f"ToyLearner: task 0 dimension {k} = {v!r} is outside [0, 1]")
            if k < self.n_dims:
                cell += min(bisect.bisect_right(edges, v) - 1, top) * self._stride_list[k]
        z = self.rng.standard_normal((1, self._n_draws)) if self._n_draws else _NO_DRAWS
        comp = self._competence
        dead = bool(self._unlearnable[cell])
        if not dead and (cell == 0 or any(comp[nb] >= UNLOCK_COMPETENCE for nb in self._previous_neighbours(cell))):
            comp[cell] = min(MAX_COMPETENCE, comp[cell] + 1)
        reward = 0.0 if dead else float(comp[cell]) / MAX_COMPETENCE
        col = 0
        if self.noise > 0:
            reward = min(1.0, max(0.0, reward + self.noise * float(z[0, col])))
            col += 1
        if dead and self._noisy_dead:
            reward = float(ndtr(z[0, col]))
        self.n_episodes += 1
        return reward

    def episodes(self, params: np.ndarray) -> np.ndarray:
        """Run ``len(params)`` episodes in order; return their rewards.

        Exactly the sequential semantics (an episode sees the competence left by every
        earlier one, and the noise stream is the same as one ``episode`` call per row), but
        vectorised per cell: competence only grows, so a cell learns on every one of its
        episodes after the first moment a previous neighbour reaches 75, and cells can be
        resolved in order of their index sum (neighbours come first).
        """
        x = np.asarray(params, dtype=np.float64)
        if x.ndim == 2 and x.shape == (1, self.dim):  # SPEEDUP: one episode, plain-Python path
            return np.array([self.episode(x[0])])
        cells = self.cells(x)
        n = len(cells)
        z = self.rng.standard_normal((n, self._n_draws)) if self._n_draws else _NO_DRAWS
        comp = self._competence
        new_comp = np.empty(n, dtype=np.int64)
        reach: dict[int, int] = {}  # cell -> episode position after which it is >= 75, for changed cells

        def reach_of(c: int) -> int:
            if c in reach:
                return reach[c]
            return -1 if comp[c] >= UNLOCK_COMPETENCE else _NEVER

        if n == 1:  # SPEEDUP: the common sequential case without sorting
            order = [(int(cells[0]), np.zeros(1, dtype=np.int64))]
        else:
            uniq, inverse = np.unique(cells, return_inverse=True)
            sums = np.asarray(np.unravel_index(uniq, self.shape)).sum(axis=0)
            pos_by_cell = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[pos_by_cell], np.arange(len(uniq) + 1))
            order = [(int(uniq[k]), pos_by_cell[bounds[k] : bounds[k + 1]]) for k in np.argsort(sums, kind="stable")]
        start_comp = {c: int(comp[c]) for c, _ in order}
        for cell, pos in order:
            c0 = start_comp[cell]
            if self._unlearnable[cell]:
                new_comp[pos] = 0
                continue
            if cell == 0:
                unlock = -1
            else:
                unlock = min((reach_of(int(nb)) for nb in self._previous_neighbours(cell)), default=_NEVER)
            learning = pos > unlock
            gained = np.cumsum(learning)  # learning episodes are a suffix of the cell's episodes
            new_comp[pos] = np.minimum(MAX_COMPETENCE, c0 + gained)
            total = c0 + int(gained[-1])
            comp[cell] = min(MAX_COMPETENCE, total)
            if c0 < UNLOCK_COMPETENCE <= total:
                reach[cell] = int(pos[np.searchsorted(c0 + gained, UNLOCK_COMPETENCE)])
        rewards = new_comp / MAX_COMPETENCE  # TDRL: np.interp(competence, (0, 100), (0, 1))
        col = 0
        if self.noise > 0:
            rewards = np.clip(rewards + self.noise * z[:, col], 0.0, 1.0)
            col += 1
        if self._noisy_dead:
            dead = self._unlearnable[cells]
            rewards[dead] = ndtr(z[dead, col])  # uniform noise in [0, 1)
        self.n_episodes += n
        return rewards

    def state_dict(self) -> dict:
        """Competence, generator state and episode count (JSON-ready): resume a student exactly."""
        return {
            "competence": self._competence.tolist(),
            "rng": self.rng.bit_generator.state,
            "n_episodes": self.n_episodes,
        }

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict` (the learner's own options must match)."""
        comp = np.asarray(state["competence"], dtype=np.int64)
        if comp.shape != self._competence.shape:
            raise ConfigError(
                f"ToyLearner.load_state_dict: state has {comp.size} cells, this learner {self._competence.size}"
            )
        self._competence[:] = comp
        self.rng.bit_generator.state = state["rng"]
        self.n_episodes = int(state["n_episodes"])

    def reset(self, seed: int | None = None) -> None:
        """Forget everything (zero competence); reseed the generator when ``seed`` is given."""
        self._competence[:] = 0
        self.n_episodes = 0
        if seed is not None:
            self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(self.seed))


class ToyTaskEnv(TaskEnvMixin, gym.Env):
    """One-step gymnasium env around a `ToyLearner`: the env *is* the student.

    The observation is the task's parameters, the single action is ignored, every episode
    terminates after one step with the learner's reward, ``info["success"]`` is whether the
    task's cell is mastered (> 75) after the episode and ``info["task_id"]`` the task run.

    ``set_task(task)`` takes effect at the next ``reset``. ``reset(seed=s)`` restarts the
    simulated student from zero competence with its generator seeded by ``s`` (a seeded
    reset is a fresh experiment, which also makes seeded rollouts reproducible); an
    unseeded ``reset()`` keeps learning. Without any task set, the default task is the
    centre of the space.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        n_dims: int = 2,
        n_cells: int = 10,
        noise: float = 0.0,
        unlearnable: np.ndarray | Sequence[Sequence[int]] | None = None,
        extra_dims: int = 0,
        seed: int = 0,
        unlearnable_reward: str = "noise",
    ) -> None:
        self._learner_kwargs: dict[str, Any] = dict(
            n_dims=n_dims,
            n_cells=n_cells,
            noise=noise,
            unlearnable=unlearnable,
            extra_dims=extra_dims,
            unlearnable_reward=unlearnable_reward,
        )
        self.learner = ToyLearner(seed=seed, **self._learner_kwargs)
        self._space = self.learner.task_space()
        dim = self._space.dim
        self.observation_space = spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(1)
        self._default_task = self._space.task(np.full(dim, 0.5))
        self._needs_reset = True

    @override
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.learner.reset(seed=seed)
        task = self._task_for_reset(options)
        self._needs_reset = False
        return np.asarray(task.params, dtype=np.float32), {"task_id": task.id}

    @override
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise gym.error.ResetNeeded("ToyTaskEnv: every episode is one step; call reset() before step()")
        task = self._running_task()
        x = np.asarray(task.params, dtype=np.float64)
        reward = self.learner.episode(x)
        competence = self.learner.cell_competence(x)
        self._needs_reset = True
        info = {"task_id": task.id, "success": competence > UNLOCK_COMPETENCE, "competence": competence}
        return np.asarray(task.params, dtype=np.float32), float(reward), True, False, info

    # -- simulated-student hooks read by hosts (EnvPool): progress and resumable state
    def curriculum_metrics(self) -> dict[str, float]:
        """``mastered``: fraction of learnable cells mastered (the toy benchmark's score / 100)."""
        return {"mastered": self.learner.score() / 100.0, "episodes": float(self.learner.n_episodes)}

    def state_dict(self) -> dict:
        """The simulated student's state (the env itself is stateless between episodes)."""
        return {"learner": self.learner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`: resume the simulated student exactly."""
        self.learner.load_state_dict(state["learner"])
