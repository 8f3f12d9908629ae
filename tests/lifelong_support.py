"""Simulated lifelong runs logged in the l2logger format, for the metrics tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openended.metrics.l2log import EpisodeLogger, find_scenario_dirs
from openended.metrics.scenario import ScenarioConfig, build_blocks


def simulate(base: Path, name: str, cfg: ScenarioConfig, seed: int = 0, transfer: float = 0.2) -> Path:
    """Log a toy learner through ``cfg``: skill grows on the trained task, leaks to others, decays."""
    rng = np.random.default_rng(seed)
    skill = dict.fromkeys(cfg.tasks, 0.5)
    logger = EpisodeLogger.create(base, name, cfg)
    for block in build_blocks(cfg):
        for task in block.tasks:
            for _ in range(block.episodes):
                if block.learning_allowed:
                    for other in skill:
                        if other == task:
                            skill[other] += 0.3 * (10 - skill[other]) / 10
                        else:
                            skill[other] += transfer * 0.05 - 0.02 * skill[other] / 10
                ret = skill[task] + rng.normal(0, 0.3)
                logger.episode(block, task, ret, success=ret > 5, length=10)
    logger.close()
    (path,) = [p for p in find_scenario_dirs(base) if p.name.startswith(name + "-")]
    return path


class BanditLearner:
    """REINFORCE on a K-armed bandit where task ``k`` pays for arm ``k``: a real (tiny) learner.

    ``shared=True``: one softmax policy for every task (no task input), so training a task
    overwrites the others — it forgets. ``shared=False``: one policy per task — it cannot.
    """

    def __init__(self, tasks: list[str], shared: bool, lr: float = 0.5, seed: int = 0) -> None:
        self.tasks, self.shared, self.lr = tasks, shared, lr
        self.logits = np.zeros((1 if shared else len(tasks), len(tasks)))
        self.rng = np.random.default_rng(seed)

    def episode(self, task: str, learn: bool, seed: int | None = None) -> float:
        rng = np.random.default_rng(seed) if seed is not None else self.rng
        k = self.tasks.index(task)
        row = 0 if self.shared else k
        p = np.exp(self.logits[row] - self.logits[row].max())
        p /= p.sum()
        arm = int(rng.choice(len(p), p=p))
        reward = float(arm == k)
        if learn:
            grad = -p
            grad[arm] += 1.0
            self.logits[row] += self.lr * reward * grad
        return reward


def run_bandit(base: Path, name: str, cfg: ScenarioConfig, shared: bool, seed: int = 0) -> Path:
    """Log a `BanditLearner` through ``cfg`` (learning only in learning blocks, fixed evaluation seeds)."""
    from openended.metrics.scenario import episode_slots

    learner = BanditLearner(cfg.tasks, shared, seed=seed)
    logger = EpisodeLogger.create(base, name, cfg)
    for slot in episode_slots(build_blocks(cfg)):
        r = learner.episode(slot.task, slot.block.learning_allowed, slot.seed)
        logger.episode(slot.block, slot.task, r, success=r > 0, length=1, exp_num=slot.exp_num)
    logger.close()
    (path,) = [p for p in find_scenario_dirs(base) if p.name.startswith(name + "-")]
    return path
