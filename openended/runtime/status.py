"""`openended status RUN_DIR`: what a run did, from its files alone (no Ray needed)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from openended.runtime.rundir import RunDir

__all__ = ["summarize", "print_status"]


def summarize(run_dir: str) -> dict:
    """State, progress, last metrics and last checkpoint of the run in ``run_dir``, read from its files."""
    rd = RunDir.open(run_dir)
    rows = list(rd.iter_metrics())
    status = rd.read_status()
    latest = rd.latest_checkpoint()
    last = rows[-1] if rows else {}
    return {
        "run_dir": str(rd.path),
        "state": status.get("state", "unknown"),
        "iterations": last.get("iteration", 0),
        "episodes": last.get("episodes_total", 0),
        "env_steps": last.get("env_steps_total", 0),
        "mean_return": last.get("mean_return"),
        "mastered": last.get("mastered"),
        "last_checkpoint": latest[0] if latest else None,
        "wall_s": last.get("wall_s"),
        "experiment": rd.load_experiment().name,
    }


def print_status(run_dir: str) -> None:
    """`summarize` as a table on the terminal (``openended status``)."""
    s = summarize(run_dir)
    table = Table(title=f"run {s['run_dir']}", show_header=False)
    for k, v in s.items():
        if k != "run_dir":
            table.add_row(k, "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    Console().print(table)
