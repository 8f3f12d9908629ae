"""An LLM judge over any OpenAI-compatible ``/v1/chat/completions`` endpoint.

One adapter covers OpenAI, vLLM, llama.cpp's ``llama-server`` and ollama's ``/v1``: point
``base_url`` at the server and name the ``model`` it serves. Uses only the standard
library (``urllib``), so the judge adds no dependency.

Request shape (chosen by the template version, see `openended.moi.prompts`):

* ``omni-v1`` (default): **one request per candidate**. Why default: a malformed or
  truncated answer costs one candidate, not a batch; small local models answer one
  question far more reliably than many; and each record/replay entry maps to exactly
  one request.
* ``omni-batch-v1``: up to ``max_batch`` candidates per request, answered as
  ``{"judgements": [{"index", "interesting", "reason"}, ...]}``. Fewer, longer calls: use
  it with strong hosted models where per-request latency or cost dominates.

Requests run one after another inside ``judge``; for concurrency and for a hard
deadline, wrap the judge in `openended.moi.queue.AsyncJudge` (``timeout`` here is the
socket timeout of each request, not a deadline for the whole call).

Failure handling: a transport error, an HTTP error status or an answer that does not
parse as the template's JSON gives ``Judgement(ok=False, score=0.5)`` for the affected
candidates and a logged warning (with control characters escaped); ``judge`` never
raises for a bad answer.

The API key is read from the environment variable ``api_key_env`` at request time
(never stored, logged or recorded); with the variable unset, no ``Authorization`` header
is sent, which is what local servers expect.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal

from openended.errors import ConfigError
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

__all__ = ["OpenAIJudge", "chat_completions_url"]

log = logging.getLogger(__name__)

NEUTRAL = 0.5
"""Score of a failed judgement: on the interesting side of 0.5, i.e. fail open (a broken
judge must not silently remove tasks from a curriculum)."""


def chat_completions_url(base_url: str) -> str:
    """``http://host:8080`` or ``http://host:8080/v1`` -> ``.../v1/chat/completions``.

    Example:
        >>> chat_completions_url("http://127.0.0.1:8080")
        'http://127.0.0.1:8080/v1/chat/completions'
        >>> chat_completions_url("https://api.example.com/v1/")
        'https://api.example.com/v1/chat/completions'
    """
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


class _RequestFailed(Exception):
    """Transport or HTTP-status failure (internal; becomes ok=False judgements)."""


class OpenAIJudge:
    """OMNI-style yes/no interestingness from a chat model behind an OpenAI-compatible API.

    Args:
        base_url: server root, with or without ``/v1`` (``http://127.0.0.1:8080``).
            Only ``http``/``https`` URLs are accepted.
        model: the model name the server expects (part of every record/replay key).
        api_key_env: environment variable holding the API key (``None``: never send one).
        timeout: socket timeout per request, seconds.
        template_version: a key of `openended.moi.prompts.TEMPLATES`.
        temperature: sampling temperature (0 for the most repeatable answers).
        max_tokens: answer budget per request (per candidate for batched templates).
        response_format: ask the server to constrain output: ``"json_schema"`` (vLLM,
            llama-server, OpenAI), ``"json_object"`` (ollama, OpenAI) or ``"none"``
            (default: works everywhere; the answer is parsed strictly either way).
        max_batch: candidates per request for batched templates.
        max_chars: each task text is cut to this many characters in the prompt.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 30.0,
        template_version: str = DEFAULT_TEMPLATE,
        temperature: float = 0.0,
        max_tokens: int = 256,
        response_format: Literal["none", "json_object", "json_schema"] = "none",
        max_batch: int = 16,
        max_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        scheme = str(base_url).split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"moi.openai.base_url: must be an http(s) URL, got {base_url!r}")
        if not model:
            raise ConfigError("moi.openai.model: must name the served model, got an empty string")
        if timeout <= 0:
            raise ConfigError(f"moi.openai.timeout: must be > 0 seconds, got {timeout}")
        if response_format not in ("none", "json_object", "json_schema"):
            raise ConfigError(
                f"moi.openai.response_format: must be one of none, json_object, json_schema; got {response_format!r}"
            )
        if max_batch < 1 or max_tokens < 1:
            raise ConfigError(f"moi.openai: max_batch and max_tokens must be >= 1, got {max_batch}, {max_tokens}")
        self.template = get_template(template_version)
        self.base_url = str(base_url)
        self.url = chat_completions_url(self.base_url)
        self.model = str(model)
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.template_version = template_version
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.response_format = response_format
        self.max_batch = int(max_batch)
        self.max_chars = int(max_chars)
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"OpenAIJudge(url={self.url!r}, model={self.model!r}, template={self.template_version!r})"

    # ------------------------------------------------------------------ transport
    def _post(self, messages: list[dict[str, str]], schema: dict[str, Any], n_answers: int) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens * n_answers,
        }
        if self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "strict": True, "schema": schema},
            }
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
        self.requests_sent += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # scheme checked in __init__
                raw = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read(300).decode("utf-8", "replace") if err.fp else ""
            raise _RequestFailed(f"HTTP {err.code} from {self.url}: {for_log(detail)}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise _RequestFailed(f"request to {self.url} failed: {for_log(str(reason))}") from None
        try:
            payload = json.loads(raw.decode("utf-8"))
            content = payload["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
            raise MalformedAnswer(
                f"response is not an OpenAI chat completion ({type(err).__name__}: {for_log(str(err), 100)})"
            ) from None
        if not isinstance(content, str):
            raise MalformedAnswer(f"completion content is {type(content).__name__}, not text")
        return content

    # ------------------------------------------------------------------ judging
    def _failed(self, why: str, n: int) -> list[Judgement]:
        log.warning("openai judge (%s, %s): %s", self.model, self.template_version, for_log(why, 300))
        return [Judgement(NEUTRAL, why, False, self.name) for _ in range(n)]

    def _verdict(self, interesting: bool, reason: str) -> Judgement:
        return Judgement(1.0 if interesting else 0.0, reason, True, self.name)

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """Ask the model: one request per candidate, or per ``max_batch`` candidates for a batched template."""
        texts = [candidate_text(c) for c in candidates]
        if self.template.batched:
            out: list[Judgement] = []
            for start in range(0, len(texts), self.max_batch):
                out.extend(self._judge_batch(texts[start : start + self.max_batch], context))
            return out
        return [self._judge_one(t, context) for t in texts]

    def _judge_one(self, text: str, context: JudgeContext) -> Judgement:
        messages = build_messages(self.template, text, context, self.max_chars)
        try:
            interesting, reason = parse_answer(self._post(messages, answer_schema(self.template), 1))
        except (_RequestFailed, MalformedAnswer) as err:
            return self._failed(str(err), 1)[0]
        return self._verdict(interesting, reason)

    def _judge_batch(self, texts: list[str], context: JudgeContext) -> list[Judgement]:
        messages = build_messages(self.template, texts, context, self.max_chars)
        try:
            content = self._post(messages, answer_schema(self.template, len(texts)), len(texts))
            parsed = parse_batch_answer(content, len(texts))
        except (_RequestFailed, MalformedAnswer) as err:
            return self._failed(str(err), len(texts))
        out = []
        for i, item in enumerate(parsed):
            if item is None:
                out.extend(self._failed(f"batched answer has no single judgement for index {i}", 1))
            else:
                out.append(self._verdict(*item))
        return out
