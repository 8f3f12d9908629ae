"""Finding component classes: built-in names, ``"package.module:Class"`` paths, entry points.

A ``components:`` entry of an experiment names its class either as an import path
(``"my_pkg.module:MyComponent"``) or by a registered name: the built-ins below, or a name a
package declares in the ``openended.components`` entry-point group::

    [project.entry-points."openended.components"]
    my_detector = "my_pkg.module:MyDetector"

`check_component_specs` validates a whole list before anything is built (each class
found and a `Component`, each config valid for the class's ``Config``, requires / provides
satisfied and acyclic); every error names the list index and the field.
`build_components` then builds them. `shared_store_specs` says which provided stores a
run must share across processes, and how to build each.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openended.components.base import Component, Placement
from openended.components.host import plan_components, plan_indices
from openended.components.stores import StoreSpec
from openended.errors import ConfigError
from openended.registry import normalize_name, resolve_import_path, unknown_name_error
from openended.validation import validate_model

__all__ = [
    "BUILTIN",
    "ComponentSpec",
    "ENTRY_POINT_GROUP",
    "available_components",
    "build_components",
    "check_component_specs",
    "component_class",
    "shared_store_specs",
]

ENTRY_POINT_GROUP = "openended.components"

#: Built-in components by name (import paths: loaded on use).
BUILTIN: dict[str, str] = {
    "task_change_detector": "openended.components.detector:TaskChangeDetector",
    "experience_replay": "openended.components.replay:ExperienceReplay",
    "sleep_consolidation": "openended.components.replay:SleepConsolidation",
    "ewc": "openended.components.ewc:EWC",
    "kl_prior": "openended.components.kl_prior:KLPrior",
    "noop": "openended.components.noop:NoOpComponent",
    "periodic_evaluation": "openended.components.evaluation:PeriodicEvaluation",
}


class ComponentSpec(BaseModel):
    """One ``components:`` entry: ``{class: "pkg.mod:Cls" or a registered name, config: {...}}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: str = Field(alias="class", description="Import path 'pkg.module:Class' or a registered component name.")
    config: dict[str, Any] = Field(default_factory=dict, description="The component's config fields.")


def available_components() -> dict[str, str]:
    """Registered names -> import paths: the built-ins, then the ``openended.components`` entry points."""
    out = dict(BUILTIN)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(normalize_name(ep.name), ep.value)
    return out


def component_class(name: str, what: str = "component class") -> type[Component]:
    """The `Component` subclass ``name`` refers to (import path or registered name); `ConfigError` otherwise."""
    if ":" in name:
        cls = resolve_import_path(name, what)
    else:
        known = available_components()
        key = normalize_name(name)
        if key not in known:
            raise ConfigError(f"{what}: {unknown_name_error('component', name, known)}")
        cls = resolve_import_path(known[key], what)
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise ConfigError(f"{what}: {name!r} is not a subclass of openended.components.Component")
    return cls


def _resolve(specs: list[Any], prefix: str) -> list[tuple[type[Component], Any]]:
    out = []
    for i, raw in enumerate(specs):
        where = f"{prefix}[{i}]"
        spec = raw if isinstance(raw, ComponentSpec) else validate_model(ComponentSpec, raw, prefix=where)
        cls = component_class(spec.class_, f"{where}.class")
        config = validate_model(cls.Config, spec.config, prefix=f"{where}.config")
        out.append((cls, config))
    return out


def check_component_specs(specs: list[Any], prefix: str = "components") -> list[type[Component]]:
    """Validate ``specs`` without building anything; returns the classes (errors name index and field)."""
    resolved = _resolve(specs, prefix)
    classes = [cls for cls, _ in resolved]
    plan_components(classes)
    _store_specs(resolved, prefix)
    return classes


def _store_specs(resolved: list[tuple[type[Component], Any]], prefix: str) -> list[tuple[type[Component], StoreSpec]]:
    """Each component's `Component.store_specs`, with its class; a name it does not provide is a `ConfigError`."""
    out = []
    for i, (cls, config) in enumerate(resolved):
        for spec in cls.store_specs(config):
            if spec.name not in cls.provides:
                raise ConfigError(
                    f"{prefix}[{i}] ({cls.__name__}): store_specs names {spec.name!r}, which its provides "
                    f"{list(cls.provides)} lacks; add it to provides"
                )
            out.append((cls, spec))
    return out


def build_components(
    specs: list[Any], prefix: str = "components", placement: Placement | str | None = None
) -> list[Component]:
    """Build the components ``specs`` describe (validated as in `check_component_specs`).

    With ``placement`` only that placement's components are built (in dependency order),
    after the whole list was checked: an env runner does not build the learner's components.
    """
    resolved = _resolve(specs, prefix)
    plan = plan_indices([cls for cls, _ in resolved])
    if placement is None:
        return [cls(config) for cls, config in resolved]
    return [resolved[i][0](resolved[i][1]) for i in plan.get(Placement(placement), [])]


def shared_store_specs(
    specs: list[Any], hosts: Mapping[Placement, int], prefix: str = "components"
) -> dict[str, StoreSpec]:
    """The stores of ``specs`` a run must share across processes, by name (see `Component.store_specs`).

    ``hosts``: how many component hosts each placement has in the run (a missing
    placement: one). A store is shared when the hosts of the components that provide or
    require it are more than one: a provider and a requirer at different placements
    (replay on the env runners, sleep in the learner), or several env-runner processes.
    A store only one host uses stays local to it. The first provider's spec wins.
    """
    resolved = _resolve(specs, prefix)
    plan_indices([cls for cls, _ in resolved])  # requires met, no cycle
    counts = {Placement(p): n for p, n in hosts.items()}
    out: dict[str, StoreSpec] = {}
    for _, spec in _store_specs(resolved, prefix):
        users = {c.placement for c, _ in resolved if spec.name in c.provides or spec.name in c.requires}
        if spec.name not in out and sum(counts.get(p, 1) for p in users) > 1:
            out[spec.name] = spec
    return out
