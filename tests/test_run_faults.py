"""Faults during a run, in this process on a local Ray: disk full and permission errors end the
run in one line with status.json saying why, and a killed teacher service or env pool is
restarted by Ray while the run goes on with the invariant intact (docs/reliability.md)."""

from __future__ import annotations

import errno
import json
import pathlib
import threading

import pytest
from support import local_ray

from openended.config import load_experiment
from openended.errors import RunFailed
from openended.runtime import checkpoints
from openended.runtime.batch_json import outcome_batch_from_json
from openended.runtime.codec import decode_outcomes
from openended.runtime.eventlog import iter_events
from openended.runtime.rundir import RunDir
from openended.runtime.runlock import lock_holder

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _ray():
    with local_ray("openended", __name__):
        yield


def _exp(**overrides: object):
    sets = [f"{k.replace('__', '.')}={v}" for k, v in overrides.items()]
    return load_experiment(ROOT / "experiments" / "toy_alpgmm.yaml", sets)


def _rows(rd: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]


def _episode_ids(rd: pathlib.Path) -> list[str]:
    ids: list[str] = []
    for e in iter_events(rd / "events.jsonl"):
        if e.event["ev"] == "outcome":
            ids += [o.episode_id for o in decode_outcomes(outcome_batch_from_json(e.event["outcomes"]))]
    return ids


def _no_temp_files(rd: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in rd.rglob("*") if ".tmp" in p.name]


def test_disk_full_ends_the_run_in_one_line_with_the_reason_in_status(tmp_path, monkeypatch):
    from openended.runtime.run import run_experiment

    real_append = RunDir.append_metrics

    def append(self: RunDir, row: dict) -> None:
        if row["iteration"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.metrics_path))
        real_append(self, row)

    monkeypatch.setattr(RunDir, "append_metrics", append)
    with pytest.raises(RunFailed) as err:
        run_experiment(_exp(run__iterations=5, run__checkpoint_every=2), base_dir=str(tmp_path), progress=False)
    message = str(err.value)
    assert "\n" not in message and "No space left on device" in message and "metrics.jsonl" in message
    (rd,) = tmp_path.iterdir()
    status = json.loads((rd / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == message and status["iteration"] == 2
    assert _no_temp_files(rd) == [] and lock_holder(rd) is None


def test_a_read_only_checkpoint_ends_the_run_and_leaves_no_partial_set(tmp_path, monkeypatch):
    from openended.runtime.run import run_experiment

    real_write = checkpoints.atomic_write_json

    def write(path: pathlib.Path, obj: object) -> None:
        if path.name == "manifest.json" and obj["iteration"] == 4:  # type: ignore[index]
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_write(path, obj)

    monkeypatch.setattr(checkpoints, "atomic_write_json", write)
    with pytest.raises(RunFailed, match=r"Permission denied: .*manifest.json"):
        run_experiment(_exp(run__iterations=6, run__checkpoint_every=2), base_dir=str(tmp_path), progress=False)
    (rd,) = tmp_path.iterdir()
    assert json.loads((rd / "status.json").read_text())["state"] == "failed"
    assert sorted(p.name for p in (rd / "checkpoints").glob("iter_*")) == ["iter_000002"]
    assert _no_temp_files(rd) == []


@pytest.mark.slow
def test_a_killed_service_and_a_killed_pool_come_back_and_the_run_goes_on(tmp_path, monkeypatch):
    """Kill -9 (Ray's ``ray.kill``) of the teacher service, then of an env pool, while a step runs."""
    from openended.runtime import drivers
    from openended.runtime.run import run_experiment, service_name_for

    real_train = drivers.PoolDriver.train_iteration
    seen: dict[str, object] = {"iteration": 0}

    def train(self: drivers.PoolDriver) -> dict:
        seen["iteration"] = it = int(seen["iteration"]) + 1  # type: ignore[call-overload]
        service = ray.get_actor(seen["service"], namespace=self.exp.ray.namespace)
        if it == 4:  # between calls: the log after the last set is replayed by the restarted service
            ray.kill(service, no_restart=False)
        if it == 5:
            seen["replayed_events"] = ray.get(service.snapshot.remote())["counters"]["replayed_events"]
            threading.Timer(0.2, lambda: ray.kill(service, no_restart=False)).start()  # during the step
        if it == 6:
            threading.Timer(0.2, lambda: ray.kill(self.pools[0], no_restart=False)).start()
        return real_train(self)

    monkeypatch.setattr(drivers.PoolDriver, "train_iteration", train)
    real_create = RunDir.create

    def create(exp, base=None):  # type: ignore[no-untyped-def]
        rd = real_create(exp, base)
        seen["service"] = service_name_for(rd)
        return rd

    monkeypatch.setattr(RunDir, "create", staticmethod(create))
    exp = _exp(run__iterations=8, run__checkpoint_every=2, pool__steps_per_call=3000)
    summary = run_experiment(exp, base_dir=str(tmp_path), progress=False)
    assert summary["state"] == "finished"
    rd = pathlib.Path(summary["run_dir"])
    rows = _rows(rd)
    assert [r["iteration"] for r in rows] == list(range(1, 9))
    assert all(r["outcomes_accepted"] == r["episodes_total"] for r in rows), [
        (r["outcomes_accepted"], r["episodes_total"]) for r in rows
    ]
    assert seen["replayed_events"] > 0  # the restarted service restored itself from checkpoint + log
    assert [r["iteration"] for r in rows if r.get("pool_restarts")] == [6]
    assert rows[-1]["episodes_interrupted"] == exp.pool.envs_per_pool
    ids = _episode_ids(rd)
    assert len(ids) == len(set(ids)) == rows[-1]["episodes_total"]
