"""Env steps/s with 1, 2 and 4 simulated nodes, each hosting one EnvPool; one service's capacity.

Nodes are raylets of `ray.cluster_utils.Cluster` on this one machine, each offering one CPU
and ``env_host: 1``; pools are placed by the experiment's own placement
(`openended.runtime.placement`: one pool per ``env_host`` node, none on the head) and driven
with two calls in flight each, every episode's task from the teacher service and its outcome
reported back, against a raw single-process loop of the same env measured in the same run.
On a 2-core machine the ceiling is two cores' worth of stepping: expect
2 nodes ~ 2x one node and 4 nodes no faster than 2 (reported as measured, not extrapolated).

``teacher_capacity_tasks_per_s``: tasks/s one service actor (random teacher, Box space, event
log on) serves at batch 1,024 from this driver through the methods a `TeacherClient` calls
(``sample_columns_wire``, ``report_wire``), with reports of the same size interleaved —
the figure docs/cluster.md's load model divides by. ``teacher_capacity_wire_tasks_per_s``:
the same calls over the service's socket (`openended.runtime.wire`, what a `TeacherClient` on
the service's node uses), measured alternately with the Ray calls in the same session.

Usage::

    python benchmarks/scaling.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from env_throughput import drive_pools, env_source, raw_loop

from openended.config import ResourcesSection
from openended.runtime.codec import decode_tasks, encode_outcomes
from openended.runtime.envpool_actor import make_pools
from openended.runtime.placement import pool_actor_options
from openended.runtime.service import start_service
from openended.runtime.wire import WireChannel, hot_method
from openended.tasks import Box, Outcome
from openended.teachers import compiled

NODES = (1, 2, 4)


def steps_per_s(n_nodes: int, source: Any, seconds: float, num_envs: int, tmp: str) -> float:
    """A fresh cluster with ``n_nodes`` env hosts, one pool each, driven for ``seconds``."""
    import ray
    from ray._common.utils import get_default_ray_temp_dir
    from ray.cluster_utils import Cluster

    # Cluster() writes its address into Ray's default temp dir (/tmp/ray), whatever temp_dir
    # says, and fails with FileNotFoundError where no Ray has created that directory yet.
    os.makedirs(get_default_ray_temp_dir(), exist_ok=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": tmp, "include_dashboard": False})
    try:
        for _ in range(n_nodes):
            cluster.add_node(num_cpus=1, resources={"env_host": 1})
        ray.init(address=cluster.address, namespace="scaling", log_to_driver=False)
        svc = start_service("scaling", "scaling", metrics=False)
        space = source_space(source)
        ray.get(svc.add_curriculum.remote("bench", "random", space.to_dict(), {"seed": 0}))
        opts = pool_actor_options(ResourcesSection(env_host="env_host", pool_cpus=1.0))
        pools = make_pools(
            n_nodes, "scaling", "bench", source, {}, num_envs=num_envs, namespace="scaling", actor_options=opts
        )
        drive_pools(pools, min(2.0, seconds))  # warm-up: first tasks, JIT, caches
        res = drive_pools(pools, seconds)
        ray.get([p.close.remote() for p in pools])
        return float(res["steps_per_s"])
    finally:
        ray.shutdown()
        cluster.shutdown()


def source_space(source: Any) -> Any:
    from env_throughput import build

    env = build(source)
    try:
        return env.unwrapped.task_space() if hasattr(env.unwrapped, "task_space") else env.task_space()
    finally:
        env.close()


def teacher_capacity(seconds: float, tmp: str) -> dict[str, float]:
    """Tasks/s of one service actor at batch 1,024 with same-size reports interleaved, by Ray calls and by socket."""
    import ray

    # Compile (or load) the teacher kernels here first: a service started on a checkout
    # without a numba cache compiles them in the background for ~13 s of CPU, which a
    # short measurement would count (and a service shut down before it finishes never caches).
    compiled.warm_up()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, log_to_driver=False, namespace="scaling")
    try:
        svc = start_service("capacity", "scaling", metrics=False, event_log=os.path.join(tmp, "events.jsonl"))
        ray.get(svc.add_curriculum.remote("cap", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
        tasks = decode_tasks(ray.get(svc.sample.remote("cap", "bench", 1024)))
        outs = encode_outcomes([Outcome(task_id=t.id, episode_return=0.5) for t in tasks])
        request = pickle.dumps(("cap", "bench", 1024, "capacity", False), protocol=5)
        info = ray.get(svc.wire_address.remote())
        chan = WireChannel(info["host"], info["port"], info["secret"])

        def pair_by_ray() -> bytes:
            refs = [svc.sample_columns_wire.remote(request), svc.report_wire.remote(pickle.dumps(("cap", outs)))]
            return ray.get(refs)[0]

        def pair_by_socket() -> bytes:
            refs = [
                hot_method(chan, "sample_columns_wire").remote(request),
                hot_method(chan, "report_wire").remote(pickle.dumps(("cap", outs))),
            ]
            return [r.result() for r in refs][0]

        def serve_for(duration: float, pair: Any) -> float:
            """Tasks/s over ``duration`` seconds of sample + report pairs."""
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < duration:
                # What a `TeacherClient` sends: the wire methods, pickled by the caller.
                n += len(pickle.loads(pair()))
            return n / (time.perf_counter() - t0)

        for pair in (pair_by_ray, pair_by_socket):  # warm-up: the service loads its kernels as it starts
            serve_for(min(1.0, seconds), pair)
        rates: dict[str, list[float]] = {"ray": [], "wire": []}
        for _ in range(2):  # alternating halves: load drift hits both alike
            rates["ray"].append(serve_for(seconds / 2, pair_by_ray))
            rates["wire"].append(serve_for(seconds / 2, pair_by_socket))
        chan.close()
        return {k: sum(v) / len(v) for k, v in rates.items()}
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="~2 minutes: shorter measurements")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--num-envs", type=int, default=4, help="envs per pool (default 4)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per measurement (quick 4, full 10)")
    args = ap.parse_args(argv)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    source, label = env_source()
    raw = raw_loop(source, seconds, seed=0)["steps_per_s"]  # the baseline: one env, one core, no Ray
    print(f"[scaling] raw single-process loop: {raw:,.0f} env steps/s", file=sys.stderr)
    rates: dict[int, float] = {}
    for n in NODES:
        tmp = tempfile.mkdtemp(prefix="oe-sc-")  # short: Ray's socket paths must stay < 108 bytes
        try:
            rates[n] = steps_per_s(n, source, seconds, args.num_envs, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"[scaling] {n} node(s): {rates[n]:,.0f} env steps/s", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="oe-sc-")
    try:
        capacities = teacher_capacity(seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "env": label,
        "num_envs_per_pool": args.num_envs,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "raw_steps_per_s": round(raw, 1),
        "steps_per_s_1node": round(rates[1], 1),
        "steps_per_s_2nodes": round(rates[2], 1),
        "steps_per_s_4nodes": round(rates[4], 1),
        "ratio_2nodes_over_1": round(rates[2] / rates[1], 3),
        "ratio_4nodes_over_1": round(rates[4] / rates[1], 3),
        "ratio_1node_over_raw": round(rates[1] / raw, 3),
        "teacher_capacity_tasks_per_s": round(capacities["ray"], 1),
        "teacher_capacity_wire_tasks_per_s": round(capacities["wire"], 1),
        "ratio_capacity_wire_over_ray_calls": round(capacities["wire"] / capacities["ray"], 3),
    }
    print(f"\nenv: {label}, {args.num_envs} envs per pool, {os.cpu_count()} cores, load {res['load_avg'][0]:.1f}")
    print(f"{'nodes':>6} {'env steps/s':>12} {'x 1 node':>9} {'x raw loop':>11}")
    print(f"{'raw':>6} {raw:>12,.0f} {'':>9} {1.0:>11.2f}")
    for n in NODES:
        print(f"{n:>6} {rates[n]:>12,.0f} {rates[n] / rates[1]:>9.2f} {rates[n] / raw:>11.2f}")
    print(
        f"teacher capacity (b1024, sample + report): {capacities['ray']:,.0f} tasks/s by Ray calls, "
        f"{capacities['wire']:,.0f} by socket ({capacities['wire'] / capacities['ray']:.2f}x)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
