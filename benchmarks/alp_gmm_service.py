"""ALP-GMM's outcomes/s through one service, alone: by socket and by Ray calls, 1 or 4 service threads, each refit mode.

How to run (from the repository root)::

    .venv/bin/python benchmarks/alp_gmm_service.py            # ~2 min
    .venv/bin/python benchmarks/alp_gmm_service.py --reps 5 --json alp.json

Why apart from `service_throughput.py`: there the ALP-GMM rows share the machine, interleaved,
with twenty others on three services, and read lower (the 4-thread socket row ~360-400k
where it reads ~530k here, 2026-12-07). Here only ALP-GMM curricula run, on two logged
services (``max_concurrency`` 1 and 4; the socket gets as many serving threads), every row
on a curriculum of its own: the teacher's default (``refit_swap: next_update``, reproducible),
``refit_coalesce`` and ``refit_lag: 2``. The 4-thread rows send through four connections
(socket) or four calls in flight (Ray), as four clients would, so queued reports can be
applied as one update (group commit). Outcomes name freshly sampled tasks, 1,024 a report,
as in `service_throughput.py` (``Target.report_throughput``). Median of ``--reps``
interleaved reps, best in brackets; the target is ``alpgmm_outcomes_per_s_b1024`` >= 500k.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ray
from results_file import write_results
from service_throughput import ALP_GMM_COALESCE, ALP_GMM_LAG2, NS, SPACES, columns_target, wire_target

from openended.hostinfo import cpu_facts
from openended.runtime.service import start_service
from openended.teachers import compiled

MODES = {"default": {}, "coalesce": ALP_GMM_COALESCE, "lag2": ALP_GMM_LAG2}
CALLS = 40  # 1,024-outcome reports per row and rep


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved reps (default 3)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    compiled.warm_up()
    tmp = Path(tempfile.mkdtemp(prefix="oe_alp_svc_", dir="/tmp"))
    t0 = time.time()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp / "ray"), namespace=NS, log_to_driver=False)
    try:
        targets = []
        for threads in (1, 4):
            svc = start_service(f"alp_{threads}", NS, max_concurrency=threads, event_log=str(tmp / f"{threads}.jsonl"))
            for mode, extra in MODES.items():
                for transport in ("socket", "ray calls"):
                    cur = f"{mode}_{transport.replace(' ', '_')}"
                    ray.get(svc.add_curriculum.remote(cur, "alp_gmm", SPACES["box"].to_dict(), {"seed": 0, **extra}))
                    name = f"{transport}, {threads} thread{'s' if threads > 1 else ''}, {mode}"
                    if transport == "socket":
                        tg = wire_target(name, svc, cur, (1024,), fresh_tasks=True, channels=threads)
                    else:
                        tg = columns_target(name, svc, cur, (1024,), fresh_tasks=True)
                    targets.append((transport, threads, mode, tg))
        rates: dict[str, list[float]] = {tg.name: [] for *_, tg in targets}
        for rep in range(args.reps):
            for *_, tg in random.Random(rep).sample(targets, len(targets)):
                rates[tg.name].append(tg.report_throughput(1024, CALLS))
            print(f"  rep {rep + 1}/{args.reps} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        {
            "transport": transport,
            "threads": threads,
            "refit": mode,
            "outcomes_per_s_b1024": statistics.median(rates[tg.name]),
            "outcomes_per_s_b1024_best": max(rates[tg.name]),
            "reps": rates[tg.name],
        }
        for transport, threads, mode, tg in targets
    ]
    result = {
        "rows": rows,
        "target_outcomes_per_s_b1024": 500_000,
        "config": {"reps": args.reps, "calls": CALLS, **cpu_facts(), "wall_s": time.time() - t0},
    }
    print(f"\n{'transport':<11}{'threads':>8}  {'refit':<10}{'outcomes/s':>12}{'(best)':>11}")
    for r in rows:
        print(
            f"{r['transport']:<11}{r['threads']:>8}  {r['refit']:<10}{r['outcomes_per_s_b1024']:>12,.0f}"
            f"{r['outcomes_per_s_b1024_best']:>11,.0f}"
        )
    print(f"target: >= {result['target_outcomes_per_s_b1024']:,} outcomes/s at batch 1,024")
    write_results(args.json, result)
    return result


if __name__ == "__main__":
    main()
