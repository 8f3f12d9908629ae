"""Episode dedup: `EpisodeDedup` (compiled id table) against a Python ``set`` FIFO, same run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/dedup_speed.py                 # ~10 s
    .venv/bin/python benchmarks/dedup_speed.py --json dedup_speed.json

What it measures: microseconds per 1,024-outcome report for what the service does with
the batch's episode ids (`new_rows`, then `commit` of the accepted rows), with the memory
full (262,144 ids, the default capacity; 300 batches before the clock starts, 280 timed).
Baseline: the same contract over a Python ``set`` and a ``deque`` of committed lists,
checking every commit again, as the service did before the compiled table.

Id patterns: ``random`` 64-bit ids; ``N clients``: what `TeacherClient`s assign (a random
32-bit token per client, then a counter), reports interleaving N clients' episodes.
Python hashes an int to itself, so ids that differ only above bit 32 (one counter value
across clients) land in one slot of a ``set`` and its probes lengthen with the number of
clients; the compiled table hashes them apart (Fibonacci hashing).

JSON: per pattern ``{pattern: {"baseline_us", "dedup_us", "speedup"}}`` plus ``config``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import write_results

from openended.hostinfo import cpu_facts
from openended.runtime.dedup import EpisodeDedup
from openended.teachers.id_table import warm_up

CAPACITY = 262_144
BATCH = 1024
WARM, TIMED = 300, 280


class SetFifo:
    """The baseline: remembered ids in a ``set``, commits in a ``deque``, every commit checked."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen: set[int] = set()
        self.order: deque[list[int]] = deque()

    def new_rows(self, keys: list[int]) -> list[int] | None:
        if len(set(keys)) == len(keys) and self.seen.isdisjoint(keys):
            return None
        return [r for r, k in enumerate(keys) if k not in self.seen]

    def commit(self, keys: list[int]) -> None:
        distinct = set(keys)
        fresh = (
            keys
            if len(distinct) == len(keys) and distinct.isdisjoint(self.seen)
            else [k for k in dict.fromkeys(keys) if k not in self.seen]
        )
        self.seen.update(fresh)
        self.order.append(list(fresh))
        over = len(self.seen) - self.capacity
        while over > 0:
            oldest = self.order[0]
            if len(oldest) <= over:
                self.order.popleft()
                self.seen.difference_update(oldest)
                over -= len(oldest)
            else:
                self.seen.difference_update(oldest[:over])
                self.order[0] = oldest[over:]
                over = 0


def client_ids(rng: np.random.Generator, clients: int, n: int) -> np.ndarray:
    """``n`` ids as ``clients`` TeacherClients assign them, interleaved round-robin."""
    tokens = rng.integers(0, 2**32, clients, dtype=np.uint64)
    per = -(-n // clients)
    ids = (tokens[:, None] << np.uint64(32)) | np.arange(per, dtype=np.uint64)[None, :]
    return ids.T.reshape(-1)[:n]


def time_per_batch(batches: list[np.ndarray], report: Callable[[np.ndarray], None]) -> float:
    """Microseconds per batch over the timed batches, after filling the memory."""
    for b in batches[:WARM]:
        report(b)
    t0 = time.perf_counter()
    for b in batches[WARM : WARM + TIMED]:
        report(b)
    return (time.perf_counter() - t0) / TIMED * 1e6


def measure(ids: np.ndarray) -> dict[str, float]:
    batches = [ids[i : i + BATCH] for i in range(0, (WARM + TIMED) * BATCH, BATCH)]
    base = SetFifo(CAPACITY)

    def report_baseline(b: np.ndarray) -> None:
        keys = b.tolist()
        base.new_rows(keys)
        base.commit(keys)

    dedup = EpisodeDedup(CAPACITY)

    def report_dedup(b: np.ndarray) -> None:
        dedup.commit(b, checked=dedup.new_rows(b) is None)

    baseline_us = time_per_batch(batches, report_baseline)
    dedup_us = time_per_batch(batches, report_dedup)
    return {"baseline_us": baseline_us, "dedup_us": dedup_us, "speedup": baseline_us / dedup_us}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    warm_up()
    rng = np.random.default_rng(0)
    n = (WARM + TIMED) * BATCH
    patterns = {"random": rng.integers(0, 2**63, n, dtype=np.uint64)}
    for clients in (1, 64, 1000):
        patterns[f"{clients} clients"] = client_ids(rng, clients, n)
    res: dict = {name: measure(ids) for name, ids in patterns.items()}
    res["config"] = {"capacity": CAPACITY, "batch": BATCH, "warm_batches": WARM, "timed_batches": TIMED, **cpu_facts()}
    print(f"{'ids':14s} {'set FIFO us':>12s} {'EpisodeDedup us':>16s} {'speedup':>8s}   (per {BATCH:,}-outcome report)")
    for name in patterns:
        r = res[name]
        print(f"{name:14s} {r['baseline_us']:12.1f} {r['dedup_us']:16.1f} {r['speedup']:8.2f}")
    write_results(args.json, res)
    return res


if __name__ == "__main__":
    main()
