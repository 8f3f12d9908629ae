"""Plugins: a user's teacher / env family / judge by import path or entry point (docs/plugins.md).

The walk-through package of docs/plugins.md is built from the doc's own code blocks in a
temporary folder, with the ``*.dist-info`` metadata (``METADATA``, ``entry_points.txt``)
that ``pip install -e`` writes, so the doc and the test cannot drift apart. The slow test
runs it through the real CLI on a real local Ray with the package reachable only from the
driver's ``sys.path``: the teacher-service and EnvPool actors must import it themselves.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import tomllib

import pytest
import yaml

from openended.config import load_experiment
from openended.errors import ConfigError, UnknownName
from openended.registry import BUILT_IN, Registry
from openended.runtime.plugin_paths import plugin_import_paths, plugin_roots, worker_runtime_env
from openended.tasks import Box, Outcome
from openended.teachers.registry import make_teacher

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _write_package(site: pathlib.Path) -> dict:
    """The doc's package under ``site`` (a folder on sys.path), installed-style; returns the doc's experiment."""
    for block in _blocks("python"):
        first, _, body = block.partition("\n")
        path = site / first.removeprefix("# ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    (site / "grow_plugins" / "__init__.py").write_text("", encoding="utf-8")
    project = tomllib.loads(_blocks("toml")[0])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    groups = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(groups), encoding="utf-8")
    return yaml.safe_load(_blocks("yaml")[0])


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The doc's package on this process's sys.path (removed again after the test)."""
    folder = tmp_path / "site"
    folder.mkdir()
    exp = _write_package(folder)
    monkeypatch.syspath_prepend(str(folder))
    yield folder, exp
    for name in [m for m in sys.modules if m == "grow_plugins" or m.startswith("grow_plugins.")]:
        del sys.modules[name]


# ------------------------------------------------------------------ registry rules
def test_import_path_teacher_builds_and_learns(site):
    teacher = make_teacher("grow_plugins.teachers:GrowTeacher", Box([0, 0], [1, 1]), seed=3, step=0.25)
    tasks = teacher.sample(50)
    assert max(max(t.params) for t in tasks) <= 0.2 + 1e-12  # the starting box
    teacher.update([Outcome(task_id=t.id, episode_return=1.0, success=True) for t in tasks])
    assert teacher.stats()["fraction"] == pytest.approx(0.45)
    assert max(max(t.params) for t in teacher.sample(500)) > 0.2  # the box grew


def test_entry_points_register_on_a_miss_with_their_source(site):
    reg = Registry("teacher", "openended.teachers")
    reg.register("random", "openended.teachers.random_teacher:RandomTeacher")
    assert reg.canonical("GROW") == "grow"
    assert reg.get("grow").__name__ == "GrowTeacher"
    assert reg.source("grow") == "entry point of grow-plugins"
    assert reg.source("random") == BUILT_IN and not reg.is_plugin("random")
    assert reg.plugin_path("grow") == "grow_plugins.teachers:GrowTeacher"
    assert reg.plugin_path("random") is None
    assert "grow" in reg.names()


def test_a_built_in_name_wins_over_an_entry_point_and_the_loser_is_reported(site):
    reg = Registry("env family", "openended.envs")
    reg.register("reach", "openended.envs.toy:ToyTaskEnv")
    assert reg.names() == ["reach"]
    assert reg.get("reach").__name__ == "ToyTaskEnv"
    assert reg.shadowed == ["reach = grow_plugins.envs:ReachEnv (grow-plugins): name already taken"]


def test_import_paths_keep_their_case_and_registered_names_cannot_contain_colons():
    reg = Registry("judge")
    assert reg.canonical(" pkg.Mod:Judge ") == "pkg.Mod:Judge"
    with pytest.raises(ConfigError, match="cannot contain ':'"):
        reg.register("a:b", "x.y:Z")
    with pytest.raises(UnknownName, match="unknown judge 'nope'"):
        reg.get("nope")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("grow_plugins.nothere:X", "teacher.name: teacher 'grow_plugins.nothere:X': cannot import module"),
        ("grow_plugins.teachers:Missing", "has no attribute 'Missing'"),
        ("grow_plugins.teachers:GrowConfig", "not a BaseTeacher subclass"),
    ],
)
def test_check_names_the_field_of_a_bad_plugin(site, name, message):
    _, exp = site
    exp["teacher"]["name"] = name
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_experiment(exp)


def test_check_validates_a_plugin_teachers_config(site):
    _, exp = site
    exp["teacher"]["config"] = {"stepp": 0.2}
    with pytest.raises(ConfigError, match=r"teacher\.config\.stepp"):
        load_experiment(exp)


def test_plugin_env_declares_multi_agent_and_validator_by_attribute(site):
    import grow_plugins.envs as mod

    from openended.envs import registry as envs

    path = "grow_plugins.envs:ReachEnv"
    assert not envs.is_multi_agent_family(path) and envs.env_task_validator(path) is None
    mod.ReachEnv.multi_agent = True
    mod.ReachEnv.task_validator = "grow_plugins.envs:ok"
    try:
        assert envs.is_multi_agent_family(path)
        assert envs.env_task_validator(path) == "grow_plugins.envs:ok"
    finally:
        del mod.ReachEnv.multi_agent, mod.ReachEnv.task_validator


# ------------------------------------------------------------------ workers' import path
def test_workers_get_the_folders_of_plugins_found_only_by_the_driver(site):
    folder, exp = site
    exp["env"]["family"] = "grow_plugins.envs:ReachEnv"
    loaded = load_experiment(exp)
    assert plugin_import_paths(loaded) == ["grow_plugins.envs:ReachEnv", "grow_plugins.teachers:GrowTeacher"]
    assert plugin_roots(plugin_import_paths(loaded)) == [str(folder.resolve())]
    env = worker_runtime_env(loaded)
    assert env is not None and env["env_vars"]["PYTHONPATH"].split(os.pathsep)[0] == str(folder.resolve())
    # built-ins and installed packages (numpy lives in site-packages) need nothing
    assert plugin_roots(["numpy:zeros"]) == []
    assert worker_runtime_env(load_experiment(ROOT / "experiments" / "toy_alpgmm.yaml")) is None


# ------------------------------------------------------------------ the doc, end to end
def _cli_with_sys_path(folder: pathlib.Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI in a subprocess that finds the package through ``sys.path`` only (no PYTHONPATH)."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(folder)!r})
        from openended.cli import main
        sys.exit(main({list(args)!r}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="300")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_teachers_and_envs_commands_list_installed_plugins(site):
    folder, _ = site
    res = _cli_with_sys_path(folder, "teachers")
    assert res.returncode == 0, res.stderr
    assert re.search(r"^grow\s+spaces: box .* entry point of grow-plugins$", res.stdout, flags=re.M), res.stdout
    assert re.search(r"^random\s+.* built-in$", res.stdout, flags=re.M)
    res = _cli_with_sys_path(folder, "envs")
    assert re.search(r"^reach\s+entry point of grow-plugins$", res.stdout, flags=re.M), res.stdout


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("how", ["entry point", "import path"])
def test_the_docs_plugins_run_on_a_real_local_ray(site, tmp_path, how):
    folder, exp = site
    if how == "import path":
        exp["teacher"]["name"] = "grow_plugins.teachers:GrowTeacher"
        exp["env"]["family"] = "grow_plugins.envs:ReachEnv"
    exp["run"]["dir"] = str(tmp_path / "runs")
    exp["run"]["progress"] = False
    path = tmp_path / "grow.yaml"
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")

    check = _cli_with_sys_path(folder, "check", str(path))
    assert check.returncode == 0, check.stderr
    assert "task space: Box(low=[0.1], high=[1.0], names=['distance'])" in check.stdout

    res = _cli_with_sys_path(folder, "run", str(path), "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    (rd,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert json.loads((rd / "status.json").read_text())["state"] == "finished"
    rows = [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3] and rows[-1]["episodes_total"] > 0
    # the teacher service ran the plugin teacher: its own state is in the checkpoint
    (ckpt,) = sorted((rd / "checkpoints" / "teacher").glob("checkpoint-*.json"))[-1:]
    teachers = json.loads(ckpt.read_text())["curricula"][0]["teachers"]
    fraction = teachers["default"]["algo"]["fraction"]
    assert 0.2 <= fraction <= 1.0
