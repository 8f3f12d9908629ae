"""SC2 minigames hosted in Ray: EnvPool actors (crash and actor-restart paths) and RLlib PPO with action masking.

All against pysc2's mock game (`SC2TestEnv`); see tests/test_sc2.py for the env itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import SC2_SMALL, local_ray, stats_since

pytest.importorskip("pysc2_evolved")
ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from openended.envs.registry import env_task_space  # noqa: E402  (after the importorskip guards)
from openended.runtime.service import start_service  # noqa: E402

NAMESPACE = "test_sc2_ray"
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-single-agent-env-v0")]
SMALL = SC2_SMALL


@pytest.fixture(scope="module")
def service():
    with local_ray(NAMESPACE, __name__):
        yield start_service("sc2_teacher", NAMESPACE, metrics=False)


def _counters(svc, curriculum: str) -> dict:
    return ray.get(svc.snapshot.remote())["curricula"][curriculum]["counters"]


def test_envpool_actor_reports_crashed_games_and_survives_its_own_restart(service):
    from openended.runtime.envpool_actor import PoolRestarted, make_pools

    space = env_task_space("sc2", **SMALL)
    ray.get(service.add_curriculum.remote("pool", "random", space.to_dict(), {"seed": 0}))
    config = {**SMALL, "mock_crash_after_steps": 9}  # each mock game dies after 9 calls
    (pool,) = make_pools(
        1, "sc2_teacher", "pool", "sc2", config, num_envs=2, num_cpus=0.5, steps_per_call=20,
        namespace=NAMESPACE, max_restarts=1, client_options={"flush_every": 4},
    )  # fmt: skip
    first = ray.get(pool.step.remote())
    ray.get(pool.flush.remote())
    counters = _counters(service, "pool")
    assert first["episodes"] == counters["outcomes_accepted"] > 0
    # crashed episodes arrive as failures (success known and False); the others define no success
    assert counters["success_known"] > 0 and counters["successes"] == 0
    # The actor process dies (as if the game took it down): Ray restarts it, and the pool
    # refuses to step until its owner decides (PoolRestarted), then runs on new games.
    ray.kill(pool, no_restart=False)
    with pytest.raises(PoolRestarted):
        for _ in range(60):  # the restart takes a moment; calls in between fail as unavailable
            try:
                ray.get(pool.step.remote(), timeout=60)
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.ActorDiedError):
                continue
    ray.get(pool.resume_fresh.remote())
    # Counted from here: ray.kill is asynchronous, so a step sent just after it may still have
    # run (and reported) on the old process before it died.
    before = _counters(service, "pool")["outcomes_accepted"]
    again = ray.get(pool.step.remote())
    ray.get(pool.close.remote())
    assert again["episodes"] > 0
    assert _counters(service, "pool")["outcomes_accepted"] - before == again["episodes"]
    ray.kill(pool, no_restart=True)


def test_ppo_with_the_action_masking_model_trains_on_the_mock(service, tmp_path):
    import torch
    from ray.rllib.core.columns import Columns

    from openended.envs.sc2 import SC2TaskEnv
    from openended.runtime.process_clients import curriculum_stats, flush_curriculum_clients
    from openended.runtime.rllib import algo_step_counts, build_algo_config, register_curriculum_env
    from openended.runtime.rllib_masking import FunctionArgsDistribution, MaskedObservations

    space = env_task_space("sc2", **SMALL)
    ray.get(service.add_curriculum.remote("ppo", "random", space.to_dict(), {"seed": 0}))
    # every mock game dies after 15 calls: crashed episodes must reach the teacher as failures
    register_curriculum_env(
        "sc2-ppo", "sc2", {**SMALL, "mock_crash_after_steps": 15}, "sc2_teacher", "ppo", namespace=NAMESPACE
    )
    overrides = {
        "train_batch_size_per_learner": 64,
        "minibatch_size": 32,
        "num_epochs": 1,
        "model_config": {"fcnet_hiddens": [32]},
    }
    probe = SC2TaskEnv(**SMALL)
    usage = probe.action_argument_usage()
    probe.close()
    before = curriculum_stats()  # process-wide: earlier tests' episodes are in it
    algo = build_algo_config(
        "ppo", "sc2-ppo", overrides, 0, action_masking=True, argument_usage=usage, seed=0
    ).build_algo()
    try:
        result = algo.train()  # one real PPO iteration: sample, GAE, one epoch of updates
        env_steps, episodes = algo_step_counts(result)
        flush_curriculum_clients(wait=True)
        local = stats_since(before, curriculum_stats())
        module = algo.get_module()
        assert issubclass(module.get_train_action_dist_cls(), FunctionArgsDistribution)
        env = MaskedObservations(SC2TaskEnv(**SMALL))
        n_fn = int(env.action_space.nvec[0])
        obs, _ = env.reset(seed=0)
        batch = {Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs.items()}}
        with torch.no_grad():
            logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS][0].numpy()
        env.close()
        # a checkpoint of the masked module restores into a fresh algorithm (what --resume does)
        algo.save_to_path(str(tmp_path))
        saved = {k: v.clone() for k, v in module.state_dict().items()}
    finally:
        algo.stop()
    fresh = build_algo_config(
        "ppo", "sc2-ppo", overrides, 0, action_masking=True, argument_usage=usage, seed=1
    ).build_algo()
    try:
        fresh.restore_from_path(str(tmp_path))
        restored = fresh.get_module().state_dict()
        assert saved.keys() == restored.keys() and all(torch.equal(saved[k], restored[k]) for k in saved)
    finally:
        fresh.stop()
    assert env_steps >= 64 and episodes > 0
    counters = _counters(service, "ppo")
    assert local["episodes_reported"] == counters["outcomes_accepted"] == episodes
    assert counters["success_known"] > 0 and counters["successes"] == 0  # the crashed ones, as failures
    masked = obs["action_mask"][:n_fn] == 0
    assert masked.any() and (~masked).any()
    # masked functions get ~zero probability; allowed ones keep finite logits
    assert np.all(logits[:n_fn][masked] < -1e30) and np.all(np.abs(logits[:n_fn][~masked]) < 1e3)


@pytest.mark.slow
def test_the_experiment_runs_end_to_end_on_the_mock(tmp_path):
    """``openended run experiments/sc2_minigames_lp.yaml`` with the mock game: PPO + masking + LP, 2 iterations."""
    import json
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    sets = {
        "env.config.backend": "mock",
        "env.config.screen": 8,
        "env.config.minimap": 8,
        "run.iterations": 2,
        "algo.config.train_batch_size_per_learner": 128,
        "algo.config.minibatch_size": 64,
        "algo.config.num_epochs": 1,
        "run.progress": "false",
    }
    args = [
        sys.executable,
        "-m",
        "openended.cli",
        "run",
        "experiments/sc2_minigames_lp.yaml",
        "--run-dir",
        str(tmp_path),
    ]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    res = subprocess.run(args, cwd=root, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) >= 2 and sum(r.get("episodes", 0) or 0 for r in rows) > 0


def test_action_masking_is_ppo_only_and_needs_a_mask():
    import gymnasium as gym

    from openended.errors import ConfigError
    from openended.runtime.rllib import build_algo_config
    from openended.runtime.rllib_masking import MaskedObservations

    with pytest.raises(ConfigError, match="action_masking: only PPO"):
        build_algo_config("sac", "any-env", action_masking=True)
    with pytest.raises(ConfigError, match="action_masking flattens the observations itself"):
        build_algo_config("ppo", "any-env", action_masking=True, flatten_observations=True)
    with pytest.raises(TypeError, match="needs a Dict observation with 'action_mask'"):
        MaskedObservations(gym.make("CartPole-v1"))


def test_unused_arguments_are_left_out_of_logp_entropy_and_kl():
    import torch

    from openended.runtime.rllib_masking import function_args_distribution

    # 3 functions over 2 argument components: f0 takes none, f1 takes arg 1, f2 takes both.
    usage = [[0, 0], [1, 0], [1, 1]]
    dist_cls = function_args_distribution(usage, [3, 4, 5])
    torch.manual_seed(0)
    logits, other_logits = torch.randn(6, 12), torch.randn(6, 12)
    d, o = dist_cls.from_logits(logits), dist_cls.from_logits(other_logits)
    cats = [torch.distributions.Categorical(logits=x) for x in torch.split(logits, [3, 4, 5], dim=-1)]
    others = [torch.distributions.Categorical(logits=x) for x in torch.split(other_logits, [3, 4, 5], dim=-1)]
    actions = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 0, 0], [2, 3, 1], [1, 0, 4], [0, 2, 2]])
    used = torch.tensor(usage, dtype=torch.float32)[actions[:, 0]]
    expected = cats[0].log_prob(actions[:, 0]) + sum(
        used[:, j] * cats[j + 1].log_prob(actions[:, j + 1]) for j in range(2)
    )
    assert torch.allclose(d.logp(actions), expected)
    p_used = cats[0].probs @ torch.tensor(usage, dtype=torch.float32)
    ent = cats[0].entropy() + sum(p_used[:, j] * cats[j + 1].entropy() for j in range(2))
    assert torch.allclose(d.entropy(), ent)
    kl = torch.distributions.kl_divergence(cats[0], others[0]) + sum(
        p_used[:, j] * torch.distributions.kl_divergence(cats[j + 1], others[j + 1]) for j in range(2)
    )
    assert torch.allclose(d.kl(o), kl)
    # an action whose function takes no argument: the arguments do not change its log-prob
    a, b = torch.tensor([[0, 0, 0]]), torch.tensor([[0, 3, 4]])
    assert torch.allclose(d.logp(a.expand(6, 3)), d.logp(b.expand(6, 3)))
    with pytest.raises(ValueError, match="argument_usage must be"):
        function_args_distribution([[1, 0]], [3, 4, 5])
