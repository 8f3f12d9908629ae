"""Crash recovery without Ray: checkpoints, restore, event-log replay, episode dedup
(conservation: every episode reaches its teacher exactly once, across crashes)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from service_support import (
    BOX,
    LEVELS,
    ArrayStateTeacher,
    CountingTeacher,
    UnseededTeacher,
    fixture_outcomes,
    fixture_run,
    logged_core,
    outcomes_for,
)

from openended.errors import ConfigError, ServiceError
from openended.runtime import core as core_module
from openended.runtime.batch_json import task_batch_to_json
from openended.runtime.codec import TaskTable, decode_tasks, encode_tasks
from openended.runtime.core import TeacherServiceCore
from openended.runtime.eventlog import decode_outcome, decode_sampled, iter_events
from openended.runtime.recovery import EpisodeDedup, episode_keys, latest_checkpoint
from openended.tasks import Discrete, TextSpace


# --------------------------------------------------------------------- dedup
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
def test_conservation_across_checkpoint_crash_and_restore(tmp_path):
    """N episodes, reported across a checkpoint, a crash (core dropped, log kept, a torn
    last line) and a restore, with client resends: each reaches its teacher exactly once."""
    core = logged_core(tmp_path, fsync="never")
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
        from service_support import BOX, outcomes_for
        from openended.runtime.core import TeacherServiceCore
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
            logged.update(o.episode_id for o in decode_outcome(e.event)[1])
    core = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    t = core.teacher("walk")
    assert all(v == 1 for v in logged.values())  # the log holds each episode once
    assert t.episodes == logged  # the teacher saw exactly the logged ones
    assert sum(t.episodes.values()) >= acked  # nothing acknowledged was lost
    core.close()


def test_restore_without_checkpoint_replays_the_whole_log(tmp_path):
    core = logged_core(tmp_path)
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
    core = logged_core(tmp_path)
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
    core = logged_core(tmp_path, replay="register")
    core.add_curriculum("walk", "test_counting", BOX)
    core.checkpoint()
    tasks = core.sample_tasks("walk", "a", 8)
    del core
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl", replay="register")
    t = restored.teacher("walk", "a")
    assert t.stats()["sampled"] == 0 and all(t.task_for_id(x.id) == x for x in tasks)
    restored.close()


def test_checkpoints_are_atomic_versioned_and_pruned(tmp_path):
    core = logged_core(tmp_path, keep_checkpoints=2)
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
    core = logged_core(tmp_path)
    core.add_curriculum("walk", "random", BOX)
    core.sample("walk", n=4)
    ckpt = core.checkpoint()
    core.close()
    (tmp_path / "other.jsonl").write_bytes(b"")
    with pytest.raises(ServiceError, match=rf"^{re.escape(ckpt)} covers the event log up to byte \d+, but "):
        TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "other.jsonl")


def test_factory_curricula_need_their_factory_again_on_restore(tmp_path):
    core = logged_core(tmp_path)
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


def test_threads_sampling_reporting_and_checkpointing_conserve_outcomes(tmp_path):
    core = logged_core(tmp_path)
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


# ------------------------------------------- files written before openended.jsonio
FORMAT1 = Path(__file__).parent / "data" / "format1"


def test_checkpoint_and_log_written_by_older_code_still_restore_exactly(tmp_path):
    """tests/data/format1: a format-1 checkpoint (teacher arrays of four dtypes, numpy
    scalars) and the log after it (a sampled batch sent to a peer, an outcome batch with a
    numpy info), both written before the JSON encoders were merged."""
    run = tmp_path / "run"
    shutil.copytree(FORMAT1, run)
    restored = TeacherServiceCore.restore(run / "ckpt", run / "events.jsonl")
    twin = TeacherServiceCore()  # the same calls, never crashed
    fixture_run(twin)
    assert restored.version == 1
    assert restored.counters["replay_mismatches"] == 0 and restored.counters["replayed_outcomes"] == 2
    teacher, expected = restored.teacher("lv", "s"), twin.teacher("lv", "s")
    assert teacher.state_dict() == expected.state_dict()  # RNG, issued tasks, arrays: exact
    assert [teacher.returns.dtype, teacher.visits.dtype, teacher.table.dtype, teacher.big.dtype] == [
        np.float64,
        np.int64,
        np.float32,
        np.uint64,
    ]
    assert teacher.returns.tobytes() == expected.returns.tobytes()
    assert restored.snapshot()["curricula"]["lv"]["counters"] == twin.snapshot()["curricula"]["lv"]["counters"]
    assert restored.sample_tasks("lv", "s", 8) == twin.sample_tasks("lv", "s", 8)
    restored.close()


def test_teacher_state_written_by_older_code_loads_exactly():
    teacher = ArrayStateTeacher(LEVELS)
    teacher.load_state_dict(json.loads((FORMAT1 / "teacher_state.json").read_text()))
    twin = ArrayStateTeacher(LEVELS)
    twin.update(fixture_outcomes(twin.sample(3), 0))
    assert teacher.state_dict() == twin.state_dict()
    assert json.loads(json.dumps(twin.state_dict())) == twin.state_dict()  # plain JSON, as before
    assert teacher.sample(6) == twin.sample(6)


def test_teacher_arrays_survive_a_checkpoint_bit_for_bit(tmp_path):
    core = logged_core(tmp_path)
    fixture_run(core)
    live = core.teacher("lv", "s")
    live.table[0] = [np.float32(1e-40), np.float32(-0.0), np.float32(np.inf)]  # subnormal, -0, inf
    live.returns = np.append(live.returns, [np.nextafter(0.1, 1.0), 1e308])
    core.checkpoint()
    core.close()
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", None)
    back = restored.teacher("lv", "s")
    for name in ("returns", "visits", "table", "big"):
        a, b = getattr(live, name), getattr(back, name)
        assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes()), name
    assert back.rng.bit_generator.state == live.rng.bit_generator.state
    restored.close()


# -------------------------------------- sampled batches: one encoding, log and peer
@pytest.mark.parametrize(
    "space", [Discrete(40), TextSpace([f"task {i} ✓" for i in range(40)])], ids=["discrete", "text"]
)
def test_logged_and_peer_batches_decode_to_the_same_tasks_and_replay(tmp_path, space):
    core = logged_core(tmp_path, fsync="never")
    core.add_curriculum("lv", "test_counting", space, config={"seed": 1})
    table = TaskTable()
    served, shipped = [], []
    for k in range(6):
        batch = core.sample("lv", "s", 32, peer="client", reset_peer=k == 4)
        served.append(decode_tasks(batch, table))
        shipped.append(len(batch.new_rows))
    assert shipped[4] == len({t.id for t in served[4]})  # after a reset every distinct content travels
    assert min(shipped[1:4]) < len({t.id for t in served[1]})  # otherwise cached contents do not
    core.report("lv", outcomes_for(served[5], 0, "s"))
    sampled = [e.event for e in iter_events(tmp_path / "events.jsonl") if e.event["ev"] == "sampled"]
    assert [decode_sampled(e)[2] for e in sampled] == served  # self-contained: no table needed
    for event, tasks in zip(sampled, served):
        assert event["tasks"] == task_batch_to_json(encode_tasks(tasks, space.kind))  # what the log always held
    before = core.teacher("lv", "s").state_dict()
    del core  # crash: the log survives
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert restored.counters["replay_mismatches"] == 0
    assert restored.teacher("lv", "s").state_dict() == before
    restored.close()


def test_a_sample_with_log_and_peer_packs_its_tasks_once(tmp_path, monkeypatch):
    packed = []

    class CountingColumns(core_module.TaskColumns):
        def __init__(self, tasks, kind):
            packed.append(len(tasks))
            super().__init__(tasks, kind)

    monkeypatch.setattr(core_module, "TaskColumns", CountingColumns)
    core = logged_core(tmp_path)
    core.add_curriculum("lv", "random", Discrete(50))
    table = TaskTable()
    for _ in range(3):
        assert len(decode_tasks(core.sample("lv", "s", 16, peer="client"), table)) == 16
    assert packed == [16, 16, 16]
    core.close()


def test_dedup_keys_an_episode_the_same_whichever_way_its_batch_was_encoded():
    """A canonical id is one episode as a ``uint64`` column or inside a list column."""
    canonical = f"{0xABC:016x}"
    d = EpisodeDedup(capacity=8)
    d.commit(episode_keys(np.array([0xABC], dtype=np.uint64)))
    assert canonical in d
    assert d.new_rows(episode_keys([canonical, "not-canonical", None])) == [1, 2]
    d.commit(episode_keys([canonical, "not-canonical", None]))
    assert len(d) == 2
    state = json.loads(json.dumps(d.state_dict()))
    assert state["ids"] == [canonical, "not-canonical"]  # ids, not keys, in checkpoints
    restored = EpisodeDedup(capacity=1)  # a smaller capacity drops the oldest first
    restored.load_state_dict(state)
    assert canonical not in restored and "not-canonical" in restored


def test_dedup_evicts_oldest_across_and_within_commits():
    d = EpisodeDedup(capacity=5)
    d.commit(episode_keys(np.arange(3, dtype=np.uint64)))
    d.commit(episode_keys(np.arange(3, 7, dtype=np.uint64)))  # 7 ids: 0 and 1 go
    assert len(d) == 5
    assert d.new_rows(episode_keys(np.arange(7, dtype=np.uint64))) == [0, 1]
    d.commit(episode_keys(np.arange(7, 10, dtype=np.uint64)))  # 2, 3, 4 go: a partial commit left
    assert [f"{i:016x}" in d for i in range(10)] == [False] * 5 + [True] * 5
