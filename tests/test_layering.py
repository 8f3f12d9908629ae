"""DESIGN.md's layering rule: pure algorithm packages never import Ray (checked on the source)."""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "openended"
PURE = ["teachers", "moi", "envs", "metrics"]


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_do_not_import_ray(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            names += [n for n in names if n.startswith("openended.runtime")]
            if any(n == "ray" or n.startswith("ray.") or n.startswith("openended.runtime") for n in names):
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert not offenders, f"Ray (or runtime) imported from pure package {package}: {offenders}"


@pytest.mark.parametrize("module", ["tasks.py", "jsonio.py"])
def test_bottom_modules_import_only_numpy_and_stdlib(module):
    """Bottom-layer modules every layer imports (teachers included)."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    mods = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    mods |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    third_party = mods - set(sys.stdlib_module_names) - {"__future__", "openended"}
    assert third_party == {"numpy"}


def test_teachers_never_import_envs() -> None:
    """Layering: a teacher gets env knowledge (a task validator) as config, never by import."""
    offenders = []
    for path in sorted((ROOT / "teachers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "openended.envs" or n.startswith("openended.envs.") for n in names):
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert not offenders, offenders
