"""Lifelong metrics: hand-computed fixtures from the published formulas, and l2metrics on the same logs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelong_support import simulate

from openended.errors import LogFormatError
from openended.metrics.l2log import L2LogWriter, find_scenario_dirs, new_scenario_dir
from openended.metrics.lifelong import MetricSettings, compute_from_logs, compute_metrics, terminal_performance
from openended.metrics.regimes import Preprocessing, smooth, to_regimes
from openended.metrics.scenario import ScenarioConfig, ste_configs

RAW = MetricSettings(preprocessing=Preprocessing(smoothing="none", normalization="none"))


def _write(base, blocks, name="hand", scenario_type="custom"):
    """blocks: [(block_type, {task: values})] -> a scenario dir with one row per value."""
    scen = new_scenario_dir(base, name, ["reward"], {"scenario_type": scenario_type})
    w = L2LogWriter(scen)
    exp = 0
    for num, (btype, per_task) in enumerate(blocks):
        for task, values in per_task.items():
            for v in values:
                w.log_record(
                    {
                        "block_num": num,
                        "exp_num": exp,
                        "block_type": btype,
                        "task_name": task,
                        "task_params": {},
                        "reward": float(v),
                    }
                )
                exp += 1
    w.close()
    return scen


HAND = [
    ("test", {"a_x": [1, 1], "b_x": [2, 2]}),
    ("train", {"a_x": list(range(1, 11))}),  # TP = 10 (last 10 %)
    ("test", {"a_x": [8, 8], "b_x": [3, 3]}),
    ("train", {"b_x": list(range(1, 11))}),
    ("test", {"a_x": [6, 6], "b_x": [9, 9]}),
    ("train", {"a_x": [5, 7, 9, 10, 11, 12, 12, 12, 12, 12]}),  # reaches 10 at index 3; TP 12
    ("test", {"a_x": [11, 11], "b_x": [8, 8]}),
    ("train", {"a_x": [11, 12, 12, 12, 12, 12, 12, 12, 12, 12]}),  # reaches 12 at index 1
]


def test_hand_computed_fixture(tmp_path):
    m = compute_from_logs(
        _write(tmp_path, HAND),
        settings=MetricSettings(preprocessing=RAW.preprocessing, maintenance="both", transfer="both"),
    )
    life, tasks = m.lifetime, m.tasks
    # PM (mrlep): a: references are the evaluations right after each of its learning blocks
    # (blocks 2, 6); block 4 gives 6 - 8 = -2. b: reference block 6... block 4 (9), later 8 - 9 = -1.
    assert tasks["a_x"]["perf_maintenance_mrlep"] == pytest.approx(-2)
    assert tasks["b_x"]["perf_maintenance_mrlep"] == pytest.approx(-1)
    assert life["perf_maintenance_mrlep"] == pytest.approx(-1.5)
    # mrtlp: a: 6 - TP(block 1) = -4; b: 8 - TP(block 3) = -2.
    assert life["perf_maintenance_mrtlp"] == pytest.approx(-3)
    # FT: training a (block 1) before any b training, between b's evaluations 2 -> 3.
    assert tasks["a_x"]["forward_transfer_ratio"] == {"b_x": pytest.approx(1.5)}
    assert life["forward_transfer_ratio"] == pytest.approx(1.5)
    assert life["forward_transfer_contrast"] == pytest.approx((3 - 2) / (3 + 2))
    # BT: a (block 5) on b: 9 -> 8; b (block 3) on a: 8 -> 6. First value per pair.
    assert tasks["a_x"]["backward_transfer_ratio"] == {"b_x": pytest.approx(8 / 9)}
    assert tasks["b_x"]["backward_transfer_ratio"] == {"a_x": pytest.approx(6 / 8)}
    assert life["backward_transfer_ratio"] == pytest.approx((8 / 9 + 6 / 8) / 2)
    # PR: a's recovery times [3, 1] -> Theil-Sen slope -2 -> PR 2; b has none.
    assert tasks["a_x"]["recovery_times"] == [3.0, 1.0]
    assert life["perf_recovery"] == pytest.approx(2.0)
    # MTP / MEP: per-regime means, averaged per task, then over tasks.
    assert tasks["a_x"]["avg_train_perf"] == pytest.approx((5.5 + 10.2 + 11.9) / 3)
    assert life["avg_train_perf"] == pytest.approx(((5.5 + 10.2 + 11.9) / 3 + 5.5) / 2)
    assert life["avg_eval_perf"] == pytest.approx((6.5 + 5.5) / 2)
    assert math.isnan(life["ste_rel_perf"]) and math.isnan(life["sample_efficiency"])
    assert tasks["a_x"]["num_lx"] == 30 and tasks["a_x"]["num_ex"] == 8


def test_relative_performance_and_sample_efficiency_by_hand(tmp_path):
    ll = _write(tmp_path, [("train", {"a_x": [1, 2, 3, 4, 5, 6, 6, 6, 6, 6]})], "ll")
    ste = _write(tmp_path, [("train", {"a_x": [1, 3, 5, 5, 5, 5, 5, 5, 5, 5]})], "ste", "ste")
    # 10 values: the default smoothing window int(0.2 * 10) = 2 < 3 leaves them as they are.
    m = compute_from_logs(ll, [ste], RAW)
    assert m.lifetime["ste_rel_perf"] == pytest.approx(45 / 44)
    # saturation 6 first at index 5 (LL) vs 5 at index 2 (STE): (6 / 5) * (2 / 5)
    assert m.lifetime["sample_efficiency"] == pytest.approx(0.48)
    falling = _write(tmp_path, [("train", {"a_x": [1, 9, 8, 7, 6, 5, 4, 3, 2, 1]})], "falling")
    assert compute_from_logs(falling, [ste], RAW).lifetime["sample_efficiency"] == 0.0  # negative slope
    weak = _write(tmp_path, [("train", {"a_x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]})], "weak")
    assert compute_from_logs(weak, [ste], RAW).lifetime["sample_efficiency"] == 0.0  # below 0.2 x STE saturation
    two = [ste, _write(tmp_path, [("train", {"a_x": [2] * 10})], "ste2", "ste")]
    m2 = compute_from_logs(ll, two, RAW)
    assert m2.lifetime["ste_rel_perf"] == pytest.approx((45 / 44 + 45 / 20) / 2)  # averaged over expert runs


TWO_BETWEEN = [
    ("test", {"a_x": [1, 1], "b_x": [1, 1], "c_x": [2, 2]}),
    ("train", {"a_x": [1] * 10}),
    ("train", {"b_x": [1] * 10}),
    ("test", {"a_x": [1, 1], "b_x": [1, 1], "c_x": [3, 3]}),
]


def test_transfer_goes_to_every_task_trained_between_two_evaluations(tmp_path):
    """The documented difference from l2metrics: both learning blocks get the evaluation's transfer."""
    m = compute_from_logs(_write(tmp_path, TWO_BETWEEN), settings=RAW)
    assert m.tasks["a_x"]["forward_transfer_ratio"]["c_x"] == pytest.approx(1.5)
    assert m.tasks["b_x"]["forward_transfer_ratio"]["c_x"] == pytest.approx(1.5)


def test_terminal_performance_and_smoothing():
    assert [float(v) for v in smooth(np.arange(4.0))] == [0, 1, 2, 3]  # window < 3: unchanged
    x = np.array([0.0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3])  # window int(0.2*16) = 3
    y = smooth(x)
    assert len(y) == len(x) and y[1:-1] == pytest.approx([2, 1] * 7)
    assert smooth(x, window_len=4).shape == x.shape


def test_normalisation_maps_each_task_to_1_101(tmp_path):
    m = compute_from_logs(
        _write(tmp_path, HAND), settings=MetricSettings(preprocessing=Preprocessing(smoothing="none"))
    )
    assert m.info["normalization_data_range"] == {"a_x": [1.0, 12.0], "b_x": [1.0, 10.0]}
    tp = {(r["block_num"], r["task_name"]): r["term_perf"] for r in m.regimes}
    assert tp[(0, "a_x")] == pytest.approx(1.0) and tp[(1, "a_x")] == pytest.approx((10 - 1) / 11 * 100 + 1)


def test_sleep_evaluations_replace_wake_evaluations(tmp_path):
    scen = new_scenario_dir(tmp_path, "sleep", ["reward"], {})
    w = L2LogWriter(scen)
    rows = [
        (0, "train", "wake", [1, 2, 3]),
        (1, "test", "wake", [100]),
        (2, "test", "sleep", [4]),
        (3, "train", "wake", [1]),
        (4, "test", "wake", [100]),
        (5, "test", "sleep", [2]),
        (6, "test", "sleep", [1]),
    ]
    exp = 0
    for num, bt, sub, vals in rows:
        for v in vals:
            w.log_record(
                {
                    "block_num": num,
                    "exp_num": exp,
                    "block_type": bt,
                    "block_subtype": sub,
                    "task_name": "a_x",
                    "task_params": {},
                    "reward": float(v),
                }
            )
            exp += 1
    w.close()
    m = compute_from_logs(scen, settings=RAW)
    assert m.lifetime["avg_eval_perf"] == pytest.approx((4 + 2 + 1) / 3)  # the wake evaluations (100) are ignored
    assert m.lifetime["perf_maintenance_mrlep"] == pytest.approx(1 - 2)  # block 6 against the reference block 5


def test_errors_name_the_problem(tmp_path):
    scen = _write(tmp_path, HAND)
    with pytest.raises(LogFormatError, match="perf_measure: 'score'"):
        compute_from_logs(scen, settings=MetricSettings(preprocessing=Preprocessing(perf_measure="score")))
    with pytest.raises(LogFormatError, match="exactly one task"):
        compute_from_logs(scen, [scen], RAW)
    with pytest.raises(LogFormatError, match="no complete experience"):
        to_regimes([], "reward")


def test_regimes_average_experiences_logged_by_several_workers(tmp_path):
    from openended.metrics.l2log import read_log

    scen = new_scenario_dir(tmp_path, "workers", ["reward"], {})
    for worker, vals in (("w0", [1.0, 3.0]), ("w1", [3.0, 5.0])):
        w = L2LogWriter(scen, worker)
        for exp, v in enumerate(vals):
            w.log_record(
                {
                    "block_num": 0,
                    "exp_num": exp,
                    "block_type": "test",
                    "task_name": "a_x",
                    "task_params": {},
                    "reward": v,
                }
            )
        w.close()
    (reg,) = to_regimes(read_log(scen)[2], "reward")
    assert list(reg.per_experience()) == [2.0, 4.0]
    assert terminal_performance(reg) == 3.0


def test_json_has_no_nan(tmp_path):
    import json

    m = compute_from_logs(_write(tmp_path, HAND), settings=RAW)
    text = json.dumps(m.to_json(), allow_nan=False)
    assert '"ste_rel_perf": null' in text


def test_compute_metrics_directly_from_regimes(tmp_path):
    from openended.metrics.l2log import read_log

    regs = to_regimes(read_log(_write(tmp_path, HAND))[2], "reward")
    assert (
        compute_metrics(regs, settings=RAW).lifetime
        == compute_from_logs(find_scenario_dirs(tmp_path)[0], settings=RAW).lifetime
    )


# ---- the same logs through l2metrics 3.1.0 (skipped when it is not installed) ----


def _l2metrics(monkeypatch, tmp_path):
    pytest.importorskip("l2metrics", reason="l2metrics not installed (pip install -r requirements/lifelong.txt)")
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)  # l2metrics 3.1.0 predates NumPy 2's removal of np.NaN
    monkeypatch.setenv("L2DATA", str(tmp_path / "l2data"))
    import logging

    logging.getLogger("l2metrics").setLevel(logging.ERROR)
    from l2metrics import util as l2m_util
    from l2metrics.report import MetricsReport

    return MetricsReport, l2m_util


SETTINGS = [
    ({}, MetricSettings()),
    ({"variant_mode": "agnostic"}, MetricSettings(preprocessing=Preprocessing(variant_mode="agnostic"))),
    ({"ste_averaging_method": "time"}, MetricSettings(ste_averaging="time")),
    ({"normalization_method": "none", "smoothing_method": "none"}, RAW),
    (
        {
            "maintenance_method": "both",
            "transfer_method": "both",
            "clamp_outliers": True,
            "normalization_method": "run",
        },
        MetricSettings(
            maintenance="both", transfer="both", preprocessing=Preprocessing(clamp_outliers=True, normalization="run")
        ),
    ),
    (
        {"aggregation_method": "median", "window_length": 5},
        MetricSettings(aggregation="median", preprocessing=Preprocessing(window_length=5)),
    ),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pandas 3 deprecations inside l2metrics
@pytest.mark.parametrize("scenario_type", ["condensed", "dispersed", "alternating", "permuted"])
def test_same_values_as_l2metrics(monkeypatch, tmp_path, scenario_type):
    MetricsReport, l2m_util = _l2metrics(monkeypatch, tmp_path)
    cfg = ScenarioConfig(
        type=scenario_type,
        tasks=["reach_a", "reach_b", "push_a"],
        train_episodes=30,
        eval_episodes=4,
        repetitions=3,
        seed=1,
    )
    ll = simulate(tmp_path / "logs", "ll", cfg, seed=0)
    stes = []
    for k, ste_cfg in enumerate(ste_configs(cfg)):
        for s in range(2):
            stes.append(simulate(tmp_path / "ste", f"ste{k}{s}", ste_cfg, seed=10 + 2 * k + s, transfer=0.0))
            l2m_util.store_ste_data(stes[-1], mode="a")
    # Every setting on the dispersed scenario (it has every metric); the defaults on the others.
    for kwargs, settings in SETTINGS if scenario_type == "dispersed" else SETTINGS[:1]:
        report = MetricsReport(log_dir=ll, **kwargs)
        report.calculate()
        ours = compute_from_logs(ll, stes, settings)
        for name in settings.lifetime_names():
            ref = report.ll_metrics_dict.get(name)
            if ref is None:
                assert math.isnan(ours.lifetime[name]), (kwargs, name, ours.lifetime[name])
            else:
                assert ours.lifetime[name] == pytest.approx(ref, rel=1e-8, abs=1e-9), (kwargs, name)
        _same_per_task(report, ours, settings)
    final = compute_from_logs(ll, stes)
    computed = [k for k, v in final.lifetime.items() if not math.isnan(v)]
    assert {"perf_maintenance_mrlep", "ste_rel_perf", "sample_efficiency", "avg_eval_perf"} <= set(computed)
    if scenario_type != "condensed":
        assert "perf_recovery" in computed and "backward_transfer_ratio" in computed


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pandas 3 deprecations inside l2metrics
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # l2metrics averages c_x's empty training data
def test_l2metrics_keeps_one_transfer_per_evaluation(monkeypatch, tmp_path):
    """What the documented difference is: l2metrics credits only the last pair it visits."""
    MetricsReport, _ = _l2metrics(monkeypatch, tmp_path)
    report = MetricsReport(log_dir=_write(tmp_path, TWO_BETWEEN), normalization_method="none", smoothing_method="none")
    report.calculate()
    fwd = report.forward_transfer_ratio
    assert "c_x" not in fwd.get("a_x", {}) and [float(v) for v in fwd["b_x"]["c_x"]] == [1.5]


def _same_per_task(report, ours, settings):
    """Per-task values and the transfer matrices agree too (not only their averages)."""
    for task, row in report.task_metrics_df.iterrows():
        for name in settings.lifetime_names():
            ref = row[name]
            if "transfer" in name:
                got = ours.tasks[task][name]
                assert set(got) == set(ref), (task, name)
                for other, vals in ref.items():  # l2metrics keeps every value; the first counts
                    assert got[other] == pytest.approx(float(vals[0]), rel=1e-9), (task, name, other)
            elif isinstance(ref, float) and math.isnan(ref):
                assert math.isnan(ours.tasks[task][name]), (task, name)
            else:
                assert ours.tasks[task][name] == pytest.approx(float(ref), rel=1e-9), (task, name)


def test_metrics_tell_a_forgetting_learner_from_one_that_cannot_forget(tmp_path):
    """A real (tiny) REINFORCE learner: one shared policy forgets, one policy per task cannot."""
    from lifelong_support import run_bandit

    cfg = ScenarioConfig(
        type="dispersed", tasks=["arm_a", "arm_b", "arm_c"], train_episodes=150, eval_episodes=40, repetitions=3
    )
    results = {}
    for shared in (True, False):
        runs = []
        for s in range(3):
            ll = run_bandit(tmp_path, f"ll{shared}{s}", cfg, shared, seed=s)
            stes = [
                run_bandit(tmp_path / "ste", f"ste{shared}{s}{k}", c, shared, seed=100 + 3 * s + k)
                for k, c in enumerate(ste_configs(cfg))
            ]
            runs.append(compute_from_logs(ll, stes).lifetime)
        results[shared] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    forgets, keeps = results[True], results[False]
    # Evaluation blocks use fixed env seeds and learning is off in them, so a learner whose
    # other tasks' policies do not move scores exactly the same before and after: PM 0, BT = FT = 1.
    assert keeps["perf_maintenance_mrlep"] == 0.0
    assert keeps["backward_transfer_ratio"] == keeps["forward_transfer_ratio"] == 1.0
    assert forgets["perf_maintenance_mrlep"] < -20
    assert forgets["backward_transfer_ratio"] < 0.9
    assert forgets["ste_rel_perf"] < keeps["ste_rel_perf"]
    assert forgets["avg_eval_perf"] < keeps["avg_eval_perf"]
