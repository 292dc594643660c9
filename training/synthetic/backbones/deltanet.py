"""DeltaNet: a linear RNN whose matrix state is updated by the delta rule, in plain PyTorch.

Per head, with an L2-normalised key k_t, value v_t, query q_t and a write strength beta_t:

    S_t = S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T        S: float [dv, dk]
    o_t = S_t q_t

Schlag et al. (2021), "Linear Transformers Are Secretly Fast Weight Programmers"; Yang et al.
(2024), "Parallelizing Linear Transformers with the Delta Rule over Sequence Length" for the
chunked form. The transition I - beta k k^T has eigenvalue 1 - beta along k and 1 elsewhere:
beta in [0, 1] (a sigmoid) keeps it in [0, 1]; ``negative_eigenvalues=True`` doubles beta to
[0, 2], so the eigenvalue reaches [-1, 1] and a product of transitions can be a reflection or a
permutation — what Grazzi et al. (2025), "Unlocking State-Tracking in Linear RNNs Through
Negative Eigenvalues", and Siems et al. show is needed to track permutations such as S5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def delta_rule_recurrent(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The delta rule one step at a time: the reference for the chunked form.

    q, k: float [B, H, T, dk]; v: float [B, H, T, dv]; beta: float [B, H, T];
    state: float [B, H, dv, dk] (S before the first step). Returns (o float [B, H, T, dv],
    final state float [B, H, dv, dk]).
    """
    outputs = []
    for t in range(q.shape[2]):
        k_t, b_t = k[:, :, t], beta[:, :, t, None]  # (B, H, dk), (B, H, 1)
        # S (I - b k k^T) + b v k^T = S + b (v - S k) k^T
        delta = b_t * (v[:, :, t] - torch.einsum("bhvk,bhk->bhv", state, k_t))  # (B, H, dv)
        state = state + delta.unsqueeze(-1) * k_t.unsqueeze(-2)
        outputs.append(torch.einsum("bhvk,bhk->bhv", state, q[:, :, t]))
    return torch.stack(outputs, dim=2), state


def delta_rule_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    state: torch.Tensor,
    chunk_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same outputs and final state as ``delta_rule_recurrent``, chunk-parallel (WY/UT form).

    Within a chunk of C steps starting from state S0, write u_t = beta_t (v_t - S_{t-1} k_t),
    so that S_t = S0 + sum_{i<=t} u_i k_i^T. Then u_t = beta_t (v_t - S0 k_t - sum_{i<t}
    (k_i . k_t) u_i): a unit lower-triangular system A U = diag(beta) (V - K S0^T) with
    A = I + diag(beta) strict_lower(K K^T) (the UT transform). Its solution splits as
    U = W' - W S0^T with W' = A^-1 diag(beta) V and W = A^-1 diag(beta) K, which do not depend on
    S0: one batched triangular solve for every chunk at once. Only the chunk-to-chunk pass is
    sequential, T / C steps of small matrix products:
        O = Q S0^T + tril(Q K^T) U,     S_C = S0 + U^T K.
    """
    batch, heads, seq_len, dk = k.shape
    dv = v.shape[-1]
    pad = -seq_len % chunk_size
    if pad:  # zero keys, values and betas leave the state alone; their outputs are cut off
        q, k, v = (F.pad(z, (0, 0, 0, pad)) for z in (q, k, v))
        beta = F.pad(beta, (0, pad))
    n = (seq_len + pad) // chunk_size
    q, k = (z.view(batch, heads, n, chunk_size, dk) for z in (q, k))  # (B, H, N, C, dk)
    v = v.view(batch, heads, n, chunk_size, dv)  # (B, H, N, C, dv)
    beta = beta.view(batch, heads, n, chunk_size, 1)  # (B, H, N, C, 1)
    eye = torch.eye(chunk_size, dtype=k.dtype, device=k.device)
    strict = torch.tril(torch.ones_like(eye), diagonal=-1)
    lower = torch.tril(torch.ones_like(eye))
    a = eye + beta * (k @ k.transpose(-1, -2)) * strict  # (B, H, N, C, C), unit lower-triangular
    rhs = torch.cat([beta * v, beta * k], dim=-1)  # (B, H, N, C, dv + dk)
    solved = torch.linalg.solve_triangular(a, rhs, upper=False, unitriangular=True)
    w_v, w_k = solved.split([dv, dk], dim=-1)  # (B, H, N, C, dv), (B, H, N, C, dk)
    attn = (q @ k.transpose(-1, -2)) * lower  # (B, H, N, C, C)
    outputs = []
    for c in range(n):
        u = w_v[:, :, c] - w_k[:, :, c] @ state.transpose(-1, -2)  # (B, H, C, dv)
        outputs.append(q[:, :, c] @ state.transpose(-1, -2) + attn[:, :, c] @ u)
        state = state + u.transpose(-1, -2) @ k[:, :, c]  # (B, H, dv, dk)
    o = torch.stack(outputs, dim=2).view(batch, heads, n * chunk_size, dv)
    return o[:, :, :seq_len], state


LayerState = tuple[torch.Tensor, torch.Tensor]  # (S float [B, H, dv, dk], conv tail [B, 3D, W-1])


class DeltaNetLayer(nn.Module):
    """x + out(norm(delta_rule(q, k, v)) * silu(gate)), then x + MLP(norm(x)): pre-norm residual.

    q, k, v pass through a short causal depthwise convolution (width ``d_conv``) and SiLU, as in
    the reference implementation, so that a token can see its few predecessors before it writes;
    the convolution's last inputs are carried in the state with S, so calls can be chained.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        negative_eigenvalues: bool,
        chunk_size: int,
        d_conv: int = 4,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"deltanet: d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.chunk_size, self.d_conv = n_heads, chunk_size, d_conv
        self.beta_scale = 2.0 if negative_eigenvalues else 1.0
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.conv = nn.Conv1d(3 * d_model, 3 * d_model, d_conv, groups=3 * d_model)
        self.beta = nn.Linear(d_model, n_heads)
        self.gate = nn.Linear(d_model, d_model, bias=False)
        self.head_norm = nn.RMSNorm(d_model // n_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def initial_state(self, x: torch.Tensor) -> LayerState:
        batch, _, width = x.shape
        head = width // self.n_heads
        return (
            x.new_zeros(batch, self.n_heads, head, head),
            x.new_zeros(batch, 3 * width, self.d_conv - 1),
        )

    def forward(
        self, x: torch.Tensor, state: LayerState, recurrent: bool = False
    ) -> tuple[torch.Tensor, LayerState]:
        batch, seq_len, width = x.shape
        h = self.norm1(x)
        memory, tail = state
        qkv = torch.cat([tail, self.qkv(h).transpose(1, 2)], dim=2)  # (B, 3D, W-1+T)
        new_tail = qkv[:, :, qkv.shape[2] - (self.d_conv - 1) :]
        qkv = F.silu(self.conv(qkv)).transpose(1, 2)  # (B, T, 3D)
        q, k, v = (
            z.reshape(batch, seq_len, self.n_heads, -1).transpose(1, 2)
            for z in qkv.split(width, dim=-1)
        )  # (B, H, T, hd)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        beta = self.beta_scale * torch.sigmoid(self.beta(h)).transpose(1, 2)  # (B, H, T)
        if recurrent:
            o, memory = delta_rule_recurrent(q, k, v, beta, memory)
        else:
            o, memory = delta_rule_chunked(q, k, v, beta, memory, self.chunk_size)
        o = self.head_norm(o).transpose(1, 2).reshape(batch, seq_len, width)  # (B, T, D)
        x = x + self.out(o * F.silu(self.gate(h)))
        return x + self.mlp(self.norm2(x)), (memory, new_tail)


class DeltaNet(nn.Module):
    """``n_layers`` DeltaNet layers and a final LayerNorm.

    forward(x: float [B, T, D], state=None, recurrent=False) -> (float [B, T, D], state), the
    state a list of per-layer (S, conv tail); None starts from zeros. ``recurrent=True`` runs
    the step-by-step recurrence instead of the chunked form (same result, for tests).
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        n_heads: int = 2,
        negative_eigenvalues: bool = False,
        chunk_size: int = 32,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            DeltaNetLayer(d_model, n_heads, negative_eigenvalues, chunk_size)
            for _ in range(n_layers)
        )
        self.norm_f = nn.LayerNorm(d_model)

    def forward(
        self, x: torch.Tensor, state: list[LayerState] | None = None, recurrent: bool = False
    ) -> tuple[torch.Tensor, list[LayerState]]:
        if state is None:
            state = [layer.initial_state(x) for layer in self.layers]
        new_state = []
        for layer, layer_state in zip(self.layers, state, strict=True):
            x, layer_state = layer(x, layer_state, recurrent)
            new_state.append(layer_state)
        return self.norm_f(x), new_state


def build(d_model: int, n_layers: int, **kwargs) -> DeltaNet:
    return DeltaNet(d_model, n_layers, **kwargs)


def build_negative(d_model: int, n_layers: int, **kwargs) -> DeltaNet:
    """DeltaNet with beta in [0, 2]: transition eigenvalues in [-1, 1]."""
    return DeltaNet(d_model, n_layers, negative_eigenvalues=True, **kwargs)
