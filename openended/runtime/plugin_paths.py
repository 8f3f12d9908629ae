"""Make the user's plugin code importable in every Ray worker of a run.

Why: a plugin is named by import path (``teacher.name: "my_pkg.mod:GrowTeacher"``), and
each process that builds it (the teacher service, EnvPools, RLlib env runners) imports it
itself. An installed package (``pip install -e``) is found everywhere; a package the
driver finds only through its own ``sys.path`` (a script's folder, a path added at
runtime) is not, because Ray's workers start with a fresh interpreter. `worker_runtime_env`
puts the folders that hold the experiment's plugin packages on the workers'
``PYTHONPATH``; folders of installed packages need nothing.

Contents:
    plugin_import_paths -- the import paths an experiment names (teacher, env family, judges).
    plugin_roots        -- the folders, outside the installed packages, that hold their top packages.
    worker_runtime_env  -- the Ray ``runtime_env`` that makes them importable (None when not needed).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import site
import sysconfig
from collections.abc import Iterable
from typing import Any

from openended.config import Experiment
from openended.registry import is_import_path

__all__ = ["plugin_import_paths", "plugin_roots", "worker_runtime_env"]

#: Teacher config fields that may name code by import path (OMNI's judges, WebRL's validator).
_CODE_FIELDS = ("judge", "validator", "inner", "fallback")


def plugin_import_paths(exp: Experiment) -> list[str]:
    """Every ``"package.module:Attr"`` the experiment names where openended builds code.

    A teacher or family named through an entry point counts by its entry point's value
    (its distribution's metadata sits beside the package, so the same folder serves both).
    """
    from openended.envs.registry import env_plugin_path
    from openended.teachers.registry import teacher_plugin_path

    found = [teacher_plugin_path(exp.teacher.name), env_plugin_path(exp.env.family)]
    cfg = exp.teacher.config
    found += [cfg[k] for k in _CODE_FIELDS if k in cfg]
    judge_cfg = cfg.get("judge_cfg")
    if isinstance(judge_cfg, dict):
        found += [judge_cfg[k] for k in _CODE_FIELDS if k in judge_cfg]
    return sorted({p.strip() for p in found if isinstance(p, str) and is_import_path(p)})


def _installed_dirs() -> set[pathlib.Path]:
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    dirs.update(site.getsitepackages())
    dirs.add(site.getusersitepackages())
    return {pathlib.Path(d).resolve() for d in dirs}


def plugin_roots(import_paths: Iterable[str]) -> list[str]:
    """The folders holding each path's top-level package, except where installed packages live.

    A module that cannot be found is skipped (validation already said why).
    """
    installed = _installed_dirs()
    roots: list[str] = []
    for path in import_paths:
        top = path.partition(":")[0].strip().split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:  # a package: the folder above it
            root = pathlib.Path(next(iter(spec.submodule_search_locations))).resolve().parent
        elif spec.origin and spec.origin not in ("built-in", "frozen"):
            root = pathlib.Path(spec.origin).resolve().parent
        else:
            continue
        if root not in installed and str(root) not in roots:
            roots.append(str(root))
    return roots


def worker_runtime_env(exp: Experiment) -> dict[str, Any] | None:
    """Ray ``runtime_env`` putting the experiment's plugin folders on the workers' ``PYTHONPATH``.

    None when every plugin is installed (or there is none). The driver's own
    ``PYTHONPATH`` is kept after them.
    """
    roots = plugin_roots(plugin_import_paths(exp))
    if not roots:
        return None
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(roots + [p for p in current if p not in roots])}}
