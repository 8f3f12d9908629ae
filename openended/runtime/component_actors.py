"""The Ray side of components: the cross-process bus log and shared stores.

Contents:
    BusLog       -- Ray actor: the append-only event log `BusBridge` publishes to and polls
                    (batched: one call per flush, one per poll), bounded to ``max_events``.
    RayRemoteLog -- a `RemoteLog` over a `BusLog` handle (or its name), for `BusBridge`.
    StoreActor   -- Ray actor around a `ReplayStore` (same methods), shared by processes.
    RemoteStore  -- the `ReplayStore` interface over a `StoreActor` handle (blocking calls).
    bridge_to    -- connect a local `EventBus` to the run's `BusLog` actor by name.

Payloads travel pickled (Ray's own serialisation), so any dataclass payload works.
"""

from __future__ import annotations

from typing import Any

import ray

from openended.components.bus import BusBridge, EventBus
from openended.components.stores import ReplayStore

__all__ = ["BusLog", "RayRemoteLog", "RemoteStore", "StoreActor", "bridge_to", "start_bus"]


class _BusLog:
    """Append-only (origin, topic, payload) log; old events are dropped past ``max_events``."""

    def __init__(self, max_events: int = 100_000) -> None:
        self.max_events = max_events
        self._events: list[tuple[str, str, Any]] = []
        self._base = 0  # absolute index of self._events[0]

    def publish(self, origin: str, events: list[tuple[str, Any]]) -> int:
        self._events += [(origin, name, payload) for name, payload in events]
        drop = len(self._events) - self.max_events
        if drop > 0:
            del self._events[:drop]
            self._base += drop
        return self._base + len(self._events)

    def poll(self, cursor: int, exclude_origin: str) -> tuple[list[tuple[str, Any]], int]:
        start = max(0, cursor - self._base)
        new = [(n, p) for o, n, p in self._events[start:] if o != exclude_origin]
        return new, self._base + len(self._events)


BusLog = ray.remote(num_cpus=0)(_BusLog)


class RayRemoteLog:
    """`RemoteLog` over a `BusLog` actor: each call is one blocking remote call."""

    def __init__(self, actor: Any, namespace: str | None = None) -> None:
        self.actor = ray.get_actor(actor, namespace=namespace) if isinstance(actor, str) else actor

    def publish(self, origin: str, events: list[tuple[str, Any]]) -> int:
        """Append ``events`` in one call."""
        return int(ray.get(self.actor.publish.remote(origin, events)))

    def poll(self, cursor: int, exclude_origin: str) -> tuple[list[tuple[str, Any]], int]:
        """What others published since ``cursor``, in one call."""
        events, cursor = ray.get(self.actor.poll.remote(cursor, exclude_origin))
        return list(events), int(cursor)


def start_bus(name: str, namespace: str | None = None) -> Any:
    """Start (or find) the named `BusLog` actor of a run."""
    return BusLog.options(name=name, namespace=namespace, get_if_exists=True, lifetime=None).remote()


def bridge_to(bus: EventBus, name: str, origin: str, namespace: str | None = None) -> BusBridge:
    """Bridge ``bus`` to the `BusLog` actor named ``name``."""
    return BusBridge(bus, RayRemoteLog(name, namespace), origin)


StoreActor = ray.remote(num_cpus=0)(ReplayStore)


class RemoteStore:
    """The `ReplayStore` interface over a `StoreActor` (each call blocks on the actor)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def add(self, task_id: str, items: list[Any]) -> None:
        """`ReplayStore.add`."""
        ray.get(self.actor.add.remote(task_id, items))

    def sample(self, n: int, task_id: str | None = None, exclude: str | None = None) -> list[Any]:
        """`ReplayStore.sample`."""
        return list(ray.get(self.actor.sample.remote(n, task_id, exclude)))

    def table(self, task_id: str) -> list[Any]:
        """`ReplayStore.table`."""
        return list(ray.get(self.actor.table.remote(task_id)))

    def tasks(self) -> dict[str, int]:
        """`ReplayStore.tasks`."""
        return dict(ray.get(self.actor.tasks.remote()))

    def __len__(self) -> int:
        return int(ray.get(self.actor.__len__.remote()))

    def state_dict(self) -> dict[str, Any]:
        """`ReplayStore.state_dict`."""
        return dict(ray.get(self.actor.state_dict.remote()))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """`ReplayStore.load_state_dict`."""
        ray.get(self.actor.load_state_dict.remote(state))
