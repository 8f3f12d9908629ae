"""`openended status RUN_DIR`: what a run did, from its files alone (no Ray needed).

``state`` is checked, not just read: a ``status.json`` that says ``running`` while no
process holds the run's lock (or, for runs without a lock file, while its recorded pid is
gone) was killed, and is shown as ``crashed (pid N not alive); resume with --resume DIR``.
A damaged file never stops the summary: what it says is listed under ``problems``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from openended.errors import Error
from openended.runtime.rundir import RunDir
from openended.runtime.runlock import LOCK_NAME, Holder, lock_holder

__all__ = ["summarize", "print_status", "live_state"]

T = TypeVar("T")


def live_state(rd: RunDir, status: dict) -> str:
    """``status.json``'s state, with ``running`` checked against the lock and the recorded pid."""
    state = str(status.get("state", "unknown"))
    if state != "running":
        return state
    recorded = Holder.from_dict(status)
    if recorded is not None and recorded.host != socket.gethostname():
        return f"running (on host {recorded.host}; this host cannot check it)"
    holder = lock_holder(rd.path)
    if holder is not None:
        return f"running (pid {holder.pid})" if isinstance(holder, Holder) else "running"
    if (rd.path / LOCK_NAME).exists() or recorded is None or not recorded.alive():
        pid = recorded.pid if recorded is not None else "?"
        return f"crashed (pid {pid} not alive); resume with --resume {rd.path}"
    return f"running (pid {recorded.pid})"


def _attempt(read: Callable[[], T], default: T, problems: list[str]) -> T:
    """``read()``, or ``default`` with the error noted in ``problems`` (a damaged file)."""
    try:
        return read()
    except Error as e:
        problems.append(str(e))
        return default


def summarize(run_dir: str) -> dict:
    """State, progress, last metrics and last checkpoint of the run in ``run_dir``, read from its files."""
    rd = RunDir.open(run_dir)
    problems: list[str] = []
    rows: list[dict] = _attempt(rd.read_metrics, [], problems)
    status: dict = _attempt(rd.read_status, {}, problems)
    latest = _attempt(lambda: rd.newest_checkpoint(verify=False), None, problems)
    experiment = _attempt(lambda: rd.load_experiment().name, None, problems)
    last = rows[-1] if rows else {}
    out = {
        "run_dir": str(rd.path),
        "state": live_state(rd, status),
        "iterations": last.get("iteration", 0),
        "episodes": last.get("episodes_total", 0),
        "env_steps": last.get("env_steps_total", 0),
        "mean_return": last.get("mean_return"),
        "mastered": last.get("mastered"),
        "last_checkpoint": latest.iteration if latest is not None else None,
        "wall_s": last.get("wall_s"),
        "experiment": experiment,
    }
    per_student = [r for r in last.get("per_student") or [] if isinstance(r, dict)]
    if per_student:
        out["students"] = {
            str(r.get("student", f"student{i}")): {
                "episodes": r.get("episodes_total", 0),
                "env_steps": r.get("env_steps_total", 0),
                "mean_return": r.get("mean_return"),
                "mastered": r.get("mastered"),
            }
            for i, r in enumerate(per_student)
        }
    if status.get("reason"):
        out["reason"] = status["reason"]
    if problems:
        out["problems"] = "; ".join(problems)
    return out


def print_status(run_dir: str) -> None:
    """`summarize` on the terminal (``openended status``).

    The run directory, state, reason and problems each on one plain line (long, and what a
    script greps for), then the numbers as a table.
    """
    s = summarize(run_dir)
    print(f"run {s['run_dir']}")
    for k in ("state", "reason", "problems"):
        if k in s:
            print(f"{k}: {s[k]}")
    table = Table(show_header=False)
    for k, v in s.items():
        if k not in ("run_dir", "state", "reason", "problems", "students"):
            table.add_row(k, _cell(k, v))
    console = Console()
    console.print(table)
    if "students" in s:
        columns = ("episodes", "env_steps", "mean_return", "mastered")
        per = Table("student", *columns)
        for name, values in s["students"].items():
            per.add_row(name, *(_cell(c, values.get(c)) for c in columns))
        console.print(per)


def _cell(key: str, value: object) -> str:
    """One table cell: ``-`` for missing, ``mastered`` as a percentage (as the live progress shows it)."""
    if value is None:
        return "-"
    if key == "mastered" and isinstance(value, (int, float)):
        return f"{100 * value:.1f} %"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
