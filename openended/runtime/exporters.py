"""Every metrics row of a run, also to TensorBoard (default), Weights & Biases and MLflow.

Why here: ``metrics.jsonl`` is the run's own record; these are views of the same rows in
the tools researchers already use. Curriculum metrics (returns, episodes, success,
mastered, the teacher's stats) and learner metrics (RLlib's losses, entropy, KL, learning
rate, timings) land side by side under one step, the iteration. Each row is flattened
into ``group/name`` scalars (`row_scalars`); W&B and MLflow are optional extras, imported
only when the experiment switches them on (``logging:`` section).

Contents:
    row_scalars     -- a metrics row as flat ``{"group/name": float}``.
    RunExporters    -- the exporters an experiment asks for; ``write(row)``, ``close()``.
    TensorBoardExporter, WandbExporter, MLflowExporter
"""

from __future__ import annotations

import importlib
import math
import pathlib
from collections.abc import Mapping
from typing import Any, Protocol

from openended.config import Experiment
from openended.errors import DependencyNotInstalled

__all__ = ["row_scalars", "RunExporters", "TensorBoardExporter", "WandbExporter", "MLflowExporter", "TENSORBOARD_DIR"]

#: Folder of the TensorBoard event files inside the run directory (``tensorboard --logdir RUN_DIR``).
TENSORBOARD_DIR = "tensorboard"

#: Row keys that are not metrics (the step itself, a wall-clock timestamp).
_NOT_METRICS = ("iteration", "time")
#: Nested row sections and the group their scalars go under.
_GROUPS = {"learner": "learner", "timers": "timers", "eval": "eval", "teacher": "teacher", "per_student": "student"}


def row_scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """``{"curriculum/mean_return": ..., "learner/default_policy/entropy": ..., ...}`` from one row.

    Top-level numbers go under ``curriculum/``; nested sections under their own group
    (``learner``, ``timers``, ``eval``, ``teacher/<student>``, ``student/<student>``).
    Non-numbers (lists, text, None, NaN) are left out.
    """
    out: dict[str, float] = {}
    for key, value in row.items():
        if key in _NOT_METRICS:
            continue
        if key == "per_student" and isinstance(value, list):  # named rows: student/<name>/...
            value = {str(r.get("student", i)): r for i, r in enumerate(value) if isinstance(r, Mapping)}
        if isinstance(value, Mapping):
            _flatten(_GROUPS.get(key, key), value, out)
        else:
            _put(out, f"curriculum/{key}", value)
    return out


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}/{k}", v, out)
    else:
        _put(out, prefix, value)


def _put(out: dict[str, float], tag: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) or _is_numpy_number(value):
        number = float(value)
        if math.isfinite(number):
            out[tag] = number
    elif isinstance(value, bool):
        out[tag] = float(value)


def _is_numpy_number(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0


class Exporter(Protocol):
    """Where scalars go: one call per iteration, then ``close``."""

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record ``scalars`` at ``step`` (the iteration)."""

    def close(self) -> None:
        """Flush and release files / connections."""


def _import(module: str, field: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyNotInstalled(
            f"{field}: needs the {module!r} package; install it with pip install 'openended[{extra}]' "
            f"or remove {field} from the experiment"
        ) from None


class TensorBoardExporter:
    """Event files under ``RUN_DIR/tensorboard`` (tensorboardX); ``tensorboard --logdir RUN_DIR``."""

    def __init__(self, run_dir: pathlib.Path) -> None:
        writer_cls = _import("tensorboardX", "logging.tensorboard", "runtime").SummaryWriter
        self.logdir = run_dir / TENSORBOARD_DIR
        self.writer = writer_cls(logdir=str(self.logdir))

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """One ``add_scalar`` per tag, flushed so a live TensorBoard sees the iteration."""
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        """Close the event file."""
        self.writer.close()


class WandbExporter:
    """A W&B run named after the run directory (``resume="allow"``: a resumed run continues it)."""

    def __init__(self, exp: Experiment, run_dir: pathlib.Path) -> None:
        wandb = _import("wandb", "logging.wandb", "wandb")
        cfg = exp.logging.wandb
        assert cfg is not None
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            name=run_dir.name,
            id=run_dir.name,
            resume="allow",
            mode=cfg.mode,
            dir=str(run_dir),
            config=exp.model_dump(mode="json"),
        )

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """``run.log(scalars, step=iteration)``."""
        self.run.log(dict(scalars), step=step)

    def close(self) -> None:
        """``run.finish()``."""
        self.run.finish()


class MLflowExporter:
    """An MLflow run (default tracking store: ``RUN_DIR/mlruns``) with the experiment's settings as params."""

    def __init__(self, exp: Experiment, run_dir: pathlib.Path) -> None:
        self.mlflow = _import("mlflow", "logging.mlflow", "mlflow")
        cfg = exp.logging.mlflow
        assert cfg is not None
        self.mlflow.set_tracking_uri(cfg.tracking_uri or (run_dir / "mlruns").resolve().as_uri())
        self.mlflow.set_experiment(cfg.experiment or exp.name)
        self.mlflow.start_run(run_name=run_dir.name)
        params = row_scalars({"config": _settings(exp)})
        self.mlflow.log_params({k.removeprefix("config/"): v for k, v in params.items()})

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """``mlflow.log_metrics(scalars, step=iteration)``."""
        self.mlflow.log_metrics(dict(scalars), step=step)

    def close(self) -> None:
        """``mlflow.end_run()``."""
        self.mlflow.end_run()


def _settings(exp: Experiment) -> dict[str, Any]:
    """The numeric settings worth comparing runs by (seed, algo and teacher config, iterations)."""
    return {"seed": exp.seed, "algo": exp.algo.config, "teacher": exp.teacher.config, "iterations": exp.run.iterations}


class RunExporters:
    """The exporters ``exp.logging`` switches on, fed every metrics row of the run."""

    def __init__(self, exporters: list[Exporter]) -> None:
        self.exporters = exporters

    @classmethod
    def for_run(cls, exp: Experiment, run_dir: pathlib.Path) -> RunExporters:
        """TensorBoard unless ``logging.tensorboard: false``; W&B / MLflow when their sections are set."""
        found: list[Exporter] = []
        if exp.logging.tensorboard:
            found.append(TensorBoardExporter(run_dir))
        if exp.logging.wandb is not None:
            found.append(WandbExporter(exp, run_dir))
        if exp.logging.mlflow is not None:
            found.append(MLflowExporter(exp, run_dir))
        return cls(found)

    def write(self, row: Mapping[str, Any]) -> None:
        """Flatten ``row`` once and hand it to every exporter at step ``row["iteration"]``."""
        if not self.exporters:
            return
        scalars = row_scalars(row)
        for e in self.exporters:
            e.write(int(row["iteration"]), scalars)

    def close(self) -> None:
        """Close every exporter (each one even if another fails)."""
        errors = []
        for e in self.exporters:
            try:
                e.close()
            except Exception as err:  # noqa: BLE001 - close the others; report the first
                errors.append(err)
        self.exporters = []
        if errors:
            raise errors[0]
