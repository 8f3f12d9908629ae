"""Compact cross-process batches of tasks and outcomes.

Why: Ray pickles a list of 1,024 ``Task`` objects about 5x slower than one float array
(DESIGN, Runtime). So tasks and outcomes cross process boundaries as columns, and users
on both sides still see `Task` / `Outcome` values.

Contents:
    TaskBatch        -- ids as ``uint64``, Box params as one ``(n, d)`` float64 array,
                        origin codes; discrete/text tasks as ids plus only the task
                        contents the receiver has not cached yet.
    OutcomeBatch     -- outcome columns (task ids, returns, success, lengths, episode
                        ids, student codes, times, optional infos).
    TaskTable        -- the receiver's bounded LRU cache ``id -> task content``.
    PeerView         -- the sender's mirror of one receiver's `TaskTable`: which ids it
                        holds, so only new contents travel.
    encode_tasks / decode_tasks, encode_outcomes / decode_outcomes
    TaskColumns      -- tasks split into columns once, packed for several receivers
                        (the service's self-contained log copy and a client's batch).
    hex_to_uint64 / uint64_to_hex -- vectorised id conversions.
    CodecError, TaskCacheMiss

The JSON forms the event log writes are in `openended.runtime.batch_json`.

How the cache stays in step: the sender's `PeerView` and the receiver's `TaskTable`
have the same capacity and perform the same LRU operation for every row of every batch
(insert when content travels, touch when only the id travels), so the sender knows
exactly what the receiver holds. If they ever disagree (a receiver built with another
capacity, a lost reply), decoding raises `TaskCacheMiss` and the receiver asks for the
batch again with ``reset_peer=True`` (the sender forgets its view and sends everything).

Ids: task ids are 16 lowercase hex digits (64 bits), so they travel as ``uint64``. An
id that is not canonical (user-made ``Task(id="level-3")``) switches that batch's id
column to a plain list of strings: lossless, only slower.

Example:
    >>> from openended.tasks import Box
    >>> space = Box([0.0, 0.0], [1.0, 2.0])
    >>> tasks = [space.task([0.5, 1.0]), space.task([0.25, 0.5])]
    >>> batch = encode_tasks(tasks, "box")
    >>> batch.params.shape, batch.ids.dtype
    ((2, 2), dtype('uint64'))
    >>> decode_tasks(batch) == tasks
    True
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from itertools import chain, repeat
from operator import attrgetter
from typing import cast

import numpy as np

from openended.errors import Error
from openended.runtime.info_columns import InfoColumns
from openended.tasks import Discrete, Outcome, Task, TaskArrays, TaskSpace, ids_from_hex, ids_to_hex

__all__ = [
    "TaskBatch",
    "OutcomeBatch",
    "TaskTable",
    "PeerView",
    "CodecError",
    "TaskCacheMiss",
    "DEFAULT_TABLE_CAPACITY",
    "encode_tasks",
    "encode_task_arrays",
    "TaskColumns",
    "decode_tasks",
    "encode_outcomes",
    "concat_outcomes",
    "decode_outcomes",
    "check_finite_returns",
    "hex_to_uint64",
    "uint64_to_hex",
    "in_band",
    "IN_BAND_MAX_BYTES",
]

#: Capacity of both a receiver's `TaskTable` and the sender's `PeerView` of it.
DEFAULT_TABLE_CAPACITY = 65_536

Content = tuple  # (params: tuple, text: str | None, parent_ids: tuple[str, ...])
_new_task = partial(tuple.__new__, Task)
_OUTCOME_FIELDS = ("task_id", "episode_return", "success", "length", "student_id", "info", "t", "episode_id")


class CodecError(Error, ValueError):
    """A batch cannot be encoded or decoded (the message says which value and why)."""


class TaskCacheMiss(CodecError):
    """A batch refers to a task id the receiving `TaskTable` does not hold.

    Recover by asking the sender for the batch again with its view of this receiver
    reset (`TeacherServiceCore.sample(..., reset_peer=True)`); `TeacherClient` does so.
    """

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        head = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        super().__init__(
            f"{len(missing)} task id(s) not in the receiver's task table ({head}); "
            "request the batch again with reset_peer=True"
        )


# ---------------------------------------------------------------------------- ids
def hex_to_uint64(ids: Sequence[str | None]) -> np.ndarray | None:
    """``uint64`` array of canonical 16-lowercase-hex ids, or ``None`` if any id is not canonical.

    The same as `openended.tasks.ids_from_hex` (one join, one ``bytes.fromhex``, one
    ``frombuffer``: ~40 us for 1,024); the re-encode check makes decoding exact.
    """
    return ids_from_hex(ids)


def uint64_to_hex(arr: np.ndarray) -> list[str]:
    """Inverse of `hex_to_uint64`: a list of 16-hex-digit strings (`openended.tasks.ids_to_hex`)."""
    return ids_to_hex(arr)


def _encode_ids(ids: Sequence[str | None]) -> np.ndarray | list:
    arr = hex_to_uint64(ids)
    return arr if arr is not None else list(ids)


def _decode_ids(col: np.ndarray | list) -> list:
    return uint64_to_hex(col) if isinstance(col, np.ndarray) else list(col)


def _codes(values: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Categorical column: small integer codes plus the table of distinct names."""
    n = len(values)
    if n and values.count(values[0]) == n:  # SPEEDUP: the common single-value batch
        return np.zeros(n, dtype=np.uint8), (values[0],)
    table: dict[str, int] = {}
    codes = [table.setdefault(v, len(table)) for v in values]
    dtype = np.uint8 if len(table) <= 256 else np.uint32
    return np.asarray(codes, dtype=dtype), tuple(table)


# -------------------------------------------------------------------- pickling
IN_BAND_MAX_BYTES = 1 << 20
"""Arrays up to this size travel inside a batch's pickle (`in_band`); larger ones as Ray buffers."""


class _InBandArray:
    """Pickles a numpy array as ``(dtype, shape, bytes)`` inside the pickle stream.

    SPEEDUP: Ray sends each numpy array in a call's arguments or result as a separate
    out-of-band buffer, which costs more than the copy it saves for small arrays: measured
    here (one local Ray, 2 cores), a call carrying the seven columns of a 1,024-outcome
    batch took ~790 us as arrays and ~630 us as bytes; a 1-task reply ~700 vs ~630 us.
    The receiver gets an ordinary writable array (a ``bytearray`` travels, not ``bytes``).
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple:
        a = self.array
        return (_array_from_buffer, (bytearray(a.tobytes()), a.dtype.str, a.shape))


def _array_from_buffer(data: bytearray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)


def in_band(value: object) -> object:
    """``value``, wrapped to pickle in-band if it is a small plain numpy array (see `_InBandArray`)."""
    if type(value) is np.ndarray and value.dtype.kind not in "OV" and value.nbytes <= IN_BAND_MAX_BYTES:
        return _InBandArray(value)
    return value


# ----------------------------------------------------------------------- caches
class TaskTable:
    """Receiver-side cache ``task id -> (params, text, parent_ids)``, bounded LRU.

    One per receiving endpoint (a `TeacherClient`). Its capacity must equal the sender's
    `PeerView` capacity (both default to `DEFAULT_TABLE_CAPACITY`).
    """

    def __init__(self, capacity: int = DEFAULT_TABLE_CAPACITY) -> None:
        if capacity < 1:
            raise CodecError(f"TaskTable.capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._d: OrderedDict[str, Content] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._d

    def put(self, task_id: str, content: Content) -> None:
        """Cache ``content`` as most recently used, evicting the least recently used past capacity."""
        d = self._d
        d[task_id] = content
        d.move_to_end(task_id)
        if len(d) > self.capacity:
            d.popitem(last=False)

    def touch(self, task_id: str) -> Content | None:
        """The cached content (marked most recently used), or ``None`` if absent."""
        c = self._d.get(task_id)
        if c is not None:
            self._d.move_to_end(task_id)
        return c

    def clear(self) -> None:
        """Forget every cached task (its sender must then forget its `PeerView` too)."""
        self._d.clear()


class PeerView:
    """Sender-side mirror of one receiver's `TaskTable` (same capacity, same LRU moves)."""

    def __init__(self, capacity: int = DEFAULT_TABLE_CAPACITY) -> None:
        self.capacity = int(capacity)
        self._d: OrderedDict[str, Content] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def needs(self, task_id: str, content: Content) -> bool:
        """Record that the receiver sees ``task_id`` now; ``True`` if its content must travel."""
        d = self._d
        held = d.get(task_id)
        if held is not None and (held is content or held == content):
            d.move_to_end(task_id)
            return False
        d[task_id] = content
        d.move_to_end(task_id)
        if len(d) > self.capacity:
            d.popitem(last=False)
        return True

    def clear(self) -> None:
        """Forget the receiver's contents (after it asked with ``reset_peer=True``)."""
        self._d.clear()


# ---------------------------------------------------------------------- batches
class TaskBatch:
    """A batch of tasks in columns. Build with `encode_tasks`, read with `decode_tasks`.

    Attributes:
        kind: ``"box"`` (params travel as one array), ``"table"`` (ids + new contents) or
            ``"values"`` (a `Discrete` space's tasks as ids + their values: the array path,
            self-contained, no task cache involved).
        ids: ``uint64`` array (canonical ids) or a list of id strings.
        origin_codes: ``uint8`` codes into ``origin_names``.
        origin_names: the distinct origins of this batch.
        params: ``(n, d)`` float64 (box), the values (``"values"``: an ``int64`` array or a
            list of strings) or ``None``.
        extras: box rows with text or lineage: ``((row, text, parent_ids), ...)``.
        new_rows: ``int32`` rows whose content travels (table), else ``None``.
        new_contents: their ``(params, text, parent_ids)`` tuples, in ``new_rows`` order.
    """

    __slots__ = ("kind", "ids", "origin_codes", "origin_names", "params", "extras", "new_rows", "new_contents")

    def __init__(
        self,
        kind: str,
        ids: np.ndarray | list,
        origin_codes: np.ndarray,
        origin_names: tuple[str, ...],
        params: np.ndarray | list | None = None,
        extras: tuple = (),
        new_rows: np.ndarray | None = None,
        new_contents: list | None = None,
    ) -> None:
        self.kind = kind
        self.ids = ids
        self.origin_codes = origin_codes
        self.origin_names = origin_names
        self.params = params
        self.extras = extras
        self.new_rows = new_rows
        self.new_contents = new_contents

    def __reduce__(self) -> tuple:  # SPEEDUP: pickles as a plain tuple of fields, arrays in-band
        return (TaskBatch, tuple(in_band(getattr(self, k)) for k in self.__slots__))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def id_list(self) -> list[str]:
        """Task ids as strings (without building `Task` values)."""
        return _decode_ids(self.ids)

    def __repr__(self) -> str:
        shipped = "" if self.new_rows is None else f", contents={len(self.new_rows)}"
        return f"TaskBatch(kind={self.kind!r}, n={len(self)}{shipped})"


def encode_tasks(tasks: Sequence[Task], kind: str, peer: PeerView | None = None) -> TaskBatch:
    """Pack tasks for another process.

    Args:
        tasks: the tasks, in order.
        kind: the space kind. ``"box"`` sends params as one array; any other kind
            (``"discrete"``, ``"text"``) sends ids plus contents the receiver lacks.
        peer: the sender's view of the receiver's `TaskTable`. ``None`` makes the batch
            self-contained (each distinct content travels once), as the event log needs.
    """
    return TaskColumns(tasks, kind).batch(peer)


def encode_task_arrays(tasks: TaskArrays, space: TaskSpace) -> TaskBatch:
    """Pack a `TaskArrays` batch (the array path): no `Task` is built on either side of this call.

    Box batches are the same ``"box"`` batch `encode_tasks` makes from the same tasks; a
    `Discrete` batch becomes a self-contained ``"values"`` batch (ids + each row's value),
    which decodes to exactly the space's own tasks.
    """
    if tasks.params is not None:
        return TaskBatch("box", tasks.ids, tasks.origin_codes, tasks.origin_names, params=tasks.params)
    if not isinstance(space, Discrete) or tasks.indices is None:
        raise CodecError(f"encode_task_arrays: a batch of indices needs a Discrete space, got {space!r}")
    return TaskBatch(
        "values", tasks.ids, tasks.origin_codes, tasks.origin_names, params=space.values_column(tasks.indices)
    )


class TaskColumns:
    """Tasks split into columns once; `batch` packs them for any receiver.

    Why: the service logs every sampled batch self-contained *and* sends it to a client
    that caches task contents. Both batches come from these columns, so the tasks are
    transposed, their ids packed, origins coded and contents built once; only the choice
    of which contents travel differs. The two batches share the id and origin arrays.
    """

    __slots__ = ("kind", "_ids", "_contents", "_id_col", "_origin_codes", "_origin_names", "_self_contained")

    def __init__(self, tasks: Sequence[Task], kind: str) -> None:
        self.kind = kind
        self._ids: tuple[str, ...] = ()  # table kinds only, like the contents
        self._contents: list[Content] = []
        self._self_contained: TaskBatch | None = None
        n = len(tasks)
        if n == 0:
            empty_ids, empty_codes = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint8)
            if kind == "box":
                self._self_contained = TaskBatch("box", empty_ids, empty_codes, (), params=np.zeros((0, 0)))
            else:
                self._self_contained = TaskBatch(
                    "table", empty_ids, empty_codes, (), new_rows=np.zeros(0, np.int32), new_contents=[]
                )
            return
        # SPEEDUP: one C-level transpose of the NamedTuples instead of five attribute passes.
        ids, params, texts, parents, origins = zip(*tasks)
        self._origin_codes, self._origin_names = _codes(origins)
        self._id_col = _encode_ids(ids)
        if kind == "box":
            self._self_contained = self._box_batch(tasks, params, texts, parents)
            return
        self._ids = ids
        self._contents = [(tuple(p), text, tuple(par)) for p, text, par in zip(params, texts, parents)]

    def _box_batch(self, tasks: Sequence[Task], params: tuple, texts: tuple, parents: tuple) -> TaskBatch:
        n = len(tasks)
        lengths = set(map(len, params))
        if len(lengths) != 1:
            raise CodecError(f"box tasks must all have the same number of params, got lengths {sorted(lengths)}")
        d = lengths.pop()
        try:
            arr = np.fromiter(chain.from_iterable(params), dtype=np.float64, count=n * d).reshape(n, d)
        except (TypeError, ValueError) as e:
            raise CodecError(f"box task params must be floats: {e}") from None
        extras: tuple = ()
        if texts.count(None) != n or parents.count(()) != n:
            extras = tuple(
                (i, t.text, tuple(t.parent_ids)) for i, t in enumerate(tasks) if t.text is not None or t.parent_ids
            )
        return TaskBatch("box", self._id_col, self._origin_codes, self._origin_names, params=arr, extras=extras)

    def batch(self, peer: PeerView | None = None) -> TaskBatch:
        """The batch for the receiver ``peer`` mirrors (its view is updated).

        With ``peer=None``, the self-contained batch (built once, then reused). Box batches
        carry every task's params, so they are always self-contained.
        """
        if peer is not None and self._ids:
            needs = peer.needs
            return self._table_batch([i for i, (tid, c) in enumerate(zip(self._ids, self._contents)) if needs(tid, c)])
        if self._self_contained is None:
            self._self_contained = self._table_batch(_first_appearances(self._ids, self._contents))
        return self._self_contained

    def _table_batch(self, rows: list[int]) -> TaskBatch:
        contents = self._contents
        return TaskBatch(
            "table",
            self._id_col,
            self._origin_codes,
            self._origin_names,
            new_rows=np.asarray(rows, dtype=np.int32),
            new_contents=[contents[i] for i in rows],
        )


def _first_appearances(ids: Sequence[str], contents: Sequence[Content]) -> list[int]:
    """Rows whose content a fresh receiver lacks.

    Each id's first row, and any row whose content differs from that id's previous one: the
    same rows as a `PeerView` large enough for the whole batch (nothing is evicted), without
    its LRU bookkeeping.
    """
    held: dict[str, Content] = {}
    rows: list[int] = []
    for i, (tid, c) in enumerate(zip(ids, contents)):
        before = held.get(tid)
        if before is None or (before is not c and before != c):
            held[tid] = c
            rows.append(i)
    return rows


def decode_tasks(batch: TaskBatch, table: TaskTable | None = None) -> list[Task]:
    """Unpack a `TaskBatch` into `Task` values (updates ``table`` for table batches).

    Raises:
        TaskCacheMiss: a table batch names an id that ``table`` does not hold.
    """
    ids = _decode_ids(batch.ids)
    names = batch.origin_names
    origins = repeat(names[0]) if len(names) == 1 else [names[c] for c in batch.origin_codes.tolist()]
    new = tuple.__new__  # SPEEDUP: skips NamedTuple's keyword handling (~2x for 1,024 tasks)
    if batch.kind == "box":
        assert isinstance(batch.params, np.ndarray)
        out = list(map(_new_task, zip(ids, map(tuple, batch.params.tolist()), repeat(None), repeat(()), origins)))
        for row, text, parents in batch.extras:
            out[row] = out[row]._replace(text=text, parent_ids=tuple(parents))
        return out
    if batch.kind == "values":  # a Discrete space's own tasks: (value,), str(value), no lineage
        assert batch.params is not None
        values = batch.params.tolist() if isinstance(batch.params, np.ndarray) else list(batch.params)
        return [new(Task, (tid, (v,), str(v), (), o)) for tid, v, o in zip(ids, values, origins)]
    if batch.kind != "table":
        raise CodecError(f"TaskBatch.kind must be 'box', 'table' or 'values', got {batch.kind!r}")
    if table is None:
        table = TaskTable(capacity=max(len(ids), 1))
    new_rows = batch.new_rows.tolist() if batch.new_rows is not None else []
    contents = batch.new_contents or []
    codes = batch.origin_codes.tolist()
    out = []
    missing: list[str] = []
    k = 0
    nxt = new_rows[0] if new_rows else -1
    for i, tid in enumerate(ids):
        if i == nxt:
            c = contents[k]
            c = (tuple(c[0]), c[1], tuple(c[2]))
            table.put(tid, c)
            k += 1
            nxt = new_rows[k] if k < len(new_rows) else -1
        else:
            c = table.touch(tid)
            if c is None:
                missing.append(tid)
                continue
        out.append(new(Task, (tid, c[0], c[1], c[2], names[codes[i]])))
    if missing:
        raise TaskCacheMiss(missing)
    return out


class OutcomeBatch:
    """Outcomes in columns. Build with `encode_outcomes`, read with `decode_outcomes`.

    Attributes:
        task_ids: ``uint64`` array (canonical ids) or list of strings.
        returns: float64 episode returns.
        success: int8, ``1`` / ``0`` / ``-1`` (``None``: the task defines no success).
        lengths: int32 episode lengths, ``-1`` for ``None``.
        episode_ids: ``uint64`` array (canonical) or a list of strings / ``None``.
        student_codes: codes into ``student_names``.
        student_names: the distinct student ids of this batch.
        t: float64 report times.
        infos: one dict per row, or ``None`` when every info is empty; an `InfoColumns`
            (which reads as that list) when every row has the same scalar fields.
    """

    __slots__ = (
        "task_ids",
        "returns",
        "success",
        "lengths",
        "episode_ids",
        "student_codes",
        "student_names",
        "t",
        "infos",
    )

    def __init__(
        self,
        task_ids: np.ndarray | list,
        returns: np.ndarray,
        success: np.ndarray,
        lengths: np.ndarray,
        episode_ids: np.ndarray | list,
        student_codes: np.ndarray,
        student_names: tuple[str, ...],
        t: np.ndarray,
        infos: Sequence[dict] | None = None,
    ) -> None:
        self.task_ids = task_ids
        self.returns = returns
        self.success = success
        self.lengths = lengths
        self.episode_ids = episode_ids
        self.student_codes = student_codes
        self.student_names = student_names
        self.t = t
        self.infos = infos

    def __reduce__(self) -> tuple:  # SPEEDUP: pickles as a plain tuple of fields, arrays in-band
        return (OutcomeBatch, tuple(in_band(getattr(self, k)) for k in self.__slots__))

    def __len__(self) -> int:
        return len(self.returns)

    @property
    def episode_id_list(self) -> list[str | None]:
        """The episode ids as strings (``None`` where an outcome had none)."""
        return _decode_ids(self.episode_ids)

    @property
    def task_id_list(self) -> list[str]:
        """The task ids as strings."""
        return _decode_ids(self.task_ids)

    def take(self, rows: Sequence[int] | np.ndarray) -> OutcomeBatch:
        """The sub-batch of ``rows`` (in that order)."""
        idx = np.asarray(rows, dtype=np.intp)

        def col(c: np.ndarray | list) -> np.ndarray | list:
            return c[idx] if isinstance(c, np.ndarray) else [c[i] for i in idx.tolist()]

        return OutcomeBatch(
            col(self.task_ids),
            self.returns[idx],
            self.success[idx],
            self.lengths[idx],
            col(self.episode_ids),
            self.student_codes[idx],
            self.student_names,
            self.t[idx],
            _take_infos(self.infos, idx),
        )

    def __repr__(self) -> str:
        return f"OutcomeBatch(n={len(self)}, students={list(self.student_names)})"


def _take_infos(infos: Sequence[dict] | None, idx: np.ndarray) -> Sequence[dict] | None:
    if infos is None:
        return None
    if isinstance(infos, InfoColumns):
        return infos.take(idx)
    return [infos[i] for i in idx.tolist()]


def _concat_infos(batches: Sequence[OutcomeBatch]) -> Sequence[dict] | None:
    """The infos of ``batches`` in order: columns if every part has the same columns, else dicts."""
    parts = [b.infos for b in batches]
    if all(p is None for p in parts):
        return None
    if all(isinstance(p, InfoColumns) for p in parts):
        merged = InfoColumns.concat(cast("list[InfoColumns]", parts))
        if merged is not None:
            return merged
    return [info for b in batches for info in (b.infos if b.infos is not None else [{}] * len(b))]


def _encode_infos(infos: list[dict]) -> Sequence[dict] | None:
    """``None`` if every info is empty; columns if they share scalar fields (`InfoColumns`); else copies."""
    if not any(infos):
        return None
    return InfoColumns.of(infos) or [dict(i) for i in infos]


def concat_outcomes(batches: Sequence[OutcomeBatch]) -> OutcomeBatch:
    """One batch with the rows of ``batches`` in order (their student tables merged).

    Why: the service applies reports that queued up behind one another as one update
    (`openended.runtime.report_queue`). An id column stays ``uint64`` when every batch has
    it so; otherwise the merged column is the id strings.
    """
    if len(batches) == 1:
        return batches[0]

    def ids(cols: list[np.ndarray | list]) -> np.ndarray | list:
        if all(isinstance(c, np.ndarray) for c in cols):
            return np.concatenate(cols)
        return [x for c in cols for x in _decode_ids(c)]

    table: dict[str, int] = {}
    codes = []
    for b in batches:
        remap = np.asarray([table.setdefault(name, len(table)) for name in b.student_names], dtype=np.uint32)
        codes.append(remap[b.student_codes])
    return OutcomeBatch(
        task_ids=ids([b.task_ids for b in batches]),
        returns=np.concatenate([b.returns for b in batches]),
        success=np.concatenate([b.success for b in batches]),
        lengths=np.concatenate([b.lengths for b in batches]),
        episode_ids=ids([b.episode_ids for b in batches]),
        student_codes=np.concatenate(codes).astype(np.uint8 if len(table) <= 256 else np.uint32),
        student_names=tuple(table),
        t=np.concatenate([b.t for b in batches]),
        infos=_concat_infos(batches),
    )


def encode_outcomes(outcomes: Sequence[Outcome]) -> OutcomeBatch:
    """Pack outcomes as columns (task ids are never changed)."""
    n = len(outcomes)
    # SPEEDUP: attrgetter over slots is a C-level pass per column.
    (task_ids, returns, success, lengths, students, infos, ts, episode_ids) = (
        list(map(attrgetter(f), outcomes)) for f in _OUTCOME_FIELDS
    )
    if success.count(None) == n:
        succ = np.full(n, -1, dtype=np.int8)
    else:
        succ = np.fromiter((-1 if s is None else (1 if s else 0) for s in success), dtype=np.int8, count=n)
    if lengths.count(None) == n:
        lens = np.full(n, -1, dtype=np.int32)
    else:
        if any(x is not None and x < 0 for x in lengths):
            bad = next(x for x in lengths if x is not None and x < 0)
            raise CodecError(f"Outcome.length must be >= 0 or None, got {bad}")
        try:
            lens = np.fromiter((-1 if x is None else x for x in lengths), dtype=np.int32, count=n)
        except OverflowError as e:
            raise CodecError(f"Outcome.length does not fit in int32: {e}") from None
    codes, names = _codes(students)
    return OutcomeBatch(
        task_ids=_encode_ids(task_ids),
        returns=np.array(returns, dtype=np.float64),
        success=succ,
        lengths=lens,
        episode_ids=_encode_ids(episode_ids),
        student_codes=codes,
        student_names=names,
        t=np.array(ts, dtype=np.float64),
        infos=_encode_infos(infos),
    )


# SPEEDUP: decoded outcomes were validated when they were built on the sending side, so
# they are rebuilt through the slot descriptors without re-running __post_init__ (~1.1 ms
# instead of ~2.9 ms per 1,024). Guarded: if Outcome's fields ever change shape, the
# normal constructor is used.
_SETTERS = (
    tuple(getattr(Outcome, f).__set__ for f in _OUTCOME_FIELDS)
    if tuple(f.name for f in dataclasses.fields(Outcome)) == _OUTCOME_FIELDS and "__slots__" in Outcome.__dict__
    else None
)


def check_finite_returns(batch: OutcomeBatch) -> None:
    """Raise `CodecError` naming the first non-finite return (a batch is built without `Outcome`'s checks)."""
    if not np.isfinite(batch.returns).all():
        i = int(np.argmin(np.isfinite(batch.returns)))
        raise CodecError(f"OutcomeBatch.returns[{i}] is {batch.returns[i]}; episode returns must be finite")


def decode_outcomes(batch: OutcomeBatch) -> list[Outcome]:
    """Unpack an `OutcomeBatch` into `Outcome` values."""
    n = len(batch)
    check_finite_returns(batch)
    task_ids = _decode_ids(batch.task_ids)
    eps = _decode_ids(batch.episode_ids)
    names = batch.student_names
    students = repeat(names[0]) if len(names) == 1 else [names[c] for c in batch.student_codes.tolist()]
    succ = [None if s < 0 else s == 1 for s in batch.success.tolist()]
    lens = [None if x < 0 else x for x in batch.lengths.tolist()]
    if isinstance(batch.infos, InfoColumns):
        infos = list(batch.infos)  # fresh dicts already
    elif batch.infos is not None:
        infos = [dict(i) if i else {} for i in batch.infos]
    else:
        infos = [{} for _ in range(n)]
    rows = zip(task_ids, batch.returns.tolist(), succ, lens, students, infos, batch.t.tolist(), eps)
    if _SETTERS is None:  # pragma: no cover - only if Outcome changes shape
        return [Outcome(*row) for row in rows]
    s0, s1, s2, s3, s4, s5, s6, s7 = _SETTERS
    new = object.__new__
    out = []
    for a, b, c, d, e, f, g, h in rows:
        o = new(Outcome)
        s0(o, a)
        s1(o, b)
        s2(o, c)
        s3(o, d)
        s4(o, e)
        s5(o, f)
        s6(o, g)
        s7(o, h)
        out.append(o)
    return out
