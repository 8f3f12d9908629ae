"""Where a run's actors go: EnvPools on nodes offering ``resources.env_host``, the service by the driver.

Why a custom resource and not node ids: a cluster's nodes come and go (autoscaling, lost
nodes), so placement says *what kind of node* hosts a pool; Ray picks which one and, when a
node dies, restarts the pool (``max_restarts``) on another node that offers the resource. The
service is pinned to the driver's node (the head, for a submitted job): that node's loss
ends the driver too, and a soft affinity was seen to land elsewhere while a fresh cluster's
resource view settles. With ``service_on_driver_node: false`` Ray places it anywhere and
restarts it on another node when its node is lost.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from openended.config import Experiment, ResourcesSection

__all__ = ["pool_actor_options", "service_actor_options", "embedded_ray_resources", "warn_if_no_host"]

log = logging.getLogger(__name__)


def pool_share(res: ResourcesSection) -> float:
    """The amount of ``env_host`` one pool asks for: ``1 / pools_per_host``.

    Rounded down to Ray's 1e-4 resource granularity so ``pools_per_host`` pools fit one unit.
    """
    return math.floor(1e4 / res.pools_per_host) / 1e4


def pool_actor_options(res: ResourcesSection) -> dict[str, Any]:
    """``EnvPool.options(...)`` for one pool of a run with these resources."""
    opts: dict[str, Any] = {"num_cpus": res.pool_cpus, "scheduling_strategy": "SPREAD" if res.spread else "DEFAULT"}
    if res.env_host:
        opts["resources"] = {res.env_host: pool_share(res)}
    return opts


def service_actor_options(res: ResourcesSection, node_id: str | None = None) -> dict[str, Any]:
    """``.options(...)`` for the teacher service: pinned to ``node_id`` (default: the driver's node)."""
    if not res.service_on_driver_node:
        return {}
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = node_id or ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


def embedded_ray_resources(exp: Experiment) -> dict[str, float]:
    """Custom resources an embedded (laptop) Ray offers, so a cluster YAML runs unchanged."""
    res = exp.resources
    if not res.env_host or exp.algo.name != "none":
        return {}
    pools = exp.pool.pools_per_student * len(exp.students)
    return {res.env_host: float(math.ceil(pools / res.pools_per_host))}


def warn_if_no_host(res: ResourcesSection, n_pools: int) -> None:
    """Log, before the pools are created, when no node offers enough ``env_host`` yet.

    Not an error: an autoscaler adds such nodes when the pools ask for them.
    """
    if not res.env_host:
        return
    import ray

    offered = ray.cluster_resources().get(res.env_host, 0.0)
    needed = n_pools * pool_share(res)
    if offered + 1e-9 < needed:
        log.warning(
            "resources.env_host: the cluster offers %g of %r, %d pools need %g; they wait for "
            "nodes that offer it (start workers with --resources='{\"%s\": 1}')",
            offered,
            res.env_host,
            n_pools,
            needed,
            res.env_host,
        )
