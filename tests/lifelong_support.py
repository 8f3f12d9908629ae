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
