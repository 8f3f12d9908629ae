"""Components in ``openended run``: the driver host, the run's bus, component checkpoints.

`RunComponents` is what the run loop holds when the experiment has a ``components:``
list: the driver-placement host (lifetime and block hooks: train blocks, and evaluation
blocks where a ``periodic_evaluation`` component schedules them), bridged to the run's `BusLog` actor so that
what env runners publish (a detected task change) reaches driver components once per
iteration, and their state as checkpoint member ``components/driver``.

Env-runner components live in the EnvPool actors and RLlib env runners (their state is
saved by the drivers), learner components in the RLlib learner (`openended.runtime.learner`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from openended.components.base import Block, Placement
from openended.components.bus import EventBus
from openended.components.evaluation import evaluation_block, evaluation_due
from openended.components.host import ComponentHost
from openended.components.registry import build_components
from openended.runtime.checkpoints import CheckpointSet, SetWriter
from openended.runtime.component_actors import bridge_to, start_bus

__all__ = ["RunComponents", "bus_name_for"]

MEMBER = ("components/driver", "components-driver.json")


def bus_name_for(service_name: str) -> str:
    """The name of a run's `BusLog` actor (from its teacher service's name, which is unique per run)."""
    return f"{service_name}-bus"


class RunComponents:
    """The driver's component host of one run, bridged to the run's bus (module doc)."""

    def __init__(self, specs: list[dict[str, Any]], service_name: str, namespace: str | None) -> None:
        self.bus_name = bus_name_for(service_name)
        self._actor = start_bus(self.bus_name, namespace)
        bus = EventBus()
        self.bridge = bridge_to(bus, self.bus_name, "driver", namespace)
        self.host = ComponentHost(build_components(specs, placement=Placement.DRIVER), bus=bus, placement="driver")
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
        """The driver components' state as member ``components/driver``."""
        with open(ckpt.reserve(*MEMBER), "w", encoding="utf-8") as f:
            json.dump(self.host.state_dict(), f)

    def restore(self, ckpt: CheckpointSet) -> None:
        """Load the driver components' state from ``ckpt`` (if it has it)."""
        if ckpt.has(MEMBER[0]):
            with open(ckpt.member(MEMBER[0]), encoding="utf-8") as f:
                self.host.load_state_dict(json.load(f))

    def close(self) -> None:
        """End the block and the lifetime."""
        if self._started:
            self.host.block_end()
            self.host.lifetime_end()
            self._started = False
        self.bridge.flush()
