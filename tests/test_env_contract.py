"""Every registered single-agent env family through `check_task_env` (STYLE: a checker per extension point)."""

import pytest

from openended.envs import make_env
from openended.envs.checker import TaskEnvCheckError, check_task_env
from openended.envs.toy import ToyTaskEnv

FAMILIES = {
    "toy": {},
    "stump_tracks": {},
    "hexagon_tracks": {},
    "bipedal_walker": {},
    "procgen": {"game": "coinrun", "num_levels": 20},
    "crafter": {"task_set": "tr", "impossible": 10, "size": (64, 64), "area": (64, 64)},
    "minigrid_maze": {},
    "minigrid_levels": {"num_levels": 50},
    "minigrid_tasks": {},
    "sc2_minigames": {"backend": "mock", "screen": 16, "minimap": 16},  # pysc2's mock game (no SC2 here)
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_honours_task_env_contract(family):
    check_task_env(lambda: make_env(family, **FAMILIES[family]))


def test_checker_catches_a_mid_episode_task_switch():
    class Eager(ToyTaskEnv):
        def set_task(self, task):  # wrong: applies at once instead of at the next reset
            super().set_task(task)
            self._current_task = self._pending_task

        def step(self, action):
            obs, r, term, trunc, info = super().step(action)
            return obs, r, False, trunc, info  # keep the episode open so the switch shows

    with pytest.raises(TaskEnvCheckError, match="current_task|mid-episode"):
        check_task_env(Eager)
