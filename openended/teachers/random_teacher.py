"""Random teacher: uniform over the task space, ignores feedback (the baseline every paper uses).

Reference: teachDeepRL ``random_teacher.py``; works on any space with uniform sampling.
On `Box` and `Discrete` spaces it also serves the array path (`BaseTeacher.sample_arrays`):
the same RNG draws as ``sample``, so the same tasks, with no `Task` built.
"""

from __future__ import annotations

from typing_extensions import override

from openended.tasks import Box, Discrete, Task, TaskArrays
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

    @override
    def supports_arrays(self) -> bool:
        return isinstance(self.space, (Box, Discrete))

    @override
    def _sample_arrays(self, n: int, student: str) -> TaskArrays:
        space = self.space
        if isinstance(space, Box):  # the draw of Box.sample_uniform
            x = space.sample_array(self.rng, n)
            return TaskArrays.uniform_origin(space.ids_u64(x), "uniform", params=x)
        assert isinstance(space, Discrete)
        idx = self.rng.integers(0, space.n, size=n)  # the draw of Discrete.sample_uniform
        return TaskArrays.uniform_origin(space.ids_u64[idx], "uniform", indices=idx)
