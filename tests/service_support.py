"""Teachers and helpers shared by the service and recovery tests (not collected: no
``test_`` prefix). Importing it registers the ``test_counting`` teacher."""

from __future__ import annotations

from collections import Counter

import numpy as np

from openended.runtime.core import TeacherServiceCore
from openended.tasks import Box, Discrete, Outcome, Task
from openended.teachers import BaseTeacher, TeacherConfig, register_teacher


class CountingConfig(TeacherConfig):
    """A tuple field, to check specs compare equal across JSON round trips."""

    bounds: tuple[float, float] = (0.0, 1.0)


class CountingTeacher(BaseTeacher):
    """Uniform sampling; counts every outcome it learns from, per task and per episode."""

    name = "test_counting"
    Config = CountingConfig

    def __init__(self, space, config=None):
        super().__init__(space, config)
        self.per_task: Counter = Counter()
        self.episodes: Counter = Counter()

    def _sample(self, n, student):
        return self.space.sample_uniform(self.rng, n)

    def _update(self, tasks, outcomes):
        for t, o in zip(tasks, outcomes):
            assert t.id == o.task_id
            self.per_task[o.task_id] += 1
            self.episodes[o.episode_id] += 1

    def _state_dict(self):
        return {"per_task": dict(self.per_task), "episodes": dict(self.episodes)}

    def _load_state_dict(self, state):
        self.per_task = Counter(state["per_task"])
        self.episodes = Counter(state["episodes"])


class UnseededTeacher(CountingTeacher):
    """Same state format, but sampling that no seed reproduces (like an LLM generator)."""

    def _sample(self, n, student):
        return self.space.sample_uniform(np.random.default_rng(), n)


register_teacher("test_counting", CountingTeacher, overwrite=True)
BOX = Box([0.0, 0.0], [1.0, 1.0], names=["a", "b"])


def outcomes_for(tasks: list[Task], start: int, student: str = "default") -> list[Outcome]:
    return [
        Outcome(t.id, float(i % 7), success=i % 2 == 0, length=10, student_id=student, episode_id=f"{start + i:016x}")
        for i, t in enumerate(tasks)
    ]


def logged_core(tmp_path, **kw) -> TeacherServiceCore:
    """A core with an event log and a checkpoint directory under ``tmp_path``."""
    return TeacherServiceCore(event_log=tmp_path / "events.jsonl", checkpoint_dir=tmp_path / "ckpt", **kw)


# ------------------------------------------------ format-1 fixtures (tests/data/format1)
class ArrayStateTeacher(BaseTeacher):
    """Uniform sampling; keeps its learning state in numpy arrays of several dtypes."""

    name = "test_array_state"
    space_kinds = ("discrete",)

    def __init__(self, space, config=None):
        super().__init__(space, config)
        self.returns = np.zeros(0, dtype=np.float64)
        self.visits = np.zeros(space.n, dtype=np.int64)
        self.table = np.zeros((2, space.n), dtype=np.float32)
        self.big = np.array([2**63 + 5], dtype=np.uint64)

    def _sample(self, n, student):
        return self.space.sample_uniform(self.rng, n)

    def _update(self, tasks, outcomes):
        self.returns = np.append(self.returns, [o.episode_return / 3.0 for o in outcomes])
        for t in tasks:
            self.visits[self.space.index(t)] += 1
        self.table[1] = self.visits / 7.0

    def _state_dict(self):
        return {
            "returns": self.returns,
            "visits": self.visits,
            "table": self.table,
            "big": self.big,
            "total": np.float64(self.returns.sum()),
            "n": np.int64(len(self.returns)),
            "seen": np.bool_(True),
        }

    def _load_state_dict(self, state):
        self.returns, self.visits, self.table, self.big = (state[k] for k in ("returns", "visits", "table", "big"))


register_teacher("test_array_state", ArrayStateTeacher, overwrite=True)
LEVELS = Discrete(["lvl-a", "lvl-b", "lvl-c"])


def fixture_outcomes(tasks: list[Task], start: int) -> list[Outcome]:
    return [
        Outcome(
            t.id,
            float(i) + 0.1,
            success=i % 2 == 0,
            length=5,
            student_id="s",
            t=1.7e9 + start + i,
            episode_id=f"{start + i:016x}",
            info={"arr": np.arange(2)} if i == 0 else {},
        )
        for i, t in enumerate(tasks)
    ]


def fixture_run(core: TeacherServiceCore) -> None:
    """The call sequence that wrote tests/data/format1 (checkpointing where the core can)."""
    core.add_curriculum("lv", "test_array_state", LEVELS, config={"seed": 4})
    core.report("lv", fixture_outcomes(core.sample_tasks("lv", "s", 4), 0))
    if core.checkpoint_dir is not None:
        core.checkpoint()
    core.sample("lv", "s", 3, peer="p1")
    core.report("lv", fixture_outcomes(core.sample_tasks("lv", "s", 2), 10))
