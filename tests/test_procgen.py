"""Procgen task envs: gymnasium contract, per-episode level control, determinism, errors.

The reference for "level s" is always upstream itself: a fresh
``ProcgenGym3Env(num=1, num_levels=1, start_level=s)``; our envs must produce its frames.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("procgen")

from gymnasium.utils.env_checker import check_env
from procgen import ProcgenGym3Env

from openended.envs import make_env
from openended.envs.procgen import ProcgenTaskEnv, ProcgenVectorTaskEnv
from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Discrete

RIGHT_JUMP = 8  # holding right+up solves many easy coinrun levels


def upstream_rollout(
    level: int, actions: list[int], game: str = "coinrun", mode: str = "easy"
) -> tuple[list[np.ndarray], list[float], list[bool]]:
    """Frames seen *before* each action, rewards and episode-start flags, from upstream."""
    env = ProcgenGym3Env(num=1, env_name=game, num_levels=1, start_level=level, distribution_mode=mode, num_threads=0)
    frames, rews, firsts = [], [], []
    for a in actions:
        frames.append(env.observe()[1]["rgb"][0].copy())
        env.act(np.array([a], dtype=np.int32))
        r, _, f = env.observe()
        rews.append(float(r[0]))
        firsts.append(bool(f[0]))
    env.close()
    return frames, rews, firsts


@pytest.fixture(scope="module")
def env():
    e = ProcgenTaskEnv(game="coinrun", num_levels=200, num_test_levels=50)
    yield e
    e.close()


@pytest.mark.parametrize(
    "kw",
    [dict(game="coinrun"), dict(game="bigfish", distribution_mode="hard", max_episode_steps=50, num_levels=10)],
    ids=["coinrun-easy", "bigfish-hard-limit50"],
)
def test_check_env_passes(kw):
    e = ProcgenTaskEnv(**kw)
    check_env(e, skip_render_check=True)
    e.close()


def test_registry_builds_single_env():
    e = make_env("procgen", game="maze", num_levels=5)
    try:
        assert isinstance(e, ProcgenTaskEnv)
        assert e.task_space() == Discrete(range(5), name="procgen/maze/easy/train")
    finally:
        e.close()


@pytest.mark.parametrize("num_envs", [0, 10**12, 2.0, True])
def test_a_vector_env_count_out_of_range_is_refused_before_anything_is_built(num_envs):
    with pytest.raises(ConfigError, match=r"env\.procgen\.num_envs: must be an int in 1\.\.4,096"):
        make_env("procgen_vector", num_envs=num_envs)


def test_spaces_and_level_sets(env):
    train, test = env.task_space(), env.test_task_space()
    assert train.values == tuple(range(200)) and test.values == tuple(range(200, 250))
    assert not set(train.values) & set(t.value for t in env.test_levels())
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.action_space.n == 15


@pytest.mark.parametrize("level", [0, 17, 123])
def test_level_first_frame_matches_upstream(env, level):
    env.set_task(env.task_space().task(level))
    obs, info = env.reset()
    assert info["level_seed"] == level and info["task_id"] == env.task_space().task(level).id
    ref, _, _ = upstream_rollout(level, [0])
    np.testing.assert_array_equal(obs, ref[0])


def test_different_levels_look_different(env):
    frames = []
    for level in (1, 2, 3):
        env.set_task(env.task_space().task(level))
        frames.append(env.reset()[0])
    assert not np.array_equal(frames[0], frames[1]) or not np.array_equal(frames[1], frames[2])


def test_same_level_same_actions_same_trajectory_after_visiting_others(env):
    rng = np.random.default_rng(3)
    actions = rng.integers(0, 15, size=120).tolist()

    def run(level: int) -> list[tuple]:
        env.set_task(env.task_space().task(level))
        obs, _ = env.reset()
        out = [(obs.copy(), 0.0)]
        for a in actions:
            obs, r, te, tr, info = env.step(a)
            out.append((obs.copy(), r))
            if te or tr:
                break
        return out

    a = run(42)
    run(7)  # a different level in between must not leak into level 42
    b = run(42)
    assert len(a) == len(b)
    for (oa, ra), (ob, rb) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
    ref_frames, ref_rews, _ = upstream_rollout(42, actions[: len(a) - 1])
    for (o, _), rf in zip(a[:-1], ref_frames):
        np.testing.assert_array_equal(o, rf)


def test_set_task_applies_only_at_next_reset(env):
    sp = env.task_space()
    env.set_task(sp.task(5))
    env.reset()
    env.set_task(sp.task(6))  # mid-episode: queued
    for _ in range(3):
        _, _, te, tr, info = env.step(0)
        assert info["level_seed"] == 5 and info["task_id"] == sp.task(5).id
    assert env.current_task == sp.task(5)
    _, info = env.reset()
    assert info["level_seed"] == 6
    _, info = env.reset()  # a set task persists
    assert info["level_seed"] == 6
    _, info = env.reset(options={"task": sp.task(9)})
    assert info["level_seed"] == 9


def test_held_out_levels_are_playable(env):
    t = env.test_levels()[3]
    env.set_task(t)
    obs, info = env.reset()
    assert info["level_seed"] == 203 and info["task_id"] == t.id
    np.testing.assert_array_equal(obs, upstream_rollout(203, [0])[0][0])


def test_success_is_level_complete(env):
    results = []
    for level in range(12):
        env.set_task(env.task_space().task(level))
        env.reset()
        while True:
            _, r, te, tr, info = env.step(RIGHT_JUMP)
            if te or tr:
                break
        assert info["success"] == (info["episode_return"] > 0)  # coinrun: 10 for the coin, else 0
        assert env.last_outcome.success == info["success"]
        assert env.last_outcome.task_id == env.task_space().task(level).id
        assert env.last_outcome.length == info["episode_length"]
        results.append(info["success"])
    assert any(results) and not all(results)


def test_max_episode_steps_truncates():
    e = ProcgenTaskEnv(game="coinrun", num_levels=3, max_episode_steps=7)
    try:
        e.set_task(e.task_space().task(1))
        first, _ = e.reset()
        for _k in range(7):
            last, _, te, tr, info = e.step(0)
        assert tr and not te and info["episode_length"] == 7 and info["success"] is False
        np.testing.assert_array_equal(last, upstream_rollout(1, [0] * 8)[0][7])  # the real 7th-step frame
        again, _ = e.reset()
        np.testing.assert_array_equal(first, again)  # the level restarts, not continues
    finally:
        e.close()


def test_unset_task_draws_uniform_levels_from_seed():
    def levels(seed: int) -> list[int]:
        e = ProcgenTaskEnv(game="coinrun", num_levels=50)
        try:
            out = [e.reset(seed=seed)[1]["level_seed"]]
            out += [e.reset()[1]["level_seed"] for _ in range(5)]
            return out
        finally:
            e.close()

    a, b, c = levels(11), levels(11), levels(12)
    assert a == b and a != c and len(set(a)) > 1


def test_bad_tasks_raise_naming_the_level(env):
    other = Discrete([999]).task(999)
    msg = (
        f"procgen/coinrun/easy: level 999 (task {other.id}) is neither a training level (0..199) "
        f"nor a held-out level (200..249)"
    )
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        env.set_task(other)
    msg = "procgen/coinrun/easy: level 999 is neither a training level (0..199) nor a held-out level (200..249)"
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        env.set_task(999)
    msg = (
        "set_task expects an openended Task or a level seed (int), got str; build one with "
        "env.task_space().task(level) or take one from env.test_levels()"
    )
    with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
        env.set_task("17")  # type: ignore[arg-type]
    env.set_task(17)  # a level seed is accepted as well
    assert env.reset()[1]["task_id"] == env.task_space().task(17).id
    env.set_task(230)
    assert env.reset()[1]["task_id"] == env.test_task_space().task(230).id


def test_bad_config_is_a_config_error():
    msg = (
        "invalid configuration for env.procgen:\n"
        "env.procgen: Value error, held-out levels 100..199 overlap training levels 0..199; move "
        "test_start_level, got {'num_levels': 200, 'test_start_level': 100}"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        ProcgenTaskEnv(num_levels=200, test_start_level=100)
    with pytest.raises(
        ConfigError,
        match=r"^invalid configuration for env\.procgen:\nenv\.procgen\.game: Input "
        r"should be 'bigfish', .* or 'starpilot', got 'pong'$",
    ):
        ProcgenTaskEnv(game="pong")


# ---------------------------------------------------------------------------- vector env
def test_vector_env_switches_levels_per_sub_env_and_matches_upstream():
    v = ProcgenVectorTaskEnv(num_envs=3, game="coinrun", num_levels=200, num_threads=0, max_episode_steps=12)
    try:
        sp = v.task_space()
        v.set_tasks([sp.task(10), sp.task(11), sp.task(12)])
        obs, info = v.reset(seed=0)
        assert info["level_seed"].tolist() == [10, 11, 12]
        for i, lv in enumerate((10, 11, 12)):
            np.testing.assert_array_equal(obs[i], upstream_rollout(lv, [0])[0][0])
        v.set_task(sp.task(20), index=1)  # queued: sub-env 1 switches only at its episode end
        rng = np.random.default_rng(0)
        acts = rng.integers(0, 15, size=(12, 3))
        seen0 = [obs[0].copy()]
        for k in range(12):
            obs, rew, te, tr, infos = v.step(acts[k])
            if k < 11:
                assert infos["task_id"][1] == sp.task(11).id and not (te | tr).any()
                seen0.append(obs[0].copy())
        assert tr.all() and not te.any()  # max_episode_steps cut every sub-env at step 12
        fin = infos["final_info"]
        assert fin["level_seed"].tolist() == [10, 11, 12] and fin["episode_length"].tolist() == [12] * 3
        assert infos["task_id"].tolist() == [sp.task(10).id, sp.task(20).id, sp.task(12).id]
        np.testing.assert_array_equal(obs[1], upstream_rollout(20, [0])[0][0])
        np.testing.assert_array_equal(obs[0], upstream_rollout(10, [0])[0][0])  # level restarted
        ref, _, _ = upstream_rollout(10, acts[:, 0].tolist() + [0])
        for a, b in zip(seen0, ref):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(infos["final_obs"][0], ref[12])  # the frame the cut happened in
        outs = v.pop_outcomes()
        assert [o.task_id for o in outs] == [sp.task(10).id, sp.task(11).id, sp.task(12).id]
        assert v.pop_outcomes() == []
    finally:
        v.close()


def test_vector_env_natural_episode_end_and_success():
    v = ProcgenVectorTaskEnv(num_envs=4, game="coinrun", num_levels=200, num_threads=0)
    try:
        sp = v.task_space()
        v.set_tasks([sp.task(lv) for lv in (2, 3, 9, 17)])  # 2, 3 solved by right+jump; 9, 17 not
        v.reset(seed=0)
        done = np.zeros(4, dtype=bool)
        finals: dict[int, tuple] = {}
        for _ in range(400):
            obs, rew, te, tr, infos = v.step(np.full(4, RIGHT_JUMP))
            if "final_info" in infos:
                for i in np.flatnonzero(infos["_final_info"]):
                    if not done[i]:
                        fi = infos["final_info"]
                        finals[int(i)] = (
                            bool(fi["success"][i]),
                            float(fi["episode_return"][i]),
                            int(fi["level_seed"][i]),
                        )
                        assert infos["final_obs"][i].shape == (64, 64, 3)
                        # the same level restarts (task persists): frame = upstream first frame
                        np.testing.assert_array_equal(obs[i], upstream_rollout(finals[int(i)][2], [0])[0][0])
                done |= infos["_final_info"]
            if done.all():
                break
        assert done.all()
        for succ, ret, _lv in finals.values():
            assert succ == (ret > 0)
        assert finals[0][0] and finals[1][0] and not finals[2][0] and not finals[3][0]
        outs = v.pop_outcomes()
        assert sum(o.success for o in outs) >= 2 and all(o.info["game"] == "coinrun" for o in outs)
    finally:
        v.close()


def test_vector_env_rejects_bad_tasks_and_indices():
    v = ProcgenVectorTaskEnv(num_envs=2, game="coinrun", num_levels=10, num_threads=0)
    try:
        bad = Discrete([500]).task(500)
        msg = (
            f"procgen/coinrun/easy: level 500 (task {bad.id}) is neither a training level (0..9) "
            f"nor a held-out level (10..109)"
        )
        with pytest.raises(TaskNotInSpace, match=f"^{re.escape(msg)}$"):
            v.set_tasks([None, bad])
        with pytest.raises(ConfigError, match=r"^set_task: index must be in 0\.\.1, got 5$"):
            v.set_task(v.task_space().task(1), index=5)
        with pytest.raises(ConfigError, match=r"^set_tasks: expected 2 tasks \(one per sub-env\), got 1$"):
            v.set_tasks([None])
    finally:
        v.close()
