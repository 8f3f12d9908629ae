"""TeacherServiceCore without Ray: curricula, students, sampling, reporting with dedup,
the in-process client. Checkpoints and restore: tests/test_recovery.py."""

from __future__ import annotations

import pickle
import re
import threading
import time

import pytest
from service_support import BOX, CountingTeacher, outcomes_for

from openended.errors import ConfigError, ServiceError
from openended.runtime.client import LocalTeacherClient
from openended.runtime.codec import TaskBatch, decode_tasks, encode_outcomes
from openended.runtime.core import TeacherServiceCore
from openended.runtime.curricula import student_seed
from openended.runtime.service import TeacherServiceActor, unpack_request
from openended.runtime.wire import EXCHANGE, REPORT, SAMPLE
from openended.tasks import Outcome, TextSpace


class SlowUpdateTeacher(CountingTeacher):
    """An update that takes a while (like an ALP-GMM batch triggering several fits)."""

    def _update(self, tasks, outcomes):
        time.sleep(0.5)
        super()._update(tasks, outcomes)


# ----------------------------------------------------------------- curricula
def test_unknown_curriculum_names_the_hosted_ones():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "random", BOX)
    msg = "unknown curriculum 'wlak'; hosted: walk"
    with pytest.raises(ServiceError, match=f"^{re.escape(msg)}$"):
        core.sample("wlak")


def test_add_curriculum_is_idempotent_but_rejects_a_different_spec():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "random", BOX, config={"seed": 1})
    core.add_curriculum("walk", "random", BOX.to_dict(), config={"seed": 1})  # same spec: no-op
    core.add_curriculum("w2", "test_counting", BOX, config={"bounds": (0.0, 350.0)})
    core.add_curriculum("w2", "test_counting", BOX, config={"bounds": [0.0, 350.0]})  # tuple == list
    with pytest.raises(ConfigError, match=r"^curriculum 'walk' already exists with spec"):
        core.add_curriculum("walk", "random", BOX, config={"seed": 2})
    with pytest.raises(ConfigError, match=r"^curriculum.x.space: required with teacher 'random'$"):
        core.add_curriculum("x", "random")
    with pytest.raises(ConfigError, match=r"^curriculum.x.students: a teacher object can only be 'shared'"):
        core.add_curriculum("x", CountingTeacher(BOX))


def test_sample_returns_compact_batches_of_tasks_in_the_space():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "random", BOX)
    batch = core.sample("walk", "alice", 100)
    assert isinstance(batch, TaskBatch) and batch.params.shape == (100, 2)
    assert all(BOX.contains(t) for t in decode_tasks(batch))


def test_separate_students_get_their_own_teacher_and_seed():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX, config={"seed": 5}, students="separate")
    a = core.sample_tasks("walk", "alice", 8)
    b = core.sample_tasks("walk", "bob", 8)
    d = core.sample_tasks("walk", "default", 8)
    assert a != b
    assert core.teacher("walk", "alice") is not core.teacher("walk", "bob")
    assert core.teacher("walk", "alice").config.seed == student_seed(5, "alice") != 5
    assert core.teacher("walk", "default").config.seed == 5  # the plain teacher's stream
    mixed = outcomes_for(a, 0, "alice") + outcomes_for(b, 100, "bob") + outcomes_for(d[:3], 200)
    assert core.report("walk", mixed) == 19
    assert sum(core.teacher("walk", "alice").per_task.values()) == 8
    assert sum(core.teacher("walk", "bob").per_task.values()) == 8
    assert sum(core.teacher("walk", "default").per_task.values()) == 3
    snap = core.snapshot()["curricula"]["walk"]
    assert set(snap["students"]) == {"alice", "bob", "default"}
    assert snap["students"]["alice"]["outcomes"] == 8


def test_shared_students_share_one_teacher():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX, students="shared")
    a = core.sample_tasks("walk", "alice", 4)
    b = core.sample_tasks("walk", "bob", 4)
    assert core.teacher("walk", "alice") is core.teacher("walk", "bob")
    core.report("walk", outcomes_for(a, 0, "alice") + outcomes_for(b, 10, "bob"))
    assert sum(core.teacher("walk", "x").per_task.values()) == 8
    assert list(core.snapshot()["curricula"]["walk"]["students"]) == ["*"]


def test_a_slow_update_does_not_block_another_curriculum():
    core = TeacherServiceCore()
    core.add_curriculum("slow", lambda s: SlowUpdateTeacher(BOX), space=BOX)
    core.add_curriculum("fast", "random", BOX)
    tasks = core.sample_tasks("slow", n=4)
    worker = threading.Thread(target=core.report, args=("slow", outcomes_for(tasks, 0)))
    worker.start()
    time.sleep(0.05)  # the slow update now holds its curriculum
    t0 = time.perf_counter()
    core.sample("fast", n=64)
    waited = time.perf_counter() - t0
    worker.join()
    assert waited < 0.3, waited
    assert sum(core.teacher("slow").per_task.values()) == 4


def test_actor_body_takes_curricula_as_mapping_or_list_and_resumes(tmp_path):
    """The actor class runs in-process too (no Ray started): same constructor Ray calls."""
    kw = dict(event_log=str(tmp_path / "e.jsonl"), checkpoint_dir=str(tmp_path / "ckpt"), metrics=False)
    a = TeacherServiceActor(curricula={"walk": {"teacher": "random", "space": BOX.to_dict()}}, **kw)
    b_tasks = decode_tasks(a.sample("walk", "s", 5))
    assert a.report("walk", encode_outcomes(outcomes_for(b_tasks, 0, "s"))) == 5
    a.checkpoint()
    a.close()
    again = TeacherServiceActor(curricula=[{"name": "walk", "teacher": "random", "space": BOX}], resume=True, **kw)
    assert again.curricula() == ["walk"] and again.snapshot()["version"] == 1
    assert again.snapshot()["curricula"]["walk"]["students"]["s"]["outcomes"] == 5
    again.close()


def test_a_wave_of_socket_requests_applies_its_reports_as_one_update_then_answers_each_as_alone():
    """`TeacherServiceActor._serve_wave`: several clients' requests read together by the socket's thread."""
    a = TeacherServiceActor(curricula={"walk": {"teacher": "test_counting", "space": BOX.to_dict()}}, metrics=False)
    tasks = decode_tasks(a.sample("walk", "default", 30))
    good = [encode_outcomes(outcomes_for(tasks[i : i + 10], i)) for i in (0, 10)]
    bad = encode_outcomes(outcomes_for(tasks[20:30], 20))
    bad.returns[0] = float("nan")
    refill = ("walk", "default", 4, None, False)
    requests = [
        (REPORT, pickle.dumps(("walk", good[0]))),
        (EXCHANGE, pickle.dumps(("walk", good[1], *refill[1:]))),
        (SAMPLE, pickle.dumps(refill)),
        (EXCHANGE, pickle.dumps(("walk", bad, *refill[1:]))),
        (REPORT, b"not a pickle"),
        (REPORT, pickle.dumps(("walk",))),  # the wrong shape: this caller's error alone
    ]
    out = a._serve_wave(requests)
    assert isinstance(out[5], Exception)
    assert pickle.loads(out[0]) == 10
    accepted, tasks_bytes = pickle.loads(out[1])
    assert accepted == 10 and len(pickle.loads(tasks_bytes)) == 4
    assert len(pickle.loads(out[2])) == 4
    refused, tasks_bytes = pickle.loads(out[3])  # the refused report's error comes back; its refill still does
    assert isinstance(refused, Exception) and "returns[0]" in str(refused) and len(pickle.loads(tasks_bytes)) == 4
    assert isinstance(out[4], Exception)
    teacher = a.core.teacher("walk")
    assert teacher.stats()["update_calls"] == 1 and sum(teacher.per_task.values()) == 20  # both reports, one update
    a.close()


def test_a_hot_call_request_reads_the_same_by_ray_call_and_in_a_wave():
    """`unpack_request`: each op's body as its (report, refill) halves; other shapes and ops refused."""
    batch = encode_outcomes([Outcome("t", 1.0, episode_id="e")])
    refill = ("walk", "s", 4, "peer", True)
    assert unpack_request(SAMPLE, pickle.dumps(refill)) == (None, refill)
    report, none = unpack_request(REPORT, pickle.dumps(("walk", batch)))
    assert none is None and report is not None and report[0] == "walk" and len(report[1]) == 1
    report, got = unpack_request(EXCHANGE, pickle.dumps(("walk", batch, *refill[1:])))
    assert got == refill and report is not None and report[0] == "walk"
    with pytest.raises(ValueError, match="unpack"):
        unpack_request(SAMPLE, pickle.dumps(("walk", batch)))  # a report's body sent as a refill
    with pytest.raises(ValueError, match="unknown hot-call op"):
        unpack_request(99, pickle.dumps(refill))


# --------------------------------------------------------------------- dedup
def test_reported_episodes_count_once():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=10)
    outs = outcomes_for(tasks, 0)
    assert core.report("walk", outs[:6]) == 6
    assert core.report("walk", outs[4:] + outs[8:9]) == 4  # 4, 5 resent; 8 twice in one batch
    no_id = [Outcome(tasks[0].id, 1.0), Outcome(tasks[0].id, 1.0)]
    assert core.report("walk", no_id) == 2  # no episode id: cannot be deduplicated
    teacher = core.teacher("walk")
    assert sum(teacher.per_task.values()) == 12
    assert all(teacher.episodes[o.episode_id] == 1 for o in outs)
    c = core.snapshot()["curricula"]["walk"]["counters"]
    assert (
        c["outcomes_received"],
        c["outcomes_accepted"],
        c["duplicates_dropped"],
        c["outcomes_without_episode_id"],
    ) == (15, 12, 3, 2)


# ------------------------------------------------------ in-process client
def test_local_client_buffers_and_flushes():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX)
    client = LocalTeacherClient(
        core, "walk", "alice", buffer_size=10, low_watermark=3, flush_every=4, flush_interval_s=3600
    )
    tasks = [client.next_task() for _ in range(25)]
    s = client.stats()
    assert s["refills"] == 4 and s["stalls"] == 0 and s["tasks_served"] == 25
    assert s["buffered"] == s["tasks_received"] - 25 and 3 <= s["buffered"] <= 10
    for t in tasks[:10]:
        client.report(Outcome(t.id, 1.0))
    assert client.stats()["flushes"] == 2 and client.stats()["outbox"] == 2
    client.close()
    teacher = core.teacher("walk", "alice")  # default student_id was attributed to alice
    assert sum(teacher.per_task.values()) == 10
    ids = list(teacher.episodes)
    assert len(set(ids)) == 10 and all(len(e) == 16 for e in ids)  # unique, packable episode ids
    assert all(teacher.per_task[t.id] >= 1 for t in tasks[:10])  # task ids untouched


def test_local_client_text_curriculum_ships_each_text_once():
    texts = ["reach the 🏔 summit", "пройти уровень", "e\u0301\u0301", "tab\tand\nnewline"]
    core = TeacherServiceCore()
    core.add_curriculum("talk", "random", TextSpace(texts), students="shared")
    client = LocalTeacherClient(core, "talk", buffer_size=32, low_watermark=8)
    got = [client.next_task() for _ in range(100)]
    assert {t.text for t in got} == set(texts)
    view = core._peers[("talk", client.token)]
    assert len(view) == len(texts)
    # A fresh receiver is served the contents again.
    other = LocalTeacherClient(core, "talk", buffer_size=8, low_watermark=2)
    assert other.next_task().text in texts
    client.close()
    other.close()


def test_report_accepts_lists_and_batches():
    core = TeacherServiceCore()
    core.add_curriculum("walk", "test_counting", BOX)
    tasks = core.sample_tasks("walk", n=6)
    assert core.report("walk", encode_outcomes(outcomes_for(tasks[:3], 0))) == 3
    assert core.report("walk", outcomes_for(tasks[3:], 3)) == 3
    assert core.report("walk", []) == 0
