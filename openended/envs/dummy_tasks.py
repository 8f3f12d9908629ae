"""OMNI's impossible ``dummy_task_NNNN`` texts, shared by the Crafter task sets and TechTree.

Why a module: both grammars append the same dummies, and a count read from an
experiment file must be bounded before a list is built from it (an unbounded count filled
the machine's memory instead of failing).
"""

from __future__ import annotations

import operator

from openended.errors import ConfigError
from openended.tasks import MAX_DISCRETE_VALUES

__all__ = ["dummy_tasks", "MAX_DUMMY_TASKS"]

#: The most dummies a task set may carry: as many as a `Discrete` space may hold.
MAX_DUMMY_TASKS = MAX_DISCRETE_VALUES


def dummy_tasks(n: int, field: str) -> list[str]:
    """``n`` impossible tasks ``dummy_task_0000`` ... (OMNI adds 1,023); ``field`` names the setting in errors."""
    try:
        count = operator.index(n)  # ints and numpy ints; not floats or strings
    except TypeError:
        count = -1
    if isinstance(n, bool) or not 0 <= count <= MAX_DUMMY_TASKS:
        raise ConfigError(f"{field}: must be a whole number in 0..{MAX_DUMMY_TASKS:,} (OMNI uses 1,023), got {n!r}")
    return [f"dummy_task_{i:04d}" for i in range(count)]
