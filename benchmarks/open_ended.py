"""Open-ended curriculum benchmark: tasks above 0.2 success after a fixed budget, two universes.

How to run (from the repository root)::

    .venv/bin/python benchmarks/open_ended.py --quick                 # ~2-3 minutes, 3 seeds
    .venv/bin/python benchmarks/open_ended.py --json open_ended.json  # 5 seeds, longer budget
    .venv/bin/python benchmarks/open_ended.py --setting trs --seeds 2
    .venv/bin/python benchmarks/open_ended.py --seeds 5 --updates 400 --methods uniform lp omni_oracle \
        --protocols train_only universe2                                # the docs' 5-seed table

What it does. The learner is `CrafterSimLearner` (a seeded, pure-numpy learner on
Crafter's achievement graph; see ``openended/envs/crafter_sim.py``), taught OMNI's task
set (``tr`` by default: 105 real tasks + 1,023 impossible dummies) by each teacher with
the *real* teacher code:

* ``uniform``        -- the random teacher (uniform over all 1,128 tasks);
* ``lp``             -- LearningProgressTeacher (OMNI's LP: alpha 0.1, theta 0.1);
* ``omni_embedding`` -- OMNITeacher over LP with the MiniLM embedding-novelty judge;
* ``omni_oracle``    -- OMNITeacher over LP with the rule oracle judge;
* ``webrl``          -- WebRLTeacher (grammar generator, Crafter validator, band 0.05-0.75,
                        LP priority over its pool), on a TextSpace seeded with the same set.

Protocol (OMNI's): ``--batch`` episodes per update; every 25 updates every task is
evaluated ``--eval-attempts`` times (held out, no learning) and those outcomes reach the
teacher flagged ``info["eval"]=True`` in the same update call, so LP's EMA step and OMNI's
partition (every 25 updates) use evaluation success. Success rates are normalised by the
random-agent rate (the sim's untrained success probability). The metric is the number of
the 105 real tasks whose true success probability exceeds 0.2 at the end (OMNI's
``generate_plots.py`` threshold), mean and std over seeds.

A second universe (``universe2``, both protocols): a generated tech tree
(``openended/envs/techtree.py``, ``--tree-levels 10 --tree-width 4``): 40 concepts 0-9 deep
(Crafter's graph is 0-7), each at counts 1-5 in 5 phrasings ("collect 3 clay", "collect clay
x3", "collect clay 3 times", "gather 3 clay", "harvest 3 clay": 25 near-duplicates per
concept), 6 impossible concepts written the same way and the 1,023 dummies: 2,173 tasks,
1,000 of them possible. Its learner is the same model (`PrereqSimLearner`, the same
`SimConfig` defaults) on the tree's graph; the teachers get the same defaults. WebRL is not
run there (its generator and validator speak Crafter's grammar). ``--protocols
universe_trs`` adds the earlier second universe, OMNI's ``trs`` set on Crafter's graph.

Judge-path checks:

* ``sample_p99_ms_slow_judge``: OMNI with a judge that sleeps 2 s per call; ``sample(1)``
  is called 10 times between updates while partitions run; the 99th percentile of its
  wall time (ms). Must stay under 2 ms.
* ``replay_identical``: an OMNI+embedding run recorded with ``RecordingJudge``, then the
  same run with ``ReplayJudge`` from that file: identical sequence of sampled task ids.

Results to expect: see docs/open_ended.md ("Benchmark").
Output: a rich table and, with ``--json PATH``, ``{"uniform": {"mean": ..., "std": ...,
"per_seed": [...], "seconds": ...}, "lp": ..., "omni_embedding": ..., "omni_oracle": ...,
"webrl": ..., "sample_p99_ms_slow_judge": float, "replay_identical": bool, "config": {...},
"train_only": {same per-method blocks, training outcomes only, default settings},
"train_only_reference": {the same with LP's exploration off}, "universe2": {"setting":
"techtree(...)", "tasks": int, "eval": {...}, "train_only": {...}}, "universe_trs": {"setting":
"trs", "eval": ..., "train_only": ...} (when asked), "omni_over_lp_teacher_time": float,
"teacher_time": {...}}``. Each method block also lists ``depth_reached`` per seed: the
deepest concept the learner has mastered at the end (-1: none).

Protocols: the top-level method blocks use OMNI's evaluation sweep; ``train_only`` gives
the teachers training outcomes only (the normal case in an RLlib run without
``evaluation.report_to_teacher``); ``train_only_reference`` repeats it with OMNI's
reference LP (no exploration floor, no optimistic prior) for comparison.

``omni_over_lp_teacher_time``: the caller thread's CPU seconds inside ``sample`` + ``update``
per 1,000 tasks, OMNI (rule oracle judge, default background partitions) over LP, on a
1,200-task text universe (`teacher_time`); the wall-clock ratio and the partition thread's
CPU are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openended.envs.crafter import crafter_task_set
from openended.envs.crafter_sim import CrafterSimLearner
from openended.envs.prereq_sim import PrereqSimLearner
from openended.envs.registry import env_task_validator
from openended.envs.techtree import TechTree, techtree_learner
from openended.moi.base import JudgeContext, Judgement
from openended.tasks import Discrete, Outcome, Task, TextSpace
from openended.teachers import make_teacher

METHODS = ("uniform", "lp", "omni_embedding", "omni_oracle", "webrl")
#: A learner factory: (task texts, seed) -> a simulated learner holding those tasks.
Learner = Callable[[list[str], int], PrereqSimLearner]


def crafter_learner(tasks: list[str], seed: int) -> PrereqSimLearner:
    """`CrafterSimLearner` (the learner of the ``tr`` / ``trs`` universes)."""
    return CrafterSimLearner(tasks, seed=seed)


def techtree_universe(levels: int, width: int, seed: int = 0) -> tuple[list[str], Learner]:
    """``universe2``: a generated tech tree (``levels - 1`` deep), its task set and learner."""
    tree = TechTree(levels=levels, width=width, seed=seed)
    return tree.task_set(), lambda tasks, s: techtree_learner(tree, tasks, seed=s)


# The reference switches: OMNI's LP exactly (no exploration floor, no optimistic prior).
REFERENCE_LP = {"explore": 0.0, "optimistic_new": False}


def make_method(
    method: str,
    tasks: list[str],
    baseline: dict[str, float],
    seed: int,
    period: int,
    judge: Any = None,
    reference: bool = False,
) -> Any:
    """The teacher for one method (the space is built here); ``reference`` turns exploration off."""
    explore = REFERENCE_LP if reference else {}
    lp_cfg = {"update_every": period, "random_baseline": baseline, **explore}
    if method == "uniform":
        return make_teacher("random", Discrete(tasks), seed=seed)
    if method == "lp":
        return make_teacher("lp", Discrete(tasks), seed=seed, **lp_cfg)
    if method.startswith("omni"):
        j = judge if judge is not None else ("embedding" if method == "omni_embedding" else "oracle")
        return make_teacher(
            "omni",
            Discrete(tasks),
            seed=seed,
            judge=j,
            partition_every=period,
            base_config=lp_cfg,
            refit_swap="next_update",  # reproducible figures (the default, asap, depends on thread timing)
            **({"explore": 0.0} if reference else {}),  # OMNI's own floor (after the MoI weighting)
        )
    if method == "webrl":
        return make_teacher(
            "webrl",
            TextSpace(tasks, max_length=512),
            seed=seed,
            lp_update_every=period,
            phase_every=2 * period,
            validator=env_task_validator("crafter"),  # as an experiment on the crafter family gets it
            **explore,
        )
    raise ValueError(method)


def run_one(
    method: str,
    tasks: list[str],
    seed: int,
    updates: int,
    batch: int,
    period: int,
    eval_attempts: int,
    judge: Any = None,
    trace: list[str] | None = None,
    reference: bool = False,
    learner: Learner = crafter_learner,
) -> dict[str, Any]:
    """Teach one seeded learner; returns the metric and timing. ``eval_attempts=0``: training outcomes only."""
    sim = learner(tasks, seed)
    real = np.flatnonzero(sim.possible())
    p0 = sim.success_prob()
    baseline = {t: float(p) for t, p in zip(tasks, p0)}
    teacher = make_method(method, tasks, baseline, seed, period, judge, reference)
    fixed = Discrete(tasks).all_tasks
    t0 = time.perf_counter()
    try:
        for u in range(updates):
            ts = teacher.sample(batch)
            if trace is not None:
                trace.extend(t.id for t in ts)
            idx = sim.indices([t.text or "" for t in ts])
            succ = sim.run_episodes(idx)
            outs = [Outcome(t.id, float(s), success=bool(s)) for t, s in zip(ts, succ.tolist())]
            if eval_attempts and method != "uniform" and (u + 1) % period == 0:
                # every task the teacher knows (WebRL's pool grows), as OMNI evaluates its whole set
                known = teacher.known_tasks() if hasattr(teacher, "known_tasks") else fixed
                outs += eval_outcomes(sim, known, eval_attempts)
            teacher.update(outs)
        stats = teacher.stats()
    finally:
        teacher.close()
    p = sim.success_prob(real)
    depth = sim.graph.depth()
    reached = [depth[a] for a, ok in sim.mastered().items() if ok]
    return {
        "depth_reached": max(reached, default=-1),
        "n_above_0.2": int((p > 0.2).sum()),
        "n_above_0.05": int((p > 0.05).sum()),
        "n_above_0.4": int((p > 0.4).sum()),
        "seconds": time.perf_counter() - t0,
        "generated": int(stats.get("webrl/generated", 0)),
        "boring": int(stats.get("omni/boring", 0)),
    }


def eval_outcomes(sim: PrereqSimLearner, tasks: Sequence[Task], attempts: int) -> list[Outcome]:
    """Held-out evaluation of every task (no learning), as eval-flagged outcomes."""
    idx = sim.indices([t.text or "" for t in tasks])
    wins = sim.evaluate(idx, attempts)
    out = []
    ev = {"eval": True}
    for t, w in zip(tasks, wins.tolist()):
        out += [Outcome(t.id, 1.0, success=True, info=ev)] * w
        out += [Outcome(t.id, 0.0, success=False, info=ev)] * (attempts - w)
    return out


class SlowJudge:
    """Takes ``delay`` seconds per call (like a remote LLM), then answers like ``inner``.

    Waiting is on an event, so ``stop()`` ends the measurement without waiting out the
    remaining calls of a partition in flight.
    """

    name = "slow"

    def __init__(self, inner: Any, delay: float = 2.0) -> None:
        self.inner, self.delay = inner, delay
        self._stop = threading.Event()
        self.calls = 0

    def judge(self, candidates: Sequence[Any], context: JudgeContext) -> list[Judgement]:
        self.calls += 1
        self._stop.wait(self.delay)
        return self.inner.judge(candidates, context)

    def stop(self) -> None:
        self._stop.set()


def slow_judge_latency(
    tasks: list[str], delay: float = 2.0, updates: int = 100, period: int = 5, swap: str = "asap"
) -> dict[str, float]:
    """Sample latency while partitions wait on a slow judge (``sample(1)`` x10 per update)."""
    from openended.moi.oracle import RuleOracleJudge

    sim = CrafterSimLearner(tasks, seed=0)
    judge = SlowJudge(RuleOracleJudge(), delay)
    teacher = make_teacher(
        "omni",
        Discrete(tasks),
        seed=0,
        judge=judge,
        partition_every=period,
        base_config={"update_every": period},
        refit_swap=swap,
        judge_batch_size=4096,
    )
    lat: list[float] = []
    upd: list[float] = []
    busy = 0
    try:
        for _ in range(updates):
            ts = []
            for _ in range(10):
                busy += bool(teacher.refitter is not None and teacher.refitter.busy)
                t0 = time.perf_counter()
                ts += teacher.sample(1)
                lat.append(time.perf_counter() - t0)
                time.sleep(0.01)  # the learner's work between requests
            succ = sim.run_episodes(sim.indices([t.text or "" for t in ts]))
            t1 = time.perf_counter()
            teacher.update([Outcome(t.id, float(s), success=bool(s)) for t, s in zip(ts, succ.tolist())])
            upd.append(time.perf_counter() - t1)
        partitions = teacher.stats()["partitions"]
    finally:
        judge.stop()
        teacher.close()
    a = np.asarray(lat) * 1e3
    return {
        "sample_p99_ms": float(np.percentile(a, 99)),
        "sample_max_ms": float(a.max()),
        "samples": int(a.size),
        "samples_while_judge_busy": busy,
        "update_max_ms": float(np.max(upd) * 1e3),
        "partitions_installed": int(partitions),
        "judge_calls": judge.calls,
        "judge_delay_s": delay,
        "swap": swap,
    }


def teacher_time(
    method: str, updates: int = 200, batch: int = 32, period: int = 25, executor: str = "thread", judge: str = "oracle"
) -> dict[str, float]:
    """Seconds of teacher time (``sample`` + ``update`` in the caller) per 1,000 tasks sampled.

    Universe: 1,200 text tasks (Crafter ``trs``, 630, plus 570 impossible ones) on a
    TextSpace, OMNI's protocol (sweep every ``period`` updates). The learner's own time
    is not counted. ``executor="inline"`` runs OMNI's partitions inside ``update`` (all
    judge work counted); ``"thread"`` (the default) counts what the caller spends.

    ``s_per_1000_tasks`` is the caller thread's CPU time (``time.thread_time``) inside the
    calls: waiting for the GIL held by the judge thread, or for a core taken by another
    process, is not CPU time, so the figure does not move with the machine's load (wall
    time moved the ratio from 1.6x to 8.7x on a shared machine). ``wall_s_per_1000_tasks``
    is the wall-clock time of the same calls; ``background_cpu_s_per_1000_tasks`` is the
    CPU the other threads (the partition/judge worker) used over the run, stated apart.
    """
    tasks = crafter_task_set("trs", 570)
    sim = CrafterSimLearner(tasks, seed=0)
    baseline = {t: float(p) for t, p in zip(tasks, sim.success_prob())}
    space = TextSpace(tasks, max_length=512)
    lp_cfg = {"update_every": period, "random_baseline": baseline}
    if method == "lp":
        teacher = make_teacher("lp", space, seed=0, **lp_cfg)
    else:
        teacher = make_teacher(
            "omni", space, seed=0, judge=judge, partition_every=period, base_config=lp_cfg, refit_executor=executor
        )
    spent = wall = 0.0
    try:
        if judge == "embedding" and method != "lp":
            teacher.judge.judge(["collect wood"], JudgeContext(mastered=("collect stone",)))  # model load: not counted
        cpu0, own0 = time.process_time(), time.thread_time()
        for u in range(updates):
            t0, w0 = time.thread_time(), time.perf_counter()
            ts = teacher.sample(batch)
            spent += time.thread_time() - t0
            wall += time.perf_counter() - w0
            succ = sim.run_episodes(sim.indices([t.text or "" for t in ts]))
            outs = [Outcome(t.id, float(s), success=bool(s)) for t, s in zip(ts, succ.tolist())]
            if (u + 1) % period == 0:
                outs += eval_outcomes(sim, teacher.known_tasks(), 2)
            t0, w0 = time.thread_time(), time.perf_counter()
            teacher.update(outs)
            spent += time.thread_time() - t0
            wall += time.perf_counter() - w0
        background = (time.process_time() - cpu0) - (time.thread_time() - own0)
        stats = teacher.stats()
    finally:
        teacher.close()
    per_1000 = 1000 / (updates * batch)
    return {
        "s_per_1000_tasks": spent * per_1000,
        "wall_s_per_1000_tasks": wall * per_1000,
        "background_cpu_s_per_1000_tasks": max(background, 0.0) * per_1000,
        "partitions": float(stats.get("partitions", 0)),
        "judged_pairs": float(stats.get("judged_pairs", 0)),
    }


def teacher_time_ratio(updates: int = 200) -> dict[str, Any]:
    """``omni_over_lp_teacher_time``: OMNI's teacher time over LP's on the 1,200-task text universe (best of 3)."""
    # Best of 3, interleaved: on a shared machine the slowest runs measure the neighbours.
    runs: dict[str, list[dict[str, float]]] = {"lp": [], "omni": [], "omni_inline": []}
    for _ in range(3):
        runs["lp"].append(teacher_time("lp", updates))
        runs["omni"].append(teacher_time("omni", updates))
        runs["omni_inline"].append(teacher_time("omni", updates, executor="inline"))
    lp, omni, omni_inline = (min(runs[k], key=lambda r: r["s_per_1000_tasks"]) for k in ("lp", "omni", "omni_inline"))
    return {
        "lp": lp,
        "omni": omni,
        "omni_inline": omni_inline,
        "omni_over_lp_teacher_time": omni["s_per_1000_tasks"] / lp["s_per_1000_tasks"],
        "omni_inline_over_lp_teacher_time": omni_inline["s_per_1000_tasks"] / lp["s_per_1000_tasks"],
        "omni_over_lp_teacher_wall_time": omni["wall_s_per_1000_tasks"] / lp["wall_s_per_1000_tasks"],
        "clock": "caller thread CPU time (time.thread_time); wall and background CPU stated apart",
    }


def replay_check(tasks: list[str], updates: int, batch: int, period: int, eval_attempts: int) -> bool:
    from openended.moi.embedding import EmbeddingJudge
    from openended.moi.record import RecordingJudge, ReplayJudge

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "moi.jsonl")
        rec = RecordingJudge(EmbeddingJudge(), path)
        a: list[str] = []
        run_one("omni_embedding", tasks, 0, updates, batch, period, eval_attempts, judge=rec, trace=a)
        rec.close()
        b: list[str] = []
        run_one("omni_embedding", tasks, 0, updates, batch, period, eval_attempts, judge=ReplayJudge(path), trace=b)
    return a == b and len(a) > 0


def _table(results: dict[str, Any], args: argparse.Namespace) -> None:
    universes = ("universe2", "universe_trs")
    blocks = [("eval protocol", results)] + [
        (k, results[k]) for k in args.protocols if k in results and k not in universes
    ]
    for u in universes:
        if u in results:
            blocks += [(f"{u} {k}", results[u][k]) for k in ("eval", "train_only")]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for name, block in blocks:
            for m in METHODS:
                r = block[m]
                print(f"[{name}] {m:16s} {r['mean']:6.1f} ± {r['std']:4.1f}  {r['per_seed']}")
        return
    for name, block in blocks:
        world = results["universe2"]["setting"] if name.startswith("universe2") else f"Crafter '{args.setting}'"
        world = "Crafter 'trs'" if name.startswith("universe_trs") else world
        t = Table(
            title=f"[{name}] {world} sim, {args.updates} updates x {args.batch} episodes "
            f"({args.updates * args.batch:,}), {args.seeds} seeds: real tasks with success > 0.2"
        )
        for col in ("method", "> 0.2 (mean ± std)", "per seed", "> 0.05", "> 0.4", "s/run"):
            t.add_column(col)
        for m in METHODS:
            r = block[m]
            t.add_row(
                m,
                f"{r['mean']:.1f} ± {r['std']:.1f}",
                str(r["per_seed"]),
                f"{r['mean_0.05']:.1f}",
                f"{r['mean_0.4']:.1f}",
                f"{r['seconds']:.1f}",
            )
        Console().print(t)
    print(f"sample_p99_ms_slow_judge = {results['sample_p99_ms_slow_judge']:.3f} ms ({results['slow_judge']})")
    print(f"replay_identical = {results['replay_identical']}")


def run_protocol(
    args: argparse.Namespace,
    tasks: list[str],
    eval_attempts: int,
    label: str,
    reference: bool = False,
    learner: Learner = crafter_learner,
    skip: Sequence[str] = (),
) -> dict[str, Any]:
    """Every method over the seeds under one protocol; one result block per method (``skip``: not run)."""
    block: dict[str, Any] = {}
    for m in METHODS:
        if m not in args.methods or m in skip:
            block[m] = {
                "mean": float("nan"),
                "std": float("nan"),
                "per_seed": [],
                "mean_0.05": float("nan"),
                "mean_0.4": float("nan"),
                "seconds": 0.0,
            }
            continue
        runs = [
            run_one(
                m, tasks, s, args.updates, args.batch, args.period, eval_attempts, reference=reference, learner=learner
            )
            for s in range(args.seeds)
        ]
        v = np.array([r["n_above_0.2"] for r in runs], dtype=float)
        block[m] = {
            "mean": float(v.mean()),
            "std": float(v.std()),
            "per_seed": v.astype(int).tolist(),
            "mean_0.05": float(np.mean([r["n_above_0.05"] for r in runs])),
            "mean_0.4": float(np.mean([r["n_above_0.4"] for r in runs])),
            "seconds": float(np.mean([r["seconds"] for r in runs])),
            "generated": [r["generated"] for r in runs],
            "boring_final": [r["boring"] for r in runs],
            "depth_reached": [r["depth_reached"] for r in runs],
        }
        print(
            f"[{label}] {m}: {block[m]['mean']:.1f} ± {block[m]['std']:.1f} {block[m]['per_seed']} "
            f"({block[m]['seconds']:.1f} s/run)",
            flush=True,
        )
    return block


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, 400 updates")
    ap.add_argument("--json", type=str, default=None, help="write results here")
    ap.add_argument("--setting", choices=("tr", "trc", "trs"), default="tr")
    ap.add_argument("--impossible", type=int, default=1023)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--updates", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--period", type=int, default=25, help="LP step / partition every this many updates")
    ap.add_argument("--eval-attempts", type=int, default=10)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument(
        "--protocols",
        nargs="*",
        default=["train_only", "train_only_reference", "universe2"],
        help="extra blocks beside OMNI's evaluation protocol: train_only (training outcomes only, "
        "default settings), train_only_reference (the same with exploration off, OMNI's reference LP), "
        "universe2 (a generated tech tree, deeper than Crafter, 25 phrasings per concept; both protocols), "
        "universe_trs (OMNI's trs set: 6 verb variants per task; both protocols)",
    )
    ap.add_argument("--tree-levels", type=int, default=10, help="universe2: levels of the tech tree (depth + 1)")
    ap.add_argument("--tree-width", type=int, default=4, help="universe2: concepts per level")
    args = ap.parse_args(argv)
    args.seeds = args.seeds or (3 if args.quick else 5)
    args.updates = args.updates or (400 if args.quick else 1000)
    tasks = crafter_task_set(args.setting, args.impossible)
    results: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "json"}}
    results.update(run_protocol(args, tasks, args.eval_attempts, "eval protocol"))
    if "train_only" in args.protocols:
        results["train_only"] = run_protocol(args, tasks, 0, "train_only")
    if "train_only_reference" in args.protocols:
        results["train_only_reference"] = run_protocol(args, tasks, 0, "train_only_reference", reference=True)
    if "universe2" in args.protocols:
        # A deeper graph and more near-duplicates per concept. WebRL is not run: its generator
        # and validator speak Crafter's grammar.
        tasks2, learner2 = techtree_universe(args.tree_levels, args.tree_width)
        results["universe2"] = {
            "setting": f"techtree(levels={args.tree_levels}, width={args.tree_width}, seed=0)",
            "tasks": len(tasks2),
            "eval": run_protocol(
                args, tasks2, args.eval_attempts, "universe2 eval protocol", learner=learner2, skip=("webrl",)
            ),
            "train_only": run_protocol(args, tasks2, 0, "universe2 train_only", learner=learner2, skip=("webrl",)),
        }
    if "universe_trs" in args.protocols and args.setting != "trs":
        # Crafter's graph with every task under its verb and 5 synonyms (OMNI's trs).
        tasks3 = crafter_task_set("trs", args.impossible)
        results["universe_trs"] = {
            "setting": "trs",
            "eval": run_protocol(args, tasks3, args.eval_attempts, "universe_trs eval protocol"),
            "train_only": run_protocol(args, tasks3, 0, "universe_trs train_only"),
        }
    results["teacher_time"] = teacher_time_ratio(args.updates)
    results["omni_over_lp_teacher_time"] = results["teacher_time"]["omni_over_lp_teacher_time"]
    print(f"omni_over_lp_teacher_time = {results['omni_over_lp_teacher_time']:.1f}", flush=True)
    slow = slow_judge_latency(tasks)
    results["slow_judge"] = slow
    results["sample_p99_ms_slow_judge"] = slow["sample_p99_ms"]
    results["replay_identical"] = replay_check(
        tasks, min(args.updates, 150), args.batch, args.period, args.eval_attempts
    )
    _table(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    main()
