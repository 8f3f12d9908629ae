"""The run lifecycle without Ray: one writer per run, checkpoint sets and resume, superseded
outcomes, damaged files, safe paths, `openended status`, the embedded Ray's leftovers and the
submit address. Each test names the guarantee of docs/reliability.md it backs."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from service_support import BOX, outcomes_for

from openended.cli import main
from openended.config import load_experiment
from openended.errors import ConfigError, RunDirError
from openended.runtime import checkpoints, raysession, runfiles
from openended.runtime.checkpoints import SetDamaged
from openended.runtime.core import TeacherServiceCore
from openended.runtime.eventlog import decode_outcome, iter_events
from openended.runtime.jobs import dashboard_address
from openended.runtime.resume import prepare_resume
from openended.runtime.rundir import RunDir
from openended.runtime.runlock import Holder, RunLock, lock_holder, pid_alive, process_start_ticks
from openended.runtime.status import summarize

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOY = {"name": "life", "env": {"family": "toy"}, "teacher": {"name": "random"}}


def _run_dir(tmp_path: pathlib.Path) -> RunDir:
    return RunDir.create(load_experiment(dict(TOY)), tmp_path)


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    """The ``openended`` command, in this process (the same `main` the console script runs)."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> _Result:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return _Result(code, out, err)

    return run


def _holding_process(run_dir: pathlib.Path) -> subprocess.Popen:
    """A process that takes the run's lock and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from openended.runtime.runlock import RunLock
        RunLock({str(run_dir)!r}).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# ------------------------------------------------------------ one writer per run
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_run(tmp_path, cli):
    rd = _run_dir(tmp_path)
    proc = _holding_process(rd.path)
    try:
        with pytest.raises(RunDirError, match=rf"in use by pid {proc.pid} on host \S+ since \d{{4}}-\d\d-\d\d"):
            RunLock(rd.path).acquire(wait_s=0.1)
        holder = lock_holder(rd.path)
        assert isinstance(holder, Holder) and holder.pid == proc.pid
        res = cli("run", "--resume", str(rd.path), "--no-progress")  # refused before Ray starts
        assert res.returncode == 2
        (line,) = [ln for ln in res.stderr.splitlines() if "error" in ln]
        assert f"in use by pid {proc.pid}" in line and "Traceback" not in res.stderr
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert lock_holder(rd.path) is None  # the OS released it with the process
    with RunLock(rd.path) as lock:
        assert lock.held
        with pytest.raises(RunDirError, match="in use by pid"):  # flock conflicts within one process too
            RunLock(rd.path).acquire(wait_s=0.0)


def test_a_live_recorded_pid_is_refused_and_a_reused_pid_is_not(tmp_path):
    rd = _run_dir(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = Holder(sleeper.pid, os.uname().nodename, "then", process_start_ticks(sleeper.pid))
        assert pid_alive(sleeper.pid, live.start_ticks)
        with pytest.raises(RunDirError, match=rf"status.json says pid {sleeper.pid} .* alive"):
            RunLock(rd.path).acquire(recorded=live)
        reused = Holder(sleeper.pid, live.host, "then", (live.start_ticks or 0) + 1)  # same pid, another process
        assert not pid_alive(sleeper.pid, reused.start_ticks)
        with RunLock(rd.path) as lock:
            assert lock.held
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not pid_alive(sleeper.pid, live.start_ticks)


# ------------------------------------------------------------ checkpoint sets
def _write_set(rd: RunDir, iteration: int, teacher_file: str | None = None, offset: int = 0) -> None:
    with rd.checkpoint_set(iteration) as ckpt:
        ckpt.reserve("pool/default/0", "pool-default-0.json").write_text(json.dumps([{"it": iteration}]))
        if teacher_file is not None:
            ckpt.link("teacher", teacher_file, "teacher.json")
        ckpt.commit(event_log_offset=offset, totals={"episodes_total": 100 * iteration})


def test_resume_takes_the_newest_complete_set_and_says_which_it_skipped(tmp_path):
    rd = _run_dir(tmp_path)
    for it in (10, 20, 30):
        _write_set(rd, it)
    (rd.checkpoints / "iter_000030" / "pool-default-0.json").write_text("[{}]")  # damaged member
    (rd.checkpoints / "iter_000040").mkdir()  # a set whose writing was cut short
    skipped: list[SetDamaged] = []
    ckpt = rd.newest_checkpoint(on_skip=skipped.append)
    assert ckpt is not None and ckpt.iteration == 20 and ckpt.totals["episodes_total"] == 2000
    assert [str(s) for s in skipped] == [
        "iter_000040: no manifest.json (its writing was interrupted)",
        "iter_000030: member 'pool/default/0' (pool-default-0.json) does not match the manifest (4 bytes, expected 12)",
    ]
    lines: list[str] = []
    point = prepare_resume(rd, say=lines.append)
    assert point.iteration == 20 and len(lines) == 1 and "resuming from checkpoint set iter_000020" in lines[0]
    (rd.checkpoints / "iter_000020" / "manifest.json").write_text("")  # an empty manifest
    assert rd.newest_checkpoint().iteration == 10
    # Writing a set again clears what an interrupted or damaged attempt left.
    _write_set(rd, 30)
    assert rd.newest_checkpoint().iteration == 30


def test_manifest_paths_cannot_leave_the_set_and_latest_json_is_not_trusted(tmp_path):
    rd = _run_dir(tmp_path)
    _write_set(rd, 10)
    manifest = rd.checkpoints / "iter_000010" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["members"]["pool/default/0"]["path"] = "../../../../etc/passwd"
    manifest.write_text(json.dumps(data))
    with pytest.raises(RunDirError, match=r"leads outside"):
        checkpoints.load_set(manifest.parent)
    skipped: list[SetDamaged] = []
    assert rd.newest_checkpoint(on_skip=skipped.append) is None and "leads outside" in str(skipped[0])
    (rd.checkpoints / "latest.json").write_text(json.dumps({"iteration": 99, "dir": "../../../../etc"}))
    assert rd.newest_checkpoint() is None  # resume lists the sets itself
    with pytest.raises(RunDirError, match=r"no usable checkpoint set .*leads outside.*would start the run over"):
        prepare_resume(rd, say=print)  # never a silent fresh start
    shutil.rmtree(rd.checkpoints / "iter_000010")
    with pytest.raises(RunDirError, match=r"latest.json names a set that is not there"):
        prepare_resume(rd, say=print)


def test_a_failed_set_leaves_nothing_behind(tmp_path):
    rd = _run_dir(tmp_path)
    with pytest.raises(OSError), rd.checkpoint_set(10) as ckpt:
        ckpt.reserve("pool/default/0", "pool-default-0.json").write_text("[]")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not (rd.checkpoints / "iter_000010").exists()
    with pytest.raises(RunDirError, match="member name"), rd.checkpoint_set(10) as ckpt:
        ckpt.reserve("../x", "x.json")


def test_checkpoints_without_manifests_from_older_code_are_refused_clearly(tmp_path):
    rd = _run_dir(tmp_path)
    (rd.checkpoints / "iter_000010").mkdir()
    (rd.checkpoints / "latest.json").write_text(json.dumps({"iteration": 10, "dir": "iter_000010"}))
    with pytest.raises(RunDirError, match="before checkpoint sets"):
        rd.newest_checkpoint()


# -------------------------------------------------- superseded outcomes, resume
def _crashed_run(rd: RunDir) -> tuple[int, int]:
    """A run that checkpointed a set at iteration 1 and was killed after logging more (and a
    teacher checkpoint the set never got). Returns (outcomes at the set, outcomes logged)."""
    core = TeacherServiceCore(event_log=rd.events_path, checkpoint_dir=rd.teacher_checkpoints)
    core.add_curriculum("main", "test_counting", BOX)
    core.report("main", outcomes_for(core.sample_tasks("main", "default", 50), 0))
    _write_set(rd, 1, core.checkpoint(), core.last_checkpoint_offset or 0)
    core.report("main", outcomes_for(core.sample_tasks("main", "default", 30), 1000))
    core.checkpoint()  # killed while writing set 2: the teacher file exists, the set does not
    core.report("main", outcomes_for(core.sample_tasks("main", "default", 20), 2000))
    del core  # kill -9
    with open(rd.events_path, "ab") as f:
        f.write(b'{"ev":"outcome","cur":"ma')  # a torn last line
    return 50, 100


def _logged_ids(rd: RunDir) -> list[str]:
    return [
        o.episode_id
        for e in iter_events(rd.events_path)
        if e.event["ev"] == "outcome"
        for o in decode_outcome(e.event)[1]
    ]


def test_resume_supersedes_what_was_logged_after_the_set_and_a_service_restart_skips_it_too(tmp_path):
    rd = _run_dir(tmp_path)
    at_set, logged = _crashed_run(rd)
    point = prepare_resume(rd, say=print)
    assert point.iteration == 1 and point.teacher_checkpoint is not None
    rewinds = [e.event for e in iter_events(rd.events_path) if e.event["ev"] == "rewind"]
    assert rewinds == [dict(rewinds[0], **{"from": point.checkpoint.event_log_offset, "iteration": 1})]
    assert point.superseded == (rewinds[0]["from"], rewinds[0]["to"])

    def restore() -> TeacherServiceCore:
        return TeacherServiceCore.restore(rd.teacher_checkpoints, rd.events_path, candidates=[point.teacher_checkpoint])

    core = restore()  # the teacher restored with the students: the set's state, not the killed run's
    assert sum(core.teacher("main").episodes.values()) == at_set
    assert core.counters["checkpoints_skipped"] == 1  # the teacher file taken after the set
    core.report("main", outcomes_for(core.sample_tasks("main", "default", 7), 5000))
    del core  # the service actor dies during the resumed run; Ray runs the same constructor
    again = restore()
    assert sum(again.teacher("main").episodes.values()) == at_set + 7
    assert again.counters["superseded_events"] > 0
    ids = _logged_ids(rd)
    assert len(ids) == len(set(ids)) == logged + 7  # nothing logged was lost, nothing twice
    again.close()


def test_resume_without_any_set_starts_the_teacher_from_scratch_too(tmp_path):
    rd = _run_dir(tmp_path)
    core = TeacherServiceCore(event_log=rd.events_path, checkpoint_dir=rd.teacher_checkpoints)
    core.add_curriculum("main", "test_counting", BOX)
    core.report("main", outcomes_for(core.sample_tasks("main", "default", 40), 0))
    core.checkpoint()
    del core
    point = prepare_resume(rd, say=print)
    assert point.iteration == 0 and point.checkpoint is None
    core = TeacherServiceCore.restore(rd.teacher_checkpoints, rd.events_path)
    assert core.curricula() == []  # everything was superseded: the run starts over, curriculum included
    core.close()


def test_a_truncated_teacher_checkpoint_falls_back_to_an_older_one(tmp_path):
    core = TeacherServiceCore(event_log=tmp_path / "events.jsonl", checkpoint_dir=tmp_path / "ckpt")
    core.add_curriculum("main", "test_counting", BOX)
    for i in range(3):
        core.report("main", outcomes_for(core.sample_tasks("main", "default", 10), 100 * i))
        newest = core.checkpoint()
    del core
    data = pathlib.Path(newest).read_bytes()
    pathlib.Path(newest).write_bytes(data[: len(data) // 2])
    restored = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert sum(restored.teacher("main").episodes.values()) == 30
    assert restored.counters["checkpoints_skipped"] == 1
    restored.close()


# ---------------------------------------------------------------- damaged files
def test_a_torn_last_line_is_repaired_and_other_damage_names_file_and_line(tmp_path, cli):
    rd = _run_dir(tmp_path)
    for it in range(1, 5):
        rd.append_metrics({"iteration": it})
    with open(rd.metrics_path, "a") as f:
        f.write('{"iteration": 5, "epis')
    assert [r["iteration"] for r in rd.read_metrics()] == [1, 2, 3, 4]
    assert rd.truncate_metrics(3)["iteration"] == 3
    assert rd.metrics_path.read_text().splitlines() == [json.dumps({"iteration": i}) for i in (1, 2, 3)]
    lines = rd.metrics_path.read_text().splitlines()
    lines[1] = "garbage"
    rd.metrics_path.write_text("\n".join(lines) + "\n")
    before = rd.metrics_path.read_bytes()
    with pytest.raises(RunDirError, match=r"metrics.jsonl line 2: not a JSON object"):
        rd.truncate_metrics(1)
    assert rd.metrics_path.read_bytes() == before  # never a silent rewrite
    res = cli("run", "--resume", str(rd.path), "--no-progress")
    assert res.returncode == 2 and "metrics.jsonl line 2" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "damage",
    ["empty latest.json", "latest.json without iteration", "status.json", "manifest", "metrics", "config.yaml"],
)
def test_status_reads_damaged_run_directories_without_a_traceback(tmp_path, cli, damage):
    rd = _run_dir(tmp_path)
    rd.append_metrics({"iteration": 1, "episodes_total": 10})
    rd.append_metrics({"iteration": 2, "episodes_total": 20})
    _write_set(rd, 2)
    rd.write_status({"state": "finished", "iteration": 2})
    target, text = {
        "empty latest.json": (rd.checkpoints / "latest.json", ""),
        "latest.json without iteration": (rd.checkpoints / "latest.json", '{"dir": "iter_000002"}'),
        "status.json": (rd.status_path, "{"),
        "manifest": (rd.checkpoints / "iter_000002" / "manifest.json", "[1, 2]"),
        "metrics": (rd.metrics_path, 'x\n{"iteration": 2}\n'),
        "config.yaml": (rd.config_path, ""),
    }[damage]
    target.write_text(text)
    res = cli("status", str(rd.path))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    s = summarize(str(rd.path))
    if damage in ("status.json", "metrics", "config.yaml"):
        assert target.name in s["problems"] or "name" in s["problems"]
    else:
        assert "problems" not in s


def test_status_tells_a_crashed_run_from_a_running_one(tmp_path, cli):
    rd = _run_dir(tmp_path)
    proc = _holding_process(rd.path)
    me = Holder.from_dict({"pid": proc.pid, "host": os.uname().nodename, "start_ticks": process_start_ticks(proc.pid)})
    rd.write_status({"state": "running", "iteration": 3, "pid": me.pid, "host": me.host, "pid_start": None})
    try:
        assert summarize(str(rd.path))["state"] == f"running (pid {proc.pid})"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    expected = f"crashed (pid {proc.pid} not alive); resume with --resume {rd.path}"
    assert summarize(str(rd.path))["state"] == expected
    res = cli("status", str(rd.path))
    assert res.stdout.splitlines()[:2] == [f"run {rd.path}", f"state: {expected}"]


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "status.json"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    core = TeacherServiceCore(checkpoint_dir=tmp_path / "ckpt")
    core.add_curriculum("main", "test_counting", BOX)
    monkeypatch.setattr(runfiles.os, "fsync", full)  # the same os module the service's checkpoints use
    with pytest.raises(OSError, match="No space left"):
        runfiles.atomic_write_json(target, {"state": "running"})
    with pytest.raises(OSError, match="No space left"):
        core.checkpoint()
    assert [p.name for p in tmp_path.rglob("*")] == ["ckpt"]


# ------------------------------------------------------------------------ paths
@pytest.mark.parametrize(
    "override, field",
    [("name=../../x", "name"), ("name=/abs/x", "name"), ("students=[a, a/b]", "students"), ("name=", "name")],
)
def test_names_that_become_paths_are_refused_by_check(override, field):
    with pytest.raises(ConfigError, match=rf"^invalid configuration for Experiment:\n{field}: "):
        load_experiment(ROOT / "experiments" / "toy_alpgmm.yaml", [override])


def test_check_names_the_field_of_an_unsafe_name(cli):
    res = cli("check", "experiments/toy_alpgmm.yaml", "--set", "name=../../x")
    assert res.returncode == 2 and "name: Value error, becomes part of a file or folder name" in res.stderr


def test_run_dir_files_that_link_out_of_the_run_are_refused(tmp_path):
    rd = _run_dir(tmp_path)
    (tmp_path / "elsewhere.jsonl").write_text("")
    rd.metrics_path.symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(RunDirError, match="a link out of the run directory"):
        RunDir.open(rd.path)


# ------------------------------------------------------ embedded Ray's leftovers
def test_stop_leftovers_stops_exactly_the_recorded_processes(tmp_path):
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        p, q = psutil.Process(ours.pid), psutil.Process(other.pid)
        record = {
            "host": os.uname().nodename,
            "driver": {"pid": 999_999_999, "start": 0.0},  # the killed run's driver: gone
            "processes": [
                {"pid": p.pid, "start": p.create_time(), "name": "ray::DashboardAgent"},
                {"pid": q.pid, "start": q.create_time() - 100.0, "name": "a reused pid"},  # not that process
            ],
        }
        (tmp_path / raysession.RECORD).write_text(json.dumps(record))
        assert raysession.stop_leftovers(tmp_path, timeout_s=10) == 1
        assert ours.wait(timeout=10) is not None and other.poll() is None
        assert not (tmp_path / raysession.RECORD).exists()
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------- submit
def test_a_submit_address_without_scheme_is_fixed_up_or_refused_at_once(cli):
    assert dashboard_address("127.0.0.1:8265") == "http://127.0.0.1:8265"
    assert dashboard_address("head.example:8265") == "http://head.example:8265"
    assert dashboard_address("https://h:1") == "https://h:1" and dashboard_address("auto") == "auto"
    with pytest.raises(ConfigError, match="give the Ray dashboard URL"):
        dashboard_address("not an address")
    t0 = time.monotonic()
    res = cli("submit", "experiments/toy_alpgmm.yaml", "--address", "127.0.0.1:9")
    assert res.returncode == 2 and "cannot reach a Ray dashboard there" in res.stderr
    assert time.monotonic() - t0 < 30  # no 40 s wait for a cluster that is not there
