"""What learner components need from a torch policy: its action logits on observations.

Learner components (EWC, sleep consolidation) work on any of:

* an RLlib RLModule (new API stack): ``forward_train({"obs": obs})["action_dist_inputs"]``;
* a plain ``torch.nn.Module`` returning logits, or a ``(logits, value)`` tuple.

`action_distribution` builds the module's own action distribution where it has one (an
RLModule: categorical, Gaussian, ...), a categorical over the logits otherwise. torch is
imported by the built-ins that use this module only, so ``openended.components`` itself
stays torch-free.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["action_distribution", "policy_logits", "as_obs_tensor", "named_parameters"]


def as_obs_tensor(obs: Any) -> torch.Tensor:
    """Observations (nested lists or arrays) as a float32 tensor."""
    if isinstance(obs, torch.Tensor):
        return obs.float()
    return torch.as_tensor(obs, dtype=torch.float32)


def policy_logits(module: Any, obs: torch.Tensor) -> torch.Tensor:
    """The module's action logits for a batch of observations (module doc: which modules)."""
    if hasattr(module, "forward_train"):
        out = module.forward_train({"obs": obs})
        return out["action_dist_inputs"]
    out = module(obs)
    return out[0] if isinstance(out, tuple) else out


def named_parameters(module: Any) -> dict[str, torch.nn.Parameter]:
    """The module's trainable parameters by name."""
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


class _RLlibDistribution:
    """An RLlib ``TorchDistribution`` seen through torch's ``sample`` / ``log_prob`` names."""

    def __init__(self, dist: Any) -> None:
        self.dist = dist

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.dist.logp(action)


def action_distribution(module: Any, obs: torch.Tensor) -> Any:
    """The module's action distribution on ``obs``: ``sample()`` and ``log_prob(action)``."""
    logits = policy_logits(module, obs)
    if hasattr(module, "get_train_action_dist_cls"):
        return _RLlibDistribution(module.get_train_action_dist_cls().from_logits(logits))
    return torch.distributions.Categorical(logits=logits)
