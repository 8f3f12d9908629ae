"""KL-to-prior regularisation as a learner loss term: ``coef(step) * KL(policy || prior)``.

Why: fine-tuning a pretrained policy with RL quickly forgets what pretraining taught;
VPT's RL fine-tuning (Baker et al., 2022) kept the policy near its frozen pretrained
self with exactly this term. The KL is the mean over the batch's observations of the
policy's action distribution against the prior's, computed with the learner module's own
distribution class (categorical, multi-categorical, Gaussian), so the gradient flows into
the learner's module only: the prior is frozen (no gradients, never in the optimizer).

Priors (``prior``):

* ``initial`` -- a frozen copy of the learner's module taken at its first loss term: the
  policy it started from (e.g. VPT-initialised weights). The copy is not checkpointed:
  a resumed run copies the restored module (use ``vpt`` for a prior that survives resumes).
* ``vpt`` -- OpenAI-format VPT files (``model_path``, ``weights_path``; `openended.priors.vpt`).
  The learner's module must act in the `minecraft` env's action space (``MultiDiscrete``,
  62 logits) and its observations carry the frames (``obs["pov"]`` or the obs itself,
  ``(N, H, W, 3)``, uint8 or floats in [0, 1] as RLlib's image scaling gives them; resized
  to the prior's input size). VPT's joint heads are compared through their
  per-dimension marginals (`openended.priors.vpt.factored_log_probs`), and each frame is
  scored on its own (no memory: learner minibatches are shuffled steps, not sequences).

Schedule (``schedule``): ``constant`` keeps ``coef``; ``linear`` moves it to ``final_coef``
over ``decay_steps`` learner steps (loss-term calls: one per minibatch update), then holds.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from openended.components.base import Component, ComponentConfig, Placement
from openended.components.torch_policy import as_obs_tensor, policy_logits
from openended.errors import ConfigError

__all__ = ["KLPrior", "KLPriorConfig", "categorical_kl", "multi_categorical_kl"]


class KLPriorConfig(ComponentConfig):
    """Coefficient, its schedule, and where the prior comes from."""

    coef: float = Field(0.2, ge=0, description="KL coefficient (at step 0 for a linear schedule).")
    schedule: Literal["constant", "linear"] = Field("constant", description="constant, or linear decay to final_coef.")
    final_coef: float = Field(0.0, ge=0, description="linear schedule: the coefficient after decay_steps.")
    decay_steps: int = Field(
        1000, ge=1, description="linear schedule: learner steps (minibatch updates) to decay over."
    )
    prior: Literal["initial", "vpt"] = Field(
        "initial", description="initial: frozen copy of the learner's module; vpt: files."
    )
    model_path: str | None = Field(None, description="vpt: OpenAI .model file.")
    weights_path: str | None = Field(None, description="vpt: OpenAI .weights file.")
    max_obs: int | None = Field(
        None, ge=1, description="Score at most this many of the batch's observations (cost bound)."
    )

    @model_validator(mode="after")
    def _paths_for_vpt(self) -> KLPriorConfig:
        if self.prior == "vpt" and not (self.model_path and self.weights_path):
            raise ValueError("prior 'vpt' needs model_path and weights_path (OpenAI's .model and .weights files)")
        return self


def categorical_kl(module: Any, logits_q: torch.Tensor, logits_p: torch.Tensor) -> torch.Tensor:
    """Per-row ``KL(q || p)`` with the module's own distribution class (a categorical for plain modules)."""
    if hasattr(module, "get_train_action_dist_cls"):
        cls = module.get_train_action_dist_cls()
        kl = cls.from_logits(logits_q).kl(cls.from_logits(logits_p))
    else:
        kl = torch.distributions.kl_divergence(
            torch.distributions.Categorical(logits=logits_q), torch.distributions.Categorical(logits=logits_p)
        )
    return kl.reshape(len(logits_q), -1).sum(-1)


def multi_categorical_kl(logits_q: torch.Tensor, logp_p: torch.Tensor, nvec: tuple[int, ...]) -> torch.Tensor:
    """Per-row ``KL(q || p)`` of independent categoricals laid out as ``nvec`` (RLlib's MultiDiscrete inputs)."""
    total = logits_q.new_zeros(len(logits_q))
    for q, p in zip(torch.split(logits_q, list(nvec), dim=-1), torch.split(logp_p, list(nvec), dim=-1)):
        log_q = torch.log_softmax(q, dim=-1)
        total = total + (log_q.exp() * (log_q - torch.log_softmax(p, dim=-1))).sum(-1)
    return total


def _frozen(module: Any) -> Any:
    prior = copy.deepcopy(module)
    for p in prior.parameters():
        p.requires_grad_(False)
    if hasattr(prior, "eval"):
        prior.eval()
    return prior


class KLPrior(Component):
    """The KL-to-prior loss term (module doc)."""

    placement = Placement.LEARNER
    Config = KLPriorConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.priors: dict[Any, Any] = {}  # per RLlib module id (one prior per policy)
        self.steps = 0
        self.last_kl: float | None = None

    def coefficient(self, step: int | None = None) -> float:
        """The coefficient at learner step ``step`` (default: the next step)."""
        c = self.config
        s = self.steps if step is None else step
        if c.schedule == "constant":
            return float(c.coef)
        return float(c.coef + (c.final_coef - c.coef) * min(s / c.decay_steps, 1.0))

    def _build_prior(self, module: Any) -> Any:
        if self.config.prior == "initial":
            return _frozen(module)
        from openended.priors.vpt import load_vpt

        return _frozen(load_vpt(self.config.model_path, self.config.weights_path))

    @property
    def prior(self) -> Any:
        """The (first) frozen prior, once built."""
        return next(iter(self.priors.values()), None)

    def _prior_logits(self, prior: Any, obs: Any) -> torch.Tensor:
        if self.config.prior == "initial":
            return policy_logits(prior, obs)
        from openended.priors.vpt import frame_marginals

        frames = obs["pov"] if isinstance(obs, dict) else obs
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ConfigError(
                "kl_prior (prior: vpt): the learner's observations must carry (N, H, W, 3) frames "
                f"(obs['pov'] or the obs itself), got {tuple(frames.shape)}"
            )
        return frame_marginals(prior, frames)

    def loss_term(self, *, module: Any, batch: Any, fwd_out: Any, **kw: Any) -> Any:
        """``coef(step) * mean KL(policy || prior)`` on the batch's observations (None at coefficient 0)."""
        key = kw.get("module_id")
        if key not in self.priors:
            self.priors[key] = self._build_prior(module)
        coef = self.coefficient()
        self.steps += 1
        if coef == 0.0:
            return None
        obs = batch["obs"]
        if not isinstance(obs, dict | torch.Tensor):
            obs = as_obs_tensor(obs)
        limit = self.config.max_obs
        if limit is not None:
            obs = {k: v[:limit] for k, v in obs.items()} if isinstance(obs, dict) else obs[:limit]
        with torch.no_grad():
            prior_logits = self._prior_logits(self.priors[key], obs)
        reuse = limit is None and isinstance(fwd_out, dict) and "action_dist_inputs" in fwd_out
        logits = fwd_out["action_dist_inputs"] if reuse else policy_logits(module, obs)
        if prior_logits.shape != logits.shape:
            raise ConfigError(
                f"kl_prior: the prior's action logits {tuple(prior_logits.shape)} do not match the learner's "
                f"{tuple(logits.shape)} (prior 'vpt' needs the minecraft env's action space)"
            )
        if self.config.prior == "vpt":
            from openended.priors.vpt import ENV_ACTION_NVEC

            kl = multi_categorical_kl(logits, prior_logits, ENV_ACTION_NVEC).mean()
        else:
            kl = categorical_kl(module, logits, prior_logits).mean()
        self.last_kl = float(kl.detach())
        return coef * kl

    def state_dict(self) -> dict[str, Any]:
        """The schedule's position (the prior itself is rebuilt: module doc), the last KL and coefficient (to read)."""
        return {"steps": self.steps, "last_kl": self.last_kl, "coef": self.coefficient()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.steps = int(state["steps"])
