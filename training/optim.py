"""Muon for the hidden layers' weight matrices, AdamW for everything else; warmup + schedule.

Muon orthogonalises the update of a 2-D weight matrix, which suits the matrices that map one
hidden representation to another: the transformer's and patch merges' linear layers and the
LSTM's input and recurrent matrices. Embeddings, position tables, the action head, norms, biases
and the learned initial state are not such maps and get AdamW (Muon's authors recommend the same
split). Paper defaults: Muon lr 3e-3; AdamW lr 3e-4, betas (0.9, 0.95), weight decay 0.01.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .model import ActionModel


def split_parameters(model: ActionModel) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Named parameters by optimizer group: "muon", "adamw_decay", "adamw_no_decay"."""
    muon: set[str] = set()
    for module_name, module in model.named_modules():
        if module is model.action_head:
            continue
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, nn.Linear):
            muon.add(prefix + "weight")
        elif isinstance(module, nn.LSTM):
            muon.update(
                prefix + name for name, _ in module.named_parameters() if name.startswith("weight_")
            )
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {
        "muon": [],
        "adamw_decay": [],
        "adamw_no_decay": [],
    }
    for name, param in model.named_parameters():
        if name in muon:
            groups["muon"].append((name, param))
        elif param.ndim >= 2 and not name.startswith("lstm.") and "_pos" not in name:
            groups["adamw_decay"].append((name, param))  # embeddings and the action head's weight
        else:
            groups["adamw_no_decay"].append((name, param))  # norms, biases, positions, h0/c0, marks
    return groups


class Optimizers:
    """Muon + AdamW stepped together; one learning-rate multiplier scales both."""

    def __init__(
        self,
        model: ActionModel,
        lr_muon: float = 3e-3,
        lr_adamw: float = 3e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.01,
        muon_weight_decay: float = 0.01,
    ):
        groups = split_parameters(model)
        self.muon = torch.optim.Muon(
            [p for _, p in groups["muon"]], lr=lr_muon, weight_decay=muon_weight_decay
        )
        self.adamw = torch.optim.AdamW(
            [
                {"params": [p for _, p in groups["adamw_decay"]], "weight_decay": weight_decay},
                {"params": [p for _, p in groups["adamw_no_decay"]], "weight_decay": 0.0},
            ],
            lr=lr_adamw,
            betas=betas,
        )
        for opt in self.all:
            for group in opt.param_groups:
                group["base_lr"] = group["lr"]

    @property
    def all(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return self.muon, self.adamw

    def set_lr(self, multiplier: float) -> None:
        for opt in self.all:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * multiplier

    def step(self) -> None:
        for opt in self.all:
            opt.step()

    def zero_grad(self) -> None:
        for opt in self.all:
            opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


SCHEDULES = ("cosine", "constant")


def lr_multiplier(
    step: int, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float
) -> float:
    """Learning-rate multiplier at 0-based `step`: linear warmup, then cosine to `min_ratio` or flat."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
