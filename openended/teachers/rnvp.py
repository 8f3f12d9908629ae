"""A small conditional RealNVP flow on (0, 1)^d: numpy sampling, torch densities for training.

Why: Setter-Solver's setter must both *generate* goals (``sample``, every call) and give
their *log density* (the validity and coverage losses), which an affine-coupling flow
does exactly. Layout: ``n_blocks`` affine couplings with alternating binary masks; each
coupling's MLP sees the kept coordinates and the condition ``f`` and outputs a log-scale
(``tanh``-bounded) and a shift for the other coordinates; a final sigmoid maps R^d onto
(0, 1)^d. The couplings' last layers start at zero, so an untrained setter is
``sigmoid(N(0, I))``. Weights are `openended.teachers.mlp` lists.

Contents:
    init_flow      -- weights for ``d`` dimensions and a 1-D condition.
    sample_flow    -- numpy: goals in (0, 1)^d for latent draws and conditions.
    flow_log_prob  -- torch: log density of goals given conditions (inverse pass).
    flow_sample_t  -- torch: goals and their log densities for latent draws (forward pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openended.teachers.mlp import Weights, forward, import_torch, init_mlp, torch_forward

__all__ = ["init_flow", "masks", "sample_flow", "flow_log_prob", "flow_sample_t"]

_LOG_2PI = float(np.log(2 * np.pi))


def masks(d: int, n_blocks: int) -> np.ndarray:
    """``(n_blocks, d)`` 0/1 masks, alternating (for ``d = 1``: kept, transformed, ...)."""
    base = np.arange(d) % 2
    return np.array([(base + i) % 2 for i in range(n_blocks)], dtype=np.float64)


def init_flow(d: int, n_blocks: int, hidden: int, layers: int, rng: np.random.Generator) -> list[Weights]:
    """One MLP per coupling: ``[x_kept (d), f (1)] -> hidden x layers -> [log-scale (d), shift (d)]``."""
    flow = []
    for _ in range(n_blocks):
        w = init_mlp([d + 1, *([hidden] * layers), 2 * d], rng)
        w[-1] = (np.zeros_like(w[-1][0]), np.zeros_like(w[-1][1]))  # identity at the start
        flow.append(w)
    return flow


def sample_flow(flow: list[Weights], z: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Goals in (0, 1)^d for latent rows ``z`` (n, d) and conditions ``f`` (n,)."""
    d = z.shape[1]
    x = np.asarray(z, dtype=np.float64).copy()
    fc = np.asarray(f, dtype=np.float64).reshape(-1, 1)
    for m, w in zip(masks(d, len(flow)), flow):
        out = forward(w, np.hstack([x * m, fc]))
        s, t = np.tanh(out[:, :d]) * (1 - m), out[:, d:] * (1 - m)
        x = x * np.exp(s) + t
    return 1.0 / (1.0 + np.exp(-x))


def flow_sample_t(flow_params: list[list[Any]], z: Any, f: Any) -> tuple[Any, Any]:
    """Torch forward pass: goals in (0, 1)^d and their log densities under the flow."""
    torch = import_torch()
    d = z.shape[1]
    x, log_det = z, torch.zeros(z.shape[0])
    fc = f.reshape(-1, 1)
    for m_np, params in zip(masks(d, len(flow_params)), flow_params):
        m = torch.tensor(m_np, dtype=z.dtype)
        out = torch_forward(params, torch.cat([x * m, fc], dim=1))
        s, t = torch.tanh(out[:, :d]) * (1 - m), out[:, d:] * (1 - m)
        x = x * torch.exp(s) + t
        log_det = log_det + s.sum(dim=1)
    u = torch.sigmoid(x)
    log_pz = -0.5 * (z**2).sum(dim=1) - 0.5 * d * _LOG_2PI
    log_sig = (torch.nn.functional.logsigmoid(x) + torch.nn.functional.logsigmoid(-x)).sum(dim=1)
    return u, log_pz - log_det - log_sig


def flow_log_prob(flow_params: list[list[Any]], u: Any, f: Any) -> Any:
    """Torch inverse pass: log density of goals ``u`` in (0, 1)^d given conditions ``f``."""
    torch = import_torch()
    d = u.shape[1]
    x = torch.log(u) - torch.log1p(-u)
    log_sig = (torch.nn.functional.logsigmoid(x) + torch.nn.functional.logsigmoid(-x)).sum(dim=1)
    log_det = torch.zeros(u.shape[0])
    fc = f.reshape(-1, 1)
    all_masks = masks(d, len(flow_params))
    for i in reversed(range(len(flow_params))):
        m = torch.tensor(all_masks[i], dtype=u.dtype)
        out = torch_forward(flow_params[i], torch.cat([x * m, fc], dim=1))
        s, t = torch.tanh(out[:, :d]) * (1 - m), out[:, d:] * (1 - m)
        x = (x - t) * torch.exp(-s)
        log_det = log_det + s.sum(dim=1)
    log_pz = -0.5 * (x**2).sum(dim=1) - 0.5 * d * _LOG_2PI
    return log_pz - log_det - log_sig
