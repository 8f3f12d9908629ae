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
* latency and refit statistics for ``stats()``.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openended.errors import ConfigError, Error, InvalidArgument, TeacherStateError
from openended.jsonio import from_jsonable, to_jsonable
from openended.tasks import Outcome, Task, TaskSpace, outcome_list, space_from_dict
from openended.teachers.refit import Executors, Refitter, SwapPolicy
from openended.teachers.state_schema import STATE_VERSION, check_state

__all__ = ["Teacher", "BaseTeacher", "TeacherConfig", "RefitConfig", "rng_state", "make_rng"]


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


_task_id = attrgetter("id")


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

    def __init__(self, space: TaskSpace, config: TeacherConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not self._supports(space):
            raise ConfigError(f"teacher {self.name!r} works on {'/'.join(self.space_kinds)} spaces, got {space!r}")
        self.space = space
        self.rng = make_rng(self.config.seed)
        # Issued tasks for matching outcomes: id -> task, and the indexed batches in order
        # (evicted whole, oldest first, once over max_tracked_tasks). `_reissued` holds, only
        # for ids issued again while still tracked (common for Discrete spaces, rare for Box
        # ones), the batch number of their latest issue: eviction of an older batch skips
        # them. `_unindexed`: batches sampled since the last update, not indexed yet.
        self._issued: dict[str, Task] = {}
        self._reissued: dict[str, int] = {}
        self._batches: deque[tuple[int, list[str]]] = deque()
        self._unindexed: list[tuple[int, tuple[Task, ...]]] = []
        self._n_unindexed = 0
        self._gen = 0
        self._counts = {"sampled": 0, "sample_calls": 0, "outcomes": 0, "update_calls": 0, "unknown_task_outcomes": 0}
        self._sample_s: deque[float] = deque(maxlen=2000)
        self._update_s: deque[float] = deque(maxlen=2000)
        self.refitter: Refitter | None = None
        self._warned_unknown = False

    # ------------------------------------------------------------------ public API
    def sample(self, n: int = 1, *, student: str = "default") -> list[Task]:
        """``n`` tasks for ``student``. Never waits on a refit."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"sample(n): n must be a positive int, got {n!r}")
        if not isinstance(student, str):
            raise InvalidArgument(f"sample(student): must be a student id string, got {type(student).__name__}")
        t0 = time.perf_counter()
        if self.refitter is not None:
            self.refitter.on_sample()
        tasks = self._sample(int(n), student)
        self._track(tasks)
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
        if self.refitter is not None:
            self.refitter.on_update()
        tasks: list[Task] = []
        known: list[Outcome] = []
        issued = self._issued_table()
        unknown = 0
        for o in outcomes:
            task = issued.get(o.task_id)
            if task is None:
                unknown += 1
                continue
            tasks.append(task)
            known.append(o)
        self._counts["unknown_task_outcomes"] += unknown
        if self._counts["unknown_task_outcomes"] and not self._warned_unknown:
            self._warned_unknown = True
            warnings.warn(
                f"{self.name}: ignored outcomes for task ids this teacher never issued "
                "(or forgot: raise max_tracked_tasks); call register_tasks() for external tasks",
                RuntimeWarning,
                stacklevel=2,
            )
        if known:
            self._update(tasks, known)
        self._counts["outcomes"] += len(known)
        self._counts["update_calls"] += 1
        self._update_s.append(time.perf_counter() - t0)

    def _track(self, tasks: Sequence[Task]) -> None:
        """Remember issued tasks.

        SPEEDUP: ``sample`` only queues the batch; the id index is built by the next
        ``update`` (or lookup), where outcomes need it. Indexing 1,024 ids into a table of
        ~32k that the rest of the loop has pushed out of the CPU caches costs about as much
        as drawing and building the tasks, and ``sample`` is on every env worker's critical
        path. Sampling without updates indexes once the queue reaches ``max_tracked_tasks``,
        so at most twice that many tasks are held.
        """
        self._gen += 1
        self._unindexed.append((self._gen, tuple(tasks)))  # a copy: the caller owns the list
        self._n_unindexed += len(tasks)
        if self._n_unindexed >= self.config.max_tracked_tasks:
            self._index_issued()

    def _index_issued(self) -> None:
        """Index the queued batches in issue order, then evict whole batches over the limit.

        Indexing uses C-level set and dict operations; eviction drops whole batches,
        oldest first, while over ``max_tracked_tasks``. Ids issued again while still
        tracked (one key-set intersection finds them) are the only ones that get per-id
        bookkeeping.
        """
        issued = self._issued
        for gen, tasks in self._unindexed:
            ids = list(map(_task_id, tasks))
            again = issued.keys() & ids
            if again:
                self._reissued.update(dict.fromkeys(again, gen))
            issued.update(zip(ids, tasks))
            self._batches.append((gen, ids))
        self._unindexed.clear()
        self._n_unindexed = 0
        limit = self.config.max_tracked_tasks
        while len(issued) > limit and len(self._batches) > 1:
            self._evict(*self._batches.popleft())

    def _evict(self, gen: int, ids: list[str]) -> None:
        latest = self._reissued
        recorded = latest.keys() & ids
        if recorded:
            newer = {i for i in recorded if latest[i] != gen}  # issued again since: they stay
            for i in recorded - newer:
                del latest[i]
            if newer:
                ids = [i for i in ids if i not in newer]
        deque(map(self._issued.pop, ids, repeat(None)), maxlen=0)  # C-level loop

    def register_tasks(self, tasks: Sequence[Task]) -> None:
        """Make tasks created elsewhere (a test set, a user list) known to ``update``."""
        for t in tasks:
            self.space.check_task(t)
        self._track(tasks)  # copies them

    def task_for_id(self, task_id: str) -> Task | None:
        """The issued (or registered) task with this id, or None if never issued or forgotten."""
        return self._issued_table().get(task_id)

    def _issued_table(self) -> dict[str, Task]:
        """The id -> issued task table, with every batch sampled so far indexed."""
        if self._unindexed:
            self._index_issued()
        return self._issued

    def state_dict(self) -> dict:
        """Complete, JSON-serialisable state (waits for a pending refit, does not install it)."""
        state = {
            "teacher": self.name,
            "state_version": STATE_VERSION,
            "config": self.config.model_dump(mode="json"),
            "space": self.space.to_dict(),
            "rng": rng_state(self.rng),
            "issued": [t.to_dict() for t in self._issued_table().values()],
            "issued_batches": [[g, [i for i in ids if self._reissued.get(i, g) == g]] for g, ids in self._batches],
            "issued_gen": self._gen,
            "counts": dict(self._counts),
            "algo": to_jsonable(self._state_dict()),
        }
        if self.refitter is not None:
            has, staged = self.refitter.staged_result()
            state["staged_fit"] = to_jsonable(staged) if has else None
            state["has_staged_fit"] = has
            state["staged_fit_due_in"] = self.refitter.updates_until_due() if has else None
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
        self._issued = {d["id"]: Task.from_dict(d) for d in state["issued"]}
        self._reissued, self._batches = {}, deque()  # saved batches list each id once: its latest issue
        self._unindexed.clear()
        self._n_unindexed = 0
        batches: list[tuple[int, list[str]]] = state.get("issued_batches") or []
        if state.get("issued_batches") is None:  # states from before batches were saved
            batches = [(0, list(self._issued))]
        for g, ids in batches:
            self._batches.append((int(g), list(ids)))
        self._gen = int(state.get("issued_gen") or 0)
        self._counts.update(state["counts"])
        self._load_state_dict(from_jsonable(state["algo"]))
        if self.refitter is not None and state.get("has_staged_fit"):
            self.refitter.restore_staged(from_jsonable(state["staged_fit"]), state.get("staged_fit_due_in"))

    def stats(self) -> dict:
        """A plain dict for dashboards: counters, latencies and the algorithm's own stats."""
        out: dict[str, Any] = {
            "teacher": self.name,
            **self._counts,
            "tracked_tasks": len(self._issued) + self._n_unindexed,
        }
        out.update(_latency("sample_ms", self._sample_s))
        out.update(_latency("update_ms", self._update_s))
        if self.refitter is not None:
            r = self.refitter
            out.update({"refits": r.n_installed, "refit_busy": r.busy})
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

    def _state_dict(self) -> dict:
        """Override: algorithm state (numpy arrays allowed)."""
        return {}

    def _load_state_dict(self, state: dict) -> None:
        """Override: inverse of ``_state_dict``."""

    def _stats(self) -> dict:
        """Override: algorithm statistics for the dashboard."""
        return {}


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
