"""Held-out evaluation for every family: Dict observations are evaluated as trained (flattened by
RLlib's own function); multi-agent families are refused by `openended check` before Ray starts.
The PPO run also checks that the learner's statistics reach metrics.jsonl and TensorBoard."""

from __future__ import annotations

import json
import pathlib

import gymnasium as gym
import numpy as np
import pytest
from support import run_cli_with_test_plugins, tensorboard_scalars

from openended.config import load_experiment
from openended.errors import ConfigError
from openended.runtime.evaluate import FlattenLikeRLlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture
def dict_env(monkeypatch):
    monkeypatch.syspath_prepend(str(DATA))
    from plugin_envs.dict_obs import DictReachEnv

    return DictReachEnv


def test_flattened_observations_are_what_rllibs_connector_makes(dict_env):
    from ray.rllib.connectors.env_to_module import FlattenObservations

    env = FlattenLikeRLlib(dict_env())
    connector = FlattenObservations(
        input_observation_space=dict_env().observation_space, input_action_space=gym.spaces.Discrete(2)
    )
    assert env.observation_space == connector.observation_space
    env.unwrapped.set_task(env.unwrapped.task_space().task(3))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0, 0, 0, 1])  # pos, then the task one-hot (sorted keys)
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(obs, [1.0, 0, 0, 0, 1])


def test_check_refuses_evaluation_of_a_multi_agent_family_before_ray():
    with pytest.raises(ConfigError, match=r"^evaluation\.every: .*multi-agent.*'multiwalker'.*evaluation\.every: 0"):
        load_experiment(ROOT / "experiments" / "multiwalker_alpgmm.yaml", ["evaluation.every=1"])
    assert load_experiment(ROOT / "experiments" / "multiwalker_alpgmm.yaml", ["evaluation.every=0"])


@pytest.mark.ray
@pytest.mark.slow
def test_a_dict_observation_family_is_evaluated_in_a_run(tmp_path):
    """PPO on a Dict-observation env (a plugin by import path), evaluated after its only iteration."""
    sets = {
        "name": "dict_eval",
        "env.family": "plugin_envs.dict_obs:DictReachEnv",
        "teacher.name": "random",
        "algo.name": "ppo",
        "algo.num_env_runners": 0,
        "algo.config.train_batch_size_per_learner": 200,
        "algo.config.minibatch_size": 100,
        "algo.config.num_epochs": 1,
        "evaluation.every": 1,
        "evaluation.test_set": "uniform",
        "evaluation.max_tasks": 4,
        "run.iterations": 1,
        "ray.num_cpus": 2,
    }
    res = run_cli_with_test_plugins(tmp_path, sets)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "iteration 1: evaluated 4 tasks in" in res.stderr
    (rd,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (ev,) = [json.loads(line) for line in (rd / "evaluations.jsonl").read_text().splitlines()]
    assert ev["tasks"] == 4 and len(ev["returns"]) == 4 and ev["eval_s"] > 0
    assert set(ev["task_params"]) == set(ev["returns"])  # rows carry each task's parameters
    assert all(len(p) == 1 and p[0] in (0, 1, 2, 3) for p in ev["task_params"].values())
    assert set(ev["task_success"].values()) <= {True, False}  # every test episode ended (8-step cap)
    row = json.loads((rd / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["eval"]["tasks"] == 4 and row["iteration_s"] >= ev["eval_s"]
    # the learner's statistics are kept, and TensorBoard has them next to the curriculum's
    learner = row["learner"]["default_policy"]
    assert {"policy_loss", "vf_loss", "entropy", "mean_kl_loss", "default_optimizer_learning_rate"} <= set(learner)
    assert row["timers"]["training_iteration"] > 0
    tags = tensorboard_scalars(rd / "tensorboard")
    assert tags["learner/default_policy/entropy"] == [(1, pytest.approx(learner["entropy"]))]
    assert tags["eval/mastered"] == [(1, pytest.approx(ev["mastered"]))]
    assert "curriculum/episodes_total" in tags
