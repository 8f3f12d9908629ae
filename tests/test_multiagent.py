"""PettingZoo task envs: parallel API for several tasks, task timing, determinism, outcomes, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
pytest.importorskip("mpe2")

from pettingzoo.test import parallel_api_test

from openended.envs.multiagent import MultiwalkerTaskEnv, SimpleSpreadTaskEnv, SimpleTagTaskEnv
from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box

# parallel_api_test warns when a task uses fewer agents than possible_agents (by design here)
pytestmark = pytest.mark.filterwarnings("ignore:No agents present but not all possible_agents")

CASES = {
    "multiwalker": (
        MultiwalkerTaskEnv,
        [dict(n_walkers=2, terrain_length=60), dict(n_walkers=4, hardcore=1, position_noise=0.005)],
    ),
    "simple_spread": (SimpleSpreadTaskEnv, [dict(n_agents=2), dict(n_agents=4, layout_seed=3, local_ratio=0.1)]),
    "simple_tag": (
        SimpleTagTaskEnv,
        [dict(num_good=2, num_adversaries=2, num_obstacles=0), dict(num_good=1, num_adversaries=4, num_obstacles=3)],
    ),
}


def rollout(env, seed: int, steps: int, action_seed: int = 0) -> list:
    """(obs, rewards) per step with actions from a seeded generator; stops at episode end."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [{a: o.copy() for a, o in obs.items()}]
    for _ in range(steps):
        acts = {}
        for a in env.agents:
            sp = env.action_space(a)
            acts[a] = int(rng.integers(sp.n)) if hasattr(sp, "n") else rng.uniform(-1, 1, sp.shape).astype(np.float32)
        obs, rew, term, trunc, _ = env.step(acts)
        out.append(({a: o.copy() for a, o in obs.items()}, dict(rew)))
        if not env.agents:
            break
    return out


def same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        ox, oy = (x[0], y[0]) if isinstance(x, tuple) else (x, y)
        if ox.keys() != oy.keys() or any(not np.array_equal(ox[k], oy[k]) for k in ox):
            return False
        if isinstance(x, tuple) and x[1] != y[1]:
            return False
    return True


@pytest.mark.parametrize("family", list(CASES))
def test_parallel_api_for_several_tasks(family):
    cls, tasks = CASES[family]
    env = cls()
    try:
        for kw in tasks + [{}]:
            env.set_task(env.task(**kw))
            parallel_api_test(env, num_cycles=120)
            assert env.current_task == env.task(**kw)
    finally:
        env.close()


@pytest.mark.parametrize("family", list(CASES))
def test_agents_are_a_subset_with_fixed_spaces(family):
    cls, tasks = CASES[family]
    env = cls()
    try:
        spaces = {a: (env.observation_space(a), env.action_space(a)) for a in env.possible_agents}
        for kw in tasks:
            env.set_task(env.task(**kw))
            obs, infos = env.reset(seed=1)
            assert set(env.agents) <= set(env.possible_agents) and env.agents
            for a in env.agents:
                assert env.observation_space(a) is spaces[a][0] and env.action_space(a) is spaces[a][1]
                assert spaces[a][0].contains(obs[a]), (a, obs[a].shape, spaces[a][0])
                assert infos[a]["task_id"] == env.current_task.id
    finally:
        env.close()


@pytest.mark.parametrize("family", list(CASES))
def test_same_seed_and_task_same_trajectory_across_structure_switches(family):
    cls, tasks = CASES[family]
    env = cls()
    try:
        env.set_task(env.task(**tasks[0]))
        a = rollout(env, seed=7, steps=30)
        env.set_task(env.task(**tasks[1]))  # a different structure in between (cached upstream env)
        rollout(env, seed=8, steps=5)
        env.set_task(env.task(**tasks[0]))
        b = rollout(env, seed=7, steps=30)
        other = cls()
        other.set_task(other.task(**tasks[0]))
        c = rollout(other, seed=7, steps=30)
        other.close()
        d = rollout(env, seed=9, steps=30)
        assert same(a, b) and same(a, c) and not same(a, d)
    finally:
        env.close()


def test_set_task_applies_only_at_next_reset():
    env = SimpleSpreadTaskEnv()
    try:
        t2, t4 = env.task(n_agents=2), env.task(n_agents=4)
        env.set_task(t2)
        env.reset(seed=0)
        env.set_task(t4)  # mid-episode: queued
        _, _, _, _, infos = env.step({a: 0 for a in env.agents})
        assert env.agents == ["agent_0", "agent_1"] and infos["agent_0"]["task_id"] == t2.id
        assert env.current_task == t2
        env.reset()
        assert env.agents == ["agent_0", "agent_1", "agent_2", "agent_3"] and env.current_task == t4
        env.reset()  # a set task persists
        assert env.current_task == t4
        env.reset(options={"task": t2})
        assert env.current_task == t2 and len(env.agents) == 2
    finally:
        env.close()


def test_episode_outcomes_per_agent_and_team():
    env = SimpleTagTaskEnv(max_cycles=15)
    try:
        task = env.task(num_good=2, num_adversaries=3, num_obstacles=1)
        env.set_task(task)
        assert env.episode_outcomes() == []
        env.reset(seed=3)
        sums: dict[str, float] = {}
        while env.agents:
            _, rew, term, trunc, infos = env.step({a: 1 for a in env.agents})
            for a, r in rew.items():
                sums[a] = sums.get(a, 0.0) + r
        outs = {o.student_id: o for o in env.episode_outcomes()}
        assert sorted(outs) == ["adversary_0", "adversary_1", "adversary_2", "agent_0", "agent_1"]
        for a, o in outs.items():
            assert o.task_id == task.id and o.length == 15
            assert o.episode_return == pytest.approx(sums[a]) == pytest.approx(infos[a]["episode_return"])
            team = "adversary" if a.startswith("adversary") else "good"
            members = [b for b in outs if (b.startswith("adversary")) == (team == "adversary")]
            assert o.info["team"] == team
            assert o.info["team_return"] == pytest.approx(np.mean([sums[b] for b in members]))
            assert infos[a]["team_return"] == o.info["team_return"]
            assert o.info["num_good"] == 2 and o.info["num_obstacles"] == 1
        assert outs["adversary_0"].success == (not outs["agent_0"].success)
    finally:
        env.close()


def test_simple_spread_layout_seed_and_local_ratio():
    env = SimpleSpreadTaskEnv(min_agents=3, max_agents=3)  # fixed N: native observations
    try:
        assert env.observation_space("agent_0").shape == (18,)  # upstream N=3 full observation

        def landmarks_and_agents(seed):
            env.reset(seed=seed)
            w = env.upstream.unwrapped.world
            return (np.array([lm.state.p_pos for lm in w.landmarks]), np.array([a.state.p_pos for a in w.agents]))

        env.set_task(env.task(layout_seed=5))
        l1, a1 = landmarks_and_agents(1)
        l2, a2 = landmarks_and_agents(2)
        np.testing.assert_array_equal(l1, l2)
        assert not np.array_equal(a1, a2)
        env.set_task(env.task(layout_seed=-1))
        l3, _ = landmarks_and_agents(1)
        l4, _ = landmarks_and_agents(2)
        assert not np.array_equal(l3, l4)
        env.set_task(env.task(local_ratio=0.0))  # shared reward only: every agent gets the same reward
        env.reset(seed=0)
        for _ in range(5):
            _, rew, _, _, _ = env.step({a: 2 for a in env.agents})
            assert len(set(rew.values())) == 1
    finally:
        env.close()


def test_multiwalker_task_reaches_the_upstream_env_and_rounds_integers():
    env = MultiwalkerTaskEnv()
    try:
        env.set_task(env.task(n_walkers=2.6, terrain_length=80.4, hardcore=1, angle_noise=0.002))
        env.reset(seed=0)
        base = env.upstream.unwrapped.env
        assert env.agents == ["walker_0", "walker_1", "walker_2"]
        assert (base.n_walkers, base.terrain_length, base.hardcore, base.angle_noise) == (3, 80, True, 0.002)
        assert len(base.terrain_x) == 80
        assert env.task_params() == {
            "n_walkers": 3,
            "terrain_length": 80,
            "hardcore": 1,
            "position_noise": 0.001,
            "angle_noise": 0.002,
        }
        while env.agents:  # motionless walkers never carry the package home
            _, _, term, trunc, infos = env.step({a: np.zeros(4, np.float32) for a in env.agents})
        assert all(o.success is False for o in env.episode_outcomes())
        assert infos["walker_0"]["success"] is False
    finally:
        env.close()


def test_bad_tasks_and_configs_raise_naming_the_value():
    env = MultiwalkerTaskEnv()
    try:
        with pytest.raises(
            TaskNotInSpace,
            match=r"^multiwalker: task parameter n_walkers=7\.0 is outside "
            r"\[2\.0, 4\.0\]$",
        ):
            env.task(n_walkers=7)
        msg = (
            "multiwalker: unknown task parameter(s) ['n_walker']; valid: ['n_walkers', 'terrain_length', "
            "'hardcore', 'position_noise', 'angle_noise']"
        )
        with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
            env.task(n_walker=2)
        foreign = Box([0, 0, 0, 0, 0], [9, 999, 1, 1, 1]).task([3, 500, 0, 0, 0])
        with pytest.raises(
            TaskNotInSpace,
            match=r"^multiwalker: task parameter terrain_length=500\.0 is outside "
            r"\[60\.0, 200\.0\]$",
        ):
            env.set_task(foreign)
        with pytest.raises(
            TaskNotInSpace,
            match=r"^set_task expects an openended Task, a dict of named parameters "
            r"or a sequence of 5 values, got str$",
        ):
            env.set_task("n_walkers=2")  # type: ignore[arg-type]
        with pytest.raises(
            TaskNotInSpace,
            match=r"^multiwalker: a task has 5 parameters \['n_walkers', "
            r"'terrain_length', 'hardcore', 'position_noise', 'angle_noise'\], "
            r"got 2 values \[2, 60\]$",
        ):
            env.set_task([2, 60])
        env.set_task({"n_walkers": 2, "hardcore": 1})  # named parameters; the rest are defaults
        env.reset(seed=0)
        assert env.task_params()["hardcore"] == 1 and env.agents == ["walker_0", "walker_1"]
        env.set_task([4, 100, 0, 0.0, 0.0])
        env.reset(seed=0)
        assert env.current_task == env.task(n_walkers=4, terrain_length=100, position_noise=0, angle_noise=0)
    finally:
        env.close()
    msg = (
        "invalid configuration for env.multiwalker:\nenv.multiwalker: Value error, walkers: min 4 is above max 3, "
        "got {'min_walkers': 4, 'max_walkers': 3}"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        MultiwalkerTaskEnv(min_walkers=4, max_walkers=3)


def test_padded_observations_keep_one_shape_per_agent():
    for env, family in ((SimpleTagTaskEnv(), "simple_tag"), (SimpleSpreadTaskEnv(), "simple_spread")):
        try:
            assert env.observation_mode == "padded"
            for kw in CASES[family][1]:
                env.set_task(env.task(**kw))
                obs, _ = env.reset(seed=0)
                for _ in range(3):
                    for a, o in obs.items():
                        assert o.shape == env.observation_space(a).shape and o.dtype == np.float32
                    obs, *_ = env.step({a: 1 for a in env.agents})
        finally:
            env.close()


@pytest.mark.parametrize(
    "cls,fixed,task",
    [
        (
            SimpleTagTaskEnv,
            dict(min_good=2, max_good=2, min_adversaries=4, max_adversaries=4, min_obstacles=3, max_obstacles=3),
            dict(num_good=2, num_adversaries=4, num_obstacles=3),
        ),
        (SimpleSpreadTaskEnv, dict(min_agents=4, max_agents=4), dict(n_agents=4)),
    ],
    ids=["simple_tag", "simple_spread"],
)
def test_padded_observation_equals_upstream_at_maximum_counts(cls, fixed, task):
    padded, native = cls(), cls(**fixed)
    try:
        assert native.observation_mode == "native"
        padded.set_task(padded.task(**task))
        native.set_task(native.task(**task))
        a, b = rollout(padded, seed=4, steps=10), rollout(native, seed=4, steps=10)
        assert same(a, b)
        one = cls(observation="nearest")
        one.set_task(one.task(**task))
        assert not same(a, rollout(one, seed=4, steps=10))  # mpe2's nearest-first order differs
        one.close()
    finally:
        padded.close()
        native.close()


def test_native_observations_need_fixed_counts():
    with pytest.raises(
        ConfigError,
        match=r"^env\.simple_spread\.observation: 'native' observations change length "
        r"when agent or landmark counts vary across tasks; use 'padded' or "
        r"'nearest', or pin the counts \(min == max\)$",
    ):
        SimpleSpreadTaskEnv(observation="native")


def test_simple_tag_success_when_every_prey_is_caught():
    env = SimpleTagTaskEnv(max_cycles=3)
    try:
        env.set_task(env.task(num_good=1, num_adversaries=4, num_obstacles=0))
        env.reset(seed=0)
        world = env.upstream.unwrapped.world
        prey = [a for a in world.agents if not a.adversary][0]
        prey.state.p_pos = np.zeros(2)
        for adv, off in zip([a for a in world.agents if a.adversary], [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]):
            adv.state.p_pos = np.array(off, dtype=float)  # speed caps keep them within reach for a step
        while env.agents:
            env.step({a: 0 for a in env.agents})
        outs = {o.student_id: o.success for o in env.episode_outcomes()}
        assert outs == {
            "adversary_0": True,
            "adversary_1": True,
            "adversary_2": True,
            "adversary_3": True,
            "agent_0": False,
        }
    finally:
        env.close()


def test_simple_spread_success_means_all_landmarks_covered():
    env = SimpleSpreadTaskEnv(max_cycles=1)
    try:
        env.set_task(env.task(n_agents=3, layout_seed=1))
        for cover in (True, False):
            env.reset(seed=0)
            world = env.upstream.unwrapped.world
            if cover:
                for ag, lm in zip(world.agents, world.landmarks):
                    ag.state.p_pos = lm.state.p_pos.copy()
            else:
                for i, ag in enumerate(world.agents):
                    ag.state.p_pos = np.array([3.0 + i, 3.0])  # far from every landmark
            env.step({a: 0 for a in env.agents})
            assert {o.success for o in env.episode_outcomes()} == {cover}
    finally:
        env.close()


def test_multiwalker_success_when_the_package_crosses_the_line():
    env = MultiwalkerTaskEnv()
    try:
        env.set_task(env.task(n_walkers=2, terrain_length=60))
        env.reset(seed=0)
        base = env.upstream.unwrapped.env
        from pettingzoo.sisl.multiwalker import multiwalker_base as mb

        base.package.position = ((60 - mb.TERRAIN_GRASS) * mb.TERRAIN_STEP + 1.0, base.package.position.y)
        _, _, term, _, infos = env.step({a: np.zeros(4, np.float32) for a in env.agents})
        assert all(term.values()) and infos["walker_0"]["success"] is True
        assert [o.success for o in env.episode_outcomes()] == [True, True]
    finally:
        env.close()


def test_agents_finishing_early_get_their_own_return():
    env = MultiwalkerTaskEnv(terminate_on_fall=False, remove_on_fall=True, max_cycles=300)
    try:
        env.set_task(env.task(n_walkers=3))
        rng = np.random.default_rng(0)
        env.reset(seed=1)
        sums: dict[str, float] = {}
        done_at: dict[str, tuple[int, dict]] = {}
        t = 0
        while env.agents:
            _, rew, term, trunc, infos = env.step({a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents})
            t += 1
            for a, r in rew.items():
                sums[a] = sums.get(a, 0.0) + r
            for a in term:
                if term[a] or trunc[a]:
                    done_at[a] = (t, infos[a])
        assert len({step for step, _ in done_at.values()}) > 1  # they did finish at different steps
        for a, (step, info) in done_at.items():
            assert info["episode_return"] == pytest.approx(sums[a]) and info["episode_length"] == step
        outs = env.episode_outcomes()
        assert {o.student_id for o in outs} == set(done_at)
        assert all(o.info["team_return"] == pytest.approx(np.mean(list(sums.values()))) for o in outs)
    finally:
        env.close()
