"""Binary success of an outcome, for teachers that learn from success rather than return.

Why one helper: ADR, SFL, GoalGAN and self-play all need "did the episode succeed?".
An outcome's own ``success`` flag wins (the task's criterion, reported by the env);
where it is ``None`` (the toy learner, plain return-only students) the teacher's
``success_threshold`` on the episode return stands in, as TeachMyAgent does with its
``episodic_reward > 230`` criterion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from openended.tasks import Outcome

__all__ = ["SuccessConfig", "success_of", "successes"]


class SuccessConfig(BaseModel):
    """Mixin field: the return above which an outcome without a success flag counts as a success."""

    success_threshold: float = Field(
        0.5,
        description="episode_return >= this counts as a success where the outcome reports no success flag "
        "(TeachMyAgent: 230 on Stump Tracks / Parkour; the toy learner's mastery: 0.75).",
    )


def success_of(outcome: Outcome, threshold: float) -> bool:
    """The outcome's own ``success`` flag, or ``episode_return >= threshold`` when it has none."""
    if outcome.success is not None:
        return bool(outcome.success)
    return outcome.episode_return >= threshold


def successes(outcomes: Sequence[Outcome], threshold: float) -> np.ndarray:
    """`success_of` for each outcome, as a float 0/1 array."""
    return np.fromiter((success_of(o, threshold) for o in outcomes), dtype=np.float64, count=len(outcomes))
