"""PPO's RLModule with the VPT network as its trunk: VPT as the initial policy of an RLlib run.

`VPTPPOModule` runs `openended.priors.vpt.VPTNet` (OpenAI's VPT architecture, optionally
with OpenAI's pretrained weights) on the env's frames, resized to the network's input size
(128 x 128 for the released models), with a value head and a policy for the env's own
action space on its latent. On the `minecraft` env's actions (20 buttons + camera bins)
the policy is VPT's own joint heads read through their per-dimension marginals
(`openended.priors.vpt.factored_log_probs`): the initial policy is VPT's. On any other
``Discrete`` / ``MultiDiscrete`` action space (Crafter's 17 actions) a new linear head
starts near zero (an almost uniform policy over the trunk's features). A ``task`` entry of
a Dict observation (Crafter's task index) is embedded and added to the image features
where VPT adds its own goal embeddings, zero-initialised, so the pretrained trunk's
features are unchanged at the start.

Selected in an experiment with ``algo.config.rl_module: vpt`` and configured through
``algo.config.model_config``:

* ``vpt``: ``"1x"`` (OpenAI's 1x architecture, the default), ``"small"`` (a tiny config for
  smoke runs) or a ``policy_kwargs`` dict;
* ``model_path`` / ``weights_path``: OpenAI ``.model`` / ``.weights`` files: the trunk
  starts from their weights (the architecture then comes from the ``.model`` file);
* ``image_key``: the image entry of Dict observations (default: ``image``, else ``pov``);
* ``heads``: ``auto`` (VPT's heads on the minecraft env's actions, new ones otherwise),
  ``vpt`` or ``new``;
* ``exploration_prior``: ``eps`` in [0, 1) -- a behaviour prior for exploration: env runners
  sample each action dimension from ``(1 - eps) * policy + eps * prior``, the prior being the
  frozen pretrained VPT of ``model_path`` (its marginals; minecraft actions only). PPO's
  recorded log-probabilities are the mixture's, so its importance ratio corrects for it.

Each step is scored on its own frame (the attention memory is empty: the module is
stateless for RLlib); carrying VPT's memory through RLlib's stateful-module API is not done.
Observations must reach the module as a Dict or an image (``algo.flatten_observations:
false``).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from torch import nn
from typing_extensions import override

from openended.errors import ConfigError
from openended.priors.vpt import (
    ENV_ACTION_NVEC,
    VPTConfig,
    VPTPolicy,
    factored_log_probs,
    frame_marginals,
    load_vpt,
    prepare_frames,
)

__all__ = ["VPTPPOModule", "vpt_module_spec", "vpt_config_from_model_config", "mix_with_prior"]

MODEL_KEYS = {"vpt", "model_path", "weights_path", "image_key", "heads", "exploration_prior"}


def vpt_config_from_model_config(model_config: dict[str, Any]) -> VPTConfig:
    """The trunk's architecture from ``model_config["vpt"]`` (module doc); `ConfigError` names the field."""
    arch = model_config.get("vpt", "1x")
    if arch == "1x":
        return VPTConfig.vpt_1x()
    if arch == "small":
        return VPTConfig.small(image=64)
    if isinstance(arch, dict):
        try:
            return VPTConfig.from_kwargs(arch)
        except ConfigError as exc:
            raise ConfigError(f"algo.config.model_config.vpt: {exc}") from None
    raise ConfigError(f"algo.config.model_config.vpt: '1x', 'small' or a policy_kwargs dict, got {arch!r}")


def vpt_module_spec(model_config: dict[str, Any] | None) -> RLModuleSpec:
    """The ``RLModuleSpec`` of `VPTPPOModule`; checks ``model_config`` first (no network is built)."""
    mc = dict(model_config or {})
    unknown = set(mc) - MODEL_KEYS
    if unknown:
        raise ConfigError(
            f"algo.config.model_config: unknown keys {sorted(unknown)} for rl_module vpt ({sorted(MODEL_KEYS)})"
        )
    if mc.get("heads", "auto") not in ("auto", "vpt", "new"):
        raise ConfigError(f"algo.config.model_config.heads: 'auto', 'vpt' or 'new', got {mc['heads']!r}")
    eps = mc.get("exploration_prior", 0.0)
    if not isinstance(eps, int | float) or isinstance(eps, bool) or not 0.0 <= eps < 1.0:
        raise ConfigError(f"algo.config.model_config.exploration_prior: a number in [0, 1), got {eps!r}")
    if eps > 0 and not mc.get("model_path"):
        raise ConfigError(
            "algo.config.model_config.exploration_prior: needs model_path / weights_path (a pretrained VPT)"
        )
    if bool(mc.get("model_path")) != bool(mc.get("weights_path")):
        raise ConfigError("algo.config.model_config: give both model_path and weights_path (OpenAI's VPT files)")
    if not mc.get("model_path"):
        vpt_config_from_model_config(mc)
    return RLModuleSpec(module_class=VPTPPOModule, model_config=mc)


def mix_with_prior(logits: torch.Tensor, prior_logp: torch.Tensor, eps: float) -> torch.Tensor:
    """Per action dimension, log of ``(1 - eps) * softmax(logits) + eps * exp(prior_logp)`` (minecraft layout)."""
    parts = []
    for q, p in zip(torch.split(logits, list(ENV_ACTION_NVEC), -1), torch.split(prior_logp, list(ENV_ACTION_NVEC), -1)):
        parts.append(
            torch.logaddexp(torch.log_softmax(q, -1) + math.log1p(-eps), torch.log_softmax(p, -1) + math.log(eps))
        )
    return torch.cat(parts, dim=-1)


def _image_space(space: gym.Space, key: str | None) -> tuple[str | None, gym.spaces.Box]:
    """Which entry of the observation is the image (``None``: the observation itself)."""
    if isinstance(space, gym.spaces.Dict):
        names = [key] if key else ["image", "pov"]
        for name in names:
            sub = space.spaces.get(name)
            if isinstance(sub, gym.spaces.Box) and len(sub.shape) == 3 and sub.shape[-1] == 3:
                return name, sub
        raise ConfigError(f"rl_module vpt: the Dict observation has no (H, W, 3) image under {names}: {space}")
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.shape[-1] == 3:
        return None, space
    raise ConfigError(
        f"rl_module vpt: observations must be (H, W, 3) frames or a Dict holding them, got {space} "
        "(set algo.flatten_observations: false)"
    )


class VPTPPOModule(TorchRLModule, ValueFunctionAPI):
    """The VPT trunk with new policy / value heads for the env's action space (module doc)."""

    @override
    def setup(self) -> None:
        given = self.model_config if isinstance(self.model_config, dict) else {}
        mc = {k: v for k, v in given.items() if k in MODEL_KEYS}  # RLlib adds its own (vf_share_layers, ...)
        if mc.get("model_path"):
            policy = load_vpt(mc["model_path"], mc["weights_path"])
        else:
            policy = VPTPolicy(vpt_config_from_model_config(mc))
        self.trunk = policy.net
        config = self.trunk.config
        if self.observation_space is None:
            raise ConfigError("rl_module vpt: the module needs the env's observation space")
        self.image_key, _ = _image_space(self.observation_space, mc.get("image_key"))
        self.task_embedding: nn.Embedding | None = None
        task_space = (
            self.observation_space.spaces.get("task") if isinstance(self.observation_space, gym.spaces.Dict) else None
        )
        if isinstance(task_space, gym.spaces.Discrete):
            self.task_embedding = nn.Embedding(int(task_space.n), config.hidsize)
            nn.init.zeros_(self.task_embedding.weight)
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            n_logits = int(space.n)
        elif isinstance(space, gym.spaces.MultiDiscrete):
            n_logits = int(np.sum(space.nvec))
            multi: Any = TorchMultiCategorical  # RLlib types the classmethod's receiver as an instance
            self.action_dist_cls = multi.get_partial_dist_cls(input_lens=[int(n) for n in space.nvec])
        else:
            raise ConfigError(f"rl_module vpt: Discrete or MultiDiscrete actions only, got {space}")
        minecraft = isinstance(space, gym.spaces.MultiDiscrete) and tuple(int(n) for n in space.nvec) == ENV_ACTION_NVEC
        heads = mc.get("heads", "auto")
        if heads == "vpt" and not minecraft:
            raise ConfigError(f"algo.config.model_config.heads: 'vpt' needs the minecraft env's actions, got {space}")
        use_vpt_heads = heads == "vpt" or (heads == "auto" and minecraft)
        self.vpt_heads: nn.ModuleDict | None = policy.pi_head if use_vpt_heads else None
        self.pi: nn.Linear | None = None
        if self.vpt_heads is None:
            self.pi = nn.Linear(config.hidsize, n_logits)
            nn.init.orthogonal_(self.pi.weight, gain=0.01)
            nn.init.zeros_(self.pi.bias)
        self.vf = nn.Linear(config.hidsize, 1)
        nn.init.orthogonal_(self.vf.weight, gain=1.0)
        nn.init.zeros_(self.vf.bias)
        self.exploration_prior = float(mc.get("exploration_prior", 0.0))
        # a plain list: the frozen prior is not a submodule (not trained, synced or checkpointed)
        self._behaviour_prior: list[VPTPolicy] = []
        if self.exploration_prior > 0:
            if not (mc.get("model_path") and minecraft):
                raise ConfigError(
                    "algo.config.model_config.exploration_prior: needs model_path / weights_path (a pretrained "
                    "VPT) and the minecraft env's actions"
                )
            prior = load_vpt(mc["model_path"], mc["weights_path"]).eval()
            for p in prior.parameters():
                p.requires_grad_(False)
            self._behaviour_prior.append(prior)

    def _frames(self, batch: dict[str, Any]) -> torch.Tensor:
        obs = batch[Columns.OBS]
        return prepare_frames(obs[self.image_key] if self.image_key is not None else obs, self.trunk.config.img_shape)

    def _latent(self, batch: dict[str, Any]) -> torch.Tensor:
        frames = self._frames(batch)
        b = frames.shape[0]
        extra = None
        if self.task_embedding is not None:
            extra = self.task_embedding(batch[Columns.OBS]["task"].long().reshape(b))[:, None]
        first = torch.ones(b, 1, dtype=torch.bool, device=frames.device)
        x, _ = self.trunk.latent(frames, first, self.trunk.initial_state(b, frames.device), extra)
        return x[:, 0]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.pi is not None:
            return self.pi(x)
        assert self.vpt_heads is not None  # setup builds one of the two
        return factored_log_probs({name: head(x) for name, head in self.vpt_heads.items()})

    @override
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._logits(self._latent(batch))}

    @override
    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = self._logits(self._latent(batch))
        if not self._behaviour_prior:
            return {Columns.ACTION_DIST_INPUTS: logits}
        obs = batch[Columns.OBS]
        with torch.no_grad():
            prior_logp = frame_marginals(self._behaviour_prior[0], obs[self.image_key] if self.image_key else obs)
        return {Columns.ACTION_DIST_INPUTS: mix_with_prior(logits, prior_logp, self.exploration_prior)}

    @override
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x = self._latent(batch)
        return {Columns.ACTION_DIST_INPUTS: self._logits(x), Columns.EMBEDDINGS: x}

    @override
    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> Any:
        x = embeddings if embeddings is not None else self._latent(batch)
        return self.vf(x)[..., 0]
