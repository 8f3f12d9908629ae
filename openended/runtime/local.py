"""Start (or join) Ray the way openended needs it: loopback-only locally, temp dir under control.

Why: on a laptop the embedded Ray must not listen on public interfaces. Ray replaces
``_node_ip_address="127.0.0.1"`` with the first interface address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; we set it (only for the local start) so every
Ray port binds 127.0.0.1. Unix socket paths are limited to ~107 bytes, so the default
temp dir is a short path under /tmp rather than inside a deep run directory.

Ray reads that variable when it is *imported*: the CLI sets it before importing Ray; in
your own scripts set ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ``import ray`` (or in
the shell) for a loopback-only local instance.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import ray

__all__ = ["init_ray", "default_temp_dir"]


def default_temp_dir() -> str:
    """A short per-user path under the system temp dir (Ray's socket paths must stay under ~107 bytes)."""
    return os.path.join(tempfile.gettempdir(), f"openended-ray-{os.getuid()}")


def init_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    namespace: str = "openended",
    temp_dir: str | None = None,
    log_to_driver: bool = True,
    **kwargs: Any,
) -> dict:
    """``ray.init`` for openended. ``address=None`` and no ``RAY_ADDRESS``: embedded, loopback-only.

    Returns Ray's context info dict. Idempotent: an already-initialised Ray is reused.
    """
    if ray.is_initialized():
        return {"reused": True}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        # Ray reads this flag when it is imported; set it for the processes Ray spawns and
        # mirror it in the already-imported constant the node-IP resolution consults.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] not in (
            "0",
            "false",
            "False",
        )
        ctx = ray.init(
            num_cpus=num_cpus,
            namespace=namespace,
            include_dashboard=False,
            _temp_dir=temp_dir or default_temp_dir(),
            _node_ip_address="127.0.0.1",
            log_to_driver=log_to_driver,
            **kwargs,
        )
    else:
        ctx = ray.init(address=address, namespace=namespace, log_to_driver=log_to_driver, **kwargs)
    return {"reused": False, "address": getattr(ctx, "address_info", {}).get("address")}
