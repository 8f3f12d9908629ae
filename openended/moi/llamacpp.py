"""An in-process LLM judge on llama.cpp (``llama-cpp-python``), for fully offline runs.

Install: ``pip install openended[llm]`` (llama-cpp-python builds from source: about 7.5
minutes on 2 cores; see docs/moi.md). The model is any chat GGUF file given by path;
nothing is downloaded.

Why it exists next to `OpenAIJudge`: a judge with no server to run, for machines without
network. Why it is not the default: on CPU it costs seconds per candidate, and the tiny
models that fit a CI budget (SmolLM2-135M) cannot tell novel, duplicate and impossible
tasks apart (measured, at ~1.6 s per 330-token-in, 40-token-out call on 2 threads; see
docs/moi.md). Serve a real model with ``llama-server`` and use `OpenAIJudge` for quality.

Decoding is constrained by the template's JSON schema (llama.cpp turns it into a
grammar), so the answer always has the right shape; it is still parsed with
``json.loads(strict=False)`` (small models put raw newlines inside strings) and
validated like any other answer, and a bad one is ``ok=False``, never a crash.

One judge holds one ``Llama`` context, which is not thread-safe: calls are serialised with
a lock, and candidates are judged one per completion (``omni-v1``) or in batches
(``omni-batch-v1``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openended.errors import ConfigError, DependencyNotInstalled
from openended.moi.base import JudgeContext, Judgement, candidate_text
from openended.moi.prompts import (
    DEFAULT_TEMPLATE,
    MalformedAnswer,
    answer_schema,
    build_messages,
    get_template,
    parse_answer,
    parse_batch_answer,
)
from openended.moi.safety import MAX_TEXT_CHARS, for_log
from openended.tasks import Task

__all__ = ["LlamaCppJudge", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install openended[llm]"
NEUTRAL = 0.5


def _import_llama() -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as err:
        raise DependencyNotInstalled(
            f"LlamaCppJudge needs llama-cpp-python (import failed: {err}); install it with "
            f"`{INSTALL_HINT}` (it compiles llama.cpp: ~7.5 min on 2 cores)"
        ) from err
    return Llama


class LlamaCppJudge:
    """OMNI-style yes/no interestingness from a local GGUF chat model.

    Args:
        model_path: path to a ``.gguf`` chat model.
        template_version: a key of `openended.moi.prompts.TEMPLATES`.
        n_ctx: context window in tokens.
        n_threads: CPU threads for llama.cpp (None: its default). Teacher processes share
            cores with environment workers, so keep this small.
        max_tokens: answer budget per candidate.
        temperature: 0 for repeatable answers.
        seed: llama.cpp sampling seed.
        max_batch: candidates per completion for batched templates.
        max_chars: task texts are cut to this many characters in the prompt.
        llama: an already-built ``llama_cpp.Llama`` (or an object with the same
            ``create_chat_completion``), instead of loading ``model_path``.
    """

    name = "llamacpp"

    def __init__(
        self,
        model_path: str | None = None,
        template_version: str = DEFAULT_TEMPLATE,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        seed: int = 0,
        max_batch: int = 8,
        max_chars: int = MAX_TEXT_CHARS,
        llama: Any = None,
    ) -> None:
        self.template = get_template(template_version)
        self.template_version = template_version
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.max_batch = int(max_batch)
        self.max_chars = int(max_chars)
        self._lock = threading.Lock()
        if llama is not None:
            self._llm = llama
            self.model = Path(model_path).name if model_path else type(llama).__name__
            return
        if model_path is None:
            raise ConfigError("moi.llamacpp.model_path: required (a .gguf chat model file)")
        Llama = _import_llama()  # the missing-extra error comes first: it is the one to fix first
        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"moi.llamacpp.model_path: no file at {str(path)!r}")
        self.model = path.name
        kwargs: dict[str, Any] = {"model_path": str(path), "n_ctx": int(n_ctx), "seed": int(seed), "verbose": False}
        if n_threads is not None:
            kwargs["n_threads"] = int(n_threads)
        self._llm = Llama(**kwargs)

    def _complete(self, messages: list[dict[str, str]], schema: dict[str, Any], n: int) -> str:
        with self._lock:
            out = self._llm.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": schema},
                temperature=self.temperature,
                max_tokens=self.max_tokens * n,
            )
        try:
            content = out["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise MalformedAnswer(f"llama.cpp returned no message content ({type(err).__name__})") from None
        if not isinstance(content, str):
            raise MalformedAnswer(f"completion content is {type(content).__name__}, not text")
        return content

    def _failed(self, why: str, n: int) -> list[Judgement]:
        log.warning("llamacpp judge (%s): %s", self.model, for_log(why, 300))
        return [Judgement(NEUTRAL, why, False, self.name) for _ in range(n)]

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """Ask the local model: one completion per candidate, or per ``max_batch`` with a batched template."""
        texts = [candidate_text(c) for c in candidates]
        out: list[Judgement] = []
        if not self.template.batched:
            for t in texts:
                try:
                    content = self._complete(
                        build_messages(self.template, t, context, self.max_chars), answer_schema(self.template), 1
                    )
                    interesting, reason = parse_answer(content, strict=False)
                except MalformedAnswer as err:
                    out.extend(self._failed(str(err), 1))
                    continue
                out.append(Judgement(1.0 if interesting else 0.0, reason, True, self.name))
            return out
        for start in range(0, len(texts), self.max_batch):
            chunk = texts[start : start + self.max_batch]
            try:
                content = self._complete(
                    build_messages(self.template, chunk, context, self.max_chars),
                    answer_schema(self.template, len(chunk)),
                    len(chunk),
                )
                parsed = parse_batch_answer(content, len(chunk), strict=False)
            except MalformedAnswer as err:
                out.extend(self._failed(str(err), len(chunk)))
                continue
            for i, item in enumerate(parsed):
                if item is None:
                    out.extend(self._failed(f"batched answer has no single judgement for index {i}", 1))
                else:
                    out.append(Judgement(1.0 if item[0] else 0.0, item[1], True, self.name))
        return out
