"""The shared numpy-aware JSON encoding: every type round-trips exactly, old files still read."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from openended import jsonio

FORMAT1 = Path(__file__).parent / "data" / "format1"

ARRAYS = {
    "float64 specials": np.array([0.1, -0.0, 1e-310, np.finfo(np.float64).max, np.inf, -np.inf, 1 / 3]),
    "float32": (np.arange(7, dtype=np.float32) / np.float32(7)).reshape(7),
    "float16": np.array([0.1, 65504.0, -2.5e-7], dtype=np.float16),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "int64 extremes": np.array([np.iinfo(np.int64).min, -1, np.iinfo(np.int64).max], dtype=np.int64),
    "uint64 extremes": np.array([0, 2**63 + 5, np.iinfo(np.uint64).max], dtype=np.uint64),
    "uint8 2-d": np.arange(12, dtype=np.uint8).reshape(3, 4),
    "int32 3-d": np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7,
    "bool": np.array([True, False, True]),
    "0-d": np.array(2.5),
    "empty 1-d": np.zeros(0, dtype=np.int16),
    "empty 2-d": np.zeros((0, 3)),
    "empty 3-d": np.zeros((2, 0, 4), dtype=np.float32),
    "unicode": np.array(["a", "ünï", "💃"]),
}


def assert_same_array(a: np.ndarray, b: np.ndarray) -> None:
    assert isinstance(b, np.ndarray)
    assert (a.dtype, a.shape) == (b.dtype, b.shape)
    assert a.tobytes() == b.tobytes()  # bit for bit (-0.0, subnormals, infinities)


@pytest.mark.parametrize("name", list(ARRAYS))
def test_arrays_round_trip_bit_for_bit_in_every_api(name):
    a = ARRAYS[name]
    assert_same_array(a, jsonio.loads(jsonio.dumps(a)))
    assert_same_array(a, jsonio.from_jsonable(json.loads(json.dumps(jsonio.to_jsonable(a)))))
    buf = io.StringIO()
    jsonio.dump({"x": [a]}, buf)
    buf.seek(0)
    assert_same_array(a, jsonio.load(buf)["x"][0])
    if a.dtype.kind != "U":
        for encoding in ("b64", "list"):
            assert_same_array(a, jsonio.unpack_array(json.loads(json.dumps(jsonio.pack_array(a, encoding)))))


def test_nan_round_trips_and_shape_appears_only_where_lists_lose_it():
    back = jsonio.loads(jsonio.dumps(np.array([np.nan, 1.0])))
    assert math.isnan(back[0]) and back[1] == 1.0
    assert "shape" not in jsonio.encode_array(np.zeros((2, 3)))  # nested lists carry it
    assert "shape" not in jsonio.encode_array(np.zeros(0))
    assert jsonio.encode_array(np.zeros((0, 3)))["shape"] == [0, 3]


def test_scalars_sets_tuples_and_keys_become_plain_json():
    value = {
        "f": np.float64(0.1),
        "f32": np.float32(0.5),
        "i": np.int64(-3),
        "u": np.uint64(2**64 - 1),
        "b": np.bool_(False),
        "t": (1, (2, 3)),
        "s": {7},
        "fs": frozenset({"x"}),
        "none": None,
        "nested": [{"deep": np.arange(2)}],
    }
    text = jsonio.dumps(value)
    back = jsonio.loads(text)
    assert back["f"] == 0.1 and type(back["f"]) is float
    assert back["f32"] == 0.5 and back["i"] == -3 and back["u"] == 2**64 - 1 and back["b"] is False
    assert back["t"] == [1, [2, 3]] and back["s"] == [7] and back["fs"] == ["x"] and back["none"] is None
    assert_same_array(np.arange(2), back["nested"][0]["deep"])
    tree = jsonio.to_jsonable({np.int64(1): np.float32(2.0), 3: {4}, "x": (np.int8(5),)})
    assert tree == {"1": 2.0, "3": [4], "x": [5]}
    assert json.loads(json.dumps(tree)) == tree  # plain JSON, no default= needed


def test_generator_state_round_trips_and_continues_the_stream():
    for bit_generator in (np.random.PCG64(7), np.random.MT19937(7), np.random.Philox(7)):
        rng = np.random.Generator(bit_generator)
        rng.random(3)
        text = json.dumps(jsonio.to_jsonable(rng.bit_generator.state))
        clone = np.random.Generator(type(bit_generator)())
        clone.bit_generator.state = jsonio.from_jsonable(json.loads(text))
        assert rng.random(5).tobytes() == clone.random(5).tobytes()
        again = np.random.Generator(type(bit_generator)())
        again.bit_generator.state = jsonio.loads(jsonio.dumps(rng.bit_generator.state))
        assert rng.random(5).tobytes() == again.random(5).tobytes()


def test_plain_form_writes_lists_and_lenient_writes_reprs():
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    event = {"a": np.arange(3, dtype=np.int16), "m": np.zeros((2, 1)), "x": np.float32(1.5), "o": Odd()}
    assert json.loads(jsonio.dumps(event, arrays="plain", lenient=True)) == {
        "a": [0, 1, 2],
        "m": [[0.0], [0.0]],
        "x": 1.5,
        "o": "<odd>",
    }
    with pytest.raises(TypeError, match=r"^cannot serialise Odd <odd> as JSON"):
        jsonio.dumps(event, arrays="plain")
    with pytest.raises(TypeError, match=r"^cannot serialise Odd <odd> as JSON"):
        jsonio.dumps({"o": Odd()})
    assert jsonio.plain_json({"t": (1, 2), "a": np.array([1.5])}) == {"t": [1, 2], "a": [1.5]}
    odd = Odd()
    assert jsonio.to_jsonable({"o": odd})["o"] is odd  # to_jsonable leaves what it does not know


def test_only_exact_array_tags_are_decoded():
    assert jsonio.loads('{"__ndarray__": [1, 2], "dtype": "int8", "note": "x"}') == {
        "__ndarray__": [1, 2],
        "dtype": "int8",
        "note": "x",
    }
    assert jsonio.loads('{"dtype": "int8"}') == {"dtype": "int8"}
    assert_same_array(np.array([1.0, 2.0]), jsonio.loads('{"__ndarray__": [1, 2]}'))  # dtype defaults to float64


def test_values_written_by_the_three_old_encoders_still_read():
    # service._json_default (checkpoints): tagged arrays, exactly two keys.
    old_checkpoint = '{"a":{"__ndarray__":[[1,2],[3,4]],"dtype":"int64"},"s":[3],"x":0.1}'
    back = jsonio.loads(old_checkpoint)
    assert_same_array(np.array([[1, 2], [3, 4]], dtype=np.int64), back["a"])
    assert back["s"] == [3] and back["x"] == 0.1
    # teachers' _to_jsonable (state dicts): the same tag, decoded by from_jsonable.
    state = json.loads((FORMAT1 / "teacher_state.json").read_text())
    algo = jsonio.from_jsonable(state["algo"])
    assert_same_array(np.array([0.1, 1.1, 2.1]) / 3.0, algo["returns"])
    assert_same_array(np.array([0, 2, 1], dtype=np.int64), algo["visits"])
    assert algo["table"].dtype == np.float32 and algo["table"].shape == (2, 3)
    assert algo["table"][1].tobytes() == (np.array([0, 2, 1]) / 7.0).astype(np.float32).tobytes()
    assert_same_array(np.array([2**63 + 5], dtype=np.uint64), algo["big"])
    assert (algo["total"], algo["n"], algo["seen"]) == (1.1, 3, True)
    assert state["rng"]["bit_generator"] == "PCG64"
    # eventlog._json_default (log lines): plain lists, read back as lists.
    line = (FORMAT1 / "events.jsonl").read_text().splitlines()[2]
    assert json.loads(line)["outcomes"]["infos"][0] == {"arr": [0, 1]}
    assert jsonio.dumps({"arr": np.arange(2)}, arrays="plain", lenient=True, separators=(",", ":")) in line


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((3, 2)),
        np.arange(5, dtype=np.uint64),
        np.zeros(0, np.int8),
        np.array(3.5),
        np.arange(6).reshape(2, 3)[:, ::2],
    ],
)
def test_dumps_fast_writes_the_text_dumps_writes(array):
    """Packed columns are assembled, not scanned: the line must still be what ``dumps`` gives."""
    packed = jsonio.pack_array(array)
    for event in (
        {"ev": "x", "t": 1.5, "cols": {"a": packed, "n": [1, 2], "s": 'é\u2028"q"'}, "k": None},
        {"ev": "x", 3: "an int key: the whole dict goes through dumps", "a": packed},
        {"nan": math.nan, "arr": np.arange(3)},
        {"t": 1796596496.493582, "tiny": 5e-324, "neg0": -0.0, "big": 1e300, "inf": -math.inf, "one": 1.0},
    ):
        assert jsonio.dumps_fast(event, lenient=True) == jsonio.dumps(
            event, arrays="plain", lenient=True, separators=(",", ":")
        )
    assert np.array_equal(jsonio.unpack_array(json.loads(packed.json_text())), array)
