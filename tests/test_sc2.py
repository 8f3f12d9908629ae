"""SC2 minigames family against pysc2's own mock (`SC2TestEnv`: same specs, canned observations).

What the mock cannot show (real game dynamics, real scores, real process launches) is in
the skip-marked tests at the end, which run where ``SC2PATH`` points at a game install.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import SC2_SMALL

pytest.importorskip("pysc2_evolved")

from openended.envs.checker import check_task_env
from openended.envs.registry import env_task_space, list_envs, make_env
from openended.envs.sc2 import SC2TaskEnv
from openended.envs.sc2_config import MINIGAMES
from openended.envs.sc2_game import SC2GameCrashed, SC2NotInstalled
from openended.errors import ConfigError, TaskNotInSpace
from openended.runtime.client import LocalTeacherClient
from openended.runtime.core import TeacherServiceCore
from openended.runtime.envpool import EnvPoolCore

SMALL = SC2_SMALL


def small_env(**overrides) -> SC2TaskEnv:
    return SC2TaskEnv(**{**SMALL, **overrides})


# ------------------------------------------------------------------ spaces
def test_registered_with_the_seven_minigames_as_a_discrete_task_space():
    assert "sc2_minigames" in list_envs(multi_agent=False)
    space = env_task_space("sc2", **SMALL)  # building an env needs no game
    assert space.values == MINIGAMES and len(MINIGAMES) == 7
    assert space.name == "sc2/8x8"


def test_observation_and_action_spaces_follow_the_config():
    env = small_env()
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["screen"].shape == (2, 8, 8) and obs["minimap"].shape == (1, 8, 8)
    nvec = env.action_space.nvec
    assert nvec[0] == len(env.layout.functions) == 23  # the minigame function set, no_op first
    assert env.layout.functions[0].name == "no_op"
    # screen, minimap and screen2 points are one categorical of 8 * 8 cells each
    assert sorted(int(n) for n, a in zip(nvec[1:], env.layout.arg_names) if a in ("screen", "minimap", "screen2")) == [
        64,
        64,
        64,
    ]
    assert obs["action_mask"].shape == (int(nvec.sum()),)
    env.close()


def test_function_mask_comes_from_available_actions():
    env = small_env()
    obs, _ = env.reset(seed=0)
    names = [f.name for f in env.layout.functions]
    available = {names[i] for i in np.flatnonzero(obs["available_actions"])}
    # the mock's canned observation offers these ids: 0 1 2 3 4 6 7 451 452 (452 = Stop_quick... by name)
    assert {"no_op", "move_camera", "select_point", "select_rect", "select_army", "Smart_screen"} <= available
    assert "Attack_screen" not in available and "Train_Marine_quick" not in available
    n_fn = len(names)
    assert np.array_equal(obs["action_mask"][:n_fn], obs["available_actions"])
    assert obs["action_mask"][n_fn:].all()  # every cell / value of a full-resolution task is allowed
    env.close()


def test_unavailable_function_becomes_no_op_and_is_flagged():
    env = small_env()
    env.reset(seed=0)
    attack = [f.name for f in env.layout.functions].index("Attack_screen")
    action = np.zeros(len(env.action_space.nvec), dtype=np.int64)
    action[0] = attack
    call, allowed = env.layout.to_call(action, env._available, 8, 8)
    assert int(call.function) == 0 and not allowed
    _, _, _, _, info = env.step(action)
    assert info["invalid_action"] is True
    select_army = [f.name for f in env.layout.functions].index("select_army")
    action[0] = select_army
    _, _, _, _, info = env.step(action)
    assert info["invalid_action"] is False
    with pytest.raises(ConfigError, match="outside the action space"):
        env.step(np.full(len(env.action_space.nvec), 10_000))
    env.close()


def test_low_resolution_task_is_padded_and_its_outside_cells_masked():
    tasks = [{"map": "MoveToBeacon", "screen": 8, "minimap": 8}, {"map": "DefeatRoaches", "screen": 16, "minimap": 16}]
    env = small_env(tasks=tasks)
    assert env.task_space().name == "sc2/16x16" and env.observation_space["screen"].shape == (2, 16, 16)
    env.set_task(env.task_space().task("MoveToBeacon"))
    obs, _ = env.reset(seed=0)
    layout = env.layout
    comp = 1 + layout.arg_names.index("screen")
    start = int(layout.nvec[:comp].sum())
    cells = obs["action_mask"][start : start + 256].reshape(16, 16)
    assert cells[:8, :8].all() and not cells[8:, :].any() and not cells[:, 8:].any()
    # a point outside the 8x8 task is clipped into it and flagged
    select_point = [f.name for f in layout.functions].index("select_point")
    action = np.zeros(len(layout.nvec), dtype=np.int64)
    action[0], action[comp] = select_point, 15 + 15 * 16
    call, allowed = layout.to_call(action, env._available, 8, 8)
    assert list(call.arguments[1]) == [7, 7] and not allowed
    env.close()


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"env.config.tasks\[0\].map: pysc2 knows no map 'MoveToBeakon'"):
        small_env(tasks=[{"map": "MoveToBeakon"}])
    with pytest.raises(ConfigError, match="task names must be unique"):
        small_env(tasks=[{"map": "MoveToBeacon"}, {"map": "MoveToBeacon"}])
    with pytest.raises(ConfigError, match="bot_race and bot_difficulty go together"):
        small_env(tasks=[{"map": "Simple64", "bot_race": "zerg"}])
    with pytest.raises(ConfigError, match=r"tasks\[0\]: map 'Simple64' is for 2 player\(s\)"):
        small_env(tasks=[{"map": "Simple64"}])
    with pytest.raises(ConfigError, match=r"tasks\[0\]: map 'MoveToBeacon' is for 1 player"):
        small_env(tasks=[{"map": "MoveToBeacon", "bot_race": "zerg", "bot_difficulty": "easy"}])
    with pytest.raises(ConfigError, match="env.config.functions: unknown pysc2 function"):
        small_env(functions=["Attack_screen", "Fly_to_the_moon"])
    with pytest.raises(ConfigError, match="screen_features"):
        small_env(screen_features=["not_a_layer"])
    with pytest.raises(ConfigError, match="mock_crash_after_steps"):
        SC2TaskEnv(backend="game", mock_crash_after_steps=3)


def test_importing_the_family_leaves_the_process_logging_alone():
    """pysc2-evolved logs on the root logger at import, which would configure logging for the whole process."""
    import subprocess
    import sys

    code = (
        "import logging; from openended.envs.registry import make_env; "
        "make_env('sc2', backend='mock', screen=8, minimap=8).close(); print(len(logging.getLogger().handlers))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert res.stdout.strip() == "0" and "TIMEOUT_SECONDS" not in res.stderr


# ------------------------------------------------------------------ task contract
def test_check_task_env_passes_against_the_mock():
    check_task_env(lambda: make_env("sc2_minigames", **SMALL))


def test_task_switching_reuses_a_game_unless_map_or_resolution_changes():
    tasks = [
        {"map": "MoveToBeacon"},
        {"map": "MoveToBeacon", "name": "MoveToBeacon_fast", "step_mul": 16},
        {"map": "DefeatRoaches"},
    ]
    env = small_env(tasks=tasks, max_games=2)
    space = env.task_space()
    for name in ["MoveToBeacon", "MoveToBeacon_fast", "MoveToBeacon"]:
        env.set_task(space.task(name))
        _, info = env.reset()
        assert info["task_id"] == space.task(name).id
    assert env.game_stats()["launches"] == 1  # step_mul is per call: one game serves both tasks
    env.set_task(space.task("DefeatRoaches"))
    env.reset()
    env.set_task(space.task("MoveToBeacon"))
    env.reset()
    assert env.game_stats() == {"launches": 2, "crashes": 0, "live_games": 2}  # both kept alive
    env.close()
    assert env.game_stats()["live_games"] == 0  # close ends every game process
    with pytest.raises(TaskNotInSpace):
        env.set_task("BuildMarinez")


def test_episode_outcome_score_success_and_truncation():
    tasks = [
        {"map": "MoveToBeacon", "success_score": 100},  # the mock's canned score is 300
        {"map": "BuildMarines", "success_score": 1000},
        {"map": "CollectMineralShards", "game_steps_per_episode": 1},
        {"map": "Simple64", "bot_race": "zerg", "bot_difficulty": "easy"},
    ]
    env = small_env(tasks=tasks)

    def play(name: str) -> tuple[bool, bool, dict]:
        env.set_task(env.task_space().task(name))
        env.reset(seed=0)
        while True:
            _, _, term, trunc, info = env.step(np.zeros(len(env.action_space.nvec), dtype=np.int64))
            if term or trunc:
                return term, trunc, info

    term, _, info = play("MoveToBeacon")
    assert term and info["success"] is True and info["score"] == 300.0 and info["episode_length"] == 6
    assert play("BuildMarines")[2]["success"] is False
    term, trunc, info = play("CollectMineralShards")
    assert trunc and not term and "success" not in info  # no success_score: the task defines none
    assert play("Simple64")[2]["success"] is False  # a bot task succeeds only on a win
    env.close()


# ------------------------------------------------------------------ game process
def test_game_crash_mid_episode_is_a_failed_episode_and_the_game_is_relaunched():
    env = small_env(mock_crash_after_steps=4, mock_episode_length=20)
    env.reset(seed=0)  # call 1
    outcomes = []
    for _ in range(10):
        _, reward, term, trunc, info = env.step(np.zeros(len(env.action_space.nvec), dtype=np.int64))
        if term or trunc:
            outcomes.append((term, trunc, info))
            env.reset()
    term, trunc, info = outcomes[0]
    assert trunc and not term and info["success"] is False and "died" in info["game_crashed"]
    assert info["episode_length"] == 3  # the three steps that ran
    stats = env.game_stats()
    assert stats["crashes"] == len(outcomes) >= 2 and stats["launches"] == stats["crashes"] + 1
    env.close()


def test_a_game_that_never_starts_is_an_error_after_max_launch_attempts():
    env = small_env(mock_crash_after_steps=0, max_launch_attempts=2)
    with pytest.raises(SC2GameCrashed, match=r"after 2 launch attempts \(env.config.max_launch_attempts\)"):
        env.reset(seed=0)
    assert env.game_stats()["launches"] == 2
    env.close()


def test_without_the_game_the_first_reset_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("SC2PATH", str(tmp_path / "nowhere"))
    env = SC2TaskEnv(screen=8, minimap=8)  # backend game: building needs no game (openended check)
    assert env.task_space().n == 7
    with pytest.raises(SC2NotInstalled, match=r"not installed at .*nowhere .*SC2PATH=.*Versions.*mini_games.zip"):
        env.reset(seed=0)
    (tmp_path / "sc2" / "Versions").mkdir(parents=True)
    monkeypatch.setenv("SC2PATH", str(tmp_path / "sc2"))
    env = SC2TaskEnv(screen=8, minimap=8, tasks=[{"map": "MoveToBeacon"}])
    with pytest.raises(SC2NotInstalled, match=r"map file\(s\) missing .*mini_games/MoveToBeacon.SC2Map"):
        env.reset(seed=0)
    env.close()


def test_game_backend_launches_pysc2_sc2env_with_the_task_settings(monkeypatch, tmp_path):
    """The real launch path, with pysc2's documented test double swapped in for ``SC2Env``."""
    from pysc2_evolved.env import mock_sc2_env, sc2_env

    for rel in ("Versions", "Maps/mini_games"):
        (tmp_path / rel).mkdir(parents=True)
    for m in ("MoveToBeacon", "DefeatRoaches"):
        (tmp_path / "Maps" / "mini_games" / f"{m}.SC2Map").write_bytes(b"")
    monkeypatch.setenv("SC2PATH", str(tmp_path))
    launched: list[dict] = []

    def fake_sc2env(**kwargs):
        launched.append(kwargs)
        return mock_sc2_env.SC2TestEnv(**kwargs)

    monkeypatch.setattr(sc2_env, "SC2Env", fake_sc2env)
    tasks = [{"map": "MoveToBeacon", "screen": 8}, {"map": "DefeatRoaches"}]
    env = SC2TaskEnv(screen=16, minimap=8, tasks=tasks, game_seed=5, sc2_version="4.10.0", max_games=1)
    for name in ["MoveToBeacon", "MoveToBeacon", "DefeatRoaches"]:
        env.set_task(env.task_space().task(name))
        obs, _ = env.reset(seed=0)
        env.step(np.zeros(len(env.action_space.nvec), dtype=np.int64))
    assert [k["map_name"] for k in launched] == ["MoveToBeacon", "DefeatRoaches"]  # reused, then switched
    first = launched[0]
    assert first["random_seed"] == 5 and first["version"] == "4.10.0" and first["game_steps_per_episode"] == 0
    dims = first["agent_interface_format"].feature_dimensions
    assert (dims.screen.x, dims.minimap.x) == (8, 8)
    assert launched[1]["agent_interface_format"].feature_dimensions.screen.x == 16
    assert env.game_stats()["live_games"] == 1  # max_games=1: the MoveToBeacon game was closed
    env.close()


# ------------------------------------------------------------------ hosted in an EnvPool (no Ray)
def test_envpool_reports_every_episode_including_crashed_ones():
    core = TeacherServiceCore()
    env = small_env()
    core.add_curriculum("sc2", "random", env.task_space(), config={"seed": 0})
    env.close()
    client = LocalTeacherClient(core, "sc2", buffer_size=16, low_watermark=4, flush_every=4)
    pool = EnvPoolCore("sc2", {**SMALL, "mock_crash_after_steps": 9}, num_envs=2, client=client, steps_per_call=30)
    stats = pool.step()
    crashes = sum(e.game_stats()["crashes"] for e in pool.envs)
    pool.close()  # flushes
    counters = core.snapshot()["curricula"]["sc2"]["counters"]
    assert stats["episodes"] == pool.total_episodes == counters["outcomes_accepted"] > 0
    assert crashes > 0 and counters["success_known"] == crashes  # crashed episodes: reported, failed
    assert counters["successes"] == 0 and pool.stats()["task_id_mismatches"] == 0


# ------------------------------------------------------------------ a lifelong scenario over minigames
def test_a_condensed_scenario_over_minigames_is_logged_in_l2logger_format_and_scored(tmp_path):
    """The SC2 side of an L2M scenario: blocks over minigames through the episode host, l2logger rows, metrics.

    (Running it from an experiment's ``scenario:`` section waits for the lifelong-components work.)
    """
    from support import ScriptedClient

    from openended.metrics.hooks import EpisodeLogHook
    from openended.metrics.l2log import EpisodeLogger, find_scenario_dirs, read_log
    from openended.metrics.lifelong import compute_from_logs
    from openended.metrics.scenario import ScenarioConfig, build_blocks, episode_slots
    from openended.runtime.episodes import EpisodeHost

    names = ["MoveToBeacon", "DefeatRoaches", "BuildMarines"]
    env = small_env(tasks=[{"map": n, "success_score": 100 if n != "BuildMarines" else 1000} for n in names])
    space = env.task_space()
    cfg = ScenarioConfig(type="condensed", tasks=names, train_episodes=2, eval_episodes=1)
    slots = list(episode_slots(build_blocks(cfg)))
    client = ScriptedClient([space.task(s.task) for s in slots])
    host = EpisodeHost([env], client)
    hook = EpisodeLogHook(EpisodeLogger.create(tmp_path, "sc2", cfg), names={space.task(n).id: n for n in names})
    host.add_hooks(hook)
    noop = np.zeros(len(env.action_space.nvec), dtype=np.int64)
    for slot in slots:
        if hook.block is not slot.block:
            hook.set_block(slot.block)
        host.begin(0)
        while not any(host.step(0, noop)[2:4]):
            pass
    hook.logger.close()
    env.close()
    scenario_dir = find_scenario_dirs(tmp_path)[0]
    _, info, rows = read_log(scenario_dir)
    assert info["scenario_type"] == "condensed" and len(rows) == len(slots) == len(client.reported)
    assert [r.task_name for r in rows] == [s.task.lower() for s in slots]  # l2logger lower-cases names
    assert {r.task_name: r.values["success"] for r in rows} == {
        "movetobeacon": 1.0,
        "defeatroaches": 1.0,
        "buildmarines": 0.0,
    }
    last = rows[-1]
    assert last.task_name == slots[-1].task.lower() and f'"params": ["{slots[-1].task}"]' in last.task_params
    metrics = compute_from_logs(scenario_dir)
    assert set(metrics.tasks) == {n.lower() for n in names}


# ------------------------------------------------------------------ the real game
needs_game = pytest.mark.skipif(
    not os.path.isdir(os.path.join(os.path.expanduser(os.environ.get("SC2PATH", "~/StarCraftII")), "Versions")),
    reason="needs StarCraft II and the minigame maps (SC2PATH); see docs/sc2.md",
)


@needs_game
def test_real_game_checks_the_task_contract_and_plays_each_minigame():
    check_task_env(lambda: make_env("sc2_minigames", screen=32, minimap=32))
    env = make_env("sc2_minigames", screen=32, minimap=32)
    for task in env.task_space().all_tasks:
        env.set_task(task)
        obs, info = env.reset(seed=0)
        assert info["task_id"] == task.id and obs["available_actions"][0] == 1
        for _ in range(5):
            env.step(np.zeros(len(env.action_space.nvec), dtype=np.int64))
    env.close()


@needs_game
def test_real_game_killed_mid_episode_is_a_failed_episode_then_a_new_game():
    import signal

    env = make_env("sc2_minigames", screen=32, minimap=32, tasks=[{"map": "MoveToBeacon"}])
    env.reset(seed=0)
    noop = np.zeros(len(env.action_space.nvec), dtype=np.int64)
    env.step(noop)
    os.kill(env._game._sc2_procs[0].pid, signal.SIGKILL)  # the game process dies
    for _ in range(10):
        _, _, term, trunc, info = env.step(noop)
        if term or trunc:
            break
    assert trunc and info["success"] is False and "game_crashed" in info
    env.reset()  # a new game
    env.step(noop)
    assert env.game_stats()["launches"] == 2 and env.game_stats()["crashes"] == 1
    env.close()
