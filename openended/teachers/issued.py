"""The issued-task table: which tasks a teacher handed out, so late outcomes find their task.

Why its own module: `BaseTeacher` matches every outcome against it, on both the object
path (`Task` values) and the array path (`openended.tasks.TaskArrays`, where no `Task` is
built unless someone asks for one), and it has its own bounded, whole-batch FIFO rules.

Keys: a canonical id (16 lowercase hex digits, every id the spaces make) is keyed by its
64-bit value as a Python ``int``; any other id (a user's ``Task(id="level-3")``) by its
string. One dict holds both, so a task issued on either path is one entry. Values: the
`Task` (object batches) or ``gen << 32 | row`` into that batch's `TaskArrays`.

Contents:
    IssuedTasks -- add batches, look ids up, evict whole batches, save and load.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np

from openended.tasks import Task, TaskArrays, TaskSpace, ids_from_hex

__all__ = ["IssuedTasks", "Key", "id_key", "id_keys", "key_id"]

Key = int | str
_task_id = attrgetter("id")


def id_keys(ids: Sequence[str]) -> list[Key]:
    """The table keys of these ids: canonical ids as ints, others as they are."""
    arr = ids_from_hex(ids)
    if arr is not None:
        return arr.tolist()
    return [id_key(i) for i in ids]


def id_key(task_id: str) -> Key:
    """The table key of one id: a canonical (16-hex-digit) id as its ``uint64`` value, others as they are."""
    arr = ids_from_hex([task_id]) if isinstance(task_id, str) else None
    return int(arr[0]) if arr is not None else task_id


def key_id(key: Key) -> str:
    """Inverse of `id_key`: the id a key stands for."""
    return key if isinstance(key, str) else f"{key:016x}"


def _int_refs(values: list[Any]) -> np.ndarray | None:
    """``values`` as an int64 array when every one is an array-path reference, else None.

    SPEEDUP: the type check runs at C level (``map(type)``, a set) instead of a Python
    generator per value.
    """
    if not values or set(map(type, values)) != {int}:
        return None
    return np.array(values, dtype=np.int64)


class IssuedTasks:
    """Issued tasks for matching outcomes: whole batches, evicted oldest first past ``limit``.

    SPEEDUP: adding a batch only queues it; the index is built by the next lookup, where
    outcomes need it (``sample`` is on every env worker's critical path). Queued batches are
    indexed once they reach ``limit`` tasks, so at most twice that many are held.
    `_again` holds, only for keys issued again while still tracked (common for Discrete
    spaces, rare for Box ones), the batch number of their latest issue: eviction of an
    older batch skips them.
    """

    def __init__(self, space: TaskSpace, limit: int) -> None:
        self.space = space
        self.limit = int(limit)
        self.gen = 0
        self._index: dict[Key, Any] = {}
        self._again: dict[Key, int] = {}
        self._batches: deque[tuple[int, list[Key]]] = deque()
        self._arrays: dict[int, TaskArrays] = {}
        self._queued: list[tuple[int, tuple[Task, ...] | TaskArrays]] = []
        self._n_queued = 0

    def __len__(self) -> int:
        """Tasks held (indexed or queued)."""
        return len(self._index) + self._n_queued

    # ------------------------------------------------------------------ adding
    def add(self, batch: Sequence[Task] | TaskArrays) -> None:
        """Remember a batch (`Task` values are copied: the caller owns the list)."""
        self.gen += 1
        self._queued.append((self.gen, batch if isinstance(batch, TaskArrays) else tuple(batch)))
        self._n_queued += len(batch)
        if self._n_queued >= self.limit:
            self._index_queued()

    def _index_queued(self) -> None:
        """Index the queued batches in issue order, then evict whole batches over the limit."""
        index = self._index
        for gen, batch in self._queued:
            values: Any
            if isinstance(batch, TaskArrays):
                keys: list[Key] = batch.ids.tolist()
                values = range(gen << 32, (gen << 32) + len(keys))  # rows: a Task is built on demand
                self._arrays[gen] = batch
            else:
                keys = id_keys(list(map(_task_id, batch)))
                values = batch
            again = index.keys() & keys
            if again:
                self._again.update(dict.fromkeys(again, gen))
            index.update(zip(keys, values))
            self._batches.append((gen, keys))
        self._queued.clear()
        self._n_queued = 0
        while len(index) > self.limit and len(self._batches) > 1:
            self._evict(*self._batches.popleft())

    def _evict(self, gen: int, keys: list[Key]) -> None:
        latest = self._again
        recorded = latest.keys() & keys
        if recorded:
            newer = {k for k in recorded if latest[k] != gen}  # issued again since: they stay
            for k in recorded - newer:
                del latest[k]
            if newer:
                keys = [k for k in keys if k not in newer]
        deque(map(self._index.pop, keys, repeat(None)), maxlen=0)  # C-level loop
        self._arrays.pop(gen, None)  # keys issued again since point at their newer batch

    # ----------------------------------------------------------------- lookups
    def _indexed(self) -> dict[Key, Any]:
        if self._queued:
            self._index_queued()
        return self._index

    def find(self, task_ids: Sequence[str] | np.ndarray) -> list[Any]:
        """One table value per id (``None``: unknown); read them with `task` or `gather`."""
        keys = task_ids.tolist() if isinstance(task_ids, np.ndarray) else id_keys(list(task_ids))
        return list(map(self._indexed().get, keys))

    def get(self, task_id: str) -> Task | None:
        """The issued task with this id, or ``None``."""
        value = self._indexed().get(id_key(task_id))
        return None if value is None else self.task(value)

    def task(self, value: Any) -> Task:
        """A table value as a `Task` (an array-path row is built here)."""
        if type(value) is int:
            return self._arrays[value >> 32].task(value & 0xFFFFFFFF, self.space)
        return value  # a Task

    def gather(self, values: list[Any]) -> TaskArrays:
        """Known table values (no ``None``) as one `TaskArrays`, in their order."""
        ref = _int_refs(values)
        if ref is not None:
            gens, rows = ref >> 32, ref & 0xFFFFFFFF
            if (gens == gens[0]).all():  # SPEEDUP: the common case, one sampled batch (no np.unique)
                return self._arrays[int(gens[0])].take(rows)
            distinct = np.unique(gens).tolist()
            parts, where = [], []
            for g in distinct:  # outcomes of several sampled batches: one take per batch, then the input order
                at = np.flatnonzero(gens == g)
                parts.append(self._arrays[g].take(rows[at]))
                where.append(at)
            return TaskArrays.concat(parts).take(np.argsort(np.concatenate(where), kind="stable"))
        # Some tasks were sampled or registered as objects: their rows come from the tasks.
        return TaskArrays.from_tasks([self.task(v) for v in values], self.space)

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[list[dict], list[list[Any]]]:
        """``(issued, issued_batches)`` as `BaseTeacher.state_dict` stores them.

        ``issued``: every tracked task's ``to_dict()``, in index order; ``issued_batches``:
        ``[gen, ids]`` per batch, each id listed only in the batch of its latest issue.
        """
        index = self._indexed()
        issued = [self.task(v).to_dict() for v in index.values()]
        batches = [[g, [key_id(k) for k in keys if self._again.get(k, g) == g]] for g, keys in self._batches]
        return issued, batches

    def load(self, issued: list[dict], batches: list[Any] | None, gen: int) -> None:
        """Inverse of `state` (``batches=None``: a state from before batches were saved)."""
        tasks = [Task.from_dict(d) for d in issued]
        keys = id_keys([t.id for t in tasks])
        self._index = dict(zip(keys, tasks))
        self._again, self._batches, self._arrays = {}, deque(), {}
        self._queued.clear()
        self._n_queued = 0
        if batches is None:
            batches = [(0, [t.id for t in tasks])]
        for g, ids in batches:
            self._batches.append((int(g), id_keys(list(ids))))
        self.gen = int(gen)
