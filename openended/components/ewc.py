"""Elastic weight consolidation as a learner loss term: EWC and online EWC.

At a consolidation point (a task's end on the learner host, or a `TaskChange` published on
the bus, e.g. by the task-change detector when the scenario does not announce changes)
`EWC` estimates the diagonal Fisher information of the policy on recently trained
observations -- ``E_s E_{a ~ pi(.|s)} [(d log pi(a|s) / d theta)^2]``, actions drawn from the
policy (the true Fisher, not the empirical one; the module's own action distribution, so
discrete and continuous actions alike) -- and anchors the current parameters.
From then on its ``loss_term`` adds ``lam / 2 * sum_i F_i (theta_i - theta*_i)^2``.

Online EWC (Schwarz et al., 2018): each consolidation folds the new Fisher into the
running one, ``F <- gamma * F + F_new``, and moves the anchor to the current parameters;
``gamma = 1`` accumulates every task's importance, smaller values forget old importance.
Kirkpatrick et al.'s EWC keeps one penalty per task; ``mode: ewc`` does that.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import torch
from pydantic import Field

from openended.components.base import Component, ComponentConfig, Placement
from openended.components.bus import TASK_CHANGE, TaskChange
from openended.components.torch_policy import action_distribution, as_obs_tensor, named_parameters

__all__ = ["EWC", "EWCConfig"]


class EWCConfig(ComponentConfig):
    """Penalty strength and Fisher estimate."""

    lam: float = Field(100.0, ge=0, description="Penalty weight lambda.")
    mode: Literal["online", "ewc"] = Field("online", description="online EWC (one running penalty) or one per task.")
    gamma: float = Field(1.0, ge=0, le=1, description="Online EWC: decay of the old Fisher at each consolidation.")
    fisher_samples: int = Field(200, ge=1, description="Observations the Fisher is estimated on.")
    on_bus: bool = Field(True, description="Also consolidate when a TaskChange is published on the bus.")
    seed: int = Field(0, description="Seed of the action samples of the Fisher estimate.")


class EWC(Component):
    """The EWC / online-EWC penalty as a loss term (module doc)."""

    placement = Placement.LEARNER
    Config = EWCConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._recent: deque[torch.Tensor] = deque(maxlen=self.config.fisher_samples)
        self.penalties: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (fisher, anchor)
        self._pending = False
        self.consolidations = 0

    def on_lifetime_start(self, **kw: Any) -> None:
        """Subscribe to task changes on the bus (if ``on_bus``)."""
        if self.config.on_bus and self.bus is not None:
            self.bus.subscribe(TASK_CHANGE, self._on_change)

    def _on_change(self, event: TaskChange) -> None:
        self._pending = True  # the module comes with the next loss_term call

    def on_task_end(self, **kw: Any) -> None:
        """Consolidate now (``module`` in ``kw``) or at the next loss term."""
        module = kw.get("module")
        if module is not None:
            self.consolidate(module)
        else:
            self._pending = True

    def consolidate(self, module: Any) -> None:
        """Estimate the Fisher on the recent observations and anchor the current parameters."""
        if not self._recent:
            return
        params = named_parameters(module)
        obs = torch.stack(list(self._recent))
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        rng_state = torch.random.get_rng_state()
        torch.manual_seed(self.config.seed + self.consolidations)  # reproducible action samples
        for k in range(len(obs)):
            dist = action_distribution(module, obs[k : k + 1])
            action = dist.sample().detach()
            grads = torch.autograd.grad(dist.log_prob(action).sum(), list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2
        torch.random.set_rng_state(rng_state)  # the learner's own sampling is left as it was
        fisher = {n: f / len(obs) for n, f in fisher.items()}
        anchor = {n: p.detach().clone() for n, p in params.items()}
        if self.config.mode == "online" and self.penalties:
            old, _ = self.penalties[0]
            fisher = {n: self.config.gamma * old[n] + fisher[n] for n in fisher}
            self.penalties = [(fisher, anchor)]
        else:
            self.penalties.append((fisher, anchor))
        self.consolidations += 1
        self._pending = False

    def loss_term(self, *, module: Any, batch: Any, fwd_out: Any, **kw: Any) -> Any:
        """Record the batch's observations; the penalty once anything was consolidated."""
        obs = as_obs_tensor(batch["obs"]).detach()
        for row in obs[-self.config.fisher_samples :]:
            self._recent.append(row)
        if self._pending:
            self.consolidate(module)
        if not self.penalties:
            return None
        params = named_parameters(module)
        total = torch.zeros(())
        for fisher, anchor in self.penalties:
            for n, p in params.items():
                total = total + (fisher[n] * (p - anchor[n]) ** 2).sum()
        return self.config.lam / 2 * total

    def state_dict(self) -> dict[str, Any]:
        """Fishers and anchors as lists (JSON)."""
        return {
            "penalties": [
                [{n: t.tolist() for n, t in f.items()}, {n: t.tolist() for n, t in a.items()}]
                for f, a in self.penalties
            ],
            "consolidations": self.consolidations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.penalties = [
            ({n: torch.tensor(v) for n, v in f.items()}, {n: torch.tensor(v) for n, v in a.items()})
            for f, a in state["penalties"]
        ]
        self.consolidations = int(state["consolidations"])
