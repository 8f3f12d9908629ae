"""Name normalisation and "did you mean" lookups shared by every registry (teachers, envs, judges)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any

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


class Registry:
    """A name -> entry table with aliases and lazy ``"module:Attr"`` entries.

    One implementation behind the teacher, env-family and judge registries, so every
    lookup has the same rules: case-insensitive, ``-`` equals ``_``, aliases, "did you
    mean" on a miss, entries imported on first use.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: Any, *, aliases: tuple[str, ...] = (), overwrite: bool = False) -> None:
        from openended.errors import ConfigError

        key = normalize_name(name)
        if key in self._entries and not overwrite and self._entries[key] != entry:
            raise ConfigError(f"{self.kind} {key!r} is already registered; pass overwrite=True to replace it")
        self._entries[key] = entry
        for a in aliases:
            self._aliases[normalize_name(a)] = key

    def canonical(self, name: str) -> str:
        """The registered key for ``name`` (alias-resolved); raises `UnknownName` on a miss."""
        key = normalize_name(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise unknown_name_error(self.kind, name, list(self._entries))
        return key

    def get(self, name: str) -> Any:
        """The entry for ``name``, importing a lazy entry on first use."""
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str):
            entry = load_entry_point(entry)
            self._entries[key] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)
