"""How a run directory's files are written and read back: atomically, inside the folder, damage named.

Why one module: every file a run leaves behind obeys the same three rules, and each was
broken somewhere before they were collected here.

* Replace, never rewrite in place: `atomic_write_text` writes a temp file, fsyncs and
  renames, so a kill -9 leaves the old or the new file, and a failed write (disk full,
  read-only) leaves no temp file behind.
* Appended JSON lines (``metrics.jsonl``, ``evaluations.jsonl``): a last line without its
  newline is a write cut short and is repaired (cut off); a complete line that is not a
  JSON object anywhere else is damage, reported with the file and line number
  (`RunDirError`), never silently dropped with everything after it.
* Paths read from files (``latest.json``, a manifest) stay inside the folder they belong
  to (`inside`).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from openended.errors import RunDirError

__all__ = ["atomic_write_text", "atomic_write_json", "inside", "read_jsonl", "repair_jsonl_tail", "read_json_object"]


def atomic_write_text(path: pathlib.Path, text: str) -> None:
    """Write via a temp file + fsync + rename, so a kill -9 never leaves a half-written file.

    On an error (disk full, read-only) the temp file is removed and the error raised as is.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: pathlib.Path, obj: Any) -> None:
    """`atomic_write_text` of ``obj`` as indented, key-sorted JSON (``str()`` for anything else)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def inside(root: pathlib.Path, relative: Any, what: str) -> pathlib.Path:
    """``root / relative``, refusing (`RunDirError`) a path that is absolute or leads out of ``root``."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise RunDirError(f"{what}: {relative!r} is not a relative path inside {root}")
    path = root / relative
    resolved, base = path.resolve(), root.resolve()
    if resolved != base and base not in resolved.parents:
        raise RunDirError(f"{what}: {relative!r} leads outside {root}; the file was edited or damaged")
    return path


def read_jsonl(path: pathlib.Path) -> tuple[list[dict], int]:
    """The JSON-object lines of ``path`` and the bytes of a torn last line (0 if none).

    A missing file reads as empty. A last line without its newline (kill -9 mid-write) is
    not returned; any other line that is not a JSON object raises `RunDirError` naming the
    file and the line.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as e:
        raise RunDirError(f"{path}: cannot be read ({e})") from None
    complete_end = data.rfind(b"\n") + 1
    rows: list[dict] = []
    for number, raw in enumerate(data[:complete_end].split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as e:
            row = e
        if not isinstance(row, dict):
            raise RunDirError(
                f"{path} line {number}: not a JSON object ({str(row)[:80]}); the file was edited or damaged. "
                "Fix or delete that line (later lines are kept), then resume"
            )
        rows.append(row)
    return rows, len(data) - complete_end


def repair_jsonl_tail(path: pathlib.Path) -> int:
    """Cut a torn last line (no newline) off ``path``; return the bytes removed."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
        newline = tail.rfind(b"\n")
        if newline == len(tail) - 1:
            return 0
        if newline < 0 and size > len(tail):
            # a torn line longer than 1 MiB: find its start the slow way
            f.seek(0)
            keep = f.read().rfind(b"\n") + 1
        else:
            keep = size - len(tail) + newline + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def read_json_object(path: pathlib.Path, what: str) -> dict:
    """The JSON object in ``path``; `RunDirError` naming ``what`` if it is missing, empty or not an object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing ({what})") from None
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: damaged ({what}: {e})") from None
    if not isinstance(obj, dict):
        raise RunDirError(f"{path}: damaged ({what}: not a JSON object)")
    return obj
