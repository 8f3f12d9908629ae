"""A simulated learner on any prerequisite graph: curricula compared in seconds, not GPU-days.

Why: teachers differ in *which* tasks they spend practice on, so a learner model with the
properties that matter lets a benchmark compare teachers on real task sets with the real
teacher code, in pure numpy. The model knows nothing about a particular world: a
`PrereqGraph` names the concepts, their direct prerequisites, the surface forms a task
can be written in (verbs, spellings) and a parser from text to components. Crafter's
graph is one (``openended.envs.crafter_sim``), a generated tech tree another
(``openended.envs.techtree``).

* **prerequisites**: a concept can only be learned (and succeeded at) once every direct
  prerequisite is mastered: its count-1 task succeeds with probability >= ``mastery``
  under a canonical surface form;
* **practice raises competence**: a practised task raises a per-(concept, count) skill
  logit by ``lr * signal``, ``signal = floor + (1 - floor) * p`` (RL learns faster from
  the successes it sees; ``floor`` stands for exploration);
* **impossible tasks never** succeed and teach nothing;
* **near-duplicates share competence partially**: practising ``(a, k)`` raises
  ``(a, k')`` by ``count_transfer * count_decay**|k - k'|`` of the step; a non-canonical
  surface form (a synonym verb, another spelling of the count) is the same skill but
  needs grounding (``g[form]`` starts at ``synonym_grounding`` and rises with practice of
  any task written in that form); a composite task needs each part and a composition
  skill, and practising it trains its parts by ``composite_transfer``.

Success probability of a single task ``(a, k, form)``::

    p = gate[a] * g[form] * sigmoid(u[a, k] - d[a] - count_difficulty * (k - 1))

with ``d[a] = base_difficulty + depth_difficulty * depth(a)`` (depth in the graph).
A composite multiplies its parts' ``p`` by ``sigmoid(w[pair] - ordered_penalty*ordered)``.

The numbers are modelling choices (documented in `SimConfig`), not fitted to any curve;
a benchmark reports what this model gives, whichever teacher wins.

Contents:
    SimConfig      -- the learner's parameters (pydantic, one docstring per field).
    TaskSpecLike   -- what a graph's parser returns (components, forms, flags).
    PrereqGraph    -- concepts, prerequisites, surface forms, parser.
    graph_depth    -- longest prerequisite chain below each concept.
    PrereqSimLearner -- tasks in, Bernoulli successes out; ``run_episodes``, ``evaluate``,
                        ``success_prob``, ``add_tasks`` (generated tasks), state round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from openended.errors import ConfigError
from openended.validation import validate_model

__all__ = ["SimConfig", "TaskSpecLike", "PrereqGraph", "graph_depth", "PrereqSimLearner"]

_MAXC = 3  # components per task the learner models


class TaskSpecLike(Protocol):
    """A parsed task as the learner reads it.

    ``components`` are ``(concept, count)``; ``verbs`` the surface form of each component
    (a key of `PrereqGraph.forms`: a verb or a spelling), in the same order.
    """

    @property
    def components(self) -> tuple[tuple[str, int], ...]: ...  # noqa: D102

    @property
    def verbs(self) -> tuple[str, ...]: ...  # noqa: D102

    @property
    def ordered(self) -> bool: ...  # noqa: D102

    @property
    def impossible(self) -> bool: ...  # noqa: D102


def graph_depth(concepts: Sequence[str], prerequisites: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest prerequisite chain below each concept (0 for a concept without prerequisites)."""
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def d(a: str) -> int:
        if a not in depth:
            if a in visiting:
                raise ConfigError(f"prerequisite graph: cycle through {a!r}")
            visiting.add(a)
            depth[a] = 1 + max((d(b) for b in prerequisites.get(a, ())), default=-1)
            visiting.discard(a)
        return depth[a]

    for a in concepts:
        d(a)
    return depth


@dataclass(frozen=True)
class PrereqGraph:
    """A world as the simulated learner sees it.

    Attributes:
        concepts: concept names (the learner keeps one skill row per concept, in this order).
        prerequisites: concept -> its direct prerequisites (missing = none).
        forms: every surface form a component can be written in; a form the parser
            returns that is not listed is read as ``forms[0]``.
        canonical: the forms that need no grounding (start at 1).
        parse: text -> `TaskSpecLike`, or None when the text is not in the grammar
            (such a task is impossible).
    """

    concepts: tuple[str, ...]
    prerequisites: Mapping[str, tuple[str, ...]]
    forms: tuple[str, ...]
    canonical: frozenset[str]
    parse: Callable[[str], TaskSpecLike | None]

    def depth(self) -> dict[str, int]:
        """Longest prerequisite chain below each concept."""
        return graph_depth(self.concepts, self.prerequisites)


class SimConfig(BaseModel):
    """Parameters of the simulated learner (defaults: a plausible, not fitted, Crafter learner)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = Field(0.05, gt=0, description="Skill-logit increase per practice episode at full signal.")
    signal_floor: float = Field(0.2, ge=0, le=1, description="Learning signal at zero success (exploration).")
    base_difficulty: float = Field(1.5, description="Logit offset of a depth-0 concept (p0 = sigmoid(-1.5)).")
    depth_difficulty: float = Field(0.4, ge=0, description="Extra logit offset per prerequisite depth.")
    count_difficulty: float = Field(0.35, ge=0, description="Extra logit offset per count above 1.")
    max_count: int = Field(20, ge=1, description="Counts above this are modelled as this count.")
    count_transfer: float = Field(0.5, ge=0, le=1, description="Share of a practice step reaching other counts.")
    count_decay: float = Field(0.7, ge=0, le=1, description="Transfer decay per unit of count difference.")
    synonym_grounding: float = Field(0.3, ge=0, le=1, description="Initial grounding of a non-canonical form.")
    grounding_lr: float = Field(0.03, ge=0, le=1, description="Grounding gained per episode using the form.")
    composite_transfer: float = Field(0.5, ge=0, le=1, description="Share of a composite's step reaching its parts.")
    composite_skill: float = Field(0.5, description="Initial composition-skill logit of a part combination.")
    ordered_penalty: float = Field(0.5, ge=0, description="Extra logit offset for 'then' (ordered) composites.")
    mastery: float = Field(0.5, gt=0, lt=1, description="Count-1 success needed to unlock dependants.")
    forgetting: float = Field(0.0, ge=0, le=1, description="Skill-logit decay per practice batch (0 = none).")


class PrereqSimLearner:
    """A seeded simulated learner over the task texts of a `PrereqGraph` (module docstring).

    Args:
        graph: the world (concepts, prerequisites, forms, parser).
        tasks: task texts; unparseable texts are impossible.
        config: `SimConfig` or a dict of its fields.
        seed: seed of the learner's own generator (episode outcomes).
    """

    def __init__(
        self,
        graph: PrereqGraph,
        tasks: Sequence[str] = (),
        config: SimConfig | dict | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(config, dict) or config is None:
            config = validate_model(SimConfig, dict(config or {}), prefix="sim")
        self.graph = graph
        self.config: SimConfig = config
        c = config
        self.rng = np.random.Generator(np.random.PCG64(seed))
        concepts = graph.concepts
        self._A = {a: i for i, a in enumerate(concepts)}
        self._V = {v: i for i, v in enumerate(graph.forms)}
        depth = graph.depth()
        self._d = np.array([c.base_difficulty + c.depth_difficulty * depth[a] for a in concepts])
        self._prereq = [[self._A[b] for b in graph.prerequisites.get(a, ())] for a in concepts]
        self._order = [self._A[a] for a in sorted(concepts, key=lambda a: (depth[a], a))]
        k = np.arange(c.max_count)
        dist = np.abs(k[:, None] - k[None, :])
        self._kern = np.where(dist == 0, 1.0, c.count_transfer * c.count_decay**dist)
        self.u = np.zeros((len(concepts), c.max_count))
        self.g = np.array([1.0 if v in graph.canonical else c.synonym_grounding for v in graph.forms])
        self.w: list[float] = []  # composition skills, one per part combination
        self._pair: dict[tuple, int] = {}
        self.texts: list[str] = []
        self._index: dict[str, int] = {}
        self._ach = np.zeros((0, _MAXC), dtype=np.int64)
        self._cnt = np.zeros((0, _MAXC), dtype=np.int64)
        self._verb = np.zeros((0, _MAXC), dtype=np.int64)
        self._ordered = np.zeros(0, dtype=bool)
        self._impossible = np.zeros(0, dtype=bool)
        self._pair_id = np.zeros(0, dtype=np.int64)
        self.episodes = 0
        self.add_tasks(tasks)

    # ------------------------------------------------------------------ task table
    def add_tasks(self, texts: Sequence[str]) -> np.ndarray:
        """Register texts (known ones are kept); returns their indices."""
        out = []
        rows: list[tuple] = []
        for t in texts:
            i = self._index.get(t)
            if i is None:
                i = len(self.texts) + len(rows)
                self._index[t] = i
                rows.append((t, self._encode(t)))
            out.append(i)
        if rows:
            self.texts += [t for t, _ in rows]
            enc = [e for _, e in rows]
            self._ach = np.concatenate([self._ach, np.array([e[0] for e in enc], dtype=np.int64)])
            self._cnt = np.concatenate([self._cnt, np.array([e[1] for e in enc], dtype=np.int64)])
            self._verb = np.concatenate([self._verb, np.array([e[2] for e in enc], dtype=np.int64)])
            self._ordered = np.concatenate([self._ordered, np.array([e[3] for e in enc], dtype=bool)])
            self._impossible = np.concatenate([self._impossible, np.array([e[4] for e in enc], dtype=bool)])
            self._pair_id = np.concatenate([self._pair_id, np.array([e[5] for e in enc], dtype=np.int64)])
        return np.asarray(out, dtype=np.int64)

    def _encode(self, text: str) -> tuple:
        ach, cnt, verb = [-1] * _MAXC, [1] * _MAXC, [0] * _MAXC
        spec = self.graph.parse(text)
        if (
            spec is None
            or spec.impossible
            or not spec.components
            or len(spec.components) > _MAXC
            or any(a not in self._A for a, _ in spec.components)
        ):
            return ach, cnt, verb, False, True, -1
        for j, ((a, k), v) in enumerate(zip(spec.components, spec.verbs)):
            ach[j], cnt[j], verb[j] = self._A[a], min(max(k, 1), self.config.max_count), self._V.get(v, 0)
        pair = -1
        if len(spec.components) > 1:
            key = tuple(sorted(spec.components))
            pair = self._pair.get(key, -1)
            if pair < 0:
                pair = self._pair[key] = len(self.w)
                self.w.append(self.config.composite_skill)
        return ach, cnt, verb, spec.ordered, False, pair

    def indices(self, texts: Sequence[str]) -> np.ndarray:
        """Indices of texts, registering unknown ones."""
        return self.add_tasks(texts)

    # ------------------------------------------------------------------ competence
    def _gates(self) -> tuple[np.ndarray, np.ndarray]:
        """(gate per concept, count-1 canonical success per concept)."""
        n = len(self.graph.concepts)
        gate = np.zeros(n)
        base = 1.0 / (1.0 + np.exp(-(self.u[:, 0] - self._d)))
        m = np.zeros(n)
        for a in self._order:
            ok = all(m[b] >= self.config.mastery for b in self._prereq[a])
            gate[a] = 1.0 if ok else 0.0
            m[a] = gate[a] * base[a]
        return gate, m

    def possible(self) -> np.ndarray:
        """Per registered task: can it ever succeed (parsed, not impossible)? A bool array."""
        return ~self._impossible

    def mastered(self) -> dict[str, bool]:
        """Concept -> whether its count-1 canonical task is at ``mastery`` and its prerequisites are."""
        _, m = self._gates()
        return {a: bool(m[i] >= self.config.mastery) for i, a in enumerate(self.graph.concepts)}

    def success_prob(self, idx: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """True success probability of tasks (all registered tasks when ``idx`` is None)."""
        sel = slice(None) if idx is None else np.asarray(idx, dtype=np.int64)
        ach, cnt, verb = self._ach[sel], self._cnt[sel], self._verb[sel]
        gate, _ = self._gates()
        valid = ach >= 0
        a = np.where(valid, ach, 0)
        k = cnt - 1
        logit = self.u[a, k] - self._d[a] - self.config.count_difficulty * k
        pc = gate[a] * self.g[verb] / (1.0 + np.exp(-logit))
        pc = np.where(valid, pc, 1.0)
        p = pc.prod(axis=1)
        pid = self._pair_id[sel]
        if len(self.w):
            w = np.asarray(self.w)[np.maximum(pid, 0)] - self.config.ordered_penalty * self._ordered[sel]
            p = np.where(pid >= 0, p / (1.0 + np.exp(-w)), p)
        return np.where(self._impossible[sel], 0.0, p)

    # ------------------------------------------------------------------ episodes
    def run_episodes(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        """Play one episode per index, then learn from the whole batch; return the successes (bool array).

        Each episode succeeds with a Bernoulli draw at the current competence.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return np.zeros(0, dtype=bool)
        c = self.config
        p = self.success_prob(idx)
        success = self.rng.random(idx.size) < p
        gate, _ = self._gates()
        ach, cnt, verb = self._ach[idx], self._cnt[idx], self._verb[idx]
        valid = ach >= 0
        learnable = (~self._impossible[idx]) & np.all(np.where(valid, gate[np.maximum(ach, 0)] > 0, True), axis=1)
        signal = np.where(learnable, c.signal_floor + (1.0 - c.signal_floor) * p, 0.0)
        if c.forgetting:
            self.u *= 1.0 - c.forgetting
        pid = self._pair_id[idx]
        share = np.where(pid >= 0, c.composite_transfer, 1.0)
        step = (c.lr * signal * share)[:, None] * valid  # (m, MAXC)
        rows = ach[valid]
        if rows.size:
            contrib = step[valid][:, None] * self._kern[cnt[valid] - 1]
            np.add.at(self.u, rows, contrib)
            # grounding: each learnable use of a form moves it toward 1
            uses = np.bincount(verb[valid & learnable[:, None]], minlength=len(self.g))
            self.g = 1.0 - (1.0 - self.g) * (1.0 - c.grounding_lr) ** uses
        comp = (pid >= 0) & learnable
        if comp.any():
            w = np.asarray(self.w)
            np.add.at(w, pid[comp], c.lr * signal[comp])
            self.w = w.tolist()
        self.episodes += int(idx.size)
        return success

    def evaluate(self, idx: np.ndarray | Sequence[int], attempts: int) -> np.ndarray:
        """Held-out evaluation: ``attempts`` Bernoulli episodes per task, no learning.

        Returns success counts (int array).
        """
        p = self.success_prob(idx)
        return self.rng.binomial(int(attempts), p)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Config, generator, skills and task table: what `load_state_dict` needs to resume exactly.

        The graph is not saved: load into a learner built on the same graph.
        """
        return {
            "config": self.config.model_dump(),
            "rng": self.rng.bit_generator.state,
            "u": self.u.copy(),
            "g": self.g.copy(),
            "w": list(self.w),
            "texts": list(self.texts),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of `state_dict`: rebuild the task table from its texts, then restore the rest."""
        PrereqSimLearner.__init__(self, self.graph, state["texts"], SimConfig(**state["config"]))
        self.rng.bit_generator.state = state["rng"]
        self.u = np.asarray(state["u"], dtype=np.float64).copy()
        self.g = np.asarray(state["g"], dtype=np.float64).copy()
        self.w = list(state["w"])
        self.episodes = int(state["episodes"])
