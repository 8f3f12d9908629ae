"""Lifelong scenarios in `openended run`: the scenario teacher, the service's teacher controls,
dropping buffered tasks at a block switch, the ``scenario:`` checks, and a real PPO run on
MiniGrid whose l2logger log has every block in order (and survives kill -9 / --resume)."""

from __future__ import annotations

import json
import pathlib

import pytest
from run_support import only_run_dir, start_run

from openended.config import load_experiment
from openended.errors import ConfigError
from openended.metrics.l2log import read_log
from openended.metrics.report import compute_all
from openended.metrics.scenario import build_blocks
from openended.runtime.client import LocalTeacherClient
from openended.runtime.core import TeacherServiceCore
from openended.runtime.preflight import preflight
from openended.tasks import Discrete, Outcome
from openended.teachers import make_teacher

EXPERIMENT = "experiments/lifelong_minigrid.yaml"
SMALL = ("scenario.train_episodes=40", "scenario.eval_episodes=2", "algo.config.train_batch_size_per_learner=500")


def test_scenario_teacher_issues_the_block_task_and_counts_its_outcomes():
    space = Discrete(["a", "b", "c"])
    t = make_teacher("scenario", space, seed=0, tasks=["a", "b"])
    assert {x.params[0] for x in t.sample(50)} == {"a", "b"}
    t.set_tasks(["c"])
    tasks = t.sample(4)
    assert [x.params[0] for x in tasks] == ["c"] * 4
    t.update([Outcome(x.id, 1.0) for x in tasks])
    assert t.stats()["block_outcomes"] == 4 and t.stats()["switches"] == 1
    t.set_tasks(["c"])  # the same block again (a resume): nothing changes
    assert t.stats()["block_outcomes"] == 4
    clone = make_teacher("scenario", space, seed=0)
    clone.load_state_dict(t.state_dict())
    assert [x.params[0] for x in clone.sample(3)] == ["c"] * 3 and clone.stats()["block_outcomes"] == 4
    with pytest.raises(ConfigError, match="at least one task"):
        t.set_tasks([])


def test_service_control_calls_only_whitelisted_teacher_methods():
    core = TeacherServiceCore()
    core.add_curriculum("s", "scenario", Discrete(["a", "b"]))
    core.add_curriculum("r", "random", Discrete(["a", "b"]))
    core.control("s", "default", "set_tasks", {"values": ["b"]})
    assert {t.params[0] for t in core.sample_tasks("s", n=20)} == {"b"}
    with pytest.raises(ConfigError, match=r"no control 'load_state_dict'; it has \['set_tasks'\]"):
        core.control("s", "default", "load_state_dict", {"state": {}})
    with pytest.raises(ConfigError, match="no control 'set_tasks'; it has none"):
        core.control("r", "default", "set_tasks", {"values": ["a"]})
    core.close()


def test_a_client_drops_the_tasks_it_buffered_before_a_block_switch():
    core = TeacherServiceCore()
    core.add_curriculum("s", "scenario", Discrete(["a", "b"]), config={"tasks": ["a"]})
    client = LocalTeacherClient(core, "s", buffer_size=16, low_watermark=2)
    assert client.next_task().params[0] == "a"
    core.control("s", "default", "set_tasks", {"values": ["b"]})
    assert client.next_task().params[0] == "a"  # sampled before the switch
    assert client.discard_buffered() == 14
    assert {client.next_task().params[0] for _ in range(20)} == {"b"}
    assert client.stats()["tasks_discarded"] == 14
    client.close()
    core.close()


@pytest.mark.parametrize(
    "sets,match",
    [
        (["teacher={name: alp_gmm}"], r"teacher\.name: a scenario decides the tasks"),
        (["algo.config.batch_mode=truncate_episodes"], r"algo\.config\.batch_mode: a scenario samples complete"),
        (["evaluation.every=5"], r"evaluation\.every: a scenario has its own evaluation blocks"),
        (["scenario.tasks=[Empty-5x5, Lava]"], r"scenario\.tasks\[1\]: 'Lava' is not a task of minigrid_tasks"),
        (["scenario.type=shuffled"], r"scenario\.type"),
        (["components=[{class: periodic_evaluation}]"], r"components\[0\] \(PeriodicEvaluation\): a scenario"),
    ],
)
def test_scenario_settings_the_run_cannot_follow_are_refused_before_ray(sets, match):
    with pytest.raises(ConfigError, match=match):
        preflight(load_experiment(EXPERIMENT, sets))


def test_the_teacher_section_may_be_left_out():
    exp = load_experiment(EXPERIMENT)
    assert exp.teacher.name == "scenario" and exp.scenario is not None
    assert [b.block_type for b in build_blocks(exp.scenario)] == ["test", "train"] * 3 + ["test"]


def _blocks_in_log(run_dir: pathlib.Path):
    (scenario_dir,) = [p.parent for p in (run_dir / "l2logs").glob("*/scenario_info.json")]
    _, info, rows = read_log(scenario_dir)
    return scenario_dir, info, rows


def _check_log(rows, exp_sets=SMALL) -> None:
    exp = load_experiment(EXPERIMENT, list(exp_sets))
    assert exp.scenario is not None
    blocks = build_blocks(exp.scenario)
    assert [r.exp_num for r in rows] == list(range(len(rows)))  # one row per episode, none twice
    assert sorted({r.block_num for r in rows}) == [b.num for b in blocks]
    for b in blocks:
        mine = [r for r in rows if r.block_num == b.num]
        assert {r.block_type for r in mine} == {b.block_type}
        names = [r.task_name for r in mine]
        if b.block_type == "test":  # every task, eval_episodes each, grouped by task
            expected = [t.lower() for t in b.tasks for _ in range(b.episodes)]
            assert names == expected
        else:  # only the block's task, at least its episodes
            assert set(names) == {b.tasks[0].lower()} and len(names) >= b.episodes
    assert [r.block_num for r in rows] == sorted(r.block_num for r in rows)  # blocks in order


def test_a_scenario_run_logs_every_block_in_order_and_metrics_read_it(tmp_path):
    proc = start_run(tmp_path, *SMALL, experiment=EXPERIMENT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    rd = only_run_dir(tmp_path)
    _, info, rows = _blocks_in_log(rd)
    assert info["scenario_type"] == "condensed"
    _check_log(rows)
    last = json.loads((rd / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["scenario"]["finished"] is True and last["iteration"] < 500  # ended with the scenario
    status = json.loads((rd / "status.json").read_text())
    assert status["state"] == "finished"
    ((_, metrics),) = compute_all(rd)  # what `openended metrics RUN_DIR` prints
    assert metrics is not None


@pytest.mark.slow
def test_a_killed_scenario_run_resumes_in_the_same_block_without_logging_an_episode_twice(tmp_path):
    sets = (*SMALL, "run.checkpoint_every=2", "scenario.train_episodes=80")
    proc = start_run(tmp_path, *sets, experiment=EXPERIMENT, kill_at_checkpoint=6)
    proc.communicate(timeout=600)
    assert proc.returncode != 0  # killed while writing set 6: set 4 is the newest complete one
    rd = only_run_dir(tmp_path)
    proc = start_run(tmp_path, resume=str(rd))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "scenario: resumed at block" in err
    _, _, rows = _blocks_in_log(rd)
    _check_log(rows, sets)


@pytest.mark.slow
def test_the_sc2_scenario_runs_on_pysc2s_mock_with_masked_evaluation_blocks(tmp_path):
    pytest.importorskip("pysc2_evolved")
    sets = (
        "env.config.backend=mock",
        "env.config.mock_episode_length=20",
        "scenario.tasks=[MoveToBeacon, DefeatRoaches]",
        "scenario.train_episodes=3",
        "scenario.eval_episodes=1",
        "algo.num_env_runners=0",
        "algo.config.train_batch_size_per_learner=64",
        "algo.config.minibatch_size=32",
        "evaluation.max_steps=50",
    )
    proc = start_run(tmp_path, *sets, experiment="experiments/lifelong_sc2.yaml")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    _, info, rows = _blocks_in_log(only_run_dir(tmp_path))
    assert info["complexity"] == "2-intermediate"
    test_rows = [r for r in rows if r.block_type == "test"]
    assert len(test_rows) == 3 * 2  # E A E B E: three evaluation blocks, one episode per minigame
    assert {r.task_name for r in rows if r.block_type == "train"} == {"movetobeacon", "defeatroaches"}


def test_a_control_call_is_logged_and_replayed_by_a_restored_service(tmp_path):
    from openended.runtime.eventlog import iter_events

    core = TeacherServiceCore(event_log=tmp_path / "events.jsonl", checkpoint_dir=tmp_path / "ckpt")
    core.add_curriculum("s", "scenario", Discrete(["a", "b"]), config={"tasks": ["a"]})
    core.report("s", [Outcome(t.id, 1.0) for t in core.sample_tasks("s", n=4)])
    core.checkpoint()  # the teacher issues "a" in this checkpoint
    core.control("s", "default", "set_tasks", {"values": ["b"]})  # only in the log
    core.report("s", [Outcome(t.id, 1.0) for t in core.sample_tasks("s", n=3)])
    with pytest.raises(ConfigError, match="kwargs must be JSON"):
        core.control("s", "default", "set_tasks", {"values": {"b"}})
    del core  # a crash: restore from the checkpoint plus the log
    kinds = [e.event["ev"] for e in iter_events(tmp_path / "events.jsonl")]
    assert kinds.count("control") == 1
    again = TeacherServiceCore.restore(tmp_path / "ckpt", tmp_path / "events.jsonl")
    assert {t.params[0] for t in again.sample_tasks("s", n=10)} == {"b"}
    assert again.teacher("s").stats()["block_outcomes"] == 3
    again.close()
