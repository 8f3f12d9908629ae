"""`check_teacher`: drive any teacher through the contract, with messages that name the likely cause.

Users call it on their own plugins; CI runs it on every registered teacher.
Checks: samples lie in the space; same seed => same tasks; state round trip continues
identically; outcomes with unknown or late task ids are handled; update accepts batches
in any order; stats() is a JSON-serialisable dict.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import numpy as np

from openended.tasks import Outcome, Task
from openended.teachers.base import BaseTeacher

__all__ = ["check_teacher", "TeacherCheckError"]


class TeacherCheckError(AssertionError):
    """A teacher broke the contract; the message says which part and the likely cause."""


def _fake_return(task: Task, rng: np.random.Generator) -> float:
    if task.params and all(isinstance(p, (int, float)) for p in task.params):
        return float(np.tanh(np.sum(np.asarray(task.params, dtype=float))) + rng.normal(0, 0.05))
    return float(rng.uniform())


def _drive(teacher: BaseTeacher, rounds: int, batch: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    for _ in range(rounds):
        tasks = teacher.sample(batch)
        ids.extend(t.id for t in tasks)
        outs = [
            Outcome(
                task_id=t.id, episode_return=_fake_return(t, rng), success=bool(rng.uniform() < 0.3), length=1, t=0.0
            )
            for t in tasks
        ]
        rng.shuffle(outs)  # outcomes arrive out of order
        teacher.update(outs)
    return ids


def check_teacher(make: Callable[[int], BaseTeacher], *, rounds: int = 40, batch: int = 8) -> None:
    """Raise `TeacherCheckError` if teachers built by ``make(seed)`` break the contract."""
    t1, t2 = make(0), make(0)
    try:
        ids1 = _drive(t1, rounds, batch, seed=1)
        ids2 = _drive(t2, rounds, batch, seed=1)
        if ids1 != ids2:
            raise TeacherCheckError(
                f"{t1.name}: the same seed and outcome sequence gave different tasks. Most likely `_sample` "
                "uses global np.random, wall-clock time or an unseeded library call instead of self.rng."
            )
        for t in t1.sample(batch):
            if not t1.space.contains(t):
                raise TeacherCheckError(
                    f"{t1.name}: sampled task {t} is outside {t1.space!r}; clip or reject-sample in `_sample`."
                )
        state = json.loads(json.dumps(t1.state_dict()))
        t3 = make(123)
        t3.load_state_dict(state)
        a = _drive(t1, 5, batch, seed=7)
        b = _drive(t3, 5, batch, seed=7)
        if a != b:
            raise TeacherCheckError(
                f"{t1.name}: after state_dict -> load_state_dict the continuation differs. Most likely "
                "`_state_dict` misses part of the algorithm state (history, model, counters)."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            before = t1.stats()["unknown_task_outcomes"]
            t1.update([Outcome(task_id="0" * 16, episode_return=1.0)])
            if t1.stats()["unknown_task_outcomes"] != before + 1:
                raise TeacherCheckError(f"{t1.name}: an outcome for an unknown task id was not counted")
        t1.update([])
        try:
            json.dumps(t1.stats())
        except TypeError as e:
            raise TeacherCheckError(
                f"{t1.name}: stats() is not JSON-serialisable ({e}); return plain floats/lists, not numpy values"
            ) from None
    finally:
        for teacher in (t1, t2):
            teacher.close()
