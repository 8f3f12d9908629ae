"""The judge interface behind every "model of interestingness" (MoI) backend.

One call shape for all backends (embedding novelty, OpenAI-compatible HTTP, llama.cpp,
rule oracle, record/replay): ``judge(candidates, context) -> list[Judgement]``, one
judgement per candidate, in order. A backend that fails on a candidate returns a
judgement with ``ok=False`` (and a neutral score) instead of raising, so a curriculum
never crashes because a model answered badly.

Scores are in [0, 1]: 1 = interesting (worth practising next), 0 = boring (e.g. a
near-duplicate of something already mastered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from openended.tasks import Task

__all__ = ["Judgement", "JudgeContext", "Judge", "candidate_text"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """A judge's verdict on one candidate."""

    score: float
    reason: str = ""
    ok: bool = True
    backend: str = ""

    @property
    def interesting(self) -> bool:
        """Score at least 0.5: the candidate is worth practising (OMNI keeps it)."""
        return self.score >= 0.5


@dataclass(frozen=True)
class JudgeContext:
    """What the judge knows: the tasks the learner has mastered, plus free-form extras.

    The OMNI question is "given these are done well, is this candidate interesting?";
    extras are e.g. an environment description or the learner's failures.
    """

    mastered: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Judge(Protocol):
    """A model of interestingness: scores candidate tasks given what is mastered."""

    name: str

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """One judgement per candidate, in order.

        A failure on a candidate is a judgement with ``ok=False`` and a neutral score,
        not an exception, so the curriculum keeps running.
        """
        ...


def candidate_text(c: Task | str) -> str:
    """The text a judge reads for a candidate (task text, else its params)."""
    if isinstance(c, str):
        return c
    if c.text:
        return c.text
    return f"task with parameters {list(c.params)}"
