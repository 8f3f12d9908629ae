"""EnvPool: vector stepping with K steps per call, one teacher task per episode, every
finished episode's `Outcome` reaching the teacher with the id of the task it ran.

The pairing check: `CountEnv`'s episode return and length are functions of its task, so a
`PairingTeacher` at the service can verify each outcome against the task its id names. A
pool that reported the wrong id (the next task, a neighbour's task) would fail it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from support import SPACE, CountEnv, PairingTeacher, local_ray

from openended.errors import ConfigError
from openended.runtime.client import LocalTeacherClient
from openended.runtime.core import TeacherServiceCore
from openended.runtime.envpool import EnvPoolCore
from openended.tasks import Box


# ------------------------------------------------------------------ in-process (no Ray)
def test_core_steps_k_per_call_and_reports_every_episode_with_its_task():
    core = TeacherServiceCore()
    teacher = PairingTeacher(seed=1)
    core.add_curriculum("count", teacher, students="shared")
    client = LocalTeacherClient(core, "count", buffer_size=16, low_watermark=4, flush_every=8)
    pool = EnvPoolCore(CountEnv, {}, num_envs=3, client=client, steps_per_call=50, seed=7)
    first = pool.step()
    assert first["steps"] == 150 and first["total_steps"] == 150
    second = pool.step(20)
    assert second["steps"] == 60 and second["total_steps"] == 210
    assert first["episodes"] > 0 and second["episodes"] > 0
    assert 0.0 <= first["success_rate"] <= 1.0
    pool.close()
    counters = core.snapshot()["curricula"]["count"]["counters"]
    assert counters["outcomes_accepted"] == pool.total_episodes == first["episodes"] + second["episodes"]
    assert teacher.pairs == pool.total_episodes and teacher.mismatches == 0
    assert teacher.stats()["unknown_task_outcomes"] == 0
    assert pool.stats()["task_id_mismatches"] == 0


def test_core_callable_policy_gets_one_observation_per_env():
    core = TeacherServiceCore()
    core.add_curriculum("count", "random", SPACE, config={"seed": 0})
    seen: list[int] = []

    def policy(obs_batch):
        seen.append(len(obs_batch))
        return [np.zeros(1, np.float32) for _ in obs_batch]

    pool = EnvPoolCore(
        CountEnv, None, num_envs=4, client=LocalTeacherClient(core, "count"), policy=policy, steps_per_call=10
    )
    assert pool.step()["steps"] == 40
    assert seen == [4] * 10
    pool.close()


def test_core_rejects_bad_arguments_and_non_task_envs():
    core = TeacherServiceCore()
    core.add_curriculum("count", "random", SPACE)
    client = LocalTeacherClient(core, "count")
    with pytest.raises(ConfigError, match=r"^envpool.num_envs: must be an int >= 1, got 0$"):
        EnvPoolCore(CountEnv, {}, 0, client)
    with pytest.raises(ConfigError, match="has no set_task"):
        EnvPoolCore(lambda: gym.make("CartPole-v1"), {}, 1, client)


def test_core_seeded_random_policy_is_reproducible():
    def run(seed: int) -> list[float]:
        core = TeacherServiceCore()
        core.add_curriculum("toy", "random", SPACE, config={"seed": 3})
        pool = EnvPoolCore(CountEnv, {}, 2, LocalTeacherClient(core, "toy"), seed=seed, steps_per_call=30)
        pool.step()
        obs = [float(o[0]) for o in pool._obs]
        pool.close()
        return obs

    assert run(5) == run(5)


# ------------------------------------------------------------------------ with Ray
ray = pytest.importorskip("ray")
NAMESPACE = "test_envpool"


@pytest.fixture(scope="module")
def ray_session():
    with local_ray(NAMESPACE, __name__):
        yield


@pytest.mark.ray
def test_pools_send_every_outcome_to_the_service_with_the_task_it_ran(ray_session):
    from openended.runtime.envpool_actor import make_pools
    from openended.runtime.service import start_service

    svc = start_service("pool_pairing", NAMESPACE, metrics=False)
    ray.get(svc.add_curriculum.remote("count", PairingTeacher(seed=2), None, None, None, "shared"))
    pools = make_pools(
        2,
        "pool_pairing",
        "count",
        CountEnv,
        {},
        num_envs=3,
        num_cpus=0.5,
        seed=11,
        steps_per_call=40,
        namespace=NAMESPACE,
        client_options={"buffer_size": 16, "low_watermark": 4, "flush_every": 8},
    )
    results = [ray.get([p.step.remote() for p in pools]) for _ in range(3)]
    for per_call in results:
        assert [r["steps"] for r in per_call] == [120, 120]  # K=40 vector steps x 3 envs, per call
    assert ray.get(pools[0].step.remote(5))["steps"] == 15
    stats = ray.get([p.stats.remote() for p in pools])
    ray.get([p.close.remote() for p in pools])  # flushes and waits for acknowledgements
    episodes = sum(s["total_episodes"] for s in stats)
    assert episodes > 0 and all(s["task_id_mismatches"] == 0 for s in stats)
    assert stats[0]["pool_id"] != stats[1]["pool_id"]
    snap = ray.get(svc.snapshot.remote())["curricula"]["count"]
    assert snap["counters"]["outcomes_accepted"] == episodes
    assert snap["counters"]["duplicates_dropped"] == 0
    (teacher,) = snap["students"].values()  # one shared teacher
    assert teacher["pairs"] == episodes and teacher["mismatches"] == 0
    assert teacher["unknown_task_outcomes"] == 0
    # Each env took a fresh task at each reset: at least one task per episode was drawn.
    assert snap["counters"]["tasks_sampled"] >= episodes
    ray.kill(svc)


@pytest.mark.ray
def test_pool_on_the_toy_family_reports_one_outcome_per_step(ray_session):
    from openended.runtime.envpool_actor import EnvPool
    from openended.runtime.service import start_service

    svc = start_service("pool_toy", NAMESPACE, metrics=False)
    ray.get(svc.add_curriculum.remote("toy", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
    pool = EnvPool.options(num_cpus=0.5).remote(svc, "toy", "toy", {}, 4, steps_per_call=100, seed=0)
    st = ray.get(pool.step.remote())
    assert st["steps"] == 400 and st["episodes"] == 400  # toy episodes are one step long
    run = ray.get(pool.run.remote(steps=800))
    assert run["steps"] == 800 and run["total_episodes"] == 1200
    ray.get(pool.close.remote())
    snap = ray.get(svc.snapshot.remote())["curricula"]["toy"]
    assert snap["counters"]["outcomes_accepted"] == 1200
    assert snap["students"]["default"]["unknown_task_outcomes"] == 0
    assert snap["students"]["default"]["outcomes"] == 1200
    ray.kill(svc)


def test_pool_hosts_a_pettingzoo_team_env():
    """A PettingZoo task env in an EnvPool: one outcome per team episode, with its task id."""
    from openended.envs import make_env
    from openended.runtime.client import LocalTeacherClient
    from openended.runtime.core import TeacherServiceCore
    from openended.runtime.envpool import EnvPoolCore

    space = make_env("simple_spread").task_space()
    core = TeacherServiceCore()
    core.add_curriculum("mpe", "random", space, config={"seed": 0})
    client = LocalTeacherClient(core, "mpe", "team")
    pool = EnvPoolCore("simple_spread", {}, 2, client, steps_per_call=60, seed=0, student="team")
    stats = pool.step()
    pool.close()
    teacher = core.teacher("mpe", "team")
    assert stats["episodes"] >= 2  # MPE episodes last 25 steps
    assert teacher.stats()["outcomes"] == stats["total_episodes"]
    assert teacher.stats()["unknown_task_outcomes"] == 0
