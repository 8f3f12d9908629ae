"""`openended submit`: an experiment as a Ray job on a cluster (Ray Jobs SDK).

The working directory (the project checkout, without venvs, runs and VCS data) is
uploaded; the job runs ``python -m openended.cli run <experiment> --no-progress`` on the
head node, where ``ray.init()`` joins the cluster (``RAY_ADDRESS`` is set by Ray). A job
whose driver died (``ray job stop``, a lost head process) is continued by submitting
``--resume <run dir>``: the new driver takes the run lock and resumes from the newest
checkpoint set (docs/reliability.md).

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


def job_entrypoint(experiment: str | None, overrides: Sequence[str] = (), resume: str | None = None) -> str:
    """The job's shell command, quoted: ``python -m openended.cli run <experiment> --no-progress [--set ...]``.

    With ``resume``: ``run --resume <run dir>``, to continue a run whose driver died.
    """
    import shlex

    target = ["--resume", resume] if resume else [str(experiment)]
    parts = ["python", "-m", "openended.cli", "run", *target, "--no-progress"]
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
    experiment: str | None,
    *,
    address: str,
    overrides: Sequence[str] = (),
    working_dir: str = ".",
    follow: bool = False,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    resume: str | None = None,
) -> str:
    """Submit and return the job id; with ``follow`` stream logs until the job ends.

    ``resume``: a run directory on storage the head reaches; the job continues that run from
    its newest checkpoint set (after its driver was killed, or the job stopped), instead of
    starting ``experiment``.
    """
    from ray.job_submission import JobSubmissionClient

    address = dashboard_address(address)
    _check_auth()
    wd = pathlib.Path(working_dir).resolve()
    if resume:
        rel_name = None
    else:
        exp = pathlib.Path(str(experiment)).resolve()
        try:
            rel_name = exp.relative_to(wd).as_posix()
        except ValueError:
            raise ConfigError(
                f"experiment {experiment!r} must be inside the uploaded --working-dir {str(wd)!r}"
            ) from None
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
    job_id = _submit_when_ready(
        client,
        entrypoint=job_entrypoint(rel_name, overrides, resume=resume),
        runtime_env={"working_dir": str(wd), "excludes": list(excludes)},
        metadata={"openended_experiment": rel_name or "", "openended_resume": resume or ""},
    )
    if follow:
        status = wait_for_job(client, job_id, stream=True)
        if status != "SUCCEEDED":
            raise ConfigError(f"job {job_id} ended {status}; see `ray job logs {job_id}`")
    return job_id


#: How long a submit waits for a head whose job agent is still starting (Ray answers 500,
#: "No available agent to submit job, please try again later", for the first seconds or,
#: on a loaded machine, minutes after `ray start`).
AGENT_WAIT_S = 180.0


def _submit_when_ready(client: Any, **job: Any) -> str:
    """``client.submit_job(**job)``, retried while the head says its job agent is not up yet."""
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return str(client.submit_job(**job))
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(2.0)


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
