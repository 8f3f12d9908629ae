"""`openended run`: one experiment, end to end, on embedded Ray or a cluster.

What happens:
1. The experiment was validated already (`openended.config`); a run directory is
   created (or reopened with ``--resume``) and locked: one writer per run
   (`openended.runtime.runlock`).
2. Resuming: what a killed run's embedded Ray left behind is stopped
   (`openended.runtime.raysession`), the newest complete checkpoint set is chosen and the
   files are checked, all before Ray starts (`openended.runtime.resume`).
3. Ray starts (loopback only) or is joined; the `TeacherService` actor starts with the
   run's event log and checkpoint folder, restoring itself from them, and with
   ``max_restarts`` so that Ray brings it back if its process dies.
4. A driver per student trains (`openended.runtime.drivers`): `PoolDriver` (EnvPool
   actors; the env's simulated student, e.g. the toy learner) or `RLlibDriver`.
5. Every iteration appends a metrics row and updates the live table; every
   ``run.checkpoint_every`` iterations `write_checkpoint_set` writes one checkpoint set.

Resuming after a crash (even kill -9) continues from the newest complete set: students,
pools and teacher all from that set; what the killed run logged after it is superseded
(kept in the log, not counted), and iteration numbering continues. Guarantees and the
tests behind them: ``docs/reliability.md``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError, RayTaskError

from openended.config import Experiment, teacher_config
from openended.errors import Error, RunFailed
from openended.runtime import raysession
from openended.runtime.checkpoints import CheckpointSet
from openended.runtime.component_run import RunComponents, run_store_specs
from openended.runtime.drivers import CURRICULUM, RESTART_TIMEOUT_S, Driver, PoolDriver, RLlibDriver
from openended.runtime.exporters import RunExporters
from openended.runtime.local import init_ray
from openended.runtime.placement import embedded_ray_resources, service_actor_options
from openended.runtime.plugin_paths import worker_runtime_env
from openended.runtime.preflight import preflight
from openended.runtime.progress import ProgressReporter
from openended.runtime.resume import ResumePoint, prepare_resume
from openended.runtime.rundir import RunDir
from openended.runtime.runlock import Holder, RunLock, this_process
from openended.runtime.scenario_run import ScenarioRun
from openended.runtime.service import start_service
from openended.runtime.views_log import ViewWriter

__all__ = ["run_experiment", "write_checkpoint_set", "CURRICULUM", "SERVICE_MAX_RESTARTS", "service_name_for"]

#: Ray restarts of the teacher service actor before the run gives up on it.
SERVICE_MAX_RESTARTS = 10
#: Per-task evaluation results: written to evaluations.jsonl, kept out of the metrics rows.
_PER_TASK_EVAL = ("returns", "task_params", "task_success")


def service_name_for(rd: RunDir) -> str:
    """The teacher service actor's name for run ``rd`` (unique per run; a resume finds it again)."""
    return f"openended-teacher-{rd.name}"


def _say(line: str) -> None:
    print(f"openended: {line}", file=sys.stderr, flush=True)


def _say_transports(drivers: list[Driver]) -> None:
    """One line on how the pools reach the teacher service (socket or Ray calls, and why), once per start."""
    try:
        by: dict[str, list[str]] = {"wire": [], "ray": []}
        for d in drivers:
            if isinstance(d, PoolDriver):
                for transport, notes in d.transports().items():
                    by[transport].extend(notes)
    except Exception as e:  # noqa: BLE001 - a note for the user, never a reason to stop a run
        _say(f"could not ask the pools how they reach the teacher service: {_one_line(e)}")
        return
    if by["wire"] or by["ray"]:
        why = sorted({n for n in by["ray"] if n})
        _say(
            f"env pools reach the teacher service by socket: {len(by['wire'])}, by Ray calls: {len(by['ray'])}"
            + (f" ({'; '.join(why)})" if why else "")
        )


def call_service(make_call: Callable[[], Any], what: str) -> Any:
    """``ray.get(make_call())``, waiting out a restart of the service actor (calls in flight fail then)."""
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while True:
        try:
            return ray.get(make_call(), timeout=RESTART_TIMEOUT_S)
        except ActorDiedError as e:
            raise RunFailed(f"the teacher service died and was not restarted ({what}): {_one_line(e)}") from e
        except (RayActorError, GetTimeoutError) as e:  # ActorUnavailableError: Ray is restarting it
            if time.monotonic() > deadline:
                raise RunFailed(f"the teacher service did not come back within {RESTART_TIMEOUT_S}s ({what})") from e
            time.sleep(0.2)


def _one_line(e: BaseException) -> str:
    """The line of an error that says what went wrong (Ray wraps causes in multi-line tracebacks)."""
    if isinstance(e, RayTaskError) and isinstance(getattr(e, "cause", None), BaseException):
        return _one_line(e.cause)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in reversed(lines):  # the innermost "SomeError: message" line of a wrapped traceback
        head = ln.split(":", 1)[0]
        if head.endswith(("Error", "Corrupt", "Exception")) and " " not in head:
            return ln
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _combine(rows: list[dict], students: list[str]) -> dict:
    """Sum counts, episode-weight the means, over students (each one's row, named, in ``per_student``)."""
    keys = ("env_steps", "episodes", "env_steps_total", "episodes_total")
    out: dict[str, Any] = {k: sum(r.get(k) or 0 for r in rows) for k in keys}
    for k in ("mean_return", "success_rate"):
        pairs = [(r[k], r.get("episodes") or 0) for r in rows if r.get(k) is not None]
        w = sum(e for _, e in pairs)
        out[k] = (sum(v * e for v, e in pairs) / w) if pairs and w else (pairs[0][0] if pairs else None)
    mastered = [r["mastered"] for r in rows if r.get("mastered") is not None]
    out["mastered"] = sum(mastered) / len(mastered) if mastered else None
    for k in ("pool_restarts", "episodes_interrupted"):
        if any(k in r for r in rows):
            out[k] = sum(r.get(k) or 0 for r in rows)
    if len(rows) == 1:  # several students: each one's learner stats are in its per_student row
        out.update({k: rows[0][k] for k in ("learner", "timers") if k in rows[0]})
    if len(rows) > 1:
        out["per_student"] = [{"student": name, **r} for name, r in zip(students, rows)]
    return out


def _teacher_summary(cur: dict) -> dict:
    """A small, JSON-able digest of teacher stats (the full stats live in checkpoints)."""
    out = {}
    for student, st in cur.get("students", {}).items():
        keep = {k: v for k, v in st.items() if isinstance(v, (int, float, str, bool)) or v is None}
        out[student] = keep
    return out


def write_checkpoint_set(
    rd: RunDir,
    service: Any,
    drivers: list[Driver],
    iteration: int,
    totals: dict,
    components: RunComponents | None = None,
    scenario: ScenarioRun | None = None,
) -> CheckpointSet:
    """Write the run's checkpoint set for ``iteration``: every member, then the manifest (last, atomically).

    The one place a set's members are written; state that must survive a resume gets a
    member here. Order: each driver saves its students (pools flush their outcomes first,
    so the teacher checkpoint that follows covers every finished episode), then the teacher
    service checkpoints and its file is linked into the set, then the manifest records the
    event-log offset the teacher covers and the run's totals.
    """
    with rd.checkpoint_set(iteration) as ckpt:
        for d in drivers:
            d.save(ckpt)
        if components is not None:
            components.save(ckpt)
        if scenario is not None:
            scenario.save(ckpt)
        info = call_service(lambda: service.checkpoint_info.remote(), "checkpoint")
        ckpt.link("teacher", info["path"], "teacher.json")
        return ckpt.commit(event_log_offset=int(info["log_offset"] or 0), totals=totals)


@dataclass
class _Done:
    """How far the run got: the last iteration completed and the wall time it took (what status.json says)."""

    iteration: int
    wall_s: float


def _status(state: str, iteration: int, wall_s: float | None, me: Holder, **extra: Any) -> dict:
    return {
        "state": state,
        "iteration": iteration,
        "wall_s": wall_s,
        "pid": me.pid,
        "pid_start": me.start_ticks,
        "host": me.host,
        "since": me.since,
        **extra,
    }


def run_experiment(
    exp: Experiment, run_dir: RunDir | None = None, base_dir: str | None = None, progress: bool = True
) -> dict:
    """Run (or resume, when ``run_dir`` is given) ``exp``; return a summary dict.

    Raises `RunDirError` when the run directory is held by a live run or damaged, and
    `RunFailed` (one line: the original error) when the run stops on an outside error (disk
    full, permission denied, an actor that did not come back); ``status.json`` then says
    ``failed`` with that reason.
    """
    space = preflight(exp)  # before anything is created: whatever the run would refuse fails here
    resuming = run_dir is not None
    rd = run_dir if run_dir is not None else RunDir.create(exp, base_dir)
    print(f"openended: run directory {rd.path}", file=sys.stderr, flush=True)
    lock = RunLock(rd.path)
    lock.acquire(recorded=_recorded_holder(rd))
    try:
        if resuming:
            stopped = raysession.stop_leftovers(rd.path)
            if stopped:
                _say(f"stopped {stopped} processes the killed run's embedded Ray left behind")
            point = prepare_resume(rd)
        else:
            point = ResumePoint()
        return _run_locked(exp, rd, point, space.to_dict(), progress)
    finally:
        lock.release()


def _recorded_holder(rd: RunDir) -> Holder | None:
    try:
        status = rd.read_status()
    except Error:  # damaged: nothing to trust; the lock is what counts
        return None
    return Holder.from_dict(status) if status.get("state") == "running" else None


def _plugin_env(exp: Experiment) -> dict[str, Any]:
    """``ray.init`` keywords that make the experiment's plugin packages importable in the workers."""
    env = worker_runtime_env(exp)
    return {"runtime_env": env} if env else {}


def _run_locked(exp: Experiment, rd: RunDir, point: ResumePoint, space: dict, progress: bool) -> dict:
    me = this_process()
    started_ray = not ray.is_initialized()
    embedded = started_ray and exp.ray.address is None and not os.environ.get("RAY_ADDRESS")
    try:
        init_ray(
            exp.ray.address,
            num_cpus=exp.ray.num_cpus,
            namespace=exp.ray.namespace,
            temp_dir=exp.ray.temp_dir,
            log_to_driver=False,
            **_plugin_env(exp),
            **({"resources": embedded_ray_resources(exp)} if embedded else {}),
        )
    except Exception as e:  # Ray's start-up errors are plain Exceptions: say it in one line
        raise RunFailed(f"Ray did not start: {_one_line(e)}") from e

    name = service_name_for(rd)
    service: Any = None
    drivers: list[Driver] = []
    components: RunComponents | None = None
    scenario: ScenarioRun | None = None
    reporter = ProgressReporter(exp, rd, enabled=progress)
    exporters: RunExporters | None = None
    state, reason = "failed", None
    done = _Done(point.iteration, float(point.totals.get("wall_s") or 0.0))
    try:
        if embedded:  # at once (a kill during start-up), and again once the raylet has started its agents
            raysession.record_embedded_ray(rd.path)
        _take_over_live_service(name, exp.ray.namespace)
        service = start_service(
            name,
            exp.ray.namespace,
            detached=exp.resources.service_detached,
            max_concurrency=exp.resources.service_threads,
            wire_host=exp.resources.service_wire_host,
            event_log=str(rd.events_path),
            checkpoint_dir=str(rd.teacher_checkpoints),
            resume=True,  # also what a Ray restart of the actor runs: checkpoint + log
            restore_candidates=[point.teacher_checkpoint] if point.teacher_checkpoint else [],
            max_restarts=SERVICE_MAX_RESTARTS,
            actor_options=service_actor_options(exp.resources),
            curricula=[
                {
                    "name": CURRICULUM,
                    "teacher": exp.teacher.name,
                    "space": space,
                    "config": teacher_config(exp),  # with what the env family supplies (its task validator)
                    "preset": exp.teacher.preset,
                    "students": exp.teacher.students,
                }
            ],
        )
        call_service(lambda: service.ping.remote(), "start")
        if embedded:
            raysession.record_embedded_ray(rd.path)
        if exp.components:  # before the drivers: their env runners bridge to the run's bus
            components = RunComponents(exp.components, name, exp.ray.namespace, stores=run_store_specs(exp))
        for i, student in enumerate(exp.students):
            if exp.algo.name == "none":
                drivers.append(PoolDriver(exp, name, student, i))
            else:
                drivers.append(RLlibDriver(exp, name, student, i))
        if point.checkpoint is not None:
            for d in drivers:
                d.restore(point.checkpoint, point.student_totals(d.student))
        if components is not None:
            if point.checkpoint is not None:
                components.restore(point.checkpoint)
            components.start(resumed=point.checkpoint is not None)
        if exp.scenario is not None:
            scenario = _start_scenario(exp, rd, drivers[0], components, space, point)
        rd.write_status(_status("running", done.iteration, done.wall_s, me))
        exporters = RunExporters.for_run(exp, rd.path)
        _train(exp, rd, service, drivers, reporter, point, me, done, exporters, components, scenario)
        state = "finished"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    except (OSError, RayTaskError, RayActorError, RunFailed) as e:
        cause = getattr(e, "cause", None) if isinstance(e, RayTaskError) else e
        reason = str(e) if isinstance(e, RunFailed) else _one_line(e)
        if isinstance(e, RayTaskError) and not isinstance(cause, (OSError, Error)):
            raise  # a bug in a teacher, env or driver: its traceback is what helps
        raise RunFailed(reason) from e
    except BaseException as e:
        reason = _one_line(e)
        raise
    finally:
        if exporters is not None:
            try:
                exporters.close()
            except Exception as e:  # noqa: BLE001 - metrics.jsonl holds every row; say it and go on
                _say(f"closing the metrics exporters failed: {_one_line(e)}")
        _shutdown(rd, reporter, drivers, service, started_ray, embedded, components)
        final = _status(state, done.iteration, done.wall_s, me, **({"reason": reason} if reason else {}))
        try:
            rd.write_status(final)
        except OSError as e:  # the original error (if any) is what propagates
            _say(f"could not write {rd.status_path}: {e}")
    summary = {"run_dir": str(rd.path), **final}
    rows = rd.read_metrics()
    if rows:
        summary.update({k: rows[-1].get(k) for k in ("episodes_total", "env_steps_total", "mean_return", "mastered")})
    if scenario is not None and scenario.logger is not None:
        summary["scenario"] = scenario.summary()
    return summary


def _take_over_live_service(name: str, namespace: str | None) -> None:
    """Stop a teacher service of this run that outlived its driver (``resources.service_detached``).

    Why: this process holds the run lock, so a live service under the run's name belongs to
    a driver that was killed. Its teacher has seen outcomes the newest checkpoint set does
    not cover; the run resumes from that set, so the service is closed (its event log
    flushed and closed: one writer per log) and a new one is started from the set and the
    log, exactly as after a crash. One service per run, never two.
    """
    try:
        old = ray.get_actor(name, namespace=namespace)
    except ValueError:
        return
    _say(f"taking over the live teacher service {name!r} of the stopped driver: closing it, resuming from the log")
    try:
        ray.get(old.close.remote(), timeout=60)
    except Exception as e:  # noqa: BLE001 - a service that cannot close is killed all the same
        _say(f"the live service did not close cleanly ({_one_line(e)}); stopping it")
    ray.kill(old, no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the name is free once Ray has the actor dead
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.2)
    raise RunFailed(f"the live teacher service {name!r} of the stopped driver did not stop within 60 s")


def _start_scenario(
    exp: Experiment,
    rd: RunDir,
    driver: Driver,
    components: RunComponents | None,
    space: Any,
    point: ResumePoint,
) -> ScenarioRun:
    """The run's `ScenarioRun`, opened (or resumed) and advanced to its first learning block."""
    from openended.components.evaluation import evaluation_block
    from openended.tasks import space_from_dict

    assert exp.scenario is not None and isinstance(driver, RLlibDriver), "config: a scenario needs an RLlib learner"

    def eval_block(evaluate: Callable[[], dict]) -> dict:
        return evaluation_block([components.host], evaluate) if components is not None else evaluate()

    scenario = ScenarioRun(
        exp.scenario,
        space_from_dict(space),
        rd.path,
        rd.events_path,
        driver,
        exp.name,
        exp.env.family,
        eval_block,
        _say,
    )
    scenario.start(point.checkpoint)
    return scenario


def _train(
    exp: Experiment,
    rd: RunDir,
    service: Any,
    drivers: list[Driver],
    reporter: ProgressReporter,
    point: ResumePoint,
    me: Holder,
    done: _Done,
    exporters: RunExporters,
    components: RunComponents | None = None,
    scenario: ScenarioRun | None = None,
) -> None:
    """The iterations after ``point``; ``done`` follows the last one completed (metrics row, set, status).

    With a scenario the run ends when its last block has run (or at ``run.iterations``).
    """
    t0 = time.perf_counter()
    prior_wall = done.wall_s
    reporter.start(point.iteration)
    view_writer = ViewWriter(rd.path, exp.run.iterations)  # teacher views for the dashboard
    counts: dict = dict(
        call_service(lambda: service.snapshot.remote(), "snapshot")["curricula"][CURRICULUM]["counters"]
    )
    for it in range(point.iteration + 1, exp.run.iterations + 1):
        if scenario is not None and scenario.finished:
            break
        t_it = time.perf_counter()
        rows = [d.train_iteration() for d in drivers]
        if it == point.iteration + 1:
            _say_transports(drivers)
        scenario_row = scenario.after_iteration() if scenario is not None else None
        block_eval = None
        if components is not None:
            first = drivers[0]
            evaluate = functools.partial(first.evaluate, it) if isinstance(first, RLlibDriver) else None
            block_eval = components.iteration_end(it, evaluate)
        snap = call_service(lambda: service.snapshot.remote(), "snapshot")
        cur = snap["curricula"][CURRICULUM]
        prev_counts, counts = counts, cur["counters"]
        _fill_in_unknown_episodes(rows, drivers, counts, prev_counts)
        row = _combine(rows, [d.student for d in drivers])
        if row.get("success_rate") is None:  # RLlib drivers: from the outcomes the teacher accepted
            dk = counts.get("success_known", 0) - prev_counts.get("success_known", 0)
            ds = counts.get("successes", 0) - prev_counts.get("successes", 0)
            row["success_rate"] = ds / dk if dk > 0 else None
        wall = prior_wall + time.perf_counter() - t0
        row.update(
            {
                "iteration": it,
                "iteration_s": time.perf_counter() - t_it,
                "wall_s": wall,
                "outcomes_accepted": counts.get("outcomes_accepted"),
                "tasks_sampled": counts.get("tasks_sampled"),
                "teacher": _teacher_summary(cur),
                "time": time.time(),
            }
        )
        ev = exp.evaluation
        if ev.every and (it % ev.every == 0 or it == exp.run.iterations):
            driver = drivers[0]
            assert isinstance(driver, RLlibDriver), "config: evaluation.every needs an RLlib learner"
            t_ev = time.perf_counter()
            _say(f"iteration {it}: evaluating the policy on the {ev.test_set} test set ...")
            result = driver.evaluate(it)
            result["eval_s"] = time.perf_counter() - t_ev
            row["eval"] = {k: v for k, v in result.items() if k not in _PER_TASK_EVAL}
            row["mastered"] = result["mastered"]
            row["iteration_s"] = time.perf_counter() - t_it  # the evaluation is part of the iteration
            row["wall_s"] = wall = prior_wall + time.perf_counter() - t0
            _say(f"iteration {it}: evaluated {result['tasks']} tasks in {result['eval_s']:.1f} s")
            rd.append_evaluation({"iteration": it, "env_steps_total": row["env_steps_total"], **result})
            if ev.report_to_teacher:  # the sweep's outcomes are not training episodes: keep them out of the next row
                counts = call_service(lambda: service.snapshot.remote(), "snapshot")["curricula"][CURRICULUM][
                    "counters"
                ]
        if block_eval is not None:  # an evaluation block of the components' schedule
            row["eval_block"] = {k: v for k, v in block_eval.items() if k not in _PER_TASK_EVAL}
            rd.append_evaluation(
                {"iteration": it, "env_steps_total": row["env_steps_total"], "block": "evaluation", **block_eval}
            )
        if scenario_row is not None:
            row["scenario"] = scenario_row
            row["iteration_s"] = time.perf_counter() - t_it  # its evaluation blocks are part of the iteration
            row["wall_s"] = wall = prior_wall + time.perf_counter() - t0
        rd.append_metrics(row)
        exporters.write(row)
        if view_writer.due(it):
            view_writer.append(it, row, call_service(lambda: service.views.remote(), "views"))
        reporter.update(row)
        last = it == exp.run.iterations or (scenario is not None and scenario.finished)
        if it % exp.run.checkpoint_every == 0 or last:
            totals = _totals(row, rows, drivers, wall)
            write_checkpoint_set(rd, service, drivers, it, totals, components, scenario)
        rd.write_status(_status("running", it, wall, me))
        done.iteration, done.wall_s = it, wall
    if scenario is not None and not scenario.finished:
        _say(
            f"run.iterations ({exp.run.iterations}) ended the run in scenario block {scenario.index} of "
            f"{len(scenario.blocks)}; raise run.iterations and --resume to finish the scenario"
        )


def _fill_in_unknown_episodes(rows: list[dict], drivers: list[Driver], counts: dict, prev: dict) -> None:
    """A pool died this iteration: count its episodes that reached the teacher (see `openended.runtime.drivers`)."""
    failed = [(r, d) for r, d in zip(rows, drivers) if r.pop("unknown_episodes", False)]
    if not failed:
        return
    arrived = int(counts.get("outcomes_accepted") or 0) - int(prev.get("outcomes_accepted") or 0)
    missing = arrived - sum(int(r.get("episodes") or 0) for r in rows)
    row, driver = failed[0]
    if missing > 0 and isinstance(driver, PoolDriver):
        driver.add_episodes(missing)
        row["episodes"] = int(row.get("episodes") or 0) + missing
        row["episodes_total"] = driver.episodes_total


def _totals(row: dict, rows: list[dict], drivers: list[Driver], wall: float) -> dict:
    """The run's totals at a checkpoint (what a resume continues from), per student too."""
    keys = ("env_steps_total", "episodes_total")
    return {
        **{k: row.get(k) or 0 for k in keys},
        "wall_s": wall,
        "per_student": {d.student: {k: r.get(k) or 0 for k in keys} for d, r in zip(drivers, rows)},
    }


def _shutdown(
    rd: RunDir,
    reporter: ProgressReporter,
    drivers: list[Driver],
    service: Any,
    started_ray: bool,
    embedded: bool,
    components: RunComponents | None = None,
) -> None:
    """Stop the live view, the components, the drivers (outcomes flushed), the service, and Ray if started here."""
    reporter.stop()
    if components is not None:
        try:
            components.close()
        except Exception as e:  # noqa: BLE001 - a component's end must not stop the drivers from flushing
            _say(f"closing the driver's components failed: {_one_line(e)}")
    for d in drivers:
        try:
            d.close()
        except Exception as e:  # noqa: BLE001 - keep closing the rest; the log has every outcome
            _say(f"closing driver {d.student} failed: {_one_line(e)}")
    if service is not None:
        try:
            ray.get(service.close.remote(), timeout=60)
        except Exception:  # noqa: BLE001 - a dead service: its log already holds every outcome
            pass
        try:
            ray.kill(service, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    if started_ray:
        ray.shutdown()
        if embedded:
            raysession.stop_leftovers(rd.path, timeout_s=5.0)
            raysession.clear_record(rd.path)
