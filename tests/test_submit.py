"""`openended submit` against a real `ray start --head` on 127.0.0.1 with token auth on."""

from __future__ import annotations

import json
import os
import pathlib
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
    _, alive = psutil.wait_procs(family, timeout=30)
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
