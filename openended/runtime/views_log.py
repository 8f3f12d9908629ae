"""``views.jsonl``: the teachers' dashboard views, appended to the run directory as a run goes.

Why a file of its own: the event log is the teacher service's (replay reads it) and the
metrics rows keep scalars; views (mixture components, regions, per-task scores, OMNI's
partition, WebRL's lineage; `openended.teachers.views`) are for display only, so they go
beside them, where `openended dashboard` and `openended plot` read them.

One JSON line per written iteration::

    {"iteration": 12, "t": 1712345678.9, "env_steps_total": 1200, "episodes_total": 1200,
     "views": {"<curriculum>": {"<student>": {"kind": "gmm", "teacher": "alp_gmm", ...} | null}}}

When: the first and last iterations, every ``stride`` iterations (so a run writes about
`TARGET_LINES` lines whatever its length) and whenever `MAX_GAP_S` seconds passed since
the last line (so slow iterations still show up live). A view costs well under a
millisecond and a line a few kB, so this stays off the run's critical path.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any

__all__ = ["VIEWS_FILE", "ViewWriter", "TARGET_LINES", "MAX_GAP_S"]

VIEWS_FILE = "views.jsonl"
#: About how many lines a run of any length writes (plus one per `MAX_GAP_S` of slow iterations).
TARGET_LINES = 300
#: A view line is written at least this often (seconds) while iterations are slow.
MAX_GAP_S = 10.0


class ViewWriter:
    """Decides when an iteration's views are due and appends them to ``<run>/views.jsonl``."""

    def __init__(self, run_dir: str | pathlib.Path, iterations: int) -> None:
        self.path = pathlib.Path(run_dir) / VIEWS_FILE
        self.last_iteration = int(iterations)
        self.stride = max(1, math.ceil(self.last_iteration / TARGET_LINES))
        self._last_t: float | None = None

    def due(self, iteration: int) -> bool:
        """Whether ``iteration`` gets a views line (first, last, every ``stride``, or `MAX_GAP_S` passed)."""
        return (
            self._last_t is None
            or iteration >= self.last_iteration
            or iteration % self.stride == 0
            or time.monotonic() - self._last_t >= MAX_GAP_S
        )

    def append(self, iteration: int, row: dict[str, Any], views: dict[str, Any]) -> None:
        """Write one line: the iteration, its step/episode totals from the metrics ``row``, and ``views``."""
        line = {
            "iteration": int(iteration),
            "t": time.time(),
            "env_steps_total": row.get("env_steps_total"),
            "episodes_total": row.get("episodes_total"),
            "views": views,
        }
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=float) + "\n")
        self._last_t = time.monotonic()
