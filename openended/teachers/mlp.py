"""Small MLPs kept as numpy weight lists, trained with torch off the sampling path.

Why numpy weights: GoalGAN and Setter-Solver *sample* with their networks on every
``sample`` call, which must be fast, deterministic (the teacher's own generator) and
free of torch's global RNG and thread pools; only training needs autograd. A network is
``[(W0, b0), (W1, b1), ...]`` (``W`` of shape (in, out)), ReLU between layers; weights
travel to the torch fit and back as plain arrays, so a staged fit serialises with the
teacher's state.

Contents:
    init_mlp    -- weights for the given layer sizes from a numpy generator (PyTorch's default init).
    forward     -- numpy forward pass (ReLU hidden layers, optional tanh output).
    to_torch / from_torch -- copy weights into trainable torch tensors and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from openended.errors import DependencyNotInstalled

__all__ = ["Weights", "init_mlp", "forward", "to_torch", "from_torch", "import_torch"]

Weights = list[tuple[np.ndarray, np.ndarray]]


def import_torch() -> Any:
    """``torch``, or `DependencyNotInstalled` naming the extra that brings it."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is in the runtime extra
        raise DependencyNotInstalled(
            "this teacher trains small networks with torch: pip install 'openended[runtime]'"
        ) from err
    return torch


def init_mlp(sizes: Sequence[int], rng: np.random.Generator) -> Weights:
    """Uniform(+-1/sqrt(fan_in)) weights and biases, as ``torch.nn.Linear`` initialises them."""
    out: Weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        out.append((rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)))
    return out


def forward(weights: Weights, x: np.ndarray, *, tanh_out: bool = False) -> np.ndarray:
    """``x`` (n, in) through the network: ReLU hidden layers, linear (or tanh) output."""
    h = np.asarray(x, dtype=np.float64)
    last = len(weights) - 1
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < last:
            np.maximum(h, 0.0, out=h)
    return np.tanh(h) if tanh_out else h


def to_torch(weights: Weights) -> list[Any]:
    """Trainable float32 torch tensors ``[W0, b0, W1, b1, ...]`` (float32: half the training time)."""
    torch = import_torch()
    return [torch.tensor(a, dtype=torch.float32, requires_grad=True) for pair in weights for a in pair]


def from_torch(params: Sequence[Any]) -> Weights:
    """Inverse of `to_torch` (back to float64 arrays)."""
    arrays = [p.detach().numpy().astype(np.float64) for p in params]
    return list(zip(arrays[::2], arrays[1::2]))


def torch_forward(params: Sequence[Any], x: Any, *, tanh_out: bool = False) -> Any:
    """`forward` on torch tensors (for training)."""
    torch = import_torch()
    h = x
    n = len(params) // 2
    for i in range(n):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < n - 1:
            h = torch.relu(h)
    return torch.tanh(h) if tanh_out else h
