"""Foundation-model judges ("models of interestingness", MoI); pure Python, no Ray.

One interface (`Judge.judge(candidates, context) -> list[Judgement]`) with pluggable
backends, built by name with `make_judge`:

    embedding  EmbeddingJudge   novelty vs mastered tasks, MiniLM, offline (default)
    openai     OpenAIJudge      any OpenAI-compatible /v1/chat/completions server
    llamacpp   LlamaCppJudge    in-process llama.cpp (extra ``llm``)
    oracle     RuleOracleJudge  count/synonym variants from task structure (OMNI's oracle)
    record     RecordingJudge   wraps a judge; logs every answer to content-addressed JSONL
    replay     ReplayJudge      serves a recording deterministically
    async      AsyncJudge       submit/poll queue with timeout, retry, fallback, metrics

Importing this package is cheap: classes and `embed` load their modules on first
attribute access (PEP 562), and torch/sentence-transformers load only when a text is
first embedded. See docs/moi.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from openended.moi.base import Judge, JudgeContext, Judgement, candidate_text
from openended.moi.registry import list_judges, make_judge, register_judge

if TYPE_CHECKING:  # pragma: no cover
    from openended.moi.embedding import EmbeddingJudge, embed, hashing_embed, similarity_matrix
    from openended.moi.http import OpenAIJudge
    from openended.moi.llamacpp import LlamaCppJudge
    from openended.moi.oracle import RuleOracleJudge
    from openended.moi.queue import AsyncJudge, JudgeHandle, JudgeResult
    from openended.moi.record import RecordingJudge, ReplayJudge, ReplayMiss

_LAZY: dict[str, str] = {
    "EmbeddingJudge": "openended.moi.embedding",
    "embed": "openended.moi.embedding",
    "similarity_matrix": "openended.moi.embedding",
    "hashing_embed": "openended.moi.embedding",
    "OpenAIJudge": "openended.moi.http",
    "LlamaCppJudge": "openended.moi.llamacpp",
    "RuleOracleJudge": "openended.moi.oracle",
    "RecordingJudge": "openended.moi.record",
    "ReplayJudge": "openended.moi.record",
    "ReplayMiss": "openended.moi.record",
    "AsyncJudge": "openended.moi.queue",
    "JudgeHandle": "openended.moi.queue",
    "JudgeResult": "openended.moi.queue",
}

__all__ = [
    "Judge",
    "JudgeContext",
    "Judgement",
    "candidate_text",
    "make_judge",
    "list_judges",
    "register_judge",
    # lazy (PEP 562), listed literally so tools see them; a test keeps this list equal to _LAZY
    "EmbeddingJudge",
    "embed",
    "similarity_matrix",
    "hashing_embed",
    "OpenAIJudge",
    "LlamaCppJudge",
    "RuleOracleJudge",
    "RecordingJudge",
    "ReplayJudge",
    "ReplayMiss",
    "AsyncJudge",
    "JudgeHandle",
    "JudgeResult",
]


def __getattr__(name: str) -> Any:
    """Load a heavy export on first access; unknown names raise AttributeError as usual."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
