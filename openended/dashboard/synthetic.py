"""Run directories in the real formats, written without Ray: for tests, benchmarks and docs.

Two writers, both through the project's own code paths so the dashboard reads exactly
what ``openended run`` writes:

`LiveRun` drives a real teacher in a `TeacherServiceCore` (which writes the event log
through `EventLog` and the codec), a small simulated student, and appends metrics rows
(`RunDir.append_metrics`), teacher views (`ViewWriter`), held-out evaluations and the
status file, iteration by iteration -- a run that is "still writing" whenever a test wants.

`write_bulk_run` writes a large log fast (a million outcomes in a few seconds) by encoding
synthetic batches directly (`TaskBatch`/`OutcomeBatch` -> `EventLog`): tasks drift over the
space as a curriculum's would. For `benchmarks/dashboard_load.py`.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from openended.runtime.codec import OutcomeBatch, TaskBatch
from openended.runtime.core import TeacherServiceCore
from openended.runtime.eventlog import EventLog
from openended.runtime.rundir import RunDir
from openended.runtime.views_log import ViewWriter
from openended.tasks import Box, Outcome, TaskSpace

__all__ = ["LiveRun", "write_bulk_run", "write_config"]

EVALUATIONS_FILE = "evaluations.jsonl"


def write_config(
    path: pathlib.Path,
    *,
    name: str,
    family: str,
    teacher: str,
    seed: int = 0,
    iterations: int = 100,
    students: Sequence[str] = ("default",),
    evaluation_every: int = 0,
) -> None:
    """``config.yaml`` with the fields `openended run` writes (the dashboard reads a few)."""
    cfg = {
        "name": name,
        "seed": seed,
        "env": {"family": family, "config": {}},
        "teacher": {"name": teacher, "preset": None, "config": {}, "students": "separate"},
        "students": list(students),
        "algo": {"name": "none", "config": {}},
        "run": {"iterations": iterations, "checkpoint_every": max(1, iterations // 4), "dir": str(path.parent)},
        "evaluation": {"every": evaluation_every, "test_set": "grid", "max_tasks": 100, "max_steps": 2000},
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


class LiveRun:
    """A run written iteration by iteration by a real teacher and a simulated student.

    The student succeeds on a task with a probability that falls with its distance from a
    "frontier" growing over the run (Box: distance from the low corner; text/discrete: the
    task's position in the list), so a teacher's sampling visibly moves.
    """

    def __init__(
        self,
        path: str | pathlib.Path,
        space: TaskSpace,
        *,
        teacher: str = "alp_gmm",
        teacher_config: dict[str, Any] | None = None,
        family: str = "toy",
        students: Sequence[str] = ("default",),
        seed: int = 0,
        iterations: int = 100,
        batch: int = 64,
        evaluation_every: int = 0,
    ) -> None:
        self.path = pathlib.Path(path)
        self.space = space
        self.students = list(students)
        self.iterations = int(iterations)
        self.batch = int(batch)
        self.evaluation_every = int(evaluation_every)
        write_config(
            self.path,
            name=self.path.name.split("__")[0],
            family=family,
            teacher=teacher,
            seed=seed,
            iterations=iterations,
            students=students,
            evaluation_every=evaluation_every,
        )
        self.rd = RunDir(self.path)
        (self.path / "checkpoints").mkdir(exist_ok=True)
        self.core = TeacherServiceCore(event_log=self.rd.events_path, fsync="never")
        cfg = {"seed": seed, **(teacher_config or {})}
        self.core.add_curriculum("main", teacher, space, config=cfg)
        self.views = ViewWriter(self.path, iterations)
        self.rng = np.random.default_rng(seed)
        self.iteration = 0
        self.episodes = 0
        self._t0 = time.perf_counter()
        self._index = {t: i for i, t in enumerate(getattr(space, "seed_texts", ()))}
        self.rd.write_status({"state": "running", "iteration": 0, "wall_s": 0.0})

    def _p_success(self, params: np.ndarray, text: str | None, frontier: float) -> float:
        if isinstance(self.space, Box):
            span = np.where(self.space.high > self.space.low, self.space.high - self.space.low, 1.0)
            d = float(np.linalg.norm((params - self.space.low) / span) / np.sqrt(len(span)))
        else:
            pos = self._index.get(text or "", float(params[0]) if len(params) == 1 else 0.0)
            d = (float(pos) + 1.0) / (len(self._index) or 10)
        return 0.9 if d < frontier else 0.05

    def advance(self, iterations: int = 1) -> None:
        """Play ``iterations`` more iterations (``batch`` episodes per student each)."""
        for _ in range(iterations):
            t_it = time.perf_counter()
            self.iteration += 1
            frontier = 0.15 + 0.85 * self.iteration / max(1, self.iterations)
            rows = []
            for student in self.students:
                tasks = self.core.sample_tasks("main", student, self.batch)
                outs = []
                for t in tasks:
                    p = self._p_success(np.asarray(t.params, dtype=float), t.text, frontier)
                    ok = bool(self.rng.random() < p)
                    self.episodes += 1
                    outs.append(
                        Outcome(
                            t.id, float(ok) + 0.1 * self.rng.random(), ok, 1, student, episode_id=str(self.episodes)
                        )
                    )
                self.core.report("main", outs)
                rows.append(
                    (float(np.mean([o.episode_return for o in outs])), sum(o.success is True for o in outs) / len(outs))
                )
            self._write_iteration(rows, frontier, time.perf_counter() - t_it)

    def _write_iteration(self, rows: list[tuple[float, float]], frontier: float, took: float) -> None:
        it = self.iteration
        snap = self.core.snapshot()["curricula"]["main"]
        teacher = {
            s: {k: v for k, v in st.items() if isinstance(v, (int, float, str, bool)) or v is None}
            for s, st in snap["students"].items()
        }
        n = self.batch * len(self.students)
        row: dict[str, Any] = {
            "env_steps": n,
            "episodes": n,
            "env_steps_total": self.episodes,
            "episodes_total": self.episodes,
            "mean_return": float(np.mean([r for r, _ in rows])),
            "success_rate": float(np.mean([s for _, s in rows])),
            "mastered": round(frontier * 0.8, 4),
            "iteration": it,
            "iteration_s": took,
            "wall_s": time.perf_counter() - self._t0,
            "outcomes_accepted": snap["counters"].get("outcomes_accepted"),
            "tasks_sampled": snap["counters"].get("tasks_sampled"),
            "teacher": teacher,
            "time": time.time(),
        }
        if len(self.students) > 1:
            row["per_student"] = [
                {"mean_return": r, "success_rate": s, "mastered": round(frontier * 0.8, 4)} for r, s in rows
            ]
        if self.evaluation_every and it % self.evaluation_every == 0 and isinstance(self.space, Box):
            self._evaluate(frontier)
        self.rd.append_metrics(row)
        if self.views.due(it):
            self.views.append(it, row, self.core.views())
        self.rd.write_status({"state": "running", "iteration": it, "wall_s": row["wall_s"]})

    def _evaluate(self, frontier: float) -> None:
        """A 10x10 grid over the first two dims, in `evaluate_tasks`' evaluations.jsonl format."""
        assert isinstance(self.space, Box)
        lo, hi = self.space.low, self.space.high
        grid = [[a, b] for a in np.linspace(lo[0], hi[0], 10) for b in np.linspace(lo[1], hi[1], 10)]
        tasks = self.space.tasks(np.asarray([g + list(lo[2:]) for g in grid]), origin="test")
        returns = {t.id: 300 * self._p_success(np.asarray(t.params), None, frontier) - 20 for t in tasks}
        success = {k: v > 230 for k, v in returns.items()}
        line = {
            "iteration": self.iteration,
            "env_steps_total": self.episodes,
            "tasks": len(tasks),
            "mean_return": float(np.mean(list(returns.values()))),
            "mastered": float(np.mean(list(success.values()))),
            "unfinished": 0,
            "returns": returns,
            "task_params": {t.id: list(t.params) for t in tasks},
            "task_success": success,
        }
        with open(self.path / EVALUATIONS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def finish(self, state: str = "finished") -> None:
        """Close the event log and mark the run ``state``."""
        self.core.close()
        self.rd.write_status({"state": state, "iteration": self.iteration, "wall_s": time.perf_counter() - self._t0})


def write_bulk_run(
    path: str | pathlib.Path, outcomes: int = 1_000_000, batch: int = 64, iterations: int = 10_000, seed: int = 0
) -> pathlib.Path:
    """A finished ALP-GMM-like run with ``outcomes`` outcomes on a 2-D Box, written fast.

    Each iteration logs ``sampled`` and ``outcome`` batches of ``batch`` rows (tasks drawn
    around a centre that drifts across the space, plus 20 % uniform draws), one metrics row,
    and every ``iterations // 300`` iterations a teacher view with a few Gaussian components.
    """
    root = pathlib.Path(path)
    write_config(root, name="dashboard_load", family="toy", teacher="alp_gmm", seed=seed, iterations=iterations)
    rd = RunDir(root)
    (root / "checkpoints").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    space = Box([0.0, 0.0], [1.0, 1.0], names=["x0", "x1"])
    views = ViewWriter(root, iterations)
    per_it = max(1, outcomes // iterations)
    t = time.time() - outcomes / 5000.0  # as if at 5,000 outcomes/s
    log = EventLog(rd.events_path, fsync="never")
    spec = {"name": "main", "teacher": "alp_gmm", "space": space.to_dict(), "config": {"seed": seed}, "preset": None}
    log.curriculum("main", {**spec, "students": "separate"})
    done = 0
    with open(rd.metrics_path, "w", encoding="utf-8") as metrics:
        for it in range(1, iterations + 1):
            centre = np.array([0.1, 0.1]) + 0.8 * it / iterations
            n_it = min(per_it, outcomes - done)
            for a in range(0, n_it, batch):
                n = min(batch, n_it - a)
                uniform = rng.random(n) < 0.2
                params = np.where(
                    uniform[:, None], rng.random((n, 2)), np.clip(centre + 0.08 * rng.standard_normal((n, 2)), 0, 1)
                )
                ids = rng.integers(0, 2**63, size=n).astype(np.uint64)
                log.sampled(
                    "main",
                    "default",
                    TaskBatch("box", ids, uniform.astype(np.uint8), ("sampled", "uniform"), params=params),
                )
                succ = (rng.random(n) < 0.6).astype(np.int8)
                log.outcome(
                    "main",
                    OutcomeBatch(
                        task_ids=ids,
                        returns=succ + 0.1 * rng.random(n),
                        success=succ,
                        lengths=np.ones(n, dtype=np.int32),
                        episode_ids=np.arange(done + a, done + a + n, dtype=np.uint64),
                        student_codes=np.zeros(n, dtype=np.uint8),
                        student_names=("default",),
                        t=np.full(n, t),
                        infos=None,
                    ),
                )
                t += n / 5000.0
            done += n_it
            row = {
                "env_steps": n_it,
                "episodes": n_it,
                "env_steps_total": done,
                "episodes_total": done,
                "mean_return": 0.66,
                "success_rate": 0.6,
                "mastered": min(1.0, 0.8 * it / iterations),
                "iteration": it,
                "iteration_s": n_it / 5000.0,
                "wall_s": done / 5000.0,
                "outcomes_accepted": done,
                "tasks_sampled": done,
                "teacher": {"default": {"teacher": "alp_gmm", "refit_ms_last": 5.0, "alp_pending": 10}},
                "time": t,
            }
            metrics.write(json.dumps(row) + "\n")
            if views.due(it):
                views.append(it, row, {"main": {"default": _bulk_view(space, centre, rng)}})
    log.close()
    rd.write_status({"state": "finished", "iteration": iterations, "wall_s": done / 5000.0})
    return root


def _bulk_view(space: Box, centre: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    from openended.teachers.views import gmm_view

    k = 6
    means = np.clip(centre + 0.15 * rng.standard_normal((k, 2)), 0, 1)
    covs = np.stack([np.diag(rng.uniform(0.002, 0.02, 2)) for _ in range(k)])
    alp = rng.random(k)
    return gmm_view("alp_gmm", space, means, covs, "alp", alp, alp / alp.sum(), np.full(k, 1 / k), fits=1, episodes=0)
