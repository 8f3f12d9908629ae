"""Event log: append, read from offsets, survive a torn last line (kill -9)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from openended.runtime.codec import encode_outcomes, encode_tasks
from openended.runtime.eventlog import (
    EventLog,
    EventLogCorrupt,
    decode_outcome,
    decode_sampled,
    iter_events,
    read_events,
    repair_torn_tail,
)
from openended.tasks import Box, Outcome, TextSpace


def test_append_and_read_back_with_offsets(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, fsync="always") as log:
        starts = [log.append({"ev": "x", "i": i, "text": "ünï\ncode ✓"}) for i in range(5)]
        assert log.offset == path.stat().st_size
    entries = list(iter_events(path))
    assert [e.event["i"] for e in entries] == list(range(5))
    assert [e.offset for e in entries] == starts
    assert all(a.end == b.offset for a, b in zip(entries, entries[1:]))
    assert entries[0].event["text"] == "ünï\ncode ✓"
    assert path.read_bytes().isascii()  # unicode is escaped: one event, one line
    later, nxt = read_events(path, entries[2].offset)
    assert [e.event["i"] for e in later] == [2, 3, 4] and nxt == path.stat().st_size
    first_two, nxt = read_events(path, 0, max_events=2)
    assert [e.event["i"] for e in first_two] == [0, 1] and nxt == entries[2].offset


def test_torn_last_line_is_skipped_then_repaired(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, fsync="never")
    for i in range(3):
        log.append({"ev": "x", "i": i})
    log.close()
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b'{"ev":"outcome","cur":"walk","outco')  # a write cut short
    entries, nxt = read_events(path)
    assert [e.event["i"] for e in entries] == [0, 1, 2] and nxt == good
    log = EventLog(path)  # reopening truncates the torn fragment
    assert log.repaired_bytes == len(b'{"ev":"outcome","cur":"walk","outco') and log.offset == good
    log.append({"ev": "x", "i": 3})
    log.close()
    assert [e.event["i"] for e in iter_events(path)] == [0, 1, 2, 3]
    assert repair_torn_tail(path) == 0


def test_reader_survives_kill_9_of_a_writer(tmp_path):
    path = tmp_path / "events.jsonl"
    code = (
        "import sys\n"
        "from openended.runtime.eventlog import EventLog\n"
        "log = EventLog(sys.argv[1], fsync='never')\n"
        "blob = 'x' * 200_000\n"  # big lines make a cut mid-line likely
        "i = 0\n"
        "while True:\n"
        "    log.append({'ev': 'x', 'i': i, 'blob': blob})\n"
        "    i += 1\n"
        "    if i == 20: print('ready', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    entries = list(iter_events(path))
    assert len(entries) >= 20
    assert [e.event["i"] for e in entries] == list(range(len(entries)))
    assert all(len(e.event["blob"]) == 200_000 for e in entries)
    size = path.stat().st_size
    log = EventLog(path)
    assert log.offset == entries[-1].end == size - log.repaired_bytes
    log.close()


def test_corrupt_complete_line_raises(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"ev":"x","i":0}\nnot json\n{"ev":"x","i":2}\n')
    with pytest.raises(EventLogCorrupt, match=r"line at byte 17 is not JSON"):
        list(iter_events(path))


def test_offset_must_start_a_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"ev":"x","i":0}\n{"ev":"x","i":1}\n')
    msg = f"{path}: offset 5 is not the start of a line"
    with pytest.raises(EventLogCorrupt, match=f"^{re.escape(msg)}$"):
        list(iter_events(path, 5))
    assert [e.event["i"] for e in iter_events(path, 17)] == [1]


def test_missing_file_reads_as_empty(tmp_path):
    assert read_events(tmp_path / "nope.jsonl") == ([], 0)


def test_interval_fsync_runs_in_the_background(tmp_path):
    log = EventLog(tmp_path / "e.jsonl", fsync="interval", fsync_interval_s=0.02)
    log.append({"ev": "x"})
    deadline = time.monotonic() + 5
    while log.n_fsyncs == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.n_fsyncs >= 1  # fsynced without another write
    n = log.n_fsyncs
    time.sleep(0.1)
    assert log.n_fsyncs == n  # nothing new: no fsync
    log.close()
    assert log.closed and log._syncer is None


def test_bad_fsync_policy_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"^EventLog.fsync: must be one of never/interval/always, got 'sometimes'$"):
        EventLog(tmp_path / "e.jsonl", fsync="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("enc", ["b64", "list"])
def test_typed_events_round_trip(tmp_path, enc):
    path = tmp_path / "events.jsonl"
    box = Box([0, 0], [1, 2])
    tasks = box.sample_uniform(np.random.default_rng(0), 16)
    texts = TextSpace(["walk ✓", "найти алмаз"]).sample_uniform(np.random.default_rng(1), 5)
    outcomes = [
        Outcome(
            t.id,
            float(i),
            success=i % 2 == 0,
            length=i,
            student_id="s",
            episode_id=f"{i:016x}",
            info={"np": np.float32(0.5)} if i == 0 else {},
        )
        for i, t in enumerate(tasks)
    ]
    with EventLog(path, array_encoding=enc) as log:
        log.curriculum("walk", {"teacher": "random"})
        log.sampled("walk", "alice", encode_tasks(tasks, "box"))
        log.sampled("talk", "bob", encode_tasks(texts, "text"))
        log.outcome("walk", encode_outcomes(outcomes))
        log.snapshot("/ckpt/checkpoint-00000001.json", 1, 123)
    ev = [e.event for e in iter_events(path)]
    assert [e["ev"] for e in ev] == ["curriculum", "sampled", "sampled", "outcome", "snapshot"]
    assert decode_sampled(ev[1]) == ("walk", "alice", tasks)
    assert decode_sampled(ev[2]) == ("talk", "bob", texts)
    cur, got = decode_outcome(ev[3])
    assert cur == "walk" and got[1:] == outcomes[1:]
    assert got[0].info == {"np": 0.5}  # numpy values in infos become plain JSON numbers
