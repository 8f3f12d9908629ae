"""Labelled (candidate, mastered) pairs from several task grammars, to measure a judge.

Why: a judge that calls a task boring because a *different* concept was mastered
suppresses real curriculum (OMNI x0.001). Measuring on OMNI's Crafter sets alone hides
this, so pairs come from five grammars (Crafter, a Minecraft-like crafting/smelting set,
BabyAI-style MiniGrid instructions, kitchen tasks, web shopping), in five classes:

==============  ===========================================================  ==========
class           example (candidate | mastered)                               boring?
==============  ===========================================================  ==========
``same``        ``collect_wood`` | ``collect the wood``                      yes
``paraphrase``  ``gather wood`` | ``collect wood`` (synonym verb; some verbs  yes
                are outside `openended.moi.structure`'s lexicon on purpose)
``count``       ``collect wood x7`` | ``collect wood 3`` (several spellings)  yes
``neighbour``   ``smelt copper ore`` | ``smelt iron ore``; ``fry egg`` |       no
                ``boil egg`` (one object or the verb changed)
``unrelated``   ``open the red door`` | ``collect wood``                       no
==============  ===========================================================  ==========

`judge_scores` runs a judge over the pairs and reports precision of "boring" and the
boring rate per class (recall for the boring classes, false-boring rate for the others).
Contents: GRAMMARS, labelled_pairs, judge_scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openended.moi.base import Judge, JudgeContext

__all__ = ["Grammar", "GRAMMARS", "LabelledPair", "labelled_pairs", "judge_scores", "BORING_CLASSES", "CLASSES"]

CLASSES = ("same", "paraphrase", "count", "neighbour", "unrelated")
BORING_CLASSES = frozenset({"same", "paraphrase", "count"})


@dataclass(frozen=True)
class Grammar:
    """Concepts as (verb, object) plus paraphrase verbs and object siblings (neighbours)."""

    name: str
    concepts: tuple[tuple[str, str], ...]
    paraphrases: dict[str, tuple[str, ...]]  # verb -> verbs meaning the same ("pick up" -> "grab")
    article: bool = False  # write "the" before objects in some spellings


GRAMMARS: tuple[Grammar, ...] = (
    Grammar(
        "crafter",
        (
            ("collect", "wood"),
            ("collect", "stone"),
            ("collect", "coal"),
            ("collect", "iron"),
            ("collect", "diamond"),
            ("collect", "sapling"),
            ("place", "table"),
            ("place", "furnace"),
            ("place", "plant"),
            ("make", "wood pickaxe"),
            ("make", "stone pickaxe"),
            ("make", "iron pickaxe"),
            ("make", "wood sword"),
            ("make", "stone sword"),
            ("eat", "cow"),
            ("defeat", "zombie"),
            ("defeat", "skeleton"),
        ),
        {
            "collect": ("gather", "harvest", "obtain", "snag"),  # snag: outside the lexicon
            "make": ("craft", "build", "create", "whip up"),  # whip: outside the lexicon
            "place": ("put", "position", "set down"),
            "eat": ("consume", "munch"),  # munch: outside the lexicon
            "defeat": ("kill", "slay", "take down"),  # take: outside the lexicon
        },
    ),
    Grammar(
        "minecraft",
        (
            ("smelt", "iron ore"),
            ("smelt", "copper ore"),
            ("smelt", "gold ore"),
            ("make", "wood axe"),
            ("make", "wood sword"),
            ("make", "stone shovel"),
            ("make", "diamond shovel"),
            ("make", "iron pickaxe"),
            ("mine", "coal"),
            ("mine", "iron"),
            ("mine", "diamond"),
        ),
        {"make": ("craft", "forge", "assemble"), "mine": ("dig", "excavate")},  # excavate: outside
    ),
    Grammar(
        "babyai",
        tuple(
            [("pick up", f"{c} {o}") for c in ("red", "green", "blue", "purple") for o in ("key", "ball", "box")]
            + [("open", f"{c} door") for c in ("red", "green", "blue", "yellow")]
            + [("go to", f"{c} {o}") for c in ("red", "grey") for o in ("key", "ball", "door")]
        ),
        {"pick up": ("grab", "fetch", "collect", "retrieve"), "go to": ("navigate to", "walk to", "reach", "approach")},
        article=True,
    ),
    Grammar(
        "kitchen",
        (
            ("chop", "onion"),
            ("chop", "carrot"),
            ("chop", "potato"),
            ("boil", "water"),
            ("boil", "egg"),
            ("boil", "pasta"),
            ("fry", "egg"),
            ("fry", "fish"),
            ("wash", "pan"),
            ("wash", "plate"),
        ),
        {"chop": ("cut", "dice", "mince"), "wash": ("clean", "rinse", "scrub")},  # mince, scrub: outside
        article=True,
    ),
    Grammar(
        "webshop",
        (
            ("buy", "red shoes"),
            ("buy", "blue shoes"),
            ("buy", "laptop"),
            ("buy", "coffee mug"),
            ("search for", "laptop"),
            ("search for", "headphones"),
            ("sell", "laptop"),
        ),
        {"buy": ("purchase", "order", "shop for"), "search for": ("find", "look for", "locate")},
    ),
)


@dataclass(frozen=True)
class LabelledPair:
    """One judge question: is ``candidate`` boring given ``mastered``? ``boring`` is the truth."""

    grammar: str
    cls: str
    candidate: str
    mastered: str

    @property
    def boring(self) -> bool:
        """The true label: boring for same / paraphrase / count."""
        return self.cls in BORING_CLASSES


def _text(verb: str, obj: str, rng: np.random.Generator, article: bool, style: int | None = None) -> str:
    style = int(rng.integers(3)) if style is None else style
    the = "the " if article and rng.random() < 0.5 else ""
    if style == 0:
        return f"{verb} {the}{obj}"
    if style == 1:
        return f"{verb} {obj}".replace(" ", "_")
    return f"{verb.capitalize()} {the}{obj}"


_COUNT_SPELLINGS = ("{t} {n}", "{t}_{n}", "{t} x{n}", "{t} {n}x", "{t} {n} times", "{t} x {n}")


def labelled_pairs(per_class: int = 40, seed: int = 0, grammars: Sequence[Grammar] = GRAMMARS) -> list[LabelledPair]:
    """``per_class`` pairs per class per grammar (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out: list[LabelledPair] = []
    for g in grammars:
        concepts = list(g.concepts)
        for _ in range(per_class):
            v, o = concepts[int(rng.integers(len(concepts)))]
            m = _text(v, o, rng, g.article, 0)
            out.append(LabelledPair(g.name, "same", _text(v, o, rng, g.article, int(rng.integers(1, 3))), m))
            para = [w for w in g.paraphrases.get(v, ())]
            if para:
                pv = para[int(rng.integers(len(para)))]
                out.append(
                    LabelledPair(g.name, "paraphrase", _text(pv, o, rng, g.article), _text(v, o, rng, g.article))
                )
            n1, n2 = (int(x) for x in rng.choice(np.arange(2, 21), size=2, replace=False))
            spell = _COUNT_SPELLINGS[int(rng.integers(len(_COUNT_SPELLINGS)))]
            base = _text(v, o, rng, g.article, 0)
            cand = spell.format(t=_text(v, o, rng, g.article), n=n1)
            out.append(LabelledPair(g.name, "count", cand, base if rng.random() < 0.3 else f"{base} {n2}"))
            nb = [(v2, o2) for v2, o2 in concepts if (v2 == v) != (o2 == o) and (v2, o2) != (v, o)]
            if nb:
                v2, o2 = nb[int(rng.integers(len(nb)))]
                out.append(
                    LabelledPair(g.name, "neighbour", _text(v2, o2, rng, g.article), _text(v, o, rng, g.article))
                )
            other = [(v2, o2) for v2, o2 in concepts if v2 != v and not set(o2.split()) & set(o.split())]
            if other:
                v2, o2 = other[int(rng.integers(len(other)))]
                out.append(
                    LabelledPair(g.name, "unrelated", _text(v2, o2, rng, g.article), _text(v, o, rng, g.article))
                )
    return out


def judge_scores(judge: Judge, pairs: Sequence[LabelledPair]) -> dict[str, Any]:
    """Precision of "boring", and the boring rate per class, per grammar and overall.

    Pairs sharing a mastered task are asked in one call (as OMNI's partition asks).
    """
    by_mastered: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_mastered.setdefault(p.mastered, []).append(i)
    said = np.zeros(len(pairs), dtype=bool)
    for m, idx in by_mastered.items():
        verdicts = judge.judge([pairs[i].candidate for i in idx], JudgeContext(mastered=(m,)))
        for i, v in zip(idx, verdicts):
            said[i] = v.ok and float(v.score) < 0.5
    truth = np.array([p.boring for p in pairs])
    cls = np.array([p.cls for p in pairs])
    called = int(said.sum())
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "precision": float((said & truth).sum() / called) if called else float("nan"),
        "recall": float((said & truth).sum() / truth.sum()) if truth.any() else float("nan"),
        "boring_rate": {c: float(said[cls == c].mean()) for c in CLASSES if (cls == c).any()},
    }
    gram = np.array([p.grammar for p in pairs])
    out["per_grammar"] = {
        g: {
            "precision": float((said & truth & (gram == g)).sum() / max(1, (said & (gram == g)).sum())),
            "boring_rate": {
                c: float(said[(cls == c) & (gram == g)].mean()) for c in CLASSES if ((cls == c) & (gram == g)).any()
            },
        }
        for g in dict.fromkeys(gram.tolist())
    }
    return out
