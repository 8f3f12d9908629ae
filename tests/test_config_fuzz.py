"""Config fuzz: every shipped experiment YAML, mutated, is either accepted by `check` or refused with a project error.

What `openended check` runs (`load_experiment` then `preflight`, the same checks `run`
makes before Ray starts) is driven with each experiment file changed at one to three
places: a value replaced (wrong types, negative, huge, NaN/inf, strings, lists, mappings),
a key removed, or an unknown key added. The property: the outcome is "ok" or an
`openended.errors.Error` (one line at the CLI), never a traceback of another type.
"""

from __future__ import annotations

import contextlib
import copy
import pathlib
from typing import Any

import pytest
import yaml
from support import bounded_address_space

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (requirements/dev.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402  # after the skip guard
from hypothesis import strategies as st  # noqa: E402

from openended.config import load_experiment  # noqa: E402
from openended.errors import ConfigError, Error  # noqa: E402
from openended.runtime.preflight import preflight  # noqa: E402

EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[1] / "experiments"
EXPERIMENTS = sorted(EXPERIMENTS_DIR.glob("*.yaml"))

#: Values a user might type anywhere. Integers skip the middle range where a *valid*
#: size would only be slow to build (a 500,000-level space), not wrong.
values = st.one_of(
    st.integers(-10, 10_000),
    st.integers(10**12, 10**30),
    st.integers(-(10**30), -(10**12)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["fast", "../../x", "a/b", "", "auto", "none", "ppo", "1e-3", "null", "\ud800"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "seed", "lr"]), st.integers(-3, 3), max_size=2),
)

#: Fields a file may leave out, so mutations reach them too.
OPTIONAL_FIELDS = [
    ["seed"],
    ["students"],
    ["algo", "name"],
    ["algo", "num_env_runners"],
    ["algo", "config", "lr"],
    ["algo", "config", "gamma"],
    ["algo", "config", "num_epochs"],
    ["algo", "config", "minibatch_size"],
    ["pool", "pools_per_student"],
    ["pool", "steps_per_call"],
    ["run", "iterations"],
    ["evaluation", "every"],
    ["teacher", "preset"],
    ["teacher", "config", "seed"],
    ["teacher", "students"],
    ["env", "config", "n_dims"],
    ["ray", "num_cpus"],
]


def _leaves(node: Any, path: list[str]) -> list[list[str]]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _leaves(v, [*path, str(k)])]
    return [path] if path else []


def _set(data: dict, path: list[str], value: Any) -> None:
    node: Any = data
    for p in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else node[p]
    if isinstance(node, dict):
        node[path[-1]] = value


def _delete(data: dict, path: list[str]) -> None:
    node: Any = data
    for p in path[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


@st.composite
def mutated(draw: st.DrawFn, base: dict) -> dict:
    data = copy.deepcopy(base)
    paths = _leaves(base, []) + OPTIONAL_FIELDS
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["set", "set", "set", "delete", "unknown"]))
        if action == "set":
            _set(data, path, draw(values))
        elif action == "delete":
            _delete(data, path)
        else:
            _set(data, [*path[:-1], "unknown_" + path[-1]], draw(values))
    return data


def _warm_imports(base: dict) -> None:
    """Check the unmutated file once, unbounded: what the checks import (RLlib, torch) is then loaded."""
    with contextlib.suppress(Error):
        preflight(load_experiment(copy.deepcopy(base)))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_mutation_of_an_experiment_is_accepted_or_refused_with_a_project_error(path):
    base = yaml.safe_load(path.read_text(encoding="utf-8"))
    _warm_imports(base)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=mutated(base))
    def check(data: dict) -> None:
        try:
            preflight(load_experiment(data))
        except Error as e:
            assert str(e).strip(), "a project error must say what is wrong"

    with bounded_address_space():  # a value that builds something huge fails here, not the run
        check()


def test_a_huge_count_in_the_file_is_refused_before_anything_is_built():
    """A size read from an experiment file is bounded before a list is built from it."""
    base = yaml.safe_load((EXPERIMENTS_DIR / "crafter_webrl.yaml").read_text(encoding="utf-8"))
    _warm_imports(base)
    base["env"]["config"]["impossible"] = 10**12
    with (
        bounded_address_space(),
        pytest.raises(ConfigError, match=r"env\.config: env\.crafter\.impossible: must be a whole number"),
    ):
        preflight(load_experiment(base))
