"""The one numpy-aware JSON encoding for everything openended writes to disk.

Why one module: checkpoints, teacher ``state_dict()``s and the event log each had their
own encoder, with different rules for arrays and for values JSON cannot hold. This is
the single place where numpy meets JSON; it imports only the standard library and numpy,
so every layer (teachers included) may use it.

Three forms, each for a purpose:

**Tagged** (lossless, self-describing; checkpoints and teacher state). `dumps` / `dump`
(``arrays="tagged"``, the default) and `to_jsonable` write:

    numpy array       ``{"__ndarray__": a.tolist(), "dtype": str(a.dtype)}``, plus
                      ``"shape": [...]`` only for an empty array that is not 1-d (the
                      nested lists cannot carry that shape)
    numpy scalar      the Python number or bool (``x.item()``)
    set / frozenset   a list (tuples become lists by JSON's own rule)
    dict keys         ``str(key)`` (`to_jsonable` only: ``json`` refuses numpy keys)
    anything else     ``TypeError`` naming the type (`dumps`); unchanged (`to_jsonable`)

`loads` / `load` (via `decode_hook`) and `from_jsonable` turn back into an array every
dict whose keys are ``"__ndarray__"`` plus optionally ``"dtype"`` (default float64) and
``"shape"``. Exact: float64 values round-trip bit for bit (Python writes the shortest
repr that reads back to the same double), float32/float16 too (widened to doubles, then
narrowed back), every integer dtype including uint64 (JSON integers are unbounded in
Python), NaN and +-inf (as ``NaN`` / ``Infinity``), bools. A NumPy ``Generator``'s
``bit_generator.state`` is plain ints and strings (arrays, for MT19937, are tagged).

**Plain** (``arrays="plain"``; event-log lines, curriculum configs): arrays become plain
nested lists, readable by any JSON tool without a decoding step, at the price of the
dtype. With ``lenient=True`` a value JSON cannot hold becomes its ``repr`` instead of an
error: a report must never fail because an episode's ``info`` holds an odd object.

**Packed** (`pack_array` / `unpack_array`; the columns of logged task and outcome
batches, `openended.runtime.batch_json`): ``{"dtype": a.dtype.str, "shape": [...],
"b64": base64 of the raw bytes}`` (compact and fast) or ``{..., "list": a.tolist()}``
(readable). The schema says where arrays are, so there is no tag.

Compatibility: checkpoints (format 1), teacher states and event logs written before this
module existed use exactly these forms (``"shape"`` never appears in them), so they load
unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import IO, Any, Literal

import numpy as np

_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps writes a str with (ensure_ascii)

__all__ = [
    "ArrayForm",
    "ArrayEncoding",
    "NDARRAY_KEY",
    "encode_default",
    "decode_hook",
    "encode_array",
    "decode_array",
    "is_encoded_array",
    "to_jsonable",
    "from_jsonable",
    "dumps",
    "dump",
    "loads",
    "load",
    "plain_json",
    "PackedArray",
    "pack_array",
    "unpack_array",
    "dumps_fast",
]

ArrayForm = Literal["tagged", "plain"]
ArrayEncoding = Literal["b64", "list"]
NDARRAY_KEY = "__ndarray__"
_ARRAY_KEYS = frozenset({NDARRAY_KEY, "dtype", "shape"})
_SCALARS = (np.integer, np.floating, np.bool_)


# ------------------------------------------------------------------------ arrays
def encode_array(a: np.ndarray) -> dict[str, Any]:
    """The tagged form of one array."""
    out: dict[str, Any] = {NDARRAY_KEY: a.tolist(), "dtype": str(a.dtype)}
    if a.size == 0 and a.ndim != 1:
        out["shape"] = list(a.shape)
    return out


def is_encoded_array(d: dict) -> bool:
    """Whether ``d`` is the tagged form of an array."""
    return NDARRAY_KEY in d and d.keys() <= _ARRAY_KEYS


def decode_array(d: dict) -> np.ndarray:
    """Inverse of `encode_array` (``dtype`` defaults to float64, as older teacher states allow)."""
    a = np.asarray(d[NDARRAY_KEY], dtype=d.get("dtype", "float64"))
    return a.reshape(d["shape"]) if "shape" in d else a


# ----------------------------------------------------------- json hooks, dumps
def encode_default(x: Any) -> Any:
    """``json.dumps(default=...)`` for the tagged form.

    Arrays are tagged, numpy scalars and sets made plain; anything else raises
    ``TypeError`` naming it.
    """
    if isinstance(x, np.ndarray):
        return encode_array(x)
    return _plain_value(x, lenient=False)


def _encode_default_plain(x: Any) -> Any:
    return x.tolist() if isinstance(x, np.ndarray) else _plain_value(x, lenient=False)


def _encode_default_plain_lenient(x: Any) -> Any:
    return x.tolist() if isinstance(x, np.ndarray) else _plain_value(x, lenient=True)


def _encode_default_lenient(x: Any) -> Any:
    return encode_array(x) if isinstance(x, np.ndarray) else _plain_value(x, lenient=True)


def _plain_value(x: Any, *, lenient: bool) -> Any:
    if isinstance(x, _SCALARS):
        return x.item()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    if lenient:
        return repr(x)
    raise TypeError(f"cannot serialise {type(x).__name__} {x!r} as JSON; use JSON values, numpy arrays or scalars")


_DEFAULTS = {
    ("tagged", False): encode_default,
    ("tagged", True): _encode_default_lenient,
    ("plain", False): _encode_default_plain,
    ("plain", True): _encode_default_plain_lenient,
}


def decode_hook(d: dict) -> Any:
    """``json.loads(object_hook=...)``: a tagged array becomes an ``ndarray``."""
    return decode_array(d) if is_encoded_array(d) else d


def dumps(obj: Any, *, arrays: ArrayForm = "tagged", lenient: bool = False, **kwargs: Any) -> str:
    """``json.dumps`` with numpy support (``kwargs``: ``separators``, ``indent``, ...)."""
    return json.dumps(obj, default=_DEFAULTS[(arrays, lenient)], **kwargs)


def dump(obj: Any, fp: IO[str], *, arrays: ArrayForm = "tagged", lenient: bool = False, **kwargs: Any) -> None:
    """``json.dump`` with numpy support."""
    json.dump(obj, fp, default=_DEFAULTS[(arrays, lenient)], **kwargs)


def loads(s: str | bytes) -> Any:
    """``json.loads`` that turns tagged arrays back into arrays."""
    return json.loads(s, object_hook=decode_hook)


def load(fp: IO[str]) -> Any:
    """``json.load`` that turns tagged arrays back into arrays."""
    return json.load(fp, object_hook=decode_hook)


def plain_json(obj: Any) -> Any:
    """``obj`` as JSON reads it back in plain form.

    Tuples and sets become lists, numpy values Python ones, arrays nested lists: a value
    that compares equal after any JSON round trip. Raises ``TypeError`` for values JSON
    cannot hold.
    """
    return json.loads(dumps(obj, arrays="plain"))


# ------------------------------------------------------- recursive conversion
def to_jsonable(x: Any) -> Any:
    """A tree of JSON values (tagged arrays) from nested containers with numpy inside.

    Dicts, lists, tuples and sets are walked; dict keys become strings; other values pass
    through unchanged.
    """
    if isinstance(x, np.ndarray):
        return encode_array(x)
    if isinstance(x, _SCALARS):
        return x.item()
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in x]
    return x


def from_jsonable(x: Any) -> Any:
    """Inverse of `to_jsonable`: tagged arrays (at any depth) become arrays again."""
    if isinstance(x, dict):
        if is_encoded_array(x):
            return decode_array(x)
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_jsonable(v) for v in x]
    return x


# -------------------------------------------------------------- packed columns
class PackedArray(dict):
    """A `pack_array` column in base64: a plain dict that also knows its own JSON text.

    SPEEDUP: `dumps_fast` writes it by string assembly: its values (a dtype code, ints,
    base64) never need JSON escaping, and ``json.dumps`` spends ~70 us scanning the ~50 kB
    of base64 in a 1,024-outcome event for characters to escape.
    """

    __slots__ = ()

    def json_text(self) -> str:
        """The same JSON ``json.dumps(self, separators=(",", ":"))`` writes."""
        shape = ",".join(map(str, self["shape"]))
        return f'{{"dtype":"{self["dtype"]}","shape":[{shape}],"b64":"{self["b64"]}"}}'


def pack_array(a: np.ndarray, encoding: ArrayEncoding = "b64") -> dict[str, Any]:
    """One batch column: dtype, shape and the raw bytes in base64 (or a plain list)."""
    if encoding == "list":
        return {"dtype": a.dtype.str, "shape": list(a.shape), "list": a.tolist()}
    return PackedArray(
        dtype=a.dtype.str,
        shape=list(a.shape),
        b64=binascii.b2a_base64(np.ascontiguousarray(a).data, newline=False).decode("ascii"),
    )


def dumps_fast(obj: Any, *, lenient: bool = False) -> str:
    """Compact ``dumps(obj, arrays="plain")`` that writes `PackedArray` values by assembly.

    Dicts with string keys are walked, strings, ints and ``None`` written directly; any
    other value goes through `dumps`, so the text is exactly what ``dumps`` gives.
    """
    kind = type(obj)
    if kind is PackedArray:
        return obj.json_text()
    if kind is str:
        return _encode_str(obj)
    if kind is int:
        return int.__repr__(obj)
    if kind is float and math.isfinite(obj):  # what json writes for a finite float (an event's "t")
        return float.__repr__(obj)
    if obj is None:
        return "null"
    if kind is dict and all(type(k) is str for k in obj):
        return "{" + ",".join([f"{_encode_str(k)}:{dumps_fast(v, lenient=lenient)}" for k, v in obj.items()]) + "}"
    return dumps(obj, arrays="plain", lenient=lenient, separators=(",", ":"))


def unpack_array(d: dict) -> np.ndarray:
    """Inverse of `pack_array` (a native-byte-order, writable array)."""
    if "b64" in d:
        a = np.frombuffer(base64.b64decode(d["b64"]), dtype=np.dtype(d["dtype"]))
        return a.reshape(d["shape"]).astype(np.dtype(d["dtype"]).newbyteorder("="), copy=True)
    return np.asarray(d["list"], dtype=np.dtype(d["dtype"])).reshape(d["shape"])
