"""What the teacher service hosts: curricula, their specs and how their teachers are built.

Why apart from `openended.runtime.core`: turning an ``add_curriculum`` call (a registry
name with a config, a teacher object, or a factory) into per-student teachers is its own
job, and `restore` does it again from a saved spec.

Contents:
    CurriculumSpec    -- what is needed to rebuild a curriculum (checkpointed and logged).
    Curriculum        -- one hosted curriculum: spec, space, teachers per student, its
                         lock, dedup memory and counters.
    new_curriculum    -- validate an ``add_curriculum`` call and build its `Curriculum`.
    curriculum_from_spec -- the same from a saved spec (restore, replay).
    student_seed      -- the seed of one student's teacher in ``"separate"`` mode.
    StudentsMode, TeacherFactory
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from hashlib import blake2b
from typing import Any, Literal, NamedTuple

from openended.errors import ConfigError
from openended.jsonio import plain_json
from openended.registry import normalize_name
from openended.runtime.recovery import EpisodeDedup
from openended.runtime.report_queue import ReportQueue
from openended.tasks import TaskSpace, space_from_dict

__all__ = [
    "CurriculumSpec",
    "Curriculum",
    "new_curriculum",
    "curriculum_from_spec",
    "student_seed",
    "StudentsMode",
    "TeacherFactory",
]

StudentsMode = Literal["separate", "shared"]
TeacherFactory = Callable[[str], Any]  # student -> Teacher


def student_seed(base_seed: int, student: str) -> int:
    """The seed of ``student``'s own teacher in ``students="separate"`` mode.

    ``"default"`` keeps the configured seed (a one-student run equals the plain
    teacher); other students get an independent, stable stream derived from the name.
    """
    if student == "default":
        return int(base_seed)
    digest = blake2b(f"{int(base_seed)}\x00{student}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@dataclass
class CurriculumSpec:
    """What is needed to rebuild a curriculum's teachers (checkpointed and logged).

    ``teacher`` is a registry name, or ``None`` for a teacher given as an object or
    factory (then `TeacherServiceCore.restore` needs it again via ``teachers=``).
    """

    name: str
    teacher: str | None
    space: dict
    config: dict = field(default_factory=dict)
    preset: str | None = None
    students: StudentsMode = "separate"

    def to_dict(self) -> dict:
        """JSON-ready form (what checkpoints and ``curriculum`` log events store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CurriculumSpec:
        """Inverse of `to_dict` (fields missing from older files take their defaults)."""
        return cls(
            name=d["name"],
            teacher=d.get("teacher"),
            space=d["space"],
            config=dict(d.get("config") or {}),
            preset=d.get("preset"),
            students=d.get("students", "separate"),
        )


class Curriculum:
    """One hosted curriculum: its spec, space, teachers per student, dedup memory, counters."""

    def __init__(self, spec: CurriculumSpec, space: TaskSpace, factory: TeacherFactory, dedup_capacity: int) -> None:
        self.spec = spec
        self.space = space
        self.kind = space.kind
        self.factory = factory
        self.teachers: dict[str, Any] = {}
        #: Serialises this curriculum's teachers (sample/update/state_dict), so a slow
        #: update of one curriculum never blocks another one's sample.
        self.lock = threading.RLock()
        self.dedup = EpisodeDedup(dedup_capacity)
        #: Reports waiting for ``lock``: the next holder applies them as one batch (group commit).
        self.reports = ReportQueue()
        self.counters: dict[str, Any] = {
            "tasks_sampled": 0,
            "sample_calls": 0,
            "outcomes_received": 0,
            "outcomes_accepted": 0,
            "duplicates_dropped": 0,
            "outcomes_without_episode_id": 0,
            "successes": 0,
            "success_known": 0,
            "return_sum": 0.0,
            "report_calls": 0,
        }

    def teacher_key(self, student: str) -> str:
        """Where ``student``'s teacher is kept in ``teachers``: ``"*"`` for all in ``"shared"`` mode."""
        return "*" if self.spec.students == "shared" else student

    def teacher(self, student: str) -> Any:
        """``student``'s teacher (the shared one in ``"shared"`` mode), created on first use."""
        key = self.teacher_key(student)
        teacher = self.teachers.get(key)
        if teacher is None:
            teacher = self.factory(student)
            self.teachers[key] = teacher
        return teacher


# ------------------------------------------------------------------ building
class _TeacherSource(NamedTuple):
    """What an ``add_curriculum`` call resolves to: its spec, space and teacher factory."""

    spec: CurriculumSpec
    space: TaskSpace
    factory: TeacherFactory


def new_curriculum(
    name: str,
    teacher: str | Any | TeacherFactory,
    space: TaskSpace | dict | None,
    config: dict | None,
    preset: str | None,
    students: StudentsMode,
    dedup_capacity: int,
) -> Curriculum:
    """Validate an ``add_curriculum`` call (see `TeacherServiceCore.add_curriculum`) and build its curriculum.

    A registry teacher is instantiated once to check its config.
    """
    source = _teacher_source(name, teacher, space, config, preset, students)
    return Curriculum(source.spec, source.space, source.factory, dedup_capacity)


def curriculum_from_spec(spec: dict, teachers: Mapping[str, Any], dedup_capacity: int) -> Curriculum:
    """A curriculum again from its saved spec.

    ``teachers`` gives the object or factory of a curriculum that was not built from a
    registry name.
    """
    saved = CurriculumSpec.from_dict(spec)
    if saved.teacher is not None:
        source = _teacher_source(saved.name, saved.teacher, saved.space, saved.config, saved.preset, saved.students)
    else:
        given = teachers.get(saved.name)
        if given is None:
            raise ConfigError(
                f"restore: curriculum {saved.name!r} was built from a teacher object/factory; "
                f"pass it again with teachers={{{saved.name!r}: ...}}"
            )
        source = _teacher_source(saved.name, given, space_from_dict(saved.space), None, None, saved.students)
    return Curriculum(saved, source.space, source.factory, dedup_capacity)


def _teacher_source(
    name: str,
    teacher: Any,
    space: TaskSpace | dict | None,
    config: dict | None,
    preset: str | None,
    students: StudentsMode,
) -> _TeacherSource:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"curriculum name: must be a non-empty string, got {name!r}")
    if students not in ("separate", "shared"):
        raise ConfigError(f"curriculum.{name}.students: must be 'separate' or 'shared', got {students!r}")
    if isinstance(space, dict):
        space = space_from_dict(space)
    # JSON-normalised (tuples -> lists), so a spec compares equal after a checkpoint round trip.
    config = plain_json(dict(config or {}))
    if isinstance(teacher, str):
        return _registry_source(name, teacher, space, config, preset, students)
    if config or preset:
        raise ConfigError(
            f"curriculum.{name}: config/preset apply to registry teachers only; configure the teacher object yourself"
        )
    if _is_teacher(teacher):
        if students != "shared":
            raise ConfigError(
                f"curriculum.{name}.students: a teacher object can only be 'shared'; "
                "pass a factory (student -> teacher) for separate state"
            )
        shared_teacher = teacher
        task_space = space if space is not None else shared_teacher.space
        spec = CurriculumSpec(name, None, task_space.to_dict(), {}, None, students)
        return _TeacherSource(spec, task_space, lambda student: shared_teacher)
    if callable(teacher):
        if space is not None:
            return _TeacherSource(CurriculumSpec(name, None, space.to_dict(), {}, None, students), space, teacher)
        probe = teacher("default")  # the factory's teachers know their space
        spec = CurriculumSpec(name, None, probe.space.to_dict(), {}, None, students)
        return _TeacherSource(spec, probe.space, _probe_first(probe, teacher))
    raise ConfigError(
        f"curriculum.{name}.teacher: must be a registry name, a teacher or a factory, got {type(teacher).__name__}"
    )


def _registry_source(
    name: str, teacher: str, space: TaskSpace | None, config: dict, preset: str | None, students: StudentsMode
) -> _TeacherSource:
    from openended.teachers import make_teacher, teacher_class

    teacher_class(teacher)  # unknown names fail here, with "did you mean"
    if space is None:
        raise ConfigError(f"curriculum.{name}.space: required with teacher {teacher!r}")
    task_space = space
    base_seed = int(config.get("seed", 0))

    def factory(student: str) -> Any:
        student_config = dict(config)
        if students == "separate":
            student_config["seed"] = student_seed(base_seed, student)
        return make_teacher(teacher, task_space, preset=preset, **student_config)

    factory("default").close()  # validate the config now, not at the first sample
    spec = CurriculumSpec(name, normalize_name(teacher), task_space.to_dict(), config, preset, students)
    return _TeacherSource(spec, task_space, factory)


def _probe_first(probe: Any, factory: TeacherFactory) -> TeacherFactory:
    """A factory whose first call returns ``probe`` (built to learn the space); later calls go to ``factory``.

    So the probe teacher is not wasted.
    """
    unused = [probe]

    def make(student: str) -> Any:
        return unused.pop() if unused else factory(student)

    return make


def _is_teacher(x: Any) -> bool:
    return hasattr(x, "sample") and hasattr(x, "update")
