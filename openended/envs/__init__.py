"""Parameterised environment families (pure Python, no Ray).

Each family is a gymnasium env (or a PettingZoo parallel env) with ``set_task`` applied at
the next reset, ``task_space()`` and ``info["success"]``.

Families load lazily through `make_env`; see ``openended.envs.registry``.
"""

from openended.envs.base import TaskEnv, TaskEnvMixin, episode_outcome
from openended.envs.registry import (
    env_task_editor,
    env_task_space,
    env_task_validator,
    list_envs,
    make_env,
    register_env,
)

__all__ = [
    "TaskEnv",
    "TaskEnvMixin",
    "episode_outcome",
    "make_env",
    "register_env",
    "list_envs",
    "env_task_space",
    "env_task_validator",
    "env_task_editor",
]
