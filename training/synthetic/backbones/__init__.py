"""Sequence backbones by name: ``NAME -> build(d_model, n_layers, **kwargs)``.

Every backbone maps float [B, T, d_model] to float [B, T, d_model], is causal (output at t depends
on inputs at <= t only), and has the call signature ``forward(x, state=None) -> (y, state)``;
time-parallel backbones return state None. To benchmark your own architecture, add a module
here with a ``build`` function and one line in BACKBONES.
"""

from __future__ import annotations

from torch import nn

from ... import lstm as residual_lstm
from . import deltanet, lstm, mamba, transformer

BACKBONES = {
    "transformer": transformer.build,
    "mamba": mamba.build,
    "lstm": lstm.build,
    "residual_lstm": residual_lstm.build,
    "deltanet": deltanet.build,
    "deltanet_neg": deltanet.build_negative,  # beta in [0, 2]: eigenvalues in [-1, 1]
}


def make_backbone(name: str, d_model: int, n_layers: int, **kwargs) -> nn.Module:
    """The backbone called ``name`` with width ``d_model`` and ``n_layers`` layers."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](d_model, n_layers, **kwargs)
