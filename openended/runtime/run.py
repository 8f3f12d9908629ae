"""`openended run`: one experiment, end to end, on embedded Ray or a cluster.

What happens:
1. The experiment was validated already (`openended.config`); a run directory is
   created (or reopened with ``--resume``).
2. Ray starts (loopback only) or is joined; the `TeacherService` actor starts with the
   run's event log and checkpoint folder (``resume=True`` restores checkpoint + log).
3. A driver per student trains: `PoolDriver` (EnvPool actors; the env's simulated
   student, e.g. the toy learner) or `RLlibDriver` (PPO/SAC with `CurriculumEnv`).
4. Every iteration appends a metrics row and updates the live table; every
   ``run.checkpoint_every`` iterations the service, the drivers' state (env students or
   RLlib algorithms) and a ``latest.json`` pointer are written, in that order.

Resuming after a crash (even kill -9) continues from the last complete checkpoint: the
teacher service replays every outcome logged after it exactly once (dedup by episode
id), drivers reload their state, and iteration numbering continues.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Protocol

import ray

from openended.config import Experiment, teacher_config
from openended.envs.registry import env_task_space
from openended.errors import ConfigError
from openended.runtime.local import init_ray
from openended.runtime.progress import ProgressReporter
from openended.runtime.rundir import RunDir
from openended.runtime.service import start_service
from openended.runtime.views_log import ViewWriter

__all__ = ["run_experiment", "CURRICULUM", "service_name_for"]

CURRICULUM = "main"
#: Per-task evaluation results: written to evaluations.jsonl, kept out of the metrics rows.
_PER_TASK_EVAL = ("returns", "task_params", "task_success")


def service_name_for(rd: RunDir) -> str:
    """The teacher service actor's name for run ``rd`` (unique per run; a resume finds it again)."""
    return f"openended-teacher-{rd.name}"


class Driver(Protocol):
    student: str

    def train_iteration(self) -> dict: ...

    def save(self, directory: str) -> None: ...

    def restore(self, directory: str) -> None: ...

    def close(self) -> None: ...


class PoolDriver:
    """EnvPool actors for one student: each iteration steps every pool ``steps_per_call`` times."""

    def __init__(self, exp: Experiment, service: Any, student: str, index: int) -> None:
        from openended.runtime.envpool_actor import make_pools

        self.student = student
        self.exp = exp
        self.pools = make_pools(
            exp.pool.pools_per_student,
            service,
            CURRICULUM,
            exp.env.family,
            exp.env.config,
            num_envs=exp.pool.envs_per_pool,
            num_cpus=0.5,
            seed=exp.seed + 1_000_000 * index,
            student=student,
            policy=exp.pool.policy,
            steps_per_call=exp.pool.steps_per_call,
            namespace=exp.ray.namespace,
        )

    def train_iteration(self) -> dict:
        stats = ray.get([p.step.remote() for p in self.pools])
        metrics = ray.get([p.env_metrics.remote() for p in self.pools])
        episodes = sum(s["episodes"] for s in stats)
        returns = [s["mean_return"] * s["episodes"] for s in stats if s.get("mean_return") is not None]
        succ = [s["success_rate"] * s["episodes"] for s in stats if s.get("success_rate") is not None]
        out = {
            "env_steps": sum(s["steps"] for s in stats),
            "episodes": episodes,
            "mean_return": (sum(returns) / episodes) if episodes and returns else None,
            "success_rate": (sum(succ) / episodes) if episodes and succ else None,
            "env_steps_total": sum(s["total_steps"] for s in stats),
            "episodes_total": sum(s["total_episodes"] for s in stats),
        }
        merged = _mean_dicts(metrics)
        if "mastered" in merged:
            out["mastered"] = merged["mastered"]
        return out

    def save(self, directory: str) -> None:
        for j, p in enumerate(self.pools):
            ray.get(p.flush.remote(True))
            states = ray.get(p.env_states.remote())
            with open(os.path.join(directory, f"pool-{self.student}-{j}.json"), "w", encoding="utf-8") as f:
                json.dump(states, f)

    def restore(self, directory: str) -> None:
        for j, p in enumerate(self.pools):
            path = os.path.join(directory, f"pool-{self.student}-{j}.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    ray.get(p.load_env_states.remote(json.load(f)))

    def close(self) -> None:
        for p in self.pools:
            try:
                ray.get(p.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead pool must not stop the others from flushing
                pass
            ray.kill(p)


class RLlibDriver:
    """One RLlib algorithm (PPO/SAC, new API stack) for one student, envs wrapped in `CurriculumEnv`."""

    def __init__(self, exp: Experiment, service_name: str, student: str, index: int) -> None:
        from openended.envs.registry import make_env
        from openended.envs.team import is_parallel_env
        from openended.runtime.rllib import build_algo_config, needs_flattening, register_curriculum_env
        from openended.runtime.rllib_multiagent import register_curriculum_multiagent_env, shared_policy_config

        self.student = student
        algo = exp.algo.name
        if algo == "none":  # run_experiment hosts these students with a PoolDriver
            raise ConfigError("algo.name: 'none' has no RLlib algorithm; PoolDriver runs EnvPool actors instead")

        probe = make_env(exp.env.family, **exp.env.config)
        multi_agent = is_parallel_env(probe)
        flatten = exp.algo.flatten_observations
        if flatten is None:
            space = probe.observation_space(probe.possible_agents[0]) if multi_agent else probe.observation_space
            flatten = needs_flattening(space)
        probe.close()
        register = register_curriculum_multiagent_env if multi_agent else register_curriculum_env
        env_name = register(
            f"openended-{service_name}-{student}",
            exp.env.family,
            exp.env.config,
            service_name,
            CURRICULUM,
            student,
            namespace=exp.ray.namespace,
        )
        cfg = build_algo_config(
            algo,
            env_name,
            exp.algo.config,
            exp.algo.num_env_runners,
            num_envs_per_env_runner=exp.algo.num_envs_per_env_runner,
            seed=exp.seed + 1_000_000 * index,
            flatten_observations=flatten,
        )
        if multi_agent:
            cfg = shared_policy_config(cfg)
        self.algo = cfg.build_algo()
        self.exp = exp
        self.multi_agent = multi_agent
        self._last_steps = 0
        self._last_episodes = 0

    def train_iteration(self) -> dict:
        from openended.runtime.process_clients import flush_curriculum_clients

        result = self.algo.train()
        flush_curriculum_clients(wait=False)
        er = result.get("env_runners", {}) or {}
        # Per-iteration counts (lifetime counters may or may not survive a restore).
        steps = int(er.get("num_env_steps_sampled", 0) or 0)
        episodes = int(er.get("num_episodes", 0) or 0)
        self._last_steps += steps
        self._last_episodes += episodes
        return {
            "env_steps": steps,
            "episodes": episodes,
            "mean_return": er.get("episode_return_mean"),
            "env_steps_total": self._last_steps,
            "episodes_total": self._last_episodes,
        }

    def evaluate(self) -> dict:
        """The policy on the experiment's test set (see `openended.runtime.evaluate`)."""
        from openended.envs.registry import make_env
        from openended.runtime.evaluate import evaluate_tasks, resolve_test_set, rllib_policy
        from openended.runtime.rllib import ScaleImageObservations, needs_flattening

        ev, fam, cfg = self.exp.evaluation, self.exp.env.family, self.exp.env.config
        if self.multi_agent:
            raise ConfigError("evaluation: multi-agent envs are not supported yet; set evaluation.every: 0")

        def make() -> Any:
            env = make_env(fam, **cfg)
            if needs_flattening(env.observation_space):
                raise ConfigError("evaluation: Dict/Tuple observations are not supported yet; set evaluation.every: 0")
            return _ScaledTaskEnv(env) if ScaleImageObservations.needed(env.observation_space) else env

        probe = make_env(fam, **cfg)
        tasks = resolve_test_set(probe, fam, ev.test_set, ev.max_tasks)
        probe.close()
        return evaluate_tasks(make, tasks, rllib_policy(self.algo), seed=self.exp.seed, max_steps=ev.max_steps)

    def save(self, directory: str) -> None:
        from openended.runtime.process_clients import flush_curriculum_clients

        flush_curriculum_clients(wait=True)
        self.algo.save_to_path(os.path.join(directory, f"algo-{self.student}"))

    def restore(self, directory: str) -> None:
        path = os.path.join(directory, f"algo-{self.student}")
        if os.path.isdir(path):
            self.algo.restore_from_path(path)

    def close(self) -> None:
        from openended.runtime.process_clients import flush_curriculum_clients

        flush_curriculum_clients(wait=True)
        self.algo.stop()


def _ScaledTaskEnv(env: Any) -> Any:
    """`ScaleImageObservations` that still forwards ``set_task`` (evaluation sets tasks directly)."""
    from openended.runtime.rllib import ScaleImageObservations

    wrapped: Any = ScaleImageObservations(env)  # Any: it gains an attribute gymnasium's Wrapper does not declare
    wrapped.set_task = env.set_task
    return wrapped


def _mean_dicts(ds: list[dict]) -> dict:
    keys = set().union(*ds) if ds else set()
    out = {}
    for k in keys:
        vals = [d[k] for d in ds if isinstance(d.get(k), (int, float))]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out


def _combine(rows: list[dict]) -> dict:
    """Sum counts, episode-weight the means, over students."""
    out: dict[str, Any] = {
        k: sum(r.get(k) or 0 for r in rows) for k in ("env_steps", "episodes", "env_steps_total", "episodes_total")
    }
    for k in ("mean_return", "success_rate"):
        pairs = [(r[k], r.get("episodes") or 0) for r in rows if r.get(k) is not None]
        w = sum(e for _, e in pairs)
        out[k] = (sum(v * e for v, e in pairs) / w) if pairs and w else (pairs[0][0] if pairs else None)
    mastered = [r["mastered"] for r in rows if r.get("mastered") is not None]
    out["mastered"] = sum(mastered) / len(mastered) if mastered else None
    if len(rows) > 1:
        out["per_student"] = rows
    return out


def run_experiment(
    exp: Experiment, run_dir: RunDir | None = None, base_dir: str | None = None, progress: bool = True
) -> dict:
    """Run (or resume, when ``run_dir`` is given) ``exp``; return a summary dict."""
    resuming = run_dir is not None
    rd = run_dir if run_dir is not None else RunDir.create(exp, base_dir)
    print(f"openended: run directory {rd.path}", file=sys.stderr, flush=True)
    try:  # before Ray: a bad env config fails fast
        space = env_task_space(exp.env.family, **exp.env.config)
    except TypeError as e:  # an unknown keyword for the family's constructor
        raise ConfigError(f"env.config: {e}") from None
    started_ray = not ray.is_initialized()
    init_ray(
        exp.ray.address,
        num_cpus=exp.ray.num_cpus,
        namespace=exp.ray.namespace,
        temp_dir=exp.ray.temp_dir,
        log_to_driver=False,
    )
    name = service_name_for(rd)
    teacher_cfg = teacher_config(exp)  # with what the env family supplies (its task validator)
    service = start_service(
        name,
        exp.ray.namespace,
        event_log=str(rd.events_path),
        checkpoint_dir=str(rd.checkpoints / "teacher"),
        resume=resuming,
        curricula=[
            {
                "name": CURRICULUM,
                "teacher": exp.teacher.name,
                "space": space.to_dict(),
                "config": teacher_cfg,
                "preset": exp.teacher.preset,
                "students": exp.teacher.students,
            }
        ],
    )
    ray.get(service.ping.remote())
    start_iter = 0
    drivers: list[Driver] = []
    reporter = ProgressReporter(exp, rd, enabled=progress)
    view_writer = ViewWriter(rd.path, exp.run.iterations)  # teacher views for the dashboard
    t0 = time.perf_counter()
    state = "failed"
    try:
        for i, student in enumerate(exp.students):
            if exp.algo.name == "none":
                drivers.append(PoolDriver(exp, service, student, i))
            else:
                drivers.append(RLlibDriver(exp, name, student, i))
        offsets = {"env_steps_total": 0, "episodes_total": 0}
        prior_wall = 0.0
        if resuming:
            latest = rd.latest_checkpoint()
            if latest is not None:
                start_iter, ckpt = latest
                for d in drivers:
                    d.restore(str(ckpt))
            last = rd.truncate_metrics(start_iter)  # rows after the checkpoint are redone
            if last is not None:
                offsets = {k: int(last.get(k) or 0) for k in offsets}
                prior_wall = float(last.get("wall_s") or 0.0)
        rd.write_status({"state": "running", "iteration": start_iter, "pid": os.getpid(), "wall_s": prior_wall})
        reporter.start(start_iter)
        prev_counts: dict = dict(ray.get(service.snapshot.remote())["curricula"][CURRICULUM]["counters"])
        for it in range(start_iter + 1, exp.run.iterations + 1):
            t_it = time.perf_counter()
            rows = [d.train_iteration() for d in drivers]
            row = _combine(rows)
            for k, off in offsets.items():  # lifetime totals continue across resumes
                row[k] = (row.get(k) or 0) + off
            snap = ray.get(service.snapshot.remote())
            cur = snap["curricula"][CURRICULUM]
            counts = cur["counters"]
            if row.get("success_rate") is None:  # RLlib drivers: from the outcomes the teacher accepted
                dk = counts.get("success_known", 0) - prev_counts.get("success_known", 0)
                ds = counts.get("successes", 0) - prev_counts.get("successes", 0)
                row["success_rate"] = ds / dk if dk > 0 else None
            prev_counts = dict(counts)
            row.update(
                {
                    "iteration": it,
                    "iteration_s": time.perf_counter() - t_it,
                    "wall_s": prior_wall + time.perf_counter() - t0,
                    "outcomes_accepted": cur["counters"].get("outcomes_accepted"),
                    "tasks_sampled": cur["counters"].get("tasks_sampled"),
                    "teacher": _teacher_summary(cur),
                    "time": time.time(),
                }
            )
            ev = exp.evaluation
            if ev.every and (it % ev.every == 0 or it == exp.run.iterations):
                driver = drivers[0]
                assert isinstance(driver, RLlibDriver), "config: evaluation.every needs an RLlib learner"
                result = driver.evaluate()
                row["eval"] = {k: v for k, v in result.items() if k not in _PER_TASK_EVAL}
                row["mastered"] = result["mastered"]
                with open(rd.path / "evaluations.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps({"iteration": it, "env_steps_total": row["env_steps_total"], **result}) + "\n")
            rd.append_metrics(row)
            if view_writer.due(it):
                view_writer.append(it, row, ray.get(service.views.remote()))
            reporter.update(row)
            if it % exp.run.checkpoint_every == 0 or it == exp.run.iterations:
                _checkpoint(rd, service, drivers, it)
            rd.write_status({"state": "running", "iteration": it, "pid": os.getpid(), "wall_s": row["wall_s"]})
        state = "finished"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    finally:
        reporter.stop()
        for d in drivers:
            try:
                d.close()
            except Exception as e:  # noqa: BLE001 - keep closing the rest; the log has every outcome
                print(f"openended: closing driver {d.student} failed: {e}", file=sys.stderr)
        try:
            ray.get(service.close.remote(), timeout=60)
            ray.kill(service)
        except Exception:  # noqa: BLE001 - a dead service: its log already holds every outcome
            pass
        final = {
            "state": state,
            "iteration": rd.read_status().get("iteration", start_iter),
            "wall_s": rd.read_status().get("wall_s"),
        }
        rd.write_status(final)
        if started_ray:
            ray.shutdown()
    summary = {"run_dir": str(rd.path), **rd.read_status()}
    last = None
    for row in rd.iter_metrics():
        last = row
    if last:
        summary.update({k: last.get(k) for k in ("episodes_total", "env_steps_total", "mean_return", "mastered")})
    return summary


def _teacher_summary(cur: dict) -> dict:
    """A small, JSON-able digest of teacher stats (the full stats live in checkpoints)."""
    out = {}
    for student, st in cur.get("students", {}).items():
        keep = {k: v for k, v in st.items() if isinstance(v, (int, float, str, bool)) or v is None}
        out[student] = keep
    return out


def _checkpoint(rd: RunDir, service: Any, drivers: list[Driver], it: int) -> None:
    ckpt = rd.checkpoint_dir(it)
    for d in drivers:  # flush outboxes first so the teacher checkpoint covers every finished episode
        d.save(str(ckpt))
    path = ray.get(service.checkpoint.remote())
    rd.commit_checkpoint(it, {"teacher_checkpoint": path})
