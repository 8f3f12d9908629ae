"""Lifelong-learning components: plug-ins a run hosts without touching the framework.

See ``docs/components.md``. The contract is `Component` (`openended.components.base`);
hosts (`openended.components.host`) fire its hooks; components talk through the
`EventBus` and share data through named stores. Pure Python: the Ray pieces (the
cross-process bus and store actors, the RLlib callback and learner hosts) live in
`openended.runtime`.
"""

from openended.components.base import (
    HOOKS,
    Block,
    Component,
    ComponentConfig,
    HiddenOutcome,
    Placement,
    SleepBudget,
    Transitions,
)
from openended.components.bus import TASK_CHANGE, BusBridge, EventBus, TaskChange, Topic
from openended.components.host import ComponentHost, plan_components
from openended.components.registry import (
    available_components,
    build_components,
    check_component_specs,
    component_class,
)
from openended.components.stores import ReplayStore, Stores

__all__ = [
    "HOOKS",
    "Block",
    "BusBridge",
    "Component",
    "ComponentConfig",
    "ComponentHost",
    "EventBus",
    "HiddenOutcome",
    "Placement",
    "ReplayStore",
    "SleepBudget",
    "Stores",
    "TASK_CHANGE",
    "TaskChange",
    "Topic",
    "Transitions",
    "available_components",
    "build_components",
    "check_component_specs",
    "component_class",
    "plan_components",
]
