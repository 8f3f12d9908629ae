"""Components in ``openended run``: the driver host, the run's bus, component checkpoints.

`RunComponents` is what the run loop holds when the experiment has a ``components:``
list: the driver-placement host (lifetime and block hooks: train blocks, and evaluation
blocks where a ``periodic_evaluation`` component schedules them), bridged to the run's `BusLog` actor so that
what env runners publish (a detected task change) reaches driver components once per
iteration, and their state as checkpoint member ``components/driver``.

Env-runner components live in the EnvPool actors and RLlib env runners (their state is
saved by the drivers), learner components in the RLlib learner (`openended.runtime.learner`).

Shared stores: `run_store_specs` picks the stores the run must share across processes
(`openended.components.registry.shared_store_specs`: a provider and a requirer at
different placements, or several hosts). `RunComponents` starts one named store actor per
such store (`store_name_for`), registers it in the driver host, and saves its state once,
as member ``components/stores``; `store_actors_for` gives the drivers the same names for
the env-runner and learner hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from openended.components.base import Block, Placement
from openended.components.bus import EventBus
from openended.components.evaluation import evaluation_block, evaluation_due
from openended.components.host import ComponentHost
from openended.components.registry import build_components, shared_store_specs
from openended.components.stores import Stores, StoreSpec
from openended.runtime.checkpoints import CheckpointSet, SetWriter
from openended.runtime.component_actors import RemoteStore, bridge_to, start_bus, start_store

if TYPE_CHECKING:
    from openended.config import Experiment

__all__ = ["RunComponents", "bus_name_for", "run_store_specs", "store_actors_for", "store_name_for"]

MEMBER = ("components/driver", "components-driver.json")
STORES_MEMBER = ("components/stores", "components-stores.json")


def bus_name_for(service_name: str) -> str:
    """The name of a run's `BusLog` actor (from its teacher service's name, which is unique per run)."""
    return f"{service_name}-bus"


def store_name_for(service_name: str, store: str) -> str:
    """The name of a run's shared store actor ``store`` (like `bus_name_for`)."""
    return f"{service_name}-store-{store}"


def component_hosts(exp: Experiment) -> dict[Placement, int]:
    """How many component hosts of each placement the run has (every env builds its own env-runner host)."""
    students = len(exp.students)
    if exp.algo.name == "none":
        return {Placement.ENV_RUNNER: exp.pool.pools_per_student * students, Placement.LEARNER: 0}
    runners = max(1, exp.algo.num_env_runners) * exp.algo.num_envs_per_env_runner
    return {Placement.ENV_RUNNER: runners * students, Placement.LEARNER: students}


def run_store_specs(exp: Experiment) -> dict[str, StoreSpec]:
    """The stores ``exp``'s components must share across the run's processes, by name."""
    return shared_store_specs(exp.components, component_hosts(exp)) if exp.components else {}


def store_actors_for(exp: Experiment, service_name: str) -> dict[str, str] | None:
    """Store name -> actor name of the run's shared stores, for the hosts (``None``: none shared)."""
    return {n: store_name_for(service_name, n) for n in run_store_specs(exp)} or None


class RunComponents:
    """The driver's component host of one run, bridged to the run's bus; owner of its shared stores (module doc).

    ``stores``: the stores to share (`run_store_specs`); started here, before the drivers
    build the env runners and learners that look them up by name.
    """

    def __init__(
        self,
        specs: list[dict[str, Any]],
        service_name: str,
        namespace: str | None,
        stores: Mapping[str, StoreSpec] | None = None,
    ) -> None:
        self.bus_name = bus_name_for(service_name)
        self._actor = start_bus(self.bus_name, namespace)
        #: The shared stores this run owns (saved once, as member ``components/stores``).
        self.stores = {
            n: RemoteStore(start_store(store_name_for(service_name, n), spec, namespace))
            for n, spec in (stores or {}).items()
        }
        bus = EventBus()
        self.bridge = bridge_to(bus, self.bus_name, "driver", namespace)
        comps = build_components(specs, placement=Placement.DRIVER)
        self.host = ComponentHost(comps, bus=bus, stores=Stores(dict(self.stores)), placement="driver")
        self._started = False

    def start(self, resumed: bool) -> None:
        """Lifetime start, then the run's train block."""
        self.host.lifetime_start(resumed=resumed)
        self.host.block_start(Block(0, "train"))
        self._started = True

    def iteration_end(self, iteration: int, evaluate: Callable[[], dict] | None = None) -> dict | None:
        """Exchange bus events; then, if a schedule wants one, an evaluation block around ``evaluate``.

        Returns the evaluation's results, or ``None`` when no block was due.
        """
        self.bridge.flush()
        self.bridge.poll()
        if evaluate is None or not evaluation_due(self.host, iteration):
            return None
        return evaluation_block([self.host], evaluate)

    def save(self, ckpt: SetWriter) -> None:
        """The driver components' state as member ``components/driver``, the shared stores' as ``components/stores``."""
        with open(ckpt.reserve(*MEMBER), "w", encoding="utf-8") as f:
            json.dump(self.host.state_dict(), f)
        if self.stores:
            with open(ckpt.reserve(*STORES_MEMBER), "w", encoding="utf-8") as f:
                json.dump({n: s.state_dict() for n, s in self.stores.items()}, f)

    def restore(self, ckpt: CheckpointSet) -> None:
        """Load the driver components' and the shared stores' state from ``ckpt`` (what it has)."""
        if ckpt.has(MEMBER[0]):
            with open(ckpt.member(MEMBER[0]), encoding="utf-8") as f:
                self.host.load_state_dict(json.load(f))
        if self.stores and ckpt.has(STORES_MEMBER[0]):
            with open(ckpt.member(STORES_MEMBER[0]), encoding="utf-8") as f:
                saved = json.load(f)
            for n, store in self.stores.items():
                if n in saved:
                    store.load_state_dict(saved[n])

    def close(self) -> None:
        """End the block and the lifetime."""
        if self._started:
            self.host.block_end()
            self.host.lifetime_end()
            self._started = False
        self.bridge.flush()
