"""WebRL-style self-evolving curriculum: new tasks generated from the learner's failures.

Reference: Qi et al., "WebRL: Training LLM Web Agents via Self-Evolving Online Curriculum
Reinforcement Learning" (arXiv 2411.02337), code ``THUDM/WebRL`` ``scripts/gen_task.py``
(in-breadth generation from failures, 10 seeds x 2 turns; learnability band
``threshold=[0.05, 0.75]``). Preset ``"webrl"`` uses those numbers.

A phase (every ``phase_every`` updates, in the background on the `Refitter`):

1. **collect failures**: pool tasks attempted since the last phase whose success there
   is below ``failure_threshold``;
2. **generate** in-breadth variants: ``generation_turns`` times, ``seeds_per_turn``
   failures go to the generator, which returns ``candidates_per_turn`` texts. The
   generator is any object with ``generate(failures, n)`` (an LLM behind an HTTP
   backend, say) or the offline `GrammarMutationGenerator` (always works);
3. **parse & dedupe**: text checked as data (non-empty, length-capped; never executed),
   exact duplicates and near-duplicates (cosine >= ``dedupe_threshold`` of an injectable
   ``embed`` fn) of the pool or of earlier candidates dropped;
4. **feasibility**: a pluggable validator (``"crafter"``: the Crafter task grammar);
5. **learnability band**: predicted success (default: similarity-weighted empirical
   success of the ``knn_k`` nearest known tasks) must lie in ``[band_low, band_high]``;
   a candidate with no similar known task has no prediction and is admitted only if
   ``admit_unpredicted`` (WebRL phase 0 has no critic either);
6. **admit** up to ``admit_per_phase`` with lineage (``parent_ids`` = the failures it
   came from, ``origin="generated"``).

Every stage's rejections are counted with an example reason (``stats()["webrl/last_phase"]``).
Sampling draws from the whole pool by a priority: ``"lp"`` (OMNI's LP distribution over
the pool) or ``"uniform_unmastered"``.

Contents: GeneratedTask, TaskGenerator, GrammarMutationGenerator, KNNSuccessPredictor,
run_phase (the pure pipeline), WebRLConfig, WebRLTeacher.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np
from pydantic import ConfigDict, Field, field_serializer

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.lp import LPTracker
from openended.teachers.pool import TaskPool, known_tasks_of_space, task_label
from openended.teachers.refit import Refitter

__all__ = [
    "GeneratedTask",
    "TaskGenerator",
    "GrammarMutationGenerator",
    "KNNSuccessPredictor",
    "run_phase",
    "WebRLConfig",
    "WebRLTeacher",
]


class GeneratedTask(NamedTuple):
    """A generator's proposal: text plus the ids of the failures it was derived from."""

    text: str
    parent_ids: tuple[str, ...] = ()


@runtime_checkable
class TaskGenerator(Protocol):
    """Anything that proposes new task texts from failed tasks (LLM backends, grammars)."""

    def generate(self, failures: Sequence[Task], n: int) -> list[str | GeneratedTask]: ...


# ------------------------------------------------------------------------ generator
_DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "collect": ("gather", "harvest", "procure", "acquire", "amass"),
    "make": ("craft", "build", "construct", "create"),
    "place": ("put", "deploy", "install", "position"),
}
_NUM = re.compile(r"(?<![A-Za-z])(\d{1,6})(?!.*\d)")
_CONNECT = re.compile(r" (and|then) ")


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
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (4,) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"GrammarMutationGenerator.weights: need 4 non-negative weights, got {list(weights)}")
        self._w = w / w.sum()

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
    """Predicted success of a candidate = similarity-weighted mean empirical success of its
    ``k`` most similar *attempted* known tasks with cosine >= ``min_similarity``; NaN if none.

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
    """One generation phase (pure; runs in the background). Returns admitted proposals and
    a funnel: how many candidates each stage rejected, with one example reason each."""
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


# ------------------------------------------------------------------------ teacher
class WebRLConfig(RefitConfig, TeacherConfig):
    """WebRL self-evolving curriculum (generation from failures + learnability band)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    phase_every: int = Field(50, ge=1, description="Run a generation phase every this many updates.")
    failure_threshold: float = Field(0.5, ge=0, le=1, description="Success below this in a phase = failed.")
    seeds_per_turn: int = Field(10, ge=1, description="Failures shown to the generator per turn (WebRL: 10).")
    generation_turns: int = Field(2, ge=1, description="Generator calls per phase (WebRL: 2).")
    candidates_per_turn: int = Field(20, ge=1, description="Proposals requested per generator call.")
    admit_per_phase: int = Field(50, ge=0, description="Most tasks admitted per phase (WebRL: ~500).")
    band_low: float = Field(0.05, ge=0, le=1, description="Lowest predicted success admitted.")
    band_high: float = Field(0.75, ge=0, le=1, description="Highest predicted success admitted.")
    admit_unpredicted: bool = Field(True, description="Admit candidates with no prediction (phase 0).")
    dedupe_threshold: float = Field(0.95, gt=-1, le=1, description="Cosine at or above which = duplicate.")
    generator: Any = Field("grammar", description="'grammar' or any object with generate(failures, n).")
    validator: Any = Field("crafter", description="'crafter', None, or a callable text -> (ok, reason) | bool.")
    embed: Any = Field("hashing", description="'hashing', 'minilm', or a callable list[str] -> (n, d) array.")
    predictor: Any = Field("knn", description="'knn' or an object with predict(cand_vecs, known_vecs, ...).")
    knn_k: int = Field(5, ge=1, description="Neighbours of the knn predictor.")
    knn_min_similarity: float = Field(0.5, description="Least cosine for a neighbour to count.")
    priority: Literal["lp", "uniform_unmastered"] = Field("lp", description="How the pool is sampled.")
    mastered_threshold: float = Field(0.9, ge=0, le=1, description="EMA success counted as mastered.")
    ema_alpha: float = Field(0.1, gt=0, le=1, description="LP EMA rate (priority 'lp').")
    p_theta: float = Field(0.1, gt=0, lt=0.5, description="LP reweighting theta.")
    lp_update_every: int = Field(25, ge=1, description="LP step every this many updates.")
    tasks: list[str] | None = Field(
        None,
        description="Initial pool (texts or Discrete values as text); "
        "default: the TextSpace seeds / all Discrete values.",
    )
    grammar_max_count: int = Field(10, ge=1, description="Largest count the grammar generator writes.")
    refit_executor: Literal["inline", "thread"] = Field("thread", description="Where phases run.")

    @field_serializer("generator", "validator", "embed", "predictor")
    def _name(self, v: Any) -> Any:
        return (
            v if v is None or isinstance(v, str) else str(getattr(v, "name", getattr(v, "__name__", type(v).__name__)))
        )


def _resolve_validator(v: Any) -> Callable[[str], tuple[bool, str]] | None:
    if v is None:
        return None
    if v == "crafter":
        from openended.envs.crafter import validate_crafter_task

        return validate_crafter_task
    if isinstance(v, str):
        raise ConfigError(f"teacher.webrl.validator: unknown validator {v!r}; use 'crafter', None or a callable")
    if not callable(v):
        raise ConfigError("teacher.webrl.validator: must be callable text -> (ok, reason) or bool")

    def wrapped(text: str) -> tuple[bool, str]:
        r = v(text)
        return (bool(r[0]), str(r[1])) if isinstance(r, tuple) else (bool(r), "" if r else "rejected")

    return wrapped


def _resolve_embed(e: Any) -> Callable[[list[str]], np.ndarray]:
    if e == "hashing":
        from openended.moi.embedding import hashing_embed

        return hashing_embed
    if e == "minilm":
        from openended.moi.embedding import embed

        return embed
    if isinstance(e, str) or not callable(e):
        raise ConfigError(f"teacher.webrl.embed: use 'hashing', 'minilm' or a callable, got {e!r}")
    return e


class WebRLTeacher(BaseTeacher):
    """Self-evolving task pool (see the module docstring). Experimental."""

    name = "webrl"
    Config = WebRLConfig
    space_kinds = ("discrete", "text")
    PRESETS = {
        "webrl": {
            "seeds_per_turn": 10,
            "generation_turns": 2,
            "band_low": 0.05,
            "band_high": 0.75,
            "admit_per_phase": 500,
        }
    }

    def __init__(self, space: TaskSpace, config: WebRLConfig | None = None) -> None:
        super().__init__(space, config)
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        if cfg.band_low > cfg.band_high:
            raise ConfigError(f"teacher.webrl.band_low: {cfg.band_low} is above band_high {cfg.band_high}")
        self.generator = (
            GrammarMutationGenerator(seed=cfg.seed, max_count=cfg.grammar_max_count)
            if cfg.generator == "grammar"
            else cfg.generator
        )
        if not callable(getattr(self.generator, "generate", None)):
            raise ConfigError("teacher.webrl.generator: use 'grammar' or an object with generate(failures, n)")
        self.validator = _resolve_validator(cfg.validator)
        self.embed = _resolve_embed(cfg.embed)
        self.predictor = (
            KNNSuccessPredictor(cfg.knn_k, cfg.knn_min_similarity) if cfg.predictor == "knn" else cfg.predictor
        )
        if not callable(getattr(self.predictor, "predict", None)):
            raise ConfigError("teacher.webrl.predictor: use 'knn' or an object with predict(...)")
        self.refitter = Refitter(self._install, executor=cfg.refit_executor, swap=cfg.refit_swap, lag=cfg.refit_lag)
        self._tracker = LPTracker(0, alpha=cfg.ema_alpha, theta=cfg.p_theta)
        self._pool = TaskPool()
        self._phase_att = np.zeros(0)
        self._phase_suc = np.zeros(0)
        self._n_updates = 0
        self._phases = 0
        self._due = False
        self._last_phase: dict[str, Any] = {}
        self._recent: list[dict[str, Any]] = []
        self._version = 0
        self._cdf_key = -1
        self._cdf = np.zeros(0)
        self._counts.update({"phases": 0, "generated_admitted": 0})
        self._eval_seen = False
        self._dtexts: set[str] = (
            {str(v) for v in space.values}  # type: ignore[attr-defined]
            if space.kind == "discrete"
            else set()
        )
        if cfg.tasks is not None:
            init = [self._as_space_task(t, (), "seed") for t in cfg.tasks]
        else:
            init = known_tasks_of_space(space)
        self._add(init)

    # ----------------------------------------------------------------- the pool
    def _as_space_task(self, text: str, parents: Sequence[str], origin: str) -> Task:
        sp = self.space
        if sp.kind == "text":
            return sp.task(text, parent_ids=parents, origin=origin)  # type: ignore[attr-defined]
        for v in sp.values:  # type: ignore[attr-defined]
            if str(v) == text:
                return sp.task(v, origin=origin)._replace(parent_ids=tuple(parents))  # type: ignore[attr-defined]
        raise TaskNotInSpace(f"{sp!r}: {text[:60]!r} is not one of its values")

    def _accepts(self, text: str) -> bool:
        if self.space.kind == "text":
            return len(text) <= self.space.max_length  # type: ignore[attr-defined]
        return text in self._dtexts

    def _add(self, tasks: Sequence[Task]) -> list[Task]:
        new = self._pool.add(tasks)
        if new:
            self._tracker.grow(len(new))
            self._phase_att = np.concatenate([self._phase_att, np.zeros(len(new))])
            self._phase_suc = np.concatenate([self._phase_suc, np.zeros(len(new))])
            self.register_tasks(new)
            self._version += 1
        return new

    def known_tasks(self) -> list[Task]:
        return list(self._pool.tasks)

    def generated_tasks(self) -> list[Task]:
        return [t for t in self._pool if t.origin == "generated"]

    def success_estimates(self) -> np.ndarray:
        return self._tracker.ema_raw.copy()

    def probabilities(self) -> np.ndarray:
        self._ensure_cdf()
        p = np.diff(self._cdf, prepend=0.0)
        return p / p.sum()

    @property
    def distribution_version(self) -> int:
        return self._version

    def _ensure_cdf(self) -> None:
        if self._cdf_key == self._version:
            return
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        if cfg.priority == "lp":
            p = self._tracker.probabilities()
        else:
            unm = self._tracker.ema_raw < cfg.mastered_threshold
            p = unm.astype(np.float64) if unm.any() else np.ones(self._tracker.n)
        if p.sum() <= 0:
            p = np.ones(p.size)
        self._cdf = np.cumsum(p)
        self._cdf_key = self._version

    # ----------------------------------------------------------------- algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        self._ensure_cdf()
        idx = np.searchsorted(self._cdf, self.rng.random(n) * self._cdf[-1], side="right")
        np.minimum(idx, len(self._pool) - 1, out=idx)
        pool = self._pool.tasks
        return [pool[i] for i in idx.tolist()]

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        idx, suc, ev = [], [], []
        for t, o in zip(tasks, outcomes):
            i = self._pool.index_of(t.id)
            if i is None or o.success is None:
                continue
            idx.append(i)
            suc.append(1.0 if o.success else 0.0)
            ev.append(bool(o.info.get("eval", False)) if o.info else False)
        if idx:
            ia, sa, ea = np.asarray(idx), np.asarray(suc), np.asarray(ev)
            self._tracker.record(ia, sa, ea)
            np.add.at(self._phase_att, ia, 1.0)
            np.add.at(self._phase_suc, ia, sa)
            self._eval_seen = self._eval_seen or bool(ea.any())
        self._n_updates += 1
        if self._n_updates % cfg.lp_update_every == 0:
            self._tracker.step(use_eval=self._eval_seen)
            self._version += 1
        if self._n_updates % cfg.phase_every == 0:
            self._due = True
        if self._due:
            if cfg.refit_swap == "asap" and self.refitter is not None and self.refitter.busy:
                return
            self._due = False
            self._submit()

    def _empirical_success(self) -> np.ndarray:
        """EMA success where the LP tracker has stepped, else the lifetime success rate."""
        tr = self._tracker
        life = np.divide(tr.successes_total, tr.attempts_total, out=np.zeros(tr.n), where=tr.attempts_total > 0)
        return np.where(tr.seen > 0, tr.ema_raw, life)

    def failures(self) -> list[Task]:
        """Pool tasks attempted since the last phase with success below the threshold."""
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        att = self._phase_att
        rate = np.divide(self._phase_suc, att, out=np.zeros_like(att), where=att > 0)
        return [self._pool[i] for i in np.flatnonzero((att > 0) & (rate < cfg.failure_threshold)).tolist()]

    def _submit(self) -> None:
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        fails = self.failures()
        self._phase_att[:] = 0.0
        self._phase_suc[:] = 0.0
        seed = int(self.rng.integers(2**63 - 1))
        assert self.refitter is not None
        max_len = self.space.max_length if self.space.kind == "text" else 4096  # type: ignore[attr-defined]
        self.refitter.submit(
            _phase_job,
            dict(
                failures=fails,
                pool_texts=[t.text or str(t.params) for t in self._pool],
                pool_success=self._empirical_success(),
                pool_attempts=self._tracker.attempts_total.copy(),
                generator=self.generator,
                validator=self.validator,
                embed=self.embed,
                predictor=self.predictor,
                seed=seed,
                seeds_per_turn=cfg.seeds_per_turn,
                generation_turns=cfg.generation_turns,
                candidates_per_turn=cfg.candidates_per_turn,
                admit_per_phase=cfg.admit_per_phase,
                band=(cfg.band_low, cfg.band_high),
                dedupe_threshold=cfg.dedupe_threshold,
                admit_unpredicted=cfg.admit_unpredicted,
                max_length=max_len,
                accept=self._accepts,
            ),
        )

    def run_phase_now(self) -> dict[str, Any]:
        """Run a phase immediately and install it (tests, notebooks); blocks on the generator."""
        assert self.refitter is not None
        self._submit()
        self.refitter.drain()
        return self._last_phase

    def _install(self, result: dict[str, Any]) -> None:
        admitted = []
        for a in result["admitted"]:
            try:
                admitted.append(self._as_space_task(a["text"], a["parent_ids"], "generated"))
            except TaskNotInSpace:
                continue
        new = self._add(admitted)
        self._phases += 1
        self._counts["phases"] += 1
        self._counts["generated_admitted"] += len(new)
        self._last_phase = {
            "phase": self._phases,
            "funnel": dict(result["funnel"]),
            "examples": dict(result["examples"]),
        }
        for t, a in zip(new, result["admitted"]):
            self._recent.append(
                {"task": task_label(t), "id": t.id, "parents": list(t.parent_ids), "predicted": a.get("predicted")}
            )
        self._recent = self._recent[-20:]

    # ----------------------------------------------------------------- persistence
    def _state_dict(self) -> dict:
        return {
            "pool": self._pool.to_dicts(),
            "tracker": self._tracker.state_dict(),
            "phase_att": self._phase_att,
            "phase_suc": self._phase_suc,
            "n_updates": self._n_updates,
            "phases": self._phases,
            "due": self._due,
            "last_phase": self._last_phase,
            "recent": self._recent,
            "eval_seen": self._eval_seen,
            "generator_rng": (
                self.generator.rng.bit_generator.state if isinstance(self.generator, GrammarMutationGenerator) else None
            ),
        }

    def _load_state_dict(self, state: dict) -> None:
        self._pool.load(state["pool"])
        self._tracker.load_state_dict(state["tracker"])
        self._phase_att = np.asarray(state["phase_att"], dtype=np.float64).copy()
        self._phase_suc = np.asarray(state["phase_suc"], dtype=np.float64).copy()
        self._n_updates = int(state["n_updates"])
        self._phases = int(state["phases"])
        self._due = bool(state["due"])
        self._last_phase = dict(state["last_phase"])
        self._recent = list(state["recent"])
        self._eval_seen = bool(state["eval_seen"])
        if state.get("generator_rng") is not None and isinstance(self.generator, GrammarMutationGenerator):
            self.generator.rng.bit_generator.state = state["generator_rng"]
        self._version += 1

    def _stats(self) -> dict:
        cfg: WebRLConfig = self.config  # type: ignore[assignment]
        tr = self._tracker
        return {
            "webrl/pool": len(self._pool),
            "webrl/generated": sum(t.origin == "generated" for t in self._pool),
            "webrl/phases": self._phases,
            "webrl/mastered_fraction": float((tr.ema_raw >= cfg.mastered_threshold).mean()) if tr.n else 0.0,
            "webrl/last_phase": self._last_phase,
            "webrl/recent_admitted": list(self._recent),
        }


def _phase_job(kwargs: dict[str, Any]) -> dict[str, Any]:
    return run_phase(**kwargs)
