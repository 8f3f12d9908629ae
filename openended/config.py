"""The experiment file: one YAML, validated once, before Ray starts.

Small composed pydantic models (``extra="forbid"`` catches typos); a bad value stops
with the dotted YAML path, the value and the allowed set, e.g.::

    teacher.name: unknown teacher 'alp-gmn'. Did you mean 'alp_gmm'? ...
    run.iterations: Input should be greater than or equal to 1, got 0

``--set key.path=value`` overrides are applied to the raw YAML before validation, so
they are checked exactly like file values.
"""

from __future__ import annotations

import copy
import pathlib
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openended.errors import ConfigError, UnknownName
from openended.metrics.scenario import ScenarioConfig
from openended.validation import validate_model

__all__ = ["Experiment", "load_experiment", "apply_overrides", "parse_override", "teacher_config"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: The largest master seed: derived seeds (``seed + 1,000,000 x pool`` and env indices) must stay
#: valid for every seeded library the run uses (procgen and gymnasium's legacy seeding take 32 bits).
MAX_SEED = 2**31 - 1

#: Names that become parts of paths (the run folder, checkpoint files): 1-64 letters, digits,
#: ``.``, ``_`` or ``-``, starting with a letter or digit, so no name can lead out of a folder.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def safe_name(value: str) -> str:
    """``value`` if it is a `SAFE_NAME`, else ``ValueError`` saying what is allowed."""
    if not SAFE_NAME.match(value):
        raise ValueError(
            "becomes part of a file or folder name; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


class EnvSection(_Model):
    """Which environment family runs the episodes."""

    family: str = Field(
        description="Registered env family (see `openended envs`) or your own as 'package.module:Callable'."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Keyword config for the family.")


class TeacherSection(_Model):
    """Which teacher proposes the tasks."""

    name: str = Field(
        description="Registered teacher (see `openended teachers`) or your own as 'package.module:Class'."
    )
    preset: str | None = Field(None, description="A documented preset, e.g. teachdeeprl.")
    config: dict[str, Any] = Field(default_factory=dict, description="Teacher config fields.")
    students: Literal["separate", "shared"] = Field(
        "separate", description="Per-student teacher state, or one state shared by all students."
    )


class AlgoSection(_Model):
    """Who learns: the env's own simulated student, or an RLlib algorithm.

    ``none`` = the env's own simulated student (toy) driven by EnvPool actors with the pool
    policy; ``ppo``/``sac`` = RLlib on the new API stack.
    """

    name: Literal["none", "ppo", "sac"] = Field("none", description="none | ppo | sac.")
    config: dict[str, Any] = Field(default_factory=dict, description="RLlib AlgorithmConfig overrides.")
    num_env_runners: int = Field(0, ge=0, le=1024, description="RLlib env runners (0 = sample in the driver).")
    num_envs_per_env_runner: int = Field(1, ge=1, le=1024, description="Vectorised envs per runner.")
    flatten_observations: bool | None = Field(
        None, description="Flatten Dict/Tuple observations for RLlib's default encoders (None: when needed)."
    )


class PoolSection(_Model):
    """EnvPool actors (algo none)."""

    pools_per_student: int = Field(1, ge=1, le=1024, description="EnvPool actors per student.")
    envs_per_pool: int = Field(1, ge=1, le=4096, description="Envs stepped as a vector in each pool.")
    steps_per_call: int = Field(100, ge=1, le=1_000_000, description="Env steps per env per remote call.")
    policy: Literal["random"] = Field("random", description="Action source for pool envs.")


class RunSection(_Model):
    """How long, and how often to checkpoint."""

    iterations: int = Field(20, ge=1, description="Training iterations (pool: step calls; RLlib: train()).")
    checkpoint_every: int = Field(5, ge=1, description="Checkpoint teacher (and algo) every N iterations.")
    dir: str = Field("runs", description="Parent folder of run directories.")
    progress: bool = Field(True, description="Show a live progress table on a terminal.")


class EvaluationSection(_Model):
    """Held-out evaluation of the learner (RLlib algos): deterministic policy, one episode per test task."""

    every: int = Field(0, ge=0, description="Evaluate every N iterations (0: never; the last iteration too).")
    test_set: Literal["grid", "uniform", "held_out", "teacher"] = Field(
        "grid",
        description="grid (Stump Tracks 10x10), uniform (seed 4222), held_out (e.g. Procgen test levels) or "
        "teacher (every task the teacher knows: OMNI's evaluation sweep).",
    )
    max_tasks: int = Field(100, ge=1, description="At most this many test tasks.")
    max_steps: int = Field(2000, ge=1, description="Step cap per test episode.")
    episodes_per_task: int = Field(1, ge=1, description="Test episodes per task (OMNI: 20).")
    max_envs: int = Field(64, ge=1, description="Test envs alive at once (the sweep runs in chunks of this many).")
    report_to_teacher: bool = Field(
        False,
        description="Send the test episodes to the teacher flagged info.eval=True, in one report per sweep "
        "(OMNI's protocol: LP with recompute_unit evaluations steps on each sweep).",
    )


class WandbSection(_Model):
    """Weights & Biases (extra ``wandb``): the run's metrics rows as a W&B run named after the run directory."""

    project: str = Field(description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user); None: your default.")
    mode: Literal["online", "offline", "disabled"] = Field("online", description="online | offline | disabled.")


class MLflowSection(_Model):
    """MLflow (extra ``mlflow``): the run's metrics rows and numeric settings as an MLflow run."""

    tracking_uri: str | None = Field(None, description="Tracking server or store; None: RUN_DIR/mlruns.")
    experiment: str | None = Field(None, description="MLflow experiment; None: the experiment's name.")


class LoggingSection(_Model):
    """Where metrics rows go besides metrics.jsonl (curriculum and learner metrics, one step per iteration)."""

    tensorboard: bool = Field(True, description="TensorBoard event files in RUN_DIR/tensorboard.")
    wandb: WandbSection | None = Field(None, description="Weights & Biases run (extra wandb); None: off.")
    mlflow: MLflowSection | None = Field(None, description="MLflow run (extra mlflow); None: off.")


class RayInit(_Model):
    """Where Ray runs."""

    address: str | None = Field(None, description="Existing cluster address; None = embedded local Ray.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for embedded Ray (default: all).")
    namespace: str = Field("openended", description="Ray namespace of the run's named actors.")
    temp_dir: str | None = Field(None, description="Ray temp dir (default: short path under /tmp).")


class ResourcesSection(_Model):
    """Where the run's actors go on a cluster; a laptop needs none of it (see docs/cluster.md)."""

    env_host: str | None = Field(
        None,
        description="Custom resource the EnvPools need: only nodes that offer it host them "
        "(`ray start --resources='{\"env_host\": 1}'`). An embedded Ray offers it itself.",
    )
    pools_per_host: int = Field(
        1, ge=1, le=100, description="EnvPools one unit of `env_host` holds (Ray counts resources in 1e-4 steps)."
    )
    spread: bool = Field(True, description="Spread EnvPools over nodes instead of packing them.")
    pool_cpus: float = Field(0.5, gt=0, le=256, description="CPUs each EnvPool reserves.")
    service_on_driver_node: bool = Field(
        True,
        description="Keep the teacher service on the driver's node (the head for a submitted job); "
        "false: anywhere, restarted on another node if its node is lost.",
    )
    service_detached: bool = Field(
        False,
        description="The teacher service outlives its driver (a stopped job's teacher stays queryable); "
        "`--resume` or a resubmitted job takes the live service over instead of starting a second one.",
    )
    service_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Threads serving the teacher service's calls. 1: one call at a time (the lowest cost per "
        "call). More: reports that arrive while one is applied queue and go in together as one teacher update "
        "(one refit for all of them), which lifts a busy ALP-GMM service's outcomes/s.",
    )

    service_socket: Literal["node", "cluster", "off"] = Field(
        "node",
        description="How env hosts make the teacher service's hot calls (tasks, outcomes): 'node': over a "
        "socket on the service node's loopback, ~5x cheaper a call than Ray's (hosts on other nodes use Ray "
        "calls); 'cluster': a socket on every interface of that node, guarded by a secret handed out over Ray, "
        "for clusters whose env hosts run elsewhere (their nodes must reach it on a TCP port the OS picks); "
        "'off': Ray calls only.",
    )

    @field_validator("service_socket", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @property
    def service_wire_host(self) -> str | None:
        """Where the service's socket listens (`TeacherServiceActor` ``wire_host``) for ``service_socket``."""
        return {"node": "127.0.0.1", "cluster": "0.0.0.0", "off": None}[self.service_socket]

    @field_validator("env_host")
    @classmethod
    def _resource_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or value in ("CPU", "GPU", "memory", "object_store_memory")):
            raise ValueError("must name a custom resource, not empty or one of CPU, GPU, memory")
        return value


class Experiment(_Model):
    """A whole run."""

    name: str = Field(description="Run name (used in the run directory name; letters, digits, . _ -).")
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="Master seed, 0 .. 2**31-1: teacher, envs and algo seeds derive from it.",
    )
    env: EnvSection
    teacher: TeacherSection
    students: list[str] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        max_length=256,
        description="Student ids (letters, digits, . _ -); each gets its own pools / learner.",
    )
    algo: AlgoSection = Field(default_factory=AlgoSection)
    pool: PoolSection = Field(default_factory=PoolSection)
    run: RunSection = Field(default_factory=RunSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    components: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Lifelong-learning components: [{class: 'pkg.module:Class' or a name, config: {...}}].",
    )
    scenario: ScenarioConfig | None = Field(
        None,
        description="A lifelong scenario (train / evaluation blocks over tasks); its teacher is 'scenario'.",
    )
    logging: LoggingSection = Field(default_factory=LoggingSection)
    ray: RayInit = Field(default_factory=RayInit)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)

    @field_validator("name")
    @classmethod
    def _safe_run_name(cls, value: str) -> str:
        return safe_name(value)

    @field_validator("students")
    @classmethod
    def _safe_student_names(cls, value: list[str]) -> list[str]:
        for i, student in enumerate(value):
            try:
                safe_name(student)
            except ValueError as e:
                raise ValueError(f"students[{i}] {student!r} {e}") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _scenario_teacher(cls, data: Any) -> Any:
        """A scenario run's teacher is the scenario's: ``teacher:`` may be left out."""
        if isinstance(data, dict) and data.get("scenario") is not None and data.get("teacher") is None:
            data = {**data, "teacher": {"name": "scenario"}}
        return data

    @model_validator(mode="after")
    def _students_unique(self) -> Experiment:
        if len(set(self.students)) != len(self.students):
            raise ValueError(f"students must be unique, got {self.students}")
        if self.evaluation.every and self.algo.name == "none":
            raise ValueError(
                "evaluation.every needs an RLlib learner (algo.name ppo or sac); the toy's "
                "simulated student reports its own mastery"
            )
        if self.scenario is not None:
            _check_scenario_run(self)
        return self


def _check_scenario_run(exp: Experiment) -> None:
    """What a scenario run needs of the rest of the experiment (`openended.runtime.scenario_run`)."""
    if exp.teacher.name not in ("scenario", "lifelong_scenario"):
        raise ValueError(
            f"teacher.name: a scenario decides the tasks, so its teacher is 'scenario' (got {exp.teacher.name!r}); "
            "remove the teacher section or set teacher.name: scenario"
        )
    if exp.algo.name == "none":
        raise ValueError("scenario: needs an RLlib learner (algo.name ppo or sac): evaluation blocks run its policy")
    if len(exp.students) != 1:
        raise ValueError(f"scenario: runs one student, got students {exp.students}")
    if exp.evaluation.every:
        raise ValueError("evaluation.every: a scenario has its own evaluation blocks; set evaluation.every: 0")
    batch_mode = exp.algo.config.get("batch_mode", "complete_episodes")
    if batch_mode != "complete_episodes":
        raise ValueError(
            f"algo.config.batch_mode: a scenario samples complete episodes (no episode spans two blocks), "
            f"got {batch_mode!r}; remove it"
        )


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"teacher.config.fit_rate=100"`` -> (["teacher","config","fit_rate"], 100) (YAML-typed)."""
    if not isinstance(item, str):
        raise ConfigError(f"--set: expected a 'key.path=value' string, got {item!r}")
    key, sep, raw = item.partition("=")
    path = key.strip().split(".")
    if not sep or not all(p.strip() for p in path):
        raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. --set run.iterations=10")
    if not raw.strip():
        return path, None
    try:
        return path, yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({yaml_problem(e)})") from None


def yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's several-line error as one line: ``"expected ',' or ']' at line 1, column 6"``."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e).split("\n", 1)[0]
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A deep copy of ``data`` with each ``--set key.path=value`` applied in order.

    Missing intermediate sections are created; a path through a non-mapping value raises
    `ConfigError` naming it.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for p in path[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is not a mapping in the experiment")
            node = child
        node[path[-1]] = value
    return out


def _check_names(exp: Experiment) -> None:
    """Registry names are checked here so a typo fails before Ray starts."""
    from openended.envs.registry import env_entry
    from openended.teachers.registry import teacher_class

    for path, fn, name in (
        ("teacher.name", teacher_class, exp.teacher.name),
        ("env.family", env_entry, exp.env.family),
    ):
        try:
            fn(name)
        except (UnknownName, ConfigError) as e:  # a plugin's import path names its own failure
            raise ConfigError(f"{path}: {e}") from None
    _check_teacher_config(exp)
    if exp.components:
        from openended.components.registry import check_component_specs

        classes = check_component_specs(exp.components)
        for i, cls in enumerate(classes):
            if getattr(cls, "needs_policy_evaluation", False) and exp.scenario is not None:
                raise ConfigError(
                    f"components[{i}] ({cls.__name__}): a scenario has its own evaluation blocks; remove it"
                )
            if getattr(cls, "needs_policy_evaluation", False) and exp.algo.name == "none":
                raise ConfigError(
                    f"components[{i}] ({cls.__name__}): evaluation blocks need an RLlib learner "
                    "(algo.name ppo or sac); the toy's simulated student reports its own mastery"
                )


def _check_evaluation(exp: Experiment) -> None:
    """What held-out evaluation cannot run is rejected here, before Ray starts, not after an iteration."""
    from openended.envs.registry import is_multi_agent_family

    if exp.evaluation.every and is_multi_agent_family(exp.env.family):
        raise ConfigError(
            f"evaluation.every: held-out evaluation does not support multi-agent families yet "
            f"({exp.env.family!r} is a PettingZoo family); set evaluation.every: 0"
        )


def _importable(module: str) -> bool:
    """Whether ``module`` is imported or could be (found without importing it)."""
    import importlib.util
    import sys

    return module in sys.modules or importlib.util.find_spec(module) is not None


def _check_logging(exp: Experiment) -> None:
    """An exporter switched on without its package is refused before Ray starts, naming the extra."""
    wanted: list[tuple[str, str, str, object]] = [
        ("logging.wandb", "wandb", "wandb", exp.logging.wandb),
        ("logging.mlflow", "mlflow", "mlflow", exp.logging.mlflow),
        ("logging.tensorboard", "tensorboardX", "runtime", exp.logging.tensorboard or None),
    ]
    for field, module, extra, section in wanted:
        if section is not None and not _importable(module):
            raise ConfigError(
                f"{field}: needs the {module!r} package; pip install 'openended[{extra}]' or switch it off"
            )


def _preset_values(exp: Experiment) -> dict[str, Any]:
    """The values of ``teacher.preset`` (empty without one); an unknown preset is a `ConfigError`."""
    from openended.registry import normalize_name
    from openended.teachers.registry import teacher_class

    if exp.teacher.preset is None:
        return {}
    cls = teacher_class(exp.teacher.name)
    key = normalize_name(exp.teacher.preset)
    if key not in cls.PRESETS:
        raise ConfigError(
            f"teacher.preset: unknown preset {exp.teacher.preset!r} for {cls.name!r}; choose one "
            f"of {sorted(cls.PRESETS) or 'none (this teacher has no presets)'}"
        )
    return dict(cls.PRESETS[key])


def teacher_config(exp: Experiment) -> dict[str, Any]:
    """The teacher's config as a run builds it.

    Layered in order: the master seed, what the env family supplies, then
    ``teacher.config`` (the preset is applied by the teacher registry).

    What the family supplies: its task validator (`openended.envs.registry.env_task_validator`,
    an import path) for a teacher whose config has a ``validator`` field, and its task
    editor (`env_task_editor`) for one with an ``editor`` field (ACCEL), unless the
    experiment or the preset sets one (``validator: null`` / ``editor: null`` turns it off).
    Teachers stay env-agnostic; the experiment is where a family meets a teacher.
    """
    from openended.envs.registry import env_task_editor, env_task_validator
    from openended.teachers.registry import teacher_class

    values: dict[str, Any] = {"seed": exp.seed}
    fields = teacher_class(exp.teacher.name).Config.model_fields
    for field, hook in (("validator", env_task_validator), ("editor", env_task_editor)):
        if field in fields and field not in exp.teacher.config and field not in _preset_values(exp):
            path = hook(exp.env.family)
            if path is not None:
                values[field] = path
    values.update(exp.teacher.config)
    return values


def _check_teacher_config(exp: Experiment) -> None:
    """Validate teacher.config (+ preset) against the teacher's own model, without building it."""
    from openended.teachers.registry import teacher_class

    cls = teacher_class(exp.teacher.name)
    validate_model(cls.Config, {**_preset_values(exp), **teacher_config(exp)}, prefix="teacher.config")


def load_experiment(source: str | pathlib.Path | dict, overrides: list[str] | None = None) -> Experiment:
    """Read, override, validate. Raises `ConfigError` naming the field on any problem."""
    if isinstance(source, dict):
        data = source
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise ConfigError(f"experiment file {str(path)!r} does not exist (see experiments/ for examples)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({yaml_problem(e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (name, env, teacher, ...)")
    data = apply_overrides(data, overrides or [])
    exp = validate_model(Experiment, data, prefix="")
    _check_names(exp)
    _check_evaluation(exp)
    _check_logging(exp)
    return exp
