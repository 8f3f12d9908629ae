"""Environment-family registry: ``make_env("stump_tracks", body="short")``.

Entries are lazy ``"module:Callable"`` strings: Box2D, procgen, crafter or pysc2 are
imported only when their family is made. The callable takes keyword config and returns a
gymnasium env (or a PettingZoo parallel env) implementing the task-env contract.

A family whose tasks are text may also declare a task validator, ``text -> (ok, reason)``,
as an import path (``task_validator="openended.envs.crafter:validate_crafter_task"``). A
teacher that generates task texts (WebRL) has no env knowledge of its own; whoever builds
it for an experiment (`openended.config.teacher_config`) passes it this path. Likewise a
family whose levels ACCEL can edit declares a ``task_editor`` (``minigrid_maze``: add or
remove walls, `openended.envs.minigrid_mazes.edit_maze_task`), filled into ACCEL's ``editor``.

A user's own family needs no registration: name it by import path
(``env.family: "my_pkg.envs:MyTaskEnv"``) or install it as an entry point in the
``openended.envs`` group. Such a plugin declares what `register_env` would have been told
as attributes of its constructor: ``multi_agent = True`` for a PettingZoo family,
``task_validator = "pkg.mod:function"``, ``task_editor = "pkg.mod:function"`` (see docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openended.errors import ConfigError, UnknownName
from openended.registry import Registry
from openended.tasks import TaskSpace

__all__ = [
    "env_registry",
    "register_env",
    "make_env",
    "make_task_env",
    "env_entry",
    "list_envs",
    "is_multi_agent_family",
    "env_task_space",
    "env_task_validator",
    "env_task_editor",
    "env_source",
    "env_plugin_path",
    "ENV_GROUP",
]

#: Entry-point group of installed env-family plugins.
ENV_GROUP = "openended.envs"

_ENVS = Registry("env family", ENV_GROUP)
_MULTI_AGENT: set[str] = set()  # canonical names of PettingZoo (parallel) families
_TASK_VALIDATORS: dict[str, str] = {}  # canonical family name -> "module:function"
_TASK_EDITORS: dict[str, str] = {}  # canonical family name -> "module:function" (ACCEL's edit)


def register_env(
    name: str,
    entry: str | Callable[..., Any],
    *,
    aliases: tuple[str, ...] = (),
    overwrite: bool = False,
    multi_agent: bool = False,
    task_validator: str | None = None,
    task_editor: str | None = None,
) -> None:
    """Register an env family constructor (or a lazy ``"module:Callable"`` path).

    ``multi_agent``: the family builds PettingZoo parallel envs (known without importing it).
    ``task_validator``: the import path of the family's task-text validator (``text -> (ok, reason)``).
    ``task_editor``: the import path of the family's level edit for ACCEL
    (``fn(task, space, rng, n_edits) -> Task``; experiments fill ``teacher.config.editor`` from it).
    """
    for field, path in (("task_validator", task_validator), ("task_editor", task_editor)):
        if path is not None and (not isinstance(path, str) or ":" not in path):
            raise ConfigError(
                f"register_env({name!r}).{field}: expected an import path 'package.module:function', got {path!r}"
            )
    _ENVS.register(name, entry, aliases=aliases, overwrite=overwrite)
    key = _ENVS.canonical(name)
    if multi_agent:
        _MULTI_AGENT.add(key)
    else:
        _MULTI_AGENT.discard(key)
    for table, path in ((_TASK_VALIDATORS, task_validator), (_TASK_EDITORS, task_editor)):
        if path is not None:
            table[key] = path
        elif overwrite:  # a replaced family does not keep the old one's hooks
            table.pop(key, None)


def env_task_validator(name: str) -> str | None:
    """The import path of family ``name``'s task-text validator, or None if it has none.

    Nothing is imported: the path is handed to the teacher's config (it must travel to
    the teacher service as plain data), and the teacher resolves it. A plugin family
    declares it as its constructor's ``task_validator`` attribute (importing the plugin).
    """
    return _family_hook(name, _TASK_VALIDATORS, "task_validator")


def env_task_editor(name: str) -> str | None:
    """The import path of family ``name``'s task editor (ACCEL's edit, ``fn(task, space, rng, n_edits) -> Task``).

    As `env_task_validator`: plain data for the teacher's ``editor`` field; a plugin family
    declares it as its constructor's ``task_editor`` attribute.
    """
    return _family_hook(name, _TASK_EDITORS, "task_editor")


def _family_hook(name: str, table: dict[str, str], attr: str) -> str | None:
    key = _ENVS.canonical(name)
    if key in table or not _ENVS.is_plugin(key):
        return table.get(key)
    path = getattr(env_entry(key), attr, None)
    if path is not None and not (isinstance(path, str) and ":" in path):
        raise ConfigError(
            f"env family {name!r}: its {attr} attribute must be an import path 'package.module:function', got {path!r}"
        )
    return path


def env_entry(name: str) -> Callable[..., Any]:
    """The constructor registered as family ``name`` (or an alias), its module imported now."""
    return _ENVS.get(name)


def make_env(name: str, **config: Any) -> Any:
    """Build one env of family ``name`` with keyword config."""
    return env_entry(name)(**config)


def make_task_env(
    family: str | Callable[..., Any], config: Mapping[str, Any] | None = None, *, field: str = "env.family"
) -> Any:
    """One env of ``family``: a registered family name (`make_env`) or a callable taking keyword config.

    What every host builds its envs with (EnvPools, RLlib's env creators), so a family means
    the same thing everywhere. ``field`` names the setting in the error for anything else.
    """
    cfg = dict(config or {})
    env = make_env(family, **cfg) if isinstance(family, str) else family(**cfg) if callable(family) else None
    if env is None:
        raise ConfigError(
            f"{field}: must be a registered env family name or a callable returning a task env, got {family!r}"
        )
    return env


def env_task_space(name: str, **config: Any) -> TaskSpace:
    """The task space of family ``name`` under ``config`` (builds, inspects and closes one env)."""
    env = make_env(name, **config)
    try:
        return env.task_space()
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()


def list_envs(*, multi_agent: bool | None = None) -> list[str]:
    """Registered family names (sorted, installed plugins included).

    ``multi_agent`` keeps only PettingZoo (True) or gymnasium (False) ones (a plugin is
    imported to ask).
    """
    names = _ENVS.names()
    return names if multi_agent is None else [n for n in names if is_multi_agent_family(n) == multi_agent]


def env_source(name: str) -> str:
    """Where family ``name`` comes from: built-in, an entry point of a distribution, an import path."""
    return _ENVS.source(name)


def env_plugin_path(name: str) -> str | None:
    """The import path of plugin family ``name`` (its own name or entry point value); None if built-in."""
    return _ENVS.plugin_path(name)


def is_multi_agent_family(name: str) -> bool:
    """Whether ``name`` (an alias, an import path) is a PettingZoo family.

    Registered families say so at registration; a plugin by its constructor's
    ``multi_agent`` attribute (imported to ask).
    """
    try:
        key = _ENVS.canonical(name)
        if key in _MULTI_AGENT or not _ENVS.is_plugin(key):
            return key in _MULTI_AGENT
        return bool(getattr(env_entry(key), "multi_agent", False))
    except (UnknownName, ConfigError, ImportError):
        return False


def env_registry() -> Registry:
    """The env-family registry itself (names, sources, plugins it ignored), for listings such as ``openended envs``."""
    return _ENVS


# Built-in families (lazy).
register_env("toy", "openended.envs.toy:ToyTaskEnv")
register_env("stump_tracks", "openended.envs.bipedal:StumpTracksEnv", aliases=("stumps",))
register_env("hexagon_tracks", "openended.envs.bipedal:HexagonTracksEnv", aliases=("hexagon",))
register_env("bipedal_walker", "openended.envs.bipedal:ClassicBipedalEnv", aliases=("bipedal",))
register_env("procgen", "openended.envs.procgen:ProcgenTaskEnv")
register_env("procgen_vector", "openended.envs.procgen:ProcgenVectorTaskEnv")
register_env("multiwalker", "openended.envs.multiagent.multiwalker:MultiwalkerTaskEnv", multi_agent=True)
register_env(
    "simple_spread",
    "openended.envs.multiagent.mpe:SimpleSpreadTaskEnv",
    aliases=("mpe_simple_spread",),
    multi_agent=True,
)
register_env(
    "simple_tag", "openended.envs.multiagent.mpe:SimpleTagTaskEnv", aliases=("mpe_simple_tag",), multi_agent=True
)
register_env(
    "crafter", "openended.envs.crafter:CrafterTaskEnv", task_validator="openended.envs.crafter:validate_crafter_task"
)
register_env("self_play", "openended.envs.multiagent.self_play:SelfPlayTaskEnv", multi_agent=True)
register_env(
    "minigrid_maze",
    "openended.envs.minigrid:MiniGridMazeEnv",
    task_editor="openended.envs.minigrid_mazes:edit_maze_task",
)
register_env("minigrid_levels", "openended.envs.minigrid:MiniGridLevelsEnv")
register_env("minigrid_tasks", "openended.envs.minigrid:MiniGridTasksEnv", aliases=("minigrid",))
register_env("minecraft", "openended.envs.minecraft:MinecraftTaskEnv", aliases=("minedojo",))
register_env("sc2_minigames", "openended.envs.sc2:SC2TaskEnv", aliases=("sc2",))
