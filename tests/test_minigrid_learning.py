"""The curriculum plumbing must not break learning: PPO on an easy fixed MiniGrid task, its
tasks coming from the teacher service (a one-task curriculum), reaches the same greedy
success as plain RLlib on the same env and budget.

Slow (a few minutes on the loaded 2-core dev machine): ``pytest -m slow tests/test_minigrid_learning.py``.
"""

from __future__ import annotations

import pytest
from support import local_ray

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from openended.envs.minigrid import MiniGridTasksEnv  # noqa: E402  (after the importorskip guards)
from openended.runtime.evaluate import evaluate_tasks, rllib_policy  # noqa: E402
from openended.runtime.process_clients import curriculum_stats, flush_curriculum_clients  # noqa: E402
from openended.runtime.rllib import algo_step_counts, build_algo_config, register_curriculum_env  # noqa: E402
from openended.runtime.service import start_service  # noqa: E402

NAMESPACE = "test_minigrid_learning"
TASK = "Empty-5x5"
ITERATIONS = 10
PPO = {
    "train_batch_size_per_learner": 1000,
    "minibatch_size": 250,
    "num_epochs": 4,
    "lr": 1e-3,
    "entropy_coeff": 0.01,
    "model_config": {"fcnet_hiddens": [64, 64]},
}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-single-agent-env-v0"),
]


@pytest.fixture(scope="module")
def service():
    with local_ray(NAMESPACE, __name__):
        yield start_service("mg_teacher", NAMESPACE, metrics=False)


def _fixed_task_env(_ctx=None) -> MiniGridTasksEnv:
    """Plain RLlib's env: the one task set once (it persists across episodes)."""
    env = MiniGridTasksEnv(tasks=[TASK])
    env.set_task(env.task_space().task(TASK))
    return env


def _train_and_evaluate(env_name: str) -> tuple[float, int]:
    algo = build_algo_config("ppo", env_name, PPO, num_env_runners=0, num_envs_per_env_runner=4, seed=0).build_algo()
    try:
        for _ in range(ITERATIONS):
            result = algo.train()
        steps, _ = algo_step_counts(result)
        task = MiniGridTasksEnv(tasks=[TASK]).task_space().task(TASK)
        out = evaluate_tasks(lambda: MiniGridTasksEnv(tasks=[TASK]), [task] * 10, rllib_policy(algo), max_steps=100)
        return float(out["mastered"]), steps
    finally:
        algo.stop()


def test_one_task_curriculum_learns_as_well_as_plain_rllib(service):
    from ray.tune.registry import register_env

    register_env("mg-plain", _fixed_task_env)
    plain, plain_steps = _train_and_evaluate("mg-plain")

    space = MiniGridTasksEnv(tasks=[TASK]).task_space()
    ray.get(service.add_curriculum.remote("one_task", "random", space.to_dict(), {"seed": 0}))
    register_curriculum_env(
        "mg-cur", "minigrid_tasks", {"tasks": [TASK]}, "mg_teacher", "one_task", namespace=NAMESPACE
    )
    curriculum, cur_steps = _train_and_evaluate("mg-cur")
    flush_curriculum_clients(wait=True)
    stats = curriculum_stats()
    snapshot = ray.get(service.snapshot.remote())["curricula"]["one_task"]

    print(f"greedy success on {TASK}: plain RLlib {plain}, one-task curriculum {curriculum} ({cur_steps} steps)")
    assert plain_steps == cur_steps >= ITERATIONS * 1000
    assert plain >= 0.9, f"plain RLlib did not learn {TASK} in {plain_steps} steps: greedy success {plain}"
    assert curriculum >= plain - 0.1, f"curriculum {curriculum} vs plain {plain}"
    # the tasks really came from the service and every episode went back to it
    assert snapshot["counters"]["outcomes_accepted"] == stats["episodes_reported"] > 0
    assert stats["task_id_mismatches"] == 0
