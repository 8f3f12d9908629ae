"""What every registry (teachers, envs, judges) shares: name lookup, import paths, plugins.

Name normalisation and "did you mean" errors, and `resolve_import_path`, which turns a
config's ``"package.module:function"`` into the callable.

Plugins (a user's own teacher, env family or judge) reach a registry two ways, both
plain data that travels to every Ray worker, where the worker imports the same code:

* an import path as the name, ``teacher.name: "my_pkg.teachers:GrowTeacher"``;
* an entry point in the registry's group (``openended.teachers``, ``openended.envs``,
  ``openended.judges``) of an installed distribution, found on the first lookup miss.

A registry mutation (``register_teacher`` in the driver) would not reach the worker
processes; these do, because every process resolves the name itself.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Iterable
from typing import Any

from openended.errors import ConfigError, UnknownName

__all__ = [
    "normalize_name",
    "is_import_path",
    "unknown_name_error",
    "load_entry_point",
    "resolve_import_path",
    "Registry",
    "BUILT_IN",
]

#: `Registry.sources` value of the entries openended itself registers.
BUILT_IN = "built-in"


def is_import_path(name: object) -> bool:
    """Whether ``name`` is a ``"package.module:Attr"`` import path rather than a registered name."""
    return isinstance(name, str) and ":" in name


def normalize_name(name: str) -> str:
    """``"ALP-GMM"`` -> ``"alp_gmm"``: case-insensitive, ``-`` and space equal ``_``.

    An import path (``"my_pkg.mod:MyTeacher"``) is kept as written, only stripped: module
    and attribute names are case-sensitive.
    """
    if is_import_path(name):
        return name.strip()
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
    """A name -> entry table with aliases, lazy ``"module:Attr"`` entries and plugins.

    One implementation behind the teacher, env-family and judge registries, so every
    lookup has the same rules: case-insensitive, ``-`` equals ``_``, aliases, "did you
    mean" on a miss, entries imported on first use; an import path is its own entry, and
    the entry points of ``group`` are registered on the first miss (or listing).
    """

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}
        self._sources: dict[str, str] = {}
        self._imported: dict[str, Any] = {}  # import path -> object
        self._plugin_paths: dict[str, str] = {}  # entry-point key -> its "module:attr"
        self._plugins_loaded = group is None
        self._scanned_path: tuple[str, ...] = ()  # sys.path when the entry points were last read
        #: Entry points not registered because a built-in (or earlier) entry has the name.
        self.shadowed: list[str] = []

    def register(
        self,
        name: str,
        entry: Any,
        *,
        aliases: tuple[str, ...] = (),
        overwrite: bool = False,
        source: str | None = None,
    ) -> None:
        """Add ``entry`` under ``name`` and ``aliases``; re-registering a different entry needs ``overwrite``.

        ``source`` is what `sources` reports (default: built-in for openended's own
        modules, else the module that holds the entry).
        """
        key = normalize_name(name)
        if is_import_path(key):
            raise ConfigError(
                f"{self.kind} name {name!r}: a registered name cannot contain ':' (import paths need none)"
            )
        if key in self._entries and not overwrite and self._entries[key] != entry:
            raise ConfigError(f"{self.kind} {key!r} is already registered; pass overwrite=True to replace it")
        self._entries[key] = entry
        self._sources[key] = source or _source_of(entry)
        for a in aliases:
            self._aliases[normalize_name(a)] = key

    def canonical(self, name: str) -> str:
        """The registered key for ``name`` (alias-resolved; an import path is its own key); `UnknownName` on a miss."""
        key = normalize_name(name)
        if is_import_path(key):
            return key
        key = self._aliases.get(key, key)
        if key not in self._entries and self.group is not None:
            self.load_plugins()
            key = self._aliases.get(key, key)
        if key not in self._entries:
            raise unknown_name_error(self.kind, name, list(self._entries))
        return key

    def get(self, name: str) -> Any:
        """The entry for ``name``, importing a lazy entry (or an import path) on first use."""
        key = self.canonical(name)
        if is_import_path(key):
            if key not in self._imported:
                self._imported[key] = resolve_import_path(key, what=f"{self.kind} {key!r}")
            return self._imported[key]
        entry = self._entries[key]
        if isinstance(entry, str):
            entry = load_entry_point(entry)
            self._entries[key] = entry
        return entry

    def names(self) -> list[str]:
        """Registered keys (aliases excluded, installed plugins included), sorted."""
        self.load_plugins()
        return sorted(self._entries)

    def source(self, name: str) -> str:
        """Where ``name``'s entry comes from: built-in, an entry point of a distribution, an import path."""
        key = self.canonical(name)
        return "import path" if is_import_path(key) else self._sources[key]

    def plugin_path(self, name: str) -> str | None:
        """The import path of a plugin's code (its own name, or its entry point's value); None otherwise."""
        key = self.canonical(name)
        return key if is_import_path(key) else self._plugin_paths.get(key)

    def is_plugin(self, name: str) -> bool:
        """Whether ``name`` is a user's entry (import path, entry point, registered from outside openended)."""
        return self.source(name) != BUILT_IN

    def load_plugins(self) -> None:
        """Register the entry points of this registry's group; a taken name is kept in `shadowed`.

        Read once, and again whenever ``sys.path`` has changed since (a plugin installed or put
        on the path after the first lookup is found too).
        """
        if self.group is None or (self._plugins_loaded and self._scanned_path == tuple(sys.path)):
            return
        self._plugins_loaded = True
        self._scanned_path = tuple(sys.path)
        for ep in importlib.metadata.entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            key = normalize_name(ep.name)
            if self._plugin_paths.get(key) == ep.value:  # found by an earlier scan
                continue
            if key in self._entries or key in self._aliases or is_import_path(key):
                note = f"{ep.name} = {ep.value} ({dist}): name already taken"
                if note not in self.shadowed:
                    self.shadowed.append(note)
                continue
            self._entries[key] = self._plugin_paths[key] = ep.value
            self._sources[key] = f"entry point of {dist}"


def _source_of(entry: Any) -> str:
    module = entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "") or ""
    if module == "openended" or module.startswith("openended."):
        return BUILT_IN
    return f"registered by {module or 'unknown module'}"
