"""Reference preset vs the original code: ALP-GMM ``teachdeeprl_toy`` against teachDeepRL's own ALP-GMM.

How to run (from the repository root; DIR is a copy of flowersteam/teachDeepRL @ 747cda2,
the folder that contains ``teachDRL/``; it is not an installable package and is never
committed here)::

    .venv/bin/python benchmarks/reference_vs_original.py --original DIR --quick    # ~1 minute
    .venv/bin/python benchmarks/reference_vs_original.py --original DIR --json ref_vs_orig.json

What it does: for each seed, two runs on the same episode budget, one after the other,
each in a fresh Python process started with this process's environment (neither side is
pinned by this script: each library runs as its users run it; ``--pin-env`` sets
``OMP/OPENBLAS/MKL_NUM_THREADS=1`` for both instead, to compare the computations alone):

* **original**: teachDeepRL's ``teachers/algos/alp_gmm.py`` (``ALPGMM`` with its defaults,
  which ``teachdeeprl_toy`` reproduces) driven by teachDeepRL's own toy experiment,
  ``toy_env.test_alpgmm(ToyEnv(), episodes, gif=False)``, after ``np.random.seed(seed)``;
* **ours**: ``make_teacher("alp_gmm", preset="teachdeeprl_toy", seed=seed)`` on our
  `ToyLearner`, through `benchmarks/toy_curriculum.py`'s ``run_one`` (sample(1) ->
  episode -> update(1), the same protocol as the toy-curriculum benchmark).

Per run: wall time, the part of it spent in the learner/env (so "teacher s" = wall -
env: the two toy envs cost different amounts per episode), and % of cells mastered at the
end. The table shows means over seeds and the ratios ours / original (target <= 1.0).

Shims applied to the original at run time (its files are not edited):

* ``teachDRL.teachers.utils.plot_utils`` always, ``seaborn`` and ``matplotlib`` /
  ``matplotlib.pyplot`` when not installed: stubbed; ``toy_env.py`` imports them for its
  gifs and plots, which ``gif=False`` never draws;
* ``teachDRL.teachers.algos.riac``: stubbed (it needs ``treelib``; ``toy_env.py`` imports
  every teacher, ALP-GMM does not use RIAC);
* ``gym``: when not installed, a module whose ``spaces`` is gymnasium's (ALP-GMM only
  uses ``gym.spaces.Box(...).sample()``);
* ``alp_gmm.Box`` is a subclass whose own RNG is seeded from ``np.random`` when built (gym
  seeds it from OS entropy otherwise, so uniform task draws would differ between runs of
  the same seed). It takes one draw from the global stream, right after ALP-GMM seeds it.
No numpy or scikit-learn shim is needed (checked with numpy 2 and scikit-learn 1.9).

JSON (``--json PATH``): ``{"original": {"wall_s": [...], "teacher_s": [...], "mastered":
[...], ...means}, "ours": {...}, "ratio_wall": float, "ratio_teacher": float, "seeds",
"episodes", "load_before", "load_after", "shims"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ORIGINAL_FILES = (
    "teachDRL/teachers/algos/alp_gmm.py",
    "teachDRL/teachers/algos/covar_gmm.py",  # toy_env.py imports every teacher
    "teachDRL/teachers/utils/dataset.py",
    "teachDRL/toy_env/toy_env.py",
)
SHIMS = [
    "teachDRL plot_utils stubbed; seaborn / matplotlib stubbed when not installed (plots are never drawn)",
    "teachDRL.teachers.algos.riac stubbed (needs treelib; unused by ALP-GMM)",
    "gym -> gymnasium.spaces when gym is not installed",
    "alp_gmm.Box seeds its RNG from np.random when built (reproducible uniform draws)",
]


# ---------------------------------------------------------------------------- checks
def check_original(path: Path | None) -> Path:
    """The teachDeepRL copy's root, or SystemExit with what is missing and how to get it."""
    how = (
        "point it at a copy of flowersteam/teachDeepRL @ 747cda2, the folder that contains teachDRL/ "
        "(docs/benchmarks.md says how to extract one)"
    )
    problem = None
    root = path.expanduser().resolve() if path is not None else None
    if root is None:
        problem = "--original DIR is required"
    elif not root.is_dir():
        problem = f"--original {str(path)!r} is not a directory"
    else:
        missing = [f for f in ORIGINAL_FILES if not (root / f).is_file()]
        if missing:
            problem = f"--original {str(path)!r} is not a teachDeepRL copy: it lacks {', '.join(missing)}"
    if problem is not None:
        print(f"reference_vs_original: {problem}; {how}", file=sys.stderr)
        raise SystemExit(2)
    assert root is not None
    return root


# ---------------------------------------------------------------------------- workers
def _stub(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_shims(root: Path) -> None:
    """Make the original importable on this environment (see the module docstring)."""
    sys.path.insert(0, str(root))
    if not _importable("seaborn"):
        _stub("seaborn", set=lambda *a, **k: None)
    if not _importable("matplotlib"):
        plt = _stub("matplotlib.pyplot")
        _stub("matplotlib", pyplot=plt)
    _stub("teachDRL.teachers.utils.plot_utils", region_plot_gif=None, gmm_plot_gif=None, random_plot_gif=None)
    _stub("teachDRL.teachers.algos.riac", RIAC=None)
    if not _importable("gym"):
        import gymnasium

        _stub("gym", spaces=gymnasium.spaces)
    import numpy as np
    from teachDRL.teachers.algos import alp_gmm

    base_box = alp_gmm.Box

    class SeededBox(base_box):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.seed(int(np.random.randint(2**31 - 1)))

    alp_gmm.Box = SeededBox


def run_original(root: Path, seed: int, episodes: int) -> dict[str, Any]:
    """teachDeepRL's toy experiment for ALP-GMM, timed (env time measured separately)."""
    import warnings

    warnings.filterwarnings("ignore")  # gym's deprecation banner, sklearn's convergence notes
    install_shims(root)
    import numpy as np
    from teachDRL.toy_env import toy_env

    class TimedToyEnv(toy_env.ToyEnv):  # type: ignore[misc, name-defined]
        env_s = 0.0

        def episode(self, param: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return super().episode(param)
            finally:
                self.env_s += time.perf_counter() - t0

    np.random.seed(seed)
    env = TimedToyEnv()
    t0 = time.perf_counter()
    # the original loop runs episodes 0..episodes (one more than asked) and scores every
    # score_step episodes *before* that episode: scores[-1] is after `episodes` episodes
    scores = toy_env.test_alpgmm(env, episodes, gif=False, verbose=False, score_step=1000)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "teacher_s": wall - env.env_s, "mastered": float(scores[-1])}


def run_ours(seed: int, episodes: int) -> dict[str, Any]:
    """Our preset through toy_curriculum's protocol (its mode ``teachdeeprl`` = ``teachdeeprl_toy``)."""
    from toy_curriculum import discover_modes, run_one

    (spec,) = [s for s in discover_modes("alp_gmm") if s.mode == "teachdeeprl"]
    assert spec.kwargs == {"preset": "teachdeeprl_toy"}, spec
    r = run_one(spec, seed, episodes, 1, "plain")
    wall = r["seconds"][episodes]
    return {"wall_s": wall, "teacher_s": wall - r["learner_seconds"][episodes], "mastered": r["scores"][episodes]}


def worker(side: str, seed: int, episodes: int, original: str) -> None:
    """Entry point of one run's subprocess: prints one JSON line."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    out = run_original(Path(original), seed, episodes) if side == "original" else run_ours(seed, episodes)
    print(json.dumps({"side": side, "seed": seed, **out}), flush=True)


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def spawn(side: str, seed: int, episodes: int, original: Path, timeout: float, pin_env: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", side, str(seed), str(episodes), "--original", str(original)]
    env = dict(os.environ, **dict.fromkeys(THREAD_VARS, "1")) if pin_env else dict(os.environ)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{side} seed {seed} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- report
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for side in ("original", "ours"):
        mine = sorted((r for r in rows if r["side"] == side), key=lambda r: r["seed"])
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for key in ("wall_s", "teacher_s", "mastered"):
            vals = np.array([r[key] for r in mine], dtype=np.float64)
            entry[key] = vals.tolist()
            entry[f"{key}_mean"] = float(vals.mean())
            entry[f"{key}_std"] = float(vals.std())
        out[side] = entry
    out["ratio_wall"] = out["ours"]["wall_s_mean"] / out["original"]["wall_s_mean"]
    out["ratio_teacher"] = out["ours"]["teacher_s_mean"] / out["original"]["teacher_s_mean"]
    out["ratio_wall_per_seed"] = [a / b for a, b in zip(out["ours"]["wall_s"], out["original"]["wall_s"])]
    return out


def print_table(summary: dict[str, Any], episodes: int, pin_env: bool) -> None:
    def cell(side: str, key: str, fmt: str) -> str:
        e = summary[side]
        return f"{format(e[key + '_mean'], fmt)} ± {format(e[key + '_std'], fmt)}"

    n = len(summary["ours"]["seeds"])
    env = "OMP/OPENBLAS/MKL_NUM_THREADS=1" if pin_env else "thread env as given"
    print(f"ALP-GMM, teachDeepRL toy env, {episodes} episodes, {n} seeds, {env} (mean ± std over seeds)")
    print(f"| {'code':<38} | {'wall s':>13} | {'teacher s':>13} | {'% mastered':>11} |")
    print(f"|{'-' * 40}|{'-' * 15}|{'-' * 15}|{'-' * 13}|")
    for side, label in (("original", "original teachDeepRL ALPGMM"), ("ours", "ours: alp_gmm preset teachdeeprl_toy")):
        print(
            f"| {label:<38} | {cell(side, 'wall_s', '.1f'):>13} | {cell(side, 'teacher_s', '.1f'):>13} "
            f"| {cell(side, 'mastered', '.1f'):>11} |"
        )
    per_seed = ", ".join(f"{r:.2f}" for r in summary["ratio_wall_per_seed"])
    print(
        f"ratio ours / original: wall {summary['ratio_wall']:.2f} (per seed {per_seed}), "
        f"teacher time {summary['ratio_teacher']:.2f}; target <= 1.0"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--original", type=Path, help="root of a teachDeepRL copy (the folder containing teachDRL/)")
    ap.add_argument("--quick", action="store_true", help="2 seeds x 5k episodes (about a minute)")
    ap.add_argument("--seeds", type=int, help="seeds (default 3; quick 2)")
    ap.add_argument("--episodes", type=int, help="episodes per run (default 20k, as docs/teachers.md; quick 5k)")
    ap.add_argument("--json", type=Path, help="write the summary JSON here")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run")
    ap.add_argument("--pin-env", action="store_true", help="run both sides with OMP/OPENBLAS/MKL_NUM_THREADS=1")
    ap.add_argument("--worker", nargs=3, metavar=("SIDE", "SEED", "EPISODES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root = check_original(args.original)
    if args.worker:
        side, seed, episodes = args.worker
        worker(side, int(seed), int(episodes), str(root))
        return 0
    seeds = args.seeds or (2 if args.quick else 3)
    episodes = args.episodes or (5_000 if args.quick else 20_000)
    load_before = os.getloadavg()[0]
    print(
        f"{seeds} seeds x {episodes} episodes, original then ours per seed, "
        f"{'pinned' if args.pin_env else 'inherited'} thread env; load {load_before:.1f}",
        file=sys.stderr,
    )
    rows = []
    for seed in range(seeds):
        for side in ("original", "ours"):
            r = spawn(side, seed, episodes, root, args.timeout, args.pin_env)
            print(
                f"  {side:8s} seed {seed}: {r['wall_s']:6.1f} s (teacher {r['teacher_s']:5.1f} s), "
                f"{r['mastered']:5.1f} % mastered",
                file=sys.stderr,
            )
            rows.append(r)
    summary = summarise(rows)
    summary.update(
        {
            "episodes": episodes,
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "cpus": os.cpu_count(),
            "shims": SHIMS,
            "pin_env": args.pin_env,
            "thread_env": {k: ("1" if args.pin_env else os.environ.get(k)) for k in THREAD_VARS},
        }
    )
    print_table(summary, episodes, args.pin_env)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
