"""Judge registry: ``make_judge("embedding")``, ``make_judge("openai", base_url=..., model=...)``.

Entries are ``"module:Class"`` strings loaded on first use, so asking for the oracle
never imports torch and asking for nothing imports nothing heavy. Names are
case-insensitive and ``-`` equals ``_``; an unknown name or keyword lists the choices.

Wrapping judges take the judge they wrap by name or as an object::

    make_judge("record", inner="openai", inner_cfg={"base_url": ..., "model": ...}, path="moi.jsonl")
    make_judge("replay", path="moi.jsonl")
    make_judge("async", inner="openai", inner_cfg={...}, fallback="embedding", timeout_s=10)

Registered names (aliases in brackets): embedding (default), openai [http], llamacpp
[llama_cpp, llama], oracle [rule_oracle], record [recording], replay, async [queue].
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from openended.errors import ConfigError
from openended.moi.base import Judge
from openended.registry import Registry

__all__ = [
    "judge_registry",
    "register_judge",
    "make_judge",
    "judge_class",
    "list_judges",
    "judge_source",
    "DEFAULT_JUDGE",
    "JUDGE_GROUP",
]

DEFAULT_JUDGE = "embedding"
#: Entry-point group of installed judge plugins (a judge may also be named by import path).
JUDGE_GROUP = "openended.judges"

_JUDGES = Registry("judge", JUDGE_GROUP)
# Keyword arguments that name another judge (built recursively from a name + "<arg>_cfg").
_JUDGE_ARGS = ("inner", "fallback")


def register_judge(name: str, entry: str | type, *, aliases: tuple[str, ...] = (), overwrite: bool = False) -> None:
    """Register a judge class (or a lazy ``"module:Class"`` path) under ``name``."""
    _JUDGES.register(name, entry, aliases=aliases, overwrite=overwrite)


def judge_class(name: str) -> type:
    """The class registered as ``name`` (imports its module on first use)."""
    return _JUDGES.get(name)


def list_judges() -> list[str]:
    """Registered judge names (aliases excluded, installed plugins included), sorted."""
    return _JUDGES.names()


def judge_source(name: str) -> str:
    """Where judge ``name`` comes from: built-in, an entry point of a distribution, an import path."""
    return _JUDGES.source(name)


def _resolve(value: Any, cfg: dict[str, Any] | None, field: str) -> Any:
    if value is None or not isinstance(value, str):
        if cfg:
            raise ConfigError(f"moi.{field}_cfg: only allowed when {field} is a judge name, got {type(value).__name__}")
        return value
    return make_judge(value, **(cfg or {}))


def make_judge(name: str = DEFAULT_JUDGE, **cfg: Any) -> Judge:
    """Build a judge by name; keyword arguments go to its constructor.

    ``inner``/``fallback`` given as a name are built with ``make_judge`` from
    ``inner_cfg``/``fallback_cfg``. A misspelt keyword raises `ConfigError` naming the
    valid ones (and the closest); so does a missing required one.
    """
    key = _JUDGES.canonical(name)
    cls = judge_class(key)
    for field in _JUDGE_ARGS:
        sub_cfg = cfg.pop(f"{field}_cfg", None)
        if field in cfg:
            cfg[field] = _resolve(cfg[field], sub_cfg, field)
        elif sub_cfg:
            raise ConfigError(f"moi.{key}.{field}_cfg: given without {field}")
    sig = inspect.signature(cls)
    params = sig.parameters
    takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    valid = [p for p, v in params.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    if not takes_var_kw:
        for k in cfg:
            if k not in params:
                close = difflib.get_close_matches(k, valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"moi.{key}.{k}: unknown field.{hint} (valid fields: {', '.join(valid)})")
    try:
        sig.bind(**cfg)
    except TypeError as err:
        raise ConfigError(f"moi.{key}: {err} (valid fields: {', '.join(valid)})") from None
    return cls(**cfg)


def judge_registry() -> Registry:
    """The judge registry itself (names, sources, plugins it ignored), for listings such as ``openended judges``."""
    return _JUDGES


# Built-in judges (lazy: nothing below imports torch, llama_cpp or an HTTP stack).
register_judge("embedding", "openended.moi.embedding:EmbeddingJudge", aliases=("novelty", "minilm"))
register_judge("openai", "openended.moi.http:OpenAIJudge", aliases=("http", "openai_compatible"))
register_judge("llamacpp", "openended.moi.llamacpp:LlamaCppJudge", aliases=("llama_cpp", "llama"))
register_judge("oracle", "openended.moi.oracle:RuleOracleJudge", aliases=("rule_oracle", "rules"))
register_judge("record", "openended.moi.record:RecordingJudge", aliases=("recording",))
register_judge("replay", "openended.moi.record:ReplayJudge")
register_judge("async", "openended.moi.queue:AsyncJudge", aliases=("queue",))
