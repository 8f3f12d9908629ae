"""CPU seconds that the processes of a benchmark spend inside its timed loops, by role.

Why: a throughput figure says how fast, not what it cost. On a machine with few cores a
service's rate is bounded by the CPU that one request costs across every process that
touches it (the client, the service actor, Ray's own daemons), and that sum is what
decides whether more cores or less work per request would help. `CpuMeter` reads each
watched process's user + system CPU (psutil) when a timed loop starts and ends, so time
between loops (sampling tasks ahead, encoding outcomes) is not counted. The kernel counts
that time in clock ticks (10 ms at the usual 100 Hz), so a figure wants loops that add up
to a second or more: each read is off by at most a tick, and those errors do not grow
with the length of the loops.

Roles are assigned by the caller (`ray_session_roles` names the usual ones of a local Ray
session started by this process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psutil

__all__ = ["CpuMeter", "ray_session_roles"]


def ray_session_roles(service_title: str = "ray::TeacherServiceActor") -> dict[str, list[int]]:
    """This process (``driver``), its Ray actors whose title starts ``service_title``
    (``service``) and every other process it started (``ray``: gcs, raylet, agents, idle
    workers)."""
    roles: dict[str, list[int]] = {"driver": [os.getpid()], "service": [], "ray": []}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            title = (child.cmdline() or [child.name()])[0]
            roles["service" if title.startswith(service_title) else "ray"].append(child.pid)
    return roles


class CpuMeter:
    """Adds up the CPU seconds each role's processes spend inside `timed` blocks.

    Idle until `watch` names processes; a process that has exited stops counting.
    """

    def __init__(self) -> None:
        self._procs: dict[str, list[psutil.Process]] = {}
        self.seconds: dict[str, float] = {}

    def watch(self, roles: dict[str, list[int]]) -> None:
        """Count these processes from now on (role -> pids); the totals start again at zero."""
        self._procs = {}
        for role, pids in roles.items():
            procs = []
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    procs.append(psutil.Process(pid))
            self._procs[role] = procs
        self.reset()

    def reset(self) -> dict[str, float]:
        """The totals so far (role -> CPU seconds), then zero them."""
        out, self.seconds = self.seconds, {role: 0.0 for role in self._procs}
        return out

    def _read(self) -> dict[str, float]:
        return {role: sum(map(_cpu_seconds, procs)) for role, procs in self._procs.items()}

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """The body's CPU, per role, is added to `seconds`."""
        if not self._procs:
            yield
            return
        before = self._read()
        try:
            yield
        finally:
            after = self._read()
            for role, t in after.items():
                self.seconds[role] += max(0.0, t - before[role])


def _cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds ``proc`` has run so far (0 once it is gone)."""
    with contextlib.suppress(psutil.Error):
        t = proc.cpu_times()
        return float(t.user + t.system)
    return 0.0
