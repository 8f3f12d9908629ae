"""``openended metrics``: finds lifelong and single-task-expert logs under a path, prints the table, writes JSON."""

from __future__ import annotations

import json

import pytest
from lifelong_support import simulate

from openended.cli import main
from openended.metrics.lifelong import compute_from_logs
from openended.metrics.report import split_scenarios
from openended.metrics.scenario import ScenarioConfig, ste_configs

CFG = ScenarioConfig(type="dispersed", tasks=["reach_a", "push_b"], train_episodes=20, eval_episodes=3, repetitions=3)


@pytest.fixture
def run_tree(tmp_path):
    """Three lifelong seeds and one expert run per task, as a run directory would hold them."""
    lls = [simulate(tmp_path / "run" / "l2logs", f"lifelong{s}", CFG, seed=s) for s in range(3)]
    stes = [simulate(tmp_path / "run" / "l2logs", f"ste{k}", c, seed=9 + k) for k, c in enumerate(ste_configs(CFG))]
    return tmp_path / "run", lls, stes


def test_prints_a_row_per_run_and_writes_json(run_tree, capsys):
    root, lls, stes = run_tree
    assert split_scenarios(root) == (sorted(lls), sorted(stes))
    assert main(["metrics", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("|")[0].strip() == "run" and [c.strip() for c in out[0].split("|")[1:]] == [
        "PR", "MTP", "MEP", "PM", "FT", "BT", "RP", "SE",
    ]  # fmt: skip
    assert [line.split()[0] for line in out[2:-1]] == [d.name for d in sorted(lls)] + ["mean", "std"]
    assert not any("need single-task-expert" in line for line in out)  # both tasks have one
    doc = json.loads((root / "lifelong_metrics.json").read_text())
    assert doc["settings"]["normalization"] == "task"
    expected = compute_from_logs(lls[0], stes).to_json()
    assert doc["runs"][str(lls[0])]["lifetime"] == expected["lifetime"]
    assert doc["runs"][str(lls[0])]["info"]["ste_runs"] == {"reach_a": 1, "push_b": 1}
    assert expected["lifetime"]["ste_rel_perf"] is not None


def test_options_reach_the_computation(run_tree, tmp_path, capsys):
    root, lls, stes = run_tree
    out = tmp_path / "m.json"
    assert main(["metrics", str(lls[1]), "--ste", str(stes[0]), "--normalization", "none", "--transfer", "both",
                 "--json", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    (run,) = doc["runs"].values()
    assert "forward_transfer_contrast" in run["lifetime"]
    assert run["info"]["ste_runs"] == {"reach_a": 1}  # only the one given: lls[1] alone holds no STE log
    assert run["info"]["normalization_data_range"] is None
    text = capsys.readouterr().out
    assert "FT(contrast)" in text
    assert "single-task-expert logs; none for: push_b (give --ste DIR" in text
    assert main(["metrics", str(lls[1]), "--tasks", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{lls[1].name}:\ntask " in text
    assert [line.split()[0] for line in text.split(f"{lls[1].name}:\n")[1].splitlines()[2:4]] == ["reach_a", "push_b"]


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["metrics", str(tmp_path)]) == 2
    assert "no l2logger scenario directory" in capsys.readouterr().err
    simulate(tmp_path / "only_ste", "ste", ste_configs(CFG)[0])
    assert main(["metrics", str(tmp_path / "only_ste")]) == 2
    assert "nothing to score" in capsys.readouterr().err
    assert main(["metrics", str(tmp_path / "only_ste"), "--window", "0"]) == 2
    assert "--window" in capsys.readouterr().err
