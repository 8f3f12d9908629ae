"""Random teacher: uniform over the task space, ignores feedback (the baseline every paper uses).

Reference: teachDeepRL ``random_teacher.py``; works on any space with uniform sampling.
"""

from __future__ import annotations

from openended.tasks import Task
from openended.teachers.base import BaseTeacher, TeacherConfig

__all__ = ["RandomTeacher", "RandomConfig"]


class RandomConfig(TeacherConfig):
    """Random teacher: only the common fields (``seed``, ``max_tracked_tasks``)."""


class RandomTeacher(BaseTeacher):
    """Uniform tasks from ``space.sample_uniform``; outcomes are counted, never used."""

    name = "random"
    Config = RandomConfig

    def _sample(self, n: int, student: str) -> list[Task]:
        return self.space.sample_uniform(self.rng, n)
