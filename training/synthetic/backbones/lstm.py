"""Plain stacked LSTM (torch.nn.LSTM): the serial baseline of the benchmarks."""

from __future__ import annotations

import torch
from torch import nn

from ...lstm import init_forget_bias


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
