"""Throughput of the Procgen and PettingZoo task envs against their upstream envs.

Run: ``python benchmarks/env_speed_procgen.py [--quick] [--json PATH]`` (prints a table;
``--quick`` finishes in well under a minute on 2 cores).

For ``benchmarks/env_speed.py`` this module exposes ``ROWS``: a list of
``(name, make_param_env, make_upstream_env)``. Each factory takes no argument and returns a
`Stepper`: ``run(steps) -> steps_done`` steps the env with random actions (drawn from a
fixed seed, identical for both sides), resetting at episode ends, and ``close()``. A step
is one sub-env step for vector envs (a 16-env batch step counts 16) and one joint step for
PettingZoo envs. The ``*_task_per_episode`` row draws a random task every episode and
compares against the do-it-yourself alternative (a new upstream env per episode with the
same task); the other rows run one task on both sides (pure wrapper overhead). The ratio
reported is ``param steps/s / upstream steps/s`` measured in the
same process, interleaved (A, B, A, B, ...; median of the rounds), because absolute speeds
on shared machines are noise. The default clock is the process's CPU time
(``--clock process``): on a 2-core machine shared with other jobs (load average ~12 when
this was written) wall-clock rates swung 2x between rounds while CPU-time rates stayed
within ~10%. Everything runs in the calling thread (procgen ``num_threads=0`` on both
sides), so CPU time is the whole cost; ``--clock wall`` measures wall time instead.
Procgen rows build every training level's start state before timing
(``prebuild_states=True``), i.e. they report the steady state; the one-off cost is in
``procgen_level_switch_ms["cache_miss_probe_build"]``.

JSON: ``procgen_over_upstream`` and ``pettingzoo_over_upstream`` (geometric means over each
group's rows), ``rows`` (per-row steps/s and ratio) and ``procgen_level_switch_ms`` (the
mechanism comparison: cost of putting a sub-env on another level by writing a cached
start state, by a cache miss, or by rebuilding a ``num=1`` env).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["ROWS", "Stepper", "measure", "level_switch_costs", "main"]

SEED = 0
NUM_ENVS = 16
PROCGEN_THREADS = 0  # same for both sides; 0 was fastest on 2 cores (procgen's default is 4)


class Stepper(Protocol):
    def run(self, steps: int) -> int: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------ procgen
class _ProcgenVector:
    """Our ProcgenVectorTaskEnv; optionally with a PLR teacher choosing every new episode's level."""

    def __init__(self, game: str, teacher: bool) -> None:
        from openended.envs.procgen import ProcgenVectorTaskEnv
        from openended.teachers import make_teacher

        self.env = ProcgenVectorTaskEnv(
            num_envs=NUM_ENVS, game=game, num_levels=200, num_threads=PROCGEN_THREADS, prebuild_states=True
        )
        self.teacher = make_teacher("plr", self.env.task_space(), seed=SEED) if teacher else None
        if self.teacher is not None:
            self.env.set_tasks(self.teacher.sample(NUM_ENVS))
        self.env.reset(seed=SEED)
        self.acts = np.random.default_rng(SEED).integers(0, 15, size=(4096, NUM_ENVS)).astype(np.int32)
        self.k = 0

    def run(self, steps: int) -> int:
        env, acts, done = self.env, self.acts, 0
        while done < steps:
            _, _, _, _, infos = env.step(acts[self.k % len(acts)])
            self.k += 1
            done += NUM_ENVS
            if self.teacher is not None and "_final_info" in infos:
                idx = np.flatnonzero(infos["_final_info"])
                for i, t in zip(idx.tolist(), self.teacher.sample(len(idx))):
                    env.set_task(t, index=i)  # the episode after the next (same-step autoreset)
                self.teacher.update(env.pop_outcomes())
        return done

    def close(self) -> None:
        self.env.close()


class _ProcgenUpstream:
    """Raw ``ProcgenGym3Env(num=16, num_levels=200)``: procgen picks levels itself."""

    def __init__(self, game: str) -> None:
        from procgen import ProcgenGym3Env

        self.env = ProcgenGym3Env(
            num=NUM_ENVS,
            env_name=game,
            num_levels=200,
            start_level=0,
            distribution_mode="easy",
            rand_seed=SEED,
            num_threads=PROCGEN_THREADS,
        )
        self.acts = np.random.default_rng(SEED).integers(0, 15, size=(4096, NUM_ENVS)).astype(np.int32)
        self.k = 0

    def run(self, steps: int) -> int:
        env, acts, done = self.env, self.acts, 0
        while done < steps:
            env.act(acts[self.k % len(acts)])
            env.observe()
            self.k += 1
            done += NUM_ENVS
        return done

    def close(self) -> None:
        self.env.close()


class _ProcgenSingle:
    """Our single gymnasium ProcgenTaskEnv (what an RLlib runner steps), a new uniform level per episode."""

    def __init__(self, game: str) -> None:
        from openended.envs.procgen import ProcgenTaskEnv

        self.env = ProcgenTaskEnv(game=game, num_levels=200, prebuild_states=True)
        self.env.reset(seed=SEED)
        self.acts = np.random.default_rng(SEED).integers(0, 15, size=8192).tolist()
        self.k = 0

    def run(self, steps: int) -> int:
        env, acts = self.env, self.acts
        for _ in range(steps):
            _, _, te, tr, _ = env.step(acts[self.k % len(acts)])
            self.k += 1
            if te or tr:
                env.reset()
        return steps

    def close(self) -> None:
        self.env.close()


class _ProcgenSingleUpstream(_ProcgenUpstream):
    def __init__(self, game: str) -> None:
        from procgen import ProcgenGym3Env

        self.env = ProcgenGym3Env(
            num=1, env_name=game, num_levels=200, start_level=0, distribution_mode="easy", rand_seed=SEED, num_threads=0
        )
        self.acts = np.random.default_rng(SEED).integers(0, 15, size=(8192, 1)).astype(np.int32)
        self.k = 0

    def run(self, steps: int) -> int:
        env, acts = self.env, self.acts
        for _ in range(steps):
            env.act(acts[self.k % len(acts)])
            env.observe()
            self.k += 1
        return steps


# --------------------------------------------------------------------------- pettingzoo
class _PZ:
    """Any PettingZoo parallel env; ``tasks`` (optional) draws a new task per episode."""

    def __init__(self, env: Any, tasks: Callable[[], Any] | None = None) -> None:
        self.env, self.tasks = env, tasks
        self.rng = np.random.default_rng(SEED)
        agents = list(env.possible_agents)
        sp = env.action_space(agents[0])
        self.discrete = hasattr(sp, "n")
        n = 4096
        if self.discrete:
            self.table = self.rng.integers(0, sp.n, size=(n, len(agents)))
        else:
            self.table = self.rng.uniform(-1, 1, size=(n, len(agents), *sp.shape)).astype(np.float32)
        self.col = {a: i for i, a in enumerate(agents)}
        self.k = 0
        self.env.reset(seed=SEED)

    def run(self, steps: int) -> int:
        env, table, col = self.env, self.table, self.col
        for _ in range(steps):
            if not env.agents:
                if self.tasks is not None:
                    env.set_task(self.tasks())
                env.reset()
            row = table[self.k % len(table)]
            self.k += 1
            env.step({a: (int(row[col[a]]) if self.discrete else row[col[a]]) for a in env.agents})
        return steps

    def close(self) -> None:
        self.env.close()


def _spread_param_fixed() -> _PZ:
    from openended.envs.multiagent import SimpleSpreadTaskEnv

    return _PZ(SimpleSpreadTaskEnv(min_agents=3, max_agents=3))


def _spread_param_random_tasks() -> _PZ:
    from openended.envs.multiagent import SimpleSpreadTaskEnv

    env = SimpleSpreadTaskEnv()
    rng = np.random.default_rng(SEED)
    return _PZ(env, lambda: env.task_space().sample_uniform(rng, 1)[0])


class _SpreadRebuild:
    """The do-it-yourself alternative to a task env: a new upstream env per episode, built
    from the same task sequence the task env gets."""

    def __init__(self) -> None:
        from mpe2 import simple_spread_v3

        from openended.envs.multiagent import SimpleSpreadTaskEnv
        from openended.envs.multiagent.base import round_half_up

        self._mod, self._round = simple_spread_v3, round_half_up
        self.space = SimpleSpreadTaskEnv().task_space()
        self.rng = np.random.default_rng(SEED)
        self.acts = np.random.default_rng(SEED).integers(0, 5, size=(4096, 4))
        self.k = 0
        self.env = None

    def _new_episode(self) -> None:
        p = self.space.sample_uniform(self.rng, 1)[0].params
        if self.env is not None:
            del self.env  # not close(): mpe2's close() quits pygame for the whole process
        self.env = self._mod.parallel_env(N=self._round(p[0]), local_ratio=p[1])
        self.env.reset()

    def run(self, steps: int) -> int:
        for _ in range(steps):
            if self.env is None or not self.env.agents:
                self._new_episode()
            row = self.acts[self.k % len(self.acts)]
            self.k += 1
            self.env.step({a: int(row[i]) for i, a in enumerate(self.env.agents)})
        return steps

    def close(self) -> None:
        self.env = None


def _spread_upstream() -> _PZ:
    from mpe2 import simple_spread_v3

    return _PZ(simple_spread_v3.parallel_env(N=3))


def _tag_param() -> _PZ:
    from openended.envs.multiagent import SimpleTagTaskEnv

    return _PZ(
        SimpleTagTaskEnv(min_good=1, max_good=1, min_adversaries=3, max_adversaries=3, min_obstacles=2, max_obstacles=2)
    )


def _tag_upstream() -> _PZ:
    from mpe2 import simple_tag_v3

    return _PZ(simple_tag_v3.parallel_env())


def _walker_param() -> _PZ:
    from openended.envs.multiagent import MultiwalkerTaskEnv

    env = MultiwalkerTaskEnv(min_walkers=3, max_walkers=3)
    return _PZ(env)


def _walker_upstream() -> _PZ:
    from pettingzoo.sisl.multiwalker import multiwalker

    return _PZ(multiwalker.parallel_env(n_walkers=3))


ROWS: list[tuple[str, Callable[[], Stepper], Callable[[], Stepper]]] = [
    (
        "procgen_coinrun_16env_uniform_levels",
        lambda: _ProcgenVector("coinrun", teacher=False),
        lambda: _ProcgenUpstream("coinrun"),
    ),
    (
        "procgen_bigfish_16env_plr_teacher",
        lambda: _ProcgenVector("bigfish", teacher=True),
        lambda: _ProcgenUpstream("bigfish"),
    ),
    ("procgen_coinrun_single_env", lambda: _ProcgenSingle("coinrun"), lambda: _ProcgenSingleUpstream("coinrun")),
    ("pettingzoo_simple_spread_same_task", _spread_param_fixed, _spread_upstream),
    ("pettingzoo_simple_spread_task_per_episode", _spread_param_random_tasks, _SpreadRebuild),
    ("pettingzoo_simple_tag_same_task", _tag_param, _tag_upstream),
    ("pettingzoo_multiwalker_same_task", _walker_param, _walker_upstream),
]

_STEPS = {"procgen": (48_000, 12_000), "pettingzoo": (6_000, 1_500)}  # (full, quick) per round


# ---------------------------------------------------------------------------- measuring
_CLOCKS = {"process": time.process_time, "wall": time.perf_counter}


def measure(
    make_a: Callable[[], Stepper], make_b: Callable[[], Stepper], steps: int, rounds: int, clock: str = "process"
) -> tuple[float, float]:
    """Median steps/s of A and B, interleaved rounds after one warm-up each."""
    now = _CLOCKS[clock]
    a, b = make_a(), make_b()
    try:
        a.run(max(steps // 10, 1))
        b.run(max(steps // 10, 1))
        ra, rb = [], []
        for _ in range(rounds):
            for s, out in ((a, ra), (b, rb)):
                t0 = now()
                n = s.run(steps)
                out.append(n / max(now() - t0, 1e-9))
        return statistics.median(ra), statistics.median(rb)
    finally:
        a.close()
        b.close()


def level_switch_costs(game: str = "coinrun", n: int = 100) -> dict[str, float]:
    """Milliseconds to put one sub-env on another level, three ways."""
    from procgen import ProcgenGym3Env

    from openended.envs.procgen_levels import LevelStateCache, ProcgenConfig

    cfg = ProcgenConfig(game=game)
    cache = LevelStateCache(cfg)
    env = ProcgenGym3Env(num=NUM_ENVS, num_levels=1, start_level=0, num_threads=0, **cfg.procgen_options())
    t0 = time.perf_counter()
    for lv in range(n):
        cache.get(lv)
    miss = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for k in range(n * 5):
        st = cache.get(k % n)
        env.call_c_func("set_state", k % NUM_ENVS, st, len(st))
    env.observe()
    hit = (time.perf_counter() - t0) / (n * 5)
    t0 = time.perf_counter()
    for lv in range(n):
        e = ProcgenGym3Env(num=1, num_levels=1, start_level=lv, num_threads=0, **cfg.procgen_options())
        e.observe()
        e.close()
    rebuild = (time.perf_counter() - t0) / n
    env.close()
    return {"cached_state_write": hit * 1e3, "cache_miss_probe_build": miss * 1e3, "rebuild_num1_env": rebuild * 1e3}


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (about a minute on 2 cores)")
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per row (default 5, quick 3)")
    ap.add_argument(
        "--clock",
        choices=sorted(_CLOCKS),
        default="process",
        help="process CPU time (default; robust on shared machines) or wall time",
    )
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    rows = []
    print(f"{'row':45s} {'param steps/s':>14s} {'upstream steps/s':>17s} {'ratio':>7s}")
    for name, make_param, make_up in ROWS:
        group = "procgen" if name.startswith("procgen") else "pettingzoo"
        steps = _STEPS[group][1 if args.quick else 0]
        if "single" in name:
            steps //= 8
        p, u = measure(make_param, make_up, steps, rounds, args.clock)
        rows.append({"name": name, "group": group, "param_steps_per_s": p, "upstream_steps_per_s": u, "ratio": p / u})
        print(f"{name:45s} {p:14,.0f} {u:17,.0f} {p / u:7.2f}", flush=True)
    switch = level_switch_costs(n=40 if args.quick else 100)
    print("procgen level switch (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in switch.items()))
    result = {
        # Parameterisation cost only; the row with a teacher choosing every level also
        # measures the teacher, so it is reported on its own.
        "procgen_over_upstream": _geomean(
            [r["ratio"] for r in rows if r["group"] == "procgen" and "teacher" not in r["name"]]
        ),
        "procgen_with_teacher_over_upstream": _geomean([r["ratio"] for r in rows if "teacher" in r["name"]]),
        "pettingzoo_over_upstream": _geomean([r["ratio"] for r in rows if r["group"] == "pettingzoo"]),
        "rows": rows,
        "procgen_level_switch_ms": switch,
        "quick": args.quick,
        "rounds": rounds,
        "num_envs": NUM_ENVS,
        "procgen_num_threads": PROCGEN_THREADS,
        "clock": args.clock,
    }
    print(
        f"procgen_over_upstream {result['procgen_over_upstream']:.2f} (with a PLR teacher in the loop "
        f"{result['procgen_with_teacher_over_upstream']:.2f})  "
        f"pettingzoo_over_upstream {result['pettingzoo_over_upstream']:.2f}"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    # script mode only (importing ROWS changes no process state): headless pygame for MPE,
    # and the checkout on the path when openended is not installed
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
