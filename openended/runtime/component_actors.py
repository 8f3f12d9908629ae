"""The Ray side of components: the cross-process bus log and shared stores.

Contents:
    BusLog       -- Ray actor: the append-only event log `BusBridge` publishes to and polls
                    (batched: one call per flush, one per poll), bounded to ``max_events``.
    RayRemoteLog -- a `RemoteLog` over a `BusLog` handle (or its name), for `BusBridge`.
    StoreActor   -- Ray actor around a `ReplayStore` (same methods), shared by processes.
    start_store  -- start (or find) a run's named store actor from a `StoreSpec`.
    RemoteStore  -- a store's interface over its actor handle (blocking calls; writes
                    optionally pipelined up to a host's sync point).
    connect_stores -- a host's `Stores` with the run's shared store actors registered.
    flush_stores -- wait for a host's pipelined store writes (its sync point).
    bridge_to    -- connect a local `EventBus` to the run's `BusLog` actor by name.

Payloads travel pickled (Ray's own serialisation), so any dataclass payload works.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import ray

from openended.components.bus import BusBridge, EventBus
from openended.components.stores import ReplayStore, Stores, StoreSpec

__all__ = [
    "BusLog",
    "RayRemoteLog",
    "RemoteStore",
    "StoreActor",
    "bridge_to",
    "connect_stores",
    "flush_stores",
    "start_bus",
    "start_store",
]


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


@functools.cache
def _actor_class(cls: type) -> Any:
    """The Ray actor class of a store class (one per class: Ray registers each once)."""
    return StoreActor if cls is ReplayStore else ray.remote(num_cpus=0)(cls)


def start_store(name: str, spec: StoreSpec, namespace: str | None = None) -> Any:
    """Start (or find: a restarted process gets the running one) the store actor ``name`` built from ``spec``."""
    actor = _actor_class(spec.cls)
    return actor.options(name=name, namespace=namespace, get_if_exists=True, lifetime=None).remote(**spec.kwargs)


class RemoteStore:
    """A store's interface over its actor (`StoreActor` or another `start_store` actor).

    Every call blocks on the actor by default, so a write is in the store when ``add``
    returns (what another process reads next, or a checkpoint, includes it). With
    ``max_pending > 0`` ``add`` is pipelined for a host that has a sync point of its own
    (an EnvPool actor calls `flush` before each step call returns): up to that many writes
    are in flight (Ray runs one caller's calls in order), and a read, `flush` or the next
    write past the limit waits for them, so a failed write raises here and a read sees
    this process's own writes. Other methods of the store class go through as blocking
    calls (``store.some_method(...)``).
    """

    def __init__(self, actor: Any, max_pending: int = 0) -> None:
        self.actor = actor
        self.max_pending = max_pending
        self._pending: list[Any] = []

    def flush(self) -> None:
        """Wait for this process's writes in flight (raises a failed one's error)."""
        pending, self._pending = self._pending, []
        ray.get(pending)

    def _call(self, method: str, *args: Any) -> Any:
        self.flush()
        return ray.get(getattr(self.actor, method).remote(*args))

    def add(self, task_id: str, items: list[Any]) -> None:
        """`ReplayStore.add` (pipelined: class doc)."""
        self._pending.append(self.actor.add.remote(task_id, items))
        while len(self._pending) > self.max_pending:
            ray.get(self._pending.pop(0))

    def sample(self, n: int, task_id: str | None = None, exclude: str | None = None) -> list[Any]:
        """`ReplayStore.sample`."""
        return list(self._call("sample", n, task_id, exclude))

    def table(self, task_id: str) -> list[Any]:
        """`ReplayStore.table`."""
        return list(self._call("table", task_id))

    def tasks(self) -> dict[str, int]:
        """`ReplayStore.tasks`."""
        return dict(self._call("tasks"))

    def __len__(self) -> int:
        return int(self._call("__len__"))

    def state_dict(self) -> dict[str, Any]:
        """`ReplayStore.state_dict`."""
        return dict(self._call("state_dict"))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """`ReplayStore.load_state_dict`."""
        self._call("load_state_dict", state)

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self._call, method)


def connect_stores(actors: Mapping[str, str] | None, namespace: str | None = None, max_pending: int = 0) -> Stores:
    """`Stores` with each named store actor registered (``actors``: store name -> actor name).

    Hosts build their components' `Stores` with this before ``on_lifetime_start``, so a
    provider's own local store loses to the run's shared one (`Stores.add`: first wins).
    ``max_pending``: see `RemoteStore` (then call `flush_stores` at the host's sync points).
    """
    handles = {store: ray.get_actor(actor, namespace=namespace) for store, actor in (actors or {}).items()}
    return Stores({store: RemoteStore(h, max_pending) for store, h in handles.items()})


def flush_stores(stores: Stores | None) -> None:
    """Wait for the writes in flight to every `RemoteStore` of ``stores``."""
    if stores is None:
        return
    for name in stores.names():
        store = stores.get(name)
        if isinstance(store, RemoteStore):
            store.flush()
