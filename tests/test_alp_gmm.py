"""ALP-GMM: reference ALP semantics, determinism, exact state round trips (also while a fit
is pending), config errors, box membership, non-blocking refits, toy-env smoke parity."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pytest
from support import slow_gmm_fits, toy_mastered

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome, Task
from openended.teachers import make_teacher
from openended.teachers.gmm.alp import ReferenceALP, WindowALP
from openended.teachers.gmm.alp_gmm import ALPGMMTeacher

SPACE = Box([0.0, 0.0], [1.0, 1.0])


# ----------------------------------------------------------------------- helpers


def _ret(t: Task) -> float:
    x = np.asarray(t.params)
    return float(np.sin(6 * x[0]) + x[-1])


def _step(t: Any, n: int, ret=_ret) -> list[Task]:
    tasks = t.sample(n)
    t.update([Outcome(task_id=x.id, episode_return=ret(x)) for x in tasks])
    return tasks


def _params(tasks: list[Task]) -> list[tuple]:
    return [x.params for x in tasks]


def _roundtrip(state: dict) -> dict:
    return json.loads(json.dumps(state))


FAST = dict(fit_rate=20, refit_executor="thread")
FAST_WARM = dict(fit_rate=20, refit_executor="thread", k_window=1, fit_init="both")  # the optional warm policy
REF = dict(mode="reference", fit_rate=20, k_max=6, refit_executor="inline")


# --------------------------------------------------------------- reference ALP
def test_reference_alp_is_zero_until_more_than_five_pairs_are_stored() -> None:
    alp = ReferenceALP(1)
    tasks = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [2.2]])
    rets = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9])
    out = alp.update(tasks, rets)
    # the 6th query sees 5 stored pairs -> 0; the 7th sees 6 and its nearest task is 2.0 (r=0.2)
    np.testing.assert_allclose(out, [0, 0, 0, 0, 0, 0, 0.7])


def test_reference_alp_uses_raw_task_units() -> None:
    # dim 0 spans [0, 10], dim 1 spans [0, 1]: in raw units (0, 0.5) is nearer to (0, 0)
    # than (1, 0) is; in the unit cube (1, 0) -> (0.1, 0) is the nearer one.
    alp = ReferenceALP(2)
    hist = np.array([[5, 1], [9, 1], [9, 0], [10, 0.5], [7, 0.7], [1.0, 0.0], [0.0, 0.5]])
    alp.update(hist, np.array([0, 0, 0, 0, 0, 0.25, 0.75]))
    assert alp.update(np.array([[0.0, 0.0]]), np.array([1.0]))[0] == pytest.approx(0.25)  # 1 - r(0,0.5)
    win = WindowALP(2, scale=np.array([0.1, 1.0]))  # the flagged unit-cube deviation
    win.update(hist, np.array([0, 0, 0, 0, 0, 0.25, 0.75]))
    assert win.update(np.array([[0.0, 0.0]]), np.array([1.0]))[0] == pytest.approx(0.75)  # 1 - r(1,0)


def test_reference_alp_tie_prefers_the_main_tree_like_teachdeeprl() -> None:
    # buffer_size=6: pairs 1..6 fill the buffer, the 7th add merges them into the main tree.
    # p1 and p7 are the same task; on the tie the main tree (older p1) wins, as in TDRL's
    # BufferedDataset._nn (`if dists[0] <= buffer_dists`). The fast computer takes the newest.
    tasks = np.array([[0.5, 0.5], [0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9], [0.3, 0.7], [0.5, 0.5]])
    rets = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9])
    ref = ReferenceALP(2, buffer_size=6)
    ref.update(tasks, rets)
    assert ref.update(np.array([[0.5, 0.5]]), np.array([1.0]))[0] == pytest.approx(0.8)
    fast = WindowALP(2)
    fast.update(tasks, rets)
    assert fast.update(np.array([[0.5, 0.5]]), np.array([1.0]))[0] == pytest.approx(0.1)


def test_reference_alp_equals_brute_force_nearest_neighbour_over_all_history() -> None:
    rng = np.random.default_rng(0)
    x, r = rng.uniform(0, [3, 6], (1200, 2)), rng.uniform(0, 1, 1200)
    got = ReferenceALP(2, buffer_size=100).update(x, r)
    want = np.zeros(1200)
    for i in range(6, 1200):
        want[i] = abs(r[i] - r[np.argmin(((x[:i] - x[i]) ** 2).sum(1))])
    np.testing.assert_array_equal(got, want)


def test_reference_alp_max_size_cuts_the_main_set_only_at_merges() -> None:
    alp = ReferenceALP(1, max_size=4, buffer_size=3)
    alp.update(np.arange(10.0)[:, None], np.arange(10.0))
    # adds 1-3 -> buffer; add 4 merges [0,1,2] (main 3); add 7 merges [3,4,5] -> main 6 -> cut to 4;
    # add 10 merges [6,7,8] -> main 7 -> cut to 4; buffer [9]
    st = alp.state_dict()
    assert st["main_x"][:, 0].tolist() == [5.0, 6.0, 7.0, 8.0]
    assert st["buf_x"][:, 0].tolist() == [9.0]


# -------------------------------------------------------------------- fast ALP
@pytest.mark.parametrize("max_size", [None, 40])
def test_window_alp_batch_equals_one_by_one(max_size: int | None) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (600, 3))
    x[::4] = np.clip(np.round(x[::4] * 2) / 2, 0, 1)  # many exact duplicates (ties)
    r = rng.uniform(0, 1, 600)
    one = WindowALP(3, max_size)
    a = np.concatenate([one.update(x[i : i + 1], r[i : i + 1]) for i in range(600)])
    bat = WindowALP(3, max_size, block=16)
    parts, i = [], 0
    for size in (1, 5, 100, 37, 250, 207):
        parts.append(bat.update(x[i : i + size], r[i : i + size]))
        i += size
    np.testing.assert_array_equal(a, np.concatenate(parts))
    # brute force: nearest among the last max_size pairs, ties -> newest
    want = np.zeros(600)
    for i in range(600):
        lo = 0 if max_size is None else max(0, i - max_size)
        if i - lo > 5:
            d = ((x[lo:i] - x[i]) ** 2).sum(1)
            j = lo + np.flatnonzero(d == d.min()).max()
            want[i] = abs(r[i] - r[j])
    np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("max_size", [None, 300])
def test_window_alp_kd_tree_path_equals_gemm_path(max_size: int | None) -> None:
    # big batches in few dimensions go through a per-call kd-tree; it must pick exactly
    # the neighbour the GEMM path picks, ties (duplicates on a coarse lattice) included
    rng = np.random.default_rng(4)
    x = np.round(rng.uniform(0, 1, (2000, 2)) * 8) / 8
    r = rng.uniform(0, 1, 2000)
    tree = WindowALP(2, max_size, tree_min_batch=1, grid_max_dim=0)  # d = 2 would take the grid path
    gemm = WindowALP(2, max_size, tree_max_dim=0, grid_max_dim=0)
    for s in range(0, 2000, 400):
        np.testing.assert_array_equal(
            tree.update(x[s : s + 400], r[s : s + 400]), gemm.update(x[s : s + 400], r[s : s + 400])
        )


def test_fast_alp_gmm_queries_only_the_rows_its_fits_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # big batches cross several fit boundaries; only the newest window is fitted, so the
    # rows before it are stored unqueried. Every window submitted and every row kept must
    # equal what querying every row gives, and so must the tasks sampled afterwards.
    def run(query_all: bool) -> tuple[list[np.ndarray], list, dict]:
        t = make_teacher("alp_gmm", SPACE, seed=3, fit_rate=50, refit_executor="inline")
        assert isinstance(t._alp, WindowALP)
        update = t._alp.update
        monkeypatch.setattr(
            t._alp,
            "update",
            lambda x, r, query_from=0: (skipped.append(query_from), update(x, r, 0 if query_all else query_from))[1],
        )
        fitted: list[np.ndarray] = []
        submit = t._submit
        monkeypatch.setattr(t, "_submit", lambda data: (fitted.append(data.copy()), submit(data)))
        tasks = []
        for n in (7, 130, 1, 260, 49, 333, 50, 1024):
            tasks += _params(_step(t, n))
        return fitted, tasks, t.state_dict()

    skipped: list[int] = []
    fitted, tasks, state = run(query_all=False)
    assert max(skipped) > 900  # the 1,024 batch: only its last window and the rows after it were queried
    want_fitted, want_tasks, want_state = run(query_all=True)
    assert len(fitted) == len(want_fitted) == 6  # the batches that cross a multiple of 50
    for got, want in zip(fitted, want_fitted):
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got, want)
    assert tasks == want_tasks
    assert json.dumps(state, default=repr) == json.dumps(want_state, default=repr)


def test_window_alp_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(2)
    x, r = rng.uniform(0, 1, (300, 2)), rng.uniform(0, 1, 300)
    a = WindowALP(2, 50)
    a.update(x[:170], r[:170])
    b = WindowALP(2, 50)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.update(x[170:], r[170:]), b.update(x[170:], r[170:]))


# --------------------------------------------------------------- determinism & state
@pytest.mark.parametrize("cfg", [FAST, FAST_WARM, REF], ids=["fast", "fast-warm", "reference"])
def test_same_seed_and_outcomes_give_the_same_tasks(cfg: dict) -> None:
    runs = []
    for _ in range(2):
        with make_teacher("alp_gmm", SPACE, seed=3, **cfg) as t:
            runs.append([p for _ in range(8) for p in _params(_step(t, 7))])
            assert t.stats()["fits"] >= 2
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "cfg",
    [FAST, FAST_WARM, dict(REF, refit_executor="thread"), REF],
    ids=["fast-thread", "fast-warm", "reference-thread", "reference-inline"],
)
def test_state_round_trip_mid_run_even_with_a_pending_fit(cfg: dict) -> None:
    a = make_teacher("alp_gmm", SPACE, seed=5, **cfg)
    for _ in range(6):
        _step(a, 7)  # 42 episodes: the fit at episode 40 was just submitted
    if cfg["refit_executor"] == "thread":
        assert a.refitter.n_submitted > a.refitter.n_installed  # pending or staged, not live yet
    state = _roundtrip(a.state_dict())
    b = make_teacher("alp_gmm", SPACE, seed=999, **cfg)
    b.load_state_dict(state)
    for _ in range(5):
        ta, tb = _step(a, 9), _step(b, 9)
        assert _params(ta) == _params(tb)
    assert a.stats()["fits"] == b.stats()["fits"]
    a.close()
    b.close()


def test_thread_and_process_executors_give_the_same_run() -> None:
    runs = []
    for executor in ("thread", "process"):
        with make_teacher("alp_gmm", SPACE, seed=8, fit_rate=20, refit_executor=executor) as t:
            runs.append([p for _ in range(7) for p in _params(_step(t, 9))])
            assert t.stats()["fits"] == 2
    assert runs[0] == runs[1]


def test_stats_are_plain_json() -> None:
    with make_teacher("alp_gmm", SPACE, seed=0, fit_rate=20, refit_executor="inline") as t:
        assert t.stats()["bootstrap"] is True
        for _ in range(5):
            _step(t, 10)
        s = json.loads(json.dumps(t.stats()))
    assert s["fits"] == 2 and s["bootstrap"] is False and s["k"] == len(s["component_means"])
    assert len(s["component_covs"][0]) == 2 and len(s["component_alp"]) == s["k"]
    assert s["mean_alp"] >= 0


# -------------------------------------------------------------------- config
def _msg(path: str, text: str) -> str:
    return f"^{re.escape(f'invalid configuration for teacher.alp_gmm:{chr(10)}{path}: {text}')}$"


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(
        ConfigError,
        match=_msg(
            "teacher.alp_gmm",
            "Value error, k_max (5) must be greater than k_min (5): the ks tried are "
            "np.arange(k_min, k_max), got {'k_min': 5, 'k_max': 5}",
        ),
    ):
        make_teacher("alp_gmm", SPACE, k_min=5, k_max=5)
    with pytest.raises(
        ConfigError,
        match=_msg(
            "teacher.alp_gmm",
            "Value error, fit_rate (5) must be at least the largest k tried (10): each fit "
            "uses fit_rate points, got {'fit_rate': 5}",
        ),
    ):
        make_teacher("alp_gmm", SPACE, fit_rate=5)
    with pytest.raises(
        ConfigError,
        match=_msg("teacher.alp_gmm.return_bounds", "Value error, must be (lo, hi) with lo < hi, got (350, -150)"),
    ):
        make_teacher("alp_gmm", SPACE, return_bounds=(350, -150))
    with pytest.raises(
        ConfigError, match=_msg("teacher.alp_gmm.mode", "Input should be 'reference' or 'fast', got 'exact'")
    ):
        make_teacher("alp_gmm", SPACE, mode="exact")
    with pytest.raises(
        ConfigError, match=_msg("teacher.alp_gmm.random_ratio", "Input should be less than or equal to 1, got 1.5")
    ):
        make_teacher("alp_gmm", SPACE, random_ratio=1.5)


def test_only_box_spaces_and_known_presets() -> None:
    with pytest.raises(ConfigError, match=r"^teacher 'alp_gmm' works on box spaces, got Discrete\(\[0, 1, 2\], n=3\)$"):
        make_teacher("alp_gmm", Discrete(3))
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "teacher.alp_gmm.preset: unknown preset 'tdrl'; choose one of "
            "['teachdeeprl', 'teachdeeprl_toy', 'teachmyagent']"
        ),
    ):
        make_teacher("alp_gmm", SPACE, preset="tdrl")


def test_presets_are_the_published_settings() -> None:
    t = make_teacher("alp_gmm", SPACE, preset="teachdeeprl")
    c = t.config
    assert (c.mode, c.fit_rate, c.random_ratio, c.k_min, c.k_max, c.criterion) == ("reference", 250, 0.2, 2, 11, "aic")
    assert (c.return_bounds, c.alp_max_size, c.refit_executor) == ((-150.0, 350.0), None, "inline")
    assert t._ks == list(range(2, 11))
    c = make_teacher("alp_gmm", SPACE, preset="teachmyagent").config
    assert (c.fit_rate, c.random_ratio, c.k_max, c.return_bounds) == (150, 0.05, 10, None)
    assert make_teacher("alp_gmm", SPACE, preset="teachdeeprl_toy").config.return_bounds is None
    assert make_teacher("alp_gmm", SPACE).config.mode == "fast"


@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_return_bounds_rescale_like_teachdeeprl(mode: str) -> None:
    t = make_teacher(
        "alp_gmm", SPACE, seed=0, mode=mode, fit_rate=10, k_max=4, return_bounds=(-150, 350), refit_executor="inline"
    )
    tasks = t.sample(8)
    t.update([Outcome(task_id=x.id, episode_return=r) for x, r in zip(tasks, [-500, -150, 100, 350, 900, 0, 0, 0])])
    st = t._state_dict()
    stored = st["pending_r"] if mode == "fast" else st["alp"]["buf_r"]
    np.testing.assert_allclose(stored, [0.0, 0.0, 0.5, 1.0, 1.0, 0.3, 0.3, 0.3])


# -------------------------------------------------------------------- sampling
@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_samples_stay_in_the_box_and_follow_alp(mode: str) -> None:
    space = Box([-1.0, 0.0, 2.0], [1.0, 6.0, 3.0])
    t = make_teacher(
        "alp_gmm", space, seed=1, mode=mode, fit_rate=30, k_max=5, random_ratio=0.0, refit_executor="inline"
    )
    # component 0 (mean ALP 1) spills over the box edges; component 1 (mean ALP 0, the
    # heavier one) sits far outside, so any draw from it would clip onto the corner (1, 6, 2)
    t._install(
        {
            "weights": np.array([0.3, 0.7]),
            "means": np.array([[0.0, 3.0, 2.5, 1.0], [5, 50, -9, 0.0]]),
            "covariances": np.stack([np.diag([0.25, 1.0, 0.04, 1.0])] * 2),
        }
    )
    t._n_episodes = 30  # past the bootstrap
    tasks = t.sample(500)
    assert all(space.contains(x) for x in tasks)
    arr = np.array(_params(tasks))
    assert np.sum(np.abs(arr[:, 0]) == 1.0) >= 5  # clipped onto the faces
    assert not np.any(np.all(arr == [1.0, 6.0, 2.0], axis=1))  # ALP 0: never picked
    assert {x.origin for x in tasks} == {"sampled"}


def test_fast_sampling_uses_a_fixed_number_of_rng_calls() -> None:
    t = make_teacher("alp_gmm", SPACE, seed=0, fit_rate=20, refit_executor="inline")
    for _ in range(3):
        _step(t, 20)
    calls: list[str] = []

    class Counting:
        def __init__(self, rng: np.random.Generator) -> None:
            self._rng = rng

        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(self._rng, name)

    t.rng = Counting(t.rng)  # type: ignore[assignment]
    tasks = t.sample(2000)
    assert len(tasks) == 2000 and len(calls) <= 4, calls
    assert 0.1 < np.mean([x.origin == "uniform" for x in tasks]) < 0.3  # random_ratio 0.2


def test_refit_never_blocks_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    slow_gmm_fits(monkeypatch, 1.5)
    with make_teacher("alp_gmm", SPACE, seed=0, fit_rate=20, refit_executor="thread") as t:
        _step(t, 20)  # submits the (slow) first fit
        assert t.refitter.busy
        t0 = time.perf_counter()
        for _ in range(10):
            assert len(t.sample(64)) == 64
        assert time.perf_counter() - t0 < 0.5
        assert t.refitter.busy  # the fit was still running the whole time
        t0 = time.perf_counter()
        _step(t, 5)  # next_update swap: update waits for the fit and installs it
        assert time.perf_counter() - t0 > 0.2 and t.stats()["fits"] == 1


class _BusyProbe(ALPGMMTeacher):
    """Records, on entering its update rule, whether the fit due at this update still runs."""

    seen: list[bool]

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        self.seen.append(self.refitter.busy)
        super()._update(tasks, outcomes)


@pytest.mark.parametrize("reads_model", [False, True])
def test_update_works_while_its_due_fit_runs(monkeypatch: pytest.MonkeyPatch, reads_model: bool) -> None:
    """GMM updates never read the mixture, so the swap wait moves after their own work."""
    slow_gmm_fits(monkeypatch, 1.0)  # far longer than the sample and update between submit and swap
    monkeypatch.setattr(_BusyProbe, "update_reads_model", reads_model)
    t = _BusyProbe(SPACE, ALPGMMTeacher.Config(seed=0, fit_rate=20))
    t.seen = []
    try:
        _step(t, 20)  # submits the first fit
        _step(t, 5)  # the swap point of that fit
        assert t.seen == [False, not reads_model]
        assert t.stats()["fits"] == 1  # installed before update returned, either way
    finally:
        t.close()


def test_late_swap_wait_samples_the_same_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for a due fit at the end of an update instead of its start changes no task."""
    assert not ALPGMMTeacher.update_reads_model  # the default this test shows is safe
    runs = []
    for reads_model in (True, False):
        monkeypatch.setattr(ALPGMMTeacher, "update_reads_model", reads_model)
        with make_teacher("alp_gmm", SPACE, seed=3, fit_rate=40, refit_executor="thread") as t:
            runs.append([_params(_step(t, 16)) for _ in range(30)])
            assert t.stats()["fits"] >= 10
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------- toy


def test_toy_env_fast_alp_gmm_beats_random() -> None:
    random = toy_mastered(make_teacher("random", SPACE, seed=0), 3000)
    with make_teacher("alp_gmm", SPACE, seed=0, fit_rate=250, refit_executor="inline") as t:
        fast = toy_mastered(t, 3000)
        assert t.stats()["fits"] == 12
    assert random == 0 and fast >= 2


@pytest.mark.slow
def test_toy_env_reference_preset_beats_random() -> None:
    with make_teacher("alp_gmm", SPACE, seed=0, preset="teachdeeprl_toy") as t:
        assert toy_mastered(t, 3000) >= 2


def test_teacher_class_registered() -> None:
    assert isinstance(make_teacher("alpgmm", SPACE), ALPGMMTeacher)


def test_refit_lag_keeps_runs_reproducible_and_round_trips():
    """refit_lag>1 defers the swap by a fixed number of updates: still deterministic, and a
    state saved while a fit waits to go live continues exactly like the uninterrupted run."""
    import json

    from openended.tasks import Box, Outcome
    from openended.teachers import make_teacher

    space = Box([0, 0], [1, 1])

    def drive(t, rounds, start=0):
        ids = []
        for r in range(start, start + rounds):
            tasks = t.sample(4)
            ids += [x.id for x in tasks]
            t.update([Outcome(x.id, float(x.params[0] * (r % 7)), t=0.0) for x in tasks])
        return ids

    a = make_teacher("alp_gmm", space, seed=3, fit_rate=20, refit_lag=5)
    b = make_teacher("alp_gmm", space, seed=3, fit_rate=20, refit_lag=5)
    assert drive(a, 30) == drive(b, 30)
    c = make_teacher("alp_gmm", space, seed=99, fit_rate=20, refit_lag=5)
    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert drive(a, 12, 30) == drive(c, 12, 30)
    for t in (a, b, c):
        t.close()


@pytest.mark.parametrize("teacher", ["alp_gmm", "covar_gmm"])
def test_reference_fits_pin_every_thread_pool_from_the_first_fit(teacher: str) -> None:
    """sklearn brings its own OpenMP runtime when first imported. Every reference fit, the
    first included, must run with it (and every BLAS) pinned to one thread: unpinned, its
    spinning k-means threads made the reference preset slower than the original code."""
    import subprocess
    import sys

    code = f"""
import json
import openended.teachers.gmm.base as base
from threadpoolctl import threadpool_info
from openended.tasks import Box, Outcome
from openended.teachers import make_teacher

seen = []
real = base.fit_reference
def spy(*args):
    seen.append(sorted({{(i["internal_api"], i["num_threads"]) for i in threadpool_info()}}))
    return real(*args)
base.fit_reference = spy
t = make_teacher({teacher!r}, Box([0, 0], [1, 1]), preset="teachdeeprl_toy", fit_rate=20, k_max=4)
for _ in range(3):
    tasks = t.sample(20)
    t.update([Outcome(task_id=x.id, episode_return=float(x.params[0])) for x in tasks])
print(json.dumps(seen))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    fits = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(fits) == 3
    for pools in fits:
        assert "openmp" in {api for api, _ in pools}, pools  # sklearn's runtime is loaded before the first fit
        assert all(n == 1 for _, n in pools), pools


def test_run_single_threaded_pins_pools_loaded_after_its_first_call() -> None:
    """The refitter's cached inventory of thread pools is retaken after new imports."""
    import subprocess
    import sys

    code = """
import json
from threadpoolctl import threadpool_info
from openended.teachers.refit import run_single_threaded
run_single_threaded(lambda: None)  # inventory taken before sklearn is imported
import sklearn.cluster  # noqa: F401  (loads its OpenMP runtime)
info, _ = run_single_threaded(threadpool_info)
print(json.dumps(sorted({(i["internal_api"], i["num_threads"]) for i in info})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    pools = json.loads(out.stdout.strip().splitlines()[-1])
    assert "openmp" in {api for api, _ in pools} and all(n == 1 for _, n in pools), pools
