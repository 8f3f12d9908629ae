"""Follow an append-only JSONL file: each poll returns the complete lines added since the last.

Why not re-read: a live event log grows to gigabytes; the dashboard keeps a byte offset per
file and parses only what is new. A last line without its newline (a writer mid-line, or a
kill -9) is left for the next poll. A file that shrank or was replaced (``metrics.jsonl`` is
rewritten atomically when a run resumes, a torn tail is truncated) is read again from the
start, and the caller is told to drop what it had aggregated.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import yaml

__all__ = ["JsonlTail", "file_key", "clean_json", "read_json_file", "read_yaml_file"]

_CHUNK = 8 << 20
_BLANK = b" \t\r"


def file_key(path: pathlib.Path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of a file, ``None`` if absent: changes whenever it does."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_yaml_file(path: pathlib.Path) -> dict[str, Any]:
    """A YAML mapping file as a dict (``{}`` if absent, unreadable or not a mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def read_json_file(path: pathlib.Path) -> dict[str, Any]:
    """A JSON object file as a dict (``{}`` if absent, unreadable or not an object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clean_json(v: Any) -> Any:
    """``v`` with NaN and infinities replaced by ``None`` (browsers' JSON has neither)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: clean_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [clean_json(x) for x in v]
    return v


class JsonlTail:
    """The new complete lines of one JSONL file, poll after poll.

    ``bad_lines`` counts complete lines that were not JSON objects (skipped, never fatal).
    ``skip`` holds byte ranges ``[from, to)`` whose lines are passed over (an event log's
    ``rewind`` ranges: events a resumed run superseded).
    """

    def __init__(self, path: str | os.PathLike, fast: Callable[[bytes], dict | None] | None = None) -> None:
        self.path = pathlib.Path(path)
        self.fast = fast  # a line parser tried before json.loads (None: it cannot read that line)
        self.offset = 0
        self.bad_lines = 0
        self.skip: list[tuple[int, int]] = []
        self._inode: int | None = None

    def restart(self) -> None:
        """Read the file again from its first line at the next poll (keeps ``skip``)."""
        self.offset, self.bad_lines = 0, 0

    def poll(self) -> tuple[bool, Iterator[dict]]:
        """``(reset, events)``: ``reset`` when the file was replaced or shrank (start over).

        ``events`` is lazy: it reads 8 MB at a time, so memory stays bounded whatever the
        log's size, and the offset advances as it is consumed.
        """
        try:
            st = self.path.stat()
        except OSError:
            return False, iter(())
        reset = False
        if (self._inode is not None and st.st_ino != self._inode) or st.st_size < self.offset:
            self.offset, self.bad_lines, reset = 0, 0, True
        self._inode = st.st_ino
        if st.st_size == self.offset:
            return reset, iter(())
        return reset, self._read()

    def _read(self) -> Iterator[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            tail = b""
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    return
                data = tail + chunk
                end = data.rfind(b"\n")
                if end < 0:
                    tail = data
                    continue
                tail = data[end + 1 :]
                lines = data[:end].split(b"\n")
                del data
                starts = self._line_starts(lines) if self.skip else None
                for i, line in enumerate(lines):
                    if starts is not None and self._skipped(starts[i]):
                        continue
                    event = self._parse(line)
                    if event is not None:
                        yield event
                self.offset += end + 1

    def _line_starts(self, lines: list[bytes]) -> list[int]:
        """The file offset at which each of ``lines`` (read from ``self.offset``) starts."""
        starts, pos = [], self.offset
        for line in lines:
            starts.append(pos)
            pos += len(line) + 1
        return starts

    def _skipped(self, start: int) -> bool:
        return any(lo <= start < hi for lo, hi in self.skip)

    def _parse(self, line: bytes) -> dict | None:
        """One line as an event dict; ``None`` for a blank or bad line (counted in ``bad_lines``)."""
        if not line or (line[0] in _BLANK and not line.strip()):  # SPEEDUP: no strip() copy per line
            return None
        if self.fast is not None:
            quick = self.fast(line)
            if quick is not None:
                return quick
        try:
            event = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return None
        if isinstance(event, dict):
            return event
        self.bad_lines += 1
        return None
