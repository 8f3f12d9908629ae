"""The bottom-layer import-path resolver and the env registry's per-family task validators."""

from __future__ import annotations

import pytest

from openended.envs.registry import env_task_validator, register_env
from openended.errors import ConfigError, UnknownName
from openended.registry import resolve_import_path


def test_resolve_import_path_returns_the_callable() -> None:
    import json

    assert resolve_import_path("json:loads") is json.loads
    assert resolve_import_path(" openended.registry:Registry.names ", what="x") is not None  # dotted attribute


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("json.loads", "'json.loads' is not an import path; write 'package.module:function'"),
        (":loads", "is not an import path"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("json:no_such", "module 'json' has no attribute 'no_such'"),
        ("json:__doc__", "is a str, not a function or other callable"),
        (42, "expected an import path string"),
    ],
)
def test_resolve_import_path_errors_name_the_field(path: object, says: str) -> None:
    with pytest.raises(ConfigError, match=r"^plugins\.judge: ") as err:
        resolve_import_path(path, what="plugins.judge")  # type: ignore[arg-type]
    assert says in str(err.value)


def test_env_families_declare_their_task_validator() -> None:
    assert env_task_validator("crafter") == "openended.envs.crafter:validate_crafter_task"
    assert env_task_validator("toy") is None and env_task_validator("stumps") is None  # alias resolved
    with pytest.raises(UnknownName):
        env_task_validator("no_such_family")
    with pytest.raises(ConfigError, match=r"task_validator: expected an import path"):
        register_env("mine", "openended.envs.toy:ToyTaskEnv", task_validator="not a path")
    register_env("mine_text", "openended.envs.toy:ToyTaskEnv", task_validator="json:loads")
    assert env_task_validator("mine_text") == "json:loads"
    register_env("mine_text", "openended.envs.toy:ToyTaskEnv", overwrite=True)
    assert env_task_validator("mine_text") is None
