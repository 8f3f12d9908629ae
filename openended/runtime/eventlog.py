r"""Append-only per-run event log: one JSON line per batch event.

Why: a checkpoint is a point in time; the log is everything since. A restarted
`TeacherServiceCore` loads its last checkpoint and replays the outcomes logged after it,
so a crash loses no outcome and counts none twice. The dashboard tails the same file.

Contents:
    EventLog        -- the writer: ``append`` plus typed helpers (``curriculum``,
                       ``sampled``, ``outcome``, ``snapshot``); flushes every write,
                       fsyncs by policy; repairs a torn tail when it reopens a file.
    LogEntry        -- ``(offset, end, event)``: where a line starts, where the next starts.
    iter_events     -- read from a byte offset, tolerating a torn last line (kill -9).
    read_events     -- the same as a list plus the offset to resume from.
    decode_sampled / decode_outcome -- turn logged batches back into `Task`/`Outcome`.
    EventLogCorrupt -- a complete line in the middle of the log is not JSON.

Format (one line per event, ASCII, ``\n``-terminated; batch columns base64 by default,
see `openended.runtime.batch_json`; other numpy values as plain JSON numbers and lists):
    ``{"ev": "curriculum", "t": ..., "cur": name, "spec": {...}}``
    ``{"ev": "sampled", "t": ..., "cur": name, "student": s, "tasks": <TaskBatch JSON>}``
    ``{"ev": "outcome", "t": ..., "cur": name, "outcomes": <OutcomeBatch JSON>}``
    ``{"ev": "control", "t": ..., "cur": name, "student": s, "method": m, "kwargs": {...}}``
    ``{"ev": "snapshot", "t": ..., "path": ckpt, "version": v, "offset": log offset}``
    ``{"ev": "rewind", "t": ..., "from": byte, "to": byte, "iteration": i, "set": name}``

A ``rewind`` is appended when a run resumes from a checkpoint set: the events in bytes
``[from, to)`` happened after that set was written and were rolled back with the students
(they are *superseded*: kept, never applied again; see `openended.runtime.recovery`).

Durability: every ``append`` hands the whole line to the OS in one ``os.write`` loop
before returning, so killing the process (kill -9) loses at most the line being written,
which a reader skips (it has no ``\n``) and the next writer truncates. ``fsync``
additionally protects against power loss: ``"always"`` (every event, in the write
path), ``"interval"`` (default: a background thread fsyncs every ``fsync_interval_s``
when something is new, so no request waits on the disk) or ``"never"``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

from openended import jsonio
from openended.errors import Error
from openended.runtime.batch_json import (
    ArrayEncoding,
    outcome_batch_from_json,
    outcome_batch_to_json,
    task_batch_from_json,
    task_batch_to_json,
)
from openended.runtime.codec import OutcomeBatch, TaskBatch, TaskTable, decode_outcomes, decode_tasks
from openended.tasks import Outcome, Task

__all__ = [
    "EventLog",
    "LogEntry",
    "EventLogCorrupt",
    "FsyncPolicy",
    "iter_events",
    "read_events",
    "decode_sampled",
    "decode_outcome",
    "repair_torn_tail",
]

FsyncPolicy = Literal["never", "interval", "always"]
_CHUNK = 1 << 20


class EventLogCorrupt(Error, ValueError):
    """A complete (newline-terminated) line of the log is not valid JSON."""


class LogEntry(NamedTuple):
    """One event and its byte range: resume reading at ``end``."""

    offset: int
    end: int
    event: dict


# Batches of at least this many rows are written with `jsonio.dumps_fast` (faster for big
# base64 columns, slower than one ``json.dumps`` call for a few rows).
FAST_LINE_MIN_ROWS = 64


def dumps_line(event: dict, rows: int = 0) -> bytes:
    """One event as an ASCII JSON line (``rows``: the size of the batch it carries, if any).

    ``ensure_ascii`` keeps any unicode, even lone surrogates, intact and the file pure
    ASCII. Numpy values (in infos, specs) are written in `openended.jsonio`'s plain form; a
    value JSON cannot hold becomes its ``repr``. Both ways of writing give the same text.
    """
    if rows >= FAST_LINE_MIN_ROWS:
        line = jsonio.dumps_fast(event, lenient=True)
    else:
        line = jsonio.dumps(event, arrays="plain", lenient=True, separators=(",", ":"))
    return (line + "\n").encode("ascii")


def repair_torn_tail(path: str | os.PathLike) -> int:
    """Truncate a last line that has no newline (a write cut by kill -9); return bytes removed."""
    log_path = Path(path)
    if not log_path.exists():
        return 0
    size = log_path.stat().st_size
    if size == 0:
        return 0
    with open(log_path, "rb+") as f:
        scanned_from = size  # scan backwards, a chunk at a time, for the last newline
        complete_end = 0  # where the last complete line ends (0: none)
        while scanned_from > 0:
            step = min(_CHUNK, scanned_from)
            f.seek(scanned_from - step)
            newline_at = f.read(step).rfind(b"\n")
            if newline_at >= 0:
                complete_end = scanned_from - step + newline_at + 1
                break
            scanned_from -= step
        if complete_end == size:
            return 0
        f.truncate(complete_end)
        f.flush()
        os.fsync(f.fileno())
    return size - complete_end


class EventLog:
    """Append-only JSONL writer.

    Not thread-safe on its own: its owner serialises calls (`TeacherServiceCore` holds a lock).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 1.0,
        array_encoding: ArrayEncoding = "b64",
    ) -> None:
        if fsync not in ("never", "interval", "always"):
            raise ValueError(f"EventLog.fsync: must be one of never/interval/always, got {fsync!r}")
        if array_encoding not in ("b64", "list"):
            raise ValueError(f"EventLog.array_encoding: must be 'b64' or 'list', got {array_encoding!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync_policy: FsyncPolicy = fsync
        self.fsync_interval_s = float(fsync_interval_s)
        self.array_encoding: ArrayEncoding = array_encoding
        #: Bytes of a torn last line removed when this file was reopened.
        self.repaired_bytes = repair_torn_tail(self.path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._offset = os.fstat(self._fd).st_size
        self._dirty = False
        self.n_events = 0
        self.n_fsyncs = 0
        self._fd_lock = threading.Lock()  # guards the fd against close() during a background fsync
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "interval":
            # The fsync runs off the write path: on a busy disk one can take tens of ms.
            self._syncer = threading.Thread(
                target=_fsync_loop,
                args=(weakref.ref(self), self._stop, self.fsync_interval_s),
                name="openended-eventlog-fsync",
                daemon=True,
            )
            self._syncer.start()

    @property
    def offset(self) -> int:
        """Byte offset where the next event will start (= bytes written so far)."""
        return self._offset

    @property
    def closed(self) -> bool:
        """Whether `close` ran (appends then raise)."""
        return self._fd is None

    # ------------------------------------------------------------------ writing
    def append(self, event: dict, rows: int = 0) -> int:
        """Write one event (carrying a batch of ``rows``); return the offset its line starts at."""
        if self._fd is None:
            raise ValueError(f"EventLog {self.path} is closed")
        line = dumps_line(event, rows)
        start = self._offset
        unwritten = memoryview(line)
        while unwritten:
            written = os.write(self._fd, unwritten)
            unwritten = unwritten[written:]
        self._offset += len(line)
        self.n_events += 1
        self._dirty = True
        if self.fsync_policy == "always":
            self.fsync()
        return start

    def curriculum(self, name: str, spec: dict) -> int:
        """Log that curriculum ``name`` was added with ``spec`` (a replay adds it again)."""
        return self.append({"ev": "curriculum", "t": time.time(), "cur": name, "spec": spec})

    def sampled(self, curriculum: str, student: str, batch: TaskBatch) -> int:
        """Log a sampled batch; it must be self-contained (encoded with ``peer=None``)."""
        return self.append(
            {
                "ev": "sampled",
                "t": time.time(),
                "cur": curriculum,
                "student": student,
                "tasks": task_batch_to_json(batch, self.array_encoding),
            },
            len(batch),
        )

    def outcome(self, curriculum: str, batch: OutcomeBatch) -> int:
        """Log an accepted outcome batch (before the teacher sees it: the log is the truth)."""
        return self.append(
            {
                "ev": "outcome",
                "t": time.time(),
                "cur": curriculum,
                "outcomes": outcome_batch_to_json(batch, self.array_encoding),
            },
            len(batch),
        )

    def control(self, curriculum: str, student: str, method: str, kwargs: dict) -> int:
        """Log a driver's control call on a teacher (a replay makes it again, in order)."""
        return self.append(
            {
                "ev": "control",
                "t": time.time(),
                "cur": curriculum,
                "student": student,
                "method": method,
                "kwargs": kwargs,
            }
        )

    def snapshot(self, path: str, version: int, offset: int) -> int:
        """Log that checkpoint ``version`` at ``path`` covers the log up to byte ``offset``."""
        return self.append(
            {"ev": "snapshot", "t": time.time(), "path": str(path), "version": version, "offset": offset}
        )

    def rewind(self, start: int, end: int, **info: Any) -> int:
        """Log that the events in bytes ``[start, end)`` are superseded (a resume rolled back past them)."""
        return self.append({"ev": "rewind", "t": time.time(), "from": int(start), "to": int(end), **info})

    def fsync(self) -> None:
        """Force written events to disk now (a no-op when nothing is new)."""
        with self._fd_lock:
            if self._fd is not None and self._dirty:
                self._dirty = False
                os.fsync(self._fd)
                self.n_fsyncs += 1

    def close(self) -> None:
        """Fsync and close (idempotent)."""
        self._stop.set()
        if self._syncer is not None:
            if self._syncer is not threading.current_thread():
                self._syncer.join()
            self._syncer = None
        self.fsync()
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        # An abandoned log (a simulated crash) releases its fd; what was written stays.
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def iter_events(self, since_offset: int = 0) -> Iterator[LogEntry]:
        """Events from ``since_offset`` (a line start) to the last complete line."""
        return iter_events(self.path, since_offset)

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r}, offset={self._offset}, fsync={self.fsync_policy!r})"


def _fsync_loop(ref: weakref.ref[EventLog], stop: threading.Event, interval_s: float) -> None:
    """Background fsync every ``interval_s``.

    Holds only a weak reference, so a log that is dropped without ``close`` is still
    collected and the thread ends.
    """
    while not stop.wait(interval_s):
        log = ref()
        if log is None:
            return
        log.fsync()
        del log


def iter_events(path: str | os.PathLike, since_offset: int = 0) -> Iterator[LogEntry]:
    """Yield `LogEntry` values from ``since_offset`` on.

    A last line without its newline is a write cut short (kill -9, or a writer still
    busy): it is not yielded, and a later call from the last ``end`` picks it up once
    complete. A complete line that is not JSON raises `EventLogCorrupt`.
    """
    log_path = Path(path)
    if not log_path.exists():
        return
    with open(log_path, "rb") as f:
        if since_offset:
            f.seek(since_offset - 1)
            if f.read(1) != b"\n":
                raise EventLogCorrupt(f"{log_path}: offset {since_offset} is not the start of a line")
        f.seek(since_offset)
        buf_offset = since_offset  # file offset of buf[0]
        buf = b""
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return
            buf += chunk
            line_start = 0
            while True:
                newline_at = buf.find(b"\n", line_start)
                if newline_at < 0:
                    break
                line = buf[line_start:newline_at]
                if line.strip():
                    try:
                        event = json.loads(line)
                    except ValueError as e:
                        at = buf_offset + line_start
                        raise EventLogCorrupt(
                            f"{log_path}: line at byte {at} is not JSON ({e}); it is line "
                            f"{_line_number(log_path, at)}: the log was modified or corrupted"
                        ) from None
                    yield LogEntry(buf_offset + line_start, buf_offset + newline_at + 1, event)
                line_start = newline_at + 1
            buf_offset += line_start
            buf = buf[line_start:]


def _line_number(path: Path, offset: int) -> int:
    """The 1-based number of the line starting at byte ``offset`` (for error messages only)."""
    lines = 1
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(_CHUNK, offset))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            offset -= len(chunk)
    return lines


def read_events(
    path: str | os.PathLike, since_offset: int = 0, max_events: int | None = None
) -> tuple[list[LogEntry], int]:
    """Up to ``max_events`` entries from ``since_offset`` and the offset to resume at."""
    entries: list[LogEntry] = []
    resume_at = since_offset
    for entry in iter_events(path, since_offset):
        entries.append(entry)
        resume_at = entry.end
        if max_events is not None and len(entries) >= max_events:
            break
    return entries, resume_at


def decode_sampled(event: dict, table: TaskTable | None = None) -> tuple[str, str, list[Task]]:
    """``(curriculum, student, tasks)`` of a ``sampled`` event."""
    return event["cur"], event["student"], decode_tasks(task_batch_from_json(event["tasks"]), table)


def decode_outcome(event: dict) -> tuple[str, list[Outcome]]:
    """``(curriculum, outcomes)`` of an ``outcome`` event."""
    return event["cur"], decode_outcomes(outcome_batch_from_json(event["outcomes"]))
