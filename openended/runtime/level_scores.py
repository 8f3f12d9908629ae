"""PLR's level score from the RLlib learner's value function, sent with the episode's outcome.

Why: Prioritized Level Replay (Jiang et al., 2021) ranks levels by the learner's value
error on them: the mean absolute GAE over the episode (``value_l1``, the paper's Procgen
default). The teacher only sees outcomes; without this it falls back to a return proxy.

Where: the value function lives on the learner only (RLlib's env runners hold an
inference-only module without the critic), so the score is computed there:

1. the env wrapper (`CurriculumEnv` with ``defer_outcomes=True``) does not report a
   finished episode's outcome; it puts it, with where to report it, in the episode's last
   ``info`` (`PENDING_KEY`), which travels with the episode to the learner;
2. `LevelScoreConnector`, the last piece of the PPO learner's connector pipeline (after
   RLlib's GAE), recomputes the batch's values, takes the raw GAE advantages
   (``value targets - values``, before RLlib standardises them), and keeps, per episode,
   the running sum of |A_t| over its chunks (an episode longer than one sampling round
   arrives in several, as the reference's partial scores);
3. at the episode's last chunk it reports the outcome with ``info["score"]`` = mean |A_t|
   through this process's teacher client.

Contents:
    ParkingClient       -- the env side: keeps the finished episode's outcome instead of reporting it.
    LevelScoreConnector -- the learner connector piece (steps 2-3).
    ScoringPPOLearner   -- PPO's torch learner with the piece appended.
    wants_level_scores  -- whether an experiment's teacher takes learner scores (PLR).
    PENDING_KEY
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from typing_extensions import override

from openended.config import Experiment
from openended.runtime.learner import ComponentLearnerMixin
from openended.tasks import Outcome

__all__ = [
    "ParkingClient",
    "LevelScoreConnector",
    "ScoringPPOLearner",
    "ScoringComponentPPOLearner",
    "wants_level_scores",
    "PENDING_KEY",
]

#: ``info`` key of an episode's last step: its outcome and where to report it, waiting for the score.
PENDING_KEY = "openended_pending_outcome"
#: Partial sums kept for episodes still running (oldest dropped beyond this many).
MAX_OPEN_EPISODES = 100_000


class ParkingClient:
    """A `TaskClient` whose ``report`` keeps the outcome (``parked``) for the env wrapper to send along."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.parked: Outcome | None = None

    def next_task(self) -> Any:
        """The inner client's next task."""
        return self.inner.next_task()

    def new_episode_id(self) -> str | None:
        """The inner client's next episode id (the outcome is built with it, whoever reports it).

        ``None`` if the inner client hands out none: the client that reports it assigns one.
        """
        new_id = getattr(self.inner, "new_episode_id", None)
        return new_id() if new_id is not None else None

    def report(self, outcome: Outcome) -> None:
        """Keep ``outcome``: it travels to the learner in the episode's last ``info``."""
        self.parked = outcome

    def flush(self, wait: bool = False) -> None:
        """Flush the inner client."""
        self.inner.flush(wait)

    def stats(self) -> dict:
        """The inner client's stats."""
        return self.inner.stats()

    def close(self) -> None:
        """Close the inner client."""
        self.inner.close()


class LevelScoreConnector(ConnectorV2):
    """After GAE: per finished episode, mean |raw advantage| over all its chunks, reported with its outcome."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: OrderedDict[str, tuple[float, int]] = OrderedDict()  # episode id -> (sum |A|, steps)
        self._clients: dict[tuple, Any] = {}

    @override
    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any) -> Any:
        from ray.rllib.core.columns import Columns
        from ray.rllib.evaluation.postprocessing import Postprocessing
        from ray.rllib.utils.numpy import convert_to_numpy

        from openended.runtime.process_clients import ProcessClient

        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        for module_id, module_batch in batch.items():
            if Postprocessing.VALUE_TARGETS not in module_batch:
                continue
            values = _flat(convert_to_numpy(rl_module[module_id].compute_values(module_batch)))
            raw = np.abs(_flat(convert_to_numpy(module_batch[Postprocessing.VALUE_TARGETS])) - values)
            mask = module_batch.get(Columns.LOSS_MASK)
            valid = np.ones_like(raw, bool) if mask is None else _flat(convert_to_numpy(mask)).astype(bool)
            offset = 0
            for ep in (e for e in sa_episodes if e.module_id in (None, module_id)):
                n = len(ep)
                seg = raw[offset : offset + n][valid[offset : offset + n]]
                offset += n
                key = str(ep.id_).rsplit("_", 1)[0]  # AddOneTsToEpisodesAndTruncate appends "_<i>"
                total, steps = self._open.pop(key, (0.0, 0))
                total, steps = total + float(seg.sum()), steps + int(seg.size)
                pending = _pending(ep)
                if pending is None:
                    self._open[key] = (total, steps)
                    while len(self._open) > MAX_OPEN_EPISODES:
                        self._open.popitem(last=False)
                    continue
                outcome = Outcome.from_dict(pending["outcome"])
                outcome.info["score"] = total / steps if steps else 0.0
                where = (pending["service"], pending["namespace"], pending["curriculum"], pending["student"])
                client = self._clients.get(where)
                if client is None:
                    client = self._clients[where] = ProcessClient(
                        pending["service"], pending["curriculum"], pending["student"], namespace=pending["namespace"]
                    ).get()
                client.report(outcome)
        return batch


def _flat(x: Any) -> np.ndarray:
    return np.asarray(x).reshape(-1)


def _pending(episode: Any) -> dict | None:
    """The parked outcome in the episode's last real step's ``info`` (None while it runs on)."""
    for info in reversed(list(episode.get_infos())[-2:]):  # the learner appended one bootstrap step
        if isinstance(info, dict) and isinstance(info.get(PENDING_KEY), dict):
            return info[PENDING_KEY]
    return None


class ScoringPPOLearner(PPOTorchLearner):
    """PPO's torch learner whose connector pipeline ends with `LevelScoreConnector` (after GAE)."""

    @override
    def build(self) -> None:
        super().build()
        if self._learner_connector is not None:
            self._learner_connector.append(LevelScoreConnector())


def wants_level_scores(exp: Experiment) -> bool:
    """Whether the experiment's teacher takes the learner's level scores (PLR, unless ``score_source: proxy``).

    Only PPO (with its value function) computes them; the teacher must read ``info["score"]``.
    """
    from openended.errors import ConfigError
    from openended.teachers.registry import teacher_class

    if exp.algo.name != "ppo":
        return False
    fields = teacher_class(exp.teacher.name).Config.model_fields
    if "score_source" not in fields:
        return False
    if exp.teacher.config.get("score_source", fields["score_source"].default) == "proxy":
        return False
    key = exp.teacher.config.get("score_key", fields["score_key"].default if "score_key" in fields else "score")
    if key != "score":
        raise ConfigError(f"teacher.config.score_key: RLlib runs report the level score as 'score', got {key!r}")
    return True


class ScoringComponentPPOLearner(ComponentLearnerMixin, ScoringPPOLearner):
    """`ScoringPPOLearner` with the learner components' loss terms (PLR's score beside, e.g., EWC)."""
