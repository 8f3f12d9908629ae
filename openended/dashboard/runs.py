"""The runs root: which run directories the dashboard serves, and nothing outside them.

The root is one run directory or a folder of them (runs may sit one folder deeper, e.g.
``runs/<sweep>/<run>``). A run is named by its id: its path relative to the root, POSIX
style (a single-run root's id is its folder name). Ids are checked before anything touches
the file system -- no absolute paths, no ``.``/``..`` parts, no backslashes or NUL, at
most two parts -- and then looked up among the scanned runs, whose resolved paths (through
symlinks) all lie inside the resolved root. So a request can only ever name a run the
listing shows.

Contents:
    RunsRoot  -- scanning (cached for a second), id resolution, light summaries for the
                 runs table, and an LRU of `RunMonitor` for the runs being looked at.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
from collections import OrderedDict
from typing import Any

from openended.dashboard.monitor import STALE_AFTER_S, RunMonitor
from openended.dashboard.tail import file_key, read_json_file, read_yaml_file
from openended.errors import ConfigError, UnknownName
from openended.runtime.rundir import RunDir

__all__ = ["RunsRoot", "check_run_id"]

#: Runs whose aggregates stay in memory at once (least recently used are dropped).
MAX_MONITORS = 8
_SCAN_TTL_S = 1.0


def check_run_id(run_id: str) -> list[str]:
    """The parts of a syntactically valid run id; `UnknownName` otherwise (the server answers 404)."""
    bad = (
        not isinstance(run_id, str)
        or not run_id
        or len(run_id) > 512
        or run_id.startswith("/")
        or "\\" in run_id
        or "\x00" in run_id
    )
    parts = [] if bad else run_id.split("/")
    if bad or len(parts) > 2 or any(p in ("", ".", "..") for p in parts):
        raise UnknownName(f"run {run_id!r}: not a run id (a run's path under the runs root, as /api/runs lists it)")
    return parts


class RunsRoot:
    """A folder of run directories (or one run directory), served read-only."""

    def __init__(self, root: str | os.PathLike) -> None:
        path = pathlib.Path(root)
        if not path.is_dir():
            raise ConfigError(f"dashboard: {str(path)!r} is not a folder; pass a run directory or a folder of runs")
        self.root = path.resolve()
        self.single = RunDir(self.root).config_path.is_file()
        self._lock = threading.Lock()
        self._scan_at = -1.0
        self._runs: dict[str, pathlib.Path] = {}
        self._monitors: OrderedDict[str, RunMonitor] = OrderedDict()
        self._light: dict[str, tuple[tuple, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ listing
    def runs(self) -> dict[str, pathlib.Path]:
        """``{run id: resolved path}`` of every run under the root (rescanned at most once a second)."""
        with self._lock:
            now = time.monotonic()
            if now - self._scan_at > _SCAN_TTL_S:
                self._runs = self._scan()
                self._scan_at = now
            return dict(self._runs)

    def _scan(self) -> dict[str, pathlib.Path]:
        if self.single:
            return {self.root.name: self.root}
        found: dict[str, pathlib.Path] = {}
        for child in _subdirs(self.root):
            if _is_run(child):
                self._add(found, child.name, child)
                continue
            for grandchild in _subdirs(child):
                if _is_run(grandchild):
                    self._add(found, f"{child.name}/{grandchild.name}", grandchild)
        return found

    def _add(self, found: dict[str, pathlib.Path], run_id: str, path: pathlib.Path) -> None:
        real = path.resolve()
        if real.is_relative_to(self.root):  # a symlink pointing out of the root is not served
            found[run_id] = real

    def resolve(self, run_id: str) -> pathlib.Path:
        """The run directory of a listed run id; `UnknownName` for anything else."""
        check_run_id(run_id)
        path = self.runs().get(run_id)
        if path is None:
            raise UnknownName(f"run {run_id!r}: no such run under the runs root (see /api/runs)")
        return path

    def latest(self) -> str | None:
        """The id of the run whose files changed last."""
        best: tuple[float, str] | None = None
        for run_id, path in self.runs().items():
            t = _mtime(path)
            if best is None or t > best[0]:
                best = (t, run_id)
        return None if best is None else best[1]

    # ------------------------------------------------------------------ monitors
    def monitor(self, run_id: str) -> RunMonitor:
        """The run's `RunMonitor` (created on first use, kept in an LRU); not refreshed here."""
        path = self.resolve(run_id)
        with self._lock:
            mon = self._monitors.get(run_id)
            if mon is None or mon.path != path:
                mon = RunMonitor(path)
                self._monitors[run_id] = mon
                while len(self._monitors) > MAX_MONITORS:
                    self._monitors.popitem(last=False)
            self._monitors.move_to_end(run_id)
            return mon

    def summaries(self) -> list[dict[str, Any]]:
        """One row per run for the runs table, newest first, from small files only."""
        rows = []
        for run_id, path in self.runs().items():
            row = self._light_summary(run_id, path)
            rows.append({"id": run_id, **row})
        rows.sort(key=lambda r: r.get("last_update") or 0.0, reverse=True)
        return rows

    def fingerprint(self) -> tuple:
        """Changes when a run appears, disappears, or its status or metrics change."""
        out = []
        for run_id, path in self.runs().items():
            rd = RunDir(path)
            out.append((run_id, file_key(rd.status_path), file_key(rd.metrics_path)))
        return tuple(out)

    def _light_summary(self, run_id: str, path: pathlib.Path) -> dict[str, Any]:
        rd = RunDir(path)
        keys = (file_key(rd.config_path), file_key(rd.status_path), file_key(rd.metrics_path))
        cached = self._light.get(run_id)
        if cached is not None and cached[0] == keys:
            row = dict(cached[1])
        else:
            cfg, st = read_yaml_file(rd.config_path), read_json_file(rd.status_path)
            last = _last_json_line(rd.metrics_path)
            row = {
                "dir": path.name,
                "name": cfg.get("name"),
                "state": st.get("state", "unknown"),
                "teacher": (cfg.get("teacher") or {}).get("name"),
                "env": (cfg.get("env") or {}).get("family"),
                "algo": (cfg.get("algo") or {}).get("name"),
                "seed": cfg.get("seed"),
                "iteration": last.get("iteration", st.get("iteration")),
                "iterations": (cfg.get("run") or {}).get("iterations"),
                "env_steps": last.get("env_steps_total"),
                "episodes": last.get("episodes_total"),
                "wall_s": last.get("wall_s", st.get("wall_s")),
                "mean_return": last.get("mean_return"),
                "mastered": last.get("mastered"),
            }
            self._light[run_id] = (keys, row)
            row = dict(row)
        updated = _mtime(path)
        row["last_update"] = updated or None
        row["stale"] = row["state"] == "running" and bool(updated) and time.time() - updated > STALE_AFTER_S
        return row


def _subdirs(path: pathlib.Path) -> list[pathlib.Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _is_run(path: pathlib.Path) -> bool:
    return RunDir(path).config_path.is_file()


def _mtime(path: pathlib.Path) -> float:
    """Newest modification time among a run's files (0.0 if none)."""
    rd = RunDir(path)
    keys = [file_key(p) for p in (rd.config_path, rd.status_path, rd.metrics_path, rd.events_path)]
    return max((k[2] / 1e9 for k in keys if k is not None), default=0.0)


def _last_json_line(path: pathlib.Path, window: int = 1 << 16) -> dict[str, Any]:
    """The last complete JSON line of a file (reads at most its last ``window`` bytes)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - window))
            data = f.read()
    except OSError:
        return {}
    for line in reversed(data.split(b"\n")):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a torn last line: the one before it
            return row if isinstance(row, dict) else {}
    return {}
