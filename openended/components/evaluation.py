"""Periodic evaluation blocks: a schedule component and the block switch hosts perform.

`PeriodicEvaluation` (driver) says when an evaluation block is due (every ``every``
training iterations). `evaluation_block` performs one on a set of hosts: it ends their
running train block, starts an evaluation block (rewards hidden from components, sleep
skipped), runs the evaluation, ends the block with the results (``on_block_end`` gets
``results=``), and starts the next train block. In ``openended run`` the driver's
evaluation is the held-out one (`openended.runtime.evaluate`: deterministic actions, fixed
seeds, its own envs), so training env runners never run evaluation episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pydantic import Field

from openended.components.base import Block, Component, ComponentConfig, Placement
from openended.components.host import ComponentHost

__all__ = ["PeriodicEvaluation", "PeriodicEvaluationConfig", "evaluation_block", "evaluation_due"]


class PeriodicEvaluationConfig(ComponentConfig):
    """How often."""

    every: int = Field(10, ge=1, description="An evaluation block after every N training iterations.")


class PeriodicEvaluation(Component):
    """Schedules evaluation blocks and keeps their results (module doc)."""

    placement = Placement.DRIVER
    provides: ClassVar[tuple[str, ...]] = ("evaluation_schedule",)
    Config = PeriodicEvaluationConfig
    #: Needs a learner whose policy can be evaluated (RLlib algorithms in ``openended run``).
    needs_policy_evaluation: ClassVar[bool] = True

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.results: list[dict[str, Any]] = []

    def due(self, iteration: int) -> bool:
        """Whether an evaluation block follows training iteration ``iteration``."""
        return iteration > 0 and iteration % self.config.every == 0

    def on_block_end(self, *, block: Block, **kw: Any) -> None:
        """Keep an evaluation block's results."""
        if block.kind == "evaluation":
            self.results.append(dict(kw.get("results") or {}))

    def state_dict(self) -> dict[str, Any]:
        """The results so far."""
        return {"results": self.results}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the results."""
        self.results = list(state["results"])


def evaluation_due(host: ComponentHost, iteration: int) -> bool:
    """Whether any schedule component of ``host`` wants an evaluation block after ``iteration``."""
    return any(isinstance(c, PeriodicEvaluation) and c.due(iteration) for c in host.components)


def evaluation_block(hosts: Sequence[ComponentHost], evaluate: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``evaluate`` inside an evaluation block of every host, between two train blocks (module doc)."""
    index = max((h.block.index for h in hosts if h.block is not None), default=-1) + 1
    for h in hosts:
        if h.block is not None:
            h.block_end()
        h.block_start(Block(index, "evaluation"))
    results = evaluate()
    for h in hosts:
        h.block_end(results=results)
        h.block_start(Block(index + 1, "train"))
    return results
