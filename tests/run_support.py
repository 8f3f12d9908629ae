"""Helpers for the kill -9 / resume tests of `openended run` (not collected: no ``test_`` prefix).

`check_invariant` is the run's accounting invariant of docs/reliability.md: every outcome
line ever logged is still in the log, each episode id once; those a resume superseded are
not counted; the teacher counted exactly the others; and at every metrics row the outcomes
the teacher accepted equal the episodes the run reports.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

from openended.runtime.batch_json import outcome_batch_from_json
from openended.runtime.codec import decode_outcomes
from openended.runtime.eventlog import iter_events
from openended.runtime.rundir import RunDir

ROOT = pathlib.Path(__file__).resolve().parents[1]


def start_run(
    base: pathlib.Path,
    *sets: str,
    kill_at_checkpoint: int | None = None,
    resume: str | None = None,
    experiment: str = "experiments/toy_alpgmm.yaml",
):
    """`openended run` (default: toy, ALP-GMM) in a subprocess; ``kill_at_checkpoint``: SIGKILL itself
    while writing that iteration's checkpoint set (after every member, before the manifest)."""
    args = ["run", "--resume", resume] if resume else ["run", experiment, "--run-dir", str(base)]
    args += ["--no-progress", *[x for s in sets for x in ("--set", s)]]
    code = textwrap.dedent(f"""
        import os, signal, sys
        from openended.runtime import checkpoints
        target = {kill_at_checkpoint!r}
        real_commit = checkpoints.SetWriter.commit
        def commit(self, **kw):
            if self.iteration == target:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_commit(self, **kw)
        checkpoints.SetWriter.commit = commit
        from openended.cli import main
        sys.exit(main({args!r}))
    """)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        # a shared, loaded machine can take over a minute to register Ray's node (the default limit is 60 s)
        env=dict(os.environ, PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="300"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def only_run_dir(base: pathlib.Path) -> pathlib.Path:
    dirs = [p for p in base.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def latest_set(rd: pathlib.Path) -> int:
    """The iteration of the newest committed set (0: none yet)."""
    try:
        return int(json.loads((rd / "checkpoints" / "latest.json").read_text())["iteration"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def log_prefix(rd: pathlib.Path) -> bytes:
    """The event log up to its last complete line (what no later run may change)."""
    data = (rd / "events.jsonl").read_bytes()
    return data[: data.rfind(b"\n") + 1]


def check_invariant(rd: pathlib.Path, rows_from: int = 1) -> dict:
    """Assert the accounting invariant (module docstring); return the numbers it checked."""
    ids: list[str] = []
    superseded: list[tuple[int, int]] = []
    batches: list[tuple[int, list[str]]] = []
    for e in iter_events(rd / "events.jsonl"):
        if e.event["ev"] == "outcome":
            batch = [o.episode_id for o in decode_outcomes(outcome_batch_from_json(e.event["outcomes"]))]
            batches.append((e.offset, batch))
            ids += batch
        elif e.event["ev"] == "rewind":
            superseded.append((e.event["from"], e.event["to"]))
    assert len(ids) == len(set(ids)), "an episode id was logged twice"
    counted = sum(len(b) for off, b in batches if not any(a <= off < z for a, z in superseded))
    rows = RunDir(rd).read_metrics()  # a torn last line (killed mid-write) is left out
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1)), "iterations must continue without repeats"
    bad = [(r["iteration"], r["outcomes_accepted"], r["episodes_total"]) for r in rows[rows_from - 1 :]]
    bad = [b for b in bad if b[1] != b[2]]
    assert not bad, f"outcomes the teacher counted != episodes the run reports at (iteration, counted, reported): {bad}"
    status = json.loads((rd / "status.json").read_text())
    if status["state"] == "finished":
        ckpt = json.loads((rd / "checkpoints" / "latest.json").read_text())
        teacher = json.loads(pathlib.Path(ckpt["teacher_checkpoint"]).read_text())
        taught = sum(t["counts"]["outcomes"] for c in teacher["curricula"] for t in c["teachers"].values())
        assert taught == counted == rows[-1]["episodes_total"], (taught, counted, rows[-1]["episodes_total"])
    return {"logged": len(ids), "counted": counted, "rewinds": len(superseded), "rows": len(rows)}
