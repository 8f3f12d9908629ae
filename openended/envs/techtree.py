"""A generated tech tree: a task universe with a deeper prerequisite graph than Crafter's.

Why: Crafter's graph is 8 levels deep (collect_wood at depth 0 ... collect_diamond at 7)
and OMNI's task sets vary only counts and verbs on it. A teacher's ordering should not
hinge on that one graph. `TechTree` generates a seeded crafting graph of any depth and
width, writes every concept under many near-duplicate phrasings, and adds impossible
tasks, so the same simulated learner (`openended.envs.prereq_sim`) can be taught on it.

The graph (``TechTree(levels=10, width=4, seed=0)``):

* level 0: ``width`` raw materials, ``collect <material>`` (``collect clay``);
* level L >= 1: ``width`` items, ``make <material> <item>`` or, for structures,
  ``place <material> <item>`` (``make bronze gear``, ``place brick kiln``); each has one
  prerequisite drawn from level L-1 and up to ``max_prereqs - 1`` more from any lower
  level, so a level-L concept is exactly L deep;
* impossible concepts (``make perpetual engine``) are written like the others and never
  succeed; ``dummy_task_NNNN`` tasks (OMNI's impossible tasks) are impossible too.

Phrasings of one concept at count k (``task_set`` writes ``counts`` x 5 of them)::

    collect 3 clay        # canonical: verb, count before the object (none for k = 1)
    collect clay x3       # count as a multiplier
    collect clay 3 times  # count as repetitions ("1 time" for k = 1)
    gather 3 clay         # verb synonyms (OMNI's synonym table: gather/harvest,
    harvest 3 clay        #   craft/build, put/install)

All five are near-duplicates a judge can see: the rule oracle's default count pattern and
synonym table (OMNI's) and the embedding judge's structure check (`openended.moi.structure`)
both reduce them to the same verb and object. For the simulated learner they are the same
skill; a non-canonical phrasing (``x``, ``times`` or a synonym) needs grounding first.

Text is data: parsed with a regular expression and dictionaries, never evaluated.

Contents:
    TechTaskSpec -- a parsed task (what `PrereqSimLearner` reads).
    TechTree     -- the generated graph: concepts, prerequisites, depth, ``parse``,
                    ``phrasings``, ``task_set``, ``graph`` (a `PrereqGraph`).
    techtree_learner -- a `PrereqSimLearner` on a tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openended.envs.dummy_tasks import dummy_tasks
from openended.envs.prereq_sim import PrereqGraph, PrereqSimLearner, SimConfig, graph_depth
from openended.errors import ConfigError

__all__ = ["TechTaskSpec", "TechTree", "techtree_learner", "VERB_SYNONYMS", "SPELLINGS"]

#: Canonical verb -> the synonyms the task set uses (a subset of OMNI's ``trs`` table,
#: without "acquire", which OMNI lists under two verbs).
VERB_SYNONYMS: dict[str, tuple[str, ...]] = {
    "collect": ("gather", "harvest"),
    "make": ("craft", "build"),
    "place": ("put", "install"),
}
#: Count spellings other than the canonical "verb count object": their form keys.
SPELLINGS: tuple[str, ...] = ("x", "times")

_RAW = ("wood", "stone", "clay", "sand", "reed", "flint", "fiber", "resin", "salt", "coal", "hide", "bone")
_MATERIALS = (
    "wood", "stone", "clay", "copper", "tin", "bronze", "iron", "steel", "glass", "brick",
    "silver", "gold", "crystal", "obsidian", "cobalt", "titanium",
)  # fmt: skip
_ITEMS = ("plank", "rod", "gear", "plate", "wheel", "hammer", "axe", "pickaxe", "saw", "lens", "pipe", "wire", "spring")
_STRUCTURES = ("furnace", "kiln", "anvil", "lamp", "bell", "frame", "forge", "loom")
_IMPOSSIBLE = (
    "make perpetual engine", "collect dragon scale", "place floating castle", "make philosopher stone",
    "collect unicorn horn", "make time machine", "place sky bridge", "collect moon dust",
)  # fmt: skip
_VERB_OF = {w: v for v, syns in VERB_SYNONYMS.items() for w in (v, *syns)}
# verb, optional count, object words (lazy), optional "xN" or "N time(s)"
_TASK = re.compile(
    r"^(?P<verb>[a-z]+) (?:(?P<n>\d{1,6}) )?(?P<obj>[a-z]+(?: [a-z]+)*?)"
    r"(?: x(?P<x>\d{1,6})| (?P<t>\d{1,6}) times?)?$"
)
_DUMMY = re.compile(r"^dummy_task_(\d{1,9})$")
_MAX_TEXT = 512
#: The largest count a task set writes out (each concept gets every count 1..counts).
MAX_COUNT = 1000


@dataclass(frozen=True, slots=True)
class TechTaskSpec:
    """A parsed tech-tree task: one ``(concept, count)`` component and its form key."""

    components: tuple[tuple[str, int], ...] = ()
    verbs: tuple[str, ...] = ()
    ordered: bool = False
    impossible: bool = False


class TechTree:
    """A seeded crafting graph (see the module docstring).

    Args:
        levels: number of levels; the deepest concepts are ``levels - 1`` deep.
        width: concepts per level.
        max_prereqs: most direct prerequisites of a concept (at least one, from the level below).
        impossible_concepts: how many impossible concepts the grammar knows (up to 8).
        seed: seed of the graph (names and prerequisites).
    """

    def __init__(
        self, levels: int = 10, width: int = 4, max_prereqs: int = 3, impossible_concepts: int = 6, seed: int = 0
    ) -> None:
        if levels < 1 or width < 1 or max_prereqs < 1:
            raise ConfigError(f"techtree: levels, width, max_prereqs must be >= 1, got {(levels, width, max_prereqs)}")
        if width > len(_RAW) or (levels - 1) * width > len(_MATERIALS) * (len(_ITEMS) + len(_STRUCTURES)):
            raise ConfigError(f"techtree: {levels} levels x {width} is more than the name lists allow")
        if not 0 <= impossible_concepts <= len(_IMPOSSIBLE):
            raise ConfigError(f"techtree: impossible_concepts must be in 0..{len(_IMPOSSIBLE)}")
        rng = np.random.Generator(np.random.PCG64(seed))
        raw = [_RAW[i] for i in rng.permutation(len(_RAW))[:width]]
        names: list[list[str]] = [[f"collect {m}" for m in raw]]
        objects = [f"{m} {it}" for m in _MATERIALS for it in (*_ITEMS, *_STRUCTURES)]
        picks = rng.permutation(len(objects))[: (levels - 1) * width].tolist()
        for lv in range(1, levels):
            row = []
            for i in picks[(lv - 1) * width : lv * width]:
                obj = objects[i]
                row.append(("place " if obj.split()[-1] in _STRUCTURES else "make ") + obj)
            names.append(row)
        prereq: dict[str, tuple[str, ...]] = {a: () for a in names[0]}
        for lv in range(1, levels):
            below = [a for row in names[:lv] for a in row]
            for a in names[lv]:
                first = names[lv - 1][int(rng.integers(width))]
                extra = int(rng.integers(max_prereqs))
                rest = [b for b in below if b != first]
                more = [rest[i] for i in sorted(rng.permutation(len(rest))[:extra].tolist())]
                prereq[a] = (first, *more)
        self.levels, self.width, self.seed = levels, width, seed
        self.concepts: tuple[str, ...] = tuple(a for row in names for a in row)
        self.level: dict[str, int] = {a: lv for lv, row in enumerate(names) for a in row}
        self.prerequisites: dict[str, tuple[str, ...]] = prereq
        self.impossible_concepts: tuple[str, ...] = _IMPOSSIBLE[:impossible_concepts]
        self._known = {tuple(a.split(" ", 1)): a for a in self.concepts}
        self._never = {tuple(a.split(" ", 1)) for a in self.impossible_concepts}

    # ------------------------------------------------------------------ graph
    def depth(self) -> dict[str, int]:
        """Longest prerequisite chain below each concept (equals its level)."""
        return graph_depth(self.concepts, self.prerequisites)

    @property
    def graph(self) -> PrereqGraph:
        """The tree as the simulated learner reads it."""
        syns = tuple(s for ss in VERB_SYNONYMS.values() for s in ss)
        return PrereqGraph(
            concepts=self.concepts,
            prerequisites=self.prerequisites,
            forms=(*VERB_SYNONYMS, *SPELLINGS, *syns),
            canonical=frozenset(VERB_SYNONYMS),
            parse=self.parse,
        )

    # ------------------------------------------------------------------ grammar
    def parse(self, text: str) -> TechTaskSpec | None:
        """Parse a task text; ``None`` when it is not in the grammar (never raises, never evals)."""
        if not isinstance(text, str) or not text or len(text) > _MAX_TEXT:
            return None
        s = " ".join(text.strip().lower().split())
        if _DUMMY.match(s):
            return TechTaskSpec(impossible=True)
        m = _TASK.match(s.replace("_", " "))
        if m is None:
            return None
        counts = [int(c) for c in (m.group("n"), m.group("x"), m.group("t")) if c is not None]
        verb = _VERB_OF.get(m.group("verb"))
        if verb is None or len(counts) > 1 or (counts and counts[0] < 1):
            return None
        key = (verb, m.group("obj"))
        if key in self._never:
            return TechTaskSpec(impossible=True)
        concept = self._known.get(key)
        if concept is None:
            return None
        word = m.group("verb")
        form = word if word != verb else ("x" if m.group("x") else "times" if m.group("t") else verb)
        return TechTaskSpec(((concept, counts[0] if counts else 1),), (form,))

    @staticmethod
    def phrasings(concept: str, count: int = 1) -> list[str]:
        """The five near-duplicate texts of ``concept`` at ``count`` (canonical first)."""
        verb, obj = concept.split(" ", 1)
        n = f"{count} " if count != 1 else ""
        times = "time" if count == 1 else "times"
        out = [f"{verb} {n}{obj}", f"{verb} {obj} x{count}", f"{verb} {obj} {count} {times}"]
        return out + [f"{s} {n}{obj}" for s in VERB_SYNONYMS[verb]]

    def task_set(self, counts: int = 5, impossible: int = 1023) -> list[str]:
        """Every phrasing of every concept at counts ``1..counts``, then the impossible concepts, then dummies.

        Real tasks come first, then the impossible concepts written the same way, then
        ``impossible`` ``dummy_task_NNNN`` texts.
        """
        if isinstance(counts, bool) or not isinstance(counts, int) or not 1 <= counts <= MAX_COUNT:
            raise ConfigError(f"techtree.task_set(counts): must be a whole number in 1..{MAX_COUNT}, got {counts!r}")
        dummies = dummy_tasks(impossible, "techtree.task_set(impossible)")  # bounded before anything is built
        texts = [t for a in self.concepts for k in range(1, counts + 1) for t in self.phrasings(a, k)]
        texts += [t for a in self.impossible_concepts for k in range(1, counts + 1) for t in self.phrasings(a, k)]
        return texts + dummies


def techtree_learner(
    tree: TechTree, tasks: Sequence[str] = (), config: SimConfig | dict | None = None, seed: int = 0
) -> PrereqSimLearner:
    """A seeded `PrereqSimLearner` on ``tree`` (the same model and defaults as Crafter's)."""
    return PrereqSimLearner(tree.graph, tasks, config, seed)
