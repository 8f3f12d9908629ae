"""Teacher-service metrics exported through ``ray.util.metrics`` (Ray dashboard / Prometheus).

Why batched: a ``Counter.inc`` per call would add its cost to every ``sample`` and
``report``; instead counts accumulate in plain dicts and are pushed every
``interval_s`` (and on ``snapshot``/``close``). Teacher stats are read at the same
cadence, never on the sampling path.

Exported (Prometheus names get Ray's ``ray_`` prefix):
    openended_service_tasks           counter  tags: curriculum, student
    openended_service_outcomes        counter  tags: curriculum
    openended_service_duplicates      counter  tags: curriculum
    openended_teacher_refit_latency_ms gauge   tags: curriculum, student   (last refit)
    openended_teacher_mastered_fraction gauge  tags: curriculum, student   (if reported)

Rates (tasks/s, outcomes/s) are ``rate(...)`` of the counters. A teacher reports a
mastered fraction by putting ``"mastered_fraction"`` (or ``"<name>/mastered_fraction"``,
as LP and WebRL do) in its ``stats()``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ray.util.metrics import Counter, Gauge

if TYPE_CHECKING:
    from openended.runtime.core import TeacherServiceCore

__all__ = ["ServiceMetrics", "mastered_fraction"]


class ServiceMetrics:
    """Accumulates service counts and pushes them to Ray's metrics agent periodically."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = float(interval_s)
        self._tasks_c = Counter(
            "openended_service_tasks", "Tasks handed out by the teacher service.", tag_keys=("curriculum", "student")
        )
        self._outcomes_c = Counter(
            "openended_service_outcomes", "Outcomes accepted by the teacher service.", tag_keys=("curriculum",)
        )
        self._dups_c = Counter(
            "openended_service_duplicates", "Re-reported episodes dropped by the service.", tag_keys=("curriculum",)
        )
        self._refit_g = Gauge(
            "openended_teacher_refit_latency_ms",
            "Latency of the teacher's last refit (ms).",
            tag_keys=("curriculum", "student"),
        )
        self._mastered_g = Gauge(
            "openended_teacher_mastered_fraction",
            "Fraction of the task space the teacher reports as mastered.",
            tag_keys=("curriculum", "student"),
        )
        self._tasks: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._outcomes: defaultdict[str, int] = defaultdict(int)
        self._dups: defaultdict[str, int] = defaultdict(int)
        self._last = time.monotonic()
        self._lock = threading.Lock()  # an actor with max_concurrency > 1 calls from several threads
        self.pushes = 0

    def tasks(self, curriculum: str, student: str, n: int) -> None:
        """Count ``n`` tasks handed to ``student`` (pushed at the next flush)."""
        with self._lock:
            self._tasks[(curriculum, student)] += n

    def outcomes(self, curriculum: str, accepted: int, duplicates: int) -> None:
        """Count accepted and duplicate outcomes of ``curriculum`` (pushed at the next flush)."""
        with self._lock:
            self._outcomes[curriculum] += accepted
            if duplicates:
                self._dups[curriculum] += duplicates

    def maybe_flush(self, core: TeacherServiceCore) -> None:
        """`flush` if ``interval_s`` has passed since the last push (called on every request)."""
        if time.monotonic() - self._last >= self.interval_s:
            self.flush(core)

    def flush(self, core: TeacherServiceCore, snapshot: dict | None = None) -> None:
        """Push accumulated counts and current teacher gauges."""
        with self._lock:
            self._last = time.monotonic()
            tasks, self._tasks = self._tasks, defaultdict(int)
            outcomes, self._outcomes = self._outcomes, defaultdict(int)
            dups, self._dups = self._dups, defaultdict(int)
        for (cur, student), n in tasks.items():
            if n:
                self._tasks_c.inc(n, tags={"curriculum": cur, "student": student})
        for cur, n in outcomes.items():
            if n:
                self._outcomes_c.inc(n, tags={"curriculum": cur})
        for cur, n in dups.items():
            if n:
                self._dups_c.inc(n, tags={"curriculum": cur})
        snap = snapshot if snapshot is not None else core.snapshot()
        for cur, info in snap["curricula"].items():
            for student, stats in info["students"].items():
                tags = {"curriculum": cur, "student": student}
                refit = _number(stats.get("refit_ms_last"))
                if refit is not None:
                    self._refit_g.set(refit, tags=tags)
                mastered = mastered_fraction(stats)
                if mastered is not None:
                    self._mastered_g.set(mastered, tags=tags)
        self.pushes += 1


def mastered_fraction(stats: dict) -> float | None:
    """The teacher's mastered fraction: ``stats["mastered_fraction"]``, or its namespaced form.

    Teachers namespace their stats (LP reports ``"lp/mastered_fraction"``, WebRL
    ``"webrl/mastered_fraction"``); the gauge takes either.
    """
    if "mastered_fraction" in stats:
        return _number(stats["mastered_fraction"])
    found = [v for k, v in stats.items() if isinstance(k, str) and k.endswith("/mastered_fraction")]
    return _number(found[0]) if len(found) == 1 else None


def _number(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None
