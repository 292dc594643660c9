"""The self-describing training checkpoint: written atomically, read back, checked before a resume.

OUT/checkpoint.pt is one `torch.save`d dict:

    format         CHECKPOINT_FORMAT
    model          the model's state_dict
    optimizer      Optimizers.state_dict(): {"muon": ..., "adamw": ...}
    model_config   dataclasses.asdict(ModelConfig), vocabulary sizes from the data included
    train_config   dataclasses.asdict(TrainConfig) of the run that wrote it
    action_names   list[str]: action id -> action string (schemas/actions.json)
    step, epoch    optimizer steps taken; the loader's epoch
    loader_state   one entry per process, by rank (see `process_entry`)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from ghframes.errors import GhframesError

from .config import TrainConfig
from .lstm import State
from .model import ModelConfig

CHECKPOINT_FORMAT = "ghframes.training.checkpoint/1"


def process_entry(loader_state: dict, state: State | None, prev: torch.Tensor) -> dict:
    """What one process resumes from: its loader position, the LSTM state it carries across
    batches (None before the first batch) and each row's last position (long [B])."""
    return {
        "loader": loader_state,
        "state": None if state is None else (state[0].cpu(), state[1].cpu()),
        "prev_position": prev.cpu(),
    }


def restore_entry(entry: dict, device: torch.device) -> tuple[State | None, torch.Tensor]:
    """(carried LSTM state, last position of each row) of a `process_entry`, on `device`."""
    state = entry["state"]
    if state is not None:
        state = (state[0].to(device), state[1].to(device))
    return state, entry["prev_position"].to(device)


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    action_names: list[str],
    step: int,
    epoch: int,
    loader_state: list[dict],
) -> None:
    """Write atomically: a temporary name, then rename."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": dataclasses.asdict(model_cfg),
        "train_config": dataclasses.asdict(train_cfg),
        "action_names": action_names,
        "step": step,
        "epoch": epoch,
        "loader_state": loader_state,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint at `path`; one clear error if it cannot be read or is not one of ours."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise GhframesError(f"{path}: cannot read checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise GhframesError(
            f"{path}: not a ghframes training checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def resume_path(cfg: TrainConfig) -> Path | None:
    """The checkpoint `cfg.resume` names; None when there is none to resume from."""
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        path = Path(cfg.out) / "checkpoint.pt"
        return path if path.exists() else None
    path = Path(cfg.resume)
    if not path.exists():
        raise GhframesError(f"--resume {cfg.resume}: no such checkpoint")
    return path


def check_checkpoint(
    ckpt: dict,
    path: Path,
    model_cfg: ModelConfig,
    action_names: list[str],
    cfg: TrainConfig,
    world_size: int,
) -> None:
    """Refuse to resume from a checkpoint the run does not match."""
    theirs = ckpt["action_names"]
    if theirs != action_names:
        first = next(
            (i for i, (a, b) in enumerate(zip(action_names, theirs, strict=False)) if a != b),
            min(len(theirs), len(action_names)),
        )
        mine_at = repr(action_names[first]) if first < len(action_names) else "(none)"
        theirs_at = repr(theirs[first]) if first < len(theirs) else "(none)"
        raise GhframesError(
            f"{path}: the action vocabulary of {cfg.data} ({len(action_names)} actions) does not "
            f"match the checkpoint's ({len(theirs)} actions): first difference at id {first}: "
            f"{mine_at} in the data, {theirs_at} in the checkpoint"
        )
    saved = ckpt["model_config"]
    mine = dataclasses.asdict(model_cfg)
    diff = [
        f"{k}={saved.get(k)!r} (checkpoint) vs {mine[k]!r} (this run)"
        for k in mine
        if _plain(saved.get(k)) != _plain(mine[k])
    ]
    if diff:
        raise GhframesError(f"{path}: checkpoint is of another model config: " + ", ".join(diff))
    saved_split = ckpt["train_config"].get("split_by", "session")  # older ones: by session
    if saved_split != cfg.split_by:
        raise GhframesError(
            f"{path}: checkpoint split its held-out data by {saved_split!r}, this run by "
            f"{cfg.split_by!r}: train and held-out sessions differ; resume with "
            f"--split-by {saved_split}"
        )
    if len(ckpt["loader_state"]) != world_size:
        raise GhframesError(
            f"{path}: checkpoint was written by {len(ckpt['loader_state'])} process(es), this "
            f"run has {world_size}; resume with the same number of processes"
        )


def _plain(value):
    """A tuple as a list: a config read back from a checkpoint may hold either."""
    return list(value) if isinstance(value, tuple | list) else value
