"""Placement of a run's actors (`openended.runtime.placement`, the experiment's ``resources:``):
the options each actor gets, the same cluster YAML running on an embedded Ray, and — on a
simulated multi-node cluster (`ray.cluster_utils.Cluster`: several raylets on this machine) —
pools landing on the nodes that offer ``env_host`` and coming back on another such node when
theirs is removed, while the teacher service stays on the head and keeps every outcome."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from openended.config import Experiment, load_experiment
from openended.errors import ConfigError
from openended.runtime.placement import embedded_ray_resources, pool_actor_options, pool_share

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOY = ROOT / "experiments" / "toy_alpgmm.yaml"


def _exp(*sets: str) -> Experiment:
    return load_experiment(TOY, list(sets))


def test_pools_ask_for_a_share_of_env_host_that_always_fits_one_unit():
    for n in (1, 2, 3, 7, 99, 100):
        exp = _exp("resources.env_host=env_host", f"resources.pools_per_host={n}")
        share = pool_share(exp.resources)
        assert n * share <= 1.0 and (n + 1) * share > 1.0  # exactly n pools per unit, not n + 1
    opts = pool_actor_options(_exp("resources.env_host=gpu_box", "resources.spread=false").resources)
    assert opts == {"num_cpus": 0.5, "scheduling_strategy": "DEFAULT", "resources": {"gpu_box": 1.0}}
    assert "resources" not in pool_actor_options(_exp().resources)  # a laptop run asks for nothing special


def test_an_embedded_ray_offers_what_the_pools_ask_for():
    exp = _exp("resources.env_host=env_host", "resources.pools_per_host=2", "pool.pools_per_student=3")
    assert embedded_ray_resources(exp) == {"env_host": 2.0}  # ceil(3 / 2) hosts
    assert embedded_ray_resources(_exp()) == {}


def test_the_service_socket_setting_picks_where_the_socket_listens():
    assert _exp().resources.service_wire_host == "127.0.0.1"  # default: the service node only
    assert _exp("resources.service_socket=cluster").resources.service_wire_host == "0.0.0.0"
    off = _exp("resources.service_socket=off").resources  # YAML reads a bare `off` as false
    assert off.service_socket == "off" and off.service_wire_host is None


@pytest.mark.parametrize(
    "setting,field",
    [
        ("resources.env_host=CPU", "resources.env_host"),
        ("resources.pools_per_host=0", "resources.pools_per_host"),
        ("resources.service_socket=everywhere", "resources.service_socket"),
    ],
)
def test_bad_resources_name_the_field(setting, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _exp(setting)


@pytest.mark.ray
def test_a_cluster_yaml_runs_unchanged_on_a_laptop(tmp_path):
    """experiments/toy_cluster.yaml (4 pools, ``env_host``), no cluster: the embedded Ray offers it."""
    sets = ["run.iterations=2", "run.checkpoint_every=2"]
    argv = [
        "run",
        str(ROOT / "experiments" / "toy_cluster.yaml"),
        "--run-dir",
        str(tmp_path),
        "--no-progress",
        *[x for s in sets for x in ("--set", s)],
    ]
    out = subprocess.run(
        [sys.executable, "-m", "openended.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        # a shared, loaded machine can take over a minute to register Ray's node (the default limit is 60 s)
        env=dict(os.environ, RAY_raylet_start_wait_time_s="300"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (rd,) = tmp_path.iterdir()
    rows = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert rows[-1]["episodes_total"] == 2 * 4 * 4 * 100  # 4 pools of 4 toy envs, 100 one-step episodes a call


# ---------------------------------------------------------------------- several raylets
@pytest.fixture
def cluster():
    ray = pytest.importorskip("ray")
    from ray._common.utils import get_default_ray_temp_dir
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    tmp = tempfile.mkdtemp(prefix="oe-cl-")  # short: Ray's socket paths must stay < 108 bytes
    # Cluster() writes its address into Ray's default temp dir (/tmp/ray), whatever temp_dir
    # says, and fails with FileNotFoundError where no Ray has created that directory yet.
    os.makedirs(get_default_ray_temp_dir(), exist_ok=True)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": tmp, "include_dashboard": False})
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()  # stops exactly the raylets this cluster started
        shutil.rmtree(tmp, ignore_errors=True)


def _node_of(actor) -> str:  # type: ignore[no-untyped-def]
    """The node an actor is alive on, from the GCS actor table (the state API needs a dashboard)."""
    from ray._private.state import actors

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = actors(actor_id=actor._actor_id.hex())
        if info and info.get("State") == "ALIVE" and info["Address"].get("NodeID"):
            return info["Address"]["NodeID"]
        time.sleep(0.5)
    raise AssertionError("actor never became alive")


@pytest.mark.slow
@pytest.mark.ray
def test_pools_land_on_env_hosts_and_move_when_their_node_is_lost(cluster):
    import ray

    from openended.runtime.envpool_actor import make_pools
    from openended.runtime.placement import service_actor_options
    from openended.runtime.service import start_service
    from openended.tasks import Box

    hosts = [cluster.add_node(num_cpus=1, resources={"env_host": 1}) for _ in range(2)]
    ray.init(address=cluster.address, namespace="placement", log_to_driver=False)
    # On a real cluster the driver runs on the head; here every raylet shares one IP and the
    # driver attaches to any of them, so the head is named explicitly.
    head = cluster.head_node.node_id
    driver = ray.get_runtime_context().get_node_id()
    res = _exp("resources.env_host=env_host", "resources.pools_per_host=1").resources
    assert service_actor_options(res)["scheduling_strategy"].node_id == driver

    svc = start_service(
        "svc", "placement", metrics=False, max_restarts=2, actor_options=service_actor_options(res, node_id=head)
    )
    ray.get(svc.add_curriculum.remote("toy", "random", Box([0, 0], [1, 1]).to_dict(), {"seed": 0}))
    opts = pool_actor_options(res)
    pools = make_pools(
        2, "svc", "toy", "toy", {}, num_envs=2, seed=0, namespace="placement", max_restarts=2, actor_options=opts
    )
    assert _node_of(svc) == head
    placed = {_node_of(p) for p in pools}
    assert placed == {h.node_id for h in hosts}  # one pool per env host, none on the head

    before = sum(r["episodes"] for r in ray.get([p.step.remote() for p in pools]))
    ray.get([p.flush.remote(True) for p in pools])  # what a run does at the end of every iteration
    lost = next(h for h in hosts if h.node_id != driver)  # not the raylet the driver itself is attached to
    victim = next(p for p in pools if _node_of(p) == lost.node_id)
    spare = cluster.add_node(num_cpus=1, resources={"env_host": 1})
    cluster.remove_node(lost)  # the node dies: Ray restarts its pool where env_host is free
    assert _node_of(victim) == spare.node_id
    ray.get(victim.ready.remote(), timeout=120)
    ray.get([p.close.remote() for p in pools if p is not victim], timeout=120)
    accepted = ray.get(svc.snapshot.remote())["curricula"]["toy"]["counters"]["outcomes_accepted"]
    assert accepted == before  # every outcome flushed before the node was lost is counted, once
    assert _node_of(svc) == head


@pytest.mark.slow
@pytest.mark.ray
def test_a_lost_service_node_brings_the_service_back_elsewhere_from_checkpoint_and_log(cluster, tmp_path):
    """``service_on_driver_node: false``: the service lives on a worker; that node is removed."""
    import ray

    from openended.runtime.envpool_actor import make_pools
    from openended.runtime.service import start_service
    from openended.tasks import Box

    for _ in range(2):
        cluster.add_node(num_cpus=1, resources={"env_host": 1, "service_host": 1})
    ray.init(address=cluster.address, namespace="placement", log_to_driver=False)
    driver = ray.get_runtime_context().get_node_id()
    svc = start_service(
        "svc2",
        "placement",
        metrics=False,
        max_restarts=3,
        actor_options={"resources": {"service_host": 1}},
        event_log=str(tmp_path / "events.jsonl"),
        checkpoint_dir=str(tmp_path / "teacher"),
        resume=True,
        curricula=[{"name": "toy", "teacher": "random", "space": Box([0, 0], [1, 1]).to_dict(), "config": {"seed": 0}}],
    )
    ray.get(svc.ping.remote())
    home = _node_of(svc)
    if home == driver:  # the driver's own raylet cannot be removed under it: swap the roles
        pytest.skip("the driver attached to the service's raylet (several raylets share one IP here)")
    pool = make_pools(1, "svc2", "toy", "toy", {}, num_envs=2, seed=0, namespace="placement", max_restarts=2)[0]
    ray.get(pool.step.remote())
    ray.get(pool.flush.remote(True))
    ray.get(svc.checkpoint.remote())  # a checkpoint, then outcomes only the event log holds
    ray.get(pool.step.remote())
    ray.get(pool.flush.remote(True))
    sent = ray.get(pool.stats.remote())["total_episodes"]
    node = next(n for n in cluster.worker_nodes if n.node_id == home)
    cluster.remove_node(node)
    assert _node_of(svc) not in (home, None)
    counters = ray.get(svc.snapshot.remote(), timeout=120)["curricula"]["toy"]["counters"]
    assert counters["outcomes_accepted"] == sent  # restored: checkpoint + log, nothing lost or twice
    ray.get(pool.close.remote(), timeout=120)
