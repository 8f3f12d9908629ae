"""WebRL's task generation, apart from the teacher: what proposes, filters and admits tasks.

Reference: Qi et al., "WebRL: Training LLM Web Agents via Self-Evolving Online Curriculum
Reinforcement Learning" (arXiv 2411.02337), code ``THUDM/WebRL`` ``scripts/gen_task.py``.

`run_phase` is one generation phase as a pure function (the teacher runs it in the
background on its `Refitter`; it touches no teacher state):

1. **generate** in-breadth variants: ``generation_turns`` times, ``seeds_per_turn``
   failures go to the generator, which returns ``candidates_per_turn`` texts. The
   generator is any object with ``generate(failures, n)`` (`TaskGenerator`: an LLM behind
   an HTTP backend, say) or the offline `GrammarMutationGenerator` (always works);
2. **parse & dedupe**: text checked as data (non-empty, length-capped; never executed),
   exact duplicates and near-duplicates (cosine >= ``dedupe_threshold`` of an injectable
   ``embed`` fn) of the pool or of earlier candidates dropped;
3. **feasibility**: an optional validator, text -> (ok, reason) (none: no filter);
4. **learnability band**: predicted success (default `KNNSuccessPredictor`:
   similarity-weighted empirical success of the nearest known tasks) must lie in the band;
   a candidate with no similar known task has no prediction and is admitted only if
   ``admit_unpredicted`` (WebRL phase 0 has no critic either);
5. **admit** up to ``admit_per_phase`` with lineage (``parent_ids`` = the failures it
   came from).

Every stage's rejections are counted with an example reason (the phase's "funnel").

Contents: GeneratedTask, TaskGenerator, GrammarMutationGenerator, KNNSuccessPredictor, run_phase.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from openended.errors import ConfigError
from openended.tasks import Task

__all__ = [
    "GeneratedTask",
    "TaskGenerator",
    "GrammarMutationGenerator",
    "KNNSuccessPredictor",
    "run_phase",
]


class GeneratedTask(NamedTuple):
    """A generator's proposal: text plus the ids of the failures it was derived from."""

    text: str
    parent_ids: tuple[str, ...] = ()


@runtime_checkable
class TaskGenerator(Protocol):
    """Anything that proposes new task texts from failed tasks (LLM backends, grammars)."""

    def generate(self, failures: Sequence[Task], n: int) -> list[str | GeneratedTask]:
        """About ``n`` proposals derived from ``failures`` (`run_phase` keeps at most ``4 n``).

        A bare string is taken as derived from all of this turn's failures. A generator may
        also accept an ``rng`` keyword: `run_phase` then passes the phase's generator, so a
        phase is reproducible from its seed.
        """
        ...


# ------------------------------------------------------------------------ generator
_DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "collect": ("gather", "harvest", "procure", "acquire", "amass"),
    "make": ("craft", "build", "construct", "create"),
    "place": ("put", "deploy", "install", "position"),
}
_NUM = re.compile(r"(?<![A-Za-z])(\d{1,6})(?!.*\d)")


class GrammarMutationGenerator:
    """Offline in-breadth generator: small, meaning-preserving-or-nearby edits of failures.

    Operations (each proposal applies one, chosen at random):

    * ``count``: change the last number of a component by -2..+2 (``collect_wood_3`` ->
      ``collect_wood_4``; a component without a number gets ``_2``);
    * ``synonym``: swap the component's leading verb for a synonym (``collect`` ->
      ``gather``);
    * ``compose``: join with a component of another failure (`` and `` / `` then ``),
      at most ``max_components`` parts;
    * ``decompose``: keep one part of a composite.

    Works on any text (numbers and words are generic); on Crafter task texts every
    output is again in the Crafter grammar except where a count leaves the valid range
    or a verb/object pair does not exist, which the validator then rejects.
    """

    name = "grammar"

    def __init__(
        self,
        seed: int = 0,
        synonyms: dict[str, Sequence[str]] | None = None,
        max_count: int = 10,
        max_components: int = 2,
        weights: Sequence[float] = (0.45, 0.15, 0.3, 0.1),
    ) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))
        syn = synonyms if synonyms is not None else _DEFAULT_SYNONYMS
        self._groups: dict[str, tuple[str, ...]] = {}
        for head, words in syn.items():
            group = tuple(dict.fromkeys((head, *words)))
            for w in group:
                self._groups[w] = group
        self.max_count = int(max_count)
        self.max_components = int(max_components)
        op_w = np.asarray(weights, dtype=np.float64)
        if op_w.shape != (4,) or (op_w < 0).any() or op_w.sum() <= 0:
            raise ConfigError(f"GrammarMutationGenerator.weights: need 4 non-negative weights, got {list(weights)}")
        self._w = op_w / op_w.sum()

    @staticmethod
    def _parts(text: str) -> tuple[list[str], str]:
        conn = "then" if " then " in text else "and"
        return [p.strip() for p in re.split(r" (?:and|then) ", text) if p.strip()], conn

    def _count(self, comp: str, rng: np.random.Generator) -> str:
        m = _NUM.search(comp)
        if m is None:
            return f"{comp}_2"
        k = int(m.group(1)) + int(rng.choice([-2, -1, 1, 2]))
        k = min(max(k, 1), self.max_count)
        head, tail = comp[: m.start()], comp[m.end() :]
        if k == 1 and head.endswith("_") and not tail:
            return head[:-1]
        return f"{head}{k}{tail}"

    def _synonym(self, comp: str, rng: np.random.Generator) -> str:
        verb, sep, rest = comp.partition("_") if "_" in comp else comp.partition(" ")
        group = self._groups.get(verb.lower())
        if not group or len(group) < 2:
            return comp
        others = [w for w in group if w != verb.lower()]
        return f"{others[int(rng.integers(len(others)))]}{sep}{rest}"

    def generate(self, failures: Sequence[Task], n: int, rng: np.random.Generator | None = None) -> list[GeneratedTask]:
        """``n`` proposals from ``failures`` (texts; tasks without text are skipped)."""
        rng = rng if rng is not None else self.rng
        pool = [f for f in failures if f.text]
        out: list[GeneratedTask] = []
        if not pool:
            return out
        for _ in range(int(n)):
            f = pool[int(rng.integers(len(pool)))]
            parts, conn = self._parts(f.text or "")
            if not parts:
                continue
            op = int(rng.choice(4, p=self._w))
            parents: tuple[str, ...] = (f.id,)
            if op == 2 and len(pool) > 1 and len(parts) < self.max_components:
                g = pool[int(rng.integers(len(pool)))]
                gparts, _ = self._parts(g.text or "")
                if g.id != f.id and gparts:
                    extra = gparts[int(rng.integers(len(gparts)))]
                    if extra not in parts:
                        joiner = " then " if rng.random() < 0.5 else " and "
                        out.append(GeneratedTask(joiner.join(parts + [extra]), (f.id, g.id)))
                        continue
                op = 0
            if op == 3 and len(parts) > 1:
                out.append(GeneratedTask(parts[int(rng.integers(len(parts)))], parents))
                continue
            j = int(rng.integers(len(parts)))
            new = list(parts)
            new[j] = self._synonym(parts[j], rng) if op == 1 else self._count(parts[j], rng)
            if new[j] == parts[j]:
                new[j] = self._count(parts[j], rng)
            out.append(GeneratedTask(f" {conn} ".join(new), parents))
        return out


# ------------------------------------------------------------------------ predictor
class KNNSuccessPredictor:
    """Predicts a candidate's success from the learner's record on similar known tasks.

    Prediction = similarity-weighted mean empirical success of its ``k`` most similar
    *attempted* known tasks with cosine >= ``min_similarity``; NaN if none.

    Why: WebRL filters with its critic's P(success); before any critic exists, the
    learner's own record on the nearest known tasks is the cheapest honest estimate
    (a MAGELLAN-style regressor or a critic can replace it: same call shape).
    """

    name = "knn"

    def __init__(self, k: int = 5, min_similarity: float = 0.5) -> None:
        self.k = int(k)
        self.min_similarity = float(min_similarity)

    def predict(
        self, cand_vecs: np.ndarray, known_vecs: np.ndarray, known_success: np.ndarray, known_attempts: np.ndarray
    ) -> np.ndarray:
        """Predicted success per candidate (NaN where no attempted known task is similar enough).

        Args:
            cand_vecs: ``(n, d)`` unit embeddings of the candidates.
            known_vecs: ``(m, d)`` unit embeddings of the known tasks.
            known_success: empirical success per known task.
            known_attempts: attempts per known task; tasks never attempted are ignored.
        """
        out = np.full(len(cand_vecs), np.nan)
        mask = np.asarray(known_attempts) > 0
        if not mask.any() or len(cand_vecs) == 0:
            return out
        kv, ks = known_vecs[mask], np.asarray(known_success)[mask]
        sims = np.asarray(cand_vecs) @ kv.T
        k = min(self.k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for i in range(len(cand_vecs)):
            s = sims[i, top[i]]
            ok = s >= self.min_similarity
            if ok.any():
                w = s[ok]
                out[i] = float((w * ks[top[i][ok]]).sum() / w.sum())
        return out


# ------------------------------------------------------------------------ pipeline
def _norm_text(t: str) -> str:
    return " ".join(t.lower().replace("_", " ").split())


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2:
        raise ConfigError(f"teacher.webrl.embed: must return a 2-D array (n, d), got shape {v.shape}")
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def run_phase(
    *,
    failures: Sequence[Task],
    pool_texts: Sequence[str],
    pool_success: np.ndarray,
    pool_attempts: np.ndarray,
    generator: Any,
    validator: Callable[[str], tuple[bool, str]] | None,
    embed: Callable[[list[str]], np.ndarray],
    predictor: Any,
    seed: int,
    seeds_per_turn: int,
    generation_turns: int,
    candidates_per_turn: int,
    admit_per_phase: int,
    band: tuple[float, float],
    dedupe_threshold: float,
    admit_unpredicted: bool,
    max_length: int,
    accept: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """One generation phase (pure; runs in the background).

    Returns admitted proposals and a funnel: how many candidates each stage rejected,
    with one example reason each.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    funnel = {
        "failures": len(failures),
        "generated": 0,
        "invalid": 0,
        "duplicate": 0,
        "infeasible": 0,
        "out_of_band": 0,
        "unpredicted": 0,
        "over_quota": 0,
        "admitted": 0,
        "generator_errors": 0,
    }
    examples: dict[str, str] = {}
    if not failures:
        return {"admitted": [], "funnel": funnel, "examples": examples}
    takes_rng = "rng" in inspect.signature(generator.generate).parameters
    proposals: list[GeneratedTask] = []
    for _ in range(generation_turns):
        k = min(seeds_per_turn, len(failures))
        seeds = [failures[i] for i in rng.choice(len(failures), size=k, replace=False).tolist()]
        try:
            got = (
                generator.generate(seeds, candidates_per_turn, rng=rng)
                if takes_rng
                else generator.generate(seeds, candidates_per_turn)
            )
        except Exception as err:  # noqa: BLE001 - a failing generator skips a turn, never the run
            funnel["generator_errors"] += 1
            examples.setdefault("generator_errors", f"{type(err).__name__}: {str(err)[:160]}")
            continue
        for g in list(got)[: max(candidates_per_turn, 0) * 4]:
            if isinstance(g, GeneratedTask):
                proposals.append(g)
            elif isinstance(g, str):
                proposals.append(GeneratedTask(g, tuple(s.id for s in seeds)))
            elif isinstance(g, tuple) and len(g) == 2 and isinstance(g[0], str):
                proposals.append(GeneratedTask(g[0], tuple(str(x) for x in g[1])))
            else:
                funnel["invalid"] += 1
                examples.setdefault("invalid", f"generator returned {type(g).__name__}, not text")
    funnel["generated"] = len(proposals)
    # 3. parse: text is data; only length and emptiness are checked here.
    seen = {_norm_text(t) for t in pool_texts}
    kept: list[GeneratedTask] = []
    for g in proposals:
        t = g.text.strip()
        if not t or len(t) > max_length:
            funnel["invalid"] += 1
            examples.setdefault("invalid", f"{len(g.text)} characters (empty or over {max_length})")
            continue
        if accept is not None and not accept(t):
            funnel["invalid"] += 1
            examples.setdefault("invalid", f"{t[:60]!r} is not in the task space")
            continue
        key = _norm_text(t)
        if key in seen:
            funnel["duplicate"] += 1
            examples.setdefault("duplicate", f"{t[:60]!r} is already known")
            continue
        seen.add(key)
        kept.append(GeneratedTask(t, g.parent_ids))
    if not kept:
        return {"admitted": [], "funnel": funnel, "examples": examples}
    vecs = _unit(embed([g.text for g in kept] + list(pool_texts)))
    cand_v, pool_v = vecs[: len(kept)], vecs[len(kept) :]
    sims_pool = cand_v @ pool_v.T if len(pool_texts) else np.zeros((len(kept), 0))
    novel: list[int] = []
    for i, g in enumerate(kept):
        best = float(sims_pool[i].max()) if sims_pool.shape[1] else -1.0
        if novel:
            best = max(best, float((cand_v[novel] @ cand_v[i]).max()))
        if best >= dedupe_threshold:
            funnel["duplicate"] += 1
            examples.setdefault("duplicate", f"{g.text[:60]!r} near-duplicate (cosine {best:.3f})")
            continue
        novel.append(i)
    # 4. feasibility
    feasible: list[int] = []
    for i in novel:
        if validator is not None:
            ok, why = validator(kept[i].text)
            if not ok:
                funnel["infeasible"] += 1
                examples.setdefault("infeasible", f"{kept[i].text[:60]!r}: {why}")
                continue
        feasible.append(i)
    # 5. learnability band
    pred = (
        predictor.predict(cand_v[feasible], pool_v, np.asarray(pool_success), np.asarray(pool_attempts))
        if feasible
        else np.zeros(0)
    )
    admitted: list[dict[str, Any]] = []
    for i, p in zip(feasible, np.asarray(pred, dtype=np.float64).tolist()):
        if np.isnan(p):
            if not admit_unpredicted:
                funnel["unpredicted"] += 1
                examples.setdefault("unpredicted", f"{kept[i].text[:60]!r}: no similar attempted task")
                continue
        elif not band[0] <= p <= band[1]:
            funnel["out_of_band"] += 1
            examples.setdefault(
                "out_of_band", f"{kept[i].text[:60]!r}: predicted success {p:.2f} outside [{band[0]}, {band[1]}]"
            )
            continue
        if len(admitted) >= admit_per_phase:
            funnel["over_quota"] += 1
            continue
        admitted.append(
            {
                "text": kept[i].text,
                "parent_ids": list(kept[i].parent_ids),
                "predicted": None if np.isnan(p) else float(p),
            }
        )
    funnel["admitted"] = len(admitted)
    return {"admitted": admitted, "funnel": funnel, "examples": examples}
