"""Lifelong-learning scenarios, l2logger-format logs and lifelong metrics (pure Python, no Ray).

* `scenario`: the ``scenario:`` section and the block sequence it builds.
* `l2log`: the l2logger log format (writer, reader, episode → row adapter).
* `lifelong`: the lifelong metrics (PM, FT, BT, RP, SE, PR, MTP, MEP) as l2metrics defines them.
* `report`: the metric table and JSON for ``openended metrics``.
"""

from openended.metrics.scenario import Block, BlockSpec, ScenarioConfig, build_blocks, ste_configs

__all__ = ["Block", "BlockSpec", "ScenarioConfig", "build_blocks", "ste_configs"]
