"""Rule oracle: interestingness from task structure, OMNI's oracle baseline made configurable.

Reference: OMNI (Zhang et al., ICLR 2024), ``jennyzzt/omni`` ``envs/env_*_omoi.py``: the
oracle MoI there down-weights every task whose name ends in a count (``collect_wood_3``),
and ``envs/env_utils.py`` builds the synonym tasks (gather/harvest/... wood) this judge's
default synonym map comes from.

Here a candidate is **boring** (score 0) when, compared with a mastered task, it is

* the same task (same text, or same words in another order / with filler words),
* a **count variant**: the same base achievement with a different count
  (``collect_wood_3`` vs mastered ``collect_wood_5``, or "collect wood 10 times"),
* a **synonym variant**: the same achievement with a verb/noun from the synonym map
  (``gather_wood`` vs mastered ``collect_wood``),
* or any combination of these, per part of a compound task, in any part order
  ("place table and collect wood 2" vs "collect wood and place table").

Everything else is **interesting** (score 1). The preset ``omni_omoi`` reproduces OMNI's
oracle exactly: any task with a count is boring, mastered or not, synonyms are not.

Pure and deterministic: no model, no randomness, the same input gives the same answer.
Task text is parsed with regular expressions from the (trusted) configuration and never
evaluated.

Contents:
    OMNI_SYNONYMS     -- the synonym table of OMNI's Crafter ``trs`` setting.
    RuleOracleConfig  -- the rule set (one pydantic model; unknown fields are errors).
    RuleOracleJudge   -- the `Judge`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from openended.errors import ConfigError
from openended.moi.base import JudgeContext, Judgement, candidate_text
from openended.moi.safety import MAX_TEXT_CHARS, cap_text
from openended.tasks import Task
from openended.validation import validate_model

__all__ = ["OMNI_SYNONYMS", "RuleOracleConfig", "RuleOracleJudge"]

# Copied from OMNI's envs/env_utils.py SYNONYMS (note "acquire" is listed under both
# collect and make there; an ambiguous word matches either canonical word here).
OMNI_SYNONYMS: dict[str, list[str]] = {
    "collect": ["gather", "harvest", "procure", "acquire", "amass"],
    "make": ["craft", "acquire", "build", "construct", "create"],
    "place": ["put", "deploy", "install", "putdown", "position"],
}


class RuleOracleConfig(BaseModel):
    """The rule set. Every field has a default matching OMNI's Crafter task names."""

    model_config = ConfigDict(extra="forbid")

    count_pattern: str = r"\b[x×]\s*\d+\b|\b\d+\s*(?:times|time|x)\b|\b\d+\s*×|\b\d+\b"
    """Regex (on lower-cased text, ``_``/``-`` read as spaces) matching a count; its first
    run of digits is the count, the whole match is removed to get the base task. Spellings:
    ``3``, ``3 times``, ``3x``, ``3 x``, ``x3``, ``x 3``, ``3×``, ``×3``."""
    synonyms: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in OMNI_SYNONYMS.items()})
    """Canonical word -> words that mean the same; compared word by word."""
    compound_separator: str = r"\s*(?:\band\b|\bthen\b|[,;+&])\s*"
    """Regex splitting a compound task into parts (OMNI joins parts with ``__and__``)."""
    stopwords: list[str] = Field(default_factory=lambda: ["a", "an", "the", "some", "of"])
    """Filler words ignored when comparing tasks."""
    conditional: bool = True
    """Compare with the mastered tasks (OMNI's question); off = judge each task alone."""
    count_variants_always_boring: bool = False
    """Any task with a count is boring, mastered or not (OMNI's ``omoi`` oracle)."""
    max_parts: int = Field(6, ge=1)
    """Compounds with more parts are compared in their written order only (bounds cost)."""

    @field_validator("count_pattern", "compound_separator")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from None
        return v


@dataclass(frozen=True)
class _Parsed:
    parts: tuple[tuple[frozenset[str], ...], ...]  # per part: each word's canonical forms
    words: tuple[tuple[str, ...], ...]  # per part: the literal words
    counts: tuple[tuple[int, ...], ...]  # per part: counts found


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PARSE_CACHE = 65_536  # parsed texts kept per judge (cleared when full)


class RuleOracleJudge:
    """Deterministic boring/interesting verdicts from task names (see the module docstring).

    Args:
        preset: ``"omni_omoi"`` for OMNI's count-only oracle; explicit fields override it.
        **config: fields of `RuleOracleConfig`.
    """

    name = "oracle"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "omni_omoi": {"conditional": False, "count_variants_always_boring": True, "synonyms": {}},
    }

    def __init__(self, preset: str | None = None, **config: Any) -> None:
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in self.PRESETS:
                raise ConfigError(f"moi.oracle.preset: unknown preset {preset!r}; choose one of {sorted(self.PRESETS)}")
            values.update(self.PRESETS[preset])
        values.update(config)
        self.config = validate_model(RuleOracleConfig, values, prefix="moi.oracle")
        cfg = self.config
        self._count = re.compile(cfg.count_pattern)
        self._split = re.compile(cfg.compound_separator)
        self._stop = frozenset(w.lower() for w in cfg.stopwords)
        canon: dict[str, set[str]] = {}
        for head, words in cfg.synonyms.items():
            for w in (head, *words):
                canon.setdefault(w.lower(), set()).add(head.lower())
        self._canon = {w: frozenset(c) for w, c in canon.items()}
        self._parsed: dict[str, _Parsed] = {}
        # The record/replay key changes whenever the rules do.
        digest = hashlib.blake2b(json.dumps(cfg.model_dump(), sort_keys=True).encode(), digest_size=6).hexdigest()
        self.model = "rules"
        self.template_version = f"rules-v1:{digest}"

    # ------------------------------------------------------------------ parsing
    def _parse(self, text: str) -> _Parsed:
        # SPEEDUP: a partition asks about the same texts against many mastered tasks; parse each once.
        got = self._parsed.get(text)
        if got is None:
            if len(self._parsed) >= _PARSE_CACHE:
                self._parsed.clear()
            got = self._parsed[text] = self._parse_uncached(text)
        return got

    def _parse_uncached(self, text: str) -> _Parsed:
        s = cap_text(text, MAX_TEXT_CHARS).lower().replace("_", " ").replace("-", " ")
        parts, words, counts = [], [], []
        for piece in self._split.split(s):
            found = [int(d.group(0)) for m in self._count.finditer(piece) if (d := re.search(r"\d+", m.group(0)))]
            base = self._count.sub(" ", piece)
            toks = tuple(w for w in _WORD.findall(base) if w not in self._stop)
            if not toks:
                continue
            words.append(toks)
            parts.append(tuple(self._canon.get(w, frozenset((w,))) for w in toks))
            counts.append(tuple(found))
        return _Parsed(tuple(parts), tuple(words), tuple(counts))

    @staticmethod
    def _part_match(a: tuple[frozenset[str], ...], b: tuple[frozenset[str], ...]) -> bool:
        return len(a) == len(b) and all(x & y for x, y in zip(a, b))

    def _alignment(self, c: _Parsed, m: _Parsed) -> tuple[int, ...] | None:
        """A permutation mapping c's parts onto m's parts with matching bases, or None."""
        n = len(c.parts)
        if n == 0 or n != len(m.parts):
            return None
        orders = itertools.permutations(range(n)) if n <= self.config.max_parts else [tuple(range(n))]
        for perm in orders:
            if all(self._part_match(c.parts[i], m.parts[j]) for i, j in zip(range(n), perm)):
                return perm
        return None

    # ------------------------------------------------------------------ judging
    def _classify(self, text: str, c: _Parsed, mastered: list[tuple[str, _Parsed]]) -> Judgement:
        if self.config.count_variants_always_boring and any(c.counts):
            return Judgement(0.0, "has a count: count variants are boring (OMNI oracle)", True, self.name)
        if self.config.conditional:
            for mtext, m in mastered:
                if text.strip() == mtext.strip():
                    return Judgement(0.0, f"already mastered: {cap_text(mtext, 200)!r}", True, self.name)
                perm = self._alignment(c, m)
                if perm is None:
                    continue
                kinds = []
                if any(c.counts[i] != m.counts[j] for i, j in enumerate(perm)):
                    kinds.append("count")
                if any(c.words[i] != m.words[j] for i, j in enumerate(perm)):
                    kinds.append("synonym")
                if perm != tuple(range(len(perm))):
                    kinds.append("reordered")
                kind = "/".join(kinds) + " variant" if kinds else "rewording"
                return Judgement(0.0, f"{kind} of mastered {cap_text(mtext, 200)!r}", True, self.name)
        if not c.parts:
            return Judgement(1.0, "no recognisable words; no rule applies", True, self.name)
        return Judgement(1.0, "no mastered task with the same base achievement", True, self.name)

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """Apply the rules: boring for a count (if configured) or a variant of a mastered task, else interesting."""
        mastered = [(m, self._parse(m)) for m in dict.fromkeys(context.mastered)] if self.config.conditional else []
        out = []
        for cand in candidates:
            text = candidate_text(cand)
            out.append(self._classify(text, self._parse(text), mastered))
        return out
