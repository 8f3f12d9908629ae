"""Setter-Solver: a setter flow proposes goals of a desired feasibility, a judge predicts feasibility.

Reference: Racanière, Lampinen, Santoro, Reichert, Firoiu & Lillicrap, "Automated
curricula through setter-solver interactions" (ICLR 2020, arXiv 1909.12892), as run by
TeachMyAgent (``teachers/algos/setter_solver.py``).

Algorithm:

* ``sample``: draw a desired feasibility ``f ~ U(1e-8, 1)`` and a latent ``z ~ N(0, I)``;
  the setter (a conditional RealNVP, `openended.teachers.rnvp`) maps them to a goal in
  the unit box, rescaled to the task box.
* ``update``: every outcome's (goal, success) joins a bounded buffer; every
  ``update_frequency`` outcomes both networks train for ``train_steps`` minibatch steps:

  - judge (an MLP, TMA: [64, 64, 64]): binary cross-entropy of its feasibility
    prediction against success;
  - setter: ``validity`` (negative log-likelihood of *achieved* goals, jittered by
    uniform noise up to ``setter_loss_noise_ub``, under a random condition) +
    ``feasibility`` (cross-entropy between the judge's prediction for a generated goal
    and the feasibility it was asked for) + ``coverage`` (the generated goals' log
    density: minimising it maximises the setter's entropy).

Training runs off the sampling path on the `Refitter` (the same background machinery as
ALP-GMM and GoalGAN); ``sample`` uses the installed numpy weights.

Presets: ``teachmyagent`` is TMA's benchmark command (``--ss_update_frequency 50
--setter_loss_noise_ub 0.1 --setter_hidden_size 64``); the defaults are TMA's CLI defaults
(100, 0.05, 128). The flow is 3 coupling blocks of 3 hidden layers (TMA's ``FlatRnvp``
3 x 3). Ours, where our notes do not record TMA's values: Adam with learning rate 1e-3,
``train_steps`` 20 minibatches of 128 per update, equal loss weights, a 10,000-outcome
buffer. Success is the outcome's flag or ``episode_return >= success_threshold``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from openended.tasks import Box, Outcome, Task, TaskSpace
from openended.teachers.base import MAX_WIDTH, BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.mlp import Weights, forward, from_torch, import_torch, init_mlp, to_torch, torch_forward
from openended.teachers.refit import Refitter
from openended.teachers.rnvp import flow_log_prob, flow_sample_t, init_flow, sample_flow
from openended.teachers.success import SuccessConfig, success_of

__all__ = ["SetterSolverConfig", "SetterSolverTeacher", "train_setter_judge"]

_EPS = 1e-4  # goals are kept in [eps, 1 - eps] before the flow's logit


class SetterSolverConfig(TeacherConfig, SuccessConfig, RefitConfig):
    """Setter-Solver settings (TMA CLI defaults; see the module docstring)."""

    update_frequency: int = Field(100, ge=1, description="Outcomes between trainings (TMA CLI: 100; bench: 50).")
    setter_loss_noise_ub: float = Field(0.05, ge=0.0, description="Validity-loss goal jitter bound (TMA: 0.05).")
    setter_hidden_size: int = Field(
        128, ge=1, le=MAX_WIDTH, description="Setter coupling MLP width (TMA CLI: 128; bench: 64)."
    )
    n_blocks: int = Field(3, ge=1, le=64, description="Coupling blocks of the setter flow (TMA: 3).")
    block_layers: int = Field(3, ge=1, le=64, description="Hidden layers per coupling MLP (TMA: 3).")
    judge_layers: list[int] = Field([64, 64, 64], description="Judge hidden sizes (TMA: [64, 64, 64]).")
    train_steps: int = Field(20, ge=1, description="Minibatch steps per training (ours).")
    batch_size: int = Field(128, ge=1, description="Minibatch size (ours).")
    lr: float = Field(1e-3, gt=0.0, description="Adam learning rate of both networks (ours).")
    buffer_size: int = Field(10_000, ge=1, description="(goal, success) pairs kept for training (ours).")


def train_setter_judge(
    setter: list[Weights],
    judge: Weights,
    goals: np.ndarray,
    success: np.ndarray,
    seed: int,
    steps: int,
    batch: int,
    lr: float,
    noise_ub: float,
) -> dict[str, Any]:
    """Train judge and setter on unit-box goals with 0/1 success; new weights and the last losses."""
    torch = import_torch()
    gen = torch.Generator().manual_seed(int(seed))
    sp = [to_torch(w) for w in setter]
    jp = to_torch(judge)
    opt_s = torch.optim.Adam([p for block in sp for p in block], lr=lr)
    opt_j = torch.optim.Adam(jp, lr=lr)
    g_all = torch.tensor(goals, dtype=torch.float32)
    y_all = torch.tensor(success, dtype=torch.float32)
    achieved = g_all[y_all > 0.5]
    d = goals.shape[1]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    losses = {"judge": 0.0, "validity": 0.0, "feasibility": 0.0, "coverage": 0.0}
    for _ in range(steps):
        idx = torch.randint(len(g_all), (batch,), generator=gen)
        loss_j = bce(torch_forward(jp, g_all[idx]).squeeze(-1), y_all[idx])
        opt_j.zero_grad()
        loss_j.backward()
        opt_j.step()
        f = torch.rand(batch, generator=gen) * (1 - 1e-8) + 1e-8
        z = torch.randn(batch, d, generator=gen)
        u, log_p = flow_sample_t(sp, z, f)
        pred = torch_forward(jp, u).squeeze(-1)
        loss_feas = bce(pred, f)
        loss_cov = log_p.mean()
        loss_s = loss_feas + loss_cov
        loss_val = torch.zeros(())
        if len(achieved):
            k = torch.randint(len(achieved), (batch,), generator=gen)
            jitter = (torch.rand(batch, d, generator=gen) * 2 - 1) * noise_ub
            target = (achieved[k] + jitter).clamp(_EPS, 1 - _EPS)
            f_val = torch.rand(batch, generator=gen) * (1 - 1e-8) + 1e-8
            loss_val = -flow_log_prob(sp, target, f_val).mean()
            loss_s = loss_s + loss_val
        opt_s.zero_grad()
        loss_s.backward()
        opt_s.step()
        losses = {
            "judge": float(loss_j.detach()),
            "validity": float(loss_val.detach()),
            "feasibility": float(loss_feas.detach()),
            "coverage": float(loss_cov.detach()),
        }
    return {"setter": [from_torch(block) for block in sp], "judge": from_torch(jp), "losses": losses}


def _weights(raw: Any) -> Weights:
    return [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in raw]


class SetterSolverTeacher(BaseTeacher):
    """Setter-Solver over a ``Box`` (see the module docstring)."""

    name = "setter_solver"
    Config = SetterSolverConfig
    config: SetterSolverConfig
    space: Box
    space_kinds = ("box",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # TMA benchmark: --ss_update_frequency 50 --setter_loss_noise_ub 0.1 --setter_hidden_size 64
        "teachmyagent": {"update_frequency": 50, "setter_loss_noise_ub": 0.1, "setter_hidden_size": 64},
    }
    CHECK_OVERRIDES: ClassVar[dict[str, Any]] = {"train_steps": 2, "setter_hidden_size": 8, "judge_layers": [8]}

    def __init__(self, space: TaskSpace, config: SetterSolverConfig | None = None) -> None:
        super().__init__(space, config)
        cfg, d = self.config, self.space.dim
        self.setter = init_flow(d, cfg.n_blocks, cfg.setter_hidden_size, cfg.block_layers, self.rng)
        self.judge = init_mlp([d, *cfg.judge_layers, 1], self.rng)
        self.trained = 0
        self._losses: dict[str, float] = {}
        self._goals: deque[np.ndarray] = deque(maxlen=cfg.buffer_size)
        self._success: deque[float] = deque(maxlen=cfg.buffer_size)
        self._since = 0
        self.refitter = Refitter(self._install, cfg.refit_executor, cfg.refit_swap, lag=cfg.refit_lag)

    def _install(self, fit: dict[str, Any]) -> None:
        self.setter = [_weights(block) for block in fit["setter"]]
        self.judge = _weights(fit["judge"])
        self._losses = {k: float(v) for k, v in fit["losses"].items()}
        self.trained += 1

    def feasibility(self, tasks: list[Task]) -> np.ndarray:
        """The judge's predicted success probability of each task."""
        u = self.space.to_unit(np.array([t.params for t in tasks], dtype=np.float64))
        return 1.0 / (1.0 + np.exp(-forward(self.judge, u)[:, 0]))

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        f = self.rng.uniform(1e-8, 1.0, n)
        z = self.rng.standard_normal((n, self.space.dim))
        u = np.clip(sample_flow(self.setter, z, f), 0.0, 1.0)
        return self.space.tasks(self.space.clip(self.space.from_unit(u)), validate=False)

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        cfg = self.config
        for t, o in zip(tasks, outcomes):
            self._goals.append(np.clip(self.space.to_unit(t.array), _EPS, 1 - _EPS))
            self._success.append(float(success_of(o, cfg.success_threshold)))
        self._since += len(outcomes)
        if self._since >= cfg.update_frequency:
            self._since = 0
            seed = int(self.rng.integers(2**31))
            assert self.refitter is not None
            self.refitter.submit(
                train_setter_judge,
                self.setter,
                self.judge,
                np.asarray(self._goals),
                np.asarray(self._success),
                seed,
                cfg.train_steps,
                cfg.batch_size,
                cfg.lr,
                cfg.setter_loss_noise_ub,
            )

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "setter": [[[w, b] for w, b in block] for block in self.setter],
            "judge": [[w, b] for w, b in self.judge],
            "trained": self.trained,
            "losses": dict(self._losses),
            "goals": np.asarray(self._goals).reshape(-1, self.space.dim),
            "success": np.asarray(self._success),
            "since": self._since,
        }

    def _load_state_dict(self, state: dict) -> None:
        self._install({"setter": state["setter"], "judge": state["judge"], "losses": state["losses"]})
        self.trained = int(state["trained"])
        self._goals.clear()
        self._goals.extend(np.asarray(state["goals"], dtype=np.float64).reshape(-1, self.space.dim))
        self._success.clear()
        self._success.extend(float(s) for s in np.asarray(state["success"]).ravel())
        self._since = int(state["since"])

    def _stats(self) -> dict:
        return {
            "trainings": self.trained,
            **{f"loss_{k}": v for k, v in self._losses.items()},
            "buffer_success_rate": float(np.mean(self._success)) if self._success else 0.0,
        }
