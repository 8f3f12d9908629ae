"""The live view of a run: a progress bar with the numbers that matter, or plain log lines.

On a terminal: a rich progress bar (iteration i/N, ETA) with episodes, env steps,
mean return, mastered %, tasks/s. Without a terminal (CI, Ray jobs, ``--no-progress``):
one line per iteration, at most every ``min_interval_s`` seconds, plus the last one.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from openended.config import Experiment
from openended.runtime.rundir import RunDir

__all__ = ["ProgressReporter", "format_row"]


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def format_row(row: dict, rate: float | None) -> str:
    """One metrics row as a status line (episodes, steps, return, mastered %, success, tasks/s)."""
    mastered = row.get("mastered")
    return (
        f"episodes {row.get('episodes_total', 0):,}  steps {row.get('env_steps_total', 0):,}  "
        f"return {_fmt(row.get('mean_return'))}  "
        f"mastered {'-' if mastered is None else f'{100 * mastered:.1f}%'}  "
        f"success {_fmt(row.get('success_rate'), '.2f')}  "
        f"tasks/s {'-' if rate is None else f'{rate:,.0f}'}"
    )


class ProgressReporter:
    """The run's live view: a rich progress bar on a terminal, else a log line per iteration (rate-limited).

    Args:
        exp: the experiment (title, iteration count, ``run.progress``).
        rd: the run directory.
        enabled: ``False`` forces plain lines (``--no-progress``).
        min_interval_s: least time between two plain lines (the last iteration always prints).
    """

    def __init__(self, exp: Experiment, rd: RunDir, enabled: bool = True, min_interval_s: float = 5.0) -> None:
        self.total = exp.run.iterations
        self.title = f"{exp.name}: {exp.env.family} x {exp.teacher.name}"
        self.live = enabled and exp.run.progress and sys.stdout.isatty()
        self.min_interval_s = min_interval_s
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._last_print = 0.0
        self._last_eps: tuple[float, int] | None = None

    def start(self, start_iter: int) -> None:
        """Show the bar (or a header line) from iteration ``start_iter`` (a resumed run starts past 0)."""
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[line]}"),
                console=Console(),
                transient=False,
            )
            self._progress.start()
            self._task_id = self._progress.add_task(self.title, total=self.total, completed=start_iter, line="")
        else:
            print(f"{self.title}: iterations {start_iter + 1}..{self.total}", flush=True)

    def _rate(self, row: dict) -> float | None:
        now, eps = time.perf_counter(), int(row.get("episodes_total") or 0)
        rate = None
        if self._last_eps is not None and now > self._last_eps[0]:
            rate = (eps - self._last_eps[1]) / (now - self._last_eps[0])
        self._last_eps = (now, eps)
        return rate

    def update(self, row: dict) -> None:
        """Show one iteration's metrics row (advances the bar)."""
        line = format_row(row, self._rate(row))
        it = row["iteration"]
        if self._progress is not None:
            self._progress.update(self._task_id, completed=it, line=line)
            return
        now = time.monotonic()
        if now - self._last_print >= self.min_interval_s or it == self.total:
            self._last_print = now
            print(f"[{it}/{self.total}] {line}", flush=True)

    def stop(self) -> None:
        """Close the bar, leaving it on screen (idempotent)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
