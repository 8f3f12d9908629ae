"""The array path (`TaskArrays`, ``sample_arrays`` / ``update_arrays``, ``sample_columns``).

Contract: the same tasks as the object path for the same seed and call sequence, outcomes
counted identically, the same issued-task bookkeeping and state, the same event log
semantics (dedup, replay after a crash), and clients that cannot tell the difference.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from service_support import outcomes_for

from openended.errors import InvalidArgument
from openended.runtime.batch_json import task_batch_from_json, task_batch_to_json
from openended.runtime.client import LocalTeacherClient
from openended.runtime.codec import TaskTable, decode_tasks, encode_outcomes, encode_task_arrays
from openended.runtime.core import TeacherServiceCore
from openended.runtime.eventlog import iter_events
from openended.tasks import Box, Discrete, Outcome, TaskArrays, TextSpace, hash_params, hash_params_u64, ids_to_hex
from openended.teachers import BaseTeacher, make_teacher, register_teacher

BOX = Box([0.0, -1.0, 2.0], [1.0, 1.0, 5.0])
SPACES = {
    "box": BOX,
    "discrete": Discrete(50, name="levels"),
    "discrete_str": Discrete(["coinrun", "bigfish", "maze", 7]),
}


class ArrayCountingTeacher(BaseTeacher):
    """Uniform sampling with an array path; counts every outcome it learns from, per task."""

    name = "test_array_counting"
    space_kinds = ("box",)

    def __init__(self, space, config=None):
        super().__init__(space, config)
        self.per_task: Counter = Counter()

    def supports_arrays(self):
        return True

    def _sample(self, n, student):
        return self.space.sample_uniform(self.rng, n)

    def _sample_arrays(self, n, student):
        x = self.space.sample_array(self.rng, n)
        return TaskArrays.uniform_origin(self.space.ids_u64(x), "uniform", params=x)

    def _update(self, tasks, outcomes):
        self.per_task.update(o.task_id for o in outcomes)

    def _update_arrays(self, tasks, returns, success, lengths):
        assert tasks.params is not None and len(tasks) == len(returns)
        self.per_task.update(tasks.id_list)

    def _state_dict(self):
        return {"per_task": dict(self.per_task)}

    def _load_state_dict(self, state):
        self.per_task = Counter(state["per_task"])


register_teacher("test_array_counting", ArrayCountingTeacher, overwrite=True)


# ------------------------------------------------------------------ vocabulary
def test_uint64_ids_are_the_hex_ids_bit_for_bit():
    x = np.random.default_rng(0).uniform(-3, 3, size=(300, 3))
    x[0] = [-0.0, 0.0, 1e-300]
    for rows in (x[:1], x[:8], x[:9], x):  # the small (Python int) and vectorised paths
        assert ids_to_hex(hash_params_u64(rows, 0xB0)) == hash_params(rows, 0xB0)
    rows = np.array([[0.5, 0.0, 3.0], [1.0, -1.0, 5.0]])
    assert ids_to_hex(BOX.ids_u64(rows)) == [BOX.task(r).id for r in rows]
    levels = SPACES["discrete"]
    assert ids_to_hex(levels.ids_u64) == [t.id for t in levels.all_tasks]


def _hash_rows_numpy(bits: np.ndarray, salt: int) -> np.ndarray:
    """The id hash as numpy array operations (how `hash_params_u64` computed big batches until 2026-12-07)."""
    n, d = bits.shape
    with np.errstate(over="ignore"):
        h = np.full(n, np.uint64(salt) ^ np.uint64(d), dtype=np.uint64)
        for j in range(d):
            h ^= bits[:, j] + np.uint64(0x9E3779B97F4A7C15) * np.uint64(j + 1)
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h


def test_compiled_id_hashes_are_the_python_and_numpy_ones_bit_for_bit():
    rng = np.random.default_rng(7)
    for d in (0, 1, 2, 5):
        rows = rng.normal(scale=1e3, size=(200, d))
        if d:
            rows[::5, 0] = -0.0
            rows[1::7, -1] = np.inf
            rows[2::9, 0] = np.nan
            rows[3::11, -1] = 5e-324  # the smallest subnormal
        bits = np.ascontiguousarray(rows + 0.0).view(np.uint64)
        for salt in (0, 0xB0, (1 << 64) - 1):
            compiled = hash_params_u64(rows, salt)  # > 8 rows: the compiled pass
            one_by_one = np.concatenate([hash_params_u64(r[None, :], salt) for r in rows])  # the Python-int path
            assert compiled.dtype == np.uint64
            assert (compiled == one_by_one).all() and (compiled == _hash_rows_numpy(bits, salt)).all()


def test_task_arrays_round_trip_tasks_and_refuse_what_has_no_columns():
    for space in SPACES.values():
        tasks = space.sample_uniform(np.random.default_rng(1), 20)
        arrays = TaskArrays.from_tasks(tasks, space)
        assert arrays.to_tasks(space) == tasks
        assert [arrays.task(i, space) for i in range(20)] == tasks
        assert arrays.take(np.arange(5, 9)).to_tasks(space) == tasks[5:9]
        both = TaskArrays.concat([arrays.take(np.arange(3)), arrays.take(np.arange(3, 20))])
        assert both.to_tasks(space) == tasks
    from openended.tasks import Task

    with pytest.raises(InvalidArgument, match="not 16 lowercase hex digits"):
        TaskArrays.from_tasks([Task("0x12345678abcdef", (0.5, 0.0, 3.0))], BOX)
    with pytest.raises(InvalidArgument, match="text or lineage"):
        TaskArrays.from_tasks([BOX.task([0.5, 0.0, 3.0], text="hi")], BOX)
    with pytest.raises(InvalidArgument, match="only Box and Discrete"):
        TaskArrays.from_tasks([TextSpace(["a"]).task("a")], TextSpace(["a"]))


# ------------------------------------------------------------------- teachers
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_random_teacher_arrays_equal_objects_for_the_same_seed(kind):
    space = SPACES[kind]
    a, b = make_teacher("random", space, seed=7), make_teacher("random", space, seed=7)
    assert b.supports_arrays() and b.supports_array_updates()
    for n in (1, 5, 9, 1024, 3):
        tasks, arrays = a.sample(n), b.sample_arrays(n)
        assert isinstance(arrays, TaskArrays) and arrays.ids.dtype == np.uint64
        assert arrays.to_tasks(space) == tasks
        returns = np.linspace(0, 1, n)
        a.update([Outcome(t.id, float(r)) for t, r in zip(tasks, returns)])
        b.update_arrays(arrays.ids, returns)
    sa, sb = a.state_dict(), b.state_dict()
    for key in ("rng", "issued", "issued_batches", "issued_gen"):
        assert sa[key] == sb[key], key
    assert {k: sa["counts"][k] for k in ("sampled", "outcomes", "unknown_task_outcomes")} == {
        k: sb["counts"][k] for k in ("sampled", "outcomes", "unknown_task_outcomes")
    }
    assert a.stats()["tracked_tasks"] == b.stats()["tracked_tasks"]


def test_paths_mix_unknown_ids_are_counted_and_eviction_keeps_reissued_tasks():
    space = Discrete(list(range(6)))
    t = make_teacher("random", space, seed=0, max_tracked_tasks=4)
    first = t.sample_arrays(4)
    t.sample(4)  # pushes the first batch out (ids drawn again in the second batch stay)
    gone = [i for i in first.id_list if t.task_for_id(i) is None] + ["00000000deadbeef"]
    with pytest.warns(RuntimeWarning, match="never issued"):
        t.update_arrays(np.array([int(i, 16) for i in gone], dtype=np.uint64), np.zeros(len(gone)))
    assert t.stats()["unknown_task_outcomes"] == len(gone) and t.stats()["outcomes"] == 0
    # Object-path outcomes for array-issued tasks and the other way round.
    u = make_teacher("random", BOX, seed=1)
    arrays, tasks = u.sample_arrays(10), u.sample(10)
    u.update([Outcome(x.id, 1.0) for x in arrays.to_tasks(BOX)])
    u.update_arrays([x.id for x in tasks], np.ones(10))
    u.update_arrays(np.concatenate([arrays.ids[:3], TaskArrays.from_tasks(tasks, BOX).ids[:2]]), np.ones(5))
    assert u.stats()["outcomes"] == 25 and u.stats()["unknown_task_outcomes"] == 0
    assert u.task_for_id(arrays.id_list[4]) == arrays.task(4, BOX)
    # A Discrete task re-issued on the array path survives eviction of its older batch.
    v = make_teacher("random", space, max_tracked_tasks=4)
    v.register_tasks([space.task(k) for k in (0, 1, 2)])
    again = TaskArrays.from_tasks([space.task(0), space.task(3)], space)
    v._issued.add(again)  # what sample_arrays does with a batch holding 0 again
    v.register_tasks([space.task(4)])  # 5 tracked > 4: batch 1 goes, 0 stays
    assert [v.task_for_id(space.task(k).id) is not None for k in range(6)] == [True, False, False, True, True, False]
    restored = make_teacher("random", space, max_tracked_tasks=4)
    restored.load_state_dict(json.loads(json.dumps(v.state_dict())))
    assert restored.state_dict()["issued_batches"] == v.state_dict()["issued_batches"]


def test_update_arrays_refuses_bad_columns_before_counting():
    t = make_teacher("random", BOX)
    arrays = t.sample_arrays(3)
    with pytest.raises(InvalidArgument, match="must be finite"):
        t.update_arrays(arrays.ids, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(InvalidArgument, match="2 returns for 3 task ids"):
        t.update_arrays(arrays.ids, np.zeros(2))
    assert t.stats()["outcomes"] == 0 and t.stats()["update_calls"] == 0


def test_teacher_without_array_path_falls_back_exactly():
    space = SPACES["discrete"]
    a, b = make_teacher("lp", space, seed=2), make_teacher("lp", space, seed=2)
    assert not b.supports_arrays()
    for _ in range(3):
        tasks, arrays = a.sample(16), b.sample_arrays(16)
        assert arrays.to_tasks(space) == tasks
        a.update([Outcome(x.id, 0.5, success=True, length=3) for x in tasks])
        b.update_arrays(arrays.ids, np.full(16, 0.5), np.ones(16, np.int8), np.full(16, 3))
    assert a.sample(32) == b.sample(32)


@pytest.mark.parametrize("preset", [None, "teachmyagent"])
def test_alp_gmm_arrays_equal_objects_through_fits_and_a_state_round_trip(preset):
    space = Box([0.0, 0.0], [1.0, 1.0])
    kw = {"preset": preset} if preset else {"refit_executor": "inline"}
    a = make_teacher("alp_gmm", space, seed=3, fit_rate=50, **kw)
    b = make_teacher("alp_gmm", space, seed=3, fit_rate=50, **kw)
    assert b.supports_arrays() == (preset is None)
    for step, n in enumerate([1, 3, 64, 100, 7, 600, 2, 300]):
        tasks, arrays = a.sample(n), b.sample_arrays(n)
        assert arrays.to_tasks(space) == tasks, step
        r = np.array([x.params[0] * (step % 3) for x in tasks])
        a.update([Outcome(x.id, float(v)) for x, v in zip(tasks, r)])
        b.update_arrays(arrays.ids, r)
    assert a.stats()["fits"] == b.stats()["fits"] > 0
    c = make_teacher("alp_gmm", space, seed=99, fit_rate=50, **kw)
    c.load_state_dict(json.loads(json.dumps(b.state_dict())))
    assert a.sample(200) == b.sample_arrays(200).to_tasks(space) == c.sample_arrays(200).to_tasks(space)
    for t in (a, b, c):
        t.close()


# ---------------------------------------------------------------- the service
def test_sample_columns_gives_the_object_path_tasks_and_log(tmp_path):
    cores = [TeacherServiceCore(event_log=tmp_path / f"{i}.jsonl") for i in range(2)]
    for core in cores:
        core.add_curriculum("walk", "random", BOX, config={"seed": 4})
        core.add_curriculum("lv", "random", SPACES["discrete_str"], config={"seed": 4})
        core.add_curriculum("txt", "random", TextSpace(["a b", "c d"]), config={"seed": 4})
    objects, columns = cores
    tables = TaskTable(), TaskTable()
    for n in (1, 64, 1024):
        box = columns.sample_columns("walk", "s", n)
        assert box.kind == "box" and decode_tasks(box) == decode_tasks(objects.sample("walk", "s", n))
        lv = columns.sample_columns("lv", "s", n, peer="p")
        assert lv.kind == "values" and decode_tasks(lv) == decode_tasks(objects.sample("lv", "s", n))
        txt = columns.sample_columns("txt", "s", n, peer="p")  # no array path: exactly sample(), peer and all
        assert txt.kind == "table" and len(txt.new_contents) <= 2
        assert decode_tasks(txt, tables[0]) == decode_tasks(objects.sample("txt", "s", n, peer="q"), tables[1])
    for core in cores:
        core.close()
    logged = [[e.event for e in iter_events(core.log.path) if e.event["ev"] == "sampled"] for core in cores]
    assert [e["tasks"]["n"] for e in logged[0]] == [e["tasks"]["n"] for e in logged[1]]
    from openended.runtime.eventlog import decode_sampled

    assert [decode_sampled(e)[2] for e in logged[0]] == [decode_sampled(e)[2] for e in logged[1]]


@pytest.mark.parametrize("values", [list(range(5)), ["a", "b", 3]])
def test_values_batches_round_trip_through_json(values):
    space = Discrete(values, name="v")
    t = make_teacher("random", space, seed=0)
    batch = encode_task_arrays(t.sample_arrays(12), space)
    for enc in ("b64", "list"):
        back = task_batch_from_json(json.loads(json.dumps(task_batch_to_json(batch, enc))))
        assert decode_tasks(back) == decode_tasks(batch) == make_teacher("random", space, seed=0).sample(12)


def test_report_through_update_arrays_counts_and_dedups_like_objects():
    cores = [TeacherServiceCore() for _ in range(2)]
    for core, teacher in zip(cores, ("test_counting", "test_array_counting")):
        core.add_curriculum("walk", teacher, BOX, config={"seed": 5})
    tasks = {s: cores[0].sample_tasks("walk", s, 30) for s in ("alice", "bob")}
    for s in ("alice", "bob"):
        assert decode_tasks(cores[1].sample_columns("walk", s, 30)) == tasks[s]
    mixed = outcomes_for(tasks["alice"][:20], 0, "alice") + outcomes_for(tasks["bob"][:10], 100, "bob")
    mixed.append(Outcome("00000000deadbeef", 1.0, student_id="bob", episode_id="e-unknown"))
    for core in cores:
        with pytest.warns(RuntimeWarning, match="never issued"):
            assert core.report("walk", encode_outcomes(mixed)) == 31
        assert core.report("walk", encode_outcomes(mixed[5:25])) == 0  # resent: dropped
        assert core.report("walk", outcomes_for(tasks["alice"][15:], 15, "alice")) == 10
    snaps = [core.snapshot()["curricula"]["walk"] for core in cores]
    assert snaps[0]["counters"] == snaps[1]["counters"]
    for s in ("alice", "bob"):
        plain, arrays = (core.teacher("walk", s) for core in cores)
        assert plain.per_task == arrays.per_task
        for key in ("outcomes", "unknown_task_outcomes", "update_calls"):
            assert plain.stats()[key] == arrays.stats()[key], (s, key)
    with pytest.raises(Exception, match="must be finite"):
        bad = encode_outcomes(outcomes_for(tasks["bob"][10:12], 200, "bob"))
        bad.returns[1] = np.inf
        cores[1].report("walk", bad)


def test_array_path_survives_a_crash_with_exactly_once_outcomes(tmp_path):
    core = TeacherServiceCore(event_log=tmp_path / "events.jsonl", checkpoint_dir=tmp_path / "ckpt", fsync="never")
    core.add_curriculum("walk", "test_array_counting", BOX, config={"seed": 6})
    core.add_curriculum("lv", "random", SPACES["discrete"], config={"seed": 6})
    first = decode_tasks(core.sample_columns("walk", "alice", 40))
    assert core.report("walk", outcomes_for(first[:25], 0, "alice")) == 25
    core.checkpoint()
    assert core.report("walk", outcomes_for(first[20:], 20, "alice")) == 15  # 20..24 resent
    later = decode_tasks(core.sample_columns("walk", "alice", 20))
    levels = decode_tasks(core.sample_columns("lv", "alice", 30))
    assert core.report("walk", outcomes_for(later[:12], 500, "alice")) == 12
    assert core.report("lv", outcomes_for(levels, 900, "alice")) == 30
    before = Counter(core.teacher("walk", "alice").per_task)
    next_tasks = core.teacher("walk", "alice").sample_arrays(5).to_tasks(BOX)
    log_path = core.log.path
    del core  # crash: no close, the log survives

    core = TeacherServiceCore.restore(tmp_path / "ckpt", log_path)
    assert core.counters["replay_mismatches"] == 0
    assert core.teacher("walk", "alice").per_task == before
    assert core.teacher("lv", "alice").stats()["outcomes"] == 30
    assert core.report("walk", outcomes_for(later, 500, "alice")) == 8  # late outcomes find their task
    assert core.report("walk", outcomes_for(first, 0, "alice")) == 0
    assert sum(core.teacher("walk", "alice").per_task.values()) == 40 + 20
    assert decode_tasks(core.sample_columns("walk", "alice", 5)) == next_tasks  # RNG where it was
    core.close()


def test_local_client_on_the_array_path_matches_the_object_path():
    space = SPACES["discrete"]
    served = []
    for use_columns in (True, False):
        core = TeacherServiceCore()
        core.add_curriculum("lv", "random", space, config={"seed": 8})
        client = LocalTeacherClient(core, "lv", "alice", buffer_size=16, low_watermark=4)
        if not use_columns:
            client.service = _ObjectsOnly(core)
        tasks = [client.next_task() for _ in range(50)]
        for t in tasks:
            client.report(Outcome(t.id, 1.0))
        client.close()
        served.append(tasks)
        assert core.snapshot()["curricula"]["lv"]["counters"]["outcomes_accepted"] == 50
    assert served[0] == served[1]


class _ObjectsOnly:
    """A service object without ``sample_columns`` (the client falls back to ``sample``)."""

    def __init__(self, core):
        self.core = core

    def sample(self, *args, **kwargs):
        return self.core.sample(*args, **kwargs)

    def report(self, *args, **kwargs):
        return self.core.report(*args, **kwargs)


def _array_teachers():
    from openended.teachers import list_teachers, teacher_class

    spaces = {"box": Box([0, 0], [1, 1]), "discrete": Discrete(list(range(20)))}
    for name in list_teachers():
        cls = teacher_class(name)
        for kind in cls.space_kinds:
            if kind in spaces:
                yield pytest.param(name, spaces[kind], id=f"{name}-{kind}")


@pytest.mark.parametrize("name,space", list(_array_teachers()))
def test_every_teacher_with_an_array_path_matches_its_object_path(name, space):
    from openended.teachers import teacher_class

    kw = dict(teacher_class(name).CHECK_OVERRIDES)
    a, b = make_teacher(name, space, seed=11, **kw), make_teacher(name, space, seed=11, **kw)
    if not b.supports_arrays():
        a.close(), b.close()
        pytest.skip(f"{name} has no array path on {space.kind} spaces")
    for step in range(12):
        n = (1, 8, 40)[step % 3]
        tasks, arrays = a.sample(n), b.sample_arrays(n)
        assert arrays.to_tasks(space) == tasks, step
        r = np.arange(n, dtype=np.float64) * (step % 4) / max(n, 1)
        a.update([Outcome(x.id, float(v), success=bool(i % 2), length=i) for i, (x, v) in enumerate(zip(tasks, r))])
        b.update_arrays(arrays.ids, r, np.arange(n) % 2, np.arange(n))
    assert a.sample(16) == b.sample_arrays(16).to_tasks(space)
    assert a.stats()["outcomes"] == b.stats()["outcomes"]
    a.close(), b.close()
