"""The env-side client of the teacher service: a task buffer and an outcome outbox.

Why: the teacher must never be on an episode's critical path (STYLE, anti-patterns:
Syllabus's blocking ``ray.get`` per call). Each env host keeps a local buffer of tasks
refilled asynchronously from the service, and an outbox of outcomes sent in batches.

Contents:
    TeacherClient       -- Ray-backed (an actor handle or a service name).
    LocalTeacherClient  -- the same interface over an in-process `TeacherServiceCore`
                           (no Ray: notebooks, breakpoints, unit tests).

Semantics shared by both:
    * ``next_task()`` pops the oldest buffered task. When the buffer falls to
      ``low_watermark`` one refill (up to ``buffer_size``) is requested; only the very
      first fill blocks. An empty buffer later means the service is slower than the
      envs: the call waits and counts a *stall* (``stats()["stalls"]``).
    * Buffered tasks were sampled from the teacher state at request time, so
      ``buffer_size`` bounds how stale a task can be; keep it small for adaptive teachers.
    * ``report(outcome)`` appends to an outbox flushed every ``flush_every`` outcomes or
      ``flush_interval_s`` seconds (checked on each ``report``/``next_task`` call; call
      ``flush()`` when the env goes idle). Task ids are never rewritten. An outcome
      without an ``episode_id`` gets a unique one (so a resent batch is de-duplicated),
      and one still carrying the default ``student_id="default"`` is attributed to this
      client's student.
    * One call carries both where it can (`TeacherClient`, a service with
      ``exchange_wire``): a refill takes the outbox along, and a flush that comes due
      while at least half a refill's worth of tasks is missing takes a refill along. The
      outcomes reach the teacher before it draws the new tasks. ``stats()["exchanges"]``
      counts these calls (each also counts as a refill and a flush).
    * `TeacherClient` makes those hot calls over the service's socket
      (`openended.runtime.wire`) where it can reach it (``wire=True``, the default: the
      service's socket listens on its node's loopback, so clients on the same node), and as
      Ray actor calls otherwise; ``stats()["transport"]`` says which. Same requests, same
      replies, ~5x cheaper a call. A broken socket is treated like a dead actor (resend,
      then connect again or fall back to Ray).
    * Reports are fire-and-forget with at most ``max_in_flight`` unacknowledged
      batches; a batch whose call failed because the service actor died is resent (up to
      ``max_retries`` times), and the service drops episodes it already has. While Ray
      restarts the actor (``ActorUnavailableError``: its checkpoint and log are being
      restored, which can take seconds) the client waits and asks again, for up to
      ``restart_timeout_s``; those waits do not count as retries.

Example (in-process):
    >>> from openended.tasks import Box, Outcome
    >>> from openended.runtime.core import TeacherServiceCore
    >>> core = TeacherServiceCore()
    >>> core.add_curriculum("walk", "random", Box([0, 0], [1, 1]))
    >>> client = LocalTeacherClient(core, "walk", buffer_size=8, low_watermark=2)
    >>> task = client.next_task()
    >>> client.report(Outcome(task.id, episode_return=1.0, success=True))
    >>> client.close()
    >>> core.snapshot()["curricula"]["walk"]["counters"]["outcomes_accepted"]
    1
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pickle
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from typing_extensions import override

from openended.errors import ConfigError
from openended.runtime.codec import OutcomeBatch, TaskCacheMiss, TaskTable, decode_tasks, encode_outcomes
from openended.runtime.wire import WireChannel, WireClosed, WireRef, hot_method
from openended.tasks import Outcome, Task

__all__ = ["TeacherClient", "LocalTeacherClient"]

#: After the socket could not be used (no socket, another node, a failed connect): ask again this much later.
WIRE_RETRY_S = 30.0
#: How long asking the service for its socket's address may take before the call goes by Ray.
WIRE_LOOKUP_TIMEOUT_S = 5.0


def _check_sizes(buffer_size: int, low_watermark: int, flush_every: int, flush_interval_s: float) -> None:
    if buffer_size < 1:
        raise ConfigError(f"client.buffer_size: must be >= 1, got {buffer_size}")
    if not 0 <= low_watermark < buffer_size:
        raise ConfigError(f"client.low_watermark: must be in [0, buffer_size={buffer_size}), got {low_watermark}")
    if flush_every < 1:
        raise ConfigError(f"client.flush_every: must be >= 1, got {flush_every}")
    if flush_interval_s < 0:
        raise ConfigError(f"client.flush_interval_s: must be >= 0, got {flush_interval_s}")


class _ClientBase(ABC):
    """Buffer/outbox bookkeeping shared by the Ray and in-process clients, and their interface."""

    def __init__(
        self,
        curriculum: str,
        student: str,
        buffer_size: int,
        low_watermark: int,
        flush_every: int,
        flush_interval_s: float,
    ) -> None:
        _check_sizes(buffer_size, low_watermark, flush_every, flush_interval_s)
        self.curriculum = curriculum
        self.student = student
        self.buffer_size = int(buffer_size)
        self.low_watermark = int(low_watermark)
        self.flush_every = int(flush_every)
        self.flush_interval_s = float(flush_interval_s)
        #: Random per-instance token: names this client's task table to the service and
        #: prefixes the episode ids it assigns (32 random bits + a 32-bit counter).
        self.token = os.urandom(4).hex()
        self._episodes = itertools.count()
        self._table = TaskTable()
        self._buffer: deque[Task] = deque()
        self._outbox: list[Outcome] = []
        self._last_flush = time.monotonic()
        self._closed = False
        self._first_fill_s: float | None = None  # seconds the first (blocking) fill took
        self._counts: dict[str, float] = {
            "stalls": 0,
            "stall_s": 0.0,
            "refills": 0,
            "tasks_received": 0,
            "tasks_served": 0,
            "outcomes_reported": 0,
            "outcomes_sent": 0,
            "outcomes_acked": 0,
            "outcomes_accepted": 0,
            "flushes": 0,
            "resends": 0,
            "resyncs": 0,
            "tasks_discarded": 0,
            "exchanges": 0,
            "wire_connects": 0,
        }

    def new_episode_id(self) -> str:
        """A fresh episode id of this client: its token, then a 32-bit counter (16 hex digits).

        What ``report`` gives an outcome that has none. An env host that builds the outcome
        with this id saves the copy ``report`` would make to add one; either way the id is
        canonical, so the service de-duplicates it in its compiled table and logs it as a
        ``uint64`` column (a named id costs a report ~3x more service time).
        """
        return f"{self.token}{next(self._episodes) & 0xFFFFFFFF:08x}"

    def _prepare(self, outcome: Outcome) -> Outcome:
        if not isinstance(outcome, Outcome):
            raise ConfigError(f"report: expected an Outcome, got {type(outcome).__name__}")
        changes: dict[str, Any] = {}
        if outcome.episode_id is None:
            changes["episode_id"] = self.new_episode_id()
        if outcome.student_id == "default" and self.student != "default":
            changes["student_id"] = self.student
        return dataclasses.replace(outcome, **changes) if changes else outcome

    def _due(self) -> bool:
        return bool(self._outbox) and (
            len(self._outbox) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s
        )

    def _receive(self, batch: Any) -> None:
        if isinstance(batch, bytes):  # a `sample_columns_wire` reply
            batch = pickle.loads(batch)
        tasks = decode_tasks(batch, self._table)
        self._buffer.extend(tasks)
        self._counts["tasks_received"] += len(tasks)

    def _base_stats(self) -> dict:
        return {
            **self._counts,
            "first_fill_s": self._first_fill_s,
            "buffered": len(self._buffer),
            "outbox": len(self._outbox),
            "curriculum": self.curriculum,
            "student": self.student,
            "episode_id_token": self.token,
        }

    @abstractmethod
    def next_task(self) -> Task:
        """The next task of this client's curriculum and student, from the local buffer.

        Blocks only for the first fill, or when the buffer ran dry before its refill came
        back (a *stall*, counted in ``stats()``).
        """

    @abstractmethod
    def report(self, outcome: Outcome) -> None:
        """Queue ``outcome``; a batch is sent once ``flush_every`` or ``flush_interval_s`` is reached."""

    @abstractmethod
    def flush(self, wait: bool = False) -> None:
        """Send the outbox now; ``wait=True`` also waits until every sent batch is acknowledged."""

    @abstractmethod
    def stats(self) -> dict:
        """Stalls, buffer, in-flight and sent counts (for the env host's metrics)."""

    def discard_buffered(self) -> int:
        """Drop the buffered tasks (and an unanswered refill): the next task is sampled anew.

        Why: a driver that switches what the teacher issues (a lifelong scenario's next
        block) must not have env hosts run tasks sampled before the switch. The dropped
        tasks were never run, so nothing is reported for them. Returns how many were dropped.
        """
        dropped = len(self._buffer)
        self._buffer.clear()
        self._counts["tasks_discarded"] += dropped
        return dropped

    @abstractmethod
    def close(self) -> None:
        """Flush, wait for acknowledgements and drop the buffer (idempotent)."""

    def __enter__(self) -> _ClientBase:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TeacherClient(_ClientBase):
    """Ray-backed client. ``service`` is a `TeacherServiceActor` handle or its name.

    A name is looked up once (``ray.get_actor``) and cached; if the actor dies, the
    name is looked up again before the next call (a restarted detached service).
    The client is picklable: a copy starts with an empty buffer and outbox. It is not
    thread-safe: use one client per thread that runs episodes.

    ``wire``: make the hot calls over the service's socket where it is reachable
    (`openended.runtime.wire`; module docstring above); ``False``: Ray calls only.
    """

    def __init__(
        self,
        service: Any,
        curriculum: str,
        student: str = "default",
        *,
        buffer_size: int = 64,
        low_watermark: int = 16,
        flush_every: int = 32,
        flush_interval_s: float = 1.0,
        namespace: str | None = None,
        max_in_flight: int = 4,
        max_retries: int = 3,
        restart_timeout_s: float = 300.0,
        wire: bool = True,
    ) -> None:
        super().__init__(curriculum, student, buffer_size, low_watermark, flush_every, flush_interval_s)
        if max_in_flight < 1:
            raise ConfigError(f"client.max_in_flight: must be >= 1, got {max_in_flight}")
        self._service_arg = service
        self._namespace = namespace
        self._handle: Any = None if isinstance(service, str) else service
        self.max_in_flight = int(max_in_flight)
        self.max_retries = int(max_retries)
        self.restart_timeout_s = float(restart_timeout_s)
        self._unavailable_since: float | None = None  # when the service began restarting (None: it answers)
        self._sample_ref: Any = None
        self._pending_n = 0
        self._reports: deque[tuple[Any, OutcomeBatch, int]] = deque()  # (ref, batch, attempt)
        self._pending_resend: list[tuple[OutcomeBatch, int]] = []
        self._exchange_on: Any = None  # the handle or channel `_exchange_call` was made for
        self._exchange_call: Any = None
        self.wire = bool(wire)
        self._channel_now: WireChannel | None = None
        self._wire_retry_at = 0.0  # monotonic time before which the socket is not tried again
        self._wire_settled: Any = None  # the handle whose answer was final (no socket, off, another node)
        self.wire_note = "not tried yet"  # why the socket is not in use (empty while it is)
        self.transport = "ray"  # how the last hot call went: "wire" or "ray"

    def __reduce__(self) -> tuple:
        return (
            _rebuild_client,
            (
                self._service_arg,
                self.curriculum,
                self.student,
                dict(
                    buffer_size=self.buffer_size,
                    low_watermark=self.low_watermark,
                    flush_every=self.flush_every,
                    flush_interval_s=self.flush_interval_s,
                    namespace=self._namespace,
                    max_in_flight=self.max_in_flight,
                    max_retries=self.max_retries,
                    restart_timeout_s=self.restart_timeout_s,
                    wire=self.wire,
                ),
            ),
        )

    @property
    def service(self) -> Any:
        """The actor handle (looked up by name once, then cached)."""
        if self._handle is None:
            import ray

            self._handle = ray.get_actor(self._service_arg, namespace=self._namespace)
        return self._handle

    # ---------------------------------------------------------------- transport
    def _channel(self) -> WireChannel | None:
        """The socket to the service, connected on first use; None: use Ray calls (for now)."""
        chan = self._channel_now
        if chan is not None and not chan.closed:
            return chan
        self._channel_now = None
        if not self.wire or time.monotonic() < self._wire_retry_at:
            return None
        handle = self.service
        if handle is self._wire_settled:  # asked already: this actor has no socket for us
            return None
        try:
            chan, self.wire_note = _connect_wire(handle)
        except Exception as e:  # noqa: BLE001 - a restarting or older service: Ray calls meanwhile
            chan, self.wire_note = None, f"{type(e).__name__}: {e}"
            self._wire_retry_at = time.monotonic() + WIRE_RETRY_S
        else:
            if chan is None:  # a final answer for this handle (until it dies or is looked up again)
                self._wire_settled = handle
            else:
                self._counts["wire_connects"] += 1
        self._channel_now = chan
        return chan

    def _lost_channel(self) -> None:
        """The socket failed (the service died or restarted): the next call connects again."""
        if self._channel_now is not None:
            self._channel_now.close()
        self._channel_now = None
        self.wire_note = "connection lost"

    def _method(self, name: str) -> Any:
        """A hot method (``sample_columns_wire``, ``report_wire``) by socket or as a Ray method (None: none)."""
        chan = self._channel()
        self.transport = "ray" if chan is None else "wire"
        if chan is not None:
            return hot_method(chan, name)
        return _wire(self.service, name)

    # ------------------------------------------------------------------ tasks
    def _request(self, n: int, reset_peer: bool = False) -> Any:
        # The array path where the teacher has one (no Task built in the service); else `sample`.
        wire = self._method("sample_columns_wire")
        if wire is not None:
            return wire.remote(pickle.dumps((self.curriculum, self.student, n, self.token, reset_peer), protocol=5))
        return _sampler(self.service).remote(self.curriculum, self.student, n, self.token, reset_peer)

    def _collect(self, ref: Any, n: int) -> None:
        """Wait for a sample reply and buffer its tasks.

        Asks again after a task-cache miss (sending every task in full) or a dead service actor.
        """
        from ray.exceptions import ActorUnavailableError, RayActorError

        attempt = 0
        reset = False
        while True:
            try:
                self._receive(_get(ref))
                self._unavailable_since = None
                return
            except TaskCacheMiss:
                # Our table and the service's view of it disagree: ask again, sending everything.
                self._counts["resyncs"] += 1
                reset = True
            except ActorUnavailableError:
                self._wait_for_restart()
                self._counts["resends"] += 1
            except (RayActorError, WireClosed) as e:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                self._counts["resends"] += 1
                self._lost_service(e)
                time.sleep(0.05 * attempt)
            ref = self._request(n, reset_peer=reset)

    def _lost_service(self, error: BaseException) -> None:
        """A call found the actor dead or its socket closed: look both up again before the next call."""
        self._lost_channel()
        self._wire_retry_at = 0.0  # a restarted service may have a socket (again, or now on our node)
        self._wire_settled = None
        if isinstance(self._service_arg, str) and not isinstance(error, WireClosed):
            self._handle = None  # a restarted named service is a new actor

    def _maybe_request(self) -> None:
        if self._sample_ref is None and len(self._buffer) <= self.low_watermark:
            if not (self._outbox and self._exchange()):
                self._pending_n = self.buffer_size - len(self._buffer)
                self._sample_ref = self._request(self._pending_n)
                self._counts["refills"] += 1

    def _exchange(self) -> bool:
        """Send the outbox and request a refill in one call (`TeacherServiceActor.exchange_wire`).

        False (nothing sent) where the service has no such method or ``max_in_flight``
        reports are already outstanding: a refill never waits for a report slot.
        SPEEDUP: a Ray call costs about the same whatever it carries (see `exchange_wire`).
        """
        if len(self._reports) >= self.max_in_flight:
            return False
        method = self._exchange_method()
        if method is None:
            return False
        batch = self._take_outbox()
        self._pending_n = self.buffer_size - len(self._buffer)
        request = (self.curriculum, batch, self.student, self._pending_n, self.token, False)
        accepted_ref, self._sample_ref = method.remote(pickle.dumps(request, protocol=5))
        self._reports.append((accepted_ref, batch, 0))
        self._last_flush = time.monotonic()
        self._counts["refills"] += 1
        self._counts["exchanges"] += 1
        return True

    def _take_outbox(self) -> OutcomeBatch:
        """The outbox as one batch, emptied and counted as a flush (its sender appends it to ``_reports``)."""
        batch = encode_outcomes(self._outbox)
        self._outbox = []
        self._counts["outcomes_sent"] += len(batch)
        self._counts["flushes"] += 1
        return batch

    def _take_refill(self) -> None:
        """Buffer the in-flight refill's tasks, waiting for its reply if it has not landed (a stall)."""
        ref, self._sample_ref = self._sample_ref, None
        ready = _is_ready(ref)
        t0 = time.perf_counter()
        self._collect(ref, self._pending_n)
        if not ready:
            self._counts["stalls"] += 1
            self._counts["stall_s"] += time.perf_counter() - t0

    def _exchange_method(self) -> Any:
        """``exchange_wire`` with two results, by socket or on the current handle (cached per target), or None."""
        target = self._channel() or self.service
        self.transport = "wire" if isinstance(target, WireChannel) else "ray"
        if self._exchange_on is not target:
            if isinstance(target, WireChannel):
                call: Any = hot_method(target, "exchange_wire")
            else:
                wire = _wire(target, "exchange_wire")
                call = None if wire is None else wire.options(num_returns=2)
            self._exchange_on, self._exchange_call = target, call
        return self._exchange_call

    @override
    def next_task(self) -> Task:
        if self._closed:
            raise ConfigError("TeacherClient is closed")
        if not self._buffer:
            if self._first_fill_s is None:
                t0 = time.perf_counter()
                self._pending_n = self.buffer_size
                self._collect(self._request(self.buffer_size), self.buffer_size)
                self._counts["refills"] += 1
                self._first_fill_s = time.perf_counter() - t0
            else:
                # SPEEDUP: the in-flight refill is only looked at when the buffer is empty
                # (a ``ray.wait`` per episode cost ~50-100 us); the next refill is requested
                # at the watermark either way, so how early a reply is unpacked changes nothing.
                if self._sample_ref is None:  # defensive: a refill is always in flight below the watermark
                    self._pending_n = self.buffer_size
                    self._sample_ref = self._request(self.buffer_size)
                    self._counts["refills"] += 1
                self._take_refill()
        task = self._buffer.popleft()
        self._maybe_request()
        self._counts["tasks_served"] += 1
        if self._pending_resend or self._due():
            self._flush(wait=False, top_up=True)
        return task

    @override
    def discard_buffered(self) -> int:
        # The in-flight refill was sampled before the switch too: its reply is never read.
        self._sample_ref = None
        return super().discard_buffered()

    # --------------------------------------------------------------- outcomes
    @override
    def report(self, outcome: Outcome) -> None:
        if self._closed:
            raise ConfigError("TeacherClient is closed")
        self._outbox.append(self._prepare(outcome))
        self._counts["outcomes_reported"] += 1
        if self._due():
            self._flush(wait=False, top_up=True)

    def _send(self, batch: OutcomeBatch, attempt: int) -> None:
        while len(self._reports) >= self.max_in_flight:  # bounded: wait for the oldest
            self._reap(block_first=True)
        wire = self._method("report_wire")
        if wire is not None:
            ref = wire.remote(pickle.dumps((self.curriculum, batch), protocol=5))
        else:
            ref = self.service.report.remote(self.curriculum, batch)
        self._reports.append((ref, batch, attempt))

    def _wait_for_restart(self) -> None:
        """The service is restarting: wait a little, or re-raise once ``restart_timeout_s`` has passed."""
        now = time.monotonic()
        if self._unavailable_since is None:
            self._unavailable_since = now
        elif now - self._unavailable_since > self.restart_timeout_s:
            raise  # the ActorUnavailableError its caller is handling
        time.sleep(0.2)

    def _reap(self, block_first: bool) -> None:
        """Collect finished report calls (one ``ray.wait`` for all of them).

        Queues a resend for those that hit a dead actor. ``block_first``: wait for the oldest first.
        """
        from ray.exceptions import ActorUnavailableError, RayActorError

        if not self._reports:
            return
        if block_first:
            _block_on(self._reports[0][0])
        done = _ready_refs([r[0] for r in self._reports])
        if not done:
            return
        pending: deque[tuple[Any, OutcomeBatch, int]] = deque()
        for ref, batch, attempt in self._reports:
            if ref not in done:
                pending.append((ref, batch, attempt))
                continue
            try:
                accepted = _get(ref)
                self._unavailable_since = None
            except ActorUnavailableError:  # Ray is restarting the service: resend, not counted as a retry
                self._wait_for_restart()
                self._counts["resends"] += 1
                self._pending_resend.append((batch, attempt))
                continue
            except (RayActorError, WireClosed) as e:  # ActorDiedError, or the socket went with it
                if attempt >= self.max_retries:
                    raise
                self._counts["resends"] += 1
                self._lost_service(e)
                self._pending_resend.append((batch, attempt + 1))
                continue
            if isinstance(accepted, Exception):  # an exchange's report half failed: raise it as report would
                raise accepted
            self._counts["outcomes_acked"] += len(batch)
            self._counts["outcomes_accepted"] += int(accepted)
        self._reports = pending

    @override
    def flush(self, wait: bool = False) -> None:
        self._flush(wait, top_up=False)

    def _flush(self, wait: bool, top_up: bool) -> None:
        """`flush`; ``top_up`` (a flush that came due): refill in the same call when half a refill is missing.

        SPEEDUP: with the defaults (64 tasks, watermark 16, a flush every 32 outcomes) an
        env host then makes one call per 32 episodes instead of five per 96.
        """
        self._reap(block_first=False)
        resend, self._pending_resend = self._pending_resend, []
        for batch, attempt in resend:
            self._send(batch, attempt)
        if top_up and self._outbox:
            if self._sample_ref is not None and len(self._buffer) <= self.low_watermark:
                # The in-flight refill is needed within low_watermark episodes: take it now, so
                # this flush can bring the next one. Decided by counts, never by whether the
                # reply has landed yet: a seeded run makes the same calls in the same order.
                self._take_refill()
            missing = self.buffer_size - len(self._buffer)
            if (
                self._sample_ref is None
                and self._first_fill_s is not None
                and missing >= max(1, (self.buffer_size - self.low_watermark) // 2)
                and self._exchange()
            ):
                return
        if self._outbox:
            self._send(self._take_outbox(), 0)
        self._last_flush = time.monotonic()
        if wait:
            while self._reports or self._pending_resend:
                self._reap(block_first=True)
                resend, self._pending_resend = self._pending_resend, []
                for batch, attempt in resend:
                    self._send(batch, attempt)

    @override
    def stats(self) -> dict:
        return {
            **self._base_stats(),
            "transport": self.transport,
            "wire_note": self.wire_note,
            "in_flight_samples": int(self._sample_ref is not None),
            "in_flight_reports": len(self._reports),
            "pending_resends": len(self._pending_resend),
        }

    @override
    def close(self) -> None:
        if self._closed:
            return
        self.flush(wait=True)
        self._sample_ref = None
        self._buffer.clear()
        self._closed = True
        if self._channel_now is not None:
            self._channel_now.close()
            self._channel_now = None

    def __repr__(self) -> str:
        return f"TeacherClient(curriculum={self.curriculum!r}, student={self.student!r}, buffered={len(self._buffer)})"


def _sampler(service: Any) -> Any:
    """The service's ``sample_columns`` (the array path), or ``sample`` where it has none (another service object)."""
    try:
        return service.sample_columns
    except AttributeError:
        return service.sample


def _wire(service: Any, method: str) -> Any:
    """The service's bytes-in, bytes-out form of a hot method (`TeacherServiceActor.sample_columns_wire`), if any."""
    return getattr(service, method, None)


def _connect_wire(service: Any) -> tuple[WireChannel | None, str]:
    """A channel to ``service``'s socket, or None and why not (no socket, off, a loopback on another node)."""
    import ray

    lookup = getattr(service, "wire_address", None)
    if lookup is None:
        return None, "the service has no socket"
    info = ray.get(lookup.remote(), timeout=WIRE_LOOKUP_TIMEOUT_S)
    if info is None:
        return None, "the service's socket is off (wire_host=None)"
    if info["host"] in ("127.0.0.1", "localhost", "::1") and info["node_id"] != ray.get_runtime_context().get_node_id():
        return None, "the service's socket listens on another node's loopback"
    return WireChannel(info["host"], info["port"], info["secret"]), ""


def _get(ref: Any) -> Any:
    """``ray.get`` of a Ray ref or a socket reply."""
    if isinstance(ref, WireRef):
        return ref.result()
    import ray

    return ray.get(ref)


def _is_ready(ref: Any) -> bool:
    if isinstance(ref, WireRef):
        return ref.ready()
    import ray

    return bool(ray.wait([ref], timeout=0)[0])


def _block_on(ref: Any) -> None:
    if isinstance(ref, WireRef):
        ref.wait()
    else:
        import ray

        ray.wait([ref], num_returns=1)


def _ready_refs(refs: list[Any]) -> set[Any]:
    """The refs whose results have come (one ``ray.wait`` for the Ray ones; never blocks)."""
    ready: set[Any] = {r for r in refs if isinstance(r, WireRef) and r.ready()}
    on_ray = [r for r in refs if not isinstance(r, WireRef)]
    if on_ray:
        import ray

        ready.update(ray.wait(on_ray, num_returns=len(on_ray), timeout=0)[0])
    return ready


def _rebuild_client(service: Any, curriculum: str, student: str, kwargs: dict) -> TeacherClient:
    return TeacherClient(service, curriculum, student, **kwargs)


class LocalTeacherClient(_ClientBase):
    """`TeacherClient`'s interface over an in-process `TeacherServiceCore` (no Ray).

    Refills happen synchronously at the low watermark (there is nothing to wait for, so
    ``stalls`` stays 0); batches still go through the codec, so behaviour matches.
    """

    def __init__(
        self,
        service: Any,
        curriculum: str,
        student: str = "default",
        *,
        buffer_size: int = 64,
        low_watermark: int = 16,
        flush_every: int = 32,
        flush_interval_s: float = 1.0,
    ) -> None:
        super().__init__(curriculum, student, buffer_size, low_watermark, flush_every, flush_interval_s)
        self.service = service

    def _fill(self) -> None:
        n = self.buffer_size - len(self._buffer)
        sample = _sampler(self.service)  # the array path where the teacher has one, else `sample`
        try:
            self._receive(sample(self.curriculum, self.student, n, peer=self.token))
        except TaskCacheMiss:
            self._counts["resyncs"] += 1
            self._receive(sample(self.curriculum, self.student, n, peer=self.token, reset_peer=True))
        self._counts["refills"] += 1

    @override
    def next_task(self) -> Task:
        if self._closed:
            raise ConfigError("LocalTeacherClient is closed")
        if self._first_fill_s is None:
            t0 = time.perf_counter()
            self._fill()
            self._first_fill_s = time.perf_counter() - t0
        elif len(self._buffer) <= self.low_watermark:
            self._fill()
        task = self._buffer.popleft()
        self._counts["tasks_served"] += 1
        if self._due():
            self.flush()
        return task

    @override
    def report(self, outcome: Outcome) -> None:
        if self._closed:
            raise ConfigError("LocalTeacherClient is closed")
        self._outbox.append(self._prepare(outcome))
        self._counts["outcomes_reported"] += 1
        if self._due():
            self.flush()

    @override
    def flush(self, wait: bool = False) -> None:
        """Send the outbox now (synchronous, so ``wait`` changes nothing)."""
        if self._outbox:
            batch = encode_outcomes(self._outbox)
            self._outbox = []
            accepted = self.service.report(self.curriculum, batch)
            self._counts["outcomes_sent"] += len(batch)
            self._counts["outcomes_acked"] += len(batch)
            self._counts["outcomes_accepted"] += int(accepted)
            self._counts["flushes"] += 1
        self._last_flush = time.monotonic()

    @override
    def stats(self) -> dict:
        return {**self._base_stats(), "in_flight_samples": 0, "in_flight_reports": 0, "pending_resends": 0}

    @override
    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._buffer.clear()
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"LocalTeacherClient(curriculum={self.curriculum!r}, student={self.student!r}, "
            f"buffered={len(self._buffer)})"
        )
