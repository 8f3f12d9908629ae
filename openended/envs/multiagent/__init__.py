"""PettingZoo parallel envs whose task is a vector of environment parameters.

Modules:
    base        -- `TaskParallelEnv`: the shared machinery (a ``pettingzoo.ParallelEnv`` +
                   ``TaskEnvMixin``): task validation, the structure-keyed upstream env cache,
                   seeding, per-agent and per-team outcomes.
    multiwalker -- `MultiwalkerTaskEnv`: SISL multiwalker (n_walkers, terrain length, hardcore
                   terrain, sensor noise).
    mpe         -- `SimpleSpreadTaskEnv`, `SimpleTagTaskEnv`: MPE (``mpe2``) simple_spread and
                   simple_tag, and the padded observations that keep their shapes fixed.
    self_play   -- `SelfPlayTaskEnv`: a two-sided game whose task is the opponent slot (a
                   ``Discrete`` space, not a Box); the opponent acts inside the env.

Task spaces (except ``self_play``'s) are ``Box`` with named dimensions (``env.task_space().names``); the bounds come
from the env config, so ``min == max`` pins a dimension. Integer dimensions (agent counts,
``hardcore``, ``layout_seed``) are rounded to the nearest integer when the episode is built,
so continuous teachers (ALP-GMM, RIAC) can drive them; the `Outcome` keeps the id of the
task as given. Build tasks by name with ``env.task(n_walkers=4, hardcore=1)``.

Agents. ``possible_agents`` is fixed at construction to the *largest* team the task space
allows (``walker_0..walker_3`` for up to 4 walkers), with one fixed observation and action
space per agent, because RLlib (and most MARL code) reads the agent set and spaces once.
Each episode's ``agents`` is the subset its task uses (MPE observations are padded to one
shape: `openended.envs.multiagent.mpe`).

Hosting. Envs never import Ray. The runtime hosts a team episode as one outcome
(`openended.envs.team`); RLlib's glue (``rllib_env_creator``, `CurriculumMultiAgentEnv`) is
in `openended.runtime.rllib_multiagent`.
"""

from openended.envs.multiagent.base import ParallelEnvConfig, TaskParallelEnv
from openended.envs.multiagent.mpe import SimpleSpreadConfig, SimpleSpreadTaskEnv, SimpleTagConfig, SimpleTagTaskEnv
from openended.envs.multiagent.multiwalker import MultiwalkerConfig, MultiwalkerTaskEnv
from openended.envs.multiagent.self_play import SelfPlayEnvConfig, SelfPlayTaskEnv

__all__ = [
    "MultiwalkerTaskEnv",
    "SimpleSpreadTaskEnv",
    "SimpleTagTaskEnv",
    "SelfPlayTaskEnv",
    "SelfPlayEnvConfig",
    "TaskParallelEnv",
    "ParallelEnvConfig",
    "MultiwalkerConfig",
    "SimpleSpreadConfig",
    "SimpleTagConfig",
]
