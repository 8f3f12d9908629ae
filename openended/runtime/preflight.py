"""Everything a run can reject, checked in the driver before Ray starts (`openended check` and `run`).

Why one function for both commands: a value ``check`` passes must not stop the run after
Ray, the teacher service and the pools have started (``plr`` on a Box space, ``num_epochs:
-3``, 100,000 env runners on a laptop). `preflight` does, in this process and without Ray:

1. builds the task space from ``env.config`` (the family's own checks, size limits
   included), errors named ``env.config``;
2. builds the teacher once, exactly as the teacher service will (registry, preset,
   ``teacher_config``), and closes it: space compatibility and the teacher's own
   cross-field checks, errors named ``teacher``;
3. for RLlib learners, builds the ``AlgorithmConfig`` with the run's settings, types and
   ranges them (`openended.runtime.algo_settings`) and runs RLlib's ``validate()``;
4. on embedded Ray, checks that the requested actors fit the CPUs it will have (Ray would
   otherwise leave them pending forever).

Field-level checks (types, ranges, safe names) are already done by `load_experiment`.
"""

from __future__ import annotations

import os

from openended.config import Experiment, teacher_config
from openended.errors import ConfigError, Error, TaskNotInSpace
from openended.tasks import TaskSpace

__all__ = ["preflight", "check_task_space", "check_teacher", "check_algo", "check_resources"]


def preflight(exp: Experiment) -> TaskSpace:
    """Run every check in order; return the experiment's task space. Raises `ConfigError` naming the field."""
    space = check_task_space(exp)
    if exp.scenario is not None:
        from openended.runtime.scenario_run import scenario_task_values

        scenario_task_values(exp.scenario, space, exp.env.family)
    check_teacher(exp, space)
    check_algo(exp)
    check_resources(exp)
    return space


def check_task_space(exp: Experiment) -> TaskSpace:
    """The family's task space under ``env.config``; its constructor's refusals name ``env.config``."""
    from openended.envs.registry import env_task_space

    try:
        return env_task_space(exp.env.family, **exp.env.config)
    except ConfigError as e:
        raise ConfigError(_field("env.config", e)) from None
    except (TypeError, ValueError, TaskNotInSpace) as e:  # an unknown keyword, a value the env refuses
        raise ConfigError(f"env.config: {_one_line(e)}") from None
    except MemoryError:
        raise ConfigError(_too_big("env.config")) from None


def check_teacher(exp: Experiment, space: TaskSpace) -> None:
    """Build (and close) the teacher the service would build for this space: compatibility and its own checks."""
    from openended.teachers.registry import make_teacher, teacher_class

    cls = teacher_class(exp.teacher.name)
    if space.kind not in cls.space_kinds:
        raise ConfigError(
            f"teacher.name: {cls.name!r} works on {'/'.join(cls.space_kinds)} task spaces; env family "
            f"{exp.env.family!r} gives a {space.kind} space ({space!r}); choose another teacher or family"
        )
    try:
        teacher = make_teacher(exp.teacher.name, space, preset=exp.teacher.preset, **teacher_config(exp))
    except Error as e:
        raise ConfigError(_field("teacher", e)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"teacher.config: {_one_line(e)}") from None
    except MemoryError:
        raise ConfigError(_too_big("teacher.config")) from None
    teacher.close()


def check_algo(exp: Experiment) -> None:
    """RLlib settings through RLlib's own config object (typed, ranged, ``validate()``); no Ray."""
    if exp.algo.name == "none":
        return
    from openended.runtime.algo_settings import validate_rllib_config
    from openended.runtime.rllib import build_algo_config

    cfg = build_algo_config(
        exp.algo.name,
        "openended-check",
        exp.algo.config,
        exp.algo.num_env_runners,
        num_envs_per_env_runner=exp.algo.num_envs_per_env_runner,
        num_cpus_per_env_runner=1.0,  # the real share is set at run time; validate() only needs a number
        seed=exp.seed,
    )
    validate_rllib_config(cfg)


def check_resources(exp: Experiment, cpus: float | None = None) -> None:
    """On embedded Ray, the run's actors must fit its CPUs (``ray.num_cpus``, default: this machine's).

    Env runners reserve at least 0.1 CPU each, pools ``resources.pool_cpus`` each; more than
    fits would wait for resources forever. On a cluster (``ray.address``) the cluster decides.
    """
    if exp.ray.address is not None or os.environ.get("RAY_ADDRESS"):
        return
    have = float(cpus if cpus is not None else exp.ray.num_cpus or os.cpu_count() or 1)
    if exp.algo.name != "none":
        most = int(have / MIN_CPUS_PER_ENV_RUNNER)
        if exp.algo.num_env_runners * len(exp.students) > most:
            raise ConfigError(
                f"algo.num_env_runners: {exp.algo.num_env_runners} runners x {len(exp.students)} students need "
                f"at least {MIN_CPUS_PER_ENV_RUNNER} CPU each; embedded Ray has {have:g} CPUs (ray.num_cpus), "
                f"so at most {most} in all"
            )
        return
    n_pools = exp.pool.pools_per_student * len(exp.students)
    per_pool = exp.resources.pool_cpus
    if n_pools * per_pool > have:
        raise ConfigError(
            f"pool.pools_per_student: {n_pools} pools ({exp.pool.pools_per_student} x {len(exp.students)} students) "
            f"reserve {per_pool:g} CPU each (resources.pool_cpus); embedded Ray has {have:g} CPUs (ray.num_cpus), "
            f"so at most {int(have / per_pool)} pools in all"
        )


#: The least an env runner reserves (`openended.runtime.rllib.default_cpus_per_env_runner`).
MIN_CPUS_PER_ENV_RUNNER = 0.1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _field(section: str, e: BaseException) -> str:
    """The error's message, prefixed with ``section`` unless it already names a field there."""
    msg = _one_line(e)
    return msg if msg.startswith(section) else f"{section}: {msg}"


def _too_big(field: str) -> str:
    """The refusal for a build that ran out of memory: a size in ``field`` asks for more than the machine has."""
    return f"{field}: building it needs more memory than this machine has; a size or count in {field} is too large"
