"""One big ``update``: does a teacher's cost grow linearly with the batch? (ALP-GMM, issue 18)

How to run (from the repository root)::

    .venv/bin/python benchmarks/teacher_update_scaling.py --quick            # up to 20,000 outcomes
    .venv/bin/python benchmarks/teacher_update_scaling.py --json scaling.json  # up to 100,000

What it does: for each batch size n, builds a fresh ALP-GMM teacher (default fast mode,
inline refits so a fit's time is counted where it happens), samples n tasks and times ONE
``update`` with their n outcomes. The baseline is the same teacher with the ALP computer's
chunking turned off (``chunk`` = the batch: every query compared with all earlier rows of
the batch, the code before the fix), measured in the same run at the sizes it can finish
(``--baseline-max``). Both columns use CPU seconds of this process (``time.process_time``):
wall times on a shared machine measure the other users; the load average is printed.

Output: a table, and with ``--json PATH`` ``{"rows": [{"n", "update_cpu_s", "update_wall_s",
"baseline_cpu_s", "speedup"}], "per_outcome_us_first", "per_outcome_us_last",
"linear_ratio", "load_avg"}``. ``linear_ratio`` = (cost per outcome at the largest n) /
(cost per outcome at the smallest n >= 10,000): about 1 for linear scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from openended.tasks import Box, Outcome
from openended.teachers import make_teacher


def one_update(n: int, chunked: bool, seed: int = 0) -> tuple[float, float]:
    """(CPU s, wall s) of one ALP-GMM ``update`` with ``n`` outcomes on fresh tasks."""
    teacher = make_teacher("alp_gmm", Box([0.0, 0.0], [1.0, 1.0]), seed=seed, refit_executor="inline")
    if not chunked:
        teacher._alp.chunk = n  # type: ignore[attr-defined]  # the pre-fix path: one call for the batch
    rng = np.random.default_rng(seed)
    tasks = teacher.sample(n)
    outcomes = [Outcome(t.id, float(r)) for t, r in zip(tasks, rng.random(n))]
    c0, w0 = time.process_time(), time.perf_counter()
    teacher.update(outcomes)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    teacher.close()
    return cpu, wall


def main() -> None:
    """Measure, print the table, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batches up to 20,000 outcomes")
    p.add_argument("--baseline-max", type=int, default=10_000, help="largest batch the baseline runs")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args()
    sizes = [1_000, 10_000, 20_000] if args.quick else [1_000, 10_000, 20_000, 50_000, 100_000]
    one_update(1_000, True)  # warm-up: imports, compiled kernels
    rows = []
    print(f"{'n':>8} {'update CPU s':>13} {'wall s':>8} {'baseline CPU s':>15} {'speedup':>8}")
    for n in sizes:
        cpu, wall = one_update(n, True)
        base = one_update(n, False)[0] if n <= args.baseline_max else None
        speedup = base / cpu if base is not None and cpu > 0 else None
        rows.append({"n": n, "update_cpu_s": cpu, "update_wall_s": wall, "baseline_cpu_s": base, "speedup": speedup})
        b_s = f"{base:15.3f}" if base is not None else f"{'-':>15}"
        s_s = f"{speedup:8.1f}" if speedup is not None else f"{'-':>8}"
        print(f"{n:>8,} {cpu:13.3f} {wall:8.3f} {b_s} {s_s}", flush=True)
    big = [r for r in rows if r["n"] >= 10_000]
    per_first = big[0]["update_cpu_s"] / big[0]["n"] * 1e6
    per_last = big[-1]["update_cpu_s"] / big[-1]["n"] * 1e6
    out = {
        "rows": rows,
        "per_outcome_us_first": per_first,
        "per_outcome_us_last": per_last,
        "linear_ratio": per_last / per_first,
        "load_avg": os.getloadavg()[0],
    }
    print(
        f"cost per outcome: {per_first:.1f} us at {big[0]['n']:,}, {per_last:.1f} us at {big[-1]['n']:,} "
        f"(ratio {out['linear_ratio']:.2f}; 1 = linear); load average {out['load_avg']:.1f}"
    )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
