"""The teacher service as a Ray actor: create it once per run, connect from anywhere.

Why an actor: env workers in many processes (RLlib env runners, `EnvPool` actors) must
draw tasks from, and report outcomes to, the *same* teacher state. The actor hosts one
`TeacherServiceCore` (`openended.runtime.core`, plain Python) and exports its metrics;
clients (`openended.runtime.client`) reach it by name.

Contents:
    TeacherServiceActor -- the Ray actor around the core, exporting metrics; resumes from
                           checkpoint + event log by itself (``resume=True``).
    start_service / get_service -- create-or-connect to the named actor.
    TeacherServiceCore, ServiceError -- the core it hosts and the error it raises, here
                           too because they are this module's documented API.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openended.errors import ServiceError
from openended.runtime.codec import OutcomeBatch, TaskBatch
from openended.runtime.core import TeacherServiceCore
from openended.runtime.curricula import StudentsMode
from openended.runtime.wire import EXCHANGE, REPORT, SAMPLE, WireServer, new_secret

if TYPE_CHECKING:
    from openended.runtime.metrics_export import ServiceMetrics  # imports ray.util.metrics

__all__ = [
    "TeacherServiceActor",
    "TeacherServiceCore",
    "ServiceError",
    "start_service",
    "get_service",
    "DEFAULT_SERVICE_NAME",
    "unpack_request",
]

DEFAULT_SERVICE_NAME = "openended_teacher_service"

#: A hot call's report half: ``(curriculum, batch)``.
ReportRequest = tuple[str, OutcomeBatch]
#: A hot call's refill half: ``(curriculum, student, n, peer, reset_peer)``.
RefillRequest = tuple[str, str, int, str | None, bool]


def unpack_request(op: int, body: bytes) -> tuple[ReportRequest | None, RefillRequest | None]:
    """A hot call's pickled request as its ``(report, refill)`` halves (None where it has none).

    ``SAMPLE``: ``(curriculum, student, n, peer, reset_peer)``; ``REPORT``: ``(curriculum,
    batch)``; ``EXCHANGE``: ``(curriculum, batch, student, n, peer, reset_peer)``. One
    reading for the Ray-callable wire methods and the socket's waves, so a request means
    the same whichever way it is served. A body of another shape raises here.
    """
    req = pickle.loads(body)
    if op == SAMPLE:
        curriculum, student, n, peer, reset_peer = req
        return None, (curriculum, student, n, peer, reset_peer)
    if op == REPORT:
        curriculum, batch = req
        return (curriculum, batch), None
    if op == EXCHANGE:
        curriculum, batch, student, n, peer, reset_peer = req
        return (curriculum, batch), (curriculum, student, n, peer, reset_peer)
    raise ValueError(f"unknown hot-call op {op!r}")


_log = logging.getLogger(__name__)


def _load_teacher_kernels() -> None:
    """Load the teachers' compiled kernels (`openended.teachers.compiled.warm_up`); log, never raise.

    Why, in a service: every teacher keeps an issued-task table whose kernels (and numba
    itself) otherwise load on the first eviction, when a run has issued 32,768 tasks: a
    one-off ~0.6 s stall of that call (measured on 2 cores), so it runs in the background
    as the service starts instead.
    """
    try:
        from openended.teachers import compiled

        compiled.warm_up()
    except Exception:  # noqa: BLE001 - a call that needs a kernel loads it itself; this only moves the cost
        _log.warning("loading the teachers' compiled kernels in the background failed", exc_info=True)


class TeacherServiceActor:
    """The Ray actor hosting one `TeacherServiceCore` (use `start_service` to create it).

    Concurrency: the default ``max_concurrency=1`` runs calls one at a time in the
    actor's thread (lowest overhead; right for one curriculum). With several curricula
    and a teacher whose ``update`` is slow (ALP-GMM: a 1,024-outcome batch triggers
    several fits, ~0.5 s here), ``max_concurrency=4`` lets calls for other curricula run
    meanwhile: the core locks per curriculum, and the waits (fits in threads, fsync,
    sleeps) release the GIL. Clients keep task buffers, so a short pause of the service
    never stalls an episode.

    ``curricula``: added at start, as ``{name: add_curriculum kwargs}`` or a list of
    ``add_curriculum`` kwargs (spaces as ``TaskSpace`` or ``to_dict()``); re-adding on a
    resumed service is a no-op.

    Resuming: with ``resume=True`` the constructor restores from ``checkpoint_dir`` (and
    ``restore_candidates``, a resumed run's checkpoint-set file) and ``event_log``; so an
    actor started with ``max_restarts`` resumes by itself after its process dies.

    The hot calls also have a socket (`openended.runtime.wire`): ``wire_host`` is where it
    listens (``"127.0.0.1"``: clients on this node only; ``"0.0.0.0"``: every node, for
    clusters whose env hosts run elsewhere; ``None``: off, Ray calls only). It starts on
    the first `wire_address` call, and its ``wire_threads`` threads (`start_service` makes
    them as many as ``max_concurrency``) call the same methods as Ray's.
    """

    def __init__(
        self,
        *,
        event_log: str | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        restore_candidates: Sequence[str] = (),
        curricula: Sequence[dict] | Mapping[str, dict] = (),
        metrics: bool = True,
        metrics_interval_s: float = 2.0,
        teacher_threads: int | None = 1,
        wire_host: str | None = "127.0.0.1",
        wire_threads: int = 1,
        **core_kwargs: Any,
    ) -> None:
        self._thread_limits: Any = None
        self._wire_host = wire_host
        self._wire_threads = int(wire_threads)
        self._wire: WireServer | None = None
        self._wire_secret = b""
        self._wire_lock = threading.Lock()
        threading.Thread(target=_load_teacher_kernels, name="openended-load-kernels", daemon=True).start()
        if teacher_threads is not None:
            # Measured on 2 cores: BLAS/OpenMP fits sharing them with env workers went from 0.1 s to 0.5-16 s.
            from threadpoolctl import threadpool_limits

            self._thread_limits = threadpool_limits(limits=teacher_threads)
        if resume and (checkpoint_dir is not None or event_log is not None):
            self.core = TeacherServiceCore.restore(
                checkpoint_dir, event_log, candidates=restore_candidates, **core_kwargs
            )
        else:
            self.core = TeacherServiceCore(event_log=event_log, checkpoint_dir=checkpoint_dir, **core_kwargs)
        if isinstance(curricula, Mapping):
            add_calls = [{"name": name, **kwargs} for name, kwargs in curricula.items()]
        else:
            add_calls = list(curricula)
        for add_kwargs in add_calls:
            self.core.add_curriculum(**add_kwargs)
        self._metrics: ServiceMetrics | None = None
        if metrics:
            from openended.runtime.metrics_export import ServiceMetrics

            self._metrics = ServiceMetrics(interval_s=metrics_interval_s)

    def add_curriculum(
        self,
        name: str,
        teacher: str = "random",
        space: dict | None = None,
        config: dict | None = None,
        preset: str | None = None,
        students: StudentsMode = "separate",
    ) -> None:
        """`TeacherServiceCore.add_curriculum` (registry teachers only: objects do not cross processes)."""
        self.core.add_curriculum(name, teacher, space, config, preset, students)

    def curricula(self) -> list[str]:
        """`TeacherServiceCore.curricula`."""
        return self.core.curricula()

    def space(self, curriculum: str) -> dict:
        """`TeacherServiceCore.space`, as ``to_dict()`` (rebuild it with `openended.tasks.space_from_dict`)."""
        return self.core.space(curriculum).to_dict()

    def sample(
        self, curriculum: str, student: str = "default", n: int = 1, peer: str | None = None, reset_peer: bool = False
    ) -> TaskBatch:
        """`TeacherServiceCore.sample`, counted in the exported metrics."""
        batch = self.core.sample(curriculum, student, n, peer=peer, reset_peer=reset_peer)
        self._count_tasks(curriculum, student, batch)
        return batch

    def sample_columns(
        self, curriculum: str, student: str = "default", n: int = 1, peer: str | None = None, reset_peer: bool = False
    ) -> TaskBatch:
        """`TeacherServiceCore.sample_columns` (the array path where the teacher has one), counted in the metrics."""
        batch = self.core.sample_columns(curriculum, student, n, peer=peer, reset_peer=reset_peer)
        self._count_tasks(curriculum, student, batch)
        return batch

    def _count_tasks(self, curriculum: str, student: str, batch: TaskBatch) -> None:
        if self._metrics is not None:
            self._metrics.tasks(curriculum, student, len(batch))
            self._metrics.maybe_flush(self.core)

    def sample_columns_wire(self, request: bytes) -> bytes:
        """`sample_columns` as bytes in, bytes out (`TeacherClient` refills through this).

        In: the pickled ``(curriculum, student, n, peer, reset_peer)``; out: the pickled `TaskBatch`.

        SPEEDUP: Ray serialises each argument and result of a call on its own, through
        cloudpickle for anything but plain bytes. Measured here (one local Ray, 2 cores), a
        reply of a pickled 1-task batch came back ~100 us faster than the same `TaskBatch`
        returned as an object (~550 vs ~650 us a call), and four separate arguments cost
        ~10 % of a batch-1 round trip over one. Pickling here and in the client costs ~5 us
        each. Same trust as any Ray call: Ray itself unpickles every argument and result.
        """
        _, refill = unpack_request(SAMPLE, request)
        assert refill is not None
        return pickle.dumps(self.sample_columns(*refill), protocol=5)

    def report_wire(self, request: bytes) -> int:
        """`report` with the pickled ``(curriculum, batch)`` as its one argument (see `sample_columns_wire`)."""
        report, _ = unpack_request(REPORT, request)
        assert report is not None
        return self.report(*report)

    def exchange_wire(self, request: bytes) -> tuple[int | Exception, bytes]:
        """A report and a refill in one call: `report_wire`, then `sample_columns_wire`.

        In: the pickled ``(curriculum, batch, student, n, peer, reset_peer)``. Call it with
        ``.options(num_returns=2)``: the two results are the report's accepted count and
        the pickled `TaskBatch`, as `report_wire` and `sample_columns_wire` return them, so
        a client waits on each half where it waited on the separate calls.

        The outcomes go first, so the tasks are drawn from a teacher that has seen them.
        A report that raises (a bad batch) does not cost the refill: its exception is
        returned as the first result, for the client to raise where a failed `report`
        would have raised.

        SPEEDUP: a `TeacherClient` sends its outbox with each refill. Each Ray call costs
        ~0.6 ms of service CPU and ~0.5 ms of client CPU here whatever it carries, so
        one call instead of two raised what one service serves in the benchmark's
        sample-and-report pattern from ~340k to ~460-540k episodes/s with the random
        teacher (2 cores).
        """
        report, refill = unpack_request(EXCHANGE, request)
        assert report is not None and refill is not None
        accepted: int | Exception
        try:
            accepted = self.report(*report)
        except Exception as e:  # noqa: BLE001 - handed to the client, which raises it
            accepted = e
        return accepted, pickle.dumps(self.sample_columns(*refill), protocol=5)

    def wire_address(self) -> dict | None:
        """Where clients reach the hot calls by socket: ``{"host", "port", "secret", "node_id"}``.

        ``None`` where the socket is off (``wire_host=None``). Starts the server on the
        first call. The secret goes only to callers that can call this actor (Ray's own
        authentication); ``node_id`` lets a client on another node see that a loopback
        address is not for it.
        """
        if self._wire_host is None:
            return None
        import ray

        with self._wire_lock:
            if self._wire is None or not self._wire.alive:  # a thread that died is replaced
                if self._wire is not None:
                    self._wire.close()
                self._wire_secret = new_secret()
                self._wire = WireServer(
                    {
                        SAMPLE: self.sample_columns_wire,
                        REPORT: lambda body: pickle.dumps(self.report_wire(body), protocol=5),
                        EXCHANGE: lambda body: pickle.dumps(self.exchange_wire(body), protocol=5),
                    },
                    self._wire_secret,
                    host=self._wire_host,
                    threads=self._wire_threads,
                    wave_handler=self._serve_wave,
                )
        host = self._wire_host
        if host in ("0.0.0.0", "::", ""):
            host = ray.util.get_node_ip_address()
        return {
            "host": host,
            "port": self._wire.port,
            "secret": self._wire_secret,
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def known_tasks(self, curriculum: str, student: str = "default") -> list[dict]:
        """`TeacherServiceCore.known_tasks`, as ``Task.to_dict()`` rows (evaluation sweeps)."""
        return [t.to_dict() for t in self.core.known_tasks(curriculum, student)]

    def control(self, curriculum: str, student: str, method: str, kwargs: dict | None = None) -> Any:
        """`TeacherServiceCore.control` (a teacher's whitelisted ``CONTROLS`` method)."""
        return self.core.control(curriculum, student, method, kwargs)

    def report(self, curriculum: str, batch: OutcomeBatch) -> int:
        """`TeacherServiceCore.report`, counted in the exported metrics."""
        accepted = self.core.report(curriculum, batch)
        self._count_outcomes(curriculum, batch, accepted)
        return accepted

    def _count_outcomes(self, curriculum: str, batch: OutcomeBatch, accepted: int) -> None:
        if self._metrics is not None:
            self._metrics.outcomes(curriculum, accepted, len(batch) - accepted)
            self._metrics.maybe_flush(self.core)

    def _serve_wave(self, requests: list[tuple[int, bytes]]) -> list[bytes | BaseException]:
        """Several clients' socket requests read together (`WireServer`'s wave handler).

        The reports among them (``REPORT`` and the report half of ``EXCHANGE``) go in first,
        as one update per curriculum (`TeacherServiceCore.report_many`); then the refills
        (``SAMPLE`` and the refill half of ``EXCHANGE``), one draw per curriculum and student
        sliced in order (`TeacherServiceCore.sample_columns_many`), from teachers that have
        seen every report of the wave; each reply is the one its own handler would make.
        Each request comes from another client, so any order among them is one they could
        have arrived in.

        SPEEDUP: with 1,000 env hosts each flushing a few outcomes and refilling a few tasks
        per call, the service paid a dedup pass, a teacher update, a draw and two event-log
        lines per call; a serving thread that finds several calls waiting now pays them once.
        """
        # Each request unpacked as its own handler unpacks it: (report or None, refill or None).
        parsed: list[tuple[ReportRequest | None, RefillRequest | None] | BaseException] = []
        for op, body in requests:
            try:
                parsed.append(unpack_request(op, body))
            except Exception as e:  # noqa: BLE001 - that caller's error
                parsed.append(e)
        fine = [p for p in parsed if not isinstance(p, BaseException)]
        accepted_all = iter(self.core.report_many([report for report, _ in fine if report is not None]))
        refills = [refill for _, refill in fine if refill is not None]
        drawn = iter(self.core.sample_columns_many(refills))  # after every report of the wave
        out: list[bytes | BaseException] = []
        for item in parsed:
            if isinstance(item, BaseException):
                out.append(item)
                continue
            report, refill = item
            accepted: int | BaseException | None = None
            if report is not None:
                accepted = next(accepted_all)
                if isinstance(accepted, int):
                    self._count_outcomes(report[0], report[1], accepted)
            if refill is None:  # REPORT
                out.append(accepted if isinstance(accepted, BaseException) else pickle.dumps(accepted, protocol=5))
                continue
            tasks = next(drawn)
            if isinstance(tasks, BaseException):  # the refill failed: the whole request fails, as alone
                out.append(tasks)
                continue
            self._count_tasks(refill[0], refill[1], tasks)
            if report is None:  # SAMPLE
                out.append(pickle.dumps(tasks, protocol=5))
            else:  # EXCHANGE: a refused report is the first result, the refill still comes (`exchange_wire`)
                out.append(pickle.dumps((accepted, pickle.dumps(tasks, protocol=5)), protocol=5))
        return out

    def snapshot(self) -> dict:
        """The core's snapshot plus ``metrics`` (whether exported, how many pushes)."""
        snap = self.core.snapshot()
        if self._metrics is not None:
            self._metrics.flush(self.core, snap)
        snap["metrics"] = {
            "enabled": self._metrics is not None,
            "pushes": 0 if self._metrics is None else self._metrics.pushes,
        }
        wire = self._wire
        snap["wire"] = (
            None
            if wire is None
            else {
                "connections": wire.connections,
                "requests": wire.requests,
                "waves": wire.waves,  # waves of 2+ clients' requests served together
                "wave_requests": wire.wave_requests,
            }
        )
        return snap

    def checkpoint(self, directory: str | None = None) -> str:
        """`TeacherServiceCore.checkpoint`."""
        return self.core.checkpoint(directory)

    def views(self) -> dict:
        """The teachers' dashboard views (`TeacherServiceCore.views`)."""
        return self.core.views()

    def checkpoint_info(self, directory: str | None = None) -> dict:
        """`checkpoint`, returning ``{"path", "version", "log_offset"}`` (what a checkpoint set records)."""
        path = self.core.checkpoint(directory)
        return {"path": path, "version": self.core.version, "log_offset": self.core.last_checkpoint_offset}

    def ping(self) -> float:
        """The actor's clock (``time.time()``): a cheap liveness and round-trip probe."""
        return time.time()

    def close(self) -> None:
        """Stop the socket, push metrics, close the core (event log, teacher workers), undo the thread pin."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None
        if self._metrics is not None:
            self._metrics.flush(self.core)
        self.core.close()
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None


def start_service(
    name: str = DEFAULT_SERVICE_NAME,
    namespace: str | None = None,
    *,
    detached: bool = False,
    max_concurrency: int = 1,
    num_cpus: float = 0,
    max_restarts: int = 0,
    actor_options: dict | None = None,
    **service_kwargs: Any,
) -> Any:
    """Create the named service actor, or connect to it if it exists (``get_if_exists``).

    Args:
        name: the actor's Ray name (clients find it with `get_service`).
        namespace: the Ray namespace of that name (``None``: the job's own).
        detached: outlive the driver (clusters, ``ray job submit`` runs that resume).
        max_concurrency: threads serving calls; see `TeacherServiceActor` (default 1).
        num_cpus: CPUs reserved for scheduling; 0 so the service never keeps env
            workers from being placed on a small machine.
        max_restarts: Ray restarts of a dead actor; combine with ``resume=True`` so a
            restart restores from checkpoint + log.
        actor_options: extra ``.options(...)`` (resources, scheduling_strategy, ...).
        **service_kwargs: `TeacherServiceActor` arguments (event_log, checkpoint_dir,
            resume, curricula, metrics, and `TeacherServiceCore` options).

    If the actor already exists, ``service_kwargs`` are ignored (Ray returns it as is).
    """
    import ray

    actor_opts: dict[str, Any] = {
        "name": name,
        "get_if_exists": True,
        "max_concurrency": int(max_concurrency),
        "num_cpus": num_cpus,
        "max_restarts": int(max_restarts),
    }
    if namespace is not None:
        actor_opts["namespace"] = namespace
    service_kwargs.setdefault("wire_threads", int(max_concurrency))  # the socket serves as many calls at once
    if detached:
        actor_opts["lifetime"] = "detached"
    if max_restarts:
        actor_opts["max_task_retries"] = 0  # clients resend failed reports themselves (dedup makes it safe)
    actor_opts.update(actor_options or {})
    for key in ("event_log", "checkpoint_dir"):
        if service_kwargs.get(key) is not None:
            service_kwargs[key] = str(Path(service_kwargs[key]).resolve())
    return ray.remote(TeacherServiceActor).options(**actor_opts).remote(**service_kwargs)


def get_service(name: str = DEFAULT_SERVICE_NAME, namespace: str | None = None) -> Any:
    """The handle of a running service actor (raises `ServiceError` naming it if absent)."""
    import ray

    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        raise ServiceError(
            f"no teacher service named {name!r} in namespace {namespace!r}; start one with start_service()"
        ) from None
