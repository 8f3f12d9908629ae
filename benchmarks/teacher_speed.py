"""Teacher speed: ALP-GMM refit, sampling and update latency, reference vs fast, one run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/teacher_speed.py --quick                  # about a minute
    .venv/bin/python benchmarks/teacher_speed.py --json teacher_speed.json  # more windows/reps

What it measures (BLAS/OpenMP pinned to one thread in this process, as the teachers'
refit workers pin themselves; the reference is measured in the same run):

* ``refit``: for d in {2, 6, 12}, a sequence of real ALP-GMM fit windows (250 rows of
  ``[task, ALP]``, recorded from a fast ALP-GMM teaching a toy learner whose competence
  spreads over the first two task dimensions; the other dimensions are irrelevant) is
  fitted by the reference (9 sklearn GMMs, k = 2..10, AIC) and by the fast fitter as the
  teacher chains it (default: every k, cold k-means++ starts). Latency p50/p99 per fit;
  also the optional ``k_window=2`` policy (only k_prev +- 2 after the first fit).
* ``sample(1024)`` / ``update(1024 outcomes)``: the public teacher calls (Task objects,
  ids, bookkeeping included), fast default vs the ``teachdeeprl_toy`` reference preset,
  with a full 20k-pair ALP history. ``sample1024_ms`` is measured with no refit in flight;
  ``sample1024_in_loop_ms`` right after an ``update`` (its refit thread then competes for
  the GIL). ``update`` includes everything it does: ALPs of the batch,
  the refits it triggers (reference: inline; fast: submitted to the refit thread, the
  next ``update`` waits for it -- so the fit time is in the fast numbers too).
  Also the parts: drawing 1,024 parameter rows alone, and building 1,024 ``Task``s.
* ``sample during refit``: the worst ``sample(64)`` latency while a refit is in flight
  (loop until the refitter is idle), for the thread and process executors, with fast
  fits and with the slower sklearn fits run off-thread, next to the worst latency with
  no refit in flight.
* ``toy loop``: teacher time (sample(1) + update(1) per episode, TDRL's toy learner) of
  the fast default vs the ``teachdeeprl_toy`` reference preset.

Results to expect (2 shared cores, load ~1): fast refit p50 ~2.5 / 4 / 7.5 ms at d = 2 / 6 /
12 vs 80-120 ms for the reference; sample(1024) ~0.7 ms at d=2 (~1.6 ms at d=12), of which
drawing the parameters is ~0.2 ms and building the Task objects ~0.3 ms; update(1024)
~8 ms at d=2 and ~50 ms at d=12 (the exact 1-NN over 20k pairs; it also indexes the tasks
sampled since the last update); the toy loop ~15-20x less teacher time. No sample waits
for a refit by construction, and the compiled fitter releases the GIL, so with the thread
executor too worst cases stay near the no-refit baseline. Worst cases on a shared machine
are noisy: compare p99 and rerun.

``--teachers NAME ...`` (or ``--teachers all``: every registered Box teacher) measures,
instead, for each named teacher on a 2-D Box with a toy learner, in one run: ``sample(1024)``
and ``update(1024)`` p50 after a 4,096-episode warm-up, the time of one refit / training
step where the teacher has one (GMM refits, GoalGAN's GAN training: the refitter's own fit
timer; SPDL's KL-constrained step: the ``update`` calls that made one), teacher time per
1,000 toy episodes (one episode per ``sample``/``update``) as a ratio to ``random`` measured
in the same run, and the worst ``sample(64)`` while a background training is in flight.

JSON (``--json PATH``): at least ``refit_p50_ms_fast_d12``, ``refit_p50_ms_reference_d12``,
``sample1024_ms``, ``update1024_ms``, ``max_sample_ms_during_refit`` and ratios
``*_speedup`` (reference / fast); plus per-d refit numbers and the parts above.
"""

from __future__ import annotations

import os

# Pin BLAS/OpenMP before numpy loads, in this process only (library code never does).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openended.envs.toy import ToyLearner
from openended.hostinfo import cpu_facts
from openended.tasks import Box, Outcome
from openended.teachers import make_teacher
from openended.teachers.gmm.fit import fit_fast, fit_reference
from openended.teachers.gmm.sampling import sample_box_mixture

KS = list(range(2, 11))


class Learner:
    """TDRL's toy learner (`openended.envs.toy.ToyLearner`) on the first two task dimensions;
    the others are ignored."""

    def __init__(self) -> None:
        self._learners: dict[int, ToyLearner] = {}

    def episode(self, p: tuple) -> float:
        d = len(p)
        if d not in self._learners:
            self._learners[d] = ToyLearner(n_dims=2, extra_dims=d - 2)
        return self._learners[d].episode(p)


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def _drive(t: Any, env: Learner, n: int) -> None:
    tasks = t.sample(n)
    t.update([Outcome(task_id=x.id, episode_return=env.episode(x.params), t=0.0) for x in tasks])


def record_windows(d: int, n_windows: int, seed: int = 0) -> list[np.ndarray]:
    """Real fit windows: what a fast ALP-GMM (fit_rate 250) fits while teaching the learner."""
    space = Box(np.zeros(d), np.ones(d))
    env = Learner()
    out = []
    with make_teacher("alp_gmm", space, seed=seed, refit_executor="inline") as t:
        for _ in range(n_windows):
            _drive(t, env, 250)
            out.append(t._window.rows.copy())
    return out


def bench_refit(d: int, windows: list[np.ndarray], ref_windows: int) -> dict[str, float]:
    ref_t, fast_t, fast_iters = [], [], []
    fit_reference(windows[0], KS, 0, "aic", 1, d)  # untimed: sklearn's first call pays its imports
    for x in windows[:ref_windows]:
        t0 = time.perf_counter()
        fit_reference(x, KS, 0, "aic", 1, d)
        ref_t.append(time.perf_counter() - t0)
    warm = None
    for i, x in enumerate(windows):
        t0 = time.perf_counter()
        warm = fit_fast(x, KS, "aic", warm, (0, i))
        fast_t.append(time.perf_counter() - t0)
        fast_iters.append(warm["n_iter"])
    fast_t = fast_t[1:]  # the first (no previous mixture) is the same work, but also warms caches
    win_t, warm = [], None  # the optional cheaper policy: only k_prev +- 2 after the first fit
    for i, x in enumerate(windows):
        t0 = time.perf_counter()
        warm = fit_fast(x, KS, "aic", warm, (0, i), 2)
        win_t.append(time.perf_counter() - t0)
    win_t = win_t[1:]
    return {
        f"refit_p50_ms_fast_kwindow2_d{d}": _pct(win_t, 50),
        f"refit_p50_ms_reference_d{d}": _pct(ref_t, 50),
        f"refit_p99_ms_reference_d{d}": _pct(ref_t, 99),
        f"refit_p50_ms_fast_d{d}": _pct(fast_t, 50),
        f"refit_p99_ms_fast_d{d}": _pct(fast_t, 99),
        f"refit_fast_em_iters_p50_d{d}": float(np.median(fast_iters)),
        f"refit_speedup_d{d}": _pct(ref_t, 50) / _pct(fast_t, 50),
    }


def _filled_teacher(d: int, reference: bool, history: int) -> tuple[Any, Learner]:
    space = Box(np.zeros(d), np.ones(d))
    kw: dict[str, Any] = {"preset": "teachdeeprl_toy"} if reference else {}
    t = make_teacher("alp_gmm", space, seed=1, **kw)
    env = Learner()
    rng = np.random.default_rng(0)
    # SPEED-ONLY shortcut: fill the ALP history directly (same state an update loop builds)
    x = rng.uniform(0, 1, (history, d))
    r = np.array([env.episode(p) for p in x.tolist()])
    t._alp.update(x, r)
    for _ in range(2):  # two real fits so a mixture is live
        _drive(t, env, 250)
    if t.refitter is not None:
        t.refitter.drain()
    return t, env


def _timed_round(t: Any, env: Learner) -> tuple[float, float]:
    """Seconds of one ``sample(1024)`` and of the ``update`` with its 1,024 outcomes."""
    t0 = time.perf_counter()
    tasks = t.sample(1024)
    ds = time.perf_counter() - t0
    outs = [Outcome(task_id=x.id, episode_return=env.episode(x.params), t=0.0) for x in tasks]
    t0 = time.perf_counter()
    t.update(outs)
    return ds, time.perf_counter() - t0


def bench_sample_update(d: int, reps: int, ref_reps: int, history: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, reference, n_rep in (("fast", False, reps), ("reference", True, ref_reps)):
        t, env = _filled_teacher(d, reference, history)
        s_t, s_loop, u_t = [], [], []
        for _ in range(n_rep):
            ds, du = _timed_round(t, env)
            s_loop.append(ds)
            u_t.append(du)
            if t.refitter is not None:
                t.refitter.drain()  # steady state: no refit in flight for the next timing
            t0 = time.perf_counter()
            t.sample(1024)
            s_t.append(time.perf_counter() - t0)
        sfx = "" if name == "fast" else "_reference"
        out[f"sample1024_ms{sfx}_d{d}"] = _pct(s_t, 50)
        out[f"sample1024_in_loop_ms{sfx}_d{d}"] = _pct(s_loop, 50)  # right after update: refit in flight
        out[f"update1024_ms{sfx}_d{d}"] = _pct(u_t, 50)
        out[f"update1024_p99_ms{sfx}_d{d}"] = _pct(u_t, 99)
        if name == "fast":  # the parts: drawing parameters vs building Task objects
            draw_t, task_t = [], []
            for _ in range(n_rep):
                t0 = time.perf_counter()
                x, _ = sample_box_mixture(t.rng, t._mixture, t._probs, 1024, t.space.low, t.space.high, 0.2, False)
                draw_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                t.space.tasks(x, validate=False)
                task_t.append(time.perf_counter() - t0)
            out[f"sample1024_draw_ms_d{d}"] = _pct(draw_t, 50)
            out[f"sample1024_tasks_ms_d{d}"] = _pct(task_t, 50)
            # the ALP part of update alone: 1,024 queries against the 20k-pair window
            xs_rng = np.random.default_rng(3)
            alp_t = []
            for _ in range(max(3, n_rep // 2)):
                xs = xs_rng.uniform(0, 1, (1024, d))  # fresh tasks (re-sent ones would all tie)
                t0 = time.perf_counter()
                t._alp.update(xs, np.zeros(1024))
                alp_t.append(time.perf_counter() - t0)
            out[f"update1024_alp_ms_d{d}"] = _pct(alp_t, 50)
        t.close()
    out[f"sample1024_speedup_d{d}"] = out[f"sample1024_ms_reference_d{d}"] / out[f"sample1024_ms_d{d}"]
    out[f"update1024_speedup_d{d}"] = out[f"update1024_ms_reference_d{d}"] / out[f"update1024_ms_d{d}"]
    return out


def bench_sample_during_refit(d: int, executor: str, mode: str, refits: int) -> dict[str, float]:
    """Worst sample(64) while a refit is in flight, and with none in flight (baseline)."""
    space = Box(np.zeros(d), np.ones(d))
    kw: dict[str, Any] = {"refit_executor": executor, "prefetch": 0}
    if mode == "reference":
        kw.update(mode="reference", k_max=11)
    t = make_teacher("alp_gmm", space, seed=2, **kw)
    env = Learner()
    during, idle, n_during = [], [], 0
    _drive(t, env, 250)  # first fit (starts the worker)
    t.refitter.drain()
    for _ in range(refits):
        for _ in range(20):  # baseline: no refit in flight
            t0 = time.perf_counter()
            t.sample(64)
            idle.append(time.perf_counter() - t0)
        _drive(t, env, 250)  # update waits for nothing, submits the next refit and returns
        while t.refitter.busy:
            t0 = time.perf_counter()
            t.sample(64)
            during.append(time.perf_counter() - t0)
            n_during += 1
        t.refitter.drain()
    t.close()
    key = f"{executor}_{mode}"
    return {
        f"max_sample_ms_during_refit_{key}": 1e3 * max(during) if during else 0.0,
        f"p50_sample_ms_during_refit_{key}": _pct(during, 50) if during else 0.0,
        f"p99_sample_ms_during_refit_{key}": _pct(during, 99) if during else 0.0,
        f"max_sample_ms_idle_{key}": 1e3 * max(idle),
        f"samples_during_refit_{key}": float(n_during),
        f"refit_ms_{key}": float(np.median(np.asarray(t.refitter.latencies_s) * 1e3)),
    }


def bench_toy_loop(episodes: int) -> dict[str, float]:
    out = {}
    for name, kw in (("fast", {}), ("reference", {"preset": "teachdeeprl_toy"})):
        env = Learner()
        with make_teacher("alp_gmm", Box([0.0, 0.0], [1.0, 1.0]), seed=0, **kw) as t:
            per = []
            t_all = 0.0
            for _ in range(episodes):
                t0 = time.perf_counter()
                x = t.sample(1)[0]
                t1 = time.perf_counter()
                r = env.episode(x.params)
                t2 = time.perf_counter()
                t.update([Outcome(task_id=x.id, episode_return=r, t=0.0)])
                t3 = time.perf_counter()
                per.append((t1 - t0) + (t3 - t2))
                t_all += per[-1]
        out[f"toy_teacher_s_{name}"] = t_all
        out[f"toy_episode_p50_us_{name}"] = float(np.median(per) * 1e6)
        out[f"toy_episode_max_ms_{name}"] = float(max(per) * 1e3)
    out["toy_teacher_speedup"] = out["toy_teacher_s_reference"] / out["toy_teacher_s_fast"]
    out["toy_episodes"] = float(episodes)
    return out


def _table(res: dict[str, float], dims: list[int]) -> None:
    rows = [
        (
            f"refit p50 / p99 ms, d={d}",
            "{:.1f} / {:.1f}".format(res[f"refit_p50_ms_reference_d{d}"], res[f"refit_p99_ms_reference_d{d}"]),
            "{:.1f} / {:.1f}".format(res[f"refit_p50_ms_fast_d{d}"], res[f"refit_p99_ms_fast_d{d}"]),
            "{:.0f}x".format(res[f"refit_speedup_d{d}"]),
        )
        for d in dims
    ]
    rows += [
        (f"refit p50 ms, k_window=2, d={d}", "", "{:.1f}".format(res[f"refit_p50_ms_fast_kwindow2_d{d}"]), "")
        for d in dims
    ]
    for d in (2, 12):
        rows.append(
            (
                f"sample(1024) ms, d={d}",
                "{:.2f}".format(res[f"sample1024_ms_reference_d{d}"]),
                "{:.2f} (draw {:.2f} + Tasks {:.2f}; in loop {:.2f})".format(
                    res[f"sample1024_ms_d{d}"],
                    res[f"sample1024_draw_ms_d{d}"],
                    res[f"sample1024_tasks_ms_d{d}"],
                    res[f"sample1024_in_loop_ms_d{d}"],
                ),
                "{:.0f}x".format(res[f"sample1024_speedup_d{d}"]),
            )
        )
        rows.append(
            (
                f"update(1024) ms, d={d}",
                "{:.1f}".format(res[f"update1024_ms_reference_d{d}"]),
                "{:.1f} (ALP alone {:.1f})".format(res[f"update1024_ms_d{d}"], res[f"update1024_alp_ms_d{d}"]),
                "{:.0f}x".format(res[f"update1024_speedup_d{d}"]),
            )
        )
    for key in ("thread_fast", "process_fast", "thread_reference", "process_reference"):
        if f"max_sample_ms_during_refit_{key}" in res:
            ex, fits = key.split("_")
            rows.append(
                (
                    f"worst sample(64) ms during a refit ({ex} executor, {fits} fits)",
                    "-",
                    "max {:.2f}, p99 {:.2f} (idle max {:.2f}; {:d} samples, fits of {:.0f} ms)".format(
                        res[f"max_sample_ms_during_refit_{key}"],
                        res[f"p99_sample_ms_during_refit_{key}"],
                        res[f"max_sample_ms_idle_{key}"],
                        int(res[f"samples_during_refit_{key}"]),
                        res[f"refit_ms_{key}"],
                    ),
                    "",
                )
            )
    rows.append(
        (
            "toy loop teacher s ({:d} eps)".format(int(res["toy_episodes"])),
            "{:.2f}".format(res["toy_teacher_s_reference"]),
            "{:.2f}".format(res["toy_teacher_s_fast"]),
            "{:.0f}x".format(res["toy_teacher_speedup"]),
        )
    )
    try:
        from rich.console import Console
        from rich.table import Table

        tab = Table(title="ALP-GMM teacher speed (reference = teachDeepRL semantics, fast = default)")
        for c in ("what", "reference", "fast", "ratio"):
            tab.add_column(c)
        for r in rows:
            tab.add_row(*r)
        Console().print(tab)
    except ImportError:  # pragma: no cover - rich is a core dependency
        for r in rows:
            print(" | ".join(r))


def _teacher_kwargs(name: str) -> dict[str, Any]:
    """Settings for the per-teacher table: ADR in the toy learner's units, the rest defaults."""
    return {"preset": "toy"} if name == "adr" else {}


def bench_teacher(name: str, reps: int, loop_episodes: int) -> dict[str, float]:
    """sample(1024) / update(1024) p50, refit or training step, teacher ms per 1,000 episodes."""
    space = Box([0.0, 0.0], [1.0, 1.0])
    env = Learner()
    out: dict[str, float] = {}
    t = make_teacher(name, space, seed=0, **_teacher_kwargs(name))
    try:
        for _ in range(4):
            _drive(t, env, 1024)
        samples, updates = [], []
        for _ in range(reps):
            ds, du = _timed_round(t, env)
            samples.append(ds)
            updates.append(du)
        out[f"{name}_sample1024_ms"] = _pct(samples, 50)
        out[f"{name}_update1024_ms"] = _pct(updates, 50)
        st = t.stats()
        if "refit_ms_p50" in st:
            out[f"{name}_refit_ms"] = float(st["refit_ms_p50"])
    finally:
        t.close()
    t = make_teacher(name, space, seed=1, **_teacher_kwargs(name))
    steps: list[float] = []
    teacher_s = 0.0
    try:
        for _ in range(loop_episodes):
            it = getattr(t, "iteration", None)
            t0 = time.perf_counter()
            x = t.sample(1)[0]
            t1 = time.perf_counter()
            r = env.episode(x.params)
            t2 = time.perf_counter()
            t.update([Outcome(task_id=x.id, episode_return=r, t=0.0)])
            t3 = time.perf_counter()
            teacher_s += (t1 - t0) + (t3 - t2)
            if it is not None and getattr(t, "iteration", None) != it:
                steps.append(t3 - t2)
        out[f"{name}_ms_per_1k_episodes"] = teacher_s * 1e3 / loop_episodes * 1000
        if steps:
            out[f"{name}_step_ms"] = _pct(steps, 50)
        st = t.stats()
        if "refit_ms_p50" in st and f"{name}_refit_ms" not in out:
            out[f"{name}_refit_ms"] = float(st["refit_ms_p50"])
    finally:
        t.close()
    return out


def bench_sample_while_training(name: str, n: int = 20) -> dict[str, float]:
    """Worst sample(64) while a background refit / GAN training is in flight, and with none."""
    t = make_teacher(name, Box([0.0, 0.0], [1.0, 1.0]), seed=2, refit_executor="thread")
    env = Learner()
    busy: list[float] = []
    idle: list[float] = []
    try:
        while len(busy) < n:
            _drive(t, env, 64)
            assert t.refitter is not None
            for _ in range(n):
                target = busy if t.refitter.busy else idle
                t0 = time.perf_counter()
                t.sample(64)
                target.append(time.perf_counter() - t0)
    finally:
        t.close()
    return {f"{name}_max_sample64_ms_training": _pct(busy, 100), f"{name}_max_sample64_ms_idle": _pct(idle, 100)}


def main_teachers(names: list[str], quick: bool, json_path: Path | None) -> None:
    """The per-teacher table (``--teachers``)."""
    from openended.teachers import list_teachers, teacher_class

    if names == ["all"]:
        names = [n for n in list_teachers() if "box" in teacher_class(n).space_kinds and n != "sequential"]
    if "random" not in names:
        names = ["random", *names]
    reps, loop = (3, 2000) if quick else (10, 10_000)
    res: dict[str, Any] = {}
    t_start = time.perf_counter()
    with threadpool_limits(limits=1):
        for name in names:
            res.update(bench_teacher(name, reps, loop))
            print(f"  {name}: done", file=sys.stderr)
        for name in ("goal_gan",):
            if name in names:
                res.update(bench_sample_while_training(name, 5 if quick else 20))
    base = res["random_ms_per_1k_episodes"]
    print(
        f"{'teacher':12s} {'sample(1024) ms':>16s} {'update(1024) ms':>16s} {'refit/step ms':>14s} "
        f"{'ms / 1k episodes':>17s} {'x random':>9s}"
    )
    for name in names:
        step = res.get(f"{name}_refit_ms", res.get(f"{name}_step_ms"))
        per_k = res[f"{name}_ms_per_1k_episodes"]
        res[f"{name}_per_1k_over_random"] = per_k / base
        print(
            f"{name:12s} {res[f'{name}_sample1024_ms']:16.2f} {res[f'{name}_update1024_ms']:16.2f} "
            f"{'-' if step is None else f'{step:.1f}':>14s} {per_k:17.1f} {per_k / base:9.1f}"
        )
    if "goal_gan_max_sample64_ms_training" in res:
        print(
            f"goal_gan worst sample(64): {res['goal_gan_max_sample64_ms_training']:.2f} ms during GAN training, "
            f"{res['goal_gan_max_sample64_ms_idle']:.2f} ms without"
        )
    res["seconds"] = time.perf_counter() - t_start
    res["config"] = {
        "quick": quick,
        "reps": reps,
        "loop_episodes": loop,
        **cpu_facts(),
        "loadavg_at_end": list(os.getloadavg()),
    }
    print(f"done in {res['seconds']:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    if json_path:
        json_path.write_text(json.dumps(res, indent=2, sort_keys=True))
        print(f"wrote {json_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer windows and repetitions (~1 minute)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--teachers", nargs="+", help="per-teacher table instead (names, or 'all' Box teachers)")
    args = ap.parse_args()
    quick = args.quick
    if args.teachers:
        main_teachers(args.teachers, quick, args.json)
        return
    dims = [2, 6, 12]
    n_windows, ref_windows = (9, 6) if quick else (31, 20)
    reps, ref_reps = (7, 2) if quick else (30, 5)
    res: dict[str, Any] = {}
    t_start = time.perf_counter()
    with threadpool_limits(limits=1):
        for d in dims:
            res.update(bench_refit(d, record_windows(d, n_windows), ref_windows))
        for d in (2, 12):
            res.update(bench_sample_update(d, reps, ref_reps, history=20_000))
        for executor in ("thread", "process"):
            res.update(bench_sample_during_refit(12, executor, "fast", 3 if quick else 10))
            res.update(bench_sample_during_refit(2, executor, "reference", 2 if quick else 5))
        res.update(bench_toy_loop(3000 if quick else 20_000))
    # headline keys
    res["refit_p50_ms_fast"] = max(res[f"refit_p50_ms_fast_d{d}"] for d in dims)
    res["sample1024_ms"] = res["sample1024_ms_d2"]
    res["sample1024_ms_reference"] = res["sample1024_ms_reference_d2"]
    res["sample1024_speedup"] = res["sample1024_speedup_d2"]
    res["update1024_ms"] = res["update1024_ms_d2"]
    res["update1024_ms_reference"] = res["update1024_ms_reference_d2"]
    res["update1024_speedup"] = res["update1024_speedup_d2"]
    res["max_sample_ms_during_refit"] = res["max_sample_ms_during_refit_thread_fast"]  # the default config
    res["refit_speedup_d12"] = res["refit_p50_ms_reference_d12"] / res["refit_p50_ms_fast_d12"]
    res["seconds"] = time.perf_counter() - t_start
    res["config"] = {
        "quick": quick,
        "windows": n_windows,
        "reference_windows": ref_windows,
        "reps": reps,
        "python": platform.python_version(),
        "numpy": np.__version__,
        **cpu_facts(),
        "loadavg_at_end": list(os.getloadavg()),
    }
    _table(res, dims)
    print(f"done in {res['seconds']:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, sort_keys=True))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
