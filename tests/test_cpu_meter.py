"""benchmarks/cpu_meter.py: the CPU a benchmark's processes spend inside its timed loops, by role."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from support import load_script

_meter = load_script(Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_meter.py", "cpu_meter")
CpuMeter, ray_session_roles = _meter.CpuMeter, _meter.ray_session_roles


def _spin(cpu_seconds: float) -> None:
    """Run on the CPU until this process has used ``cpu_seconds`` more (however loaded the machine)."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def test_only_the_timed_blocks_are_counted_for_each_role():
    meter = CpuMeter()
    with meter.timed():  # nothing watched yet: a no-op
        _spin(0.05)
    assert meter.seconds == {}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        meter.watch({"me": [os.getpid()], "idle": [sleeper.pid]})
        _spin(0.3)  # outside any timed block
        with meter.timed():
            _spin(0.4)
        with meter.timed():
            _spin(0.2)
        got = meter.reset()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert 0.5 <= got["me"] < 0.85  # 0.6 s inside, the 0.3 s outside left out (clock ticks of slack)
    assert got["idle"] < 0.1
    assert meter.seconds == {"me": 0.0, "idle": 0.0}
    with meter.timed():  # the sleeper is gone: it counts nothing, and nothing fails
        _spin(0.05)
    assert meter.seconds["idle"] == 0.0


def test_without_ray_only_the_driver_has_a_role():
    roles = ray_session_roles()
    assert roles["driver"] == [os.getpid()]
    assert set(roles) == {"driver", "service", "ray"}
