"""The `EnvPool` Ray actor: one `EnvPoolCore` and its own `TeacherClient` per actor.

Contents:
    EnvPool    -- the Ray actor (``EnvPool.options(num_cpus=1).remote(service, curriculum,
                  family, env_config, num_envs, ...)``).
    make_pools -- start ``n`` `EnvPool` actors with distinct seeds.

Why a separate module: the pool itself (`openended.runtime.envpool.EnvPoolCore`) is plain
Python and must import without Ray (breakpoints, unit tests, other schedulers); only this
thin actor shell needs Ray.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import ray

from openended.errors import ConfigError, Error
from openended.runtime.envpool import EnvFactory, EnvPoolCore, Policy

__all__ = ["EnvPool", "make_pools", "PoolRestarted"]


class PoolRestarted(Error, RuntimeError):
    """A pool Ray restarted has not been given its students' state yet (`load_env_states` or `resume_fresh`).

    Stepping it before would train fresh simulated students without anyone noticing, so
    `step` and `run` refuse until the owner has decided.
    """


class _EnvPoolActor:
    """Ray actor body of `EnvPool`: builds its own `TeacherClient` from the service name."""

    def __init__(
        self,
        service: Any,
        curriculum: str,
        family: str | EnvFactory,
        env_config: Mapping[str, Any] | None = None,
        num_envs: int = 8,
        *,
        student: str = "default",
        policy: str | Policy = "random",
        steps_per_call: int = 100,
        seed: int = 0,
        namespace: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        pool_id: str | None = None,
        components: list[dict[str, Any]] | None = None,
        bus: str | None = None,
        stores: Mapping[str, str] | None = None,
    ) -> None:
        from openended.components.registry import build_components
        from openended.runtime.client import TeacherClient

        #: Ray restarted this actor (its process died); cleared once its owner restored it.
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if pool_id is not None and self.restarted:
            # A new name for the new pool in stats and bus events (its client, and so its
            # episode ids, are new as well: the service keeps the old pool's episodes apart).
            pool_id = f"{pool_id}r{uuid.uuid4().hex[:6]}"
        client = TeacherClient(service, curriculum, student, namespace=namespace, **dict(client_options or {}))
        #: The run's shared stores (writes pipelined, flushed before each call returns), or ``None``.
        self.stores = _shared_stores(stores, namespace)
        self.core = EnvPoolCore(
            family,
            env_config,
            num_envs,
            client,
            policy=policy,
            steps_per_call=steps_per_call,
            seed=seed,
            student=student,
            pool_id=pool_id,
            components=build_components(components or [], placement="env_runner"),
            stores=self.stores,
        )
        #: Carries the components' bus events to and from the run's bus actor, once per call.
        self.bridge = None
        if bus is not None and self.core.components is not None:
            from openended.runtime.component_actors import bridge_to

            origin = f"pool-{self.core.pool_id}"
            self.bridge = bridge_to(self.core.components.bus, bus, origin, namespace)

    def _flush_stores(self) -> None:
        if self.stores is not None:  # what this call stored is in the shared store when it returns
            from openended.runtime.component_actors import flush_stores

            flush_stores(self.stores)

    def _exchange(self) -> None:
        self._flush_stores()
        if self.bridge is not None:
            self.bridge.flush()
            self.bridge.poll()

    def _check_restored(self) -> None:
        if self.restarted:
            raise PoolRestarted(f"env pool {self.core.pool_id} was restarted by Ray; restore it before stepping")

    def step(self, k: int | None = None) -> dict:
        """`EnvPoolCore.step` (`PoolRestarted` after a restart until restored)."""
        self._check_restored()
        out = self.core.step(k)
        self._exchange()
        return out

    def run(self, steps: int | None = None, seconds: float | None = None, k: int | None = None) -> dict:
        """`EnvPoolCore.run` (`PoolRestarted` after a restart until restored)."""
        self._check_restored()
        out = self.core.run(steps=steps, seconds=seconds, k=k)
        self._exchange()
        return out

    def stats(self) -> dict:
        """`EnvPoolCore.stats`."""
        return self.core.stats()

    def flush(self, wait: bool = True) -> None:
        """`EnvPoolCore.flush`."""
        self.core.flush(wait=wait)

    def env_metrics(self) -> dict:
        """`EnvPoolCore.env_metrics`."""
        return self.core.env_metrics()

    def env_states(self) -> list[dict | None]:
        """`EnvPoolCore.env_states`."""
        return self.core.env_states()

    def load_env_states(self, states: list[dict | None]) -> None:
        """`EnvPoolCore.load_env_states` (a restarted pool may step again)."""
        self.core.load_env_states(states)
        self.restarted = False

    def component_state(self) -> dict[str, Any] | None:
        """`EnvPoolCore.component_state`."""
        return self.core.component_state()

    def load_component_state(self, state: dict[str, Any] | None) -> None:
        """`EnvPoolCore.load_component_state`."""
        self.core.load_component_state(state)

    def resume_fresh(self) -> None:
        """Let a restarted pool step with the state it was rebuilt with (nothing was saved to restore)."""
        self.restarted = False

    def close(self) -> None:
        """`EnvPoolCore.close` (and the writes to shared stores still in flight)."""
        self.core.close()
        self._flush_stores()

    def ready(self) -> bool:
        """Resolves once the actor is built (envs made); use to time start-up separately."""
        return True


def _shared_stores(stores: Mapping[str, str] | None, namespace: str | None) -> Any:
    """The run's shared store actors as a pool's `Stores` (``None`` without any: local stores)."""
    if not stores:
        return None
    from openended.runtime.component_actors import connect_stores

    return connect_stores(stores, namespace, max_pending=16)


#: The Ray actor: ``EnvPool.options(num_cpus=1).remote(service, curriculum, family, env_config,
#: num_envs, ...)``; methods ``step(k)``, ``run(steps=, seconds=)``, ``stats()``, ``flush()``,
#: ``close()``, ``ready()``. Default ``num_cpus=1``: a pool keeps one core busy.
EnvPool = ray.remote(num_cpus=1)(_EnvPoolActor)


def make_pools(
    n: int,
    service: Any,
    curriculum: str,
    family: str | EnvFactory,
    env_config: Mapping[str, Any] | None = None,
    num_envs: int = 8,
    *,
    num_cpus: float = 1.0,
    seed: int = 0,
    student: str = "default",
    policy: str | Policy = "random",
    steps_per_call: int = 100,
    namespace: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    wait: bool = True,
    max_restarts: int = 0,
    components: list[dict[str, Any]] | None = None,
    bus: str | None = None,
    stores: Mapping[str, str] | None = None,
    actor_options: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Start ``n`` `EnvPool` actors (seeds ``seed + 10_000 * j`` so no two envs share a seed).

    ``wait`` blocks until every pool has built its envs, so timings that follow measure
    stepping, not start-up. ``max_restarts``: Ray restarts a killed pool this many times (a
    call in flight then fails with ``ActorUnavailableError``; the caller decides what to redo).
    ``actor_options``: more ``.options(...)`` (resources, scheduling strategy; see
    `openended.runtime.placement`), over ``num_cpus``. ``stores``: the run's shared store
    actors (store name -> actor name) the pools' components use.
    """
    if n < 1:
        raise ConfigError(f"make_pools(n): n must be >= 1, got {n}")
    # Actor handles are used untyped here as everywhere in the runtime: Ray types a handle's
    # methods as the plain functions unless each one is wrapped in ``ray.method``.
    pools: list[Any] = [
        EnvPool.options(
            **{"num_cpus": num_cpus, **(actor_options or {})}, max_restarts=max_restarts, max_task_retries=0
        ).remote(
            service,
            curriculum,
            family,
            env_config,
            num_envs,
            student=student,
            policy=policy,
            steps_per_call=steps_per_call,
            seed=seed + 10_000 * j,
            namespace=namespace,
            client_options=client_options,
            pool_id=f"pool{j}-{uuid.uuid4().hex[:8]}",
            components=components,
            bus=bus,
            stores=stores,
        )
        for j in range(n)
    ]
    if wait:
        ray.get([p.ready.remote() for p in pools])
    return pools
