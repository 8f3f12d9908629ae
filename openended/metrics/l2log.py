"""The l2logger log format (version 1.1), written and read by the project itself.

Why our own: the format is small and exactly specified, and writing it here keeps the
metrics package free of pandas and of a 2022 package's pins; `tests/test_l2log.py` checks
the files against l2logger's own validator and reader where l2logger is installed.

Layout (``scenario_dir = <base>/<scenario>-<time.time() with '.' -> '-'>``)::

    scenario_dir/logger_info.json       {"metrics_columns": [...], "log_format_version": "1.1"}
    scenario_dir/scenario_info.json     {"complexity", "difficulty", "scenario_type", ...}
    scenario_dir/<worker_id>/<block_num>-<block_type>/data-log.tsv

Each ``data-log.tsv`` is tab-separated with a header: the standard columns
`STANDARD_FIELDS` in that order, then every other column of the first record in
alphabetical order. One row per episode (``exp_num``), ``task_params`` JSON-encoded,
``timestamp`` written by the logger (``%Y%m%dT%H%M%S.%f``).

`EpisodeLogger` is the adapter the hosts call: one episode (task, block, return, success,
length) becomes one row, with ``exp_num`` counted for them.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from openended.errors import LogFormatError
from openended.metrics.scenario import Block, ScenarioConfig

__all__ = [
    "LOG_FORMAT_VERSION",
    "STANDARD_FIELDS",
    "DEFAULT_WORKER",
    "LogRow",
    "L2LogWriter",
    "EpisodeLogger",
    "new_scenario_dir",
    "scenario_info_for",
    "read_log",
    "find_scenario_dirs",
]

LOG_FORMAT_VERSION = "1.1"
STANDARD_FIELDS = (
    "block_num",
    "exp_num",
    "worker_id",
    "block_type",
    "block_subtype",
    "task_name",
    "task_params",
    "exp_status",
    "timestamp",
)
DEFAULT_WORKER = "worker-default"
_WORKER = re.compile(r"[0-9a-zA-Z_\-.]+")
_CHOICES = {
    "block_type": ("train", "test"),
    "block_subtype": ("wake", "sleep"),
    "exp_status": ("complete", "incomplete"),
}
_SCENARIO_CHOICES = {
    "complexity": ("1-low", "2-intermediate", "3-high"),
    "difficulty": ("1-easy", "2-medium", "3-hard"),
    "scenario_type": ("condensed", "dispersed", "permuted", "alternating", "ste", "custom"),
}


def scenario_info_for(cfg: ScenarioConfig, **extra: Any) -> dict[str, Any]:
    """``scenario_info.json`` for a scenario config (plus any JSON-able extras)."""
    return {"complexity": cfg.complexity, "difficulty": cfg.difficulty, "scenario_type": cfg.type, **extra}


def new_scenario_dir(
    base_dir: str | Path,
    scenario_name: str,
    metrics_columns: Iterable[str],
    scenario_info: Mapping[str, Any],
) -> Path:
    """Create ``<base>/<scenario>-<timestamp>`` with its two info files and return it.

    Every worker of the scenario then opens an `L2LogWriter` on the returned directory.
    """
    columns = list(metrics_columns)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise LogFormatError(f"metrics_columns: a non-empty list of column names is required, got {columns!r}")
    for key, allowed in _SCENARIO_CHOICES.items():
        if key in scenario_info and scenario_info[key] not in allowed:
            raise LogFormatError(f"scenario_info.{key}: {scenario_info[key]!r} is not one of {list(allowed)}")
    name = Path(scenario_name).name.split(".")[0]
    if not name:
        raise LogFormatError(f"scenario_name: {scenario_name!r} gives an empty directory name")
    path = Path(base_dir) / f"{name}-{str(time.time()).replace('.', '-')}"
    while path.exists():  # two scenarios created within the clock's resolution
        time.sleep(0.001)
        path = Path(base_dir) / f"{name}-{str(time.time()).replace('.', '-')}"
    path.mkdir(parents=True)
    logger_info = {"metrics_columns": columns, "log_format_version": LOG_FORMAT_VERSION}
    (path / "logger_info.json").write_text(json.dumps(logger_info, indent=2))
    (path / "scenario_info.json").write_text(json.dumps(dict(scenario_info), indent=2))
    return path


class L2LogWriter:
    """Appends records of one worker to a scenario directory, validating each as l2logger does.

    Not thread-safe (neither is l2logger): one writer per worker process. ``block_num``
    and ``exp_num`` must not decrease; the first record fixes the set of columns.
    """

    def __init__(self, scenario_dir: str | Path, worker_id: str = DEFAULT_WORKER) -> None:
        self.scenario_dir = Path(scenario_dir)
        info_path = self.scenario_dir / "logger_info.json"
        if not info_path.is_file():
            raise LogFormatError(f"{info_path}: missing; create the scenario with new_scenario_dir()")
        if not _WORKER.fullmatch(worker_id):
            raise LogFormatError(f"worker_id: {worker_id!r} may use letters, digits, '_', '-', '.' only")
        self.worker_id = worker_id
        self.metrics_columns: list[str] = list(json.loads(info_path.read_text())["metrics_columns"])
        self._fields: list[str] | None = None
        self._last_block: int | None = None
        self._last_exp: int | None = None
        self._dir: Path | None = None
        self._file: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    def log_record(self, record: Mapping[str, Any]) -> None:
        """Validate and append one row (``timestamp`` is added here; defaults as l2logger's)."""
        if "timestamp" in record:
            raise LogFormatError("timestamp: written by the logger, leave it out of the record")
        row = dict(record)
        row["timestamp"] = datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        row.setdefault("block_subtype", "wake")
        row.setdefault("exp_status", "complete")
        row.setdefault("worker_id", self.worker_id)
        self._validate(row)
        if self._fields is None:
            self._fields = [*STANDARD_FIELDS, *sorted(set(row) - set(STANDARD_FIELDS))]
        self._last_block, self._last_exp = row["block_num"], row["exp_num"]
        row["task_params"] = json.dumps(row["task_params"])
        self._open_for(row)
        assert self._writer is not None and self._file is not None
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        """Close the current block's file (the writer reopens one on the next record)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file, self._writer, self._dir = None, None, None

    def __enter__(self) -> L2LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _validate(self, row: dict[str, Any]) -> None:
        if self._fields is None:
            missing = [f for f in (*STANDARD_FIELDS, *self.metrics_columns) if f not in row]
            if missing:
                raise LogFormatError(f"record: missing fields {missing}")
        elif set(row) != set(self._fields):
            raise LogFormatError(
                f"record: fields differ from the first record's: extra {sorted(set(row) - set(self._fields))},"
                f" missing {sorted(set(self._fields) - set(row))}"
            )
        for key, allowed in _CHOICES.items():
            if row[key] not in allowed:
                raise LogFormatError(f"{key}: {row[key]!r} is not one of {list(allowed)}")
        if not isinstance(row["worker_id"], str) or not _WORKER.fullmatch(row["worker_id"]):
            raise LogFormatError(f"worker_id: {row['worker_id']!r} may use letters, digits, '_', '-', '.' only")
        if not isinstance(row["task_params"], dict):
            raise LogFormatError(f"task_params: a dict is required, got {type(row['task_params']).__name__}")
        try:
            json.dumps(row["task_params"])
        except (TypeError, ValueError) as e:
            raise LogFormatError(f"task_params: not JSON-serialisable ({e})") from None
        for key, last in (("block_num", self._last_block), ("exp_num", self._last_exp)):
            v = row[key]
            if type(v) is not int or v < 0:
                raise LogFormatError(f"{key}: a non-negative int is required, got {v!r}")
            if last is not None and v < last:
                raise LogFormatError(f"{key}: must not decrease ({v} after {last})")

    def _open_for(self, row: Mapping[str, Any]) -> None:
        block_dir = self.scenario_dir / str(row["worker_id"]) / f"{row['block_num']}-{row['block_type']}"
        if block_dir == self._dir:
            return
        self.close()
        block_dir.mkdir(parents=True, exist_ok=True)
        path = block_dir / "data-log.tsv"
        new = not path.exists()
        self._file = path.open("a" if not new else "w", newline="")
        self._writer = csv.DictWriter(
            self._file, fieldnames=self._fields or [], delimiter="\t", quotechar='"', lineterminator="\n"
        )
        if new:
            self._writer.writeheader()
        self._dir = block_dir


class EpisodeLogger:
    """Turns finished episodes into l2logger rows: the adapter the episode hosts call.

    Metrics columns: ``reward`` (the episode return) and ``success`` (1.0 / 0.0, empty
    when the env does not say); ``episode_step_count`` is an extra column (the length).
    ``exp_num`` counts episodes from ``start_exp_num`` (give the count so far on resume).
    """

    METRICS_COLUMNS = ("reward", "success")

    def __init__(self, writer: L2LogWriter, start_exp_num: int = 0) -> None:
        self.writer = writer
        self.exp_num = start_exp_num

    @classmethod
    def create(
        cls, base_dir: str | Path, scenario_name: str, cfg: ScenarioConfig, worker_id: str = DEFAULT_WORKER
    ) -> EpisodeLogger:
        """A new scenario directory for ``cfg`` under ``base_dir`` and its first worker's logger."""
        path = new_scenario_dir(base_dir, scenario_name, cls.METRICS_COLUMNS, scenario_info_for(cfg))
        return cls(L2LogWriter(path, worker_id))

    @classmethod
    def resume(
        cls, scenario_dir: str | Path, worker_id: str = DEFAULT_WORKER, next_exp_num: int | None = None
    ) -> EpisodeLogger:
        """Continue a worker's log after a restart.

        Without ``next_exp_num`` the count goes on after the worker's last row. With it (the
        episode count a checkpoint recorded), rows of this worker from ``next_exp_num`` on
        are cut back first, so episodes the resumed run replays are not logged twice.
        """
        d = Path(scenario_dir)
        last = -1
        for path in sorted((d / worker_id).glob("*/data-log.tsv")):
            last = max(last, _cut_back(path, next_exp_num))
        start = next_exp_num if next_exp_num is not None else last + 1
        return cls(L2LogWriter(d, worker_id), start_exp_num=start)

    def episode(
        self,
        block: Block,
        task_name: str,
        episode_return: float,
        success: bool | None = None,
        length: int | None = None,
        task_params: Mapping[str, Any] | None = None,
        complete: bool = True,
        exp_num: int | None = None,
    ) -> int:
        """Log one episode of ``block`` on ``task_name``; returns its ``exp_num``.

        ``exp_num`` defaults to the next count; give `EpisodeSlot.exp_num` when a host
        follows `episode_slots` (episodes it skipped then leave a gap, as l2logger allows).
        """
        if block.is_sleep_phase:
            raise LogFormatError(f"block {block.num}: a sleep phase runs no episodes; log them in a wake block")
        if task_name not in block.tasks:
            raise LogFormatError(f"task_name: {task_name!r} is not a task of block {block.num} {list(block.tasks)}")
        reward = float(episode_return)
        if math.isnan(reward):
            raise LogFormatError(f"episode_return: NaN for task {task_name!r} in block {block.num}")
        exp = self.exp_num if exp_num is None else exp_num
        self.writer.log_record(
            {
                "block_num": block.num,
                "exp_num": exp,
                "block_type": block.block_type,
                "block_subtype": block.subtype,
                "task_name": task_name,
                "task_params": dict(task_params or {}),
                "exp_status": "complete" if complete else "incomplete",
                "reward": reward,
                "success": "" if success is None else float(bool(success)),
                "episode_step_count": "" if length is None else int(length),
            }
        )
        self.exp_num = exp + 1
        return exp

    def close(self) -> None:
        """Close the underlying writer's file."""
        self.writer.close()


def _cut_back(path: Path, next_exp_num: int | None) -> int:
    """Drop rows with ``exp_num >= next_exp_num`` from one block file (the file goes if none is left).

    Returns the largest ``exp_num`` kept (-1 if none). The file is replaced atomically.
    """
    with path.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t", quotechar='"')
        header = next(reader, None)
        rows = list(reader)
    if header is None or "exp_num" not in header:
        raise LogFormatError(f"{path}: no header with exp_num; the file is damaged")
    col = header.index("exp_num")
    try:
        keep = [r for r in rows if next_exp_num is None or int(r[col]) < next_exp_num]
        last = max((int(r[col]) for r in keep), default=-1)
    except (ValueError, IndexError) as e:
        raise LogFormatError(f"{path}: a row has no valid exp_num ({e})") from None
    if len(keep) == len(rows):
        return last
    if not keep:
        path.unlink()
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
        return last
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quotechar='"', lineterminator="\n")
        w.writerow(header)
        w.writerows(keep)
    tmp.replace(path)
    return last


@dataclass(frozen=True)
class LogRow:
    """One row of a read log; ``values`` holds the metrics columns (NaN where empty)."""

    block_num: int
    exp_num: int
    worker_id: str
    block_type: str
    block_subtype: str
    task_name: str
    task_params: str
    exp_status: str
    timestamp: str
    values: Mapping[str, float]


def find_scenario_dirs(path: str | Path) -> list[Path]:
    """Scenario directories (those holding ``logger_info.json``) at or under ``path``, sorted."""
    p = Path(path)
    if (p / "logger_info.json").is_file():
        return [p]
    return sorted(f.parent for f in p.rglob("logger_info.json"))


def _float(text: str | None) -> float:
    """A metrics cell: empty (or absent) is NaN; anything else must be a number (ValueError)."""
    return math.nan if text is None or text == "" else float(text)


def read_log(scenario_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any], list[LogRow]]:
    """Read a scenario directory: (logger_info, scenario_info, rows sorted by exp_num then block_num).

    As l2metrics reads it: task names lower-cased; a missing ``block_subtype`` is ``wake``.
    """
    d = Path(scenario_dir)
    try:
        logger_info = json.loads((d / "logger_info.json").read_text())
        scenario_info = json.loads((d / "scenario_info.json").read_text())
    except FileNotFoundError as e:
        raise LogFormatError(f"{e.filename}: missing; is {d} an l2logger scenario directory?") from None
    except json.JSONDecodeError as e:
        raise LogFormatError(f"{d}: an info file is not valid JSON ({e})") from None
    columns = logger_info.get("metrics_columns")
    if not isinstance(columns, list) or not columns:
        raise LogFormatError(f"{d / 'logger_info.json'}: metrics_columns must be a non-empty list")
    rows: list[LogRow] = []
    for path in sorted(d.rglob("data-log.tsv")):
        with path.open(newline="") as f:
            for line, rec in enumerate(csv.DictReader(f, delimiter="\t", quotechar='"'), start=2):
                try:
                    rows.append(
                        LogRow(
                            block_num=int(rec["block_num"]),
                            exp_num=int(rec["exp_num"]),
                            worker_id=rec["worker_id"],
                            block_type=rec["block_type"],
                            block_subtype=rec.get("block_subtype") or "wake",
                            task_name=rec["task_name"].lower(),
                            task_params=rec["task_params"] or "",
                            exp_status=rec["exp_status"],
                            timestamp=rec["timestamp"],
                            values={c: _float(rec.get(c)) for c in columns},
                        )
                    )
                except (KeyError, TypeError, ValueError) as e:
                    raise LogFormatError(f"{path}:{line}: bad or missing field ({e}); fix or remove the row") from None
    if not rows:
        raise LogFormatError(f"{d}: no data-log.tsv rows")
    rows.sort(key=lambda r: (r.exp_num, r.block_num))
    for a, b in zip(rows, rows[1:]):
        if b.block_num < a.block_num:
            raise LogFormatError(f"{d}: block_num decreases ({a.block_num} -> {b.block_num}) at exp_num {b.exp_num}")
    for r in rows:
        for key, allowed in _CHOICES.items():
            if getattr(r, key) not in allowed:
                raise LogFormatError(f"{d}: exp_num {r.exp_num}: {key}={getattr(r, key)!r} not in {list(allowed)}")
    return logger_info, scenario_info, rows
