"""Two RLlib algorithms measured in alternating rounds (shared by the overhead benchmarks).

Each round measures both variants back to back (order flipped every round), so a burst of
outside load spoils one round, not the estimate; the headline is the median of per-round
ratios. Phase 1 times the env runners' ``sample()`` alone; phase 2 whole ``train()``
iterations (env steps from the runners' lifetime counters).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

Timed = list[tuple[int, float]]


def sample_once(algo: Any, sample_steps: int) -> tuple[int, float]:
    """Env steps sampled by every remote env runner (``sample_steps`` each) and the seconds it took."""
    t0 = time.perf_counter()
    counts = algo.env_runner_group.foreach_env_runner(
        lambda r: sum(len(e) for e in r.sample(num_timesteps=sample_steps, explore=True)),
        local_env_runner=False,
    )
    return int(sum(counts)), time.perf_counter() - t0


def measure(
    algos: dict[str, Any], names: tuple[str, str], rounds: int, sample_steps: int
) -> tuple[dict[str, Timed], dict[str, Timed], dict[str, int]]:
    """(sampling, training, episodes in timed training) per variant; one warm-up iteration each first."""
    from openended.runtime.rllib import algo_step_counts

    for algo in algos.values():  # warm-up iteration (first task fill, torch warm-up)
        algo.train()
    sample: dict[str, Timed] = {n: [] for n in names}
    train: dict[str, Timed] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            sample[name].append(sample_once(algos[name], sample_steps))
    # The runners' step counters also count phase 1's steps, reported with the next
    # train(): one more iteration absorbs them.
    last = {name: algo_step_counts(algo.train()) for name, algo in algos.items()}
    first = dict(last)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            counts = algo_step_counts(algos[name].train())
            train[name].append((counts[0] - last[name][0], time.perf_counter() - t0))
            last[name] = counts
    episodes = {name: last[name][1] - first[name][1] for name in algos}
    return sample, train, episodes


def rate(xs: Timed) -> float:
    """Pooled env steps per second."""
    return sum(s for s, _ in xs) / sum(t for _, t in xs)


def per_round(a: Timed, b: Timed) -> list[float]:
    """Rate of ``a`` over rate of ``b``, round by round.

    A round where either side counted no env steps (a runner's counters reported late on a
    loaded machine) has no ratio and is left out.
    """
    return [(x[0] / x[1]) / (y[0] / y[1]) for x, y in zip(a, b) if x[0] > 0 and y[0] > 0]


def median_ratio(a: Timed, b: Timed) -> float:
    """The median per-round ratio (the headline figure)."""
    return statistics.median(per_round(a, b))
