"""`ComponentCallback`: an RLlib 2.60 ``RLlibCallback`` that hosts driver components.

For RLlib used directly (``openended run`` hosts driver components in its own loop,
`openended.runtime.component_run`). Set by ``with_components(config, specs,
driver_callback=True)``; the specs travel in ``config.learner_config_dict["components"]``.

* ``on_algorithm_init``: builds the driver-placement components, starts their lifetime
  and a train block.
* ``on_train_result``: when a ``periodic_evaluation`` schedule is due, an evaluation block
  around ``algorithm.evaluate()`` -- RLlib's own evaluation, on the evaluation env runners
  where the config has them (``evaluation_num_env_runners``), with their own seeds; the
  results go to ``on_block_end(results=...)`` and into the train result under
  ``"component_evaluation"``.

Env-runner components are hosted by the env wrappers' episode host (`CurriculumEnv`), and
learner components by `ComponentLearnerMixin`: RLlib callbacks never run on learners.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback
from typing_extensions import override

from openended.components.base import Block, Placement
from openended.components.evaluation import evaluation_block, evaluation_due
from openended.components.host import ComponentHost
from openended.components.registry import build_components

__all__ = ["ComponentCallback"]


class ComponentCallback(RLlibCallback):
    """Hosts the driver components of ``config.learner_config_dict["components"]`` (module doc)."""

    host: ComponentHost | None = None
    iteration = 0

    @override
    def on_algorithm_init(self, *, algorithm: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        specs = (algorithm.config.learner_config_dict or {}).get("components", [])
        self.host = ComponentHost(build_components(specs, placement=Placement.DRIVER), placement="driver")
        self.host.lifetime_start()
        self.host.block_start(Block(0, "train"))

    @override
    def on_train_result(self, *, algorithm: Any, metrics_logger: Any = None, result: dict, **kwargs: Any) -> None:
        self.iteration += 1
        if self.host is not None and evaluation_due(self.host, self.iteration):
            result["component_evaluation"] = evaluation_block([self.host], algorithm.evaluate)
