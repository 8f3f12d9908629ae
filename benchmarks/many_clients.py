"""One teacher service, 1,000 env hosts' clients: does it keep up, by socket and by Ray calls?

How to run (from the repository root)::

    .venv/bin/python benchmarks/many_clients.py --quick          # ~1.5 min
    .venv/bin/python benchmarks/many_clients.py --json out.json  # ~3 min

What it does: ``--clients`` `TeacherClient` objects with default settings (one per simulated
env actor; buffer 64, watermark 16, a flush every 32 outcomes, exchanges on) live in
``--hosts`` Ray actors on this machine, against one service actor as a run starts it (event
log on, metrics on, the random teacher on a 2-d Box). There are no envs: an "episode" is
``next_task()`` then ``report(outcome)``, and each client plays them on a fixed schedule of
``rate`` episodes per second, staggered over the clients. That is the service's load at
1,000 env actors for an episode rate per actor (docs/cluster.md's load model), minus the
stepping. Each load runs once by socket (``wire=True``, the client default) and once by Ray
calls (``wire=False``), alternately, on fresh clients.

Per load and transport it reports the episodes/s reached (every scheduled episode is
played, late ones back to back; ``keep_up`` = reached over scheduled, 1.0 = on time), the
latest an episode started (``max_lag_s``), the clients' stalls (a refill that had not come
back when the buffer ran dry: the service was late), the service's calls/s and the CPU its
process spent, per second and per 1,000 episodes (``service_cpu_ms_per_1k_episodes``: what
one service needs for the load, comparable between transports whatever rate was reached),
and by socket how many requests its serving thread found waiting with other clients' and
served as one wave (their reports as one update; ``socket_requests_in_waves``). On 2 cores
the hosts' own Python (the clients' bookkeeping, ~15-30 us per episode) shares the machine
with the service, so where ``keep_up`` is below 1 the hosts, not only the
service, ran out of CPU.

JSON keys: ``loads`` (one entry per rate and transport), ``clients``, ``hosts``, ``config``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
import ray
from results_file import write_results

from openended.hostinfo import cpu_facts
from openended.runtime.client import TeacherClient
from openended.runtime.service import start_service
from openended.tasks import Box, Outcome
from openended.teachers import compiled

NS = "many_clients"
SERVICE = "many_clients_service"
CURRICULUM = "walk"
#: Episodes per second per env actor: Stump Tracks (2,000-step episodes at ~2,000 steps/s
#: per actor of 8 cores) and Procgen easy (~500 steps), as in docs/cluster.md's load model.
RATES = {"stump_tracks": 8.0, "procgen": 32.0}


class HostActor:
    """Many simulated env hosts in one process: a `TeacherClient` each, episodes on a schedule."""

    def __init__(self, first: int, n: int, wire: bool) -> None:
        self.clients = [
            TeacherClient(SERVICE, CURRICULUM, f"env{first + i}", namespace=NS, wire=wire) for i in range(n)
        ]

    def fill(self) -> int:
        """Each client's first (blocking) fill, done before the clock starts."""
        for c in self.clients:
            c.next_task()  # this one task is never reported: a host that starts and idles
        return len(self.clients)

    def run(self, seconds: float, rate: float, start_at: float) -> dict[str, Any]:
        """Play episodes at ``rate`` per client per second from wall time ``start_at`` for ``seconds``."""
        clients = self.clients
        n = len(clients)
        gap = 1.0 / (rate * n)  # the hosts' clients take turns: one episode every gap seconds
        before = [dict(c.stats()) for c in clients]
        k = 0
        max_lag = 0.0
        end = start_at + seconds
        while True:
            due = start_at + k * gap
            if due >= end:
                break
            now = time.time()
            if now < due:
                time.sleep(due - now)
            else:
                max_lag = max(max_lag, now - due)
            client = clients[k % n]
            task = client.next_task()
            client.report(Outcome(task.id, 1.0, success=True, length=1))
            k += 1
        finished_at = time.time()
        for c in clients:
            c.flush(wait=True)
        after = [c.stats() for c in clients]
        transports: dict[str, int] = {}
        for s in after:
            transports[s["transport"]] = transports.get(s["transport"], 0) + 1
        return {
            "episodes": k,
            "max_lag_s": max_lag,
            "finished_at": finished_at,
            "stalls": sum(a["stalls"] - b["stalls"] for a, b in zip(after, before)),
            "stall_s": sum(a["stall_s"] - b["stall_s"] for a, b in zip(after, before)),
            "exchanges": sum(a["exchanges"] - b["exchanges"] for a, b in zip(after, before)),
            "transports": transports,
        }

    def close(self) -> None:
        for c in self.clients:
            c.close()


def service_process() -> psutil.Process:
    """The service actor's process (the only ``TeacherServiceActor`` of this benchmark's Ray)."""
    for p in psutil.process_iter(["cmdline"]):
        if any("TeacherServiceActor" in part for part in (p.info["cmdline"] or [])):
            return p
    raise RuntimeError("no TeacherServiceActor process found")


def cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def run_load(svc: Any, clients: int, hosts: int, rate: float, seconds: float, wire: bool) -> dict[str, Any]:
    """One load on fresh clients; returns what the hosts and the service saw."""
    per = clients // hosts
    actors = [
        ray.remote(HostActor).options(num_cpus=0).remote(i * per, per if i < hosts - 1 else clients - i * per, wire)
        for i in range(hosts)
    ]
    assert sum(ray.get([a.fill.remote() for a in actors])) == clients
    proc = service_process()
    snap0 = ray.get(svc.snapshot.remote())
    counters0, wire0 = snap0["curricula"][CURRICULUM]["counters"], snap0["wire"] or {}
    cpu0 = cpu_s(proc)
    start_at = time.time() + 0.5  # every host starts on the same clock
    results = ray.get([a.run.remote(seconds, rate, start_at) for a in actors])
    service_cpu = cpu_s(proc) - cpu0
    wall = max(r["finished_at"] for r in results) - start_at  # the scheduled episodes, however late
    snap = ray.get(svc.snapshot.remote())
    counters, wire_stats = snap["curricula"][CURRICULUM]["counters"], snap["wire"] or {}
    ray.get([a.close.remote() for a in actors])
    for a in actors:
        ray.kill(a)
    episodes = sum(r["episodes"] for r in results)
    transports: dict[str, int] = {}
    for r in results:
        for t, count in r["transports"].items():
            transports[t] = transports.get(t, 0) + count
    calls = (counters["report_calls"] - counters0["report_calls"]) + (
        counters["sample_calls"] - counters0["sample_calls"]
    )
    return {
        "transport": "socket" if wire else "ray calls",
        "rate_per_client": rate,
        "episodes_per_s_scheduled": rate * clients,
        "episodes": episodes,
        "episodes_per_s": episodes / wall,
        "keep_up": episodes / wall / (rate * clients),
        "max_lag_s": max(r["max_lag_s"] for r in results),
        "stalls": sum(r["stalls"] for r in results),
        "stall_s": sum(r["stall_s"] for r in results),
        "outcomes_accepted": counters["outcomes_accepted"] - counters0["outcomes_accepted"],
        "service_calls_per_s": calls / wall,
        "exchanges": sum(r["exchanges"] for r in results),
        "service_cpu_per_s": service_cpu / wall,
        "service_cpu_ms_per_1k_episodes": service_cpu / episodes * 1e6,
        "clients_by_transport": transports,
        # socket requests served together with other clients' (a wave: reports as one update)
        "socket_requests": wire_stats.get("requests", 0) - wire0.get("requests", 0),
        "socket_requests_in_waves": wire_stats.get("wave_requests", 0) - wire0.get("wave_requests", 0),
        "socket_waves": wire_stats.get("waves", 0) - wire0.get("waves", 0),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 s per load instead of 15")
    ap.add_argument("--clients", type=int, default=1000, help="simulated env actors (default 1,000)")
    ap.add_argument("--hosts", type=int, default=4, help="processes holding them (default 4)")
    ap.add_argument("--loads", nargs="+", choices=sorted(RATES), default=sorted(RATES), help="episode rates to run")
    ap.add_argument("--seconds", type=float, help="seconds per load (default: 5 with --quick, else 15)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    compiled.warm_up()
    tmp = Path(tempfile.mkdtemp(prefix="oe_many_", dir="/tmp"))
    t0 = time.time()
    loads = []
    # HostActor travels to Ray's workers by value: run as a script, it lives in __main__
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp / "ray"), namespace=NS, log_to_driver=False)
    try:
        svc = start_service(SERVICE, NS, event_log=str(tmp / "run" / "events.jsonl"))
        ray.get(svc.add_curriculum.remote(CURRICULUM, "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
        for name in args.loads:
            for wire in (True, False):
                row = run_load(svc, args.clients, args.hosts, RATES[name], seconds, wire)
                row["load"] = name
                loads.append(row)
                print(
                    f"  {name} {row['transport']}: keep_up {row['keep_up']:.3f}, stalls {row['stalls']}, "
                    f"service CPU {row['service_cpu_ms_per_1k_episodes']:.1f} ms per 1,000 episodes "
                    f"({time.time() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "clients": args.clients,
        "hosts": args.hosts,
        "loads": loads,
        "config": {
            "quick": args.quick,
            "seconds_per_load": seconds,
            "python": platform.python_version(),
            "ray": ray.__version__,
            **cpu_facts(),
            "loadavg_end": os.getloadavg(),
            "wall_s": time.time() - t0,
        },
    }
    print_table(result)
    write_results(args.json, result)
    return result


def print_table(res: dict) -> None:
    hdr = (
        f"{'load':<14}{'transport':<11}{'scheduled/s':>12}{'reached/s':>10}{'keep_up':>9}{'max lag s':>10}"
        f"{'stalls':>8}{'calls/s':>9}{'svc CPU s/s':>12}{'ms/1k ep':>9}"
    )
    print(f"\n{res['clients']:,} clients in {res['hosts']} host processes, one service (event log on)")
    print(hdr + "\n" + "-" * len(hdr))
    for r in res["loads"]:
        print(
            f"{r['load']:<14}{r['transport']:<11}{r['episodes_per_s_scheduled']:>12,.0f}{r['episodes_per_s']:>10,.0f}"
            f"{r['keep_up']:>9.3f}{r['max_lag_s']:>10.2f}{r['stalls']:>8}{r['service_calls_per_s']:>9,.0f}"
            f"{r['service_cpu_per_s']:>12.2f}{r['service_cpu_ms_per_1k_episodes']:>9.1f}"
        )
    for r in res["loads"]:
        if r["transport"] == "socket" and r["socket_requests"]:
            print(
                f"{r['load']} by socket: {r['socket_requests_in_waves'] / r['socket_requests']:.0%} of "
                f"{r['socket_requests']:,} requests served in waves with other clients' "
                f"({r['socket_requests_in_waves'] / max(r['socket_waves'], 1):.1f} a wave)"
            )
    by = {(r["load"], r["transport"]): r for r in res["loads"]}
    for load in sorted({r["load"] for r in res["loads"]}):
        a, b = by.get((load, "socket")), by.get((load, "ray calls"))
        if a and b:
            print(
                f"{load}: the service's CPU per episode, by Ray calls over by socket: "
                f"{b['service_cpu_ms_per_1k_episodes'] / a['service_cpu_ms_per_1k_episodes']:.2f}x"
            )


if __name__ == "__main__":
    main()
