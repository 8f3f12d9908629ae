"""A simulated learner on Crafter's achievement graph: curricula compared in seconds, not GPU-days.

Why: OMNI's Crafter result (OMNI > LP > uniform on tasks above 0.2 success) comes from
PPO runs of ~1e7-1e8 frames. Teachers differ in *which* tasks they spend practice on, so
a learner model with the properties that matter lets the benchmark compare teachers on
the real task sets and the real teacher code, in pure numpy.

The model is `openended.envs.prereq_sim.PrereqSimLearner` (its docstring states it) on
Crafter's graph (`CRAFTER_GRAPH`):

* concepts are Crafter's achievements, prerequisites `PREREQUISITES`, depth 0
  (collect_wood) to 7 (collect_diamond);
* texts are parsed with the Crafter grammar (`parse_crafter_task`): counts, ``and`` /
  ``then`` composites, ``dummy_task_*`` impossible tasks;
* surface forms are the verbs; the six canonical verbs need no grounding, OMNI's ``trs``
  synonyms (gather, craft, put, ...) do.

Contents:
    CRAFTER_GRAPH     -- Crafter as a `PrereqGraph`.
    SimConfig         -- the learner's parameters (re-exported from ``prereq_sim``).
    CrafterSimLearner -- tasks in, Bernoulli successes out; ``run_episodes``, ``evaluate``,
                         ``success_prob``, ``add_tasks`` (generated tasks), state round trip.
    achievement_depth -- longest prerequisite chain below each achievement.
"""

from __future__ import annotations

from collections.abc import Sequence

from openended.envs.crafter import ACHIEVEMENTS, PREREQUISITES, SYNONYMS, VERBS, parse_crafter_task
from openended.envs.prereq_sim import PrereqGraph, PrereqSimLearner, SimConfig, graph_depth

__all__ = ["SimConfig", "CrafterSimLearner", "achievement_depth", "CRAFTER_GRAPH"]

CRAFTER_GRAPH = PrereqGraph(
    concepts=ACHIEVEMENTS,
    prerequisites=PREREQUISITES,
    forms=tuple(dict.fromkeys((*VERBS, *(s for ss in SYNONYMS.values() for s in ss)))),
    canonical=frozenset(VERBS),
    parse=parse_crafter_task,
)


def achievement_depth() -> dict[str, int]:
    """Longest prerequisite chain below each achievement (collect_wood 0 ... collect_diamond 7)."""
    return graph_depth(ACHIEVEMENTS, PREREQUISITES)


class CrafterSimLearner(PrereqSimLearner):
    """A seeded simulated learner over Crafter task texts (`PrereqSimLearner` on `CRAFTER_GRAPH`).

    Args:
        tasks: task texts (``crafter_task_set(...)`` or any texts in the Crafter grammar;
            unparseable texts are impossible).
        config: `SimConfig` or a dict of its fields.
        seed: seed of the learner's own generator (episode outcomes).
    """

    def __init__(self, tasks: Sequence[str] = (), config: SimConfig | dict | None = None, seed: int = 0) -> None:
        super().__init__(CRAFTER_GRAPH, tasks, config, seed)
