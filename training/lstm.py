"""Residual LSTM: the recurrence-complete core of the ghframes action model.

A stack of LSTM layers, each applied as ``x + LSTM(LayerNorm(x))`` so that depth adds refinements
to a residual stream instead of replacing it; forget gates start open (see init_forget_bias)
and the initial state is learned, so that the start of a session is not confused with an
all-zero memory. The state is returned so that a streaming trainer can carry it across windows
(detached between windows: truncated BPTT).
"""

from __future__ import annotations

import torch
from torch import nn


def init_forget_bias(lstm: nn.LSTM, value: float = 1.0) -> None:
    """Start every forget gate open (bias ``value``) so memories persist from the first step.

    Jozefowicz et al. (2015), "An Empirical Exploration of Recurrent Network Architectures":
    with the default zero bias a gate starts at 0.5 and the cell forgets half of itself per step.
    PyTorch orders the gates (input, forget, cell, output); the hidden-side bias is zeroed so
    the sum is ``value``.
    """
    with torch.no_grad():
        for name, bias in lstm.named_parameters():
            if name.startswith("bias_"):
                hidden = bias.shape[0] // 4
                bias[hidden : 2 * hidden] = value if name.startswith("bias_ih") else 0.0


State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each float [n_layers, B, H]


class ResidualLSTM(nn.Module):
    """forward(x: float [B, T, H], state: State | None = None) -> (float [B, T, H], State)."""

    def __init__(self, d_model: int, n_layers: int):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"residual_lstm: n_layers must be >= 1, got {n_layers}")
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.lstms = nn.ModuleList(
            nn.LSTM(d_model, d_model, batch_first=True) for _ in range(n_layers)
        )
        for lstm in self.lstms:
            init_forget_bias(lstm)
        self.h0 = nn.Parameter(torch.zeros(n_layers, d_model))
        self.c0 = nn.Parameter(torch.zeros(n_layers, d_model))
        self.norm_f = nn.LayerNorm(d_model)

    def initial_state(self, batch_size: int) -> State:
        """The learned initial state, broadcast to a batch: (h, c), each float [n_layers, B, H]."""
        shape = (-1, batch_size, -1)
        return self.h0.unsqueeze(1).expand(shape).contiguous(), self.c0.unsqueeze(1).expand(
            shape
        ).contiguous()

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        h, c = self.initial_state(x.shape[0]) if state is None else state
        h_out, c_out = [], []
        for layer, (norm, lstm) in enumerate(zip(self.norms, self.lstms, strict=True)):
            y, (h_l, c_l) = lstm(norm(x), (h[layer : layer + 1], c[layer : layer + 1]))  # (B, T, H)
            x = x + y
            h_out.append(h_l)
            c_out.append(c_l)
        return self.norm_f(x), (torch.cat(h_out), torch.cat(c_out))


def build(d_model: int, n_layers: int, **kwargs) -> ResidualLSTM:
    return ResidualLSTM(d_model, n_layers, **kwargs)
