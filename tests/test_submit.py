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
import urllib.error
import urllib.request

import psutil
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dashboard_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (auth may refuse the route)
    except OSError:
        return False


def _stop_head(head: subprocess.Popen) -> None:
    """End the head this module started, and only it: its process group, then any descendant left."""
    try:
        family = psutil.Process(head.pid).children(recursive=True)
    except psutil.Error:
        family = []
    try:
        os.killpg(head.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
    for p in family:  # workers and agents that left the group
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


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    temp = tmp_path_factory.mktemp("rayhead")
    short_temp = f"/tmp/oe-head-{os.getpid()}"  # unix socket paths must stay short
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    port, dash = _free_port(), _free_port()
    log = open(temp / "ray-start.log", "w")  # closed after the head is stopped
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",  # in the foreground, in its own process group: the fixture stops exactly this head
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
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 180
        while not _dashboard_up(address):
            assert head.poll() is None, (temp / "ray-start.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the Ray head did not come up in 180 s"
            time.sleep(0.5)
        yield {"env": env, "address": address, "runs": temp}
    finally:
        _stop_head(head)
        log.close()


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
