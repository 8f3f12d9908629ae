"""Every bad value is refused before Ray starts, and every public entry point names the bad argument.

`openended check` (and `run`, which calls the same `preflight` before Ray) against the
values issue 18 found passing ``check`` and failing the run; the Python API against the
bad calls it found raising ``AttributeError``/``KeyError``/``TypeError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from support import bounded_address_space, teacher_spaces

from openended.cli import main
from openended.config import load_experiment
from openended.errors import (
    ConfigError,
    Error,
    InvalidArgument,
    InvalidOutcome,
    TaskNotInSpace,
    TeacherStateError,
)
from openended.runtime.preflight import check_resources, preflight
from openended.tasks import Box, Discrete, Outcome, Task, TextSpace
from openended.teachers import make_teacher

TOY = "experiments/toy_alpgmm.yaml"
CRAFTER = "experiments/crafter_webrl.yaml"
PROCGEN = "experiments/procgen_plr.yaml"


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``openended check`` in this process: (exit status, stderr)."""
    rc = main(["check", *argv])
    return rc, capsys.readouterr().err


# ------------------------------------------------------------ before Ray: check == run
@pytest.mark.parametrize(
    ("path", "override", "message"),
    [
        (TOY, "teacher.name=plr", "teacher.name: 'plr' works on discrete task spaces"),
        (TOY, "seed=-1", "seed: Input should be greater than or equal to 0"),
        (TOY, "seed=99999999999999999999", "seed: Input should be less than or equal to 2147483647"),
        (TOY, "env.config.n_dims=9", "n_cells ** n_dims = 10 ** 9 cells is more than 10,000,000"),
        (TOY, "env.config.n_dims=1000000000", "n_cells ** n_dims = 10 ** 1000000000 cells"),
        (TOY, "env.config.extra_dims=100000", "ToyLearner.extra_dims: at most 1024"),
        (TOY, "teacher.config={a: [}", "--set 'teacher.config={a: [}': the value is not valid YAML"),
        (TOY, "pool.pools_per_student=1000", "pool.pools_per_student: 1000 pools"),
        (TOY, "teacher.config.seed=-5", "teacher.config.seed: Input should be greater than or equal to 0"),
        (PROCGEN, "algo.config.lr=fast", "algo.config.lr: must be > 0, got 'fast'"),
        (PROCGEN, "algo.config.lr=-1", "algo.config.lr: must be > 0, got -1"),
        (PROCGEN, "algo.config.gamma=2", "algo.config.gamma: must be in [0, 1], got 2"),
        (PROCGEN, "algo.config.num_epochs=-3", "algo.config.num_epochs: must be an int >= 1, got -3"),
        (PROCGEN, "algo.config.minibatch_size=big", "algo.config.minibatch_size: must be an int >= 1, got 'big'"),
        (PROCGEN, "algo.config.use_gae=maybe", "algo.config.use_gae: must be true or false"),
        (PROCGEN, "algo.config.lr=[[0, 0.001], [100, -1]]", "algo.config.lr[1][1]: must be > 0, got -1"),
        (PROCGEN, "algo.num_env_runners=100000", "algo.num_env_runners: Input should be less than or equal to 1024"),
        (PROCGEN, "algo.num_env_runners=500", "algo.num_env_runners: 500 runners x 1 students"),
        (PROCGEN, "teacher.config.buffer_size=1000", "teacher.plr.buffer_size: must be at most the number of levels"),
        (TOY, "teacher.config.alp_max_size=1000000000000", "alp_max_size: Input should be less than or equal to"),
        (CRAFTER, "env.config.impossible=1000000000000", "env.crafter.impossible: must be a whole number in 0.."),
    ],
)
def test_check_refuses_what_the_run_would_refuse_in_one_line(capsys, path, override, message):
    t0 = time.perf_counter()
    rc, err = check(capsys, path, "--set", override, "--set", "ray.num_cpus=2")
    assert rc == 2, err
    # (RLlib's import can leave a logging handler on an earlier captured stream; its noise is
    # not ours: the real CLI's stderr is checked in a subprocess below.)
    # Pydantic field errors keep the project's format: the headline, then one line per field.
    errors = [line for line in err.splitlines() if line.startswith("openended check: error:")]
    assert len(errors) == 1 and message in err[err.index(errors[0]) :], err
    assert time.perf_counter() - t0 < 60  # n_dims=1e9 used to run for minutes


def test_a_build_that_runs_out_of_memory_is_refused_naming_the_section(monkeypatch):
    """What no bound catches: the teacher's build raises MemoryError; `check` names teacher.config."""
    import openended.teachers.registry as registry

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 21.8 TiB")

    monkeypatch.setattr(registry, "make_teacher", out_of_memory)
    with pytest.raises(ConfigError, match=r"^teacher\.config: building it needs more memory than this machine has"):
        preflight(load_experiment(TOY))


def test_check_still_accepts_every_shipped_experiment(capsys):
    import pathlib

    for path in sorted(pathlib.Path("experiments").glob("*.yaml")):
        exp = load_experiment(path)
        try:
            preflight(exp)
        except Error as e:  # an optional env package absent here: named, never a crash
            assert "pip install" in str(e) or "not installed" in str(e), (path, e)


def test_run_calls_the_same_preflight_before_ray(tmp_path):
    """`openended run` refuses what `check` refuses, before creating a run directory or starting Ray."""
    for override, message in [
        ("teacher.name=plr", "teacher.name: 'plr' works on discrete task spaces"),
        ("algo.name=ppo", "algo.config.num_epochs: must be an int >= 1, got -3"),
    ]:
        res = subprocess.run(
            [sys.executable, "-m", "openended.cli", "run", TOY, "--set", override, "--set", "algo.config.num_epochs=-3"]
            + ["--run-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines()[-1].startswith(f"openended run: error: {message}"), res.stderr
        assert "Traceback" not in res.stderr
        assert list(tmp_path.iterdir()) == []  # nothing created, no Ray started


def test_submit_refuses_before_contacting_the_cluster(capsys):
    t0 = time.perf_counter()
    rc = main(["submit", TOY, "--address", "http://127.0.0.1:9", "--set", "teacher.name=plr"])
    err = capsys.readouterr().err
    assert rc == 2 and "teacher.name: 'plr' works on discrete task spaces" in err
    assert time.perf_counter() - t0 < 60  # no job client was built, nothing waited on the address


def test_a_yaml_file_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nenv: {family: toy\n")
    rc, err = check(capsys, str(bad))
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "not valid YAML" in err and "line" in err


def test_resources_are_checked_against_the_cpus_embedded_ray_will_have():
    exp = load_experiment(TOY, ["pool.pools_per_student=4"])
    check_resources(exp, cpus=2.0)  # 4 pools x 0.5 CPU fit in 2
    with pytest.raises(ConfigError, match=r"pool.pools_per_student: 5 pools .* at most 4 pools"):
        check_resources(load_experiment(TOY, ["pool.pools_per_student=5"]), cpus=2.0)
    on_cluster = load_experiment(TOY, ["pool.pools_per_student=5", "ray.address=auto"])
    check_resources(on_cluster, cpus=2.0)  # a cluster's CPUs are the cluster's business


# ---------------------------------------------------------------------- Python API
@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: TextSpace(["a"], max_length=3).task("abcdef"), TaskNotInSpace, "more than max_length=3"),
        (lambda: TextSpace(["a"]).task(""), TaskNotInSpace, "must not be empty"),
        (lambda: TextSpace(["a"]).task(7), TaskNotInSpace, "must be a string, got int"),
        (lambda: TextSpace(["a"]).task("ok \ud800"), TaskNotInSpace, "character 3 .* is a lone surrogate"),
        (lambda: TextSpace(["abcdef"], max_length=3), ConfigError, r"TextSpace.seed_tasks\[0\]: .*max_length=3"),
        (lambda: TextSpace([""]), ConfigError, r"TextSpace.seed_tasks\[0\]: .*must not be empty"),
        (lambda: TextSpace([3]), ConfigError, r"TextSpace.seed_tasks\[0\]: .*must be a string"),
        (lambda: TextSpace("one text"), ConfigError, "TextSpace.seed_tasks must be a list of task texts"),
        (lambda: TextSpace(["a"], max_length="long"), ConfigError, "TextSpace.max_length must be an int >= 1"),
        (lambda: Task.from_text(None), InvalidArgument, r"Task.from_text\(text\): must be a string"),
        (lambda: Task.from_text("\udfff"), InvalidArgument, "lone surrogate"),
        (lambda: Discrete(10**9), ConfigError, "Discrete: at most 1,000,000 values"),
        (lambda: Discrete("abc"), ConfigError, "Discrete: values must be a count or a list"),
        (lambda: Box(["a"], [1]), ConfigError, "Box: low and high must be sequences of numbers"),
        (lambda: Box(np.zeros(5000), np.ones(5000)), ConfigError, "Box: at most 4096 dimensions"),
        (lambda: Outcome("t", math.inf), InvalidOutcome, "episode_return is infinite"),
        (lambda: Outcome("t", -math.inf), InvalidOutcome, "episode_return is infinite"),
        (lambda: Outcome("t", math.nan), InvalidOutcome, "episode_return is NaN"),
        (lambda: Outcome("t", "1.0"), InvalidOutcome, "episode_return must be a number, got '1.0'"),
        (lambda: Outcome("t", None), InvalidOutcome, "episode_return must be a number, got None"),
        (lambda: Outcome(None, 1.0), InvalidOutcome, "task_id must be a non-empty string"),
        (lambda: make_teacher("random", Box([0], [1]), seed=-1), ConfigError, "teacher.random.seed: .*>= 0|greater"),
        (lambda: make_teacher("alp_gmm", Box([0], [1]), seed=2**40), ConfigError, "teacher.alp_gmm.seed"),
    ],
)
def test_public_entry_points_refuse_bad_input_naming_the_argument(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_nan_and_inf_outcomes_are_project_errors_that_old_handlers_still_catch():
    for bad in (math.nan, math.inf):
        with pytest.raises(TaskNotInSpace):  # what NaN raised before
            Outcome("t", bad)
        with pytest.raises(ValueError):
            Outcome("t", bad)


TEACHERS = teacher_spaces()


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_update_refuses_what_is_not_a_batch_of_outcomes_and_counts_nothing(name):
    with make_teacher(name, TEACHERS[name], seed=0) as teacher:
        task = teacher.sample(1)[0]
        before = teacher.stats()["outcomes"]
        for bad, message in [
            (None, r"update\(outcomes\): must be a sequence of Outcome, got NoneType"),
            ("abc", r"update\(outcomes\): must be a sequence of Outcome, got str"),
            ({"task_id": task.id}, r"got dict"),
            ([Outcome(task.id, 1.0), 1], r"update\(outcomes\)\[1\]: must be an Outcome, got int"),
        ]:
            with pytest.raises(InvalidArgument, match=message):
                teacher.update(bad)  # type: ignore[arg-type]
        assert teacher.stats()["outcomes"] == before
        teacher.update(iter([Outcome(task.id, 1.0)]))  # any iterable of outcomes is a batch
        assert teacher.stats()["outcomes"] == before + 1


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_load_state_dict_checks_the_schema_before_touching_state(name):
    with make_teacher(name, TEACHERS[name], seed=0) as teacher:
        rng = np.random.default_rng(0)
        for _ in range(5):
            tasks = teacher.sample(8)
            teacher.update([Outcome(t.id, float(rng.random()), success=bool(rng.random() < 0.5)) for t in tasks])
        good = json.loads(json.dumps(teacher.state_dict()))
        assert good["state_version"] == 1
        key = sorted(good["algo"] or {"none": None})[0]
        bad_states = {
            "not a dict": (None, "must be a dict from state_dict()"),
            "other teacher": ({**good, "teacher": "nope"}, "state is for teacher 'nope'"),
            "missing rng": ({k: v for k, v in good.items() if k != "rng"}, "state.rng: Field required"),
            "bad counts": ({**good, "counts": {"outcomes": "many"}}, r"state.counts.outcomes"),
            "newer version": ({**good, "state_version": 99}, "state.state_version: 99 is newer"),
            "algo key missing": (
                {**good, "algo": {k: v for k, v in good["algo"].items() if k != key}},
                rf"state.algo: missing \['{key}'\]",
            ),
            "algo key unknown": ({**good, "algo": {**good["algo"], "zzz": 1}}, r"state.algo: unknown keys \['zzz'\]"),
        }
        if not good["algo"]:  # the random teacher keeps no algorithm state
            del bad_states["algo key missing"]
        for label, (state, message) in bad_states.items():
            with make_teacher(name, TEACHERS[name], seed=1) as fresh:
                before = json.dumps(fresh.state_dict(), sort_keys=True)
                with pytest.raises(TeacherStateError, match=message):
                    fresh.load_state_dict(state)  # type: ignore[arg-type]
                assert json.dumps(fresh.state_dict(), sort_keys=True) == before, label
        with make_teacher(name, TEACHERS[name], seed=1) as fresh:
            fresh.load_state_dict(good)
            assert fresh.sample(4) == teacher.sample(4)


def test_a_loader_failure_deep_inside_the_algorithm_state_puts_the_previous_state_back():
    with make_teacher("plr", Discrete(8), seed=0) as teacher:
        tasks = teacher.sample(8)
        teacher.update([Outcome(t.id, 1.0) for t in tasks])
        state = json.loads(json.dumps(teacher.state_dict()))
        state["rng"] = {"bit_generator": "NotAGenerator", "state": {}}  # passes the schema, fails to load
        with make_teacher("plr", Discrete(8), seed=3) as fresh:
            before = json.dumps(fresh.state_dict(), sort_keys=True)
            with pytest.raises(TeacherStateError, match="keeps its previous state"):
                fresh.load_state_dict(state)
            assert json.dumps(fresh.state_dict(), sort_keys=True) == before


def test_a_state_without_a_version_is_version_one():
    with make_teacher("random", Box([0], [1]), seed=0) as teacher:
        state = teacher.state_dict()
        del state["state_version"]
        with make_teacher("random", Box([0], [1]), seed=5) as fresh:
            fresh.load_state_dict(state)
            assert fresh.sample(3) == teacher.sample(3)


def test_the_service_refuses_a_bad_report_before_logging_or_counting_it(tmp_path):
    from openended.runtime.core import TeacherServiceCore

    core = TeacherServiceCore()
    core.add_curriculum("c", "random", Box([0], [1]), config={"seed": 0})
    task = core.sample_tasks("c", n=1)[0]
    for bad, message in [
        (None, r"report\(batch\): must be a sequence of Outcome, got NoneType"),
        ([Outcome(task.id, 0.5), "x"], r"report\(batch\)\[1\]: must be an Outcome, got str"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            core.report("c", bad)  # type: ignore[arg-type]
    assert core.curriculum("c").counters["outcomes_received"] == 0
    with pytest.raises(InvalidArgument, match=r"sample\(student\): must be a student id string"):
        core.teacher("c").sample(1, student=None)  # type: ignore[arg-type]
    assert core.report("c", [Outcome(task.id, 0.5)]) == 1
    core.close()


# ------------------------------------------------------------- linear-time update
def test_alp_gmm_update_with_100k_outcomes_is_linear_and_exact():
    """One ``update`` of 100,000 outcomes: ~0.6 s of CPU (it was ~190 s: quadratic in the batch)."""
    from openended.teachers.gmm.alp import WindowALP

    rng = np.random.default_rng(0)
    x, r = rng.random((100_000, 2)), rng.random(100_000)
    w = WindowALP(2)
    c0 = time.process_time()
    alps = w.update(x, r)
    cpu = time.process_time() - c0
    assert cpu < 5.0, cpu  # generous for a loaded machine; the quadratic path needs minutes
    small = WindowALP(2, chunk=10**9)  # the one-call path gives the same ALPs
    assert np.array_equal(small.update(x[:3000], r[:3000]), WindowALP(2, chunk=256).update(x[:3000], r[:3000]))
    assert np.array_equal(alps[:3000], WindowALP(2, chunk=700).update(x[:3000], r[:3000]))
    with make_teacher("alp_gmm", Box([0, 0], [1, 1]), seed=0, refit_executor="inline") as teacher:
        tasks = teacher.sample(100_000)
        outcomes = [Outcome(t.id, float(v)) for t, v in zip(tasks, r)]
        c0 = time.process_time()
        teacher.update(outcomes)
        assert time.process_time() - c0 < 10.0
        assert teacher.stats()["outcomes"] == 100_000


def test_a_gmm_fit_overflowed_by_huge_returns_is_rejected_not_sampled_from():
    """Returns near 1e300 overflowed the fit into NaN tasks (found by test_properties.py)."""
    for name in ("alp_gmm", "covar_gmm"):
        with make_teacher(name, Box([0, 0], [1, 1]), seed=0, fit_rate=20, refit_executor="inline") as teacher:
            rng = np.random.default_rng(1)
            for _ in range(12):
                tasks = teacher.sample(12)
                teacher.update([Outcome(t.id, float(rng.choice([0.5, 1e300, -1e300]))) for t in tasks])
            assert all(teacher.space.contains(t) for t in teacher.sample(200))
            json.dumps(teacher.state_dict())


def _env_int_keywords():
    """Every whole-number keyword (seeds aside) of a registered env family: in its constructor's
    signature, or a field of the pydantic model its ``config`` parameter is typed with."""
    import inspect
    import typing

    import pydantic

    from openended.envs.registry import env_entry, list_envs

    for family in list_envs():
        try:
            entry = env_entry(family)
            params = inspect.signature(entry).parameters.values()
            hints = typing.get_type_hints(entry.__init__ if inspect.isclass(entry) else entry)
        except (Error, ImportError, NameError, TypeError, ValueError):  # an optional package absent, or no signature
            continue
        keywords = [p.name for p in params if "int" in str(p.annotation) and type(p.default) is int]
        for model in typing.get_args(hints.get("config")) or (hints.get("config"),):
            if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
                keywords += [f for f, info in model.model_fields.items() if "int" in str(info.annotation)]
        for keyword in dict.fromkeys(k for k in keywords if "seed" not in k):
            yield pytest.param(family, keyword, id=f"{family}-{keyword}")


@pytest.mark.parametrize("family,keyword", list(_env_int_keywords()))
def test_a_huge_count_in_an_env_config_is_refused_or_costs_nothing(family, keyword):
    """10**12 for any int keyword of an env family: a project error or a task space, never a MemoryError."""
    from openended.envs.registry import env_task_space

    with contextlib.suppress(Error):  # the family's own imports first, unbounded (`bounded_address_space`)
        env_task_space(family)
    with bounded_address_space(), contextlib.suppress(Error):
        env_task_space(family, **{keyword: 10**12})
