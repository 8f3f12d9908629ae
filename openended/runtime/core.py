"""The teacher service's core: one authoritative home for every curriculum's teachers.

Why a service: env workers in many processes (RLlib env runners, `EnvPool` actors)
must draw tasks from, and report outcomes to, the *same* teacher state. The core hosts
teachers keyed by curriculum name; clients (`openended.runtime.client`) keep a task
buffer and an outcome outbox so the service is never on an episode's critical path.
It is plain Python: `openended.runtime.service` runs it as a Ray actor, and in-process
use (tests, notebooks, `LocalTeacherClient`) needs no Ray at all.

Contents:
    TeacherServiceCore -- curricula (`openended.runtime.curricula`), per-student or
                          shared teacher state, batched ``sample`` / ``report`` over the
                          compact codec, episode de-duplication, ``snapshot``,
                          ``checkpoint`` and ``restore``.

Crash recovery (checkpoint files, restore, event-log replay, `EpisodeDedup`, the
exactly-once argument) lives in `openended.runtime.recovery`; the core calls it and
offers it the few hooks it needs (`consistent_cut`, `curriculum`, `rebuild_curriculum`,
`replay_outcomes`). The hot path stays here: ``report`` runs dedup -> log the accepted
rows -> remember their episode ids -> teacher ``update``, so the log is always the truth.

Threading: the core is safe to share between threads (and an actor with
``max_concurrency > 1``). Each curriculum has its own lock around its teachers, so a
slow ``update`` (an ALP-GMM batch that triggers several fits) delays only that
curriculum; ``checkpoint`` takes every lock for a consistent cut. Refits are the
teachers' own business (`openended.teachers.refit`): ``sample`` never waits for one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from openended.errors import ConfigError, ServiceError
from openended.runtime import recovery
from openended.runtime.codec import (
    DEFAULT_TABLE_CAPACITY,
    OutcomeBatch,
    PeerView,
    TaskBatch,
    TaskColumns,
    check_finite_returns,
    concat_outcomes,
    decode_outcomes,
    decode_tasks,
    encode_outcomes,
    encode_task_arrays,
)
from openended.runtime.curricula import (
    Curriculum,
    CurriculumSpec,
    StudentsMode,
    TeacherFactory,
    curriculum_from_spec,
    new_curriculum,
)
from openended.runtime.eventlog import EventLog, FsyncPolicy
from openended.runtime.recovery import ReplayMode, episode_keys
from openended.runtime.report_queue import PendingReport
from openended.tasks import Outcome, Task, TaskArrays, TaskSpace, outcome_list
from openended.teachers.base import check_sample_args
from openended.teachers.views import teacher_view

__all__ = ["TeacherServiceCore"]


class TeacherServiceCore:
    """Hosts teachers keyed by curriculum name. Pure Python; Ray is not needed to use it.

    Args:
        event_log: an `EventLog`, a path to one, or ``None`` (no log: no replay on restore).
        checkpoint_dir: default directory for `checkpoint`.
        dedup_capacity: episode ids remembered per curriculum for de-duplication.
        max_peers: receivers whose task tables are mirrored (LRU); see `codec.PeerView`.
        log_sampled: log sampled batches (needed for an exact replay of late outcomes).
        keep_checkpoints: how many checkpoint files to keep in a directory.
        fsync: the event log's fsync policy when ``event_log`` is a path.
        replay: how `restore` replays a logged ``sampled`` batch. ``"resample"``
            (default) calls the teacher's ``sample`` again, so a deterministic teacher
            ends in exactly its pre-crash state (RNG included); if the redrawn ids differ
            from the logged ones (a non-deterministic teacher) the logged tasks are
            registered instead and ``replay_mismatches`` counts it. ``"register"`` only
            registers the logged tasks (never calls ``sample``: for teachers whose
            sampling is expensive, e.g. an LLM task generator).

    Example:
        >>> from openended.tasks import Box, Outcome
        >>> core = TeacherServiceCore()
        >>> core.add_curriculum("walk", "random", Box([0, 0], [1, 1]), config={"seed": 0})
        >>> tasks = core.sample_tasks("walk", "alice", 4)
        >>> core.report("walk", [Outcome(t.id, 1.0, student_id="alice", episode_id=str(i))
        ...                       for i, t in enumerate(tasks)])
        4
        >>> core.report("walk", [Outcome(tasks[0].id, 1.0, student_id="alice", episode_id="0")])
        0
    """

    def __init__(
        self,
        *,
        event_log: EventLog | str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        dedup_capacity: int = 262_144,
        max_peers: int = 1024,
        log_sampled: bool = True,
        keep_checkpoints: int = 3,
        fsync: FsyncPolicy = "interval",
        replay: ReplayMode = "resample",
    ) -> None:
        if keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints: must be >= 1, got {keep_checkpoints}")
        if replay not in ("resample", "register"):
            raise ConfigError(f"replay: must be 'resample' or 'register', got {replay!r}")
        # Lock order: _lock (curricula, checkpoints) -> a curriculum's lock -> log_lock / _peers_lock.
        self._lock = threading.RLock()
        #: Serialises writes to ``log`` (taken after a curriculum's lock).
        self.log_lock = threading.Lock()
        self._peers_lock = threading.Lock()
        self.log: EventLog | None = (
            event_log if isinstance(event_log, EventLog) or event_log is None else EventLog(event_log, fsync=fsync)
        )
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.dedup_capacity = int(dedup_capacity)
        self.max_peers = int(max_peers)
        self.log_sampled = bool(log_sampled)
        self.keep_checkpoints = int(keep_checkpoints)
        self._curricula: dict[str, Curriculum] = {}
        self._peers: OrderedDict[tuple[str, str], PeerView] = OrderedDict()
        #: Number of the last checkpoint written or loaded (0: none yet).
        self.version = 0
        #: The event-log offset the last checkpoint written covers (``None``: none yet, or no log).
        self.last_checkpoint_offset: int | None = None
        self.replay: ReplayMode = replay
        self.counters: dict[str, int] = {
            "checkpoints": 0,
            "replayed_events": 0,
            "replayed_outcomes": 0,
            "replay_mismatches": 0,
            "peer_resets": 0,
            "superseded_events": 0,
            "checkpoints_skipped": 0,
        }
        self._started_at = time.time()

    # ------------------------------------------------------------- curricula
    def add_curriculum(
        self,
        name: str,
        teacher: str | Any | TeacherFactory = "random",
        space: TaskSpace | dict | None = None,
        config: dict | None = None,
        preset: str | None = None,
        students: StudentsMode = "separate",
    ) -> None:
        """Host a curriculum.

        Idempotent for an identical spec (a restarted run loop may call it again); a
        different spec under an existing name is an error.

        Args:
            name: the curriculum name clients use.
            teacher: a registry name (``"alp_gmm"``), a teacher object (``students``
                must be ``"shared"``), or a factory ``student -> teacher``.
            space: the task space (required with a registry name).
            config: teacher config (registry names only); in ``"separate"`` mode each
                student's seed is derived with `student_seed`.
            preset: a documented teacher preset (registry names only).
            students: ``"separate"`` (one teacher state per student) or ``"shared"``.
        """
        with self._lock:
            candidate = new_curriculum(name, teacher, space, config, preset, students, self.dedup_capacity)
            existing = self._curricula.get(name)
            if existing is not None:
                if existing.spec.to_dict() != candidate.spec.to_dict() or candidate.spec.teacher is None:
                    raise ConfigError(
                        f"curriculum {name!r} already exists with spec {existing.spec.to_dict()}; "
                        f"pick another name or restart the service"
                    )
                return
            self._curricula[name] = candidate
            if self.log is not None:
                with self.log_lock:
                    self.log.curriculum(name, candidate.spec.to_dict())

    def curricula(self) -> list[str]:
        """Names of the hosted curricula, in the order they were added."""
        with self._lock:
            return list(self._curricula)

    def spec(self, curriculum: str) -> CurriculumSpec:
        """The spec ``curriculum`` was added with (teacher, space, config, students mode)."""
        return self.curriculum(curriculum).spec

    def space(self, curriculum: str) -> TaskSpace:
        """The task space of ``curriculum``."""
        return self.curriculum(curriculum).space

    def teacher(self, curriculum: str, student: str = "default") -> Any:
        """The live teacher object (in-process inspection; do not mutate concurrently)."""
        cur = self.curriculum(curriculum)
        with cur.lock:
            return cur.teacher(student)

    def known_tasks(self, curriculum: str, student: str = "default") -> list[Task]:
        """The tasks the teacher knows (its ``known_tasks()``: LP, OMNI, WebRL), for evaluation sweeps.

        Raises `ConfigError` naming ``evaluation.test_set`` when the teacher has no finite task list.
        """
        cur = self.curriculum(curriculum)
        with cur.lock:
            teacher = cur.teacher(student)
            fn = getattr(teacher, "known_tasks", None)
            if fn is None:
                raise ConfigError(
                    f"evaluation.test_set: 'teacher' needs a teacher with known_tasks() (lp, omni, webrl); "
                    f"{type(teacher).__name__} has none; use grid, uniform or held_out"
                )
            return list(fn())

    def control(self, curriculum: str, student: str, method: str, kwargs: dict | None = None) -> Any:
        """Call one of the teacher's ``CONTROLS`` methods (e.g. the scenario teacher's ``set_tasks``).

        Why a whitelist: a driver steers a teacher that follows a schedule it owns (the
        lifelong scenario's blocks) without reaching into arbitrary teacher internals.
        The call is logged (``control`` event, in order with samples and outcomes), so a
        service restored from a checkpoint plus the log replays it.

        Raises:
            ConfigError: the teacher has no such control (the message lists the ones it has),
                or ``kwargs`` is not JSON (the event log could not replay it).
        """
        cur = self.curriculum(curriculum)
        with cur.lock:
            fn = self._control_method(cur, student, method)
            kwargs = dict(kwargs or {})
            try:
                json.dumps(kwargs)
            except (TypeError, ValueError) as e:  # before the call: nothing changes that the log cannot replay
                raise ConfigError(f"control {method!r}: kwargs must be JSON to be logged and replayed ({e})") from None
            result = fn(**kwargs)
            if self.log is not None:
                with self.log_lock:
                    self.log.control(curriculum, student, method, kwargs)
            return result

    def replay_control(self, curriculum: str, student: str, method: str, kwargs: dict) -> None:
        """Apply a logged control call again (recovery), without logging it."""
        cur = self.curriculum(curriculum)
        with cur.lock:
            self._control_method(cur, student, method)(**kwargs)

    @staticmethod
    def _control_method(cur: Curriculum, student: str, method: str) -> Any:
        teacher = cur.teacher(student)
        allowed = tuple(getattr(type(teacher), "CONTROLS", ()))
        if method not in allowed:
            raise ConfigError(
                f"control: teacher {getattr(teacher, 'name', type(teacher).__name__)!r} has no control "
                f"{method!r}; it has {list(allowed) or 'none'}"
            )
        return getattr(teacher, method)

    def curriculum(self, name: str) -> Curriculum:
        """The hosted curriculum (spec, teachers, dedup memory, counters).

        Hold its ``lock`` to touch its teachers. Unknown names raise `ServiceError` listing
        the hosted ones.
        """
        cur = self._curricula.get(name)
        if cur is None:
            known = ", ".join(sorted(self._curricula)) or "none yet (call add_curriculum)"
            raise ServiceError(f"unknown curriculum {name!r}; hosted: {known}")
        return cur

    # ------------------------------------------------------------------ sample
    def sample(
        self,
        curriculum: str,
        student: str = "default",
        n: int = 1,
        *,
        peer: str | None = None,
        reset_peer: bool = False,
    ) -> TaskBatch:
        """``n`` tasks for ``student`` as a compact `TaskBatch`.

        Args:
            curriculum: the curriculum's name.
            student: whose teacher samples (in ``"shared"`` mode they all share one).
            n: how many tasks.
            peer: the receiver's token; discrete/text contents it already caches are
                not sent again (see `codec.PeerView`). ``None``: self-contained batch.
            reset_peer: forget what ``peer`` caches (after a `codec.TaskCacheMiss`).
        """
        return self._sample(curriculum, student, n, peer, reset_peer, arrays=False)

    def sample_columns(
        self,
        curriculum: str,
        student: str = "default",
        n: int = 1,
        *,
        peer: str | None = None,
        reset_peer: bool = False,
    ) -> TaskBatch:
        """`sample` through the teacher's array path when it has one (no `Task` built here).

        Same teacher state, tasks and log as `sample`. A teacher with an array path
        (``supports_arrays()``: the random teacher on Box/Discrete, fast-mode GMM teachers)
        gives its draws as columns (`openended.tasks.TaskArrays`); a Box batch is the same
        ``"box"`` batch `sample` returns, a Discrete one a self-contained ``"values"`` batch
        (``peer`` is not needed). Other teachers: exactly `sample` (``peer`` applies).
        """
        return self._sample(curriculum, student, n, peer, reset_peer, arrays=True)

    def sample_columns_many(
        self, requests: Sequence[tuple[str, str, int, str | None, bool]]
    ) -> list[TaskBatch | BaseException]:
        """Several callers' `sample_columns` at once; each one's batch or error.

        A request is ``(curriculum, student, n, peer, reset_peer)``, as `sample_columns` takes.

        Why: the socket's serving thread that finds many clients' refills waiting (a wave,
        `openended.runtime.wire`) draws the ones for the same curriculum and student in one
        call of the teacher's array path: one draw, one ``sampled`` log line and one
        issued-task batch for all of them, each caller getting its own slice in order. With
        1,000 clients a third of the service's CPU went to per-refill draws and log lines.
        A restore replays the line as one draw, as it was made. Teachers without an array
        path, requests alone for their student and a refused ``n`` go one by one, as
        `sample_columns`.
        """
        out: list[TaskBatch | BaseException | None] = [None] * len(requests)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (curriculum, student, n, _peer, _reset) in enumerate(requests):
            try:
                check_sample_args(n, student, "sample_columns")
            except Exception:  # noqa: BLE001 - refused alone, below, with this error
                continue
            groups.setdefault((curriculum, student), []).append(i)
        for (curriculum, student), rows in groups.items():
            if len(rows) < 2:
                continue
            try:
                batches = self._sample_together(curriculum, student, [int(requests[i][2]) for i in rows])
            except Exception as e:  # noqa: BLE001 - the draw failed: each of its callers gets the error
                batches = [e] * len(rows)
            if batches is not None:
                for i, batch in zip(rows, batches):
                    out[i] = batch
        for i, (curriculum, student, n, peer, reset_peer) in enumerate(requests):
            if out[i] is None:
                try:
                    out[i] = self.sample_columns(curriculum, student, n, peer=peer, reset_peer=reset_peer)
                except Exception as e:  # noqa: BLE001 - this caller's error
                    out[i] = e
        return [b for b in out if b is not None]

    def _sample_together(self, curriculum: str, student: str, ns: list[int]) -> list[TaskBatch | BaseException] | None:
        """`sample_columns_many`'s one draw for ``ns`` tasks, sliced in order; None: no array path."""
        cur = self.curriculum(curriculum)
        with cur.lock:
            teacher = cur.teacher(student)
            if not _has_array_path(teacher, "supports_arrays"):
                return None
            arrays, _ = self._draw_arrays(cur, teacher, student, sum(ns), calls=len(ns))
        ends = np.cumsum(ns)
        return [encode_task_arrays(arrays.take(np.arange(e - n, e)), cur.space) for n, e in zip(ns, ends.tolist())]

    def _sample(
        self, curriculum: str, student: str, n: int, peer: str | None, reset_peer: bool, *, arrays: bool
    ) -> TaskBatch:
        cur = self.curriculum(curriculum)
        with cur.lock:
            teacher = cur.teacher(student)
            if arrays and _has_array_path(teacher, "supports_arrays"):
                return self._draw_arrays(cur, teacher, student, n)[1]
            tasks = teacher.sample(n, student=student)
            # One pass over the tasks serves both the log (self-contained) and the peer.
            columns = TaskColumns(tasks, cur.kind)
            if self.log is not None and self.log_sampled:
                with self.log_lock:
                    self.log.sampled(curriculum, student, columns.batch())
            cur.counters["tasks_sampled"] += len(tasks)
            cur.counters["sample_calls"] += 1
            if cur.kind == "box" or peer is None:
                return columns.batch()
            with self._peers_lock:
                return columns.batch(self._peer_view(curriculum, peer, reset_peer))

    def _draw_arrays(
        self, cur: Curriculum, teacher: Any, student: str, n: int, calls: int = 1
    ) -> tuple[TaskArrays, TaskBatch]:
        """``n`` tasks through the teacher's array path, logged and counted as ``calls`` sample calls.

        The caller holds ``cur.lock``. Returns the draw and its (self-contained) batch.
        """
        arrays = teacher.sample_arrays(n, student=student)
        batch = encode_task_arrays(arrays, cur.space)
        if self.log is not None and self.log_sampled:
            with self.log_lock:
                self.log.sampled(cur.spec.name, student, batch)
        cur.counters["tasks_sampled"] += len(batch)
        cur.counters["sample_calls"] += calls
        return arrays, batch

    def sample_tasks(self, curriculum: str, student: str = "default", n: int = 1) -> list[Task]:
        """`sample` decoded to `Task` values (in-process convenience)."""
        return decode_tasks(self.sample(curriculum, student, n))

    def _peer_view(self, curriculum: str, peer: str, reset: bool) -> PeerView:
        key = (curriculum, peer)
        view = self._peers.get(key)
        if view is None:
            view = PeerView(DEFAULT_TABLE_CAPACITY)
            self._peers[key] = view
            if len(self._peers) > self.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(key)
            if reset:
                view.clear()
                self.counters["peer_resets"] += 1
        return view

    # ------------------------------------------------------------------ report
    def report(self, curriculum: str, batch: OutcomeBatch | Sequence[Outcome]) -> int:
        """Hand a batch of outcomes to the curriculum's teacher(s); return how many were accepted.

        Episodes already accepted before are dropped (at-least-once delivery from clients
        becomes exactly-once for the teachers).
        """
        cur, mine = self._queue_report(curriculum, batch)
        with cur.lock:
            if not mine.done:  # else a thread that held the lock before us applied it with its own
                self._apply_reports(cur, cur.reports.take())
        if mine.error is not None:
            raise mine.error
        return mine.accepted

    def report_many(self, reports: Sequence[tuple[str, OutcomeBatch | Sequence[Outcome]]]) -> list[int | BaseException]:
        """Several callers' `report` calls at once: one group commit per curriculum; each call's count or error.

        Why: a service thread that finds several clients' reports waiting (the socket's
        serving loop, `openended.runtime.wire`) applies them as one teacher update per
        curriculum, as several request threads do through the report queue: one dedup pass,
        one event-log line, one refit. A report that is refused (unknown curriculum,
        non-finite returns) gets its own error and does not hold up the others; a group
        that fails gives its error to each of its reports.
        """
        pending: list[PendingReport | BaseException] = []
        touched: dict[str, Curriculum] = {}
        for curriculum, batch in reports:
            try:
                cur, mine = self._queue_report(curriculum, batch)
            except Exception as e:  # noqa: BLE001 - this caller's error, returned to it alone
                pending.append(e)
                continue
            pending.append(mine)
            touched[curriculum] = cur
        for cur in touched.values():
            with cur.lock:
                group = cur.reports.take()
                if group:
                    try:
                        self._apply_reports(cur, group)
                    except Exception:  # noqa: BLE001 - recorded on each report of the group
                        pass
        return [p if isinstance(p, BaseException) else p.error or p.accepted for p in pending]

    def _queue_report(
        self, curriculum: str, batch: OutcomeBatch | Sequence[Outcome]
    ) -> tuple[Curriculum, PendingReport]:
        """Check one caller's batch and queue it for its curriculum's next group commit.

        Raises before queueing: a bad batch is refused alone, before it can join a group.
        """
        cur = self.curriculum(curriculum)
        if not isinstance(batch, OutcomeBatch):
            batch = encode_outcomes(outcome_list(batch, "report(batch)"))
        check_finite_returns(batch)
        return cur, cur.reports.put(batch)

    def _apply_reports(self, cur: Curriculum, group: list[PendingReport]) -> None:
        """Group commit (`openended.runtime.report_queue`): the queued reports as one update."""
        try:
            merged = concat_outcomes([p.batch for p in group])
            rows = self._accepted_rows(cur, merged, log=True, calls=len(group))
            if rows is None:
                for p in group:
                    p.accepted = len(p.batch)
            else:
                ends = np.cumsum([len(p.batch) for p in group])
                counts = np.bincount(np.searchsorted(ends, rows, side="right"), minlength=len(group))
                for p, count in zip(group, counts.tolist()):
                    p.accepted = count
        except BaseException as e:
            for p in group:
                p.error = e
            raise
        finally:
            for p in group:
                p.done = True

    def _accepted_rows(self, cur: Curriculum, batch: OutcomeBatch, *, log: bool, calls: int = 1) -> list[int] | None:
        """Dedup -> log the accepted rows -> remember their episode ids -> teacher update.

        Returns the rows accepted (``None``: all of them). ``calls``: report calls this batch
        merges. The caller has checked the returns are finite (`report`, `replay_outcomes`).
        """
        n = len(batch)
        counters = cur.counters
        counters["report_calls"] += calls
        counters["outcomes_received"] += n
        if n == 0:
            return None
        keys = episode_keys(batch.episode_ids)
        fresh_rows = cur.dedup.new_rows(keys)
        if fresh_rows is not None:
            counters["duplicates_dropped"] += n - len(fresh_rows)
            if not fresh_rows:
                return fresh_rows
            batch = batch.take(fresh_rows)
            keys = keys[fresh_rows] if isinstance(keys, np.ndarray) else [keys[i] for i in fresh_rows]
        if log and self.log is not None:
            with self.log_lock:
                self.log.outcome(cur.spec.name, batch)
        without_id = 0 if isinstance(keys, np.ndarray) else keys.count(None)
        cur.dedup.commit(keys, checked=fresh_rows is None and not without_id)
        if without_id:
            counters["outcomes_without_episode_id"] += without_id
        if cur.spec.students == "shared" or len(batch.student_names) == 1:
            _update_teacher(cur.teacher(batch.student_names[0]), batch)
        else:
            codes = batch.student_codes
            for code, student in enumerate(batch.student_names):
                rows = np.flatnonzero(codes == code)
                if rows.size:
                    _update_teacher(cur.teacher(student), batch.take(rows))
        counters["outcomes_accepted"] += len(batch)
        success_known = batch.success >= 0
        counters["success_known"] = counters.get("success_known", 0) + int(np.count_nonzero(success_known))
        counters["successes"] = counters.get("successes", 0) + int(np.count_nonzero(batch.success == 1))
        counters["return_sum"] = counters.get("return_sum", 0.0) + float(np.sum(batch.returns))
        return fresh_rows

    # ----------------------------------------------------------------- snapshot
    def snapshot(self) -> dict:
        """Teacher stats per curriculum and student, plus service counters (for dashboards)."""
        with self._lock:
            out: dict[str, Any] = {
                "version": self.version,
                "uptime_s": time.time() - self._started_at,
                "counters": dict(self.counters),
                "log": None if self.log is None else {"path": str(self.log.path), "offset": self.log.offset},
                "curricula": {},
            }
            for name, cur in self._curricula.items():
                with cur.lock:
                    out["curricula"][name] = {
                        "teacher": cur.spec.teacher,
                        "space": cur.spec.space,
                        "students_mode": cur.spec.students,
                        "counters": dict(cur.counters),
                        "dedup_size": len(cur.dedup),
                        "students": {s: t.stats() for s, t in cur.teachers.items()},
                    }
            return out

    def views(self) -> dict[str, dict[str, dict | None]]:
        """Each curriculum's teacher views per student (`openended.teachers.views`), for dashboards.

        Takes each curriculum's lock for the view only (well under a millisecond for
        default-size teachers); the run loop calls it between iterations, never per task.
        """
        out: dict[str, dict[str, dict | None]] = {}
        for name in self.curricula():
            cur = self.curriculum(name)
            with cur.lock:
                out[name] = {student: teacher_view(t) for student, t in cur.teachers.items()}
        return out

    # ------------------------------------------------------- checkpoint, restore
    def checkpoint(self, directory: str | os.PathLike | None = None) -> str:
        """Write the complete state atomically (temp file + fsync + rename); return its path.

        The file records the event-log offset it covers; `restore` replays from there.
        See `openended.runtime.recovery.write_checkpoint`.
        """
        target = Path(directory) if directory is not None else self.checkpoint_dir
        if target is None:
            raise ConfigError("checkpoint: pass a directory or set checkpoint_dir")
        return str(recovery.write_checkpoint(self, target))

    @classmethod
    def restore(
        cls,
        directory: str | os.PathLike | None,
        event_log: EventLog | str | os.PathLike | None,
        *,
        teachers: Mapping[str, Any] | None = None,
        candidates: Sequence[str | os.PathLike] = (),
        **kwargs: Any,
    ) -> TeacherServiceCore:
        """Rebuild the service after a crash.

        Loads the newest usable checkpoint in ``directory`` or ``candidates`` (if any), then
        replays ``event_log`` from the offset that checkpoint covers (from the start if there
        is none), skipping superseded events (see `openended.runtime.recovery`). Nothing
        replayed is logged again.

        Args:
            directory: where the checkpoints are (``None``: replay the whole log).
            event_log: the event log to replay and then keep appending to (an `EventLog`
                or a path; ``None``: nothing to replay).
            teachers: ``{curriculum: teacher object or factory}`` for curricula that
                were added with an object or factory instead of a registry name.
            candidates: further checkpoint files (a resumed run's checkpoint set).
            **kwargs: further `TeacherServiceCore` arguments.
        """
        core = cls(event_log=event_log, checkpoint_dir=directory, **kwargs)
        recovery.restore(core, directory, dict(teachers or {}), candidates)
        return core

    # Hooks for `openended.runtime.recovery` (see `recovery.RecoverableService`).
    @contextmanager
    def consistent_cut(self) -> Iterator[None]:
        """Hold every lock: nothing samples, reports or adds a curriculum meanwhile."""
        with self._lock, ExitStack() as held:
            for cur in self._curricula.values():
                held.enter_context(cur.lock)
            yield

    def rebuild_curriculum(self, spec: dict, teachers: Mapping[str, Any]) -> Curriculum:
        """Host a curriculum again from its checkpointed or logged spec (not logged again)."""
        cur = curriculum_from_spec(spec, teachers, self.dedup_capacity)
        with self._lock:
            self._curricula[cur.spec.name] = cur
        return cur

    def replay_outcomes(self, curriculum: str, batch: OutcomeBatch) -> int:
        """Apply an outcome batch that is already in the event log (dedup + update, not logged)."""
        cur = self.curriculum(curriculum)
        check_finite_returns(batch)  # before any teacher sees a row (`report` checks before queueing)
        with cur.lock:
            rows = self._accepted_rows(cur, batch, log=False)
        return len(batch) if rows is None else len(rows)

    # ------------------------------------------------------------------- close
    def close(self) -> None:
        """Close the event log and stop teachers' background workers (idempotent)."""
        with self._lock:
            for cur in self._curricula.values():
                with cur.lock:
                    for teacher in cur.teachers.values():
                        close = getattr(teacher, "close", None)
                        if close is not None:
                            close()
            if self.log is not None:
                with self.log_lock:
                    self.log.close()

    def __repr__(self) -> str:
        return f"TeacherServiceCore(curricula={list(self._curricula)}, version={self.version})"


def _has_array_path(teacher: Any, check: str) -> bool:
    """Whether ``teacher`` (any `Teacher`, not only a `BaseTeacher`) says yes to its array-path ``check``."""
    fn = getattr(teacher, check, None)
    return fn is not None and bool(fn())


def _update_teacher(teacher: Any, batch: OutcomeBatch) -> None:
    """One teacher's share of a report: columns when it learns from them, else `Outcome` values."""
    if _has_array_path(teacher, "supports_array_updates"):
        teacher.update_arrays(batch.task_ids, batch.returns, batch.success, batch.lengths)
    else:
        teacher.update(decode_outcomes(batch))
