"""The embedded Ray of a run: which processes it started, so a killed run's leftovers can be stopped.

Why: kill -9 of `openended run` takes the driver and, with it, Ray's GCS server and raylet,
but the raylet's own children (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive
it and run on. The run records every process its embedded Ray started (pid, start time,
name, user) in ``ray_session.json`` in the run directory; the next run or resume of that
directory stops exactly those still alive: same pid *and* same start time (a reused pid is
someone else's process), same user. Nothing else is ever stopped. A run that ends normally
shuts Ray down and removes the record.

Contents:
    record_embedded_ray -- write the record (after Ray started and the service answered).
    stop_leftovers      -- stop what a killed run's record names; returns how many.
    clear_record        -- remove the record (Ray was shut down).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket

import psutil

from openended.runtime.runfiles import atomic_write_json

__all__ = ["RECORD", "record_embedded_ray", "stop_leftovers", "clear_record"]

RECORD = "ray_session.json"


def _identity(p: psutil.Process) -> dict:
    with p.oneshot():
        return {"pid": p.pid, "start": p.create_time(), "name": p.name(), "uid": p.uids().real}


def record_embedded_ray(run_dir: pathlib.Path, session_dir: str | None = None) -> int:
    """Record this process and every process below it (the embedded Ray); return how many."""
    me = psutil.Process()
    children = []
    for child in me.children(recursive=True):
        try:
            children.append(_identity(child))
        except psutil.Error:  # ended meanwhile
            continue
    atomic_write_json(
        run_dir / RECORD,
        {"host": socket.gethostname(), "driver": _identity(me), "session_dir": session_dir, "processes": children},
    )
    return len(children)


def _same_process(entry: dict) -> psutil.Process | None:
    """The live process ``entry`` names (same pid, start time and user), else ``None``."""
    try:
        p = psutil.Process(int(entry["pid"]))
        if abs(p.create_time() - float(entry["start"])) > 0.05 or p.uids().real != os.getuid():
            return None
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def stop_leftovers(run_dir: pathlib.Path, timeout_s: float = 10.0) -> int:
    """Stop the processes a killed run's embedded Ray left behind (SIGTERM, then SIGKILL); return how many.

    Only processes named in the record that still are those same processes are touched;
    a record from another host, or whose driver still runs, is left alone.
    """
    path = run_dir / RECORD
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):  # damaged: nothing trustworthy to act on
        path.unlink(missing_ok=True)
        return 0
    if not isinstance(rec, dict) or rec.get("host") != socket.gethostname():
        return 0
    driver = rec.get("driver")
    if isinstance(driver, dict) and _same_process(driver) is not None and driver.get("pid") != os.getpid():
        return 0  # that run is alive (it holds the lock; the caller should not be here)
    alive = [p for e in rec.get("processes") or [] if isinstance(e, dict) and (p := _same_process(e)) is not None]
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=timeout_s)
    for p in still:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(still, timeout=timeout_s)
    path.unlink(missing_ok=True)
    return len(alive)


def clear_record(run_dir: pathlib.Path) -> None:
    """Remove the record (the run shut its Ray down)."""
    (run_dir / RECORD).unlink(missing_ok=True)
