"""Env speed: each parameterised family vs its unparameterised upstream env, in one run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/env_speed.py --quick                 # 6 reps, under a minute
    .venv/bin/python benchmarks/env_speed.py --json env_speed.json   # 20 reps x 2,000 steps, ~2-3 min

What it measures: steps per second of one env in one process, random actions, resets
included (an episode that ends is reset at once, as in training). Parameterised envs get
a fresh uniform task from their task space before every reset, so terrain generation is
paid as a curriculum would pay it. For each row the parameterised env and the upstream
env run the same number of steps with the same pre-drawn actions, alternating which goes
first, ``--reps`` times; the ratio is the median of the per-repetition ratios (paired, so
load drift cancels out).

Why CPU time: the development machines have 2 cores shared with other jobs (load
averages of ~10 were seen), where wall-clock steps/s of single repetitions varied by
+-30 % and more. Steps per CPU-second of this process measure what the env costs and are
what wall-clock steps/s equals on an idle core; the wall-clock ratio is reported too.

Rows (adding a family is one entry in ``ROWS``: ``Row(name, make_param_env,
make_upstream_env)`` with two zero-argument constructors; the JSON gets
``<name>_over_upstream``):

* ``stumps`` / ``hexagon``: Stump / Hexagon Tracks (uniform tasks, 1600-step limit as
  upstream) vs ``gymnasium.make("BipedalWalker-v3")``. The terrains differ, so per-step
  physics differs too (fewer or more contacts); that is the family's real cost.
* ``classic``: ``ClassicBipedalEnv`` (upstream terrain, task wrapper) vs the same: the
  pure cost of the task contract.
* ``mg_maze``: the MiniGrid maze family (uniform Box tasks: a layout generated and its
  shortest path solved at every reset, flat float32 observations) vs MiniGrid's own
  ``EmptyEnv`` of the same 13x13 frame, view and step limit (dict observations).
* ``mg_tasks``: ``minigrid_tasks`` with DoorKey-8x8 vs the bare upstream
  ``MiniGrid-DoorKey-8x8-v0`` (``.unwrapped``: no gymnasium checker wrappers): the cost
  of the task contract and the observation encoding.

Results to expect: ratios of about 1.0 (the acceptance bar is >= 0.90). The classic-body
step is gymnasium's own ``BipedalWalker.step``; only reset differs.

Output: a table and, with ``--json PATH``, ``{"stumps_over_upstream": r,
"hexagon_over_upstream": r, "classic_over_upstream": r, "<name>_over_upstream_wall": r,
"rows": {name: {...per-rep numbers...}}, "config": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Row:
    """One comparison: a parameterised env and the upstream env it parameterises."""

    name: str
    make_param_env: Callable[[], Any]
    make_upstream_env: Callable[[], Any]


def _stumps() -> Any:
    from openended.envs import make_env

    return make_env("stump_tracks", max_episode_steps=1600)  # upstream v3's TimeLimit


def _hexagon() -> Any:
    from openended.envs import make_env

    return make_env("hexagon_tracks", max_episode_steps=1600)


def _upstream_bipedal() -> Any:
    import gymnasium as gym

    return gym.make("BipedalWalker-v3")


def _classic() -> Any:
    from openended.envs import make_env

    return make_env("bipedal_walker")


def _minigrid_maze() -> Any:
    from openended.envs import make_env

    return make_env("minigrid_maze")  # 13x13 frame, 7x7 view, 250-step limit


def _upstream_minigrid_empty() -> Any:
    from minigrid.envs import EmptyEnv

    return EmptyEnv(size=13, max_steps=250)  # the same frame, view and limit, no task, no layout


def _minigrid_doorkey() -> Any:
    from openended.envs import make_env

    return make_env("minigrid_tasks", tasks=["DoorKey-8x8"])


def _upstream_minigrid_doorkey() -> Any:
    import gymnasium as gym
    import minigrid  # noqa: F401  # registers the MiniGrid-* ids

    return gym.make("MiniGrid-DoorKey-8x8-v0").unwrapped  # bare env: no checker / order wrappers


ROWS: list[Row] = [
    Row("stumps", _stumps, _upstream_bipedal),
    Row("hexagon", _hexagon, _upstream_bipedal),
    Row("classic", _classic, _upstream_bipedal),
    Row("mg_maze", _minigrid_maze, _upstream_minigrid_empty),
    Row("mg_tasks", _minigrid_doorkey, _upstream_minigrid_doorkey),
]


def measure(env: Any, steps: int, seed: int) -> dict[str, float]:
    """Steps/s of ``env`` over ``steps`` random-action steps (resets included).

    Actions are drawn before the clock starts (from ``env.action_space`` seeded with
    ``seed``), so both envs of a row see the same actions when their spaces match.
    """
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    base = getattr(env, "unwrapped", env)
    space = base.task_space() if hasattr(base, "task_space") else None
    rng = np.random.default_rng(seed)

    def new_task() -> None:
        if space is not None:
            base.set_task(space.sample_uniform(rng, 1)[0])

    new_task()
    env.reset(seed=seed)
    episodes = 0
    reset_cpu = 0.0
    cpu = time.process_time
    start_wall, start_cpu = time.perf_counter(), cpu()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            episodes += 1
            t0 = cpu()
            new_task()
            env.reset()
            reset_cpu += cpu() - t0
    used_cpu = cpu() - start_cpu
    wall = time.perf_counter() - start_wall
    return {
        "steps_per_s": steps / used_cpu,
        "wall_steps_per_s": steps / wall,
        "episodes": episodes,
        "cpu_seconds": used_cpu,
        "wall_seconds": wall,
        "reset_ms": 1e3 * reset_cpu / max(episodes, 1),
        "step_only_steps_per_s": steps / max(used_cpu - reset_cpu, 1e-9),
    }


def run(rows: list[Row], steps: int, reps: int) -> dict[str, Any]:
    """Interleaved repetitions of every row; per-row medians and paired ratios."""
    envs = {row.name: (row.make_param_env(), row.make_upstream_env()) for row in rows}
    for param, upstream in envs.values():  # warm-up: first resets, lazy imports, caches
        measure(param, 200, seed=10_000)
        measure(upstream, 200, seed=10_000)
    results: dict[str, Any] = {row.name: {"param": [], "upstream": [], "ratio": [], "wall_ratio": []} for row in rows}
    for rep in range(reps):
        for row in rows:
            param, upstream = envs[row.name]
            order = [("param", param), ("upstream", upstream)]
            if rep % 2:
                order.reverse()
            got = {kind: measure(env, steps, seed=rep) for kind, env in order}
            res = results[row.name]
            res["param"].append(got["param"])
            res["upstream"].append(got["upstream"])
            res["ratio"].append(got["param"]["steps_per_s"] / got["upstream"]["steps_per_s"])
            res["wall_ratio"].append(got["param"]["wall_steps_per_s"] / got["upstream"]["wall_steps_per_s"])
    for param, upstream in envs.values():
        param.close()
        upstream.close()
    summary: dict[str, Any] = {"rows": {}}
    for row in rows:
        res = results[row.name]
        p = statistics.median(r["steps_per_s"] for r in res["param"])
        u = statistics.median(r["steps_per_s"] for r in res["upstream"])
        ratio = statistics.median(res["ratio"])
        summary["rows"][row.name] = {
            "param_steps_per_s": p,
            "upstream_steps_per_s": u,
            "ratio_paired_median": ratio,
            "ratio_of_medians": p / u,
            "param_reset_ms": statistics.median(r["reset_ms"] for r in res["param"]),
            "upstream_reset_ms": statistics.median(r["reset_ms"] for r in res["upstream"]),
            "param_step_only_steps_per_s": statistics.median(r["step_only_steps_per_s"] for r in res["param"]),
            "upstream_step_only_steps_per_s": statistics.median(r["step_only_steps_per_s"] for r in res["upstream"]),
            "param_episodes": [r["episodes"] for r in res["param"]],
            "upstream_episodes": [r["episodes"] for r in res["upstream"]],
            "per_rep_param_steps_per_s": [r["steps_per_s"] for r in res["param"]],
            "per_rep_upstream_steps_per_s": [r["steps_per_s"] for r in res["upstream"]],
            "per_rep_ratio": res["ratio"],
        }
        summary["rows"][row.name]["wall_ratio_paired_median"] = statistics.median(res["wall_ratio"])
        summary["rows"][row.name]["per_rep_wall_ratio"] = res["wall_ratio"]
        summary[f"{row.name}_over_upstream"] = ratio
        summary[f"{row.name}_over_upstream_wall"] = statistics.median(res["wall_ratio"])
    return summary


def print_table(summary: dict[str, Any]) -> None:
    header = (
        f"{'env':<9}{'param st/s':>11}{'upstream':>10}{'ratio':>7}{'min..max':>12}{'wall ratio':>11}"
        f"{'step-only p/u':>15}{'reset ms p/u':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, r in summary["rows"].items():
        lo, hi = min(r["per_rep_ratio"]), max(r["per_rep_ratio"])
        step_only = f"{r['param_step_only_steps_per_s']:,.0f}/{r['upstream_step_only_steps_per_s']:,.0f}"
        resets = f"{r['param_reset_ms']:.1f}/{r['upstream_reset_ms']:.1f}"
        print(
            f"{name:<9}{r['param_steps_per_s']:>11,.0f}{r['upstream_steps_per_s']:>10,.0f}"
            f"{r['ratio_paired_median']:>7.3f}{f'{lo:.2f}..{hi:.2f}':>12}{r['wall_ratio_paired_median']:>11.3f}"
            f"{step_only:>15}{resets:>14}"
        )
    print("steps/s = env steps per CPU-second of this process (resets included); 'wall ratio' uses wall time.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 reps x 2,000 steps (under a minute)")
    parser.add_argument("--steps", type=int, default=None, help="steps per measurement (default 2,000)")
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 20)")
    parser.add_argument("--rows", nargs="*", default=None, help=f"subset of rows: {[r.name for r in ROWS]}")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument(
        "--no-procgen-pettingzoo",
        action="store_true",
        help="skip the Procgen / PettingZoo rows (benchmarks/env_speed_procgen.py)",
    )
    args = parser.parse_args(argv)
    steps = args.steps or 2_000
    reps = args.reps or (6 if args.quick else 20)
    rows = [r for r in ROWS if args.rows is None or r.name in args.rows]
    if not rows:
        parser.error(f"--rows: none of {args.rows} is a row; choose from {[r.name for r in ROWS]}")
    start = time.perf_counter()
    summary = run(rows, steps, reps)
    summary["config"] = {
        "steps": steps,
        "reps": reps,
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "seconds": time.perf_counter() - start,
    }
    print_table(summary)
    print(f"({reps} interleaved reps x {steps:,} steps per env, {summary['config']['seconds']:.0f} s)")
    if not args.no_procgen_pettingzoo:
        # Procgen and PettingZoo rows live in their own module (vector / multi-agent steppers).
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import env_speed_procgen

        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        more = env_speed_procgen.main(["--quick"] if args.quick else [])
        summary["procgen_over_upstream"] = more["procgen_over_upstream"]
        summary["procgen_with_teacher_over_upstream"] = more["procgen_with_teacher_over_upstream"]
        summary["pettingzoo_over_upstream"] = more["pettingzoo_over_upstream"]
        summary["procgen_pettingzoo"] = more
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
