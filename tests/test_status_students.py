"""`openended status` of a several-student run: one named row per student, mastered in percent."""

from __future__ import annotations

import pathlib

from openended.config import load_experiment
from openended.runtime.run import _combine
from openended.runtime.rundir import RunDir
from openended.runtime.status import print_status, summarize

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_rows_of_several_students_are_named_and_shown_per_student(tmp_path, capsys):
    exp = load_experiment(ROOT / "experiments" / "toy_multi_student.yaml")
    alice = {"episodes": 10, "episodes_total": 30, "env_steps_total": 30, "mean_return": 0.5, "mastered": 0.25}
    bob = {"episodes": 30, "episodes_total": 90, "env_steps_total": 90, "mean_return": 0.1, "mastered": 0.125}
    row = _combine([alice, bob], exp.students)
    assert [r["student"] for r in row["per_student"]] == ["alice", "bob"]
    assert row["episodes_total"] == 120 and row["mean_return"] == (0.5 * 10 + 0.1 * 30) / 40
    rd = RunDir.create(exp, tmp_path)
    rd.append_metrics({"iteration": 3, **row})
    rd.write_status({"state": "finished", "iteration": 3})

    s = summarize(str(rd.path))
    assert s["students"] == {
        "alice": {"episodes": 30, "env_steps": 30, "mean_return": 0.5, "mastered": 0.25},
        "bob": {"episodes": 90, "env_steps": 90, "mean_return": 0.1, "mastered": 0.125},
    }
    print_status(str(rd.path))
    out = capsys.readouterr().out
    assert "mastered" in out and "18.8 %" in out  # the run's mean of 25 % and 12.5 %
    lines = [ln for ln in out.splitlines() if "alice" in ln or "bob" in ln]
    assert len(lines) == 2 and "25.0 %" in lines[0] and "12.5 %" in lines[1]


def test_a_one_student_run_keeps_its_learner_stats_at_the_top():
    row = _combine([{"episodes": 1, "learner": {"default_policy": {"entropy": 0.5}}, "timers": {"x": 1.0}}], ["a"])
    assert row["learner"] == {"default_policy": {"entropy": 0.5}} and row["timers"] == {"x": 1.0}
    assert "per_student" not in row
