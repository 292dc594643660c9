"""Plain stacked LSTM (torch.nn.LSTM): the serial baseline of the benchmarks."""

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


class LSTM(nn.Module):
    """forward(x: float [B, T, H], state=None) -> (float [B, T, H], (h, c)), h and c float [L, B, H].

    A zero initial state when ``state`` is None, as torch.nn.LSTM does; forget gates start open.
    """

    def __init__(self, d_model: int, n_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(d_model, d_model, num_layers=n_layers, batch_first=True)
        init_forget_bias(self.lstm)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        return self.lstm(x, state)


def build(d_model: int, n_layers: int, **kwargs) -> LSTM:
    return LSTM(d_model, n_layers, **kwargs)
