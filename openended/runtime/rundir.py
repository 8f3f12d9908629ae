"""Run directories: everything a run leaves behind, in one folder that ``--resume`` reads back.

Layout::

    runs/<name>__<family>__<teacher>__s<seed>__<YYYYmmdd-HHMMSS>/
        config.yaml        resolved experiment (after --set overrides)
        events.jsonl       append-only event log (tasks handed out, outcomes, snapshots, rewinds)
        metrics.jsonl      one line per iteration
        evaluations.jsonl  one line per held-out evaluation (RLlib learners with evaluation.every)
        views.jsonl        the teachers' dashboard views, every few iterations (openended dashboard)
        status.json        latest summary (what `openended status` prints): state, iteration, pid,
                           host, pid_start, since, wall_s; ``reason`` when the state is failed
        run.lock           held (flock) by the one process that runs the directory; says who
        ray_session.json   the embedded Ray's processes while a run uses them (cleaned up by the
                           next run of this directory if the run was killed)
        checkpoints/
            teacher/       the teacher service's own checkpoint files (its restarts read them)
            iter_000010/   one checkpoint set: teacher.json, pool-<student>-<j>.json,
                           algo-<student>/, ... and manifest.json, written last
            latest.json    pointer to the newest set (for readers; resume lists the sets itself)

What each file guarantees, and what a damaged one does, is in ``docs/reliability.md``:
every path a run reads from a file stays inside this folder, a torn last line of a
``.jsonl`` file is repaired, and any other damage is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from openended.config import Experiment
from openended.errors import ConfigError, RunDirError
from openended.runtime import checkpoints
from openended.runtime.checkpoints import CheckpointSet, SetDamaged, SetWriter
from openended.runtime.runfiles import (
    atomic_write_json,
    atomic_write_text,
    read_json_object,
    read_jsonl,
    repair_jsonl_tail,
)
from openended.runtime.views_log import VIEWS_FILE

__all__ = ["RunDir", "atomic_write_text", "atomic_write_json"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _component(value: Any) -> str:
    """One part of a run folder's name, with anything that is not a letter, digit, ``.``, ``_`` or ``-`` as ``_``."""
    return _UNSAFE.sub("_", str(value)).strip(".") or "_"


@dataclass
class RunDir:
    """One run's folder (layout in the module docstring); the paths of its files and their readers/writers."""

    path: pathlib.Path

    @classmethod
    def create(cls, exp: Experiment, base: str | os.PathLike | None = None) -> RunDir:
        """A new, uniquely named run folder under ``base`` (default ``exp.run.dir``), with the resolved config in it.

        A folder of the same name (two runs started in the same second) gets a ``-2``, ``-3``, ... suffix.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        parts = (exp.name, exp.env.family, exp.teacher.name, f"s{exp.seed}", stamp)
        name = "__".join(_component(p) for p in parts)
        root = pathlib.Path(base if base is not None else exp.run.dir).resolve()
        path = root / name
        n = 1
        while path.exists():
            n += 1
            path = root / f"{name}-{n}"
        if path.parent != root:  # cannot happen with _component; the guarantee is stated here
            raise RunDirError(f"run directory {path} would not be directly under {root}")
        (path / "checkpoints").mkdir(parents=True)
        rd = cls(path)
        atomic_write_text(rd.config_path, yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
        return rd

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run folder (``--resume``); `ConfigError` if it has no ``config.yaml``."""
        p = pathlib.Path(path)
        if not (p / "config.yaml").is_file():
            raise ConfigError(
                f"--resume {str(p)!r}: not a run directory (no config.yaml); pass the folder "
                "`openended run` printed, e.g. runs/<name>__..."
            )
        rd = cls(p.resolve())
        for f in (rd.config_path, rd.events_path, rd.metrics_path, rd.status_path, rd.checkpoints):
            if f.is_symlink() or (f.exists() and rd.path not in f.resolve().parents):
                raise RunDirError(f"{f}: a link out of the run directory; runs read and write only inside it")
        return rd

    @property
    def name(self) -> str:
        """The folder's name (``<name>__<family>__<teacher>__s<seed>__<stamp>``)."""
        return self.path.name

    @property
    def config_path(self) -> pathlib.Path:
        """``config.yaml``: the resolved experiment."""
        return self.path / "config.yaml"

    @property
    def events_path(self) -> pathlib.Path:
        """``events.jsonl``: the teacher service's event log."""
        return self.path / "events.jsonl"

    @property
    def metrics_path(self) -> pathlib.Path:
        """``metrics.jsonl``: one row per iteration."""
        return self.path / "metrics.jsonl"

    @property
    def evaluations_path(self) -> pathlib.Path:
        """``evaluations.jsonl``: one row per held-out evaluation."""
        return self.path / "evaluations.jsonl"

    @property
    def views_path(self) -> pathlib.Path:
        """``views.jsonl``: the teachers' dashboard views (`openended.runtime.views_log`)."""
        return self.path / VIEWS_FILE

    @property
    def status_path(self) -> pathlib.Path:
        """``status.json``: the latest summary."""
        return self.path / "status.json"

    @property
    def checkpoints(self) -> pathlib.Path:
        """The ``checkpoints/`` folder."""
        return self.path / "checkpoints"

    @property
    def teacher_checkpoints(self) -> pathlib.Path:
        """``checkpoints/teacher/``: the service's own checkpoint files."""
        return self.checkpoints / "teacher"

    def load_experiment(self) -> Experiment:
        """The experiment the run was started with (what ``--resume`` runs again)."""
        from openended.config import load_experiment

        return load_experiment(self.config_path)

    # ------------------------------------------------------------ checkpoints
    def checkpoint_set(self, iteration: int) -> SetWriter:
        """A writer for the set of ``iteration`` (see `openended.runtime.checkpoints`)."""
        return SetWriter(self.checkpoints, iteration)

    def newest_checkpoint(
        self, verify: bool = True, on_skip: Callable[[SetDamaged], None] | None = None
    ) -> CheckpointSet | None:
        """The newest complete checkpoint set (``None``: none yet); ``on_skip`` hears of newer unusable ones."""
        checkpoints.refuse_legacy(self.checkpoints)
        return checkpoints.newest_complete(self.checkpoints, verify, on_skip)

    # ---------------------------------------------------------------- metrics
    def append_metrics(self, row: dict) -> None:
        """Append one iteration's row to ``metrics.jsonl`` (non-JSON numbers as floats)."""
        _append_line(self.metrics_path, row)

    def append_evaluation(self, row: dict) -> None:
        """Append one evaluation's row to ``evaluations.jsonl``."""
        _append_line(self.evaluations_path, row)

    def read_metrics(self) -> list[dict]:
        """The rows of ``metrics.jsonl`` (a torn last line left out); `RunDirError` naming a damaged line."""
        return read_jsonl(self.metrics_path)[0]

    def iter_metrics(self) -> Iterator[dict]:
        """`read_metrics`, one row at a time."""
        yield from self.read_metrics()

    def truncate_metrics(self, last_iteration: int) -> dict | None:
        """Drop rows after ``last_iteration`` (a resumed run redoes them); return the last kept row.

        ``evaluations.jsonl`` and ``views.jsonl`` are cut back the same way. A torn last line is repaired; damage
        anywhere else raises `RunDirError` before anything is rewritten.
        """
        kept_rows: dict[pathlib.Path, list[dict]] = {}
        for path in (self.metrics_path, self.evaluations_path, self.views_path):
            rows, _ = read_jsonl(path)
            kept_rows[path] = [r for r in rows if _iteration(r, path) <= last_iteration]
        for path, kept in kept_rows.items():
            if path.exists():
                repair_jsonl_tail(path)
                atomic_write_text(path, "".join(json.dumps(r, default=float) + "\n" for r in kept))
        kept = kept_rows[self.metrics_path]
        return kept[-1] if kept else None

    # ----------------------------------------------------------------- status
    def write_status(self, status: dict) -> None:
        """Replace ``status.json`` atomically (`openended status` may read it at any time)."""
        atomic_write_json(self.status_path, status)

    def read_status(self) -> dict:
        """``status.json``'s contents (``{}`` before the first write); `RunDirError` if it is damaged."""
        if not self.status_path.exists():
            return {}
        return read_json_object(self.status_path, "the run's status")


def _append_line(path: pathlib.Path, row: dict) -> None:
    """One JSON line, handed to the OS in one write (a kill leaves at most a torn last line)."""
    data = (json.dumps(row, default=float) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _iteration(row: dict, path: pathlib.Path) -> int:
    value = row.get("iteration", 0)
    if not isinstance(value, int):
        raise RunDirError(f"{path}: a row's iteration is {value!r}, not an integer; the file was edited or damaged")
    return value
