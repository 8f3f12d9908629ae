"""The layer rules of docs/design.md, checked on the source (every import, lazy ones included).

Layers, bottom to top (imports only point down)::

    cli.py   dashboard/                      user-facing: commands; the dashboard (reads run directories, no Ray)
    runtime/                                 Ray: service, clients, pools, RLlib wiring, runs
    config.py                                the experiment schema (validates against the registries)
    components/                              lifelong-learning components: pure Python, may use teachers, priors
    priors/                                  pretrained-policy networks (torch, no Ray); may use envs
    teachers/  moi/  envs/  metrics/         pure Python: no Ray, no runtime, no cli, no config
    tasks.py errors.py jsonio.py registry.py validation.py   the vocabulary and its helpers
    hash_kernels.py (tasks' compiled id hash, numba)

Sideways imports between the pure packages are forbidden except where documented:
teachers may use moi (OMNI's judges). Each rule is also tested against a deliberately
violating temporary module, so a rule that silently checks nothing fails here.
"""

from __future__ import annotations

import ast
import pathlib
import sys
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "openended"

#: What each unit of the package may import from the package itself.
BOTTOM = {"errors", "tasks", "jsonio", "registry", "validation", "hostinfo", "hash_kernels"}
ALLOWED_INTERNAL: dict[str, set[str]] = {
    "errors": set(),
    "jsonio": set(),
    "hostinfo": set(),
    "tasks": {"errors", "hash_kernels"},
    "hash_kernels": set(),
    "registry": {"errors"},
    "validation": {"errors"},
    "teachers": BOTTOM | {"teachers", "moi"},
    "moi": BOTTOM | {"moi"},
    "envs": BOTTOM | {"envs"},
    "metrics": BOTTOM | {"metrics"},
    "priors": BOTTOM | {"priors", "envs"},
    "components": BOTTOM | {"components", "teachers", "priors"},
    "config": BOTTOM | {"teachers", "envs", "moi", "metrics", "priors", "components"},
    "runtime": BOTTOM | {"teachers", "envs", "moi", "metrics", "priors", "components", "config", "runtime"},
    "dashboard": BOTTOM
    | {"teachers", "envs", "moi", "metrics", "priors", "components", "config", "runtime", "dashboard"},
    "cli": BOTTOM | {"teachers", "envs", "moi", "metrics", "priors", "components", "config", "runtime", "dashboard"},
    "__init__": {"tasks"},
}
#: Units that must never import Ray.
RAY_FREE = {
    "errors",
    "jsonio",
    "hostinfo",
    "tasks",
    "hash_kernels",
    "registry",
    "validation",
    "teachers",
    "moi",
    "envs",
    "metrics",
    "priors",
    "components",
    "config",
    "dashboard",
}
#: Third-party imports allowed in the bottom modules everything else depends on.
BOTTOM_THIRD_PARTY: dict[str, set[str]] = {
    "errors": set(),
    "hostinfo": set(),
    "tasks": {"numpy"},
    "hash_kernels": {"numpy", "numba"},
    "jsonio": {"numpy"},
    "registry": set(),
    "validation": {"pydantic"},
}


@dataclass(frozen=True)
class Violation:
    """One import that breaks a rule."""

    where: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.where}: imports {self.imported} ({self.rule})"


def _unit(path: pathlib.Path, root: pathlib.Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """Every absolute module an import statement in ``path`` names, with its line."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "openended":  # `from openended import envs`
                out += [(node.lineno, f"openended.{a.name}") for a in node.names]
    return out


def check_layers(root: pathlib.Path) -> list[Violation]:
    """All rule violations in the package at ``root`` (a directory named like the package)."""
    found: list[Violation] = []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted(root.rglob("*.py")):
        unit = _unit(path, root)
        allowed = ALLOWED_INTERNAL.get(unit)
        where = f"{path.relative_to(root.parent)}"
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top == root.name:
                parts = name.split(".")
                if len(parts) == 1:
                    continue
                target = parts[1]
                if allowed is None:
                    found.append(Violation(f"{where}:{line}", name, f"unit {unit!r} has no layer rule"))
                elif target not in allowed and target != unit:
                    found.append(Violation(f"{where}:{line}", name, f"{unit} may import only {sorted(allowed)}"))
            elif top == "ray" and unit in RAY_FREE:
                found.append(Violation(f"{where}:{line}", name, f"{unit} must not import Ray"))
            elif unit in BOTTOM_THIRD_PARTY and top not in stdlib and top not in BOTTOM_THIRD_PARTY[unit]:
                found.append(
                    Violation(f"{where}:{line}", name, f"bottom module {unit} may import {BOTTOM_THIRD_PARTY[unit]}")
                )
    return found


def test_the_package_follows_every_layer_rule() -> None:
    violations = check_layers(ROOT)
    assert not violations, "\n".join(map(str, violations))


def test_every_unit_of_the_package_has_a_rule() -> None:
    units = {_unit(p, ROOT) for p in ROOT.rglob("*.py")}
    assert units <= set(ALLOWED_INTERNAL), sorted(units - set(ALLOWED_INTERNAL))


# ------------------------------------------------------------- each rule bites on a violation
def _fake_package(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "openended"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("rel", "source", "rule"),
    [
        ("tasks.py", "import scipy\n", "bottom module tasks"),
        ("tasks.py", "from openended.teachers import make_teacher\n", "tasks may import only"),
        ("jsonio.py", "import pydantic\n", "bottom module jsonio"),
        ("teachers/x.py", "import ray\n", "teachers must not import Ray"),
        ("teachers/x.py", "def f():\n    from openended.runtime import run\n", "teachers may import only"),
        ("teachers/x.py", "from openended.envs.crafter import validate_crafter_task\n", "teachers may import only"),
        ("teachers/x.py", "from openended import config\n", "teachers may import only"),
        ("envs/x.py", "from openended.teachers import make_teacher\n", "envs may import only"),
        ("envs/x.py", "import ray.rllib\n", "envs must not import Ray"),
        ("moi/x.py", "from openended.teachers.lp import LPTracker\n", "moi may import only"),
        ("metrics/x.py", "from openended.envs import make_env\n", "metrics may import only"),
        ("metrics/x.py", "from ray import tune\n", "metrics must not import Ray"),
        ("components/x.py", "import ray\n", "components must not import Ray"),
        ("components/x.py", "from openended.runtime.episodes import EpisodeHost\n", "components may import only"),
        ("components/x.py", "from openended.envs import make_env\n", "components may import only"),
        ("config.py", "import ray\n", "config must not import Ray"),
        ("config.py", "from openended.runtime.run import run_experiment\n", "config may import only"),
        ("runtime/x.py", "from openended.cli import main\n", "runtime may import only"),
        ("runtime/x.py", "from openended.dashboard import server\n", "runtime may import only"),
        ("dashboard/x.py", "import ray\n", "dashboard must not import Ray"),
        ("dashboard/x.py", "from openended.cli import main\n", "dashboard may import only"),
        ("newunit/x.py", "from openended.tasks import Box\n", "has no layer rule"),
    ],
)
def test_each_rule_fails_on_a_violating_module(tmp_path, rel, source, rule) -> None:
    root = _fake_package(tmp_path, {rel: source})
    violations = check_layers(root)
    assert violations, f"no violation found for {rel}: {source!r}"
    assert any(rule in str(v) for v in violations), [str(v) for v in violations]


def test_documented_imports_pass(tmp_path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "teachers/x.py": "from openended.moi import make_judge\nfrom openended.tasks import Box\n",
            "runtime/x.py": "import ray\nfrom openended.teachers import make_teacher\nfrom openended import config\n",
            "cli.py": "def f():\n    from openended.runtime.run import run_experiment\n",
            "tasks.py": "import numpy as np\nfrom openended.errors import ConfigError\n",
            "components/x.py": "from openended.teachers import make_teacher\n",
        },
    )
    assert check_layers(root) == []
