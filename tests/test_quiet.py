"""Warnings nobody using openended can act on are silenced at the source; others still show."""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys

import pytest

from openended.runtime.quiet import UNACTIONABLE, UnactionableFilter, quiet_ray_logs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("ray.rllib.algorithms.algorithm_config", logging.WARNING, __file__, 1, message, None, None)


def test_the_filter_drops_exactly_the_unactionable_messages():
    f = UnactionableFilter()
    assert not f.filter(
        _record("You are running PPO on the new API stack! This is the new default behavior for this algorithm. ...")
    )
    assert not f.filter(
        _record("DeprecationWarning: `RLModule(config=[RLModuleConfig object])` has been deprecated. ...")
    )
    assert not f.filter(_record("Install gputil for GPU system monitoring."))
    assert f.filter(_record("You are running SAC with num_env_runners=0"))  # anything else stays
    assert len(UNACTIONABLE) == 3


def test_the_emitting_loggers_get_the_filter_once():
    from openended.runtime.quiet import EMITTING_LOGGERS

    quiet_ray_logs()
    quiet_ray_logs()
    for name in EMITTING_LOGGERS:
        assert sum(isinstance(f, UnactionableFilter) for f in logging.getLogger(name).filters) == 1
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("ray.rllib.algorithms.algorithm_config")
    logger.addHandler(handler)
    try:
        logger.warning("You are running PPO on the new API stack! This is the new default behavior for this algorithm.")
        logger.warning("num_env_runners=0: sampling in the driver")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["num_env_runners=0: sampling in the driver"]


def _stderr_of(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stderr


def test_importing_procgen_prints_no_gym_notice():
    pytest.importorskip("procgen", reason="procgen2 not installed")
    err = _stderr_of("from openended.envs.procgen_levels import procgen_module; procgen_module()")
    assert "Gym has been unmaintained" not in err


@pytest.mark.slow
def test_building_ppo_prints_none_of_them():
    code = (
        "import ray; ray.init(num_cpus=1, include_dashboard=False)\n"
        "from openended.runtime.rllib import build_algo_config\n"
        "algo = build_algo_config('ppo', 'CartPole-v1').build_algo(); algo.stop(); ray.shutdown()\n"
    )
    err = _stderr_of(code)
    assert not [f for f in UNACTIONABLE if f in err], err[-2000:]
