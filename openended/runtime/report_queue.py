"""Group commit for reports: reports that queue up behind a curriculum's lock go in as one update.

Why: at ~1,024 outcomes per report a fast ALP-GMM update costs the service ~1 ms plus one
refit, and a report that arrives while another is being applied used to wait, then pay
the same again. With several request threads (`start_service(max_concurrency=...)`),
every report that arrived meanwhile is applied by the next thread that gets the lock, as
one batch: one dedup pass, one event-log line, one teacher update (so one refit) for all
of them. Each caller still gets its own accepted count, or the error of its group.

When nothing overlaps (one request thread, or a quiet service) every group holds one
report and nothing changes: a fixed sequence of calls gives the same teachers as before.
Under load, which reports share an update depends on timing, as their arrival order
already does. The log holds what was applied, group by group, so replaying it after a
crash rebuilds the same teachers.

Contents:
    PendingReport -- one caller's batch and, once applied, its result.
    ReportQueue   -- the reports waiting for one curriculum's lock.
"""

from __future__ import annotations

import threading

from openended.runtime.codec import OutcomeBatch

__all__ = ["PendingReport", "ReportQueue"]


class PendingReport:
    """A batch waiting to be applied; ``done`` once a lock holder applied (or failed) it."""

    __slots__ = ("batch", "accepted", "error", "done")

    def __init__(self, batch: OutcomeBatch) -> None:
        self.batch = batch
        self.accepted = 0
        self.error: BaseException | None = None
        self.done = False


class ReportQueue:
    """Reports waiting for their curriculum's lock, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[PendingReport] = []

    def put(self, batch: OutcomeBatch) -> PendingReport:
        """Queue a batch; the caller then takes the curriculum's lock and applies what is queued."""
        pending = PendingReport(batch)
        with self._lock:
            self._waiting.append(pending)
        return pending

    def take(self) -> list[PendingReport]:
        """Everything queued so far (the caller holds the curriculum's lock)."""
        with self._lock:
            group, self._waiting = self._waiting, []
        return group
