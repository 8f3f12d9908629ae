"""The schema of a teacher's ``state_dict()``, checked before `load_state_dict` touches anything.

Why: a state comes from disk (checkpoints), from another process, or from a user; one
with a missing key used to fail half-way through loading (``KeyError``/``TypeError``),
leaving the teacher part old, part new. `check_state` validates the whole dict first:

* the common part (`TeacherState`: teacher name, ``state_version``, space, generator,
  issued tasks, counters) with pydantic, field by field;
* the version: states carry ``state_version`` (`STATE_VERSION`); one newer than this code
  is refused, one without it is version 1 (the format before it was recorded);
* the algorithm part (``algo``) against the teacher's own: the keys a freshly built
  teacher of the same class saves, each of the same JSON kind (mapping, list, number,
  string, bool) wherever both are set.

What the schema cannot see (a wrong array length deep inside ``algo``) is caught by the
teacher's loader; `openended.teachers.base.BaseTeacher.load_state_dict` then puts the
previous state back, so a failed load never leaves a half-loaded teacher.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openended.errors import TeacherStateError
from openended.validation import format_validation_error

__all__ = ["STATE_VERSION", "TeacherState", "check_state"]

#: The version of the state format this code writes (bump it when the common part changes shape).
STATE_VERSION = 1


class TeacherState(BaseModel):
    """The common part of every teacher's state (the algorithm's own part is ``algo``)."""

    model_config = ConfigDict(extra="forbid")

    teacher: str
    state_version: int = Field(1, ge=1)
    config: dict[str, Any]
    space: dict[str, Any]
    rng: dict[str, Any]
    issued: list[dict[str, Any]]
    issued_batches: list[tuple[int, list[str]]] | None = None
    issued_gen: int = Field(0, ge=0)
    counts: dict[str, int]
    algo: dict[str, Any]
    staged_fit: Any = None
    has_staged_fit: bool = False
    staged_fit_due_in: int | None = None
    later_staged_fits: list[tuple[Any, int | None]] | None = None  # with refit_lag > 1: the newer ones, in order


def _kind(value: Any) -> str | None:
    """The JSON kind of ``value``; None for None and for numpy arrays (checked by the teacher's loader)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Number, np.number)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return None


def check_state(state: Any, teacher: str, algo_template: dict[str, Any]) -> TeacherState:
    """Validate ``state`` for a teacher named ``teacher`` whose fresh algorithm state is ``algo_template``.

    Raises:
        TeacherStateError: naming the first problem's key (and listing every pydantic one).
    """
    if not isinstance(state, dict):
        raise TeacherStateError(f"load_state_dict(state): must be a dict from state_dict(), got {type(state).__name__}")
    if state.get("teacher") != teacher:
        raise TeacherStateError(f"state is for teacher {state.get('teacher')!r}, not {teacher!r}")
    try:
        parsed = TeacherState.model_validate(state)
    except ValidationError as err:
        raise TeacherStateError(
            f"state for teacher {teacher!r} does not match its schema:\n{format_validation_error(err, 'state')}"
        ) from None
    if parsed.state_version > STATE_VERSION:
        raise TeacherStateError(
            f"state.state_version: {parsed.state_version} is newer than this openended's {STATE_VERSION}; "
            "load it with the version that wrote it"
        )
    for i, task in enumerate(parsed.issued):
        if not isinstance(task.get("id"), str):
            raise TeacherStateError(f"state.issued[{i}].id: must be a task id string, got {task.get('id')!r}")
    missing = sorted(set(algo_template) - set(parsed.algo))
    if missing:
        raise TeacherStateError(f"state.algo: missing {missing} for teacher {teacher!r}")
    extra = sorted(set(parsed.algo) - set(algo_template))
    if extra:
        raise TeacherStateError(f"state.algo: unknown keys {extra} for teacher {teacher!r}")
    for key, want in algo_template.items():
        have_kind, want_kind = _kind(parsed.algo[key]), _kind(want)
        if have_kind is not None and want_kind is not None and have_kind != want_kind:
            raise TeacherStateError(f"state.algo.{key}: must be a {want_kind}, got a {have_kind}")
    return parsed
