"""The vocabulary every layer speaks: task spaces, tasks and outcomes.

Contents:
    TaskSpace  -- abstract base: validate, sample uniformly, make tasks, (de)serialise.
    Box        -- continuous parameters (Stump Tracks: stump height x spacing).
    Discrete   -- an enumerable set (Procgen level seeds, SC2 minigames, achievements).
    TextSpace  -- open-ended tasks written as text (WebRL, OMNI-EPIC).
    Task       -- immutable, with a stable content-hash ``id`` and lineage.
    Outcome    -- what one episode reports back, keyed by the ``task_id`` it actually ran.
    space_from_dict -- rebuild a space from ``TaskSpace.to_dict()``.

Why the ids look the way they do: a task id is a 16-hex-digit content hash of what the
task *is* (its parameters and/or text), so the same task gets the same id in every
process and across restarts, and outcomes can arrive late, out of order and in batches
yet still find their task. Box tasks are hashed vectorised (thousands per millisecond),
because teachers hand out tasks in batches of 1,024.

Example:
    >>> space = Box([0.0, 0.0], [3.0, 6.0], names=["stump_height", "spacing"])
    >>> task = space.task([1.5, 2.0])
    >>> task.params
    (1.5, 2.0)
    >>> task.id == space.task([1.5, 2.0]).id
    True
    >>> Outcome(task_id=task.id, episode_return=12.5).success is None
    True
"""

from __future__ import annotations

import hashlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Any, ClassVar, NamedTuple

import numpy as np

from openended.errors import ConfigError, InvalidArgument, InvalidOutcome, TaskNotInSpace

__all__ = [
    "TaskSpace",
    "Box",
    "Discrete",
    "TextSpace",
    "Task",
    "Outcome",
    "space_from_dict",
    "outcome_list",
    "hash_params",
    "hash_params_u64",
    "hash_text",
    "ids_to_hex",
    "ids_from_hex",
    "TaskArrays",
]

# ----------------------------------------------------------------------------- hashing
# splitmix64's constants (`hash_kernels.hash_rows` holds the same for the compiled pass)
_MASK = (1 << 64) - 1
_M1_I, _M2_I, _GOLDEN_I = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_SMALL_BATCH = 8


def _mix64_int(x: int) -> int:
    """splitmix64's finaliser on one Python int (the bits the compiled pass gives; faster for a handful of tasks)."""
    x = ((x ^ (x >> 30)) * _M1_I) & _MASK
    x = ((x ^ (x >> 27)) * _M2_I) & _MASK
    return x ^ (x >> 31)


def hash_params_u64(params: np.ndarray, salt: int = 0) -> np.ndarray:
    """`hash_params` as a ``uint64`` array (the same 64 bits, no hex strings built).

    What the array path (`TaskArrays`) ships: ids stay numbers end to end.
    """
    arr = np.ascontiguousarray(np.asarray(params, dtype=np.float64) + 0.0)
    if arr.ndim == 1:
        arr = arr[None, :]
    bits = arr.view(np.uint64)
    n, d = bits.shape
    if n <= _SMALL_BATCH:  # SPEEDUP: numpy's per-call overhead dominates for one task
        out = []
        for row in bits.tolist():
            h = salt ^ d
            for j, b in enumerate(row):
                h = _mix64_int(h ^ ((b + _GOLDEN_I * (j + 1)) & _MASK))
            out.append(h)
        return np.array(out, dtype=np.uint64)
    from openended import hash_kernels  # SPEEDUP: one compiled pass (numba, loaded on the first big batch)

    return hash_kernels.hash_rows(bits, np.uint64(salt))


def ids_to_hex(ids: np.ndarray) -> list[str]:
    """``uint64`` ids as 16-lowercase-hex strings (the form `Task.id` has)."""
    if len(ids) == 0:
        return []
    # SPEEDUP: one hex string with a space every 8 bytes, split in C (2x the slicing loop)
    return np.ascontiguousarray(ids, dtype=np.uint64).astype(">u8").tobytes().hex(" ", 8).split(" ")


def ids_from_hex(ids: Sequence[str | None]) -> np.ndarray | None:
    """``uint64`` array of canonical 16-lowercase-hex ids, or ``None`` if any id is not canonical.

    Vectorised: one join, one ``bytes.fromhex``, one ``frombuffer`` (~40 us for 1,024).
    The re-encode check rejects uppercase, whitespace and ``None`` so the inverse
    (`ids_to_hex`) gives back exactly the same strings.
    """
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    try:
        joined = "".join(ids)  # type: ignore[arg-type]  # a None id raises the TypeError caught here
    except TypeError:  # a None (or non-str) id
        return None
    if len(joined) != 16 * n:
        return None
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    if len(raw) != 8 * n or raw.hex() != joined:
        return None
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def hash_params(params: np.ndarray, salt: int = 0) -> list[str]:
    """Stable 16-hex-digit ids for each row of a 2-D float array (one id per task).

    The exact float64 bits are hashed (``-0.0`` is folded into ``0.0``), so a task id
    changes if and only if its parameters change.
    """
    return ids_to_hex(hash_params_u64(params, salt))


def hash_text(text: str, prefix: str = "t") -> str:
    """Stable 16-hex-digit id of a text (BLAKE2b); ``prefix`` keeps id families apart."""
    return hashlib.blake2b(f"{prefix}\x00{text}".encode(), digest_size=8).hexdigest()


def _check_encodable(text: str, what: str, error: type[Exception] = InvalidArgument) -> None:
    """Refuse text that cannot be written as UTF-8 (lone surrogates): ids hash it, logs store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise error(
            f"{what}: character {e.start} ({text[e.start]!r}) is a lone surrogate, not valid Unicode text"
        ) from None


# ------------------------------------------------------------------------------- Task
class Task(NamedTuple):
    """One task. Immutable; compare and hash freely; cheap to build in batches.

    Attributes:
        id: stable content hash (16 hex digits) of params and text.
        params: continuous parameters (Box), ``(value,)`` (Discrete) or ``()`` (text only).
        text: a description for judges and generators; the task itself in a TextSpace.
        parent_ids: ids of the tasks this one was derived from (variants, failures).
        origin: who made it: ``"sampled"``, ``"uniform"``, ``"generated"``, ``"mutated"``, ...
    """

    id: str
    params: tuple = ()
    text: str | None = None
    parent_ids: tuple[str, ...] = ()
    origin: str = "sampled"

    @property
    def array(self) -> np.ndarray:
        """Parameters as a float64 vector (Box tasks)."""
        return np.asarray(self.params, dtype=np.float64)

    @property
    def value(self) -> Any:
        """The discrete value of a Discrete task (``params[0]``)."""
        if len(self.params) != 1:
            raise TaskNotInSpace(f"task {self.id} has {len(self.params)} params; .value needs exactly one")
        return self.params[0]

    def to_dict(self) -> dict:
        """JSON-ready form (lists instead of tuples)."""
        return {
            "id": self.id,
            "params": list(self.params),
            "text": self.text,
            "parent_ids": list(self.parent_ids),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        """Inverse of `to_dict` (missing optional keys take their defaults)."""
        return cls(
            id=str(d["id"]),
            params=tuple(d.get("params", ())),
            text=d.get("text"),
            parent_ids=tuple(d.get("parent_ids", ())),
            origin=str(d.get("origin", "sampled")),
        )

    @staticmethod
    def from_text(
        text: str, *, parent_ids: Sequence[str] = (), origin: str = "generated", params: Sequence[Any] = ()
    ) -> Task:
        """A task described by text (with optional params): the id hashes both.

        Raises:
            InvalidArgument: ``text`` is not a string or cannot be stored as UTF-8 (a lone surrogate).
        """
        if not isinstance(text, str):
            raise InvalidArgument(f"Task.from_text(text): must be a string, got {type(text).__name__}")
        _check_encodable(text, "Task.from_text(text)")
        params = tuple(params)
        tid = hash_text(text + ("\x00" + repr(params) if params else ""))
        return Task(tid, params, text, tuple(parent_ids), origin)


_new_task = partial(tuple.__new__, Task)  # Task from one (id, params, text, parent_ids, origin) tuple


# ---------------------------------------------------------------------------- Outcome
@dataclass(frozen=True, slots=True)
class Outcome:
    """What one episode (or evaluation) on a task reports back.

    ``success`` is the task's own success criterion (``None`` where the task defines
    none); it is separate from how the episode ended (``terminated``/``truncated`` stay
    in ``info``). ``episode_id`` lets a service drop duplicates of the same episode.
    """

    task_id: str
    episode_return: float
    success: bool | None = None
    length: int | None = None
    student_id: str = "default"
    info: dict = field(default_factory=dict)
    t: float = field(default_factory=time.time)
    episode_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id:
            raise InvalidOutcome(f"Outcome.task_id must be a non-empty string, got {_clip(repr(self.task_id))}")
        r = self.episode_return
        try:
            if isinstance(r, (str, bytes)):
                raise TypeError
            r = float(r)
        except (TypeError, ValueError):
            raise InvalidOutcome(
                f"Outcome.episode_return must be a number, got {_clip(repr(r))} for task {self.task_id}"
            ) from None
        if not math.isfinite(r):
            what = "NaN" if math.isnan(r) else "infinite"
            raise InvalidOutcome(f"Outcome.episode_return is {what} for task {self.task_id}; report a finite number")
        object.__setattr__(self, "episode_return", r)

    def to_dict(self) -> dict:
        """JSON-ready form; `from_dict` inverts it."""
        return {
            "task_id": self.task_id,
            "episode_return": self.episode_return,
            "success": self.success,
            "length": self.length,
            "student_id": self.student_id,
            "info": dict(self.info),
            "t": self.t,
            "episode_id": self.episode_id,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Outcome:
        """Inverse of `to_dict`; every key but ``task_id`` and ``episode_return`` may be missing."""
        return cls(
            **{k: d[k] for k in ("task_id", "episode_return")},
            **{k: d[k] for k in ("success", "length", "student_id", "info", "t", "episode_id") if k in d},
        )


def outcome_list(outcomes: Any, where: str = "outcomes") -> Sequence[Outcome]:
    """``outcomes`` as a list or tuple of `Outcome`, else `InvalidArgument` naming ``where`` and the bad element.

    For every entry point that takes a batch (a teacher's ``update``, the service's
    ``report``): checked before anything is logged or counted, so a bad batch is refused
    whole. One C-level type scan: 100,000 outcomes cost ~1 ms.
    """
    if isinstance(outcomes, (str, bytes, dict)) or not isinstance(outcomes, Iterable):
        raise InvalidArgument(f"{where}: must be a sequence of Outcome, got {type(outcomes).__name__}")
    if not isinstance(outcomes, (list, tuple)):
        outcomes = list(outcomes)
    if set(map(type, outcomes)) - {Outcome}:
        for i, o in enumerate(outcomes):
            if not isinstance(o, Outcome):
                raise InvalidArgument(f"{where}[{i}]: must be an Outcome, got {type(o).__name__}")
    return outcomes


# ------------------------------------------------------------------------------ spaces
#: The most dimensions a `Box` space has (teachers fit models over them).
MAX_BOX_DIMS = 4096
#: The most values a `Discrete` space holds (it keeps one task per value: ~0.5 KB each).
MAX_DISCRETE_VALUES = 1_000_000


class TaskSpace(ABC):
    """A set of tasks: validates membership, samples uniformly, builds `Task` values."""

    kind: ClassVar[str]

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.kind

    @abstractmethod
    def validate(self, params: Any) -> Any:
        """Return the canonical form of ``params`` or raise `TaskNotInSpace` naming the value."""

    @abstractmethod
    def sample_uniform(self, rng: np.random.Generator, n: int) -> list[Task]:
        """``n`` tasks drawn uniformly (the teachers' bootstrap and random-ratio path)."""

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-ready description; `space_from_dict` inverts it."""

    @abstractmethod
    def contains(self, task: Task) -> bool:
        """Whether ``task`` belongs to this space."""

    def check_task(self, task: Task) -> Task:
        """Raise `TaskNotInSpace` unless ``task`` belongs here; return it otherwise."""
        if not self.contains(task):
            raise TaskNotInSpace(
                f"task {task.id} (params={task.params!r}, text={_clip(task.text)!r}) is not in {self!r}"
            )
        return task

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))


def _clip(text: str | None, n: int = 60) -> str | None:
    if text is None or len(text) <= n:
        return text
    return text[:n] + "..."


class Box(TaskSpace):
    """Continuous task parameters in ``[low, high]`` (inclusive), one name per dimension."""

    kind = "box"

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        names: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        try:
            lo = np.atleast_1d(np.asarray(low, dtype=np.float64)).copy()
            hi = np.atleast_1d(np.asarray(high, dtype=np.float64)).copy()
        except (TypeError, ValueError) as e:
            raise ConfigError(f"Box: low and high must be sequences of numbers ({e})") from None
        if lo.size > MAX_BOX_DIMS:
            raise ConfigError(f"Box: at most {MAX_BOX_DIMS} dimensions, got {lo.size}")
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ConfigError(
                f"Box: low and high must be 1-D of the same non-zero length, got shapes {lo.shape} and {hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ConfigError(f"Box: bounds must be finite, got low={lo.tolist()} high={hi.tolist()}")
        if np.any(hi < lo):
            bad = int(np.argmax(hi < lo))
            raise ConfigError(f"Box: high[{bad}]={hi[bad]} is below low[{bad}]={lo[bad]}")
        self.low, self.high = lo, hi
        self.low.setflags(write=False)
        self.high.setflags(write=False)
        self.names: tuple[str, ...] = tuple(names) if names is not None else tuple(f"x{i}" for i in range(lo.size))
        if len(self.names) != lo.size:
            raise ConfigError(f"Box: {len(self.names)} names for {lo.size} dimensions")
        with np.errstate(over="ignore"):  # a box wider than the largest double: sample_array raises
            width = hi - lo
        self._span = np.where(hi > lo, width, 1.0)
        self._width = width  # what numpy's uniform draws scale by (0 for a zero-width dimension)
        self._width_finite = bool(np.all(np.isfinite(width)))
        self._salt = 0xB0

    @property
    def dim(self) -> int:
        """Number of task parameters."""
        return int(self.low.size)

    @property
    def shape(self) -> tuple[int]:
        """``(dim,)``: the shape of one task's parameter vector."""
        return (self.dim,)

    def __repr__(self) -> str:
        return f"Box(low={self.low.tolist()}, high={self.high.tolist()}, names={list(self.names)})"

    def validate(self, params: Any) -> np.ndarray:
        """``params`` as a float64 vector; raises `TaskNotInSpace` naming a NaN or out-of-range parameter."""
        x = np.asarray(params, dtype=np.float64)
        if x.shape != (self.dim,):
            raise TaskNotInSpace(
                f"{self!r}: expected {self.dim} parameters {list(self.names)}, got shape "
                f"{x.shape} ({_clip(repr(params))})"
            )
        bad_nan = np.isnan(x)
        if bad_nan.any():
            i = int(np.argmax(bad_nan))
            raise TaskNotInSpace(f"{self!r}: parameter {self.names[i]!r} is NaN")
        out = (x < self.low) | (x > self.high)
        if out.any():
            i = int(np.argmax(out))
            raise TaskNotInSpace(
                f"{self!r}: parameter {self.names[i]!r}={float(x[i])!r} is outside [{self.low[i]}, {self.high[i]}]"
            )
        return x

    def validate_batch(self, params: np.ndarray) -> np.ndarray:
        """Vectorised `validate` for an ``(n, dim)`` array."""
        x = np.asarray(params, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise TaskNotInSpace(f"{self!r}: expected an (n, {self.dim}) array, got shape {x.shape}")
        bad = np.isnan(x) | (x < self.low) | (x > self.high)
        if bad.any():
            r, c = map(int, np.argwhere(bad)[0])
            raise TaskNotInSpace(
                f"{self!r}: row {r} parameter {self.names[c]!r}={float(x[r, c])!r} is outside "
                f"[{self.low[c]}, {self.high[c]}] (or NaN)"
            )
        return x

    def check_task(self, task: Task) -> Task:
        """Raise `TaskNotInSpace` naming the offending parameter and its range."""
        self.validate(task.params)
        return task

    def contains(self, task: Task) -> bool:
        """Whether ``task`` has ``dim`` params, all within the bounds (never raises, unlike `check_task`)."""
        if len(task.params) != self.dim:
            return False
        x = np.asarray(task.params, dtype=np.float64)
        return bool(np.all((x >= self.low) & (x <= self.high)))

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` clipped into ``[low, high]`` elementwise."""
        return np.clip(x, self.low, self.high)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Map parameters to ``[0, 1]^d`` (a zero-width dimension maps to 0)."""
        return (np.asarray(x, dtype=np.float64) - self.low) / self._span

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Inverse of `to_unit`: map points of ``[0, 1]^d`` back to task parameters."""
        return self.low + np.asarray(u, dtype=np.float64) * self._span

    def sample_array(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, dim)`` uniform parameters, the draws of ``rng.uniform(low, high, (n, dim))``.

        SPEEDUP: ``low + (high - low) * rng.random(...)`` is numpy's own formula for
        ``uniform``, so the values are the same bit for bit (tested), without its per-call
        argument checks: 19 -> 6 us for one task, 50 -> 26 us for 1,024.
        """
        if not self._width_finite:  # high - low overflows: numpy's uniform raises its own error
            return rng.uniform(self.low, self.high, size=(n, self.dim))
        return self.low + self._width * rng.random((n, self.dim))

    def ids_u64(self, params: np.ndarray) -> np.ndarray:
        """The ``uint64`` ids of the tasks with these ``(n, dim)`` parameters (`TaskArrays` ids)."""
        return hash_params_u64(params, self._salt)

    def sample_uniform(self, rng: np.random.Generator, n: int) -> list[Task]:
        """``n`` uniform tasks (origin ``"uniform"``; ids hashed in one vectorised call)."""
        return self.tasks(self.sample_array(rng, n), origin="uniform", validate=False)

    def task(
        self,
        params: Sequence[float] | np.ndarray,
        *,
        text: str | None = None,
        parent_ids: Sequence[str] = (),
        origin: str = "sampled",
    ) -> Task:
        """One validated task."""
        x = self.validate(params)
        return Task(hash_params(x, self._salt)[0], tuple(x.tolist()), text, tuple(parent_ids), origin)

    def tasks(
        self, params: np.ndarray, *, origin: str | Sequence[str] = "sampled", validate: bool = True
    ) -> list[Task]:
        """Tasks for each row of an ``(n, dim)`` array, ids hashed in one vectorised call.

        ``origin`` is one string for all rows or one per row.
        """
        x = self.validate_batch(params) if validate else np.asarray(params, dtype=np.float64)
        ids = hash_params(x, self._salt)
        origins = repeat(origin) if isinstance(origin, str) else origin
        # SPEEDUP: tuple.__new__ skips NamedTuple's keyword-handling __new__ (~2x for 1,024
        # tasks), and map/zip keep the loop in C
        rows = zip(*x.T.tolist()) if x.shape[1] else repeat((), x.shape[0])  # row tuples, no per-row lists
        return list(map(_new_task, zip(ids, rows, repeat(None), repeat(()), origins)))

    def to_dict(self) -> dict:
        """Bounds, dimension names and space name (`space_from_dict` inverts it)."""
        return {
            "kind": self.kind,
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "names": list(self.names),
            "name": self.name,
        }


class Discrete(TaskSpace):
    """A finite set of hashable task values (ints or strings), e.g. level seeds or minigames."""

    kind = "discrete"

    def __init__(self, values: Iterable[Hashable] | int, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(values, int) and not isinstance(values, bool) and values > MAX_DISCRETE_VALUES:
            raise ConfigError(f"Discrete: at most {MAX_DISCRETE_VALUES:,} values (one task each), got {values:,}")
        if isinstance(values, (str, bytes, bool)) or not isinstance(values, (int, Iterable)):
            raise ConfigError(f"Discrete: values must be a count or a list of ints/strings, got {values!r}")
        vals = list(range(values)) if isinstance(values, int) else list(values)
        if len(vals) > MAX_DISCRETE_VALUES:
            raise ConfigError(f"Discrete: at most {MAX_DISCRETE_VALUES:,} values (one task each), got {len(vals):,}")
        if not vals:
            raise ConfigError("Discrete: needs at least one value")
        for v in vals:
            if not isinstance(v, (int, str)) or isinstance(v, bool):
                raise ConfigError(f"Discrete: values must be ints or strings, got {v!r} ({type(v).__name__})")
        if len(set(vals)) != len(vals):
            raise ConfigError("Discrete: values must be unique")
        self.values: tuple = tuple(vals)
        self._index = {v: i for i, v in enumerate(self.values)}
        # The space name salts the ids, so level 17 of "coinrun" and of "bigfish" differ.
        salt = "" if self.name == self.kind else f"{self.name}\x00"
        self._tasks = [Task(hash_text(salt + repr(v), "d"), (v,), str(v), (), "uniform") for v in self.values]
        self._by_id = {t.id: i for i, t in enumerate(self._tasks)}
        self._ids_u64: np.ndarray | None = None  # built on first use (the array path)
        self._values_col: np.ndarray | list | None = None

    @property
    def n(self) -> int:
        """Number of values."""
        return len(self.values)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        head = list(self.values[:5])
        return f"Discrete({head}{'...' if self.n > 5 else ''}, n={self.n})"

    def validate(self, params: Any) -> Any:
        """The value itself (a 1-element tuple/list is unwrapped, numpy ints become ints).

        Raises:
            TaskNotInSpace: the value is not one of ``values``.
        """
        v = params[0] if isinstance(params, (tuple, list)) and len(params) == 1 else params
        if isinstance(v, np.integer):
            v = int(v)
        try:
            if v in self._index:
                return v
        except TypeError:
            pass
        raise TaskNotInSpace(f"{self!r}: value {_clip(repr(v))} is not one of the {self.n} values")

    def index(self, value_or_task: Any) -> int:
        """Position of a value (or a task of this space) in ``values``."""
        if isinstance(value_or_task, Task):
            i = self._by_id.get(value_or_task.id)
            if i is None:
                raise TaskNotInSpace(f"{self!r}: task {value_or_task.id} is not in this space")
            return i
        return self._index[self.validate(value_or_task)]

    def index_of_id(self, task_id: str) -> int | None:
        """Position of the task with this id in ``values``, or None if it is not one of this space's."""
        return self._by_id.get(task_id)

    def task(self, value: Any, *, origin: str = "sampled") -> Task:
        """The task of ``value`` (prebuilt, so cheap; ``origin`` only relabels it)."""
        t = self._tasks[self._index[self.validate(value)]]
        return t if origin == t.origin else t._replace(origin=origin)

    def task_at(self, index: int) -> Task:
        """The prebuilt task of ``values[index]``."""
        return self._tasks[index]

    @property
    def all_tasks(self) -> list[Task]:
        """Every task of the space, in ``values`` order (a new list)."""
        return list(self._tasks)

    def tasks_at(self, indices: Sequence[int] | np.ndarray, origin: str = "sampled") -> list[Task]:
        """The tasks at these positions in ``values``, labelled ``origin``."""
        ts = self._tasks
        return [ts[i]._replace(origin=origin) for i in np.asarray(indices).tolist()]

    @property
    def ids_u64(self) -> np.ndarray:
        """Every task's id as ``uint64``, in ``values`` order (read-only; the array path's ids)."""
        if self._ids_u64 is None:
            ids = np.array([int(t.id, 16) for t in self._tasks], dtype=np.uint64)
            ids.setflags(write=False)
            self._ids_u64 = ids
        return self._ids_u64

    def values_column(self, indices: np.ndarray) -> np.ndarray | list:
        """``values[indices]``: an ``int64`` array when every value is an int, else a list."""
        if self._values_col is None:
            if all(isinstance(v, int) for v in self.values) and all(-(2**63) <= v < 2**63 for v in self.values):
                ints = np.asarray(self.values, dtype=np.int64)
                ints.setflags(write=False)
                self._values_col = ints
            else:
                self._values_col = list(self.values)
        col = self._values_col
        if isinstance(col, np.ndarray):
            return col[indices]
        return [col[i] for i in np.asarray(indices).tolist()]

    def sample_uniform(self, rng: np.random.Generator, n: int) -> list[Task]:
        """``n`` values drawn uniformly, with replacement."""
        return self.tasks_at(rng.integers(0, self.n, size=n), origin="uniform")

    def check_task(self, task: Task) -> Task:
        """Raise `TaskNotInSpace` unless the task's id is one of this space's (a known value with a foreign id too)."""
        if task.id not in self._by_id:
            self.validate(task.params)  # names the value when it is not one of ours
            raise TaskNotInSpace(
                f"{self!r}: task {task.id} has value {task.params!r} but a different id; "
                "build tasks with space.task(value)"
            )
        return task

    def contains(self, task: Task) -> bool:
        """Whether the task's id is one of this space's (ids are salted with the space name)."""
        return task.id in self._by_id

    def to_dict(self) -> dict:
        """Values and space name (`space_from_dict` inverts it)."""
        return {"kind": self.kind, "values": list(self.values), "name": self.name}


class TextSpace(TaskSpace):
    """Open-ended tasks written as text; optionally seeded with an initial task list.

    Text is data, never code: it is length-checked and stored, never evaluated.
    """

    kind = "text"

    def __init__(self, seed_tasks: Sequence[str] = (), max_length: int = 4096, name: str | None = None) -> None:
        super().__init__(name)
        if not isinstance(max_length, (int, np.integer)) or isinstance(max_length, bool) or max_length < 1:
            raise ConfigError(f"TextSpace.max_length must be an int >= 1, got {_clip(repr(max_length))}")
        if isinstance(seed_tasks, (str, bytes)) or not isinstance(seed_tasks, Iterable):
            raise ConfigError(f"TextSpace.seed_tasks must be a list of task texts, got {_clip(repr(seed_tasks))}")
        self.max_length = int(max_length)
        self.seed_texts: tuple[str, ...] = ()  # validate() reprs the space
        texts = []
        for i, text in enumerate(seed_tasks):
            try:
                texts.append(self.validate(text))
            except TaskNotInSpace as e:
                raise ConfigError(f"TextSpace.seed_tasks[{i}]: {e}") from None
        self.seed_texts = tuple(texts)

    def __repr__(self) -> str:
        return f"TextSpace(n_seed={len(self.seed_texts)}, max_length={self.max_length})"

    def validate(self, params: Any) -> str:
        """The text itself.

        Raises:
            TaskNotInSpace: not a string, blank, or longer than ``max_length``.
        """
        if not isinstance(params, str):
            raise TaskNotInSpace(f"{self!r}: a task must be a string, got {type(params).__name__}")
        if not params.strip():
            raise TaskNotInSpace(f"{self!r}: a task text must not be empty")
        if len(params) > self.max_length:
            raise TaskNotInSpace(
                f"{self!r}: task text has {len(params)} characters, more than max_length={self.max_length}"
            )
        _check_encodable(params, f"{self!r}: task text", TaskNotInSpace)
        return params

    def task(self, text: str, *, parent_ids: Sequence[str] = (), origin: str = "generated") -> Task:
        """A validated text task (its id hashes the text)."""
        return Task.from_text(self.validate(text), parent_ids=parent_ids, origin=origin)

    def sample_uniform(self, rng: np.random.Generator, n: int) -> list[Task]:
        """``n`` seed texts drawn uniformly, with replacement; raises `TaskNotInSpace` without seed tasks."""
        if not self.seed_texts:
            raise TaskNotInSpace(f"{self!r}: has no seed tasks to sample uniformly from; pass seed_tasks=[...]")
        idx = rng.integers(0, len(self.seed_texts), size=n)
        return [self.task(self.seed_texts[i], origin="uniform") for i in idx.tolist()]

    def check_task(self, task: Task) -> Task:
        """Raise `TaskNotInSpace` unless the task's text is a valid text of this space."""
        self.validate(task.text)
        return task

    def contains(self, task: Task) -> bool:
        """Whether the task has a non-blank text of at most ``max_length`` characters."""
        return isinstance(task.text, str) and bool(task.text.strip()) and len(task.text) <= self.max_length

    def to_dict(self) -> dict:
        """Seed texts, maximum length and space name (`space_from_dict` inverts it)."""
        return {
            "kind": self.kind,
            "seed_tasks": list(self.seed_texts),
            "max_length": self.max_length,
            "name": self.name,
        }


class TaskArrays:
    """A batch of `Box` or `Discrete` tasks as columns: the array path, no `Task` built.

    Why: at batch 1,024 building ``Task`` tuples (and hex ids) costs more than drawing
    them. Teachers that support it (`BaseTeacher.supports_arrays`) hand out batches in this
    form; `to_tasks` gives exactly the tasks the object path would have built.

    Attributes:
        ids: ``uint64`` task ids (the bits of the 16-hex-digit `Task.id`).
        params: ``(n, dim)`` float64 parameters (`Box` spaces), else ``None``.
        indices: ``(n,)`` positions in ``Discrete.values`` (`Discrete` spaces), else ``None``.
        origin_codes: ``uint8`` codes into ``origin_names`` (one origin per row).
        origin_names: the distinct origins.
    """

    __slots__ = ("ids", "params", "indices", "origin_codes", "origin_names")

    def __init__(
        self,
        ids: np.ndarray,
        origin_codes: np.ndarray,
        origin_names: tuple[str, ...],
        *,
        params: np.ndarray | None = None,
        indices: np.ndarray | None = None,
    ) -> None:
        if (params is None) == (indices is None):
            raise InvalidArgument("TaskArrays: pass exactly one of params (Box) or indices (Discrete)")
        self.ids = ids
        self.params = params
        self.indices = indices
        self.origin_codes = origin_codes
        self.origin_names = tuple(origin_names)

    @classmethod
    def uniform_origin(
        cls, ids: np.ndarray, origin: str, *, params: np.ndarray | None = None, indices: np.ndarray | None = None
    ) -> TaskArrays:
        """A batch whose rows all share one origin."""
        return cls(ids, np.zeros(len(ids), dtype=np.uint8), (origin,), params=params, indices=indices)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        kind = "box" if self.params is not None else "discrete"
        return f"TaskArrays({kind}, n={len(self)}, origins={list(self.origin_names)})"

    @property
    def id_list(self) -> list[str]:
        """The ids as 16-hex-digit strings."""
        return ids_to_hex(self.ids)

    def origins(self) -> list[str]:
        """One origin string per row."""
        names = self.origin_names
        if len(names) == 1:
            return [names[0]] * len(self)
        return [names[c] for c in self.origin_codes.tolist()]

    def take(self, rows: np.ndarray) -> TaskArrays:
        """The rows ``rows`` (an index array or boolean mask), in that order."""
        return TaskArrays(
            self.ids[rows],
            self.origin_codes[rows],
            self.origin_names,
            params=None if self.params is None else self.params[rows],
            indices=None if self.indices is None else self.indices[rows],
        )

    @classmethod
    def concat(cls, parts: Sequence[TaskArrays]) -> TaskArrays:
        """The rows of ``parts`` one after another (origin codes re-mapped to one table)."""
        names: dict[str, int] = {}
        codes = []
        for p in parts:
            remap = np.asarray([names.setdefault(o, len(names)) for o in p.origin_names], dtype=np.uint8)
            codes.append(remap[p.origin_codes])
        box = parts[0].params is not None
        return cls(
            np.concatenate([p.ids for p in parts]),
            np.concatenate(codes),
            tuple(names),
            params=np.concatenate([p.params for p in parts if p.params is not None]) if box else None,
            indices=None if box else np.concatenate([p.indices for p in parts if p.indices is not None]),
        )

    def task(self, row: int, space: TaskSpace) -> Task:
        """Row ``row`` as the `Task` the object path builds."""
        origin = self.origin_names[int(self.origin_codes[row])]
        if self.indices is not None:
            t = space.task_at(int(self.indices[row]))  # type: ignore[attr-defined]  # Discrete only
            return t if t.origin == origin else t._replace(origin=origin)
        assert self.params is not None
        return Task(ids_to_hex(self.ids[row : row + 1])[0], tuple(self.params[row].tolist()), None, (), origin)

    def to_tasks(self, space: TaskSpace) -> list[Task]:
        """Every row as a `Task` (the same values the object path builds)."""
        origins = self.origins()
        if self.indices is not None:
            prebuilt = space.all_tasks  # type: ignore[attr-defined]  # Discrete only
            out = []
            for i, o in zip(self.indices.tolist(), origins):
                t = prebuilt[i]
                out.append(t if t.origin == o else t._replace(origin=o))
            return out
        assert self.params is not None
        x = self.params
        rows = zip(*x.T.tolist()) if x.shape[1] else repeat((), x.shape[0])
        return list(map(_new_task, zip(self.id_list, rows, repeat(None), repeat(()), origins)))

    @classmethod
    def from_tasks(cls, tasks: Sequence[Task], space: TaskSpace) -> TaskArrays:
        """Columns of plain `Box` / `Discrete` tasks (no text or lineage beyond the space's own).

        Raises:
            InvalidArgument: a text space, a task with lineage or Box text, or a non-canonical id.
        """
        n = len(tasks)
        ids = np.array([_hex_to_int(t.id) for t in tasks], dtype=np.uint64)
        table: dict[str, int] = {}
        codes = np.asarray([table.setdefault(t.origin, len(table)) for t in tasks], dtype=np.uint8)
        names = tuple(table)
        if isinstance(space, Box):
            if any(t.text is not None or t.parent_ids for t in tasks):
                raise InvalidArgument("TaskArrays.from_tasks: Box tasks with text or lineage have no column form")
            params = np.asarray([t.params for t in tasks], dtype=np.float64).reshape(n, space.dim)
            return cls(ids, codes, names, params=params)
        if isinstance(space, Discrete):
            idx = [space.index_of_id(t.id) for t in tasks]
            if None in idx or any(t.parent_ids for t in tasks):
                raise InvalidArgument("TaskArrays.from_tasks: a task is not one of the Discrete space's own tasks")
            return cls(ids, codes, names, indices=np.asarray(idx, dtype=np.int64))
        raise InvalidArgument(f"TaskArrays: only Box and Discrete spaces have a column form, got {space!r}")


def _hex_to_int(task_id: str) -> int:
    try:
        value = int(task_id, 16)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value < 1 << 64 or f"{value:016x}" != task_id:  # exactly 16 lowercase hex digits
        raise InvalidArgument(f"TaskArrays: task id {task_id!r} is not 16 lowercase hex digits")
    return value


_SPACES: dict[str, type[TaskSpace]] = {"box": Box, "discrete": Discrete, "text": TextSpace}


def space_from_dict(d: dict) -> TaskSpace:
    """Inverse of ``TaskSpace.to_dict()``."""
    kind = d.get("kind")
    if kind == "box":
        return Box(d["low"], d["high"], names=d.get("names"), name=d.get("name"))
    if kind == "discrete":
        return Discrete(d["values"], name=d.get("name"))
    if kind == "text":
        return TextSpace(d.get("seed_tasks", ()), max_length=d.get("max_length", 4096), name=d.get("name"))
    raise ConfigError(f"space.kind: must be one of {sorted(_SPACES)}, got {kind!r}")
