"""`Refitter(lag=L)`: up to L fits in flight, each installed at the L-th update after it was
submitted, so fits submitted on consecutive updates queue instead of stalling the caller."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from openended.tasks import Box, Outcome
from openended.teachers import make_teacher
from openended.teachers.refit import Refitter

SPACE = Box([0.0, 0.0], [1.0, 1.0])


def _gated_fit(gates: dict[int, threading.Event], ran: list[int]):
    def fit(i: int) -> int:
        gates.setdefault(i, threading.Event()).wait(5.0)
        ran.append(i)
        return i

    return fit


def test_lag_two_queues_the_next_fit_and_installs_each_at_its_own_update() -> None:
    gates = {i: threading.Event() for i in range(4)}
    ran: list[int] = []
    installed: list[int] = []
    fit = _gated_fit(gates, ran)
    r = Refitter(installed.append, executor="thread", swap="next_update", lag=2)
    try:
        r.begin_update()  # update 1
        r.submit(fit, 0)  # due at update 3
        r.end_update()
        r.begin_update()  # update 2
        t0 = time.perf_counter()
        r.submit(fit, 1)  # fit 0 still runs: queued behind it, no wait (lag 1 would block here)
        assert time.perf_counter() - t0 < 0.5 and r.busy
        r.end_update()
        assert installed == []
        gates[0].set()
        gates[1].set()
        r.begin_update()  # update 3: fit 0 is due, fit 1 not yet
        r.end_update()
        assert installed == [0] and ran[0] == 0
        r.begin_update()  # update 4: fit 1 (waited for if it has not finished)
        r.end_update()
        assert installed == [0, 1] and ran == [0, 1]
    finally:
        for g in gates.values():
            g.set()
        r.close()


def test_lag_two_waits_only_when_two_fits_are_in_flight() -> None:
    gates = {i: threading.Event() for i in range(3)}
    ran: list[int] = []
    installed: list[int] = []
    r = Refitter(installed.append, executor="thread", swap="next_update", lag=2)
    try:
        r.submit(_gated_fit(gates, ran), 0)
        r.submit(_gated_fit(gates, ran), 1)  # same update: both in flight
        threading.Timer(0.2, gates[0].set).start()
        t0 = time.perf_counter()
        r.submit(_gated_fit(gates, ran), 2)  # a third: waits for the oldest (staged, not yet due)
        assert 0.1 < time.perf_counter() - t0 < 4.0
        assert installed == []  # fit 0 finished but stays staged until its swap point
        gates[1].set()
        gates[2].set()
        r.drain()
        assert installed == [0, 1, 2] and ran == [0, 1, 2]
    finally:
        for g in gates.values():
            g.set()
        r.close()


def test_lag_one_behaves_as_before_one_fit_at_a_time() -> None:
    gates = {0: threading.Event(), 1: threading.Event()}
    installed: list[int] = []
    r = Refitter(installed.append, executor="thread", swap="next_update", lag=1)
    try:
        r.begin_update()
        r.submit(_gated_fit(gates, []), 0)
        r.end_update()
        r.begin_update()  # update 2: fit 0 is due now; submitting the next one waits for it
        threading.Timer(0.2, gates[0].set).start()
        t0 = time.perf_counter()
        r.submit(_gated_fit(gates, []), 1)
        assert time.perf_counter() - t0 > 0.1 and installed == [0]
    finally:
        for g in gates.values():
            g.set()
        r.close()


@pytest.mark.parametrize("lag", [2, 3])
def test_alp_gmm_with_queued_fits_is_reproducible_and_round_trips(lag: int) -> None:
    # 1,024-outcome updates with fit_rate 50: a fit on every update, so `lag` fits are in
    # flight at once; a state saved then (several staged fits) must continue exactly
    def drive(t, rounds: int, start: int = 0) -> list:
        out = []
        for k in range(start, start + rounds):
            tasks = t.sample(1024)
            out += [x.params for x in tasks]
            t.update([Outcome(x.id, float(np.sin(5 * x.params[0]) * (k % 3))) for x in tasks])
        return out

    cfg = dict(seed=3, fit_rate=50, refit_lag=lag)
    a, b = make_teacher("alp_gmm", SPACE, **cfg), make_teacher("alp_gmm", SPACE, **cfg)
    try:
        assert drive(a, 6) == drive(b, 6)
        state = json.loads(json.dumps(a.state_dict()))
        assert len(state["later_staged_fits"]) == lag - 1
        c = make_teacher("alp_gmm", SPACE, **{**cfg, "seed": 99})
        drive(c, 2)  # fits of its own in flight: the loaded state replaces them
        c.load_state_dict(state)
        assert drive(a, 4, 6) == drive(c, 4, 6)
        c.close()
    finally:
        a.close()
        b.close()
