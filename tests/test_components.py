"""The component API (`openended.components`): hook order over a whole lifetime (the order
docs/components.md documents), only overridden hooks called, reward hiding in evaluation
blocks, sleep skipped where learning is forbidden, dependency errors, the typed bus and its
batched bridge, stores, the teacher adapter, specs validated with index and field."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from support import SPACE, CountEnv, ScriptedClient

from openended.components import (
    HOOKS,
    TASK_CHANGE,
    Block,
    BusBridge,
    Component,
    ComponentConfig,
    ComponentHost,
    EventBus,
    HiddenOutcome,
    Placement,
    ReplayStore,
    SleepBudget,
    TaskChange,
    Topic,
    build_components,
    check_component_specs,
    plan_components,
)
from openended.components.teacher import TeacherComponent, task_outcome
from openended.errors import ConfigError, RewardHidden
from openended.runtime.episodes import EpisodeHost
from openended.tasks import Box
from openended.teachers import make_teacher


class Recorder(Component):
    """Overrides every hook and records (hook, detail)."""

    transition_batch: ClassVar[int] = 4

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.calls: list[tuple] = []

    def on_lifetime_start(self, **kw: Any) -> None:
        self.calls.append(("on_lifetime_start",))

    def on_block_start(self, *, block: Block, **kw: Any) -> None:
        self.calls.append(("on_block_start", block.kind))

    def on_task_start(self, *, task, old_task, **kw: Any) -> None:
        self.calls.append(("on_task_start", task.id))

    def on_episode_start(self, *, env_index, task, **kw: Any) -> None:
        assert "obs" in kw
        self.calls.append(("on_episode_start", task.id))

    def on_transitions(self, *, batch, **kw: Any) -> None:
        self.calls.append(("on_transitions", batch.task_id, len(batch), batch.rewards is None))

    def on_episode_end(self, *, env_index, outcome, **kw: Any) -> None:
        self.calls.append(("on_episode_end", outcome.task_id, isinstance(outcome, HiddenOutcome)))

    def on_task_end(self, *, task, new_task, **kw: Any) -> None:
        self.calls.append(("on_task_end", task.id, new_task.id))

    def on_sleep(self, *, budget: SleepBudget, **kw: Any) -> int:
        self.calls.append(("on_sleep", budget.steps))
        return budget.steps or 0

    def on_block_end(self, *, block: Block, **kw: Any) -> None:
        self.calls.append(("on_block_end", block.kind))

    def on_lifetime_end(self, **kw: Any) -> None:
        self.calls.append(("on_lifetime_end",))

    def loss_term(self, **kw: Any) -> Any:
        return 1.0

    def state_dict(self) -> dict:
        return {"n": len(self.calls)}


def run_episodes(host: EpisodeHost, n: int) -> None:
    for _ in range(n):
        host.begin(0)
        while True:
            *_, term, trunc, _ = host.step(0, np.zeros(1, np.float32))
            if term or trunc:
                break


def test_every_hook_fires_in_the_documented_order_over_a_lifetime():
    a, b = SPACE.task([0.2]), SPACE.task([0.9])  # 4 and 7 steps per episode
    rec = Recorder()
    host = ComponentHost([rec], placement=Placement.ENV_RUNNER)
    episodes = EpisodeHost([CountEnv()], ScriptedClient([a, b]))
    episodes.add_hooks(host.episode_hooks())
    host.lifetime_start()
    host.block_start(Block(0, "train"))
    run_episodes(episodes, 2)
    assert host.sleep(SleepBudget(steps=3)) == 3
    host.block_end()
    host.block_start(Block(1, "evaluation"))
    run_episodes(episodes, 1)
    assert host.sleep(SleepBudget(steps=3)) == 0 and host.sleeps_skipped == 1  # no learning in evaluation
    host.block_end()
    host.lifetime_end()
    assert rec.calls == [
        ("on_lifetime_start",),
        ("on_block_start", "train"),
        ("on_task_start", a.id),
        ("on_episode_start", a.id),
        ("on_transitions", a.id, 4, False),  # a batch of 4 (transition_batch) ...
        ("on_episode_end", a.id, False),
        ("on_task_end", a.id, b.id),
        ("on_task_start", b.id),
        ("on_episode_start", b.id),
        ("on_transitions", b.id, 4, False),
        ("on_transitions", b.id, 3, False),  # ... and the rest at the episode's end
        ("on_episode_end", b.id, False),
        ("on_sleep", 3),
        ("on_block_end", "train"),
        ("on_block_start", "evaluation"),
        ("on_task_end", b.id, a.id),
        ("on_task_start", a.id),
        ("on_episode_start", a.id),
        ("on_transitions", a.id, 4, True),  # rewards hidden
        ("on_episode_end", a.id, True),
        ("on_block_end", "evaluation"),
        ("on_lifetime_end",),
    ]
    # every hook of the contract was exercised, in the order HOOKS lists their first firing
    first = list(dict.fromkeys(c[0] for c in rec.calls))
    assert first == [h for h in HOOKS if h in first] and set(first) == set(HOOKS)
    assert host.loss_terms() == [1.0]


def test_only_overridden_hooks_are_called_and_a_silent_component_adds_no_episode_hook():
    class EndsOnly(Component):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def on_episode_end(self, **kw: Any) -> None:
            self.n += 1

    assert EndsOnly.overridden_hooks() == ("on_episode_end",)
    assert ComponentHost([Component()]).episode_hooks() is None
    host = ComponentHost([EndsOnly(), Component()])
    hooks = host.episode_hooks()
    assert hasattr(hooks, "episode_end") and not hasattr(hooks, "transition")
    assert not hasattr(hooks, "episode_start") and not hasattr(hooks, "task_change")
    episodes = EpisodeHost([CountEnv()], ScriptedClient([SPACE.task([0.0])]))
    episodes.add_hooks(hooks)
    run_episodes(episodes, 3)
    assert host.components[0].n == 3
    assert not episodes._on_step  # no per-step traffic: nobody asked for transitions


def test_rewards_are_hidden_in_evaluation_blocks():
    seen: list[Any] = []

    class Peek(Component):
        def on_episode_end(self, *, outcome, **kw: Any) -> None:
            seen.append((outcome, kw.get("info")))

    host = ComponentHost([Peek()])
    out = task_outcome(SPACE.task([0.5]), 3.0, True)
    host.block_start(Block(0, "evaluation"))
    host.episode_end(0, out, info={"reward": 3.0})
    host.block_end()
    host.block_start(Block(1, "train"))
    host.episode_end(0, out, info={"reward": 3.0})
    hidden, info = seen[0]
    assert info is None and hidden.task_id == out.task_id
    with pytest.raises(RewardHidden, match="hidden during an evaluation block"):
        _ = hidden.episode_return
    with pytest.raises(RewardHidden):
        _ = hidden.success
    assert seen[1] == (out, {"reward": 3.0})


class Provider(Component):
    provides = ("replay",)


class Consumer(Component):
    requires = ("replay",)


class Learnerish(Component):
    placement = Placement.LEARNER
    requires = ("replay",)


def test_providers_run_first_and_dependency_errors_name_the_component():
    c, p = Consumer(), Provider()
    assert plan_components([c, p])[Placement.DRIVER] == [p, c]
    assert plan_components([Learnerish(), p])[Placement.LEARNER]  # met by another placement
    with pytest.raises(ConfigError, match=r"components\[0\] \(Consumer\) requires 'replay', which no"):
        plan_components([Consumer()])

    class A(Component):
        requires = ("b",)
        provides = ("a",)

    class B(Component):
        requires = ("a",)
        provides = ("b",)

    with pytest.raises(ConfigError, match=r"dependency cycle components\[0\] \(A\) -> components\[1\] \(B\) ->"):
        plan_components([A(), B()])


def test_the_bus_is_typed_and_the_bridge_batches_between_processes():
    bus, got = EventBus(), []
    bus.subscribe(TASK_CHANGE, got.append)
    with pytest.raises(TypeError, match="carries TaskChange; got str"):
        bus.publish(TASK_CHANGE, "changed")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="carries TaskChange, not int"):
        bus.subscribe(Topic("task_change", int), print)

    class Log:  # a RemoteLog in one process: what the Ray actor does across processes
        def __init__(self) -> None:
            self.events: list[tuple[str, str, Any]] = []
            self.calls = 0

        def publish(self, origin, events):
            self.calls += 1
            self.events += [(origin, n, p) for n, p in events]
            return len(self.events)

        def poll(self, cursor, exclude_origin):
            self.calls += 1
            new = [(n, p) for o, n, p in self.events[cursor:] if o != exclude_origin]
            return new, len(self.events)

    log = Log()
    other, got_other = EventBus(), []
    other.subscribe(TASK_CHANGE, got_other.append)
    mine, theirs = BusBridge(bus, log, "runner-1"), BusBridge(other, log, "learner")
    for k in range(3):
        bus.publish(TASK_CHANGE, TaskChange(source="d", episode=k))
    assert [e.episode for e in got] == [0, 1, 2] and got_other == [] and log.calls == 0
    assert mine.flush() == 3 and log.calls == 1  # one call for the batch
    assert theirs.poll() == 3 and [e.episode for e in got_other] == [0, 1, 2]
    assert mine.poll() == 0 and len(got) == 3  # no echo of its own events
    assert theirs.poll() == 0
    bus.publish(TASK_CHANGE, TaskChange(source="d", episode=3))
    assert mine.exchange(min_interval_s=3600) and not mine.exchange(min_interval_s=3600)  # throttled
    assert theirs.exchange() and got_other[-1].episode == 3


def test_replay_store_policies_and_round_trip():
    fifo = ReplayStore(capacity=3)
    fifo.add("a", list(range(10)))
    fifo.add("b", [100])
    assert fifo.table("a") == [7, 8, 9] and fifo.tasks() == {"a": 3, "b": 1}
    assert set(fifo.sample(50, exclude="b")) == {7, 8, 9}
    res = ReplayStore(capacity=100, policy="reservoir", seed=1)
    res.add("a", list(range(10_000)))
    kept = np.array(res.table("a"))
    assert len(kept) == 100 and 3000 < kept.mean() < 7000  # uniform over everything seen, not the newest
    total = ReplayStore(capacity=10, scope="total")
    total.add("a", list(range(10)))
    total.add("b", list(range(5)))
    assert total.tasks() == {"a": 5, "b": 5}
    copy = ReplayStore(capacity=100, policy="reservoir", seed=9)
    copy.load_state_dict(res.state_dict())
    assert copy.table("a") == res.table("a") and copy.sample(5) == res.sample(5)
    with pytest.raises(ConfigError, match="policy"):
        ReplayStore(capacity=1, policy="lru")  # type: ignore[arg-type]


def test_a_run_shares_a_store_only_where_several_hosts_use_it():
    from openended.components.registry import shared_store_specs

    replay = [{"class": "experience_replay", "config": {"capacity": 7, "policy": "fifo", "seed": 3}}]
    sleep = replay + [{"class": "sleep_consolidation"}]
    one = {Placement.ENV_RUNNER: 1, Placement.LEARNER: 1}
    assert shared_store_specs(replay, one) == {}  # one env-runner host uses it: stays local
    spec = shared_store_specs(sleep, one)["replay"]  # env runner provides, learner requires
    assert spec.cls is ReplayStore and spec.kwargs == {"capacity": 7, "policy": "fifo", "seed": 3}
    assert set(shared_store_specs(replay, {Placement.ENV_RUNNER: 3})) == {"replay"}  # several env runners
    assert shared_store_specs(sleep, {Placement.ENV_RUNNER: 1, Placement.LEARNER: 0}) == {}  # EnvPool: no learner
    built = spec.build()
    built.add("t", [1, 2, 3, 4, 5, 6, 7, 8])
    assert built.table("t") == [2, 3, 4, 5, 6, 7, 8]  # fifo, capacity 7: the spec's settings


class BadStoreSpec(Component):
    provides: ClassVar[tuple[str, ...]] = ("a",)

    @classmethod
    def store_specs(cls, config: Any) -> tuple:
        from openended.components.stores import StoreSpec

        return (StoreSpec("b", ReplayStore, {"capacity": 1}),)


def test_a_store_spec_must_name_a_provided_store():
    from openended.components.registry import shared_store_specs

    with pytest.raises(ConfigError, match=r"components\[0\].*'b'.*provides"):
        shared_store_specs([{"class": f"{__name__}:BadStoreSpec"}], {Placement.DRIVER: 2})
    with pytest.raises(ConfigError, match=r"components\[0\].*'b'.*provides"):  # caught by the config check too
        check_component_specs([{"class": f"{__name__}:BadStoreSpec"}])


def test_experience_replay_saves_its_store_only_when_it_owns_it():
    from openended.components.replay import ExperienceReplay
    from openended.components.stores import Stores

    task = Box([0.0], [1.0]).task([0.5])

    def fill(host: ComponentHost) -> None:
        host.lifetime_start()
        host.block_start(Block(0, "train"))
        for i in range(3):
            host.transition(0, task, [float(i)], 0, 1.0, [float(i)], i == 2)
        host.episode_end(0, task_outcome(task, 1.0))

    local = ExperienceReplay({"capacity": 10})
    fill(ComponentHost([local], placement=Placement.ENV_RUNNER))
    assert local.owns_store and local.state_dict()["store"]["tables"] == {task.id: [[0.0], [1.0], [2.0]]}
    shared = ReplayStore(capacity=10)  # what a run registers: its store actor
    comp = ExperienceReplay({"capacity": 10})
    fill(ComponentHost([comp], stores=Stores({"replay": shared}), placement=Placement.ENV_RUNNER))
    assert comp.store is shared and shared.tasks() == {task.id: 3}  # the shared store got the writes
    assert not comp.owns_store and comp.state_dict() == {}  # its owner saves it, not every env runner
    comp.load_state_dict(local.state_dict())  # a saved own store does not overwrite the shared one
    assert shared.tasks() == {task.id: 3} and len(comp._own) == 0


def test_teacher_adapter_updates_the_teacher_and_skips_evaluation():
    teacher = make_teacher("alp_gmm", Box([0.0, 0.0], [1.0, 1.0]), seed=0)
    comp = TeacherComponent(teacher=teacher)
    host = ComponentHost([comp], placement=Placement.CURRICULUM)
    host.block_start(Block(0, "train"))
    for _ in range(5):
        task = comp.next_task()
        host.episode_end(0, task_outcome(task, 1.0))
    host.block_end()
    host.block_start(Block(1, "evaluation"))
    host.episode_end(0, task_outcome(comp.next_task(), 1.0))
    assert comp.updates == 5
    again = TeacherComponent(teacher=make_teacher("alp_gmm", Box([0.0, 0.0], [1.0, 1.0]), seed=5))
    again.load_state_dict(comp.state_dict())
    assert again.updates == 5 and again.teacher.sample(3) == comp.teacher.sample(3)


class Scaled(Component):
    class Config(ComponentConfig):
        scale: float = 1.0

    provides = ("scaled",)


def test_specs_are_checked_with_the_list_index_and_field():
    here = f"{__name__}:Scaled"
    with pytest.raises(ConfigError, match=r"components\[1\]\.config.*scale"):
        check_component_specs([{"class": here}, {"class": here, "config": {"scale": "big"}}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.config.*scal"):
        check_component_specs([{"class": here, "config": {"scal": 2}}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.class: .*unknown component 'ewk'.*Did you mean 'ewc'"):
        check_component_specs([{"class": "ewk"}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.class: cannot import module 'no_such_pkg.mod'"):
        check_component_specs([{"class": "no_such_pkg.mod:X"}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.class: 'openended.tasks:Box' is not a subclass"):
        check_component_specs([{"class": "openended.tasks:Box"}])
    with pytest.raises(ConfigError, match=r"components\[0\]"):
        check_component_specs([{"klass": here}])
    (built,) = build_components([{"class": here, "config": {"scale": 2}}])
    assert isinstance(built, Scaled) and built.config.scale == 2.0


def test_host_state_round_trip_refuses_other_components():
    host = ComponentHost([Recorder()])
    host.lifetime_start()
    state = host.state_dict()
    assert state == {"0:Recorder": {"n": 1}}
    with pytest.raises(ConfigError, match="resume with the components the run started with"):
        ComponentHost([Scaled()]).load_state_dict(state)
