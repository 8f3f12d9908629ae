"""The issued-task table's cost per task by batch size, against one compiled call per batch, same run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/issued_table_speed.py               # ~30 s
    .venv/bin/python benchmarks/issued_table_speed.py --json issued_table_speed.json

What it measures: every teacher remembers the tasks it issued (`IssuedTasks`, 32,768 by
default) so outcomes find them. Batches queue until the limit's worth wait, then are
indexed in issue order and the oldest are evicted. Timed: ``add`` of six limits' worth of
fresh `Box` task batches (a third more before the clock, to reach the steady state), per
task, and the worst single call (the one that indexes and evicts).

Baseline: the same table indexing and evicting one batch per compiled call, what it did
before 2026-12-07. Batch sizes: 1 (a teacher loop's ``sample(1)``), 16, 48 (a
`TeacherClient` refill with the default buffer 64 and low watermark 16) and 1,024 (the
throughput benchmarks'). Rounds alternate the two tables; medians over rounds.

JSON: ``{"sizes": {size: {"baseline_ns", "table_ns", "speedup", "baseline_worst_ms",
"table_worst_ms"}}, "config": ...}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import write_results

from openended.hostinfo import cpu_facts
from openended.tasks import Box, Task, TaskArrays
from openended.teachers.id_table import warm_up
from openended.teachers.issued import _SLOT_MASK, IssuedTasks, _BatchKeys, _only_key

LIMIT = 32_768
SIZES = (1, 16, 48, 1024)


class OneCallPerBatch(IssuedTasks):
    """The baseline: the same contract as the table had it until 2026-12-07, one compiled
    call per batch (single-task batches through the one-id calls, no arrays built)."""

    def _index(self, batches: list[tuple[int, TaskArrays | tuple[Task, ...]]]) -> None:
        for gen, batch in batches:
            slot = gen & _SLOT_MASK
            base = slot << 32
            if len(batch) == 1:
                self._table.insert_one(_only_key(batch), base)
            else:
                keys = _BatchKeys.of(batch)
                self._table.insert(keys.canonical, keys.rows + base)
            self._store[slot] = batch
            self._batches.append(gen)

    def _evict_over_limit(self) -> None:
        while self._n_indexed() > self.limit and len(self._batches) > 1:
            slot = self._batches.popleft() & _SLOT_MASK
            batch = self._store.pop(slot)
            if len(batch) == 1:
                self._table.remove_one(_only_key(batch), slot)
            else:
                self._table.remove_batch(_BatchKeys.of(batch).canonical, slot)


def batches(size: int, n_tasks: int, seed: int) -> list[TaskArrays]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 2**63, n_tasks, dtype=np.uint64)
    params = rng.random((n_tasks, 2))
    return [
        TaskArrays.uniform_origin(ids[i : i + size], "bench", params=params[i : i + size])
        for i in range(0, n_tasks, size)
    ]


def run(table: IssuedTasks, work: list[TaskArrays], warm: int) -> tuple[float, float]:
    """(ns per task, worst call in ms) of adding ``work[warm:]`` after ``work[:warm]``."""
    for b in work[:warm]:
        table.add(b)
    times = []
    for b in work[warm:]:
        t0 = time.perf_counter()
        table.add(b)
        times.append(time.perf_counter() - t0)
    tasks = sum(len(b) for b in work[warm:])
    return sum(times) / tasks * 1e9, max(times) * 1e3


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = ap.parse_args(argv)
    warm_up()
    space = Box([0.0, 0.0], [1.0, 1.0])
    sizes: dict[int, dict[str, float]] = {}
    for size in SIZES:
        work = batches(size, 8 * LIMIT, seed=size)
        warm = 2 * LIMIT // size
        got: dict[str, list[tuple[float, float]]] = {"baseline": [], "table": []}
        for r in range(args.rounds):
            order = [("baseline", OneCallPerBatch), ("table", IssuedTasks)]
            for name, cls in order if r % 2 == 0 else order[::-1]:
                got[name].append(run(cls(space, LIMIT), work, warm))
        row = {f"{name}_ns": statistics.median(ns for ns, _ in xs) for name, xs in got.items()}
        row |= {f"{name}_worst_ms": statistics.median(ms for _, ms in xs) for name, xs in got.items()}
        row["speedup"] = row["baseline_ns"] / row["table_ns"]
        sizes[size] = row
    res = {"sizes": sizes, "config": {"limit": LIMIT, "rounds": args.rounds, **cpu_facts()}}
    print(f"{'batch':>6} {'one call per batch ns/task':>27} {'now ns/task':>12} {'speedup':>8} {'worst call ms':>22}")
    for size, row in sizes.items():
        print(
            f"{size:>6} {row['baseline_ns']:>27.1f} {row['table_ns']:>12.1f} {row['speedup']:>7.2f}x "
            f"{row['baseline_worst_ms']:>10.2f} -> {row['table_worst_ms']:.2f}"
        )
    write_results(args.json, res)
    return res


if __name__ == "__main__":
    main()
