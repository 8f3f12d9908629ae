"""`scripts/science_minigrid.py report`: curves read from run directories, the area under the
curve, runs cut to a common horizon, held-out success split into hard mazes and levels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import load_script

from openended.envs import make_env

ROOT = Path(__file__).resolve().parents[1]
science = load_script(ROOT / "scripts" / "science_minigrid.py", "science_minigrid", register=False)


def _run_dir(tmp: Path, arm: str, teacher: str, seed: int, curve: list[tuple[int, list[bool]]]) -> Path:
    """A run directory with the science config and evaluations whose task_success follows ``curve``."""
    exp = yaml.safe_load((ROOT / "experiments" / "science" / "minigrid_maze_random.yaml").read_text())
    exp.update(name=f"science_{arm}", seed=seed)
    exp["teacher"]["name"] = teacher
    path = tmp / f"{arm}_{seed}"
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(exp))
    env = make_env("minigrid_maze", **exp["env"]["config"])
    tasks = env.test_tasks()  # 5 hard mazes first, then 20 levels
    env.close()
    lines = []
    for steps, ok in curve:
        success = {t.id: bool(o) for t, o in zip(tasks, ok)}
        lines.append(
            {"env_steps_total": steps, "mastered": sum(ok) / len(tasks), "mean_return": 0.1, "task_success": success}
        )
    (path / "evaluations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (path / "metrics.jsonl").write_text(json.dumps({"env_steps_total": curve[-1][0], "wall_s": 9.0}) + "\n")
    return path


def test_auc_is_the_mean_level_over_training():
    assert science.auc([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert science.auc([5], [0.4]) == 0.4


def test_report_reads_runs_and_compares_at_a_common_horizon(tmp_path):
    all_hard = [True] * 5 + [False] * 20
    one_level = [False] * 5 + [True] + [False] * 19
    _run_dir(tmp_path, "maze_a", "alp_gmm", 0, [(0, [False] * 25), (100, all_hard), (200, all_hard)])
    _run_dir(tmp_path, "maze_a", "alp_gmm", 1, [(0, [False] * 25), (100, one_level), (200, one_level)])
    _run_dir(tmp_path, "maze_b", "random", 0, [(0, [False] * 25), (100, one_level)])  # stopped early
    out = science.report(tmp_path, tmp_path / "r.json", None)
    a, b = out["summary"]["maze_a"], out["summary"]["maze_b"]
    assert a["env_steps"] == b["env_steps"] == 100  # everyone cut to the horizon all runs reached
    assert a["final_hard_success"]["mean"] == pytest.approx(0.5)  # seed 0 all 5, seed 1 none
    assert a["final_level_success"]["mean"] == pytest.approx(0.025)  # 0/20 and 1/20
    assert a["final_success"]["mean"] == pytest.approx((5 / 25 + 1 / 25) / 2)
    assert a["final_success"]["std"] == pytest.approx((5 / 25 - 1 / 25) / 2**0.5)  # sample std
    assert b["final_success"]["n"] == 1 and b["auc_success"]["mean"] == pytest.approx(0.5 / 25)
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["maze_a"]["seeds"] == [0, 1]
