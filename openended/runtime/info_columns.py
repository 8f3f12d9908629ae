"""Outcome infos as columns, when every row has the same scalar fields.

Why: every outcome an env host reports carries ``info={"terminated": ...}``. Kept as a
list of 1,024 dicts, a report's infos cost the client ~0.13 ms to pickle, the service
~0.24 ms to unpickle and ~0.42 ms to write to the event log as JSON: more than the rest
of the report together (2 cores, AVX2 EPYC). When every info has the same string keys and
each key one scalar type (``bool``, ``int`` within int64, finite ``float``), an
`OutcomeBatch` keeps one array per key instead. It reads as the list of dicts it replaces
(indexing and iteration give fresh dicts of plain Python values), pickles as raw bytes
and is logged as packed arrays (``"info_columns"``; `openended.runtime.batch_json`).
Anything else (nested values, strings, missing keys, NaN) stays a list of dicts.

Example:
    >>> cols = InfoColumns.of([{"terminated": True}, {"terminated": False}])
    >>> list(cols), cols.take(np.array([1]))[0]
    ([{'terminated': True}, {'terminated': False}], {'terminated': False})
    >>> InfoColumns.of([{"terminated": True}, {"terminated": 1}]) is None  # one type per key
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

__all__ = ["InfoColumns"]

_DTYPES: dict[type, type] = {bool: np.bool_, int: np.int64, float: np.float64}


class InfoColumns(Sequence[dict]):
    """One array per info key, all of one length; a read-only sequence of dicts."""

    __slots__ = ("keys", "columns")

    def __init__(self, keys: tuple[str, ...], columns: tuple[np.ndarray, ...]) -> None:
        if not keys or len(keys) != len(columns) or len({len(c) for c in columns}) != 1:
            raise ValueError(f"InfoColumns: need one column per key, all of one length (keys {keys})")
        self.keys = keys
        self.columns = columns

    @classmethod
    def of(cls, infos: Sequence[dict]) -> InfoColumns | None:
        """The columns of ``infos``, or ``None`` unless every row has the same keys, one scalar type each."""
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
            values = [i[key] for i in infos]
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
        return {k: c[i].item() for k, c in zip(self.keys, self.columns)}

    def __iter__(self) -> Iterator[dict]:
        keys = self.keys
        for row in zip(*(c.tolist() for c in self.columns)):
            yield dict(zip(keys, row))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: unhashable, like the list it stands for

    def take(self, idx: np.ndarray) -> InfoColumns:
        """The rows ``idx`` (an index array), in that order."""
        return InfoColumns(self.keys, tuple(c[idx] for c in self.columns))

    @staticmethod
    def concat(parts: Sequence[InfoColumns]) -> InfoColumns | None:
        """The rows of ``parts`` in order, or ``None`` unless they share keys and dtypes."""
        first = parts[0]
        shape = [(k, c.dtype) for k, c in zip(first.keys, first.columns)]
        if any([(k, c.dtype) for k, c in zip(p.keys, p.columns)] != shape for p in parts[1:]):
            return None
        return InfoColumns(first.keys, tuple(np.concatenate(cols) for cols in zip(*(p.columns for p in parts))))

    def __reduce__(self) -> tuple[Any, ...]:
        # SPEEDUP: the columns pickle in-band, as every batch column does (`codec.in_band`;
        # imported here because codec imports this module).
        from openended.runtime.codec import in_band

        return (InfoColumns, (self.keys, tuple(in_band(c) for c in self.columns)))

    def __repr__(self) -> str:
        return f"InfoColumns(n={len(self)}, keys={list(self.keys)})"
