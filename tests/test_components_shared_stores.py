"""Shared stores in a run (real local Ray, real RLlib 2.60 PPO): the run starts one named
store actor per store that several hosts use; the env runners' `ExperienceReplay` writes
into it and the learner's `SleepConsolidation` reads from it, so sleep in the PPO learner
replays what an env-runner process stored; EnvPool actors share it too; its state is saved
once, by the run, and comes back from a checkpoint set into a fresh actor."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("ray.rllib")

import ray
from support import FAST_PPO, local_ray

from openended.components import Placement
from openended.components.registry import shared_store_specs
from openended.runtime.checkpoints import SetWriter
from openended.runtime.component_run import RunComponents, store_name_for
from openended.runtime.service import start_service
from openended.tasks import Box, Task

pytestmark = pytest.mark.ray

NAMESPACE = "test_shared_stores"
SERVICE = "shared_stores_teacher"
REPLAY = {"class": "experience_replay", "config": {"capacity": 50, "seed": 1}}
SLEEP = {"class": "sleep_consolidation", "config": {"batch_size": 8, "memory_per_task": 16}}


@pytest.fixture(scope="module")
def service():
    with local_ray(NAMESPACE, __name__):
        yield start_service(SERVICE, NAMESPACE, metrics=False)


def _run_components(run: str, specs: list[dict], hosts: dict[Placement, int]) -> tuple[RunComponents, dict]:
    """The run's driver host with its shared stores, and the store -> actor names the hosts get."""
    stores = shared_store_specs(specs, hosts)
    comps = RunComponents(specs, run, NAMESPACE, stores=stores)
    return comps, {n: store_name_for(run, n) for n in stores}


# PPO with one env-runner process: about 7 s (plus Ray start) on 2 shared cores
def test_sleep_in_the_ppo_learner_replays_what_the_env_runner_stored(service):
    from openended.runtime.learner import on_learners
    from openended.runtime.rllib import build_algo_config, process_component_states, register_curriculum_env

    ray.get(service.add_curriculum.remote("toy_shared", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
    specs = [REPLAY, SLEEP]
    run, names = _run_components("run-ppo", specs, {Placement.ENV_RUNNER: 1, Placement.LEARNER: 1})
    assert names == {"replay": "run-ppo-store-replay"}
    env = register_curriculum_env(
        "toy-shared-replay",
        "toy",
        {},
        SERVICE,
        "toy_shared",
        student="ppo",
        namespace=NAMESPACE,
        components=specs,
        bus=run.bus_name,
        stores=names,
    )
    algo = build_algo_config(
        "ppo",
        env,
        FAST_PPO,
        num_env_runners=1,
        seed=0,
        components=specs,
        bus=(run.bus_name, NAMESPACE),
        stores=(names, NAMESPACE),
    ).build_algo()
    try:
        assert on_learners(algo, lambda lr: lr.components_sleep(steps=5)) == [0]  # nothing remembered yet
        algo.train()
        (seen,) = on_learners(algo, lambda lr: lr.component_host.stores.get("replay").tasks())
        assert seen and sum(seen.values()) >= 128  # what the env-runner process stored, seen in the learner
        assert run.stores["replay"].tasks() == seen  # one store: the driver's view is the same
        (runner,) = algo.env_runner_group.foreach_env_runner(
            lambda r: process_component_states("ppo"), local_env_runner=False
        )
        assert runner and all(h["0:ExperienceReplay"] == {} for h in runner)  # the run saves the store, not they
        old, new = Task(next(iter(seen))), Task("not-stored-yet")
        on_learners(algo, lambda lr: lr.components_task_change(None, old))
        on_learners(algo, lambda lr: lr.components_task_change(old, new))
        (memories,) = on_learners(algo, lambda lr: sorted(lr.component_host.components[0].memories))
        assert memories == [old.id]  # remembered from replayed observations of the finished task
        assert on_learners(algo, lambda lr: lr.components_sleep(steps=5)) == [5]
    finally:
        algo.stop()
        run.close()


def test_env_pool_actors_share_the_run_store_and_the_run_saves_it_once(service, tmp_path):
    from openended.runtime.envpool_actor import make_pools

    ray.get(service.add_curriculum.remote("toy_pools", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
    run, names = _run_components("run-pools", [REPLAY], {Placement.ENV_RUNNER: 2})
    pools = make_pools(
        2,
        SERVICE,
        "toy_pools",
        "toy",
        {},
        num_envs=2,
        num_cpus=0,
        namespace=NAMESPACE,
        components=[REPLAY],
        bus=run.bus_name,
        stores=names,
    )
    try:
        ray.get([p.step.remote(10) for p in pools])  # 2 pools x 2 envs x 10 one-step episodes
        assert len(run.stores["replay"]) == 40  # both pools wrote into the one store
        assert ray.get([p.component_state.remote() for p in pools]) == [{"0:ExperienceReplay": {}}] * 2
        saved = run.stores["replay"].state_dict()
        with SetWriter(tmp_path, 1) as w:
            run.save(w)
            ckpt = w.commit(event_log_offset=0, totals={})
        assert ckpt.has("components/stores") and ckpt.has("components/driver")
        fresh, _ = _run_components("run-pools-resumed", [REPLAY], {Placement.ENV_RUNNER: 2})
        assert len(fresh.stores["replay"]) == 0  # a new actor
        fresh.restore(ckpt)
        assert fresh.stores["replay"].state_dict() == saved
        tid = next(iter(saved["tables"]))
        assert fresh.stores["replay"].table(tid) == saved["tables"][tid]
    finally:
        ray.get([p.close.remote() for p in pools])
        run.close()


def test_a_restarted_process_finds_the_running_store_actor(service):
    from openended.runtime.component_actors import connect_stores

    run, names = _run_components("run-again", [REPLAY, SLEEP], {})
    run.stores["replay"].add("t", [[1.0], [2.0]])
    again = RunComponents([REPLAY, SLEEP], "run-again", NAMESPACE, stores=shared_store_specs([REPLAY, SLEEP], {}))
    assert again.stores["replay"].table("t") == [[1.0], [2.0]]  # get-or-create: the same actor
    assert connect_stores(names, NAMESPACE).get("replay").tasks() == {"t": 2}
    run.close()
    again.close()


def test_pipelined_writes_land_in_order_and_a_failed_one_raises(service):
    from ray.exceptions import RayTaskError

    from openended.runtime.component_actors import RemoteStore, StoreActor

    store = RemoteStore(StoreActor.remote(capacity=100, policy="fifo"), max_pending=4)
    for i in range(10):
        store.add("t", [i])
    assert len(store._pending) == 4  # writes in flight, not waited for
    assert store.table("t") == list(range(10))  # a read waits for them: in order
    store.add("t", 5)  # type: ignore[arg-type]  # not a list: fails in the actor
    with pytest.raises(RayTaskError, match="not iterable"):
        store.flush()
    blocking = RemoteStore(StoreActor.remote(capacity=2))
    blocking.add("t", [1, 2, 3])
    assert not blocking._pending and blocking.tasks() == {"t": 2}  # blocking by default: in the store at return


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
