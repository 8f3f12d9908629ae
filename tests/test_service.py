"""TeacherServiceCore without Ray: curricula, students, dedup, checkpoint + replay
(conservation: every episode reaches its teacher exactly once, across crashes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.runtime.client import LocalTeacherClient
from openended.runtime.codec import TaskBatch, decode_tasks, encode_outcomes
from openended.runtime.eventlog import iter_events
from openended.runtime.service import (
    EpisodeDedup,
    ServiceError,
    TeacherServiceActor,
    TeacherServiceCore,
    latest_checkpoint,
    student_seed,
)
from openended.tasks import Box, Discrete, Outcome, Task, TextSpace
from openended.teachers import BaseTeacher, TeacherConfig, register_teacher


class CountingConfig(TeacherConfig):
    """A tuple field, to check specs compare equal across JSON round trips."""

    bounds: tuple[float, float] = (0.0, 1.0)


class CountingTeacher(BaseTeacher):
    """Uniform sampling; counts every outcome it learns from, per task and per episode."""

    name = "test_counting"
    Config = CountingConfig

    def __init__(self, space, config=None):
        super().__init__(space, config)
        self.per_task: Counter = Counter()
        self.episodes: Counter = Counter()

    def _sample(self, n, student):
        return self.space.sample_uniform(self.rng, n)

    def _update(self, tasks, outcomes):
        for t, o in zip(tasks, outcomes):
            assert t.id == o.task_id
            self.per_task[o.task_id] += 1
            self.episodes[o.episode_id] += 1

    def _state_dict(self):
        return {"per_task": dict(self.per_task), "episodes": dict(self.episodes)}

    def _load_state_dict(self, state):
        self.per_task = Counter(state["per_task"])
        self.episodes = Counter(state["episodes"])


class UnseededTeacher(CountingTeacher):
    """Same state format, but sampling that no seed reproduces (like an LLM generator)."""

    def _sample(self, n, student):
        return self.space.sample_uniform(np.random.default_rng(), n)


class SlowUpdateTeacher(CountingTeacher):
    """An update that takes a while (like an ALP-GMM batch triggering several fits)."""

    def _update(self, tasks, outcomes):
        time.sleep(0.5)
        super()._update(tasks, outcomes)


register_teacher("test_counting", CountingTeacher, overwrite=True)
BOX = Box([0.0, 0.0], [1.0, 1.0], names=["a", "b"])


def outcomes_for(tasks: list[Task], start: int, student: str = "default") -> list[Outcome]:
    return [
        Outcome(t.id, float(i % 7), success=i % 2 == 0, length=10, student_id=student, episode_id=f"{start + i:016x}")
        for i, t in enumerate(tasks)
    ]


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


def test_threads_sampling_reporting_and_checkpointing_conserve_outcomes(tmp_path):
    core = _core(tmp_path)
    core.add_curriculum("a", "test_counting", BOX)
    core.add_curriculum("b", "test_counting", BOX, students="shared")

    def work(cur, student, base, core=core):
        for k in range(20):
            tasks = core.sample_tasks(cur, student, 16)
            core.report(cur, outcomes_for(tasks, base + 16 * k, student))

    threads = [
        threading.Thread(target=work, args=(c, s, 10_000 * i))
        for i, (c, s) in enumerate([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")])
    ]
    for t in threads:
        t.start()
    paths = [core.checkpoint() for _ in range(5)]
    for t in threads:
        t.join()
    assert len(set(paths)) == 5
    del core
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    counts = [sum(restored.teacher(c, s).episodes.values()) for c, s in [("a", "x"), ("a", "y"), ("b", "x")]]
    assert counts == [320, 320, 640]
    assert restored.counters["replay_mismatches"] == 0
    restored.close()


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


def test_dedup_memory_is_bounded_fifo():
    d = EpisodeDedup(capacity=3)
    assert d.new_rows(["a", "b", None, "a"]) == [0, 1, 2]
    d.commit(["a", "b", "c", "d"])
    assert len(d) == 3 and "a" not in d and "d" in d
    assert d.new_rows(["a", "d"]) == [0]
    restored = EpisodeDedup(capacity=3)
    restored.load_state_dict(json.loads(json.dumps(d.state_dict())))
    assert restored.new_rows(["b", "c", "e"]) == [2]


# -------------------------------------------------------- checkpoint/restore
def _core(tmp_path, **kw) -> TeacherServiceCore:
    return TeacherServiceCore(event_log=tmp_path / "events.jsonl", checkpoint_dir=tmp_path / "ckpt", **kw)


def test_conservation_across_checkpoint_crash_and_restore(tmp_path):
    """N episodes, reported across a checkpoint, a crash (core dropped, log kept, a torn
    last line) and a restore, with client resends: each reaches its teacher exactly once."""
    core = _core(tmp_path, fsync="never")
    core.add_curriculum("walk", "test_counting", BOX, config={"seed": 3})
    core.add_curriculum("talk", "test_counting", TextSpace(["sing ♪", "dance 💃", "read 読む"]), students="shared")
    walk_a = core.sample_tasks("walk", "alice", 40)
    talk = core.sample_tasks("talk", "bob", 30)
    assert core.report("walk", outcomes_for(walk_a[:25], 0, "alice")) == 25
    assert core.report("talk", outcomes_for(talk[:10], 1000, "bob")) == 10
    core.checkpoint()
    # After the checkpoint: more outcomes, resends of pre-checkpoint episodes, new tasks.
    assert core.report("walk", outcomes_for(walk_a[20:], 20, "alice")) == 15  # 20..24 are resends
    walk_b = core.sample_tasks("walk", "bob", 20)  # sampled after ckpt
    assert core.report("walk", outcomes_for(walk_b[:12], 500, "bob")) == 12
    assert core.report("talk", outcomes_for(talk[10:], 1010, "bob")) == 20
    before = {
        (c, s): (Counter(core.teacher(c, s).per_task), Counter(core.teacher(c, s).episodes))
        for c, s in [("walk", "alice"), ("walk", "bob"), ("talk", "bob")]
    }
    # Crash: the in-memory core is gone; the log survives with a torn final write.
    log_path = core.log.path
    del core
    with open(log_path, "ab") as f:
        f.write(b'{"ev":"outcome","cur":"walk","outcomes":{"n":3,"task_')

    core = TeacherServiceCore.restore(tmp_path / "ckpt", log_path)
    assert core.log.repaired_bytes > 0
    assert core.counters["replayed_outcomes"] == 15 + 12 + 20
    for (c, s), (per_task, episodes) in before.items():
        t = core.teacher(c, s)
        assert t.per_task == per_task and t.episodes == episodes
    # The client resends its last (unacknowledged) batches, then new episodes arrive:
    # late outcomes for tasks sampled after the checkpoint still find their task.
    assert core.report("walk", outcomes_for(walk_b[:12], 500, "bob")) == 0
    assert core.report("walk", outcomes_for(walk_b, 500, "bob")) == 8
    assert core.report("walk", outcomes_for(walk_a, 0, "alice")) == 0
    total_unique = 40 + 20 + 30
    everyone = [core.teacher("walk", "alice"), core.teacher("walk", "bob"), core.teacher("talk", "x")]
    assert sum(sum(t.episodes.values()) for t in everyone) == total_unique
    assert all(v == 1 for t in everyone for v in t.episodes.values())
    assert sum(t.stats()["unknown_task_outcomes"] for t in everyone) == 0
    # A second crash right after a restore, without a new checkpoint, changes nothing.
    core.log.close()
    again = TeacherServiceCore.restore(tmp_path / "ckpt", log_path)
    assert again.teacher("walk", "bob").episodes == core.teacher("walk", "bob").episodes
    again.close()


def test_kill_9_mid_run_then_restore_counts_every_logged_episode_once(tmp_path):
    """A real kill -9 of a process reporting and checkpointing in a loop."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_service import BOX, outcomes_for
        from openended.runtime.service import TeacherServiceCore
        core = TeacherServiceCore(event_log=sys.argv[1] + "/events.jsonl", checkpoint_dir=sys.argv[1] + "/ckpt",
                                  fsync="never")
        core.add_curriculum("walk", "test_counting", BOX)
        i = 0
        while True:
            tasks = core.sample_tasks("walk", "default", 64)
            core.report("walk", outcomes_for(tasks, i))
            core.report("walk", outcomes_for(tasks[:8], i))   # a resend of 8 episodes
            i += 64
            if i % 640 == 0:
                core.checkpoint()
            print(i, flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    acked = 0
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 64 * 25:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert latest_checkpoint(tmp_path / "ckpt") is not None
    logged = Counter()
    for e in iter_events(tmp_path / "events.jsonl"):
        if e.event["ev"] == "outcome":
            from openended.runtime.eventlog import decode_outcome

            logged.update(o.episode_id for o in decode_outcome(e.event)[1])
    core = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    t = core.teacher("walk")
    assert all(v == 1 for v in logged.values())  # the log holds each episode once
    assert t.episodes == logged  # the teacher saw exactly the logged ones
    assert sum(t.episodes.values()) >= acked  # nothing acknowledged was lost
    core.close()


def test_restore_without_checkpoint_replays_the_whole_log(tmp_path):
    core = _core(tmp_path)
    core.add_curriculum("lv", "test_counting", Discrete(["a", "b", "c"]), students="shared")
    tasks = core.sample_tasks("lv", "s", 9)
    core.report("lv", outcomes_for(tasks, 0))
    core.close()
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert again.curricula() == ["lv"]
    assert again.teacher("lv").per_task == core.teacher("lv").per_task
    again.close()


def _walk_run(core: TeacherServiceCore) -> None:
    """The same call sequence for the crashed run and its uncrashed twin."""
    core.add_curriculum("walk", "random", BOX, config={"seed": 9})
    core.report("walk", outcomes_for(core.sample_tasks("walk", "alice", 16), 0, "alice"))


def test_restore_continues_a_deterministic_teacher_exactly(tmp_path):
    core = _core(tmp_path)
    _walk_run(core)
    core.checkpoint()
    after = core.sample_tasks("walk", "alice", 16)  # logged after the checkpoint
    core.report("walk", outcomes_for(after[:5], 100, "alice"))
    del core  # crash
    twin = TeacherServiceCore()
    _walk_run(twin)
    assert twin.sample_tasks("walk", "alice", 16) == after
    twin.report("walk", outcomes_for(after[:5], 100, "alice"))
    lines_before = sum(1 for _ in iter_events(tmp_path / "events.jsonl"))
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert sum(1 for _ in iter_events(tmp_path / "events.jsonl")) == lines_before  # replay logs nothing
    assert restored.counters["replay_mismatches"] == 0
    # Replaying the sample call advanced the RNG: the restored teacher is the twin.
    assert restored.teacher("walk", "alice").state_dict() == twin.teacher("walk", "alice").state_dict()
    assert restored.sample_tasks("walk", "alice", 16) == twin.sample_tasks("walk", "alice", 16)
    restored.close()


def test_register_replay_never_calls_sample(tmp_path):
    core = _core(tmp_path, replay="register")
    core.add_curriculum("walk", "test_counting", BOX)
    core.checkpoint()
    tasks = core.sample_tasks("walk", "a", 8)
    del core
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl", replay="register")
    t = restored.teacher("walk", "a")
    assert t.stats()["sampled"] == 0 and all(t.task_for_id(x.id) == x for x in tasks)
    restored.close()


def test_checkpoints_are_atomic_versioned_and_pruned(tmp_path):
    core = _core(tmp_path, keep_checkpoints=2)
    core.add_curriculum("walk", "random", BOX)
    paths = [core.checkpoint() for _ in range(4)]
    assert [os.path.basename(p) for p in paths] == [f"checkpoint-{v:08d}.json" for v in (1, 2, 3, 4)]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint-00000003.json", "checkpoint-00000004.json"]
    snaps = [e.event for e in iter_events(tmp_path / "events.jsonl") if e.event["ev"] == "snapshot"]
    assert [s["version"] for s in snaps] == [1, 2, 3, 4]
    state = json.loads(open(paths[-1]).read())
    assert state["version"] == 4 and state["log_offset"] == snaps[-1]["offset"]
    core.close()
    assert TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl").version == 4


def test_restore_refuses_a_log_shorter_than_the_checkpoint(tmp_path):
    core = _core(tmp_path)
    core.add_curriculum("walk", "random", BOX)
    core.sample("walk", n=4)
    ckpt = core.checkpoint()
    core.close()
    (tmp_path / "other.jsonl").write_bytes(b"")
    with pytest.raises(ServiceError, match=rf"^{re.escape(ckpt)} covers the event log up to byte \d+, but "):
        TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "other.jsonl")


def test_factory_curricula_need_their_factory_again_on_restore(tmp_path):
    core = _core(tmp_path)
    core.add_curriculum("custom", lambda student: CountingTeacher(BOX), space=BOX)
    core.report("custom", outcomes_for(core.sample_tasks("custom", "a", 5), 0, "a"))
    core.checkpoint()
    late = core.sample_tasks("custom", "a", 7)
    del core
    msg = (
        "restore: curriculum 'custom' was built from a teacher object/factory; "
        "pass it again with teachers={'custom': ...}"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    # A teacher whose sampling is not reproducible: replay falls back to registering the
    # logged tasks, so late outcomes for them still count.
    restored = TeacherServiceCore.restore(
        tmp_path / "ckpt", tmp_path / "events.jsonl", teachers={"custom": lambda s: UnseededTeacher(BOX)}
    )
    assert restored.counters["replay_mismatches"] == 1
    assert restored.report("custom", outcomes_for(late, 50, "a")) == 7
    t = restored.teacher("custom", "a")
    assert sum(t.per_task.values()) == 12 and t.stats()["unknown_task_outcomes"] == 0
    restored.close()


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
