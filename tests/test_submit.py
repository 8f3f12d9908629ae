"""`openended submit` against a real `ray start --head` on 127.0.0.1 with token auth on."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _head_processes(pgid: int, temp_dir: str) -> list[psutil.Process]:
    """The processes of the head this module started: its process group, every process whose command
    line names its own temp dir (GCS, raylet, dashboard), and their descendants (the raylet's agents)."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid or any(temp_dir in arg for arg in p.cmdline()):
                found[p.pid] = p
                found.update((c.pid, c) for c in p.children(recursive=True))
        except (OSError, psutil.Error):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop_head(pgid: int, temp_dir: str) -> None:
    """End the head this module started, and only it (never `ray stop --force`: that stops every Ray here)."""
    family = _head_processes(pgid, temp_dir)
    for p in family:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(family, timeout=8)  # a stopping raylet can linger: kill what is left
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=30)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    temp = tmp_path_factory.mktemp("rayhead")
    short_temp = f"/tmp/oe-head-{os.getpid()}-{time.time_ns() % 10**6}"  # unique; socket paths must stay short
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_raylet_start_wait_time_s="300",  # a loaded machine can take over a minute to register the node
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    port, dash = _free_port(), _free_port()
    start = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dash),
            # The job agent's HTTP port defaults to a fixed 52365: another Ray on this machine
            # (a second test run, an embedded run) holds it, the agent dies, and every submit
            # answers "No available agent to submit job".
            "--dashboard-agent-listen-port",
            str(_free_port()),
            "--num-cpus",
            "2",
            "--temp-dir",
            short_temp,
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the head's processes stay in it after `ray start` exits
    )
    pgid = start.pid
    try:
        out, _ = start.communicate(timeout=300)  # returns once the head is up (minutes on a loaded machine)
        assert start.returncode == 0, out[-2000:]
        yield {"env": env, "address": f"http://127.0.0.1:{dash}", "runs": temp}
    finally:
        _stop_head(pgid, short_temp)


def _alive_actors(head: dict, name: str) -> int:
    """How many ALIVE actors named ``name`` the head has (Ray's state API, through its CLI)."""
    res = subprocess.run(
        [
            str(BIN / "ray"),
            "list",
            "actors",
            "--address",
            head["address"],
            "--filter",
            "state=ALIVE",
            "--format",
            "json",
            "--limit",
            "1000",
        ],
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    if "No resource in the cluster" in res.stdout:  # what Ray prints for an empty listing
        return 0
    return sum(1 for a in json.loads(res.stdout[res.stdout.find("[") :]) if a.get("name") == name)


def test_submit_toy_experiment_succeeds_with_token_auth(head):
    runs = head["runs"]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "openended.cli",
            "submit",
            "experiments/toy_alpgmm.yaml",
            "--address",
            head["address"],
            "--follow",
            "--set",
            "run.iterations=10",
            "--set",
            f"run.dir={runs}",
        ],
        cwd=ROOT,
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "submitted job: raysubmit_" in res.stdout
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 10


def test_submit_with_a_wrong_token_is_refused(head):
    env = dict(head["env"], RAY_AUTH_TOKEN="not-the-token")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "openended.cli",
            "submit",
            "experiments/toy_alpgmm.yaml",
            "--address",
            head["address"],
            "--set",
            "run.iterations=1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "the cluster refused the token" in res.stderr
    assert "submitted job" not in res.stdout


def test_submit_to_nothing_names_the_address():
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "openended.cli",
            "submit",
            "experiments/toy_alpgmm.yaml",
            "--address",
            f"http://127.0.0.1:{_free_port()}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "cannot reach a Ray dashboard there" in res.stderr


@pytest.mark.slow
def test_a_stopped_jobs_run_continues_when_resubmitted_with_resume(head):
    """The job's driver is killed (kill -9); its detached teacher service lives on; `submit
    --resume RUN_DIR` takes that service over (one service, never two) and continues the run."""
    from run_support import check_invariant, only_run_dir, wait_for

    from openended.runtime.runlock import lock_holder

    runs = head["runs"] / "resume"
    runs.mkdir()
    sets = ["run.iterations=300", "run.checkpoint_every=5", f"run.dir={runs}", "resources.service_detached=true"]
    first = subprocess.run(
        [sys.executable, "-m", "openended.cli", "submit", "experiments/toy_alpgmm.yaml", "--address", head["address"]]
        + [x for s in sets for x in ("--set", s)],
        cwd=ROOT,
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert "submitted job: " in first.stdout
    wait_for(lambda: any(runs.iterdir()), 300, "the run directory")
    rd = only_run_dir(runs)
    metrics = rd / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 12, 300, "12 iterations")
    # kill -9 of the job's driver (a lost node, an OOM kill): nothing of the run is shut down cleanly
    driver_pid = json.loads((rd / "status.json").read_text())["pid"]
    os.kill(driver_pid, signal.SIGKILL)
    wait_for(lambda: lock_holder(rd) is None, 120, "the killed driver to release the run lock")
    service = f"openended-teacher-{rd.name}"
    assert _alive_actors(head, service) == 1, "the detached teacher service died with its driver"
    done_before = len(metrics.read_text().splitlines())
    assert done_before < 300, "the job finished before it was stopped: nothing to resume"
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "openended.cli",
            "submit",
            "--resume",
            str(rd),
            "--address",
            head["address"],
            "--follow",
        ],
        cwd=ROOT,
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "taking over the live teacher service" in again.stdout + again.stderr
    assert json.loads((rd / "status.json").read_text())["state"] == "finished"
    assert _alive_actors(head, service) == 0  # the finished run stopped the service it took over
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["iteration"] for r in rows] == list(range(1, 301))  # redone from the last set, never twice
    check_invariant(rd)
