"""Crash recovery for the teacher service: checkpoints, restore, event-log replay, dedup.

Why apart from `openended.runtime.core`: hosting (curricula, ``sample``, ``report``)
is the hot path; surviving a crash is a separate job with its own file format. The
service calls `write_checkpoint` and `restore`; this module reaches the service only
through `RecoverableService` (what it reads and rebuilds, nothing private).

Exactly-once outcomes, end to end:
    * a client resends a report batch whose call failed (the actor died): at least once;
    * the service drops an outcome whose ``episode_id`` it has already accepted
      (`EpisodeDedup`: bounded FIFO memory per curriculum, saved in checkpoints): at
      most once;
    * every accepted batch is logged *before* the teacher sees it, and a checkpoint
      records the log offset it covers, so `restore` = checkpoint + replay of the
      outcomes logged after it, each applied once.
    Sampled batches logged after the checkpoint are replayed too, in log order with the
    outcomes: by default the teacher's ``sample`` is called again, so a deterministic
    teacher (seed + call sequence) ends in exactly its pre-crash state; where the redrawn
    tasks differ, the logged ones are registered so late outcomes still find their task.

Superseded events: when a run resumes from a checkpoint set, its students go back to that
set's iteration, so the teacher must too. The run appends a ``rewind`` event naming the
byte range logged after the set (``from`` = the set's log offset, ``to`` = the end of the
log at resume). Those events stay in the log but are never applied: the teacher restored
with the students does not count them, and a later `restore` (a service actor restarted by
Ray during the resumed run) skips them while replaying everything else after its
checkpoint. A checkpoint whose offset lies inside a superseded range (a teacher
checkpointed by the killed run after the set it was resumed from) is not used.

Checkpoint file ``checkpoint-<version:08d>.json`` (format `CHECKPOINT_FORMAT`, ASCII,
`openended.jsonio`'s tagged form)::

    {"format": 1, "version": v, "t": time, "log_path": path | null, "log_offset": bytes | null,
     "counters": {service counters},
     "curricula": [{"spec": CurriculumSpec, "counters": {...}, "dedup": EpisodeDedup state,
                    "teachers": {student or "*": teacher.state_dict()}}]}

Contents:
    EpisodeDedup      -- bounded memory of accepted episode ids (`openended.runtime.dedup`, here too).
    write_checkpoint  -- the complete state, atomically (temp file + fsync + rename).
    restore           -- newest usable checkpoint, then replay of the log after it.
    replay_log        -- apply logged events from an offset (used by `restore`).
    superseded_ranges -- the byte ranges ``rewind`` events took back.
    latest_checkpoint, load_checkpoint, CHECKPOINT_FORMAT, ReplayMode
    RecoverableService, RecoverableCurriculum -- what recovery needs from the service.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

from openended import jsonio
from openended.errors import Error, ServiceError
from openended.runtime.batch_json import outcome_batch_from_json
from openended.runtime.codec import OutcomeBatch
from openended.runtime.dedup import EpisodeDedup, episode_keys
from openended.runtime.eventlog import EventLog, decode_sampled, iter_events

__all__ = [
    "EpisodeDedup",
    "episode_keys",
    "write_checkpoint",
    "restore",
    "replay_log",
    "superseded_ranges",
    "latest_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
    "ReplayMode",
    "RecoverableService",
    "RecoverableCurriculum",
]

CHECKPOINT_FORMAT = 1
ReplayMode = Literal["resample", "register"]
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d{8})\.json$")


# ------------------------------------------------------------------ the seam
class _Spec(Protocol):
    def to_dict(self) -> dict: ...


class RecoverableCurriculum(Protocol):
    """What recovery saves and restores of one hosted curriculum."""

    @property
    def spec(self) -> _Spec:
        """How the curriculum was added; its ``to_dict()`` is what a checkpoint stores."""
        ...

    @property
    def counters(self) -> dict[str, Any]:
        """The curriculum's counters (a checkpoint saves them)."""
        ...

    @property
    def dedup(self) -> EpisodeDedup:
        """The accepted episode ids (saved, so a resend after a restore is still dropped)."""
        ...

    @property
    def teachers(self) -> dict[str, Any]:
        """``{student or "*": teacher}`` of the teachers created so far."""
        ...

    def teacher(self, student: str) -> Any:
        """The student's teacher, created on first use."""
        ...


class RecoverableService(Protocol):
    """What recovery needs from the service (`TeacherServiceCore` provides it)."""

    version: int
    #: The event-log offset the last checkpoint written covers (``None``: none written, or no log).
    last_checkpoint_offset: int | None

    @property
    def log(self) -> EventLog | None:
        """The event log (``None``: nothing is logged, nothing to replay)."""
        ...

    @property
    def log_lock(self) -> AbstractContextManager[Any]:
        """Serialises writes to ``log``."""
        ...

    @property
    def counters(self) -> dict[str, int]:
        """Service counters (checkpoints, replayed events, ...)."""
        ...

    @property
    def keep_checkpoints(self) -> int:
        """How many checkpoint files to keep in a directory."""
        ...

    @property
    def replay(self) -> ReplayMode:
        """How a logged ``sampled`` batch is replayed."""
        ...

    def consistent_cut(self) -> AbstractContextManager[None]:
        """Hold every lock: nothing samples, reports or adds a curriculum meanwhile."""
        ...

    def curricula(self) -> list[str]:
        """Names of the hosted curricula."""
        ...

    def curriculum(self, name: str) -> RecoverableCurriculum:
        """The hosted curriculum ``name``."""
        ...

    def rebuild_curriculum(self, spec: dict, teachers: Mapping[str, Any]) -> RecoverableCurriculum:
        """Host a curriculum again from its saved spec (``teachers``: objects/factories by name)."""
        ...

    def replay_outcomes(self, curriculum: str, batch: OutcomeBatch) -> int:
        """Apply a logged outcome batch (dedup + teacher update) without logging it again."""
        ...

    def replay_control(self, curriculum: str, student: str, method: str, kwargs: dict) -> None:
        """Make a logged control call on a teacher again, without logging it."""
        ...


# ---------------------------------------------------------------- checkpoints
def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint file in ``directory`` (``None`` if there is none).

    Checkpoints are written to a temp name and renamed, so any ``checkpoint-*.json``
    is complete.
    """
    found = _checkpoints(Path(directory))
    return found[-1][1] if found else None


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(version, path)`` of every complete checkpoint in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _CHECKPOINT_NAME.match(p.name)))


def write_checkpoint(service: RecoverableService, directory: Path) -> Path:
    """Write the service's complete state atomically (temp file + fsync + rename); return its path.

    Then log a ``snapshot`` event and prune beyond ``keep_checkpoints``.

    The file records the event-log offset it covers; `restore` replays from there.
    """
    with service.consistent_cut():
        directory.mkdir(parents=True, exist_ok=True)
        log = service.log
        if log is not None:
            log.fsync()
        existing = _checkpoints(directory)
        version = max(service.version, existing[-1][0] if existing else 0) + 1
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "version": version,
            "t": time.time(),
            "log_path": None if log is None else str(log.path),
            "log_offset": None if log is None else log.offset,
            "counters": dict(service.counters, checkpoints=service.counters["checkpoints"] + 1),
            "curricula": [_curriculum_state(service.curriculum(name)) for name in service.curricula()],
        }
        path = _write_atomically(directory, f"checkpoint-{version:08d}.json", state)
        service.version = version
        service.last_checkpoint_offset = state["log_offset"]
        service.counters["checkpoints"] += 1
        if log is not None:
            with service.log_lock:
                log.snapshot(str(path), version, state["log_offset"])
        for _, old in _checkpoints(directory)[: -service.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path


def _curriculum_state(cur: RecoverableCurriculum) -> dict:
    return {
        "spec": cur.spec.to_dict(),
        "counters": dict(cur.counters),
        "dedup": cur.dedup.state_dict(),
        "teachers": {key: teacher.state_dict() for key, teacher in cur.teachers.items()},
    }


def _write_atomically(directory: Path, name: str, state: dict) -> Path:
    """Temp file, fsync, rename, fsync of the directory: the file is complete or absent (never a temp file)."""
    final = directory / name
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            try:
                jsonio.dump(state, f, separators=(",", ":"))
            except TypeError as e:
                raise TypeError(f"checkpoint: {e}; teacher state must be JSON/numpy serialisable") from None
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:  # disk full, read-only: no temp file left behind
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's state (arrays decoded); `ServiceError` if its format is not ours."""
    with open(path, encoding="ascii") as f:
        state = jsonio.load(f)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ServiceError(f"{path}: checkpoint format {state.get('format')!r}, this build reads {CHECKPOINT_FORMAT}")
    return state


# -------------------------------------------------------------------- restore
def restore(
    service: RecoverableService,
    directory: str | os.PathLike | None,
    teachers: Mapping[str, Any],
    candidates: Sequence[str | os.PathLike] = (),
) -> None:
    """Rebuild a fresh ``service`` after a crash.

    Loads the newest usable checkpoint, then replays the service's event log from the offset
    it covers (from the start if there is none), skipping superseded events. Nothing replayed
    is logged again.

    A checkpoint is usable when it reads back (a truncated or damaged file is skipped, counted
    in ``checkpoints_skipped``) and a later ``rewind`` does not supersede the log it covers (a
    teacher checkpointed after the point a resumed run rolled back to describes a state that
    was rolled back; it is skipped too).

    Args:
        service: the fresh service (opened on the same event log).
        directory: where the checkpoints are (``None``: only ``candidates``).
        teachers: ``{curriculum: teacher object or factory}`` for curricula that were
            added with an object or factory instead of a registry name.
        candidates: further checkpoint files to consider (a resumed run's checkpoint set).
    """
    log = service.log
    skipped = {"checkpoints_skipped": 0}  # added after loading: a checkpoint's counters replace the service's
    for path, state in _usable_checkpoints(directory, candidates, skipped):
        since = int(state["log_offset"] or 0)
        if log is not None:
            if since > log.offset:
                raise ServiceError(
                    f"{path} covers the event log up to byte {since}, but {log.path} has "
                    f"only {log.offset} bytes: the log was replaced or truncated"
                )
            superseded = superseded_ranges(log.path, since)
            if any(start < since <= end for start, end in superseded):
                skipped["checkpoints_skipped"] += 1
                continue
        try:
            _load_state(service, state, teachers)
        except Error:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ServiceError(f"{path}: checkpoint content is damaged ({type(e).__name__}: {e})") from None
        service.counters["checkpoints_skipped"] += skipped["checkpoints_skipped"]
        if log is not None:
            replay_log(service, since, teachers, superseded)
        return
    service.counters["checkpoints_skipped"] += skipped["checkpoints_skipped"]
    if log is not None:
        replay_log(service, 0, teachers, superseded_ranges(log.path, 0))


def _usable_checkpoints(
    directory: str | os.PathLike | None, extra: Sequence[str | os.PathLike], counters: dict[str, int]
) -> Iterator[tuple[Path, dict]]:  # counters: ``checkpoints_skipped`` counts the damaged ones
    """``(path, state)`` of each checkpoint that reads back, newest version first (damaged ones counted)."""
    paths = [p for _, p in _checkpoints(Path(directory))] if directory is not None else []
    paths += [Path(p) for p in extra if Path(p).is_file()]
    states: list[tuple[int, Path, dict]] = []
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            state = load_checkpoint(path)
            version = int(state["version"])
            key = (version, int(state["log_offset"] or 0))
        except (OSError, ValueError, KeyError, TypeError, ServiceError):
            counters["checkpoints_skipped"] += 1
            continue
        if key not in seen:  # a set's linked copy of a file in ``directory``
            seen.add(key)
            states.append((version, path, state))
    for _, path, state in sorted(states, key=lambda item: item[0], reverse=True):
        yield path, state


def superseded_ranges(log_path: str | os.PathLike, since: int = 0) -> list[tuple[int, int]]:
    """``[(from, to), ...]`` of every ``rewind`` logged at or after byte ``since``."""
    return [
        (int(e.event["from"]), int(e.event["to"]))
        for e in iter_events(log_path, since)
        if e.event.get("ev") == "rewind"
    ]


def _load_state(service: RecoverableService, state: dict, teachers: Mapping[str, Any]) -> None:
    service.version = int(state["version"])
    service.counters.update(state.get("counters", {}))
    for entry in state["curricula"]:
        cur = service.rebuild_curriculum(entry["spec"], teachers)
        cur.counters.update(entry["counters"])
        cur.dedup.load_state_dict(entry["dedup"])
        for key, teacher_state in entry["teachers"].items():
            cur.teacher("default" if key == "*" else key).load_state_dict(teacher_state)


def replay_log(
    service: RecoverableService,
    since: int,
    teachers: Mapping[str, Any],
    superseded: Sequence[tuple[int, int]] = (),
) -> None:
    """Apply the events of ``service.log`` from byte ``since``, in order.

    ``curriculum`` re-adds, ``sampled`` re-samples or registers (`ReplayMode`), ``outcome``
    goes through the dedup path, ``control`` calls the teacher's control again; events inside
    a ``superseded`` byte range are skipped (counted in ``superseded_events``); ``snapshot``,
    ``rewind`` and unknown events are skipped.
    """
    log = service.log
    assert log is not None
    counters = service.counters
    with service.consistent_cut():
        for entry in iter_events(log.path, since):
            event = entry.event
            kind = event.get("ev")
            if kind in ("curriculum", "sampled", "outcome", "control") and any(
                a <= entry.offset < b for a, b in superseded
            ):
                counters["superseded_events"] += 1
                continue
            if kind == "curriculum":
                if event["cur"] not in service.curricula():
                    service.rebuild_curriculum(event["spec"], teachers)
            elif kind == "sampled":
                _replay_sampled(service, event)
            elif kind == "outcome":
                batch = outcome_batch_from_json(event["outcomes"])
                counters["replayed_outcomes"] += service.replay_outcomes(event["cur"], batch)
            elif kind == "control":
                service.replay_control(event["cur"], event["student"], event["method"], event["kwargs"])
            else:
                continue
            counters["replayed_events"] += 1


def _replay_sampled(service: RecoverableService, event: dict) -> None:
    name, student, logged = decode_sampled(event)
    cur = service.curriculum(name)
    teacher = cur.teacher(student)
    if service.replay == "resample":
        # Re-run the call: a deterministic teacher ends in exactly the state it had
        # (RNG, staleness counters, ...).
        redrawn = teacher.sample(len(logged), student=student) if logged else []
        if [t.id for t in redrawn] != [t.id for t in logged]:
            service.counters["replay_mismatches"] += 1
            if hasattr(teacher, "register_tasks"):
                teacher.register_tasks(logged)
    elif hasattr(teacher, "register_tasks"):
        teacher.register_tasks(logged)
    cur.counters["tasks_sampled"] += len(logged)
    cur.counters["sample_calls"] += 1
