"""`NoOpComponent`: overrides every hook and does nothing.

For measuring what hosting costs (``benchmarks/component_overhead.py``: ten of them
against none) and for contract tests: every hook of it is called, transitions included.
"""

from __future__ import annotations

from typing import Any, ClassVar

from openended.components.base import Component, Placement, SleepBudget

__all__ = ["NoOpComponent"]


class NoOpComponent(Component):
    """Every hook overridden, each a no-op (module doc)."""

    placement = Placement.ENV_RUNNER
    #: How many were built in this process (a benchmark checks the env runners really host them).
    built: ClassVar[int] = 0

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        type(self).built += 1

    def on_lifetime_start(self, **kw: Any) -> None:
        """No-op."""

    def on_block_start(self, **kw: Any) -> None:
        """No-op."""

    def on_task_start(self, **kw: Any) -> None:
        """No-op."""

    def on_episode_start(self, **kw: Any) -> None:
        """No-op."""

    def on_transitions(self, **kw: Any) -> None:
        """No-op."""

    def on_episode_end(self, **kw: Any) -> None:
        """No-op."""

    def on_task_end(self, **kw: Any) -> None:
        """No-op."""

    def on_sleep(self, *, budget: SleepBudget, **kw: Any) -> int:
        """No-op: no steps."""
        return 0

    def on_block_end(self, **kw: Any) -> None:
        """No-op."""

    def on_lifetime_end(self, **kw: Any) -> None:
        """No-op."""

    def loss_term(self, **kw: Any) -> Any:
        """No term."""
        return None
