"""Per-episode curriculum inside RLlib 2.60 (new API stack), for PPO and SAC.

Contents:
    CurriculumEnv           -- gymnasium wrapper: next task at every reset, an `Outcome`
                               at every episode end, through a per-process `TeacherClient`.
    ScaleImageObservations  -- uint8 image observations -> float32 in [0, 1] for RLlib's encoders.
    register_curriculum_env -- register a family + teacher service as an RLlib env name.
    build_algo_config       -- a PPO/SAC `AlgorithmConfig` with CPU-friendly defaults.
    algo_step_counts        -- (env steps, episodes) sampled so far, from a result dict.

The process's counters and clients (``curriculum_stats``, ``flush_curriculum_clients``) live
in `openended.runtime.process_clients`.

How it works (and why this way): RLlib 2.60 removed ``env_task_fn`` and
``TaskSettableEnv``; ``foreach_env_runner`` can push a task per *iteration* (2-8 ms per
call), not per *episode*. So the env pulls its own tasks. Each EnvRunner process keeps
one `TeacherClient` shared by all its envs (``num_envs_per_env_runner`` of them): the
client holds a prefetched task buffer that refills asynchronously from the
`TeacherService` actor and an outbox of outcomes flushed in batches. The wrapper runs
its episodes through an `EpisodeHost` (`openended.runtime.episodes`): at every ``reset``
it pops a task, calls ``set_task`` on the inner env (the task takes effect at that reset);
at ``terminated or truncated`` it reports an `Outcome` with the id of the task that
episode actually ran (the inner env's ``info["task_id"]`` where it reports one). The step
path never waits on the teacher; only the very first fill in a process does. The client
is created lazily at the first reset, inside the EnvRunner process.

An episode that RLlib abandons mid-way (a forced reset) has no outcome; it is counted in
``curriculum_stats()["abandoned_episodes"]`` rather than reported with a partial return.

Example::

    svc = start_service("teacher", namespace="oe")
    ray.get(svc.add_curriculum.remote("stumps", "alp_gmm", space.to_dict(), {"seed": 0}))
    register_curriculum_env("stumps-cur", "stump_tracks", {}, "teacher", "stumps", namespace="oe")
    algo = build_algo_config("ppo", "stumps-cur", {"train_batch_size_per_learner": 2000},
                             num_env_runners=2).build_algo()
    env_steps, episodes = algo_step_counts(algo.train())
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import gymnasium as gym
import numpy as np
import ray
from typing_extensions import override

from openended.components.base import Block, Placement
from openended.components.host import ComponentHost
from openended.components.registry import build_components
from openended.envs.registry import make_task_env
from openended.errors import ConfigError
from openended.runtime.algo_settings import check_algo_settings
from openended.runtime.episodes import EpisodeHost
from openended.runtime.preflight import MIN_CPUS_PER_ENV_RUNNER
from openended.runtime.process_clients import EPISODE_COUNTERS, ProcessClient
from openended.runtime.quiet import quiet_ray_logs
from openended.tasks import Task

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

__all__ = [
    "CurriculumEnv",
    "ScaleImageObservations",
    "register_curriculum_env",
    "curriculum_env_creator",
    "build_algo_config",
    "algo_step_counts",
    "default_cpus_per_env_runner",
    "needs_flattening",
    "learner_stats",
]


# ------------------------------------------------------------------------- the env wrapper
class CurriculumEnv(gym.Wrapper):
    """Runs every episode of ``env`` on the next task of a teacher curriculum.

    Args:
        env: a task env (``set_task(task)`` applied at the next reset).
        service: the teacher service actor handle or its registered name.
        curriculum: the curriculum name at the service.
        student: the student id written into outcomes (one per learner/policy).
        namespace: Ray namespace of a named service (``None``: the job's namespace).
        client_options: keyword options of `TeacherClient` (``buffer_size``, ...).
        components: env-runner component specs (this env hosts them: `env_runner_components`).
        bus: name of the run's bus actor the components join.
        stores: the run's shared store actors (store name -> actor name) the components use.
        defer_outcomes: do not report finished episodes; put each outcome (and where to
            report it) in the episode's last ``info`` for the learner, which adds PLR's
            level score (`openended.runtime.level_scores`).

    ``env.host`` is its `EpisodeHost` (``env.host.add_hooks(...)`` for lifecycle hooks).
    """

    def __init__(
        self,
        env: gym.Env,
        service: str | Any,
        curriculum: str,
        student: str = "default",
        *,
        namespace: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        bus: str | None = None,
        stores: Mapping[str, str] | None = None,
        defer_outcomes: bool = False,
    ) -> None:
        super().__init__(env)
        self._client = ProcessClient(service, curriculum, student, namespace=namespace, client_options=client_options)
        connect: Callable[[], Any] = self._client.get
        self._parking: Any = None
        if defer_outcomes:
            from openended.runtime.level_scores import ParkingClient

            self._report_to = {"service": service, "namespace": namespace, "curriculum": curriculum, "student": student}

            def connect() -> Any:
                self._parking = ParkingClient(self._client.get())
                return self._parking

        # episode ids are left to the client: token + counter, unique across processes.
        self.host = EpisodeHost(
            [env], student=student, counters=EPISODE_COUNTERS, connect=connect, owner="CurriculumEnv"
        )
        #: Env-runner components of this env (their hooks fire from ``self.host``), or ``None``.
        self.components = env_runner_components(components, self.host, stores, namespace)
        self._bridge = bus_bridge(self.components, bus, namespace)

    @property
    def task(self) -> Task | None:
        """The task of the running episode."""
        return self.host.tasks[0]

    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if self._bridge is not None:
            self._bridge.exchange(BUS_INTERVAL_S)
        return self.host.begin(0, seed=seed, options=options)

    @override
    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.host.step(0, action)
        if self._parking is not None and self._parking.parked is not None:
            from openended.runtime.level_scores import PENDING_KEY

            outcome, self._parking.parked = self._parking.parked, None
            info = {**info, PENDING_KEY: {"outcome": outcome.to_dict(), **self._report_to}}
        return obs, reward, terminated, truncated, info

    @override
    def close(self) -> None:
        try:
            if self.components is not None:
                self.components.block_end()
                self.components.lifetime_end()
            self._client.release()
        finally:
            super().close()


#: The env-runner component hosts built in this process, per student, in creation order
#: (their state is checkpointed per env runner process: `process_component_states`).
_PROCESS_COMPONENT_HOSTS: dict[str, list[ComponentHost]] = {}


def process_component_states(student: str) -> list[dict[str, Any]]:
    """The state of ``student``'s env-runner component hosts in this process, in creation order."""
    return [h.state_dict() for h in _PROCESS_COMPONENT_HOSTS.get(student, [])]


def load_process_component_states(student: str, states: list[dict[str, Any]] | None) -> int:
    """Inverse of `process_component_states` (hosts beyond the saved ones keep a fresh state); returns how many."""
    hosts, states = _PROCESS_COMPONENT_HOSTS.get(student, []), states or []
    for host, state in zip(hosts, states):
        host.load_state_dict(state)
    return min(len(states), len(hosts))


#: Env runners and learners exchange bus events with the run's bus actor at most this often.
BUS_INTERVAL_S = 1.0


def bus_bridge(components: ComponentHost | None, bus: str | None, namespace: str | None) -> Any:
    """A bridge from ``components``' bus to the run's bus actor named ``bus`` (``None`` without either)."""
    if components is None or bus is None:
        return None
    import uuid

    from openended.runtime.component_actors import bridge_to

    return bridge_to(components.bus, bus, f"env-{os.getpid()}-{uuid.uuid4().hex[:6]}", namespace)


def env_runner_components(
    specs: list[dict[str, Any]] | None,
    host: EpisodeHost,
    stores: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> ComponentHost | None:
    """Build the env-runner components of ``specs``, hook them into ``host``, start their lifetime (one block).

    ``stores``: the run's shared store actors (store name -> actor name), registered before
    the lifetime starts (`openended.runtime.component_actors.connect_stores`).
    """
    if not specs:
        return None
    shared = None
    if stores:
        from openended.runtime.component_actors import connect_stores

        shared = connect_stores(stores, namespace)
    comps = ComponentHost(
        build_components(specs, placement=Placement.ENV_RUNNER), stores=shared, placement=Placement.ENV_RUNNER
    )
    hooks = comps.episode_hooks()
    if hooks is not None:
        host.add_hooks(hooks)
    comps.lifetime_start()
    comps.block_start(Block(0, "train"))
    _PROCESS_COMPONENT_HOSTS.setdefault(host.student, []).append(comps)
    return comps


class ScaleImageObservations(gym.ObservationWrapper):
    """uint8 image observations (Procgen, Crafter) -> float32 in [0, 1], also inside Dict spaces.

    RLlib's default CNN encoders take float inputs; feeding uint8 frames fails in
    ``conv2d``. Other sub-spaces pass through unchanged.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = self._convert_space(env.observation_space)

    @staticmethod
    def _is_image(space: gym.Space) -> bool:
        return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8

    @classmethod
    def _convert_space(cls, space: gym.Space) -> gym.Space:
        if cls._is_image(space):
            return gym.spaces.Box(0.0, 1.0, shape=space.shape, dtype=np.float32)
        if isinstance(space, gym.spaces.Dict):
            return gym.spaces.Dict({k: cls._convert_space(v) for k, v in space.spaces.items()})
        return space

    @override
    def observation(self, observation: Any) -> Any:
        return self._convert(self.env.observation_space, observation)

    @classmethod
    def _convert(cls, space: gym.Space, obs: Any) -> Any:
        if cls._is_image(space):
            return np.asarray(obs, dtype=np.float32) * (1.0 / 255.0)
        if isinstance(space, gym.spaces.Dict):
            return {k: cls._convert(space.spaces[k], v) for k, v in obs.items()}
        return obs

    @classmethod
    def needed(cls, space: gym.Space) -> bool:
        """Whether ``space`` holds a uint8 image anywhere (then the wrapper is needed)."""
        return cls._convert_space(space) is not space


# ------------------------------------------------------------------------ registration
def curriculum_env_creator(
    wrapper: Callable[..., Any],
    family: str | Callable[..., Any],
    env_config: Mapping[str, Any] | None,
    service_name: str,
    curriculum: str,
    student: str = "default",
    *,
    namespace: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    field: str = "env.family",
    components: list[dict[str, Any]] | None = None,
    bus: str | None = None,
    stores: Mapping[str, str] | None = None,
) -> Callable[[Any], Any]:
    """RLlib's env creator for a curriculum wrapper (`CurriculumEnv`, `CurriculumMultiAgentEnv`).

    ``creator(ctx) -> wrapper(make_task_env(family, env_config), service_name, curriculum, student, ...)``.

    The creator is pickled to every EnvRunner; each env it builds connects to the runner
    process's shared client at its first reset (`openended.runtime.process_clients`).
    """
    cfg, opts = dict(env_config or {}), dict(client_options or {})
    extra: dict[str, Any] = {"components": list(components), "bus": bus} if components else {}
    if components and stores:
        extra["stores"] = dict(stores)

    def creator(_ctx: Any = None) -> Any:
        env = make_task_env(family, cfg, field=field)
        return wrapper(env, service_name, curriculum, student, namespace=namespace, client_options=opts, **extra)

    return creator


def register_curriculum_env(
    env_name: str,
    family: str | Callable[..., gym.Env],
    env_config: Mapping[str, Any],
    service_name: str,
    curriculum: str,
    student: str = "default",
    *,
    namespace: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    scale_images: bool = True,
    components: list[dict[str, Any]] | None = None,
    bus: str | None = None,
    stores: Mapping[str, str] | None = None,
    defer_outcomes: bool = False,
    mask_actions: bool = True,
) -> str:
    """Register ``env_name`` with ``ray.tune.registry.register_env``; return ``env_name``.

    Each env is ``CurriculumEnv(make_task_env(family, env_config), service_name, curriculum, student)``.

    ``family`` may be a callable returning a task env (it is pickled to the runners, so
    it must be importable there). ``scale_images`` turns uint8 image observations into
    float32 in [0, 1] (`ScaleImageObservations`). ``mask_actions``: an env whose observation
    has an ``action_mask`` entry (SC2) is wrapped in `MaskedObservations` (train it with
    ``build_algo_config(..., action_masking=True)``). ``defer_outcomes``: see `CurriculumEnv`
    (the algorithm's learner must then be `openended.runtime.level_scores.ScoringPPOLearner`).
    """
    from ray.tune.registry import register_env

    wrapper = functools.partial(CurriculumEnv, defer_outcomes=True) if defer_outcomes else CurriculumEnv
    make = curriculum_env_creator(
        wrapper,
        family,
        env_config,
        service_name,
        curriculum,
        student,
        namespace=namespace,
        client_options=client_options,
        field="register_curriculum_env.family",
        components=components,
        bus=bus,
        stores=stores,
    )

    def creator(ctx: Any = None) -> gym.Env:
        from openended.runtime.rllib_masking import MaskedObservations, has_action_mask

        env: gym.Env = make(ctx)
        if scale_images and ScaleImageObservations.needed(env.observation_space):
            env = ScaleImageObservations(env)
        if mask_actions and has_action_mask(env.observation_space):
            env = MaskedObservations(env)
        return env

    register_env(env_name, creator)
    return env_name


# ---------------------------------------------------------------------------- algo configs
#: CPU-friendly defaults. Measured on 2 cores with BipedalWalker: RLlib's PPO defaults
#: (30 epochs, minibatch 128) train at ~600 env steps/s; 2 env runners x 4 envs with
#: 5 epochs and minibatch 500 at ~2,700.
PPO_DEFAULTS: dict[str, Any] = {"num_epochs": 5, "minibatch_size": 500, "train_batch_size_per_learner": 4000}
SAC_DEFAULTS: dict[str, Any] = {"train_batch_size_per_learner": 256, "num_steps_sampled_before_learning_starts": 1000}


def default_cpus_per_env_runner(num_env_runners: int, cpus: float | None = None) -> float:
    """CPUs each env runner reserves: 1 when the runners fit in half the cluster, else the share that does.

    2 CPUs, 2 runners -> 0.5. Half is left for the driver's learner and the teacher
    service; a runner asking for a whole core on a 2-core box stays PENDING.
    """
    if num_env_runners <= 0:
        return 1.0
    if cpus is None:
        cpus = (
            float(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
            if ray.is_initialized()
            else float(os.cpu_count() or 1)
        )
    return float(min(1.0, max(MIN_CPUS_PER_ENV_RUNNER, cpus / (2 * num_env_runners))))


#: Project RLModules an experiment can name in ``algo.config.rl_module``.
NAMED_MODULES = ("vpt",)


def _named_module_spec(name: Any, model_config: Any, algo_key: str, action_masking: bool) -> Any:
    """The ``RLModuleSpec`` ``algo.config.rl_module`` names; `ConfigError` names the field."""
    if name not in NAMED_MODULES:
        raise ConfigError(f"algo.config.rl_module: one of {list(NAMED_MODULES)}, got {name!r}")
    if algo_key != "ppo" or action_masking:
        raise ConfigError(f"algo.config.rl_module: {name!r} is a PPO module without action masking")
    from openended.runtime.rllib_vpt import vpt_module_spec

    return vpt_module_spec(model_config)


def build_algo_config(
    algo: Literal["ppo", "sac"],
    env_name: str,
    overrides: Mapping[str, Any] | None = None,
    num_env_runners: int = 0,
    *,
    num_envs_per_env_runner: int = 1,
    num_cpus_per_env_runner: float | None = None,
    env_config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    flatten_observations: bool = False,
    components: list[dict[str, Any]] | None = None,
    bus: tuple[str, str | None] | None = None,
    stores: tuple[Mapping[str, str], str | None] | None = None,
    action_masking: bool = False,
    argument_usage: list[list[int]] | None = None,
) -> Any:
    """A PPO or SAC `AlgorithmConfig` (torch, CPU, one local learner) for ``env_name``.

    ``overrides`` are AlgorithmConfig attributes (``{"lr": 1e-4, "num_epochs": 3}``);
    ``model_config`` goes to ``rl_module(model_config=...)``; ``rl_module`` names a project
    RLModule (``vpt``: `openended.runtime.rllib_vpt`, PPO only). Unlike RLlib's
    ``update_from_dict``, an unknown key is an error naming a close match (a typo must not
    silently train with a default). ``num_env_runners=0`` samples in the driver process
    (breakpoints work). ``action_masking`` (PPO): the env's observations carry an
    ``action_mask`` (`openended.runtime.rllib_masking`); the policy never samples a masked
    action. ``argument_usage`` (with ``action_masking``; an env's ``action_argument_usage()``):
    which argument components each function of a ``MultiDiscrete([function, args...])``
    action takes; the others are left out of the log-probability. Returns the config; call
    ``.build_algo()``. RLlib's warnings nobody using openended can act on are
    filtered from here on (`openended.runtime.quiet`).
    """
    quiet_ray_logs()
    algo_key = str(algo).lower()
    config: AlgorithmConfig
    if algo_key == "ppo":
        from ray.rllib.algorithms.ppo import PPOConfig

        config = PPOConfig()
        defaults = dict(PPO_DEFAULTS)
    elif algo_key == "sac":
        from ray.rllib.algorithms.sac import SACConfig

        config = SACConfig()
        defaults = dict(SAC_DEFAULTS)
    else:
        raise ConfigError(f"build_algo_config.algo: must be one of ['ppo', 'sac'], got {algo!r}")
    if not isinstance(num_env_runners, int) or num_env_runners < 0:
        raise ConfigError(f"build_algo_config.num_env_runners: must be an int >= 0, got {num_env_runners!r}")
    overrides = dict(overrides or {})
    model_config = overrides.pop("model_config", None)
    rl_module = overrides.pop("rl_module", None)
    for key in overrides:
        if not hasattr(config, key):
            close = difflib.get_close_matches(key, [k for k in vars(config) if not k.startswith("_")], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"build_algo_config.overrides.{key}: not a {type(config).__name__} setting{hint}")
    check_algo_settings(config, overrides)
    if algo_key == "ppo" and "minibatch_size" not in overrides:
        # Cross-field default: a minibatch larger than the batch would silently be one batch.
        tb = overrides.get("train_batch_size_per_learner", defaults["train_batch_size_per_learner"])
        defaults["minibatch_size"] = min(defaults["minibatch_size"], int(tb))
    if algo_key == "ppo":
        tb = overrides.get("train_batch_size_per_learner", defaults["train_batch_size_per_learner"])
        mb = overrides.get("minibatch_size", defaults["minibatch_size"])
        if mb > tb:
            raise ConfigError(
                f"build_algo_config.overrides.minibatch_size: must be <= train_batch_size_per_learner ({tb}), got {mb}"
            )
    cpus = (
        num_cpus_per_env_runner if num_cpus_per_env_runner is not None else default_cpus_per_env_runner(num_env_runners)
    )
    config = (
        config.environment(env_name, env_config=dict(env_config or {}))
        .framework("torch")
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            num_cpus_per_env_runner=cpus,  # type: ignore[arg-type]  # RLlib says int; fractions are valid
        )
        .learners(num_learners=0, num_gpus_per_learner=0)
    )
    try:
        config.update_from_dict({**defaults, **overrides})
    except (ValueError, TypeError) as e:  # RLlib's own checks: name the section users edit
        raise ConfigError(f"algo.config: RLlib rejected the settings {sorted(overrides)}: {e}") from None
    if model_config is not None:
        config.rl_module(model_config=model_config)
    if rl_module is not None:
        config.rl_module(rl_module_spec=_named_module_spec(rl_module, model_config, algo_key, action_masking))
    if action_masking:
        if algo_key != "ppo":
            raise ConfigError(f"build_algo_config.action_masking: only PPO has a masking model, got algo {algo!r}")
        if flatten_observations:
            raise ConfigError("build_algo_config: action_masking flattens the observations itself; drop flatten")
        from openended.runtime.rllib_masking import ARGUMENT_USAGE_KEY, masked_module_spec

        config.rl_module(rl_module_spec=masked_module_spec())
        if argument_usage is not None:
            config.rl_module(model_config={**dict(model_config or {}), ARGUMENT_USAGE_KEY: argument_usage})
    if flatten_observations:
        # Dict/Tuple observations (Crafter: image + task id) -> one flat vector for the default encoders.
        config.env_runners(env_to_module_connector=_flatten_connector)
    if seed is not None:
        config.debugging(seed=seed)
    if components:
        from openended.runtime.learner import with_components

        config = with_components(config, list(components), bus=bus, stores=stores)
    return config


def _flatten_connector(env: Any, spaces: Any = None, device: Any = None) -> Any:
    from ray.rllib.connectors.env_to_module import FlattenObservations

    return FlattenObservations()


def needs_flattening(observation_space: gym.Space) -> bool:
    """Whether RLlib's default encoders need the observations flattened first."""
    return isinstance(observation_space, (gym.spaces.Dict, gym.spaces.Tuple))


#: RLlib timers kept in each metrics row (seconds per iteration).
_TIMERS = ("training_iteration", "env_runner_sampling_timer", "learner_update_timer", "synch_weights")


def learner_stats(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the learner did in one ``algo.train()``: ``{"learner": {module: stats}, "timers": {...}}``.

    Per RLModule, every scalar RLlib reports except counters and throughputs: for PPO
    ``policy_loss``, ``vf_loss``, ``total_loss``, ``entropy``, ``mean_kl_loss``,
    ``curr_kl_coeff``, ``vf_explained_var``, ``default_optimizer_learning_rate``,
    ``gradients_default_optimizer_global_norm``...; timers in seconds plus the learner's
    ``env_steps_trained_per_s``. Names are RLlib's own, so its docs explain them.
    """
    learners = result.get("learners") or {}
    per_module: dict[str, dict[str, float]] = {}
    for module_id, stats in learners.items():
        if module_id == "__all_modules__" or not isinstance(stats, Mapping):
            continue
        keep = {
            str(k): float(v)
            for k, v in stats.items()
            if _finite_scalar(v) and not str(k).startswith("num_") and "throughput" not in str(k)
        }
        if keep:
            per_module[str(module_id)] = keep
    raw_timers = result.get("timers") or {}
    timers = {k: float(raw_timers[k]) for k in _TIMERS if _finite_scalar(raw_timers.get(k))}
    throughput: Any = (learners.get("__all_modules__") or {}).get("num_env_steps_trained_throughput")
    if _finite_scalar(throughput):
        timers["env_steps_trained_per_s"] = float(throughput)
    out: dict[str, Any] = {}
    if per_module:
        out["learner"] = per_module
    if timers:
        out["timers"] = timers
    return out


def _finite_scalar(v: Any) -> bool:
    try:
        return not isinstance(v, (bool, str, Mapping)) and np.ndim(v) == 0 and bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def algo_step_counts(result: Mapping[str, Any]) -> tuple[int, int]:
    """``(env steps, episodes)`` sampled over the algorithm's life, from ``algo.train()``.

    Reads ``env_runners/num_env_steps_sampled_lifetime`` (the learner's trained-steps
    counter is multiplied by the epochs and is not an env step count).
    """
    er = result.get("env_runners", {}) or {}
    return int(er.get("num_env_steps_sampled_lifetime", 0) or 0), int(er.get("num_episodes_lifetime", 0) or 0)
