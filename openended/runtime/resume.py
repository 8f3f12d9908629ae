"""Resuming a run: pick the checkpoint set, check the files, supersede what came after it.

All of it happens before Ray starts, so a damaged file is a one-line error naming it and
nothing has been changed yet; then the writes, each safe to repeat if this resume is
itself killed:

1. The newest complete set that matches its manifest is chosen; each newer set passed
   over is named in one line (interrupted while being written, or damaged). No usable set
   although one was committed once (``latest.json`` exists, or a set is damaged rather
   than interrupted) is an error: starting over would silently drop the run's history.
2. ``metrics.jsonl`` and ``evaluations.jsonl`` are read: a torn last line is repaired,
   damage anywhere else stops the resume (`RunDirError` with file and line).
3. The event log's torn last line is repaired and every line after the set's offset is
   checked.
4. Rows after the set's iteration are dropped from the metrics (the run redoes those
   iterations), and a ``rewind`` event marks the log bytes after the set as superseded:
   the teacher restored with the students does not count them (policy in
   `openended.runtime.recovery` and ``docs/reliability.md``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from openended.errors import RunDirError
from openended.runtime.checkpoints import LATEST, CheckpointSet, SetDamaged
from openended.runtime.eventlog import EventLog, iter_events
from openended.runtime.rundir import RunDir

__all__ = ["ResumePoint", "prepare_resume"]


@dataclass
class ResumePoint:
    """Where a run (re)starts: iteration, checkpoint set (``None``: from scratch), totals so far."""

    iteration: int = 0
    checkpoint: CheckpointSet | None = None
    totals: dict = field(default_factory=dict)
    superseded: tuple[int, int] | None = None

    @property
    def teacher_checkpoint(self) -> str | None:
        """The set's teacher file (the service restores from it), or ``None``."""
        if self.checkpoint is None or not self.checkpoint.has("teacher"):
            return None
        return str(self.checkpoint.member("teacher"))

    def student_totals(self, student: str) -> dict:
        """One student's totals at the set (the run's, for a one-student run of an older manifest)."""
        per = self.totals.get("per_student")
        if isinstance(per, dict) and isinstance(per.get(student), dict):
            return dict(per[student])
        return {k: v for k, v in self.totals.items() if k != "per_student"}


def _say(line: str) -> None:
    print(f"openended: {line}", file=sys.stderr, flush=True)


def prepare_resume(rd: RunDir, say: Callable[[str], None] = _say) -> ResumePoint:
    """Steps 1-4 of the module docstring; return where the run continues."""
    skipped: list[SetDamaged] = []
    ckpt = rd.newest_checkpoint(verify=True, on_skip=skipped.append)
    iteration = ckpt.iteration if ckpt is not None else 0
    offset = ckpt.event_log_offset if ckpt is not None else 0
    if ckpt is None and ((rd.checkpoints / LATEST).exists() or any(not s.interrupted for s in skipped)):
        # a set was committed once: starting over would silently drop the run's history
        why = "; ".join(str(s) for s in skipped) or f"{LATEST} names a set that is not there"
        raise RunDirError(
            f"{rd.checkpoints}: no usable checkpoint set ({why}); resuming would start the run over from "
            f"iteration 0: move {rd.checkpoints} away to do that"
        )
    if skipped:
        target = f"checkpoint set {ckpt.name}" if ckpt is not None else "iteration 0 (no set was completed)"
        say(f"resuming from {target}; skipped " + "; ".join(str(s) for s in skipped))

    log = EventLog(rd.events_path, fsync="always")  # repairs a torn last line
    try:
        end = log.offset
        if offset > end:
            raise RunDirError(
                f"{rd.events_path}: {end} bytes, but checkpoint set {ckpt.name if ckpt else '-'} covers {offset}: "
                "the event log was replaced or truncated"
            )
        for _ in iter_events(rd.events_path, offset):  # EventLogCorrupt names a damaged line
            pass
        rd.truncate_metrics(iteration)
        superseded = None
        if end > offset:
            log.rewind(offset, end, iteration=iteration, set=None if ckpt is None else ckpt.name)
            superseded = (offset, end)
    finally:
        log.close()
    return ResumePoint(iteration, ckpt, ckpt.totals if ckpt is not None else {}, superseded)
