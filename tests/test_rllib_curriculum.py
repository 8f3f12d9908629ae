"""Per-episode curriculum inside RLlib 2.60 (new API stack): PPO trains on tasks pulled
from the teacher service at every reset, and every finished episode's `Outcome` reaches
the teacher carrying the id of the task that episode ran.

`CountEnv` makes an episode's return and length functions of its task, so the service-side
`PairingTeacher` checks each outcome against the task its id names (a wrapper that
reported the next task's id, or a stale one, fails it).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import (
    FAST_PPO,
    SPACE,
    CountEnv,
    HookRecorder,
    PairingTeacher,
    ScriptedClient,
    counter_delta,
    local_ray,
    stats_since,
)

from openended.errors import ConfigError
from openended.tasks import Box

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from openended.runtime.process_clients import (  # noqa: E402
    EPISODE_COUNTERS,
    curriculum_stats,
    flush_curriculum_clients,
)
from openended.runtime.rllib import (  # noqa: E402  (after the importorskip guards)
    CurriculumEnv,
    algo_step_counts,
    build_algo_config,
    default_cpus_per_env_runner,
    register_curriculum_env,
)
from openended.runtime.service import start_service  # noqa: E402

NAMESPACE = "test_rllib_curriculum"
# RLlib re-registers its per-runner gymnasium id each time an algorithm is built (harmless).
pytestmark = pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-single-agent-env-v0")


@pytest.fixture(scope="module")
def ray_session():
    with local_ray(NAMESPACE, __name__):
        yield start_service("rllib_teacher", NAMESPACE, metrics=False)


def _curriculum(snapshot: dict, name: str) -> tuple[dict, dict]:
    cur = snapshot["curricula"][name]
    (teacher,) = cur["students"].values()
    return cur["counters"], teacher


# ----------------------------------------------------------------------- no Ray needed
def test_overrides_are_checked_by_name():
    with pytest.raises(
        ConfigError,
        match=r"^build_algo_config.overrides.num_epoch: not a PPOConfig setting; "
        r"did you mean 'num_epochs'\?$",
    ):
        build_algo_config("ppo", "CartPole-v1", {"num_epoch": 3})
    with pytest.raises(ConfigError, match=r"^build_algo_config.algo: must be one of \['ppo', 'sac'\], got 'dqn'$"):
        build_algo_config("dqn", "CartPole-v1")
    with pytest.raises(ConfigError, match="minibatch_size: must be <= train_batch_size_per_learner"):
        build_algo_config("ppo", "CartPole-v1", {"train_batch_size_per_learner": 100, "minibatch_size": 200})
    cfg = build_algo_config("ppo", "CartPole-v1", {"train_batch_size_per_learner": 300}, num_env_runners=0)
    assert (cfg.num_epochs, cfg.minibatch_size, cfg.train_batch_size_per_learner) == (5, 300, 300)
    sac = build_algo_config("sac", "Pendulum-v1", {"actor_lr": 1e-4})
    assert sac.actor_lr == 1e-4 and sac.num_steps_sampled_before_learning_starts == 1000


def test_cpus_per_env_runner_leaves_room_on_small_machines():
    assert default_cpus_per_env_runner(1, cpus=2) == 1.0
    assert default_cpus_per_env_runner(2, cpus=2) == 0.5
    assert default_cpus_per_env_runner(8, cpus=16) == 1.0


def test_step_counts_read_env_runner_lifetime_counters():
    result = {
        "env_runners": {"num_env_steps_sampled_lifetime": 512, "num_episodes_lifetime": 40},
        "learners": {"__all_modules__": {"num_env_steps_trained_lifetime": 2560}},
    }
    assert algo_step_counts(result) == (512, 40)
    assert algo_step_counts({}) == (0, 0)


def test_curriculum_env_hosts_its_episodes_with_the_process_counters_and_hooks():
    a, b = SPACE.task([0.2]), SPACE.task([0.8])
    client = ScriptedClient([a, b, a])
    env = CurriculumEnv(CountEnv(), "no_service", "count", student="ppo")
    env.host.client = client  # in-process: no service, no Ray
    rec = HookRecorder()
    env.host.add_hooks(rec)
    with counter_delta(EPISODE_COUNTERS) as delta:
        for _ in range(2):
            env.reset(seed=0)
            done = False
            while not done:
                *_, term, trunc, info = env.step(np.zeros(1, np.float32))
                done = term or trunc
            assert info["task_id"] == env.task.id
        env.reset()
        env.step(np.zeros(1, np.float32))
        env.reset()  # RLlib forced a reset mid-episode: abandoned, no outcome
        env.close()
    assert delta == {"resets": 4, "episodes_reported": 2, "abandoned_episodes": 1, "task_id_mismatches": 0}
    assert [(o.task_id, o.student_id, o.episode_id) for o in client.reported] == [
        (a.id, "ppo", None),
        (b.id, "ppo", None),
    ]
    assert [c[0] for c in rec.calls] == ["task_change", "episode_start", "episode_end"] * 2 + [
        "task_change",
        "episode_start",
        "episode_start",  # the abandoned episode got no episode_end
    ]


# -------------------------------------------------------------------------- with Ray
@pytest.mark.ray
def test_ppo_local_runner_pulls_a_task_per_episode_and_reports_its_outcome(ray_session):
    svc = ray_session
    ray.get(svc.add_curriculum.remote("count_local", PairingTeacher(seed=1), None, None, None, "shared"))
    register_curriculum_env(
        "count-cur-local",
        CountEnv,
        {},
        "rllib_teacher",
        "count_local",
        namespace=NAMESPACE,
        client_options={"buffer_size": 16, "low_watermark": 4, "flush_every": 8},
    )
    before = curriculum_stats()  # process-wide: earlier tests' episodes are in it
    algo = build_algo_config(
        "ppo", "count-cur-local", FAST_PPO, num_env_runners=0, num_envs_per_env_runner=2, seed=0
    ).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        env_steps, episodes = algo_step_counts(result)
        flush_curriculum_clients(wait=True)
        local = stats_since(before, curriculum_stats())
    finally:
        algo.stop()
    assert env_steps >= 2 * 128
    counters, teacher = _curriculum(ray.get(svc.snapshot.remote()), "count_local")
    # Every episode RLlib finished was reported once, with the task it ran.
    assert local["episodes_reported"] == counters["outcomes_accepted"] == teacher["pairs"] > 0
    assert episodes == counters["outcomes_accepted"]
    assert teacher["mismatches"] == 0 and teacher["unknown_task_outcomes"] == 0
    assert local["task_id_mismatches"] == 0
    # A task per reset, drawn from the service in buffered batches (not one call each).
    assert counters["tasks_sampled"] >= local["resets"] >= episodes
    assert counters["sample_calls"] < local["resets"] / 4


@pytest.mark.ray
def test_ppo_remote_runner_on_the_toy_family(ray_session):
    svc = ray_session
    ray.get(svc.add_curriculum.remote("toy_remote", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
    register_curriculum_env(
        "toy-cur-remote", "toy", {}, "rllib_teacher", "toy_remote", student="ppo", namespace=NAMESPACE
    )
    algo = build_algo_config(
        "ppo", "toy-cur-remote", FAST_PPO, num_env_runners=1, num_envs_per_env_runner=2, seed=0
    ).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        env_steps, episodes = algo_step_counts(result)
        algo.env_runner_group.foreach_env_runner(lambda r: flush_curriculum_clients(wait=True), local_env_runner=False)
        remote = algo.env_runner_group.foreach_env_runner(lambda r: curriculum_stats(), local_env_runner=False)
    finally:
        algo.stop()
    (stats,) = remote
    assert stats["pid"] != os.getpid()  # tasks arrived in the EnvRunner process
    assert env_steps >= 2 * 128 and episodes == env_steps  # toy episodes are one step
    snap = ray.get(svc.snapshot.remote())["curricula"]["toy_remote"]
    assert stats["episodes_reported"] == snap["counters"]["outcomes_accepted"] == episodes
    teacher = snap["students"]["ppo"]  # separate teacher state per student
    assert teacher["outcomes"] == episodes and teacher["unknown_task_outcomes"] == 0
    assert stats["task_id_mismatches"] == 0
    (client,) = stats["clients"].values()
    assert client["first_fill_s"] is not None and client["refills"] < stats["resets"] / 4


@pytest.mark.ray
def test_sac_local_runner_reports_every_episode(ray_session):
    svc = ray_session
    ray.get(svc.add_curriculum.remote("count_sac", PairingTeacher(seed=3), None, None, None, "shared"))
    register_curriculum_env("count-cur-sac", CountEnv, {}, "rllib_teacher", "count_sac", namespace=NAMESPACE)
    before = curriculum_stats()["episodes_reported"]
    # One learner update per sampled step once learning starts: keep iterations short.
    fast_sac = {
        "num_steps_sampled_before_learning_starts": 24,
        "train_batch_size_per_learner": 16,
        "min_time_s_per_iteration": 0,
        "min_sample_timesteps_per_iteration": 20,
        "model_config": {"fcnet_hiddens": [16, 16]},
    }
    algo = build_algo_config("sac", "count-cur-sac", fast_sac, num_env_runners=0, seed=0).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        flush_curriculum_clients(wait=True)
        reported = curriculum_stats()["episodes_reported"] - before
    finally:
        algo.stop()
    counters, teacher = _curriculum(ray.get(svc.snapshot.remote()), "count_sac")
    assert algo_step_counts(result)[0] > 0
    assert reported == counters["outcomes_accepted"] == teacher["pairs"] > 0
    assert teacher["mismatches"] == 0 and teacher["unknown_task_outcomes"] == 0
