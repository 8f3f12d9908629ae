"""Learner statistics in metrics rows, and the rows' exporters: TensorBoard (default), W&B, MLflow.

TensorBoard output is read back from the event files (TFRecord framing + tensorboardX's own
protobuf ``Event``). W&B and MLflow are optional extras: their exporters are checked against
stand-ins with the same call signatures, and against the real packages where installed."""

from __future__ import annotations

import pathlib
import sys
import types

import pytest
from support import tensorboard_scalars

from openended.config import load_experiment
from openended.errors import ConfigError
from openended.runtime.exporters import MLflowExporter, RunExporters, WandbExporter, row_scalars
from openended.runtime.rllib import learner_stats

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOY = ROOT / "experiments" / "toy_alpgmm.yaml"

#: The shape of RLlib 2.60's PPO ``algo.train()`` result (abridged from a real CartPole iteration).
RESULT = {
    "learners": {
        "default_policy": {
            "policy_loss": -0.217,
            "vf_loss": 3.5,
            "entropy": 0.6855,
            "mean_kl_loss": 0.004,
            "default_optimizer_learning_rate": 5e-05,
            "curr_entropy_coeff": 0.0,
            "num_trainable_parameters": 134915.0,
            "num_module_steps_trained": 300,
            "num_module_steps_trained_lifetime_throughput": {"throughput_since_last_reduce": 36.5},
            "vf_explained_var": float("nan"),
        },
        "__all_modules__": {"num_env_steps_trained_throughput": 77.9, "num_trainable_parameters": 134915.0},
    },
    "timers": {"training_iteration": 4.68, "env_runner_sampling_timer": 3.27, "learner_update_timer": 1.39, "other": 1},
    "env_runners": {"episode_return_mean": 16.2},
}


def test_learner_stats_keep_losses_entropy_kl_lr_and_timings():
    stats = learner_stats(RESULT)
    assert stats["learner"] == {
        "default_policy": {
            "policy_loss": -0.217,
            "vf_loss": 3.5,
            "entropy": 0.6855,
            "mean_kl_loss": 0.004,
            "default_optimizer_learning_rate": 5e-05,
            "curr_entropy_coeff": 0.0,
        }
    }
    assert stats["timers"] == {
        "training_iteration": 4.68,
        "env_runner_sampling_timer": 3.27,
        "learner_update_timer": 1.39,
        "env_steps_trained_per_s": 77.9,
    }
    assert learner_stats({}) == {}


def test_a_row_becomes_grouped_scalars():
    row = {
        "iteration": 3,
        "time": 1.7e9,
        "mean_return": 1.5,
        "mastered": None,
        "episodes": 10,
        "learner": {"default_policy": {"entropy": 0.5}},
        "timers": {"training_iteration": 2.0},
        "eval": {"mastered": 0.25, "tasks": 4},
        "teacher": {"default": {"fit_rate": 150, "mode": "fast", "refit": True}},
        "per_student": [{"student": "alice", "episodes": 4}, {"student": "bob", "episodes": 6}],
        "returns": [1, 2],
    }
    assert row_scalars(row) == {
        "curriculum/mean_return": 1.5,
        "curriculum/episodes": 10.0,
        "learner/default_policy/entropy": 0.5,
        "timers/training_iteration": 2.0,
        "eval/mastered": 0.25,
        "eval/tasks": 4.0,
        "teacher/default/fit_rate": 150.0,
        "teacher/default/refit": 1.0,
        "student/alice/episodes": 4.0,
        "student/bob/episodes": 6.0,
    }


def test_tensorboard_is_on_by_default_and_holds_every_row(tmp_path):
    exp = load_experiment(TOY)
    exporters = RunExporters.for_run(exp, tmp_path)
    for it in (1, 2):
        exporters.write({"iteration": it, "mean_return": it / 2, "learner": {"default_policy": {"entropy": 1.0 / it}}})
    exporters.close()
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars["curriculum/mean_return"] == [(1, 0.5), (2, 1.0)]
    assert scalars["learner/default_policy/entropy"] == [(1, 1.0), (2, 0.5)]
    off = RunExporters.for_run(load_experiment(TOY, ["logging.tensorboard=false"]), tmp_path / "off")
    assert off.exporters == [] and not (tmp_path / "off").exists()


class _Recorder:
    """Records calls by name; stands in for a module (wandb, mlflow) or one of its objects."""

    def __init__(self, calls: list, returns: dict | None = None) -> None:
        self._calls, self._returns = calls, returns or {}

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self._calls.append((name, args, kwargs))
            return self._returns.get(name)

        return call


def test_wandb_exporter_logs_each_row_at_its_iteration(tmp_path, monkeypatch):
    calls: list = []
    run = _Recorder(calls)
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=_Recorder(calls, {"init": run}).init))
    exp = load_experiment(
        TOY, ["logging.tensorboard=false", "logging.wandb.project=curricula", "logging.wandb.mode=offline"]
    )
    exporters = RunExporters.for_run(exp, tmp_path / "toy__run")
    assert [type(e) for e in exporters.exporters] == [WandbExporter]
    exporters.write({"iteration": 7, "mean_return": 2.0})
    exporters.close()
    (name, _, init), (log, args, kw), (finish, _, _) = calls
    assert name == "init" and init["project"] == "curricula" and init["mode"] == "offline"
    assert init["name"] == init["id"] == "toy__run" and init["resume"] == "allow"
    assert init["config"]["teacher"]["name"] == "alp_gmm"
    assert (log, args, kw) == ("log", ({"curriculum/mean_return": 2.0},), {"step": 7}) and finish == "finish"


def test_mlflow_exporter_logs_metrics_and_numeric_settings(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "mlflow", _Recorder(calls))
    exp = load_experiment(TOY, ["logging.tensorboard=false", "logging.mlflow={}", "teacher.config.fit_rate=60"])
    exporters = RunExporters.for_run(exp, tmp_path / "r")
    assert [type(e) for e in exporters.exporters] == [MLflowExporter]
    exporters.write({"iteration": 2, "mastered": 0.5})
    exporters.close()
    names = [c[0] for c in calls]
    assert names == ["set_tracking_uri", "set_experiment", "start_run", "log_params", "log_metrics", "end_run"]
    assert calls[0][1][0] == (tmp_path / "r" / "mlruns").resolve().as_uri()
    assert calls[1][1] == ("toy_alpgmm",)
    assert calls[3][1][0]["teacher/fit_rate"] == 60.0
    assert calls[4][1:] == (({"curriculum/mastered": 0.5},), {"step": 2})


@pytest.mark.parametrize(("field", "module"), [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_check_refuses_an_exporter_whose_package_is_missing(field, module, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    value = "{project: p}" if field == "wandb" else "{}"
    with pytest.raises(
        ConfigError, match=rf"^logging\.{field}: needs the '{module}' package; pip install 'openended\[{field}\]'"
    ):
        load_experiment(TOY, [f"logging.{field}={value}"])


def test_real_wandb_offline_run_if_installed(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="extra 'wandb' not installed")
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = load_experiment(TOY, ["logging.tensorboard=false", "logging.wandb.project=p", "logging.wandb.mode=offline"])
    exporters = RunExporters.for_run(exp, tmp_path)
    exporters.write({"iteration": 1, "mean_return": 1.0})
    exporters.close()
    assert list(tmp_path.glob("wandb/offline-run-*"))


def test_real_mlflow_file_store_if_installed(tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="extra 'mlflow' not installed")
    exporters = RunExporters.for_run(load_experiment(TOY, ["logging.tensorboard=false", "logging.mlflow={}"]), tmp_path)
    exporters.write({"iteration": 1, "mean_return": 1.0})
    exporters.close()
    runs = mlflow.search_runs(experiment_names=["toy_alpgmm"])
    assert runs["metrics.curriculum/mean_return"].tolist() == [1.0]


def test_the_mastered_gauge_reads_the_namespaced_stats_teachers_emit():
    from openended.runtime.metrics_export import mastered_fraction
    from openended.tasks import Discrete
    from openended.teachers import make_teacher

    stats = make_teacher("lp", Discrete(list(range(4))), seed=0).stats()
    assert "lp/mastered_fraction" in stats and mastered_fraction(stats) == stats["lp/mastered_fraction"]
    assert mastered_fraction({"mastered_fraction": 0.5, "lp/mastered_fraction": 0.1}) == 0.5
    assert mastered_fraction({"a/mastered_fraction": 0.1, "b/mastered_fraction": 0.2}) is None  # ambiguous
    assert mastered_fraction({}) is None
