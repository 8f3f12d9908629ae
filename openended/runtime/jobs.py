"""`openended submit`: an experiment as a Ray job on a cluster (Ray Jobs SDK).

The working directory (the project checkout, without venvs, runs and VCS data) is
uploaded; the job runs ``python -m openended.cli run <experiment> --no-progress`` on the
head node, where ``ray.init()`` joins the cluster (``RAY_ADDRESS`` is set by Ray).

Authentication: clusters started with ``RAY_AUTH_MODE=token`` need the same variable on
the client and the token in ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``; Ray's client reads them itself, we only check they are consistent.
"""

from __future__ import annotations

import os
import pathlib
import re
import time
from collections.abc import Sequence
from typing import Any

from openended.errors import ConfigError

__all__ = ["submit_experiment", "job_entrypoint", "dashboard_address", "DEFAULT_EXCLUDES", "wait_for_job"]

DEFAULT_EXCLUDES = [
    ".venv",
    "venv",
    "runs",
    ".git",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    "results",
    ".whl",
    ".gl",
    "*.egg-info",
]


def job_entrypoint(experiment: str, overrides: Sequence[str] = ()) -> str:
    """The job's shell command: ``python -m openended.cli run <experiment> --no-progress [--set ...]``, quoted."""
    import shlex

    parts = ["python", "-m", "openended.cli", "run", experiment, "--no-progress"]
    for ov in overrides:
        parts += ["--set", ov]
    return " ".join(shlex.quote(p) for p in parts)


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def dashboard_address(address: str) -> str:
    """The address to submit to: ``host:port`` gets ``http://``; a URL or ``auto`` is kept; anything else is refused.

    Ray's Jobs client reads an address without a scheme as a cluster (GCS) address and waits
    about 40 s before failing with an RPC error; the dashboard speaks HTTP.
    """
    address = address.strip()
    if "://" in address or address == "auto":
        return address
    if _HOST_PORT.match(address):
        return f"http://{address}"
    raise ConfigError(
        f"--address {address!r}: give the Ray dashboard URL, e.g. http://127.0.0.1:8265 (host:port gets http://)"
    )


def _check_auth() -> None:
    if os.environ.get("RAY_AUTH_MODE") == "token":
        have = (
            os.environ.get("RAY_AUTH_TOKEN")
            or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (pathlib.Path.home() / ".ray" / "auth_token").is_file()
        )
        if not have:
            raise ConfigError(
                "RAY_AUTH_MODE=token but no token found: set RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
                "or write it to ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
            )


def submit_experiment(
    experiment: str,
    *,
    address: str,
    overrides: Sequence[str] = (),
    working_dir: str = ".",
    follow: bool = False,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
) -> str:
    """Submit and return the job id; with ``follow`` stream logs until the job ends."""
    from ray.job_submission import JobSubmissionClient

    address = dashboard_address(address)
    _check_auth()
    wd = pathlib.Path(working_dir).resolve()
    exp = pathlib.Path(experiment).resolve()
    try:
        rel = exp.relative_to(wd)
    except ValueError:
        raise ConfigError(f"experiment {experiment!r} must be inside the uploaded --working-dir {str(wd)!r}") from None
    try:
        client = JobSubmissionClient(address)
    except ConnectionError as e:
        raise ConfigError(
            f"--address {address}: cannot reach a Ray dashboard there ({e}); start the head with "
            "`ray start --head` and pass its dashboard URL, e.g. http://127.0.0.1:8265"
        ) from None
    except Exception as e:  # ray.exceptions.AuthenticationError and friends: keep Ray's explanation
        if type(e).__name__ == "AuthenticationError":
            raise ConfigError(
                f"--address {address}: the cluster refused the token: {str(e).splitlines()[0]}. "
                "Use the head's token (`ray get-auth-token` there) in RAY_AUTH_TOKEN or "
                "~/.ray/auth_token"
            ) from None
        raise
    job_id = client.submit_job(
        entrypoint=job_entrypoint(rel.as_posix(), overrides),
        runtime_env={"working_dir": str(wd), "excludes": list(excludes)},
        metadata={"openended_experiment": rel.as_posix()},
    )
    if follow:
        status = wait_for_job(client, job_id, stream=True)
        if status != "SUCCEEDED":
            raise ConfigError(f"job {job_id} ended {status}; see `ray job logs {job_id}`")
    return job_id


def wait_for_job(client: Any, job_id: str, timeout_s: float = 3600.0, stream: bool = False) -> str:
    """Poll until the job is terminal; print new log output when ``stream``. Returns the status name."""
    seen = 0
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        if stream:
            logs = client.get_job_logs(job_id)
            if len(logs) > seen:
                print(logs[seen:], end="", flush=True)
                seen = len(logs)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        if time.monotonic() > deadline:
            return status
        time.sleep(1.0)
