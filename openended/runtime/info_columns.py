"""Outcome infos as columns, when every row has the same fields of scalars (or of dicts of scalars).

Why: every outcome an env host reports carries ``info={"terminated": ...}``. Kept as a
list of 1,024 dicts, a report's infos cost the client ~0.13 ms to pickle, the service
~0.24 ms to unpickle and ~0.42 ms to write to the event log as JSON: more than the rest
of the report together (2 cores, AVX2 EPYC). When every info has the same string keys and
each key one scalar type (``bool``, ``int`` within int64, finite ``float``), an
`OutcomeBatch` keeps one array per key instead. It reads as the list of dicts it replaces
(indexing and iteration give fresh dicts of plain Python values), pickles as raw bytes
and is logged as packed arrays (``"info_columns"``; `openended.runtime.batch_json`).

A key whose every value is a dict of scalars of one type (a team episode's
``info["agent_returns"]``: ``{agent_id: return}``) becomes a `MappingColumn`: one ``(n,
fields)`` array and, per row, which fields it has in which order, so teams of different sizes
share a column and each dict comes back with its own keys in its own order. Kept as dicts,
such infos made a team host's 1,024-outcome report cost the service ~5x the CPU of a
single-agent host's (`benchmarks/recorded_traffic.py`). Anything else (lists, strings,
missing keys, NaN) stays a list of dicts.

Example:
    >>> cols = InfoColumns.of([{"terminated": True}, {"terminated": False}])
    >>> list(cols), cols.take(np.array([1]))[0]
    ([{'terminated': True}, {'terminated': False}], {'terminated': False})
    >>> InfoColumns.of([{"terminated": True}, {"terminated": 1}]) is None  # one type per key
    True
    >>> teams = InfoColumns.of([{"agent_returns": {"a": 1.0, "b": 2.0}}, {"agent_returns": {"a": 0.5}}])
    >>> teams.columns[0], teams[1]
    (MappingColumn(n=2, fields=['a', 'b'], layouts=2), {'agent_returns': {'a': 0.5}})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any, overload

import numpy as np

__all__ = ["InfoColumns", "MappingColumn"]

_DTYPES: dict[type, type] = {bool: np.bool_, int: np.int64, float: np.float64}
_MAX_LAYOUTS = 256  # distinct key orders one mapping column holds (uint8 codes); more: dicts


def _scalar_array(values: list) -> np.ndarray | None:
    """``values`` as one array if they are all one scalar type (bool, int64, finite float), else ``None``."""
    kinds = set(map(type, values))
    dtype = _DTYPES.get(kinds.pop()) if len(kinds) == 1 else None
    if dtype is None:
        return None
    try:
        col: np.ndarray = np.array(values, dtype=dtype)
    except OverflowError:  # an int beyond int64
        return None
    if dtype is np.float64 and not np.isfinite(col).all():
        return None
    return col


def _dicts(keys: tuple[str, ...], rows: Iterable[Sequence[Any]]) -> list[dict]:
    """``[dict(zip(keys, row)) for row in rows]``, by C-level passes."""
    return list(map(dict, map(zip, repeat(keys), rows)))


class MappingColumn:
    """One info key whose values are dicts of scalars: ``values[row, field]`` plus each row's key order.

    ``fields``: every key seen, in first-seen order; ``layouts``: the distinct key orders, as
    indices into ``fields``; ``codes``: each row's layout (``uint8``). A row reads back as a
    fresh dict with exactly its own keys, in its own order, of plain Python values.
    """

    __slots__ = ("fields", "values", "layouts", "codes")

    def __init__(
        self, fields: tuple[str, ...], values: np.ndarray, layouts: tuple[tuple[int, ...], ...], codes: np.ndarray
    ) -> None:
        if values.ndim != 2 or values.shape != (len(codes), len(fields)) or not layouts:
            raise ValueError(f"MappingColumn: need a (rows, {len(fields)}) value array and one code per row")
        self.fields = fields
        self.values = values
        self.layouts = layouts
        self.codes = codes

    @property
    def dtype(self) -> np.dtype:
        """The values' dtype (bool, int64 or float64): mapping columns concatenate only with their own kind."""
        return self.values.dtype

    @classmethod
    def of(cls, dicts: Sequence[Any]) -> MappingColumn | None:
        """The column of ``dicts``, or ``None`` unless each is a dict with str keys and every value one scalar type."""
        if not all(type(d) is dict for d in dicts):
            return None
        # SPEEDUP: C-level passes (map, dict.fromkeys, chain) instead of a Python loop per row.
        key_orders = list(map(tuple, dicts))
        layout_of = dict.fromkeys(key_orders)  # the distinct key orders, first seen first
        if len(layout_of) > _MAX_LAYOUTS:
            return None
        fields: dict[str, int] = {}
        for code, keys in enumerate(layout_of):
            if not all(type(k) is str for k in keys):
                return None
            layout_of[keys] = code
            for k in keys:
                fields.setdefault(k, len(fields))
        flat = list(chain.from_iterable(map(dict.values, dicts)))
        scalars = _scalar_array(flat) if flat else np.zeros(0)
        if scalars is None:
            return None
        layouts = tuple(tuple(fields[k] for k in keys) for keys in layout_of)
        codes = np.array(list(map(layout_of.__getitem__, key_orders)), dtype=np.uint8)
        if len(layouts) == 1:  # every row has the same keys, in the order the fields were named
            return cls(tuple(fields), scalars.reshape(len(codes), len(fields)), layouts, codes)
        values = np.zeros((len(codes), len(fields)), dtype=scalars.dtype)
        sizes = np.array([len(lay) for lay in layouts], dtype=np.intp)[codes]
        starts = np.cumsum(sizes) - sizes
        for code, layout in enumerate(layouts):
            rows = np.flatnonzero(codes == code)
            if layout and len(rows):
                values[rows[:, None], np.array(layout)] = scalars[starts[rows][:, None] + np.arange(len(layout))]
        return cls(tuple(fields), values, layouts, codes)

    def __len__(self) -> int:
        return len(self.codes)

    def row(self, i: int) -> dict:
        """Row ``i`` as a fresh dict, its own keys in its own order."""
        layout = self.layouts[self.codes[i]]
        return {self.fields[j]: self.values[i, j].item() for j in layout}

    def tolist(self) -> list[dict]:
        """Every row as a fresh dict (what ``ndarray.tolist`` is to a scalar column)."""
        # SPEEDUP: rows of one layout are built together by C-level map/zip, ~0.3 us a row.
        if len(self.layouts) == 1:
            return _dicts(tuple(self.fields[j] for j in self.layouts[0]), self.values[:, self.layouts[0]].tolist())
        out: list[Any] = [None] * len(self)
        for code, layout in enumerate(self.layouts):
            rows = np.flatnonzero(self.codes == code)
            names = tuple(self.fields[j] for j in layout)
            for i, d in zip(rows.tolist(), _dicts(names, self.values[rows][:, layout].tolist())):
                out[i] = d
        return out

    def take(self, idx: np.ndarray) -> MappingColumn:
        """The rows ``idx`` (an index array), in that order."""
        return MappingColumn(self.fields, self.values[idx], self.layouts, self.codes[idx])

    @staticmethod
    def concat(parts: Sequence[MappingColumn]) -> MappingColumn | None:
        """The rows of ``parts`` in order (fields and layouts merged), or ``None`` past `_MAX_LAYOUTS` layouts."""
        fields: dict[str, int] = {}
        layout_of: dict[tuple[int, ...], int] = {}
        blocks, codes = [], []
        for p in parts:
            where = np.array([fields.setdefault(f, len(fields)) for f in p.fields], dtype=np.intp)
            remap = [layout_of.setdefault(tuple(int(where[j]) for j in lay), len(layout_of)) for lay in p.layouts]
            if len(layout_of) > _MAX_LAYOUTS:
                return None
            blocks.append((where, p.values))
            codes.append(np.array(remap, dtype=np.uint8)[p.codes])
        # one dtype across parts: `InfoColumns.concat` checked it
        merged = np.zeros((sum(len(p) for p in parts), len(fields)), dtype=parts[0].dtype)
        start = 0
        for where, v in blocks:
            merged[start : start + len(v), where] = v
            start += len(v)
        return MappingColumn(tuple(fields), merged, tuple(layout_of), np.concatenate(codes))

    def __reduce__(self) -> tuple[Any, ...]:
        from openended.runtime.codec import in_band  # codec imports this module

        return (MappingColumn, (self.fields, in_band(self.values), self.layouts, in_band(self.codes)))

    def __repr__(self) -> str:
        return f"MappingColumn(n={len(self)}, fields={list(self.fields)}, layouts={len(self.layouts)})"


Column = np.ndarray | MappingColumn
"""One info key's values: a 1-D scalar array or a `MappingColumn`."""


def _column_of(values: list) -> Column | None:
    if type(values[0]) is dict:
        return MappingColumn.of(values)
    return _scalar_array(values)


def _concat_columns(cols: Sequence[Column]) -> Column | None:
    if isinstance(cols[0], MappingColumn):
        return MappingColumn.concat(cols)  # type: ignore[arg-type]  # same kinds: checked by the caller
    return np.concatenate(cols)  # type: ignore[arg-type]


class InfoColumns(Sequence[dict]):
    """One column per info key (a scalar array or a `MappingColumn`), all of one length.

    A read-only sequence of dicts: it stands for the list of infos it was built from.
    """

    __slots__ = ("keys", "columns")

    def __init__(self, keys: tuple[str, ...], columns: tuple[Column, ...]) -> None:
        if not keys or len(keys) != len(columns) or len({len(c) for c in columns}) != 1:
            raise ValueError(f"InfoColumns: need one column per key, all of one length (keys {keys})")
        self.keys = keys
        self.columns = columns

    @classmethod
    def of(cls, infos: Sequence[dict]) -> InfoColumns | None:
        """The columns of ``infos``, or ``None`` unless every row has the same keys.

        Each key's values must be of one scalar type, or each a dict of scalars of one type.
        """
        if not infos or not isinstance(first := infos[0], dict) or not first:
            return None
        keys = tuple(first)
        wanted = first.keys()
        if not all(isinstance(k, str) for k in keys):
            return None
        if not all(type(i) is dict and i.keys() == wanted for i in infos):
            return None
        columns = []
        for key in keys:
            col = _column_of([i[key] for i in infos])
            if col is None:
                return None
            columns.append(col)
        return cls(keys, tuple(columns))

    def __len__(self) -> int:
        return len(self.columns[0])

    @overload
    def __getitem__(self, i: int) -> dict: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict]: ...

    def __getitem__(self, i: int | slice) -> dict | list[dict]:
        if isinstance(i, slice):
            return list(self)[i]
        return {k: c.row(i) if isinstance(c, MappingColumn) else c[i].item() for k, c in zip(self.keys, self.columns)}

    def __iter__(self) -> Iterator[dict]:
        return iter(_dicts(self.keys, zip(*(c.tolist() for c in self.columns))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: unhashable, like the list it stands for

    def take(self, idx: np.ndarray) -> InfoColumns:
        """The rows ``idx`` (an index array), in that order."""
        return InfoColumns(self.keys, tuple(c.take(idx) for c in self.columns))  # ndarray.take, MappingColumn.take

    @staticmethod
    def concat(parts: Sequence[InfoColumns]) -> InfoColumns | None:
        """The rows of ``parts`` in order, or ``None`` unless they share keys and column kinds and dtypes."""
        first = parts[0]

        def shape(p: InfoColumns) -> list[tuple[str, type, np.dtype]]:
            return [(k, type(c), c.dtype) for k, c in zip(p.keys, p.columns)]

        if any(shape(p) != shape(first) for p in parts[1:]):
            return None
        columns = [_concat_columns(cols) for cols in zip(*(p.columns for p in parts))]
        if any(c is None for c in columns):
            return None
        return InfoColumns(first.keys, tuple(c for c in columns if c is not None))

    def __reduce__(self) -> tuple[Any, ...]:
        # SPEEDUP: the columns pickle in-band, as every batch column does (`codec.in_band`;
        # imported here because codec imports this module).
        from openended.runtime.codec import in_band

        return (InfoColumns, (self.keys, tuple(in_band(c) for c in self.columns)))  # a MappingColumn passes as is

    def __repr__(self) -> str:
        return f"InfoColumns(n={len(self)}, keys={list(self.keys)})"
