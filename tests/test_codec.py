"""Codec round trips: every task and outcome survives the compact form unchanged."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

from openended.runtime.batch_json import (
    outcome_batch_from_json,
    outcome_batch_to_json,
    task_batch_from_json,
    task_batch_to_json,
)
from openended.runtime.codec import (
    IN_BAND_MAX_BYTES,
    CodecError,
    OutcomeBatch,
    PeerView,
    TaskBatch,
    TaskCacheMiss,
    TaskColumns,
    TaskTable,
    decode_outcomes,
    decode_tasks,
    encode_outcomes,
    encode_tasks,
    hex_to_uint64,
    in_band,
    uint64_to_hex,
)
from openended.tasks import Box, Discrete, Outcome, Task, TextSpace

UNICODE_TEXTS = [
    "walk to the 🏁 flag",
    "收集木头 three times",
    "اجمع الخشب",  # right-to-left
    "e\u0301\u0301 combining marks",
    'tab\tnewline\nnul\x00 and "quotes" \\ backslash',
    "\U0010ffff max code point",
    "lone surrogate \ud800 half",  # not UTF-8 encodable: must still round-trip
    "x" * 3000,
]


def _via_pickle(obj):
    return pickle.loads(pickle.dumps(obj, protocol=5))


def _via_json(batch_json: dict) -> dict:
    return json.loads(json.dumps(batch_json))


# ------------------------------------------------------------------------ ids
def test_hex_uint64_round_trip_is_exact():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 2**63, size=1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    arr[:2] = [0, np.iinfo(np.uint64).max]
    ids = uint64_to_hex(arr)
    assert all(len(i) == 16 for i in ids)
    np.testing.assert_array_equal(hex_to_uint64(ids), arr)


@pytest.mark.parametrize(
    "bad",
    [
        ["ABCDEF0123456789"],
        ["abc"],
        ["0123456789abcdeg"],
        [None],
        ["0123 4567 89ab c"],
        ["0123456789abcdef", "level-3"],
    ],
    ids=["upper", "short", "nonhex", "none", "spaces", "mixed"],
)
def test_non_canonical_ids_are_not_packed(bad):
    assert hex_to_uint64(bad) is None


# ------------------------------------------------------------------ box tasks
def test_box_batch_round_trip_keeps_params_origins_and_lineage():
    space = Box([0.0, -1.0, 0.0], [1.0, 1.0, 5.0])
    rng = np.random.default_rng(1)
    tasks = space.sample_uniform(rng, 50) + space.tasks(space.sample_array(rng, 20), origin="sampled")
    tasks[3] = tasks[3]._replace(text="stumps ahead", parent_ids=(tasks[0].id, tasks[1].id), origin="mutated")
    batch = encode_tasks(tasks, "box")
    assert batch.ids.dtype == np.uint64 and batch.params.shape == (70, 3)
    assert batch.params.dtype == np.float64 and len(batch.extras) == 1
    assert set(batch.origin_names) == {"uniform", "sampled", "mutated"}
    assert decode_tasks(_via_pickle(batch)) == tasks
    assert decode_tasks(task_batch_from_json(_via_json(task_batch_to_json(batch)))) == tasks
    assert decode_tasks(task_batch_from_json(_via_json(task_batch_to_json(batch, "list")))) == tasks


def test_box_batch_carries_no_per_task_objects():
    """The pickle holds the raw arrays (8 B id + 8 B per param + 1 B origin) and a
    constant overhead: no per-task Python objects, unlike a list of tasks (~2x bigger)."""
    space = Box([0.0, 0.0], [1.0, 1.0])
    tasks = space.sample_uniform(np.random.default_rng(0), 1024)
    compact = len(pickle.dumps(encode_tasks(tasks, "box"), protocol=5))
    assert compact < 1024 * (8 + 16 + 1) + 1024, compact
    assert compact < len(pickle.dumps(tasks, protocol=5)) * 0.6


def test_empty_batches_round_trip():
    assert decode_tasks(_via_pickle(encode_tasks([], "box"))) == []
    assert decode_tasks(encode_tasks([], "discrete"), TaskTable()) == []
    assert decode_outcomes(_via_pickle(encode_outcomes([]))) == []


def test_user_made_ids_fall_back_to_strings():
    tasks = [Task("level-3", (0.5,)), Task("0123456789abcdef", (0.25,))]
    batch = encode_tasks(tasks, "box")
    assert isinstance(batch.ids, list)
    assert decode_tasks(_via_pickle(batch)) == tasks


# ----------------------------------------------------------- discrete / text
def test_discrete_contents_travel_once_per_receiver():
    space = Discrete([f"level-{i}" for i in range(5)] + list(range(5)))
    rng = np.random.default_rng(2)
    view, table = PeerView(), TaskTable()
    shipped = 0
    for _ in range(5):
        tasks = space.tasks_at(rng.integers(0, space.n, size=64), origin="sampled")
        batch = _via_pickle(encode_tasks(tasks, "discrete", view))
        shipped += len(batch.new_rows)
        assert decode_tasks(batch, table) == tasks
    assert shipped == space.n  # every distinct task's content crossed exactly once
    # A self-contained batch (the event log's) needs no table on the other side.
    tasks = space.tasks_at([1, 1, 7, 1])
    assert decode_tasks(task_batch_from_json(_via_json(task_batch_to_json(encode_tasks(tasks, "discrete"))))) == tasks


def test_text_tasks_with_arbitrary_unicode_round_trip():
    space = TextSpace([t for t in UNICODE_TEXTS if "\ud800" not in t], max_length=4096)
    tasks = space.sample_uniform(np.random.default_rng(3), 40)
    # Lineage and a lone surrogate (built directly: it cannot be hashed as UTF-8).
    tasks.append(Task("00000000000000aa", (), UNICODE_TEXTS[6], (tasks[0].id,), "generated"))
    tasks.append(Task("00000000000000ab", ("param ✓", 3), "üñí", (), "mutated"))
    view, table = PeerView(), TaskTable()
    assert decode_tasks(_via_pickle(encode_tasks(tasks, "text", view)), table) == tasks
    again = encode_tasks(tasks, "text", view)
    assert len(again.new_rows) == 0 and decode_tasks(_via_pickle(again), table) == tasks
    for enc in ("b64", "list"):
        j = _via_json(task_batch_to_json(encode_tasks(tasks, "text"), enc))
        assert decode_tasks(task_batch_from_json(j)) == tasks


def test_same_id_with_new_lineage_in_one_batch_is_lossless():
    a = Task("00000000000000a1", (), "collect wood", (), "generated")
    b = a._replace(parent_ids=("00000000000000ff",))
    view, table = PeerView(), TaskTable()
    assert decode_tasks(encode_tasks([a], "text", view), table) == [a]
    tasks = [a, b, a]
    batch = encode_tasks(tasks, "text", view)
    assert batch.new_rows.tolist() == [1, 2]
    assert decode_tasks(batch, table) == tasks


def test_unknown_id_raises_cache_miss_and_reset_recovers():
    space = Discrete(4)
    view = PeerView()
    tasks = space.all_tasks
    encode_tasks(tasks, "discrete", view)  # the reply that never arrived
    batch = encode_tasks(tasks, "discrete", view)  # the sender thinks the receiver has them
    with pytest.raises(TaskCacheMiss, match=r"^4 task id\(s\) not in the receiver's task table"):
        decode_tasks(batch, TaskTable())
    view.clear()  # reset_peer=True on the service
    assert decode_tasks(encode_tasks(tasks, "discrete", view), TaskTable()) == tasks


def test_small_lru_caches_stay_in_step():
    """Sender view and receiver table evict identically, so no miss ever happens."""
    space = Discrete(50)
    rng = np.random.default_rng(4)
    view, table = PeerView(capacity=7), TaskTable(capacity=7)
    shipped = total = 0
    for _ in range(200):
        idx = rng.integers(0, 10, size=int(rng.integers(1, 12)))
        tasks = space.tasks_at(idx)
        batch = encode_tasks(tasks, "discrete", view)
        shipped += len(batch.new_rows)
        total += len(tasks)
        assert decode_tasks(batch, table) == tasks
    assert len(table) == len(view) == 7
    assert 0 < shipped < total


def test_task_columns_serve_the_log_and_a_peer_from_one_pass():
    """The self-contained batch (the event log's) and a peer's batch share the packed
    columns, and the self-contained rows are exactly those of a fresh, large PeerView."""
    a = Task("00000000000000a1", (), "collect wood", (), "generated")
    b = a._replace(parent_ids=("00000000000000ff",))  # same id, new lineage
    c = Task("00000000000000c3", (), "mine ⛏", (), "generated")
    rng = np.random.default_rng(5)
    for tasks in ([a, b, a, c, c, b], [c], [a] * 5, [[a, b, c][i] for i in rng.integers(0, 3, size=200)]):
        columns = TaskColumns(tasks, "text")
        full = columns.batch()
        assert columns.batch() is full  # built once
        fresh = encode_tasks(tasks, "text", PeerView(capacity=len(tasks)))
        assert full.new_rows.tolist() == fresh.new_rows.tolist()
        assert full.new_contents == fresh.new_contents
        view, table = PeerView(), TaskTable()
        view.needs(c.id, (c.params, c.text, c.parent_ids))  # the receiver already holds c
        table.put(c.id, (c.params, c.text, c.parent_ids))
        for_peer = columns.batch(view)
        assert for_peer.ids is full.ids and for_peer.origin_codes is full.origin_codes
        assert c.id not in [tasks[i].id for i in for_peer.new_rows.tolist()]
        assert decode_tasks(for_peer, table) == decode_tasks(full) == tasks
    box = Box([0.0], [1.0])
    box_tasks = box.sample_uniform(rng, 4)
    columns = TaskColumns(box_tasks, "box")
    assert columns.batch(PeerView()) is columns.batch()  # box batches are always self-contained
    empty = TaskColumns([], "discrete")
    assert len(empty.batch(PeerView())) == 0 and empty.batch(PeerView()) is empty.batch()


# ----------------------------------------------------------------- outcomes
def _outcomes() -> list[Outcome]:
    out = []
    for i in range(30):
        out.append(
            Outcome(
                task_id=f"{i * 7919:016x}",
                # i == 5: the largest finite float (inf is refused by Outcome)
                episode_return=float(i) * 0.1 - 1.0 if i != 5 else 1.7976931348623157e308,
                success=[None, True, False][i % 3],
                length=None if i % 4 == 0 else i * 100,
                student_id=["alice", "bob", "ünïcødé 学生"][i % 3],
                info={"level": i, "note": UNICODE_TEXTS[i % 6]} if i % 5 == 0 else {},
                t=1_700_000_000.0 + i / 7,
                episode_id=None if i == 7 else f"{i:016x}",
            )
        )
    return out


def test_outcome_batch_round_trip_is_exact():
    outcomes = _outcomes()
    batch = encode_outcomes(outcomes)
    assert batch.task_ids.dtype == np.uint64 and batch.returns.dtype == np.float64
    assert batch.success.dtype == np.int8 and batch.lengths.dtype == np.int32
    assert isinstance(batch.episode_ids, list)  # one None -> list column
    assert decode_outcomes(_via_pickle(batch)) == outcomes
    for enc in ("b64", "list"):
        assert decode_outcomes(outcome_batch_from_json(_via_json(outcome_batch_to_json(batch, enc)))) == outcomes


def test_outcome_columns_are_packed_when_ids_are_canonical():
    outcomes = [o for o in _outcomes() if o.episode_id is not None]
    batch = encode_outcomes([Outcome(o.task_id, o.episode_return, episode_id=o.episode_id) for o in outcomes])
    assert batch.episode_ids.dtype == np.uint64 and batch.infos is None
    assert batch.student_names == ("default",)
    sub = batch.take([3, 1])
    assert [o.episode_id for o in decode_outcomes(sub)] == [outcomes[3].episode_id, outcomes[1].episode_id]


def test_outcome_task_ids_are_never_changed():
    odd = Outcome(task_id="MyTask-Ünïcode", episode_return=1.0)
    assert decode_outcomes(_via_pickle(encode_outcomes([odd])))[0].task_id == "MyTask-Ünïcode"


def test_negative_length_is_rejected_with_a_clear_message():
    with pytest.raises(CodecError, match=f"^{re.escape('Outcome.length must be >= 0 or None, got -3')}$"):
        encode_outcomes([Outcome("0123456789abcdef", 1.0, length=-3)])


def test_batches_pickle_as_plain_tuples():
    batch = encode_tasks(Box([0], [1]).sample_uniform(np.random.default_rng(0), 3), "box")
    assert isinstance(_via_pickle(batch), TaskBatch)
    assert isinstance(_via_pickle(encode_outcomes(_outcomes())), OutcomeBatch)
    assert len(batch) == 3 and "n=3" in repr(batch)


def test_batches_pickle_small_arrays_in_band_and_come_back_writable():
    """Ray would send each column as its own buffer; small ones travel inside the pickle."""
    outcomes = [
        Outcome(f"{i:016x}", float(i), success=i % 2 == 0, length=i, episode_id=f"{i + 7:016x}") for i in range(10)
    ]
    batch = encode_outcomes(outcomes)
    buffers: list = []
    back = pickle.loads(pickle.dumps(batch, protocol=5, buffer_callback=buffers.append), buffers=buffers)
    assert buffers == []  # nothing out of band
    assert decode_outcomes(back) == outcomes
    assert back.returns.flags.writeable
    tasks = Box([0.0, 0.0], [1.0, 1.0]).sample_uniform(np.random.default_rng(0), 4)
    assert decode_tasks(pickle.loads(pickle.dumps(encode_tasks(tasks, "box"), protocol=5))) == tasks
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]
    assert np.array_equal(pickle.loads(pickle.dumps(in_band(strided))), strided)
    assert pickle.loads(pickle.dumps(in_band(np.zeros((0, 2))))).shape == (0, 2)
    big = np.zeros(IN_BAND_MAX_BYTES // 8 + 1)
    assert in_band(big) is big  # large arrays stay Ray buffers (no copy into the pickle)
