"""Soak (``pytest -m soak``, not in the default suite): kill -9 a toy run at random moments and
resume it, again and again, for up to ``OPENENDED_SOAK_S`` seconds (default 600), checking the
accounting invariant of docs/reliability.md after every kill and at the end."""

from __future__ import annotations

import json
import os
import random
import signal
import time

import psutil
import pytest
from run_support import check_invariant, latest_set, log_prefix, only_run_dir, start_run, wait_for

from openended.runtime.rundir import RunDir

pytestmark = [pytest.mark.soak, pytest.mark.ray]
SOAK_S = float(os.environ.get("OPENENDED_SOAK_S", "600"))


def _rows(rd) -> int:
    return len(RunDir(rd).read_metrics())


def test_kill_and_resume_repeatedly_keeps_the_invariant(tmp_path):
    seed = int(os.environ.get("OPENENDED_SOAK_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    print(f"soak seed {seed} (OPENENDED_SOAK_SEED to repeat), {SOAK_S:.0f} s")
    deadline = time.monotonic() + SOAK_S
    sets = ("run.iterations=1000000", "run.checkpoint_every=2")
    proc = start_run(tmp_path, *sets)
    wait_for(lambda: any(tmp_path.iterdir()), 300, "the run directory", proc)
    rd = only_run_dir(tmp_path)
    leftovers: list[int] = []
    cycles = 0
    while True:
        rows_before = _rows(rd)
        wait_for(lambda before=rows_before: _rows(rd) > before, 300, "an iteration after the (re)start", proc)
        time.sleep(rng.uniform(0.0, 3.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        cycles += 1
        record = rd / "ray_session.json"
        if record.is_file():
            leftovers += [p["pid"] for p in json.loads(record.read_text())["processes"]]
        numbers = check_invariant(rd)
        print(f"cycle {cycles}: killed at row {numbers['rows']}, set {latest_set(rd)}: {numbers}")
        prefix = log_prefix(rd)
        if time.monotonic() > deadline:
            break
        kill_in_set = latest_set(rd) + 2 if rng.random() < 0.3 else None  # sometimes inside a set, on purpose
        proc = start_run(tmp_path, *sets, resume=str(rd), kill_at_checkpoint=kill_in_set)
        if kill_in_set is not None:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == -signal.SIGKILL, err[-3000:]
            assert log_prefix(rd).startswith(prefix)
            prefix = log_prefix(rd)
            proc = start_run(tmp_path, *sets, resume=str(rd))
    final = latest_set(rd) + 3
    proc = start_run(tmp_path, f"run.iterations={final}", "run.checkpoint_every=2", resume=str(rd))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert log_prefix(rd).startswith(prefix), "a resume changed what was already logged"
    numbers = check_invariant(rd)
    assert numbers["rows"] == final and numbers["counted"] == 100 * final
    alive = [pid for pid in leftovers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, f"processes of killed runs' embedded Ray still alive: {alive}"
    print(f"soak: {cycles} kills, {numbers}")
