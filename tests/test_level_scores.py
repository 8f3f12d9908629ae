"""PLR's real level score: mean |GAE| from the RLlib learner's values, sent with each outcome.

The slow test runs PPO + PLR through the CLI on a real local Ray (a Dict-observation
plugin env) and reads what the teacher received: every outcome carries ``info["score"]``,
no level was scored by the return proxy, and the scores are not what the proxy gives."""

from __future__ import annotations

import json
import pathlib

import pytest
from support import run_cli_with_test_plugins

from openended.config import load_experiment
from openended.errors import ConfigError
from openended.runtime.batch_json import outcome_batch_from_json
from openended.runtime.codec import decode_outcomes
from openended.runtime.eventlog import iter_events
from openended.runtime.level_scores import ParkingClient, wants_level_scores
from openended.tasks import Outcome

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
PROCGEN = ROOT / "experiments" / "procgen_plr.yaml"


class _Inner:
    def __init__(self) -> None:
        self.reported: list[Outcome] = []

    def next_task(self):
        return "task"

    def report(self, outcome: Outcome) -> None:
        self.reported.append(outcome)


def test_the_env_side_keeps_the_outcome_for_the_learner():
    inner = _Inner()
    client = ParkingClient(inner)
    out = Outcome(task_id="a" * 16, episode_return=1.0)
    client.report(out)
    assert client.parked is out and inner.reported == [] and client.next_task() == "task"
    assert client.new_episode_id() is None  # an inner client without ids: the reporting client assigns one
    inner.new_episode_id = lambda: "0123456789abcdef"  # type: ignore[attr-defined]
    assert client.new_episode_id() == "0123456789abcdef"  # the env runner's client numbers the episode


def test_only_ppo_with_a_scoring_teacher_asks_for_level_scores():
    assert wants_level_scores(load_experiment(PROCGEN))
    assert not wants_level_scores(load_experiment(PROCGEN, ["teacher.config.score_source=proxy"]))
    assert not wants_level_scores(load_experiment(ROOT / "experiments" / "bipedal_stumps_alpgmm.yaml"))
    with pytest.raises(ConfigError, match=r"teacher\.config\.score_key: .* 'score', got 'gae'"):
        wants_level_scores(load_experiment(PROCGEN, ["teacher.config.score_key=gae"]))


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("runners", [0, 1], ids=["local-runner", "remote-runner"])
def test_plr_receives_the_learners_scores_in_a_ppo_run(tmp_path, runners):
    sets = {
        "name": "plr_scores",
        "env.family": "plugin_envs.dict_obs:DictReachEnv",
        "teacher.name": "plr",
        "teacher.config": "{score_source: auto}",
        "algo.name": "ppo",
        "algo.num_env_runners": runners,  # 1: outcomes travel from a runner process to the learner
        "algo.config.train_batch_size_per_learner": 200,
        "algo.config.minibatch_size": 100,
        "algo.config.num_epochs": 1,
        "run.iterations": 2,
        "ray.num_cpus": 2,
    }
    res = run_cli_with_test_plugins(tmp_path, sets)
    assert res.returncode == 0, res.stderr[-3000:]
    (rd,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    outcomes = [
        o
        for e in iter_events(rd / "events.jsonl", 0)
        if e.event.get("ev") == "outcome"
        for o in decode_outcomes(outcome_batch_from_json(e.event["outcomes"]))
    ]
    assert len(outcomes) >= 20
    assert all(o.info.get("score", -1) >= 0 for o in outcomes)  # every outcome carries its score
    rows = [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["teacher"]["default"]["plr/proxy_scores"] == 0  # the teacher never fell back to the proxy
    assert rows[-1]["episodes_total"] == len(outcomes)  # every episode RLlib counted reached the teacher
    # The return proxy |G - running mean of G| scores a level's first episode |G| (0 or 1 here);
    # mean |GAE| under the learner's value function is neither.
    first: dict[str, Outcome] = {}
    for o in outcomes:
        first.setdefault(o.task_id, o)
    assert any(abs(o.info["score"] - abs(o.episode_return)) > 1e-3 for o in first.values())
    assert len({round(o.info["score"], 6) for o in outcomes}) > 3
