"""Components inside RLlib 2.60 (new API stack): the learner host adds loss terms to PPO's
loss (a penalty that pulls the weights shows in the weights), EWC consolidates on the real
PPO module and its penalty is part of the next update, learner component state round-trips;
the Ray bus actor carries events between processes in batches; a store actor round-trips."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytest.importorskip("ray.rllib")

import ray
from support import local_ray

from openended.components import TASK_CHANGE, Component, EventBus, Placement, ReplayStore, TaskChange
from openended.components.ewc import EWC
from openended.runtime.component_actors import BusLog, RemoteStore, StoreActor, bridge_to
from openended.runtime.learner import on_learners
from openended.tasks import Box

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def _ray():
    with local_ray("oe-components", __name__):
        yield


class ShrinkWeights(Component):
    """A loss term pulling the policy's weights to zero (so its effect is visible)."""

    placement = Placement.LEARNER

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.calls = 0

    def loss_term(self, *, module, batch, fwd_out, **kw):
        self.calls += 1
        assert "obs" in batch and "action_dist_inputs" in fwd_out
        return 10.0 * sum((p**2).sum() for p in module.parameters())

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = state["calls"]


def _ppo(specs: list[dict], bus: tuple[str, str | None] | None = None) -> Any:
    from ray.rllib.algorithms.ppo import PPOConfig

    from openended.runtime.learner import with_components

    cfg = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1, lr=0.01)
        .debugging(seed=0)
    )
    return with_components(cfg, specs, bus=bus).build_algo()


def _norm(algo: Any) -> float:
    return on_learners(algo, lambda lr: float(sum((p.detach() ** 2).sum() for p in lr._default_module().parameters())))[
        0
    ]


@pytest.mark.slow  # builds and trains PPO: about a minute on 2 shared cores
def test_learner_host_adds_loss_terms_to_ppo_and_ewc_consolidates_on_the_ppo_module():
    here = f"{__name__}:ShrinkWeights"
    algo = _ppo([{"class": here}, {"class": "ewc", "config": {"lam": 1.0, "fisher_samples": 32}}])
    try:
        before = _norm(algo)
        algo.train()
        algo.train()
        assert _norm(algo) < 0.8 * before  # the term shaped the update
        calls = on_learners(algo, lambda lr: lr.component_host.components[0].calls)[0]
        assert calls >= 4  # 2 iterations x 2 minibatches
        space = Box([0.0], [1.0])
        a, b = space.task([0.0]), space.task([1.0])
        on_learners(algo, lambda lr: lr.components_task_change(None, a))
        on_learners(algo, lambda lr: lr.components_task_change(a, b))
        ewc: EWC = on_learners(algo, lambda lr: lr.component_host.components[1])[0]
        assert ewc.consolidations == 1 and ewc.penalties
        fisher = ewc.penalties[0][0]
        assert any(float(f.sum()) > 0 for f in fisher.values())
        state = on_learners(algo, lambda lr: lr.component_state())[0]
        algo.train()  # the penalty is now part of PPO's loss
        on_learners(algo, lambda lr: lr.load_component_state(state))
        restored = on_learners(algo, lambda lr: lr.component_host.components[0].calls)[0]
        assert restored == state["0:ShrinkWeights"]["calls"]
    finally:
        algo.stop()


@pytest.mark.slow  # builds and trains PPO: about a minute on 2 shared cores
def test_a_task_change_published_elsewhere_reaches_ewc_in_the_ppo_learner():
    import time

    name = "oe-test-learner-bus"
    log = BusLog.options(name=name).remote()
    ray.get(log.poll.remote(0, "nobody"))
    algo = _ppo([{"class": "ewc", "config": {"lam": 1.0, "fisher_samples": 16}}], bus=(name, None))
    try:
        algo.train()
        assert on_learners(algo, lambda lr: lr.component_host.components[0].consolidations)[0] == 0
        bus = EventBus()
        bridge = bridge_to(bus, name, "env-runner-elsewhere")
        bus.publish(TASK_CHANGE, TaskChange(source="task_change_detector", episode=1))
        assert bridge.flush() == 1
        time.sleep(1.2)  # the learner exchanges at most once a second
        algo.train()
        assert on_learners(algo, lambda lr: lr.component_host.components[0].consolidations)[0] == 1
    finally:
        algo.stop()


def test_the_bus_actor_delivers_across_processes_in_batches():
    name = "oe-test-bus"
    log = BusLog.options(name=name).remote()  # held: a named actor lives while a handle does
    ray.get(log.poll.remote(0, "nobody"))

    @ray.remote
    def runner(origin: str, n: int) -> int:
        from openended.components import TASK_CHANGE, EventBus, TaskChange
        from openended.runtime.component_actors import bridge_to

        bus = EventBus()
        bridge = bridge_to(bus, name, origin)
        for k in range(n):
            bus.publish(TASK_CHANGE, TaskChange(source=origin, episode=k))
        return bridge.flush()

    assert ray.get([runner.remote("r1", 3), runner.remote("r2", 2)]) == [3, 2]
    bus, got = EventBus(), []
    bus.subscribe(TASK_CHANGE, got.append)
    bridge = bridge_to(bus, name, "driver")
    assert bridge.poll() == 5
    assert sorted((e.source, e.episode) for e in got) == [("r1", 0), ("r1", 1), ("r1", 2), ("r2", 0), ("r2", 1)]
    bus.publish(TASK_CHANGE, TaskChange(source="driver", episode=9))
    bridge.flush()
    assert bridge.poll() == 0  # its own events do not come back


def test_a_store_actor_round_trips():
    store = RemoteStore(StoreActor.remote(capacity=4, policy="reservoir", seed=3))
    store.add("a", list(range(100)))
    store.add("b", [[1.0, 2.0]])
    assert store.tasks() == {"a": 4, "b": 1} and len(store) == 5
    local = ReplayStore(capacity=4)
    local.load_state_dict(store.state_dict())
    assert local.table("a") == store.table("a") and local.table("b") == [[1.0, 2.0]]
    assert set(store.sample(20, task_id="a")) <= set(local.table("a"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


class DriverRecorder(Component):
    placement = Placement.DRIVER

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.blocks: list[tuple[str, int, bool]] = []

    def on_block_start(self, *, block, **kw):
        self.blocks.append(("start", block.kind, block.index))

    def on_block_end(self, *, block, **kw):
        self.blocks.append(("end", block.kind, block.index, "results" in kw))


@pytest.mark.slow  # builds and trains PPO: about a minute on 2 shared cores
def test_the_rllib_callback_hosts_driver_components_and_runs_evaluation_blocks():
    from ray.rllib.algorithms.ppo import PPOConfig

    from openended.runtime.learner import with_components

    specs = [{"class": f"{__name__}:DriverRecorder"}, {"class": "periodic_evaluation", "config": {"every": 2}}]
    cfg = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
        .evaluation(evaluation_duration=2, evaluation_duration_unit="episodes")
        .debugging(seed=0)
    )
    algo = with_components(cfg, specs, driver_callback=True).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        callbacks = algo.callbacks if not isinstance(algo.callbacks, list) else algo.callbacks[0]
        host = callbacks.host
        recorder, schedule = host.components
        assert "component_evaluation" not in results[0] and "component_evaluation" in results[1]
        assert len(schedule.results) == 1
        assert recorder.blocks == [
            ("start", "train", 0),
            ("end", "train", 0, False),
            ("start", "evaluation", 1),
            ("end", "evaluation", 1, True),
            ("start", "train", 2),
        ]
    finally:
        algo.stop()
