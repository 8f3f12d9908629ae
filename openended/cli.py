"""``openended``: run, submit and inspect curriculum experiments.

    openended run experiments/toy_alpgmm.yaml [--set run.iterations=50] [--resume RUN_DIR]
    openended submit experiments/toy_alpgmm.yaml --address http://127.0.0.1:8265 [--follow]
    openended status runs/<run>
    openended check experiments/toy_alpgmm.yaml     # validate only, no Ray
    openended teachers | envs | judges | components   # what is installed (built-in and plugins)
    openended video runs/<run> --task 1.5,3          # the trained policy on one task, as a GIF
    openended dashboard runs/ [--host 127.0.0.1] [--port 8765]   # live dashboard (read-only)
    openended plot runs/<run> [runs/<run2> ...] [--out figures]  # the same views as PNG/SVG
    openended run experiments/toy_alpgmm.yaml --dashboard        # a run with its dashboard
    openended metrics runs/<run> [--ste STE_LOG_DIR ...]          # lifelong metrics of l2logger logs

Errors in the experiment stop the command before Ray starts, with the field path.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from openended.errors import ConfigError, Error

if TYPE_CHECKING:
    from openended.config import Experiment
    from openended.dashboard.server import DashboardServer
    from openended.registry import Registry
    from openended.runtime.rundir import RunDir

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``openended`` argument parser: one subcommand per entry of the command table."""
    p = argparse.ArgumentParser(prog="openended", description="Run, submit and inspect curriculum experiments.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_exp_args(sp: argparse.ArgumentParser, optional: bool = False) -> None:
        if optional:
            sp.add_argument("experiment", nargs="?", help="experiment YAML (omit with --resume)")
        else:
            sp.add_argument("experiment", help="experiment YAML (see experiments/)")
        sp.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a field, e.g. --set run.iterations=10 (repeatable)",
        )
        sp.add_argument("--seed", type=int, default=None, help="shortcut for --set seed=N")

    r = sub.add_parser("run", help="run an experiment (embedded local Ray unless --address)")
    add_exp_args(r, optional=True)
    r.add_argument("--address", default=None, help="existing Ray cluster (e.g. auto or ray://host:10001)")
    r.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    r.add_argument("--run-dir", default=None, help="parent folder for the run directory (default: run.dir)")
    r.add_argument("--no-progress", action="store_true", help="plain log lines instead of a live table")
    r.add_argument("--dashboard", action="store_true", help="serve the live dashboard beside the run (loopback)")
    r.add_argument(
        "--dashboard-port", type=int, default=None, metavar="N", help="its port (default 8765 or a free one)"
    )

    s = sub.add_parser("submit", help="submit an experiment as a Ray job to a cluster")
    add_exp_args(s, optional=True)
    s.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run (a directory the head reaches) in a new job, e.g. after its driver was killed",
    )
    s.add_argument("--address", required=True, help="Ray dashboard address, e.g. http://127.0.0.1:8265")
    s.add_argument("--follow", action="store_true", help="stream the job's logs until it finishes")
    s.add_argument("--working-dir", default=".", help="folder uploaded with the job (default: .)")

    st = sub.add_parser("status", help="summarise a run directory")
    st.add_argument("run_dir")

    c = sub.add_parser("check", help="validate an experiment file without running it")
    add_exp_args(c)

    d = sub.add_parser("dashboard", help="serve the live dashboard over a run directory or a folder of runs")
    d.add_argument("path", metavar="RUN_DIR_OR_RUNS_ROOT")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (beyond loopback a token is required)")
    d.add_argument("--port", type=int, default=None, help="port (default 8765, or a free one if it is taken)")

    pl = sub.add_parser("plot", help="write the dashboard's views as PNG/SVG figures (several runs: side by side)")
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (or folders of runs)")
    pl.add_argument("--out", default="figures", help="output folder (default: figures)")
    pl.add_argument(
        "--format", dest="formats", action="append", choices=["png", "svg"], help="repeatable (default both)"
    )
    pl.add_argument(
        "--only",
        dest="figures",
        action="append",
        choices=["sampling", "teacher", "learning", "heldout", "compare"],
        help="repeatable (default: all figures)",
    )

    _add_metrics_parser(sub)
    v = sub.add_parser("video", help="render the run's trained policy on one task to a GIF")
    v.add_argument("run_dir")
    v.add_argument("--task", required=True, help="Box: '1.5,3' (one number per dimension); Discrete: a value")
    v.add_argument("--out", help="GIF path (default: RUN_DIR/video_<task id>.gif)")
    v.add_argument("--student", default="default", help="whose policy (default: default)")
    v.add_argument("--max-steps", type=int, default=2000)
    v.add_argument("--every", type=int, default=2, help="keep every N-th frame")
    sub.add_parser("teachers", help="list teachers (built-in and installed plugins), presets and source")
    sub.add_parser("envs", help="list environment families (built-in and installed plugins) and source")
    sub.add_parser("judges", help="list judges (built-in and installed plugins) and source")
    sub.add_parser("components", help="list installed lifelong-learning components (built-in and entry points)")
    return p


def _add_metrics_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``openended metrics``: the lifelong metrics of the l2logger logs under a path."""
    m = sub.add_parser("metrics", help="lifelong metrics (PM, FT, BT, RP, SE, PR) of the l2logger logs under a path")
    m.add_argument("path", metavar="RUN_DIR_OR_LOG_DIR", help="a run directory, an l2logger log folder or scenario")
    m.add_argument("--ste", action="append", default=[], metavar="LOG_DIR", help="single-task-expert log (repeatable)")
    m.add_argument("--json", default=None, metavar="PATH", help="output JSON (default: PATH/lifelong_metrics.json)")
    m.add_argument("--perf", default="reward", help="metrics column to score (default: reward)")
    m.add_argument("--smoothing", choices=["flat", "none"], default="flat")
    m.add_argument("--window", type=int, default=None, metavar="N", help="smoothing window (default: 20%% of a block)")
    m.add_argument("--normalization", choices=["task", "run", "none"], default="task")
    m.add_argument("--clamp-outliers", action="store_true", help="clip each task to its 10th-90th percentile")
    m.add_argument("--maintenance", choices=["mrlep", "mrtlp", "both"], default="mrlep")
    m.add_argument("--transfer", choices=["ratio", "contrast", "both"], default="ratio")
    m.add_argument("--aggregation", choices=["mean", "median"], default="mean")
    m.add_argument(
        "--variant-mode", choices=["aware", "agnostic"], default="aware", help="agnostic: label_variant -> label"
    )
    m.add_argument(
        "--ste-averaging", choices=["metrics", "time"], default="metrics", help="time: average the STE curves first"
    )
    m.add_argument("--tasks", action="store_true", help="also print each run's metrics per task")


def _overrides(args: argparse.Namespace) -> list[str]:
    ov = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        ov.append(f"seed={args.seed}")
    return ov


def _cmd_run(args: argparse.Namespace) -> int:
    from openended.config import load_experiment
    from openended.runtime.rundir import RunDir

    if args.resume:
        rd = RunDir.open(args.resume)
        exp = load_experiment(rd.config_path, _overrides(args))
    else:
        if not args.experiment:
            raise SystemExit("openended run: give an experiment YAML, or --resume RUN_DIR")
        exp = load_experiment(args.experiment, _overrides(args))
        rd = None
    if args.address:
        exp = exp.model_copy(update={"ray": exp.ray.model_copy(update={"address": args.address})})
    if exp.ray.address is None and not os.environ.get("RAY_ADDRESS"):
        # Embedded Ray binds loopback only if this is set before Ray is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from openended.runtime.run import run_experiment  # imports Ray: only after validation

    dashboard = _start_dashboard(args, rd, exp) if args.dashboard else None
    try:
        summary = run_experiment(exp, run_dir=rd, base_dir=args.run_dir, progress=not args.no_progress)
    finally:
        if dashboard is not None:
            dashboard.stop()
    print(f"run directory: {summary['run_dir']}")
    return 0


def _start_dashboard(args: argparse.Namespace, rd: RunDir | None, exp: Experiment) -> DashboardServer:
    """`openended run --dashboard`: serve the runs folder from a thread of this process (not Ray)."""
    import pathlib

    from openended.dashboard.server import DEFAULT_PORT, DashboardServer

    root = rd.path.parent if rd is not None else pathlib.Path(args.run_dir or exp.run.dir)
    root.mkdir(parents=True, exist_ok=True)
    port = args.dashboard_port if args.dashboard_port is not None else DEFAULT_PORT
    server = DashboardServer(root, "127.0.0.1", port).start()
    where = f"/run/{rd.path.name}/curriculum" if rd is not None else "/latest"
    print(f"openended: dashboard at {server.url(where)}", file=sys.stderr, flush=True)
    return server


def _cmd_submit(args: argparse.Namespace) -> int:
    from openended.config import load_experiment
    from openended.runtime.jobs import submit_experiment

    if args.resume:
        if args.experiment or _overrides(args):
            raise SystemExit(
                "openended submit: --resume RUN_DIR takes no experiment and no --set (the run keeps its own)"
            )
        if os.path.isdir(args.resume):  # visible here too (shared storage): check it before the cluster does
            from openended.runtime.rundir import RunDir

            _check_before_cluster(load_experiment(RunDir.open(args.resume).config_path, []))
    elif not args.experiment:
        raise SystemExit("openended submit: give an experiment YAML, or --resume RUN_DIR")
    else:
        _check_before_cluster(load_experiment(args.experiment, _overrides(args)))  # fail here, not on the cluster
    job_id = submit_experiment(
        args.experiment,
        address=args.address,
        overrides=_overrides(args),
        working_dir=args.working_dir,
        follow=args.follow,
        resume=args.resume,
    )
    print(f"submitted job: {job_id}")
    return 0


def _check_before_cluster(exp: Experiment) -> None:
    """`preflight` without the CPU check: a cluster's resources are the cluster's business."""
    from openended.runtime.preflight import check_algo, check_task_space, check_teacher

    check_teacher(exp, check_task_space(exp))
    check_algo(exp)


def _cmd_status(args: argparse.Namespace) -> int:
    from openended.runtime.status import print_status

    print_status(args.run_dir)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from openended.config import load_experiment
    from openended.runtime.preflight import preflight

    exp = load_experiment(args.experiment, _overrides(args))
    space = preflight(exp)  # exactly what `run` checks before Ray starts
    print(f"task space: {space!r}")
    print(
        f"ok: {exp.name} ({exp.env.family} x {exp.teacher.name}, algo {exp.algo.name}, {exp.run.iterations} iterations)"
    )
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from openended.dashboard.server import DEFAULT_PORT, DashboardServer

    server = DashboardServer(args.path, args.host, args.port if args.port is not None else DEFAULT_PORT)
    print(f"openended dashboard: {server.url()}  (read-only; Ctrl-C stops it)", flush=True)
    server.serve_forever()
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from openended.dashboard.plots import FIGURES, FORMATS, write_figures

    for path in write_figures(args.run_dirs, args.out, args.formats or FORMATS, args.figures or FIGURES):
        print(path)
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    import pathlib

    from openended.metrics.lifelong import MetricSettings
    from openended.metrics.regimes import Preprocessing
    from openended.metrics.report import compute_all, format_table, format_task_table, missing_ste_note, write_json

    if args.window is not None and args.window < 1:
        raise ConfigError(f"--window: a positive number of experiences, got {args.window}")
    settings = MetricSettings(
        preprocessing=Preprocessing(
            perf_measure=args.perf,
            smoothing=args.smoothing,
            window_length=args.window,
            clamp_outliers=args.clamp_outliers,
            normalization=args.normalization,
            variant_mode=args.variant_mode,
        ),
        maintenance=args.maintenance,
        transfer=args.transfer,
        aggregation=args.aggregation,
        ste_averaging=args.ste_averaging,
    )
    results = compute_all(args.path, args.ste, settings)
    print(format_table(results))
    note = missing_ste_note(results)
    if note:
        print(note)
    if args.tasks:
        for path, metrics in results:
            print(f"\n{path.name}:\n{format_task_table(metrics)}")
    base = pathlib.Path(args.path)
    out = pathlib.Path(args.json) if args.json else (base if base.is_dir() else base.parent) / "lifelong_metrics.json"
    print(f"written: {write_json(results, out, settings)}")
    return 0


def _cmd_teachers(args: argparse.Namespace) -> int:
    from openended.teachers.registry import list_teachers, teacher_class, teacher_registry, teacher_source

    names = list_teachers()
    width = max(map(len, names), default=12)
    for name in names:
        try:
            cls = teacher_class(name)
            presets = ", ".join(sorted(cls.PRESETS)) or "-"
            spaces = "/".join(cls.space_kinds)
            print(f"{name:{width}s} spaces: {spaces:20s} presets: {presets:40s} {teacher_source(name)}")
        except (ImportError, Error) as e:
            print(f"{name:{width}s} (not usable: {e}) {teacher_source(name)}")
    _print_shadowed(teacher_registry().shadowed)
    return 0


def _cmd_envs(args: argparse.Namespace) -> int:
    from openended.envs.registry import env_registry

    return _list_registry(env_registry())


def _cmd_video(args: argparse.Namespace) -> int:
    from openended.runtime.video import write_video

    result = write_video(
        args.run_dir, args.task, args.out, student=args.student, max_steps=args.max_steps, every=args.every
    )
    print(
        f"{result['path']}: task {result['task']} {result['params']}, return {result['return']:.1f}, "
        f"{result['length']} steps, success {result['success']}, {result['frames']} frames"
    )
    return 0


def _cmd_components(args: argparse.Namespace) -> int:
    from openended.components.registry import available_components, component_class

    for name, path in sorted(available_components().items()):
        try:
            cls = component_class(name)
        except Error as e:
            print(f"{name:22s} (not importable: {e})")
            continue
        needs = ", ".join(cls.requires) or "-"
        gives = ", ".join(cls.provides) or "-"
        print(f"{name:22s} {cls.placement.value:11s} requires: {needs:12s} provides: {gives:14s} {path}")
    return 0


def _cmd_judges(args: argparse.Namespace) -> int:
    from openended.moi.registry import judge_registry

    return _list_registry(judge_registry())


def _list_registry(registry: Registry) -> int:
    """Each name of ``registry`` (installed plugins included) with where it comes from."""
    for name in registry.names():
        print(f"{name:16s} {registry.source(name)}")
    _print_shadowed(registry.shadowed)
    return 0


def _print_shadowed(shadowed: list[str]) -> None:
    for line in shadowed:
        print(f"ignored plugin: {line}")


_COMMANDS = {
    "run": _cmd_run,
    "submit": _cmd_submit,
    "status": _cmd_status,
    "check": _cmd_check,
    "dashboard": _cmd_dashboard,
    "plot": _cmd_plot,
    "metrics": _cmd_metrics,
    "teachers": _cmd_teachers,
    "envs": _cmd_envs,
    "components": _cmd_components,
    "judges": _cmd_judges,
    "video": _cmd_video,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one CLI command and return its exit status.

    The project's own errors become a one-line message and status 2 (no traceback: they
    already name the field and the fix); Ctrl-C becomes 130 with a hint to resume.
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except Error as e:
        print(f"openended {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"openended {args.command}: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
