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

Executors: ``"inline"`` (fit inside ``update``, the reference behaviour), ``"thread"``
(a background thread; numpy/BLAS release the GIL for the heavy parts), ``"process"``
(a worker process: no GIL contention at all, costs a process start).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

from threadpoolctl import ThreadpoolController

__all__ = ["Refitter", "run_single_threaded", "Executors", "SwapPolicy"]

Executors = Literal["inline", "thread", "process"]
SwapPolicy = Literal["next_update", "asap"]


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


class Refitter:
    """One pending fit at a time. A finished fit is *staged*, then installed at the swap point.

    ``install`` is the owner's callback that makes a fit result the live model. For an
    exact ``state_dict`` round trip the owner serialises `staged_result()` and gives it
    back with `restore_staged` after loading.
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
        self._n_updates = 0
        self._due: int | None = None  # update count at which the staged/pending fit goes live
        self._pool: Executor | None = None
        self._pending: Future | None = None
        self._pending_t0 = 0.0
        self._staged: Any = None
        self._has_staged = False
        self._lock = threading.Lock()
        self.latencies_s: deque[float] = deque(maxlen=history)  # pure fit time
        self.staleness_s: deque[float] = deque(maxlen=history)  # submit -> installed
        self.n_submitted = 0
        self.n_installed = 0

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.executor_kind == "process":
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
            else:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openended-refit")
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start a fit. A fit still pending is first finished and installed (never dropped)."""
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
        self._finish(block=True)
        self._install_staged()
        self._due = self._n_updates + self.lag
        self._start(fn, args)

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._lock:
            self._pending_t0 = time.perf_counter()
            self._pending = self._executor().submit(run_single_threaded, fn, *args)

    def _finish(self, block: bool) -> None:
        """Move a finished (or, with ``block``, the pending) fit into the staged slot.

        With ``coalesce``, a held fit then starts (and, with ``block``, is finished too).
        """
        self._finish_pending(block)
        while self._held is not None and self._pending is None:
            (fn, args), self._held = self._held, None
            self._start(fn, args)
            self._finish_pending(block)

    def _finish_pending(self, block: bool) -> None:
        with self._lock:
            fut = self._pending
            if fut is None or (not block and not fut.done()):
                return
            self._pending = None
            t0 = self._pending_t0
        result, dt = fut.result()
        self.latencies_s.append(dt)
        self.staleness_s.append(time.perf_counter() - t0)
        self._staged, self._has_staged = result, True

    def _install_staged(self) -> None:
        if self._has_staged:
            result, self._staged, self._has_staged = self._staged, None, False
            self._install_now(result)

    def _install_now(self, result: Any) -> None:
        self._install(result)
        self.n_installed += 1

    def on_sample(self) -> None:
        """Hook for ``sample``: never blocks; installs only under ``swap="asap"``."""
        if self.swap == "asap":
            self._finish(block=False)
            self._install_staged()

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
            self._finish(block=False)
            self._install_staged()

    def end_update(self) -> None:
        """Second half of `on_update`: with ``next_update``, wait for and install a fit now due."""
        if self.swap != "asap" and self._due is not None and self._n_updates >= self._due:
            self._finish(block=True)
            self._install_staged()
            self._due = None

    @property
    def busy(self) -> bool:
        """A fit is running right now."""
        fut = self._pending
        return fut is not None and not fut.done()

    def staged_result(self) -> tuple[bool, Any]:
        """Wait for any pending fit and return ``(has_staged, result)`` without installing it."""
        self._finish(block=True)
        return self._has_staged, self._staged

    def updates_until_due(self) -> int | None:
        """How many more ``update`` calls until the staged fit goes live (for state_dict)."""
        return None if self._due is None else self._due - self._n_updates

    def restore_staged(self, result: Any, updates_until_due: int | None = None) -> None:
        """Stage a fit saved by ``staged_result``, due as it was (None: at the next update)."""
        self._staged, self._has_staged = result, True
        self._due = self._n_updates + (1 if updates_until_due is None else int(updates_until_due))

    def drain(self) -> None:
        """Finish and install everything (end of run)."""
        self._finish(block=True)
        self._install_staged()

    def close(self) -> None:
        """Cancel a pending fit and shut the worker pool down (idempotent)."""
        with self._lock:
            fut, self._pending = self._pending, None
            self._held = None
        if fut is not None:
            fut.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
