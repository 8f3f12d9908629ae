"""Lifelong-learning scenarios, l2logger-format logs and lifelong metrics (pure Python, no Ray).

* `scenario`: the ``scenario:`` section and the block sequence it builds.
* `l2log`: the l2logger log format (writer, reader, episode → row adapter).
* `hooks`: `EpisodeLogHook`, which logs the episodes of any runtime `EpisodeHost`.
* `regimes`: log rows → regimes and l2metrics' preprocessing.
* `lifelong`: the lifelong metrics (PM, FT, BT, RP, SE, PR, MTP, MEP) as l2metrics defines them.
* `report`: the metric table and JSON for ``openended metrics``.

See docs/lifelong_metrics.md.
"""

from openended.metrics.scenario import (
    Block,
    BlockSpec,
    EpisodeSlot,
    ScenarioConfig,
    build_blocks,
    episode_slots,
    ste_configs,
)

__all__ = ["Block", "BlockSpec", "EpisodeSlot", "ScenarioConfig", "build_blocks", "episode_slots", "ste_configs"]
