"""JSON forms of `TaskBatch` and `OutcomeBatch`: how batches are written to the event log.

Why apart from `openended.runtime.codec`: the codec is the in-memory, cross-process form
(Ray pickles its columns, receivers cache task contents); this is the on-disk form, a
stable file format that the event log writes and replay and the dashboard read back.

Columns are packed arrays (`openended.jsonio.pack_array`): base64 of the raw bytes by
default, plain lists with ``"list"``. Ids travel as a ``uint64`` column when canonical
(``{"hex": [...]}`` in list form), as ``{"str": [...]}`` otherwise. Outcome infos are
``"infos"`` (a list of dicts, or null) or, when the batch holds them as `InfoColumns`,
``"info_columns"`` (one packed array per key; written since 2026-12-07; a key holding
dicts, a `MappingColumn`, as ``{"fields", "layouts", "codes", "values"}`` since
2026-12-07). A task batch is self-contained only if it was encoded with ``peer=None``.

Contents:
    task_batch_to_json / task_batch_from_json
    outcome_batch_to_json / outcome_batch_from_json
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from openended.jsonio import ArrayEncoding, pack_array, unpack_array
from openended.runtime.codec import OutcomeBatch, TaskBatch, hex_to_uint64, uint64_to_hex
from openended.runtime.info_columns import Column, InfoColumns, MappingColumn

__all__ = [
    "ArrayEncoding",
    "task_batch_to_json",
    "task_batch_from_json",
    "outcome_batch_to_json",
    "outcome_batch_from_json",
]


def _ids_to_json(col: np.ndarray | list, encoding: ArrayEncoding) -> Any:
    if isinstance(col, np.ndarray):
        return pack_array(col, encoding) if encoding == "b64" else {"hex": uint64_to_hex(col)}
    return {"str": list(col)}


def _ids_from_json(d: dict) -> np.ndarray | list:
    if "str" in d:
        return list(d["str"])
    if "hex" in d:
        packed = hex_to_uint64(d["hex"])
        return packed if packed is not None else list(d["hex"])
    return unpack_array(d).astype(np.uint64)


def task_batch_to_json(batch: TaskBatch, enc: ArrayEncoding = "b64") -> dict:
    """A JSON-ready dict (arrays as base64 or plain lists).

    Self-contained only if the batch was encoded with ``peer=None``.
    """
    d: dict[str, Any] = {
        "kind": batch.kind,
        "n": len(batch),
        "ids": _ids_to_json(batch.ids, enc),
        "origins": list(batch.origin_names),
        "origin_codes": pack_array(batch.origin_codes, enc),
    }
    if batch.kind == "box":
        assert isinstance(batch.params, np.ndarray)
        d["params"] = pack_array(batch.params, enc)
        if batch.extras:
            d["extras"] = [[r, t, list(p)] for r, t, p in batch.extras]
    elif batch.kind == "values":
        values = batch.params
        d["values"] = pack_array(values, enc) if isinstance(values, np.ndarray) else {"items": list(values or [])}
    else:
        assert batch.new_rows is not None
        d["new_rows"] = batch.new_rows.tolist()
        d["new_contents"] = [[list(p), t, list(par)] for p, t, par in batch.new_contents or []]
    return d


def task_batch_from_json(d: dict) -> TaskBatch:
    """Inverse of `task_batch_to_json`."""
    ids = _ids_from_json(d["ids"])
    codes = unpack_array(d["origin_codes"])
    names = tuple(d["origins"])
    if d["kind"] == "box":
        extras = tuple((int(r), t, tuple(p)) for r, t, p in d.get("extras", ()))
        return TaskBatch("box", ids, codes, names, params=unpack_array(d["params"]), extras=extras)
    if d["kind"] == "values":
        values = d["values"]
        return TaskBatch(
            "values", ids, codes, names, params=list(values["items"]) if "items" in values else unpack_array(values)
        )
    contents = [(tuple(p), t, tuple(par)) for p, t, par in d["new_contents"]]
    return TaskBatch(
        "table", ids, codes, names, new_rows=np.asarray(d["new_rows"], dtype=np.int32), new_contents=contents
    )


def outcome_batch_to_json(batch: OutcomeBatch, enc: ArrayEncoding = "b64") -> dict:
    """A JSON-ready dict of the outcome columns."""
    return {
        "n": len(batch),
        "task_ids": _ids_to_json(batch.task_ids, enc),
        "returns": pack_array(batch.returns, enc),
        "success": pack_array(batch.success, enc),
        "lengths": pack_array(batch.lengths, enc),
        "episode_ids": _ids_to_json(batch.episode_ids, enc),
        "students": list(batch.student_names),
        "student_codes": pack_array(batch.student_codes, enc),
        "t": pack_array(batch.t, enc),
        **_infos_to_json(batch.infos, enc),
    }


def _column_to_json(col: Column, enc: ArrayEncoding) -> dict[str, Any]:
    if isinstance(col, MappingColumn):
        return {
            "fields": list(col.fields),
            "layouts": [list(layout) for layout in col.layouts],
            "codes": pack_array(col.codes, enc),
            "values": pack_array(col.values, enc),
        }
    return pack_array(col, enc)


def _column_from_json(d: dict) -> Column:
    if "fields" in d:
        return MappingColumn(
            tuple(d["fields"]),
            unpack_array(d["values"]),
            tuple(tuple(layout) for layout in d["layouts"]),
            unpack_array(d["codes"]),
        )
    return unpack_array(d)


def _infos_to_json(infos: Sequence[dict] | None, enc: ArrayEncoding) -> dict[str, Any]:
    if isinstance(infos, InfoColumns):  # one packed column per key (`openended.runtime.info_columns`)
        return {"info_columns": {k: _column_to_json(c, enc) for k, c in zip(infos.keys, infos.columns)}}
    return {"infos": infos}


def _infos_from_json(d: dict) -> Sequence[dict] | None:
    cols = d.get("info_columns")
    if cols is None:
        return d.get("infos")
    return InfoColumns(tuple(cols), tuple(_column_from_json(c) for c in cols.values()))


def outcome_batch_from_json(d: dict) -> OutcomeBatch:
    """Inverse of `outcome_batch_to_json`."""
    return OutcomeBatch(
        task_ids=_ids_from_json(d["task_ids"]),
        returns=unpack_array(d["returns"]),
        success=unpack_array(d["success"]),
        lengths=unpack_array(d["lengths"]),
        episode_ids=_ids_from_json(d["episode_ids"]),
        student_codes=unpack_array(d["student_codes"]),
        student_names=tuple(d["students"]),
        t=unpack_array(d["t"]),
        infos=_infos_from_json(d),
    )
