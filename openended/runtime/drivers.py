"""Who trains in `openended run`: one driver per student, behind one small interface.

Contents:
    Driver       -- the interface `openended.runtime.run` drives (train, save into a
                    checkpoint set, restore from one, close).
    PoolDriver   -- EnvPool actors whose envs host their own simulated student (the toy
                    learner); survives the death of a pool actor (see below).
    RLlibDriver  -- one RLlib algorithm (PPO/SAC, new API stack) with `CurriculumEnv` envs.

Pool faults: pools start with ``max_restarts`` (`POOL_MAX_RESTARTS`), so Ray brings a
killed pool back by itself. The driver notices the failed call (or, for a pool killed
between calls, its refusal to step before it is restored: `PoolRestarted`), waits for the
restarted actor, reloads the env states of the last checkpoint set into it (or lets it go
on fresh if no set was written yet), and the run goes on. The
dead pool's episodes that were running are *interrupted*: counted in
``episodes_interrupted``, never reported as outcomes. Its episodes of that call whose
outcomes had already reached the teacher are real episodes; the run counts them from the
teacher's own count (``unknown_episodes`` in the row tells it to), so ``episodes_total``
stays equal to the outcomes the teacher accepted.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Protocol

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError, RayTaskError

from openended.config import Experiment
from openended.errors import ConfigError, RunFailed
from openended.runtime.checkpoints import CheckpointSet, SetWriter
from openended.runtime.component_run import bus_name_for, store_actors_for
from openended.runtime.envpool_actor import PoolRestarted, make_pools
from openended.runtime.placement import pool_actor_options, warn_if_no_host

__all__ = ["Driver", "PoolDriver", "RLlibDriver", "evaluation_env", "CURRICULUM", "POOL_MAX_RESTARTS", "mean_dicts"]

CURRICULUM = "main"
#: Ray restarts of one EnvPool actor before the run gives up on it.
POOL_MAX_RESTARTS = 10
#: How long a restarted actor may take to come back (its envs are built again).
RESTART_TIMEOUT_S = 300.0


class Driver(Protocol):
    """What the run loop needs from whoever trains one student."""

    student: str

    def train_iteration(self) -> dict:
        """One iteration; counts (``env_steps``, ``episodes``, lifetime totals) and means."""
        ...

    def save(self, ckpt: SetWriter) -> None:
        """Add this student's state to the checkpoint set being written."""
        ...

    def restore(self, ckpt: CheckpointSet, totals: dict) -> None:
        """Load this student's state from a checkpoint set; ``totals`` are the run's at that set."""
        ...

    def close(self) -> None:
        """Release actors and algorithms (outcomes flushed first)."""
        ...


def mean_dicts(ds: list[dict]) -> dict:
    """Key-wise mean of the numeric values of ``ds``."""
    keys = set().union(*ds) if ds else set()
    out = {}
    for k in keys:
        vals = [d[k] for d in ds if isinstance(d.get(k), (int, float))]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out


class PoolDriver:
    """EnvPool actors for one student: each iteration steps every pool ``steps_per_call`` times, then flushes.

    The flush at the end of every iteration makes the teacher's count of accepted outcomes
    equal the episodes the run reports at every metrics row.
    """

    def __init__(self, exp: Experiment, service_name: str, student: str, index: int) -> None:
        self.student = student
        self.exp = exp
        warn_if_no_host(exp.resources, exp.pool.pools_per_student)
        self.pools = make_pools(
            exp.pool.pools_per_student,
            service_name,  # by name: a restarted pool's client looks the service up again
            CURRICULUM,
            exp.env.family,
            exp.env.config,
            num_envs=exp.pool.envs_per_pool,
            actor_options=pool_actor_options(exp.resources),
            seed=exp.seed + 1_000_000 * index,
            student=student,
            policy=exp.pool.policy,
            steps_per_call=exp.pool.steps_per_call,
            namespace=exp.ray.namespace,
            max_restarts=POOL_MAX_RESTARTS,
            components=exp.components,
            bus=bus_name_for(service_name) if exp.components else None,
            stores=store_actors_for(exp, service_name),
        )
        self._states: list[list | None] = [None] * len(self.pools)
        self._component_states: list[dict | None] = [None] * len(self.pools)
        self.env_steps_total = 0
        self.episodes_total = 0
        self.episodes_interrupted = 0
        self.pool_restarts = 0

    def _member(self, j: int) -> tuple[str, str]:
        return f"pool/{self.student}/{j}", f"pool-{self.student}-{j}.json"

    def _component_member(self, j: int) -> tuple[str, str]:
        return f"components/pool/{self.student}/{j}", f"components-pool-{self.student}-{j}.json"

    def _recover(self, j: int) -> None:
        """Wait for Ray to restart pool ``j``, then give it the env states of the last checkpoint set."""
        pool = self.pools[j]
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            try:
                ray.get(pool.ready.remote(), timeout=30)
                break
            except ActorDiedError as e:  # permanently dead: restarts used up, or its constructor failed
                raise RunFailed(f"env pool {j} of student {self.student!r} died and was not restarted") from e
            except (RayActorError, GetTimeoutError):  # ActorUnavailableError: Ray is restarting it
                pass
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"env pool {j} of student {self.student!r} did not come back within {RESTART_TIMEOUT_S}s"
                )
            time.sleep(0.5)
        if self._component_states[j] is not None:
            ray.get(pool.load_component_state.remote(self._component_states[j]))
        if self._states[j] is not None:
            ray.get(pool.load_env_states.remote(self._states[j]))
        else:
            ray.get(pool.resume_fresh.remote())
        self.pool_restarts += 1
        self.episodes_interrupted += self.exp.pool.envs_per_pool

    def _on_all(self, *calls: tuple[str, tuple]) -> list[list | None]:
        """Run ``calls`` (method name, args) in order on every pool; ``None`` for a pool that died (recovered)."""
        refs = [[getattr(p, name).remote(*args) for name, args in calls] for p in self.pools]
        out: list[list | None] = []
        for j, pool_refs in enumerate(refs):
            try:
                out.append([ray.get(r) for r in pool_refs])
                continue
            except RayTaskError as e:  # the pool raised: it is alive
                if isinstance(e.cause, RayActorError):
                    # it lost the service mid-step: its envs are mid-way, so Ray restarts it afresh
                    ray.kill(self.pools[j], no_restart=False)
                elif not isinstance(e.cause, PoolRestarted):  # restarted between calls: restore it
                    raise  # a bug in an env or policy: its traceback is what helps
            except RayActorError:  # the pool died in the call
                pass
            for r in pool_refs:  # let the rest of this pool's calls end before restoring it
                try:
                    ray.get(r)
                except Exception:  # noqa: BLE001 - they failed or refused too; the pool is restored next
                    pass
            self._recover(j)
            out.append(None)
        return out

    def train_iteration(self) -> dict:
        """Step and flush every pool; a pool that died is restarted and its share marked unknown."""
        results = self._on_all(("step", ()), ("flush", (True,)))
        stats = [r[0] for r in results if r is not None]
        failed = len(results) - len(stats)
        metrics = [r[0] for r in self._on_all(("env_metrics", ())) if r is not None]
        episodes = sum(s["episodes"] for s in stats)
        returns = [s["mean_return"] * s["episodes"] for s in stats if s.get("mean_return") is not None]
        succ = [s["success_rate"] * s["episodes"] for s in stats if s.get("success_rate") is not None]
        steps = sum(s["steps"] for s in stats)
        self.env_steps_total += steps
        self.episodes_total += episodes
        out: dict[str, Any] = {
            "env_steps": steps,
            "episodes": episodes,
            "mean_return": (sum(returns) / episodes) if episodes and returns else None,
            "success_rate": (sum(succ) / episodes) if episodes and succ else None,
            "env_steps_total": self.env_steps_total,
            "episodes_total": self.episodes_total,
        }
        if failed:
            out["unknown_episodes"] = True  # the run fills them in from the teacher's count
            out["pool_restarts"] = failed
        if self.episodes_interrupted:
            out["episodes_interrupted"] = self.episodes_interrupted
        merged = mean_dicts(metrics)
        if "mastered" in merged:
            out["mastered"] = merged["mastered"]
        return out

    def transports(self) -> dict[str, list[str]]:
        """How each live pool makes its hot teacher calls: ``{"wire": [...], "ray": [notes]}``."""
        out: dict[str, list[str]] = {"wire": [], "ray": []}
        for stats in ray.get([p.stats.remote() for p in self.pools]):
            client = stats["client"]
            out[client.get("transport", "ray")].append(client.get("wire_note", ""))
        return out

    def add_episodes(self, n: int) -> None:
        """Count ``n`` episodes of a dead pool's last call that reached the teacher (see the module docstring)."""
        self.episodes_total += n

    def save(self, ckpt: SetWriter) -> None:
        """Flush every pool (the teacher checkpoint that follows covers every finished episode), save env states."""
        results = self._on_all(("flush", (True,)), ("env_states", ()))
        for j, r in enumerate(results):
            if r is None:  # died while saving: it came back with the last set's states
                r = [None, ray.get(self.pools[j].env_states.remote())]
            name, filename = self._member(j)
            with open(ckpt.reserve(name, filename), "w", encoding="utf-8") as f:
                json.dump(r[1], f)
            self._states[j] = r[1]
        if self.exp.components:  # env-runner components' state, one member per pool
            for j, p in enumerate(self.pools):
                state = ray.get(p.component_state.remote())
                name, filename = self._component_member(j)
                with open(ckpt.reserve(name, filename), "w", encoding="utf-8") as f:
                    json.dump(state, f)
                self._component_states[j] = state

    def restore(self, ckpt: CheckpointSet, totals: dict) -> None:
        """Give each pool its env states from ``ckpt``; continue the run's totals."""
        for j, p in enumerate(self.pools):
            name, _ = self._member(j)
            if ckpt.has(name):
                with open(ckpt.member(name), encoding="utf-8") as f:
                    self._states[j] = json.load(f)
                ray.get(p.load_env_states.remote(self._states[j]))
            name, _ = self._component_member(j)
            if ckpt.has(name):
                with open(ckpt.member(name), encoding="utf-8") as f:
                    self._component_states[j] = json.load(f)
                ray.get(p.load_component_state.remote(self._component_states[j]))
        self.env_steps_total = int(totals.get("env_steps_total") or 0)
        self.episodes_total = int(totals.get("episodes_total") or 0)

    def close(self) -> None:
        """Close every pool (flushing its outcomes), then end the actors."""
        for p in self.pools:
            try:
                ray.get(p.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead pool must not stop the others from flushing
                pass
            ray.kill(p, no_restart=True)


class RLlibDriver:
    """One RLlib algorithm (PPO/SAC, new API stack) for one student, envs wrapped in `CurriculumEnv`."""

    def __init__(self, exp: Experiment, service_name: str, student: str, index: int) -> None:
        from openended.envs.registry import make_env
        from openended.envs.team import is_parallel_env
        from openended.runtime.level_scores import ScoringComponentPPOLearner, ScoringPPOLearner, wants_level_scores
        from openended.runtime.rllib import build_algo_config, needs_flattening, register_curriculum_env
        from openended.runtime.rllib_masking import has_action_mask
        from openended.runtime.rllib_multiagent import register_curriculum_multiagent_env, shared_policy_config

        self.student = student
        algo = exp.algo.name
        if algo == "none":  # run_experiment hosts these students with a PoolDriver
            raise ConfigError("algo.name: 'none' has no RLlib algorithm; PoolDriver runs EnvPool actors instead")

        probe = make_env(exp.env.family, **exp.env.config)
        multi_agent = is_parallel_env(probe)
        space = probe.observation_space(probe.possible_agents[0]) if multi_agent else probe.observation_space
        # SC2: PPO's masking model, which flattens the other observations itself.
        masking = algo == "ppo" and has_action_mask(space)
        usage_fn = getattr(probe.unwrapped, "action_argument_usage", None) if masking else None
        usage = usage_fn() if usage_fn is not None else None
        flatten = exp.algo.flatten_observations
        if flatten is None or masking:
            flatten = needs_flattening(space) and not masking
        probe.close()
        scores = not multi_agent and wants_level_scores(exp)  # PLR: the learner's level score with each outcome
        env_args = (f"openended-{service_name}-{student}", exp.env.family, exp.env.config, service_name, CURRICULUM)
        bus = bus_name_for(service_name) if exp.components else None
        stores = store_actors_for(exp, service_name)  # the run's shared stores (RunComponents started them)
        if multi_agent:
            env_name = register_curriculum_multiagent_env(
                *env_args, student, namespace=exp.ray.namespace, components=exp.components, bus=bus, stores=stores
            )
        else:
            env_name = register_curriculum_env(
                *env_args,
                student,
                namespace=exp.ray.namespace,
                defer_outcomes=scores,
                components=exp.components,
                bus=bus,
                stores=stores,
            )
        cfg = build_algo_config(
            algo,
            env_name,
            exp.algo.config,
            exp.algo.num_env_runners,
            num_envs_per_env_runner=exp.algo.num_envs_per_env_runner,
            seed=exp.seed + 1_000_000 * index,
            flatten_observations=flatten,
            components=exp.components,
            bus=(bus_name_for(service_name), exp.ray.namespace) if exp.components else None,
            stores=(stores, exp.ray.namespace) if stores else None,
            action_masking=masking,
            argument_usage=usage,
        )
        if multi_agent:
            cfg = shared_policy_config(cfg)
        if exp.scenario is not None:  # no episode may run across two blocks (openended.runtime.scenario_run)
            cfg.env_runners(batch_mode="complete_episodes")
        if scores:
            with_learner_components = bool(getattr(cfg, "learner_config_dict", {}).get("components"))
            cfg.training(learner_class=ScoringComponentPPOLearner if with_learner_components else ScoringPPOLearner)
        self.algo = cfg.build_algo()
        self._learner_components = bool(getattr(cfg, "learner_config_dict", {}).get("components"))
        self.exp = exp
        self.service_name = service_name
        self.multi_agent = multi_agent
        self._last_steps = 0
        self._last_episodes = 0

    def train_iteration(self) -> dict:
        """One ``algo.train()``; per-iteration counts plus the totals this driver keeps."""
        from openended.runtime.process_clients import flush_curriculum_clients
        from openended.runtime.rllib import learner_stats

        result = self.algo.train()
        flush_curriculum_clients(wait=False)
        er = result.get("env_runners", {}) or {}
        # Per-iteration counts (lifetime counters may or may not survive a restore).
        steps = int(er.get("num_env_steps_sampled", 0) or 0)
        episodes = int(er.get("num_episodes", 0) or 0)
        self._last_steps += steps
        self._last_episodes += episodes
        return {
            "env_steps": steps,
            "episodes": episodes,
            "mean_return": er.get("episode_return_mean"),
            "env_steps_total": self._last_steps,
            "episodes_total": self._last_episodes,
            **learner_stats(result),
        }

    def evaluate(self, iteration: int = 0) -> dict:
        """The policy on the experiment's test set (see `openended.runtime.evaluate`).

        With ``evaluation.report_to_teacher`` the episodes go to the teacher in one report,
        flagged ``info["eval"]`` (OMNI's sweep); the result then carries ``reported_to_teacher``.
        """
        from openended.envs.registry import make_env
        from openended.runtime.evaluate import resolve_test_set, sweep_outcomes

        ev, fam, cfg = self.exp.evaluation, self.exp.env.family, self.exp.env.config
        if self.multi_agent:
            raise ConfigError("evaluation: multi-agent envs are not supported yet; set evaluation.every: 0")
        if ev.test_set == "teacher":
            tasks = self._teacher_tasks()[: ev.max_tasks]
        else:
            probe = make_env(fam, **cfg)
            tasks = resolve_test_set(probe, fam, ev.test_set, ev.max_tasks)
            probe.close()
        result = self.evaluate_on(tasks, ev.episodes_per_task, self.exp.seed)
        episodes = result.pop("episodes")
        if ev.report_to_teacher:
            from openended.runtime.codec import encode_outcomes

            outs = sweep_outcomes(episodes, self.student, f"{self.student}-{iteration}")
            batch = encode_outcomes(outs)
            result["reported_to_teacher"] = int(ray.get(self._service().report.remote(CURRICULUM, batch)))
        return result

    def evaluate_on(self, tasks: list, episodes_per_task: int, seed: int) -> dict:
        """Deterministic episodes of the policy on ``tasks``, on envs of their own (``evaluation`` caps)."""
        from openended.envs.registry import make_env
        from openended.runtime.evaluate import evaluate_tasks, rllib_policy

        ev, fam, cfg = self.exp.evaluation, self.exp.env.family, self.exp.env.config
        if self.multi_agent:
            raise ConfigError("evaluation: multi-agent envs are not supported yet; set evaluation.every: 0")

        def make() -> Any:
            return evaluation_env(make_env(fam, **cfg))

        return evaluate_tasks(
            make,
            tasks,
            rllib_policy(self.algo),
            seed=seed,
            max_steps=ev.max_steps,
            episodes_per_task=episodes_per_task,
            max_envs=ev.max_envs,
        )

    # ------------------------------------------------- what a lifelong scenario asks (ScenarioDriver)
    def control_teacher(self, method: str, **kwargs: Any) -> Any:
        """Call one of this student's teacher's ``CONTROLS`` in the service (the scenario's block switch)."""
        return ray.get(self._service().control.remote(CURRICULUM, self.student, method, kwargs))

    def discard_task_buffers(self) -> int:
        """Drop the tasks every env runner (and this process) buffered; how many were dropped."""
        return sum(self.algo.env_runner_group.foreach_env_runner(_discard_buffers, local_env_runner=True))

    def flush_outcomes(self) -> None:
        """Wait until every env runner's reported episodes are in the service (and its event log)."""
        self.algo.env_runner_group.foreach_env_runner(_flush_and_wait, local_env_runner=True)

    def learner_task_change(self, old: Any, new: Any) -> None:
        """``on_task_end`` / ``on_task_start`` of the learner components (if the learner has any)."""
        if self._learner_components:
            from openended.runtime.learner import on_learners

            on_learners(self.algo, lambda learner: learner.components_task_change(old, new))

    def learner_sleep(self, steps: int | None, seconds: float | None) -> int:
        """The learner components' sleep phase within the budget; the steps taken (0 without any)."""
        if not self._learner_components:
            return 0
        from openended.runtime.learner import on_learners

        taken = int(sum(on_learners(self.algo, lambda learner: learner.components_sleep(steps, seconds))))
        if taken:  # the sleep trained the learner's module: the env runners (and evaluation) act with it now
            self.algo.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.algo.learner_group, inference_only=True
            )
        return taken

    def _service(self) -> Any:
        from openended.runtime.service import get_service

        return get_service(self.service_name, namespace=self.exp.ray.namespace)

    def _teacher_tasks(self) -> list:
        from openended.tasks import Task

        rows = ray.get(self._service().known_tasks.remote(CURRICULUM, self.student))
        return [Task.from_dict(r) for r in rows]

    def save(self, ckpt: SetWriter) -> None:
        """Flush this process's curriculum clients, then save the algorithm as member ``algo/<student>``."""
        from openended.runtime.process_clients import flush_curriculum_clients

        flush_curriculum_clients(wait=True)
        self.algo.save_to_path(str(ckpt.reserve(f"algo/{self.student}", f"algo-{self.student}")))
        if self.exp.components:  # env-runner components, per env runner process
            from openended.runtime.rllib import process_component_states

            student = self.student
            states = self.algo.env_runner_group.foreach_env_runner(
                lambda r: [r.worker_index, process_component_states(student)], local_env_runner=True
            )
            name, filename = f"components/env_runners/{self.student}", f"components-env-runners-{self.student}.json"
            with open(ckpt.reserve(name, filename), "w", encoding="utf-8") as f:
                json.dump({str(i): st for i, st in states}, f)
        if self._learner_components:
            from openended.runtime.learner import on_learners

            state = on_learners(self.algo, lambda learner: learner.component_state())[0]
            name, filename = f"components/learner/{self.student}", f"components-learner-{self.student}.json"
            with open(ckpt.reserve(name, filename), "w", encoding="utf-8") as f:
                json.dump(state, f)

    def restore(self, ckpt: CheckpointSet, totals: dict) -> None:
        """Restore the algorithm from member ``algo/<student>`` (if the set has it); continue the totals."""
        name = f"algo/{self.student}"
        if ckpt.has(name):
            self.algo.restore_from_path(os.fspath(ckpt.member(name)))
        name = f"components/env_runners/{self.student}"
        if ckpt.has(name):
            from openended.runtime.rllib import load_process_component_states

            with open(ckpt.member(name), encoding="utf-8") as f:
                by_runner = json.load(f)
            student = self.student
            self.algo.env_runner_group.foreach_env_runner(
                lambda r: load_process_component_states(student, by_runner.get(str(r.worker_index))),
                local_env_runner=True,
            )
        name = f"components/learner/{self.student}"
        if self._learner_components and ckpt.has(name):
            with open(ckpt.member(name), encoding="utf-8") as f:
                state = json.load(f)
            from openended.runtime.learner import on_learners

            on_learners(self.algo, lambda learner: learner.load_component_state(state))
        self._last_steps = int(totals.get("env_steps_total") or 0)
        self._last_episodes = int(totals.get("episodes_total") or 0)

    def close(self) -> None:
        """Flush this process's curriculum clients and stop the algorithm."""
        from openended.runtime.process_clients import flush_curriculum_clients

        flush_curriculum_clients(wait=True)
        self.algo.stop()


def _discard_buffers(runner: Any) -> int:
    from openended.runtime.process_clients import discard_curriculum_buffers

    return discard_curriculum_buffers()


def _flush_and_wait(runner: Any) -> int:
    from openended.runtime.process_clients import flush_curriculum_clients

    return flush_curriculum_clients(wait=True)


def evaluation_env(env: Any) -> Any:
    """``env`` with the observation transforms of training; ``set_task`` kept.

    Images scaled, Dict/Tuple observations flattened, action masks split off as the masking
    module wants them (SC2).
    """
    from openended.runtime.evaluate import FlattenLikeRLlib
    from openended.runtime.rllib import ScaleImageObservations, needs_flattening
    from openended.runtime.rllib_masking import MaskedObservations, has_action_mask

    if has_action_mask(env.observation_space):
        masked: Any = MaskedObservations(env)  # Any: it gains set_task, which gymnasium's Wrapper does not forward
        masked.set_task = env.set_task
        return masked

    if ScaleImageObservations.needed(env.observation_space):
        env = _ScaledTaskEnv(env)
    return FlattenLikeRLlib(env) if needs_flattening(env.observation_space) else env


def _ScaledTaskEnv(env: Any) -> Any:
    """`ScaleImageObservations` that still forwards ``set_task`` (evaluation sets tasks directly)."""
    from openended.runtime.rllib import ScaleImageObservations

    wrapped: Any = ScaleImageObservations(env)  # Any: it gains an attribute gymnasium's Wrapper does not declare
    wrapped.set_task = env.set_task
    return wrapped
