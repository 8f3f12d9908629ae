"""Run directories: everything a run leaves behind, in one folder that ``--resume`` reads back.

Layout::

    runs/<name>__<family>__<teacher>__s<seed>__<YYYYmmdd-HHMMSS>/
        config.yaml        resolved experiment (after --set overrides)
        events.jsonl       append-only event log (tasks handed out, outcomes, snapshots)
        metrics.jsonl      one line per iteration
        status.json        latest summary (what `openended status` prints)
        checkpoints/
            iter_000010/   teacher service state (+ env pool states, + RLlib algo)
            latest.json    pointer to the newest complete checkpoint (written last, atomically)
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from openended.config import Experiment
from openended.errors import ConfigError

__all__ = ["RunDir", "atomic_write_text", "atomic_write_json"]


def atomic_write_text(path: pathlib.Path, text: str) -> None:
    """Write via a temp file + rename so a kill -9 never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: pathlib.Path, obj: Any) -> None:
    """`atomic_write_text` of ``obj`` as indented, key-sorted JSON (``str()`` for anything else)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


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
        name = f"{exp.name}__{exp.env.family}__{exp.teacher.name}__s{exp.seed}__{stamp}"
        root = pathlib.Path(base if base is not None else exp.run.dir)
        path = root / name
        n = 1
        while path.exists():
            n += 1
            path = root / f"{name}-{n}"
        (path / "checkpoints").mkdir(parents=True)
        rd = cls(path.resolve())
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
        return cls(p.resolve())

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
    def status_path(self) -> pathlib.Path:
        """``status.json``: the latest summary."""
        return self.path / "status.json"

    @property
    def checkpoints(self) -> pathlib.Path:
        """The ``checkpoints/`` folder."""
        return self.path / "checkpoints"

    def load_experiment(self) -> Experiment:
        """The experiment the run was started with (what ``--resume`` runs again)."""
        from openended.config import load_experiment

        return load_experiment(self.config_path)

    def checkpoint_dir(self, iteration: int) -> pathlib.Path:
        """``checkpoints/iter_<iteration>``, created if missing (complete only once `commit_checkpoint` ran)."""
        d = self.checkpoints / f"iter_{iteration:06d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def commit_checkpoint(self, iteration: int, extra: dict | None = None) -> None:
        """Mark ``iter_<iteration>`` complete: the pointer is written only after its contents."""
        atomic_write_json(
            self.checkpoints / "latest.json",
            {"iteration": iteration, "dir": f"iter_{iteration:06d}", "time": time.time(), **(extra or {})},
        )

    def latest_checkpoint(self) -> tuple[int, pathlib.Path] | None:
        """``(iteration, folder)`` of the newest committed checkpoint, or ``None`` if there is none."""
        p = self.checkpoints / "latest.json"
        if not p.is_file():
            return None
        info = json.loads(p.read_text(encoding="utf-8"))
        return int(info["iteration"]), self.checkpoints / info["dir"]

    def append_metrics(self, row: dict) -> None:
        """Append one iteration's row to ``metrics.jsonl`` (non-JSON numbers as floats)."""
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=float) + "\n")

    def iter_metrics(self) -> Iterator[dict]:
        """The rows of ``metrics.jsonl`` in order, stopping at a torn last line (a run killed mid-write)."""
        if not self.metrics_path.is_file():
            return
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:  # torn last line after kill -9
                    return

    def truncate_metrics(self, last_iteration: int) -> dict | None:
        """Drop rows after ``last_iteration`` (a resumed run redoes them); return the last kept row."""
        kept = [r for r in self.iter_metrics() if int(r.get("iteration", 0)) <= last_iteration]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, default=float) + "\n" for r in kept))
        return kept[-1] if kept else None

    def write_status(self, status: dict) -> None:
        """Replace ``status.json`` atomically (`openended status` may read it at any time)."""
        atomic_write_json(self.status_path, status)

    def read_status(self) -> dict:
        """``status.json``'s contents (``{}`` before the first write)."""
        if not self.status_path.is_file():
            return {}
        return json.loads(self.status_path.read_text(encoding="utf-8"))
