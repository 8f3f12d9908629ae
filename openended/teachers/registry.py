"""Teacher registry: ``make_teacher("alp_gmm", space, seed=0, preset="teachdeeprl")``.

Entries are ``"module:Class"`` strings, loaded on first use, so a teacher with heavy
dependencies costs nothing until it is asked for. Names are case-insensitive and ``-``
equals ``_``; an unknown name lists the registered ones with a close match.

A user's own teacher needs no registration: name it by import path
(``make_teacher("my_pkg.teachers:GrowTeacher", space)``) or install it as an entry point
in the ``openended.teachers`` group (see docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from openended.errors import ConfigError
from openended.registry import Registry, is_import_path, normalize_name
from openended.tasks import TaskSpace
from openended.teachers.base import BaseTeacher
from openended.validation import validate_model

__all__ = [
    "teacher_registry",
    "register_teacher",
    "make_teacher",
    "teacher_class",
    "list_teachers",
    "teacher_source",
    "teacher_plugin_path",
    "TEACHER_GROUP",
]

#: Entry-point group of installed teacher plugins.
TEACHER_GROUP = "openended.teachers"

_TEACHERS = Registry("teacher", TEACHER_GROUP)


def register_teacher(
    name: str, entry: str | type[BaseTeacher], *, aliases: tuple[str, ...] = (), overwrite: bool = False
) -> None:
    """Register a teacher class (or a lazy ``"module:Class"`` path) under ``name``."""
    _TEACHERS.register(name, entry, aliases=aliases, overwrite=overwrite)


def teacher_class(name: str) -> type[BaseTeacher]:
    """The class registered under ``name`` or named by an import path (imported on first use).

    `UnknownName` lists the registered names; a plugin that is not a `BaseTeacher`
    subclass is a `ConfigError` saying so.
    """
    cls = _TEACHERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, BaseTeacher)):
        how = "an import path" if is_import_path(name) else _TEACHERS.source(name)
        raise ConfigError(
            f"teacher {name!r} ({how}) is {cls!r}, not a BaseTeacher subclass; "
            "subclass openended.teachers.base.BaseTeacher (see docs/plugins.md)"
        )
    return cls


def teacher_plugin_path(name: str) -> str | None:
    """The import path of plugin teacher ``name`` (its own name or entry point value); None if built-in."""
    return _TEACHERS.plugin_path(name)


def teacher_source(name: str) -> str:
    """Where teacher ``name`` comes from: built-in, an entry point of a distribution, an import path."""
    return _TEACHERS.source(name)


def list_teachers() -> list[str]:
    """Registered teacher names (aliases excluded), sorted."""
    return _TEACHERS.names()


def make_teacher(name: str, space: TaskSpace, *, preset: str | None = None, **config: Any) -> BaseTeacher:
    """Build a teacher by name, its config validated from a preset and keyword overrides.

    ``preset`` selects a documented, versioned default set (e.g. ``"teachdeeprl"``);
    explicit keyword arguments override preset values.
    """
    cls = teacher_class(name)
    key = _TEACHERS.canonical(name)
    values: dict[str, Any] = {}
    if preset is not None:
        presets = cls.PRESETS
        pkey = normalize_name(preset)
        if pkey not in presets:
            raise ConfigError(
                f"teacher.{key}.preset: unknown preset {preset!r}; choose one of "
                f"{sorted(presets) or 'none (this teacher has no presets)'}"
            )
        values.update(presets[pkey])
    values.update(config)
    cfg = validate_model(cls.Config, values, prefix=f"teacher.{key}")
    return cls(space, cfg)


def teacher_registry() -> Registry:
    """The teacher registry itself (names, sources, plugins it ignored), for listings such as ``openended teachers``."""
    return _TEACHERS


# Built-in teachers (lazy).
register_teacher("random", "openended.teachers.random_teacher:RandomTeacher", aliases=("uniform",))
register_teacher("alp_gmm", "openended.teachers.gmm.alp_gmm:ALPGMMTeacher", aliases=("alpgmm",))
register_teacher("riac", "openended.teachers.riac:RIACTeacher", aliases=("sagg_riac",))
register_teacher("covar_gmm", "openended.teachers.gmm.covar_gmm:CovarGMMTeacher", aliases=("covargmm", "igmm"))
register_teacher("plr", "openended.teachers.plr:PLRTeacher", aliases=("prioritized_level_replay",))
register_teacher("lp", "openended.teachers.lp:LearningProgressTeacher", aliases=("learning_progress",))
register_teacher("omni", "openended.teachers.omni:OMNITeacher")
register_teacher("webrl", "openended.teachers.webrl:WebRLTeacher", aliases=("self_evolving",))
register_teacher("adr", "openended.teachers.adr:ADRTeacher", aliases=("automatic_domain_randomization",))
register_teacher("sfl", "openended.teachers.sfl:SFLTeacher", aliases=("learnability", "sampling_for_learnability"))
register_teacher("sequential", "openended.teachers.sequential:SequentialTeacher", aliases=("stages",))
register_teacher(
    "self_play", "openended.teachers.self_play:SelfPlayTeacher", aliases=("selfplay", "fictitious_self_play")
)
register_teacher("spdl", "openended.teachers.spdl:SPDLTeacher", aliases=("self_paced",))
register_teacher("accel", "openended.teachers.accel:ACCELTeacher")
register_teacher("goal_gan", "openended.teachers.goal_gan:GoalGANTeacher", aliases=("goalgan",))
register_teacher("setter_solver", "openended.teachers.setter_solver:SetterSolverTeacher", aliases=("setter",))
register_teacher("scenario", "openended.teachers.scenario:ScenarioTeacher", aliases=("lifelong_scenario",))
