"""One writer per run: an exclusive lock on the run directory, held for the run's whole life.

Why: two `openended run --resume` on one live run interleave metrics rows and event-log
lines and leave a run that can no longer be resumed. ``fcntl.flock`` on ``run.lock`` is
released by the operating system when its holder dies (kill -9 included), so a crashed run
never blocks its own resume, and nothing has to clean up a stale lock. The holder writes
who it is (pid, host, since when, its command) into the file, so a refusal names it.

Liveness of a *recorded* pid (``status.json``, written by runs that predate the lock or by
a run on another host) is checked with the process's start time, not the pid alone: a pid
the system reused for an unrelated process does not count as the run.

Contents:
    RunLock         -- acquire / release the lock (a context manager).
    Holder          -- who holds (or held) a run directory.
    lock_holder     -- the live holder of a run directory, or ``None`` (``openended status``).
    pid_alive, process_start_ticks, this_process -- process identity helpers.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from openended.errors import RunDirError

__all__ = ["RunLock", "Holder", "LOCK_NAME", "lock_holder", "pid_alive", "process_start_ticks", "this_process"]

LOCK_NAME = "run.lock"


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), ``None`` if it is gone, a zombie, or unknown here.

    Linux reads ``/proc/<pid>/stat``; elsewhere ``None`` (then only the pid is checked).
    """
    try:
        raw = pathlib.Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3, starttime field 22
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether process ``pid`` runs (and, when ``start_ticks`` is known, is the same process that started then)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    ticks = process_start_ticks(pid)
    if pathlib.Path("/proc").is_dir():
        if ticks is None:  # a zombie: it has exited
            return False
        return start_ticks is None or ticks == start_ticks
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a run directory: enough to tell the user and to check the process is still the same one."""

    pid: int
    host: str
    since: str
    start_ticks: int | None = None
    command: str = ""

    def describe(self) -> str:
        """``pid 123 on host h since 2026-01-01 12:00:00 (openended run ...)``."""
        cmd = f" ({self.command})" if self.command else ""
        return f"pid {self.pid} on host {self.host} since {self.since}{cmd}"

    def alive(self) -> bool | None:
        """Whether the process runs (``None``: it is on another host, so this host cannot tell)."""
        if self.host != socket.gethostname():
            return None
        return pid_alive(self.pid, self.start_ticks)

    @classmethod
    def from_dict(cls, d: Any) -> Holder | None:
        """A holder from its JSON form (``None`` when ``d`` does not name a pid)."""
        if not isinstance(d, dict) or not isinstance(d.get("pid"), int):
            return None
        ticks = d.get("start_ticks")
        return cls(
            pid=d["pid"],
            host=str(d.get("host", "?")),
            since=str(d.get("since", "?")),
            start_ticks=ticks if isinstance(ticks, int) else None,
            command=str(d.get("command", "")),
        )


def this_process() -> Holder:
    """The current process as a `Holder`."""
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        since=time.strftime("%Y-%m-%d %H:%M:%S"),
        start_ticks=process_start_ticks(os.getpid()),
        command=" ".join(["openended", *sys.argv[1:]])[:200] if sys.argv else "",
    )


def _read_holder(path: pathlib.Path) -> Holder | None:
    try:
        return Holder.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


class RunLock:
    """The exclusive lock on one run directory (``run.lock``; see the module docstring).

    Example::

        with RunLock(run_dir):      # RunDirError if a live run holds it
            ...                     # the only writer of run_dir
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = pathlib.Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, wait_s: float = 1.0, recorded: Holder | None = None) -> None:
        """Take the lock or raise `RunDirError` naming its holder.

        Args:
            wait_s: retry this long first (``openended status`` probes the lock for an instant).
            recorded: the pid a previous writer recorded (``status.json``); if it is alive on
                this host although nobody holds the lock (a run started by an openended
                without the lock), the run directory is refused too.
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = _read_holder(self.path)
                    who = holder.describe() if holder is not None else "another process"
                    raise RunDirError(
                        f"{self.run_dir}: in use by {who}; wait for that run to end, or stop it, before running "
                        "or resuming it again"
                    ) from None
                time.sleep(0.05)
        me = this_process()
        if recorded is not None and recorded.pid != me.pid and recorded.alive():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir}: status.json says {recorded.describe()} runs it and that process is alive; "
                "stop it before running or resuming this run directory"
            )
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(asdict(me)) + "\n").encode("utf-8"))
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (idempotent; the file stays, the OS lock is what counts)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_holder(run_dir: str | os.PathLike) -> Holder | None | bool:
    """Who holds ``run_dir`` now: a `Holder`, ``True`` (held, holder unknown) or ``None`` (nobody).

    Probes with a shared lock that is dropped at once, so it never blocks a writer for long.
    A directory without ``run.lock`` was never locked (``None``).
    """
    path = pathlib.Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
