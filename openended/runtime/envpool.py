"""Env pools, in-process: N task envs of one family stepped as a vector, K steps per call, teacher in the loop.

Contents:
    EnvPoolCore   -- the pool (no Ray): vector stepping, per-episode tasks from a teacher
                     client, one `Outcome` per finished episode. Use it directly with a
                     `LocalTeacherClient` for breakpoints and unit tests; the Ray actor
                     (`openended.runtime.envpool_actor.EnvPool`) hosts one.
    random_policy -- the seeded uniform-random policy a pool uses by default.

This module never imports Ray (tested), so the core runs wherever the envs do.

Why K steps per call: one remote call per env step caps an actor at about 1,300
steps/s (Ray round trip ~0.8 ms), less than a single BipedalWalker (~5k steps/s). A pool
advances all its envs ``k`` times inside one call, so the call overhead is paid once per
``k * num_envs`` env steps and an actor runs at the speed of its envs.

Why tasks come from a client and not the service: the client keeps a prefetched task
buffer and a batched outcome outbox (see `openended.runtime.client`), so an episode
boundary costs a deque pop and an append; only the very first fill waits on the teacher.

Episodes run through one `EpisodeHost` (`openended.runtime.episodes`): each env is given
its next task with ``set_task(task)`` immediately before ``reset()`` (the task takes effect
at that reset), and the `Outcome` of that episode carries the id of the task the env
actually ran (``info["task_id"]``; a disagreement is counted in
``stats()["task_id_mismatches"]``) and an episode id from the pool's client (16 hex
digits: the client's token, then a counter; ``stats()["client"]["episode_id_token"]``
names the pool an id came from). A PettingZoo task ``ParallelEnv`` is hosted as one team
(`TeamEnv`): one outcome per team episode. ``pool.host.add_hooks(...)`` registers
lifecycle hooks (`EpisodeHooks`).

Example (in-process, no Ray)::

    from openended.runtime.client import LocalTeacherClient
    pool = EnvPoolCore("toy", {}, num_envs=8, client=LocalTeacherClient(core, "toy"))
    pool.step(100)   # -> {"steps": 800, "episodes": ..., "mean_return": ..., ...}
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from openended.components.base import Block, Component, Placement
from openended.components.host import ComponentHost
from openended.components.stores import Stores
from openended.envs.registry import make_task_env
from openended.envs.team import TeamEnv, is_parallel_env
from openended.errors import ConfigError
from openended.runtime.episodes import EpisodeHost, TaskClient

__all__ = ["EnvPoolCore", "random_policy", "EnvFactory", "Policy"]

#: Builds one env: a registered family name (``make_env(name, **env_config)``) or a callable.
EnvFactory = Callable[..., gym.Env]
#: A policy maps a list of observations (one per env) to a sequence of actions.
Policy = Callable[[Sequence[Any]], Sequence[Any]]


def _pool_env(family: str | EnvFactory, env_config: Mapping[str, Any] | None) -> gym.Env:
    """One env of a pool; a PettingZoo task ParallelEnv is hosted as one team (`TeamEnv`)."""
    env = make_task_env(family, env_config, field="envpool.family")
    return TeamEnv(env) if is_parallel_env(env) else env


def random_policy(action_space: gym.Space, num_envs: int, seed: int) -> Callable[[int], list]:
    """A seeded uniform-random policy that draws ``k`` steps of actions for all envs at once.

    Returns ``draw(k) -> list`` of ``k`` per-step action lists. Box and Discrete spaces are
    drawn vectorised from one ``np.random.Generator`` (a Python ``space.sample()`` per env
    step costs as much as a cheap env step); other spaces fall back to a seeded
    ``space.sample()``.
    """
    rng = np.random.default_rng(seed)
    if (
        isinstance(action_space, gym.spaces.Box)
        and np.all(np.isfinite(action_space.low))
        and np.all(np.isfinite(action_space.high))
    ):
        low, high = action_space.low, action_space.high
        dtype = action_space.dtype

        def draw_box(k: int) -> list:
            a = rng.uniform(low, high, size=(k, num_envs, *action_space.shape)).astype(dtype, copy=False)
            return [list(a[i]) for i in range(k)]

        return draw_box
    if isinstance(action_space, gym.spaces.Discrete):
        start, n = int(action_space.start), int(action_space.n)

        def draw_discrete(k: int) -> list:
            a = rng.integers(start, start + n, size=(k, num_envs))
            return [list(a[i].tolist()) for i in range(k)]

        return draw_discrete
    spaces = []
    for i in range(num_envs):
        sp = copy.deepcopy(action_space)
        sp.seed(seed + i)
        spaces.append(sp)

    def draw_generic(k: int) -> list:
        return [[sp.sample() for sp in spaces] for _ in range(k)]

    return draw_generic


class EnvPoolCore:
    """``num_envs`` envs of one family stepped as a vector, each episode on a teacher task.

    Args:
        family: a registered env family (``"toy"``, ``"stump_tracks"``, ...) or a callable
            returning a gymnasium env with ``set_task(task)``.
        env_config: keyword config for the family (same for every env).
        num_envs: envs in this pool.
        client: a teacher client (``next_task``/``report``/``flush``/``stats``/``close``).
        policy: ``"random"`` (seeded uniform actions) or a callable mapping the list of
            current observations to one action per env.
        steps_per_call: default ``k`` of `step` (vector steps, i.e. ``k * num_envs`` env steps).
        seed: seeds the envs' first resets (``seed + i``) and the random policy.
        student: the student id written into every `Outcome`.
        pool_id: names the pool in stats and component bus events (random when not given).
        components: env-runner components (`openended.components`): their hooks fire from
            the pool's episode host; the pool's lifetime is one train block, begun at the
            first `start` and ended at `close`.
        stores: the components' named stores (a run's shared store actors); ``None``: each
            provider registers its own local store.
    """

    def __init__(
        self,
        family: str | EnvFactory,
        env_config: Mapping[str, Any] | None,
        num_envs: int,
        client: TaskClient,
        policy: str | Policy = "random",
        steps_per_call: int = 100,
        seed: int = 0,
        *,
        student: str = "default",
        pool_id: str | None = None,
        components: Sequence[Component] = (),
        stores: Stores | None = None,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"envpool.num_envs: must be an int >= 1, got {num_envs!r}")
        if not isinstance(steps_per_call, int) or steps_per_call < 1:
            raise ConfigError(f"envpool.steps_per_call: must be an int >= 1, got {steps_per_call!r}")
        if not (policy == "random" or callable(policy)):
            raise ConfigError(f"envpool.policy: must be 'random' or a callable obs_batch -> actions, got {policy!r}")
        self.family = family
        self.num_envs = num_envs
        self.steps_per_call = steps_per_call
        self.seed = int(seed)
        self.student = student
        self.pool_id = pool_id or uuid.uuid4().hex[:12]
        self.envs: list[gym.Env] = [_pool_env(family, env_config) for _ in range(num_envs)]
        #: Runs every episode: tasks in, outcomes out, hooks (``pool.host.add_hooks(...)``).
        self.host = EpisodeHost(self.envs, client, student=student, owner="envpool")
        #: The env-runner component host (``None`` without components).
        self.components = (
            ComponentHost(components, stores=stores, placement=Placement.ENV_RUNNER) if components else None
        )
        if self.components is not None and (hooks := self.components.episode_hooks()) is not None:
            self.host.add_hooks(hooks)
        self.action_space = self.envs[0].action_space
        self.observation_space = self.envs[0].observation_space
        self._policy: Policy | None = None if isinstance(policy, str) else policy  # str: "random" (checked above)
        self._draw = random_policy(self.action_space, num_envs, self.seed) if self._policy is None else None
        self._obs: list[Any] = [None] * num_envs
        # Lifetime counters.
        self.total_steps = 0
        self.total_episodes = 0
        self._busy_s = 0.0
        self._closed = False
        self._started = False

    @property
    def client(self) -> TaskClient:
        """The teacher client the pool's episodes draw tasks from and report to."""
        client = self.host.client
        assert client is not None, "a pool's host is built with its client"
        return client

    @property
    def task_id_mismatches(self) -> int:
        """Episodes whose env reported another task id than the task it was given."""
        return self.host.counters.task_id_mismatches

    def start(self) -> None:
        """First resets (seeded ``seed + i``); `step` calls this on first use."""
        if self._started:
            return
        if self.components is not None:
            self.components.lifetime_start()
            self.components.block_start(Block(0, "train"))
        begin = self.host.begin
        for i in range(self.num_envs):
            self._obs[i] = begin(i, seed=self.seed + i)[0]
        self._started = True

    # ------------------------------------------------------------------ stepping
    def step(self, k: int | None = None) -> dict:
        """Advance every env ``k`` times (default ``steps_per_call``); ``k * num_envs`` env steps.

        Finished episodes report their `Outcome` to the client and restart at once on the
        next task. Returns this call's stats: ``steps`` (env steps), ``episodes``,
        ``mean_return`` (of episodes finished in this call; ``None`` if none),
        ``success_rate`` (``None`` unless envs report success), ``steps_per_s``,
        ``tasks_per_s`` (episodes started per second), ``elapsed_s``, and lifetime totals.
        """
        if self._closed:
            raise ConfigError("envpool: step() after close()")
        k = self.steps_per_call if k is None else int(k)
        if k < 1:
            raise ConfigError(f"envpool.step(k): k must be >= 1, got {k}")
        t0 = time.perf_counter()
        self.start()
        n = self.num_envs
        obs = self._obs
        host_step, begin, last = self.host.step, self.host.begin, self.host.last_outcome
        policy, draw = self._policy, self._draw
        actions_k = draw(k) if draw is not None else None
        ep_returns: list[float] = []
        n_success = n_success_known = 0
        for s in range(k):
            if actions_k is not None:
                actions = actions_k[s]
            else:
                assert policy is not None, "a pool has a policy or draws random actions"
                actions = policy(obs)
            for i in range(n):
                ob, _r, term, trunc, _info = host_step(i, actions[i])
                if term or trunc:
                    out = last[i]
                    assert out is not None, "the host reported the episode that just ended"
                    ep_returns.append(out.episode_return)
                    if out.success is not None:
                        n_success_known += 1
                        n_success += int(out.success)
                    obs[i] = begin(i)[0]
                else:
                    obs[i] = ob
        dt = time.perf_counter() - t0
        steps = k * n
        self.total_steps += steps
        self.total_episodes += len(ep_returns)
        self._busy_s += dt
        return {
            "steps": steps,
            "episodes": len(ep_returns),
            "mean_return": float(np.mean(ep_returns)) if ep_returns else None,
            "success_rate": (n_success / n_success_known) if n_success_known else None,
            "elapsed_s": dt,
            "steps_per_s": steps / dt if dt > 0 else float("inf"),
            "tasks_per_s": len(ep_returns) / dt if dt > 0 else float("inf"),
            "total_steps": self.total_steps,
            "total_episodes": self.total_episodes,
        }

    def run(self, *, steps: int | None = None, seconds: float | None = None, k: int | None = None) -> dict:
        """Call `step` until ``steps`` env steps or ``seconds`` have passed; return the summed stats.

        One remote call can so run a whole benchmark or rollout phase.
        """
        if steps is None and seconds is None:
            raise ConfigError("envpool.run: give steps= or seconds=")
        t0 = time.perf_counter()
        total_steps = total_eps = 0
        ret_sum = 0.0
        while True:
            st = self.step(k)
            total_steps += st["steps"]
            total_eps += st["episodes"]
            if st["mean_return"] is not None:
                ret_sum += st["mean_return"] * st["episodes"]
            if steps is not None and total_steps >= steps:
                break
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
        dt = time.perf_counter() - t0
        return {
            "steps": total_steps,
            "episodes": total_eps,
            "mean_return": ret_sum / total_eps if total_eps else None,
            "elapsed_s": dt,
            "steps_per_s": total_steps / dt,
            "tasks_per_s": total_eps / dt,
            "total_steps": self.total_steps,
            "total_episodes": self.total_episodes,
        }

    def stats(self) -> dict:
        """Lifetime counters of this pool plus its client's stats (under ``client``)."""
        return {
            "pool_id": self.pool_id,
            "num_envs": self.num_envs,
            "total_steps": self.total_steps,
            "total_episodes": self.total_episodes,
            "task_id_mismatches": self.task_id_mismatches,
            "busy_s": self._busy_s,
            "steps_per_s": self.total_steps / self._busy_s if self._busy_s > 0 else None,
            "abandoned_episodes": self.host.counters.abandoned_episodes,
            "current_task_ids": [t.id if t is not None else None for t in self.host.tasks],
            "client": self.client.stats(),
        }

    def flush(self, wait: bool = True) -> None:
        """Send every queued outcome to the teacher now (``wait``: until it has them)."""
        self.client.flush(wait=wait)

    # ---------------------------------------------------- simulated-student hooks
    # Envs that host their own student (the toy learner, simulated learners) expose
    # ``curriculum_metrics()`` and ``state_dict()``/``load_state_dict()``; runs read and
    # checkpoint them through the pool. Envs without the hooks are skipped.
    def env_metrics(self) -> dict:
        """Mean of ``env.unwrapped.curriculum_metrics()`` over envs that provide it."""
        rows = [fn() for e in self.envs if (fn := getattr(e.unwrapped, "curriculum_metrics", None)) is not None]
        keys = set().union(*rows) if rows else set()
        return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}

    def env_states(self) -> list[dict | None]:
        """Each env's ``state_dict()`` (``None`` where an env has no state to keep)."""
        return [fn() if (fn := getattr(e.unwrapped, "state_dict", None)) is not None else None for e in self.envs]

    def load_env_states(self, states: list[dict | None]) -> None:
        """Inverse of `env_states` (after the first resets, which may reinitialise a student)."""
        if len(states) != self.num_envs:
            raise ConfigError(f"envpool.load_env_states: {len(states)} states for {self.num_envs} envs")
        self.start()
        for e, st in zip(self.envs, states):
            if st is not None:
                student: Any = e.unwrapped  # a duck-typed hook (above), not part of gymnasium's Env
                student.load_state_dict(st)

    def component_state(self) -> dict[str, Any] | None:
        """The env-runner components' state (``None`` without components)."""
        return None if self.components is None else self.components.state_dict()

    def load_component_state(self, state: dict[str, Any] | None) -> None:
        """Inverse of `component_state`."""
        if self.components is not None and state is not None:
            self.components.load_state_dict(state)

    def close(self) -> None:
        """Flush outcomes, end the components' lifetime, close the envs and the client.

        Episodes still running are dropped (an unfinished episode has no outcome).
        """
        if self._closed:
            return
        self._closed = True
        if self.components is not None and self._started:
            self.components.block_end()
            self.components.lifetime_end()
        try:
            self.client.flush(wait=True)
        finally:
            for e in self.envs:
                try:
                    e.close()
                except Exception:  # noqa: BLE001 - closing must reach every env
                    pass
            self.client.close()
