"""Structure of an imperative task text: verb, objects, counts; and how two tasks relate.

Why: sentence embeddings put *neighbouring concepts* as close as paraphrases ("smelt
iron" / "smelt copper", "make wood axe" / "make wood sword" score 0.70-0.90 under MiniLM),
and word embeddings do not separate synonyms from siblings either (MiniLM: gather/collect
0.62, red/blue 0.73, axe/sword 0.62). A task's structure does: a paraphrase changes the
verb to a synonym, the spelling, the filler words or the count, never the object. So the
embedding judge asks this module first (`EmbeddingJudge(structure=True)`, the default):

* ``variant``  -- same objects, same verb up to the synonym lexicon: boring whatever the
  cosine (a count variant, a rewording, a known synonym);
* ``conflict`` -- different objects, or two known verbs that mean different things:
  never boring (a neighbouring concept);
* ``unknown``  -- same objects, a verb outside the lexicon: the embedding decides.

Parsing is string operations only (the text is never evaluated). Compound tasks
("collect wood and place table") compare part by part, in any order.

Contents: VERB_SYNONYMS, parse_task, relation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["VERB_SYNONYMS", "NOUN_SYNONYMS", "ParsedTask", "parse_task", "relation"]

#: Canonical verb -> verbs that mean the same in a task instruction. General English task
#: verbs (not fitted to one benchmark); OMNI's Crafter synonyms are included.
VERB_SYNONYMS: dict[str, tuple[str, ...]] = {
    "collect": ("gather", "harvest", "procure", "acquire", "amass", "get", "obtain", "grab", "pick", "fetch"),
    "make": ("craft", "build", "construct", "create", "produce", "forge", "assemble", "fabricate"),
    "place": ("put", "deploy", "install", "putdown", "position", "set", "drop"),
    "go": ("navigate", "walk", "move", "reach", "travel", "head", "proceed"),
    "defeat": ("kill", "slay", "beat", "destroy", "vanquish"),
    "eat": ("consume", "devour"),
    "drink": ("sip", "quaff"),
    "open": (),
    "close": ("shut",),
    "unlock": (),
    "lock": (),
    "toggle": ("switch", "flip"),
    "smelt": (),
    "cook": (),
    "boil": (),
    "fry": (),
    "bake": (),
    "chop": ("cut", "dice"),
    "wash": ("clean", "rinse"),
    "buy": ("purchase", "order"),
    "sell": (),
    "search": ("find", "look", "locate"),
    "wake": ("awaken",),
    "sleep": ("rest",),
    "plant": ("sow",),
    "mine": ("dig",),
}

#: Canonical noun -> nouns that mean the same (kept short: objects must match to be boring).
NOUN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "wood": ("timber", "lumber", "log", "logs"),
    "stone": ("rock", "cobblestone"),
}

_STOP = frozenset(
    "a an the some of up down to at on in into onto with from for please your my this that "
    "times time x piece pieces now again more".split()
)
#: Spelled-out counts read as counts ("collect wood five").
_NUMBER_WORDS = {
    w: i + 1
    for i, w in enumerate(
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_COUNT = re.compile(r"\b[x×]\s*\d+\b|\b\d+\s*(?:times|time|x)\b|\b\d+\s*×|\b\d+\b")
_SPLIT = re.compile(r"\s*(?:\band\b|\bthen\b|[,;+&])\s*")
_WORD = re.compile(r"[^\W_\d]+", re.UNICODE)


def _canon_map(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for head, words in table.items():
        out[head] = head
        for w in words:
            out.setdefault(w, head)
    return out


_VERB = _canon_map(VERB_SYNONYMS)
_NOUN = _canon_map(NOUN_SYNONYMS)


def _noun(word: str) -> str:
    """Canonical noun: synonym head, else a crude singular (``swords`` -> ``sword``)."""
    if word in _NOUN:
        return _NOUN[word]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _NOUN.get(word, word)


@dataclass(frozen=True)
class ParsedTask:
    """One task's parts: per part the verb (as written), its canonical form or None, objects, counts."""

    verbs: tuple[str, ...]
    canon: tuple[str | None, ...]
    objects: tuple[frozenset[str], ...]
    counts: tuple[tuple[int, ...], ...]


def parse_task(text: str, max_chars: int = 2000) -> ParsedTask:
    """Split into parts, take counts out, the first word is the verb, the rest the objects."""
    s = text[:max_chars].lower().replace("_", " ").replace("-", " ")
    verbs, canon, objects, counts = [], [], [], []
    for piece in _SPLIT.split(s):
        found = tuple(int(d.group(0)) for m in _COUNT.finditer(piece) if (d := re.search(r"\d+", m.group(0))))
        raw = _WORD.findall(_COUNT.sub(" ", piece))
        found += tuple(_NUMBER_WORDS[w] for w in raw if w in _NUMBER_WORDS)
        words = [w for w in raw if w not in _STOP and w not in _NUMBER_WORDS]
        if not words:
            continue
        verbs.append(words[0])
        canon.append(_VERB.get(words[0]))
        objects.append(frozenset(_noun(w) for w in words[1:]))
        counts.append(found)
    return ParsedTask(tuple(verbs), tuple(canon), tuple(objects), tuple(counts))


def _part_relation(c: ParsedTask, i: int, m: ParsedTask, j: int) -> str:
    if c.objects[i] != m.objects[j]:
        return "conflict"
    if c.verbs[i] == m.verbs[j] or (c.canon[i] is not None and c.canon[i] == m.canon[j]):
        return "variant"
    if c.canon[i] is not None and m.canon[j] is not None:
        return "conflict"  # two known verbs with different meanings
    return "unknown"


def relation(candidate: str | ParsedTask, mastered: str | ParsedTask) -> tuple[str, str]:
    """``(kind, why)``: kind is ``"variant"``, ``"conflict"`` or ``"unknown"`` (module docstring)."""
    c = parse_task(candidate) if isinstance(candidate, str) else candidate
    m = parse_task(mastered) if isinstance(mastered, str) else mastered
    if not c.verbs or not m.verbs:
        return "unknown", "no words to compare"
    if len(c.verbs) != len(m.verbs):
        return "conflict", f"{len(c.verbs)} part(s) vs {len(m.verbs)}"
    kinds = []
    free = list(range(len(m.verbs)))
    for i in range(len(c.verbs)):
        # the best-matching unused part of the mastered task (any order)
        best, best_j = "conflict", -1
        for j in free:
            k = _part_relation(c, i, m, j)
            if k == "variant" or (k == "unknown" and best == "conflict"):
                best, best_j = k, j
            if k == "variant":
                break
        if best_j < 0:
            if any(c.objects[i] == m.objects[j] for j in free):
                return "conflict", f"different action: {c.verbs[i]!r}"
            words = " ".join(sorted(c.objects[i])) or "(none)"
            return "conflict", f"different object: {words!r}"
        free.remove(best_j)
        kinds.append(best)
    if all(k == "variant" for k in kinds):
        counted = any(a != b for a, b in zip(c.counts, m.counts))
        return "variant", "count variant" if counted else "rewording"
    return "unknown", "same objects, a verb outside the synonym lexicon"
