"""The teacher contract (`Teacher` Protocol) and `BaseTeacher`, the bookkeeping base class.

Tiers (as in Syllabus): required ``sample``/``update``; persistence
``state_dict``/``load_state_dict``; dashboard ``stats``. `Teacher` is the contract;
`BaseTeacher` supplies what every teacher needs so subclasses write only the algorithm:

* public ``sample``/``update`` validate, time, count and track issued tasks, then call
  the subclass's ``_sample``/``_update`` (override those: ``@override`` points);
* outcomes are matched to tasks by ``task_id`` in a bounded table of issued tasks, so
  they may arrive late, out of order, in any batch size; an unknown id is counted, not
  fatal;
* one ``np.random.Generator`` per teacher from ``config.seed``; nothing touches global
  RNG state; ``state_dict`` includes the generator so save -> load -> sample continues
  exactly;
* latency and refit statistics for ``stats()``;
* an opt-in array path: ``sample_arrays`` / ``update_arrays`` take and give columns
  (`openended.tasks.TaskArrays`, numpy arrays of returns ...) with no `Task` or
  `Outcome` built; a teacher that implements ``_sample_arrays`` (and says so in
  ``supports_arrays``) gets the same bookkeeping, and the two paths can be mixed.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openended.errors import ConfigError, Error, InvalidArgument, TeacherStateError
from openended.jsonio import from_jsonable, to_jsonable
from openended.tasks import Outcome, Task, TaskArrays, TaskSpace, ids_to_hex, outcome_list, space_from_dict
from openended.teachers.issued import IssuedTasks
from openended.teachers.refit import Executors, Refitter, SwapPolicy
from openended.teachers.state_schema import STATE_VERSION, check_state

__all__ = ["Teacher", "BaseTeacher", "TeacherConfig", "RefitConfig", "rng_state", "make_rng", "MAX_ROWS", "MAX_WIDTH"]

#: The most rows (levels, pairs, candidates, episodes) a size in a teacher's config may ask
#: for: as many as a `Discrete` space may hold. Why bounds at all: sizes come from
#: experiment files, and an unbounded one (10**12) made a teacher try to allocate it, which
#: ends in a MemoryError or, where memory fills slowly, the OOM killer, instead of an error
#: that names the field.
MAX_ROWS = 1_000_000
#: The widest network layer (units) a teacher's config may ask for.
MAX_WIDTH = 4096


@runtime_checkable
class Teacher(Protocol):
    """What a curriculum teacher is. Stable."""

    space: TaskSpace

    def sample(self, n: int = 1, *, student: str = "default") -> list[Task]:
        """``n`` tasks for ``student`` to run next; must not block on learning."""
        ...

    def update(self, outcomes: Sequence[Outcome]) -> None:
        """Learn from finished episodes, matched to tasks by ``task_id`` (any order, any batch size)."""
        ...

    def state_dict(self) -> dict:
        """Everything needed to continue exactly after `load_state_dict` (JSON-serialisable)."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict` of the same teacher and space."""
        ...

    def stats(self) -> dict:
        """A flat dict of numbers and short lists for dashboards."""
        ...


class TeacherConfig(BaseModel):
    """Fields every teacher accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Seed of the teacher's own np.random.Generator, 0 .. 2**32-1 (what every library it seeds takes).",
    )
    max_tracked_tasks: int = Field(
        32_768,
        ge=1,
        description="Issued tasks remembered for matching late outcomes (FIFO, whole batches; "
        "up to twice as many are held while sampling without updates).",
    )


class RefitConfig(BaseModel):
    """Mixin fields for teachers that refit a model (GMMs, partitions)."""

    refit_executor: Executors = Field(
        "thread", description="Where fits run: inline (blocks update), thread, or process."
    )
    refit_swap: SwapPolicy = Field(
        "next_update", description="When a finished fit goes live: next_update (reproducible) or asap."
    )
    refit_lag: int = Field(
        1, ge=1, description="next_update: the fit goes live at the N-th update after it was submitted."
    )


def make_rng(seed: int) -> np.random.Generator:
    """The teacher's own generator (PCG64): seeded explicitly, never numpy's global state."""
    return np.random.Generator(np.random.PCG64(seed))


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state, a JSON-ready dict that restores it exactly."""
    return dict(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


class BaseTeacher:
    """Bookkeeping base: validation, issued-task tracking, RNG, persistence and latency stats.

    Subclasses set ``name``, ``Config``, ``space_kinds`` and implement ``_sample`` and
    ``_update``; refitting teachers also use ``self.refitter``. A subclass with its own
    ``Config`` class re-annotates ``config`` with it (e.g. ``config: LPConfig``), so the
    type checker knows its fields.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[TeacherConfig]] = TeacherConfig
    space_kinds: ClassVar[tuple[str, ...]] = ("box", "discrete", "text")
    #: Named, versioned config presets (e.g. a published algorithm's exact defaults).
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Config overrides the contract test (`check_teacher` over every registered teacher) applies
    #: to stay fast: smaller networks, fewer training steps; the code path is the same.
    CHECK_OVERRIDES: ClassVar[dict[str, Any]] = {}
    #: Whether ``_update`` / ``_update_arrays`` read the model a refit installs. False lets
    #: an update do its own work while the fit due at it is still running, and wait only
    #: at its end (same model for every later ``sample``; see `Refitter.begin_update`).
    update_reads_model: ClassVar[bool] = True

    def __init__(self, space: TaskSpace, config: TeacherConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not self._supports(space):
            raise ConfigError(f"teacher {self.name!r} works on {'/'.join(self.space_kinds)} spaces, got {space!r}")
        self.space = space
        self.rng = make_rng(self.config.seed)
        # Issued tasks for matching late outcomes (bounded, whole batches; see `IssuedTasks`).
        self._issued = IssuedTasks(space, self.config.max_tracked_tasks)
        self._counts = {"sampled": 0, "sample_calls": 0, "outcomes": 0, "update_calls": 0, "unknown_task_outcomes": 0}
        self._sample_s: deque[float] = deque(maxlen=2000)
        self._update_s: deque[float] = deque(maxlen=2000)
        self.refitter: Refitter | None = None
        self._warned_unknown = False

    # ------------------------------------------------------------------ public API
    def sample(self, n: int = 1, *, student: str = "default") -> list[Task]:
        """``n`` tasks for ``student``. Never waits on a refit."""
        check_sample_args(n, student, "sample")
        t0 = time.perf_counter()
        if self.refitter is not None:
            self.refitter.on_sample()
        tasks = self._sample(int(n), student)
        self._issued.add(tasks)
        self._counts["sampled"] += len(tasks)
        self._counts["sample_calls"] += 1
        self._sample_s.append(time.perf_counter() - t0)
        return tasks

    def update(self, outcomes: Sequence[Outcome]) -> None:
        """Learn from a batch of outcomes (any order, any size; unknown task ids are counted).

        Raises:
            InvalidArgument: ``outcomes`` is not a sequence of `Outcome` (nothing is counted then).
        """
        outcomes = outcome_list(outcomes, "update(outcomes)")
        t0 = time.perf_counter()
        self._refit_update_begins()
        try:
            tasks: list[Task] = []
            known: list[Outcome] = []
            issued = self._issued
            unknown = 0
            for o, ref in zip(outcomes, issued.find([o.task_id for o in outcomes]).tolist()):
                if ref < 0:
                    unknown += 1
                    continue
                tasks.append(issued.task(ref))
                known.append(o)
            self._count_unknown(unknown)
            self._learn_resolved(tasks, known)
        finally:
            self._refit_update_ends()
        self._record_update(len(known), t0)

    def update_resolved(self, tasks: Sequence[Task], outcomes: Sequence[Outcome]) -> None:
        """`update` with each outcome's task already looked up (``tasks[i]`` is ``outcomes[i]``'s).

        SPEEDUP: a wrapping teacher (OMNI over LP) resolved the ids in its own `update`;
        looking them up again here was a third of the base's update time.
        """
        t0 = time.perf_counter()
        self._refit_update_begins()
        try:
            self._learn_resolved(list(tasks), list(outcomes))
        finally:
            self._refit_update_ends()
        self._record_update(len(outcomes), t0)

    def _learn_resolved(self, tasks: list[Task], known: list[Outcome]) -> None:
        if known:
            self._update(tasks, known)

    def _record_update(self, n_known: int, t0: float) -> None:
        self._counts["outcomes"] += n_known
        self._counts["update_calls"] += 1
        self._update_s.append(time.perf_counter() - t0)

    def _refit_update_begins(self) -> None:
        """The refitter's swap point at the start of an update (all of it unless `update_reads_model` is false)."""
        if self.refitter is not None:
            if self.update_reads_model:
                self.refitter.on_update()
            else:
                self.refitter.begin_update()

    def _refit_update_ends(self) -> None:
        """SPEEDUP: a fit due at this update was awaited only now, after the update's own work."""
        if self.refitter is not None and not self.update_reads_model:
            self.refitter.end_update()

    # ------------------------------------------------------------------ array path
    def supports_arrays(self) -> bool:
        """Whether `sample_arrays` / `update_arrays` run natively (override with ``_sample_arrays``)."""
        return False

    def sample_arrays(self, n: int = 1, *, student: str = "default") -> TaskArrays:
        """`sample` as columns: ids and parameters (or Discrete indices) as numpy arrays.

        The same tasks, RNG draws and bookkeeping as ``sample(n, student=student)``; a
        teacher without a native array path (`supports_arrays` is false) samples `Task`
        values and converts them (`TaskArrays.from_tasks`: Box and Discrete spaces only).
        """
        check_sample_args(n, student, "sample_arrays")
        if not self.supports_arrays():
            return TaskArrays.from_tasks(self.sample(int(n), student=student), self.space)
        t0 = time.perf_counter()
        if self.refitter is not None:
            self.refitter.on_sample()
        arrays = self._sample_arrays(int(n), student)
        self._issued.add(arrays)
        self._counts["sampled"] += len(arrays)
        self._counts["sample_calls"] += 1
        self._sample_s.append(time.perf_counter() - t0)
        return arrays

    def update_arrays(
        self,
        task_ids: np.ndarray | Sequence[str],
        returns: np.ndarray,
        success: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
    ) -> None:
        """`update` from columns: no `Outcome` built.

        Args:
            task_ids: ``uint64`` ids (or id strings), one per finished episode.
            returns: float64 episode returns (finite).
            success: int8 ``1`` / ``0`` / ``-1`` (unknown); ``None``: all unknown.
            lengths: int episode lengths, ``-1`` for unknown; ``None``: all unknown.

        Same effect as ``update`` with `Outcome` values of those fields (student, info, time
        and episode id do not reach a teacher's learning). A teacher without a native
        ``_update_arrays`` gets those `Outcome` values built for its ``update``.
        """
        ids = task_ids if isinstance(task_ids, np.ndarray) else list(task_ids)
        r = np.asarray(returns, dtype=np.float64).reshape(-1)
        n = len(ids)
        if r.shape[0] != n:
            raise InvalidArgument(f"update_arrays(returns): {r.shape[0]} returns for {n} task ids")
        if not np.isfinite(r).all():
            i = int(np.argmin(np.isfinite(r)))
            raise InvalidArgument(f"update_arrays(returns[{i}]): {r[i]}; episode returns must be finite")
        succ = np.full(n, -1, dtype=np.int8) if success is None else np.asarray(success, dtype=np.int8).reshape(-1)
        lens = np.full(n, -1, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64).reshape(-1)
        if succ.shape[0] != n or lens.shape[0] != n:
            raise InvalidArgument(f"update_arrays: success and lengths need {n} rows, like task_ids")
        if not self.supports_array_updates():
            self.update(
                [
                    Outcome(tid, ret, None if s < 0 else s == 1, None if ln < 0 else ln)
                    for tid, ret, s, ln in zip(
                        ids_to_hex(ids) if isinstance(ids, np.ndarray) else ids,
                        r.tolist(),
                        succ.tolist(),
                        lens.tolist(),
                    )
                ]
            )
            return
        t0 = time.perf_counter()
        self._refit_update_begins()
        try:
            found = self._issued.find(ids)
            keep = found >= 0
            n_known = int(np.count_nonzero(keep))
            unknown = n - n_known
            self._count_unknown(unknown)
            if n_known and type(self)._update_arrays is not BaseTeacher._update_arrays:  # else nothing to learn
                if unknown:
                    found, r, succ, lens = found[keep], r[keep], succ[keep], lens[keep]
                self._update_arrays(self._issued.gather(found), r, succ, lens)
        finally:
            self._refit_update_ends()
        self._record_update(n_known, t0)

    def supports_array_updates(self) -> bool:
        """Whether `update_arrays` runs without building `Outcome`s.

        True when the teacher supports arrays and learns in ``_update_arrays`` (or learns
        nothing at all): then an outcome's student, info, time and episode id are not needed.
        """
        cls = type(self)
        return self.supports_arrays() and (
            cls._update_arrays is not BaseTeacher._update_arrays or cls._update is BaseTeacher._update
        )

    def _count_unknown(self, unknown: int) -> None:
        self._counts["unknown_task_outcomes"] += unknown
        if self._counts["unknown_task_outcomes"] and not self._warned_unknown:
            self._warned_unknown = True
            warnings.warn(
                f"{self.name}: ignored outcomes for task ids this teacher never issued "
                "(or forgot: raise max_tracked_tasks); call register_tasks() for external tasks",
                RuntimeWarning,
                stacklevel=3,
            )

    def register_tasks(self, tasks: Sequence[Task]) -> None:
        """Make tasks created elsewhere (a test set, a user list) known to ``update``."""
        for t in tasks:
            self.space.check_task(t)
        self._issued.add(tasks)  # copies them

    def task_for_id(self, task_id: str) -> Task | None:
        """The issued (or registered) task with this id, or None if never issued or forgotten."""
        return self._issued.get(task_id)

    def state_dict(self) -> dict:
        """Complete, JSON-serialisable state (waits for a pending refit, does not install it)."""
        issued, issued_batches = self._issued.state()
        state = {
            "teacher": self.name,
            "state_version": STATE_VERSION,
            "config": self.config.model_dump(mode="json"),
            "space": self.space.to_dict(),
            "rng": rng_state(self.rng),
            "issued": issued,
            "issued_batches": issued_batches,
            "issued_gen": self._issued.gen,
            "counts": dict(self._counts),
            "algo": to_jsonable(self._state_dict()),
        }
        if self.refitter is not None:
            staged = self.refitter.staged_results()  # oldest first; more than one only with refit_lag > 1
            state["staged_fit"] = to_jsonable(staged[0][0]) if staged else None
            state["has_staged_fit"] = bool(staged)
            state["staged_fit_due_in"] = staged[0][1] if staged else None
            if len(staged) > 1:
                state["later_staged_fits"] = [[to_jsonable(fit), due_in] for fit, due_in in staged[1:]]
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict`, all or nothing.

        The state is checked against the schema (`openended.teachers.state_schema`: the
        common part, its version, the algorithm part's keys) before anything changes; if the
        algorithm's own loader still fails, the previous state is put back.

        Raises:
            TeacherStateError: another teacher's or space's state, or one that does not match
                the schema; the message names the key.
        """
        check_state(state, self.name, to_jsonable(self._state_dict()))
        try:
            saved_space = space_from_dict(state["space"])
        except (Error, KeyError, TypeError, ValueError) as e:
            raise TeacherStateError(f"state.space: not a task space ({e})") from None
        if saved_space != self.space:
            raise TeacherStateError(
                f"state was saved for space {state['space']}, this teacher has {self.space.to_dict()}"
            )
        previous = self.state_dict()
        try:
            self._load_all(state)
        except TeacherStateError:  # the algorithm's own check, already naming the problem
            self._load_all(previous)
            raise
        except (Error, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            self._load_all(previous)
            raise TeacherStateError(
                f"state for teacher {self.name!r} could not be loaded ({type(e).__name__}: {e}); "
                "the teacher keeps its previous state"
            ) from None

    def _load_all(self, state: dict) -> None:
        _set_rng_state(self.rng, state["rng"])
        # saved batches list each id once (its latest issue); None: a state from before batches were saved
        self._issued.load(state["issued"], state.get("issued_batches"), int(state.get("issued_gen") or 0))
        self._counts.update(state["counts"])
        self._load_state_dict(from_jsonable(state["algo"]))
        if self.refitter is not None:
            self.refitter.discard_staged()
            if state.get("has_staged_fit"):
                self.refitter.restore_staged(from_jsonable(state["staged_fit"]), state.get("staged_fit_due_in"))
                for fit, due_in in state.get("later_staged_fits") or []:
                    self.refitter.restore_staged(from_jsonable(fit), due_in)

    def stats(self) -> dict:
        """A plain dict for dashboards: counters, latencies and the algorithm's own stats."""
        out: dict[str, Any] = {
            "teacher": self.name,
            **self._counts,
            "tracked_tasks": len(self._issued),
        }
        out.update(_latency("sample_ms", self._sample_s))
        out.update(_latency("update_ms", self._update_s))
        if self.refitter is not None:
            r = self.refitter
            out.update({"refits": r.n_installed, "refit_busy": r.busy})
            if r.coalesce:
                out["refits_coalesced"] = r.n_coalesced
            out.update(_latency("refit_ms", r.latencies_s))
            out.update(_latency("refit_staleness_ms", r.staleness_s))
        out.update(self._stats())
        return out

    def close(self) -> None:
        """Stop background workers (idempotent)."""
        if self.refitter is not None:
            self.refitter.close()

    def __enter__(self) -> BaseTeacher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space!r}, seed={self.config.seed})"

    # -------------------------------------------------------------- override points
    def _supports(self, space: TaskSpace) -> bool:
        """Override where support depends on the config (``self.config`` is set): whether ``space`` works."""
        return space.kind in self.space_kinds

    def _sample(self, n: int, student: str) -> list[Task]:  # pragma: no cover - abstract
        """Override: return ``n`` tasks (use ``self.rng``)."""
        raise NotImplementedError

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        """Override: learn from outcomes; ``tasks[i]`` is the task ``outcomes[i]`` ran."""

    def _sample_arrays(self, n: int, student: str) -> TaskArrays:  # pragma: no cover - abstract
        """Override (with `supports_arrays`): `_sample` as columns, the same draws and tasks."""
        raise NotImplementedError

    def _update_arrays(self, tasks: TaskArrays, returns: np.ndarray, success: np.ndarray, lengths: np.ndarray) -> None:
        """Override: `_update` from columns; row ``i`` of ``tasks`` is the task episode ``i`` ran."""

    def _state_dict(self) -> dict:
        """Override: algorithm state (numpy arrays allowed)."""
        return {}

    def _load_state_dict(self, state: dict) -> None:
        """Override: inverse of ``_state_dict``."""

    def _stats(self) -> dict:
        """Override: algorithm statistics for the dashboard."""
        return {}


def check_sample_args(n: Any, student: Any, where: str) -> None:
    """Refuse a sample call's ``n`` (a positive int) or ``student`` (a string); ``where`` names the call."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{where}(n): n must be a positive int, got {n!r}")
    if not isinstance(student, str):
        raise InvalidArgument(f"{where}(student): must be a student id string, got {type(student).__name__}")


def _latency(prefix: str, xs: Sequence[float]) -> dict:
    if not xs:
        return {}
    a = np.asarray(xs) * 1e3
    return {
        f"{prefix}_p50": float(np.percentile(a, 50)),
        f"{prefix}_p99": float(np.percentile(a, 99)),
        f"{prefix}_max": float(a.max()),
        f"{prefix}_last": float(a[-1]),
    }
