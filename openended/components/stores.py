"""Named stores: data components share without calling each other.

Contents:
    ReplayStore -- per-task tables of experience items with a capacity policy:
                   ``fifo`` (keep the newest) or ``reservoir`` (a uniform sample of all
                   items ever added, Vitter's algorithm R, per task), and a ``total``
                   capacity split evenly over the tasks seen (``per_task`` capacity otherwise).
    StoreSpec   -- a store a component provides: its class and settings, so a run can
                   build it once as a shared Ray actor instead of in each process.
    Stores      -- the name -> store table a host hands its components.

The runtime wraps a `ReplayStore` in a Ray actor (`openended.runtime.component_actors`)
with the same methods, so a store shared across env runners and learners is used the
same way as a local one.

>>> store = ReplayStore(capacity=2, policy="fifo")
>>> store.add("a", [1, 2, 3])
>>> store.table("a")
[2, 3]
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from openended.errors import ConfigError

__all__ = ["ReplayStore", "StoreSpec", "Stores"]


class ReplayStore:
    """Per-task experience tables under a capacity policy (module doc).

    Args:
        capacity: items per task table (``scope="per_task"``) or over all tables (``"total"``,
            split evenly over the tasks seen so far; a new task shrinks the others).
        policy: ``fifo`` keeps the newest items; ``reservoir`` keeps a uniform sample of
            everything a task's table was given.
        scope: ``per_task`` or ``total`` (see ``capacity``).
        seed: the reservoir's and ``sample``'s generator seed.
    """

    def __init__(
        self,
        capacity: int,
        policy: Literal["fifo", "reservoir"] = "fifo",
        scope: Literal["per_task", "total"] = "per_task",
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"ReplayStore capacity: must be >= 1, got {capacity}")
        if policy not in ("fifo", "reservoir"):
            raise ConfigError(f"ReplayStore policy: {policy!r} is not one of fifo, reservoir")
        if scope not in ("per_task", "total"):
            raise ConfigError(f"ReplayStore scope: {scope!r} is not one of per_task, total")
        self.capacity, self.policy, self.scope = capacity, policy, scope
        self._rng = np.random.default_rng(seed)
        self._tables: dict[str, list[Any]] = {}
        self._seen: dict[str, int] = {}

    def _cap(self) -> int:
        if self.scope == "per_task":
            return self.capacity
        return max(1, self.capacity // max(1, len(self._tables)))

    def add(self, task_id: str, items: list[Any]) -> None:
        """Add ``items`` to ``task_id``'s table under the capacity policy."""
        new = task_id not in self._tables
        table = self._tables.setdefault(task_id, [])
        cap = self._cap()
        for item in items:
            seen = self._seen.get(task_id, 0) + 1
            self._seen[task_id] = seen
            if len(table) < cap:
                table.append(item)
            elif self.policy == "fifo":
                table.append(item)
                del table[0]
            else:
                j = int(self._rng.integers(seen))
                if j < cap:
                    table[j] = item
        if new and self.scope == "total":
            self._shrink(cap)

    def _shrink(self, cap: int) -> None:
        for tid, table in self._tables.items():
            if len(table) > cap:
                keep = (
                    table[-cap:]
                    if self.policy == "fifo"
                    else [table[i] for i in sorted(self._rng.choice(len(table), cap, replace=False))]
                )
                self._tables[tid] = keep

    def sample(self, n: int, task_id: str | None = None, exclude: str | None = None) -> list[Any]:
        """``n`` items drawn uniformly (with replacement) from one task's table or all but ``exclude``."""
        if task_id is not None:
            pool = self._tables.get(task_id, [])
        else:
            pool = [x for tid, t in self._tables.items() if tid != exclude for x in t]
        if not pool or n <= 0:
            return []
        return [pool[int(i)] for i in self._rng.integers(len(pool), size=n)]

    def table(self, task_id: str) -> list[Any]:
        """A copy of ``task_id``'s table."""
        return list(self._tables.get(task_id, []))

    def tasks(self) -> dict[str, int]:
        """Items held per task."""
        return {tid: len(t) for tid, t in self._tables.items()}

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def state_dict(self) -> dict[str, Any]:
        """Tables, counts and generator state (items must be JSON-able for a JSON checkpoint)."""
        return {
            "tables": {k: list(v) for k, v in self._tables.items()},
            "seen": dict(self._seen),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self._tables = {k: list(v) for k, v in state["tables"].items()}
        self._seen = {k: int(v) for k, v in state["seen"].items()}
        self._rng.bit_generator.state = state["rng"]


@dataclasses.dataclass(frozen=True)
class StoreSpec:
    """A named store a component provides (`Component.store_specs`): ``cls(**kwargs)`` builds it.

    One process builds it locally (`build`). A run whose processes must share it builds
    one instance as a Ray actor (`openended.runtime.component_actors.start_store`) and
    registers a proxy under ``name`` in every host before ``on_lifetime_start``. ``cls``
    must be importable and ``kwargs`` picklable (they travel to the actor).
    """

    name: str
    cls: type
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build(self) -> Any:
        """A local instance."""
        return self.cls(**self.kwargs)


class Stores:
    """Named stores a host hands its components; a missing name is an error naming the known ones."""

    def __init__(self, stores: dict[str, Any] | None = None) -> None:
        self._stores: dict[str, Any] = dict(stores or {})

    def add(self, name: str, store: Any) -> Any:
        """Register ``store`` as ``name`` (the first registration wins; returns the one registered)."""
        return self._stores.setdefault(name, store)

    def get(self, name: str) -> Any:
        """The store named ``name``."""
        if name not in self._stores:
            raise ConfigError(f"no store named {name!r}; known: {sorted(self._stores) or 'none'}")
        return self._stores[name]

    def __contains__(self, name: object) -> bool:
        return name in self._stores

    def names(self) -> list[str]:
        """Registered store names."""
        return sorted(self._stores)
