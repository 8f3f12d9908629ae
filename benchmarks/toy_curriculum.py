"""Toy-curriculum benchmark: % of teachDeepRL toy-learner cells mastered per teacher and mode.

How to run (from the repository root)::

    .venv/bin/python benchmarks/toy_curriculum.py --quick            # ~1 minute
    .venv/bin/python benchmarks/toy_curriculum.py --json toy.json   # 10 seeds to 20k, 3 to 50k
    .venv/bin/python benchmarks/toy_curriculum.py --teachers random riac/teachdeeprl --seeds 4

What it does: for each teacher/mode, one `ToyLearner` per seed is taught strictly in the
reference order (``sample`` -> episodes -> ``update``), ``--batch`` tasks at a time
(default 1: teachDeepRL's teachers are sequential, so parity needs batch 1). Mastery
(% of cells with competence > 75) is recorded at 1k/2k/5k/10k/15k/20k/30k/40k/50k
episodes, with each run's wall time. Seeds run in a pool of at most 2 processes.

Modes per teacher are discovered from the teacher class: ``teachdeeprl`` (see below), its
default config (named by its ``mode`` default, e.g. ``fast``), any further preset other
than ``teachmyagent``/``teachdeeprl_toy``, ``<default>+fix_quirks`` where the config has
that flag and ``<default>+<v>`` for each non-default value of a ``variant`` field.

Parity note: teachDeepRL's toy script calls each teacher's ``update`` directly with the raw
[0, 1] reward, bypassing the TeacherController's (-150, 350) -> [0, 1] rescaling. So the
row labelled ``teachdeeprl`` runs the teacher's ``teachdeeprl_toy`` preset (the same on raw
returns) where it has one, else ``teachdeeprl`` with any (-150, 350) value set to ``None``;
``--tdrl-rescale`` runs ``teachdeeprl`` unchanged. RIAC is invariant to that rescaling;
the GMM teachers are not. The JSON entry's ``config`` records what ran.

Results to expect (original teachDeepRL code, this machine; see REFERENCE below):
Random 4.6 % / 39.7 %, RIAC 47.2 % / 100 %, ALP-GMM 34.7 % / 96.3 %,
Covar-GMM 66.6 % / 100 % at 20k / 50k episodes.

Output: a rich table and, with ``--json PATH``,
``{"<teacher>/<mode>": {"mastered_20k": mean, "mastered_20k_std": ..., "n_seeds_20k": ...,
"seconds_20k": mean, ..., "reference_20k": ..., "per_seed": {...}}}``.
"""

from __future__ import annotations

import os

# Pin BLAS/OpenMP before numpy loads: unpinned GMM fits on 2 shared cores ran 10-100x slower.
# Only when run as a script: `reference_vs_original.py` imports the helpers below and runs
# both codes as their users would, with the process environment it was given.
if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openended.envs.toy import ToyLearner
from openended.tasks import Outcome
from openended.teachers import make_teacher, teacher_class

CHECKPOINTS = (1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000)
SHOWN = (1_000, 5_000, 10_000, 20_000, 50_000)

#: % mastered measured with the original teachDeepRL teachers (747cda2) on the default toy
#: env: 10 seeds up to 20k, 3 seeds for 30k-50k, measured side by side on this machine kind.
REFERENCE: dict[str, dict[int, float]] = {
    "random": {
        1_000: 0.0,
        2_000: 0.0,
        5_000: 0.0,
        10_000: 1.0,
        15_000: 2.7,
        20_000: 4.6,
        30_000: 13.7,
        40_000: 25.0,
        50_000: 39.7,
    },
    "riac": {
        1_000: 1.0,
        2_000: 2.9,
        5_000: 9.0,
        10_000: 22.3,
        15_000: 34.6,
        20_000: 47.2,
        30_000: 72.0,
        40_000: 95.0,
        50_000: 100.0,
    },
    "alp_gmm": {
        1_000: 1.1,
        2_000: 2.2,
        5_000: 5.3,
        10_000: 13.7,
        15_000: 24.5,
        20_000: 34.7,
        30_000: 57.0,
        40_000: 79.7,
        50_000: 96.3,
    },
    "covar_gmm": {
        1_000: 1.6,
        2_000: 4.0,
        5_000: 12.6,
        10_000: 30.3,
        15_000: 47.6,
        20_000: 66.6,
        30_000: 99.0,
        40_000: 100.0,
        50_000: 100.0,
    },
}

VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},  # teachDeepRL's toy env exactly
    "noise": {"noise": 0.1},  # Gaussian reward noise, std 0.1, clipped to [0, 1]
    "unlearnable": {"unlearnable": ((5, 5), (9, 9))},  # the far quarter never learns; its reward is noise
    # TeachMyAgent's "mostly unfeasible": only the 5x5 corner quadrant is learnable, the other
    # 75 cells never learn and always pay 0 (score = % of the 25 learnable cells mastered)
    "unfeasible": {
        "unlearnable": np.pad(np.zeros((5, 5), dtype=bool), ((0, 5), (0, 5)), constant_values=True),
        "unlearnable_reward": "zero",
    },
}

TDRL_RANGE = (-150.0, 350.0)


@dataclass(frozen=True)
class Spec:
    """One teacher/mode to benchmark."""

    teacher: str
    mode: str
    kwargs: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.teacher}/{self.mode}"


def k(n: int) -> str:
    return f"{n // 1000}k"


def discover_modes(name: str, keep_rescale: bool = False) -> list[Spec]:
    """The modes a teacher exposes (see the module docstring)."""
    cls = teacher_class(name)
    fields = cls.Config.model_fields
    default = str(fields["mode"].default) if "mode" in fields else "default"
    presets = dict(cls.PRESETS)
    specs: list[Spec] = []
    if "teachdeeprl" in presets:
        if "teachdeeprl_toy" in presets and not keep_rescale:
            specs.append(Spec(name, "teachdeeprl", {"preset": "teachdeeprl_toy"}))
        else:
            kw: dict[str, Any] = {"preset": "teachdeeprl"}
            for key, val in presets["teachdeeprl"].items():
                if (
                    not keep_rescale
                    and isinstance(val, (tuple, list))
                    and len(val) == 2
                    and tuple(map(float, val)) == TDRL_RANGE
                ):
                    kw[key] = None  # parity: TDRL's toy script feeds raw rewards
            specs.append(Spec(name, "teachdeeprl", kw))
    specs.append(Spec(name, default, {}))
    for p in presets:
        if p not in ("teachdeeprl", "teachdeeprl_toy", "teachmyagent"):
            specs.append(Spec(name, p, {"preset": p}))
    # flagged improvements exposed as config fields
    if "fix_quirks" in fields:
        specs.append(Spec(name, f"{default}+fix_quirks", {"fix_quirks": True}))
    if "variant" in fields:
        choices = get_args(fields["variant"].annotation)
        for v in choices:
            if v != fields["variant"].default:
                specs.append(Spec(name, f"{default}+{v}", {"variant": v}))
    return specs


def resolve_specs(items: list[str], keep_rescale: bool) -> tuple[list[Spec], list[str]]:
    """``name`` -> all its modes; ``name/mode`` -> that mode. Returns (specs, skipped notes)."""
    specs: list[Spec] = []
    skipped: list[str] = []
    for item in items:
        name, _, mode = item.partition("/")
        try:
            modes = discover_modes(name, keep_rescale)
        except Exception as err:  # noqa: BLE001 - a teacher not written yet, or failing to import
            skipped.append(f"{item}: {type(err).__name__}: {err}")
            continue
        if mode:
            chosen = [s for s in modes if s.mode == mode]
            if not chosen:
                skipped.append(f"{item}: no mode {mode!r}; available: {', '.join(s.mode for s in modes)}")
            specs.extend(chosen)
        else:
            specs.extend(modes)
    return specs, skipped


def run_one(spec: Spec, seed: int, n_episodes: int, batch: int, variant: str) -> dict:
    """Teach one toy learner; return mastery and wall time at each checkpoint (and, in
    ``learner_seconds``, how much of that time the learner's episodes took)."""
    learner = ToyLearner(seed=10_000 + seed, **VARIANTS[variant])  # own stream, never the teacher's
    teacher = make_teacher(spec.teacher, learner.task_space(), seed=seed, **spec.kwargs)
    cps = [c for c in CHECKPOINTS if c <= n_episodes]
    if n_episodes not in cps:
        cps.append(n_episodes)
    scores: dict[int, float] = {}
    seconds: dict[int, float] = {}
    learner_seconds: dict[int, float] = {}
    in_learner = 0.0
    done = 0
    t0 = time.perf_counter()
    try:
        for cp in cps:
            while done < cp:
                b = min(batch, cp - done)
                tasks = teacher.sample(b)
                t_learn = time.perf_counter()
                rewards = learner.episodes(np.array([t.params for t in tasks], dtype=np.float64))
                in_learner += time.perf_counter() - t_learn
                teacher.update([Outcome(task_id=t.id, episode_return=r) for t, r in zip(tasks, rewards.tolist())])
                done += b
            seconds[cp] = time.perf_counter() - t0
            learner_seconds[cp] = in_learner
            scores[cp] = learner.score()
    finally:
        close = getattr(teacher, "close", None)
        if close is not None:
            close()
    return {"label": spec.label, "seed": seed, "scores": scores, "seconds": seconds, "learner_seconds": learner_seconds}


def aggregate(specs: list[Spec], results: list[dict], meta: dict) -> dict:
    out: dict[str, dict] = {}
    for spec in specs:
        rows = [r for r in results if r["label"] == spec.label]
        entry: dict[str, Any] = {}
        cps = sorted({cp for r in rows for cp in r["scores"]})
        for cp in cps:
            vals = np.array([r["scores"][cp] for r in rows if cp in r["scores"]])
            secs = np.array([r["seconds"][cp] for r in rows if cp in r["seconds"]])
            entry[f"mastered_{k(cp)}"] = float(vals.mean())
            entry[f"mastered_{k(cp)}_std"] = float(vals.std())
            entry[f"n_seeds_{k(cp)}"] = int(len(vals))
            entry[f"seconds_{k(cp)}"] = float(secs.mean())
            if meta["variant"] == "plain" and cp in REFERENCE.get(spec.teacher, {}):
                entry[f"reference_{k(cp)}"] = REFERENCE[spec.teacher][cp]
        entry["config"] = {key: (list(v) if isinstance(v, tuple) else v) for key, v in spec.kwargs.items()}
        entry.update(meta)
        entry["per_seed"] = {
            str(r["seed"]): {
                "scores": {str(c): v for c, v in r["scores"].items()},
                "seconds": {str(c): v for c, v in r["seconds"].items()},
            }
            for r in sorted(rows, key=lambda r: r["seed"])
        }
        out[spec.label] = entry
    return out


def print_table(summary: dict, specs: list[Spec], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    cps = sorted(
        {
            int(key.split("_")[1][:-1]) * 1000
            for e in summary.values()
            for key in e
            if key.startswith("mastered_") and not key.endswith("_std")
        }
    )
    shown = [c for c in cps if c in SHOWN] or cps[-1:]
    table = Table(title=title)
    table.add_column("teacher/mode")
    for cp in shown:
        table.add_column(f"{k(cp)} %", justify="right")
    table.add_column(f"TDRL ref ({' / '.join(k(c) for c in shown)})", justify="right")
    table.add_column("seeds", justify="right")
    timed = [c for c in (20_000, shown[-1]) if c in shown]
    timed = sorted(set(timed))
    for cp in timed:
        table.add_column(f"s @ {k(cp)}", justify="right")
    for spec in specs:
        e = summary.get(spec.label)
        if e is None:
            continue
        cells = []
        for cp in shown:
            m = e.get(f"mastered_{k(cp)}")
            cells.append("-" if m is None else f"{m:.1f} ± {e[f'mastered_{k(cp)}_std']:.1f}")
        ref = [e.get(f"reference_{k(cp)}") for cp in shown]
        ref_s = " / ".join("-" if v is None else f"{v:g}" for v in ref)
        seeds = "/".join(str(e.get(f"n_seeds_{k(cp)}", 0)) for cp in shown)
        secs = [e.get(f"seconds_{k(cp)}") for cp in timed]
        table.add_row(spec.label, *cells, ref_s, seeds, *("-" if v is None else f"{v:.1f}" for v in secs))
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds to 5k episodes (about a minute)")
    ap.add_argument("--json", type=Path, help="write the summary JSON here")
    ap.add_argument("--seeds", type=int, help="seeds per teacher/mode (default 10; quick 2)")
    ap.add_argument("--episodes", type=int, help="episodes for every seed (default 20k; quick 5k)")
    ap.add_argument("--long-seeds", type=int, help="how many of the seeds continue to --long-episodes (default 3)")
    ap.add_argument("--long-episodes", type=int, default=50_000, help="episodes of the long seeds")
    ap.add_argument(
        "--teachers",
        nargs="+",
        default=[
            "random",
            "riac",
            "alp_gmm",
            "covar_gmm",
            "adr/toy",
            "sfl",
            "spdl",
            "accel",
            "goal_gan",
            "sequential/warmup",
        ],
        help="teacher names (all their modes) or name/mode",
    )
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="plain", help="toy learner variant")
    ap.add_argument("--batch", type=int, default=1, help="tasks per sample() call (1 = reference parity)")
    ap.add_argument("--workers", type=int, default=2, help="process pool size (at most 2)")
    ap.add_argument(
        "--tdrl-rescale",
        action="store_true",
        help="keep presets' (-150, 350) reward rescaling (TDRL's toy script does not use it)",
    )
    args = ap.parse_args(argv)

    seeds = args.seeds or (2 if args.quick else 10)
    episodes = args.episodes or (5_000 if args.quick else 20_000)
    long_seeds = args.long_seeds if args.long_seeds is not None else (0 if args.quick else 3)
    long_seeds = min(long_seeds, seeds)
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    workers = max(1, min(2, args.workers))

    specs, skipped = resolve_specs(args.teachers, args.tdrl_rescale)
    for note in skipped:
        print(f"skipped {note}", file=sys.stderr)
    if not specs:
        print("nothing to run", file=sys.stderr)
        return 1

    jobs = []
    for spec in specs:
        for seed in range(seeds):
            n = args.long_episodes if seed < long_seeds and args.long_episodes > episodes else episodes
            jobs.append((spec, seed, n))
    jobs.sort(key=lambda j: -j[2])  # longest first keeps both workers busy to the end
    print(
        f"{len(specs)} teacher/modes x {seeds} seeds ({long_seeds} to {args.long_episodes} episodes), "
        f"{episodes} episodes, batch {args.batch}, variant {args.variant}, {workers} workers",
        file=sys.stderr,
    )

    results: list[dict] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(run_one, spec, seed, n, args.batch, args.variant): (spec, seed) for spec, seed, n in jobs
        }
        for fut in as_completed(futures):
            spec, seed = futures[fut]
            try:
                r = fut.result()
            except Exception as err:  # noqa: BLE001 - one failed seed must not lose the others
                print(f"  {spec.label} seed {seed} FAILED: {type(err).__name__}: {err}", file=sys.stderr)
                continue
            last = max(r["scores"])
            print(
                f"  {spec.label:32s} seed {seed}: {r['scores'][last]:5.1f} % at {k(last)} "
                f"in {r['seconds'][last]:.1f} s",
                file=sys.stderr,
            )
            results.append(r)
    meta = {
        "variant": args.variant,
        "batch": args.batch,
        "episodes": episodes,
        "long_episodes": args.long_episodes if long_seeds else None,
    }
    summary = aggregate(specs, results, meta)
    print_table(
        summary,
        specs,
        f"toy curriculum ({args.variant}, batch {args.batch}): % cells mastered, "
        f"mean ± std over seeds; total {time.perf_counter() - t0:.0f} s",
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
