"""Curriculum teachers: pure Python (no Ray), driven by ``sample``/``update``.

>>> from openended.tasks import Box, Outcome
>>> from openended.teachers import make_teacher
>>> t = make_teacher("random", Box([0, 0], [1, 1]), seed=0)
>>> tasks = t.sample(4)
>>> t.update([Outcome(task_id=tasks[0].id, episode_return=0.3)])
>>> t.stats()["outcomes"]
1
"""

from openended.teachers.base import BaseTeacher, RefitConfig, Teacher, TeacherConfig
from openended.teachers.registry import list_teachers, make_teacher, register_teacher, teacher_class

__all__ = [
    "Teacher",
    "BaseTeacher",
    "TeacherConfig",
    "RefitConfig",
    "make_teacher",
    "register_teacher",
    "teacher_class",
    "list_teachers",
]
