"""Does a curriculum help PPO on MiniGrid? Run the comparisons, then turn the run directories into results.

Commands (from the repository root)::

    # run: each arm x seed is one `openended run` of experiments/science/<arm>.yaml
    python scripts/science_minigrid.py run --comparison maze --seeds 0 1 2 --runs runs/science
    # report: table (mean +- std over seeds), JSON and PNG plots from the run directories
    python scripts/science_minigrid.py report --runs runs/science --json benchmarks/results/science_minigrid.json \
        --img docs/img/science

Comparisons (``--comparison``):

* ``maze``: PPO + ALP-GMM vs PPO + uniform random tasks on the maze Box space
  (``minigrid_maze_alpgmm.yaml``, ``minigrid_maze_random.yaml``).
* ``levels``: PPO + PLR vs PPO + uniform levels on the Discrete space of 200 seeded
  levels (``minigrid_levels_plr.yaml``, ``minigrid_levels_uniform.yaml``).

What the report measures, per run: the held-out evaluations the run made during training
(``evaluations.jsonl``: greedy policy, one episode per held-out task), as success rate
(``mastered``) and mean return over env steps; the final value, and the area under the
curve normalised by the step range (the mean level over training). Held-out success is
also split into the hand-drawn hard mazes and the seeded random levels. Per arm: mean and
sample standard deviation over seeds. Plots: the curves (mean +- std) and, for Box arms, where
the teacher's tasks were played in the task space in three thirds of training (read from
the run's event log: sampled tasks give parameters, outcomes say which tasks ran).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMPARISONS: dict[str, tuple[str, str]] = {
    "maze": ("minigrid_maze_alpgmm", "minigrid_maze_random"),
    "levels": ("minigrid_levels_plr", "minigrid_levels_uniform"),
}


# ------------------------------------------------------------------------------- running
def run(comparison: str, seeds: list[int], runs: Path, overrides: list[str], arms: list[str] | None = None) -> None:
    """One ``openended run`` per arm and seed, one after the other (``arms``: a subset of the comparison's)."""
    for seed in seeds:
        for arm in COMPARISONS[comparison]:
            if arms and arm not in arms:
                continue
            cfg = ROOT / "experiments" / "science" / f"{arm}.yaml"
            cmd = [
                sys.executable,
                "-c",
                "import sys; from openended.cli import main; sys.exit(main())",
                "run",
                str(cfg),
                "--set",
                f"seed={seed}",
                "--set",
                f"teacher.config.seed={seed}",
                "--set",
                f"run.dir={runs}",
            ]
            for o in overrides:
                cmd += ["--set", o]
            t0 = time.perf_counter()
            print(f"[science] {arm} seed {seed} ...", flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            print(f"[science] {arm} seed {seed} done in {time.perf_counter() - t0:.0f} s", flush=True)


# ------------------------------------------------------------------------------ reading
def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _held_out_kinds(exp: dict) -> dict[str, str]:
    """Held-out task id -> ``hard`` or ``level`` (what kind of test task it is)."""
    from openended.envs import make_env

    env = make_env(exp["env"]["family"], **exp["env"].get("config", {}))
    try:
        tasks = env.test_tasks() if hasattr(env, "test_tasks") else []
        return {t.id: str(t.params[0]).partition(":")[0] for t in tasks}
    finally:
        env.close()


def read_run(path: Path) -> dict[str, Any]:
    """One run directory: its arm, seed and held-out curves."""
    exp = yaml.safe_load((path / "config.yaml").read_text())
    evals = _jsonl(path / "evaluations.jsonl")
    kinds = _held_out_kinds(exp)
    steps, success, ret, hard, level = [], [], [], [], []
    for ev in evals:
        steps.append(int(ev["env_steps_total"]))
        success.append(float(ev["mastered"] or 0.0))
        ret.append(float(ev["mean_return"] or 0.0))
        by_kind: dict[str, list[float]] = defaultdict(list)
        for tid, ok in ev.get("task_success", {}).items():
            by_kind[kinds.get(tid, "other")].append(1.0 if ok else 0.0)
        hard.append(float(np.mean(by_kind["hard"])) if by_kind["hard"] else float("nan"))
        level.append(float(np.mean(by_kind["level"])) if by_kind["level"] else float("nan"))
    metrics = _jsonl(path / "metrics.jsonl")
    return {
        "dir": str(path),
        "arm": exp["name"].removeprefix("science_"),
        "teacher": exp["teacher"]["name"],
        "family": exp["env"]["family"],
        "seed": int(exp["seed"]),
        "steps": steps,
        "success": success,
        "return": ret,
        "hard_success": hard,
        "level_success": level,
        "train_success": [float(m.get("success_rate") or 0.0) for m in metrics],
        "train_steps": [int(m.get("env_steps_total") or 0) for m in metrics],
        "wall_s": float(metrics[-1]["wall_s"]) if metrics else 0.0,
    }


def auc(steps: list[int], values: list[float]) -> float:
    """Area under ``values`` over ``steps`` divided by the step range: the mean level over training."""
    if len(steps) < 2:
        return float(values[0]) if values else float("nan")
    x, y = np.asarray(steps, float), np.asarray(values, float)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Per arm: final and AUC of held-out success / return, mean and std over seeds."""
    runs = common_horizon(runs)
    arms: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        if r["steps"]:
            arms[r["arm"]].append(r)
    out: dict[str, Any] = {}
    for arm, rs in sorted(arms.items()):
        row: dict[str, Any] = {"seeds": sorted(r["seed"] for r in rs), "env_steps": min(r["steps"][-1] for r in rs)}
        for key in ("success", "return", "hard_success", "level_success"):
            finals = [r[key][-1] for r in rs]
            aucs = [auc(r["steps"], r[key]) for r in rs]
            row[f"final_{key}"] = _mean_std(finals)
            row[f"auc_{key}"] = _mean_std(aucs)
        row["wall_s"] = _mean_std([r["wall_s"] for r in rs])
        out[arm] = row
    return out


def common_horizon(runs: list[dict]) -> list[dict]:
    """Each started run cut to the evaluations every started run of its family reached (a fair comparison)."""
    started = [r for r in runs if r["steps"]]  # runs without an evaluation yet are left out
    n_by_family: dict[str, int] = {}
    for r in started:
        n_by_family[r["family"]] = min(n_by_family.get(r["family"], 10**9), len(r["steps"]))
    keys = ("steps", "success", "return", "hard_success", "level_success")
    return [{**r, **{k: r[k][: n_by_family[r["family"]]] for k in keys}} for r in started]


def _mean_std(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs, float)
    n = int(np.isfinite(a).sum())
    std = float(np.nanstd(a, ddof=1)) if n > 1 else 0.0  # sample std over seeds
    return {"mean": float(np.nanmean(a)), "std": std, "n": n}


def _fmt(d: dict[str, float], pct: bool) -> str:
    if pct:
        return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f} %"
    return f"{d['mean']:.3f} ± {d['std']:.3f}"


def table(summary: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    head = (
        "| arm | seeds | env steps | final held-out success | AUC success | final return | AUC return "
        "| final hard mazes | final seeded levels |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {arm} | {len(r['seeds'])} | {r['env_steps']:,} | {_fmt(r['final_success'], True)} "
        f"| {_fmt(r['auc_success'], True)} | {_fmt(r['final_return'], False)} | {_fmt(r['auc_return'], False)} "
        f"| {_fmt(r['final_hard_success'], True)} | {_fmt(r['final_level_success'], True)} |"
        for arm, r in summary.items()
    ]
    return head + "\n".join(rows)


# ------------------------------------------------------------------------------- plots
def plot_curves(runs: list[dict], path: Path) -> None:
    """Held-out success and return over env steps, mean +- std over seeds per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms: dict[str, list[dict]] = defaultdict(list)
    for r in common_horizon(runs):
        if r["steps"]:
            arms[r["arm"]].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for arm, rs in sorted(arms.items()):
        n = min(len(r["steps"]) for r in rs)
        x = np.asarray(rs[0]["steps"][:n])
        for ax, key in zip(axes, ("success", "return", "hard_success")):
            y = np.array([r[key][:n] for r in rs], float)
            m, s = np.nanmean(y, 0), np.nanstd(y, 0)
            ax.plot(x, m, label=f"{arm} (n={len(rs)})")
            ax.fill_between(x, m - s, m + s, alpha=0.2)
    for ax, title in zip(axes, ("held-out success", "held-out mean return", "hard mazes success")):
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def played_tasks(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(params, success, level)`` of every episode a run played, in order.

    ``params`` are ``(size, wall_density, goal_distance)``; a seeded level's are its
    `level_params`, with its id in ``level`` (-1 for Box tasks).
    """
    from openended.envs.minigrid_mazes import level_params
    from openended.runtime.eventlog import decode_outcome, decode_sampled, iter_events

    params: dict[str, tuple] = {}
    rows, ok, levels = [], [], []
    for entry in iter_events(path / "events.jsonl"):
        ev = entry.event
        if ev.get("ev") == "sampled":
            for t in decode_sampled(ev)[2]:
                params[t.id] = t.params
        elif ev.get("ev") == "outcome":
            for o in decode_outcome(ev)[1]:
                p = params.get(o.task_id)
                if p is None:
                    continue
                if len(p) == 1:
                    levels.append(int(p[0]))
                    p = level_params(int(p[0]))
                else:
                    levels.append(-1)
                rows.append([float(v) for v in p])
                ok.append(bool(o.success))
    return np.asarray(rows, float).reshape(-1, 3), np.asarray(ok, bool), np.asarray(levels, int)


def _third_stats(p: np.ndarray, ok: np.ndarray, levels: np.ndarray) -> dict[str, Any]:
    """What one stretch of training played: mean parameters, training success, level spread."""
    from openended.envs.minigrid_mazes import generate_maze, level_params

    out: dict[str, Any] = {
        "episodes": int(len(p)),
        "mean_size": float(p[:, 0].mean()),
        "mean_density": float(p[:, 1].mean()),
        "mean_goal_distance": float(p[:, 2].mean()),
        "train_success": float(ok.mean()),
    }
    if len(levels) and levels[0] >= 0:
        ids, counts = np.unique(levels, return_counts=True)
        solvable = {int(i): generate_maze(*level_params(int(i)), seed=int(i)).solvable for i in ids}
        out["distinct_levels"] = int(len(ids))
        out["top10_level_share"] = float(np.sort(counts)[::-1][:10].sum() / counts.sum())
        out["solvable_share"] = float(np.mean([solvable[int(v)] for v in levels]))
    return out


def plot_sampling(runs: list[dict], path: Path) -> dict[str, Any]:
    """Where each arm's tasks were played (its lowest seed), in three thirds of training.

    Scatter of room size vs wall density, coloured by goal distance; seeded levels are
    placed at their parameters.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts: dict[str, dict] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        firsts.setdefault(r["arm"], r)
    if not firsts:
        return {}
    fig, axes = plt.subplots(len(firsts), 3, figsize=(13, 3.6 * len(firsts)), squeeze=False)
    stats: dict[str, Any] = {}
    for row, (arm, r) in enumerate(sorted(firsts.items())):
        p, ok, levels = played_tasks(Path(r["dir"]))
        stats[arm] = []
        for col, idx in enumerate(np.array_split(np.arange(len(p)), 3)):
            ax = axes[row][col]
            if not len(idx):
                continue
            ax.scatter(p[idx, 0], p[idx, 1], c=p[idx, 2], s=6, cmap="viridis", vmin=0, vmax=1, alpha=0.6)
            ax.set_title(f"{arm} seed {r['seed']}: episodes {idx[0]}-{idx[-1]}", fontsize=9)
            ax.set_xlabel("size")
            ax.set_ylabel("wall density")
            stats[arm].append(_third_stats(p[idx], ok[idx], levels[idx]))
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return stats


def report(runs_dir: Path, json_path: Path | None, img: Path | None, seeds: list[int] | None = None) -> dict[str, Any]:
    """Read every run directory under ``runs_dir`` (of ``seeds``, if given); print the table; write JSON and plots."""
    runs = [read_run(p) for p in sorted(runs_dir.iterdir()) if (p / "config.yaml").exists()]
    runs = [r for r in runs if seeds is None or r["seed"] in seeds]
    summary = summarise(runs)
    print(table(summary))
    # run directories by name only: the JSON is shared, the machine's paths are not
    result: dict[str, Any] = {"summary": summary, "runs": [{**r, "dir": Path(r["dir"]).name} for r in runs]}
    if img is not None:
        img.mkdir(parents=True, exist_ok=True)
        fams = {r["family"] for r in runs}
        for fam in sorted(fams):
            sel = [r for r in runs if r["family"] == fam]
            plot_curves(sel, img / f"{fam}_curves.png")
        result["sampling"] = plot_sampling(runs, img / f"{'_'.join(sorted(fams))}_sampling.png")
        for arm, thirds in result["sampling"].items():
            print(f"{arm}: " + "; ".join(json.dumps(t) for t in thirds))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: ``run`` or ``report``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the comparison's arms for each seed")
    r.add_argument("--comparison", choices=sorted(COMPARISONS), default="maze")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--runs", type=Path, default=Path("runs/science"))
    r.add_argument("--arms", nargs="+", default=None, help="only these arms (e.g. one per process)")
    r.add_argument("--set", dest="overrides", action="append", default=[], help="extra --set for every run")
    p = sub.add_parser("report", help="table, JSON and plots from run directories")
    p.add_argument("--runs", type=Path, default=Path("runs/science"))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--img", type=Path, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="only runs of these seeds")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.comparison, args.seeds, args.runs.resolve(), args.overrides, args.arms)
    else:
        report(args.runs, args.json, args.img, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
