"""Self-play in the multi-agent path: the env whose task is the opponent slot
(`openended.envs.multiagent.self_play`), RLModule snapshots as opponents and the driver's
snapshot writer (`openended.runtime.rllib_self_play`), and the whole loop on real Ray/RLlib:
multi-agent PPO, the self-play teacher drawing an opponent per episode, learner checkpoints
joining the pool, win/loss per opponent reaching the teacher."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from openended.envs import make_env
from openended.envs.multiagent.self_play import SelfPlayTaskEnv
from openended.errors import ConfigError
from openended.teachers.self_play import SelfPlayTeacher

ROCK, PAPER = 0, 1


def _rock_loader(loaded: list[str]):
    def load(slot: str):
        loaded.append(slot)
        return lambda obs: dict.fromkeys(obs, ROCK)

    return load


def _play(env: SelfPlayTaskEnv, action: int) -> int:
    steps = 0
    while env.agents:
        env.step(dict.fromkeys(env.agents, action))
        steps += 1
    return steps


def test_the_task_is_the_opponent_and_the_outcome_is_the_learners_win():
    loaded: list[str] = []
    env = SelfPlayTaskEnv(loader=_rock_loader(loaded), slots=3, game_config={"max_cycles": 5})
    space = env.task_space()
    assert space.values == ("opponent_0", "opponent_1", "opponent_2") and env.possible_agents == ["player_0"]
    assert env.opponent_agents == ["player_1"] and env.observation_space("player_0").shape == (4,)
    env.set_task(space.task("opponent_2"))
    obs, infos = env.reset(seed=0)
    assert set(obs) == {"player_0"} and obs["player_0"].tolist() == [0, 0, 0, 1]  # one-hot "no move yet"
    assert infos["player_0"]["task_id"] == space.task("opponent_2").id
    assert _play(env, PAPER) == 5  # paper beats the slot's rock every round
    (o,) = env.episode_outcomes()
    assert (o.episode_return, o.success, o.length, o.task_id) == (5.0, True, 5, space.task("opponent_2").id)
    assert o.info == {"opponent": "opponent_2", "opponent_return": -5.0}
    env.reset()  # the same slot again: its policy is cached
    _play(env, ROCK)  # draws are not wins
    (o,) = env.episode_outcomes()
    assert (o.episode_return, o.success) == (0.0, False) and loaded == ["opponent_2"]
    env.set_task("opponent_0")
    env.reset()
    assert loaded == ["opponent_2", "opponent_0"]
    env.close()


def test_pettingzoo_parallel_api_against_each_slot():
    from pettingzoo.test import parallel_api_test

    env = make_env("self_play", slots=2)
    for slot in env.task_space().values:
        env.set_task(slot)
        parallel_api_test(env, num_cycles=30)
        assert env.current_task.params == (slot,)
    env.close()


def test_random_opponents_and_the_registry():
    env = make_env("self_play", slots=2)
    env.reset(seed=3)
    assert _play(env, PAPER) == 10
    (o,) = env.episode_outcomes()
    assert o.info["opponent"] == "opponent_0" and -10 <= o.episode_return <= 10
    env.close()


def test_sides_must_be_playable_by_the_learners_snapshot():
    with pytest.raises(ConfigError, match=r"learner_agents: \['nobody'\] must be a non-empty subset"):
        SelfPlayTaskEnv(learner_agents=["nobody"])
    with pytest.raises(ConfigError, match="leaves no agent .* to the opponent"):
        SelfPlayTaskEnv(learner_agents=["player_0", "player_1"])
    with pytest.raises(ConfigError, match=r"^env.self_play.game: cannot import module"):
        SelfPlayTaskEnv(game="no_such_pkg:parallel_env")


def test_a_driver_adds_opponents_through_the_service_control():
    from openended.runtime.codec import decode_tasks
    from openended.runtime.core import TeacherServiceCore

    core = TeacherServiceCore()
    core.add_curriculum("sp", "self_play", make_env("self_play", slots=4).task_space(), {"mode": "fsp"})
    added = core.control("sp", "default", "add_opponent", {"value": "opponent_2"})
    assert added.value == "opponent_2" and SelfPlayTeacher.CONTROLS == ("add_opponent",)
    assert {t.value for t in decode_tasks(core.sample("sp", "default", 40))} == {"opponent_0", "opponent_2"}
    with pytest.raises(ConfigError, match=r"has no control 'probabilities'; it has \['add_opponent'\]"):
        core.control("sp", "default", "probabilities")
    core.close()


# --------------------------------------------------------------- RLModule snapshots (torch, no Ray cluster)
def _ppo_module(seed: int):
    pytest.importorskip("ray.rllib")
    import gymnasium as gym
    import torch
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    torch.manual_seed(seed)
    spec = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=gym.spaces.Box(0.0, 1.0, (4,), np.float32),
        action_space=gym.spaces.Discrete(3),
        model_config={"fcnet_hiddens": [8]},
    )
    return spec, spec.build()


def test_snapshot_opponent_acts_as_the_saved_module(tmp_path):
    import torch
    from ray.rllib.core.columns import Columns

    from openended.runtime.rllib_self_play import snapshot_opponents, snapshot_path, write_snapshots

    obs = {"player_1": np.eye(4, dtype=np.float32)[0]}
    greedy = {}
    for slot, seed in (("opponent_0", 0), ("opponent_1", 1)):
        spec, module = _ppo_module(seed)
        write_snapshots(tmp_path, [slot], {"spec": spec, "state": module.get_state()})
        with torch.no_grad():
            logits = module.forward_inference({Columns.OBS: torch.eye(4)})[Columns.ACTION_DIST_INPUTS]
        greedy[slot] = logits.argmax(-1).tolist()
    assert greedy["opponent_0"] != greedy["opponent_1"]  # two different policies (else the test proves nothing)
    load = snapshot_opponents({}, str(tmp_path), deterministic=True)
    for slot, want in greedy.items():
        policy = load(slot)
        got = [int(policy({"player_1": np.eye(4, dtype=np.float32)[k]})["player_1"]) for k in range(4)]
        assert got == want
    assert set(load("opponent_0")(obs)) == {"player_1"}
    with pytest.raises(ConfigError, match=r"opponent 'opponent_7' has no snapshot at .*SelfPlaySnapshots.write"):
        load("opponent_7")
    # Several slots share one write (hard links), each replaced atomically.
    spec, module = _ppo_module(2)
    write_snapshots(tmp_path, ["opponent_0", "opponent_1"], {"spec": spec, "state": module.get_state()})
    a, b = (pickle.loads(snapshot_path(tmp_path, s).read_bytes())["state"] for s in ("opponent_0", "opponent_1"))
    assert all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opponent_0.pkl", "opponent_1.pkl"]  # no temp files left


# --------------------------------------------------------------- the whole loop on Ray / RLlib
@pytest.mark.ray
def test_ppo_self_play_samples_opponents_per_episode_and_grows_the_pool(tmp_path):
    """~8 s on an idle machine (Ray start, three tiny PPO iterations), ~25 s at load 9 on 2 cores."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.rllib")
    from support import local_ray

    from openended.runtime.process_clients import flush_curriculum_clients
    from openended.runtime.rllib import build_algo_config
    from openended.runtime.rllib_multiagent import register_curriculum_multiagent_env
    from openended.runtime.rllib_self_play import (
        SelfPlaySnapshots,
        learner_snapshot,
        self_play_config,
        snapshot_path,
    )
    from openended.runtime.service import start_service

    slots = 6
    env_config = {
        "slots": slots,
        "game_config": {"max_cycles": 8},
        "opponent": "openended.runtime.rllib_self_play:snapshot_opponents",
        "opponent_config": {"directory": str(tmp_path / "opponents")},
    }
    space = make_env("self_play", slots=slots).task_space()
    teacher = {"mode": "pfsp", "add_every": 16, "window": 50, "seed": 0}
    with local_ray("test_self_play_rllib", __name__):
        svc = start_service("self_play_teacher", "test_self_play_rllib", metrics=False)
        ray.get(svc.add_curriculum.remote("sp", "self_play", space.to_dict(), teacher))
        name = register_curriculum_multiagent_env(
            "self-play-rps",
            "self_play",
            env_config,
            "self_play_teacher",
            "sp",
            namespace="test_self_play_rllib",
            # Small buffers: a new pool member is drawn within a few episodes of joining.
            client_options={"buffer_size": 4, "low_watermark": 1, "flush_every": 4},
        )
        fast = {
            "train_batch_size_per_learner": 128,
            "minibatch_size": 64,
            "num_epochs": 1,
            "model_config": {"fcnet_hiddens": [16]},
        }
        algo = self_play_config(build_algo_config("ppo", name, fast, num_env_runners=0, seed=0)).build_algo()
        snaps = SelfPlaySnapshots(tmp_path / "opponents", space.values, svc, "sp")
        try:
            snaps.start(algo)
            initial = pickle.loads(snapshot_path(snaps.directory, "opponent_0").read_bytes())["state"]
            written: list[list[str]] = []
            for _ in range(3):
                algo.train()
                # Outcomes still in the env runner's outbox are not in the pool yet (the race the
                # module docstring states); with them delivered, the pool the driver reads is exact.
                flush_curriculum_clients(wait=True)
                written.append(snaps.write(algo))
            snapshot = ray.get(svc.snapshot.remote())
            views = ray.get(svc.views.remote())
            ckpt = ray.get(svc.checkpoint.remote(str(tmp_path / "teacher")))
            # A driver-decided join: the next slot's file first, then the control call.
            before = snapshot["curricula"]["sp"]["students"]["default"]["pool_size"]
            added = snaps.add(algo)
            after = ray.get(svc.snapshot.remote())["curricula"]["sp"]["students"]["default"]
            now = learner_snapshot(algo)["state"]

        finally:
            algo.stop()
            ray.get(svc.close.remote())
    stats = snapshot["curricula"]["sp"]["students"]["default"]
    counters = snapshot["curricula"]["sp"]["counters"]
    outcomes = counters["outcomes_accepted"]
    assert outcomes >= 3 * 128 // 8 and stats["unknown_task_outcomes"] == 0
    # Learner checkpoints joined the pool (one per 16 outcomes), and the driver stopped writing joined slots.
    assert stats["pool_size"] == min(slots, 1 + outcomes // 16) >= 3
    assert written[-1] == list(space.values[stats["pool_size"] :])
    # A slot that joined later holds a trained learner, not the initial one.
    later = pickle.loads(snapshot_path(snaps.directory, "opponent_2").read_bytes())["state"]
    assert any(not np.allclose(np.asarray(initial[k]), np.asarray(later[k])) for k in initial)
    assert added == space.values[before] and (after["pool_size"], after["latest_opponent"]) == (before + 1, added)
    saved = pickle.loads(snapshot_path(snaps.directory, added).read_bytes())["state"]
    assert all(np.array_equal(np.asarray(saved[k]), np.asarray(now[k])) for k in now)
    # Outcomes per opponent reached the teacher: wins and losses counted per pool member ...
    algo_state = json.loads(Path(ckpt).read_text())["curricula"][0]["teachers"]["default"]["algo"]
    games = {space.values[i]: g for i, g in algo_state["games"]}
    assert len(games) >= 2  # ... of several opponents: drawn per episode, not one per run
    assert sum(map(len, games.values())) == outcomes and all(set(g) <= {0.0, 1.0} for g in games.values())
    assert 0 < sum(map(sum, games.values())) < outcomes  # wins and losses both
    # ... and PFSP weights the pool by them (the dashboard view).
    rows = {r["task"]: r for r in views["sp"]["default"]["rows"]}
    assert len(rows) == stats["pool_size"] and abs(sum(r["p"] for r in rows.values()) - 1.0) < 1e-5
    for slot, g in games.items():
        assert rows[slot]["win_rate"] == pytest.approx(np.mean(g), abs=1e-5)
