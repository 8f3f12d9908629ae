"""`openended run` end to end: the README quick start, kill -9 + --resume conservation, and
errors that stop before Ray starts. Runs the real CLI in subprocesses (real local Ray)."""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import psutil
import pytest
from run_support import check_invariant, latest_set, log_prefix, only_run_dir, start_run, wait_for

from openended.runtime.batch_json import outcome_batch_from_json
from openended.runtime.codec import decode_outcomes
from openended.runtime.eventlog import iter_events

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ray


def _cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "openended.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def _run_dir(base: pathlib.Path) -> pathlib.Path:
    dirs = [p for p in base.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _logged_episode_ids(rd: pathlib.Path) -> list[str]:
    ids: list[str] = []
    for entry in iter_events(rd / "events.jsonl", 0):
        if entry.event.get("ev") == "outcome":
            ids += [o.episode_id for o in decode_outcomes(outcome_batch_from_json(entry.event["outcomes"]))]
    return ids


def _final_teacher_outcomes(rd: pathlib.Path) -> int:
    ckpts = sorted((rd / "checkpoints" / "teacher").glob("checkpoint-*.json"))
    state = json.loads(ckpts[-1].read_text())
    return sum(t["counts"]["outcomes"] for c in state["curricula"] for t in c["teachers"].values())


def _toy_run(tmp_path: pathlib.Path, *sets: str) -> pathlib.Path:
    """The README's quick-start experiment with ``--set`` overrides, to completion; its run directory."""
    overrides = [arg for item in sets for arg in ("--set", item)]
    res = _cli("run", "experiments/toy_alpgmm.yaml", "--run-dir", str(tmp_path), "--no-progress", *overrides)
    assert res.returncode == 0, res.stderr[-3000:]
    return _run_dir(tmp_path)


def test_quick_start_experiment_runs_and_learns(tmp_path):
    rd = _toy_run(tmp_path, "run.iterations=60", "run.checkpoint_every=30")
    rows = [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == list(range(1, 61))
    assert rows[-1]["episodes_total"] == 6000
    assert rows[-1]["mastered"] > 0.0  # the toy student learnt something from the curriculum
    assert json.loads((rd / "status.json").read_text())["state"] == "finished"
    ids = _logged_episode_ids(rd)
    assert len(ids) == len(set(ids)) == 6000 == _final_teacher_outcomes(rd)
    status = _cli("status", str(rd))
    assert status.returncode == 0 and "finished" in status.stdout


def test_a_service_with_several_threads_counts_every_episode_once(tmp_path):
    """``resources.service_threads``: pools report concurrently, queued reports go in as groups."""
    rd = _toy_run(tmp_path, "run.iterations=20", "resources.service_threads=4")
    ids = _logged_episode_ids(rd)
    assert len(ids) == len(set(ids)) == 2000 == _final_teacher_outcomes(rd)
    state = json.loads(sorted((rd / "checkpoints" / "teacher").glob("checkpoint-*.json"))[-1].read_text())
    (cur,) = state["curricula"]
    updates = sum(t["counts"]["update_calls"] for t in cur["teachers"].values())
    assert cur["counters"]["report_calls"] >= updates > 0


def test_kill_9_then_resume_loses_and_double_counts_nothing(tmp_path):
    """kill -9 at a random moment (a second writer refused before): after the resume the accounting
    invariant of docs/reliability.md holds at every metrics row, and the killed run's embedded Ray
    left nothing behind."""
    proc = start_run(tmp_path, "run.iterations=100000", "run.checkpoint_every=10")
    try:
        wait_for(lambda: list(tmp_path.iterdir()) and latest_set(only_run_dir(tmp_path)) >= 20, 240, "set 20", proc)
        rd = only_run_dir(tmp_path)
        second = _cli("run", "--resume", str(rd), "--no-progress")
        assert second.returncode == 2 and f"in use by pid {proc.pid} on host" in second.stderr
        time.sleep(random.uniform(0.0, 1.0))  # a random moment: between sets, or inside one
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the CLI alone, as a user's kill -9 would
        proc.communicate(timeout=60)
    leftovers = [p["pid"] for p in json.loads((rd / "ray_session.json").read_text())["processes"]]
    latest = latest_set(rd)
    prefix = log_prefix(rd)
    res = _cli("run", "--resume", str(rd), "--no-progress", "--set", f"run.iterations={latest + 15}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in leftovers)
    assert log_prefix(rd).startswith(prefix), "a resume changed what was already logged"
    numbers = check_invariant(rd)
    assert numbers["rewinds"] <= 1 and numbers["rows"] == latest + 15
    assert numbers["counted"] == 100 * (latest + 15)


@pytest.mark.slow
def test_kill_9_while_writing_a_checkpoint_set_then_resume_from_the_one_before(tmp_path):
    """The run kills itself after every member of set 20 is written, before its manifest: the
    resume says so, takes set 10 (the teacher file of set 20 is superseded), and the invariant holds."""
    proc = start_run(tmp_path, "run.iterations=100", "run.checkpoint_every=10", kill_at_checkpoint=20)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    rd = only_run_dir(tmp_path)
    assert latest_set(rd) == 10 and (rd / "checkpoints" / "iter_000020" / "teacher.json").is_file()
    res = _cli("run", "--resume", str(rd), "--no-progress", "--set", "run.iterations=25")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming from checkpoint set iter_000010; skipped iter_000020: no manifest.json" in res.stderr
    numbers = check_invariant(rd)
    assert numbers["rewinds"] == 1 and numbers["logged"] > numbers["counted"] == 2500


def test_bad_config_stops_before_ray_with_field_path(tmp_path):
    res = _cli(
        "run",
        "experiments/toy_alpgmm.yaml",
        "--run-dir",
        str(tmp_path),
        "--set",
        "run.iteratons=3",
        "--set",
        "teacher.config.fit_rate=0",
    )
    assert res.returncode == 2
    assert "run.iteratons: unknown field. Did you mean 'iterations'?" in res.stderr
    assert not list(tmp_path.iterdir()), "no run directory for an invalid experiment"
    res = _cli("run", "experiments/toy_alpgmm.yaml", "--run-dir", str(tmp_path), "--set", "teacher.name=alp-gmn")
    assert res.returncode == 2 and "teacher.name: unknown teacher 'alp-gmn'. Did you mean 'alp_gmm'?" in res.stderr
    res = _cli("run", "--resume", str(tmp_path))
    assert res.returncode == 2 and "not a run directory" in res.stderr


@pytest.mark.parametrize(
    "experiment", sorted(str(p.relative_to(ROOT / "experiments")) for p in (ROOT / "experiments").rglob("*.yaml"))
)
def test_every_shipped_experiment_validates(experiment, capsys, monkeypatch):
    """`openended check` on every file, in this process (a subprocess per file cost ~3 s of imports each;
    the CLI in a subprocess is covered by the other tests here)."""
    from openended.cli import main

    monkeypatch.chdir(ROOT)
    code = main(["check", f"experiments/{experiment}"])
    out = capsys.readouterr()
    assert code in (0, None), out.err[-2000:]
    assert out.out.strip().splitlines()[-1].startswith("ok: ")


def test_multiagent_ppo_run_reports_one_outcome_per_episode(tmp_path):
    """PettingZoo multiwalker in RLlib multi-agent PPO (shared policy) from the YAML file."""
    res = _cli(
        "run",
        "experiments/multiwalker_alpgmm.yaml",
        "--run-dir",
        str(tmp_path),
        "--no-progress",
        "--set",
        "run.iterations=1",
        "--set",
        "algo.config.train_batch_size_per_learner=500",
        "--set",
        "algo.config.minibatch_size=250",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rd = _run_dir(tmp_path)
    ids = _logged_episode_ids(rd)
    assert ids and len(ids) == len(set(ids)) == _final_teacher_outcomes(rd)
    ckpts = sorted((rd / "checkpoints" / "teacher").glob("checkpoint-*.json"))
    teacher = json.loads(ckpts[-1].read_text())["curricula"][0]["teachers"]["default"]
    assert teacher["counts"]["unknown_task_outcomes"] == 0  # every outcome names a task the teacher issued


def test_held_out_evaluation_of_an_rllib_policy(tmp_path):
    """PPO on Stump Tracks with the 100-task grid evaluated after the iteration."""
    res = _cli(
        "run",
        "experiments/bipedal_stumps_alpgmm.yaml",
        "--run-dir",
        str(tmp_path),
        "--no-progress",
        "--set",
        "run.iterations=1",
        "--set",
        "evaluation.every=1",
        "--set",
        "evaluation.max_steps=30",
        "--set",
        "algo.num_env_runners=0",
        "--set",
        "algo.config.train_batch_size_per_learner=500",
        "--set",
        "algo.config.minibatch_size=250",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rd = _run_dir(tmp_path)
    (ev,) = [json.loads(line) for line in (rd / "evaluations.jsonl").read_text().splitlines()]
    assert ev["tasks"] == 100 and len(ev["returns"]) == 100
    assert ev["mastered"] == 0.0 and ev["unfinished"] == 100  # 30 steps cannot master a 230-return task
    row = json.loads((rd / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["eval"]["tasks"] == 100 and row["mastered"] == 0.0


def test_evaluation_needs_a_learner():
    res = _cli("check", "experiments/toy_alpgmm.yaml", "--set", "evaluation.every=5")
    assert res.returncode == 2 and "evaluation.every needs an RLlib learner" in res.stderr
