"""`WindowALP`'s grid path (d <= 3, `alp_kernels`) against its batched kd-tree/GEMM path.

The grid path must give exactly the batched path's ALPs and leave exactly its stored
state: same nearest neighbour (exact squared distance, ties -> most recently stored),
same FIFO window and evictions, same ``scale``, same ``MIN_STORED`` rule.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from openended.teachers.gmm.alp import WindowALP

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (requirements/dev.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402  # after the skip guard
from hypothesis import strategies as st  # noqa: E402


def _pair(dim: int, max_size: int | None, scale: np.ndarray | None = None) -> tuple[WindowALP, WindowALP]:
    grid = WindowALP(dim, max_size, scale=scale)
    batched = WindowALP(dim, max_size, scale=scale, grid_max_dim=0)
    assert grid.dim <= grid.grid_max_dim and batched.grid_max_dim == 0
    return grid, batched


def _same_state(a: WindowALP, b: WindowALP) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(np.asarray(sa[k]), np.asarray(sb[k]), err_msg=k)


def _tasks(rng: np.random.Generator, n: int, dim: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.uniform(-2.0, 3.0, (n, dim))
    if kind == "lattice":  # many exact duplicates and exact distance ties
        return rng.integers(0, 4, (n, dim)) / 3.0
    if kind == "corners":  # clipping to a box: tasks on its faces and corners
        return np.clip(rng.normal(0.5, 0.6, (n, dim)), 0.0, 1.0)
    if kind == "repeat":  # the same few tasks over and over
        return np.tile(rng.uniform(0, 1, (7, dim)), (n // 7 + 1, 1))[:n]
    if kind == "line":  # a degenerate coordinate
        x = rng.uniform(0, 1, (n, dim))
        x[:, 0] = 0.25
        return x
    raise AssertionError(kind)


KINDS = ["uniform", "lattice", "corners", "repeat", "line"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dim=st.integers(1, 3),
    max_size=st.sampled_from([None, 6, 7, 40, 300]),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=5),
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=5),
    scaled=st.booleans(),
    returns=st.sampled_from(["few", "continuous"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_grid_path_equals_batched_path(
    dim: int, max_size: int | None, kinds: list[str], sizes: list[int], scaled: bool, returns: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 10.0, dim) if scaled else None
    grid, batched = _pair(dim, max_size, scale)
    for i, n in enumerate(sizes):
        x = _tasks(rng, n, dim, kinds[i % len(kinds)])
        r = rng.integers(0, 4, n) / 3.0 if returns == "few" else rng.normal(0, 1, n)
        np.testing.assert_array_equal(grid.update(x, r), batched.update(x, r))
        assert len(grid) == len(batched)
    _same_state(grid, batched)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dim=st.integers(1, 3),
    max_size=st.sampled_from([None, 6, 40, 300]),
    sizes=st.lists(st.tuples(st.integers(1, 400), st.integers(-5, 450)), min_size=1, max_size=5),
    seed=st.integers(0, 2**31 - 1),
)
def test_rows_stored_without_a_query_change_no_later_alp(
    dim: int, max_size: int | None, sizes: list[tuple[int, int]], seed: int
) -> None:
    # query_from skips the search for a batch's first rows (ALP NaN) and stores them all
    # the same: the queried rows and every later batch get the ALPs of a full update
    rng = np.random.default_rng(seed)
    full = WindowALP(dim, max_size)
    grid, batched = _pair(dim, max_size)
    for i, (n, query_from) in enumerate(sizes):
        x = _tasks(rng, n, dim, KINDS[i % len(KINDS)])
        r = rng.normal(0, 1, n)
        want = full.update(x, r)
        for alp in (grid, batched):
            got = alp.update(x, r, query_from=query_from)
            skipped = max(0, min(query_from, n))
            assert np.isnan(got[:skipped]).all()
            np.testing.assert_array_equal(got[skipped:], want[skipped:])
    _same_state(grid, full)
    _same_state(batched, full)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("max_size", [None, 500])
def test_grid_path_equals_batched_path_over_many_batches(dim: int, max_size: int | None) -> None:
    # a long run through window eviction, cell-size changes (grid rebuilds) and batch sizes
    rng = np.random.default_rng(dim)
    grid, batched = _pair(dim, max_size)
    for i, n in enumerate([1, 2, 3, 10, 64, 700, 1, 1024, 33, 500, 2000, 5]):
        x = _tasks(rng, n, dim, KINDS[i % len(KINDS)]) * (1.0 + i)  # the box grows: the cells follow
        r = rng.integers(0, 3, n) / 2.0
        np.testing.assert_array_equal(grid.update(x, r), batched.update(x, r))
    _same_state(grid, batched)


def test_grid_state_round_trip_and_mixed_paths_continue_identically() -> None:
    rng = np.random.default_rng(5)
    x, r = rng.integers(0, 5, (900, 2)) / 4.0, rng.uniform(0, 1, 900)
    want = WindowALP(2, 200, grid_max_dim=0).update(x, r)
    a = WindowALP(2, 200)
    got = [a.update(x[:300], r[:300])]
    b = WindowALP(2, 200)
    b.load_state_dict(a.state_dict())  # the grid is rebuilt from the ring
    got.append(b.update(x[300:500], r[300:500]))
    b.grid_max_dim = 0  # a batch through the batched path in between: the grid is relinked after it
    got.append(b.update(x[500:600], r[500:600]))
    b.grid_max_dim = 3
    got.append(b.update(x[600:], r[600:]))
    np.testing.assert_array_equal(np.concatenate(got), want)


def test_grid_path_min_stored_and_window_rules_by_hand() -> None:
    a = WindowALP(1, max_size=6)
    x = np.arange(10.0)[:, None]
    r = np.arange(10.0) * 10
    out = a.update(x, r)
    # nothing until more than 5 pairs are visible; then the nearest is the previous task
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0, 0, 10, 10, 10, 10])
    # an exact duplicate of stored tasks: the newest of the equally near pairs wins
    a.update(np.array([[20.0], [20.0]]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(a.update(np.array([[20.0]]), np.array([0.0])), [2.0])


def test_grid_path_does_not_stall_on_repeated_tasks() -> None:
    # 1,024 tasks reported again and again: every query has ~20 exact duplicates at
    # distance 0 (the kd-tree path fell back to brute force there: ~55 ms per report)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1024, 2))
    a = WindowALP(2, 20_000)
    for _ in range(25):
        a.update(x, rng.uniform(0, 1, 1024))
    t0 = time.thread_time()
    for _ in range(5):
        a.update(x, rng.uniform(0, 1, 1024))
    assert (time.thread_time() - t0) / 5 < 0.02


def test_non_finite_tasks_take_the_batched_path() -> None:
    grid, batched = _pair(2, 50)
    rng = np.random.default_rng(3)
    for n in (30, 10, 40):
        x, r = rng.uniform(0, 1, (n, 2)), rng.uniform(0, 1, n)
        if n == 10:
            x[3, 1] = 1e120  # too large for the grid's cells: this batch goes the batched way
        np.testing.assert_array_equal(grid.update(x, r), batched.update(x, r))
    _same_state(grid, batched)


@pytest.mark.parametrize("max_size", [None, 300])
def test_kd_tree_path_resolves_exact_duplicates_like_the_gemm_path(max_size: int | None) -> None:
    # d > 3 keeps the batched path; its kd-tree sees k = 8 neighbours, all tied at distance
    # 0 when a task was stored many times: those rows take a ball query, same answers
    rng = np.random.default_rng(7)
    tree = WindowALP(4, max_size, tree_min_batch=1)
    gemm = WindowALP(4, max_size, tree_max_dim=0)
    pool = rng.uniform(0, 1, (50, 4))
    for i in range(8):
        x = pool[rng.integers(0, 50, 200)] if i % 2 else rng.integers(0, 3, (200, 4)) / 2.0
        r = rng.integers(0, 4, 200) / 3.0
        np.testing.assert_array_equal(tree.update(x, r), gemm.update(x, r))
