"""What real env hosts send, replayed through the teacher service, against the benchmark's own outcomes.

Why: `service_throughput.py` measures outcomes it builds itself. Until 2026-12-07 env pools
sent named episode ids and a list of info dicts, which cost the service ~4x the report CPU
of the benchmark's outcomes, and no row showed it. This script records what real hosts
send and replays it, so the next such gap shows up as a ratio above 1.

Per env family:

1. **Record.** An `EnvPoolCore` (random policy) runs on a `LocalTeacherClient` with the
   client defaults every host uses (the Ray `TeacherClient` encodes its outbox the same
   way) until it has reported ``--outcomes`` outcomes or ``--seconds`` have passed. The
   service it talks to is a real `TeacherServiceCore` (random teacher over the family's
   task space, event log on) behind a recorder that keeps every ``sample_columns`` call
   and every `OutcomeBatch` reported.
2. **Replay**, in alternating rounds, each into a fresh core configured the same way:
   ``recorded`` replays the calls in order; ``plain`` replays the same samples, but each
   report is the form every `service_throughput.py` row sends: the same task ids, students,
   returns, successes and lengths, 16-hex-digit episode ids, no infos. The random
   teacher's draws do not depend on reports, so a replayed sample must return the task ids
   the recording got (checked; the run stops if not). The calling thread's CPU inside
   ``report`` is summed (``time.thread_time``: other load on the machine hardly moves it).

Reports are replayed twice: ``as sent`` (the client's batches, ~32 outcomes) and
``regrouped`` to ~1,024 outcomes with `concat_outcomes`, what the service's report queue
does to reports that queue up, and the batch size `service_throughput.py`'s targets use.
``bytes/outcome``: the pickled size of a report (what Ray carries) per outcome.

Usage::

    python benchmarks/recorded_traffic.py [--quick] [--json PATH] [--families toy procgen ...]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from results_file import write_results

from openended.envs.registry import env_task_space
from openended.hostinfo import cpu_facts
from openended.runtime.client import LocalTeacherClient
from openended.runtime.codec import InfoColumns, OutcomeBatch, concat_outcomes, encode_outcomes
from openended.runtime.core import TeacherServiceCore
from openended.runtime.envpool import EnvPoolCore
from openended.tasks import Outcome
from openended.teachers import compiled

CURRICULUM = "recorded"
FAMILIES = ("toy", "procgen", "simple_spread")
"""Default families: a one-step Box env, a Discrete level set, and a PettingZoo team env."""
REGROUP = 1024


@dataclass
class Recording:
    """Every call one real client made, in order: ``("sample", args, kwargs, task ids)`` or ``("report", batch)``."""

    family: str
    space: dict
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    episodes: int = 0
    seconds: float = 0.0

    @property
    def batches(self) -> list[OutcomeBatch]:
        return reports(self.calls)


def reports(calls: Sequence[tuple[Any, ...]]) -> list[OutcomeBatch]:
    """The `OutcomeBatch` of every report among ``calls``, in order."""
    return [c[1] for c in calls if c[0] == "report"]


class RecordingService:
    """Stands in for the service in front of a real client: forwards each call to ``core`` and keeps it."""

    def __init__(self, core: TeacherServiceCore, recording: Recording) -> None:
        self.core = core
        self.recording = recording

    def sample_columns(self, *args: Any, **kwargs: Any) -> Any:
        batch = self.core.sample_columns(*args, **kwargs)
        self.recording.calls.append(("sample", args, kwargs, task_ids(batch)))
        return batch

    def report(self, curriculum: str, batch: OutcomeBatch) -> int:
        self.recording.calls.append(("report", batch))
        return self.core.report(curriculum, batch)


def task_ids(batch: Any) -> np.ndarray | list:
    """The ids column of a sampled `TaskBatch` (to check that a replay draws the same tasks)."""
    ids = batch.ids
    return ids.copy() if isinstance(ids, np.ndarray) else list(ids)


def new_core(space: dict, log_dir: Path) -> TeacherServiceCore:
    core = TeacherServiceCore(event_log=str(log_dir / "events.jsonl"))
    core.add_curriculum(CURRICULUM, "random", space, config={"seed": 0})
    return core


def record(family: str, outcomes: int, seconds: float, tmp: Path) -> Recording:
    """Run one real pool of ``family`` until ``outcomes`` episodes ended or ``seconds`` passed."""
    space = env_task_space(family).to_dict()
    rec = Recording(family, space)
    core = new_core(space, tmp / f"record_{family}")
    client = LocalTeacherClient(RecordingService(core, rec), CURRICULUM)
    pool = EnvPoolCore(family, None, 8, client, steps_per_call=25, seed=0)
    t0 = time.perf_counter()
    while pool.total_episodes < outcomes and time.perf_counter() - t0 < seconds:
        pool.step()
    rec.seconds = time.perf_counter() - t0
    rec.episodes = pool.total_episodes
    client.flush()
    pool.close()
    core.close()
    return rec


_episode = itertools.count(1)


def plain_form(batch: OutcomeBatch) -> OutcomeBatch:
    """``batch``'s rows as `service_throughput.py` builds outcomes: same tasks, students and results;
    its episode ids (16 hex digits) and no infos."""
    students = [batch.student_names[c] for c in batch.student_codes.tolist()]
    rows = [
        Outcome(
            task,
            ret,
            success=None if s < 0 else bool(s),
            length=None if n < 0 else n,
            student_id=student,
            t=t,
            episode_id=f"{next(_episode):016x}",
        )
        for task, ret, s, n, student, t in zip(
            batch.task_id_list,
            batch.returns.tolist(),
            batch.success.tolist(),
            batch.lengths.tolist(),
            students,
            batch.t.tolist(),
        )
    ]
    return encode_outcomes(rows)


def regrouped(calls: Sequence[tuple[Any, ...]], rows: int) -> Iterator[tuple[Any, ...]]:
    """``calls`` with consecutive reports merged into batches of at least ``rows`` outcomes.

    A merged report goes out where its last part did, so every task it names was sampled before.
    """
    pending: list[OutcomeBatch] = []
    for call in calls:
        if call[0] != "report":
            yield call
            continue
        pending.append(call[1])
        if sum(map(len, pending)) >= rows:
            yield ("report", concat_outcomes(pending))
            pending = []
    if pending:
        yield ("report", concat_outcomes(pending))


def replay(rec: Recording, calls: Sequence[tuple[Any, ...]], log_dir: Path) -> float:
    """Seconds of this thread's CPU inside ``report`` when ``calls`` are replayed into a fresh core.

    Raises if a replay leaves the recorded path: a sample draws other tasks, or a teacher
    warns of outcomes for tasks it never issued (a cheaper path than the real one).
    """
    core = new_core(rec.space, log_dir)
    spent = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            for call in calls:
                if call[0] == "sample":
                    _, args, kwargs, expected = call
                    got = task_ids(core.sample_columns(*args, **kwargs))
                    if not np.array_equal(np.asarray(got), np.asarray(expected)):
                        raise RuntimeError(f"{rec.family}: a replayed sample drew other tasks than the recording did")
                    continue
                t0 = time.thread_time()
                try:
                    core.report(CURRICULUM, call[1])
                except RuntimeWarning as w:
                    raise RuntimeError(f"{rec.family}: a replayed report left the recorded path: {w}") from None
                spent += time.thread_time() - t0
        finally:
            core.close()
    return spent


def forms(batches: Sequence[OutcomeBatch]) -> dict[str, str]:
    """How the recorded reports hold their columns (the forms the service's cost depends on)."""

    def kinds(values: Iterator[str]) -> str:
        return "/".join(sorted(set(values)))

    return {
        "episode_ids": kinds("uint64" if isinstance(b.episode_ids, np.ndarray) else "strings" for b in batches),
        "task_ids": kinds("uint64" if isinstance(b.task_ids, np.ndarray) else "strings" for b in batches),
        "infos": kinds(
            "none" if b.infos is None else "columns" if isinstance(b.infos, InfoColumns) else "dicts" for b in batches
        ),
        "students": kinds(str(len(b.student_names)) for b in batches),
    }


def bytes_per_outcome(batches: Sequence[OutcomeBatch]) -> float:
    return sum(len(pickle.dumps(b, protocol=5)) for b in batches) / sum(map(len, batches))


def measure(rec: Recording, rounds: int, tmp: Path) -> dict[str, Any]:
    """Report CPU per outcome, recorded against plain, as sent and regrouped (medians over alternating rounds)."""
    as_sent = rec.calls
    plain = [("report", plain_form(c[1])) if c[0] == "report" else c for c in as_sent]
    variants = {
        "recorded": as_sent,
        "plain": plain,
        "recorded_regrouped": list(regrouped(as_sent, REGROUP)),
        "plain_regrouped": list(regrouped(plain, REGROUP)),
    }
    n = sum(map(len, rec.batches))
    us: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds + 1):  # round 0 warms up
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            spent = replay(rec, variants[name], tmp / f"replay_{rec.family}_{name}_{r}")
            if r:
                us[name].append(spent / n * 1e6)
    med = {name: statistics.median(xs) for name, xs in us.items()}
    sent = rec.batches
    grouped = reports(variants["recorded_regrouped"])
    return {
        "family": rec.family,
        "space": rec.space["kind"],
        "episodes": rec.episodes,
        "record_s": rec.seconds,
        "outcomes": n,
        "reports": len(sent),
        "rows_per_report": n / max(1, len(sent)),
        "rows_per_regrouped_report": n / max(1, len(grouped)),
        "forms": forms(sent),
        "forms_regrouped": forms(grouped),
        "report_us_per_outcome": med,
        "report_us_per_outcome_rounds": us,
        "recorded_over_plain": med["recorded"] / med["plain"],
        "recorded_over_plain_regrouped": med["recorded_regrouped"] / med["plain_regrouped"],
        "bytes_per_outcome": {
            "recorded": bytes_per_outcome(sent),
            "plain": bytes_per_outcome(reports(plain)),
        },
    }


def print_table(res: dict) -> None:
    head = (
        f"{'family':<14} {'space':<9} {'outcomes':>8} {'rows/rep':>8} {'ids':<8} {'infos':<8} "
        f"{'rec us':>7} {'plain us':>8} {'ratio':>6} {'rec@1k':>7} {'plain@1k':>8} {'ratio':>6} "
        f"{'B/out rec':>9} {'plain':>6}"
    )
    print(head)
    print("-" * len(head))
    for row in res["families"].values():
        us, f = row["report_us_per_outcome"], row["forms"]
        print(
            f"{row['family']:<14} {row['space']:<9} {row['outcomes']:>8,} {row['rows_per_report']:>8.1f} "
            f"{f['episode_ids']:<8} {f['infos']:<8} {us['recorded']:>7.2f} {us['plain']:>8.2f} "
            f"{row['recorded_over_plain']:>6.2f} {us['recorded_regrouped']:>7.2f} {us['plain_regrouped']:>8.2f} "
            f"{row['recorded_over_plain_regrouped']:>6.2f} {row['bytes_per_outcome']['recorded']:>9.1f} "
            f"{row['bytes_per_outcome']['plain']:>6.1f}"
        )
    print(
        "report CPU of the service's calling thread in us per outcome (event log on, random teacher); "
        f"'@1k': reports regrouped to ~{REGROUP:,} outcomes; ratio > 1: real hosts cost the service more "
        "than the benchmark's outcomes"
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer outcomes and rounds (~1 min)")
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument(
        "--families", nargs="+", default=list(FAMILIES), help=f"env families (default {' '.join(FAMILIES)})"
    )
    ap.add_argument("--rounds", type=int, default=None, help="alternating replay rounds (default 3 quick, 7 full)")
    args = ap.parse_args(argv)
    outcomes, seconds = (4096, 4.0) if args.quick else (16384, 15.0)
    rounds = args.rounds or (3 if args.quick else 7)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    compiled.warm_up()  # as a service does at start
    tmp = Path(tempfile.mkdtemp(prefix="recorded_traffic_"))
    t0 = time.perf_counter()
    try:
        families = {}
        for family in args.families:
            rec = record(family, outcomes, seconds, tmp)
            families[family] = measure(rec, rounds, tmp)
            print(f"  {family}: {rec.episodes:,} episodes recorded in {rec.seconds:.1f} s, replayed", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "benchmark": "recorded_traffic",
        "config": {"quick": args.quick, "outcomes": outcomes, "seconds": seconds, "rounds": rounds, **cpu_facts()},
        "families": families,
        "ratios": {f"recorded_over_plain_report_cpu_{f}": row["recorded_over_plain"] for f, row in families.items()}
        | {
            f"recorded_over_plain_report_cpu_{f}_b1024": row["recorded_over_plain_regrouped"]
            for f, row in families.items()
        },
        "wall_s": time.perf_counter() - t0,
    }
    print_table(res)
    write_results(args.json, res)
    return res


if __name__ == "__main__":
    main()
