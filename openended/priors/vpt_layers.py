"""VPT's image encoder: fan-in initialised layers and the ImpalaCNN, in VPT's parameter naming.

Every learnt layer is a `FanInLayer`: an optional normalisation of its *input* (group norm
for convolutions, layer norm for dense layers; the layer then has no bias), the layer, a
ReLU. Weights start at unit fan-in norm times a scale, so activations keep unit scale with
depth. Attribute names (``norm``, ``layer``, ``stacks``, ``firstconv``, ``n``, ``blocks``,
``conv0``, ``conv1``, ``dense``, ``cnn``, ``linear``) are the names in OpenAI's state dicts.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FanInLayer", "ImpalaCNN", "ImageEncoder"]


class FanInLayer(nn.Module):
    """Norm (optional) -> conv or linear -> ReLU (optional), with fan-in weight init."""

    def __init__(
        self,
        inchan: int,
        outchan: int,
        *,
        kind: str = "conv",
        init_scale: float = 1.0,
        group_norm_groups: int | None = None,
        layer_norm: bool = False,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.norm: nn.Module | None = None
        if group_norm_groups is not None:
            self.norm = nn.GroupNorm(group_norm_groups, inchan)
        elif layer_norm:
            self.norm = nn.LayerNorm(inchan)
        bias = self.norm is None
        if kind == "conv":
            self.layer: nn.Module = nn.Conv2d(inchan, outchan, kernel_size=3, padding=1, bias=bias)
        elif kind == "linear":
            self.layer = nn.Linear(inchan, outchan, bias=bias)
        else:
            raise ValueError(f"FanInLayer: kind must be 'conv' or 'linear', got {kind!r}")
        self.activation = activation
        with torch.no_grad():
            w = self.layer.weight
            w.mul_(init_scale / torch.linalg.vector_norm(w, dim=tuple(range(1, w.ndim)), keepdim=True))
            if self.layer.bias is not None:
                self.layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the input, apply the layer, then the ReLU."""
        if self.norm is not None:
            x = self.norm(x)
        x = self.layer(x)
        return F.relu(x) if self.activation else x


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (shape preserving)."""

    def __init__(self, chans: int, init_scale: float, groups: int | None) -> None:
        super().__init__()
        s = math.sqrt(init_scale)
        self.conv0 = FanInLayer(chans, chans, init_scale=s, group_norm_groups=groups)
        self.conv1 = FanInLayer(chans, chans, init_scale=s, group_norm_groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + conv1(conv0(x))``."""
        return x + self.conv1(self.conv0(x))


class _DownStack(nn.Module):
    """First conv, 3x3 stride-2 max pool, optional group norm, residual blocks."""

    def __init__(
        self,
        inchan: int,
        outchan: int,
        nblock: int,
        init_scale: float,
        groups: int | None,
        first_norm: bool,
        post_pool_groups: int | None,
    ) -> None:
        super().__init__()
        self.firstconv = FanInLayer(inchan, outchan, group_norm_groups=groups if first_norm else None)
        self.n: nn.Module | None = nn.GroupNorm(post_pool_groups, outchan) if post_pool_groups is not None else None
        self.blocks = nn.ModuleList(_BasicBlock(outchan, init_scale / math.sqrt(nblock), groups) for _ in range(nblock))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downsample by 2 (rounding up) and refine."""
        x = F.max_pool2d(self.firstconv(x), kernel_size=3, stride=2, padding=1)
        if self.n is not None:
            x = self.n(x)
        for block in self.blocks:
            x = block(x)
        return x


class ImpalaCNN(nn.Module):
    """ImpalaCNN on ``(..., H, W, C)`` frames scaled to [0, 1]: stacks, flatten, dense to ``outsize``.

    ``groups``: group-norm groups of the convolutions' inputs (VPT's ``init_norm_kwargs``), ``None`` for none.
    """

    def __init__(
        self,
        img_shape: tuple[int, int, int],
        chans: tuple[int, ...],
        outsize: int,
        nblock: int,
        groups: int | None,
        post_pool_groups: int | None = None,
        first_conv_norm: bool = False,
    ) -> None:
        super().__init__()
        h, w, c = img_shape
        self.stacks = nn.ModuleList()
        for i, out in enumerate(chans):
            self.stacks.append(
                _DownStack(
                    c,
                    out,
                    nblock,
                    math.sqrt(len(chans)),
                    groups,
                    first_conv_norm if i == 0 else True,
                    post_pool_groups,
                )
            )
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.dense = FanInLayer(c * h * w, outsize, kind="linear", init_scale=1.4, layer_norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., H, W, C)`` -> ``(..., outsize)``; leading dimensions (batch, time) are kept."""
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
        for stack in self.stacks:
            x = stack(x)
        return self.dense(x.reshape(*lead, -1))


class ImageEncoder(nn.Module):
    """ImpalaCNN (to 256 features) then a dense layer to the network width: VPT's ``img_process``."""

    def __init__(self, cnn: ImpalaCNN, cnn_outsize: int, hidsize: int) -> None:
        super().__init__()
        self.cnn = cnn
        self.linear = FanInLayer(cnn_outsize, hidsize, kind="linear", layer_norm=True)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``(..., H, W, C)`` in [0, 1] -> ``(..., hidsize)``."""
        return self.linear(self.cnn(img))
