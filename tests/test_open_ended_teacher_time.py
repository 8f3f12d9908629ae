"""benchmarks/open_ended.py's teacher-time measure: caller CPU time, wall and judge-thread CPU apart."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from support import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "open_ended.py"


def _bench() -> ModuleType:
    return load_script(BENCH, "open_ended_bench")


def test_teacher_time_reports_cpu_wall_and_background_apart() -> None:
    bench = _bench()
    r = bench.teacher_time_ratio(updates=50)
    for key in ("lp", "omni", "omni_inline"):
        run = r[key]
        assert 0 < run["s_per_1000_tasks"]
        # the caller's CPU inside the calls can't exceed their wall time (small clock slack)
        assert run["s_per_1000_tasks"] <= run["wall_s_per_1000_tasks"] * 1.05 + 1e-4
    # LP has no partition thread; OMNI inline judged pairs inside update
    assert r["lp"]["background_cpu_s_per_1000_tasks"] < 0.5 * r["lp"]["s_per_1000_tasks"]
    assert r["omni_inline"]["judged_pairs"] > 0
    assert r["omni_over_lp_teacher_time"] == r["omni"]["s_per_1000_tasks"] / r["lp"]["s_per_1000_tasks"]
    assert r["omni_over_lp_teacher_wall_time"] > 0
