"""The learner host: components' loss terms inside RLlib 2.60 learners (new API stack).

RLlib callbacks never run on Learners, so a component that shapes the loss (EWC) or trains
in a sleep phase (sleep consolidation) is hosted by the learner itself:
`ComponentLearnerMixin` builds the learner-placement components from
``config.learner_config_dict["components"]`` and adds every ``loss_term`` to the
algorithm's own loss in ``compute_loss_for_module`` (PPO:
``PPOTorchLearner.compute_loss_for_module``). Each term is called with the unwrapped
module, the train batch (``batch["obs"]``) and the forward outputs.

`component_learner_class(PPOTorchLearner)` is the PPO learner with the mixin;
`with_components(config, specs)` sets it (and the specs) on an AlgorithmConfig. The driver
reaches the learner's components through ``learner_group.foreach_learner`` (task
boundaries, sleep, state for checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.learner.learner import Learner

from openended.components.base import Placement, SleepBudget
from openended.components.host import ComponentHost
from openended.components.registry import build_components, check_component_specs
from openended.errors import ConfigError
from openended.tasks import Task

__all__ = [
    "ComponentLearnerMixin",
    "ComponentPPOTorchLearner",
    "component_learner_class",
    "has_placement",
    "on_learners",
    "with_components",
]

#: The key of ``learner_config_dict`` the component specs travel in.
CONFIG_KEY = "components"
#: The key of the run's bus actor (name, namespace), if the learner should join it.
BUS_KEY = "components_bus"
#: The key of the run's shared store actors ({store: actor name}, namespace), registered before the lifetime starts.
STORES_KEY = "components_stores"


class ComponentLearnerMixin:
    """Adds the learner components' loss terms to the algorithm's loss (module doc)."""

    component_host: ComponentHost
    _bridge: Any

    def build(self) -> None:
        """Build the algorithm's learner, then the learner-placement components."""
        super().build()  # type: ignore[misc]  # a mixin: the learner class follows it in the MRO
        config: Any = self.config  # type: ignore[attr-defined]
        extra = config.learner_config_dict or {}
        specs = extra.get(CONFIG_KEY, [])
        stores = None
        if extra.get(STORES_KEY):  # the run's shared stores: the env runners' replay, for sleep
            from openended.runtime.component_actors import connect_stores

            stores = connect_stores(*extra[STORES_KEY])
        comps = build_components(specs, placement=Placement.LEARNER)
        self.component_host = ComponentHost(comps, stores=stores, placement="learner")
        bus = extra.get(BUS_KEY)
        self._bridge = None
        if bus is not None:  # the run's bus actor: task changes env runners detect reach the learner
            from openended.runtime.component_actors import bridge_to

            self._bridge = bridge_to(self.component_host.bus, bus[0], "learner", bus[1])
        self.component_host.lifetime_start()

    def compute_loss_for_module(self, *, module_id: Any, config: Any, batch: dict, fwd_out: dict) -> Any:
        """The algorithm's loss plus every component's ``loss_term``."""
        loss = super().compute_loss_for_module(  # type: ignore[misc]
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        if self._bridge is not None:
            self._bridge.exchange(1.0)
        module = self.module[module_id].unwrapped()  # type: ignore[attr-defined]
        for term in self.component_host.loss_terms(module=module, batch=batch, fwd_out=fwd_out, module_id=module_id):
            loss = loss + term
        return loss

    def _default_module(self) -> Any:
        from ray.rllib.core import DEFAULT_MODULE_ID

        return self.module[DEFAULT_MODULE_ID].unwrapped()  # type: ignore[attr-defined]

    def components_task_change(self, old: Task | None, new: Task) -> None:
        """Fire ``on_task_end`` (if there was a task) and ``on_task_start`` with the module."""
        module = self._default_module()
        if old is not None:
            self.component_host.task_end(old, new, module=module)
        self.component_host.task_start(new, old, module=module)

    def components_sleep(self, steps: int | None = None, seconds: float | None = None) -> int:
        """A sleep phase with the module (skipped by the host where the block forbids learning)."""
        return self.component_host.sleep(SleepBudget(steps, seconds), module=self._default_module())

    def component_state(self) -> dict[str, Any]:
        """The learner components' state."""
        return self.component_host.state_dict()

    def load_component_state(self, state: dict[str, Any]) -> None:
        """Restore the learner components' state."""
        self.component_host.load_state_dict(state)


class ComponentPPOTorchLearner(ComponentLearnerMixin, PPOTorchLearner):
    """PPO's torch learner with the learner components' loss terms."""


#: Learner classes with the mixin, by base (module-level classes: Ray pickles them by reference).
_WITH_COMPONENTS: dict[type[Learner], type[Learner]] = {PPOTorchLearner: ComponentPPOTorchLearner}


def component_learner_class(base: type[Learner]) -> type[Learner]:
    """``base`` (``PPOTorchLearner``) with `ComponentLearnerMixin` in front."""
    if base not in _WITH_COMPONENTS:
        raise ConfigError(f"components: no component learner for {base.__name__} yet (PPO's torch learner has one)")
    return _WITH_COMPONENTS[base]


def on_learners(algo: Any, fn: Any) -> list[Any]:
    """``fn(learner)`` on every learner of ``algo``; the results (an error in one is raised here)."""
    return [r.get() for r in algo.learner_group.foreach_learner(fn)]


def has_placement(specs: list[dict[str, Any]], placement: Placement) -> bool:
    """Whether any of ``specs`` is a component of ``placement``."""
    return any(cls.placement == placement for cls in check_component_specs(specs))


def with_components(
    config: Any,
    specs: list[dict[str, Any]],
    driver_callback: bool = False,
    bus: tuple[str, str | None] | None = None,
    stores: tuple[Mapping[str, str], str | None] | None = None,
) -> Any:
    """``config`` with a component learner (PPO) carrying ``specs``, when any of them is a learner component.

    ``driver_callback``: also host the driver components in the algorithm itself
    (`ComponentCallback`; for RLlib used directly -- ``openended run`` hosts them in its loop).
    ``bus``: (name, namespace) of the run's bus actor the learner's components join.
    ``stores``: ({store name: actor name}, namespace) of the run's shared store actors,
    registered in the learner host before its lifetime starts.
    """
    if driver_callback and has_placement(specs, Placement.DRIVER):
        from openended.runtime.component_callback import ComponentCallback

        config.learners(learner_config_dict={CONFIG_KEY: specs})
        config.callbacks(ComponentCallback)
    if not has_placement(specs, Placement.LEARNER):
        return config
    from ray.rllib.algorithms.ppo import PPOConfig

    if not isinstance(config, PPOConfig):
        raise ConfigError("components: learner components (loss terms) need algo.name ppo in this version")
    extra: dict[str, Any] = {BUS_KEY: list(bus)} if bus is not None else {}
    if stores is not None and stores[0]:
        extra[STORES_KEY] = [dict(stores[0]), stores[1]]
    config.learners(
        learner_class=component_learner_class(PPOTorchLearner), learner_config_dict={CONFIG_KEY: specs, **extra}
    )
    return config
