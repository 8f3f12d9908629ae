"""The teacher service: one authoritative home for every curriculum's teachers.

Why a service: env workers in many processes (RLlib env runners, `EnvPool` actors)
must draw tasks from, and report outcomes to, the *same* teacher state. The service
hosts teachers keyed by curriculum name; clients (`openended.runtime.client`) keep a
task buffer and an outcome outbox so the service is never on an episode's critical path.

Contents:
    TeacherServiceCore  -- pure Python (usable without starting Ray): curricula,
                           per-student or shared teacher state, batched ``sample`` /
                           ``report`` over the compact codec, episode de-duplication,
                           ``snapshot``, atomic ``checkpoint`` and ``restore`` (checkpoint
                           + event-log replay).
    TeacherServiceActor -- the Ray actor around the core, exporting metrics.
    start_service / get_service -- create-or-connect to the named actor.
    CurriculumSpec, EpisodeDedup, ServiceError, latest_checkpoint

Exactly-once outcomes, end to end:
    * a client resends a report batch whose call failed (the actor died): at least once;
    * the core drops an outcome whose ``episode_id`` it has already accepted (bounded
      FIFO memory per curriculum, saved in checkpoints): at most once;
    * every accepted batch is logged *before* the teacher sees it, and a checkpoint
      records the log offset it covers, so ``restore`` = checkpoint + replay of the
      outcomes logged after it, each applied once.
    Sampled batches logged after the checkpoint are replayed too, in log order with the
    outcomes: by default the teacher's ``sample`` is called again, so a deterministic
    teacher (seed + call sequence) ends in exactly its pre-crash state; where the redrawn
    tasks differ, the logged ones are registered so late outcomes still find their task.

Threading: the core is safe to share between threads (and an actor with
``max_concurrency > 1``). Each curriculum has its own lock around its teachers, so a
slow ``update`` (an ALP-GMM batch that triggers several fits) delays only that
curriculum; ``checkpoint`` takes every lock for a consistent cut. Refits are the
teachers' own business (`openended.teachers.refit`): ``sample`` never waits for one.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import Any, Literal

import numpy as np

from openended import jsonio
from openended.errors import ConfigError, Error
from openended.registry import normalize_name
from openended.runtime.batch_json import outcome_batch_from_json, task_batch_from_json
from openended.runtime.codec import (
    DEFAULT_TABLE_CAPACITY,
    OutcomeBatch,
    PeerView,
    TaskBatch,
    TaskColumns,
    decode_outcomes,
    decode_tasks,
    encode_outcomes,
)
from openended.runtime.eventlog import EventLog, FsyncPolicy, iter_events
from openended.tasks import Outcome, Task, TaskSpace, space_from_dict

__all__ = [
    "TeacherServiceCore",
    "TeacherServiceActor",
    "CurriculumSpec",
    "EpisodeDedup",
    "ServiceError",
    "StudentsMode",
    "start_service",
    "get_service",
    "latest_checkpoint",
    "student_seed",
    "DEFAULT_SERVICE_NAME",
    "CHECKPOINT_FORMAT",
]

StudentsMode = Literal["separate", "shared"]
TeacherFactory = Callable[[str], Any]  # student -> Teacher
DEFAULT_SERVICE_NAME = "openended_teacher_service"
CHECKPOINT_FORMAT = 1
_CKPT_RE = re.compile(r"^checkpoint-(\d{8})\.json$")


class ServiceError(Error, RuntimeError):
    """The service cannot do what was asked (unknown curriculum, mismatched log, ...)."""


# --------------------------------------------------------------------------- helpers
def student_seed(base_seed: int, student: str) -> int:
    """The seed of ``student``'s own teacher in ``students="separate"`` mode.

    ``"default"`` keeps the configured seed (a one-student run equals the plain
    teacher); other students get an independent, stable stream derived from the name.
    """
    if student == "default":
        return int(base_seed)
    h = blake2b(f"{int(base_seed)}\x00{student}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big")


@dataclass
class CurriculumSpec:
    """What is needed to rebuild a curriculum's teachers (checkpointed and logged).

    ``teacher`` is a registry name, or ``None`` for a teacher given as an object or
    factory (then `TeacherServiceCore.restore` needs it again via ``teachers=``).
    """

    name: str
    teacher: str | None
    space: dict
    config: dict = field(default_factory=dict)
    preset: str | None = None
    students: StudentsMode = "separate"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CurriculumSpec:
        return cls(
            name=d["name"],
            teacher=d.get("teacher"),
            space=d["space"],
            config=dict(d.get("config") or {}),
            preset=d.get("preset"),
            students=d.get("students", "separate"),
        )


class EpisodeDedup:
    """Bounded memory of accepted episode ids (FIFO): drops re-reported episodes.

    ``capacity`` should exceed the number of episodes that can be in flight or be
    resent after a failure (client outboxes x retries); the default is generous.
    """

    def __init__(self, capacity: int = 262_144) -> None:
        if capacity < 1:
            raise ConfigError(f"dedup_capacity: must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self._seen

    def new_rows(self, episode_ids: Sequence[str | None]) -> list[int] | None:
        """Rows to accept (``None`` = all): not seen before, first within the batch.

        Does not record anything: call `commit` once the rows are safely logged.
        """
        seen = self._seen
        distinct = set(episode_ids)
        if len(distinct) == len(episode_ids) and distinct.isdisjoint(seen):
            return None  # SPEEDUP: the usual case, decided by two C-level set operations
        batch: set[str] = set()
        keep: list[int] = []
        for i, e in enumerate(episode_ids):
            if e is None:
                keep.append(i)
            elif e not in seen and e not in batch:
                batch.add(e)
                keep.append(i)
        return None if len(keep) == len(episode_ids) else keep

    def commit(self, episode_ids: Sequence[str | None]) -> None:
        """Remember accepted episode ids (evicting the oldest beyond ``capacity``)."""
        seen, order = self._seen, self._order
        fresh = [e for e in dict.fromkeys(episode_ids) if e is not None and e not in seen]
        seen.update(fresh)
        order.extend(fresh)
        while len(order) > self.capacity:
            seen.discard(order.popleft())

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "ids": list(self._order)}

    def load_state_dict(self, state: dict) -> None:
        self._order = deque(state["ids"])
        self._seen = set(self._order)
        while len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint file in ``directory`` (``None`` if there is none).

    Checkpoints are written to a temp name and renamed, so any ``checkpoint-*.json``
    is complete.
    """
    d = Path(directory)
    if not d.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name)))
    return found[-1][1] if found else None


def _is_teacher(x: Any) -> bool:
    return hasattr(x, "sample") and hasattr(x, "update")


class _Curriculum:
    """One curriculum: its spec, space, teachers per student, dedup memory, counters."""

    def __init__(self, spec: CurriculumSpec, space: TaskSpace, factory: TeacherFactory, dedup_capacity: int) -> None:
        self.spec = spec
        self.space = space
        self.kind = space.kind
        self.factory = factory
        self.teachers: dict[str, Any] = {}
        #: Serialises this curriculum's teachers (sample/update/state_dict), so a slow
        #: update of one curriculum never blocks another one's sample.
        self.lock = threading.RLock()
        self.dedup = EpisodeDedup(dedup_capacity)
        self.counters = {
            "tasks_sampled": 0,
            "sample_calls": 0,
            "outcomes_received": 0,
            "outcomes_accepted": 0,
            "duplicates_dropped": 0,
            "outcomes_without_episode_id": 0,
            "successes": 0,
            "success_known": 0,
            "return_sum": 0.0,
            "report_calls": 0,
        }

    def teacher_key(self, student: str) -> str:
        return "*" if self.spec.students == "shared" else student

    def teacher(self, student: str) -> Any:
        key = self.teacher_key(student)
        t = self.teachers.get(key)
        if t is None:
            t = self.factory(student)
            self.teachers[key] = t
        return t


# ------------------------------------------------------------------------------ core
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
        replay: Literal["resample", "register"] = "resample",
    ) -> None:
        if keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints: must be >= 1, got {keep_checkpoints}")
        if replay not in ("resample", "register"):
            raise ConfigError(f"replay: must be 'resample' or 'register', got {replay!r}")
        # Lock order: _lock (curricula, checkpoints) -> a curriculum's lock -> _log_lock / _peers_lock.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._peers_lock = threading.Lock()
        self.log: EventLog | None = (
            event_log if isinstance(event_log, EventLog) or event_log is None else EventLog(event_log, fsync=fsync)
        )
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.dedup_capacity = int(dedup_capacity)
        self.max_peers = int(max_peers)
        self.log_sampled = bool(log_sampled)
        self.keep_checkpoints = int(keep_checkpoints)
        self._curricula: dict[str, _Curriculum] = {}
        self._peers: OrderedDict[tuple[str, str], PeerView] = OrderedDict()
        #: Number of the last checkpoint written or loaded (0: none yet).
        self.version = 0
        self.replay = replay
        self.counters = {
            "checkpoints": 0,
            "replayed_events": 0,
            "replayed_outcomes": 0,
            "replay_mismatches": 0,
            "peer_resets": 0,
        }
        self._t0 = time.time()

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
        """Host a curriculum. Idempotent for an identical spec (a restarted run loop may
        call it again); a different spec under an existing name is an error.

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
            spec, sp, factory = self._build(name, teacher, space, config, preset, students)
            existing = self._curricula.get(name)
            if existing is not None:
                if existing.spec.to_dict() != spec.to_dict() or spec.teacher is None:
                    raise ConfigError(
                        f"curriculum {name!r} already exists with spec {existing.spec.to_dict()}; "
                        f"pick another name or restart the service"
                    )
                return
            self._curricula[name] = _Curriculum(spec, sp, factory, self.dedup_capacity)
            if self.log is not None:
                with self._log_lock:
                    self.log.curriculum(name, spec.to_dict())

    def _build(
        self,
        name: str,
        teacher: Any,
        space: TaskSpace | dict | None,
        config: dict | None,
        preset: str | None,
        students: str,
    ) -> tuple[CurriculumSpec, TaskSpace, TeacherFactory]:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"curriculum name: must be a non-empty string, got {name!r}")
        if students not in ("separate", "shared"):
            raise ConfigError(f"curriculum.{name}.students: must be 'separate' or 'shared', got {students!r}")
        if isinstance(space, dict):
            space = space_from_dict(space)
        # JSON-normalised (tuples -> lists), so a spec compares equal after a checkpoint round trip.
        config = jsonio.plain_json(dict(config or {}))
        if isinstance(teacher, str):
            from openended.teachers import make_teacher, teacher_class

            teacher_class(teacher)  # unknown names fail here, with "did you mean"
            if space is None:
                raise ConfigError(f"curriculum.{name}.space: required with teacher {teacher!r}")
            sp = space
            base_seed = int(config.get("seed", 0))

            def factory(student: str) -> Any:
                cfg = dict(config)
                if students == "separate":
                    cfg["seed"] = student_seed(base_seed, student)
                return make_teacher(teacher, sp, preset=preset, **cfg)

            factory("default").close()  # validate the config now, not at the first sample
            spec = CurriculumSpec(name, normalize_name(teacher), sp.to_dict(), config, preset, students)  # type: ignore[arg-type]
            return spec, sp, factory
        if config or preset:
            raise ConfigError(
                f"curriculum.{name}: config/preset apply to registry teachers only; "
                "configure the teacher object yourself"
            )
        if _is_teacher(teacher):
            if students != "shared":
                raise ConfigError(
                    f"curriculum.{name}.students: a teacher object can only be 'shared'; "
                    "pass a factory (student -> teacher) for separate state"
                )
            obj = teacher
            sp = space if space is not None else obj.space
            return CurriculumSpec(name, None, sp.to_dict(), {}, None, students), sp, lambda student: obj  # type: ignore[arg-type]
        if callable(teacher):
            fac = teacher
            sp = space if space is not None else None
            if sp is None:
                probe = fac("default")
                sp = probe.space

                unused_probe = [probe]

                def factory_reusing_probe(student: str) -> Any:
                    if unused_probe:
                        return unused_probe.pop()  # reuse the probe teacher for the first student
                    return fac(student)

                return CurriculumSpec(name, None, sp.to_dict(), {}, None, students), sp, factory_reusing_probe  # type: ignore[arg-type]
            return CurriculumSpec(name, None, sp.to_dict(), {}, None, students), sp, fac  # type: ignore[arg-type]
        raise ConfigError(
            f"curriculum.{name}.teacher: must be a registry name, a teacher or a factory, got {type(teacher).__name__}"
        )

    def curricula(self) -> list[str]:
        with self._lock:
            return list(self._curricula)

    def spec(self, curriculum: str) -> CurriculumSpec:
        return self._cur(curriculum).spec

    def space(self, curriculum: str) -> TaskSpace:
        return self._cur(curriculum).space

    def teacher(self, curriculum: str, student: str = "default") -> Any:
        """The live teacher object (in-process inspection; do not mutate concurrently)."""
        cur = self._cur(curriculum)
        with cur.lock:
            return cur.teacher(student)

    def _cur(self, curriculum: str) -> _Curriculum:
        cur = self._curricula.get(curriculum)
        if cur is None:
            known = ", ".join(sorted(self._curricula)) or "none yet (call add_curriculum)"
            raise ServiceError(f"unknown curriculum {curriculum!r}; hosted: {known}")
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
            peer: the receiver's token; discrete/text contents it already caches are
                not sent again (see `codec.PeerView`). ``None``: self-contained batch.
            reset_peer: forget what ``peer`` caches (after a `codec.TaskCacheMiss`).
        """
        cur = self._cur(curriculum)
        with cur.lock:
            tasks = cur.teacher(student).sample(n, student=student)
            # One pass over the tasks serves both the log (self-contained) and the peer.
            columns = TaskColumns(tasks, cur.kind)
            if self.log is not None and self.log_sampled:
                with self._log_lock:
                    self.log.sampled(curriculum, student, columns.batch())
            cur.counters["tasks_sampled"] += len(tasks)
            cur.counters["sample_calls"] += 1
            if cur.kind == "box" or peer is None:
                return columns.batch()
            with self._peers_lock:
                return columns.batch(self._peer_view(curriculum, peer, reset_peer))

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
        """Hand a batch of outcomes to the curriculum's teacher(s); return how many were
        accepted (episodes already accepted before are dropped)."""
        cur = self._cur(curriculum)
        if not isinstance(batch, OutcomeBatch):
            batch = encode_outcomes(list(batch))
        with cur.lock:
            return self._apply_outcomes(cur, batch, log=True)

    def _apply_outcomes(self, cur: _Curriculum, batch: OutcomeBatch, *, log: bool) -> int:
        n = len(batch)
        c = cur.counters
        c["report_calls"] += 1
        c["outcomes_received"] += n
        if n == 0:
            return 0
        eps = batch.episode_id_list
        keep = cur.dedup.new_rows(eps)
        if keep is not None:
            c["duplicates_dropped"] += n - len(keep)
            if not keep:
                return 0
            batch = batch.take(keep)
            eps = [eps[i] for i in keep]
        if log and self.log is not None:
            with self._log_lock:
                self.log.outcome(cur.spec.name, batch)
        cur.dedup.commit(eps)
        outcomes = decode_outcomes(batch, eps)
        missing_ids = eps.count(None)
        if missing_ids:
            c["outcomes_without_episode_id"] += missing_ids
        if cur.spec.students == "shared" or len(batch.student_names) == 1:
            cur.teacher(batch.student_names[0]).update(outcomes)
        else:
            groups: dict[str, list[Outcome]] = {}
            for o in outcomes:
                groups.setdefault(o.student_id, []).append(o)
            for student, group in groups.items():
                cur.teacher(student).update(group)
        c["outcomes_accepted"] += len(outcomes)
        known = batch.success >= 0
        c["success_known"] = c.get("success_known", 0) + int(np.count_nonzero(known))
        c["successes"] = c.get("successes", 0) + int(np.count_nonzero(batch.success == 1))
        c["return_sum"] = c.get("return_sum", 0.0) + float(np.sum(batch.returns))
        return len(outcomes)

    # ----------------------------------------------------------------- snapshot
    def snapshot(self) -> dict:
        """Teacher stats per curriculum and student, plus service counters (for dashboards)."""
        with self._lock:
            out: dict[str, Any] = {
                "version": self.version,
                "uptime_s": time.time() - self._t0,
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

    # --------------------------------------------------------------- checkpoint
    def checkpoint(self, directory: str | os.PathLike | None = None) -> str:
        """Write the complete state atomically (temp file + fsync + rename); return its path.

        The file records the event-log offset it covers; `restore` replays from there.
        """
        with self._lock, ExitStack() as held:
            for cur in self._curricula.values():  # a consistent cut: nothing samples or reports now
                held.enter_context(cur.lock)
            d = Path(directory) if directory is not None else self.checkpoint_dir
            if d is None:
                raise ConfigError("checkpoint: pass a directory or set checkpoint_dir")
            d.mkdir(parents=True, exist_ok=True)
            if self.log is not None:
                self.log.fsync()
            newest = latest_checkpoint(d)
            version = max(self.version, int(_CKPT_RE.match(newest.name).group(1)) if newest else 0) + 1  # type: ignore[union-attr]
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": version,
                "t": time.time(),
                "log_path": None if self.log is None else str(self.log.path),
                "log_offset": None if self.log is None else self.log.offset,
                "counters": dict(self.counters, checkpoints=self.counters["checkpoints"] + 1),
                "curricula": [
                    {
                        "spec": cur.spec.to_dict(),
                        "counters": dict(cur.counters),
                        "dedup": cur.dedup.state_dict(),
                        "teachers": {key: t.state_dict() for key, t in cur.teachers.items()},
                    }
                    for cur in self._curricula.values()
                ],
            }
            final = d / f"checkpoint-{version:08d}.json"
            tmp = d / f".checkpoint-{version:08d}.json.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="ascii") as f:
                try:
                    jsonio.dump(state, f, separators=(",", ":"))
                except TypeError as e:
                    raise TypeError(f"checkpoint: {e}; teacher state must be JSON/numpy serialisable") from None
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            dir_fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.version = version
            self.counters["checkpoints"] += 1
            if self.log is not None:
                with self._log_lock:
                    self.log.snapshot(str(final), version, state["log_offset"])
            self._prune(d)
            return str(final)

    def _prune(self, d: Path) -> None:
        found = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name)))
        for _, p in found[: -self.keep_checkpoints]:
            p.unlink(missing_ok=True)

    @classmethod
    def restore(
        cls,
        directory: str | os.PathLike | None,
        event_log: EventLog | str | os.PathLike | None,
        *,
        teachers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TeacherServiceCore:
        """Rebuild the service after a crash: newest checkpoint in ``directory`` (if any),
        then replay of ``event_log`` from the offset that checkpoint covers (from the
        start if there is none). Nothing replayed is logged again.

        Args:
            teachers: ``{curriculum: teacher object or factory}`` for curricula that
                were added with an object or factory instead of a registry name.
            **kwargs: further `TeacherServiceCore` arguments.
        """
        core = cls(event_log=event_log, checkpoint_dir=directory, **kwargs)
        teachers = dict(teachers or {})
        ckpt = latest_checkpoint(directory) if directory is not None else None
        since = 0
        if ckpt is not None:
            with open(ckpt, encoding="ascii") as f:
                state = jsonio.load(f)
            if state.get("format") != CHECKPOINT_FORMAT:
                raise ServiceError(
                    f"{ckpt}: checkpoint format {state.get('format')!r}, this build reads {CHECKPOINT_FORMAT}"
                )
            core._load(state, teachers)
            since = int(state["log_offset"] or 0)
        if core.log is not None:
            if since > core.log.offset:
                raise ServiceError(
                    f"{ckpt} covers the event log up to byte {since}, but {core.log.path} has "
                    f"only {core.log.offset} bytes: the log was replaced or truncated"
                )
            core._replay(since, teachers)
        return core

    def _load(self, state: dict, teachers: dict[str, Any]) -> None:
        self.version = int(state["version"])
        self.counters.update(state.get("counters", {}))
        for entry in state["curricula"]:
            spec = CurriculumSpec.from_dict(entry["spec"])
            cur = self._add_from_spec(spec, teachers)
            cur.counters.update(entry["counters"])
            cur.dedup.load_state_dict(entry["dedup"])
            for key, tstate in entry["teachers"].items():
                cur.teacher("default" if key == "*" else key).load_state_dict(tstate)

    def _add_from_spec(self, spec: CurriculumSpec, teachers: dict[str, Any]) -> _Curriculum:
        if spec.teacher is not None:
            sp, cfg, fac = self._build(spec.name, spec.teacher, spec.space, spec.config, spec.preset, spec.students)
        else:
            given = teachers.get(spec.name)
            if given is None:
                raise ConfigError(
                    f"restore: curriculum {spec.name!r} was built from a teacher object/factory; "
                    f"pass it again with teachers={{{spec.name!r}: ...}}"
                )
            sp, cfg, fac = self._build(spec.name, given, space_from_dict(spec.space), None, None, spec.students)
        cur = _Curriculum(spec, cfg, fac, self.dedup_capacity)
        self._curricula[spec.name] = cur
        return cur

    def _replay(self, since: int, teachers: dict[str, Any]) -> None:
        assert self.log is not None
        with self._lock:
            for entry in iter_events(self.log.path, since):
                ev = entry.event
                kind = ev.get("ev")
                if kind == "curriculum":
                    if ev["cur"] not in self._curricula:
                        self._add_from_spec(CurriculumSpec.from_dict(ev["spec"]), teachers)
                elif kind == "sampled":
                    cur = self._cur(ev["cur"])
                    student = ev["student"]
                    logged = decode_tasks(task_batch_from_json(ev["tasks"]))
                    teacher = cur.teacher(student)
                    if self.replay == "resample":
                        # Re-run the call: a deterministic teacher ends in exactly the
                        # state it had (RNG, staleness counters, ...).
                        redrawn = teacher.sample(len(logged), student=student) if logged else []
                        if [t.id for t in redrawn] != [t.id for t in logged]:
                            self.counters["replay_mismatches"] += 1
                            if hasattr(teacher, "register_tasks"):
                                teacher.register_tasks(logged)
                    elif hasattr(teacher, "register_tasks"):
                        teacher.register_tasks(logged)
                    cur.counters["tasks_sampled"] += len(logged)
                    cur.counters["sample_calls"] += 1
                elif kind == "outcome":
                    cur = self._cur(ev["cur"])
                    self.counters["replayed_outcomes"] += self._apply_outcomes(
                        cur, outcome_batch_from_json(ev["outcomes"]), log=False
                    )
                else:
                    continue
                self.counters["replayed_events"] += 1

    # ------------------------------------------------------------------- close
    def close(self) -> None:
        """Close the event log and stop teachers' background workers (idempotent)."""
        with self._lock:
            for cur in self._curricula.values():
                with cur.lock:
                    for t in cur.teachers.values():
                        close = getattr(t, "close", None)
                        if close is not None:
                            close()
            if self.log is not None:
                with self._log_lock:
                    self.log.close()

    def __repr__(self) -> str:
        return f"TeacherServiceCore(curricula={list(self._curricula)}, version={self.version})"


# ----------------------------------------------------------------------- Ray actor
class TeacherServiceActor:
    """The Ray actor hosting one `TeacherServiceCore` (use `start_service` to create it).

    Concurrency: the default ``max_concurrency=1`` runs calls one at a time in the
    actor's thread (lowest overhead; right for one curriculum). With several curricula
    and a teacher whose ``update`` is slow (ALP-GMM: a 1,024-outcome batch triggers
    several fits, ~0.5 s here), ``max_concurrency=4`` lets calls for other curricula run
    meanwhile: the core locks per curriculum, and the waits (fits in threads, fsync,
    sleeps) release the GIL. Clients keep task buffers, so a short pause of the service
    never stalls an episode.

    ``curricula``: added at start, as ``{name: add_curriculum kwargs}`` or a list of
    ``add_curriculum`` kwargs (spaces as ``TaskSpace`` or ``to_dict()``); re-adding on a
    resumed service is a no-op.

    Resuming: with ``resume=True`` the constructor restores from ``checkpoint_dir`` and
    ``event_log``; so an actor started with ``max_restarts`` resumes by itself after
    its process dies.
    """

    def __init__(
        self,
        *,
        event_log: str | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        curricula: Sequence[dict] | Mapping[str, dict] = (),
        metrics: bool = True,
        metrics_interval_s: float = 2.0,
        teacher_threads: int | None = 1,
        **core_kwargs: Any,
    ) -> None:
        self._thread_limits: Any = None
        if teacher_threads is not None:
            # STACK.md: BLAS/OpenMP fits sharing cores with env workers went 0.1 s -> 16 s.
            from threadpoolctl import threadpool_limits

            self._thread_limits = threadpool_limits(limits=teacher_threads)
        if resume and (checkpoint_dir is not None or event_log is not None):
            self.core = TeacherServiceCore.restore(checkpoint_dir, event_log, **core_kwargs)
        else:
            self.core = TeacherServiceCore(event_log=event_log, checkpoint_dir=checkpoint_dir, **core_kwargs)
        items = [{"name": k, **v} for k, v in curricula.items()] if isinstance(curricula, Mapping) else list(curricula)
        for c in items:
            self.core.add_curriculum(**c)
        self._metrics = None
        if metrics:
            from openended.runtime.metrics_export import ServiceMetrics

            self._metrics = ServiceMetrics(interval_s=metrics_interval_s)

    def add_curriculum(
        self,
        name: str,
        teacher: str = "random",
        space: dict | None = None,
        config: dict | None = None,
        preset: str | None = None,
        students: StudentsMode = "separate",
    ) -> None:
        self.core.add_curriculum(name, teacher, space, config, preset, students)

    def curricula(self) -> list[str]:
        return self.core.curricula()

    def space(self, curriculum: str) -> dict:
        return self.core.space(curriculum).to_dict()

    def sample(
        self, curriculum: str, student: str = "default", n: int = 1, peer: str | None = None, reset_peer: bool = False
    ) -> TaskBatch:
        batch = self.core.sample(curriculum, student, n, peer=peer, reset_peer=reset_peer)
        if self._metrics is not None:
            self._metrics.tasks(curriculum, student, len(batch))
            self._metrics.maybe_flush(self.core)
        return batch

    def report(self, curriculum: str, batch: OutcomeBatch) -> int:
        accepted = self.core.report(curriculum, batch)
        if self._metrics is not None:
            self._metrics.outcomes(curriculum, accepted, len(batch) - accepted)
            self._metrics.maybe_flush(self.core)
        return accepted

    def snapshot(self) -> dict:
        """The core's snapshot plus ``metrics`` (whether exported, how many pushes)."""
        snap = self.core.snapshot()
        if self._metrics is not None:
            self._metrics.flush(self.core, snap)
        snap["metrics"] = {
            "enabled": self._metrics is not None,
            "pushes": 0 if self._metrics is None else self._metrics.pushes,
        }
        return snap

    def checkpoint(self, directory: str | None = None) -> str:
        return self.core.checkpoint(directory)

    def ping(self) -> float:
        return time.time()

    def close(self) -> None:
        """Push metrics, close the core (event log, teacher workers), undo the thread pin."""
        if self._metrics is not None:
            self._metrics.flush(self.core)
        self.core.close()
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None


def start_service(
    name: str = DEFAULT_SERVICE_NAME,
    namespace: str | None = None,
    *,
    detached: bool = False,
    max_concurrency: int = 1,
    num_cpus: float = 0,
    max_restarts: int = 0,
    actor_options: dict | None = None,
    **service_kwargs: Any,
) -> Any:
    """Create the named service actor, or connect to it if it exists (``get_if_exists``).

    Args:
        name / namespace: the actor's Ray name (clients find it with `get_service`).
        detached: outlive the driver (clusters, ``ray job submit`` runs that resume).
        max_concurrency: threads serving calls; see `TeacherServiceActor` (default 1).
        num_cpus: CPUs reserved for scheduling; 0 so the service never keeps env
            workers from being placed on a small machine.
        max_restarts: Ray restarts of a dead actor; combine with ``resume=True`` so a
            restart restores from checkpoint + log.
        actor_options: extra ``.options(...)`` (resources, scheduling_strategy, ...).
        **service_kwargs: `TeacherServiceActor` arguments (event_log, checkpoint_dir,
            resume, curricula, metrics, and `TeacherServiceCore` options).

    If the actor already exists, ``service_kwargs`` are ignored (Ray returns it as is).
    """
    import ray

    opts: dict[str, Any] = {
        "name": name,
        "get_if_exists": True,
        "max_concurrency": int(max_concurrency),
        "num_cpus": num_cpus,
        "max_restarts": int(max_restarts),
    }
    if namespace is not None:
        opts["namespace"] = namespace
    if detached:
        opts["lifetime"] = "detached"
    if max_restarts:
        opts["max_task_retries"] = 0  # clients resend failed reports themselves (dedup makes it safe)
    opts.update(actor_options or {})
    for key in ("event_log", "checkpoint_dir"):
        if service_kwargs.get(key) is not None:
            service_kwargs[key] = str(Path(service_kwargs[key]).resolve())
    return ray.remote(TeacherServiceActor).options(**opts).remote(**service_kwargs)


def get_service(name: str = DEFAULT_SERVICE_NAME, namespace: str | None = None) -> Any:
    """The handle of a running service actor (raises `ServiceError` naming it if absent)."""
    import ray

    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        raise ServiceError(
            f"no teacher service named {name!r} in namespace {namespace!r}; start one with start_service()"
        ) from None
