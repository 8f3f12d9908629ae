"""What every registry (teachers, envs, judges) shares: name lookup and import paths.

Name normalisation and "did you mean" errors, and `resolve_import_path`, which turns a
config's ``"package.module:function"`` into the callable.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from openended.errors import ConfigError, UnknownName

__all__ = ["normalize_name", "unknown_name_error", "load_entry_point", "resolve_import_path"]


def normalize_name(name: str) -> str:
    """``"ALP-GMM"`` -> ``"alp_gmm"``: case-insensitive, ``-`` and space equal ``_``."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> UnknownName:
    """An `UnknownName` error listing the registered names, with the closest as a hint."""
    known = sorted(set(known))
    close = difflib.get_close_matches(normalize_name(name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownName(f"unknown {kind} {name!r}.{hint} Registered: {', '.join(known)}")


def load_entry_point(entry: str) -> Any:
    """Import ``"package.module:Attr"`` lazily (heavy extras load only on use)."""
    module, _, attr = entry.partition(":")
    return _attribute(importlib.import_module(module), attr)


def _attribute(obj: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        obj = getattr(obj, part)
    return obj


def resolve_import_path(path: str, what: str = "import path") -> Callable[..., Any]:
    """The callable ``"package.module:function"`` names, imported now.

    For config fields that name code (a teacher's task validator, plugins): a string
    travels through YAML, JSON and Ray where a function object cannot. ``what`` is the
    field, e.g. ``"teacher.webrl.validator"``; every failure is a `ConfigError` that
    names it and says whether the module, the attribute or its type was wrong.
    """
    form = "write 'package.module:function'"
    if not isinstance(path, str):
        raise ConfigError(f"{what}: expected an import path string ({form}), got {type(path).__name__}")
    module, sep, attr = path.strip().partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what}: {path!r} is not an import path; {form}")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(f"{what}: cannot import module {module!r} of {path!r} ({err}); {form}") from None
    try:
        obj = _attribute(mod, attr)
    except AttributeError:
        raise ConfigError(f"{what}: module {module!r} has no attribute {attr!r} (from {path!r})") from None
    if not callable(obj):
        raise ConfigError(f"{what}: {path!r} is a {type(obj).__name__}, not a function or other callable")
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
        """Add ``entry`` under ``name`` and ``aliases``; re-registering a different entry needs ``overwrite``."""
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
        """Registered keys (aliases excluded), sorted."""
        return sorted(self._entries)
