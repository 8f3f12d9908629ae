"""Components in `openended run` (real CLI, real local Ray): a bad components entry stops
before Ray with its index and field; env-runner component state goes into the checkpoint
sets and comes back with --resume after kill -9 (the detector's episode count continues
exactly where the set left it)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import ClassVar

import pytest
from run_support import ROOT, latest_set, only_run_dir, start_run, wait_for

from openended.components import Component, Placement
from openended.config import load_experiment
from openended.errors import ConfigError


def _sets(sets: list[str]) -> list[str]:
    return ["--no-progress", *[x for s in sets for x in ("--set", s)]]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openended.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(env or os.environ, PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="300"),
    )


COMPONENTS = "components=[{class: task_change_detector}, {class: experience_replay, config: {capacity: 50}}]"


def test_a_bad_components_entry_names_its_index_and_field():
    with pytest.raises(ConfigError, match=r"components\[1\]\.config.*capacity"):
        load_experiment(
            "experiments/toy_alpgmm.yaml",
            ["components=[{class: task_change_detector}, {class: experience_replay, config: {capacity: 0}}]"],
        )
    with pytest.raises(ConfigError, match=r"components\[0\]\.class: .*unknown component 'replay'"):
        load_experiment("experiments/toy_alpgmm.yaml", ["components=[{class: replay}]"])
    with pytest.raises(ConfigError, match=r"components\[0\] \(SleepConsolidation\) requires 'replay'"):
        load_experiment("experiments/toy_alpgmm.yaml", ["components=[{class: sleep_consolidation}]"])
    with pytest.raises(ConfigError, match=r"components\[0\] \(PeriodicEvaluation\): evaluation blocks need an RLlib"):
        load_experiment("experiments/toy_alpgmm.yaml", ["components=[{class: periodic_evaluation}]"])
    exp = load_experiment("experiments/toy_alpgmm.yaml", [COMPONENTS])
    assert [c["class"] for c in exp.components] == ["task_change_detector", "experience_replay"]


def test_openended_components_lists_the_built_ins():
    res = _cli("components")
    assert res.returncode == 0, res.stderr
    lines = {line.split()[0]: line for line in res.stdout.splitlines()}
    assert set(lines) >= {"task_change_detector", "experience_replay", "sleep_consolidation", "ewc"}
    assert "learner" in lines["ewc"] and "provides: replay" in lines["experience_replay"]


@pytest.mark.ray
@pytest.mark.slow  # two runs of the real CLI: about 2.5 minutes on 2 shared cores
def test_component_state_survives_kill_9_and_resume(tmp_path):
    proc = start_run(tmp_path, "run.iterations=100000", "run.checkpoint_every=5", COMPONENTS)
    try:
        wait_for(lambda: list(tmp_path.iterdir()) and latest_set(only_run_dir(tmp_path)) >= 10, 300, "set 10", proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    rd = only_run_dir(tmp_path)
    latest = latest_set(rd)
    resumed = start_run(tmp_path, f"run.iterations={latest + 3}", resume=str(rd))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    manifest = json.loads((rd / "checkpoints" / f"iter_{latest + 3:06d}" / "manifest.json").read_text())
    members = manifest["members"]
    member = members["components/pool/default/0"]
    member = member if isinstance(member, str) else member["path"]
    state = json.loads((rd / "checkpoints" / f"iter_{latest + 3:06d}" / member).read_text())
    detector, replay = state["0:TaskChangeDetector"], state["1:ExperienceReplay"]
    # 100 one-step episodes per iteration: the count went on from the set (fresh state would say 300)
    assert detector["episodes"] == 100 * (latest + 3)
    assert replay["store"]["tables"] and all(len(t) <= 50 for t in replay["store"]["tables"].values())


@pytest.mark.ray
@pytest.mark.slow  # two short runs of the real CLI: about a minute on 2 shared cores
def test_a_shared_store_is_saved_once_by_the_run_and_resumed(tmp_path):
    sets = [
        "components=[{class: experience_replay, config: {capacity: 20}}]",
        "pool.pools_per_student=2",  # two env-runner processes: the store is shared
        "run.iterations=3",
        "run.checkpoint_every=3",
    ]
    res = _cli("run", "experiments/toy_alpgmm.yaml", "--run-dir", str(tmp_path), *_sets(sets))
    assert res.returncode == 0, res.stderr[-3000:]
    rd = only_run_dir(tmp_path)

    def saved(it: int) -> tuple[dict, dict]:
        folder = rd / "checkpoints" / f"iter_{it:06d}"
        members = json.loads((folder / "manifest.json").read_text())["members"]
        store = json.loads((folder / members["components/stores"]["path"]).read_text())["replay"]
        pool = json.loads((folder / members["components/pool/default/1"]["path"]).read_text())
        return store, pool

    store, pool = saved(3)
    assert pool == {"0:ExperienceReplay": {}}  # the pools do not save the shared store
    assert sum(store["seen"].values()) == 2 * 100 * 3  # 2 pools x 100 one-step episodes x 3 iterations
    assert all(len(t) <= 20 for t in store["tables"].values())
    res = _cli("run", "--resume", str(rd), *_sets(["run.iterations=5"]))
    assert res.returncode == 0, res.stderr[-3000:]
    store, _ = saved(5)
    assert sum(store["seen"].values()) == 2 * 100 * 5  # went on from the set (a fresh store would say 400)


class ReplaySeen(Component):
    """A learner component that saves how many items it sees in the ``replay`` store."""

    placement = Placement.LEARNER
    requires: ClassVar[tuple[str, ...]] = ("replay",)

    def state_dict(self) -> dict:
        return {"items": len(self.stores.get("replay"))}


@pytest.mark.ray
@pytest.mark.slow  # PPO with one env runner through the real CLI: about a minute on 2 shared cores
def test_a_ppo_run_shares_the_env_runners_replay_with_the_learner(tmp_path):
    comps = (
        "components=[{class: experience_replay, config: {capacity: 30}}, {class: sleep_consolidation},"
        " {class: 'test_components_run:ReplaySeen'}]"
    )
    sets = [
        comps,
        "algo.name=ppo",
        "algo.num_env_runners=1",
        "algo.config.train_batch_size_per_learner=128",
        "algo.config.minibatch_size=64",
        "algo.config.num_epochs=1",
        "run.iterations=1",
        "run.checkpoint_every=1",
        "evaluation.every=0",
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    res = _cli("run", "experiments/toy_alpgmm.yaml", "--run-dir", str(tmp_path), *_sets(sets), env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    folder = only_run_dir(tmp_path) / "checkpoints" / "iter_000001"
    members = json.loads((folder / "manifest.json").read_text())["members"]

    def member(name: str) -> dict:
        return json.loads((folder / members[name]["path"]).read_text())

    store = member("components/stores")["replay"]
    assert sum(store["seen"].values()) >= 128  # the env runner's writes reached the run's store actor
    (hosts,) = [h for h in member("components/env_runners/default").values() if h]
    assert all(h["0:ExperienceReplay"] == {} for h in hosts)  # saved once, by the run
    learner = member("components/learner/default")
    assert learner["1:ReplaySeen"]["items"] == sum(len(t) for t in store["tables"].values())  # the learner sees it


@pytest.mark.ray
@pytest.mark.slow  # a PPO scenario run on MiniGrid through the real CLI: about a minute on 2 shared cores
def test_a_scenario_runs_sleep_phases_on_the_env_runners_replay(tmp_path):
    sets = [
        "scenario.train_episodes=40",
        "scenario.eval_episodes=2",
        "scenario.sleep_steps=5",
        "algo.config.train_batch_size_per_learner=500",
        "algo.config.minibatch_size=250",
        "algo.config.num_epochs=1",
    ]
    res = _cli("run", "experiments/lifelong_minigrid_replay.yaml", "--run-dir", str(tmp_path), *_sets(sets))
    assert res.returncode == 0, res.stderr[-3000:]
    taken = [int(m) for m in re.findall(r"sleep phase, (\d+) learner steps", res.stderr)]
    # the learner remembers each task when its block ends (before the sleep after it), from
    # the observations the env-runner hosts stored in the one shared store: every sleep has
    # memories to clone, so each takes its full budget
    assert taken == [5, 5, 5]


@pytest.mark.ray
@pytest.mark.slow  # PPO on Stump Tracks through the real CLI: minutes on 2 shared cores
def test_rllib_run_hosts_env_runner_learner_and_driver_components(tmp_path):
    comps = (
        "components=[{class: task_change_detector}, {class: ewc, config: {lam: 1.0}},"
        " {class: periodic_evaluation, config: {every: 1}}]"
    )
    sets = [
        comps,
        "run.iterations=1",
        "evaluation.every=0",  # only the schedule's evaluation blocks
        "evaluation.max_steps=30",
        "algo.num_env_runners=0",
        "algo.config.train_batch_size_per_learner=500",
        "algo.config.minibatch_size=250",
    ]
    res = _cli("run", "experiments/bipedal_stumps_alpgmm.yaml", "--run-dir", str(tmp_path), *_sets(sets))
    assert res.returncode == 0, res.stderr[-3000:]
    rd = only_run_dir(tmp_path)
    (ev,) = [json.loads(line) for line in (rd / "evaluations.jsonl").read_text().splitlines()]
    assert ev["block"] == "evaluation" and ev["tasks"] == len(ev["returns"]) > 0  # the schedule's block
    row = json.loads((rd / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["eval_block"]["tasks"] == ev["tasks"]
    manifest = json.loads((rd / "checkpoints" / "iter_000001" / "manifest.json").read_text())
    assert {"components/driver", "components/learner/default"} <= set(manifest["members"])
    driver_state = json.loads((rd / "checkpoints" / "iter_000001" / "components-driver.json").read_text())
    assert len(driver_state["0:PeriodicEvaluation"]["results"]) == 1
    learner_state = json.loads((rd / "checkpoints" / "iter_000001" / "components-learner-default.json").read_text())
    assert learner_state["0:EWC"]["consolidations"] == 0  # no task change in one iteration: no penalty yet
    runners = json.loads((rd / "checkpoints" / "iter_000001" / "components-env-runners-default.json").read_text())
    (local,) = [hosts for hosts in runners.values() if hosts]  # num_env_runners=0: the local runner samples
    first = local[0]["0:TaskChangeDetector"]["episodes"]
    assert first > 0
    # --resume for one more iteration: every member's state comes back and goes on
    res = _cli("run", "--resume", str(rd), *_sets(["run.iterations=2"]))
    assert res.returncode == 0, res.stderr[-3000:]
    it2 = rd / "checkpoints" / "iter_000002"
    assert len(json.loads((it2 / "components-driver.json").read_text())["0:PeriodicEvaluation"]["results"]) == 2
    runners = json.loads((it2 / "components-env-runners-default.json").read_text())
    (local,) = [hosts for hosts in runners.values() if hosts]
    assert local[0]["0:TaskChangeDetector"]["episodes"] > first


@pytest.mark.ray
@pytest.mark.slow  # PPO through the real CLI
def test_plr_with_a_learner_component_checkpoints_both(tmp_path):
    """PLR's scoring learner and a learner component (EWC) in one learner: the run writes its
    checkpoint sets with the component's state (the scoring learner used to drop the component host)."""
    sets = [
        "run.iterations=2",
        "run.checkpoint_every=1",
        "evaluation.every=0",
        "components=[{class: ewc}]",
        "algo.config.train_batch_size_per_learner=500",
    ]
    res = _cli("run", "experiments/science/minigrid_levels_plr.yaml", "--run-dir", str(tmp_path), *_sets(sets))
    assert res.returncode == 0, res.stderr[-3000:]
    rd = only_run_dir(tmp_path)
    assert latest_set(rd) == 2
    members = list((rd / "checkpoints").rglob("components-learner-*.json"))
    assert members, "no learner component state in the checkpoint sets"
