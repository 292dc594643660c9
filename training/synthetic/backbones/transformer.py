"""Causal pre-norm Transformer (GPT style): the attention baseline, time-parallel by construction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotate(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al., 2021) of x: float [B, nh, T, hd]; with an odd hd
    the last channel is left unrotated."""
    seq_len, half = x.shape[2], x.shape[3] // 2
    freq = 10_000.0 ** (-torch.arange(half, dtype=x.dtype, device=x.device) / half)
    angle = torch.arange(seq_len, dtype=x.dtype, device=x.device)[:, None] * freq  # (T, hd/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, rotary: bool = False):
        super().__init__()
        self.n_heads, self.rotary = n_heads, rotary
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=-1)  # 3 x (B, T, H)
        q, k, v = (
            z.view(batch, seq_len, self.n_heads, -1).transpose(1, 2) for z in (q, k, v)
        )  # (B, nh, T, hd)
        if self.rotary:
            q, k = rotate(q), rotate(k)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hd)
        x = x + self.proj(att.transpose(1, 2).reshape(batch, seq_len, width))  # (B, T, H)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """``n_layers`` causal self-attention blocks with learned absolute positions, or with
    ``rotary=True`` rotary positions instead (relative, so no length limit: ``max_len`` unused).

    forward(x: float [B, T, H], state=None) -> (float [B, T, H], None). There is no state to carry
    between calls: every position attends to the whole prefix of the current call.
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        n_heads: int = 4,
        max_len: int = 1024,
        rotary: bool = False,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"transformer: d_model={d_model} is not divisible by n_heads={n_heads}"
            )
        self.max_len = None if rotary else max_len
        self.pos = None
        if not rotary:
            self.pos = nn.Parameter(torch.zeros(max_len, d_model))
            nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, rotary) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        if state is not None:
            raise ValueError("transformer: carries no state between calls; pass state=None")
        seq_len = x.shape[1]
        if self.pos is not None:
            if seq_len > self.max_len:
                raise ValueError(
                    f"transformer: sequence length {seq_len} exceeds max_len={self.max_len}"
                )
            x = x + self.pos[:seq_len]  # (B, T, H)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x), None


def build(d_model: int, n_layers: int, **kwargs) -> Transformer:
    return Transformer(d_model, n_layers, **kwargs)
