"""The issued-task table: which tasks a teacher handed out, so late outcomes find their task.

Why its own module: `BaseTeacher` matches every outcome against it, on both the object
path (`Task` values) and the array path (`openended.tasks.TaskArrays`, where no `Task` is
built unless someone asks for one), and it has its own bounded, whole-batch FIFO rules.

Keys: a canonical id (16 lowercase hex digits, every id the spaces make) is its 64-bit
value in a compiled hash table (`openended.teachers.id_table.IdTable`); any other id (a
user's ``Task(id="level-3")``) is a key of a small ``dict``. Values, in both: a
*reference* ``slot << 32 | row``, the row of the batch (``slot``: its issue number modulo
2^31, so references stay ``int64`` however long a run) that issued the
id last. A batch is kept as it came: a `TaskArrays` (array path; a `Task` is built from
its row on demand) or a tuple of `Task` values (object path). A task issued on either
path is one entry.

Contents:
    IssuedTasks -- add batches, look ids up, evict whole batches, save and load.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from openended.tasks import Task, TaskArrays, TaskSpace, ids_from_hex
from openended.teachers.id_table import IdTable

__all__ = ["IssuedTasks", "Key", "id_key", "id_keys", "key_id"]

Key = int | str
_ROW_MASK = 0xFFFFFFFF
_SLOT_MASK = 0x7FFFFFFF  # a batch's number in references: its issue number modulo 2^31 (int64-safe)
_CANONICAL = re.compile("[0-9a-f]{16}")  # what `ids_from_hex` accepts, for one id


def id_keys(ids: Sequence[str]) -> list[Key]:
    """The table keys of these ids: canonical ids as ints, others as they are.

    SPEEDUP: only a 16-character id can be canonical. Named ids like an episode host's
    ``"<prefix>-<env>-<n>"`` are never 16 long as a rule, and are then kept in one C-level
    length check instead of a parse per id (~0.45 ms per 1,024 in a service report).
    """
    arr = ids_from_hex(ids)
    if arr is not None:
        return arr.tolist()
    return _mixed_keys(list(ids))


def _mixed_keys(ids: list[str]) -> list[Key]:
    """`id_keys` of ids that are not all canonical: only the 16-character ones are parsed."""
    if 16 not in set(map(len, filter(None, ids))):  # None (no id) and "" are never canonical
        return cast("list[Key]", ids)
    return [id_key(i) if i is not None and len(i) == 16 else i for i in ids]


def id_key(task_id: str) -> Key:
    """The table key of one id: a canonical (16-hex-digit) id as its ``uint64`` value, others as they are."""
    if isinstance(task_id, str) and _CANONICAL.fullmatch(task_id):
        return int(task_id, 16)
    return task_id


def key_id(key: Key) -> str:
    """Inverse of `id_key`: the id a key stands for."""
    return key if isinstance(key, str) else f"{key:016x}"


class _BatchKeys:
    """One batch's keys split by kind: canonical ids (and their rows) and named ids (and theirs)."""

    __slots__ = ("canonical", "rows", "names", "name_rows")
    canonical: np.ndarray
    rows: np.ndarray
    names: list[str]
    name_rows: list[int]

    def __init__(self, ids: Sequence[str]) -> None:
        arr = ids_from_hex(ids)
        if arr is not None:  # every id canonical: the common case
            self.canonical, self.rows = arr, np.arange(len(arr), dtype=np.int64)
            self.names, self.name_rows = [], []
            return
        self._split(_mixed_keys(list(ids)))

    @classmethod
    def of_mixed(cls, ids: list[str]) -> _BatchKeys:
        """The keys of ids already known not to be all canonical (no second parse)."""
        self = cls.__new__(cls)
        self._split(_mixed_keys(ids))
        return self

    def _split(self, keys: list[Key]) -> None:
        rows = [r for r, k in enumerate(keys) if type(k) is int]
        self.canonical = np.array([keys[r] for r in rows], dtype=np.uint64)
        self.rows = np.array(rows, dtype=np.int64)
        self.names = [k for k in keys if type(k) is str]
        self.name_rows = [r for r, k in enumerate(keys) if type(k) is str]

    @classmethod
    def of(cls, batch: TaskArrays | tuple[Task, ...]) -> _BatchKeys:
        """The keys of a stored batch (recomputed when needed: storing them costs the GC more)."""
        if not isinstance(batch, TaskArrays):
            return cls([t.id for t in batch])
        self = cls.__new__(cls)
        self.canonical, self.rows = batch.ids, np.arange(len(batch.ids), dtype=np.int64)
        self.names, self.name_rows = [], []
        return self


def _only_key(batch: TaskArrays | tuple[Task, ...]) -> Key:
    """The key of a one-task batch."""
    return int(batch.ids[0]) if isinstance(batch, TaskArrays) else id_key(batch[0].id)


class IssuedTasks:
    """Issued tasks for matching outcomes: whole batches, evicted oldest first past ``limit``.

    SPEEDUP: adding a batch only queues it; the index is built by the next lookup, where
    outcomes need it (``sample`` is on every env worker's critical path). Queued batches are
    indexed once they reach ``limit`` tasks, so at most twice that many are held. Indexing,
    looking up and evicting a batch of canonical ids are each one compiled loop
    (`IdTable`). An id issued again while still tracked (common for Discrete spaces, rare
    for Box ones) points at its newest batch, so evicting an older batch leaves it.
    """

    def __init__(self, space: TaskSpace, limit: int) -> None:
        self.space = space
        self.limit = int(limit)
        self.gen = 0
        self._table = IdTable()
        self._named: dict[str, int] = {}
        self._store: dict[int, TaskArrays | tuple[Task, ...]] = {}
        self._batches: deque[int] = deque()  # indexed batches' numbers, oldest first
        self._queued: list[tuple[int, tuple[Task, ...] | TaskArrays]] = []
        self._n_queued = 0

    def __len__(self) -> int:
        """Tasks held (indexed or queued)."""
        return self._n_indexed() + self._n_queued

    def _n_indexed(self) -> int:
        return len(self._table) + len(self._named)

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
        self._index(self._queued)
        self._queued = []
        self._n_queued = 0
        self._evict_over_limit()

    def _index(self, batches: list[tuple[int, TaskArrays | tuple[Task, ...]]]) -> None:
        """Add ``(gen, batch)`` pairs to the index, in order (a later issue of an id wins).

        SPEEDUP: one compiled insert for every batch's canonical ids. One call per batch
        cost ~10 us each, so indexing 32,768 tasks issued one at a time (a teacher loop's
        ``sample(1)``) took one unlucky call ~0.3 s, and 48-task client refills ~9 ms.
        """
        if len(batches) == 1 and len(batches[0][1]) == 1:  # SPEEDUP: a teacher loop's task, looked up at once
            self._index_single_task(*batches[0])
            return
        keys: list[np.ndarray] = []
        rows: list[np.ndarray | None] = []  # an object batch's canonical rows; None: every row (array batch)
        slots: list[int] = []
        for gen, batch in batches:
            slot = gen & _SLOT_MASK  # never shared by two held batches: far fewer than 2^31 are held
            if isinstance(batch, TaskArrays):
                keys.append(batch.ids)
                rows.append(None)
            else:
                batch_keys = _BatchKeys.of(batch)
                keys.append(batch_keys.canonical)
                rows.append(batch_keys.rows)
                base = slot << 32
                for name, row in zip(batch_keys.names, batch_keys.name_rows):
                    self._named[name] = base | row
            slots.append(slot)
            self._store[slot] = batch
            self._batches.append(gen)
        if len(keys) == 1:  # SPEEDUP: a lookup right after each sample (a teacher loop): no arrays built
            self._index_one(keys[0], rows[0], slots[0])
            return
        if not keys:
            return
        sizes = np.array([len(k) for k in keys], dtype=np.int64)
        refs = np.repeat(np.array(slots, dtype=np.int64) << 32, sizes)
        if all(r is None for r in rows):  # row = position within its batch
            refs += np.arange(len(refs), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        else:
            refs += np.concatenate([np.arange(len(k), dtype=np.int64) if r is None else r for k, r in zip(keys, rows)])
        self._table.insert(np.concatenate(keys), refs)

    def _index_one(self, keys: np.ndarray, rows: np.ndarray | None, slot: int) -> None:
        """One batch's canonical ids (its named ones are in already): no arrays merged."""
        if len(keys):
            self._table.insert(keys, (np.arange(len(keys), dtype=np.int64) if rows is None else rows) + (slot << 32))

    def _index_single_task(self, gen: int, batch: TaskArrays | tuple[Task, ...]) -> None:
        """A one-task batch: its key straight into the table (or the named ids), no arrays built."""
        slot = gen & _SLOT_MASK
        key = _only_key(batch)
        if isinstance(key, str):
            self._named[key] = slot << 32
        else:
            self._table.insert_one(key, slot << 32)
        self._store[slot] = batch
        self._batches.append(gen)

    def _evict_over_limit(self) -> None:
        """Evict the oldest whole batches until at most ``limit`` tasks are indexed (the newest batch stays).

        SPEEDUP: each round evicts, in one compiled call, the shortest run of oldest batches
        whose sizes cover the excess. A batch frees at most its size (an id issued again
        since stays), so no shorter run could have covered it; when ids issued again leave
        the table still over the limit, the next round goes on from there. The result is
        that of evicting one batch at a time.
        """
        excess = self._n_indexed() - self.limit
        while excess > 0 and len(self._batches) > 1:
            gens: list[int] = []
            covered = 0
            for gen in self._batches:
                if covered >= excess or len(gens) == len(self._batches) - 1:
                    break
                gens.append(gen)
                covered += len(self._store[gen & _SLOT_MASK])
            for _ in gens:
                self._batches.popleft()
            self._evict(gens)
            excess = self._n_indexed() - self.limit

    def _evict(self, gens: list[int]) -> None:
        """Forget these batches: each id unless a newer batch issued it again."""
        if len(gens) == 1 and len(self._store[gens[0] & _SLOT_MASK]) == 1:  # SPEEDUP: a teacher loop's task
            self._evict_single_task(gens[0])
            return
        keys: list[np.ndarray] = []
        slots: list[int] = []
        sizes: list[int] = []
        for gen in gens:
            slot = gen & _SLOT_MASK
            batch = self._store.pop(slot)
            if isinstance(batch, TaskArrays):
                keys.append(batch.ids)
            else:
                batch_keys = _BatchKeys.of(batch)
                keys.append(batch_keys.canonical)
                for name in batch_keys.names:
                    if self._named.get(name, -1) >> 32 == slot:  # else issued again since: it stays
                        del self._named[name]
            slots.append(slot)
            sizes.append(len(keys[-1]))
        if len(keys) == 1:
            self._table.remove_batch(keys[0], slots[0])
        elif keys:
            self._table.remove_batches(np.concatenate(keys), np.repeat(np.array(slots, dtype=np.int64), sizes))

    def _evict_single_task(self, gen: int) -> None:
        slot = gen & _SLOT_MASK
        key = _only_key(self._store.pop(slot))
        if not isinstance(key, str):
            self._table.remove_one(key, slot)
        elif self._named.get(key, -1) >> 32 == slot:  # else issued again since: it stays
            del self._named[key]

    # ----------------------------------------------------------------- lookups
    def find(self, task_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """One reference per id (``int64``; ``-1``: unknown); read them with `task` or `gather`."""
        if self._queued:
            self._index_queued()
        if isinstance(task_ids, np.ndarray) and task_ids.dtype.kind in "ui":
            return self._table.lookup(task_ids)
        ids = [str(i) for i in task_ids] if isinstance(task_ids, np.ndarray) else list(task_ids)
        if len(ids) == 1:  # SPEEDUP: one outcome (a teacher loop's update)
            key = id_key(ids[0])
            ref = self._table.lookup_one(key) if isinstance(key, int) else self._named.get(key, -1)
            return np.array([ref], dtype=np.int64)
        arr = ids_from_hex(ids)
        if arr is not None:
            return self._table.lookup(arr)
        keys = _BatchKeys.of_mixed(ids)
        out = np.full(len(ids), -1, dtype=np.int64)
        out[keys.rows] = self._table.lookup(keys.canonical)
        named = self._named
        for name, row in zip(keys.names, keys.name_rows):
            out[row] = named.get(name, -1)
        return out

    def get(self, task_id: str) -> Task | None:
        """The issued task with this id, or ``None``."""
        ref = int(self.find([task_id])[0])
        return None if ref < 0 else self.task(ref)

    def task(self, ref: int) -> Task:
        """A reference as a `Task` (an array-path row is built here)."""
        batch = self._store[ref >> 32]
        row = ref & _ROW_MASK
        if isinstance(batch, TaskArrays):
            return batch.task(row, self.space)
        return batch[row]

    def gather(self, refs: np.ndarray) -> TaskArrays:
        """Known references (no ``-1``) as one `TaskArrays`, in their order."""
        if len(refs) == 0:
            return TaskArrays.from_tasks([], self.space)
        gens, rows = refs >> 32, refs & _ROW_MASK
        distinct = [int(gens[0])] if (gens == gens[0]).all() else np.unique(gens).tolist()  # SPEEDUP: one batch
        batches = [self._store[g] for g in distinct]
        arrays = [b for b in batches if isinstance(b, TaskArrays)]
        if len(arrays) < len(batches):
            # Some tasks were sampled or registered as objects: their rows come from the tasks.
            return TaskArrays.from_tasks([self.task(r) for r in refs.tolist()], self.space)
        if len(arrays) == 1:  # the common case: the outcomes of one sampled batch
            return arrays[0].take(rows)
        parts, where = [], []
        for g, batch in zip(distinct, arrays):  # several sampled batches: one take each, then the input order
            at = np.flatnonzero(gens == g)
            parts.append(batch.take(rows[at]))
            where.append(at)
        return TaskArrays.concat(parts).take(np.argsort(np.concatenate(where), kind="stable"))

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[list[dict], list[list[Any]]]:
        """``(issued, issued_batches)`` as `BaseTeacher.state_dict` stores them.

        ``issued``: every tracked task's ``to_dict()``, batch by batch; ``issued_batches``:
        ``[gen, ids]`` per batch, each id listed only in the batch of its latest issue.
        """
        if self._queued:
            self._index_queued()
        issued: list[dict] = []
        batches: list[list[Any]] = []
        for gen in self._batches:
            slot = gen & _SLOT_MASK
            keys = _BatchKeys.of(self._store[slot])
            base = slot << 32
            latest = self._table.lookup(keys.canonical) == keys.rows + base  # rows this batch issued last
            named = [r for n, r in zip(keys.names, keys.name_rows) if self._named.get(n) == base | r]
            rows = keys.rows[latest].tolist() + named
            rows.sort()
            tasks = [self.task(base | r) for r in rows]
            issued.extend(t.to_dict() for t in tasks)
            batches.append([gen, [t.id for t in tasks]])
        return issued, batches

    def load(self, issued: list[dict], batches: list[Any] | None, gen: int) -> None:
        """Inverse of `state` (``batches=None``: a state from before batches were saved).

        A saved task listed in no batch joins the oldest one (only a hand-edited state has one).
        """
        tasks = {t.id: t for t in map(Task.from_dict, issued)}
        if batches is None:
            batches = [(0, list(tasks))]
        listed = [(int(g), [tasks[i] for i in ids if i in tasks]) for g, ids in batches]
        orphans = tasks.keys() - {t.id for _, group in listed for t in group}
        if orphans:
            gen0, first = listed[0] if listed else (0, [])
            listed[:1] = [(gen0, [t for i, t in tasks.items() if i in orphans] + first)]
        self._table, self._named, self._store, self._batches = IdTable(), {}, {}, deque()
        self._queued = []
        self._n_queued = 0
        self._index([(g, tuple(group)) for g, group in listed])
        self.gen = int(gen)
