"""The compiled id table and the issued-task table built on it, against plain-dict models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openended.tasks import Box, Discrete, Task, TaskArrays
from openended.teachers import make_teacher
from openended.teachers.id_table import IdTable
from openended.teachers.issued import IssuedTasks


@pytest.mark.parametrize("universe", [50, 1 << 62])
def test_id_table_matches_a_dict_through_inserts_lookups_and_batch_removals(universe: int) -> None:
    """Random batches (ids repeat when the universe is small), removed oldest first, only
    where their batch still owns the id: the table answers exactly as a dict does."""
    rng = np.random.default_rng(3)
    table, model = IdTable(), {}
    batches: list[tuple[int, np.ndarray]] = []
    for gen in range(1, 200):
        keys = rng.integers(0, universe, size=int(rng.integers(0, 40)), dtype=np.uint64)
        if gen % 7 == 0:
            keys = np.arange(len(keys), dtype=np.uint64)  # small sequential ids collide on naive hashes
        refs = (gen << 32) + np.arange(len(keys), dtype=np.int64)
        table.insert(keys, refs)
        model.update(zip(keys.tolist(), refs.tolist()))
        batches.append((gen, keys))
        while len(model) > 300:
            old, old_keys = batches.pop(0)
            table.remove_batch(old_keys, old)
            for k in old_keys.tolist():
                if model.get(k, -1) >> 32 == old:
                    del model[k]
        assert len(table) == len(model)
        probe = np.concatenate([keys, rng.integers(0, universe, size=20, dtype=np.uint64)])
        assert table.lookup(probe).tolist() == [model.get(k, -1) for k in probe.tolist()]
    everything = np.fromiter(model, dtype=np.uint64)
    assert (table.lookup(everything) >= 0).all()


def test_issued_table_keeps_named_ids_and_reissued_canonical_ids_through_eviction() -> None:
    space = Discrete(list(range(8)))
    issued = IssuedTasks(space, limit=4)
    named = Task("level-3", (3,), None, (), "user")
    issued.add([space.task(0), named])
    issued.add(TaskArrays.from_tasks([space.task(0), space.task(1)], space))  # 0 again, on the array path
    issued.add([space.task(2), space.task(4)])  # 5 held > 4: the first batch goes, its 0 stays
    ids = [space.task(k).id for k in (0, 1, 2, 4, 5)] + ["level-3"]
    assert (issued.find(ids) >= 0).tolist() == [True, True, True, True, False, False]
    assert issued.get(space.task(0).id) == space.task(0) and issued.get("level-3") is None
    saved_issued, saved_batches = issued.state()
    again = IssuedTasks(space, limit=4)
    again.load(json.loads(json.dumps(saved_issued)), saved_batches, issued.gen)
    assert again.state() == (saved_issued, saved_batches) and len(again) == 4


class OneBatchAtATime:
    """The issued-task table's contract in plain Python: batches queue until ``limit`` tasks
    wait (or a lookup comes), are indexed in issue order, then the oldest are evicted one at
    a time, each id only if no newer batch issued it again, until at most ``limit`` are held."""

    def __init__(self, limit: int) -> None:
        self.limit, self.gen, self.held = limit, 0, {}
        self.batches: list[tuple[int, list[str]]] = []
        self.queued: list[tuple[int, list[str]]] = []

    def add(self, ids: list[str]) -> None:
        self.gen += 1
        self.queued.append((self.gen, ids))
        if sum(len(q) for _, q in self.queued) >= self.limit:
            self.index()

    def index(self) -> None:
        for gen, ids in self.queued:
            self.held.update({i: gen << 32 | row for row, i in enumerate(ids)})
            self.batches.append((gen, ids))
        self.queued = []
        while len(self.held) > self.limit and len(self.batches) > 1:
            gen, ids = self.batches.pop(0)
            for i in ids:
                if self.held.get(i, -1) >> 32 == gen:
                    del self.held[i]

    def find(self, ids: list[str]) -> list[int]:
        if self.queued:
            self.index()
        return [self.held.get(i, -1) for i in ids]

    def __len__(self) -> int:
        return len(self.held) + sum(len(q) for _, q in self.queued)


@pytest.mark.parametrize("seed", range(4))
def test_issued_table_matches_evicting_one_batch_at_a_time(seed: int) -> None:
    """Batches of 0-40 tasks (object and array batches, canonical and named ids, ids issued
    again), looked up now and then: several batches indexed and evicted per compiled call
    give exactly the references, sizes and saved state of the one-at-a-time contract."""
    rng = np.random.default_rng(seed)
    space = Discrete(list(range(60)))
    issued, model = IssuedTasks(space, limit=50), OneBatchAtATime(50)
    seen: set[str] = set()
    for _ in range(300):
        tasks = [space.task(int(v)) for v in rng.integers(0, 60, size=int(rng.integers(0, 41)))]
        kind = rng.random()
        if kind < 0.2:  # one task (a teacher loop's), canonical or named, on either path
            tasks = [space.task(int(rng.integers(0, 60))) if kind < 0.1 else Task(f"level-{kind:.2f}", (0,), None, ())]
            issued.add(TaskArrays.from_tasks(tasks, space) if kind < 0.05 else tasks)
        elif kind < 0.6 and tasks:
            issued.add(TaskArrays.from_tasks(tasks, space))
        else:
            tasks += [Task(f"level-{int(v)}", (0,), None, (), "user") for v in rng.integers(0, 30, size=3)]
            issued.add(tasks)
        model.add([t.id for t in tasks])
        seen.update(t.id for t in tasks)
        assert len(issued) == len(model)
        if rng.random() < 0.3:
            probe = sorted(seen)
            assert issued.find(probe).tolist() == model.find(probe)
    probe = sorted(seen)
    assert issued.find(probe).tolist() == model.find(probe)
    saved_issued, saved_batches = issued.state()
    again = IssuedTasks(space, limit=50)
    again.load(json.loads(json.dumps(saved_issued)), saved_batches, issued.gen)
    # a loaded batch lists only the ids it issued last, so rows are renumbered: the same tasks, found
    assert [again.get(i) for i in probe] == [issued.get(i) for i in probe]
    assert again.state() == (saved_issued, saved_batches)


def test_update_arrays_finds_tasks_of_many_evicted_and_live_batches() -> None:
    """Outcomes naming tasks of several sampled batches, some already evicted: the known
    ones reach the teacher in their order and the rest are counted as unknown."""
    space = Box([0.0, 0.0], [1.0, 1.0])
    teacher = make_teacher("random", space, seed=0, max_tracked_tasks=64)
    batches = [teacher.sample_arrays(16) for _ in range(8)]  # the first 4 are evicted on indexing
    ids = np.concatenate([b.ids for b in batches])[::-3]
    with pytest.warns(RuntimeWarning, match="never issued"):
        teacher.update_arrays(ids, np.ones(len(ids)))
    assert teacher.stats()["outcomes"] == int((np.arange(128)[::-3] >= 64).sum())
    assert teacher.stats()["unknown_task_outcomes"] == int((np.arange(128)[::-3] < 64).sum())
    live = np.concatenate([b.ids for b in batches[4:]])
    issued = IssuedTasks(space, limit=64)
    for b in batches[4:]:
        issued.add(b)
    gathered = issued.gather(issued.find(live[::-5]))
    assert gathered.ids.tolist() == live[::-5].tolist()
    assert np.array_equal(gathered.params, np.concatenate([b.params for b in batches[4:]])[::-5])


def test_compiled_warm_up_leaves_every_teacher_kernel_ready() -> None:
    """What the image build runs: afterwards no kernel compiles inside a teacher's call."""
    from openended.teachers import compiled, id_table
    from openended.teachers.gmm import alp_kernels, em_kernels

    compiled.warm_up()
    for kernel in (id_table._kernels().insert, em_kernels.em, alp_kernels.grid_alp):
        assert kernel.signatures, f"{kernel.__name__} was not compiled"


def test_a_table_unpickled_from_read_only_buffers_still_takes_inserts() -> None:
    """Ray ships a teacher's arrays out of band and maps them read-only in the actor."""
    import pickle

    table = IdTable()
    table.insert(np.arange(5, dtype=np.uint64), np.arange(5, dtype=np.int64))
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(table, protocol=5, buffer_callback=buffers.append)
    copy = pickle.loads(data, buffers=[b.raw().toreadonly() for b in buffers])
    copy.insert(np.arange(5, 9, dtype=np.uint64), np.arange(5, 9, dtype=np.int64))
    assert copy.lookup(np.arange(10, dtype=np.uint64)).tolist() == [*range(9), -1]
    assert table.lookup(np.arange(6, dtype=np.uint64)).tolist() == [*range(5), -1]


def test_batch_one_calls_take_the_single_id_path_with_the_same_rules() -> None:
    """One-task batches (a teacher loop) skip the arrays; eviction and re-issue behave the same."""
    space = Discrete(list(range(5)))
    issued = IssuedTasks(space, limit=3)
    named = Task("level-9", (4,), None, (), "user")
    for batch in ([space.task(0)], [named], TaskArrays.from_tasks([space.task(1)], space), [space.task(0)]):
        issued.add(batch)
        issued.find([space.task(0).id])  # index each batch as it comes
    # 4 ids held > 3: batch 1 goes but keeps its 0 (issued again by batch 4), then batch 2 (level-9)
    issued.add([space.task(2)])
    found = issued.find([space.task(k).id for k in range(3)] + ["level-9", "0" * 16])
    assert (found >= 0).tolist() == [True, True, True, False, False]
    assert [int(issued.find([i])[0]) >= 0 for i in ("level-9", space.task(0).id)] == [False, True]
    assert issued.get(space.task(0).id) == space.task(0) and len(issued) == 3


def test_batch_numbers_past_two_to_the_31_keep_working() -> None:
    """References hold a batch's number modulo 2^31 (int64): a long run's table keeps matching,
    evicting and saving the true numbers."""
    space = Box([0.0], [1.0])
    issued = IssuedTasks(space, limit=4)
    issued.gen = 2**31 - 3
    batches = [TaskArrays.from_tasks(space.sample_uniform(np.random.default_rng(i), 2), space) for i in range(5)]
    for b in batches:
        issued.add(b)
        issued.find(b.ids)  # index as it comes; holding > 4 evicts the oldest
    live = np.concatenate([b.ids for b in batches[3:]])
    assert (issued.find(live) >= 0).all() and (issued.find(batches[0].ids) < 0).all()
    assert issued.gather(issued.find(live)).ids.tolist() == live.tolist()
    saved_issued, saved_batches = issued.state()
    assert [g for g, _ in saved_batches] == [2**31 + 1, 2**31 + 2]  # slots 1 and 2
    again = IssuedTasks(space, limit=4)
    again.load(saved_issued, saved_batches, issued.gen)
    assert (again.find(live) >= 0).all() and again.state() == (saved_issued, saved_batches)


def test_id_keys_parses_only_canonical_ids() -> None:
    """Pool-style ids skip the per-id parse; a 16-character id is parsed only if canonical."""
    from openended.teachers.issued import id_keys

    canonical = "00000000000000ff"
    assert id_keys([canonical, "0" * 15 + "1"]) == [255, 1]
    assert id_keys(["pool-0-1", None, "", "pool-1-2"]) == ["pool-0-1", None, "", "pool-1-2"]
    assert id_keys(["pool-0-123456789", canonical, "00000000000000FF", None]) == [
        "pool-0-123456789",
        255,
        "00000000000000FF",  # uppercase is not canonical
        None,
    ]
