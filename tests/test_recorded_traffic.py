"""benchmarks/recorded_traffic.py: what a real pool sends is recorded whole and replayed faithfully."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from support import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "recorded_traffic.py"


def _bench() -> ModuleType:
    return load_script(BENCH, "recorded_traffic_bench")


@pytest.fixture(scope="module")
def toy_recording(tmp_path_factory):
    bench = _bench()
    return bench, bench.record("toy", 300, 20.0, tmp_path_factory.mktemp("rec"))


def test_a_recording_keeps_every_outcome_the_pool_reported(toy_recording):
    bench, rec = toy_recording
    assert rec.episodes >= 300
    assert sum(map(len, rec.batches)) == rec.episodes  # flushed at the end: nothing left in the outbox
    assert bench.forms(rec.batches) == {
        "episode_ids": "uint64",
        "task_ids": "uint64",
        "infos": "columns",
        "students": "1",
    }


def test_regrouping_keeps_rows_in_order_and_reports_after_their_samples(toy_recording):
    bench, rec = toy_recording
    grouped = list(bench.regrouped(rec.calls, 128))
    reports = [c[1] for c in grouped if c[0] == "report"]
    assert all(len(b) >= 128 for b in reports[:-1])
    ids = np.concatenate([b.episode_ids for b in reports])
    assert np.array_equal(ids, np.concatenate([b.episode_ids for b in rec.batches]))
    assert [c[0] for c in grouped].count("sample") == [c[0] for c in rec.calls].count("sample")


def test_the_plain_form_keeps_tasks_and_results_but_not_ids_or_infos(toy_recording):
    bench, rec = toy_recording
    batch = rec.batches[0]
    plain = bench.plain_form(batch)
    assert plain.task_id_list == batch.task_id_list and plain.student_names == batch.student_names
    assert np.array_equal(plain.returns, batch.returns) and np.array_equal(plain.success, batch.success)
    assert plain.infos is None and not np.array_equal(plain.episode_ids, batch.episode_ids)


def test_a_replay_measures_and_refuses_to_leave_the_recorded_path(toy_recording, tmp_path):
    bench, rec = toy_recording
    assert bench.replay(rec, rec.calls, tmp_path / "ok") > 0
    samples = [i for i, c in enumerate(rec.calls) if c[0] == "sample"]
    skipped = rec.calls[: samples[1]] + rec.calls[samples[1] + 1 :]  # the next sample draws the skipped one's tasks
    with pytest.raises(RuntimeError, match="other tasks|left the recorded path"):
        bench.replay(rec, skipped, tmp_path / "skipped")
    unsampled = [c for c in rec.calls if c[0] == "report"]  # outcomes for tasks this core never issued
    with pytest.raises(RuntimeError, match="left the recorded path"):
        bench.replay(rec, unsampled, tmp_path / "unsampled")
