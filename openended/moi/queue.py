"""Keep judges off the sampling path: submit now, poll later; timeout, retry, fall back.

Why: an LLM judge takes hundreds of milliseconds to minutes, hangs, rate-limits and
answers badly. A teacher that waited on it would stall every environment worker (the
anti-pattern in STYLE.md). `AsyncJudge` puts each call on a worker thread pool behind a
queue: ``submit`` only enqueues (microseconds) and returns a handle; the teacher keeps
sampling from its last committed partition and later ``poll()``s finished results.

Per call (a handle):

1. The inner judge runs on a worker thread. The attempt's deadline (``timeout_s``) starts
   when it is queued, so a pool jammed by hung calls makes new attempts time out too and
   end-to-end latency stays bounded: at most ``(retries + 1) * timeout_s`` plus the
   fallback's own time.
2. An attempt that raises, times out, or (with ``retry_not_ok``) returns ``ok=False`` for
   some candidates is retried, for just the failed candidates, up to ``retries`` times.
   A timed-out call cannot be killed (Python threads cannot be); it is abandoned and its
   late answer is dropped (counted as ``late_results``). An attempt whose deadline passed
   while it was still queued is skipped, not run (``skipped_stale``).
3. What is still unanswered then goes to the ``fallback`` judge (e.g. embedding novelty or
   the rule oracle), on its own thread so a hung inner judge cannot starve it. With no
   fallback, the candidates get ``Judgement(ok=False, score=0.5)``: fail open.
4. A circuit breaker: after ``breaker_threshold`` calls in a row needed the fallback, the
   inner judge is skipped for ``breaker_cooldown_s`` (calls go straight to the fallback),
   then tried again.

Load shedding: with ``max_pending`` calls already in flight, a new call goes straight
to the fallback instead of queueing behind them.

No Ray here (moi/ never imports it); the runtime may host an AsyncJudge inside an actor.

Contents:
    JudgeResult  -- a finished call: judgements, where they came from, attempts, latency.
    JudgeHandle  -- what ``submit`` returns: ``done()``, and ``result(timeout)`` for
                    offline use (never call it on a sampling path).
    AsyncJudge   -- the queue, workers, supervisor and metrics.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from openended.errors import ConfigError
from openended.moi.base import Judge, JudgeContext, Judgement
from openended.moi.safety import for_log
from openended.tasks import Task

__all__ = ["AsyncJudge", "JudgeHandle", "JudgeResult"]

log = logging.getLogger(__name__)

Source = Literal["inner", "fallback", "mixed", "neutral"]


@dataclass(frozen=True)
class JudgeResult:
    """A finished call. ``judgements[i]`` answers ``candidates[i]``.

    ``source``: ``"inner"`` (all from the judge), ``"fallback"`` (all from the fallback),
    ``"mixed"``, or ``"neutral"`` (some got the ok=False placeholder: no fallback, or the
    fallback failed too).
    """

    handle_id: int
    candidates: tuple[Task | str, ...]
    context: JudgeContext
    judgements: tuple[Judgement, ...]
    source: Source
    attempts: int
    latency_s: float


class JudgeHandle:
    """Returned by `AsyncJudge.submit`. Finished results also arrive through ``poll()``."""

    __slots__ = ("id", "n_candidates", "submitted_at", "_event", "_result")

    def __init__(self, handle_id: int, n_candidates: int, submitted_at: float) -> None:
        self.id = handle_id
        self.n_candidates = n_candidates
        self.submitted_at = submitted_at
        self._event = threading.Event()
        self._result: JudgeResult | None = None

    def done(self) -> bool:
        """Whether the result is in (never blocks)."""
        return self._event.is_set()

    def result(self, timeout: float | None = None) -> JudgeResult:
        """Wait for the result (offline tools and tests only; a sampler polls instead)."""
        if not self._event.wait(timeout):
            raise TimeoutError(f"judge call {self.id} not finished after {timeout} s")
        assert self._result is not None
        return self._result

    def _set(self, result: JudgeResult) -> None:
        self._result = result
        self._event.set()

    def __repr__(self) -> str:
        return f"JudgeHandle(id={self.id}, n={self.n_candidates}, done={self.done()})"


@dataclass
class _Job:
    handle: JudgeHandle
    candidates: tuple[Task | str, ...]
    context: JudgeContext
    results: list[Judgement | None]
    origin: list[str]  # per candidate: "inner", "fallback" or "neutral" once answered
    pending: list[int]
    last_bad: dict[int, Judgement] = field(default_factory=dict)
    attempts: int = 0
    token: int | None = None  # the live attempt; answers for any other token are stale


class AsyncJudge:
    """Non-blocking wrapper: ``submit`` -> handle, ``poll`` -> finished `JudgeResult`s.

    Args:
        inner: the judge to call (HTTP, llama.cpp, ...). Called from worker threads; with
            ``workers > 1`` it must be thread-safe (all judges in openended.moi are).
        timeout_s: deadline per attempt, from enqueue.
        retries: extra attempts after the first.
        fallback: judge for whatever is still unanswered (None: ok=False placeholders).
        workers: threads calling ``inner``.
        retry_not_ok: treat ``ok=False`` judgements (malformed answers) as failures.
        max_pending: calls in flight before new ones are shed to the fallback.
        breaker_threshold: consecutive fallback-needing calls that open the breaker (0: never).
        breaker_cooldown_s: how long the open breaker skips ``inner``.
        latency_window: how many recent latencies the p50/p99 metrics use.
    """

    name = "async"

    def __init__(
        self,
        inner: Judge,
        timeout_s: float = 30.0,
        retries: int = 1,
        fallback: Judge | None = None,
        workers: int = 2,
        retry_not_ok: bool = True,
        max_pending: int = 1024,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
        latency_window: int = 2048,
    ) -> None:
        for field_name, value, ok in (
            ("timeout_s", timeout_s, timeout_s > 0),
            ("retries", retries, retries >= 0),
            ("workers", workers, workers >= 1),
            ("max_pending", max_pending, max_pending >= 1),
            ("breaker_threshold", breaker_threshold, breaker_threshold >= 0),
            ("breaker_cooldown_s", breaker_cooldown_s, breaker_cooldown_s >= 0),
        ):
            if not ok:
                raise ConfigError(
                    f"moi.async.{field_name}: invalid value {value!r} "
                    "(timeouts > 0; counts >= 0; workers and max_pending >= 1)"
                )
        self.inner = inner
        self.fallback = fallback
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.retry_not_ok = retry_not_ok
        self.max_pending = int(max_pending)
        self.breaker_threshold = int(breaker_threshold)
        self.breaker_cooldown_s = float(breaker_cooldown_s)
        self.model = getattr(inner, "model", "")
        self.template_version = getattr(inner, "template_version", "")

        self._ids = itertools.count(1)
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._fb_work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._done: deque[JudgeResult] = deque()
        self._lock = threading.Lock()  # counters + in-flight count (held for microseconds)
        self._inflight = 0
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._counts = dict.fromkeys(
            (
                "calls",
                "completed",
                "inner_calls",
                "timeouts",
                "retries",
                "errors",
                "not_ok",
                "fallbacks",
                "fallback_errors",
                "shed",
                "short_circuited",
                "late_results",
                "skipped_stale",
                "breaker_trips",
            ),
            0,
        )
        self._submit_max_s = 0.0
        self._consecutive_failures = 0
        self._breaker_until = 0.0
        self._closed = False
        # Supervisor-owned state (touched only on the supervisor thread):
        self._jobs: dict[int, _Job] = {}
        self._deadlines: list[tuple[float, int, int]] = []
        self._tokens = itertools.count(1)

        self._threads = [
            threading.Thread(target=self._worker, args=(self._work,), daemon=True, name=f"moi-judge-{i}")
            for i in range(workers)
        ]
        self._threads.append(
            threading.Thread(target=self._worker, args=(self._fb_work,), daemon=True, name="moi-fallback")
        )
        self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="moi-supervisor")
        for t in (*self._threads, self._supervisor):
            t.start()

    # ------------------------------------------------------------------ public API
    def submit(self, candidates: Sequence[Task | str], context: JudgeContext) -> JudgeHandle:
        """Enqueue a call and return at once (never waits on the judge)."""
        t0 = time.perf_counter()
        if self._closed:
            raise RuntimeError("AsyncJudge is closed")
        handle = JudgeHandle(next(self._ids), len(candidates), t0)
        with self._lock:
            self._counts["calls"] += 1
            shed = self._inflight >= self.max_pending
            self._inflight += 1
            if shed:
                self._counts["shed"] += 1
        self._events.put(("new", handle, tuple(candidates), context, shed))
        dt = time.perf_counter() - t0
        if dt > self._submit_max_s:
            self._submit_max_s = dt
        return handle

    def poll(self, max_results: int | None = None) -> list[JudgeResult]:
        """Finished results not returned before, oldest first (each exactly once)."""
        out: list[JudgeResult] = []
        while self._done and (max_results is None or len(out) < max_results):
            try:
                out.append(self._done.popleft())
            except IndexError:
                break
        return out

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """Blocking `Judge` protocol form (submit + wait), for offline use and composition."""
        return list(self.submit(candidates, context).result().judgements)

    def metrics(self) -> dict[str, float]:
        """Counters and latency percentiles under the ``moi/`` prefix (for the dashboard)."""
        with self._lock:
            out: dict[str, float] = {f"moi/{k}": float(v) for k, v in self._counts.items()}
            lat = np.array(self._latencies) if self._latencies else None
            out["moi/pending"] = float(self._inflight)
        out["moi/latency_p50_s"] = float(np.percentile(lat, 50)) if lat is not None else float("nan")
        out["moi/latency_p99_s"] = float(np.percentile(lat, 99)) if lat is not None else float("nan")
        out["moi/submit_max_s"] = self._submit_max_s
        out["moi/breaker_open"] = float(time.monotonic() < self._breaker_until)
        return out

    def close(self) -> None:
        """Stop the supervisor and idle workers.

        A call stuck in ``inner`` is abandoned (its thread is a daemon, so it cannot keep
        the process alive).
        """
        if self._closed:
            return
        self._closed = True
        self._events.put(("stop",))
        for _t in self._threads[:-1]:
            self._work.put(None)
        self._fb_work.put(None)
        self._supervisor.join(timeout=5)

    def __enter__(self) -> AsyncJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ threads
    def _worker(self, work: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
        while True:
            item = work.get()
            if item is None:
                return
            kind, job_id, token, deadline, fn, cands, ctx = item
            if self._closed or (deadline is not None and time.monotonic() >= deadline):
                # The supervisor has already timed this attempt out (it waited in the queue
                # behind hung calls): running it would only produce a dropped answer.
                with self._lock:
                    self._counts["skipped_stale"] += 1
                continue
            try:
                self._events.put((kind, job_id, token, fn(cands, ctx), None))
            except Exception as err:  # noqa: BLE001 - any judge failure becomes a retry/fallback
                self._events.put((kind, job_id, token, None, err))

    def _supervise(self) -> None:
        while True:
            wait = None
            if self._deadlines:
                wait = max(0.0, self._deadlines[0][0] - time.monotonic())
            try:
                ev = self._events.get(timeout=wait)
            except queue.Empty:
                ev = None
            if ev is not None:
                if ev[0] == "stop":
                    return
                try:
                    self._handle_event(ev)
                except Exception:
                    log.exception("moi async judge: error handling %s", ev[0])
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, job_id, token = heapq.heappop(self._deadlines)
                job = self._jobs.get(job_id)
                if job is not None and job.token == token:
                    self._count("timeouts")
                    log.warning(
                        "moi judge %r timed out after %.3g s (call %d, attempt %d)",
                        getattr(self.inner, "name", "?"),
                        self.timeout_s,
                        job_id,
                        job.attempts,
                    )
                    job.token = None
                    self._retry_or_fallback(job, job.pending)

    # ------------------------------------------------------------------ supervisor logic
    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _handle_event(self, ev: tuple[Any, ...]) -> None:
        kind = ev[0]
        if kind == "new":
            _, handle, cands, ctx, shed = ev
            n = len(cands)
            new_job = _Job(handle, cands, ctx, [None] * n, [""] * n, list(range(n)))
            self._jobs[handle.id] = new_job
            if n == 0:
                self._finish(new_job)
            elif shed:
                self._to_fallback(new_job, new_job.pending)
            elif time.monotonic() < self._breaker_until:
                self._count("short_circuited")
                self._to_fallback(new_job, new_job.pending)
            else:
                self._dispatch(new_job)
            return
        _, job_id, token, result, err = ev
        job = self._jobs.get(job_id)
        if job is None or job.token != token:
            self._count("late_results")
            return
        job.token = None
        if kind == "fallback":
            self._fallback_done(job, result, err)
        else:
            self._inner_done(job, result, err)

    def _dispatch(self, job: _Job) -> None:
        job.attempts += 1
        if job.attempts > 1:
            self._count("retries")
        self._count("inner_calls")
        job.token = next(self._tokens)
        deadline = time.monotonic() + self.timeout_s
        heapq.heappush(self._deadlines, (deadline, job.handle.id, job.token))
        self._work.put(
            (
                "inner",
                job.handle.id,
                job.token,
                deadline,
                self.inner.judge,
                [job.candidates[i] for i in job.pending],
                job.context,
            )
        )

    def _inner_done(self, job: _Job, result: list[Judgement] | None, err: BaseException | None) -> None:
        if err is None and (not isinstance(result, list) or len(result) != len(job.pending)):
            err = ValueError(
                f"judge returned {len(result) if isinstance(result, list) else type(result).__name__} "
                f"judgements for {len(job.pending)} candidates"
            )
        if err is not None or result is None:  # result is None only with err set just above
            self._count("errors")
            log.warning(
                "moi judge %r failed (call %d, attempt %d): %s",
                getattr(self.inner, "name", "?"),
                job.handle.id,
                job.attempts,
                for_log(repr(err), 300),
            )
            self._retry_or_fallback(job, job.pending)
            return
        failed = []
        for i, j in zip(job.pending, result):
            if j.ok or not self.retry_not_ok:
                job.results[i] = j
                job.origin[i] = "inner"
            else:
                job.last_bad[i] = j
                failed.append(i)
        if failed:
            self._count("not_ok", len(failed))
            self._retry_or_fallback(job, failed)
        else:
            self._finish(job, inner_failed=False)

    def _retry_or_fallback(self, job: _Job, failed: list[int]) -> None:
        job.pending = list(failed)
        if job.attempts <= self.retries:
            self._dispatch(job)
        else:
            self._to_fallback(job, failed, inner_failed=True)

    def _to_fallback(self, job: _Job, idx: list[int], inner_failed: bool = False) -> None:
        job.pending = list(idx)
        if inner_failed:
            self._note_inner_failure()
        if self.fallback is None:
            self._fill_neutral(job, "judge failed or timed out and no fallback is configured")
            self._finish(job, inner_failed=inner_failed)
            return
        self._count("fallbacks")
        job.token = next(self._tokens)
        self._fb_work.put(
            (
                "fallback",
                job.handle.id,
                job.token,
                None,
                self.fallback.judge,
                [job.candidates[i] for i in job.pending],
                job.context,
            )
        )

    def _fallback_done(self, job: _Job, result: list[Judgement] | None, err: BaseException | None) -> None:
        if err is None and isinstance(result, list) and len(result) == len(job.pending):
            for i, j in zip(job.pending, result):
                job.results[i] = j
                job.origin[i] = "fallback"
        else:
            self._count("fallback_errors")
            log.warning(
                "moi fallback judge failed (call %d): %s",
                job.handle.id,
                for_log(repr(err) if err is not None else f"bad result {type(result).__name__}", 300),
            )
            self._fill_neutral(job, "judge and fallback both failed")
        self._finish(job, inner_failed=None)

    def _fill_neutral(self, job: _Job, why: str) -> None:
        for i in job.pending:
            if job.results[i] is None:
                job.results[i] = job.last_bad.get(i) or Judgement(0.5, why, False, getattr(self.inner, "name", ""))
                job.origin[i] = "neutral"

    def _note_inner_failure(self) -> None:
        self._consecutive_failures += 1
        if self.breaker_threshold and self._consecutive_failures >= self.breaker_threshold:
            if time.monotonic() >= self._breaker_until:
                self._count("breaker_trips")
                log.warning(
                    "moi judge %r: %d failed calls in a row; skipping it for %.3g s",
                    getattr(self.inner, "name", "?"),
                    self._consecutive_failures,
                    self.breaker_cooldown_s,
                )
            self._breaker_until = time.monotonic() + self.breaker_cooldown_s
            self._consecutive_failures = 0

    def _finish(self, job: _Job, inner_failed: bool | None = None) -> None:
        if inner_failed is False:
            self._consecutive_failures = 0
        self._jobs.pop(job.handle.id, None)
        judgements = tuple(j if j is not None else Judgement(0.5, "unanswered", False, "") for j in job.results)
        kinds = set(job.origin)
        source: Source
        if "neutral" in kinds or "" in kinds:
            source = "neutral"
        elif kinds == {"fallback"}:
            source = "fallback"
        elif kinds == {"inner"} or not kinds:
            source = "inner"
        else:
            source = "mixed"
        latency = time.perf_counter() - job.handle.submitted_at
        res = JudgeResult(job.handle.id, job.candidates, job.context, judgements, source, job.attempts, latency)
        with self._lock:
            self._inflight -= 1
            self._counts["completed"] += 1
            self._latencies.append(latency)
        self._done.append(res)
        job.handle._set(res)
