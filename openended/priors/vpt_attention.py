"""VPT's recurrence: residual blocks of masked self-attention over a memory of past frames.

Each block is ``x -> LN -> attention -> + (on the normalised x) -> + MLP``. The attention
keeps the keys and values of the last ``M`` frames (``M = attention_memory_size -
timesteps``, 128 in the released models) as its recurrent state and lets each frame attend
to itself and the ``M - 1`` frames before it ("clipped causal": the same window whatever
the frame's position in the chunk). Scores are ``q.k / head_dim`` (muP scaling) plus a
learnt relative-position bias: ``r_layer`` gives each head 10 weights per frame, mixed with
``b_nd`` (10 basis values per distance 0..M-1). When a chunk starts a new episode
(``first[:, 0]``) the memory of the old one is masked, and the state carries which memory
slots are valid, so a new episode never sees the previous one. Attribute names follow
OpenAI's state dicts (``pre_r_ln``, ``r.orc_block.{q,k,v,proj,r}_layer``, ``b_nd``,
``mlp0``, ``mlp1``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from openended.priors.vpt_layers import FanInLayer

__all__ = ["AttentionState", "RecurrentBlocks", "MaskedSelfAttention"]

#: Per block: (valid memory slots (B, M) bool, keys (B, M, E), values (B, M, E)).
AttentionState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
N_BASIS = 10


def _normed_linear(inp: int, out: int, scale: float, bias: bool = True) -> nn.Linear:
    """A linear layer whose weight rows start at norm ``scale`` (zero bias)."""
    layer = nn.Linear(inp, out, bias=bias)
    with torch.no_grad():
        layer.weight.mul_(scale / layer.weight.norm(dim=1, keepdim=True))
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class _AttentionLayer(nn.Module):
    """The attention proper (VPT's ``orc_block``): projections, relative bias, residual on its input."""

    def __init__(self, size: int, heads: int, memory: int, init_scale: float) -> None:
        super().__init__()
        if size % heads:
            raise ValueError(f"attention: hidsize {size} is not divisible by attention_heads {heads}")
        s = math.sqrt(init_scale)
        self.heads, self.memory = heads, memory
        self.q_layer = _normed_linear(size, size, 0.1)
        self.k_layer = _normed_linear(size, size, 0.2, bias=False)
        self.v_layer = _normed_linear(size, size, s, bias=False)
        self.proj_layer = _normed_linear(size, size, s)
        self.r_layer = _normed_linear(size, N_BASIS * heads, 0.1)
        self.b_nd = nn.Parameter(torch.randn(N_BASIS, memory) * 0.2)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape
        return x.reshape(b, t, self.heads, e // self.heads).transpose(1, 2)  # (B, H, T, D)

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, k_mem: torch.Tensor, v_mem: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """``x`` (B, t, E), ``valid`` (B, t, M + t) -> output, new key and value memories."""
        b, t, e = x.shape
        keys = torch.cat([k_mem, self.k_layer(x)], dim=1)
        values = torch.cat([v_mem, self.v_layer(x)], dim=1)
        q, k, v = self._split(self.q_layer(x)), self._split(keys), self._split(values)
        span = keys.shape[1]
        # relative position bias: distance d = (M + i) - j of query i to key j, in [0, M)
        dist = self.memory + torch.arange(t, device=x.device)[:, None] - torch.arange(span, device=x.device)[None, :]
        in_band = (dist >= 0) & (dist < self.memory)
        basis = torch.cat([self.b_nd, self.b_nd.new_zeros(N_BASIS, 1)], dim=1)
        band = basis[:, torch.where(in_band, dist, self.memory)]  # (N, t, span)
        r = self.r_layer(x).reshape(b, t, self.heads, N_BASIS).transpose(1, 2)  # (B, H, t, N)
        logits = torch.einsum("bhtd,bhsd->bhts", q, k) / q.shape[-1] + torch.einsum("bhtn,nts->bhts", r, band)
        logits = logits.masked_fill(~valid[:, None], -1e9)
        att = torch.softmax(logits, dim=-1) @ v  # (B, H, t, D)
        out = self.proj_layer(att.transpose(1, 2).reshape(b, t, e))
        return x + out, keys[:, -self.memory :], values[:, -self.memory :]


class MaskedSelfAttention(nn.Module):
    """Clipped-causal attention with episode-boundary masking (VPT's ``MaskedAttention``: ``r``)."""

    def __init__(self, size: int, heads: int, memory: int, init_scale: float) -> None:
        super().__init__()
        if memory < 1:
            raise ValueError(f"attention memory (attention_memory_size - timesteps) must be >= 1, got {memory}")
        self.memory, self.size = memory, size
        self.orc_block = _AttentionLayer(size, heads, memory, init_scale)

    def initial_state(self, batch: int, device: torch.device | None = None) -> AttentionState:
        """No valid memory, zero keys and values."""
        m = self.memory
        return (
            torch.zeros(batch, m, dtype=torch.bool, device=device),
            torch.zeros(batch, m, self.size, device=device),
            torch.zeros(batch, m, self.size, device=device),
        )

    def forward(
        self, x: torch.Tensor, first: torch.Tensor, state: AttentionState
    ) -> tuple[torch.Tensor, AttentionState]:
        """``x`` (B, t, E), ``first`` (B, t) bool (only ``first[:, 0]`` is read) -> output, new state."""
        mem_ok, k_mem, v_mem = state
        t, m = x.shape[1], self.memory
        keep = ~first[:, 0].bool()  # a new episode forgets the memory
        i = torch.arange(t, device=x.device)[:, None]
        j = torch.arange(m + t, device=x.device)[None, :]
        window = (j <= i + m) & (j > i)  # the frame itself and the m - 1 before it
        past = torch.cat([mem_ok & keep[:, None], torch.ones(x.shape[0], t, dtype=torch.bool, device=x.device)], dim=1)
        valid = window[None] & past[:, None, :]
        out, k_new, v_new = self.orc_block(x, valid, k_mem, v_mem)
        return out, (past[:, -m:], k_new, v_new)


class _Block(nn.Module):
    """Pre-LN attention (residual on the normalised input, as VPT) then a residual pointwise MLP."""

    def __init__(self, size: int, heads: int, memory: int, ratio: int, mlp_activation: bool, init_scale: float) -> None:
        super().__init__()
        s = init_scale * 2**-0.5  # two residual branches per block
        self.mlp0 = FanInLayer(size, size * ratio, kind="linear", layer_norm=True)
        self.mlp1 = FanInLayer(size * ratio, size, kind="linear", init_scale=s, activation=mlp_activation)
        self.pre_r_ln = nn.LayerNorm(size)
        self.r = MaskedSelfAttention(size, heads, memory, s)

    def initial_state(self, batch: int, device: torch.device | None = None) -> AttentionState:
        """The attention's empty memory."""
        return self.r.initial_state(batch, device)

    def forward(
        self, x: torch.Tensor, first: torch.Tensor, state: AttentionState
    ) -> tuple[torch.Tensor, AttentionState]:
        """One block over a chunk of frames."""
        x, state = self.r(self.pre_r_ln(x), first, state)
        return x + self.mlp1(self.mlp0(x)), state


class RecurrentBlocks(nn.Module):
    """``n_block`` attention blocks (VPT's ``recurrent_layer``)."""

    def __init__(self, size: int, n_block: int, heads: int, memory: int, ratio: int, mlp_activation: bool) -> None:
        super().__init__()
        scale = n_block**-0.5
        self._typed = [_Block(size, heads, memory, ratio, mlp_activation, scale) for _ in range(n_block)]
        self.blocks = nn.ModuleList(self._typed)

    def initial_state(self, batch: int, device: torch.device | None = None) -> list[AttentionState]:
        """One empty memory per block."""
        return [blk.initial_state(batch, device) for blk in self._typed]

    def forward(
        self, x: torch.Tensor, first: torch.Tensor, state: list[AttentionState]
    ) -> tuple[torch.Tensor, list[AttentionState]]:
        """All blocks in turn; returns the output and the new per-block states."""
        if len(state) != len(self.blocks):
            raise ValueError(f"recurrent state has {len(state)} entries, the network {len(self.blocks)} blocks")
        out_state = []
        for blk, s in zip(self._typed, state):
            x, s = blk(x, first, s)
            out_state.append(s)
        return x, out_state
