"""Checkpoint sets: the whole run's state at one iteration, complete or not at all.

Why sets: the teacher service, the env pools' simulated students and the RLlib learners
were checkpointed one after the other with nothing tying them together, so a kill between
two of them resumed a teacher from iteration 30 with students from iteration 20. A set is
one folder, ``checkpoints/iter_<iteration:06d>/``, holding one file or folder per *member*
and ``manifest.json``, written last and atomically, that lists every member with its size
and SHA-256 plus the event-log offset the set covers and the run's totals at that
iteration. A folder without a manifest is a set whose writing was cut short; a manifest
whose members do not match is damaged. Resume takes the newest set that verifies and says
which it skipped (`newest_complete`).

This module is the one place a set is written (`SetWriter`): whoever adds state to the run
(a lifelong-learning component, say) adds a member here, and resume gets it back with
`CheckpointSet.member`.

Member names are ``/``-separated words (``teacher``, ``pool/<student>/<j>``,
``algo/<student>``); member paths are relative to the set folder and never leave it.

Manifest (format `MANIFEST_FORMAT`)::

    {"format": 1, "iteration": 30, "time": ..., "event_log_offset": bytes,
     "totals": {"env_steps_total": ..., "episodes_total": ..., "wall_s": ...},
     "members": {name: {"path": relative path, "bytes": n, "sha256": hex}}}

``checkpoints/latest.json`` (``{"iteration", "dir", "time", "teacher_checkpoint", "manifest"}``)
is still written after the manifest, for readers that want the newest set without listing
folders; resume never trusts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from openended.errors import RunDirError
from openended.runtime.runfiles import atomic_write_json, inside

__all__ = [
    "CheckpointSet",
    "SetWriter",
    "SetDamaged",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "LATEST",
    "set_dirs",
    "load_set",
    "newest_complete",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
LATEST = "latest.json"
_SET_DIR = re.compile(r"^iter_(\d{6,})$")
_MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class SetDamaged(RunDirError):
    """A checkpoint set that cannot be restored (no manifest, a bad manifest, a member that does not match).

    ``interrupted``: it has no manifest at all (its writing was cut short), as opposed to damaged.
    """

    def __init__(self, message: str, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


@dataclass(frozen=True)
class CheckpointSet:
    """One verified (or listed) set: its iteration, folder and manifest."""

    iteration: int
    path: pathlib.Path
    manifest: dict

    @property
    def name(self) -> str:
        """The folder's name, ``iter_<iteration:06d>``."""
        return self.path.name

    @property
    def event_log_offset(self) -> int:
        """Bytes of the event log the set's teacher state covers."""
        return int(self.manifest.get("event_log_offset") or 0)

    @property
    def totals(self) -> dict:
        """The run's lifetime totals at this iteration (``env_steps_total``, ``episodes_total``, ``wall_s``)."""
        totals = self.manifest.get("totals")
        return dict(totals) if isinstance(totals, dict) else {}

    def has(self, name: str) -> bool:
        """Whether the set has member ``name``."""
        return name in self.manifest["members"]

    def member(self, name: str) -> pathlib.Path:
        """The path of member ``name`` (`SetDamaged` if the set has none by that name)."""
        entry = self.manifest["members"].get(name)
        if entry is None:
            raise SetDamaged(
                f"{self.path / MANIFEST}: no member {name!r} (members: {sorted(self.manifest['members'])})"
            )
        return inside(self.path, entry["path"], f"{self.path / MANIFEST} member {name!r}")


def _digest(path: pathlib.Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, or of a folder (every file under it, with its relative path, in sorted order)."""
    h = hashlib.sha256()
    size = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f != path:
            h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
    return size, h.hexdigest()


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SetWriter:
    """Writes one set: members first, then `commit` (the manifest, atomically, then ``latest.json``).

    Opening a writer clears what an earlier, interrupted or damaged attempt left in the same
    folder (the manifest first, so a crash meanwhile never pairs an old manifest with new
    members). Use it as a context manager: an error before `commit` removes the folder, so a
    failed checkpoint (disk full) leaves no partial set behind.

    Example::

        with SetWriter(rd.checkpoints, 30) as ckpt:
            ckpt.link("teacher", teacher_file, "teacher.json")
            with open(ckpt.reserve("pool/default/0", "pool-default-0.json"), "w") as f: ...
            ckpt.commit(event_log_offset=offset, totals={...})
    """

    def __init__(self, root: pathlib.Path, iteration: int) -> None:
        self.root = root
        self.iteration = int(iteration)
        self.path = root / f"iter_{self.iteration:06d}"
        self._members: dict[str, str] = {}
        self._committed = False
        if self.path.exists():
            (self.path / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)

    def reserve(self, name: str, relative: str) -> pathlib.Path:
        """Register member ``name`` at ``relative`` (a file or folder the caller writes now); return its path."""
        if not _MEMBER_NAME.match(name):
            raise RunDirError(f"checkpoint member name {name!r}: use /-separated words of letters, digits, . _ -")
        if name in self._members:
            raise RunDirError(f"checkpoint member {name!r} added twice to {self.path}")
        path = inside(self.path, relative, f"checkpoint member {name!r}")
        self._members[name] = relative
        return path

    def link(self, name: str, source: str | os.PathLike, relative: str) -> pathlib.Path:
        """Add an existing file as member ``name``: hard-linked (a copy where links are not possible)."""
        path = self.reserve(name, relative)
        try:
            os.link(source, path)
        except OSError:
            shutil.copyfile(source, path)
        return path

    def commit(self, *, event_log_offset: int, totals: dict, extra: dict | None = None) -> CheckpointSet:
        """Hash every member, write the manifest atomically, then ``latest.json``; return the set."""
        members: dict[str, dict] = {}
        for name, relative in self._members.items():
            path = self.path / relative
            if not path.exists():
                raise RunDirError(f"checkpoint member {name!r}: {path} was not written")
            size, sha = _digest(path)
            members[name] = {"path": relative, "bytes": size, "sha256": sha}
        manifest = {
            "format": MANIFEST_FORMAT,
            "iteration": self.iteration,
            "time": time.time(),
            "event_log_offset": int(event_log_offset),
            "totals": dict(totals),
            "members": members,
            **(extra or {}),
        }
        _fsync_dir(self.path)
        atomic_write_json(self.path / MANIFEST, manifest)
        _fsync_dir(self.path)
        self._committed = True
        latest: dict[str, Any] = {
            "iteration": self.iteration,
            "dir": self.path.name,
            "time": manifest["time"],
            "manifest": f"{self.path.name}/{MANIFEST}",
        }
        if "teacher" in members:
            latest["teacher_checkpoint"] = str(self.path / members["teacher"]["path"])
        atomic_write_json(self.root / LATEST, latest)
        return CheckpointSet(self.iteration, self.path, manifest)

    def __enter__(self) -> SetWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None and not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)


def set_dirs(root: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(iteration, folder)`` of every ``iter_*`` folder under ``root``, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _SET_DIR.match(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def load_set(path: pathlib.Path, verify: bool = True) -> CheckpointSet:
    """The set in folder ``path``; `SetDamaged` saying why if it is incomplete or (``verify``) does not match."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise SetDamaged(f"{path.name}: no {MANIFEST} (its writing was interrupted)", interrupted=True)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SetDamaged(f"{path.name}/{MANIFEST}: unreadable ({e})") from None
    m = _SET_DIR.match(path.name)
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("members"), dict)
        or m is None
        or manifest.get("iteration") != int(m.group(1))
    ):
        raise SetDamaged(f"{path.name}/{MANIFEST}: not a format-{MANIFEST_FORMAT} manifest of this folder")
    ckpt = CheckpointSet(int(m.group(1)), path, manifest)
    if verify:
        for name, entry in manifest["members"].items():
            if not isinstance(entry, dict) or not {"path", "bytes", "sha256"} <= entry.keys():
                raise SetDamaged(f"{path.name}/{MANIFEST}: member {name!r} is malformed")
            try:
                member = ckpt.member(name)
            except SetDamaged:
                raise
            except RunDirError as e:  # a path that leads out of the set
                raise SetDamaged(f"{path.name}: {e}") from None
            if not member.exists():
                raise SetDamaged(f"{path.name}: member {name!r} ({entry['path']}) is missing")
            size, sha = _digest(member)
            if size != entry["bytes"] or sha != entry["sha256"]:
                raise SetDamaged(
                    f"{path.name}: member {name!r} ({entry['path']}) does not match the manifest "
                    f"({size} bytes, expected {entry['bytes']})"
                )
    return ckpt


def iter_sets(root: pathlib.Path, verify: bool = True) -> Iterator[CheckpointSet | SetDamaged]:
    """Every set folder under ``root``, newest first: the set, or why it cannot be used."""
    for _, path in set_dirs(root):
        try:
            yield load_set(path, verify)
        except SetDamaged as e:
            yield e


def newest_complete(
    root: pathlib.Path, verify: bool = True, on_skip: Callable[[SetDamaged], None] | None = None
) -> CheckpointSet | None:
    """The newest set under ``root`` that is complete (and, with ``verify``, matches its manifest).

    ``on_skip`` is told about each newer set passed over (interrupted or damaged).
    """
    for item in iter_sets(root, verify):
        if isinstance(item, CheckpointSet):
            return item
        if on_skip is not None:
            on_skip(item)
    return None


def refuse_legacy(root: pathlib.Path) -> None:
    """Raise `RunDirError` if ``root`` holds checkpoints from before sets (no manifest anywhere, an old pointer).

    Those checkpoints cannot be restored consistently (their teacher and students may be
    from different iterations), so they are refused rather than silently ignored.
    """
    latest = root / LATEST
    if not latest.is_file() or any((p / MANIFEST).is_file() for _, p in set_dirs(root)):
        return
    try:
        pointer = json.loads(latest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(pointer, dict) and "manifest" not in pointer and set_dirs(root):
        raise RunDirError(
            f"{root}: checkpoints without manifest.json were written by an openended before checkpoint sets; "
            "they cannot be resumed consistently: resume with that version, or start a new run"
        )
