"""Mamba-style selective state-space model with a parallel scan in plain PyTorch.

The recurrence h_t = a_t * h_{t-1} + b_t is linear in h, so it is evaluated with an associative
scan in O(log T) sequential steps rather than T: this is the time-parallel recurrent baseline.
Follows Gu & Dao (2023), "Mamba: Linear-Time Sequence Modeling with Selective State Spaces":
input-dependent step size, B and C; S4D-real initialisation of A; gated output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _scan_in_place(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overwrite ``b`` with h (h_t = a_t * h_{t-1} + b_t, h_{-1} = 0, time on dim 1); clobbers ``a``.

    Brent-Kung scan: an up-sweep of log2(T) levels folds each block of 2s steps into its last
    position, a down-sweep of log2(T) levels completes the positions in between. Every level is
    one strided multiply-add over all blocks at once, so the sequential depth is 2 log2(T),
    not T, and the total work is O(T).
    """
    seq_len = b.shape[1]
    stride = 1
    while 2 * stride - 1 < seq_len:
        n = len(range(2 * stride - 1, seq_len, 2 * stride))
        dst = slice(2 * stride - 1, seq_len, 2 * stride)
        src = slice(stride - 1, stride - 1 + 2 * stride * (n - 1) + 1, 2 * stride)
        b[:, dst].addcmul_(a[:, dst], b[:, src])
        a[:, dst].mul_(a[:, src])
        stride *= 2
    while stride > 1:
        stride //= 2
        n = len(range(3 * stride - 1, seq_len, 2 * stride))
        if n:
            dst = slice(3 * stride - 1, seq_len, 2 * stride)
            src = slice(2 * stride - 1, 2 * stride - 1 + 2 * stride * (n - 1) + 1, 2 * stride)
            b[:, dst].addcmul_(a[:, dst], b[:, src])
    return b


def _shift_right(x: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """x[:, t-1] at position t along time (dim 1), ``fill`` at t = 0."""
    return torch.cat([torch.full_like(x[:, :1], fill), x[:, :-1]], dim=1)


def parallel_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All h_t of h_t = a_t * h_{t-1} + b_t with h_{-1} = 0; time is dim 1, any trailing dims.

    Not differentiable (it works in place); SelectiveScan below is the differentiable use.
    """
    return _scan_in_place(a.clone(), b.clone())


class SelectiveScan(torch.autograd.Function):
    """y_t = C_t . h_t with h_t = exp(dt_t A) * h_{t-1} + dt_t u_t B_t: Mamba's selective scan.

    Shapes: u, dt float [B, T, Di]; A float [Di, N] (negative); b_in, c_out float [B, T, N];
    returns y float [B, T, Di]. One autograd function with a hand-derived backward, because
    autograd through the scan keeps a graph over every level and every [B, T, Di, N]
    intermediate, which made this block the slowest part of the CPU benchmark. The gradient of
    a linear recurrence is the same recurrence run backwards in time,
    g_t = dL/dh_t + a_{t+1} g_{t+1}, so the backward pass is one more parallel scan.
    """

    @staticmethod
    def forward(ctx, u, dt, A, b_in, c_out):
        decay = torch.exp(dt.unsqueeze(-1) * A)  # (B, T, Di, N), in (0, 1)
        drive = (dt * u).unsqueeze(-1) * b_in.unsqueeze(2)  # (B, T, Di, N)
        h = _scan_in_place(decay.clone(), drive)  # (B, T, Di, N); drive is overwritten by h
        ctx.save_for_backward(u, dt, A, b_in, c_out, decay, h)
        return torch.einsum("btdn,btn->btd", h, c_out)

    @staticmethod
    def backward(ctx, grad_y):
        u, dt, A, b_in, c_out, decay, h = ctx.saved_tensors
        grad_c = torch.einsum("btdn,btd->btn", h, grad_y)
        grad_h = grad_y.unsqueeze(-1) * c_out.unsqueeze(2)  # (B, T, Di, N): through y_t only
        decay_next = torch.cat([decay[:, 1:], torch.zeros_like(decay[:, :1])], dim=1)
        # g_t = dL/dh_t along every path = dL/d(drive_t); a reversed-time scan.
        g = _scan_in_place(decay_next.flip(1), grad_h.flip(1)).flip(1)  # (B, T, Di, N)
        grad_z = g * _shift_right(h) * decay  # dL/d(dt A), through decay = exp(dt A)
        grad_dtu = torch.einsum("btdn,btn->btd", g, b_in)
        grad_b = torch.einsum("btdn,btd->btn", g, dt * u)
        grad_dt = torch.einsum("btdn,dn->btd", grad_z, A) + grad_dtu * u
        grad_A = torch.einsum("btdn,btd->dn", grad_z, dt)
        return grad_dtu * dt, grad_dt, grad_A, grad_b, grad_c


class MambaBlock(nn.Module):
    def __init__(self, d_model: int, d_state: int = 8, expand: int = 2, d_conv: int = 4):
        super().__init__()
        d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        # Causal depthwise convolution: left padding only, output trimmed to T.
        self.conv = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        # Step sizes start log-uniform in [1e-3, 1e-1], as in the reference implementation.
        dt = torch.exp(torch.rand(d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)
        )
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.shape[1]
        u, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # 2 x (B, T, Di)
        u = F.silu(self.conv(u.transpose(1, 2))[..., :seq_len].transpose(1, 2))  # (B, T, Di)
        dt, b_in, c_out = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))  # (B, T, Di)
        y = (
            SelectiveScan.apply(u, dt, -torch.exp(self.A_log), b_in, c_out) + self.D * u
        )  # (B, T, Di)
        return x + self.out_proj(y * F.silu(z))


class Mamba(nn.Module):
    """``n_layers`` residual selective-SSM blocks.

    forward(x: float [B, T, H], state=None) -> (float [B, T, H], None). Each call starts from a
    zero state; the scan itself is the only mixing along time (plus a width-4 causal convolution).
    """

    def __init__(self, d_model: int, n_layers: int, d_state: int = 8, expand: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(MambaBlock(d_model, d_state, expand) for _ in range(n_layers))
        self.norm_f = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        if state is not None:
            raise ValueError("mamba: each call starts from a zero state; pass state=None")
        for block in self.blocks:
            x = block(x)
        return self.norm_f(x), None


def build(d_model: int, n_layers: int, **kwargs) -> Mamba:
    return Mamba(d_model, n_layers, **kwargs)
