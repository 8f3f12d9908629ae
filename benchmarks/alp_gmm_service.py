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

Each row also says what one report cost in CPU (`cpu_meter.CpuMeter`: every process of the
Ray session, inside the timed loops, split into the driver that stands in for the client,
the service actors and Ray's own processes), and the rate that much CPU allows when every
core of the machine does nothing else (``cpu_bound_outcomes_per_s``: an upper bound, since
stages also wait on each other). Two rows with the random teacher (one thread, each
transport) show what the path itself costs without ALP-GMM's update and fits, and a first
in-process measurement (`service_throughput.alpgmm_report_cpu`, before Ray starts) what
ALP-GMM's update and fit cost with no transport at all.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ray
from cpu_meter import ray_session_roles
from results_file import write_results
from service_throughput import (
    ALP_GMM_COALESCE,
    ALP_GMM_LAG2,
    CPU_METER,
    NS,
    SPACES,
    alpgmm_report_cpu,
    columns_target,
    wire_target,
)

from openended.hostinfo import cpu_facts
from openended.runtime.service import start_service
from openended.teachers import compiled

MODES = {"default": ("alp_gmm", {}), "coalesce": ("alp_gmm", ALP_GMM_COALESCE), "lag2": ("alp_gmm", ALP_GMM_LAG2)}
# The same calls into the random teacher (one thread): what the path costs without ALP-GMM's work.
BASELINES = {"random": ("random", {})}
CALLS = 40  # 1,024-outcome reports per row and rep
IN_PROCESS_CALLS = 64  # reports into an in-process core for the transport-free CPU figure


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved reps (default 3)")
    ap.add_argument("--calls", type=int, default=CALLS, help=f"1,024-outcome reports per row and rep (default {CALLS})")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    compiled.warm_up()
    tmp = Path(tempfile.mkdtemp(prefix="oe_alp_svc_", dir="/tmp"))
    t0 = time.time()
    # The teacher's own work per report, with no transport: the caller's thread and the fit thread.
    in_process = alpgmm_report_cpu(tmp, IN_PROCESS_CALLS)
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp / "ray"), namespace=NS, log_to_driver=False)
    try:
        targets = []
        for threads in (1, 4):
            svc = start_service(f"alp_{threads}", NS, max_concurrency=threads, event_log=str(tmp / f"{threads}.jsonl"))
            modes = {**MODES, **BASELINES} if threads == 1 else MODES
            for mode, (teacher, extra) in modes.items():
                for transport in ("socket", "ray calls"):
                    cur = f"{mode}_{transport.replace(' ', '_')}"
                    ray.get(svc.add_curriculum.remote(cur, teacher, SPACES["box"].to_dict(), {"seed": 0, **extra}))
                    name = f"{transport}, {threads} thread{'s' if threads > 1 else ''}, {mode}"
                    if transport == "socket":
                        tg = wire_target(name, svc, cur, (1024,), fresh_tasks=True, channels=threads)
                    else:
                        tg = columns_target(name, svc, cur, (1024,), fresh_tasks=True)
                    targets.append((transport, threads, mode, tg))
        CPU_METER.watch(ray_session_roles())
        rates: dict[str, list[float]] = {tg.name: [] for *_, tg in targets}
        cpu: dict[str, dict[str, float]] = {tg.name: dict.fromkeys(CPU_METER.seconds, 0.0) for *_, tg in targets}
        for rep in range(args.reps):
            for *_, tg in random.Random(rep).sample(targets, len(targets)):
                rates[tg.name].append(tg.report_throughput(1024, args.calls))
                for role, seconds in CPU_METER.reset().items():  # CPU counts only in timed loops: this row's
                    cpu[tg.name][role] += seconds
            print(f"  rep {rep + 1}/{args.reps} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    reports = args.reps * args.calls
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    rows = []
    for transport, threads, mode, tg in targets:
        ms = {role: seconds / reports * 1e3 for role, seconds in cpu[tg.name].items()}
        total = sum(ms.values())
        rows.append(
            {
                "transport": transport,
                "threads": threads,
                "refit": mode,
                "outcomes_per_s_b1024": statistics.median(rates[tg.name]),
                "outcomes_per_s_b1024_best": max(rates[tg.name]),
                "reps": rates[tg.name],
                "cpu_ms_per_report": total,
                "cpu_ms_per_report_by_role": ms,
                # every core busy with nothing else, no waiting between stages: an upper bound
                "cpu_bound_outcomes_per_s": cores * 1024 / (total / 1e3) if total > 0 else None,
            }
        )
    result = {
        "rows": rows,
        "target_outcomes_per_s_b1024": 500_000,
        "in_process_cpu_ms_per_report": in_process["report_columns_alpgmm"] / 1e3,
        "in_process_caller_cpu_ms_per_report": in_process["report_columns_alpgmm_caller"] / 1e3,
        "config": {"reps": args.reps, "calls": args.calls, "cores": cores, **cpu_facts(), "wall_s": time.time() - t0},
    }
    print_rows(result)
    write_results(args.json, result)
    return result


def print_rows(result: dict) -> None:
    """The table: outcomes/s, then the CPU one report cost (all watched processes, and by role)."""
    roles = list(result["rows"][0]["cpu_ms_per_report_by_role"]) if result["rows"] else []
    head = f"{'transport':<11}{'threads':>8}  {'refit':<10}{'outcomes/s':>12}{'(best)':>11}{'CPU ms':>8}"
    print("\n" + head + "".join(f"{r:>9}" for r in roles) + f"{'CPU bound':>12}")
    for r in result["rows"]:
        by_role = "".join(f"{r['cpu_ms_per_report_by_role'][role]:>9.2f}" for role in roles)
        bound = r["cpu_bound_outcomes_per_s"]
        print(
            f"{r['transport']:<11}{r['threads']:>8}  {r['refit']:<10}{r['outcomes_per_s_b1024']:>12,.0f}"
            f"{r['outcomes_per_s_b1024_best']:>11,.0f}{r['cpu_ms_per_report']:>8.2f}{by_role}"
            + (f"{bound:>12,.0f}" if bound else f"{'-':>12}")
        )
    cores = result["config"]["cores"]
    reports = result["config"]["reps"] * result["config"]["calls"]
    if reports < 200:
        print(f"(only {reports} reports a row: the kernel counts CPU in clock ticks, so the CPU columns are coarse)")
    print(
        f"CPU ms: CPU of every process of the session per 1,024-outcome report, inside the timed loops; "
        f"CPU bound: {cores} cores x 1,024 / CPU per report."
    )
    total, caller = result["in_process_cpu_ms_per_report"], result["in_process_caller_cpu_ms_per_report"]
    print(
        f"ALP-GMM's own work, in-process (default, no transport): {total:.2f} ms of CPU per report, "
        f"{caller:.2f} on the caller's thread, {total - caller:.2f} in the fit thread."
    )
    print(f"target: >= {result['target_outcomes_per_s_b1024']:,} outcomes/s at batch 1,024")


if __name__ == "__main__":
    main()
