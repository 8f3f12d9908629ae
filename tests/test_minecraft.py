"""The minecraft family: VPT <-> MineDojo actions, the adapter against a fake with MineDojo's
spec (`openended.envs.minedojo_fake`), hosting in an EnvPool and in the RLlib wrapper. The real
simulator cannot be installed here (Java 8 + a Minecraft download): its test is skip-marked."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openended.envs import make_env
from openended.envs.checker import check_task_env
from openended.envs.minecraft import SAMPLE_TASKS, MinecraftTaskEnv
from openended.envs.minecraft_actions import (
    MINEDOJO_NVEC,
    VPT_BUTTONS,
    VPTToMineDojo,
    camera_bin_to_degrees,
    camera_degrees_to_bin,
    minedojo_to_vpt,
    vpt_to_minedojo,
)
from openended.errors import DependencyNotInstalled, TaskNotInSpace

FAKE = {"backend": "fake", "image_size": (32, 32), "max_episode_steps": 60}


def _episode(env, policy, seed=0):  # type: ignore[no-untyped-def]
    obs, info = env.reset(seed=seed)
    steps = 0
    while True:
        obs, _, term, trunc, out = env.step(policy(steps))
        steps += 1
        if term or trunc:
            return out, steps, info


def _press(*names: str, camera=(5, 5)) -> np.ndarray:  # type: ignore[no-untyped-def]
    a = np.zeros(len(VPT_BUTTONS) + 2, dtype=np.int64)
    for n in names:
        a[VPT_BUTTONS.index(n)] = 1
    a[-2:] = camera
    return a


# ---------------------------------------------------------------------- actions
def test_camera_bins_follow_vpts_mu_law_and_invert_at_bin_centres():
    bins = np.arange(11)
    assert np.array_equal(camera_degrees_to_bin(camera_bin_to_degrees(bins)), bins)
    degrees = camera_bin_to_degrees(bins)
    assert degrees[5] == 0 and np.isclose(degrees[0], -10) and np.isclose(degrees[10], 10)
    assert np.all(np.diff(degrees) > 0) and np.diff(degrees)[5] < np.diff(degrees)[9]  # finer near still


def test_every_expressible_minedojo_action_survives_a_round_trip():
    seen = 0
    for move, strafe, jump, fn, slot in itertools.product(range(3), range(3), range(4), (0, 1, 2, 3, 5), range(9)):
        if fn != 5 and slot:
            continue
        md = np.array([move, strafe, jump, 11, 14, fn, 0, slot if fn == 5 else 0])
        buttons, camera = minedojo_to_vpt(md)
        assert np.array_equal(vpt_to_minedojo(buttons, camera), md), md
        seen += 1
    assert seen == 3 * 3 * 4 * (4 + 9)
    assert len(MINEDOJO_NVEC) == 8


def test_opposite_keys_cancel_and_attack_beats_the_other_functions():
    act = vpt_to_minedojo(_press("forward", "back", "left", "attack", "use", "hotbar.3")[:20], np.zeros(2))
    assert list(act[:3]) == [0, 1, 0] and act[5] == 3  # forward+back cancel; attack wins
    act = vpt_to_minedojo(_press("hotbar.3")[:20], np.zeros(2))
    assert act[5] == 5 and act[7] == 2  # equip slot 3 (0-based 2)


def test_slow_vpt_turns_still_turn_minedojo_at_the_same_average_rate():
    convert, still = VPTToMineDojo(), np.zeros(len(VPT_BUTTONS), dtype=np.int64)
    yaw_bin = 8  # +3.2 degrees a step: below half of MineDojo's 15-degree bin
    sent = sum((convert(still, np.array([5, yaw_bin]))[4] - 12) * 15.0 for _ in range(100))
    wanted = 100 * float(camera_bin_to_degrees(yaw_bin))
    assert abs(sent - wanted) <= 7.5  # at most half a bin behind, however long it turns
    assert vpt_to_minedojo(still, np.array([0.0, float(camera_bin_to_degrees(yaw_bin))]))[4] == 12  # stateless: never


# ---------------------------------------------------------------------- the adapter
def test_the_family_honours_the_task_env_contract_against_the_fake():
    check_task_env(lambda: make_env("minecraft", **FAKE))


def test_success_is_minedojos_own_check_and_only_at_episode_end():
    env = MinecraftTaskEnv(tasks=["harvest_1_log"], **FAKE)
    out, steps, info = _episode(env, lambda t: _press("attack"))
    assert out["success"] and steps < 60 and info["task"] == SAMPLE_TASKS["harvest_1_log"]
    out, steps, _ = _episode(env, lambda t: _press("forward"))  # never attacks: never harvests
    assert out["success"] is False and steps == 60
    env.close()


def test_text_tasks_are_the_catalogues_prompts():
    env = MinecraftTaskEnv(space="text", tasks=["harvest_1_log", "techtree_from_barehand_to_wooden_sword"], **FAKE)
    space = env.task_space()
    task = space.task(SAMPLE_TASKS["techtree_from_barehand_to_wooden_sword"], origin="seed")
    env.set_task(task)
    env.reset()
    assert env._sim_task == "techtree_from_barehand_to_wooden_sword"
    with pytest.raises(TaskNotInSpace, match="prompt"):
        env.set_task(space.task("build a rocket to the moon", origin="generated"))
    env.close()


def test_without_minedojo_the_error_says_how_to_install():
    try:
        import minedojo  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("MineDojo is installed here")
    with pytest.raises(DependencyNotInstalled, match="Java 8"):
        make_env("minecraft")
    with pytest.raises(DependencyNotInstalled, match="minedojo"):
        MinecraftTaskEnv(catalogue="programmatic", backend="fake")


def test_hosted_in_an_envpool_every_outcome_names_its_task():
    from openended.runtime.client import LocalTeacherClient
    from openended.runtime.core import TeacherServiceCore
    from openended.runtime.envpool import EnvPoolCore

    space = make_env("minecraft", **FAKE).task_space()
    core = TeacherServiceCore()
    core.add_curriculum("mc", "plr", space, config={"seed": 0})
    client = LocalTeacherClient(core, "mc", "default")
    pool = EnvPoolCore("minecraft", dict(FAKE), 2, client, steps_per_call=150, seed=0)
    stats = pool.step()
    pool.close()
    assert stats["episodes"] >= 2
    snap = core.snapshot()["curricula"]["mc"]["counters"]
    assert snap["outcomes_accepted"] == pool.stats()["total_episodes"] and pool.stats()["task_id_mismatches"] == 0


def test_hosted_in_the_rllib_wrapper_each_episode_reports_its_task():
    from support import counter_delta

    from openended.runtime.process_clients import EPISODE_COUNTERS
    from openended.runtime.rllib import CurriculumEnv

    class Scripted:
        def __init__(self, tasks):  # type: ignore[no-untyped-def]
            self.tasks, self.reported = list(tasks), []

        def next_task(self):  # type: ignore[no-untyped-def]
            return self.tasks.pop(0)

        def report(self, outcome):  # type: ignore[no-untyped-def]
            self.reported.append(outcome)

        def flush(self, wait=False):  # type: ignore[no-untyped-def]
            pass

        def close(self):  # type: ignore[no-untyped-def]
            pass

    inner = make_env("minecraft", **FAKE)
    a, b = inner.task_space().task("harvest_1_log"), inner.task_space().task("harvest_1_dirt")
    env = CurriculumEnv(inner, "no_service", "mc")
    env.host.client = Scripted([a, b])
    with counter_delta(EPISODE_COUNTERS) as delta:  # process-wide counters: put back for later tests
        for expected in (a, b):
            env.reset(seed=0)
            done = False
            while not done:
                *_, term, trunc, info = env.step(_press("attack"))
                done = term or trunc
            assert info["task_id"] == expected.id
    assert [o.task_id for o in env.host.client.reported] == [a.id, b.id]
    assert delta["episodes_reported"] == 2


@pytest.mark.slow
def test_the_real_minedojo_runs_one_episode():
    pytest.importorskip("minedojo", reason="MineDojo needs Java 8 and a Minecraft download: not on these machines")
    env = MinecraftTaskEnv(tasks=["harvest_1_log"], max_episode_steps=20)
    out, steps, _ = _episode(env, lambda t: _press("forward", "attack"))
    assert steps <= 20 and "success" in out
    env.close()
