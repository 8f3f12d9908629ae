r"""Treat task text as untrusted data: cap it, and make it safe to print.

Task text comes from generators (LLMs) and users, so every judge treats it as *data*:
it is never executed or ``eval``'d, it is length-capped before it reaches a model, it
travels inside a quoted JSON field of a prompt (never spliced in as instructions; see
`openended.moi.prompts`), and control characters are escaped before it reaches a log,
so a task cannot rewrite a terminal (ANSI escapes), forge log lines (``\n``) or hide
text (bidi overrides).

Record/replay files keep the *original* text byte-exact (JSON-escaped); only what a model
sees and what a log prints is capped or escaped.

Contents:
    MAX_TEXT_CHARS -- default cap on one task text given to a model.
    cap_text       -- truncate to a character budget, marking the cut.
    for_log        -- escape control/format characters and shorten, for log lines.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_TEXT_CHARS", "MAX_REASON_CHARS", "cap_text", "for_log"]

MAX_TEXT_CHARS = 2000
"""Longest task text (characters) a judge passes to a model; longer text is cut.

Why 2,000: MiniLM reads at most 256 word pieces (about 1,000 characters) anyway, and an
LLM prompt per candidate should stay small and bounded whatever a generator emits.
"""

MAX_REASON_CHARS = 1000
"""Longest reason string kept from a model's answer (a runaway model cannot bloat logs)."""

_CUT_MARK = " …[truncated]"


def cap_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` as a model may see it: cut to ``max_chars`` characters, cut marked.

    Lone surrogates (not encodable as UTF-8, so they would crash a tokenizer or an HTTP
    body) are replaced by ``?``.

    Example:
        >>> cap_text("abcdef", 3)
        'abc …[truncated]'
        >>> cap_text("abc", 3)
        'abc'
    """
    text = str(text)
    if len(text) > max_chars:
        text = text[: max(0, max_chars)] + _CUT_MARK
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def for_log(text: str, max_chars: int = 200) -> str:
    r"""A one-line, printable rendering of untrusted text for log messages.

    Control characters (Unicode category ``Cc``: newlines, ANSI escape, NUL), format
    characters (``Cf``: bidi overrides, zero-width joiners), line/paragraph separators and
    lone surrogates become ``\xNN`` / ``\uNNNN`` escapes; the result is cut to
    ``max_chars``.

    Example:
        >>> for_log("evil\x1b[31m\nFAKE LOG LINE")
        'evil\\x1b[31m\\nFAKE LOG LINE'
    """
    out: list[str] = []
    for ch in str(text)[: max_chars + 1]:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            if ch == "\n":
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x100:
                out.append(f"\\x{ord(ch):02x}")
            else:
                out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    s = "".join(out)
    return s if len(text) <= max_chars else s[:max_chars] + "…"
