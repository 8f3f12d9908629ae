"""Group commit: reports that queue behind a curriculum's lock are applied as one update."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from service_support import BOX, logged_core, outcomes_for

from openended.runtime.codec import CodecError, concat_outcomes, decode_outcomes, decode_tasks, encode_outcomes
from openended.runtime.core import TeacherServiceCore
from openended.runtime.eventlog import iter_events
from openended.tasks import Outcome


def _report_together(core: TeacherServiceCore, name: str, batches: list, queued: int | None = None) -> list:
    """Report ``batches`` from one thread each while the test holds the curriculum's lock,
    so they queue (``queued`` of them: all by default); return each call's result (its
    accepted count, or its error)."""
    queued = len(batches) if queued is None else queued
    cur = core.curriculum(name)
    results: list = [None] * len(batches)

    def call(i: int) -> None:
        try:
            results[i] = core.report(name, batches[i])
        except Exception as e:  # noqa: BLE001  # the test inspects it
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    with cur.lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(cur.reports._waiting) < queued and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # a call that should not queue has had time to (wrongly) do so
        assert len(cur.reports._waiting) == queued, "not the expected reports queued"
    for t in threads:
        t.join(10)
    return results


def test_queued_reports_go_in_as_one_update_and_each_caller_gets_its_count(tmp_path):
    core = logged_core(tmp_path)
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=40)
    outs = outcomes_for(tasks, 0)
    core.report("walk", outs[:5])  # already accepted before the group
    batches = [outs[0:10], outs[10:20], outs[15:25] + outs[25:30], outs[30:40]]
    results = _report_together(core, "walk", batches)
    # 0-4 were accepted before; 15-19 arrive twice in the group (the earlier batch wins).
    assert results == [5, 10, 10, 10]
    teacher = core.teacher("walk")
    assert all(teacher.episodes[o.episode_id] == 1 for o in outs)
    assert teacher.stats()["update_calls"] == 2  # the first report, then one for the whole group
    counters = core.snapshot()["curricula"]["walk"]["counters"]
    assert (counters["report_calls"], counters["outcomes_received"], counters["outcomes_accepted"]) == (5, 50, 40)
    assert counters["duplicates_dropped"] == 10
    core.close()
    # The log holds the group as applied: a restore rebuilds the same teacher.
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert again.teacher("walk").episodes == teacher.episodes
    again.close()


def test_a_bad_batch_is_refused_alone_and_never_logged(tmp_path):
    core = logged_core(tmp_path)
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=20)
    good, bad = encode_outcomes(outcomes_for(tasks[:10], 0)), encode_outcomes(outcomes_for(tasks[10:], 10))
    bad.returns[3] = np.nan  # a batch built without Outcome's checks
    results = _report_together(core, "walk", [good, bad], queued=1)  # the bad one never queues
    assert results[0] == 10
    assert isinstance(results[1], CodecError) and "returns[3]" in str(results[1])
    assert sum(core.teacher("walk").per_task.values()) == 10
    core.close()
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert sum(again.teacher("walk").per_task.values()) == 10
    again.close()


def test_an_update_error_reaches_every_caller_of_its_group(monkeypatch):
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=20)

    def broken(tasks, outcomes):
        raise RuntimeError("teacher bug")

    monkeypatch.setattr(core.teacher("walk"), "_update", broken)
    results = _report_together(core, "walk", [outcomes_for(tasks[:10], 0), outcomes_for(tasks[10:], 10)])
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert not core.curriculum("walk").reports._waiting


def test_concat_outcomes_keeps_rows_students_ids_and_infos_in_order():
    a = encode_outcomes([Outcome("0" * 15 + "1", 1.0, student_id="ann", episode_id="0" * 15 + "a")])
    b = encode_outcomes(
        [
            Outcome("level-3", 2.0, success=True, length=4, student_id="bob", info={"k": 1}),
            Outcome("0" * 15 + "2", 3.0, student_id="ann", episode_id="0" * 15 + "b"),
        ]
    )
    merged = concat_outcomes([a, b])
    assert isinstance(a.task_ids, np.ndarray) and not isinstance(merged.task_ids, np.ndarray)
    assert decode_outcomes(merged) == decode_outcomes(a) + decode_outcomes(b)
    assert merged.student_names == ("ann", "bob") and merged.student_codes.tolist() == [0, 1, 0]
    same_form = concat_outcomes([a, a])
    assert isinstance(same_form.task_ids, np.ndarray) and len(same_form) == 2
    assert concat_outcomes([b]) is b


@pytest.mark.parametrize("threads", [1, 4])
def test_reports_from_many_threads_are_all_counted_once(threads):
    """No group loses or repeats a row, whatever the interleaving."""
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=400)
    outs = outcomes_for(tasks, 0)
    chunks = [outs[i : i + 10] for i in range(0, 400, 10)]
    accepted: list[int] = []
    lock = threading.Lock()

    def worker(part: list) -> None:
        for chunk in part:
            n = core.report("walk", chunk + chunk[:2])  # two rows resent in the same call
            with lock:
                accepted.append(n)

    pool = [threading.Thread(target=worker, args=(chunks[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert sum(accepted) == 400 and len(accepted) == 40
    assert sum(core.teacher("walk").per_task.values()) == 400


def test_report_many_applies_each_curriculums_reports_as_one_update_and_isolates_refusals(tmp_path):
    """What the socket's serving thread does with several clients' waiting reports (`report_many`)."""
    core = logged_core(tmp_path)
    for name in ("walk", "run"):
        core.add_curriculum(name, "test_counting", BOX)
    walk, run = core.sample_tasks("walk", n=30), core.sample_tasks("run", n=10)
    outs = outcomes_for(walk, 0)
    core.report("walk", outs[:5])
    bad = encode_outcomes(outcomes_for(walk[:3], 100))
    bad.returns[1] = np.inf
    results = core.report_many(
        [
            ("walk", encode_outcomes(outs[0:10])),
            ("run", encode_outcomes(outcomes_for(run, 200))),
            ("walk", bad),
            ("nowhere", encode_outcomes(outs[10:12])),
            ("walk", outs[5:30]),  # a list, as `report` takes; 5-9 twice in the group: the earlier report wins
            ("walk", ["not an outcome"]),
        ]
    )
    assert results[0] == 5 and results[1] == 10 and results[4] == 20
    assert isinstance(results[5], Exception) and "report(batch)" in str(results[5])
    assert isinstance(results[2], CodecError) and "returns[1]" in str(results[2])
    assert "nowhere" in str(results[3]) and "walk" in str(results[3])  # names the hosted curricula
    teacher = core.teacher("walk")
    assert teacher.stats()["update_calls"] == 2  # the first report, then one for the group
    assert all(teacher.episodes[o.episode_id] == 1 for o in outs)
    assert core.teacher("run").stats()["update_calls"] == 1
    counters = core.snapshot()["curricula"]["walk"]["counters"]
    assert (counters["report_calls"], counters["outcomes_accepted"]) == (3, 30)
    core.close()
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert again.teacher("walk").episodes == teacher.episodes
    again.close()


def _sampled_lines(tmp_path) -> int:
    return sum(1 for e in iter_events(tmp_path / "events.jsonl") if e.event.get("ev") == "sampled")


def test_sample_columns_many_draws_each_students_refills_once_and_slices_them_in_order(tmp_path):
    """The socket's wave refills (`sample_columns_many`): one draw per curriculum and student."""
    core = logged_core(tmp_path)
    core.add_curriculum("walk", "random", BOX, config={"seed": 3})
    core.add_curriculum("count", "test_counting", BOX)  # no array path: one by one
    twin = TeacherServiceCore()
    twin.add_curriculum("walk", "random", BOX, config={"seed": 3})
    lines = _sampled_lines(tmp_path)
    out = core.sample_columns_many(
        [
            ("walk", "default", 4, None, False),
            ("count", "default", 2, None, False),
            ("walk", "default", 5, "peer-a", True),
            ("walk", "default", 0, None, False),  # refused alone
            ("nowhere", "default", 3, None, False),
            ("walk", "default", 6, None, False),
            ("count", "default", 3, None, False),
        ]
    )
    assert [len(b) for i, b in enumerate(out) if i not in (3, 4)] == [4, 2, 5, 6, 3]
    assert "n must be a positive int" in str(out[3]) and "nowhere" in str(out[4])
    one_draw = decode_tasks(twin.sample_columns("walk", "default", 15))  # the same seed, one call of 15
    assert [t.id for i in (0, 2, 5) for t in decode_tasks(out[i])] == [t.id for t in one_draw]
    assert _sampled_lines(tmp_path) == lines + 3  # one line for walk's three, one per count refill
    counters = core.snapshot()["curricula"]["walk"]["counters"]
    assert (counters["sample_calls"], counters["tasks_sampled"]) == (3, 15)
    core.close()
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")  # replays the draw as made
    assert [t.id for t in decode_tasks(again.sample_columns("walk", "default", 7))] == [
        t.id for t in decode_tasks(twin.sample_columns("walk", "default", 7))
    ]
    again.close()
