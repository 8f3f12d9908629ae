"""Name normalisation and "did you mean" lookups shared by every registry (teachers, envs, judges)."""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterable

from openended.errors import UnknownName

__all__ = ["normalize_name", "unknown_name_error", "load_entry_point"]


def normalize_name(name: str) -> str:
    """``"ALP-GMM"`` -> ``"alp_gmm"``: case-insensitive, ``-`` and space equal ``_``."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> UnknownName:
    known = sorted(set(known))
    close = difflib.get_close_matches(normalize_name(name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownName(f"unknown {kind} {name!r}.{hint} Registered: {', '.join(known)}")


def load_entry_point(entry: str) -> Any:
    """Import ``"package.module:Attr"`` lazily (heavy extras load only on use)."""
    module, _, attr = entry.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj
