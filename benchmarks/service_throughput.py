"""Teacher-service throughput: tasks/s and outcomes/s through the Ray actor, with baselines.

How to run (from the repository root)::

    .venv/bin/python benchmarks/service_throughput.py --quick                  # ~1 min
    .venv/bin/python benchmarks/service_throughput.py --json service.json      # ~3 min
    .venv/bin/python benchmarks/service_throughput.py --quick --space discrete # Procgen-like levels

What it measures, for batch sizes 1, 64 and 1,024 (one local Ray, ``num_cpus=2``):

* ``tasks/s``: the driver calls ``sample(curriculum, student, b)`` with up to 4 calls
  in flight (as several env hosts refilling at once would) and decodes every reply into
  ``Task`` values. ``smp p50``/``smp p99``: round trip + decode of single calls, one at a
  time (what one `TeacherClient` refill waits).
* ``outcomes/s``: the driver encodes ``b`` prepared ``Outcome`` values and sends
  ``report``, up to 4 calls in flight (a client's outbox); ``rep p99`` from a separate
  one-at-a-time loop.

``--space`` picks the task space: ``box`` (default, 2-d Stump Tracks), ``discrete``
(4,096 Procgen-like levels) or ``text`` (4,096 short task texts). For discrete and text
spaces every Ray/in-process caller passes a ``peer`` token and decodes with its own
`TaskTable`, as `TeacherClient` does, so only contents the caller lacks travel (and the
logged configuration also writes each batch's self-contained form to the event log).

Configurations, measured in the same run, interleaved rep by rep (so load drift on a
shared machine hits all of them alike), in a seeded shuffled order per rep and batch size
(until 2026-12-07 a rotation, which kept every row behind the same neighbour: ``columns
box`` always ran after the object-path rows and read 20-40 % below identical rows). The
table shows the median over reps and the best rep (least disturbed by other load); ratios
are medians of per-rep ratios.

* ``actor+log``: the service as a run uses it: compact codec, event log on, metrics on.
* ``actor``: the same without the event log.
* ``naive``: a plain actor that returns ``list[Task]`` from the teacher and takes
  ``list[Outcome]`` (what Ray does without the codec). Baseline for the codec.
* ``in-process``: `TeacherServiceCore` called directly, no Ray (the floor: teacher +
  codec cost). Baseline for the actor overhead.
* ``columns box`` / ``columns discrete`` / ``columns alp_gmm``: the array path a
  `TeacherClient` takes (``sample_columns``: ids and parameters as arrays, no ``Task``
  built in the service), on the logged actor, with the random teacher on a 2-d Box and on
  4,096 levels, and ALP-GMM (fast mode) on the Box, by default and with
  ``refit_coalesce`` (``columns alp_gmm coalesce``: reports never wait for a fit), with
  ``refit_lag: 2`` (``columns alp_gmm lag 2``: a report's fit queues behind the previous
  one and goes live one report later; still reproducible; JSON ``alpgmm_lag2_*``), and by
  default on a second logged service with 4 request threads (``columns alp_gmm 4
  threads``: reports that queue up go in as one update, `openended.runtime.report_queue`;
  JSON ``alpgmm_threads4_*``). A reply is fetched, not decoded into
  ``Task`` values (a client builds one per ``next_task``, spread over the env hosts), and
  outcome batches are encoded before the clock starts (each client encodes its own
  outbox): what is measured is what one service takes. Discrete and ALP-GMM at 1,024 only.
  ALP-GMM's outcomes name freshly sampled tasks (a continuous teacher's tasks are never
  played twice), sampled 16 reports ahead off the clock, so its issued-task table stays
  at its default size.
* ``mixed box`` / ``mixed alp_gmm``: the call pattern of env hosts in a run, samples and
  reports interleaved: each call pair samples 1,024 tasks and reports 1,024 outcomes of
  tasks sampled one chunk (``MIXED_CHUNK`` pairs) earlier, up to 4 calls in flight, on
  curricula of their own (random teacher, ALP-GMM default). Reported as episodes/s (one
  sampled and one reported task each), JSON ``mixed_*_episodes_per_s_b1024``; no target:
  with both kinds of call sharing one actor it lands near ``1 / (1/tasks + 1/outcomes)``.
* ``exchange box`` / ``exchange alp_gmm``: the same pattern with each pair as one
  ``exchange_wire`` call (report, then sample), as a `TeacherClient` sends its outbox with
  its refills; JSON ``exchange_*_episodes_per_s_b1024`` and, paired per rep against the
  two-call rows, ``ratios.exchange_over_mixed_box`` / ``ratios.exchange_over_mixed_alpgmm``.
* ``columns box named ids`` / ``info dicts`` / ``info columns``: ``columns box`` at 1,024
  with outcomes of another form (`OUTCOME_FORMS`): episode ids as env pools wrote them
  until 2026-12-07 (``"<pool>-<env>-<n>"`` strings: a list column, a Python set, JSON in
  the event log), and ``info={"terminated": ...}`` on every outcome (what env hosts send)
  held as a list of dicts (until 2026-12-07) or as `InfoColumns`. Paired per rep:
  ``ratios.canonical_over_named_ids_outcomes_b1024`` (against ``columns box``) and
  ``ratios.info_columns_over_dicts_outcomes_b1024``.
* ``in-process columns``: the same path without Ray, event log on (its floor).
* ``wire box`` / ``wire discrete`` / ``wire alp_gmm`` / ``wire alp_gmm coalesce`` /
  ``wire alp_gmm 4 clients`` / ``wire alp_gmm 4 threads`` / ``wire exchange box``: the
  ``columns`` rows' requests, byte for byte, over the service's socket
  (`openended.runtime.wire`) instead of Ray calls, on curricula of their own (the coalesce
  row: ``refit_coalesce``, its fits in the background at a lower CPU priority; the 4
  clients row: four connections round-robin to the one-thread logged service, as four
  clients, whose reports its thread applies together when it finds them waiting; the 4
  threads row: the same to the 4-thread service); JSON ``wire_*`` keys, paired ratios
  ``ratios.wire_over_ray_calls_*`` and ``wire_b1_over_plain_actor`` (ABBA batch-1 pairs against ``plain actor``).
* ``plain actor``: a Ray actor whose ``sample(n)`` returns the bytes of a Box batch
  (``n`` uint64 ids, an ``(n, 2)`` float array) and does nothing else: at batch 1 "a
  plain Ray actor method call", at 1,024 the ceiling of any one-actor service here.

Plus two rows through a real `TeacherClient` (``next_task`` + ``report`` per episode):
its own overhead per episode (no env work, large buffer) and, with default settings and
1 ms episodes, whether the buffer hides the service (``stalls`` = 0); and one ``alp_gmm``
row at batch 1,024 when ``openended.teachers.gmm.alp_gmm`` imports.

Results to expect (2 shared cores): ``actor+log`` >= 200,000 tasks/s and outcomes/s at
batch 1,024, p99 < 5 ms at batch 64; ``actor`` vs ``naive`` ~1.5-3x at batch 1,024.

Output: the table and, with ``--json PATH``, ``{"tasks_per_s_b1024", "outcomes_per_s_b1024",
"p99_ms_b64", "columns_tasks_per_s_b1024", "columns_outcomes_per_s_b1024",
"discrete_tasks_per_s_b1024", "discrete_outcomes_per_s_b1024", "alpgmm_tasks_per_s_b1024",
"alpgmm_outcomes_per_s_b1024", "b1_over_plain_actor", "targets", "ratios": {...},
"rows": [...], "config": {...}}``. ``tasks_per_s_b1024`` / ``outcomes_per_s_b1024`` stay
the ``actor+log`` object path (every reply decoded into ``Task`` values), comparable with
earlier runs; the ``columns_*``, ``discrete_*`` and ``alpgmm_*`` keys are the array path;
``mixed_box_episodes_per_s_b1024`` / ``mixed_alpgmm_episodes_per_s_b1024`` the mixed rows
(with ``mixed_alpgmm_outcomes_learned`` and ``mixed_alpgmm_unknown_task_outcomes``), and
``exchange_*`` the same as one call per pair;
``b1_over_plain_actor`` is the median over back-to-back pairs (`b1_pairs`, ABBA order) of
(``columns box`` calls/s at batch 1) / (``plain actor`` calls/s), so >= 1 means no slower
than a plain actor call; ``ratios.b1_over_plain_actor_reps`` is the same ratio paired by rep
(what the key was until 2026-12-07, when reps ran in a fixed rotation).
``service_cpu_us_per_1024``: CPU time the in-process core spends per 1,024-row call
(object `sample`, `sample_columns`, `report` on the array path; Box and Discrete), which
other load on a shared machine hardly moves; ``report_columns_<form>_thread``: a report's
CPU by what its outcomes carry (`report_cpu_by_outcome_form`; ratios
``named_over_canonical_episode_ids_report_cpu``, ``info_dicts_over_columns_report_cpu``).
The load average at start and end and the CPU (``cpu_model``, ``cpu_vector_isa``: figures
from an AVX2 and an AVX-512 machine differ about 2x for the same code) are in ``config``.
Since 2026-12-07 this driver does not collect garbage inside timed loops (`DriverGC`;
``--driver-gc`` measures as before); ``config.driver_gc`` counts full collections that
still ran there.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import json
import os
import pickle
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray
from cpu_meter import CpuMeter

from openended.hostinfo import cpu_facts
from openended.runtime.client import TeacherClient
from openended.runtime.codec import OutcomeBatch, TaskTable, decode_tasks, encode_outcomes
from openended.runtime.core import TeacherServiceCore
from openended.runtime.service import start_service
from openended.runtime.wire import WireChannel, hot_method
from openended.tasks import Box, Discrete, Outcome, Task, TaskSpace, TextSpace
from openended.teachers import compiled

NS = "openended_bench"
SPACES: dict[str, TaskSpace] = {
    "box": Box([0.0, 0.0], [1.0, 1.0], names=["stump_height", "spacing"]),
    "discrete": Discrete(4096, name="levels"),
    "text": TextSpace([f"reach checkpoint {i} without touching lava" for i in range(4096)]),
}
BATCHES = (1, 64, 1024)
# ALP-GMM's opt-in for throughput over reproducibility: `update` never waits for a fit.
ALP_GMM_COALESCE = {"refit_swap": "asap", "refit_coalesce": True}
# ALP-GMM's reproducible opt-in: two fits in flight, each live at the 2nd update after it.
ALP_GMM_LAG2 = {"refit_lag": 2}
MAX_IN_FLIGHT = 4
SERVICE_THREADS = 4  # the threaded service's max_concurrency (resources.service_threads)
FRESH_CHUNK = 16  # fresh-task reports sampled ahead at a time (16 x 1,024 < the default 32,768 tracked)
MIXED_CHUNK = 8  # mixed loop: call pairs per chunk (8 x 1,024 reported + 8 x 1,024 sampled ahead, well under 32,768)


class DriverGC:
    """Whether this process collects garbage while a loop is on the clock, and how much it did there.

    Why off by default: this driver stands in for every client at once, so its heap holds
    the outcomes and tasks of all of them (~200k objects); one full collection of it took
    ~80 ms here, longer than a whole 40-call loop at batch 1,024, and in a quick run 23 of
    them landed inside timed loops (1.9 s). The service idled meanwhile, so such a loop
    measured the driver, not the service. Real clients are processes of their own with
    small heaps, whose pauses other clients' calls fill. Off, collections run between
    loops (the loops themselves allocate little). ``--driver-gc`` keeps them on, as every
    run before 2026-12-07 did; ``collections`` / ``seconds`` count the full collections
    that ran inside timed loops either way (JSON ``config.driver_gc``).
    """

    def __init__(self) -> None:
        self.enabled_in_loops = False
        self.collections = 0
        self.seconds = 0.0
        self._inside = False
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict) -> None:
        if info["generation"] != 2 or not self._inside:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections += 1
            self.seconds += time.perf_counter() - self._started

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """The body is on the clock."""
        was_enabled = gc.isenabled()
        if not self.enabled_in_loops:
            gc.disable()
        self._inside = True
        try:
            yield
        finally:
            self._inside = False
            if was_enabled:
                gc.enable()


DRIVER_GC = DriverGC()
CPU_METER = CpuMeter()  # idle unless a benchmark names processes to watch (`alp_gmm_service.py` does)


@contextlib.contextmanager
def timed_region() -> Iterator[None]:
    """The body is on the clock: no driver GC there (`DriverGC`), its CPU counted (`CPU_METER`)."""
    with DRIVER_GC.timed(), CPU_METER.timed():
        yield


def fresh_chunks(calls: int) -> list[int]:
    """``calls`` reports as chunks of at most FRESH_CHUNK, each sampled just before it is reported."""
    return [min(FRESH_CHUNK, calls - done) for done in range(0, calls, FRESH_CHUNK)]


class NaiveTeacherActor:
    """Baseline: the teacher behind a plain actor, Python objects in and out."""

    def __init__(self, space: dict, teacher: str = "random") -> None:
        from openended.tasks import space_from_dict
        from openended.teachers import make_teacher

        self.teacher = make_teacher(teacher, space_from_dict(space), seed=0)

    def sample(self, curriculum: str, student: str, n: int) -> list[Task]:
        return self.teacher.sample(n, student=student)

    def report(self, curriculum: str, outcomes: list[Outcome]) -> int:
        self.teacher.update(outcomes)
        return len(outcomes)


_episode = itertools.count()
OUTCOME_FORMS = ("plain", "named_ids", "info_dicts", "info_columns")
"""What benchmark outcomes carry (`make_outcomes`); ``plain`` is what every row but the form rows uses."""


def encoder(form: str) -> Callable[[list[Outcome]], OutcomeBatch]:
    """How a client encodes outcomes of ``form``: ``info_dicts`` keeps the infos a list of
    dicts, as every batch held them until 2026-12-07 (now `InfoColumns` where they are uniform)."""
    if form != "info_dicts":
        return encode_outcomes

    def encode(outcomes: list[Outcome]) -> OutcomeBatch:
        batch = encode_outcomes(outcomes)
        if batch.infos is not None:
            batch.infos = list(batch.infos)
        return batch

    return encode


def make_outcomes(
    tasks: list[Task], b: int, calls: int, fresh: bool = False, form: str = "plain"
) -> list[list[Outcome]]:
    """``calls`` batches of ``b`` outcomes for known tasks, each with a unique episode id.

    ``fresh``: every outcome names its own task (``tasks`` holds ``b * calls`` of them), as
    when each episode plays a newly sampled task; otherwise the ``tasks`` are reused.
    ``form`` (`OUTCOME_FORMS`): ``"named_ids"``: ids as env pools wrote them until
    2026-12-07 (``"<pool>-<env>-<n>"``, 8 envs) instead of 16 hex digits; ``"info_*"``:
    each outcome carries ``info={"terminated": ...}``, as every env host's does.
    """
    out = []
    for _ in range(calls):
        batch = []
        for j in range(b):
            t = tasks[len(out) * b + j] if fresh else tasks[(j * 7 + len(out)) % len(tasks)]
            e = next(_episode)
            batch.append(
                Outcome(
                    t.id,
                    float(e % 13) / 13.0,
                    success=e % 3 == 0,
                    length=100,
                    student_id="bench",
                    t=1.7e9 + e,
                    episode_id=f"pool0-5f3a9c1e-{e % 8}-{e // 8}" if form == "named_ids" else f"{e:016x}",
                    info={"terminated": e % 5 == 0} if form.startswith("info") else None,
                )
            )
        out.append(batch)
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else float("nan")


class Target:
    """One configuration: how to sample and how to report, sync or pipelined."""

    def __init__(
        self,
        name: str,
        sample_async: Callable[[int], Any],
        unpack: Callable[[Any], list[Task]],
        report_async: Callable[[list[Outcome]], Any],
        wait: Callable[[list[Any]], None],
        resolve: Callable[[Any], Any],
        *,
        batches: tuple[int, ...] = BATCHES,
        prepare: Callable[[list[Outcome]], Any] = lambda outs: outs,
        tasks: Callable[[Any], list[Task]] | None = None,
        fresh_tasks: bool = False,
        exchange_async: Callable[[Any, int], Any] | None = None,
        form: str = "plain",
    ) -> None:
        self.name = name
        self.sample_async = sample_async
        self.unpack = unpack
        self.report_async = report_async
        self.wait = wait
        self.resolve = resolve
        self.batches = batches
        self.prepare = prepare  # outcome lists -> what report_async sends (done before the clock starts)
        self.to_tasks = tasks or unpack
        # Outcomes name a task of their own each (a continuous teacher's real pattern: an
        # ALP-GMM task is never played twice), not 1,024 tasks reported over and over.
        self.fresh_tasks = fresh_tasks
        self.exchange_async = exchange_async  # (encoded outcomes, n) -> the ref of the n tasks, one call
        self.form = form  # what the outcomes carry (make_outcomes, OUTCOME_FORMS)

    def outcomes_for(self, b: int, calls: int) -> list[list[Outcome]]:
        """Outcome batches naming tasks this teacher issued just now (still in its table)."""
        if self.fresh_tasks:
            return make_outcomes(self.pool(b * calls), b, calls, fresh=True, form=self.form)
        return make_outcomes(self.pool(1024), b, calls, form=self.form)

    def report_throughput(self, b: int, calls: int) -> float:
        """Outcomes/s of ``calls`` pipelined reports of ``b`` outcomes (`outcomes_loop`).

        With ``fresh_tasks`` the tasks are sampled ``FRESH_CHUNK`` reports ahead, off the
        clock, as clients do: the teacher's table of issued tasks then holds what its
        default ``max_tracked_tasks`` holds, not every task of the loop (sampling all
        ``calls * b`` first needed a table ~15x the default, whose lookups miss the caches).
        """
        if not self.fresh_tasks:
            return self.outcomes_loop(self.outcomes_for(b, calls))
        seconds = sum(self.report_seconds(self.outcomes_for(b, k)) for k in fresh_chunks(calls))
        return b * calls / seconds

    def mixed_throughput(self, b: int, calls: int, exchange: bool = False) -> float:
        """Episodes/s when each client call pair samples ``b`` tasks and reports ``b`` outcomes.

        What env hosts send a service in a run: refills and outbox flushes interleaved,
        up to MAX_IN_FLIGHT calls outstanding. Each report names tasks sampled by the
        previous chunk's calls (fresh tasks, as `report_throughput`); the replies are turned
        into the next chunk's outcomes and encoded between chunks, off the clock (each
        client does that for its own episodes). One episode = one task + one outcome.
        ``exchange``: each pair is one call instead (``exchange_wire``, as a `TeacherClient`
        sends its outbox with its refills).
        """
        chunk = MIXED_CHUNK
        outs = self.outcomes_for(b, min(chunk, calls))
        seconds, done = 0.0, 0
        while done < calls:
            k = min(chunk, calls - done, len(outs))
            batches = [self.prepare(o) for o in outs[:k]]
            inflight: list[Any] = []
            replies: list[Any] = []
            with timed_region():
                t0 = time.perf_counter()
                for batch in batches:
                    if exchange:
                        assert self.exchange_async is not None
                        replies.append(self.admit(inflight, functools.partial(self.exchange_async, batch, b)))
                        continue
                    replies.append(self.admit(inflight, functools.partial(self.sample_async, b)))
                    self.admit(inflight, functools.partial(self.report_async, batch))
                self.wait(inflight)
                seconds += time.perf_counter() - t0
            done += k
            pool = [t for ref in replies for t in self.to_tasks(ref)]
            outs = make_outcomes(pool, b, k, fresh=True)
        return b * calls / seconds

    def sample(self, b: int) -> Any:
        return self.unpack(self.sample_async(b))

    def pool(self, b: int) -> list[Task]:
        """``b`` tasks as `Task` values (what the outcomes of the report loops name)."""
        return self.to_tasks(self.sample_async(b))

    def tasks_latency(self, b: int, calls: int) -> list[float]:
        """One call at a time (a single client's refill): round trip + decode."""
        lat = []
        with timed_region():
            for _ in range(calls):
                c0 = time.perf_counter()
                tasks = self.sample(b)
                lat.append(time.perf_counter() - c0)
                assert len(tasks) == b
        return lat

    def tasks_loop(self, b: int, calls: int) -> float:
        """Up to MAX_IN_FLIGHT calls outstanding (several clients refilling), every reply decoded."""
        inflight: list[Any] = []
        with timed_region():
            t0 = time.perf_counter()
            for _ in range(calls):
                if len(inflight) >= MAX_IN_FLIGHT:
                    assert len(self.unpack(inflight.pop(0))) == b
                inflight.append(self.sample_async(b))
            for ref in inflight:
                assert len(self.unpack(ref)) == b
            return b * calls / (time.perf_counter() - t0)

    def outcomes_loop(self, batches: list[list[Outcome]]) -> float:
        """Outcomes/s of `report_seconds`."""
        return sum(map(len, batches)) / self.report_seconds(batches)

    def report_seconds(self, batches: list[list[Outcome]]) -> float:
        """Seconds to report ``batches`` with up to MAX_IN_FLIGHT calls outstanding (encoding off the clock)."""
        batches = [self.prepare(outs) for outs in batches]
        inflight: list[Any] = []
        with timed_region():
            t0 = time.perf_counter()
            for outs in batches:
                self.admit(inflight, functools.partial(self.report_async, outs))
            self.wait(inflight)
            return time.perf_counter() - t0

    def admit(self, inflight: list[Any], call: Callable[[], Any]) -> Any:
        """Make ``call`` once fewer than MAX_IN_FLIGHT calls are outstanding (the oldest waited for)."""
        if len(inflight) >= MAX_IN_FLIGHT:
            self.wait(inflight[:1])
            inflight.pop(0)
        inflight.append(call())
        return inflight[-1]

    def report_latency(self, batches: list[list[Outcome]]) -> list[float]:
        lat = []
        with timed_region():
            for outs in map(self.prepare, batches):
                c0 = time.perf_counter()
                self.resolve(self.report_async(outs))
                lat.append(time.perf_counter() - c0)
        return lat


def actor_target(name: str, handle: Any, curriculum: str, cached: bool = False) -> Target:
    """``cached``: send a peer token and decode with one `TaskTable` (discrete/text, as a client does)."""
    peer, table = (f"bench-{name}", TaskTable()) if cached else (None, None)
    return Target(
        name,
        sample_async=lambda b: handle.sample.remote(curriculum, "bench", b, peer),
        unpack=lambda ref: decode_tasks(ray.get(ref), table),
        report_async=lambda outs: handle.report.remote(curriculum, encode_outcomes(outs)),
        wait=lambda refs: ray.get(refs),
        resolve=ray.get,
    )


def columns_target(
    name: str,
    handle: Any,
    curriculum: str,
    batches: tuple[int, ...] = BATCHES,
    fresh_tasks: bool = False,
    form: str = "plain",
) -> Target:
    """The array path a `TeacherClient` takes: ``sample_columns``, outcomes sent as encoded columns.

    Calls go through the bytes-in, bytes-out methods a client uses (``sample_columns_wire``,
    ``report_wire``, ``exchange_wire``; the caller pickles and unpickles, inside the clock). A reply is fetched,
    not turned into ``Task`` values: a client builds one ``Task`` per ``next_task`` (one per
    episode, in each env host), not the service. Outcome batches are encoded before the
    clock starts (each client encodes its own outbox). What is measured is what one
    service takes.
    """
    exchange = handle.exchange_wire.options(num_returns=2)
    return Target(
        name,
        sample_async=lambda b: handle.sample_columns_wire.remote(
            pickle.dumps((curriculum, "bench", b, f"bench-{name}", False), protocol=5)
        ),
        unpack=lambda ref: pickle.loads(ray.get(ref)),
        report_async=lambda batch: handle.report_wire.remote(pickle.dumps((curriculum, batch), protocol=5)),
        wait=lambda refs: ray.get(refs),
        resolve=ray.get,
        batches=batches,
        prepare=encoder(form),
        tasks=lambda ref: decode_tasks(pickle.loads(ray.get(ref))),
        fresh_tasks=fresh_tasks,
        form=form,
        exchange_async=lambda batch, b: exchange.remote(
            pickle.dumps((curriculum, batch, "bench", b, f"bench-{name}", False), protocol=5)
        )[1],
    )


def wire_target(
    name: str,
    handle: Any,
    curriculum: str,
    batches: tuple[int, ...] = BATCHES,
    fresh_tasks: bool = False,
    channels: int = 1,
) -> Target:
    """`columns_target` over the service's socket (`openended.runtime.wire`) instead of Ray calls.

    The same request bytes, the same service methods behind them and the same pipelining
    (up to MAX_IN_FLIGHT requests outstanding): what a `TeacherClient` on the service's
    node sends (``wire=True``, its default). ``channels`` > 1: the calls go round-robin
    over that many connections (as many clients), which a service with several threads
    serves at once.
    """
    info = ray.get(handle.wire_address.remote())
    chans = itertools.cycle([WireChannel(info["host"], info["port"], info["secret"]) for _ in range(channels)])
    return Target(
        name,
        sample_async=lambda b: hot_method(next(chans), "sample_columns_wire").remote(
            pickle.dumps((curriculum, "bench", b, f"bench-{name}", False), protocol=5)
        ),
        unpack=lambda ref: pickle.loads(ref.result()),
        report_async=lambda batch: hot_method(next(chans), "report_wire").remote(
            pickle.dumps((curriculum, batch), protocol=5)
        ),
        wait=lambda refs: [ref.result() for ref in refs],
        resolve=lambda ref: ref.result(),
        batches=batches,
        prepare=encode_outcomes,
        tasks=lambda ref: decode_tasks(pickle.loads(ref.result())),
        fresh_tasks=fresh_tasks,
        exchange_async=lambda batch, b: hot_method(next(chans), "exchange_wire").remote(
            pickle.dumps((curriculum, batch, "bench", b, f"bench-{name}", False), protocol=5)
        )[1],
    )


class PlainActor:
    """Ray's own ceiling: an actor that returns a Box batch's payload without doing anything.

    ``sample(n)`` returns ``n`` uint64 ids and an ``(n, 2)`` float64 array (the bytes a
    ``"box"`` `TaskBatch` carries); ``report`` takes a list and returns its length. At
    batch 1 this is "a plain Ray actor method call"; at 1,024 the most any one-actor
    service can deliver here.
    """

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(n, dtype=np.uint64), np.zeros((n, 2))

    def report(self, outcomes: list[Any]) -> int:
        return len(outcomes)


def plain_target(handle: Any) -> Target:
    return Target(
        "plain actor",
        sample_async=lambda b: handle.sample.remote(b),
        unpack=lambda ref: ray.get(ref)[0],
        report_async=lambda outs: handle.report.remote(outs),
        wait=lambda refs: ray.get(refs),
        resolve=ray.get,
        batches=(1, 1024),
        prepare=lambda outs: [o.episode_return for o in outs],
        tasks=lambda ref: [Task(f"{i:016x}") for i in range(len(ray.get(ref)[0]))],
    )


def naive_target(handle: Any) -> Target:
    return Target(
        "naive",
        sample_async=lambda b: handle.sample.remote("walk", "bench", b),
        unpack=ray.get,
        report_async=lambda outs: handle.report.remote("walk", outs),
        wait=lambda refs: ray.get(refs),
        resolve=ray.get,
    )


def inprocess_target(core: TeacherServiceCore, cached: bool = False) -> Target:
    peer, table = ("bench-in-process", TaskTable()) if cached else (None, None)
    return Target(
        "in-process",
        sample_async=lambda b: core.sample("walk", "bench", b, peer=peer),
        unpack=lambda batch: decode_tasks(batch, table),
        report_async=lambda outs: core.report("walk", encode_outcomes(outs)),
        wait=lambda refs: None,
        resolve=lambda x: x,
    )


def inprocess_columns_target(core: TeacherServiceCore) -> Target:
    """The array path in-process (no Ray), event log on: the floor of `columns_target`."""
    return Target(
        "in-process columns",
        sample_async=lambda b: core.sample_columns("walk", "bench", b),
        unpack=lambda batch: batch,
        report_async=lambda batch: core.report("walk", batch),
        wait=lambda refs: None,
        resolve=lambda x: x,
        batches=(64, 1024),
        prepare=encode_outcomes,
        tasks=decode_tasks,
    )


def service_cpu(tmp: Path, calls: int) -> dict[str, float]:
    """CPU time (``time.process_time``, so other load on the machine hardly moves it) of the
    in-process core per 1,024-row call, event log on: what the service itself spends.

    ``sample_objects``: `sample` (builds ``Task`` values); ``sample_columns``: the array
    path (Box; ``_discrete``: 4,096 levels); ``report_columns``: `report` of a prebuilt
    `OutcomeBatch` into the random teacher's ``update_arrays``; ``report_columns_alpgmm``:
    the same into fast ALP-GMM with fresh tasks, CPU of every thread (the fit thread's
    included) and, ``_caller``, of the calling thread alone (`alpgmm_report_cpu`).
    """
    compiled.warm_up()  # as a service actor does at start: not the one-off kernel loads of the first eviction
    out: dict[str, float] = {}
    for kind in ("box", "discrete"):
        core = TeacherServiceCore(event_log=str(tmp / f"cpu_{kind}" / "events.jsonl"))
        core.add_curriculum("walk", "random", SPACES[kind], config={"seed": 0})
        suffix = "" if kind == "box" else "_discrete"
        for name, fn in (("sample_objects", core.sample), ("sample_columns", core.sample_columns)):
            for _ in range(8):
                fn("walk", "cpu", 1024)
            c0 = time.process_time()
            for _ in range(calls):
                fn("walk", "cpu", 1024)
            out[name + suffix] = (time.process_time() - c0) / calls * 1e6
        pool = decode_tasks(core.sample_columns("walk", "cpu", 1024))
        batches = [encode_outcomes(outs) for outs in make_outcomes(pool, 1024, calls)]
        c0 = time.process_time()
        for batch in batches:
            core.report("walk", batch)
        out["report_columns" + suffix] = (time.process_time() - c0) / calls * 1e6
        core.close()
    out.update(report_cpu_by_outcome_form(tmp, calls))
    out.update(alpgmm_report_cpu(tmp, calls))
    return out


def report_cpu_by_outcome_form(tmp: Path, calls: int, rounds: int = 5) -> dict[str, float]:
    """The calling thread's CPU per 1,024-outcome report into the random teacher (Box, event
    log on), by what the outcomes carry (`OUTCOME_FORMS`).

    ``plain``: 16-hex-digit episode ids, what a `TeacherClient` assigns (a ``uint64``
    column: de-duplicated in a compiled table, logged as base64), no info: every other row
    of this benchmark. ``named_ids``: ``"<pool>-<env>-<n>"`` strings, what env pools sent
    until 2026-12-07 (a list column, a Python set, a JSON list in the event log).
    ``info_columns`` / ``info_dicts``: plain ids and ``info={"terminated": ...}``, as every
    env host's outcomes carry it, held as `InfoColumns` (since 2026-12-07) or as the list of
    dicts it was before. ``time.thread_time``, so the Ray threads of this process are not
    counted; the forms alternate round by round, and each figure is the median over rounds.
    """
    times: dict[str, list[float]] = {form: [] for form in OUTCOME_FORMS}
    cores: dict[str, TeacherServiceCore] = {}
    pools: dict[str, list[Task]] = {}
    for form in OUTCOME_FORMS:
        cores[form] = core = TeacherServiceCore(event_log=str(tmp / f"form_{form}" / "events.jsonl"))
        core.add_curriculum("walk", "random", SPACES["box"], config={"seed": 0})
        pools[form] = decode_tasks(core.sample_columns("walk", "bench", 1024))  # the student outcomes name
    for r in range(rounds + 1):  # round 0 warms up
        for form, core in cores.items():
            batches = [encoder(form)(o) for o in make_outcomes(pools[form], 1024, calls, form=form)]
            t0 = time.thread_time()
            for batch in batches:
                core.report("walk", batch)
            if r:
                times[form].append((time.thread_time() - t0) / calls * 1e6)
    for core in cores.values():
        core.close()
    return {f"report_columns_{form}_thread": statistics.median(ts) for form, ts in times.items()}


def alpgmm_report_cpu(tmp: Path, calls: int) -> dict[str, float]:
    """CPU per 1,024-outcome report into fast ALP-GMM (fresh tasks, event log on), in-process.

    Process CPU counts the fit thread too (the last fit is drained inside the window);
    the caller's thread CPU alone is what a service actor's request thread spends. With
    the machine's load out of the picture, ``1,024 / max(caller, process - caller)`` is
    what a service with two cores of its own could take.
    """
    core = TeacherServiceCore(event_log=str(tmp / "cpu_alp" / "events.jsonl"))
    core.add_curriculum("alp", "alp_gmm", SPACES["box"], config={"seed": 0})
    teacher = core.teacher("alp", "bench")
    proc = thread = 0.0
    warm_up = [FRESH_CHUNK, FRESH_CHUNK]  # the ALP window filled and the fits in steady state first
    for i, k in enumerate(warm_up + fresh_chunks(calls)):
        pool = decode_tasks(core.sample_columns("alp", "bench", 1024 * k))
        batches = [encode_outcomes(outs) for outs in make_outcomes(pool, 1024, k, fresh=True)]
        teacher.refitter.drain()
        p0, t0 = time.process_time(), time.thread_time()
        for batch in batches:
            core.report("alp", batch)
        teacher.refitter.drain()
        if i >= len(warm_up):
            proc, thread = proc + time.process_time() - p0, thread + time.thread_time() - t0
    core.close()
    return {"report_columns_alpgmm": proc / calls * 1e6, "report_columns_alpgmm_caller": thread / calls * 1e6}


def b1_pairs(box: Target, plain: Target, calls: int, pairs: int) -> list[float]:
    """``box`` over ``plain`` calls/s at batch 1, one ratio per back-to-back pair (ABBA order).

    Why apart from the reps: within a rep the two rows run at shuffled places, seconds
    apart, so load drift between them moves their ratio; adjacent loops see the same load,
    and alternating which goes first cancels a first-or-second bias.
    """
    out = []
    for i in range(pairs):
        order = (box, plain) if i % 2 == 0 else (plain, box)
        rate = {tg.name: tg.tasks_loop(1, calls) for tg in order}
        out.append(rate[box.name] / rate[plain.name])
    return out


def client_rows(handle: Any, episodes: int) -> dict:
    """A real TeacherClient, per episode: ``next_task`` + ``report``.

    ``overhead``: no env work and a large buffer, so the service never lags: the client's
    own cost per episode. ``defaults_1ms``: default settings and 1 ms "episodes": does
    the buffer hide the service (stalls should be 0)?
    """
    out = {}
    for name, kwargs, work_s, n in (
        ("overhead", {"buffer_size": 4096, "low_watermark": 2048}, 0.0, episodes),
        ("defaults_1ms", {}, 0.001, max(500, episodes // 10)),
    ):
        client = TeacherClient(handle, "walk", f"client_{name}", **kwargs)
        client.next_task()  # the first fill blocks; not part of the steady state
        t0 = time.perf_counter()
        for _ in range(n):
            task = client.next_task()
            if work_s:
                time.sleep(work_s)
            client.report(Outcome(task.id, 1.0, success=True, length=100))
        client.flush(wait=True)
        dt = time.perf_counter() - t0
        s = client.stats()
        client.close()
        out[name] = {
            "episodes": n,
            "episodes_per_s": n / dt,
            "us_per_episode": (dt / n - work_s) * 1e6,
            "stalls": s["stalls"],
            "stall_s": s["stall_s"],
            "refills": s["refills"],
            "flushes": s["flushes"],
            "exchanges": s["exchanges"],
            "outcomes_accepted": s["outcomes_accepted"],
        }
    return out


def alp_gmm_row(handle: Any, calls: int) -> dict[str, Any]:
    """One ``alp_gmm`` curriculum (box spaces only) at batch 1,024 through the logged actor."""
    try:
        import openended.teachers.gmm.alp_gmm  # noqa: F401
    except ImportError as e:
        return {"config": "actor+log alp_gmm", "skipped": f"openended.teachers.gmm.alp_gmm does not import: {e}"}
    alp = actor_target("actor+log alp_gmm", handle, "alp")
    tps = alp.tasks_loop(1024, calls)
    lat = alp.tasks_latency(1024, calls // 2)
    pool = alp.sample(1024)  # after the loops: outcomes must name tasks the teacher still tracks
    ops = alp.outcomes_loop(make_outcomes(pool, 1024, calls))
    stats = ray.get(handle.snapshot.remote())["curricula"]["alp"]["students"]["bench"]
    return {
        "config": "actor+log alp_gmm",
        "batch": 1024,
        "tasks_per_s": tps,
        "outcomes_per_s": ops,
        "sample_p50_ms": pct(lat, 50),
        "sample_p99_ms": pct(lat, 99),
        "refits": stats.get("refits"),
        "refit_ms_p50": stats.get("refit_ms_p50"),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and reps (~1 min)")
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 3 quick, 5 full)")
    ap.add_argument("--space", choices=sorted(SPACES), default="box", help="task space kind (default box)")
    ap.add_argument(
        "--driver-gc",
        action="store_true",
        help="let this driver collect garbage inside timed loops, as runs before 2026-12-07 did (see DriverGC)",
    )
    args = ap.parse_args(argv)
    DRIVER_GC.enabled_in_loops = args.driver_gc
    space = SPACES[args.space]
    cached = space.kind != "box"
    reps = args.reps or (3 if args.quick else 5)
    scale = 1 if args.quick else 3
    calls = {1: 200 * scale, 64: 150 * scale, 1024: 40 * scale}

    compiled.warm_up()  # before any service starts: on a checkout without a numba cache they would compile in the reps
    tmp = Path(tempfile.mkdtemp(prefix="ray_oe_bench_", dir="/tmp"))
    t_start = time.time()
    loadavg_start = os.getloadavg()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp / "ray"), namespace=NS, log_to_driver=False)
    try:
        logged = start_service(
            "bench_logged", NS, event_log=str(tmp / "run" / "events.jsonl"), checkpoint_dir=str(tmp / "run" / "ckpt")
        )
        plain = start_service("bench_plain", NS, metrics=False)
        threaded = start_service(
            "bench_threads",
            NS,
            max_concurrency=SERVICE_THREADS,
            event_log=str(tmp / "threads" / "events.jsonl"),
            checkpoint_dir=str(tmp / "threads" / "ckpt"),
        )
        for cur in ("cols_alp", "wire_alp"):
            ray.get(threaded.add_curriculum.remote(cur, "alp_gmm", SPACES["box"].to_dict(), {"seed": 0}))
        naive = ray.remote(NaiveTeacherActor).options(num_cpus=0).remote(space.to_dict())
        for h in (logged, plain):
            ray.get(h.add_curriculum.remote("walk", "random", space.to_dict(), {"seed": 0}))
        # The array path's figures: random on Box and Discrete, ALP-GMM (fast mode), all logged.
        for cur, teacher, sp in (
            ("cols_box", "random", SPACES["box"]),
            *((f"cols_box_{form}", "random", SPACES["box"]) for form in OUTCOME_FORMS[1:]),
            ("cols_discrete", "random", SPACES["discrete"]),
            ("cols_alp", "alp_gmm", SPACES["box"]),
            ("cols_alp_co", "alp_gmm", SPACES["box"]),
            ("cols_alp_lag2", "alp_gmm", SPACES["box"]),
            ("alp", "alp_gmm", SPACES["box"]),
            ("mix_box", "random", SPACES["box"]),
            ("mix_alp", "alp_gmm", SPACES["box"]),
            ("ex_box", "random", SPACES["box"]),
            ("ex_alp", "alp_gmm", SPACES["box"]),
            ("wire_box", "random", SPACES["box"]),
            ("wire_discrete", "random", SPACES["discrete"]),
            ("wire_alp", "alp_gmm", SPACES["box"]),
            ("wire_alp_co", "alp_gmm", SPACES["box"]),
            ("wire_alp_4c", "alp_gmm", SPACES["box"]),
            ("wire_ex_box", "random", SPACES["box"]),
        ):
            # Fresh-task outcomes: sampled FRESH_CHUNK reports ahead, off the clock (Target.report_throughput).
            # ALP_GMM_COALESCE: reports never wait for a running refit (timing-dependent fits).
            extra = {
                "cols_alp_co": ALP_GMM_COALESCE,
                "wire_alp_co": ALP_GMM_COALESCE,
                "cols_alp_lag2": ALP_GMM_LAG2,
            }.get(cur, {})
            ray.get(logged.add_curriculum.remote(cur, teacher, sp.to_dict(), {"seed": 0, **extra}))
        bare = ray.remote(PlainActor).options(num_cpus=0).remote()
        core = TeacherServiceCore()
        core.add_curriculum("walk", "random", space, config={"seed": 0})
        inproc_cols = TeacherServiceCore(event_log=str(tmp / "inproc" / "events.jsonl"))
        inproc_cols.add_curriculum("walk", "random", SPACES["box"], config={"seed": 0})
        targets = [
            actor_target("actor+log", logged, "walk", cached),
            actor_target("actor", plain, "walk", cached),
            naive_target(naive),
            inprocess_target(core, cached),
            columns_target("columns box", logged, "cols_box"),
            *(
                columns_target(f"columns box {form.replace('_', ' ')}", logged, f"cols_box_{form}", (1024,), form=form)
                for form in OUTCOME_FORMS[1:]
            ),
            columns_target("columns discrete", logged, "cols_discrete", batches=(1024,)),
            columns_target("columns alp_gmm", logged, "cols_alp", batches=(1024,), fresh_tasks=True),
            columns_target("columns alp_gmm coalesce", logged, "cols_alp_co", batches=(1024,), fresh_tasks=True),
            columns_target("columns alp_gmm lag 2", logged, "cols_alp_lag2", batches=(1024,), fresh_tasks=True),
            columns_target("columns alp_gmm 4 threads", threaded, "cols_alp", batches=(1024,), fresh_tasks=True),
            inprocess_columns_target(inproc_cols),
            plain_target(bare),
            # The same requests over the service's socket (the hot calls' data plane).
            wire_target("wire box", logged, "wire_box"),
            wire_target("wire discrete", logged, "wire_discrete", batches=(1024,)),
            wire_target("wire alp_gmm", logged, "wire_alp", batches=(1024,), fresh_tasks=True),
            wire_target("wire alp_gmm coalesce", logged, "wire_alp_co", batches=(1024,), fresh_tasks=True),
            wire_target("wire alp_gmm 4 clients", logged, "wire_alp_4c", batches=(1024,), fresh_tasks=True, channels=4),
            wire_target("wire alp_gmm 4 threads", threaded, "wire_alp", batches=(1024,), fresh_tasks=True, channels=4),
        ]
        # Samples and reports interleaved (Target.mixed_throughput), on curricula of their own:
        # as two calls, and as one exchange_wire call per pair.
        mixed = [
            (columns_target(name, logged, cur, batches=(1024,), fresh_tasks=True), name.startswith("exchange"))
            for name, cur in (
                ("mixed box", "mix_box"),
                ("mixed alp_gmm", "mix_alp"),
                ("exchange box", "ex_box"),
                ("exchange alp_gmm", "ex_alp"),
            )
        ]
        mixed.append((wire_target("wire exchange box", logged, "wire_ex_box", (1024,), fresh_tasks=True), True))
        episodes: dict[str, list[float]] = {tg.name: [] for tg, _ in mixed}

        results: dict[tuple[str, int], dict[str, list[float]]] = {}
        for rep in range(reps):
            for b in BATCHES:
                # A seeded shuffle per rep and batch, not a rotation: a rotation keeps each row's
                # neighbours, so a row that always followed the object-path rows always paid
                # for what they left behind (see docs/benchmarks.md, 2026-12-07).
                order = random.Random(f"{rep}-{b}").sample(targets, len(targets))
                for tg in (t for t in order if b in t.batches):
                    r = results.setdefault(
                        (tg.name, b), {"tasks_per_s": [], "outcomes_per_s": [], "lat": [], "rlat": []}
                    )
                    r["tasks_per_s"].append(tg.tasks_loop(b, calls[b]))
                    r["lat"].extend(tg.tasks_latency(b, max(20, calls[b] // 2)))
                    r["outcomes_per_s"].append(tg.report_throughput(b, calls[b]))
                    r["rlat"].extend(tg.report_latency(tg.outcomes_for(b, max(10, calls[b] // 4))))
            for tg, exchange in mixed[rep % len(mixed) :] + mixed[: rep % len(mixed)]:
                episodes[tg.name].append(tg.mixed_throughput(1024, calls[1024], exchange=exchange))
            print(f"  rep {rep + 1}/{reps} done ({time.time() - t_start:.0f} s)", flush=True)

        rows = []
        for (name, b), r in results.items():
            rows.append(
                {
                    "config": name,
                    "batch": b,
                    "tasks_per_s": statistics.median(r["tasks_per_s"]),
                    "outcomes_per_s": statistics.median(r["outcomes_per_s"]),
                    "tasks_per_s_best": max(r["tasks_per_s"]),
                    "outcomes_per_s_best": max(r["outcomes_per_s"]),
                    "sample_p50_ms": pct(r["lat"], 50),
                    "sample_p99_ms": pct(r["lat"], 99),
                    "report_p50_ms": pct(r["rlat"], 50),
                    "report_p99_ms": pct(r["rlat"], 99),
                }
            )
        # Every ALP-GMM outcome must have reached its teacher's ALP (none dropped as unknown).
        curricula = ray.get(logged.snapshot.remote())["curricula"]
        alp_stats = curricula["cols_alp"]["students"]["bench"]
        alp_co_stats = curricula["cols_alp_co"]["students"]["bench"]
        wire_co_stats = curricula["wire_alp_co"]["students"]["bench"]
        wire_4c = curricula["wire_alp_4c"]
        mix_alp_stats = curricula["mix_alp"]["students"]["bench"]
        ex_alp_stats = curricula["ex_alp"]["students"]["bench"]
        threaded_snap = ray.get(threaded.snapshot.remote())["curricula"]["cols_alp"]
        by_name = {tg.name: tg for tg in targets}
        b1 = b1_pairs(by_name["columns box"], by_name["plain actor"], calls[1], pairs=8 * scale - 1)
        b1_wire = b1_pairs(by_name["wire box"], by_name["plain actor"], calls[1], pairs=8 * scale - 1)
        client = client_rows(logged, 10_000 * scale)
        cpu = service_cpu(tmp, calls[1024])

        alp_row = alp_gmm_row(logged, calls[1024]) if space.kind == "box" else None
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    def get(name: str, b: int, key: str) -> float:
        return next(r[key] for r in rows if r["config"] == name and r["batch"] == b)

    def paired(a: str, base: str, b: int, key: str) -> float:
        """Median over reps of the per-rep ratio (paired: load drift cancels out)."""
        xs, ys = results[(a, b)][key], results[(base, b)][key]
        return statistics.median(x / y for x, y in zip(xs, ys))

    ratios = {}
    ratios["b1_over_plain_actor"] = statistics.median(b1)
    ratios["b1_over_plain_actor_reps"] = paired("columns box", "plain actor", 1, "tasks_per_s")
    ratios["canonical_over_named_ids_outcomes_b1024"] = paired(
        "columns box", "columns box named ids", 1024, "outcomes_per_s"
    )
    ratios["info_columns_over_dicts_outcomes_b1024"] = paired(
        "columns box info columns", "columns box info dicts", 1024, "outcomes_per_s"
    )
    ratios["named_over_canonical_episode_ids_report_cpu"] = (
        cpu["report_columns_named_ids_thread"] / cpu["report_columns_plain_thread"]
    )
    ratios["info_dicts_over_columns_report_cpu"] = (
        cpu["report_columns_info_dicts_thread"] / cpu["report_columns_info_columns_thread"]
    )
    for kind, key in (("box", "box"), ("alp_gmm", "alpgmm")):
        pairs = zip(episodes[f"exchange {kind}"], episodes[f"mixed {kind}"])
        ratios[f"exchange_over_mixed_{key}"] = statistics.median(x / y for x, y in pairs)
    ratios["b1_over_plain_actor_outcomes"] = paired("columns box", "plain actor", 1, "outcomes_per_s")
    ratios["wire_b1_over_plain_actor"] = statistics.median(b1_wire)
    for b in BATCHES:
        for key in ("tasks_per_s", "outcomes_per_s"):
            ratios[f"wire_over_ray_calls_{key.split('_')[0]}_b{b}"] = paired("wire box", "columns box", b, key)
    ratios["wire_over_plain_actor_outcomes_b1024"] = paired("wire box", "plain actor", 1024, "outcomes_per_s")
    ratios["columns_over_objects_tasks_b1024"] = paired("columns box", "actor+log", 1024, "tasks_per_s")
    ratios["columns_over_objects_outcomes_b1024"] = paired("columns box", "actor+log", 1024, "outcomes_per_s")
    ratios["columns_actor_over_inprocess_tasks_b1024"] = paired(
        "columns box", "in-process columns", 1024, "tasks_per_s"
    )
    ratios["columns_over_plain_actor_tasks_b1024"] = paired("columns box", "plain actor", 1024, "tasks_per_s")
    ratios["columns_over_plain_actor_outcomes_b1024"] = paired("columns box", "plain actor", 1024, "outcomes_per_s")
    for b in BATCHES:
        ratios[f"actor_over_naive_tasks_b{b}"] = paired("actor", "naive", b, "tasks_per_s")
        ratios[f"actor_over_naive_outcomes_b{b}"] = paired("actor", "naive", b, "outcomes_per_s")
        ratios[f"actor_over_inprocess_tasks_b{b}"] = paired("actor", "in-process", b, "tasks_per_s")
        ratios[f"actor_over_inprocess_outcomes_b{b}"] = paired("actor", "in-process", b, "outcomes_per_s")
        ratios[f"log_over_nolog_tasks_b{b}"] = paired("actor+log", "actor", b, "tasks_per_s")
        ratios[f"log_over_nolog_outcomes_b{b}"] = paired("actor+log", "actor", b, "outcomes_per_s")

    result = {
        "tasks_per_s_b1024": get("actor+log", 1024, "tasks_per_s"),
        "outcomes_per_s_b1024": get("actor+log", 1024, "outcomes_per_s"),
        "p99_ms_b64": get("actor+log", 64, "sample_p99_ms"),
        "tasks_per_s_b1024_best": get("actor+log", 1024, "tasks_per_s_best"),
        "outcomes_per_s_b1024_best": get("actor+log", 1024, "outcomes_per_s_best"),
        "inprocess_p99_ms_b64": get("in-process", 64, "sample_p99_ms"),
        "report_p99_ms_b64": get("actor+log", 64, "report_p99_ms"),
        "columns_tasks_per_s_b1024": get("columns box", 1024, "tasks_per_s"),
        "columns_outcomes_per_s_b1024": get("columns box", 1024, "outcomes_per_s"),
        "discrete_tasks_per_s_b1024": get("columns discrete", 1024, "tasks_per_s"),
        "discrete_outcomes_per_s_b1024": get("columns discrete", 1024, "outcomes_per_s"),
        "alpgmm_tasks_per_s_b1024": get("columns alp_gmm", 1024, "tasks_per_s"),
        "alpgmm_outcomes_per_s_b1024": get("columns alp_gmm", 1024, "outcomes_per_s"),
        "alpgmm_outcomes_learned": alp_stats.get("outcomes"),
        "alpgmm_unknown_task_outcomes": alp_stats.get("unknown_task_outcomes"),
        "alpgmm_coalesce_tasks_per_s_b1024": get("columns alp_gmm coalesce", 1024, "tasks_per_s"),
        "alpgmm_coalesce_outcomes_per_s_b1024": get("columns alp_gmm coalesce", 1024, "outcomes_per_s"),
        "alpgmm_coalesce_refits": {k: alp_co_stats.get(k) for k in ("refits", "refits_coalesced", "outcomes")},
        "wire_alpgmm_coalesce_refits": {
            k: wire_co_stats.get(k) for k in ("refits", "refits_coalesced", "outcomes", "refit_staleness_ms_p50")
        },
        "alpgmm_lag2_tasks_per_s_b1024": get("columns alp_gmm lag 2", 1024, "tasks_per_s"),
        "alpgmm_lag2_outcomes_per_s_b1024": get("columns alp_gmm lag 2", 1024, "outcomes_per_s"),
        "alpgmm_threads4_tasks_per_s_b1024": get("columns alp_gmm 4 threads", 1024, "tasks_per_s"),
        "alpgmm_threads4_outcomes_per_s_b1024": get("columns alp_gmm 4 threads", 1024, "outcomes_per_s"),
        # report calls per teacher update: how many queued reports each group commit merged
        "alpgmm_threads4_reports_per_update": threaded_snap["counters"]["report_calls"]
        / max(1, threaded_snap["students"]["bench"]["update_calls"]),
        # the same for four clients on the one-thread service's socket (its waves)
        "wire_alpgmm_clients4_reports_per_update": wire_4c["counters"]["report_calls"]
        / max(1, wire_4c["students"]["bench"]["update_calls"]),
        "mixed_box_episodes_per_s_b1024": statistics.median(episodes["mixed box"]),
        "mixed_alpgmm_episodes_per_s_b1024": statistics.median(episodes["mixed alp_gmm"]),
        "mixed_episodes_per_s_b1024_reps": episodes,
        "mixed_alpgmm_outcomes_learned": mix_alp_stats.get("outcomes"),
        "mixed_alpgmm_unknown_task_outcomes": mix_alp_stats.get("unknown_task_outcomes"),
        "exchange_box_episodes_per_s_b1024": statistics.median(episodes["exchange box"]),
        "exchange_alpgmm_episodes_per_s_b1024": statistics.median(episodes["exchange alp_gmm"]),
        "exchange_alpgmm_outcomes_learned": ex_alp_stats.get("outcomes"),
        "exchange_alpgmm_unknown_task_outcomes": ex_alp_stats.get("unknown_task_outcomes"),
        "b1_over_plain_actor": ratios["b1_over_plain_actor"],
        "b1_over_plain_actor_pairs": b1,
        # The same figures over the service's socket (what a TeacherClient on its node uses).
        "wire_tasks_per_s_b1024": get("wire box", 1024, "tasks_per_s"),
        "wire_outcomes_per_s_b1024": get("wire box", 1024, "outcomes_per_s"),
        "wire_discrete_tasks_per_s_b1024": get("wire discrete", 1024, "tasks_per_s"),
        "wire_discrete_outcomes_per_s_b1024": get("wire discrete", 1024, "outcomes_per_s"),
        "wire_alpgmm_tasks_per_s_b1024": get("wire alp_gmm", 1024, "tasks_per_s"),
        "wire_alpgmm_outcomes_per_s_b1024": get("wire alp_gmm", 1024, "outcomes_per_s"),
        "wire_alpgmm_coalesce_tasks_per_s_b1024": get("wire alp_gmm coalesce", 1024, "tasks_per_s"),
        "wire_alpgmm_coalesce_outcomes_per_s_b1024": get("wire alp_gmm coalesce", 1024, "outcomes_per_s"),
        "wire_alpgmm_clients4_tasks_per_s_b1024": get("wire alp_gmm 4 clients", 1024, "tasks_per_s"),
        "wire_alpgmm_clients4_outcomes_per_s_b1024": get("wire alp_gmm 4 clients", 1024, "outcomes_per_s"),
        "wire_alpgmm_threads4_tasks_per_s_b1024": get("wire alp_gmm 4 threads", 1024, "tasks_per_s"),
        "wire_alpgmm_threads4_outcomes_per_s_b1024": get("wire alp_gmm 4 threads", 1024, "outcomes_per_s"),
        "wire_exchange_box_episodes_per_s_b1024": statistics.median(episodes["wire exchange box"]),
        "wire_b1_over_plain_actor": ratios["wire_b1_over_plain_actor"],
        "wire_b1_over_plain_actor_pairs": b1_wire,
        "targets": {
            "tasks_per_s_b1024": 200_000,
            "outcomes_per_s_b1024": 200_000,
            "p99_ms_b64": 5.0,
            "columns_tasks_per_s_b1024": 1_000_000,
            "columns_outcomes_per_s_b1024": 1_000_000,
            "discrete_tasks_per_s_b1024": 1_000_000,
            "discrete_outcomes_per_s_b1024": 1_000_000,
            "alpgmm_tasks_per_s_b1024": 500_000,
            "alpgmm_outcomes_per_s_b1024": 500_000,
            "alpgmm_coalesce_tasks_per_s_b1024": 500_000,
            "alpgmm_coalesce_outcomes_per_s_b1024": 500_000,
            "alpgmm_lag2_tasks_per_s_b1024": 500_000,
            "alpgmm_lag2_outcomes_per_s_b1024": 500_000,
            "alpgmm_threads4_tasks_per_s_b1024": 500_000,
            "alpgmm_threads4_outcomes_per_s_b1024": 500_000,
            "b1_over_plain_actor": 1.0,
            "wire_tasks_per_s_b1024": 1_000_000,
            "wire_outcomes_per_s_b1024": 1_000_000,
            "wire_discrete_tasks_per_s_b1024": 1_000_000,
            "wire_discrete_outcomes_per_s_b1024": 1_000_000,
            "wire_alpgmm_tasks_per_s_b1024": 500_000,
            "wire_alpgmm_outcomes_per_s_b1024": 500_000,
            "wire_alpgmm_coalesce_tasks_per_s_b1024": 500_000,
            "wire_alpgmm_coalesce_outcomes_per_s_b1024": 500_000,
            "wire_alpgmm_clients4_tasks_per_s_b1024": 500_000,
            "wire_alpgmm_clients4_outcomes_per_s_b1024": 500_000,
            "wire_alpgmm_threads4_tasks_per_s_b1024": 500_000,
            "wire_alpgmm_threads4_outcomes_per_s_b1024": 500_000,
            "wire_b1_over_plain_actor": 1.0,
        },
        "ratios": ratios,
        "rows": sorted(rows, key=lambda r: (r["batch"], r["config"])),
        "client": client,
        "service_cpu_us_per_1024": cpu,
        "alp_gmm": alp_row,
        "config": {
            "quick": args.quick,
            "space": args.space,
            "reps": reps,
            "calls": calls,
            "max_in_flight": MAX_IN_FLIGHT,
            "python": platform.python_version(),
            "ray": ray.__version__,
            **cpu_facts(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg(),
            "wall_s": time.time() - t_start,
            "driver_gc": {
                "in_timed_loops": args.driver_gc,
                "collections": DRIVER_GC.collections,
                "seconds": DRIVER_GC.seconds,
            },
        },
    }
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result


def print_table(res: dict) -> None:
    hdr = (
        f"{'config':<20}{'batch':>6}{'tasks/s':>11}{'(best)':>11}{'outcomes/s':>12}{'(best)':>11}"
        f"{'smp p50':>9}{'smp p99':>9}{'rep p99':>9}"
    )
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in res["rows"]:
        print(
            f"{r['config']:<20}{r['batch']:>6}{r['tasks_per_s']:>11,.0f}{r['tasks_per_s_best']:>11,.0f}"
            f"{r['outcomes_per_s']:>12,.0f}{r['outcomes_per_s_best']:>11,.0f}"
            f"{r['sample_p50_ms']:>9.2f}{r['sample_p99_ms']:>9.2f}{r['report_p99_ms']:>9.2f}"
        )
    a = res["alp_gmm"]
    if a and "skipped" not in a:
        print(
            f"{a['config']:<20}{a['batch']:>6}{a['tasks_per_s']:>11,.0f}{'':>11}{a['outcomes_per_s']:>12,.0f}"
            f"{'':>11}{a['sample_p50_ms']:>9.2f}{a['sample_p99_ms']:>9.2f}{'':>9}  refits={a['refits']}"
        )
    elif a:
        print(f"alp_gmm: {a['skipped']}")
    for name, c in res["client"].items():
        print(
            f"TeacherClient {name:<13} {c['episodes']:>6} episodes: {c['us_per_episode']:7.1f} us/episode "
            f"client overhead, stalls={c['stalls']} ({c['stall_s'] * 1e3:.0f} ms), refills={c['refills']}, "
            f"flushes={c['flushes']}, of them exchanges={c['exchanges']}"
        )
    print(
        "service CPU per 1,024-row call, in-process, event log on (us): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in res["service_cpu_us_per_1024"].items())
    )
    print("\nratios (same run):")
    for k, v in res["ratios"].items():
        print(f"  {k:<34}{v:6.2f}")
    t = res["targets"]
    print(
        f"\nheadline (actor+log): tasks/s b1024 {res['tasks_per_s_b1024']:,.0f} (target {t['tasks_per_s_b1024']:,}), "
        f"outcomes/s b1024 {res['outcomes_per_s_b1024']:,.0f} (target {t['outcomes_per_s_b1024']:,}), "
        f"p99 b64 {res['p99_ms_b64']:.2f} ms (target < {t['p99_ms_b64']})"
    )
    print("array path (sample_columns, logged actor), target in brackets:")
    for key in (
        "columns_tasks_per_s_b1024",
        "columns_outcomes_per_s_b1024",
        "discrete_tasks_per_s_b1024",
        "discrete_outcomes_per_s_b1024",
        "alpgmm_tasks_per_s_b1024",
        "alpgmm_outcomes_per_s_b1024",
        "alpgmm_coalesce_tasks_per_s_b1024",
        "alpgmm_coalesce_outcomes_per_s_b1024",
        "alpgmm_lag2_tasks_per_s_b1024",
        "alpgmm_lag2_outcomes_per_s_b1024",
        "alpgmm_threads4_tasks_per_s_b1024",
        "alpgmm_threads4_outcomes_per_s_b1024",
    ):
        print(f"  {key:<38}{res[key]:>12,.0f}  ({t[key]:,})")
    print(f"  {'b1_over_plain_actor':<38}{res['b1_over_plain_actor']:>12.2f}  (>= {t['b1_over_plain_actor']})")
    print("the same over the service's socket (openended.runtime.wire; a TeacherClient on the service's node):")
    for key in (
        "wire_tasks_per_s_b1024",
        "wire_outcomes_per_s_b1024",
        "wire_discrete_tasks_per_s_b1024",
        "wire_discrete_outcomes_per_s_b1024",
        "wire_alpgmm_tasks_per_s_b1024",
        "wire_alpgmm_outcomes_per_s_b1024",
        "wire_alpgmm_coalesce_tasks_per_s_b1024",
        "wire_alpgmm_coalesce_outcomes_per_s_b1024",
        "wire_alpgmm_clients4_tasks_per_s_b1024",
        "wire_alpgmm_clients4_outcomes_per_s_b1024",
        "wire_alpgmm_threads4_tasks_per_s_b1024",
        "wire_alpgmm_threads4_outcomes_per_s_b1024",
    ):
        print(f"  {key:<38}{res[key]:>12,.0f}  ({t[key]:,})")
    print(
        f"  {'wire_b1_over_plain_actor':<38}{res['wire_b1_over_plain_actor']:>12.2f}  "
        f"(>= {t['wire_b1_over_plain_actor']})"
    )
    print(f"  {'wire_exchange_box_episodes_per_s_b1024':<38}{res['wire_exchange_box_episodes_per_s_b1024']:>12,.0f}")
    print("mixed (each call pair samples 1,024 tasks and reports 1,024 outcomes; episodes/s, no target):")
    for key in (
        "mixed_box_episodes_per_s_b1024",
        "mixed_alpgmm_episodes_per_s_b1024",
        "exchange_box_episodes_per_s_b1024",
        "exchange_alpgmm_episodes_per_s_b1024",
    ):
        print(f"  {key:<38}{res[key]:>12,.0f}")
    print(
        f"  one exchange_wire call per pair over two calls (paired per rep): box "
        f"{res['ratios']['exchange_over_mixed_box']:.2f}, alp_gmm {res['ratios']['exchange_over_mixed_alpgmm']:.2f}"
    )
    print(
        f"ALP-GMM outcomes that reached its ALP: {res['alpgmm_outcomes_learned']:,} "
        f"(dropped as unknown tasks: {res['alpgmm_unknown_task_outcomes']}); with refit_coalesce: "
        f"{res['alpgmm_coalesce_refits']}; 4 threads: "
        f"{res['alpgmm_threads4_reports_per_update']:.2f} report calls per teacher update (4 clients by socket, "
        f"1 thread: {res['wire_alpgmm_clients4_reports_per_update']:.2f}); mixed: "
        f"{res['mixed_alpgmm_outcomes_learned']:,} learned, {res['mixed_alpgmm_unknown_task_outcomes']} unknown; "
        f"exchange: {res['exchange_alpgmm_outcomes_learned']:,} learned, "
        f"{res['exchange_alpgmm_unknown_task_outcomes']} unknown"
    )
    print(
        f"load average at start {res['config']['loadavg_start']}, at end {res['config']['loadavg_end']}, "
        f"wall {res['config']['wall_s']:.0f} s; {res['config']['cpu_model']} "
        f"({res['config']['cpu_vector_isa']}, {res['config']['cpus']} cpus); driver full collections inside "
        f"timed loops: {res['config']['driver_gc']['collections']} ({res['config']['driver_gc']['seconds']:.2f} s, "
        f"collector {'on' if res['config']['driver_gc']['in_timed_loops'] else 'off'} there)"
    )


if __name__ == "__main__":
    main()
