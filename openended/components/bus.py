"""The typed event bus components publish on (they never call each other).

Contents:
    Topic       -- a named topic and the payload type it carries.
    EventBus    -- in-process publish / subscribe: delivery is a direct call, in publish order.
    BusBridge   -- carries chosen topics between processes through a remote log
                   (`RemoteLog`: the runtime's Ray actor), batched: ``flush`` publishes what
                   was queued in one call, ``poll`` fetches what others published in one call.
    TaskChange  -- the payload of `TASK_CHANGE`, the topic the task-change detector publishes.

Why typed: a subscriber reads fields of the payload; a publisher that sends the wrong
type fails at ``publish`` (naming the topic and both types), not in someone else's hook.

>>> bus = EventBus()
>>> got = []
>>> bus.subscribe(TASK_CHANGE, got.append)
>>> bus.publish(TASK_CHANGE, TaskChange(source="detector", episode=12))
>>> got[0].episode
12
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["BusBridge", "EventBus", "RemoteLog", "TASK_CHANGE", "TaskChange", "Topic"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Topic(Generic[T]):
    """A topic name and the type of its payloads."""

    name: str
    payload: type[T]


@dataclasses.dataclass(frozen=True)
class TaskChange:
    """A task change, announced by the scenario or detected from experience.

    ``announced`` is ``False`` when a detector inferred it (the scenario did not say);
    ``old_task_id`` / ``new_task_id`` are ``None`` where unknown.
    """

    source: str
    episode: int
    announced: bool = False
    old_task_id: str | None = None
    new_task_id: str | None = None
    score: float | None = None
    t: float = dataclasses.field(default_factory=time.time)


TASK_CHANGE: Topic[TaskChange] = Topic("task_change", TaskChange)


class EventBus:
    """In-process publish / subscribe over typed topics (module doc)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._topics: dict[str, Topic[Any]] = {}
        self._bridges: list[BusBridge] = []
        self.published = 0

    def _register(self, topic: Topic[Any]) -> None:
        known = self._topics.setdefault(topic.name, topic)
        if known.payload is not topic.payload:
            raise TypeError(
                f"bus topic {topic.name!r} carries {known.payload.__name__}, not {topic.payload.__name__}; "
                "use another topic name"
            )

    def subscribe(self, topic: Topic[T], fn: Callable[[T], None]) -> None:
        """Call ``fn(payload)`` for every payload published on ``topic`` (here or, bridged, elsewhere)."""
        self._register(topic)
        self._subs[topic.name].append(fn)

    def publish(self, topic: Topic[T], payload: T) -> None:
        """Deliver ``payload`` to the topic's subscribers now; queue it for bridges that carry the topic."""
        self._register(topic)
        if not isinstance(payload, topic.payload):
            raise TypeError(f"bus topic {topic.name!r} carries {topic.payload.__name__}; got {type(payload).__name__}")
        self.deliver(topic.name, payload)
        for bridge in self._bridges:
            bridge.queue(topic.name, payload)

    def deliver(self, name: str, payload: Any) -> None:
        """Call the local subscribers of topic ``name`` (bridges use this for remote payloads)."""
        self.published += 1
        for fn in self._subs.get(name, ()):
            fn(payload)

    def topic(self, name: str) -> Topic[Any] | None:
        """The topic registered under ``name`` here, if any."""
        return self._topics.get(name)


class RemoteLog(Protocol):
    """A shared, append-only event log another process can read (the runtime's bus actor)."""

    def publish(self, origin: str, events: list[tuple[str, Any]]) -> int:
        """Append ``events`` (topic name, payload) from ``origin``; returns the log's new length."""
        ...

    def poll(self, cursor: int, exclude_origin: str) -> tuple[list[tuple[str, Any]], int]:
        """Events from ``cursor`` on that others published, and the cursor to poll from next."""
        ...


class BusBridge:
    """Carries ``topics`` of a local `EventBus` to and from a `RemoteLog`, in batches.

    ``flush`` sends the queued payloads in one call; ``poll`` delivers the payloads other
    processes published since the last poll to the local subscribers (never echoing this
    process's own). Hosts flush and poll at episode and block boundaries.
    """

    def __init__(self, bus: EventBus, remote: RemoteLog, origin: str, topics: tuple[str, ...] | None = None) -> None:
        self.bus = bus
        self.remote = remote
        self.origin = origin
        self.topics = topics  # None: every topic
        self._out: list[tuple[str, Any]] = []
        self._cursor = 0
        self._last_exchange = float("-inf")
        bus._bridges.append(self)

    def queue(self, name: str, payload: Any) -> None:
        """Queue a locally published payload for the next ``flush``."""
        if self.topics is None or name in self.topics:
            self._out.append((name, payload))

    def flush(self) -> int:
        """Publish the queued payloads in one call; returns how many were sent."""
        out, self._out = self._out, []
        if out:
            self.remote.publish(self.origin, out)
        return len(out)

    def exchange(self, min_interval_s: float = 0.0) -> bool:
        """``flush`` then ``poll``, at most once per ``min_interval_s`` (hot paths call this freely)."""
        now = time.monotonic()
        if now - self._last_exchange < min_interval_s:
            return False
        self._last_exchange = now
        self.flush()
        self.poll()
        return True

    def poll(self) -> int:
        """Deliver what other processes published since the last poll; returns how many."""
        events, self._cursor = self.remote.poll(self._cursor, self.origin)
        for name, payload in events:
            if self.topics is None or name in self.topics:
                self.bus.deliver(name, payload)
        return len(events)
