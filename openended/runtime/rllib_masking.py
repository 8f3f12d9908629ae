"""Action masking for RLlib 2.60 PPO (new API stack): envs whose observation carries ``action_mask``.

Contents:
    has_action_mask       -- whether an observation space is a Dict with an ``action_mask`` entry.
    MaskedObservations    -- env wrapper: ``{"action_mask", "observations": <the rest, flattened>}``.
    FunctionArgsDistribution -- function-and-arguments actions: unused arguments leave the log-prob out.
    ActionMaskedPPOModule -- PPO's default torch RLModule with masked action logits.
    masked_module_spec    -- the ``RLModuleSpec`` a PPO config uses for it.

How: the env reports which actions are allowed now as a 0/1 vector laid out like the
policy's logits (``Discrete(n)``: ``n`` entries; ``MultiDiscrete(nvec)``: ``sum(nvec)``,
one block per component, as RLlib concatenates them; see `openended.envs.sc2_actions`).
The module runs PPO's default encoder and heads on the other observations and adds
``log(mask)`` (clamped to RLlib's ``FLOAT_MIN``) to the logits in every forward pass
(exploration, inference and training), so a masked action has probability ~0 when
sampling and when the loss recomputes log-probabilities. The value function never sees
the mask. With ``model_config["argument_usage"]`` (an env's ``action_argument_usage()``;
`openended run` passes it) a ``MultiDiscrete([function, args...])`` action uses
`FunctionArgsDistribution`: the arguments the chosen function does not take are left out
of the log-probability, the entropy and the KL.

Why a wrapper flattens the rest: RLlib's default encoders take one Box; the SC2 feature
layers at the small resolutions used here fit an MLP. A CNN over the screen would be a
``model_config`` / custom encoder change, not a masking change.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.torch_utils import FLOAT_MIN
from typing_extensions import override

__all__ = [
    "MASK_KEY",
    "ARGUMENT_USAGE_KEY",
    "has_action_mask",
    "MaskedObservations",
    "FunctionArgsDistribution",
    "function_args_distribution",
    "ActionMaskedPPOModule",
    "masked_module_spec",
]

#: The observation entry holding the mask.
MASK_KEY = "action_mask"
#: ``model_config`` key: which argument components each function takes (``env.action_argument_usage()``).
ARGUMENT_USAGE_KEY = "argument_usage"
_OBS_KEY = "observations"


def has_action_mask(space: gym.Space) -> bool:
    """Whether ``space`` is a Dict observation with an ``action_mask`` entry."""
    return isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces


class MaskedObservations(gym.ObservationWrapper):
    """``{..., "action_mask": m}`` -> ``{"action_mask": float32 m, "observations": the rest, flattened}``.

    ``set_task`` and ``task`` stay reachable through the wrapper (``env.unwrapped`` / attribute
    forwarding), so hosts and evaluations use it like the env it wraps.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if not has_action_mask(space):
            raise TypeError(f"MaskedObservations needs a Dict observation with {MASK_KEY!r}, got {space}")
        assert isinstance(space, gym.spaces.Dict)  # for mypy: has_action_mask checked it
        mask_space = space.spaces[MASK_KEY]
        self._rest = gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != MASK_KEY})
        flat = gym.spaces.flatten_space(self._rest)
        assert isinstance(flat, gym.spaces.Box), "a Dict of Boxes flattens to a Box"
        self.observation_space = gym.spaces.Dict(
            {
                MASK_KEY: gym.spaces.Box(0.0, 1.0, mask_space.shape, np.float32),
                _OBS_KEY: gym.spaces.Box(flat.low, flat.high, flat.shape, np.float32),
            }
        )

    @override
    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        rest = {k: observation[k] for k in self._rest.spaces}
        return {
            MASK_KEY: np.asarray(observation[MASK_KEY], dtype=np.float32),
            _OBS_KEY: np.asarray(gym.spaces.flatten(self._rest, rest), dtype=np.float32),
        }


class FunctionArgsDistribution(TorchMultiCategorical):
    """``MultiDiscrete([function, arg_1, ..., arg_k])`` where a function uses only some arguments.

    The action is hierarchical: the function is drawn, then the arguments it takes; the
    others are sampled (the space has them) but never reach the env. So the
    log-probability is ``log p(f) + sum_j used[f, j] log p(a_j)``, the entropy
    ``H(f) + sum_j P(used_j) H(a_j)`` with ``P(used_j) = sum_f p(f) used[f, j]``, and the KL
    likewise (the SC2LE agents' treatment of unused arguments). ``usage`` is set on a
    subclass by `function_args_distribution`.
    """

    usage: Any = None  # torch tensor (functions, arguments), float 0/1

    def _used(self, functions: Any) -> Any:
        return self.usage.to(functions.device)[functions.long()]

    def _p_used(self) -> Any:
        probs = self._cats[0]._dist.probs
        return probs @ self.usage.to(probs.device)

    @override
    def logp(self, value: Any, **kwargs: Any) -> Any:
        import torch

        parts = torch.unbind(value, dim=-1)
        args = torch.stack([torch.as_tensor(c.logp(a)) for c, a in zip(self._cats[1:], parts[1:])], dim=-1)
        return self._cats[0].logp(parts[0]) + (args * self._used(parts[0])).sum(-1)

    @override
    def entropy(self, **kwargs: Any) -> Any:
        import torch

        args = torch.stack([torch.as_tensor(c.entropy()) for c in self._cats[1:]], dim=-1)
        return self._cats[0].entropy() + (args * self._p_used()).sum(-1)

    @override
    def kl(self, other: Any, **kwargs: Any) -> Any:
        import torch

        args = torch.stack([torch.as_tensor(c.kl(o)) for c, o in zip(self._cats[1:], other._cats[1:])], dim=-1)
        return self._cats[0].kl(other._cats[0]) + (args * self._p_used()).sum(-1)


def function_args_distribution(usage: Any, input_lens: list[int]) -> type:
    """The `FunctionArgsDistribution` class for this usage table and these component sizes."""
    import torch

    table = torch.as_tensor(usage, dtype=torch.float32)
    if table.ndim != 2 or table.shape != (input_lens[0], len(input_lens) - 1):
        raise ValueError(
            f"argument_usage must be (functions={input_lens[0]}, arguments={len(input_lens) - 1}), "
            f"got shape {tuple(table.shape)}"
        )
    cls: Any = type("FunctionArgsDistributionWithUsage", (FunctionArgsDistribution,), {"usage": table})
    return cls.get_partial_dist_cls(input_lens=list(input_lens))


class ActionMaskedPPOModule(DefaultPPOTorchRLModule):
    """PPO's default torch RLModule on ``obs["observations"]`` with logits masked by ``obs["action_mask"]``."""

    def __init__(self, *args: Any, observation_space: gym.Space | None = None, **kwargs: Any) -> None:
        if observation_space is None or not has_action_mask(observation_space):
            raise TypeError(
                f"ActionMaskedPPOModule needs a Dict observation with {MASK_KEY!r} and {_OBS_KEY!r} "
                f"(wrap the env in MaskedObservations), got {observation_space}"
            )
        assert isinstance(observation_space, gym.spaces.Dict)
        self._full_observation_space = observation_space
        # The catalog builds the encoder for the observations the encoder actually sees.
        super().__init__(*args, observation_space=observation_space.spaces[_OBS_KEY], **kwargs)

    @override
    def setup(self) -> None:
        super().setup()
        usage = (self.model_config or {}).get(ARGUMENT_USAGE_KEY) if isinstance(self.model_config, dict) else None
        if usage is not None and isinstance(self.action_space, gym.spaces.MultiDiscrete):
            self.action_dist_cls = function_args_distribution(usage, [int(n) for n in self.action_space.nvec])
        # Connectors and checkpoints compare against what the env really emits.
        self.observation_space = self._full_observation_space

    @staticmethod
    def _split(batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        obs = batch[Columns.OBS]
        return obs[MASK_KEY], {**batch, Columns.OBS: obs[_OBS_KEY]}

    @staticmethod
    def _masked(out: dict[str, Any], mask: Any) -> dict[str, Any]:
        import torch

        out[Columns.ACTION_DIST_INPUTS] = out[Columns.ACTION_DIST_INPUTS] + torch.clamp(torch.log(mask), min=FLOAT_MIN)
        return out

    @override
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = self._split(batch)
        return self._masked(super()._forward(inner, **kwargs), mask)

    @override
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = self._split(batch)
        return self._masked(super()._forward_train(inner, **kwargs), mask)

    @override
    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> Any:
        if embeddings is None:
            _, batch = self._split(batch)
        return super().compute_values(batch, embeddings)


def masked_module_spec() -> RLModuleSpec:
    """The ``RLModuleSpec`` of `ActionMaskedPPOModule` (``config.rl_module(rl_module_spec=...)``)."""
    return RLModuleSpec(module_class=ActionMaskedPPOModule)
