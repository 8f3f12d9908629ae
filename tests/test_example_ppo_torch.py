"""examples/ppo_torch.py: a plain-PyTorch PPO loop fed by the teacher service through the public client.

Every finished episode's outcome reaches the teacher (its count equals the loop's), the PPO
losses are finite, and the Ray variant does the same through the service actor."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
from support import load_script

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ppo_torch.py"


def _example():
    return load_script(EXAMPLE, "ppo_torch_example", register=False)


def test_a_few_updates_in_process_report_every_episode_to_the_teacher():
    args = ["--local", "--teacher", "random", "--teacher-config", "{}", "--updates", "2"]
    summary = _example().main([*args, "--num-envs", "2", "--num-steps", "96", "--epochs", "1"])
    assert summary["env_steps"] == 2 * 2 * 96
    assert summary["episodes"] >= 1  # a random Gaussian policy falls within ~100 steps
    assert summary["teacher_outcomes"] == summary["episodes"]
    for row in summary["history"]:
        assert math.isfinite(row["policy_loss"]) and math.isfinite(row["value_loss"])


@pytest.mark.ray
@pytest.mark.slow
def test_the_example_runs_against_the_ray_service():
    res = subprocess.run(
        [sys.executable, str(EXAMPLE), "--updates", "2", "--num-envs", "2", "--num-steps", "128"],
        cwd=ROOT,
        env=dict(os.environ, RAY_raylet_start_wait_time_s="300"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["episodes"] >= 1 and summary["teacher_outcomes"] == summary["episodes"]
