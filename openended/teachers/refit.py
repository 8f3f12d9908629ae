"""Run model refits off the sampling path and swap results in atomically.

Why: teachDeepRL's ALP-GMM fits inside the episode callback and blocks training
(0.05-0.14 s per fit, up to 16 s under thread contention). Here a teacher submits a
fit and keeps sampling from the last committed model; the result is installed

* ``swap="next_update"`` (default): at the ``lag``-th ``update()`` call after submission
  (``lag=1``: the next one). That ``update`` waits for the fit if it is not done yet,
  ``sample`` never does. The swap point depends only on the call sequence, so runs stay
  reproducible; a larger ``lag`` lets a fit overlap more episodes (fewer waits) at the
  price of a model that goes live later. An owner whose update never reads the model
  calls `begin_update` before its update's work and `end_update` after it (the GMM
  teachers), so the fit also overlaps that work; `on_update` is both at once.
* ``swap="asap"``: at the first ``sample``/``update`` call after the fit finishes
  (lowest staleness, timing-dependent, for services).

``coalesce=True`` (opt-in, ``swap="asap"`` only): ``submit`` never waits for a running
fit either. The new fit is held back until the running one finishes (the next call that
finds it done stages it and starts the held one); a newer ``submit`` replaces a held fit,
which is then never run (counted in ``n_coalesced``). The worker then fits back to back on
the newest data and the caller never waits; which windows get fitted depends on timing.
Why: a service taking 1,024 outcomes per ``report`` submits a fast ALP-GMM fit (~2 ms)
on every report, and without it each report waited for the previous report's fit.

A coalescing worker runs at a lower CPU priority (`BACKGROUND_NICE`, Linux; elsewhere it
keeps its priority): nobody waits for its fits, so requests go first and fits take the
CPU that is left. Why: under load such a worker fits back to back and keeps a core busy;
at equal priority the scheduler kept taking turns between it and the service's request
thread and the client, and on 2 cores a service served 1,024-outcome reports into
ALP-GMM at ~365-455k outcomes/s where it serves ~525-580k with the worker at nice +10
(medians of `benchmarks/alp_gmm_service.py`, 2026-12-07). Not done for the other policies: there an
update waits for the fit, and a starved fit would stall it (priority inversion).

Executors: ``"inline"`` (fit inside ``update``, the reference behaviour), ``"thread"``
(a background thread; numpy/BLAS release the GIL for the heavy parts), ``"process"``
(a worker process: no GIL contention at all, costs a process start).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from threadpoolctl import ThreadpoolController

__all__ = ["Refitter", "run_single_threaded", "lower_priority", "Executors", "SwapPolicy", "BACKGROUND_NICE"]

Executors = Literal["inline", "thread", "process"]
SwapPolicy = Literal["next_update", "asap"]


BACKGROUND_NICE = 10  # added to a coalescing worker's nice value (Linux): requests before fits


def lower_priority(increment: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's CPU priority by ``increment`` nice steps; False where it cannot.

    Linux keeps a nice value per thread (``setpriority`` on the thread id); other systems
    apply it to the whole process, so there it is left alone. Lowering one's own priority
    needs no privilege.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(increment)))
    except OSError:
        return False
    return True


_CONTROLLER: ThreadpoolController | None = None
_CONTROLLER_MODULES = -1  # len(sys.modules) when the inventory was taken


def _controller() -> ThreadpoolController:
    """One cached inventory of BLAS/OpenMP libraries per process, retaken after imports.

    SPEEDUP: ``threadpool_limits()`` re-scans every loaded shared library on each call
    (2.4 ms here, holding the GIL, longer with torch loaded); the cached controller's
    ``limit`` costs ~0.02 ms.

    Why retaken: a library imported after the inventory brings thread pools it does not
    know. scikit-learn (imported lazily by the reference fit) loads its own OpenMP
    runtime; with a stale inventory its k-means ran on two OpenMP threads whose spinning
    made the reference ALP-GMM preset up to 1.8x slower than the original code on 2
    shared cores. New shared libraries arrive with new Python modules, so the inventory is
    retaken whenever ``sys.modules`` has grown (rare after start-up).
    """
    global _CONTROLLER, _CONTROLLER_MODULES
    n_modules = len(sys.modules)
    if _CONTROLLER is None or n_modules != _CONTROLLER_MODULES:
        _CONTROLLER = ThreadpoolController()
        _CONTROLLER_MODULES = n_modules
    return _CONTROLLER


def run_single_threaded(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Call ``fn(*args)`` with BLAS/OpenMP pinned to one thread; return (result, seconds).

    Pinning matters: on 2 shared cores an unpinned sklearn fit went from 0.1 s to 16 s.
    Only pools loaded before the call are pinned: a fit that imports a library itself
    should have it imported up front (`openended.teachers.gmm.fit.prepare_reference`).
    """
    t0 = time.perf_counter()
    with _controller().limit(limits=1):
        out = fn(*args)
    return out, time.perf_counter() - t0


@dataclass
class _Fit:
    """One submitted fit: running or queued (``future`` set), then finished (``future`` None, ``result``)."""

    t0: float
    due: int | None  # next_update: the update count at which it goes live
    future: Future | None = None
    result: Any = None


class Refitter:
    """Fits run in submission order on one worker; a finished fit is *staged*, then installed at its swap point.

    Up to ``lag`` fits are in flight at once (running, queued, or finished and waiting for
    their swap point). With ``lag=1`` a new fit is queued and the caller then waits for the
    previous one, due now; with ``lag=L`` a fit only has to be done by the ``L``-th update after it was submitted, so
    fits submitted on consecutive updates queue on the worker instead of stalling the
    caller.

    ``install`` is the owner's callback that makes a fit result the live model. For an
    exact ``state_dict`` round trip the owner serialises `staged_results()` and gives each
    back, oldest first, with `restore_staged` after loading.
    """

    def __init__(
        self,
        install: Callable[[Any], None],
        executor: Executors = "thread",
        swap: SwapPolicy = "next_update",
        history: int = 1000,
        lag: int = 1,
        coalesce: bool = False,
    ) -> None:
        if lag < 1:
            raise ValueError(f"Refitter.lag: must be >= 1, got {lag}")
        if coalesce and swap != "asap":
            raise ValueError('Refitter.coalesce: only with swap="asap" (next_update swaps must stay reproducible)')
        self.coalesce = bool(coalesce) and executor != "inline"
        self._held: tuple[Callable[..., Any], tuple[Any, ...]] | None = None  # coalesce: the fit to start next
        self.n_coalesced = 0  # coalesce: fits replaced before they started
        self._install = install
        self.executor_kind = executor
        self.swap = swap
        self.lag = int(lag)
        self._depth = 1 if self.coalesce else self.lag  # fits in flight at once
        self._n_updates = 0
        self._pool: Executor | None = None
        self._fits: deque[_Fit] = deque()  # submission order: running / queued / staged
        self._lock = threading.Lock()
        self.latencies_s: deque[float] = deque(maxlen=history)  # pure fit time
        self.staleness_s: deque[float] = deque(maxlen=history)  # submit -> installed
        self.n_submitted = 0
        self.n_installed = 0

    def _executor(self) -> Executor:
        if self._pool is None:
            # A coalescing worker is never waited for: it runs in the background (module docstring).
            init = lower_priority if self.coalesce else None
            if self.executor_kind == "process":
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"), initializer=init)
            else:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openended-refit", initializer=init)
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start (or queue) a fit; fits whose swap point has come are installed first. None is ever dropped.

        Waits only while ``lag`` fits are in flight (for the oldest to finish).
        """
        self.n_submitted += 1
        if self.executor_kind == "inline":
            result, dt = run_single_threaded(fn, *args)
            self.latencies_s.append(dt)
            self.staleness_s.append(dt)
            self._install_now(result)
            return
        if self.coalesce:
            if self._held is not None:  # superseded before it started
                self._held = None
                self.n_coalesced += 1
            if self.busy:  # SPEEDUP (opt-in): do not wait; it starts when the running fit is done
                self._held = (fn, args)
                return
        # SPEEDUP: queued before waiting for anything: the worker goes straight on to it when
        # the running fit ends (it is due later than every fit in flight, so the swap points
        # do not move); then the fits due now go live, and at most ``lag`` stay in flight.
        self._start(fn, args, None if self.swap == "asap" else self._n_updates + self.lag)
        self._install_due(block=self.swap != "asap")
        while len(self._fits) > self._depth:
            oldest = self._fits[0]
            self._collect(oldest, block=True)
            if not self._is_due(oldest):
                break  # staged until its swap point
            self._install_first()

    def _is_due(self, fit: _Fit) -> bool:
        return self.swap == "asap" or fit.due is None or fit.due <= self._n_updates

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...], due: int | None) -> None:
        fit = _Fit(time.perf_counter(), due)
        fit.future = self._executor().submit(run_single_threaded, fn, *args)
        with self._lock:
            self._fits.append(fit)

    def _collect(self, fit: _Fit, block: bool) -> bool:
        """Take ``fit``'s result from its future (waiting if ``block``); False while it still runs."""
        fut = fit.future
        if fut is None:
            return True
        if not block and not fut.done():
            return False
        result, dt = fut.result()
        self.latencies_s.append(dt)
        self.staleness_s.append(time.perf_counter() - fit.t0)
        fit.result, fit.future = result, None
        return True

    def _install_first(self) -> None:
        with self._lock:
            fit = self._fits.popleft()
        self._install_now(fit.result)
        self._start_held()

    def _start_held(self) -> None:
        """Coalesce: the held fit starts once nothing runs."""
        if self._held is not None and not self._fits:
            (fn, args), self._held = self._held, None
            self._start(fn, args, None)

    def _install_due(self, block: bool) -> None:
        """Install, oldest first, every fit whose swap point has come (``asap``: every finished one).

        ``block``: wait for a due fit that is still running.
        """
        while self._fits and self._is_due(self._fits[0]) and self._collect(self._fits[0], block):
            self._install_first()

    def _install_now(self, result: Any) -> None:
        self._install(result)
        self.n_installed += 1

    def on_sample(self) -> None:
        """Hook for ``sample``: never blocks; installs only under ``swap="asap"``."""
        if self.swap == "asap":
            self._install_due(block=False)

    def on_update(self) -> None:
        """Hook for the start of ``update``: the deterministic swap point."""
        self.begin_update()
        self.end_update()

    def begin_update(self) -> None:
        """First half of `on_update`: count the update; under ``swap="asap"`` install what is done.

        For an owner whose update never reads the live model (the GMM teachers: their
        update only appends rows and submits fits), `end_update` can follow the update's
        own work instead of preceding it. Nothing samples in between, so the model every
        later ``sample`` sees is the same, and a fit still running overlaps that work.
        """
        self._n_updates += 1
        if self.swap == "asap":
            self._install_due(block=False)

    def end_update(self) -> None:
        """Second half of `on_update`: with ``next_update``, wait for and install the fits now due."""
        if self.swap != "asap":
            self._install_due(block=True)

    @property
    def busy(self) -> bool:
        """A fit is running (or queued) right now."""
        with self._lock:
            return any(f.future is not None and not f.future.done() for f in self._fits)

    def staged_results(self) -> list[tuple[Any, int | None]]:
        """Wait for every fit in flight; ``(result, updates until due)`` of each not yet installed, oldest first."""
        for fit in list(self._fits):
            self._collect(fit, block=True)
        return [(f.result, None if f.due is None else f.due - self._n_updates) for f in self._fits]

    def restore_staged(self, result: Any, updates_until_due: int | None = None) -> None:
        """Stage a fit saved by `staged_results` after those restored before it (None: due at the next update)."""
        due = self._n_updates + (1 if updates_until_due is None else int(updates_until_due))
        fit = _Fit(time.perf_counter(), due, result=result)
        with self._lock:
            self._fits.append(fit)

    def discard_staged(self) -> None:
        """Forget every fit not yet installed (after any still running ends): a loaded state restores its own."""
        self.staged_results()
        with self._lock:
            self._fits.clear()
            self._held = None

    def drain(self) -> None:
        """Finish and install everything (end of run)."""
        while self._fits or self._held is not None:
            if not self._fits:
                self._start_held()
            self._collect(self._fits[0], block=True)
            self._install_first()

    def close(self) -> None:
        """Cancel the fits not yet installed and shut the worker pool down (idempotent)."""
        with self._lock:
            fits, self._fits = list(self._fits), deque()
            self._held = None
        for fit in fits:
            if fit.future is not None:
                fit.future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
