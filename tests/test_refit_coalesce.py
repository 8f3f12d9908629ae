"""`Refitter(coalesce=True)` (GMM teachers' opt-in ``refit_coalesce``): updates never wait for a fit."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import pytest
from support import slow_gmm_fits

from openended.errors import ConfigError
from openended.tasks import Box, Outcome
from openended.teachers import make_teacher
from openended.teachers.refit import BACKGROUND_NICE, Refitter, lower_priority

SPACE = Box([0.0, 0.0], [1.0, 1.0])


def test_coalesce_holds_the_newest_fit_and_drops_the_ones_it_replaces() -> None:
    gate = threading.Event()
    ran: list[int] = []
    installed: list[int] = []

    def fit(i: int) -> int:
        if i == 0:
            gate.wait(5.0)
        ran.append(i)
        return i

    r = Refitter(installed.append, executor="thread", swap="asap", coalesce=True)
    try:
        r.submit(fit, 0)  # starts, blocks on the gate
        t0 = time.perf_counter()
        for i in (1, 2, 3):
            r.submit(fit, i)  # held, each replacing the previous one: no wait
            r.on_update()
        assert time.perf_counter() - t0 < 0.5 and r.busy and r.n_coalesced == 2
        gate.set()
        r.drain()  # finishes 0, then starts and finishes the held 3
        assert ran == [0, 3] and installed[-1] == 3
    finally:
        r.close()


def test_coalesce_needs_the_asap_swap() -> None:
    with pytest.raises(ValueError, match="asap"):
        Refitter(lambda _: None, swap="next_update", coalesce=True)
    with pytest.raises(ConfigError, match="refit_coalesce"):
        make_teacher("alp_gmm", SPACE, refit_coalesce=True)


def test_alp_gmm_update_does_not_wait_for_a_running_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    slow_gmm_fits(monkeypatch, 1.0)
    cfg: dict[str, Any] = dict(seed=0, fit_rate=20, refit_swap="asap", refit_coalesce=True)
    with make_teacher("alp_gmm", SPACE, **cfg) as t:
        t0 = time.perf_counter()
        for _ in range(6):  # a fit is due on every update
            tasks = t.sample(20)
            t.update([Outcome(task_id=x.id, episode_return=x.params[0]) for x in tasks])
        assert time.perf_counter() - t0 < 0.8
        st = t.stats()
        assert st["refits_coalesced"] >= 3 and st["refit_busy"]
        t.refitter.drain()
        assert t.stats()["fits"] >= 1 and not t.refitter.busy  # the newest fit live (the first may be replaced unseen)


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
@pytest.mark.parametrize("coalesce", [True, False])
def test_only_a_coalescing_worker_runs_at_a_lower_cpu_priority(coalesce: bool) -> None:
    """Nobody waits for a coalescing worker, so it yields the CPU; a worker that updates wait for keeps it."""
    caller = _own_nice()
    seen: list[int] = []
    r = Refitter(seen.append, executor="thread", swap="asap", coalesce=coalesce)
    try:
        r.submit(_own_nice)
        r.drain()
    finally:
        r.close()
    expected = min(19, caller + BACKGROUND_NICE) if coalesce else caller
    assert seen == [expected]
    assert _own_nice() == caller  # the caller's own priority is untouched


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_lower_priority_changes_only_the_calling_thread() -> None:
    out: dict[str, int | bool] = {}

    def lowered() -> None:
        before = _own_nice()
        out["ok"] = lower_priority(3)
        out["delta"] = _own_nice() - before

    t = threading.Thread(target=lowered)
    before_main = _own_nice()
    t.start()
    t.join()
    assert out["ok"] is True and out["delta"] == min(3, 19 - before_main)
    assert _own_nice() == before_main
