"""`openended video`: the run's saved policy on a chosen task, as a GIF (the slow test trains one
PPO iteration on Stump Tracks through the CLI, then renders it)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from openended.errors import ConfigError
from openended.runtime.video import parse_task
from openended.tasks import Box, Discrete

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_task_text_becomes_a_task_of_the_space():
    box = Box([0, 0], [3, 6], names=["stump_height", "obstacle_spacing"])
    assert parse_task(box, "1.5, 3").params == (1.5, 3.0)
    with pytest.raises(
        ConfigError, match=r"--task: .* needs 2 comma-separated numbers \(stump_height, obstacle_spacing\)"
    ):
        parse_task(box, "1.5")
    with pytest.raises(ConfigError, match=r"--task: '9,9' is not a task of Box"):
        parse_task(box, "9,9")
    assert parse_task(Discrete([0, 1, 2]), "2").params == (2,)


def test_only_gif_output_is_offered():
    from openended.runtime.video import write_video

    with pytest.raises(ConfigError, match=r"--out: 'walk.mp4': only GIF files are written"):
        write_video("runs/none", "1,1", "walk.mp4")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="300")
    return subprocess.run(
        [sys.executable, "-m", "openended.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.ray
@pytest.mark.slow
def test_a_trained_policy_is_rendered_on_the_chosen_task(tmp_path):
    sets = [
        "run.iterations=1",
        "evaluation.every=0",
        "algo.num_env_runners=0",
        "algo.config.train_batch_size_per_learner=500",
        "algo.config.minibatch_size=250",
        "algo.config.num_epochs=1",
        "logging.tensorboard=false",
    ]
    res = _cli(
        "run",
        "experiments/bipedal_stumps_alpgmm.yaml",
        "--run-dir",
        str(tmp_path),
        "--no-progress",
        *[x for s in sets for x in ("--set", s)],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (rd,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    out = tmp_path / "walk.gif"
    res = _cli("video", str(rd), "--task", "0.5,2", "--out", str(out), "--max-steps", "40", "--every", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{out}: task " in res.stdout and "[0.5, 2.0]" in res.stdout
    import imageio.v2 as imageio

    frames = imageio.mimread(str(out))
    assert 2 <= len(frames) <= 11 and frames[0].ndim == 3  # first frame + every 4th of at most 40 steps
    bad = _cli("video", str(rd), "--task", "0.5")
    assert bad.returncode == 2 and "needs 2 comma-separated numbers" in bad.stderr
