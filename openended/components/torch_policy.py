"""What learner components need from a torch policy: its action logits on observations.

Learner components (EWC, sleep consolidation) work on any of:

* an RLlib RLModule (new API stack): ``forward_train({"obs": obs})["action_dist_inputs"]``;
* a plain ``torch.nn.Module`` returning logits, or a ``(logits, value)`` tuple.

Discrete action spaces (categorical logits). torch is imported by the built-ins that use
this module only, so ``openended.components`` itself stays torch-free.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["policy_logits", "as_obs_tensor", "named_parameters"]


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
